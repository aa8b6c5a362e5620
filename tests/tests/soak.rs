//! A bounded randomized soak: about 200 000 calls on 2 worker threads, with
//! errors, panics, timeouts, cancellations (while running and while waiting
//! for a slot), rejections, and failure storms that open the breakers, which
//! then half-open and close again.
//!
//! At every body it checks that no more bodies run than the dependency's
//! cap; at the end, that every counter equals the harness's own count of
//! what its callers saw, that no permit leaked, and that the breakers really
//! opened and closed. Timings are a few milliseconds, so the soak measures
//! the runtime, not the clock; the seed is printed, and `SOAK_SEED` and
//! `SOAK_CALLS` replay or lengthen a run.

use resilience_runtime::{
    api_call, cache_call, database_call, BreakerState, ResilienceError, Runtime,
};
use resilience_tests::{counters, health, TestError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

const CONFIG: &str = "
resilience:
  external_dependencies:
    soak_db:
      type: database
      max_concurrent: 8
      max_wait_seconds: 0
      timeout_seconds: 0.005
      circuit_breaker_failure_threshold: 10
      circuit_breaker_timeout: 0.002
      circuit_breaker_half_open_max_calls: 2
      circuit_breaker_success_threshold: 2
    soak_wait:
      type: cache
      max_concurrent: 3
      max_wait_seconds: 0.002
      timeout_seconds: 0.005
      enable_circuit_breaker: false
    soak_pool:
      type: external_api
      bulkhead_type: thread_pool
      max_workers: 2
      queue_capacity: 4
      timeout_seconds: 0.005
      circuit_breaker_failure_threshold: 8
      circuit_breaker_timeout: 0.002
";

const DEPS: [(&str, u32); 3] = [("soak_db", 8), ("soak_wait", 3), ("soak_pool", 2)];

/// What one body does.
#[derive(Clone, Copy, Debug)]
enum Act {
    Ok,
    Fail,
    Panic,
    /// Sleeps past the 5 ms timeout.
    Slow,
}

/// Bodies running now and the most seen, per dependency; a body that finds
/// more running than the cap records it.
struct Running {
    now: [AtomicU32; 3],
    peak: [AtomicU32; 3],
}

static RUNNING: Running = Running {
    now: [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)],
    peak: [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)],
};

/// Counts a body in while alive, including through a panic or a drop.
struct InBody(usize);

impl InBody {
    fn enter(dep: usize) -> InBody {
        let now = RUNNING.now[dep].fetch_add(1, Ordering::SeqCst) + 1;
        RUNNING.peak[dep].fetch_max(now, Ordering::SeqCst);
        InBody(dep)
    }
}

impl Drop for InBody {
    fn drop(&mut self) {
        RUNNING.now[self.0].fetch_sub(1, Ordering::SeqCst);
    }
}

async fn act(dep: usize, act: Act) -> Result<u32, TestError> {
    let _in = InBody::enter(dep);
    tokio::task::yield_now().await;
    match act {
        Act::Ok => Ok(1),
        Act::Fail => Err(TestError::Failed("scripted")),
        Act::Panic => panic!("scripted panic"),
        Act::Slow => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(1)
        }
    }
}

#[database_call(dependency = "soak_db")]
async fn db_call(a: Act) -> Result<u32, TestError> {
    act(0, a).await
}

#[cache_call(dependency = "soak_wait")]
async fn wait_call(a: Act) -> Result<u32, TestError> {
    act(1, a).await
}

/// A thread-pool job; "slow" spins on the clock (no sleep) past the timeout,
/// and the slot stays taken until it really ends.
#[api_call(dependency = "soak_pool")]
fn pool_call(a: Act) -> Result<u32, TestError> {
    let _in = InBody::enter(2);
    match a {
        Act::Ok => Ok(1),
        Act::Fail => Err(TestError::Failed("scripted")),
        Act::Panic => panic!("scripted panic"),
        Act::Slow => {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(8) {
                std::hint::spin_loop();
            }
            Ok(1)
        }
    }
}

/// What a caller saw, in the snapshot's order.
#[derive(Clone, Copy)]
enum Seen {
    Success = 0,
    Failed = 1,
    TimedOut = 2,
    Rejected = 3,
    ShortCircuited = 4,
    Cancelled = 5,
}

