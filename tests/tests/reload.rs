//! Reloading a runtime in place: what carries over (breaker state, counters,
//! calls in flight, an operator's override, the limiter's turns), what takes
//! effect for the next call, and what is refused, on the paused clock except
//! where real threads race.

use resilience_runtime::{
    database_call, file_system_call, BreakerState, ConfigError, ResilienceError, Runtime,
};
use resilience_tests::{counters, eventually, health, TestError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// `db` with the given extra keys; `files` and `spare` as they are.
fn config(db: &str) -> String {
    format!(
        "resilience:
  external_dependencies:
    db:
      type: database
      max_concurrent: 4
      timeout_seconds: 1
      circuit_breaker_failure_threshold: 2
      circuit_breaker_timeout: 30
{db}
    files:
      type: file_system
      bulkhead_type: thread_pool
      max_workers: 1
      queue_capacity: 0
    spare:
      type: cache
"
    )
}

/// Fails when asked; waits for a permit of `gate` when given one.
#[database_call(dependency = "db")]
async fn query(fail: bool, gate: Option<Arc<Semaphore>>) -> Result<u32, TestError> {
    if let Some(gate) = gate {
        gate.acquire().await.unwrap().forget();
    }
    if fail {
        Err(TestError::Failed("no"))
    } else {
        Ok(1)
    }
}

#[file_system_call(dependency = "files")]
fn hash(barrier: Arc<std::sync::Barrier>) -> Result<u32, TestError> {
    barrier.wait();
    Ok(7)
}

fn rejected(err: &TestError) -> bool {
    matches!(err.resilience(), Some(ResilienceError::Rejected { .. }))
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_stays_open_across_a_reload_of_its_timeout_and_the_counters_carry_over() {
    let rt = Runtime::from_yaml_str(&config("")).unwrap();
    for _ in 0..2 {
        assert!(rt.scope(query(true, None)).await.is_err());
    }
    let before = counters(&rt, "db");
    assert_eq!(before, [0, 2, 0, 0, 0, 0]);
    assert_eq!(rt.health_snapshot().config_version, 1);

    let report = rt
        .reload_from_yaml_str(
            &config("      timeout_seconds: 2").replace("      timeout_seconds: 1\n", ""),
        )
        .unwrap();
    assert_eq!(report.config_version, 2);
    assert_eq!(report.changed.len(), 1, "{report}");
    let change = &report.changed["db"];
    assert_eq!(change.len(), 1, "{report}");
    assert_eq!(
        (
            change[0].key.as_str(),
            change[0].old.as_str(),
            change[0].new.as_str()
        ),
        ("timeout_seconds", "1", "2")
    );
    assert!(report.breakers_restarted.is_empty());
    assert_eq!(
        report.to_string(),
        "config version 2: db: timeout_seconds 1 → 2"
    );

    let control = rt.circuit_breaker("db").unwrap();
    assert_eq!(
        control.state(),
        BreakerState::Open,
        "what the breaker learned stays"
    );
    let err = rt.scope(query(false, None)).await.unwrap_err();
    assert!(
        matches!(err.resilience(), Some(ResilienceError::CircuitOpen { .. })),
        "{err:?}"
    );
    assert_eq!(
        counters(&rt, "db"),
        [0, 2, 0, 0, 1, 0],
        "counters carried over"
    );
    let snapshot = rt.health_snapshot();
    assert_eq!(snapshot.config_version, 2);
    assert!(snapshot.reloaded_at.is_some());
    assert_eq!(snapshot.dependencies["db"].timeout_seconds, Some(2.0));
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(json["config_version"], 2);
    assert!(json["reloaded_at"].is_string());

    // Its recovery time is the one it opened with: probes after 30 s.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(rt.scope(query(false, None)).await, Ok(1));
    assert_eq!(control.state(), BreakerState::Closed, "its probe closed it");
}

#[tokio::test(start_paused = true)]
async fn calls_in_flight_keep_their_slots_and_a_smaller_bulkhead_admits_nobody_until_the_load_falls(
) {
    let rt = Runtime::from_yaml_str(&config("")).unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let running: Vec<_> = (0..4)
        .map(|_| rt.spawn(query(false, Some(gate.clone()))))
        .collect();
    eventually("four calls in flight", || {
        health(&rt, "db").bulkhead.current_load == 4
    })
    .await;

    let report = rt
        .reload_from_yaml_str(&config("").replace("max_concurrent: 4", "max_concurrent: 2"))
        .unwrap();
    assert_eq!(
        report.to_string(),
        "config version 2: db: max_concurrent 4 → 2"
    );
    let h = health(&rt, "db");
    assert_eq!(
        (h.bulkhead.max_concurrent, h.bulkhead.current_load),
        (Some(2), 4)
    );
    let err = rt.scope(query(false, None)).await.unwrap_err();
    assert_eq!(
        err.resilience(),
        Some(&ResilienceError::Rejected {
            dependency: "db",
            operation: "query",
            capacity: 2
        })
    );
    gate.add_permits(2);
    eventually("two calls done", || {
        health(&rt, "db").bulkhead.current_load == 2
    })
    .await;
    assert!(
        rejected(&rt.scope(query(false, None)).await.unwrap_err()),
        "2 of 2"
    );
    gate.add_permits(1);
    eventually("three calls done", || {
        health(&rt, "db").bulkhead.current_load == 1
    })
    .await;
    assert_eq!(
        rt.scope(query(false, None)).await,
        Ok(1),
        "1 of 2: admitted"
    );
    gate.add_permits(1);
    for call in running {
        assert_eq!(call.await.unwrap(), Ok(1), "no call in flight was cut");
    }
    assert_eq!(counters(&rt, "db"), [5, 0, 0, 2, 0, 0]);
    assert_eq!(health(&rt, "db").bulkhead.current_load, 0);
}

#[tokio::test(start_paused = true)]
async fn a_larger_bulkhead_lets_a_waiting_caller_in_at_once() {
    let one =
        config("      max_wait_seconds: 10").replace("max_concurrent: 4", "max_concurrent: 1");
    let rt = Runtime::from_yaml_str(&one).unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let holder = rt.spawn(query(false, Some(gate.clone())));
    eventually("one call in flight", || {
        health(&rt, "db").bulkhead.current_load == 1
    })
    .await;
    let waiter = rt.spawn(query(false, None));
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "it waits for the one slot");
    let start = tokio::time::Instant::now();
    rt.reload_from_yaml_str(&one.replace("max_concurrent: 1", "max_concurrent: 2"))
        .unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(1));
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no time passed: the reload woke it"
    );
    gate.add_permits(1);
    assert_eq!(holder.await.unwrap(), Ok(1));
}

