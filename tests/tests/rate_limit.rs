//! The local rate limiter through annotated calls, on tokio's paused clock:
//! breaker → rate limiter → bulkhead → timeout, one outcome per call, waits
//! that hold no slot, retries that wait for the next turn, and the snapshot.

use resilience_runtime::{database_call, ResilienceError, Runtime};
use resilience_tests::{counters, health, TestError};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

static RAN: AtomicU32 = AtomicU32::new(0);

#[database_call(dependency = "limited")]
async fn query() -> Result<u32, TestError> {
    RAN.fetch_add(1, Ordering::SeqCst);
    Ok(1)
}

#[database_call(dependency = "waits")]
async fn patient() -> Result<u32, TestError> {
    Ok(2)
}

#[database_call(dependency = "retried", idempotent)]
async fn retried() -> Result<u32, TestError> {
    Ok(3)
}

const CONFIG: &str = "
resilience:
  external_dependencies:
    limited: { type: database, rate_limit_per_second: 10, rate_limit_burst: 2,
               circuit_breaker_failure_threshold: 1 }
    waits: { type: database, max_concurrent: 1, rate_limit_per_second: 4,
             rate_limit_max_wait_seconds: 1 }
    retried: { type: database, rate_limit_per_second: 2, max_retry_attempts: 2,
               retry_on: [rate_limited], retry_jitter: none }
