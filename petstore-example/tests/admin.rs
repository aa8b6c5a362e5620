//! The admin routes: off without a token, 401 without the right one (and
//! nothing changes), and with it a breaker forced open, disabled,
//! metrics-only and reset, as the snapshot and the orders show.

mod common;

use common::{get, post, request_with, serve, serve_admin, Served};

const TOKEN: &str = "s3cret-admin-token";

fn order() -> &'static str {
    r#"{"customer_id": "customer_123", "pet_id": 1, "payment": {"amount": 299.99}}"#
}

async fn set(s: &Served, dependency: &str, state: &str, auth: &str) -> common::Reply {
    let body = format!(r#"{{"state": "{state}"}}"#);
    request_with(
        s.addr,
        "POST",
        &format!("/admin/breakers/{dependency}"),
        Some(&body),
        auth,
    )
    .await
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn breaker_state(snapshot: &serde_json::Value, dependency: &str) -> String {
    snapshot["dependencies"][dependency]["circuit_breaker"]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_configured_the_admin_routes_do_not_exist() {
    let s = serve(Default::default()).await;
    let reply = set(&s, "payment_gateway", "forced_open", &bearer(TOKEN)).await;
    assert_eq!(reply.status, 404);
    let snapshot = get(s.addr, "/health/resilience").await.body;
    assert_eq!(breaker_state(&snapshot, "payment_gateway"), "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_is_refused_and_changes_nothing() {
    let s = serve_admin(TOKEN).await;
    for auth in [
        String::new(),
        bearer("wrong"),
        bearer(&TOKEN[..TOKEN.len() - 1]),
        format!("Authorization: Basic {TOKEN}\r\n"),
    ] {
        let reply = set(&s, "payment_gateway", "forced_open", &auth).await;
        assert_eq!(reply.status, 401, "{auth:?}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert!(!reply.error().contains(TOKEN), "the token never shows");
    }
    let snapshot = get(s.addr, "/health/resilience").await.body;
    assert_eq!(breaker_state(&snapshot, "payment_gateway"), "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_token_forces_a_breaker_open_and_resets_it() {
    let s = serve_admin(TOKEN).await;
    let reply = set(&s, "payment_gateway", "forced_open", &bearer(TOKEN)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["state"], "forced_open");

    let refused = post(s.addr, "/orders", order()).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert!(refused.header("retry-after").is_some());
    let snapshot = get(s.addr, "/health/resilience").await.body;
    assert_eq!(breaker_state(&snapshot, "payment_gateway"), "forced_open");
    assert_eq!(
        snapshot["dependencies"]["payment_gateway"]["status"],
        "unavailable"
    );

    for state in ["disabled", "metrics_only"] {
        let reply = set(&s, "payment_gateway", state, &bearer(TOKEN)).await;
        assert_eq!(
            (reply.status, reply.body["state"].as_str()),
            (200, Some(state))
        );
        let snapshot = get(s.addr, "/health/resilience").await.body;
        assert_eq!(breaker_state(&snapshot, "payment_gateway"), state);
    }

    let reply = set(&s, "payment_gateway", "reset", &bearer(TOKEN)).await;
    assert_eq!(
        (reply.status, reply.body["state"].as_str()),
        (200, Some("closed"))
    );
    let placed = post(s.addr, "/orders", order()).await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_say_what_to_send() {
    let s = serve_admin(TOKEN).await;
    let reply = set(&s, "payment_gateway", "ajar", &bearer(TOKEN)).await;
    assert_eq!(reply.status, 422);
    assert!(
        reply
            .error()
            .contains("forced_open, disabled, metrics_only or reset"),
        "{}",
        reply.error()
    );
    let reply = set(&s, "no_such_dependency", "reset", &bearer(TOKEN)).await;
    assert_eq!(reply.status, 404);
    assert!(reply.error().contains("no_such_dependency"));
    let reply = request_with(
        s.addr,
        "POST",
        "/admin/breakers/payment_gateway",
        Some("not json"),
        &bearer(TOKEN),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("\"state\""), "{}", reply.error());
}

/// Rewrites the YAML file at `path` through `edit`.
fn rewrite(path: &std::path::Path, edit: impl FnOnce(&mut serde_yaml::Value)) {
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(path, serde_yaml::to_string(&doc).unwrap()).unwrap();
}

async fn reload(s: &Served, auth: &str) -> common::Reply {
    request_with(s.addr, "POST", "/admin/reload", None, auth).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_is_off_without_a_token_and_refused_with_a_wrong_one() {
    let s = serve(Default::default()).await;
    assert_eq!(reload(&s, &bearer(TOKEN)).await.status, 404);

    let s = serve_admin(TOKEN).await;
    rewrite(&s.config_file, |doc| {
        doc["resilience"]["external_dependencies"]["petstore_database"]["max_concurrent"] =
            3.into();
    });
    for auth in [String::new(), bearer("wrong")] {
        let reply = reload(&s, &auth).await;
        assert_eq!(reply.status, 401, "{auth:?}");
    }
    let snapshot = get(s.addr, "/health/resilience").await.body;
    assert_eq!(snapshot["config_version"], 1, "nothing changed");
    assert_eq!(
        snapshot["dependencies"]["petstore_database"]["bulkhead"]["max_concurrent"],
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_puts_the_edited_file_in_force_and_a_bad_one_changes_nothing() {
    let s = serve_admin(TOKEN).await;
    // Some traffic, so that the counters have something to keep.
    assert_eq!(get(s.addr, "/pets/1").await.status, 200);
    let before = get(s.addr, "/health/resilience").await.body;
    let served = before["dependencies"]["petstore_database"]["bulkhead"]["successful_requests"]
        .as_u64()
        .unwrap();
    assert!(served > 0);

    rewrite(&s.config_file, |doc| {
        doc["resilience"]["external_dependencies"]["petstore_database"]["max_concurrent"] =
            5.into();
    });
    let reply = reload(&s, &bearer(TOKEN)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["config_version"], 2);
    assert_eq!(
        reply.body["changed"]["petstore_database"][0],
        serde_json::json!({"key": "max_concurrent", "old": "10", "new": "5"})
    );
    assert_eq!(
        reply.body["summary"],
        "config version 2: petstore_database: max_concurrent 10 → 5"
    );
    let after = get(s.addr, "/health/resilience").await.body;
    assert_eq!(after["config_version"], 2);
    assert!(after["reloaded_at"].is_string());
    let db = &after["dependencies"]["petstore_database"]["bulkhead"];
    assert_eq!(db["max_concurrent"], 5);
    assert!(
        db["successful_requests"].as_u64().unwrap() >= served,
        "counters carried over"
    );

    rewrite(&s.config_file, |doc| {
        doc["resilience"]["external_dependencies"]["petstore_database"]["max_concurrent"] =
            0.into();
    });
    let reply = reload(&s, &bearer(TOKEN)).await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    let error = reply.error();
    assert!(
        error.contains("nothing changed (still config version 2)"),
        "{error}"
    );
    assert!(
        error.contains("resilience.external_dependencies.petstore_database.max_concurrent"),
        "{error}"
    );
    assert!(
        error.contains(&s.config_file.display().to_string()),
        "names the file: {error}"
    );
    let last = get(s.addr, "/health/resilience").await.body;
    assert_eq!(last["config_version"], 2);
    assert_eq!(
        last["dependencies"]["petstore_database"]["bulkhead"]["max_concurrent"],
        5
    );
    assert_eq!(get(s.addr, "/pets/1").await.status, 200, "still serving");
}