#[tokio::test(start_paused = true)]
async fn a_bad_reload_changes_nothing_and_says_where() {
    let rt = Runtime::from_yaml_str(&config("")).unwrap();
    assert!(rt.scope(query(true, None)).await.is_err());
    let before = snapshot_without_time(&rt);

    let bad = config("").replace("max_concurrent: 4", "max_concurrent: 0");
    let err = rt.reload_from_yaml_str(&bad).unwrap_err();
    assert_eq!(
        err.path(),
        Some("resilience.external_dependencies.db.max_concurrent")
    );
    assert_eq!(err.line(), Some(5), "{err}");

    let no_db = "resilience:\n  external_dependencies:\n    files: {type: file_system, bulkhead_type: thread_pool}\n";
    let err = rt.reload_from_yaml_str(no_db).unwrap_err();
    assert!(matches!(err, ConfigError::CallSites { .. }), "{err}");
    assert!(err.to_string().contains("query"), "names the site: {err}");

    // A blocking site may run on a semaphore, but its dependency's calls in
    // flight hold pool slots: a reload may not switch it.
    let switched = config("").replace(
        "      bulkhead_type: thread_pool\n      max_workers: 1\n      queue_capacity: 0",
        "      bulkhead_type: semaphore",
    );
    let line = switched
        .lines()
        .position(|l| l.contains("semaphore"))
        .unwrap()
        + 1;
    let err = rt.reload_from_yaml_str(&switched).unwrap_err();
    assert_eq!(
        err.path(),
        Some("resilience.external_dependencies.files.bulkhead_type")
    );
    assert_eq!(err.line(), Some(line), "{err}");
    assert!(
        err.to_string()
            .contains("cannot switch `files` from thread_pool to semaphore"),
        "{err}"
    );

    let err = rt.reload_from_file("no/such/config.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err}");

    assert_eq!(snapshot_without_time(&rt), before, "nothing changed");
    assert_eq!(rt.health_snapshot().config_version, 1);
    assert_eq!(rt.scope(query(false, None)).await, Ok(1), "still serving");
}

/// The snapshot as JSON, without the one field that moves by itself.
fn snapshot_without_time(rt: &Runtime) -> serde_json::Value {
    let mut json = serde_json::to_value(rt.health_snapshot()).unwrap();
    json.as_object_mut().unwrap().remove("timestamp");
    json
}

