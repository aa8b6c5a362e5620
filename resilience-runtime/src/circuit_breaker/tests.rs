//! The state machine driven by tokio's paused clock, one transition at a time.

use super::*;
use crate::config::FailureRateConfig;
use tokio::time::advance;

fn breaker(threshold: u32, half_open: u32, successes: u32) -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        failure_threshold: threshold,
        recovery_timeout: Duration::from_secs(60),
        half_open_max_calls: half_open,
        success_threshold: successes,
        failure_rate: None,
    })
}

fn fail(b: &CircuitBreaker) {
    b.on_failure(b.try_acquire().expect("admitted"));
}

fn succeed(b: &CircuitBreaker) {
    b.on_success(b.try_acquire().expect("admitted"));
}

#[tokio::test(start_paused = true)]
async fn opens_after_threshold_consecutive_failures() {
    let b = breaker(3, 1, 1);
    fail(&b);
    assert_eq!((b.state(), b.failure_count()), (BreakerState::Closed, 1));
    fail(&b);
    assert_eq!((b.state(), b.failure_count()), (BreakerState::Closed, 2));
    fail(&b);
    assert_eq!((b.state(), b.failure_count()), (BreakerState::Open, 3));
    assert_eq!(b.try_acquire().unwrap_err(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn a_success_while_closed_resets_the_consecutive_count() {
    let b = breaker(3, 1, 1);
    fail(&b);
    fail(&b);
    succeed(&b);
    assert_eq!(b.failure_count(), 0);
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn stays_open_for_the_recovery_timeout_then_admits_probes() {
    let b = breaker(1, 2, 2);
    fail(&b);
    advance(Duration::from_secs(59)).await;
    assert_eq!(b.try_acquire().unwrap_err(), Duration::from_secs(1));
    assert_eq!(b.state(), BreakerState::Open);
    advance(Duration::from_secs(1)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let p1 = b.try_acquire().expect("first probe");
    let p2 = b.try_acquire().expect("second probe");
    assert!(b.try_acquire().is_err(), "only two probes at once");
    b.on_success(p1);
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "one success of two needed"
    );
    let p3 = b.try_acquire().expect("a freed probe slot admits another");
    b.on_success(p2);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.failure_count(), 0);
    // p3 was a probe of the half-open period that has ended: ignored.
    b.on_failure(p3);
    assert_eq!((b.state(), b.failure_count()), (BreakerState::Closed, 0));
}

#[tokio::test(start_paused = true)]
async fn any_probe_failure_reopens_at_once() {
    let b = breaker(1, 3, 3);
    fail(&b);
    advance(Duration::from_secs(60)).await;
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    b.on_success(p1);
    b.on_failure(p2);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(
        b.try_acquire().unwrap_err(),
        Duration::from_secs(60),
        "a fresh recovery period"
    );
    advance(Duration::from_secs(60)).await;
    succeed(&b);
    succeed(&b);
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "successes from before the reopening do not count"
    );
    succeed(&b);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_ignored_probe_frees_its_slot_without_a_verdict() {
    let b = breaker(1, 1, 1);
    fail(&b);
    advance(Duration::from_secs(60)).await;
    let probe = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    b.on_ignored(probe);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    succeed(&b);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn outcomes_of_calls_admitted_before_opening_are_ignored() {
    let b = breaker(2, 1, 1);
    let slow = b.try_acquire().unwrap();
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
    advance(Duration::from_secs(60)).await;
    let probe = b.try_acquire().unwrap();
    // The slow call from the closed period fails now: it must not decide the probe.
    b.on_failure(slow);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    b.on_success(probe);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_opens_once_the_minimum_calls_are_in_the_window() {
    let b = CircuitBreaker::new(BreakerConfig {
        failure_threshold: 100,
        recovery_timeout: Duration::from_secs(10),
        half_open_max_calls: 1,
        success_threshold: 1,
        failure_rate: Some(FailureRateConfig {
            threshold: 0.5,
            window_size: 4,
            minimum_calls: 4,
        }),
    });
    fail(&b);
    fail(&b);
    succeed(&b);
    assert_eq!(b.failure_rate(), None, "3 calls are below the minimum");
    assert_eq!(b.state(), BreakerState::Closed);
    succeed(&b);
    assert_eq!(b.failure_rate(), Some(0.5));
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "successes never trip the breaker"
    );
    // The window slides: [F F S S] -> [F S S F]: 2 of 4 failed = 0.5 >= 0.5.
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
    advance(Duration::from_secs(10)).await;
    succeed(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.failure_rate(), None, "closing empties the window");
}

#[tokio::test(start_paused = true)]
async fn window_below_the_rate_stays_closed() {
    let b = CircuitBreaker::new(BreakerConfig {
        failure_threshold: 100,
        recovery_timeout: Duration::from_secs(10),
        half_open_max_calls: 1,
        success_threshold: 1,
        failure_rate: Some(FailureRateConfig {
            threshold: 0.5,
            window_size: 10,
            minimum_calls: 5,
        }),
    });
    for _ in 0..30 {
        succeed(&b);
        succeed(&b);
        fail(&b);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    let rate = b.failure_rate().unwrap();
    assert!((0.29..=0.41).contains(&rate), "{rate}");
}
