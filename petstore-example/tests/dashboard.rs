//! `GET /dashboard` in a real browser: headless Chromium, driven through
//! WebDriver (chromedriver), sees the payment gateway go unavailable with an
//! open breaker within 3 s of the breaker opening, and come back. Run by
//! `.ci/run`, which installs Debian's `chromium` and `chromium-driver`;
//! without them it fails, it does not skip. It saves a screenshot as
//! `target/dashboard.png`.

mod common;

use common::{get, post, serve};
use fantoccini::{Client, ClientBuilder, Locator};
use petstore_example::gateway::Fault;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// chromedriver, stopped when the test ends however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Driver, Client) {
    let port = common::free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (apt-get install chromium chromium-driver)");
    let driver = Driver(driver);
    let profile = common::fresh_path("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--window-size=1280,560", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            // chromedriver takes a moment to listen.
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no WebDriver session: {e}"),
        }
    }
}

/// The text of `column` in `dependency`'s row, or "" before the row exists.
async fn cell(page: &Client, dependency: &str, column: &str) -> String {
    let css = format!(r#"tr[data-dependency="{dependency}"] td.{column}"#);
    match page.find(Locator::Css(&css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until `column` of `dependency` starts with `want`; how long it took.
async fn shows(page: &Client, dependency: &str, column: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let text = cell(page, dependency, column).await;
        if text.starts_with(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{dependency} {column} shows {text:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn order() -> &'static str {
    r#"{"customer_id": "customer_123", "pet_id": 1, "payment": {"amount": 10.0}}"#
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver; .ci/run runs it"]
async fn the_dashboard_shows_an_open_breaker_within_three_seconds_and_the_recovery() {
    let s = serve(Default::default()).await;
    let (_driver, page) = browser().await;
    page.goto(&format!("http://{}/dashboard", s.addr))
        .await
        .unwrap();
    shows(&page, "payment_gateway", "status", "idle").await;
    assert_eq!(
        page.find(Locator::Css("#overall"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "pass"
    );

    // The gateway fails until the payment breaker opens (3 failures).
    let gateway = s.app.gateway.as_ref().unwrap();
    gateway.set_fault(Fault::Fail, Duration::ZERO);
    for _ in 0..10 {
        let snapshot = get(s.addr, "/health/resilience").await.body;
        if snapshot["dependencies"]["payment_gateway"]["circuit_breaker"]["state"] == "open" {
            break;
        }
        assert_ne!(post(s.addr, "/orders", order()).await.status, 201);
    }
    let opened = Instant::now();
    shows(&page, "payment_gateway", "status", "unavailable").await;
    shows(&page, "payment_gateway", "breaker", "open").await;
    let seen = opened.elapsed();
    assert!(
        seen <= Duration::from_secs(3),
        "the page showed it after {seen:?}"
    );

    let shot = page.screenshot().await.unwrap();
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("dashboard.png"), shot).unwrap();

    // The gateway recovers; after the breaker's 1 s a probe closes it.
    gateway.set_fault(Fault::None, Duration::ZERO);
    let probe = Instant::now();
    loop {
        if post(s.addr, "/orders", order()).await.status == 201 {
            break;
        }
        assert!(
            probe.elapsed() < Duration::from_secs(10),
            "no probe got through"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = shows(&page, "payment_gateway", "breaker", "closed").await;
    assert!(
        closed <= Duration::from_secs(3),
        "recovery shown after {closed:?}"
    );
    assert_ne!(
        cell(&page, "payment_gateway", "status").await,
        "unavailable"
    );
    page.close().await.unwrap();
}
