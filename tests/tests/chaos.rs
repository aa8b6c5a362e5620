//! Chaos from the config and a test's fault injector, end to end on the
//! paused clock: faults never run the body and count as failures (and
//! breaker failures), delays count against the timeout, a seed repeats the
//! choices, and chaos must be allowed at the top level.

use resilience_runtime::tower::ResilienceLayer;
use resilience_runtime::{database_call, ConfigError, ResilienceError, Runtime};
use resilience_tests::{counters, health, TestError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tower::{Layer, Service};

#[database_call(dependency = "ledger")]
async fn post(runs: &AtomicU32) -> Result<u32, TestError> {
    runs.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(1)
}

fn runtime(ledger: &str) -> Runtime {
    Runtime::from_yaml_str(&format!(
        "resilience:
  chaos_enabled: true
  external_dependencies:
    ledger: {{ type: database, timeout_seconds: 2, circuit_breaker_failure_threshold: 3, {ledger} }}
    other: {{ type: cache }}
    pool: {{ type: database, bulkhead_type: thread_pool, max_workers: 1 }}
"
    ))
    .unwrap()
}

#[test]
fn chaos_keys_are_refused_unless_the_top_level_allows_chaos() {
    let err = Runtime::from_yaml_str(
        "resilience:
  external_dependencies:
    ledger: { type: database, chaos_fault_rate: 0.1 }
",
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }));
    assert_eq!(
        err.path(),
        Some("resilience.external_dependencies.ledger.chaos_fault_rate")
    );
    assert_eq!(err.line(), Some(3));
    assert!(err.to_string().contains("chaos_enabled: true"), "{err}");

    let err = Runtime::from_yaml_str(
        "resilience:
  chaos_enabled: true
  bulkheads:
    database: { chaos_latency_rate: 0.5 }
  external_dependencies:
    ledger: { type: database }
",
    )
    .unwrap_err();
    assert_eq!(
        err.path(),
        Some("resilience.bulkheads.database.chaos_latency_rate")
    );
    assert!(err.to_string().contains("go together"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn injected_faults_never_run_the_body_and_open_the_breaker() {
    let rt = runtime("chaos_fault_rate: 1.0");
    let runs = AtomicU32::new(0);
    for _ in 0..3 {
        let err = rt.scope(post(&runs)).await.unwrap_err();
        assert_eq!(
            err,
            TestError::Resilience(ResilienceError::InjectedFault {
                dependency: "ledger",
                operation: "post"
            })
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let err = rt.scope(post(&runs)).await.unwrap_err();
    assert!(matches!(err, TestError::Resilience(e) if e.is_circuit_open()));
    assert_eq!(counters(&rt, "ledger"), [0, 3, 0, 0, 1, 0]);
    let json = serde_json::to_value(rt.health_snapshot()).unwrap();
    assert_eq!(json["dependencies"]["ledger"]["chaos"]["fault_rate"], 1.0);
    assert!(json["dependencies"]["other"].get("chaos").is_none());
}

#[tokio::test(start_paused = true)]
async fn injected_latency_counts_against_the_timeout() {
    let rt = runtime("chaos_latency_rate: 1.0, chaos_latency_seconds: 1.5");
    let runs = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(rt.scope(post(&runs)).await, Ok(1));
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(1600),
        "1.5 s injected, then the body"
    );

    let rt = runtime("chaos_latency_rate: 1.0, chaos_latency_seconds: 3");
    let start = Instant::now();
    let err = rt.scope(post(&runs)).await.unwrap_err();
    assert!(matches!(err, TestError::Resilience(e) if e.is_timeout()));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "cut off at the call's timeout"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the timed-out call never ran"
    );
}

#[tokio::test(start_paused = true)]
async fn a_seed_repeats_the_same_faults() {
    let pattern = |rt: Runtime| async move {
        let runs = AtomicU32::new(0);
        let mut outcomes = Vec::new();
        for _ in 0..50 {
            outcomes.push(rt.scope(post(&runs)).await.is_ok());
            rt.circuit_breaker("ledger").unwrap().reset();
        }
        outcomes
    };
    let config = "chaos_fault_rate: 0.5, chaos_seed: 42";
    let first = pattern(runtime(config)).await;
    assert_eq!(first, pattern(runtime(config)).await);
    let admitted = first.iter().filter(|ok| **ok).count();
    assert!((10..=40).contains(&admitted), "{admitted} of 50");
}

#[tokio::test(start_paused = true)]
async fn the_injector_fails_delays_and_hangs_the_next_calls() {
    let rt = runtime("max_concurrent: 5");
    let runs = AtomicU32::new(0);
    let ledger = rt.inject("ledger");
    ledger.fail_next(2);
    for _ in 0..2 {
        assert!(
            matches!(rt.scope(post(&runs)).await, Err(TestError::Resilience(e)) if e.is_injected_fault())
        );
    }
    assert_eq!(rt.scope(post(&runs)).await, Ok(1));

    ledger.delay_next(1, Duration::from_secs(1));
    let start = Instant::now();
    assert_eq!(rt.scope(post(&runs)).await, Ok(1));
    assert_eq!(start.elapsed(), Duration::from_millis(1100));

    ledger.hang_next(1);
    let start = Instant::now();
    assert!(matches!(rt.scope(post(&runs)).await, Err(TestError::Resilience(e)) if e.is_timeout()));
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    ledger.fail_next(10);
    ledger.clear();
    assert_eq!(rt.scope(post(&runs)).await, Ok(1));
    assert_eq!(counters(&rt, "ledger"), [3, 2, 1, 0, 0, 0]);
    assert_eq!(
        health(&rt, "ledger").circuit_breaker.unwrap().failure_count,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn the_injector_reaches_layered_services_too() {
    let rt = runtime("max_concurrent: 5");
    rt.inject("ledger").fail_next(1);
    let mut svc =
        ResilienceLayer::new("ledger", "layered").layer(tower::service_fn(|x: u32| async move {
            Ok::<_, std::io::Error>(x)
        }));
    let err = rt.scope(svc.call(1)).await.unwrap_err();
    assert!(err
        .downcast_ref::<ResilienceError>()
        .unwrap()
        .is_injected_fault());
    assert_eq!(rt.scope(svc.call(2)).await.unwrap(), 2);
}

#[database_call(dependency = "pool")]
fn blocking_post(runs: std::sync::Arc<AtomicU32>) -> Result<u32, TestError> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn blocking_sites_take_injections_too() {
    let rt = Runtime::from_yaml_str(
        "resilience:
  external_dependencies:
    ledger: { type: database }
    other: { type: cache }
    pool: { type: database, bulkhead_type: thread_pool, max_workers: 1, timeout_seconds: 2 }
",
    )
    .unwrap();
    let runs = std::sync::Arc::new(AtomicU32::new(0));
    let pool = rt.inject("pool");
    pool.fail_next(1);
    let err = rt.scope(blocking_post(runs.clone())).await.unwrap_err();
    assert!(matches!(err, TestError::Resilience(e) if e.is_injected_fault()));
    pool.delay_next(1, Duration::from_secs(3));
    let start = Instant::now();
    let err = rt.scope(blocking_post(runs.clone())).await.unwrap_err();
    assert!(matches!(err, TestError::Resilience(e) if e.is_timeout()));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(runs.load(Ordering::SeqCst), 0, "neither ran");
    assert_eq!(rt.scope(blocking_post(runs.clone())).await, Ok(1));
    assert_eq!(counters(&rt, "pool"), [1, 1, 1, 0, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn over_ten_thousand_seeded_calls_the_rates_are_within_two_percent() {
    let rt = Runtime::from_yaml_str(
        "resilience:
  chaos_enabled: true
  external_dependencies:
    ledger: { type: database, enable_circuit_breaker: false,
              chaos_fault_rate: 0.1, chaos_latency_rate: 0.2, chaos_latency_seconds: 0.05,
              chaos_seed: 7 }
    other: { type: cache }
    pool: { type: database, bulkhead_type: thread_pool, max_workers: 1 }
",
    )
    .unwrap();
    let runs = AtomicU32::new(0);
    let (mut faults, mut delayed) = (0u32, 0u32);
    for _ in 0..10_000 {
        let start = Instant::now();
        match rt.scope(post(&runs)).await {
            Err(TestError::Resilience(e)) if e.is_injected_fault() => faults += 1,
            Ok(1) => delayed += u32::from(start.elapsed() >= Duration::from_millis(150)),
            other => panic!("{other:?}"),
        }
    }
    let share = |n: u32| f64::from(n) / 10_000.0;
    assert!(
        (share(faults) - 0.1).abs() <= 0.02,
        "faults {}",
        share(faults)
    );
    // A delay is drawn for the calls that were not failed: 0.2 of 0.9.
    assert!(
        (share(delayed) - 0.18).abs() <= 0.02,
        "delayed {}",
        share(delayed)
    );
    assert_eq!(runs.load(Ordering::SeqCst), 10_000 - faults);
}
