//! `serve` stops within its shutdown grace period, even with a request held
//! by a hung dependency.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_gateway_cannot_hold_the_shutdown_past_its_grace_period() {
    let port = common::free_port();
    let db = common::sqlite_url();
    let mut app = Command::new(env!("CARGO_BIN_EXE_petstore-example"))
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--shutdown-grace",
            "0.5",
        ])
        .env("DATABASE_URL", &db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line names the in-process gateway's address.
    let mut lines = BufReader::new(app.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let gateway: SocketAddr = banner
        .rsplit("gateway: ")
        .next()
        .and_then(|g| g.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no gateway address in {banner:?}"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let hang = common::post(gateway, "/faults", r#"{"mode": "hang"}"#).await;
    assert_eq!(hang.status, 200, "{:?}", hang.body);
    let order = tokio::spawn(common::post(
        addr,
        "/orders",
        r#"{"customer_id": "alice", "pet_id": 2, "payment": {"amount": 10.0}}"#,
    ));
    // Polls the gateway until the charge is in, so the order is in flight.
    for _ in 0..400 {
        if common::get(gateway, "/stats").await.body["requests"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(common::get(gateway, "/stats").await.body["requests"], 1);

    let asked = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &app.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || app.wait())
        .await
        .unwrap()
        .unwrap();
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}");
    // The payment timeout is 15 s: only the 0.5 s grace explains a quick exit.
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("shutdown grace period")),
        "{rest:?}"
    );
    order.abort();
}
