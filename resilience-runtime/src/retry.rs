//! Retries: the backoff schedule, jitter, the per-dependency retry budget and
//! the per-call deadline. The loop that uses them lives in the call path,
//! which alone knows the order of the policies.
//!
//! Only sites marked `idempotent` are ever retried; that rule is the macro's
//! and the call path's, not this module's.

use crate::clock::Clock;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the wait before a retry grows with each retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backoff {
    /// Always the initial delay.
    Constant,
    /// The initial delay times the retry's number (1, 2, 3, …).
    Linear,
    /// The initial delay times the multiplier to the power of (retry number − 1).
    Exponential,
}

/// How much randomness spreads the waits of many callers apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// Uniform in [0, delay].
    Full,
    /// delay / 2 plus uniform in [0, delay / 2].
    Equal,
    /// Exactly the delay.
    None,
}

/// Which failures of an attempt are worth another attempt. An open circuit
/// never is: the call stops at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryOn {
    /// A body error (that the site's `retry_if`, if any, accepts).
    pub error: bool,
    /// An attempt cut off by its timeout.
    pub timeout: bool,
    /// An attempt refused by a full bulkhead.
    pub rejected: bool,
    /// An attempt refused by the rate limiter; the next one waits at least
    /// until the limiter's turn comes.
    pub rate_limited: bool,
}

/// A dependency's resolved retry policy.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Retries after the first attempt (3 means up to 4 attempts); at least 1.
    pub max_retries: u32,
    /// The growth of the waits.
    pub backoff: Backoff,
    /// The first wait.
    pub initial_delay: Duration,
    /// No wait is longer, whether computed or hinted by the server.
    pub max_delay: Duration,
    /// Growth per retry for [`Backoff::Exponential`].
    pub multiplier: f64,
    /// The randomness applied to computed waits.
    pub jitter: Jitter,
    /// Which failures are retried.
    pub retry_on: RetryOn,
    /// Over the budget's window, retries may add at most this share of first attempts.
    pub budget_ratio: f64,
    /// Retries per second of the window that are allowed whatever the ratio.
    pub budget_min_per_second: u32,
    /// One deadline for the whole call, waits and attempts included.
    pub max_elapsed: Option<Duration>,
}

impl RetryConfig {
    /// The computed wait before retry number `retry` (1-based), before jitter,
    /// capped at `max_delay`.
    ///
    /// ```
    /// use resilience_runtime::Runtime;
    ///
    /// let rt = Runtime::from_yaml_str(
    ///     "resilience:
    ///        external_dependencies:
    ///          db: { type: database, max_retry_attempts: 5, retry_backoff: exponential,
    ///                retry_initial_delay_seconds: 0.1, retry_max_delay_seconds: 0.5,
    ///                retry_multiplier: 2, retry_jitter: none }",
    /// )
    /// .unwrap();
    /// let config = rt.dependency_config("db").unwrap().retry.unwrap();
    /// let waits: Vec<u128> = (1..=4).map(|n| config.base_delay(n).as_millis()).collect();
    /// assert_eq!(waits, [100, 200, 400, 500]);
    /// ```
    pub fn base_delay(&self, retry: u32) -> Duration {
        let initial = self.initial_delay.as_secs_f64();
        let secs = match self.backoff {
            Backoff::Constant => initial,
            Backoff::Linear => initial * f64::from(retry),
            Backoff::Exponential => {
                // Clamped so the exponent cannot wrap; past it the cap applies anyway.
                initial
                    * self
                        .multiplier
                        .powi(retry.saturating_sub(1).min(1024) as i32)
            }
        };
        if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
            return self.max_delay;
        }
        Duration::from_secs_f64(secs).min(self.max_delay)
    }

    /// The wait before retry number `retry`: a server's hint when it gave
    /// one (capped, never jittered), else the computed wait with jitter.
    pub(crate) fn delay(&self, retry: u32, hint: Option<Duration>) -> Duration {
        if let Some(hint) = hint {
            return hint.min(self.max_delay);
        }
        let base = self.base_delay(retry);
        match self.jitter {
            Jitter::None => base,
            Jitter::Full => base.mul_f64(unit_random()),
            Jitter::Equal => base / 2 + (base / 2).mul_f64(unit_random()),
        }
    }
}

