//! The state machine driven by tokio's paused clock, one transition at a time.

use super::*;
use tokio::time::advance;

/// A plain breaker's settings, for the tests to change what they test.
fn plain() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 100,
        recovery_timeout: Duration::from_secs(60),
        timeout_multiplier: 1.0,
        max_timeout: None,
        half_open_max_calls: 1,
        success_threshold: 1,
        failure_rate: None,
        slow_calls: None,
        time_window: None,
    }
}

fn breaker(threshold: u32, half_open: u32, successes: u32) -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        failure_threshold: threshold,
        half_open_max_calls: half_open,
        success_threshold: successes,
        ..plain()
    })
}

/// A breaker that opens at a failure rate of 0.5 over `window` calls, once
/// `minimum` are in it (the consecutive trigger is out of reach).
fn half_rate(window: u32, minimum: u32) -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        recovery_timeout: Duration::from_secs(10),
        failure_rate: Some(FailureRateConfig {
            threshold: 0.5,
            window_size: window,
            minimum_calls: minimum,
        }),
        ..plain()
    })
}

fn fail(b: &CircuitBreaker) {
    b.on_failure(b.try_acquire().expect("admitted"), false);
}

fn succeed(b: &CircuitBreaker) {
    b.on_success(b.try_acquire().expect("admitted"), false);
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
    b.on_success(p1, false);
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "one success of two needed"
    );
    let p3 = b.try_acquire().expect("a freed probe slot admits another");
    b.on_success(p2, false);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.failure_count(), 0);
    // p3 was a probe of the half-open period that has ended: ignored.
    b.on_failure(p3, false);
    assert_eq!((b.state(), b.failure_count()), (BreakerState::Closed, 0));
}

#[tokio::test(start_paused = true)]
async fn any_probe_failure_reopens_at_once() {
    let b = breaker(1, 3, 3);
    fail(&b);
    advance(Duration::from_secs(60)).await;
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    b.on_success(p1, false);
    b.on_failure(p2, false);
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
    b.on_failure(slow, false);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    b.on_success(probe, false);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_outcome_from_a_closed_period_before_a_full_cycle_is_ignored() {
    let b = breaker(1, 1, 1);
    let cycle = || async {
        fail(&b);
        advance(Duration::from_secs(60)).await;
        succeed(&b);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "open, half-open, closed again"
        );
    };
    // Many cycles first: the epoch must not wrap back onto an old word.
    for _ in 0..10 {
        cycle().await;
    }
    let old = b.try_acquire().unwrap();
    cycle().await;
    // Closed once more, but not the closed period that admitted `old`.
    b.on_failure(old, false);
    assert_eq!((b.state(), b.failure_count()), (BreakerState::Closed, 0));
}

