//! Fallbacks run once a call has failed for good, with the function's own
//! arguments and the error; plus counters that reconcile under a random mix
//! of outcomes and cancellations.

use resilience_runtime::{cache_call, database_call, ResilienceError, Runtime};
use resilience_tests::{counters, health, TestError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONFIG: &str = "
resilience:
  retry_jitter: none
  external_dependencies:
    db: { type: database, max_concurrent: 1000, timeout_seconds: 5, circuit_breaker_failure_threshold: 1000000,
          max_retry_attempts: 2, retry_initial_delay_seconds: 0.1, retry_budget_min_per_second: 100000 }
    cache: { type: cache, max_concurrent: 8 }
";

/// Arguments the fallback saw, and the error it was given.
#[derive(Default)]
struct Seen {
    attempts: AtomicU32,
    fallback: Mutex<Vec<(u64, String, String)>>,
}

#[database_call(dependency = "db", idempotent, fallback = pet_from_cache)]
async fn get_pet(seen: &Seen, id: u64, name: String) -> Result<String, TestError> {
    seen.attempts.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        return Err(TestError::Failed("database down"));
    }
    Ok(format!("{name} from db"))
}

/// Itself protected, by the cache's policies.
#[cache_call(dependency = "cache")]
async fn pet_from_cache(
    seen: &Seen,
    id: u64,
    name: String,
    error: TestError,
) -> Result<String, TestError> {
    seen.fallback
        .lock()
        .unwrap()
        .push((id, name.clone(), format!("{error:?}")));
    if name == "missing" {
        return Err(TestError::Failed("not cached either"));
    }
    Ok(format!("{name} from cache"))
}

/// Not idempotent: one attempt, then the fallback.
#[database_call(dependency = "db", fallback = charge_later)]
async fn charge(amount: u64) -> Result<u64, TestError> {
    let _ = amount;
    Err(TestError::Failed("declined"))
}

async fn charge_later(amount: u64, error: TestError) -> Result<u64, TestError> {
    assert_eq!(error, TestError::Failed("declined"));
    Ok(amount * 100)
}

struct Repo {
    prefix: &'static str,
}

impl Repo {
    #[database_call(dependency = "db", idempotent, fallback = Self::remembered)]
    async fn load(&self, id: u64) -> Result<String, TestError> {
        Err(TestError::Failed(if id == 1 { "down" } else { "gone" }))
    }

    async fn remembered(&self, id: u64, error: TestError) -> Result<String, TestError> {
        Ok(format!("{}{id} after {error:?}", self.prefix))
    }
}

/// A `&mut` argument is lent to the attempt, then to the fallback.
#[database_call(dependency = "db", fallback = log_later)]
async fn log(entries: &mut Vec<String>, line: &'static str) -> Result<usize, TestError> {
    entries.push(format!("tried {line}"));
    Err(TestError::Failed("log store down"))
}

async fn log_later(
    entries: &mut Vec<String>,
    line: &'static str,
    error: TestError,
) -> Result<usize, TestError> {
    entries.push(format!("kept {line} after {error:?}"));
    Ok(entries.len())
}

/// A blocking fn's fallback is a blocking fn, run off the async workers.
#[database_call(dependency = "db", fallback = read_backup)]
fn read_file(path: String) -> Result<String, TestError> {
    let _ = path;
    Err(TestError::Failed("disk error"))
}

fn read_backup(path: String, error: TestError) -> Result<String, TestError> {
    let thread = format!("{:?}", std::thread::current().id());
    Ok(format!("{path}.bak after {error:?} on {thread}"))
}

#[tokio::test(start_paused = true)]
async fn the_fallback_runs_once_after_the_retries_with_the_arguments_and_the_error() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let seen = Seen::default();
    let result = rt.scope(get_pet(&seen, 0, "Rex".into())).await;
    assert_eq!(result, Ok("Rex from cache".into()));
    assert_eq!(seen.attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        *seen.fallback.lock().unwrap(),
        [(
            0,
            "Rex".to_string(),
            "Failed(\"database down\")".to_string()
        )]
    );
    let db = health(&rt, "db");
    let fallback = db.fallback.unwrap();
    assert_eq!(
        (fallback.invoked, fallback.successful, fallback.failed),
        (1, 1, 0)
    );
    assert_eq!(db.retry.unwrap().failed_with_retry, 1);
    // The fallback's own call went through the cache's policies.
    assert_eq!(counters(&rt, "cache"), [1, 0, 0, 0, 0, 0]);
    assert!(health(&rt, "cache").fallback.is_none());

    // A success does not touch the fallback.
    assert_eq!(
        rt.scope(get_pet(&seen, 5, "Tom".into())).await,
        Ok("Tom from db".into())
    );
    assert_eq!(health(&rt, "db").fallback.unwrap().invoked, 1);
}