/// Uniform in [0, 1], from a per-thread xorshift generator: no lock, no
/// allocation, and different sequences on different threads and processes.
fn unit_random() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(&h as *const _ as usize);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        // The top 53 bits, as a fraction of 2^53 − 1, so 1.0 itself is reachable.
        (x >> 11) as f64 / ((1u64 << 53) - 1) as f64
    })
}

/// What happened to the logical calls of a dependency's idempotent sites.
/// (Their successful first attempts are counted in the dependency's striped
/// counters, so the hot path pays no extra atomic.)
#[derive(Default)]
pub(crate) struct RetryStats {
    pub successful_with_retry: AtomicU64,
    pub failed_without_retry: AtomicU64,
    pub failed_with_retry: AtomicU64,
    pub retries: AtomicU64,
    pub budget_exhausted: AtomicU64,
    pub deadline_exhausted: AtomicU64,
}

/// A dependency's live retry policy.
///
/// Its counters and budget outlive a reload: the policy a reload puts in its
/// place shares them (the budget only while its settings are unchanged).
pub(crate) struct Retry {
    pub config: RetryConfig,
    pub stats: Arc<RetryStats>,
    pub budget: Arc<Budget>,
}

impl Retry {
    pub(crate) fn new(config: RetryConfig, stats: Arc<RetryStats>) -> Self {
        Retry {
            budget: Arc::new(Budget::new(
                config.budget_ratio,
                config.budget_min_per_second,
            )),
            stats,
            config,
        }
    }

    /// The policy a reload puts in this one's place.
    pub(crate) fn retuned(&self, config: RetryConfig) -> Self {
        let same_budget = (config.budget_ratio, config.budget_min_per_second)
            == (self.config.budget_ratio, self.config.budget_min_per_second);
        Retry {
            budget: if same_budget {
                Arc::clone(&self.budget)
            } else {
                Arc::new(Budget::new(
                    config.budget_ratio,
                    config.budget_min_per_second,
                ))
            },
            stats: Arc::clone(&self.stats),
            config,
        }
    }
}

/// The budget's window, in seconds (as Finagle's and tower's budgets).
pub(crate) const BUDGET_WINDOW_SECONDS: u64 = 10;
const PPM: u128 = 1_000_000;

/// Limits retries to a share of first attempts over the last
/// [`BUDGET_WINDOW_SECONDS`], plus a reserve of `min_per_second` × window.
///
/// First attempts are not deposited on the hot path: the caller passes the
/// dependency's cumulative count of first attempts, which its counters
/// already hold, and the budget remembers that count once per second in which
/// it is consulted. A first attempt is therefore counted in the window of the
/// second in which the budget first looked after it; after a quiet spell
/// longer than the window, the first look spreads what happened since the
/// last one evenly over that spell. The arithmetic is integer (parts per
/// million), so a ratio of 0.6 allows exactly 3 retries per 5 first attempts.
pub(crate) struct Budget {
    ratio_ppm: u128,
    reserve: u128,
    clock: Clock,
    window: Mutex<[Bucket; BUDGET_WINDOW_SECONDS as usize]>,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// The second (on the budget's clock) this bucket records; `None` when unused.
    second: Option<u64>,
    /// Cumulative first attempts when the budget first looked in that second.
    base: u64,
    /// Retries granted in that second.
    retries: u64,
}

impl Budget {
    pub(crate) fn new(ratio: f64, min_per_second: u32) -> Self {
        let mut window = [Bucket::default(); BUDGET_WINDOW_SECONDS as usize];
        // Second 0 with nothing counted: a new budget knows its whole history.
        window[0] = Bucket {
            second: Some(0),
            base: 0,
            retries: 0,
        };
        Budget {
            ratio_ppm: (ratio * PPM as f64).round() as u128,
            reserve: u128::from(min_per_second) * u128::from(BUDGET_WINDOW_SECONDS),
            clock: Clock::new(),
            window: Mutex::new(window),
        }
    }

    /// Grants one retry if the budget allows it. `firsts` is the
    /// dependency's cumulative count of first attempts.
    pub(crate) fn try_withdraw(&self, firsts: u64) -> bool {
        self.try_withdraw_at(firsts, self.clock.elapsed().as_secs())
    }

