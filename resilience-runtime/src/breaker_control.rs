//! An operator's hand on a dependency's circuit breaker.

use crate::circuit_breaker::BreakerState;
use crate::dependency::DepRef;

/// Overrides one dependency's circuit breaker, from
/// [`Runtime::circuit_breaker`](crate::Runtime::circuit_breaker).
///
/// `force_open`, `disable` and `metrics_only` hold until [`reset`]; each
/// change is logged as a `tracing` warning. Calls admitted before a change
/// count for nothing towards the breaker.
///
/// ```
/// use resilience_runtime::{BreakerState, DependencyStatus, Runtime};
/// let rt = Runtime::from_yaml_str(
///     "resilience:\n  external_dependencies:\n    ledger: { type: database }\n",
/// )
/// .unwrap();
/// let breaker = rt.circuit_breaker("ledger").unwrap();
/// breaker.force_open(); // every call to `ledger` now fails fast with CircuitOpen
/// assert_eq!(breaker.state(), BreakerState::ForcedOpen);
/// assert_eq!(rt.health_snapshot().dependencies["ledger"].status, DependencyStatus::Unavailable);
/// breaker.reset(); // closed again, its counts cleared
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// ```
///
/// [`reset`]: BreakerControl::reset
#[derive(Clone)]
pub struct BreakerControl {
    dep: DepRef,
}

impl std::fmt::Debug for BreakerControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerControl")
            .field("dependency", &self.dep.name)
            .field("state", &self.state())
            .finish()
    }
}

impl BreakerControl {
    /// `None` when the dependency has no breaker.
    pub(crate) fn new(dep: DepRef) -> Option<Self> {
        dep.policies()
            .breaker
            .is_some()
            .then_some(BreakerControl { dep })
    }

    /// The dependency's name.
    pub fn dependency(&self) -> &str {
        &self.dep.name
    }

    /// The breaker's state now, as the snapshot reports it. If a reload
    /// has since removed the breaker, every call passes: `Closed`.
    pub fn state(&self) -> BreakerState {
        self.breaker().map_or(BreakerState::Closed, |b| b.state())
    }

    /// Every call fails fast with `CircuitOpen` (its `retry_after` is the
    /// recovery timeout) and counts as short-circuited, until a reset.
    pub fn force_open(&self) {
        self.set(BreakerState::ForcedOpen);
    }

    /// Every call passes, and its outcome is counted, but the breaker learns
    /// nothing from it, until a reset.
    pub fn disable(&self) {
        self.set(BreakerState::Disabled);
    }

    /// The breaker goes on computing its state from outcomes (the snapshot
    /// shows `metrics_only`) but never refuses a call, until a reset.
    pub fn metrics_only(&self) {
        self.set(BreakerState::MetricsOnly);
    }

    /// Back to normal operation, closed, with its failure counts and window
    /// cleared.
    pub fn reset(&self) {
        let Some(breaker) = self.breaker() else {
            return self.gone();
        };
        breaker.reset();
        tracing::warn!(dependency = %self.dependency(), "circuit breaker reset by an operator: closed");
    }

    fn set(&self, state: BreakerState) {
        let Some(breaker) = self.breaker() else {
            return self.gone();
        };
        breaker.set_override(state);
        tracing::warn!(dependency = %self.dependency(), state = %state, "circuit breaker overridden by an operator");
    }

    /// The breaker in force: a reload may have replaced it (an override
    /// carries over) or removed it.
    fn breaker(&self) -> Option<&crate::circuit_breaker::CircuitBreaker> {
        self.dep.policies().breaker.as_ref()
    }

    fn gone(&self) {
        tracing::warn!(dependency = %self.dependency(), "a reload removed this circuit breaker: nothing to change");
    }
}
