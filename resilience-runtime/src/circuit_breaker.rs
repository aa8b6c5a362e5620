//! The circuit breaker: closed → open → half-open → closed (or open again).
//! An operator may override it (`BreakerControl`): forced open, disabled, or
//! metrics-only (it computes its state but never refuses a call), until a
//! reset.
//!
//! The closed state, the hot path, is plain atomics. Transitions are rare and
//! happen under a mutex, which also guards the half-open probe counts. Every
//! transition bumps an epoch, so an outcome from a call admitted in an earlier
//! state (say, a slow call that started before the breaker opened) is ignored
//! instead of being counted against the new state.

use crate::clock::Clock;
use crate::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use crate::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
/// The word's state while forced open or disabled: not closed, so the hot
/// path's one comparison sends every call to the slow path, which reads the
/// mode.
const OVERRIDDEN: u64 = 3;

/// The operator's override, in `CircuitBreaker::mode`.
const NORMAL: u8 = 0;
const FORCED_OPEN: u8 = 1;
const DISABLED: u8 = 2;
const METRICS_ONLY: u8 = 3;

/// The ticket of a call the breaker lets pass without learning from it
/// (disabled, or metrics-only while it would refuse): it matches no word.
const PASS: Ticket = Ticket { word: u64::MAX };

/// The longest a backed-off breaker stays open without a configured maximum.
const MAX_OPEN_TIME: Duration = Duration::from_secs(86_400);

/// How long a caller is told to wait while the half-open probes are all busy.
const PROBE_BUSY_RETRY: Duration = Duration::from_secs(1);

/// A breaker's state, as the snapshot reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls pass; failures are counted.
    Closed,
    /// Calls fail fast with `CircuitOpen`.
    Open,
    /// A limited number of probe calls pass.
    HalfOpen,
    /// Forced open by an operator: every call fails fast until a reset.
    ForcedOpen,
    /// Disabled by an operator: every call passes and is counted, and the
    /// breaker learns nothing, until a reset.
    Disabled,
    /// Set by an operator: the breaker computes its state but never refuses
    /// a call, until a reset.
    MetricsOnly,
}

/// Permission to make one call, tied to the state that granted it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    word: u64,
}

impl Ticket {
    fn is_probe(self) -> bool {
        self.word & 3 == HALF_OPEN
    }
}

/// A resolved circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before admitting probes.
    pub recovery_timeout: Duration,
    /// Each reopen after a failed probe multiplies the open time by this
    /// (1.0: every open lasts `recovery_timeout`) …
    pub timeout_multiplier: f64,
    /// … up to this (a day when unset); a close starts again from
    /// `recovery_timeout`.
    pub max_timeout: Option<Duration>,
    /// Probes in flight at most while half-open.
    pub half_open_max_calls: u32,
    /// Probe successes that close the breaker.
    pub success_threshold: u32,
    /// The optional failure-rate trigger.
    pub failure_rate: Option<FailureRateConfig>,
    /// The optional slow-call trigger.
    pub slow_calls: Option<SlowCallConfig>,
    /// When set, the rate triggers count the calls of the last this-many
    /// whole seconds (bucketed per second) instead of the last
    /// `window_size` calls.
    pub time_window: Option<Duration>,
}

/// Opens the breaker when the share of slow calls over the last
/// `window_size` calls reaches `threshold`, once at least `minimum_calls`
/// are recorded. A call is slow when it runs longer than `duration`, from
/// the bulkhead admitting it to its end (a timed-out call is slow too).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct SlowCallConfig {
    /// Longer than this is slow.
    pub duration: Duration,
    /// Share of slow calls in (0, 1].
    pub threshold: f64,
    /// Calls remembered (shared with the failure-rate trigger).
    pub window_size: u32,
    /// Calls needed before the share counts.
    pub minimum_calls: u32,
}

/// Opens the breaker when the failure rate over the last `window_size` calls
/// reaches `threshold`, once at least `minimum_calls` are recorded.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct FailureRateConfig {
    /// Failure rate in (0, 1].
    pub threshold: f64,
    /// Calls remembered.
    pub window_size: u32,
    /// Calls needed before the rate counts.
    pub minimum_calls: u32,
}