#[tokio::test(start_paused = true)]
async fn an_override_holds_across_reloads_even_when_the_breaker_restarts() {
    let rt = Runtime::from_yaml_str(&config("")).unwrap();
    let control = rt.circuit_breaker("db").unwrap();
    control.force_open();
    let report = rt.reload_from_yaml_str(&config("")).unwrap();
    assert!(report.is_empty(), "{report}");
    assert_eq!(control.state(), BreakerState::ForcedOpen);

    // A failure-rate window is a new shape: the breaker starts afresh, forced all the same.
    let windowed = config(
        "      circuit_breaker_failure_rate_threshold: 0.5\n      circuit_breaker_window_size: 5\n      circuit_breaker_minimum_calls: 5",
    );
    let report = rt.reload_from_yaml_str(&windowed).unwrap();
    assert_eq!(report.breakers_restarted, ["db"], "{report}");
    assert!(
        report.to_string().contains("(breaker restarted closed)"),
        "{report}"
    );
    assert_eq!(
        control.state(),
        BreakerState::ForcedOpen,
        "the override holds"
    );
    assert!(rt.scope(query(false, None)).await.is_err());
    control.reset();
    assert_eq!(control.state(), BreakerState::Closed);

    // The same window with a new threshold keeps what it counted. (No two
    // failures in a row: the consecutive-failure trigger stays out of it.)
    for fail in [true, false, true, false] {
        let _ = rt.scope(query(fail, None)).await;
    }
    let report = rt
        .reload_from_yaml_str(&windowed.replace("threshold: 0.5", "threshold: 0.6"))
        .unwrap();
    assert!(report.breakers_restarted.is_empty(), "{report}");
    assert_eq!(
        health(&rt, "db").circuit_breaker.unwrap().failure_rate,
        None,
        "4 calls of a minimum of 5: no rate yet"
    );
    assert_eq!(control.state(), BreakerState::Closed);
    let _ = rt.scope(query(true, None)).await;
    assert_eq!(
        control.state(),
        BreakerState::Open,
        "3 failures in 5 reach the new 60 %: the window kept its first four calls"
    );
}