#[tokio::test(start_paused = true)]
async fn the_fallbacks_own_failure_is_returned() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let seen = Seen::default();
    let result = rt.scope(get_pet(&seen, 0, "missing".into())).await;
    assert_eq!(result, Err(TestError::Failed("not cached either")));
    let fallback = health(&rt, "db").fallback.unwrap();
    assert_eq!(
        (fallback.invoked, fallback.successful, fallback.failed),
        (1, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_policy_refusal_reaches_the_fallback_too() {
    let rt = Runtime::from_yaml_str(
        "
resilience:
  external_dependencies:
    db: { type: database, circuit_breaker_failure_threshold: 1, circuit_breaker_timeout: 60 }
    cache: { type: cache }
",
    )
    .unwrap();
    let seen = Seen::default();
    assert!(rt.scope(get_pet(&seen, 0, "Rex".into())).await.is_ok());
    // The breaker is open now: the body does not run, the fallback does.
    assert!(rt.scope(get_pet(&seen, 0, "Rex".into())).await.is_ok());
    assert_eq!(seen.attempts.load(Ordering::SeqCst), 1);
    let errors: Vec<String> = seen
        .fallback
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.2.clone())
        .collect();
    assert!(errors[1].contains("CircuitOpen"), "{errors:?}");
}

#[tokio::test(start_paused = true)]
async fn a_non_idempotent_site_falls_back_after_one_attempt() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    assert_eq!(rt.scope(charge(7)).await, Ok(700));
    assert_eq!(counters(&rt, "db"), [0, 1, 0, 0, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_method_passes_self_to_its_fallback() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let repo = Repo { prefix: "pet-" };
    assert_eq!(
        rt.scope(repo.load(1)).await,
        Ok("pet-1 after Failed(\"down\")".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_mut_argument_reaches_the_fallback_after_the_attempt() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let mut entries = Vec::new();
    assert_eq!(rt.scope(log(&mut entries, "a")).await, Ok(2));
    assert_eq!(
        entries,
        ["tried a", "kept a after Failed(\"log store down\")"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_blocking_fallback_runs_on_a_blocking_thread() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let result = rt.scope(read_file("/pets.csv".into())).await.unwrap();
    let (text, thread) = result.split_once(" on ").unwrap();
    assert_eq!(text, "/pets.csv.bak after Failed(\"disk error\")");
    // The test's current-thread runtime polls every task on this thread.
    assert_ne!(thread, format!("{:?}", std::thread::current().id()));
    assert_eq!(health(&rt, "db").fallback.unwrap().successful, 1);
}

/// Fails when `fail` is set, after one pending step so cancellation can hit
/// an attempt as well as a backoff.
#[database_call(dependency = "db", idempotent)]
async fn mixed(fail: Arc<Vec<bool>>, attempt: Arc<AtomicU32>) -> Result<(), TestError> {
    let n = attempt.fetch_add(1, Ordering::SeqCst) as usize;
    tokio::time::sleep(Duration::from_millis(30)).await;
    if fail.get(n).copied().unwrap_or(false) {
        return Err(TestError::Failed("scripted"));
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn counters_reconcile_under_a_random_mix_with_cancellations() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    // A fixed-seed generator: the run is the same every time.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let calls = 400u64;
    let mut tasks = Vec::new();
    for _ in 0..calls {
        let fail: Vec<bool> = (0..3).map(|_| next(2) == 0).collect();
        // Some calls are cancelled part-way: during an attempt (30 ms each)
        // or a backoff (100 ms, then 200 ms).
        let give_up = (next(3) == 0).then(|| Duration::from_millis(next(400)));
        let call = rt.scope(mixed(Arc::new(fail), Arc::new(AtomicU32::new(0))));
        tasks.push(tokio::spawn(async move {
            match give_up {
                Some(after) => {
                    let _ = tokio::time::timeout(after, call).await;
                }
                None => {
                    let _ = call.await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let db = health(&rt, "db");
    let r = db.retry.unwrap();
    let logical = r.successful_without_retry
        + r.successful_with_retry
        + r.failed_without_retry
        + r.failed_with_retry;
    assert_eq!(logical, calls, "{r:?}");
    assert_eq!(
        db.bulkhead.total_requests,
        calls + r.retries,
        "{r:?} {:?}",
        db.bulkhead
    );
    assert!(
        db.bulkhead.cancelled_requests > 0,
        "some attempts were cancelled: {r:?} {:?}",
        db.bulkhead
    );
    assert_eq!(db.bulkhead.current_load, 0, "every slot is free");
    assert_eq!(
        db.bulkhead.successful_requests,
        r.successful_without_retry + r.successful_with_retry
    );
}

#[tokio::test(start_paused = true)]
async fn refusals_reach_the_caller_as_the_functions_error() {
    let rt = Runtime::from_yaml_str(
        "
resilience:
  external_dependencies:
    db: { type: database, max_concurrent: 1, reject_on_full: true, enable_circuit_breaker: false }
    cache: { type: cache }
",
    )
    .unwrap();
    let slow = rt.scope(mixed(Arc::new(vec![]), Arc::new(AtomicU32::new(0))));
    let fast = rt.scope(mixed(Arc::new(vec![]), Arc::new(AtomicU32::new(0))));
    let (a, b) = tokio::join!(slow, fast);
    assert_eq!(a, Ok(()));
    assert!(b
        .unwrap_err()
        .resilience()
        .is_some_and(ResilienceError::is_rejected));
}
