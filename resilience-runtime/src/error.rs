//! The error a protected call returns when a policy refuses or cuts it off.

use std::fmt;
use std::time::Duration;

/// Why the runtime did not let a call complete.
///
/// Annotated functions return `Result<T, E>` with `E: From<ResilienceError>`,
/// so this reaches the caller through the function's own error type.
///
/// ```
/// use resilience_runtime::ResilienceError;
/// use std::time::Duration;
///
/// let e = ResilienceError::Timeout {
///     dependency: "petstore_database",
///     operation: "get_pet",
///     timeout: Duration::from_secs(10),
/// };
/// assert_eq!(
///     e.to_string(),
///     "petstore_database/get_pet timed out after 10s: the call was cancelled; \
///      check the dependency or raise its timeout_seconds"
/// );
/// assert!(e.is_timeout());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResilienceError {
    /// The bulkhead was full: the function did not run.
    Rejected {
        /// The dependency's configured name.
        dependency: &'static str,
        /// The operation (the annotated function unless renamed).
        operation: &'static str,
        /// How many calls the bulkhead runs at once (workers, for a thread pool).
        capacity: u32,
    },
    /// The call ran past its timeout and was cancelled.
    Timeout {
        /// The dependency's configured name.
        dependency: &'static str,
        /// The operation.
        operation: &'static str,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// The dependency's circuit breaker is open: the function did not run.
    CircuitOpen {
        /// The dependency's configured name.
        dependency: &'static str,
        /// The operation.
        operation: &'static str,
        /// How long until the breaker lets a probe call through.
        retry_after: Duration,
    },
    /// The dependency's rate limit allows no call now (and none within the
    /// configured wait): the function did not run.
    RateLimited {
        /// The dependency's configured name.
        dependency: &'static str,
        /// The operation.
        operation: &'static str,
        /// How long until the limiter admits a call.
        retry_after: Duration,
    },
    /// Chaos or a test's fault injector failed the call on purpose: the
    /// function did not run. It counts as a failure of the dependency, since
    /// it stands for one.
    InjectedFault {
        /// The dependency's configured name.
        dependency: &'static str,
        /// The operation.
        operation: &'static str,
    },
    /// Strict mode is on and no runtime is in force: the function did not
    /// run. See [`enable_strict_mode`](crate::enable_strict_mode).
    NotInitialised {
        /// The dependency's name, as the attribute gives it.
        dependency: &'static str,
        /// The operation.
        operation: &'static str,
    },
}

impl ResilienceError {
    /// The dependency this error concerns.
    pub fn dependency(&self) -> &'static str {
        match self {
            Self::Rejected { dependency, .. }
            | Self::Timeout { dependency, .. }
            | Self::CircuitOpen { dependency, .. }
            | Self::RateLimited { dependency, .. }
            | Self::InjectedFault { dependency, .. }
            | Self::NotInitialised { dependency, .. } => dependency,
        }
    }

    /// The operation this error concerns.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Rejected { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::CircuitOpen { operation, .. }
            | Self::RateLimited { operation, .. }
            | Self::InjectedFault { operation, .. }
            | Self::NotInitialised { operation, .. } => operation,
        }
    }

    /// True for [`ResilienceError::Rejected`].
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }

    /// True for [`ResilienceError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// True for [`ResilienceError::CircuitOpen`].
    pub fn is_circuit_open(&self) -> bool {
        matches!(self, Self::CircuitOpen { .. })
    }

    /// True for [`ResilienceError::RateLimited`].
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::RateLimited { .. })
    }

    /// True for [`ResilienceError::InjectedFault`].
    pub fn is_injected_fault(&self) -> bool {
        matches!(self, Self::InjectedFault { .. })
    }

    /// True for [`ResilienceError::NotInitialised`].
    pub fn is_not_initialised(&self) -> bool {
        matches!(self, Self::NotInitialised { .. })
    }

    /// A hint for an HTTP `Retry-After`: the breaker's remaining open time,
    /// the rate limiter's time to the next turn, or one second for a full
    /// bulkhead. `None` for a timeout, and for a
    /// runtime that was never initialised (waiting will not help).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Rejected { .. } => Some(Duration::from_secs(1)),
            Self::CircuitOpen { retry_after, .. } | Self::RateLimited { retry_after, .. } => {
                Some(*retry_after)
            }
            Self::Timeout { .. } | Self::InjectedFault { .. } | Self::NotInitialised { .. } => None,
        }
    }
}

impl fmt::Display for ResilienceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected {
                dependency,
                operation,
                capacity,
            } => write!(
                f,
                "{dependency}/{operation} rejected: all {capacity} slots of its bulkhead are busy; \
                 retry later or raise its max_concurrent (max_workers for a thread pool)"
            ),
            Self::Timeout {
                dependency,
                operation,
                timeout,
            } => write!(
                f,
                "{dependency}/{operation} timed out after {timeout:?}: the call was cancelled; \
                 check the dependency or raise its timeout_seconds"
            ),
            Self::CircuitOpen {
                dependency,
                operation,
                retry_after,
            } => write!(
                f,
                "{dependency}/{operation} not attempted: the circuit breaker is open after \
                 repeated failures; retry in {:.1}s",
                retry_after.as_secs_f64()
            ),
            Self::RateLimited {
                dependency,
                operation,
                retry_after,
            } => write!(
                f,
                "{dependency}/{operation} not attempted: its rate limit allows no call now; \
                 retry in {:.3}s or raise its rate_limit_per_second",
                retry_after.as_secs_f64()
            ),
            Self::InjectedFault {
                dependency,
                operation,
            } => write!(
                f,
                "{dependency}/{operation} failed on purpose: a fault injected by chaos \
                 (chaos_fault_rate) or a test's fault injector; the function did not run"
            ),
            Self::NotInitialised {
                dependency,
                operation,
            } => write!(
                f,
                "{dependency}/{operation} not attempted: strict mode is on and no resilience \
                 runtime is initialised; call resilience_runtime::init_from_file at start-up, \
                 before any annotated call, or run the call inside Runtime::scope"
            ),
        }
    }
}

impl std::error::Error for ResilienceError {}
