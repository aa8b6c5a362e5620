//! Semaphore bulkheads: the limit, the wait, and rejections that are never
//! breaker failures. Paused clock throughout.

use resilience_runtime::{database_call, BreakerState, ResilienceError, Runtime};
use resilience_tests::{counters, health, TestError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{sleep, Instant};

const CONFIG: &str = "
resilience:
  external_dependencies:
    limited: { type: database, max_concurrent: 10, reject_on_full: true, timeout_seconds: 100, circuit_breaker_failure_threshold: 1 }
    waiting: { type: database, max_concurrent: 1, max_wait_seconds: 1.0, timeout_seconds: 100 }
";

#[derive(Default)]
struct Gauge {
    running: AtomicU32,
    peak: AtomicU32,
    started: AtomicU32,
}

#[database_call(dependency = "limited")]
async fn hold(gauge: Arc<Gauge>, for_: Duration) -> Result<(), TestError> {
    gauge.started.fetch_add(1, Ordering::SeqCst);
    let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
    gauge.peak.fetch_max(now, Ordering::SeqCst);
    sleep(for_).await;
    gauge.running.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

#[database_call(dependency = "waiting")]
async fn hold_waiting(for_: Duration) -> Result<Instant, TestError> {
    sleep(for_).await;
    Ok(Instant::now())
}

#[tokio::test(start_paused = true)]
async fn fifteen_calls_against_ten_slots_admit_ten_and_reject_five_without_running_them() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let gauge = Arc::new(Gauge::default());
    let mut calls = JoinSet::new();
    for _ in 0..15 {
        calls.spawn(rt.scope(hold(Arc::clone(&gauge), Duration::from_secs(1))));
    }
    let (mut ok, mut rejected) = (0, 0);
    while let Some(result) = calls.join_next().await {
        match result.unwrap() {
            Ok(()) => ok += 1,
            Err(TestError::Resilience(ResilienceError::Rejected {
                capacity,
                dependency,
                ..
            })) => {
                assert_eq!((capacity, dependency), (10, "limited"));
                rejected += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, rejected), (10, 5));
    assert_eq!(
        gauge.peak.load(Ordering::SeqCst),
        10,
        "never more than max_concurrent in flight"
    );
    assert_eq!(
        gauge.started.load(Ordering::SeqCst),
        10,
        "a rejected call never runs the function"
    );
    assert_eq!(counters(&rt, "limited"), [10, 0, 0, 5, 0, 0]);
    let h = health(&rt, "limited");
    assert_eq!(h.bulkhead.success_rate, Some(1.0));
    assert_eq!(h.bulkhead.current_load, 0);
    let breaker = h.circuit_breaker.unwrap();
    assert_eq!(
        (breaker.state, breaker.failure_count),
        (BreakerState::Closed, 0),
        "rejections are not breaker failures, even at threshold 1"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_waits_up_to_max_wait_then_rejects() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let start = Instant::now();
    let holder = tokio::spawn(rt.scope(hold_waiting(Duration::from_secs(3))));
    tokio::task::yield_now().await;
    let err = rt
        .scope(hold_waiting(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(err.resilience().unwrap().is_rejected(), "{err:?}");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "rejected exactly at the configured wait"
    );
    holder.await.unwrap().unwrap();
    assert_eq!(counters(&rt, "waiting"), [1, 0, 0, 1, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_takes_the_slot_as_soon_as_it_frees() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let start = Instant::now();
    let holder = tokio::spawn(rt.scope(hold_waiting(Duration::from_millis(400))));
    tokio::task::yield_now().await;
    let finished = rt
        .scope(hold_waiting(Duration::from_millis(100)))
        .await
        .unwrap();
    assert_eq!(
        finished - start,
        Duration::from_millis(500),
        "waited 400 ms, then ran 100 ms"
    );
    holder.await.unwrap().unwrap();
    assert_eq!(counters(&rt, "waiting"), [2, 0, 0, 0, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_while_waiting_is_cancelled_and_frees_its_place() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let holder = tokio::spawn(rt.scope(hold_waiting(Duration::from_secs(3))));
    tokio::task::yield_now().await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        rt.scope(hold_waiting(Duration::ZERO)),
    )
    .await;
    assert!(gave_up.is_err());
    holder.await.unwrap().unwrap();
    // The next caller gets the slot at once: no stale waiter holds it.
    rt.scope(hold_waiting(Duration::ZERO)).await.unwrap();
    assert_eq!(counters(&rt, "waiting"), [2, 0, 0, 0, 0, 1]);
}

#[database_call(dependency = "waiting", operation = "brief")]
async fn brief(gauge: Arc<Gauge>) -> Result<(), TestError> {
    let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
    gauge.peak.fetch_max(now, Ordering::SeqCst);
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    gauge.running.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

/// Real threads, real contention: waiters hand the one slot on through the
/// release-and-notify path, and the limit holds throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_parallel_load_the_limit_holds_and_every_waiter_is_served() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let gauge = Arc::new(Gauge::default());
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let gauge = Arc::clone(&gauge);
        tasks.spawn(rt.scope(async move {
            for _ in 0..250 {
                brief(Arc::clone(&gauge)).await.unwrap();
            }
        }));
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(gauge.peak.load(Ordering::SeqCst), 1, "max_concurrent is 1");
    assert_eq!(counters(&rt, "waiting"), [2000, 0, 0, 0, 0, 0]);
    assert_eq!(health(&rt, "waiting").bulkhead.current_load, 0);
}
