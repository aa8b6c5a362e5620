//! `GET /orders/{id}` asks the gateway for the charge's status through the
//! tower stack on `payment_lookup`: its answer, its timeout and its breaker
//! show in the order and in the snapshot, and a failing lookup never costs
//! the order.

mod common;

use common::{get, post, serve};
use petstore_example::gateway::Fault;
use std::time::{Duration, Instant};

async fn placed_order(addr: std::net::SocketAddr) -> String {
    let order = r#"{"customer_id": "customer_123", "pet_id": 1, "payment": {"amount": 299.99}}"#;
    let reply = post(addr, "/orders", order).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["order"]["id"].as_str().unwrap().to_owned()
}

fn lookup_health(snapshot: &serde_json::Value) -> serde_json::Value {
    snapshot["dependencies"]["payment_lookup"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_shows_what_the_gateway_says_of_its_charge() {
    let s = serve(Default::default()).await;
    let id = placed_order(s.addr).await;
    let reply = get(s.addr, &format!("/orders/{id}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["payment_status"], "captured");
    assert_eq!(reply.body["degraded"], serde_json::json!([]));
    let lookup = lookup_health(&get(s.addr, "/health/resilience").await.body);
    assert_eq!(lookup["operations"], serde_json::json!(["get_charge"]));
    assert_eq!(lookup["bulkhead"]["successful_requests"], 1);
    assert_eq!(lookup["bulkhead"]["max_concurrent"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_gateway_costs_the_order_its_payment_status_only() {
    let s = serve(Default::default()).await;
    let id = placed_order(s.addr).await;
    let gateway = s.app.gateway.as_ref().unwrap();
    gateway.set_fault(Fault::Hang, Duration::ZERO);
    let asked = Instant::now();
    let reply = get(s.addr, &format!("/orders/{id}")).await;
    let took = asked.elapsed();
    gateway.set_fault(Fault::None, Duration::ZERO);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["order"]["id"], id.as_str());
    assert!(reply.body["payment_status"].is_null());
    assert_eq!(
        reply.body["degraded"],
        serde_json::json!(["payment status: timeout"])
    );
    assert!(
        took < Duration::from_secs(5),
        "cut at the lookup's timeout, not the hang: {took:?}"
    );
    let lookup = lookup_health(&get(s.addr, "/health/resilience").await.body);
    assert_eq!(lookup["bulkhead"]["timed_out_requests"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_open_the_lookups_breaker_and_not_the_payments() {
    let s = serve(Default::default()).await;
    let id = placed_order(s.addr).await;
    let gateway = s.app.gateway.as_ref().unwrap();
    gateway.set_fault(Fault::Fail, Duration::ZERO);
    for _ in 0..5 {
        let reply = get(s.addr, &format!("/orders/{id}")).await;
        assert_eq!(reply.status, 200);
        let said = reply.body["degraded"][0].as_str().unwrap().to_owned();
        assert!(
            said.contains("answered 500 Internal Server Error to a lookup"),
            "{said}"
        );
    }
    let reply = get(s.addr, &format!("/orders/{id}")).await;
    assert_eq!(
        reply.body["degraded"],
        serde_json::json!(["payment status: circuit open"])
    );
    gateway.set_fault(Fault::None, Duration::ZERO);
    let snapshot = get(s.addr, "/health/resilience").await.body;
    let lookup = lookup_health(&snapshot);
    assert_eq!(lookup["circuit_breaker"]["state"], "open");
    assert_eq!(
        (
            lookup["bulkhead"]["failed_requests"].as_u64(),
            lookup["bulkhead"]["short_circuited_requests"].as_u64()
        ),
        (Some(5), Some(1))
    );
    assert_eq!(
        snapshot["dependencies"]["payment_gateway"]["circuit_breaker"]["state"], "closed",
        "the payments' own breaker saw none of it"
    );
    assert_eq!(snapshot["status"], "warn", "the lookup is not critical");
}
