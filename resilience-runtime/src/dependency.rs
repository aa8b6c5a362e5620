//! One dependency's live state: its policies and its counters.

use crate::bulkhead::Bulkhead;
use crate::chaos::Faults;
use crate::circuit_breaker::CircuitBreaker;
use crate::config::DependencyConfig;
use crate::fallback::FallbackStats;
use crate::rate_limiter::{RateLimiter, Shared};
use crate::retry::Retry;
use crate::stats::Stats;
use std::ops::Deref;
use std::sync::Arc;

pub(crate) struct Dependency {
    pub config: DependencyConfig,
    pub operations: Vec<&'static str>,
    /// Operations of callers that are not annotated sites (a tower layer),
    /// added on their first call.
    pub later_operations: std::sync::Mutex<Vec<&'static str>>,
    pub bulkhead: Bulkhead,
    pub breaker: Option<CircuitBreaker>,
    pub rate_limiter: Option<RateLimiter>,
    /// Set when retries are configured and some site is `idempotent`.
    pub retry: Option<Retry>,
    /// Set when some site declares a fallback.
    pub fallback: Option<FallbackStats>,
    pub stats: Stats,
    /// Chaos and a test's injected faults; `None` when neither can apply.
    pub faults: Option<Box<Faults>>,
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
    ) -> Self {
        Dependency {
            bulkhead: Bulkhead::new(&config.name, config.bulkhead),
            breaker: config.circuit_breaker.map(CircuitBreaker::new),
            rate_limiter: config
                .rate_limit
                .map(|r| RateLimiter::new(r, &config.name, shared)),
            retry: config.retry.filter(|_| flags.idempotent).map(Retry::new),
            fallback: flags.fallback.then(FallbackStats::default),
            stats: Stats::default(),
            faults: Faults::new(config.chaos),
            later_operations: Default::default(),
            operations,
            config,
        }
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
