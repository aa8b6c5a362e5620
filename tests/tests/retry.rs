//! Retries on tokio's paused clock: the exact schedule of each backoff, the
//! cap, the deadline, server hints, which failures are retried, the budget,
//! and counters that reconcile attempts with calls.

use resilience_runtime::{api_call, database_call, ResilienceError, Runtime};
use resilience_tests::{counters, health, TestError};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What one attempt does.
#[derive(Clone, Copy, Debug)]
enum Step {
    Fail(&'static str),
    /// Sleeps this long, then succeeds.
    Slow(Duration),
}

/// A scripted dependency: each attempt takes the next step (success once the
/// script runs out) and records when it started.
#[derive(Default)]
struct Script {
    steps: Mutex<VecDeque<Step>>,
    started: Mutex<Vec<Instant>>,
}

impl Script {
    fn new(steps: &[Step]) -> Self {
        Script {
            steps: Mutex::new(steps.iter().copied().collect()),
            started: Mutex::default(),
        }
    }

    fn failing(times: usize, error: &'static str) -> Self {
        Script::new(&vec![Step::Fail(error); times])
    }

    async fn run(&self) -> Result<u32, TestError> {
        self.started.lock().unwrap().push(Instant::now());
        let step = self.steps.lock().unwrap().pop_front();
        match step {
            None => Ok(self.attempts() as u32),
            Some(Step::Fail(e)) => Err(TestError::Failed(e)),
            Some(Step::Slow(d)) => {
                tokio::time::sleep(d).await;
                Ok(self.attempts() as u32)
            }
        }
    }

    fn attempts(&self) -> usize {
        self.started.lock().unwrap().len()
    }