    fn try_withdraw_at(&self, firsts: u64, now: u64) -> bool {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let in_window = |b: &Bucket| b.second.is_some_and(|s| s + BUDGET_WINDOW_SECONDS > now);
        let newest = window
            .iter()
            .filter_map(|b| b.second.map(|s| (s, b.base)))
            .max();
        let oldest = window
            .iter()
            .filter(|b| in_window(b))
            .map(|b| (b.second, b.base))
            .min();
        let deposits = match (oldest, newest) {
            (Some((_, base)), _) => firsts.saturating_sub(base),
            // Nothing recorded inside the window: spread what came since the
            // last look evenly over the time since then.
            (None, Some((second, base))) => {
                let spell = now.saturating_sub(second).max(1);
                firsts.saturating_sub(base) * BUDGET_WINDOW_SECONDS / spell
            }
            (None, None) => 0,
        };
        let slot = (now % BUDGET_WINDOW_SECONDS) as usize;
        if window[slot].second != Some(now) {
            window[slot] = Bucket {
                second: Some(now),
                // A cold window keeps its estimate for the rest of the window.
                base: if oldest.is_some() {
                    firsts
                } else {
                    firsts - deposits.min(firsts)
                },
                retries: 0,
            };
        }
        let spent: u64 = window
            .iter()
            .filter(|b| in_window(b))
            .map(|b| b.retries)
            .sum();
        let allowed = self.ratio_ppm * u128::from(deposits) + self.reserve * PPM;
        if (u128::from(spent) + 1) * PPM > allowed {
            return false;
        }
        window[slot].retries += 1;
        true
    }
}

