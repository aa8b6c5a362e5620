//! `GET /metrics`: the runtime's Prometheus exposition, after real traffic,
//! agrees with `/health/resilience`, and Prometheus's own checker accepts it.

mod common;

use common::{get, post, serve, Served};

/// Some traffic on every kind of path: reads, an order (payment, events),
/// and a missing pet.
async fn traffic(s: &Served) {
    assert_eq!(get(s.addr, "/pets").await.status, 200);
    assert_eq!(
        get(s.addr, "/pets/1?customer_id=customer_123").await.status,
        200
    );
    let order = r#"{"customer_id": "customer_123", "pet_id": 1, "payment": {"amount": 299.99}}"#;
    assert_eq!(post(s.addr, "/orders", order).await.status, 201);
    assert_eq!(get(s.addr, "/pets/999").await.status, 404);
}

/// The value of the one sample line starting with `series`.
fn sample(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(series))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_agrees_with_the_snapshot() {
    let s = serve(Default::default()).await;
    traffic(&s).await;
    // Quiet: the order's event relayed, no call in flight.
    let quiet = common::eventually(std::time::Duration::from_secs(10), || async {
        let h = get(s.addr, "/health/resilience").await.body;
        h["dependencies"]
            .as_object()
            .unwrap()
            .values()
            .all(|d| d["bulkhead"]["current_load"] == 0)
            && get(s.addr, "/events").await.body["pending"] == 0
    })
    .await;
    assert!(quiet);
    let reply = get(s.addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let snapshot = get(s.addr, "/health/resilience").await.body;
    for (name, dep) in snapshot["dependencies"].as_object().unwrap() {
        let kind = dep["kind"].as_str().unwrap();
        for (outcome, key) in [
            ("successful", "successful_requests"),
            ("failed", "failed_requests"),
            ("rejected", "rejected_requests"),
            ("rate_limited", "rate_limited_requests"),
        ] {
            let series = format!(
                r#"resilience_calls_total{{dependency="{name}",kind="{kind}",outcome="{outcome}"}}"#
            );
            assert_eq!(
                sample(&reply.text, &series),
                dep["bulkhead"][key].as_f64().unwrap(),
                "{series}"
            );
        }
    }
    let db = r#"resilience_calls_total{dependency="petstore_database",kind="database",outcome="successful"}"#;
    assert!(
        sample(&reply.text, db) >= 3.0,
        "the reads and the order were counted"
    );
}

/// Prometheus's `promtool check metrics` on a real scrape. Run by `.ci/run`,
/// which installs Debian's `prometheus` package for it; without promtool it
/// fails, it does not skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs promtool (Debian's prometheus package); .ci/run runs it"]
async fn promtool_accepts_a_real_scrape() {
    use std::io::Write;
    let s = serve(Default::default()).await;
    traffic(&s).await;
    let scrape = get(s.addr, "/metrics").await.text;
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool: {said}\n--- scrape:\n{scrape}"
    );
    assert!(said.trim().is_empty(), "promtool found problems: {said}");
}