fn seen(result: Result<Result<u32, TestError>, tokio::time::error::Elapsed>) -> Seen {
    match result {
        Err(_) => Seen::Cancelled,
        Ok(Ok(_)) => Seen::Success,
        Ok(Err(TestError::Failed(_))) => Seen::Failed,
        Ok(Err(TestError::Resilience(e))) => match e {
            ResilienceError::Timeout { .. } => Seen::TimedOut,
            ResilienceError::Rejected { .. } => Seen::Rejected,
            ResilienceError::CircuitOpen { .. } => Seen::ShortCircuited,
            other => panic!("no soak call can end with {other}"),
        },
    }
}

/// xorshift64*: a seeded, reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One call: its dependency, what its body does, and whether the caller
/// gives up after `patience` (dropping the call).
struct Plan {
    dep: usize,
    act: Act,
    patience: Option<Duration>,
}

fn plan(rng: &mut Rng, storm: bool) -> Plan {
    let dep = rng.below(3) as usize;
    let roll = rng.below(1000);
    let act = if storm {
        // A failure storm: most calls fail, so the breakers open.
        if roll < 900 {
            Act::Fail
        } else {
            Act::Ok
        }
    } else if roll < 20 {
        Act::Panic
    } else if roll < 40 {
        Act::Slow
    } else if roll < 140 {
        Act::Fail
    } else {
        Act::Ok
    };
    // Some callers give up before the body or the timeout ends: while the
    // body runs, or while they wait for a slot of `soak_wait`.
    let patience = (rng.below(100) < 3).then(|| Duration::from_micros(500 + rng.below(3000)));
    Plan { dep, act, patience }
}