/// Reads a relaxed counter.
pub(crate) fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Adds one to a relaxed counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(backoff: Backoff, jitter: Jitter) -> RetryConfig {
        RetryConfig {
            max_retries: 10,
            backoff,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            multiplier: 3.0,
            jitter,
            retry_on: RetryOn {
                error: true,
                timeout: true,
                rejected: false,
                rate_limited: false,
            },
            budget_ratio: 0.2,
            budget_min_per_second: 10,
            max_elapsed: None,
        }
    }

    fn millis(c: &RetryConfig, n: u32) -> u128 {
        c.delay(n, None).as_millis()
    }

    #[test]
    fn each_backoff_kind_has_its_exact_schedule_and_the_cap() {
        let c = config(Backoff::Constant, Jitter::None);
        assert_eq!((1..=4).map(|n| millis(&c, n)).collect::<Vec<_>>(), [100; 4]);
        let c = config(Backoff::Linear, Jitter::None);
        assert_eq!(
            (1..=12).map(|n| millis(&c, n)).collect::<Vec<_>>(),
            [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1000, 1000]
        );
        let c = config(Backoff::Exponential, Jitter::None);
        assert_eq!(
            (1..=5).map(|n| millis(&c, n)).collect::<Vec<_>>(),
            [100, 300, 900, 1000, 1000]
        );
        // Far past any sane exponent, still the cap.
        assert_eq!(c.delay(u32::MAX, None), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_varies() {
        for (jitter, low) in [(Jitter::Full, 0), (Jitter::Equal, 150)] {
            let c = config(Backoff::Exponential, jitter);
            let waits: Vec<u128> = (0..2000).map(|_| c.delay(2, None).as_millis()).collect();
            assert!(
                waits.iter().all(|&w| (low..=300).contains(&w)),
                "{jitter:?}"
            );
            let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
            // Spread over most of the range, not stuck at one value.
            assert!(*min < low + 30 && *max > 270, "{jitter:?}: {min}..{max}");
        }
    }

    #[test]
    fn a_hint_replaces_the_backoff_and_is_capped() {
        let c = config(Backoff::Exponential, Jitter::Full);
        let hint = Some(Duration::from_millis(700));
        assert_eq!(c.delay(1, hint), Duration::from_millis(700));
        assert_eq!(
            c.delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn the_budget_allows_the_ratio_plus_the_reserve_exactly() {
        // 0.6 of 5 first attempts is exactly 3 retries: no float drift.
        let b = Budget::new(0.6, 0);
        let granted = (0..10).filter(|_| b.try_withdraw_at(5, 0)).count();
        assert_eq!(granted, 3);
        // Reserve only: 2 per second × 10 s window.
        let b = Budget::new(0.0, 2);
        assert_eq!((0..50).filter(|_| b.try_withdraw_at(0, 3)).count(), 20);
    }

    #[test]
    fn retries_and_deposits_leave_the_window() {
        let b = Budget::new(0.5, 0);
        assert_eq!((0..10).filter(|_| b.try_withdraw_at(10, 0)).count(), 5);
        // At second 9 the deposits of second 0 still count; no more granted.
        assert!(!b.try_withdraw_at(10, 9));
        // At second 10, second 0 has left: the 10 deposits seen at second 9
        // are the base now, so only new first attempts fund retries.
        assert!(!b.try_withdraw_at(10, 10));
        assert_eq!((0..10).filter(|_| b.try_withdraw_at(14, 10)).count(), 2);
    }

    /// The budget's documented rule over an unbounded log of looks, with no
    /// ring buffer: what the real budget must agree with.
    struct Reference {
        ratio_ppm: u128,
        reserve: u128,
        /// (second, first attempts at the first look in that second).
        looks: Vec<(u64, u64)>,
        /// (second, retries granted in it).
        grants: Vec<(u64, u64)>,
    }

    impl Reference {
        fn new(ratio: f64, min_per_second: u32) -> Self {
            Reference {
                ratio_ppm: (ratio * 1e6).round() as u128,
                reserve: u128::from(min_per_second) * 10,
                looks: vec![(0, 0)],
                grants: Vec::new(),
            }
        }

        fn withdraw(&mut self, firsts: u64, now: u64) -> bool {
            let oldest = self
                .looks
                .iter()
                .filter(|(s, _)| s + 10 > now)
                .min()
                .copied();
            let newest = self.looks.iter().max().copied();
            let deposits = match (oldest, newest) {
                (Some((_, base)), _) => firsts.saturating_sub(base),
                (None, Some((second, base))) => {
                    firsts.saturating_sub(base) * 10 / now.saturating_sub(second).max(1)
                }
                (None, None) => 0,
            };
            if !self.looks.iter().any(|(s, _)| *s == now) {
                let base = if oldest.is_some() {
                    firsts
                } else {
                    firsts - deposits.min(firsts)
                };
                self.looks.push((now, base));
            }
            let spent: u64 = self
                .grants
                .iter()
                .filter(|(s, _)| s + 10 > now)
                .map(|(_, n)| n)
                .sum();
            let granted = (u128::from(spent) + 1) * 1_000_000
                <= self.ratio_ppm * u128::from(deposits) + self.reserve * 1_000_000;
            if granted {
                match self.grants.iter_mut().find(|(s, _)| *s == now) {
                    Some((_, n)) => *n += 1,
                    None => self.grants.push((now, 1)),
                }
            }
            granted
        }
    }

    proptest::proptest! {
        /// Random traffic: seconds pass (sometimes far more than the window),
        /// first attempts accumulate, retries are asked for. Every decision
        /// matches the reference.
        #[test]
        fn the_budget_agrees_with_its_reference_model(
            ratio in 0.0f64..3.0,
            min_per_second in 0u32..4,
            steps in proptest::collection::vec((0u64..4, 0u64..30, 0usize..6, proptest::bool::weighted(0.05)), 1..200),
        ) {
            let budget = Budget::new(ratio, min_per_second);
            let mut reference = Reference::new(ratio, min_per_second);
            let (mut now, mut firsts) = (0u64, 0u64);
            for (advance, new_firsts, asks, quiet) in steps {
                now += if quiet { 10 + advance * 7 } else { advance };
                firsts += new_firsts;
                for _ in 0..asks {
                    proptest::prop_assert_eq!(
                        budget.try_withdraw_at(firsts, now),
                        reference.withdraw(firsts, now),
                        "at second {} with {} first attempts", now, firsts
                    );
                }
            }
        }
    }

    #[test]
    fn after_a_quiet_spell_deposits_are_spread_over_it() {
        let b = Budget::new(1.0, 0);
        assert!(!b.try_withdraw_at(0, 0));
        // 100 first attempts over 100 s of silence: about 10 in the window.
        assert_eq!((0..50).filter(|_| b.try_withdraw_at(100, 100)).count(), 10);
    }
}