#[tokio::test(start_paused = true)]
async fn failure_rate_opens_once_the_minimum_calls_are_in_the_window() {
    let b = half_rate(4, 4);
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
async fn the_call_that_reaches_both_the_minimum_and_the_rate_opens_it() {
    let b = half_rate(8, 4);
    succeed(&b);
    succeed(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed, "1 of 3: below the minimum");
    // The fourth call is the second failure: 2 of 4 = 0.5, at the minimum.
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn window_below_the_rate_stays_closed() {
    let b = half_rate(10, 5);
    for _ in 0..30 {
        succeed(&b);
        succeed(&b);
        fail(&b);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    let rate = b.failure_rate().unwrap();
    assert!((0.29..=0.41).contains(&rate), "{rate}");
}

/// An operator's override in the model; `None` is normal operation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Override {
    None,
    Forced,
    Disabled,
    MetricsOnly,
}

/// A reference model of the breaker for calls made one at a time, with an
/// operator's overrides.
#[derive(Debug)]
struct Model {
    threshold: u32,
    recovery: u64,
    successes_needed: u32,
    /// The computed state; `Closed` under a forced or disabled override is
    /// never read.
    state: BreakerState,
    consecutive: u32,
    probe_successes: u32,
    open_until: u64,
    mode: Override,
    multiplier: u64,
    max_open: u64,
    reopens: u32,
}

impl Model {
    fn new(
        threshold: u32,
        recovery: u64,
        successes_needed: u32,
        multiplier: u64,
        max_open: u64,
    ) -> Self {
        Model {
            multiplier,
            max_open,
            reopens: 0,
            threshold,
            recovery,
            successes_needed,
            state: BreakerState::Closed,
            consecutive: 0,
            probe_successes: 0,
            open_until: 0,
            mode: Override::None,
        }
    }

    /// One call at `now` (ms) with outcome `fails`; `Err(retry after)` when
    /// refused.
    fn call(&mut self, now: u64, fails: bool) -> Result<(), u64> {
        match self.mode {
            Override::Forced => return Err(self.recovery),
            Override::Disabled => return Ok(()),
            _ => {}
        }
        if self.state == BreakerState::Open {
            if now < self.open_until {
                return if self.mode == Override::MetricsOnly {
                    Ok(())
                } else {
                    Err(self.open_until - now)
                };
            }
            self.state = BreakerState::HalfOpen;
            self.probe_successes = 0;
        }
        match (self.state, fails) {
            (BreakerState::Closed, false) => self.consecutive = 0,
            (BreakerState::Closed, true) => {
                self.consecutive += 1;
                if self.consecutive >= self.threshold {
                    self.state = BreakerState::Open;
                    self.reopens = 0;
                    self.open_until = now + self.recovery;
                }
            }
            (BreakerState::HalfOpen, false) => {
                self.probe_successes += 1;
                if self.probe_successes >= self.successes_needed {
                    self.state = BreakerState::Closed;
                    self.consecutive = 0;
                    self.reopens = 0;
                }
            }
            (BreakerState::HalfOpen, true) => {
                self.state = BreakerState::Open;
                self.reopens += 1;
                let open = (0..self.reopens).fold(self.recovery, |t, _| {
                    (t * self.multiplier).min(self.max_open)
                });
                self.open_until = now + open.max(self.recovery);
            }
            _ => unreachable!(),
        }
        Ok(())
    }

    fn set(&mut self, mode: Override) {
        match mode {
            Override::None => {
                self.state = BreakerState::Closed;
                self.consecutive = 0;
                self.reopens = 0;
            }
            Override::MetricsOnly if matches!(self.mode, Override::Forced | Override::Disabled) => {
                self.state = BreakerState::Closed;
                self.consecutive = 0;
                self.reopens = 0;
            }
            _ => {}
        }
        self.mode = mode;
    }

    fn expected_state(&self, now: u64) -> BreakerState {
        match self.mode {
            Override::Forced => BreakerState::ForcedOpen,
            Override::Disabled => BreakerState::Disabled,
            Override::MetricsOnly => BreakerState::MetricsOnly,
            Override::None => match self.state {
                BreakerState::Open if now >= self.open_until => BreakerState::HalfOpen,
                s => s,
            },
        }
    }
}

proptest::proptest! {
    /// Random outcomes, clock jumps and an operator's overrides: the breaker
    /// agrees with the model on every admission, every `retry_after`, every
    /// state and every failure count.
    #[test]
    fn sequential_calls_follow_the_model(
        threshold in 1u32..5,
        recovery in 1u64..50,
        successes_needed in 1u32..4,
        multiplier in 1u64..4,
        extra_open in 0u64..200,
        steps in proptest::collection::vec((0u8..24, 0u64..30), 1..80),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let b = CircuitBreaker::new(BreakerConfig {
                failure_threshold: threshold,
                recovery_timeout: Duration::from_millis(recovery),
                timeout_multiplier: multiplier as f64,
                max_timeout: Some(Duration::from_millis(recovery + extra_open)),
                half_open_max_calls: 1,
                success_threshold: successes_needed,
                failure_rate: None,
                slow_calls: None,
        time_window: None,
            });
            let mut model = Model::new(threshold, recovery, successes_needed, multiplier, recovery + extra_open);
            let mut now = 0;
            for (action, wait) in steps {
                advance(Duration::from_millis(wait)).await;
                now += wait;
                // Mostly calls; now and then an operator steps in.
                let mode = match action {
                    20 => Some((Override::Forced, BreakerState::ForcedOpen)),
                    21 => Some((Override::Disabled, BreakerState::Disabled)),
                    22 => Some((Override::MetricsOnly, BreakerState::MetricsOnly)),
                    23 => Some((Override::None, BreakerState::Closed)),
                    _ => None,
                };
                if let Some((mode, state)) = mode {
                    if mode == Override::None { b.reset() } else { b.set_override(state) }
                    model.set(mode);
                } else {
                    let fails = action % 2 == 1;
                    let got = match b.try_acquire() {
                        Ok(ticket) => {
                            if fails { b.on_failure(ticket, false) } else { b.on_success(ticket, false) }
                            Ok(())
                        }
                        Err(retry_after) => Err(retry_after),
                    };
                    let expected = model.call(now, fails).map_err(Duration::from_millis);
                    assert_eq!(got, expected, "{model:?}");
                }
                assert_eq!(b.state(), model.expected_state(now), "{model:?}");
                if model.state == BreakerState::Closed {
                    assert_eq!(b.failure_count(), model.consecutive, "{model:?}");
                }
            }
        });
    }
}