/// What outlives any one breaker of a dependency (a reload may replace
/// it): its name, where its transitions are announced, and how many of each
/// there have been, for the metrics.
pub(crate) struct Watch {
    dependency: std::sync::Arc<str>,
    events: std::sync::Arc<crate::events::Events>,
    /// `[from][to]`, by [`BreakerState::index`].
    counts: [[std::sync::atomic::AtomicU64; STATES]; STATES],
}

/// The states the snapshot reports.
const STATES: usize = 6;

impl Watch {
    pub(crate) fn new(dependency: &str, events: std::sync::Arc<crate::events::Events>) -> Self {
        Watch {
            dependency: dependency.into(),
            events,
            counts: Default::default(),
        }
    }

    /// Transitions from `from` to `to` so far.
    #[cfg(feature = "metrics")]
    pub(crate) fn count(&self, from: BreakerState, to: BreakerState) -> u64 {
        self.counts[from.index()][to.index()].load(std::sync::atomic::Ordering::Relaxed)
    }

    fn changed(&self, from: BreakerState, to: BreakerState) {
        self.counts[from.index()][to.index()].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(dependency = %self.dependency, %from, %to, "circuit breaker {from} → {to}");
        self.events.emit(crate::ResilienceEvent::BreakerTransition {
            dependency: self.dependency.to_string(),
            from,
            to,
            at: std::time::SystemTime::now(),
        });
    }
}

impl BreakerState {
    /// Every state, in [`index`](Self::index) order.
    pub(crate) const ALL: [BreakerState; STATES] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::Disabled,
        BreakerState::MetricsOnly,
    ];

    pub(crate) fn index(self) -> usize {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::Disabled => 4,
            BreakerState::MetricsOnly => 5,
        }
    }
}

/// The state the snapshot reports for a word's state bits under `mode`,
/// without the lazy open → half-open of [`CircuitBreaker::state`].
fn reported(bits: u64, mode: u8) -> BreakerState {
    match (mode, bits) {
        (FORCED_OPEN, _) => BreakerState::ForcedOpen,
        (DISABLED, _) => BreakerState::Disabled,
        (METRICS_ONLY, _) => BreakerState::MetricsOnly,
        (_, OPEN) => BreakerState::Open,
        (_, HALF_OPEN) => BreakerState::HalfOpen,
        _ => BreakerState::Closed,
    }
}

/// A breaker: its settings and its state. A reload that keeps the shape of
/// its window makes a new `CircuitBreaker` with the new settings around the
/// same state (`Core`), so what it has learned carries over.
pub(crate) struct CircuitBreaker {
    config: BreakerConfig,
    /// A slow-call trigger is configured, so calls are timed.
    times_calls: bool,
    core: Arc<Core>,
}

struct Core {
    /// `epoch << 2 | state`.
    word: AtomicU64,
    /// While open: when probes may start, in nanoseconds since `anchor`.
    open_until: AtomicU64,
    /// The same moment on the kernel's coarse clock, never after it (0 where
    /// there is no coarse clock): far from it, a refusal reads no precise
    /// clock.
    open_until_coarse: AtomicU64,
    clock: Clock,
    consecutive_failures: AtomicU32,
    window: Option<Window>,
    transitions: Mutex<Probes>,
    /// `NORMAL` or the operator's override; changed under `transitions`.
    mode: AtomicU8,
    /// Reopens after a failed probe since the breaker last opened from
    /// closed; changed under `transitions`.
    reopens: AtomicU32,
    /// The state last announced, by [`BreakerState::index`]; changed under
    /// `transitions`.
    announced: AtomicU8,
    watch: std::sync::Arc<Watch>,
}

#[derive(Default)]
struct Probes {
    in_flight: u32,
    successes: u32,
}

/// What a breaker's window remembers depends on: the same shape means the
/// same counts still make sense.
fn window_shape(config: &BreakerConfig) -> Option<(u32, Option<Duration>, bool)> {
    let size = config
        .failure_rate
        .map(|r| r.window_size)
        .or(config.slow_calls.map(|s| s.window_size))?;
    Some((size, config.time_window, config.slow_calls.is_some()))
}

