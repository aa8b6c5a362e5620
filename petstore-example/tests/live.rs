//! Tests against the real servers this machine runs: PostgreSQL, Redis and
//! NATS JetStream. Ignored by `cargo test --workspace`; `.ci/run` runs them
//! with `-- --ignored`. When asked for, they fail (never skip) if a server is
//! missing. URLs: PETSTORE_TEST_POSTGRES, PETSTORE_TEST_REDIS, PETSTORE_TEST_NATS.

mod common;

use common::{eventually, get, post, serve, sqlite_url};
use petstore_example::events::STREAM;
use petstore_example::Settings;
use std::time::Duration;

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
    let slow = post(s.addr, "/orders", &order("alice", 3, 19.99)).await;
    assert_eq!(slow.status, 504, "{:?}", slow.body);
    assert!(
        slow.body["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 500ms"),
        "the 0.5 s timeout cut the 3 s query: {:?}",
        slow.body
    );
    // Routes that do not need the database keep working meanwhile.
    assert_eq!(get(s.addr, "/health/resilience").await.status, 200);
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
    // "cache: timeout" says the 0.3 s timeout, not the 2 s pause, ended the read.
    let paused = get(s.addr, "/pets").await;
    assert_eq!(paused.status, 200, "{:?}", paused.body);
    assert_eq!(paused.body["source"], "database");
    assert_eq!(
        paused.body["degraded"],
        serde_json::json!(["cache: timeout"])
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
        assert_eq!(placed.body["degraded"], serde_json::json!([]));
    }
    let waiting = eventually(Duration::from_secs(10), || async {
        let events = get(s.addr, "/events").await.body;
        events["pending"] == 2 && events["last_error"].is_string()
    })
    .await;
    assert!(waiting, "{:?}", get(s.addr, "/events").await.body);

    // The relay backs off (at most 5 s) and then finds NATS at the right URL.
    s.app.store.events.set_url(&nats_url).await;
    // The relay marks each event in the outbox as it goes and updates its
    // own figures after the batch: wait for both.
    let published = eventually(Duration::from_secs(20), || async {
        let events = get(s.addr, "/events").await.body;
        events["pending"] == 0 && events["published"] == 2
    })
    .await;
    let events = get(s.addr, "/events").await.body;
    assert!(published, "{events:?}");
    assert_eq!(
        (events["published"].as_u64(), events["last_error"].is_null()),
        (Some(2), true)
    );
    let mut stream = js.get_stream(STREAM).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, before + 2);
    let health = get(s.addr, "/health/resilience").await;
    let bulkhead = &health.body["dependencies"]["kafka_events"]["bulkhead"];
    assert_eq!(bulkhead["successful_requests"], 2);
    assert!(
        bulkhead["failed_requests"].as_u64().unwrap() >= 1,
        "relay passes failed to connect: {bulkhead:?}"
    );
}

const SECRET: &str = "secretpw";

/// A server started for one test, stopped when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls until something listens on `port`; fails after 10 s.
async fn listening(port: u16, what: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not start listening on {port}");
}

fn spawn(program: &str, args: &[&str]) -> Child {
    Child(
        std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} must be installed for this test: {e}")),
    )
}

