//! Faults on purpose: chaos from the configuration (a share of calls fail or
//! are delayed), and, with the `testing` feature, a test's own injector
//! (`Runtime::inject`). Both act after the bulkhead admits a call and
//! inside its timeout, so an injected delay can time a call out, and an
//! injected fault counts as a failure of the dependency: it stands for one.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A dependency's chaos settings (`chaos_*` keys; refused unless the top
/// level sets `chaos_enabled: true`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct ChaosConfig {
    /// Share of calls, in [0, 1], that fail with `InjectedFault` without
    /// running.
    pub fault_rate: f64,
    /// Share of calls, in [0, 1], delayed by `latency` before they run.
    pub latency_rate: f64,
    /// The injected delay.
    pub latency: Duration,
    /// Makes the choices repeat from run to run.
    pub seed: Option<u64>,
}

/// What happens to one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Injection {
    Fault,
    Delay(Duration),
    Hang,
}

/// One dependency's sources of faults.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    chaos: Option<Chaos>,
    /// The dependency's own, so a reload keeps a test's pending injections.
    pub(crate) injected: Arc<Injected>,
}

impl Faults {
    /// `None` when nothing can inject a fault into this dependency.
    pub(crate) fn new(chaos: Option<ChaosConfig>, injected: &Arc<Injected>) -> Option<Box<Faults>> {
        let chaos = chaos.map(Chaos::new);
        (chaos.is_some() || cfg!(feature = "testing")).then(|| {
            Box::new(Faults {
                chaos,
                injected: Arc::clone(injected),
            })
        })
    }

    pub(crate) fn chaos(&self) -> Option<&ChaosConfig> {
        self.chaos.as_ref().map(|c| &c.config)
    }

    /// What to do to the next call: a test's injection first, then chaos.
    pub(crate) fn next(&self) -> Option<Injection> {
        self.injected.take().or_else(|| self.chaos.as_ref()?.roll())
    }
}

#[derive(Debug)]
struct Chaos {
    config: ChaosConfig,
    /// A splitmix64 counter: one `fetch_add` a call, no lock.
    state: AtomicU64,
}

impl Chaos {
    fn new(config: ChaosConfig) -> Self {
        let seed = config.seed.unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0);
            h.finish()
        });
        Chaos {
            config,
            state: AtomicU64::new(seed),
        }
    }

    fn roll(&self) -> Option<Injection> {
        let first = self.uniform();
        if first < self.config.fault_rate {
            return Some(Injection::Fault);
        }
        (self.config.latency_rate > 0.0 && self.uniform() < self.config.latency_rate)
            .then_some(Injection::Delay(self.config.latency))
    }

    /// A uniform number in [0, 1).
    fn uniform(&self) -> f64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A test's pending injections: the next calls fail, are delayed, or hang.
#[derive(Debug, Default)]
pub(crate) struct Injected {
    fail: AtomicU32,
    delay: AtomicU32,
    delay_nanos: AtomicU64,
    hang: AtomicU32,
}

impl Injected {
    fn take(&self) -> Option<Injection> {
        if take_one(&self.fail) {
            return Some(Injection::Fault);
        }
        if take_one(&self.delay) {
            let nanos = self.delay_nanos.load(Ordering::Relaxed);
            return Some(Injection::Delay(Duration::from_nanos(nanos)));
        }
        take_one(&self.hang).then_some(Injection::Hang)
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn fail_next(&self, n: u32) {
        self.fail.store(n, Ordering::Relaxed);
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn delay_next(&self, n: u32, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.delay_nanos.store(nanos, Ordering::Relaxed);
        self.delay.store(n, Ordering::Relaxed);
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn hang_next(&self, n: u32) {
        self.hang.store(n, Ordering::Relaxed);
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn clear(&self) {
        self.fail.store(0, Ordering::Relaxed);
        self.delay.store(0, Ordering::Relaxed);
        self.hang.store(0, Ordering::Relaxed);
    }
}

/// Takes one from a count, if any is left.
fn take_one(count: &AtomicU32) -> bool {
    count.load(Ordering::Relaxed) != 0
        && count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chaos(fault_rate: f64, latency_rate: f64, seed: u64) -> Chaos {
        Chaos::new(ChaosConfig {
            fault_rate,
            latency_rate,
            latency: Duration::from_millis(5),
            seed: Some(seed),
        })
    }

    #[test]
    fn rates_hold_over_many_calls_and_a_seed_repeats_the_choices() {
        let c = chaos(0.2, 0.5, 7);
        let rolls: Vec<_> = (0..100_000).map(|_| c.roll()).collect();
        let faults = rolls
            .iter()
            .filter(|r| **r == Some(Injection::Fault))
            .count();
        let delays = rolls
            .iter()
            .filter(|r| matches!(r, Some(Injection::Delay(_))))
            .count();
        // 20 % fail; half of the other 80 % are delayed.
        assert!((19_000..21_000).contains(&faults), "{faults}");
        assert!((39_000..41_000).contains(&delays), "{delays}");
        let again: Vec<_> = {
            let c = chaos(0.2, 0.5, 7);
            (0..100_000).map(|_| c.roll()).collect()
        };
        assert_eq!(rolls, again);
        let other = chaos(0.2, 0.5, 8);
        assert_ne!(
            rolls,
            (0..100_000).map(|_| other.roll()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn rates_of_zero_and_one_are_exact() {
        let never = chaos(0.0, 0.0, 1);
        assert!((0..10_000).all(|_| never.roll().is_none()));
        let always = chaos(1.0, 0.0, 1);
        assert!((0..10_000).all(|_| always.roll() == Some(Injection::Fault)));
    }

    #[test]
    fn injections_are_taken_in_order_and_counted_down() {
        let i = Injected::default();
        i.fail_next(2);
        i.delay_next(1, Duration::from_secs(3));
        i.hang_next(1);
        assert_eq!(i.take(), Some(Injection::Fault));
        assert_eq!(i.take(), Some(Injection::Fault));
        assert_eq!(i.take(), Some(Injection::Delay(Duration::from_secs(3))));
        assert_eq!(i.take(), Some(Injection::Hang));
        assert_eq!(i.take(), None);
        i.fail_next(5);
        i.clear();
        assert_eq!(i.take(), None);
    }
}
