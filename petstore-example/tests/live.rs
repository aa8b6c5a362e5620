//! Tests against the real servers this machine runs: PostgreSQL, Redis and
//! NATS JetStream. Ignored by `cargo test --workspace`; `.ci/run` runs them
//! with `-- --ignored`. When asked for, they fail (never skip) if a server is
//! missing. URLs: PETSTORE_TEST_POSTGRES, PETSTORE_TEST_REDIS, PETSTORE_TEST_NATS.

mod common;

use common::{get, post, serve, sqlite_url};
use petstore_example::events::STREAM;
use petstore_example::Settings;
use std::time::{Duration, Instant};

fn url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn order(customer: &str, pet: i64, amount: f64) -> String {
    format!(
        r#"{{"customer_id": "{customer}", "pet_id": {pet}, "payment": {{"amount": {amount}}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 (run by .ci/run)"]
async fn postgres_serves_orders_and_a_pg_sleep_query_is_cut_off_with_504() {
    let pg = url(
        "PETSTORE_TEST_POSTGRES",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let s = serve(Settings {
        database_url: Some(pg.clone()),
        ..Settings::default()
    })
    .await;
    assert!(s.app.store.db.is_postgres());
    // The database outlives test runs: put the test pet's stock back.
    let pool = sqlx::PgPool::connect(&pg)
        .await
        .expect("PostgreSQL must be running for this test");
    sqlx::query("UPDATE pets SET stock = 20 WHERE id = 3")
        .execute(&pool)
        .await
        .unwrap();

    assert_eq!(
        get(s.addr, "/pets").await.body["pets"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
    let placed = post(s.addr, "/orders", &order("alice", 3, 19.99)).await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
    let id = placed.body["order"]["id"].as_str().unwrap();
    assert_eq!(get(s.addr, &format!("/orders/{id}")).await.status, 200);
    let stock: i64 = sqlx::query_scalar("SELECT stock FROM pets WHERE id = 3")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stock, 19);

    // A real slow query: each database call now starts with pg_sleep(3).
    s.app.store.db.inject_latency(Duration::from_secs(3));
    let start = Instant::now();
    let slow = post(s.addr, "/orders", &order("alice", 3, 19.99)).await;
    assert_eq!(slow.status, 504, "{:?}", slow.body);
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    // Routes that do not need the database keep working meanwhile.
    let start = Instant::now();
    assert_eq!(get(s.addr, "/health/resilience").await.status, 200);
    assert!(start.elapsed() < Duration::from_millis(200));
    s.app.store.db.inject_latency(Duration::ZERO);
    assert_eq!(
        post(s.addr, "/orders", &order("alice", 3, 19.99))
            .await
            .status,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at 127.0.0.1:6379 (run by .ci/run)"]
async fn redis_client_pause_times_the_cache_out_yet_the_request_succeeds_from_the_database() {
    let redis_url = url("PETSTORE_TEST_REDIS", "redis://127.0.0.1:6379");
    let s = serve(Settings {
        redis_url: Some(redis_url.clone()),
        ..Settings::default()
    })
    .await;
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis must be running for this test");
    redis::cmd("DEL")
        .arg("catalogue")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();

    assert_eq!(get(s.addr, "/pets").await.body["source"], "database");
    assert_eq!(
        get(s.addr, "/pets").await.body["source"],
        "cache",
        "served from Redis"
    );

    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let start = Instant::now();
    let paused = get(s.addr, "/pets").await;
    let took = start.elapsed();
    assert_eq!(paused.status, 200, "{:?}", paused.body);
    assert_eq!(paused.body["source"], "database");
    assert_eq!(
        paused.body["degraded"],
        serde_json::json!(["cache: timeout"])
    );
    assert!(
        took < Duration::from_millis(1500),
        "the cache's 0.3 s timeout, not the 2 s pause: {took:?}"
    );
    let health = get(s.addr, "/health/resilience").await;
    assert_eq!(
        health.body["dependencies"]["redis_cache"]["bulkhead"]["timed_out_requests"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS with JetStream at 127.0.0.1:4222 (run by .ci/run)"]
async fn events_wait_in_the_outbox_while_nats_is_unreachable_and_are_published_once_it_is_back() {
    let nats_url = url("PETSTORE_TEST_NATS", "nats://127.0.0.1:4222");
    let nats = async_nats::connect(&nats_url)
        .await
        .expect("NATS must be running for this test");
    let js = async_nats::jetstream::new(nats);
    let before = match js.get_stream(STREAM).await {
        Ok(mut stream) => stream.info().await.unwrap().state.messages,
        Err(_) => 0,
    };

    let s = serve(Settings {
        database_url: Some(sqlite_url()),
        nats_url: Some("nats://127.0.0.1:1".into()),
        ..Settings::default()
    })
    .await;
    for pet in [1, 2] {
        let placed = post(s.addr, "/orders", &order("bob", pet, 10.0)).await;
        assert_eq!(
            placed.status, 201,
            "the order never waits for the broker: {:?}",
            placed.body
        );
        let degraded = placed.body["degraded"][0].as_str().unwrap();
        assert!(
            degraded.starts_with("events:") && degraded.contains("kept in the outbox"),
            "{degraded}"
        );
    }
    let store = &s.app.store;
    let report = s.rt.scope(store.events.relay(&store.db)).await.unwrap();
    assert_eq!((report.published, report.pending), (0, 2));

    store.events.set_url(&nats_url).await;
    let report = s.rt.scope(store.events.relay(&store.db)).await.unwrap();
    assert_eq!(
        (report.published, report.pending, report.error),
        (2, 0, None)
    );
    let mut stream = js.get_stream(STREAM).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, before + 2);
    let health = get(s.addr, "/health/resilience").await;
    let events = &health.body["dependencies"]["kafka_events"]["bulkhead"];
    assert_eq!(events["successful_requests"], 2);
    assert_eq!(
        events["failed_requests"], 3,
        "two orders and one relay pass failed to connect"
    );
}
