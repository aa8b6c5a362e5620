//! The cluster rate limiter against this machine's Redis (127.0.0.1:6379).
//! Gated: `cargo test -p resilience-tests --features cluster --test
//! cluster_live -- --ignored --test-threads=1` (one at a time: one test
//! pauses Redis). Each test fails, not skips, when Redis is missing.

#![cfg(feature = "cluster")]

use resilience_runtime::{database_call, ResilienceError, Runtime};
use resilience_tests::Logs;
use std::time::{Duration, Instant};

const REDIS: &str = "redis://127.0.0.1:6379";

#[database_call(dependency = "partner")]
async fn call_partner() -> Result<(), ResilienceError> {
    Ok(())
}

/// A config sharing `rate`/s between instances, under a key prefix of this
/// test run's own.
fn config(url: &str, prefix: &str, rate: u32, burst: u32) -> String {
    format!(
        "resilience:
  cluster: {{ redis_url: \"{url}\", key_prefix: \"{prefix}\", timeout_seconds: 0.05 }}
  external_dependencies:
    partner: {{ type: external_api, rate_limit_per_second: {rate}, rate_limit_burst: {burst},
               rate_limit_scope: cluster, rate_limit_cluster_instances: 2 }}
"
    )
}

fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("resilience-test-{test}-{}-{nanos}", std::process::id())
}

fn limiter(rt: &Runtime) -> serde_json::Value {
    serde_json::to_value(rt.health_snapshot()).unwrap()["dependencies"]["partner"]["rate_limiter"]
        .clone()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
#[ignore = "needs Redis at 127.0.0.1:6379 (run by .ci/run)"]
fn two_instances_share_one_limit() {
    let prefix = prefix("shared");
    let (rate, burst) = (20u32, 5u32);
    let a = Runtime::from_yaml_str(&config(REDIS, &prefix, rate, burst)).unwrap();
    let b = Runtime::from_yaml_str(&config(REDIS, &prefix, rate, burst)).unwrap();
    let (admitted, elapsed) = tokio_rt().block_on(async {
        let start = Instant::now();
        let mut admitted = [0u64; 2];
        while start.elapsed() < Duration::from_secs(3) {
            for (i, rt) in [&a, &b].into_iter().enumerate() {
                match rt.scope(call_partner()).await {
                    Ok(()) => admitted[i] += 1,
                    Err(e) => assert!(e.is_rate_limited(), "{e}"),
                }
            }
        }
        (admitted, start.elapsed())
    });
    for rt in [&a, &b] {
        let l = limiter(rt);
        assert_eq!(
            (l["backend"].as_str(), l["backend_healthy"].as_bool()),
            (Some("redis"), Some(true)),
            "decided by Redis: {l}"
        );
    }
    let total = admitted[0] + admitted[1];
    eprintln!("two instances at {rate}/s burst {burst}: {admitted:?} admitted in {elapsed:?}");
    let bound = f64::from(rate) * elapsed.as_secs_f64() + f64::from(burst) + 1.0;
    assert!(
        total as f64 <= bound,
        "{total} admitted in {elapsed:?}, more than {bound}"
    );
    // Each alone at 10/s (its fallback share) would admit about half: the
    // shared limit lets the two together reach the whole rate.
    assert!(
        total as f64 >= f64::from(rate) * elapsed.as_secs_f64() * 0.9,
        "{total} admitted in {elapsed:?}: the limit was not shared"
    );
    assert!(
        admitted[0] > 0 && admitted[1] > 0,
        "neither instance gets all of it: {admitted:?}"
    );
}

#[test]
#[ignore = "needs Redis at 127.0.0.1:6379 (run by .ci/run)"]
fn a_paused_redis_is_bridged_by_the_fallback_and_rejoined_after() {
    let rt = Runtime::from_yaml_str(&config(REDIS, &prefix("paused"), 1000, 100)).unwrap();
    let client = redis::Client::open(REDIS).unwrap();
    tokio_rt().block_on(async {
        rt.scope(call_partner()).await.unwrap();
        assert_eq!(limiter(&rt)["backend"], "redis", "Redis is up first");
        let mut admin = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis at 127.0.0.1:6379");
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(1500)
            .arg("ALL")
            .query_async(&mut admin)
            .await
            .unwrap();
        let paused_at = Instant::now();
        for _ in 0..20 {
            let start = Instant::now();
            rt.scope(call_partner())
                .await
                .expect("served by the fallback");
            assert!(
                start.elapsed() < Duration::from_millis(500),
                "a call waited {:?} for a paused Redis",
                start.elapsed()
            );
        }
        assert!(
            paused_at.elapsed() < Duration::from_millis(1500),
            "still paused"
        );
        let l = limiter(&rt);
        assert_eq!(
            (l["backend"].as_str(), l["backend_healthy"].as_bool()),
            (Some("local"), Some(false)),
            "{l}"
        );
        // After the pause, a probe (one a second) finds Redis again.
        let deadline = Instant::now() + Duration::from_secs(10);
        while limiter(&rt)["backend"] != "redis" {
            assert!(Instant::now() < deadline, "never went back to Redis");
            rt.scope(call_partner()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(limiter(&rt)["backend_healthy"], true);
    });
}

#[test]
#[ignore = "needs Redis at 127.0.0.1:6379 (run by .ci/run)"]
fn a_wrong_redis_url_starts_on_the_fallback_and_never_shows_its_password() {
    // Redis is really there, so a failure is the URL's, not the machine's.
    redis::Client::open(REDIS)
        .unwrap()
        .get_connection()
        .expect("Redis at 127.0.0.1:6379");
    let secret = "s3cret-pa55word";
    let url = format!("redis://:{secret}@127.0.0.1:1/");
    let logs = Logs::default();
    let rt = Runtime::from_yaml_str(&config(&url, &prefix("wrong"), 5, 1)).unwrap();
    let l = limiter(&rt);
    assert_eq!(
        (l["backend"].as_str(), l["backend_healthy"].as_bool()),
        (Some("local"), Some(false)),
        "{l}"
    );
    let results = tracing::subscriber::with_default(logs.clone(), || {
        tokio_rt().block_on(async {
            let mut results = Vec::new();
            for _ in 0..4 {
                results.push(rt.scope(call_partner()).await);
            }
            results
        })
    });
    // Fallback: rate 5 over 2 instances, burst 1: the first passes, the rest
    // are limited locally. Redis trouble is never a failed call.
    assert!(results[0].is_ok(), "{results:?}");
    for r in &results[1..] {
        assert!(r.as_ref().unwrap_err().is_rate_limited(), "{r:?}");
    }
    let said = logs.take(tracing::Level::WARN).join("\n");
    assert!(
        said.contains("cannot use Redis"),
        "the outage is logged: {said}"
    );
    let snapshot = serde_json::to_string(&rt.health_snapshot()).unwrap();
    for text in [
        &said,
        &snapshot,
        &format!("{:?}", rt.dependency_config("partner")),
    ] {
        assert!(!text.contains(secret), "the password leaked: {text}");
    }
}