impl CircuitBreaker {
    /// A breaker nobody watches, for tests of the breaker alone.
    #[cfg(test)]
    pub(crate) fn new(config: BreakerConfig) -> Self {
        let events = std::sync::Arc::new(crate::events::Events::default());
        Self::watched(config, std::sync::Arc::new(Watch::new("test", events)))
    }

    pub(crate) fn watched(config: BreakerConfig, watch: std::sync::Arc<Watch>) -> Self {
        CircuitBreaker {
            config,
            times_calls: config.slow_calls.is_some(),
            core: Arc::new(Core {
                word: AtomicU64::new(CLOSED),
                open_until: AtomicU64::new(0),
                open_until_coarse: AtomicU64::new(0),
                clock: Clock::new(),
                consecutive_failures: AtomicU32::new(0),
                window: window_shape(&config).map(|(size, span, _)| match span {
                    Some(span) => Window::Time(TimeWindow::new(span)),
                    None => Window::Calls(CallWindow::new(size)),
                }),
                transitions: Mutex::new(Probes::default()),
                mode: AtomicU8::new(NORMAL),
                reopens: AtomicU32::new(0),
                announced: AtomicU8::new(BreakerState::Closed.index() as u8),
                watch,
            }),
        }
    }

    /// The breaker a reload puts in this one's place, and whether it kept
    /// this one's state. It does unless the new settings shape the window
    /// differently (its counts would mean nothing under them); then it
    /// starts closed, keeping only an operator's override.
    pub(crate) fn retuned(&self, config: BreakerConfig) -> (CircuitBreaker, bool) {
        if window_shape(&config) == window_shape(&self.config) {
            let kept = CircuitBreaker {
                config,
                times_calls: config.slow_calls.is_some(),
                core: Arc::clone(&self.core),
            };
            return (kept, true);
        }
        let fresh = CircuitBreaker::watched(config, std::sync::Arc::clone(&self.core.watch));
        // The fresh breaker goes on from what was announced, so that only a
        // real change (open to closed, say) is announced again.
        let announced = self.core.announced.load(Ordering::Acquire);
        fresh.core.announced.store(announced, Ordering::Release);
        let state = self.state();
        if matches!(
            state,
            BreakerState::ForcedOpen | BreakerState::Disabled | BreakerState::MetricsOnly
        ) {
            fresh.set_override(state);
        } else {
            let _probes = fresh.lock();
            fresh.announce();
        }
        (fresh, false)
    }

    pub(crate) fn config(&self) -> &BreakerConfig {
        &self.config
    }

    fn now(&self) -> u64 {
        self.core.clock.nanos()
    }

    /// Sets the time this breaker reads, in a loom model.
    #[cfg(all(loom, test))]
    pub(crate) fn set_model_time(&self, since_start: Duration) {
        self.core.clock.set(since_start);
    }

    fn lock(&self) -> MutexGuard<'_, Probes> {
        self.core
            .transitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a call, or says how long until the breaker may admit one.
    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<Ticket, Duration> {
        let word = self.core.word.load(Ordering::Acquire);
        if word & 3 == CLOSED {
            return Ok(Ticket { word });
        }
        self.try_acquire_slow(word)
    }

    /// An open breaker's refusal, the common case here, in a function of its
    /// own: small, so it saves few registers (the short-circuit's whole cost
    /// is a few nanoseconds).
    #[cold]
    #[inline(never)]
    fn try_acquire_slow(&self, word: u64) -> Result<Ticket, Duration> {
        if word & 3 == OPEN {
            // More than the coarse clock's slack before the recovery time,
            // it proves the breaker still open, for a third of the cost of a
            // precise reading; nearer, the precise clock decides.
            if let Some(coarse) = crate::clock::coarse::now() {
                if let Some(refusal) = self.refuse_by_coarse(coarse, crate::clock::coarse::slack())
                {
                    return refusal;
                }
            }
            let until = self.core.open_until.load(Ordering::Acquire);
            let now = self.now();
            if now < until {
                return if self.core.mode.load(Ordering::Acquire) == METRICS_ONLY {
                    Ok(PASS)
                } else {
                    Err(Duration::from_nanos(until - now))
                };
            }
        }
        self.try_acquire_locked(word)
    }

