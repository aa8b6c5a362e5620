//! Heap allocations per call on the semaphore path, counted by a counting
//! global allocator: zero for a success, a success that is pending once (so
//! its deadline is armed in the runtime's deadline table; the clock runs,
//! so the table is used, not a tokio timer), a rejection, a short-circuit, and a call the rate
//! limiter admits or refuses; and zero on the
//! recovery paths: a retried site's first-try success, retries with backoff,
//! budget and deadline, and a fallback, with retries or without; and zero for a call its breaker times
//! (slow-call trigger, time window) and for injected faults and delays.
//! (A short-circuit on the kernel's coarse clock is counted in
//! `breaker_real_clock.rs`, a process that never pauses a clock.)

use resilience_runtime::{database_call, Runtime};
use resilience_tests::TestError;
use resilience_tests::{allocations_per_call, CountingAllocator};
use std::sync::atomic::{AtomicBool, Ordering};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const CONFIG: &str = "
resilience:
  external_dependencies:
    db: { type: database, max_concurrent: 10, timeout_seconds: 10 }
    full: { type: database, max_concurrent: 1, reject_on_full: true }
    broken: { type: database, circuit_breaker_failure_threshold: 1, circuit_breaker_timeout: 3600 }
    flaky: { type: database, max_concurrent: 10, timeout_seconds: 10, enable_circuit_breaker: false,
             max_retry_attempts: 2, retry_initial_delay_seconds: 0.01, retry_max_elapsed_seconds: 60,
             retry_budget_min_per_second: 1000000 }
    limited: { type: database, rate_limit_per_second: 1000000, rate_limit_burst: 1000000 }
    paced: { type: database, rate_limit_per_second: 1, rate_limit_max_wait_seconds: 0 }
    queued: { type: database, rate_limit_per_second: 1000, rate_limit_max_wait_seconds: 1 }
    timed: { type: database, timeout_seconds: 10, circuit_breaker_slow_call_seconds: 1,
             circuit_breaker_slow_call_rate_threshold: 1, circuit_breaker_failure_rate_threshold: 1,
             circuit_breaker_window_type: time, circuit_breaker_window_seconds: 10 }
    injected: { type: database, timeout_seconds: 10, enable_circuit_breaker: false }
    guarded: { type: database, timeout_seconds: 10, enable_circuit_breaker: false }
";

/// Back to back, each call but the first waits a millisecond for its turn.
#[database_call(dependency = "queued")]
async fn queued(x: u64) -> Result<u64, TestError> {
    Ok(x + 1)
}

#[database_call(dependency = "limited")]
async fn limited(x: u64) -> Result<u64, TestError> {
    Ok(x + 1)
}

#[database_call(dependency = "paced")]
async fn paced() -> Result<(), TestError> {
    Ok(())
}

/// Attempts of `flaky_read` that fail before one succeeds.
static FAILURES_LEFT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[database_call(dependency = "flaky", idempotent, retry_if = always, fallback = from_cache)]
async fn flaky_read(x: u64) -> Result<u64, TestError> {
    let left = FAILURES_LEFT.load(Ordering::Relaxed);
    if left > 0 {
        FAILURES_LEFT.store(left - 1, Ordering::Relaxed);
        return Err(TestError::Failed("transient"));
    }
    Ok(x + 1)
}

fn always(_: &TestError) -> bool {
    true
}

async fn from_cache(x: u64, _: TestError) -> Result<u64, TestError> {
    Ok(x)
}

static FAIL: AtomicBool = AtomicBool::new(false);

/// Whether `guarded_read` fails.
static GUARDED_FAILS: AtomicBool = AtomicBool::new(false);

/// A fallback without retries: its body is built by a closure that borrows
/// the argument, which the fallback then gets back.
#[database_call(dependency = "guarded", fallback = from_cache)]
async fn guarded_read(x: u64) -> Result<u64, TestError> {
    if GUARDED_FAILS.load(Ordering::Relaxed) {
        return Err(TestError::Failed("down"));
    }
    Ok(x + 1)
}

#[database_call(dependency = "db")]
async fn ready(x: u64) -> Result<u64, TestError> {
    Ok(x + 1)
}

#[database_call(dependency = "db")]
async fn pending_once(x: u64) -> Result<u64, TestError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

#[database_call(dependency = "full")]
async fn hold() -> Result<(), TestError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[database_call(dependency = "full")]
async fn refused() -> Result<(), TestError> {
    Ok(())
}