";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_burst_passes_then_calls_are_refused_without_running_or_failing() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    RAN.store(0, Ordering::SeqCst);
    assert_eq!(rt.scope(query()).await, Ok(1));
    assert_eq!(rt.scope(query()).await, Ok(1));
    let refused = rt.scope(query()).await.unwrap_err();
    let e = refused.resilience().unwrap();
    assert_eq!(
        e,
        &ResilienceError::RateLimited {
            dependency: "limited",
            operation: "query",
            retry_after: ms(100),
        }
    );
    assert!(e.is_rate_limited());
    assert_eq!(e.retry_after(), Some(ms(100)));
    assert_eq!(
        e.to_string(),
        "limited/query not attempted: its rate limit allows no call now; retry in 0.100s or \
         raise its rate_limit_per_second"
    );
    assert_eq!(RAN.load(Ordering::SeqCst), 2, "the refused body never ran");
    let h = health(&rt, "limited");
    assert_eq!(h.bulkhead.rate_limited_requests, 1);
    assert_eq!(
        h.bulkhead.total_requests, 3,
        "the sum of all seven outcomes"
    );
    assert_eq!(counters(&rt, "limited"), [2, 0, 0, 0, 0, 0]);
    let breaker = h.circuit_breaker.clone().unwrap();
    assert_eq!(
        (breaker.failure_count, breaker.state.as_str()),
        (0, "closed"),
        "a rate-limited call is never a breaker failure (threshold 1)"
    );
    let json = serde_json::to_value(&h).unwrap();
    assert_eq!(
        json["rate_limiter"],
        json!({ "scope": "local", "rate_per_second": 10.0, "burst": 2, "available_permits": 0,
                "backend": "local", "backend_healthy": true })
    );
    assert_eq!(json["bulkhead"]["rate_limited_requests"], 1);
    tokio::time::advance(ms(100)).await;
    assert_eq!(rt.scope(query()).await, Ok(1), "the next turn came");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        health(&rt, "limited")
            .rate_limiter
            .unwrap()
            .available_permits,
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_for_its_turn_on_tokios_clock_holding_no_slot() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let start = Instant::now();
    assert_eq!(rt.scope(patient()).await, Ok(2));
    // The next turn is 250 ms away: within the 1 s wait.
    let waiting = rt.spawn(patient());
    tokio::task::yield_now().await;
    assert_eq!(
        health(&rt, "waits").bulkhead.current_load,
        0,
        "a waiting call holds no slot of the bulkhead"
    );
    assert_eq!(waiting.await.unwrap(), Ok(2));
    assert_eq!(start.elapsed(), ms(250));
    // Four turns are taken (0, 250, 500, 750 ms from the last); a fifth
    // would wait past the longest wait: refused at once.
    let queued: Vec<_> = (0..4).map(|_| rt.spawn(patient())).collect();
    tokio::task::yield_now().await;
    let refused = rt.scope(patient()).await.unwrap_err();
    assert_eq!(
        refused.resilience().unwrap().retry_after(),
        Some(Duration::from_millis(1250)),
        "the wait it would have needed"
    );
    for call in queued {
        assert_eq!(call.await.unwrap(), Ok(2));
    }
    assert_eq!(start.elapsed(), ms(1250));
    assert_eq!(health(&rt, "waits").bulkhead.rate_limited_requests, 1);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_stops_waiting_gives_its_turn_back() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    assert_eq!(rt.scope(patient()).await, Ok(2));
    let gave_up = rt.spawn(patient());
    tokio::task::yield_now().await;
    gave_up.abort();
    assert!(gave_up.await.unwrap_err().is_cancelled());
    let start = Instant::now();
    assert_eq!(rt.scope(patient()).await, Ok(2));
    assert_eq!(start.elapsed(), ms(250), "the same turn, not the one after");
    let b = health(&rt, "waits").bulkhead;
    assert_eq!(
        (
            b.successful_requests,
            b.cancelled_requests,
            b.total_requests
        ),
        (2, 1, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_attempt_is_retried_when_its_turn_comes() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let start = Instant::now();
    assert_eq!(rt.scope(retried()).await, Ok(3));
    assert_eq!(
        rt.scope(retried()).await,
        Ok(3),
        "refused once, then retried"
    );
    assert_eq!(
        start.elapsed(),
        ms(500),
        "the retry waited for the limiter's next turn"
    );
    let h = health(&rt, "retried");
    assert_eq!(h.bulkhead.rate_limited_requests, 1);
    let retry = h.retry.unwrap();
    assert_eq!((retry.successful_with_retry, retry.retries), (1, 1));
}

#[test]
fn rate_limit_mistakes_are_located_errors() {
    for (yaml, path, says) in [
        (
            "resilience:\n  external_dependencies:\n    limited: { type: database, rate_limit_per_second: 0 }\n",
            "resilience.external_dependencies.limited.rate_limit_per_second",
            "above 0",
        ),
        (
            "resilience:\n  external_dependencies:\n    limited: { type: database, rate_limit_burst: 5 }\n",
            "resilience.external_dependencies.limited.rate_limit_burst",
            "applies only with a rate limit",
        ),
        (
            "resilience:\n  external_dependencies:\n    limited: { type: database, rate_limit_per_second: 5,\n      rate_limit_scope: cluster }\n",
            "resilience.external_dependencies.limited.rate_limit_scope",
            "resilience.cluster.redis_url is not set",
        ),
    ] {
        let yaml = format!("{yaml}    waits: {{ type: database }}\n    retried: {{ type: database }}\n");
        let err = Runtime::from_yaml_str(&yaml).expect_err("refused");
        assert_eq!(err.path(), Some(path), "{err}");
        assert!(err.line().is_some(), "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[test]
fn string_values_read_the_environment_and_an_unset_variable_is_a_located_error() {
    let yaml = |url: &str| {
        format!(
            "resilience:\n  cluster:\n    redis_url: \"{url}\"\n  external_dependencies:\n    \
             limited: {{ type: database }}\n    waits: {{ type: database }}\n    retried: {{ type: database }}\n"
        )
    };
    let err =
        Runtime::from_yaml_str(&yaml("${RESILIENCE_TEST_SURELY_UNSET}")).expect_err("refused");
    // serde places a value's own error at its mapping, on the value's line.
    assert_eq!(err.path(), Some("resilience.cluster"), "{err}");
    assert_eq!(err.line(), Some(3), "the redis_url line: {err}");
    assert!(
        err.to_string()
            .contains("the environment variable RESILIENCE_TEST_SURELY_UNSET is not set"),
        "{err}"
    );
    Runtime::from_yaml_str(&yaml(
        "${RESILIENCE_TEST_SURELY_UNSET:-redis://127.0.0.1:6379}",
    ))
    .expect("a default stands in");
    let err = Runtime::from_yaml_str(&yaml("redis://${NOT A NAME}@x"))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("does not name an environment variable"),
        "{err}"
    );
}