    /// An open breaker's answer when the coarse clock reads `coarse` and may
    /// lag by up to `slack`; `None` when it cannot tell.
    #[inline]
    fn refuse_by_coarse(&self, coarse: u64, slack: u64) -> Option<Result<Ticket, Duration>> {
        let until = self.core.open_until_coarse.load(Ordering::Acquire);
        if coarse.saturating_add(slack) >= until {
            return None;
        }
        Some(if self.core.mode.load(Ordering::Acquire) == METRICS_ONLY {
            Ok(PASS)
        } else {
            // Never short: the coarse clock lags by up to half its slack, at
            // the opening and now.
            Err(Duration::from_nanos(until + slack / 2 - coarse))
        })
    }

    /// Every other case: an override, or a transition under the lock.
    #[inline(never)]
    fn try_acquire_locked(&self, word: u64) -> Result<Ticket, Duration> {
        let mode = self.core.mode.load(Ordering::Acquire);
        let metrics_only = mode == METRICS_ONLY;
        if word & 3 == OVERRIDDEN {
            // An override holds until a reset, so no lock: a disabled
            // breaker under load must not serialise its calls.
            match mode {
                DISABLED => return Ok(PASS),
                FORCED_OPEN => return Err(self.config.recovery_timeout),
                _ => {}
            }
        }
        let mut probes = self.lock();
        let mut word = self.core.word.load(Ordering::Acquire);
        match word & 3 {
            CLOSED => return Ok(Ticket { word }),
            OPEN => {
                let until = self.core.open_until.load(Ordering::Acquire);
                let now = self.now();
                if now < until {
                    return if metrics_only {
                        Ok(PASS)
                    } else {
                        Err(Duration::from_nanos(until - now))
                    };
                }
                *probes = Probes::default();
                word = self.transition(word, HALF_OPEN);
            }
            OVERRIDDEN => {
                return match self.core.mode.load(Ordering::Acquire) {
                    DISABLED => Ok(PASS),
                    // No time is known when an operator will reset it; the
                    // recovery timeout is the hint a caller gets.
                    _ => Err(self.config.recovery_timeout),
                };
            }
            _ => {}
        }
        if probes.in_flight < self.config.half_open_max_calls {
            probes.in_flight += 1;
            Ok(Ticket { word })
        } else if self.core.mode.load(Ordering::Acquire) == METRICS_ONLY {
            Ok(PASS)
        } else {
            Err(PROBE_BUSY_RETRY)
        }
    }

    /// An operator's override; [`CircuitBreaker::reset`] ends it. Calls
    /// admitted before it count for nothing (the epoch moves on).
    pub(crate) fn set_override(&self, state: BreakerState) {
        let mut probes = self.lock();
        let word = self.core.word.load(Ordering::Acquire);
        match state {
            BreakerState::ForcedOpen | BreakerState::Disabled => {
                let mode = if state == BreakerState::Disabled {
                    DISABLED
                } else {
                    FORCED_OPEN
                };
                self.core.mode.store(mode, Ordering::Release);
                *probes = Probes::default();
                self.transition(word, OVERRIDDEN);
            }
            BreakerState::MetricsOnly => {
                self.core.mode.store(METRICS_ONLY, Ordering::Release);
                // From an override it starts computing afresh, closed; from
                // normal operation it goes on where it is.
                if word & 3 == OVERRIDDEN {
                    *probes = Probes::default();
                    self.transition(word, CLOSED);
                } else {
                    self.announce();
                }
            }
            _ => {
                *probes = Probes::default();
                self.reset_locked(word);
            }
        }
    }

    /// Back to normal and closed, its counts cleared.
    pub(crate) fn reset(&self) {
        let mut probes = self.lock();
        *probes = Probes::default();
        self.reset_locked(self.core.word.load(Ordering::Acquire));
    }

    fn reset_locked(&self, word: u64) {
        self.core.mode.store(NORMAL, Ordering::Release);
        self.transition(word, CLOSED);
    }

