//! Timeouts and circuit breakers end to end through the attributes, on the
//! paused clock, and one timeout on the real clock (a body that works
//! before its first await).

use resilience_runtime::{database_call, BreakerState, DependencyStatus, ResilienceError, Runtime};
use resilience_tests::{counters, health, TestError};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{advance, sleep, Instant};

const CONFIG: &str = "
resilience:
  external_dependencies:
    slow:
      type: database
      timeout_seconds: 10
      circuit_breaker_failure_threshold: 2
      circuit_breaker_timeout: 30
    flaky:
      type: database
      timeout_seconds: 10
      circuit_breaker_failure_threshold: 3
      circuit_breaker_timeout: 60
      circuit_breaker_half_open_max_calls: 1
      circuit_breaker_success_threshold: 2
    tight:
      type: database
      timeout_seconds: 0.1
      circuit_breaker_failure_threshold: 100
";

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[database_call(dependency = "slow")]
async fn sleepy(for_: Duration, dropped: Arc<AtomicBool>) -> Result<(), TestError> {
    let _flag = DropFlag(dropped);
    sleep(for_).await;
    Ok(())
}

#[database_call(dependency = "flaky")]
async fn flaky(fail: bool, runs: &AtomicU32) -> Result<u32, TestError> {
    runs.fetch_add(1, Ordering::SeqCst);
    if fail {
        Err(TestError::Failed("declined"))
    } else {
        Ok(1)
    }
}

/// Works `millis` of real time, then waits for ever.
#[database_call(dependency = "tight")]
async fn works_then_hangs(millis: u64) -> Result<(), TestError> {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(millis) {
        std::hint::spin_loop();
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// The timeout covers the body's own work before its first await, as a
/// caller counts it: 150 ms of work under a 100 ms timeout is cut off as
/// soon as it waits, not 100 ms after.
#[tokio::test]
async fn a_timeout_counts_the_work_before_the_first_await() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let timed_out = |r: Result<(), TestError>| {
        matches!(
            r,
            Err(TestError::Resilience(ResilienceError::Timeout { .. }))
        )
    };
    // A site is timed from its first call that waits (that call's timeout
    // runs from its first pending).
    assert!(timed_out(rt.scope(works_then_hangs(0)).await));
    let start = std::time::Instant::now();
    assert!(timed_out(rt.scope(works_then_hangs(150)).await));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(150), "{took:?}");
    // From the first pending it would be 250 ms or more.
    assert!(took < Duration::from_millis(240), "cut off after {took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_timeout_returns_promptly_and_its_future_is_dropped() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let err = rt
        .scope(sleepy(Duration::from_secs(60), dropped.clone()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(
        err,
        TestError::Resilience(ResilienceError::Timeout {
            dependency: "slow",
            operation: "sleepy",
            timeout: Duration::from_secs(10),
        })
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the timed-out future was cancelled"
    );
    let h = health(&rt, "slow");
    assert_eq!(h.bulkhead.current_load, 0);
    assert_eq!(
        h.circuit_breaker.unwrap().failure_count,
        1,
        "a timeout is a breaker failure"
    );
    assert_eq!(counters(&rt, "slow"), [0, 0, 1, 0, 0, 0]);

    // Within the timeout: success, and the success resets the failure count.
    rt.scope(sleepy(Duration::from_secs(9), dropped.clone()))
        .await
        .unwrap();
    assert_eq!(
        health(&rt, "slow").circuit_breaker.unwrap().failure_count,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_open_the_breaker_and_an_open_breaker_does_not_run_the_function() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    for _ in 0..2 {
        rt.scope(sleepy(Duration::from_secs(60), dropped.clone()))
            .await
            .unwrap_err();
    }
    assert_eq!(
        health(&rt, "slow").circuit_breaker.unwrap().state,
        BreakerState::Open
    );
    dropped.store(false, Ordering::SeqCst);
    let start = Instant::now();
    let err = rt
        .scope(sleepy(Duration::from_secs(60), dropped.clone()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "short-circuited at once");
    match err {
        TestError::Resilience(ResilienceError::CircuitOpen { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(30))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(counters(&rt, "slow"), [0, 0, 2, 0, 1, 0]);
    assert_eq!(health(&rt, "slow").status, DependencyStatus::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn the_seed_scenario_closed_1_3_2_3_open_3_3_then_probe_and_close() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let runs = AtomicU32::new(0);
    rt.scope(async {
        let breaker = || health(&rt, "flaky").circuit_breaker.unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            assert_eq!(flaky(true, &runs).await, Err(TestError::Failed("declined")));
            let b = breaker();
            seen.push((b.state, b.failure_count, b.failure_threshold));
        }
        assert_eq!(
            seen,
            [
                (BreakerState::Closed, 1, 3),
                (BreakerState::Closed, 2, 3),
                (BreakerState::Open, 3, 3)
            ]
        );

        // Open: the next call never reaches the function.
        let err = flaky(false, &runs).await.unwrap_err();
        assert!(err.resilience().unwrap().is_circuit_open());
        assert_eq!(runs.load(Ordering::SeqCst), 3);

        // After the recovery time: half-open; one probe at a time, two
        // successes to close.
        advance(Duration::from_secs(59)).await;
        assert_eq!(breaker().state, BreakerState::Open);
        advance(Duration::from_secs(1)).await;
        assert_eq!(breaker().state, BreakerState::HalfOpen);
        assert_eq!(health(&rt, "flaky").status, DependencyStatus::Degraded);
        assert_eq!(flaky(false, &runs).await, Ok(1));
        assert_eq!(breaker().state, BreakerState::HalfOpen);
        assert_eq!(flaky(false, &runs).await, Ok(1));
        assert_eq!(breaker().state, BreakerState::Closed);
        assert_eq!(breaker().failure_count, 0);
        assert_eq!(health(&rt, "flaky").status, DependencyStatus::Healthy);
        assert_eq!(runs.load(Ordering::SeqCst), 5);
    })
    .await;
    assert_eq!(counters(&rt, "flaky"), [2, 3, 0, 0, 1, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker_at_once() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let runs = AtomicU32::new(0);
    rt.scope(async {
        for _ in 0..3 {
            flaky(true, &runs).await.unwrap_err();
        }
        advance(Duration::from_secs(60)).await;
        assert_eq!(flaky(false, &runs).await, Ok(1), "first probe");
        assert_eq!(
            flaky(true, &runs).await,
            Err(TestError::Failed("declined")),
            "second probe fails"
        );
        let b = health(&rt, "flaky").circuit_breaker.unwrap();
        assert_eq!(b.state, BreakerState::Open);
        let err = flaky(false, &runs).await.unwrap_err();
        assert!(err.resilience().unwrap().is_circuit_open());
        assert_eq!(runs.load(Ordering::SeqCst), 5);
    })
    .await;
}
