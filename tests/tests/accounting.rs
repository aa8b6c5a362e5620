//! Every call is counted exactly once, as exactly one outcome, under
//! cancellation, panics and concurrency.

use resilience_runtime::{cache_call, database_call, Runtime};
use resilience_tests::{counters, eventually, health, TestError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::time::sleep;

const CONFIG: &str = "
resilience:
  external_dependencies:
    db: { type: database, max_concurrent: 2, timeout_seconds: 10, circuit_breaker_failure_threshold: 1000000 }
    busy: { type: cache, max_concurrent: 3, reject_on_full: true, enable_circuit_breaker: false }
    blocking: { type: database, max_concurrent: 1, timeout_seconds: 5 }
";

#[database_call(dependency = "db")]
async fn slow(for_: Duration) -> Result<(), TestError> {
    sleep(for_).await;
    Ok(())
}

#[database_call(dependency = "db")]
async fn explode() -> Result<(), TestError> {
    tokio::task::yield_now().await;
    panic!("boom")
}

/// Outcome chosen by `i`: ok, an error, or a pending step first.
#[cache_call(dependency = "busy")]
async fn mixed(i: u64) -> Result<u64, TestError> {
    if i % 3 == 0 {
        tokio::task::yield_now().await;
    }
    if i % 5 == 0 {
        return Err(TestError::Failed("every fifth"));
    }
    Ok(i)
}

/// A blocking fn on a semaphore dependency runs on tokio's blocking pool
/// under the semaphore.
#[database_call(dependency = "blocking")]
fn blocking_work(gate: mpsc::Receiver<()>, started: mpsc::Sender<()>) -> Result<u32, TestError> {
    let _ = started.send(());
    let _ = gate.recv();
    Ok(5)
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_is_cancelled_frees_its_slot_and_is_no_failure() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let gave_up = tokio::time::timeout(
        Duration::from_secs(1),
        rt.scope(slow(Duration::from_secs(5))),
    )
    .await;
    assert!(gave_up.is_err());
    let h = health(&rt, "db");
    assert_eq!(h.bulkhead.current_load, 0);
    assert_eq!(h.circuit_breaker.unwrap().failure_count, 0);
    assert_eq!(
        h.bulkhead.success_rate, None,
        "a cancellation is not a finished call"
    );
    assert_eq!(counters(&rt, "db"), [0, 0, 0, 0, 0, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_panic_frees_the_slot_counts_as_failed_and_reaches_the_caller() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let joined = tokio::spawn(rt.scope(explode())).await.unwrap_err();
    assert!(joined.is_panic());
    assert_eq!(joined.into_panic().downcast_ref::<&str>(), Some(&"boom"));
    let h = health(&rt, "db");
    assert_eq!(h.bulkhead.current_load, 0);
    assert_eq!(h.circuit_breaker.unwrap().failure_count, 1);
    assert_eq!(counters(&rt, "db"), [0, 1, 0, 0, 0, 0]);
    // Both slots are free again.
    let (a, b) = tokio::join!(
        rt.scope(slow(Duration::from_secs(1))),
        rt.scope(slow(Duration::from_secs(1)))
    );
    assert_eq!((a, b), (Ok(()), Ok(())));
}

#[tokio::test(start_paused = true)]
async fn a_blocking_fn_on_a_semaphore_holds_its_slot_until_the_job_ends() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let (release, gate) = mpsc::channel();
    let (started_tx, started) = mpsc::channel();
    let call = tokio::spawn(rt.scope(blocking_work(gate, started_tx)));
    eventually("the job starts", || started.try_recv().is_ok()).await;
    // tokio does not auto-advance a paused clock while spawn_blocking work runs.
    tokio::time::advance(Duration::from_secs(5)).await;
    let err = call.await.unwrap().unwrap_err();
    assert!(err.resilience().unwrap().is_timeout(), "{err:?}");
    // The job still runs: its slot is still taken.
    let (_keep, other) = mpsc::channel();
    let (s, _) = mpsc::channel();
    let refused = rt.scope(blocking_work(other, s)).await.unwrap_err();
    assert!(refused.resilience().unwrap().is_rejected(), "{refused:?}");
    release.send(()).unwrap();
    eventually("the job ends", || {
        health(&rt, "blocking").bulkhead.current_load == 0
    })
    .await;
    assert_eq!(counters(&rt, "blocking"), [0, 0, 1, 1, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_exact_under_concurrency() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let tally: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let tally = Arc::clone(&tally);
        tasks.push(tokio::spawn(rt.scope(async move {
            for i in 0..500u64 {
                let slot = match mixed(t * 1000 + i).await {
                    Ok(_) => 0,
                    Err(TestError::Failed(_)) => 1,
                    Err(TestError::Resilience(e)) => {
                        assert!(e.is_rejected());
                        2
                    }
                };
                tally[slot].fetch_add(1, Ordering::Relaxed);
            }
        })));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seen = tally.each_ref().map(|c| c.load(Ordering::Relaxed));
    assert_eq!(seen.iter().sum::<u64>(), 4000);
    assert_eq!(counters(&rt, "busy"), [seen[0], seen[1], 0, seen[2], 0, 0]);
    assert_eq!(health(&rt, "busy").bulkhead.total_requests, 4000);
    assert_eq!(health(&rt, "busy").bulkhead.current_load, 0);
}