    /// Moves to `state` under the lock and returns the new word.
    fn transition(&self, word: u64, state: u64) -> u64 {
        let next = ((word >> 2) + 1) << 2 | state;
        if state == OPEN {
            // A failed probe reopens for longer; opening from closed starts
            // again from the base.
            let reopens = if word & 3 == HALF_OPEN {
                self.core.reopens.load(Ordering::Relaxed).saturating_add(1)
            } else {
                0
            };
            self.core.reopens.store(reopens, Ordering::Relaxed);
            // A test that paused its clock after this breaker was made must
            // see it reopen exactly on that clock.
            crate::clock::notice_pause();
            let open_time = self.open_time(reopens).as_nanos() as u64;
            let until = self.now().saturating_add(open_time);
            self.core.open_until.store(until, Ordering::Release);
            let coarse = crate::clock::coarse::now().map_or(0, |c| c.saturating_add(open_time));
            self.core.open_until_coarse.store(coarse, Ordering::Release);
        }
        if state == CLOSED {
            self.core.reopens.store(0, Ordering::Relaxed);
            self.core.consecutive_failures.store(0, Ordering::Relaxed);
            if let Some(w) = &self.core.window {
                w.reset();
            }
        }
        self.core.word.store(next, Ordering::Release);
        self.announce();
        next
    }

    /// Counts and announces a change of the reported state, under the lock.
    fn announce(&self) {
        let now = reported(
            self.core.word.load(Ordering::Acquire) & 3,
            self.core.mode.load(Ordering::Acquire),
        );
        let before = self
            .core
            .announced
            .swap(now.index() as u8, Ordering::AcqRel);
        let before = BreakerState::ALL[usize::from(before)];
        if before != now {
            self.core.watch.changed(before, now);
        }
    }

    /// How long the breaker stays open after `reopens` failed probes in a
    /// row: the recovery timeout times the multiplier that many times, at
    /// most the maximum.
    fn open_time(&self, reopens: u32) -> Duration {
        let base = self.config.recovery_timeout;
        if reopens == 0 || self.config.timeout_multiplier <= 1.0 {
            return base;
        }
        let max = self.config.max_timeout.unwrap_or(MAX_OPEN_TIME).max(base);
        let factor = self
            .config
            .timeout_multiplier
            .powi(reopens.min(1000) as i32);
        let nanos = (base.as_nanos() as f64 * factor).round();
        if nanos >= max.as_nanos() as f64 {
            return max;
        }
        Duration::from_nanos(nanos as u64)
    }

    /// Whether this breaker times its calls (a slow-call trigger).
    #[inline]
    pub(crate) fn times_calls(&self) -> bool {
        self.times_calls
    }

    /// When a call admitted now started, for [`is_slow`](Self::is_slow).
    pub(crate) fn call_started(&self) -> u64 {
        self.now()
    }

    /// Whether a call that started at `started` is slow now that it ends.
    pub(crate) fn is_slow(&self, started: u64) -> bool {
        self.config.slow_calls.is_some_and(|slow| {
            self.now().saturating_sub(started) > slow.duration.as_nanos() as u64
        })
    }

    #[inline]
    pub(crate) fn on_success(&self, ticket: Ticket, slow: bool) {
        if ticket.is_probe() {
            return self.on_probe_result(ticket, true);
        }
        if self.core.word.load(Ordering::Relaxed) != ticket.word {
            return;
        }
        if self.core.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.core.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.core.window.is_some() && self.record_trips(false, slow) {
            self.open_from(ticket);
        }
    }

    pub(crate) fn on_failure(&self, ticket: Ticket, slow: bool) {
        if ticket.is_probe() {
            return self.on_probe_result(ticket, false);
        }
        if self.core.word.load(Ordering::Relaxed) != ticket.word {
            return;
        }
        let consecutive = self
            .core
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        let rate_tripped = self.core.window.is_some() && self.record_trips(true, slow);
        if consecutive >= self.config.failure_threshold || rate_tripped {
            self.open_from(ticket);
        }
    }

    /// Records an outcome in the window; true when a rate trigger trips.
    fn record_trips(&self, failed: bool, slow: bool) -> bool {
        let Some(w) = &self.core.window else {
            return false;
        };
        let (failures, slows, calls) = w.record(failed, slow, &self.core.clock);
        let reached = |rate: f64, count: u64, minimum: u32| {
            calls >= u64::from(minimum) && count as f64 >= rate * calls as f64
        };
        self.config
            .failure_rate
            .is_some_and(|r| failed && reached(r.threshold, failures, r.minimum_calls))
            || self
                .config
                .slow_calls
                .is_some_and(|s| slow && reached(s.threshold, slows, s.minimum_calls))
    }