/// Runs `f` on another thread while this one holds the breaker's lock, and
/// returns what it gave; fails if `f` waited for the lock.
fn without_the_lock<T: Send>(b: &CircuitBreaker, f: impl FnOnce(&CircuitBreaker) -> T + Send) -> T {
    std::thread::scope(|s| {
        let held = b.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        s.spawn(move || {
            let _ = tx.send(f(b));
        });
        let got = rx.recv_timeout(Duration::from_secs(10));
        drop(held);
        got.expect("it waited for the breaker's lock")
    })
}

#[test]
fn closed_and_open_answer_without_the_lock() {
    // The hot path: admitting a call while closed is plain atomics.
    let b = breaker(1, 1, 1);
    assert!(without_the_lock(&b, |b| b.try_acquire().is_ok()));
    fail(&b);
    // So is refusing one while open, however many callers hammer it.
    let refused = without_the_lock(&b, |b| b.try_acquire());
    assert!(refused.unwrap_err() > Duration::from_secs(59));
}

/// A caller that read the state just before another changed it finishes
/// under the lock with the state as it is now.
#[tokio::test(start_paused = true)]
async fn a_caller_that_read_a_state_just_before_it_changed_sees_the_new_one() {
    let b = breaker(1, 1, 1);
    fail(&b);
    advance(Duration::from_secs(60)).await;
    let probe = b.try_acquire().unwrap();
    let read_half_open = b.core.word.load(Ordering::Acquire);
    b.on_failure(probe, false);
    // Reopened meanwhile: refused, told the whole recovery time.
    assert_eq!(
        b.try_acquire_slow(read_half_open).unwrap_err(),
        Duration::from_secs(60)
    );
    advance(Duration::from_secs(60)).await;
    succeed(&b);
    let read_open = read_half_open & !3 | OPEN;
    // Closed meanwhile: admitted, every time, and never counted as a probe.
    for _ in 0..3 {
        let ticket = b.try_acquire_slow(read_open).expect("closed admits");
        assert!(!ticket.is_probe());
    }
    assert_eq!(b.lock().in_flight, 0);
}

// An operator's overrides, each transition asserted.

#[tokio::test(start_paused = true)]
async fn forced_open_refuses_every_call_until_a_reset_and_ignores_calls_admitted_before() {
    let b = breaker(3, 1, 1);
    let before = b.try_acquire().expect("closed admits");
    b.set_override(BreakerState::ForcedOpen);
    assert_eq!(b.state(), BreakerState::ForcedOpen);
    assert_eq!(b.try_acquire().unwrap_err(), Duration::from_secs(60));
    // No time ends it.
    advance(Duration::from_secs(3600)).await;
    assert_eq!(b.state(), BreakerState::ForcedOpen);
    assert!(b.try_acquire().is_err());
    // A call admitted before counts for nothing.
    b.on_failure(before, false);
    assert_eq!(b.failure_count(), 0);
    b.reset();
    assert_eq!((b.state(), b.failure_count()), (BreakerState::Closed, 0));
    succeed(&b);
}

#[tokio::test(start_paused = true)]
async fn disabled_admits_every_call_and_learns_nothing() {
    let b = breaker(2, 1, 1);
    fail(&b);
    b.set_override(BreakerState::Disabled);
    assert_eq!(b.state(), BreakerState::Disabled);
    for _ in 0..10 {
        fail(&b);
    }
    assert_eq!(b.state(), BreakerState::Disabled);
    b.reset();
    assert_eq!((b.state(), b.failure_count()), (BreakerState::Closed, 0));
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open, "a reset breaker works again");
}

