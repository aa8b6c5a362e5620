//! Every route end to end on embedded defaults: SQLite, the in-process cache,
//! the outbox and the in-process gateway. Includes bad input and the fault
//! switches of the gateway.

mod common;

use common::{eventually, get, post, serve, serve_with};
use petstore_example::gateway::Fault;
use petstore_example::Settings;
use std::time::Duration;

fn order(customer: &str, pet: i64, amount: f64) -> String {
    format!(
        r#"{{"customer_id": "{customer}", "pet_id": {pet}, "payment": {{"amount": {amount}}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_an_order_round_trip() {
    let s = serve(Settings::default()).await;
    let pets = get(s.addr, "/pets").await;
    assert_eq!(pets.status, 200);
    assert_eq!(pets.body["pets"].as_array().unwrap().len(), 12);
    assert_eq!(pets.body["source"], "database");
    assert_eq!(get(s.addr, "/pets").await.body["source"], "cache");

    let pet = get(s.addr, "/pets/4?customer_id=customer_123").await;
    assert_eq!(pet.status, 200);
    assert_eq!(pet.body["pet"]["name"], "Buddy");
    assert_eq!(pet.body["recommendations"].as_array().unwrap().len(), 3);
    assert_eq!(pet.body["degraded"], serde_json::json!([]));

    let placed = post(s.addr, "/orders", &order("customer_123", 1, 299.99)).await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
    assert_eq!(placed.body["payment"]["amount_cents"], 29999);
    assert_eq!(
        placed.body["events"],
        serde_json::json!({"queued": 1, "backend": "embedded"})
    );
    let id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    let fetched = get(s.addr, &format!("/orders/{id}")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["order"]["status"], "confirmed");
    assert_eq!(
        fetched.body["order"]["payment_id"],
        placed.body["payment"]["payment_id"]
    );

    let health = get(s.addr, "/health").await;
    assert_eq!(health.status, 200);
    let snapshot = get(s.addr, "/health/resilience").await;
    assert_eq!(snapshot.status, 200);
    let deps = snapshot.body["dependencies"].as_object().unwrap();
    assert_eq!(deps.len(), 6);
    assert_eq!(
        fetched.body["payment_status"], "captured",
        "the gateway's word on the charge, through payment_lookup"
    );
    assert_eq!(
        deps["payment_gateway"]["bulkhead"]["successful_requests"],
        1
    );

    // The relay delivers the order's event to the embedded broker.
    let delivered = eventually(Duration::from_secs(10), || async {
        get(s.addr, "/events").await.body["pending"] == 0
    })
    .await;
    assert!(delivered, "{:?}", get(s.addr, "/events").await.body);
    let events = get(s.addr, "/events").await.body;
    assert_eq!(events["backend"], "embedded");
    assert_eq!(events["published"], 1);
    assert!(events["last_error"].is_null());
    let broker = s.app.store.events.broker().unwrap();
    assert_eq!(broker.stats().acknowledged, 1);
    assert_eq!(broker.delivered()[0].subject, "petstore.orders.created");
    assert!(broker.delivered()[0].payload.contains(&id));
    let snapshot = get(s.addr, "/health/resilience").await;
    let relayed = &snapshot.body["dependencies"]["kafka_events"];
    assert_eq!(relayed["status"], "healthy");
    assert_eq!(relayed["bulkhead"]["successful_requests"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_broker_never_holds_an_order_and_its_events_go_out_once_it_is_back() {
    let s = serve(Settings::default()).await;
    let broker = s.app.store.events.broker().unwrap();
    broker.set_down(true);
    for pet in [1, 2] {
        let placed = post(s.addr, "/orders", &order("bob", pet, 10.0)).await;
        assert_eq!(placed.status, 201, "{:?}", placed.body);
        assert_eq!(placed.body["degraded"], serde_json::json!([]));
    }
    let paused = eventually(Duration::from_secs(10), || async {
        let events = get(s.addr, "/events").await.body;
        events["pending"] == 2 && events["last_error"].is_string()
    })
    .await;
    let events = get(s.addr, "/events").await.body;
    assert!(paused, "{events:?}");
    assert!(
        events["last_error"]
            .as_str()
            .unwrap()
            .contains("embedded broker is down"),
        "{events:?}"
    );
    assert_eq!(broker.stats().acknowledged, 0);

    broker.set_down(false);
    let delivered = eventually(Duration::from_secs(15), || async {
        get(s.addr, "/events").await.body["pending"] == 0
    })
    .await;
    let events = get(s.addr, "/events").await.body;
    assert!(delivered, "{events:?}");
    assert_eq!(
        (events["published"].as_u64(), events["last_error"].is_null()),
        (Some(2), true)
    );
    assert_eq!(broker.stats().acknowledged, 2, "each event once");
    let snapshot = get(s.addr, "/health/resilience").await;
    let bulkhead = &snapshot.body["dependencies"]["kafka_events"]["bulkhead"];
    assert_eq!(bulkhead["successful_requests"], 2);
    assert!(bulkhead["failed_requests"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_status_and_a_message_to_act_on() {
    let s = serve(Settings::default()).await;
    let cases = [
        (get(s.addr, "/pets/abc").await, 400, "whole number"),
        (get(s.addr, "/pets/999").await, 404, "pet 999 not found"),
        (
            get(s.addr, "/orders/nope").await,
            404,
            "order nope not found",
        ),
        (
            post(s.addr, "/orders", "{not json").await,
            400,
            "expected a JSON body",
        ),
        (
            post(s.addr, "/orders", r#"{"pet_id": 1}"#).await,
            422,
            "customer_id",
        ),
        (
            post(
                s.addr,
                "/orders",
                r#"{"customer_id": "alice", "pet_id": "one"}"#,
            )
            .await,
            422,
            "pet_id",
        ),
        (
            post(s.addr, "/orders", &order("alice", 1, -5.0)).await,
            422,
            "positive",
        ),
        (
            post(s.addr, "/orders", &order("nobody", 1, 10.0)).await,
            404,
            "customer nobody not found",
        ),
        (
            post(s.addr, "/orders", &order("alice", 999, 10.0)).await,
            404,
            "pet 999 not found",
        ),
        (get(s.addr, "/nowhere").await, 404, "no such route"),
        (
            common::request(s.addr, "DELETE", "/pets", None).await,
            405,
            "does not take that method",
        ),
        (
            post(
                s.addr,
                "/orders",
                &format!(r#"{{"customer_id": "{}"}}"#, "a".repeat(10 << 20)),
            )
            .await,
            413,
            "length limit",
        ),
        (
            get(s.addr, &format!("/orders/{}", "x".repeat(8000))).await,
            404,
            "(8000 characters)",
        ),
        (
            post(s.addr, "/orders", &order(&"c".repeat(1 << 20), 1, 10.0)).await,
            404,
            "(1048576 characters)",
        ),
    ];
    for (reply, status, text) in cases {
        assert_eq!(reply.status, status, "{:?}", reply.body);
        assert!(
            reply.body.to_string().len() < 1000,
            "no echo of a huge input"
        );
        let message = reply.body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(text),
            "{message:?} should mention {text:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_for_the_last_pet_sell_it_once_and_charge_once() {
    let s = serve(Settings::default()).await;
    let gateway = s.app.gateway.clone().unwrap();
    let before = gateway.stats();
    // Luna (pet 7) has one in stock.
    let orders: Vec<_> = (0..5)
        .map(|_| {
            let addr = s.addr;
            tokio::spawn(async move { post(addr, "/orders", &order("bob", 7, 499.99)).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for o in orders {
        statuses.push(o.await.unwrap().status);
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409]);
    assert_eq!(
        gateway.stats().captured - before.captured,
        1,
        "one payment, for the one order"
    );
    let pet = get(s.addr, "/pets/7").await;
    assert!(pet.status == 200);
    let stock = petstore_example::db::get_pet(&s.app.store.db, 7);
    assert_eq!(
        s.rt.scope(stock).await.unwrap().unwrap().stock,
        0,
        "never negative"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_payments_leave_the_breaker_closed_and_the_service_healthy() {
    let s = serve(Settings::default()).await;
    for _ in 0..5 {
        let r = post(s.addr, "/orders", &order("alice", 3, 15000.0)).await;
        assert_eq!(r.status, 402, "{:?}", r.body);
        assert!(r.body["error"]
            .as_str()
            .unwrap()
            .contains("Payment amount exceeds limit"));
    }
    let health = get(s.addr, "/health/resilience").await.body;
    let gateway = &health["dependencies"]["payment_gateway"];
    assert_eq!(gateway["circuit_breaker"]["state"], "closed");
    assert_eq!(gateway["circuit_breaker"]["failure_count"], 0);
    assert_eq!(
        gateway["bulkhead"]["failed_requests"], 5,
        "declines are failed calls"
    );
    assert_eq!(get(s.addr, "/health").await.status, 200);
    let paid = post(s.addr, "/orders", &order("alice", 3, 100.0)).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);

    // Less than a cent is the request's mistake, caught before the gateway.
    let requests = s.app.gateway.as_ref().unwrap().stats().requests;
    let tiny = post(s.addr, "/orders", &order("alice", 3, 0.001)).await;
    assert_eq!(tiny.status, 422, "{:?}", tiny.body);
    assert!(tiny.body["error"]
        .as_str()
        .unwrap()
        .contains("at least 0.01"));
    assert_eq!(s.app.gateway.as_ref().unwrap().stats().requests, requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_fault_switches_fail_then_recover() {
    let s = serve(Settings::default()).await;
    let gateway = s.app.gateway.clone().unwrap();
    gateway.set_fault(Fault::Fail, Duration::ZERO);
    // The charge fails once (it is never retried); the void is idempotent and
    // retried, and its second failure is the breaker's third (3/3): its last
    // retry is refused by the open breaker.
    let before_first = std::time::Instant::now();
    let first = post(s.addr, "/orders", &order("alice", 2, 199.99)).await;
    assert_eq!(first.status, 502, "{:?}", first.body);
    let error = first.body["error"].as_str().unwrap();
    assert!(error.contains("voiding payment"), "{error}");
    assert!(error.contains("circuit breaker is open"), "{error}");
    let second = post(s.addr, "/orders", &order("alice", 2, 199.99)).await;
    // The breaker opened after `before_first`, for 1 s of real time: an
    // answer within that second was refused at the charge. A machine busy
    // enough to take longer may have let a probe through, which fails too
    // and reopens the breaker before the void.
    if before_first.elapsed() < Duration::from_secs(1) {
        assert_eq!(second.status, 503, "{:?}", second.body);
        assert!(second.header("retry-after").is_some());
    } else {
        assert!(matches!(second.status, 502 | 503), "{:?}", second.body);
        assert!(
            second.error().contains("circuit breaker is open"),
            "{:?}",
            second.body
        );
    }
    gateway.set_fault(Fault::None, Duration::ZERO);
    // The breaker lets a probe through once its 1 s open time has passed.
    let half_open = eventually(Duration::from_secs(10), || async {
        let snapshot = get(s.addr, "/health/resilience").await;
        snapshot.body["dependencies"]["payment_gateway"]["circuit_breaker"]["state"] == "half_open"
    })
    .await;
    assert!(half_open, "the breaker never reached half-open");
    assert_eq!(
        post(s.addr, "/orders", &order("alice", 2, 199.99))
            .await
            .status,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_timeout_is_504_and_the_late_charge_is_voided() {
    let s = serve(Settings::default()).await;
    let gateway = s.app.gateway.clone().unwrap();
    gateway.set_fault(Fault::Slow, Duration::from_millis(2000));
    let r = post(s.addr, "/orders", &order("alice", 5, 349.99)).await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert!(r.error().contains("timed out after 500ms"), "{:?}", r.body);
    assert_eq!(
        gateway.stats().captured,
        0,
        "the caller had its answer while the gateway still held the charge"
    );
    // The slow charge and the slow void both land on the gateway later;
    // whichever comes first, no money stays taken.
    let settled = eventually(Duration::from_secs(15), || async {
        let stats = gateway.stats();
        stats.captured > 0 && stats.captured == stats.refunded
    })
    .await;
    let stats = gateway.stats();
    assert!(settled, "no payment without its order: {stats:?}");
    let pet =
        s.rt.scope(petstore_example::db::get_pet(&s.app.store.db, 5))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(pet.stock, 2, "the stock was given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_is_504_quickly_while_other_routes_keep_working() {
    let s = serve(Settings::default()).await;
    s.app.store.db.inject_latency(Duration::from_secs(30));
    // Had the caller waited for the 30 s query, this test would take 30 s.
    let r = get(s.addr, "/pets/1").await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert!(r.error().contains("timed out after 500ms"), "{:?}", r.body);
    let health = get(s.addr, "/health/resilience").await;
    assert_eq!(health.status, 200);
    s.app.store.db.inject_latency(Duration::ZERO);
    assert_eq!(get(s.addr, "/pets/1").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_save_refunds_the_payment_and_gives_the_stock_back() {
    let s = serve(Settings::default()).await;
    let gateway = s.app.gateway.clone().unwrap();
    s.app.store.db.fail_saves(true);
    let r = post(s.addr, "/orders", &order("alice", 6, 49.99)).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("save order failed: database error"),
        "{:?}",
        r.body
    );
    let stats = gateway.stats();
    assert_eq!(
        (stats.captured, stats.refunded),
        (1, 1),
        "no payment without its order"
    );
    let pet =
        s.rt.scope(petstore_example::db::get_pet(&s.app.store.db, 6))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(pet.stock, 8, "the stock was given back");
    let (pending, _) =
        s.rt.scope(petstore_example::db::outbox_counts(&s.app.store.db))
            .await
            .unwrap();
    assert_eq!(
        pending, 0,
        "the transaction rolled back: no event without its order"
    );
    s.app.store.db.fail_saves(false);
    assert_eq!(
        post(s.addr, "/orders", &order("alice", 6, 49.99))
            .await
            .status,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_over_the_rate_limit_is_429_with_retry_after() {
    // One charge per 1000 s: the second order finds no turn.
    let s = serve_with(
        Settings::default(),
        &[
            ("payment_gateway", "rate_limit_per_second", 0.001),
            ("payment_gateway", "rate_limit_burst", 1.0),
        ],
    )
    .await;
    assert_eq!(
        post(s.addr, "/orders", &order("alice", 2, 19.99))
            .await
            .status,
        201
    );
    let limited = post(s.addr, "/orders", &order("alice", 2, 19.99)).await;
    assert_eq!(limited.status, 429, "{:?}", limited.body);
    assert!(
        limited.error().contains("rate limit"),
        "{}",
        limited.error()
    );
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((990..=1000).contains(&retry_after), "{retry_after}");
    let snapshot = get(s.addr, "/health/resilience").await;
    let gateway = &snapshot.body["dependencies"]["payment_gateway"];
    assert_eq!(gateway["bulkhead"]["rate_limited_requests"], 1);
    assert_eq!(gateway["rate_limiter"]["available_permits"], 0);
    assert_eq!(gateway["circuit_breaker"]["failure_count"], 0);
}

#[test]
fn the_game_day_chaos_profile_layers_over_the_embedded_config() {
    use petstore_example::{CHAOS_OVERLAY, EMBEDDED_CONFIG};
    let calm = resilience_runtime::Runtime::from_yaml_str(EMBEDDED_CONFIG).unwrap();
    let calm = serde_json::to_value(calm.health_snapshot()).unwrap();
    for dep in calm["dependencies"].as_object().unwrap().values() {
        assert!(dep.get("chaos").is_none(), "no chaos without --chaos");
    }
    let rt =
        resilience_runtime::Runtime::from_yaml_layers(&[EMBEDDED_CONFIG, CHAOS_OVERLAY]).unwrap();
    let snapshot = serde_json::to_value(rt.health_snapshot()).unwrap();
    let deps = &snapshot["dependencies"];
    assert_eq!(deps["ml_pet_advisor"]["chaos"]["fault_rate"], 0.2);
    assert_eq!(
        deps["payment_gateway"]["chaos"]["fault_rate"], 0.0,
        "payments are slowed, never failed"
    );
    assert_eq!(deps["payment_gateway"]["chaos"]["latency_seconds"], 2.0);
    assert!(deps["petstore_database"].get("chaos").is_none());
}