    fn open_from(&self, ticket: Ticket) {
        let _probes = self.lock();
        if self.core.word.load(Ordering::Acquire) == ticket.word {
            self.transition(ticket.word, OPEN);
        }
    }

    /// A call that was admitted but never ran to an outcome (rejected by the
    /// bulkhead, or cancelled): it frees its probe slot and counts for nothing.
    pub(crate) fn on_ignored(&self, ticket: Ticket) {
        if ticket.is_probe() {
            let mut probes = self.lock();
            if self.core.word.load(Ordering::Acquire) == ticket.word {
                probes.in_flight -= 1;
            }
        }
    }

    fn on_probe_result(&self, ticket: Ticket, success: bool) {
        let mut probes = self.lock();
        if self.core.word.load(Ordering::Acquire) != ticket.word {
            return;
        }
        probes.in_flight -= 1;
        if !success {
            self.transition(ticket.word, OPEN);
        } else {
            probes.successes += 1;
            if probes.successes >= self.config.success_threshold {
                self.transition(ticket.word, CLOSED);
            }
        }
    }

    /// The state now. An open breaker whose recovery time has passed reports
    /// half-open, as the next call will find it. An override reports itself.
    pub(crate) fn state(&self) -> BreakerState {
        match self.core.mode.load(Ordering::Acquire) {
            FORCED_OPEN => return BreakerState::ForcedOpen,
            DISABLED => return BreakerState::Disabled,
            METRICS_ONLY => return BreakerState::MetricsOnly,
            _ => {}
        }
        match self.core.word.load(Ordering::Acquire) & 3 {
            CLOSED => BreakerState::Closed,
            OPEN if self.now() < self.core.open_until.load(Ordering::Acquire) => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    pub(crate) fn failure_count(&self) -> u32 {
        self.core.consecutive_failures.load(Ordering::Relaxed)
    }

    /// The failure rate over the window, once it holds `minimum_calls` calls.
    pub(crate) fn failure_rate(&self) -> Option<f64> {
        let (w, rate) = (self.core.window.as_ref()?, self.config.failure_rate?);
        let (failures, _, calls) = w.counts(&self.core.clock);
        (calls >= rate.minimum_calls as u64 && calls > 0).then(|| failures as f64 / calls as f64)
    }

    /// The share of slow calls over the window, once it holds
    /// `minimum_calls` calls.
    pub(crate) fn slow_call_rate(&self) -> Option<f64> {
        let (w, slow) = (self.core.window.as_ref()?, self.config.slow_calls?);
        let (_, slows, calls) = w.counts(&self.core.clock);
        (calls >= slow.minimum_calls as u64 && calls > 0).then(|| slows as f64 / calls as f64)
    }
}

/// The outcomes a rate trigger is measured over.
enum Window {
    Calls(CallWindow),
    Time(TimeWindow),
}

impl Window {
    /// Records one outcome; returns (failures, slow calls, calls) in the
    /// window. Only a time window reads the clock.
    fn record(&self, failed: bool, slow: bool, clock: &Clock) -> (u64, u64, u64) {
        match self {
            Window::Calls(w) => w.record(failed, slow),
            Window::Time(w) => w.record(failed, slow, clock.nanos()),
        }
    }

    fn counts(&self, clock: &Clock) -> (u64, u64, u64) {
        match self {
            Window::Calls(w) => w.counts(),
            Window::Time(w) => w.counts(clock.nanos()),
        }
    }

    fn reset(&self) {
        match self {
            Window::Calls(w) => w.reset(),
            Window::Time(w) => w.reset(),
        }
    }
}

/// The last `size` outcomes, lock-free: each record swaps one slot (bit 0:
/// failed, bit 1: slow) and adjusts the two counts by the difference.
struct CallWindow {
    slots: Box<[AtomicU8]>,
    cursor: AtomicU64,
    failures: AtomicI64,
    slows: AtomicI64,
}

const FAILED_BIT: u8 = 1;
const SLOW_BIT: u8 = 2;

impl CallWindow {
    fn new(size: u32) -> Self {
        CallWindow {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            cursor: AtomicU64::new(0),
            failures: AtomicI64::new(0),
            slows: AtomicI64::new(0),
        }
    }

    fn record(&self, failed: bool, slow: bool) -> (u64, u64, u64) {
        let size = self.slots.len() as u64;
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        let new = (u8::from(failed) * FAILED_BIT) | (u8::from(slow) * SLOW_BIT);
        let old = self.slots[(i % size) as usize].swap(new, Ordering::Relaxed);
        let adjust = |count: &AtomicI64, bit: u8| {
            let delta = i64::from(new & bit != 0) - i64::from(old & bit != 0);
            let now = if delta == 0 {
                count.load(Ordering::Relaxed)
            } else {
                count.fetch_add(delta, Ordering::Relaxed) + delta
            };
            now.max(0) as u64
        };
        let failures = adjust(&self.failures, FAILED_BIT);
        let slows = adjust(&self.slows, SLOW_BIT);
        (failures, slows, (i + 1).min(size))
    }

    fn counts(&self) -> (u64, u64, u64) {
        let calls = self
            .cursor
            .load(Ordering::Relaxed)
            .min(self.slots.len() as u64);
        let get = |c: &AtomicI64| c.load(Ordering::Relaxed).max(0) as u64;
        (get(&self.failures), get(&self.slows), calls)
    }

    fn reset(&self) {
        for slot in self.slots.iter() {
            slot.store(0, Ordering::Relaxed);
        }
        self.failures.store(0, Ordering::Relaxed);
        self.slows.store(0, Ordering::Relaxed);
        self.cursor.store(0, Ordering::Relaxed);
    }
}

/// The outcomes of the last `seconds` whole seconds, one bucket a second, so
/// its size does not grow with traffic. A small lock guards it: only a
/// breaker configured with a time window pays for it, once per outcome.
struct TimeWindow {
    seconds: u64,
    state: Mutex<TimeState>,
}

struct TimeState {
    buckets: Box<[Bucket]>,
    totals: Bucket,
    /// The newest second recorded or looked at.
    latest: u64,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    second: u64,
    calls: u64,
    failures: u64,
    slows: u64,
}

impl TimeWindow {
    fn new(span: Duration) -> Self {
        let seconds = span.as_secs().max(1);
        TimeWindow {
            seconds,
            state: Mutex::new(TimeState {
                buckets: vec![Bucket::default(); seconds as usize].into_boxed_slice(),
                totals: Bucket::default(),
                latest: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TimeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the buckets that have left the window by second `now`.
    fn expire(&self, state: &mut TimeState, now: u64) {
        if now <= state.latest && state.latest != 0 {
            return;
        }
        state.latest = now;
        let TimeState {
            buckets, totals, ..
        } = state;
        for bucket in buckets.iter_mut() {
            if bucket.calls != 0 && bucket.second + self.seconds <= now {
                totals.calls -= bucket.calls;
                totals.failures -= bucket.failures;
                totals.slows -= bucket.slows;
                *bucket = Bucket::default();
            }
        }
    }

    fn record(&self, failed: bool, slow: bool, now_nanos: u64) -> (u64, u64, u64) {
        let now = now_nanos / 1_000_000_000;
        let mut state = self.lock();
        self.expire(&mut state, now);
        let slot = (now % self.seconds) as usize;
        let state = &mut *state;
        let bucket = &mut state.buckets[slot];
        if bucket.second != now {
            *bucket = Bucket {
                second: now,
                ..Bucket::default()
            };
        }
        bucket.calls += 1;
        bucket.failures += u64::from(failed);
        bucket.slows += u64::from(slow);
        state.totals.calls += 1;
        state.totals.failures += u64::from(failed);
        state.totals.slows += u64::from(slow);
        (
            state.totals.failures,
            state.totals.slows,
            state.totals.calls,
        )
    }

    fn counts(&self, now_nanos: u64) -> (u64, u64, u64) {
        let mut state = self.lock();
        self.expire(&mut state, now_nanos / 1_000_000_000);
        (
            state.totals.failures,
            state.totals.slows,
            state.totals.calls,
        )
    }

    fn reset(&self) {
        let mut state = self.lock();
        state.buckets.fill(Bucket::default());
        state.totals = Bucket::default();
    }
}

#[cfg(test)]
mod tests;