#[test]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 (run by .ci/run)"]
fn real_servers_refusing_a_start_are_named_without_passwords() {
    let run = |name: &str, value: String| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_petstore-example"))
            .args(["serve", "--port", "0"])
            .env(name, &value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{value} must not start");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    // This machine's Redis has no password, so it refuses AUTH.
    let redis = run("REDIS_URL", format!("redis://:{SECRET}@127.0.0.1:6379"));
    assert!(redis.contains("redis://***@127.0.0.1:6379"), "{redis}");
    assert!(!redis.contains(SECRET), "{redis}");
    let pg = run(
        "DATABASE_URL",
        format!("postgres://postgres:secret@pw@127.0.0.1:5432/nonexistent_db?password={SECRET}"),
    );
    assert!(pg.contains("does not exist"), "a real refusal: {pg}");
    assert!(!pg.contains(SECRET) && !pg.contains("secret@pw"), "{pg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 and the redis-server and nats-server programs (run by .ci/run)"]
async fn no_secret_of_any_url_reaches_a_response_the_snapshot_or_the_logs() {
    let (redis_port, nats_port, http_port) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let store_dir = std::env::temp_dir().join(format!("petstore-secrets-{}", std::process::id()));
    let _redis = spawn(
        "redis-server",
        &[
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            SECRET,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    );
    let nats = spawn(
        if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        },
        &[
            "-a",
            "127.0.0.1",
            "-p",
            &nats_port.to_string(),
            "--user",
            "petstore",
            "--pass",
            SECRET,
            "-js",
            "-sd",
            &store_dir.display().to_string(),
        ],
    );
    listening(redis_port, "redis-server").await;
    listening(nats_port, "nats-server").await;
    // A database of its own: the other live tests run beside this one, and
    // their relays would deliver this test's events from a shared outbox.
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .expect("PostgreSQL must be running for this test");
    let _ = sqlx::query("CREATE DATABASE petstore_secrets_test")
        .execute(&admin)
        .await;
    // Trust authentication accepts any password, so the URL may carry one.
    let pg = format!(
        "postgres://postgres:{SECRET}@127.0.0.1:5432/petstore_secrets_test?password={SECRET}"
    );
    let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/petstore_secrets_test")
        .await
        .expect("the test's own database exists");
    let _ = sqlx::query("UPDATE pets SET stock = 20 WHERE id = 4")
        .execute(&pool)
        .await;

    let log = store_dir.join("petstore.log");
    std::fs::create_dir_all(&store_dir).unwrap();
    let mut app = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_petstore-example"))
            .args(["serve", "--port", &http_port.to_string()])
            .env("DATABASE_URL", &pg)
            .env(
                "REDIS_URL",
                format!("redis://:{SECRET}@127.0.0.1:{redis_port}"),
            )
            .env(
                "NATS_URL",
                format!("nats://petstore:{SECRET}@127.0.0.1:{nats_port}"),
            )
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(store_dir.join("petstore.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    listening(http_port, "the petstore").await;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], http_port).into();

    let mut bodies = Vec::new();
    for path in [
        "/pets",
        "/pets/1?customer_id=customer_123",
        "/health",
        "/nope",
    ] {
        bodies.push(get(addr, path).await.body.to_string());
    }
    let placed = post(addr, "/orders", &order("alice", 4, 19.99)).await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
    // At least this order's event; also any an earlier run left in the
    // outbox (its last order's event is stranded when NATS goes).
    let delivered = eventually(Duration::from_secs(10), || async {
        let events = get(addr, "/events").await.body;
        events["pending"] == 0 && events["published"].as_u64() >= Some(1)
    })
    .await;
    assert!(
        delivered,
        "delivered through the password-protected NATS: {:?}",
        get(addr, "/events").await.body
    );
    let id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    bodies.push(placed.body.to_string());
    bodies.push(get(addr, &format!("/orders/{id}")).await.body.to_string());
    bodies.push(post(addr, "/orders", "{not json").await.body.to_string());
    // With NATS gone, the relay finds its connection dead, then names NATS
    // when it cannot reconnect, in /events and in the log.
    drop(nats);
    let stranded = post(addr, "/orders", &order("alice", 4, 19.99)).await;
    assert_eq!(stranded.status, 201, "{:?}", stranded.body);
    bodies.push(stranded.body.to_string());
    let named = eventually(Duration::from_secs(20), || async {
        let events = get(addr, "/events").await.body.to_string();
        events.contains("NATS unreachable at nats://***@127.0.0.1")
    })
    .await;
    let events = get(addr, "/events").await.body.to_string();
    assert!(named, "{events}");
    bodies.push(events);
    bodies.push(get(addr, "/health/resilience").await.body.to_string());

    // Stop it as an operator would, and read everything it printed.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &app.0.id().to_string()])
        .status();
    for _ in 0..200 {
        if app.0.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let printed = format!(
        "{}{}",
        std::fs::read_to_string(&log).unwrap(),
        std::fs::read_to_string(store_dir.join("petstore.err")).unwrap()
    );
    assert!(printed.contains("petstore listening"), "{printed}");
    for text in bodies.iter().chain([&printed]) {
        assert!(!text.contains(SECRET), "a secret leaked: {text}");
    }
    let _ = std::fs::remove_dir_all(&store_dir);
}
