//! The deadline table: deadlines fire no earlier than their time and soon
//! after it, cancellation frees them, thousands at once, a retired table and
//! a paused clock fall back to tokio timers. Real-clock tests use deadlines
//! of a few milliseconds; none sleeps.

use super::deadlines::table_here;
use super::{run_timed, Step};
use std::future::pending;
use std::pin::pin;
use std::time::Duration;
use tokio::time::Instant;

const SHORT: Duration = Duration::from_millis(20);

/// Runs `fut` under `timeout`; what came of it and how long it took on
/// tokio's clock.
async fn timed<F: std::future::Future>(fut: F, timeout: Duration) -> (bool, Duration) {
    let start = Instant::now();
    let fut = pin!(fut);
    let timed_out = matches!(
        run_timed(fut, Some(timeout), super::FROM_FIRST_PENDING, None, None).await,
        Step::TimedOut(_)
    );
    (timed_out, start.elapsed())
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_deadline_fires_no_earlier_than_its_time_and_soon_after() {
    for rt in [
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        multi_thread(),
    ] {
        rt.block_on(async {
            let (timed_out, took) = timed(pending::<()>(), SHORT).await;
            assert!(timed_out);
            assert!(took >= SHORT, "fired after {took:?}, before its {SHORT:?}");
            // Generous for a loaded CI machine; the mechanism's own lateness
            // is the timer thread's wake-up, tens of microseconds.
            assert!(took < SHORT * 10, "fired only after {took:?}");
            let table = table_here().expect("a running clock gets a table");
            assert!(table.is_alive());
            assert_eq!(table.armed_now(), 0);
        });
    }
}

#[test]
fn a_call_that_ends_in_time_disarms_its_deadline() {
    multi_thread().block_on(async {
        let (timed_out, _) = timed(tokio::task::yield_now(), Duration::from_secs(3600)).await;
        assert!(!timed_out);
        assert_eq!(table_here().unwrap().armed_now(), 0);
    });
}

#[test]
fn a_cancelled_call_disarms_its_deadline() {
    multi_thread().block_on(async {
        let calls: Vec<_> = (0..100)
            .map(|_| tokio::spawn(timed(pending::<()>(), Duration::from_secs(3600))))
            .collect();
        let table = loop {
            tokio::task::yield_now().await;
            if let Some(table) = table_here().filter(|t| t.armed_now() == 100) {
                break table;
            }
        };
        for call in &calls {
            call.abort();
        }
        for call in calls {
            assert!(call.await.unwrap_err().is_cancelled());
        }
        assert_eq!(table.armed_now(), 0);
    });
}

#[test]
fn thousands_of_concurrent_deadlines_all_fire_on_time() {
    multi_thread().block_on(async {
        let calls: Vec<_> = (0..5000u32)
            .map(|i| {
                let timeout = SHORT + Duration::from_micros(u64::from(i % 50) * 100);
                tokio::spawn(async move { (timeout, timed(pending::<()>(), timeout).await) })
            })
            .collect();
        for call in calls {
            let (timeout, (timed_out, took)) = call.await.unwrap();
            assert!(timed_out);
            assert!(
                took >= timeout,
                "fired after {took:?}, before its {timeout:?}"
            );
        }
        assert_eq!(table_here().unwrap().armed_now(), 0);
    });
}

#[test]
fn a_retired_table_hands_its_calls_to_tokio_timers() {
    multi_thread().block_on(async {
        let call = tokio::spawn(timed(pending::<()>(), SHORT * 5));
        let table = loop {
            tokio::task::yield_now().await;
            if let Some(table) = table_here().filter(|t| t.armed_now() == 1) {
                break table;
            }
        };
        table.retire_now();
        let (timed_out, took) = call.await.unwrap();
        assert!(timed_out);
        assert!(took >= SHORT * 5, "fired after {took:?}");
        // The next call gets a new table.
        let fresh = table_here().unwrap();
        assert!(fresh.is_alive());
        assert!(!std::sync::Arc::ptr_eq(&fresh, &table));
    });
}

#[tokio::test(start_paused = true)]
async fn on_a_paused_clock_deadlines_are_tokio_timers_and_fire_exactly() {
    let (timed_out, took) = timed(pending::<()>(), Duration::from_secs(30)).await;
    assert!(timed_out);
    assert_eq!(took, Duration::from_secs(30));
    assert!(table_here().is_none(), "a paused runtime gets no table");
}

#[test]
fn a_clock_paused_after_its_table_was_made_is_found_and_left_to_tokio() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (timed_out, _) = timed(tokio::task::yield_now(), SHORT).await;
        assert!(!timed_out);
        let table = table_here().expect("a running clock gets a table");
        tokio::time::pause();
        // Armed in the old table; the timer thread finds the paused clock
        // within 5 ms of real time and the call moves to a tokio timer, which
        // auto-advance then reaches.
        let (timed_out, took) = timed(pending::<()>(), Duration::from_secs(30)).await;
        assert!(timed_out);
        assert!(took >= Duration::from_secs(30));
        assert!(!table.is_alive());
        assert!(table_here().is_none());
    });
}

#[test]
fn a_timeout_runs_from_the_moment_it_began_not_from_the_first_pending() {
    multi_thread().block_on(async {
        let timeout = Duration::from_millis(1020);
        // Began a second ago: 20 ms are left.
        let began = crate::clock::deadline_now() - 1_000_000_000;
        let start = Instant::now();
        let fut = pin!(pending::<()>());
        let step = run_timed(fut, Some(timeout), began, None, None).await;
        assert!(matches!(step, Step::TimedOut(t) if t == timeout));
        let took = start.elapsed();
        assert!(took < Duration::from_millis(500), "fired after {took:?}");
    });
}