#[tokio::test(start_paused = true)]
async fn dependencies_may_be_added_and_those_no_site_names_dropped() {
    let rt = Runtime::from_yaml_str(&config("")).unwrap();
    let changed = config("").replace(
        "    spare:\n      type: cache\n",
        "    ledger:\n      type: database\n",
    );
    let report = rt.reload_from_yaml_str(&changed).unwrap();
    assert_eq!(report.added, ["ledger"]);
    assert_eq!(report.removed, ["spare"]);
    assert_eq!(
        report.to_string(),
        "config version 2: added ledger; removed spare"
    );
    let snapshot = rt.health_snapshot();
    assert!(snapshot.dependencies.contains_key("ledger"));
    assert!(!snapshot.dependencies.contains_key("spare"));
    assert!(rt.dependency_config("ledger").is_some());
    assert!(rt.circuit_breaker("ledger").is_some());
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_reload_keeps_the_turns_already_taken() {
    let limited = config("      rate_limit_per_second: 1\n      rate_limit_burst: 2");
    let rt = Runtime::from_yaml_str(&limited).unwrap();
    for _ in 0..2 {
        assert_eq!(rt.scope(query(false, None)).await, Ok(1));
    }
    let is_limited = |r: Result<u32, TestError>| {
        matches!(
            r.unwrap_err().resilience(),
            Some(ResilienceError::RateLimited { .. })
        )
    };
    assert!(is_limited(rt.scope(query(false, None)).await));
    rt.reload_from_yaml_str(&limited.replace("per_second: 1", "per_second: 2"))
        .unwrap();
    // Two turns were taken at 1/s: at 2/s with a burst of 2 the next comes
    // 1.5 s from now, not at once, as a fresh limiter would allow.
    assert!(
        is_limited(rt.scope(query(false, None)).await),
        "no fresh burst"
    );
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert_eq!(rt.scope(query(false, None)).await, Ok(1));
    assert!(is_limited(rt.scope(query(false, None)).await));
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(
        rt.scope(query(false, None)).await,
        Ok(1),
        "the new rate: 2/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_pool_grows_and_shrinks_on_reload() {
    let rt = Runtime::from_yaml_str(&config("")).unwrap();
    // Two jobs that each wait for the other can finish only on two workers.
    let barrier = Arc::new(std::sync::Barrier::new(2));
    assert_eq!(
        rt.scope(hash(Arc::new(std::sync::Barrier::new(1)))).await,
        Ok(7)
    );
    // The caller has its answer a moment before the worker frees the slot
    // (the limit holds until the job has really ended): wait for that, or
    // the next two jobs may find one slot of two taken.
    eventually("the first job's slot is free", || {
        health(&rt, "files").bulkhead.current_load == 0
    })
    .await;
    let grown = config("").replace(
        "max_workers: 1\n      queue_capacity: 0",
        "max_workers: 2\n      queue_capacity: 0",
    );
    let report = rt.reload_from_yaml_str(&grown).unwrap();
    assert_eq!(
        report.to_string(),
        "config version 2: files: max_workers 1 → 2"
    );
    let (a, b) = tokio::join!(
        rt.scope(hash(barrier.clone())),
        rt.scope(hash(barrier.clone()))
    );
    assert_eq!((a, b), (Ok(7), Ok(7)));
    assert_eq!(health(&rt, "files").bulkhead.max_workers, Some(2));

    rt.reload_from_yaml_str(&config("")).unwrap();
    let h = health(&rt, "files").bulkhead;
    assert_eq!((h.max_workers, h.queue_capacity), (Some(1), Some(0)));
    // One worker again: a second job at once is refused, not run beside it.
    // (A slot frees when its worker is done, a moment after the caller has its result.)
    eventually("the jobs' slots are free", || {
        health(&rt, "files").bulkhead.current_load == 0
    })
    .await;
    let gate = Arc::new(std::sync::Barrier::new(2));
    let first = rt.spawn(hash(gate.clone()));
    eventually("the first job holds the worker", || {
        health(&rt, "files").bulkhead.current_load == 1
    })
    .await;
    let second = rt.scope(hash(Arc::new(std::sync::Barrier::new(1)))).await;
    assert!(rejected(&second.unwrap_err()));
    gate.wait();
    assert_eq!(first.await.unwrap(), Ok(7));
}

#[test]
fn reloads_racing_with_calls_never_admit_more_than_the_larger_limit_and_count_every_call() {
    const RELOADS: u32 = 200;
    let two = config("").replace("max_concurrent: 4", "max_concurrent: 2");
    let three = config("").replace("max_concurrent: 4", "max_concurrent: 3");
    let rt = Runtime::from_yaml_str(&two).unwrap();
    let in_flight = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let reloads = Arc::new(AtomicU32::new(0));
    // Two threads of four tasks each, so calls overlap on each thread too.
    // Each task makes 250 calls at least, and goes on until the reloads end.
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (rt, in_flight, most) = (rt.clone(), in_flight.clone(), most.clone());
            let reloads = reloads.clone();
            std::thread::spawn(move || {
                let tokio = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                tokio.block_on(async {
                    let tasks: Vec<_> = (0..4)
                        .map(|_| {
                            let (in_flight, most) = (in_flight.clone(), most.clone());
                            let reloads = reloads.clone();
                            rt.spawn(async move {
                                let (mut calls, mut admitted) = (0u64, 0u64);
                                while calls < 250 || reloads.load(Ordering::SeqCst) < RELOADS {
                                    calls += 1;
                                    if watched(&in_flight, &most).await.is_ok() {
                                        admitted += 1;
                                    }
                                }
                                (calls, admitted)
                            })
                        })
                        .collect();
                    let (mut calls, mut admitted) = (0, 0);
                    for task in tasks {
                        let (c, a) = task.await.unwrap();
                        (calls, admitted) = (calls + c, admitted + a);
                    }
                    (calls, admitted)
                })
            })
        })
        .collect();
    let mut under_three = 0;
    for i in 0..RELOADS {
        let text = if i % 2 == 0 { &three } else { &two };
        rt.reload_from_yaml_str(text).unwrap();
        reloads.fetch_add(1, Ordering::SeqCst);
        if i % 2 == 0 {
            // Let some calls run under the larger limit before it shrinks.
            let seen = health(&rt, "db").bulkhead.total_requests;
            while health(&rt, "db").bulkhead.total_requests < seen + 20
                && !callers.iter().all(|c| c.is_finished())
            {
                std::thread::yield_now();
            }
            under_three += 1;
        }
    }
    let (calls, admitted) = callers
        .into_iter()
        .map(|c| c.join().unwrap())
        .fold((0, 0), |(c, a), (c2, a2)| (c + c2, a + a2));
    assert!(calls >= 2000, "{calls}");
    assert!(
        most.load(Ordering::SeqCst) <= 3,
        "never more than the larger limit: {}",
        most.load(Ordering::SeqCst)
    );
    let [ok, failed, timed_out, rejected, short, cancelled] = counters(&rt, "db");
    assert_eq!(ok + rejected, calls, "every call counted once");
    assert_eq!((failed, timed_out, short, cancelled), (0, 0, 0, 0));
    assert_eq!(ok, admitted);
    assert!(rejected > 0, "the calls met the limits");
    assert!(under_three > 0);
    assert_eq!(health(&rt, "db").bulkhead.current_load, 0);
    assert_eq!(rt.health_snapshot().config_version, u64::from(RELOADS) + 1);
}

/// A `db` call that tracks how many run at once around a yield.
#[database_call(dependency = "db")]
async fn watched(in_flight: &AtomicU32, most: &AtomicU32) -> Result<(), TestError> {
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    most.fetch_max(now, Ordering::SeqCst);
    tokio::task::yield_now().await;
    std::thread::yield_now();
    in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}