#[tokio::test(start_paused = true)]
async fn metrics_only_computes_its_state_but_never_refuses() {
    let b = breaker(2, 1, 1);
    b.set_override(BreakerState::MetricsOnly);
    fail(&b);
    fail(&b);
    // It opened underneath: the raw state moved, calls still pass, and
    // those calls count for nothing while it would have refused them.
    assert_eq!(b.core.word.load(Ordering::Acquire) & 3, OPEN);
    assert_eq!(b.state(), BreakerState::MetricsOnly);
    for _ in 0..5 {
        fail(&b);
    }
    assert_eq!(b.core.word.load(Ordering::Acquire) & 3, OPEN);
    // After the recovery time it probes as usual, and extra calls pass.
    advance(Duration::from_secs(60)).await;
    let probe = b.try_acquire().expect("a probe");
    assert!(probe.is_probe());
    let extra = b.try_acquire().expect("metrics-only never refuses");
    assert!(!extra.is_probe());
    b.on_success(probe, false);
    assert_eq!(b.core.word.load(Ordering::Acquire) & 3, CLOSED);
    b.on_failure(extra, false);
    assert_eq!(
        b.failure_count(),
        0,
        "a pass-through call counts for nothing"
    );
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn metrics_only_after_an_override_starts_closed() {
    let b = breaker(2, 1, 1);
    b.set_override(BreakerState::ForcedOpen);
    b.set_override(BreakerState::MetricsOnly);
    assert_eq!(b.core.word.load(Ordering::Acquire) & 3, CLOSED);
    succeed(&b);
    // And metrics-only held while open keeps the open state's clock.
    let b = breaker(1, 1, 1);
    fail(&b);
    b.set_override(BreakerState::MetricsOnly);
    assert_eq!(b.core.word.load(Ordering::Acquire) & 3, OPEN);
    assert!(b.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn each_failed_probe_reopens_for_longer_up_to_the_maximum_and_a_close_starts_over() {
    let b = CircuitBreaker::new(BreakerConfig {
        failure_threshold: 1,
        recovery_timeout: Duration::from_secs(10),
        timeout_multiplier: 2.0,
        max_timeout: Some(Duration::from_secs(35)),
        ..plain()
    });
    fail(&b);
    assert_eq!(b.try_acquire().unwrap_err(), Duration::from_secs(10));
    for open in [20, 35, 35] {
        advance(b.try_acquire().unwrap_err()).await;
        fail(&b); // the probe fails
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.try_acquire().unwrap_err(), Duration::from_secs(open));
    }
    advance(Duration::from_secs(35)).await;
    succeed(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b);
    assert_eq!(
        b.try_acquire().unwrap_err(),
        Duration::from_secs(10),
        "opening from closed starts from the base again"
    );
}

fn slow_breaker() -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        recovery_timeout: Duration::from_secs(10),
        slow_calls: Some(SlowCallConfig {
            duration: Duration::from_secs(1),
            threshold: 0.5,
            window_size: 4,
            minimum_calls: 4,
        }),
        ..plain()
    })
}

/// One call that takes `took`, timed as the call path times it.
async fn timed_call(b: &CircuitBreaker, took: Duration, fails: bool) {
    let ticket = b.try_acquire().expect("admitted");
    assert!(b.times_calls(), "a slow-call trigger times its calls");
    let started = b.call_started();
    advance(took).await;
    let slow = b.is_slow(started);
    if fails {
        b.on_failure(ticket, slow)
    } else {
        b.on_success(ticket, slow)
    }
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker_at_their_share_of_the_window() {
    let b = slow_breaker();
    timed_call(&b, Duration::from_millis(1500), false).await;
    timed_call(&b, Duration::from_millis(200), false).await;
    timed_call(&b, Duration::from_secs(1), false).await; // exactly the limit: not slow
    assert_eq!(
        (b.state(), b.slow_call_rate()),
        (BreakerState::Closed, None),
        "below the minimum"
    );
    timed_call(&b, Duration::from_millis(300), false).await;
    assert_eq!(
        (b.state(), b.slow_call_rate()),
        (BreakerState::Closed, Some(0.25))
    );
    // The window slides: the first (slow) call leaves, two slow ones come.
    timed_call(&b, Duration::from_secs(2), false).await;
    assert_eq!(b.state(), BreakerState::Closed, "1 slow of 4");
    timed_call(&b, Duration::from_secs(2), true).await;
    assert_eq!(
        b.state(),
        BreakerState::Open,
        "2 slow of 4, one of them a failure"
    );
    assert_eq!(b.failure_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_without_a_slow_call_trigger_does_not_time_calls() {
    let b = breaker(3, 1, 1);
    assert!(!b.times_calls());
    assert!(!b.is_slow(0));
}

fn time_window_breaker(seconds: u64, minimum: u32) -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        recovery_timeout: Duration::from_secs(30),
        failure_rate: Some(FailureRateConfig {
            threshold: 0.5,
            window_size: 100,
            minimum_calls: minimum,
        }),
        time_window: Some(Duration::from_secs(seconds)),
        ..plain()
    })
}