#[database_call(dependency = "broken")]
async fn broken() -> Result<(), TestError> {
    if FAIL.load(Ordering::Relaxed) {
        Err(TestError::Failed("down"))
    } else {
        Ok(())
    }
}

#[database_call(dependency = "timed")]
async fn timed(x: u64) -> Result<u64, TestError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

/// Injected faults would open a breaker: this one has none.
#[database_call(dependency = "injected")]
async fn injected(x: u64) -> Result<u64, TestError> {
    Ok(x + 1)
}

/// A current-thread runtime, its clock paused or running: each test builds
/// its own, so that its calls are the only ones its thread counts.
fn current_thread(paused: bool) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(paused)
        .build()
        .unwrap()
}

#[test]
fn the_semaphore_path_allocates_nothing_per_call() {
    let tokio_rt = current_thread(false);
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let per_call = tokio_rt.block_on(rt.scope(async {
        let control = allocations_per_call(10, || async {
            std::hint::black_box(Box::new(1u64));
        })
        .await;
        assert_eq!(control, 1.0, "the counter sees a real allocation");
        let success =
            allocations_per_call(1000, || async { assert_eq!(ready(1).await, Ok(2)) }).await;
        let pending =
            allocations_per_call(1000, || async { assert_eq!(pending_once(1).await, Ok(2)) }).await;

        let holder = hold();
        let mut holder = std::pin::pin!(holder);
        assert!(
            futures_poll_once(holder.as_mut()).await,
            "the holder takes the only slot"
        );
        let rejection = allocations_per_call(1000, || async {
            assert!(refused()
                .await
                .unwrap_err()
                .resilience()
                .unwrap()
                .is_rejected())
        })
        .await;

        FAIL.store(true, Ordering::Relaxed);
        broken().await.unwrap_err();
        let short_circuit = allocations_per_call(1000, || async {
            assert!(broken()
                .await
                .unwrap_err()
                .resilience()
                .unwrap()
                .is_circuit_open())
        })
        .await;

        let admitted =
            allocations_per_call(1000, || async { assert_eq!(limited(1).await, Ok(2)) }).await;
        paced().await.unwrap();
        let rate_limited = allocations_per_call(1000, || async {
            assert!(paced()
                .await
                .unwrap_err()
                .resilience()
                .unwrap()
                .is_rate_limited())
        })
        .await;

        [
            success,
            pending,
            rejection,
            short_circuit,
            admitted,
            rate_limited,
        ]
    }));
    // On a paused clock, so that the waits for a turn cost no real time.
    let paused = current_thread(true);
    let waited = paused.block_on(rt.scope(async {
        let start = tokio::time::Instant::now();
        let waited =
            allocations_per_call(100, || async { assert_eq!(queued(1).await, Ok(2)) }).await;
        assert_eq!(
            start.elapsed(),
            std::time::Duration::from_millis(100),
            "each call after the first waited 1 ms for its turn"
        );
        waited
    }));
    assert_eq!(
        [per_call.as_slice(), &[waited]].concat(),
        [0.0; 7],
        "allocations per call: success, pending once, rejection, short-circuit, \
         admitted by the rate limiter, refused by it, waited for its turn"
    );
}

#[test]
fn timed_breakers_and_injected_faults_allocate_nothing_per_call() {
    // Paused, so that injected delays cost no real time.
    let paused = current_thread(true);
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let per_call = paused.block_on(rt.scope(async {
        // A breaker with a slow-call trigger and a time window: every call
        // is timed and lands in a per-second bucket.
        let timed_call =
            allocations_per_call(1000, || async { assert_eq!(timed(1).await, Ok(2)) }).await;
        let faults = rt.inject("injected");
        faults.fail_next(1001);
        let injected_fault = allocations_per_call(1000, || async {
            assert!(injected(1)
                .await
                .unwrap_err()
                .resilience()
                .unwrap()
                .is_injected_fault())
        })
        .await;
        faults.delay_next(1001, std::time::Duration::from_millis(1));
        let start = tokio::time::Instant::now();
        let injected_delay =
            allocations_per_call(1000, || async { assert_eq!(injected(1).await, Ok(2)) }).await;
        assert_eq!(
            start.elapsed(),
            std::time::Duration::from_millis(1001),
            "every call was delayed"
        );
        [timed_call, injected_fault, injected_delay]
    }));
    assert_eq!(
        per_call, [0.0; 3],
        "allocations per call: timed by its breaker, failed by injection, delayed by injection"
    );
}

