//! Loom models of the policies' concurrency: loom runs each model under
//! every interleaving of its threads (up to its preemption bound) with the
//! real semaphore, breaker and thread pool, built on loom's atomics, locks
//! and threads (`sync.rs`). Run with:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p resilience-runtime --lib --release loom
//! ```

use crate::bulkhead::{Semaphore, ThreadPool};
use crate::circuit_breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::Arc;
use loom::thread;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Loom's bound on preemptions per execution; 3 covers the races we know
/// of and keeps each model to seconds.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

#[test]
fn loom_semaphore_never_admits_more_than_its_capacity_and_frees_every_slot() {
    model(|| {
        let sem = Arc::new(Semaphore::new(2, Duration::ZERO));
        let holding = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (sem, holding) = (Arc::clone(&sem), Arc::clone(&holding));
                thread::spawn(move || {
                    if sem.try_acquire() {
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 2, "{now} holders of 2 slots");
                        holding.fetch_sub(1, Ordering::SeqCst);
                        sem.release();
                        true
                    } else {
                        false
                    }
                })
            })
            .collect();
        let admitted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|a| *a)
            .count();
        assert!(admitted >= 2, "two slots, yet only {admitted} admitted");
        assert_eq!(sem.in_flight(), 0);
    });
}

#[test]
fn loom_a_waiter_is_woken_by_a_release_even_when_another_waiter_gives_up() {
    model(|| {
        let sem = Arc::new(Semaphore::new(1, Duration::from_secs(1)));
        assert!(sem.try_acquire());
        // A waiter that registers, then gives up (its call was cancelled):
        // it must not swallow the wake-up meant for the one that stays.
        let quitter = {
            let sem = Arc::clone(&sem);
            thread::spawn(move || {
                let mut waiting = pin!(sem.acquire());
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(true) = waiting.as_mut().poll(&mut cx) {
                    sem.release();
                }
            })
        };
        let stayer = {
            let sem = Arc::clone(&sem);
            thread::spawn(move || {
                let got = loom::future::block_on(sem.acquire());
                assert!(got, "a waiter with no deadline gets the slot");
                sem.release();
            })
        };
        sem.release();
        quitter.join().unwrap();
        stayer.join().unwrap();
        assert_eq!(sem.in_flight(), 0);
        assert!(sem.try_acquire(), "no waiter count was left behind");
    });
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        failure_threshold: 1,
        recovery_timeout: Duration::from_secs(1),
        timeout_multiplier: 1.0,
        max_timeout: None,
        half_open_max_calls: 1,
        success_threshold: 1,
        failure_rate: None,
        slow_calls: None,
        time_window: None,
    })
}

#[test]
fn loom_a_stale_outcome_never_moves_the_breaker() {
    model(|| {
        let b = Arc::new(breaker());
        let early = b.try_acquire().expect("closed");
        // One call fails and opens the breaker while another, admitted while
        // it was closed, succeeds: the late success must not close it.
        let failing = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                if let Ok(t) = b.try_acquire() {
                    b.on_failure(t, false);
                }
            })
        };
        b.on_success(early, false);
        failing.join().unwrap();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_err(), "open until its recovery time");

        // After the recovery time two callers race for the one probe, and a
        // stale failure from the closed era arrives meanwhile.
        b.set_model_time(Duration::from_secs(2));
        let probe = |b: &CircuitBreaker| match b.try_acquire() {
            Ok(t) => {
                b.on_success(t, false);
                true
            }
            Err(_) => false,
        };
        let other = {
            let b = Arc::clone(&b);
            thread::spawn(move || probe(&b))
        };
        let stale = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.on_failure(early, false))
        };
        let won = probe(&b);
        let other_won = other.join().unwrap();
        stale.join().unwrap();
        assert!(won || other_won, "a probe was admitted");
        assert_eq!(b.state(), BreakerState::Closed, "the probe closed it");
        assert_eq!(b.failure_count(), 0);
    });
}

#[test]
fn loom_a_probe_failure_reopens_and_a_cancelled_probe_frees_its_place() {
    model(|| {
        let b = Arc::new(breaker());
        b.on_failure(b.try_acquire().unwrap(), false);
        b.set_model_time(Duration::from_secs(2));
        let probe = b.try_acquire().expect("half-open admits one probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // The probe is cancelled while another caller asks to probe.
        let cancelled = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.on_ignored(probe))
        };
        let next = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.try_acquire().ok())
        };
        cancelled.join().unwrap();
        let next = next.join().unwrap();
        let next = next
            .or_else(|| b.try_acquire().ok())
            .expect("the place is free again");
        b.on_failure(next, false);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a failed probe reopens at once"
        );
    });
}

#[test]
fn loom_the_thread_pool_runs_or_skips_every_admitted_job_once_and_frees_its_slots() {
    model(|| {
        let pool = ThreadPool::new("loom", 1, 1);
        let ran = Arc::new(AtomicU32::new(0));
        let skipped = Arc::new(AtomicU32::new(0));
        let gave_up = Arc::new(crate::sync::atomic::AtomicBool::new(false));
        let job = |check: bool| {
            let (ran, skipped, gave_up) =
                (Arc::clone(&ran), Arc::clone(&skipped), Arc::clone(&gave_up));
            Box::new(move || {
                // As a real job does: skipped when its caller already gave up.
                if check && gave_up.load(Ordering::SeqCst) {
                    skipped.fetch_add(1, Ordering::SeqCst);
                } else {
                    ran.fetch_add(1, Ordering::SeqCst);
                }
            }) as Box<dyn FnOnce() + Send>
        };
        let mut admitted = 0;
        for check in [false, true, true] {
            if pool.try_submit(job(check)).is_ok() {
                admitted += 1;
            }
            assert!(pool.occupied() <= 2, "a worker and one queued job at most");
        }
        assert!(admitted >= 2, "the worker and the queue take two");
        // A caller gives up while the jobs run.
        let caller = {
            let gave_up = Arc::clone(&gave_up);
            thread::spawn(move || gave_up.store(true, Ordering::SeqCst))
        };
        caller.join().unwrap();
        while pool.occupied() > 0 {
            thread::yield_now();
        }
        assert_eq!(
            ran.load(Ordering::SeqCst) + skipped.load(Ordering::SeqCst),
            admitted,
            "every admitted job ran or was skipped, once"
        );
        assert_eq!(pool.running(), 0);
        // Dropping the pool stops its worker: loom checks it ends.
    });
}