#[tokio::test(start_paused = true)]
async fn a_time_window_forgets_calls_older_than_its_span() {
    let b = time_window_breaker(10, 4);
    fail(&b);
    fail(&b);
    succeed(&b);
    assert_eq!(b.failure_rate(), None, "3 calls: below the minimum");
    // Ten seconds on, those three have left the window.
    advance(Duration::from_secs(10)).await;
    succeed(&b);
    succeed(&b);
    succeed(&b);
    assert_eq!(b.failure_rate(), None, "only 3 calls in the last 10 s");
    succeed(&b);
    assert_eq!(b.failure_rate(), Some(0.0));
    // Within the span, failures accumulate and trip it.
    advance(Duration::from_secs(5)).await;
    for _ in 0..3 {
        fail(&b);
    }
    assert_eq!(b.state(), BreakerState::Closed, "3 of 7");
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open, "4 of 8 in the last 10 s");
}

proptest::proptest! {
    /// The time window against a model that keeps every outcome: after each
    /// record, the counts are those of the calls in the last N whole seconds.
    #[test]
    fn a_time_window_counts_what_the_model_counts(
        seconds in 1u64..6,
        steps in proptest::collection::vec((0u64..2500, proptest::bool::ANY, proptest::bool::ANY), 1..120),
    ) {
        let window = TimeWindow::new(Duration::from_secs(seconds));
        let mut events: Vec<(u64, bool, bool)> = Vec::new();
        let mut now_ms = 0u64;
        for (wait, failed, slow) in steps {
            now_ms += wait;
            let nanos = now_ms * 1_000_000;
            let got = window.record(failed, slow, nanos);
            let now = now_ms / 1000;
            events.push((now, failed, slow));
            let live: Vec<_> = events.iter().filter(|(s, _, _)| s + seconds > now).collect();
            let expected = (
                live.iter().filter(|e| e.1).count() as u64,
                live.iter().filter(|e| e.2).count() as u64,
                live.len() as u64,
            );
            proptest::prop_assert_eq!(got, expected);
            proptest::prop_assert_eq!(window.counts(nanos), expected);
        }
    }
}

/// Far from its recovery time an open breaker refuses on the coarse
/// clock, saying a retry-after that is never short; within the clock's
/// slack of it, it leaves the decision to the precise clock.
#[tokio::test(start_paused = true)]
async fn the_coarse_clock_refuses_only_well_before_the_recovery_time() {
    let b = breaker(1, 1, 1);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
    let ms = 1_000_000;
    b.core
        .open_until_coarse
        .store(1_000 * ms, Ordering::Release);
    assert_eq!(
        b.refuse_by_coarse(900 * ms, 8 * ms).map(|r| r.err()),
        Some(Some(Duration::from_millis(104))),
        "100 ms ahead, plus half the slack"
    );
    assert!(
        b.refuse_by_coarse(992 * ms, 8 * ms).is_none(),
        "within the slack"
    );
    assert!(b.refuse_by_coarse(1_200 * ms, 8 * ms).is_none(), "past it");
    b.core.open_until_coarse.store(0, Ordering::Release);
    assert!(b.refuse_by_coarse(0, 8 * ms).is_none(), "no coarse clock");
    // An operator's metrics-only mode admits, coarse clock or not.
    b.core
        .open_until_coarse
        .store(1_000 * ms, Ordering::Release);
    b.core.mode.store(METRICS_ONLY, Ordering::Release);
    assert!(matches!(b.refuse_by_coarse(900 * ms, 8 * ms), Some(Ok(_))));
}