#[test]
fn calls_after_a_reload_allocate_nothing() {
    let tokio_rt = current_thread(false);
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let reloaded = CONFIG
        .replace(
            "max_concurrent: 10, timeout_seconds: 10 }",
            "max_concurrent: 20, timeout_seconds: 5 }",
        )
        .replace(
            "rate_limit_per_second: 1000000,",
            "rate_limit_per_second: 999999,",
        );
    let report = rt.reload_from_yaml_str(&reloaded).unwrap();
    assert_eq!(report.changed.len(), 2, "{report}");
    let per_call = tokio_rt.block_on(rt.scope(async {
        let success =
            allocations_per_call(1000, || async { assert_eq!(ready(1).await, Ok(2)) }).await;
        let pending =
            allocations_per_call(1000, || async { assert_eq!(pending_once(1).await, Ok(2)) }).await;
        let limited =
            allocations_per_call(1000, || async { assert_eq!(limited(1).await, Ok(2)) }).await;
        [success, pending, limited]
    }));
    assert_eq!(
        per_call, [0.0; 3],
        "allocations per call on reloaded settings: success, pending once, rate-limited dependency"
    );
}

/// Polls `fut` once; true if it is still pending.
async fn futures_poll_once<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut fut = Some(fut);
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.take().unwrap().poll(cx).is_pending()))
        .await
}

#[test]
fn the_recovery_paths_allocate_nothing_per_call() {
    let tokio_rt = current_thread(true);
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    tokio_rt.block_on(rt.scope(async {
        let first_try = allocations_per_call(1000, || async {
            assert_eq!(flaky_read(1).await, Ok(2));
        })
        .await;
        let after_retries = allocations_per_call(1000, || async {
            FAILURES_LEFT.store(2, Ordering::Relaxed);
            assert_eq!(flaky_read(1).await, Ok(2));
        })
        .await;
        let fallback = allocations_per_call(1000, || async {
            FAILURES_LEFT.store(3, Ordering::Relaxed);
            assert_eq!(flaky_read(1).await, Ok(1));
        })
        .await;
        assert_eq!(
            [first_try, after_retries, fallback],
            [0.0; 3],
            "allocations per call: first-try success, success after two retries, fallback"
        );
    }));
    let flaky = rt.health_snapshot().dependencies["flaky"].clone();
    let retry = flaky.retry.unwrap();
    assert_eq!(retry.successful_without_retry, 1001);
    assert_eq!(retry.successful_with_retry, 1001);
    assert_eq!(flaky.fallback.unwrap().successful, 1001);
}

#[test]
fn a_fallback_without_retries_allocates_nothing_per_call() {
    let tokio_rt = current_thread(true);
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    tokio_rt.block_on(rt.scope(async {
        GUARDED_FAILS.store(false, Ordering::Relaxed);
        let success = allocations_per_call(1000, || async {
            assert_eq!(guarded_read(1).await, Ok(2));
        })
        .await;
        GUARDED_FAILS.store(true, Ordering::Relaxed);
        let fallback = allocations_per_call(1000, || async {
            assert_eq!(guarded_read(1).await, Ok(1));
        })
        .await;
        assert_eq!(
            [success, fallback],
            [0.0; 2],
            "allocations per call: success, fallback"
        );
    }));
    let guarded = rt.health_snapshot().dependencies["guarded"].clone();
    assert_eq!(guarded.fallback.unwrap().successful, 1001);
}

/// A timed site (its calls wait) that finishes a call in a new 5 s slice of
/// the latency window notes the counts there: that too allocates nothing.
#[test]
fn timed_calls_across_latency_slices_allocate_nothing() {
    let paused = current_thread(true);
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let [advance_alone, timed_in_new_slices] = paused.block_on(rt.scope(async {
        // The site's first call waits, so the calls measured below are timed.
        assert_eq!(pending_once(1).await, Ok(2));
        let six_seconds = std::time::Duration::from_secs(6);
        let advance_alone =
            allocations_per_call(100, || async { tokio::time::advance(six_seconds).await }).await;
        let timed = allocations_per_call(100, || async {
            tokio::time::advance(six_seconds).await;
            assert_eq!(pending_once(1).await, Ok(2));
        })
        .await;
        [advance_alone, timed]
    }));
    assert_eq!(
        advance_alone, 0.0,
        "the control: advancing the clock allocates nothing"
    );
    assert_eq!(
        timed_in_new_slices, 0.0,
        "allocations per timed call, each in a new slice"
    );
    let latency = rt.health_snapshot().dependencies["db"].latency.clone();
    assert!(latency.is_some(), "the calls were timed");
}
