//! Thread-pool bulkheads: dedicated threads, the worker and queue limits, and
//! timeouts that return the caller at the deadline while the slot stays taken
//! until the job really ends. Jobs block on channels, never on real sleeps.

use resilience_runtime::{api_call, database_call, Runtime};
use resilience_tests::{counters, eventually, health, TestError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const CONFIG: &str = "
resilience:
  timeout_enabled: false
  external_dependencies:
    pool: { type: external_api, bulkhead_type: thread_pool, max_workers: 2, queue_capacity: 1 }
    single: { type: external_api, bulkhead_type: thread_pool, max_workers: 1 }
    db: { type: database, max_concurrent: 4 }
";

const TIMED: &str = "
resilience:
  external_dependencies:
    pool: { type: external_api, bulkhead_type: thread_pool, max_workers: 2, queue_capacity: 1 }
    single: { type: external_api, bulkhead_type: thread_pool, max_workers: 1, timeout_seconds: 5, circuit_breaker_failure_threshold: 1 }
    db: { type: database, max_concurrent: 4 }
";

/// A job that blocks until its gate sends, and reports its thread's name.
#[api_call(dependency = "pool")]
fn gated(
    gate: Arc<Mutex<mpsc::Receiver<()>>>,
    running: Arc<AtomicU32>,
    peak: Arc<AtomicU32>,
) -> Result<String, TestError> {
    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
    peak.fetch_max(now, Ordering::SeqCst);
    gate.lock().unwrap().recv().unwrap();
    running.fetch_sub(1, Ordering::SeqCst);
    Ok(std::thread::current().name().unwrap_or_default().to_owned())
}

#[api_call(dependency = "single", operation = "single_job")]
fn single(release: mpsc::Receiver<()>, done: mpsc::Sender<()>) -> Result<(), TestError> {
    let _ = done.send(());
    let _ = release.recv();
    let _ = done.send(());
    Ok(())
}

#[api_call(dependency = "single", operation = "single_panics")]
fn single_panics() -> Result<(), TestError> {
    panic!("job exploded")
}

#[database_call(dependency = "db")]
async fn quick_db() -> Result<u32, TestError> {
    Ok(7)
}

/// An async fn opted into the pool: driven on one of the pool's workers.
#[api_call(dependency = "pool", on_pool)]
async fn async_on_pool(label: String) -> Result<String, TestError> {
    tokio::task::yield_now().await;
    Ok(format!(
        "{label} on {}",
        std::thread::current().name().unwrap_or_default()
    ))
}

/// The same opt-in on a semaphore dependency runs in the caller's task.
#[database_call(dependency = "db", on_pool)]
async fn async_on_pool_semaphore() -> Result<String, TestError> {
    Ok(std::thread::current().name().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_on_the_dependencys_own_threads_within_worker_and_queue_limits() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let (open, gate) = mpsc::channel();
    let gate = Arc::new(Mutex::new(gate));
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(tokio::spawn(rt.scope(gated(
            gate.clone(),
            running.clone(),
            peak.clone(),
        ))));
    }
    // Two run, one waits in the queue: the fourth is refused at once.
    eventually("two running, one queued", || {
        running.load(Ordering::SeqCst) == 2 && health(&rt, "pool").bulkhead.current_load == 3
    })
    .await;
    assert_eq!(health(&rt, "pool").bulkhead.queued, Some(1));
    let refused = rt
        .scope(gated(gate.clone(), running.clone(), peak.clone()))
        .await
        .unwrap_err();
    assert!(refused.resilience().unwrap().is_rejected(), "{refused:?}");
    // Meanwhile a semaphore dependency is untouched by the saturated pool.
    assert_eq!(rt.scope(quick_db()).await, Ok(7));
    for _ in 0..3 {
        open.send(()).unwrap();
    }
    for job in jobs {
        let thread = job.await.unwrap().unwrap();
        assert!(
            thread.starts_with("pool-"),
            "ran on {thread:?}, not the pool's own threads"
        );
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "at most max_workers jobs run"
    );
    assert_eq!(counters(&rt, "pool"), [3, 0, 0, 1, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_job_returns_the_caller_at_the_deadline_and_keeps_its_slot_until_it_ends() {
    let rt = Runtime::from_yaml_str(TIMED).unwrap();
    let (release, wait) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let start = Instant::now();
    let call = tokio::spawn(rt.scope(single(wait, done_tx)));
    eventually("the job starts", || done.try_recv().is_ok()).await;
    // The clock stands still while the job runs (see the tests below); a job
    // that hangs times out when the test moves the clock on.
    tokio::time::advance(Duration::from_secs(5)).await;
    let err = call.await.unwrap().unwrap_err();
    assert!(err.resilience().unwrap().is_timeout(), "{err:?}");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(5),
        "the caller returns at the deadline"
    );
    let h = health(&rt, "single");
    assert_eq!(
        h.bulkhead.current_load, 1,
        "the job still runs, so its slot is still taken"
    );
    assert_eq!(
        h.circuit_breaker.unwrap().failure_count,
        1,
        "a timeout is a breaker failure"
    );

    // Threshold 1: the breaker is open now; after recovery a probe needs the
    // one worker, which the timed-out job still holds: rejected, not run.
    tokio::time::advance(Duration::from_secs(60)).await;
    let (_r, w) = mpsc::channel();
    let (d, _) = mpsc::channel();
    let busy = rt.scope(single(w, d)).await.unwrap_err();
    assert!(busy.resilience().unwrap().is_rejected(), "{busy:?}");

    release.send(()).unwrap();
    done.recv().unwrap();
    eventually("the job ends", || {
        health(&rt, "single").bulkhead.current_load == 0
    })
    .await;
    assert_eq!(counters(&rt, "single"), [0, 0, 1, 1, 0, 0]);
}

/// Work that takes real time on a worker thread, as hashing a file does.
// On `pool` (two workers and a queue): a job frees its slot only after it
// has answered, so a second call at once could find one worker still taken.
#[api_call(dependency = "pool", operation = "slow_job")]
fn slow_job(millis: u64) -> Result<u64, TestError> {
    std::thread::sleep(Duration::from_millis(millis));
    Ok(millis)
}

#[api_call(dependency = "pool", operation = "slow_async_job", on_pool)]
async fn slow_async_job(millis: u64) -> Result<u64, TestError> {
    std::thread::sleep(Duration::from_millis(millis));
    Ok(millis)
}

#[tokio::test(start_paused = true)]
async fn on_a_paused_clock_a_job_that_takes_real_time_does_not_time_out() {
    let rt = Runtime::from_yaml_str(TIMED).unwrap();
    let start = Instant::now();
    assert_eq!(rt.scope(slow_job(50)).await.unwrap(), 50);
    assert_eq!(rt.scope(slow_async_job(50)).await.unwrap(), 50);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the paused clock stood still while the jobs ran"
    );
    assert_eq!(counters(&rt, "pool"), [2, 0, 0, 0, 0, 0]);
    assert!(
        health(&rt, "pool").timeout_seconds.is_some(),
        "a timeout was armed"
    );
    // The hold ends with the job: the clock auto-advances again.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
}

#[tokio::test(start_paused = true)]
async fn on_a_paused_clock_a_cancelled_job_lets_the_clock_run_again() {
    let rt = Runtime::from_yaml_str(TIMED).unwrap();
    let (release, wait) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let call = tokio::spawn(rt.scope(single(wait, done_tx)));
    eventually("the job starts", || done.try_recv().is_ok()).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    // The caller gave up, so its hold is gone although the job still runs.
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    release.send(()).unwrap();
    done.recv().unwrap();
    assert_eq!(counters(&rt, "single"), [0, 0, 0, 0, 0, 1]);
}

#[tokio::test]
async fn a_panicking_job_counts_as_failed_frees_its_worker_and_reaches_the_caller() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let joined = tokio::spawn(rt.scope(single_panics())).await.unwrap_err();
    assert!(joined.is_panic());
    let message = joined.into_panic();
    assert_eq!(message.downcast_ref::<&str>(), Some(&"job exploded"));
    eventually("the worker is free", || {
        health(&rt, "single").bulkhead.current_load == 0
    })
    .await;
    // The worker survived: the next job runs.
    let (release, wait) = mpsc::channel();
    let (done_tx, _done) = mpsc::channel();
    release.send(()).unwrap();
    rt.scope(single(wait, done_tx)).await.unwrap();
    assert_eq!(counters(&rt, "single"), [1, 1, 0, 0, 0, 0]);
}

#[test]
fn an_async_site_on_a_thread_pool_dependency_is_refused_at_initialisation() {
    let err = match Runtime::from_yaml_str(
        "resilience:
  external_dependencies:
    pool: { type: external_api, bulkhead_type: thread_pool }
    single: { type: external_api, bulkhead_type: thread_pool }
    db:
      type: database
      bulkhead_type: thread_pool
",
    ) {
        Ok(_) => panic!("must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("tests/tests/thread_pool.rs:"), "{err}");
    assert!(
        err.contains("async fn `quick_db` cannot run on the thread pool of `db` (config line 7)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_pool_async_fn_runs_on_the_pools_own_threads() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let out = rt.scope(async_on_pool("job".into())).await.unwrap();
    assert!(out.starts_with("job on pool-"), "{out}");
    let caller = rt.scope(async_on_pool_semaphore()).await.unwrap();
    assert!(!caller.starts_with("pool-"), "{caller}");
    assert_eq!(counters(&rt, "pool"), [1, 0, 0, 0, 0, 0]);
}