    /// The waits between attempts, in milliseconds.
    fn gaps(&self) -> Vec<u128> {
        let started = self.started.lock().unwrap();
        started
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect()
    }
}

fn is_transient(e: &TestError) -> bool {
    !matches!(e, TestError::Failed("permanent"))
}

fn server_hint(e: &TestError) -> Option<Duration> {
    matches!(e, TestError::Failed("slow_down")).then_some(Duration::from_secs(2))
}

#[database_call(dependency = "flaky", idempotent, retry_if = is_transient, retry_after = server_hint)]
async fn read(script: &Script) -> Result<u32, TestError> {
    script.run().await
}

/// Same dependency, not idempotent: never retried.
#[database_call(dependency = "flaky")]
async fn write(script: &Script) -> Result<u32, TestError> {
    script.run().await
}

/// Idempotent with no `retry_if`: every body error is retried.
#[api_call(dependency = "narrow", idempotent)]
async fn narrow_read(script: &Script) -> Result<u32, TestError> {
    script.run().await
}

#[api_call(dependency = "narrow")]
async fn hold(gate: &tokio::sync::Notify) -> Result<u32, TestError> {
    gate.notified().await;
    Ok(0)
}

/// A blocking idempotent function, retried like the others.
#[database_call(dependency = "flaky", idempotent)]
fn blocking_read(
    fail_first: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> Result<u32, TestError> {
    use std::sync::atomic::Ordering;
    let left = fail_first.load(Ordering::SeqCst);
    if left > 0 {
        fail_first.store(left - 1, Ordering::SeqCst);
        return Err(TestError::Failed("transient"));
    }
    Ok(7)
}

/// A runtime whose `flaky` dependency has these extra keys.
fn runtime(flaky: &str) -> Runtime {
    Runtime::from_yaml_str(&format!(
        "
resilience:
  retry_jitter: none
  external_dependencies:
    flaky: {{ type: database, max_concurrent: 4, timeout_seconds: 5,
             circuit_breaker_failure_threshold: 1000000, {flaky} }}
    narrow: {{ type: external_api, max_concurrent: 1, enable_circuit_breaker: false,
              max_retry_attempts: 2, retry_jitter: none, retry_initial_delay_seconds: 1 }}
"
    ))
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn each_backoff_has_its_exact_schedule_and_cap() {
    let cases = [
        ("constant", vec![100, 100, 100, 100]),
        ("linear", vec![100, 200, 300, 400]),
        ("exponential", vec![100, 200, 400, 500]),
    ];
    for (backoff, expected) in cases {
        let rt = runtime(&format!(
            "max_retry_attempts: 4, retry_backoff: {backoff}, retry_initial_delay_seconds: 0.1, \
             retry_max_delay_seconds: 0.5"
        ));
        let script = Script::failing(4, "transient");
        assert_eq!(rt.scope(read(&script)).await, Ok(5));
        assert_eq!(script.gaps(), expected, "{backoff}");
        let retry = health(&rt, "flaky").retry.unwrap();
        assert_eq!(
            (
                retry.successful_with_retry,
                retry.retries,
                retry.max_attempts
            ),
            (1, 4, 5)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn jittered_waits_stay_within_their_bounds() {
    for (jitter, low) in [("full", 0), ("equal", 200)] {
        let rt = runtime(&format!(
            "max_retry_attempts: 3, retry_jitter: {jitter}, retry_backoff: constant, \
             retry_initial_delay_seconds: 0.4"
        ));
        for _ in 0..20 {
            let script = Script::failing(3, "transient");
            assert!(rt.scope(read(&script)).await.is_ok());
            assert!(
                script.gaps().iter().all(|&g| (low..=400).contains(&g)),
                "{jitter}: {:?}",
                script.gaps()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_hint_replaces_the_backoff_capped_at_the_max_delay() {
    let rt = runtime("max_retry_attempts: 2, retry_initial_delay_seconds: 0.1");
    let script = Script::new(&[Step::Fail("slow_down"), Step::Fail("transient")]);
    assert!(rt.scope(read(&script)).await.is_ok());
    assert_eq!(script.gaps(), [2000, 200]);

    let rt = runtime("max_retry_attempts: 1, retry_max_delay_seconds: 0.5");
    let script = Script::failing(1, "slow_down");
    assert!(rt.scope(read(&script)).await.is_ok());
    assert_eq!(script.gaps(), [500]);
}

#[tokio::test(start_paused = true)]
async fn a_non_idempotent_site_is_attempted_once_whatever_the_config() {
    let rt = runtime("max_retry_attempts: 3, retry_initial_delay_seconds: 0");
    let script = Script::failing(1, "transient");
    assert_eq!(
        rt.scope(write(&script)).await,
        Err(TestError::Failed("transient"))
    );
    assert_eq!(script.attempts(), 1);
    let script = Script::failing(1, "transient");
    assert_eq!(rt.scope(read(&script)).await, Ok(2));
    assert_eq!(counters(&rt, "flaky"), [1, 2, 0, 0, 0, 0]);
    // The retry figures count the idempotent site's calls only.
    let retry = health(&rt, "flaky").retry.unwrap();
    assert_eq!((retry.successful_with_retry, retry.retries), (1, 1));
    assert_eq!(
        retry.failed_without_retry + retry.successful_without_retry,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn retry_if_false_stops_at_once() {
    let rt = runtime("max_retry_attempts: 3");
    let script = Script::failing(3, "permanent");
    assert_eq!(
        rt.scope(read(&script)).await,
        Err(TestError::Failed("permanent"))
    );
    assert_eq!(script.attempts(), 1);
    assert_eq!(health(&rt, "flaky").retry.unwrap().failed_without_retry, 1);
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_is_never_retried() {
    let rt = Runtime::from_yaml_str(
        "
resilience:
  external_dependencies:
    flaky: { type: database, max_concurrent: 4, circuit_breaker_failure_threshold: 2,
             max_retry_attempts: 5, retry_initial_delay_seconds: 0 }
    narrow: { type: external_api }
",
    )
    .unwrap();
    let script = Script::failing(10, "transient");
    let result = rt.scope(read(&script)).await;
    // Two failures open the breaker; the third attempt is refused and ends the call.
    assert!(result
        .unwrap_err()
        .resilience()
        .is_some_and(ResilienceError::is_circuit_open));
    assert_eq!(script.attempts(), 2);
    assert_eq!(counters(&rt, "flaky"), [0, 2, 0, 0, 1, 0]);
    let retry = health(&rt, "flaky").retry.unwrap();
    assert_eq!((retry.retries, retry.failed_with_retry), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_retried_by_default_and_rejections_only_when_listed() {
    let rt = runtime("max_retry_attempts: 1, retry_initial_delay_seconds: 0");
    let script = Script::new(&[Step::Slow(Duration::from_secs(60))]);
    assert_eq!(rt.scope(read(&script)).await, Ok(2));
    assert_eq!(counters(&rt, "flaky"), [1, 0, 1, 0, 0, 0]);

    // `narrow` has one slot: with it held, a call is rejected.
    for (retry_on, attempts) in [("", 0), ("retry_on: [rejected],", 1)] {
        let rt = Runtime::from_yaml_str(&format!(
            "
resilience:
  external_dependencies:
    flaky: {{ type: database }}
    narrow: {{ type: external_api, max_concurrent: 1, enable_circuit_breaker: false, {retry_on}
              max_retry_attempts: 2, retry_jitter: none, retry_initial_delay_seconds: 1 }}
"
        ))
        .unwrap();
        let gate = std::sync::Arc::new(tokio::sync::Notify::new());
        let holder = {
            let (rt, gate) = (rt.clone(), gate.clone());
            tokio::spawn(async move { rt.scope(hold(&gate)).await })
        };
        tokio::task::yield_now().await;
        let script = Script::default();
        let call = rt.scope(narrow_read(&script));
        if attempts == 0 {
            let refused = call.await.unwrap_err();
            assert!(refused
                .resilience()
                .is_some_and(ResilienceError::is_rejected));
            assert_eq!(counters(&rt, "narrow")[3], 1);
        } else {
            // Rejected once, then the slot frees during the 1 s backoff.
            let release = async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                gate.notify_one();
            };
            let (result, ()) = tokio::join!(call, release);
            assert_eq!(result, Ok(1));
            assert_eq!(counters(&rt, "narrow"), [2, 0, 0, 1, 0, 0]);
        }
        gate.notify_one();
        holder.await.unwrap().unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_waits_and_shortens_the_last_attempt() {
    // Waits of 1 s; a 2.5 s deadline; 5 s call timeout.
    let rt = runtime(
        "max_retry_attempts: 5, retry_backoff: constant, retry_initial_delay_seconds: 1, \
         retry_max_elapsed_seconds: 2.5",
    );
    let script = Script::new(&[
        Step::Fail("transient"),
        Step::Fail("transient"),
        Step::Slow(Duration::from_secs(60)),
    ]);
    let started = Instant::now();
    let result = rt.scope(read(&script)).await;
    // Attempts at 0 s and 1 s; the third at 2 s gets the 0.5 s left, not 5 s.
    assert_eq!(script.gaps(), [1000, 1000]);
    let timeout = match result {
        Err(TestError::Resilience(ResilienceError::Timeout { timeout, .. })) => timeout,
        other => panic!("expected a timeout, got {other:?}"),
    };
    assert_eq!(timeout, Duration::from_millis(500));
    assert_eq!(started.elapsed(), Duration::from_millis(2500));
    let retry = health(&rt, "flaky").retry.unwrap();
    assert_eq!(
        (
            retry.deadline_exhausted,
            retry.failed_with_retry,
            retry.retries
        ),
        (1, 1, 2)
    );

    // A wait that would end past the deadline is not started.
    let rt = runtime(
        "max_retry_attempts: 5, retry_backoff: constant, retry_initial_delay_seconds: 2, \
         retry_max_elapsed_seconds: 3",
    );
    let script = Script::failing(5, "transient");
    assert!(rt.scope(read(&script)).await.is_err());
    assert_eq!(script.attempts(), 2);
    assert_eq!(health(&rt, "flaky").retry.unwrap().deadline_exhausted, 1);

    // Out of attempts before the deadline: not a deadline stop.
    let rt = runtime(
        "max_retry_attempts: 1, retry_initial_delay_seconds: 0, retry_max_elapsed_seconds: 60",
    );
    let script = Script::failing(5, "transient");
    assert!(rt.scope(read(&script)).await.is_err());
    let retry = health(&rt, "flaky").retry.unwrap();
    assert_eq!((retry.deadline_exhausted, retry.failed_with_retry), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_across_calls_and_counts_the_refusals() {
    // 20 % of first attempts plus 1 per second × 10 s.
    let rt = runtime(
        "max_retry_attempts: 3, retry_initial_delay_seconds: 0, retry_budget_ratio: 0.2, \
         retry_budget_min_per_second: 1",
    );
    for _ in 0..1000 {
        let script = Script::failing(10, "transient");
        assert!(rt.scope(read(&script)).await.is_err());
    }
    let retry = health(&rt, "flaky").retry.unwrap();
    assert_eq!(retry.retries, 200 + 10);
    let calls = retry.failed_with_retry + retry.failed_without_retry;
    assert_eq!(calls, 1000);
    // The first three calls make all their attempts on the reserve (9 of its
    // 10); every later call wants more retries than the budget grants.
    assert_eq!(retry.budget_exhausted, 997);
    let attempts: u64 = counters(&rt, "flaky").iter().sum();
    assert_eq!(attempts, calls + retry.retries);
}

#[tokio::test(start_paused = true)]
async fn a_blocking_idempotent_fn_is_retried() {
    let rt = runtime("max_retry_attempts: 2, retry_initial_delay_seconds: 0");
    let fails = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(2));
    assert_eq!(rt.scope(blocking_read(fails)).await, Ok(7));
    let retry = health(&rt, "flaky").retry.unwrap();
    assert_eq!((retry.successful_with_retry, retry.retries), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn retries_zero_or_disabled_leave_the_retry_figures_null() {
    for keys in [
        "max_retry_attempts: 0",
        "max_retry_attempts: 3, retry_enabled: false",
    ] {
        let rt = runtime(keys);
        let script = Script::failing(1, "transient");
        assert!(rt.scope(read(&script)).await.is_err());
        assert!(health(&rt, "flaky").retry.is_none(), "{keys}");
        assert_eq!(counters(&rt, "flaky"), [0, 1, 0, 0, 0, 0]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_that_recovers_by_retry_leaves_the_dependency_healthy() {
    let rt = runtime("max_retry_attempts: 2, retry_initial_delay_seconds: 0");
    let script = Script::failing(2, "transient");
    assert!(rt.scope(read(&script)).await.is_ok());
    let json = serde_json::to_value(health(&rt, "flaky")).unwrap();
    assert_eq!(json["status"], "healthy");
    assert_eq!(json["retry"]["successful_with_retry"], 1);
    assert_eq!(json["fallback"], serde_json::Value::Null);
}
