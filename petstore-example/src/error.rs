//! Errors: one for a dependency call, one for a business operation.

use resilience_runtime::ResilienceError;
use std::fmt;
use std::time::Duration;

/// What an annotated dependency call returns on failure.
#[derive(Debug, Clone)]
pub enum DepError {
    /// A policy refused or cut off the call.
    Resilience(ResilienceError),
    /// The dependency itself answered with an error.
    Failed(String),
    /// The dependency refused the request on its merits (a declined payment).
    Declined(String),
}

impl From<ResilienceError> for DepError {
    fn from(e: ResilienceError) -> Self {
        DepError::Resilience(e)
    }
}

impl fmt::Display for DepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepError::Resilience(e) => e.fmt(f),
            DepError::Failed(m) | DepError::Declined(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DepError {}

impl DepError {
    /// Whether another attempt may succeed: the dependency failed (a dropped
    /// connection, a 5xx), as opposed to refusing the request on its merits.
    /// Policy refusals are judged by the runtime's `retry_on`, not here.
    pub fn is_transient(&self) -> bool {
        matches!(self, DepError::Failed(_))
    }

    /// A short reason for a "degraded" list: `circuit open`, `timeout`, ...
    pub fn reason(&self) -> String {
        match self {
            DepError::Resilience(ResilienceError::CircuitOpen { .. }) => "circuit open".into(),
            DepError::Resilience(ResilienceError::Timeout { .. }) => "timeout".into(),
            DepError::Resilience(ResilienceError::Rejected { .. }) => "bulkhead full".into(),
            DepError::Resilience(ResilienceError::RateLimited { .. }) => "rate limited".into(),
            DepError::Resilience(other) => other.to_string(),
            DepError::Failed(m) | DepError::Declined(m) => m.clone(),
        }
    }
}

/// Why a business operation failed; each maps to an HTTP status.
#[derive(Debug, Clone)]
pub enum ServiceError {
    /// Malformed or invalid input (400 / 422).
    Invalid(String),
    /// An unknown id (404).
    NotFound(String),
    /// The pet is sold out (409).
    OutOfStock(i64),
    /// The gateway declined the payment (402).
    PaymentDeclined(String),
    /// A dependency refused the call: bulkhead full or circuit open (503 +
    /// Retry-After), or its rate limit allows no call now (429 + Retry-After).
    Unavailable {
        step: &'static str,
        error: ResilienceError,
    },
    /// A dependency timed out (504).
    Timeout {
        step: &'static str,
        error: ResilienceError,
    },
    /// A dependency failed (502).
    DependencyFailed { step: &'static str, message: String },
    /// Another error, with what happened while cleaning up after it
    /// (same status as the inner error).
    Noted(Box<ServiceError>, String),
}

impl ServiceError {
    /// Maps a critical step's dependency error.
    pub fn at(step: &'static str, e: DepError) -> ServiceError {
        match e {
            DepError::Resilience(error @ ResilienceError::Timeout { .. }) => {
                ServiceError::Timeout { step, error }
            }
            DepError::Resilience(error) => ServiceError::Unavailable { step, error },
            DepError::Failed(message) => ServiceError::DependencyFailed { step, message },
            DepError::Declined(message) => ServiceError::PaymentDeclined(message),
        }
    }

    /// Adds what happened while cleaning up after this error.
    pub fn with_note(self, note: String) -> ServiceError {
        ServiceError::Noted(Box::new(self), note)
    }

    /// The `Retry-After` to send, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ServiceError::Unavailable { error, .. } => error.retry_after(),
            ServiceError::Noted(inner, _) => inner.retry_after(),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Invalid(m) => f.write_str(m),
            ServiceError::NotFound(what) => write!(f, "{what} not found"),
            ServiceError::OutOfStock(id) => write!(f, "pet {id} is out of stock"),
            ServiceError::PaymentDeclined(m) => write!(f, "payment declined: {m}"),
            ServiceError::Unavailable { step, error } | ServiceError::Timeout { step, error } => {
                write!(f, "{step} failed: {error}")
            }
            ServiceError::Noted(inner, note) => write!(f, "{inner}; {note}"),
            ServiceError::DependencyFailed { step, message } => {
                write!(f, "{step} failed: {message}")
            }
        }
    }
}

impl std::error::Error for ServiceError {}
