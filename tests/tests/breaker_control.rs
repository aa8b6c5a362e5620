//! An operator's control of a breaker, through `Runtime::circuit_breaker`,
//! with annotated calls on the paused clock: what runs, what is counted,
//! what the snapshot says.

use resilience_runtime::{database_call, BreakerState, DependencyStatus, ResilienceError, Runtime};
use resilience_tests::{counters, health, TestError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::advance;

const CONFIG: &str = "
resilience:
  external_dependencies:
    ledger:
      type: database
      circuit_breaker_failure_threshold: 2
      circuit_breaker_timeout: 30
    unguarded:
      type: database
      enable_circuit_breaker: false
    sluggish:
      type: database
";

#[database_call(dependency = "ledger")]
async fn post(fail: bool, runs: &AtomicU32) -> Result<u32, TestError> {
    runs.fetch_add(1, Ordering::SeqCst);
    if fail {
        Err(TestError::Failed("declined"))
    } else {
        Ok(1)
    }
}

#[test]
fn only_a_dependency_with_a_breaker_has_a_control() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    assert!(rt.circuit_breaker("ledger").is_some());
    assert!(rt.circuit_breaker("unguarded").is_none());
    assert!(rt.circuit_breaker("nowhere").is_none());
    assert_eq!(rt.circuit_breaker("ledger").unwrap().dependency(), "ledger");
}

#[tokio::test(start_paused = true)]
async fn forced_open_short_circuits_until_reset_and_the_snapshot_says_unavailable() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let runs = AtomicU32::new(0);
    let control = rt.circuit_breaker("ledger").unwrap();
    control.force_open();
    let err = rt.scope(post(false, &runs)).await.unwrap_err();
    assert_eq!(
        err,
        TestError::Resilience(ResilienceError::CircuitOpen {
            dependency: "ledger",
            operation: "post",
            retry_after: Duration::from_secs(30),
        })
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the body never ran");
    advance(Duration::from_secs(3600)).await;
    assert!(
        rt.scope(post(false, &runs)).await.is_err(),
        "no time ends it"
    );
    let h = health(&rt, "ledger");
    assert_eq!(h.status, DependencyStatus::Unavailable);
    assert_eq!(
        h.circuit_breaker.as_ref().unwrap().state.as_str(),
        "forced_open"
    );
    assert_eq!(h.bulkhead.short_circuited_requests, 2);
    let json = serde_json::to_value(rt.health_snapshot()).unwrap();
    assert_eq!(
        json["dependencies"]["ledger"]["circuit_breaker"]["state"],
        "forced_open"
    );

    control.reset();
    assert_eq!(rt.scope(post(false, &runs)).await, Ok(1));
    assert_eq!(control.state(), BreakerState::Closed);
    assert_eq!(counters(&rt, "ledger"), [1, 0, 0, 0, 2, 0]);
}

#[tokio::test(start_paused = true)]
async fn disabled_lets_failures_through_and_counts_them() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let runs = AtomicU32::new(0);
    let control = rt.circuit_breaker("ledger").unwrap();
    control.disable();
    for _ in 0..5 {
        assert_eq!(
            rt.scope(post(true, &runs)).await,
            Err(TestError::Failed("declined"))
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 5, "every call ran");
    let h = health(&rt, "ledger");
    assert_eq!(
        h.circuit_breaker.as_ref().unwrap().state,
        BreakerState::Disabled
    );
    assert_eq!(h.bulkhead.failed_requests, 5);
    assert_eq!(h.bulkhead.short_circuited_requests, 0);
    // Judged by its outcomes: failing, not unavailable.
    assert_eq!(h.status, DependencyStatus::Degraded);
    control.reset();
    assert_eq!(
        rt.scope(post(true, &runs)).await,
        Err(TestError::Failed("declined"))
    );
    assert_eq!(
        rt.scope(post(true, &runs)).await,
        Err(TestError::Failed("declined"))
    );
    assert!(
        matches!(rt.scope(post(false, &runs)).await, Err(TestError::Resilience(e)) if e.is_circuit_open()),
        "after a reset the breaker opens again at its threshold"
    );
}

#[tokio::test(start_paused = true)]
async fn metrics_only_never_refuses_while_its_state_is_computed() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let runs = AtomicU32::new(0);
    let control = rt.circuit_breaker("ledger").unwrap();
    control.metrics_only();
    for _ in 0..4 {
        assert_eq!(
            rt.scope(post(true, &runs)).await,
            Err(TestError::Failed("declined"))
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(control.state(), BreakerState::MetricsOnly);
    let h = health(&rt, "ledger");
    assert_eq!(
        h.circuit_breaker.as_ref().unwrap().state.as_str(),
        "metrics_only"
    );
    assert_eq!(h.bulkhead.short_circuited_requests, 0);
    assert_eq!(h.status, DependencyStatus::Degraded);
    // Reset while it had opened underneath: closed, counts cleared.
    control.reset();
    assert_eq!(control.state(), BreakerState::Closed);
    assert_eq!(
        health(&rt, "ledger").circuit_breaker.unwrap().failure_count,
        0
    );
}

#[database_call(dependency = "sluggish")]
async fn lookup(takes: Duration) -> Result<u32, TestError> {
    tokio::time::sleep(takes).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn slow_calls_through_an_annotated_site_open_the_breaker() {
    let rt = Runtime::from_yaml_str(
        "resilience:
  external_dependencies:
    ledger: { type: database }
    unguarded: { type: database, enable_circuit_breaker: false }
    sluggish:
      type: database
      timeout_seconds: 10
      circuit_breaker_slow_call_seconds: 1
      circuit_breaker_slow_call_rate_threshold: 0.5
      circuit_breaker_window_size: 4
",
    )
    .unwrap();
    for takes in [0.1, 3.0, 0.2, 5.0] {
        assert_eq!(
            rt.scope(lookup(Duration::from_secs_f64(takes))).await,
            Ok(1)
        );
    }
    let h = health(&rt, "sluggish");
    let breaker = h.circuit_breaker.unwrap();
    assert_eq!(
        breaker.state,
        BreakerState::Open,
        "2 slow of 4: successes, but slow"
    );
    assert_eq!(breaker.slow_call_rate, Some(0.5));
    assert_eq!(h.status, DependencyStatus::Unavailable);
    assert!(
        matches!(rt.scope(lookup(Duration::ZERO)).await, Err(TestError::Resilience(e)) if e.is_circuit_open())
    );
}

#[test]
fn slow_call_keys_go_together() {
    for (yaml, at, says) in [
        (
            "circuit_breaker_slow_call_rate_threshold: 0.5",
            "circuit_breaker_slow_call_rate_threshold",
            "needs circuit_breaker_slow_call_seconds",
        ),
        (
            "circuit_breaker_slow_call_seconds: 2",
            "circuit_breaker_slow_call_seconds",
            "applies only with",
        ),
    ] {
        let err = Runtime::from_yaml_str(&format!(
            "resilience:\n  external_dependencies:\n    ledger: {{ type: database }}\n    unguarded: {{ type: database, enable_circuit_breaker: false }}\n    sluggish: {{ type: database, {yaml} }}\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.path(),
            Some(format!("resilience.external_dependencies.sluggish.{at}").as_str())
        );
        assert!(err.to_string().contains(says), "{err}");
    }
}
