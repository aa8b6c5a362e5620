//! One dependency's live state: its policies and its counters.

use crate::bulkhead::Bulkhead;
use crate::chaos::{Faults, Injected};
use crate::circuit_breaker::{CircuitBreaker, Watch};
use crate::config::DependencyConfig;
use crate::events::Events;
use crate::fallback::FallbackStats;
use crate::live::Live;
use crate::rate_limiter::{RateLimiter, Shared};
use crate::retry::{Retry, RetryStats};
use crate::stats::Stats;
use std::ops::Deref;
use std::sync::Arc;

/// One dependency: what lasts for the runtime's life (its counters, its
/// bulkhead, which a reload resizes in place) and its policies, which a
/// reload replaces as a whole (see [`Policies`]).
pub(crate) struct Dependency {
    pub name: String,
    pub operations: Vec<&'static str>,
    /// Operations of callers that are not annotated sites (a tower layer),
    /// added on their first call.
    pub later_operations: std::sync::Mutex<Vec<&'static str>>,
    pub bulkhead: Bulkhead,
    /// Set when some site declares a fallback.
    pub fallback: Option<FallbackStats>,
    pub stats: Stats,
    /// What each generation of policies is built with.
    pub kept: Kept,
    policies: Live<Policies>,
}

/// A dependency's settings and the policies built from them. A call reads
/// them once, at its start, and keeps that generation to its end, so a
/// reload never changes the rules under a call in flight. Policies whose
/// state matters share it with their successor (see each `retuned`).
pub(crate) struct Policies {
    pub config: DependencyConfig,
    pub breaker: Option<CircuitBreaker>,
    pub rate_limiter: Option<RateLimiter>,
    /// Set when retries are configured and some site is `idempotent`.
    pub retry: Option<Retry>,
    /// Chaos and a test's injected faults; `None` when neither can apply.
    pub faults: Option<Box<Faults>>,
}

/// What outlives every generation of a dependency's policies.
pub(crate) struct Kept {
    flags: SiteFlags,
    /// The retry counters, kept across reloads that drop and restore retries.
    retry_stats: Arc<RetryStats>,
    /// A test's pending injections.
    injected: Arc<Injected>,
    /// What every breaker this dependency has had shares: its name, where
    /// it announces transitions, and their counts.
    pub breaker_watch: Arc<Watch>,
}

impl Kept {
    /// The policies `config` asks for, going on from `old`'s state where
    /// there is one; and whether the breaker had to start afresh (its window
    /// changed shape).
    fn policies(
        &self,
        config: DependencyConfig,
        old: Option<&Policies>,
        shared: &Shared,
    ) -> (Policies, bool) {
        let mut restarted = false;
        let breaker = config
            .circuit_breaker
            .map(|c| match old.and_then(|o| o.breaker.as_ref()) {
                Some(b) => {
                    let (b, kept) = b.retuned(c);
                    restarted = !kept;
                    b
                }
                None => CircuitBreaker::watched(c, Arc::clone(&self.breaker_watch)),
            });
        let rate_limiter =
            config
                .rate_limit
                .map(|r| match old.and_then(|o| o.rate_limiter.as_ref()) {
                    Some(l) => l.retuned(r, &config.name, shared),
                    None => RateLimiter::new(r, &config.name, shared),
                });
        let retry = config.retry.filter(|_| self.flags.idempotent).map(|r| {
            match old.and_then(|o| o.retry.as_ref()) {
                Some(retry) => retry.retuned(r),
                None => Retry::new(r, Arc::clone(&self.retry_stats)),
            }
        });
        let policies = Policies {
            breaker,
            rate_limiter,
            retry,
            faults: Faults::new(config.chaos, &self.injected),
            config,
        };
        (policies, restarted)
    }
}

/// What the annotated sites of one dependency declare.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SiteFlags {
    pub idempotent: bool,
    pub fallback: bool,
}

impl Dependency {
    pub(crate) fn new(
        config: DependencyConfig,
        operations: Vec<&'static str>,
        flags: SiteFlags,
        shared: &Shared,
        events: &Arc<Events>,
    ) -> Self {
        let kept = Kept {
            flags,
            retry_stats: Arc::new(RetryStats::default()),
            injected: Arc::new(Injected::default()),
            breaker_watch: Arc::new(Watch::new(&config.name, Arc::clone(events))),
        };
        let (policies, _) = kept.policies(config, None, shared);
        Dependency {
            name: policies.config.name.clone(),
            bulkhead: Bulkhead::new(&policies.config.name, policies.config.bulkhead),
            fallback: flags.fallback.then(FallbackStats::default),
            stats: Stats::default(),
            later_operations: Default::default(),
            operations,
            kept,
            policies: Live::new(policies),
        }
    }

    /// A test's pending injections (feature `testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn injected(&self) -> &Injected {
        &self.kept.injected
    }

    /// The policies in force. One atomic load; a call takes them once.
    #[inline]
    pub(crate) fn policies(&self) -> &Policies {
        self.policies.get()
    }

    /// Puts `config` in force for every call that starts from now on, and
    /// says whether the breaker had to start afresh. The caller has checked
    /// that the bulkhead's type is unchanged; counters, in-flight calls, the
    /// breaker's state (when its window keeps its shape) and the rate
    /// limiter's turns carry over.
    pub(crate) fn retune(&self, config: DependencyConfig, shared: &Shared) -> bool {
        let (next, restarted) = self.kept.policies(config, Some(self.policies()), shared);
        self.bulkhead.resize(next.config.bulkhead);
        self.policies.replace(next);
        restarted
    }
}

impl Dependency {
    /// Adds `operation` to the snapshot's list unless it is there.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn note_operation(&self, operation: &'static str) {
        if self.operations.contains(&operation) {
            return;
        }
        let mut later = self
            .later_operations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !later.contains(&operation) {
            later.push(operation);
        }
    }

    /// Every operation: the annotated sites', then the others'.
    pub(crate) fn all_operations(&self) -> Vec<String> {
        let later = self
            .later_operations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.operations
            .iter()
            .chain(later.iter())
            .map(|s| s.to_string())
            .collect()
    }
}

/// A dependency as a call holds it: the global runtime lives for the whole
/// process, so its dependencies need no reference count on the hot path.
#[derive(Clone)]
pub(crate) enum DepRef {
    Global(&'static Dependency),
    Scoped(Arc<Dependency>),
}

impl Deref for DepRef {
    type Target = Dependency;

    #[inline]
    fn deref(&self) -> &Dependency {
        match self {
            DepRef::Global(d) => d,
            DepRef::Scoped(d) => d,
        }
    }
}
