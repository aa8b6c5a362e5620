//! Recovery in the petstore: reads recover by retry, a payment is attempted
//! once per order, and the catalogue and recommendations fall back.

mod common;

use common::{get, post, serve};
use petstore_example::gateway::Fault;
use petstore_example::{cache, Settings};
use std::time::Duration;

fn order(customer: &str, pet: i64, amount: f64) -> String {
    format!(r#"{{"customer_id":"{customer}","pet_id":{pet},"payment":{{"amount":{amount}}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_payment_reaches_the_gateway_exactly_once_per_order() {
    let s = serve(Settings::default()).await;
    let gateway = s.app.gateway.clone().unwrap();
    gateway.set_fault(Fault::FailCharges, Duration::ZERO);
    for i in 1..=4 {
        let before = gateway.stats().requests;
        let r = post(s.addr, "/orders", &order("alice", 7, 10.0)).await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert_eq!(
            gateway.stats().requests - before,
            1,
            "order {i}: one charge request"
        );
    }
    let stats = gateway.stats();
    assert_eq!((stats.captured, stats.refunded), (0, 0));
    let health = get(s.addr, "/health/resilience").await.body;
    let gw = &health["dependencies"]["payment_gateway"];
    // Four charges failed once each; every void succeeded on its first try.
    assert_eq!(gw["bulkhead"]["failed_requests"], 4);
    assert_eq!(gw["retry"]["successful_without_retry"], 4);
    assert_eq!(gw["retry"]["retries"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_recovers_by_retry_and_the_snapshot_says_so() {
    let s = serve(Settings::default()).await;
    s.app.store.db.fail_next_reads(2);
    let r = get(s.addr, "/pets/1").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["pet"]["name"], "Rex");
    let health = get(s.addr, "/health/resilience").await.body;
    let db = &health["dependencies"]["petstore_database"];
    assert_eq!(db["status"], "healthy", "the last call succeeded: {db}");
    assert_eq!(db["retry"]["successful_with_retry"], 1);
    assert_eq!(db["retry"]["retries"], 2);
    assert_eq!(db["retry"]["max_attempts"], 4);
    assert_eq!(db["bulkhead"]["failed_requests"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_falls_back_to_the_last_known_copy_when_the_database_is_down() {
    let s = serve(Settings::default()).await;
    let fresh = get(s.addr, "/pets").await;
    assert_eq!(fresh.body["source"], "database");
    // The 30 s copy expires; the database then fails every attempt.
    s.rt.scope(cache::set(
        &s.app.store.cache,
        "catalogue",
        "",
        Duration::ZERO,
    ))
    .await
    .unwrap();
    s.app.store.db.fail_next_reads(4);
    let r = get(s.addr, "/pets").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["source"], "last_known");
    assert_eq!(r.body["pets"], fresh.body["pets"]);
    let degraded = r.body["degraded"][0].as_str().unwrap();
    assert!(
        degraded.contains("showing the last known catalogue"),
        "{degraded}"
    );
    let health = get(s.addr, "/health/resilience").await.body;
    let db = &health["dependencies"]["petstore_database"];
    assert_eq!(db["fallback"]["invoked"], 1);
    assert_eq!(db["fallback"]["successful"], 1);
    assert_eq!(db["retry"]["failed_with_retry"], 1);

    // With nothing kept, the database's own error reaches the caller.
    let bare = serve(Settings::default()).await;
    bare.app.store.db.fail_next_reads(4);
    let r = get(bare.addr, "/pets").await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("connection reset"),
        "{:?}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_fall_back_to_the_most_popular_pets_and_say_so() {
    let s = serve(Settings::default()).await;
    // Pet 2 sells twice, pet 3 once.
    for pet in [2, 2, 3] {
        assert_eq!(
            post(s.addr, "/orders", &order("alice", pet, 10.0))
                .await
                .status,
            201
        );
    }
    s.app.store.advisor.set_slowness(Duration::from_secs(2));
    let r = get(s.addr, "/pets/4?customer_id=customer_123").await;
    s.app.store.advisor.set_slowness(Duration::ZERO);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ids: Vec<i64> = r.body["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rec| rec["pet_id"].as_i64().unwrap())
        .collect();
    assert_eq!(&ids[..2], [2, 3], "{:?}", r.body);
    let degraded: Vec<&str> = r.body["degraded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        degraded.contains(&"recommendations: the most popular pets instead (timeout)"),
        "{degraded:?}"
    );
}