/// Watches the breakers of `soak_db` and `soak_pool` every millisecond, and
/// counts each time one was seen open and later closed: it closed at least
/// that often.
fn watch_breakers(rt: &Runtime, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<[u64; 2]> {
    let rt = rt.clone();
    tokio::spawn(async move {
        let (mut closed_again, mut was_open) = ([0; 2], [false; 2]);
        while !stop.load(Ordering::SeqCst) {
            for (i, name) in ["soak_db", "soak_pool"].into_iter().enumerate() {
                match health(&rt, name).circuit_breaker.unwrap().state {
                    BreakerState::Open => was_open[i] = true,
                    BreakerState::Closed if was_open[i] => {
                        was_open[i] = false;
                        closed_again[i] += 1;
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        closed_again
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_randomized_soak_keeps_every_bound_and_every_count() {
    let calls: u64 = std::env::var("SOAK_CALLS").map_or(200_000, |v| v.parse().unwrap());
    let seed: u64 = std::env::var("SOAK_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |v| v.parse().unwrap(),
    );
    println!("soak: {calls} calls, SOAK_SEED={seed}");
    // Scripted panics are expected; any other still prints.
    std::panic::set_hook(Box::new(|info| {
        if info.payload().downcast_ref::<&str>() != Some(&"scripted panic") {
            eprintln!("{info}");
        }
    }));

    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_breakers(&rt, Arc::clone(&stop));
    let mut rng = Rng(seed);
    let seen_by_callers: Arc<[[AtomicU64; 6]; 3]> = Arc::new(Default::default());
    let mut tasks = JoinSet::new();
    let mut dep_of = HashMap::new();
    let mut panicked = [0u64; 3];
    let mut join = |done: Option<Result<(tokio::task::Id, ()), tokio::task::JoinError>>,
                    dep_of: &mut HashMap<tokio::task::Id, usize>| {
        match done.expect("a task is running") {
            Ok((id, ())) => {
                dep_of.remove(&id);
            }
            // A body's panic reaches its caller: a failed call.
            Err(e) => {
                assert!(e.is_panic(), "{e}");
                panicked[dep_of.remove(&e.id()).unwrap()] += 1;
            }
        }
    };
    for i in 0..calls {
        // A failure storm of 1 500 calls in every 20 000.
        let storm = i % 20_000 >= 18_500;
        let Plan { dep, act, patience } = plan(&mut rng, storm);
        let seen_by_callers = Arc::clone(&seen_by_callers);
        let call = async move {
            let call = async move {
                match dep {
                    0 => db_call(act).await,
                    1 => wait_call(act).await,
                    _ => pool_call(act).await,
                }
            };
            // `timeout` polls the call before its timer, so a call that ends
            // on its first poll is never seen as cancelled.
            let result = match patience {
                Some(p) => tokio::time::timeout(p, call).await,
                None => Ok(call.await),
            };
            seen_by_callers[dep][seen(result) as usize].fetch_add(1, Ordering::SeqCst);
        };
        let id = tasks.spawn(rt.scope(call)).id();
        dep_of.insert(id, dep);
        while tasks.len() >= 64 {
            join(tasks.join_next_with_id().await, &mut dep_of);
        }
        if i % 1000 == 0 {
            assert_caps();
        }
    }
    while !tasks.is_empty() {
        join(tasks.join_next_with_id().await, &mut dep_of);
    }
    let _ = std::panic::take_hook();
    let mut want: [[u64; 6]; 3] = std::array::from_fn(|d| {
        std::array::from_fn(|k| seen_by_callers[d][k].load(Ordering::SeqCst))
    });
    for (d, n) in panicked.iter().enumerate() {
        want[d][Seen::Failed as usize] += n;
    }
    check_counts(&rt, &want).await;
    // Calls that succeed close the breakers; the watcher sees it.
    settle_breakers(&rt).await;
    stop.store(true, Ordering::SeqCst);
    let closed_again = watcher.await.unwrap();
    println!(
        "soak: breakers seen open, then closed again: soak_db {}, soak_pool {}",
        closed_again[0], closed_again[1]
    );
    for (name, n) in ["soak_db", "soak_pool"].into_iter().zip(closed_again) {
        assert!(
            n >= 3,
            "{name}: its breaker was seen to open and close only {n} times"
        );
    }
    all_slots_free(&rt).await;
}

fn assert_caps() {
    for (i, (name, cap)) in DEPS.iter().enumerate() {
        let peak = RUNNING.peak[i].load(Ordering::SeqCst);
        assert!(
            peak <= *cap,
            "{name}: {peak} bodies ran at once, over its cap of {cap}"
        );
    }
}

/// Every counter equals what the callers saw, and nothing is held.
async fn check_counts(rt: &Runtime, want: &[[u64; 6]; 3]) {
    assert_caps();
    // Thread-pool jobs whose callers gave up may still be running.
    for _ in 0..10_000 {
        if DEPS
            .iter()
            .all(|(name, _)| health(rt, name).bulkhead.current_load == 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for (i, (name, cap)) in DEPS.iter().enumerate() {
        let got = counters(rt, name);
        assert_eq!(
            got, want[i],
            "{name}: the snapshot's [ok, failed, timed out, rejected, short-circuited, cancelled] \
             against what the callers saw"
        );
        let h = health(rt, name);
        assert_eq!(h.bulkhead.current_load, 0, "{name}: a permit leaked");
        assert_eq!(
            h.bulkhead.queued.unwrap_or(0),
            0,
            "{name}: a queued job leaked"
        );
        assert_eq!(
            RUNNING.now[i].load(Ordering::SeqCst),
            0,
            "{name}: a body is still running"
        );
        let peak = RUNNING.peak[i].load(Ordering::SeqCst);
        println!("soak: {name}: {got:?}, at most {peak} of {cap} bodies at once");
    }
}

/// Calls that succeed until both breakers are closed.
async fn settle_breakers(rt: &Runtime) {
    for _ in 0..1000 {
        let closed = ["soak_db", "soak_pool"]
            .iter()
            .all(|name| health(rt, name).circuit_breaker.unwrap().state == BreakerState::Closed);
        if closed {
            // Long enough for the watcher to look once more.
            tokio::time::sleep(Duration::from_millis(5)).await;
            return;
        }
        let _ = rt
            .scope(async { (db_call(Act::Ok).await, pool_call(Act::Ok).await) })
            .await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the breakers did not close once calls succeeded");
}

/// The whole capacity of `soak_db` is admitted at once: no slot leaked.
async fn all_slots_free(rt: &Runtime) {
    let (gate, _) = tokio::sync::broadcast::channel::<()>(1);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut open = gate.subscribe();
            tokio::spawn(rt.scope(held(async move {
                let _ = open.recv().await;
            })))
        })
        .collect();
    let admitted = async {
        while health(rt, "soak_db").bulkhead.current_load < 8 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), admitted)
        .await
        .expect("all 8 slots of soak_db are admitted at once");
    let _ = gate.send(());
    for c in calls {
        c.await.unwrap().unwrap();
    }
}

/// A `soak_db` call that holds its slot until `until` ends.
#[database_call(dependency = "soak_db")]
async fn held(until: impl std::future::Future<Output = ()>) -> Result<(), TestError> {
    until.await;
    Ok(())
}
