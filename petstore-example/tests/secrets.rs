//! No secret from a URL reaches a response, an error or the process's
//! output. These cases need no server: each URL points at a closed port.

mod common;

use common::{eventually, get, post, serve};
use petstore_example::Settings;
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "secretpw";

fn order(customer: &str, pet: i64, amount: f64) -> String {
    format!(r#"{{"customer_id":"{customer}","pet_id":{pet},"payment":{{"amount":{amount}}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_nats_with_a_password_is_named_without_it() {
    let s = serve(Settings {
        nats_url: Some(format!("nats://user:{SECRET}@127.0.0.1:4999")),
        ..Settings::default()
    })
    .await;
    let placed = post(s.addr, "/orders", &order("alice", 2, 10.0)).await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
    let text = placed.body.to_string();
    assert!(!text.contains(SECRET), "{text}");
    // The relay, not the order, meets the dead broker; /events says why.
    let named = eventually(Duration::from_secs(10), || async {
        get(s.addr, "/events").await.body["last_error"].is_string()
    })
    .await;
    let events = get(s.addr, "/events").await.body.to_string();
    assert!(named, "{events}");
    assert!(!events.contains(SECRET), "{events}");
    assert!(
        events.contains("NATS unreachable at nats://***@127.0.0.1:4999"),
        "{events}"
    );
    let health = get(s.addr, "/health/resilience").await.body.to_string();
    assert!(!health.contains(SECRET), "{health}");
}

/// Runs `petstore-example serve` with `env`, expecting it to fail at
/// start-up, and returns everything it printed.
fn failed_start(env: &[(&str, String)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_petstore-example"));
    command.args(["serve", "--port", "0"]);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    assert!(!out.status.success(), "it must not start");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn start_up_errors_name_redis_and_the_database_without_their_passwords() {
    let redis = failed_start(&[("REDIS_URL", format!("redis://:{SECRET}@127.0.0.1:notaport"))]);
    assert!(!redis.contains(SECRET), "{redis}");
    assert!(redis.contains("redis://***@127.0.0.1:notaport"), "{redis}");

    // A bad port fails at once, with the URL in the message; the live tests
    // cover a real server refusing a database.
    for url in [
        format!("postgres://postgres:{SECRET}@127.0.0.1:notaport/test"),
        format!("postgres://postgres:secret@pw{SECRET}@127.0.0.1:notaport/test"),
        format!("postgres://postgres@127.0.0.1:notaport/test?password={SECRET}"),
    ] {
        let printed = failed_start(&[("DATABASE_URL", url.clone())]);
        assert!(!printed.contains(SECRET), "{url}: {printed}");
        assert!(!printed.contains("secret@pw"), "{url}: {printed}");
        assert!(
            printed.contains("postgres://***@127.0.0.1:notaport/test"),
            "{printed}"
        );
    }

    let gateway = failed_start(&[("GATEWAY_ADDR", format!("user:{SECRET}@nowhere.invalid:1"))]);
    assert!(!gateway.contains(SECRET), "{gateway}");
}
