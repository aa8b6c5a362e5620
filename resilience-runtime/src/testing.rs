//! The testing kit (feature `testing`): make a dependency's next calls fail,
//! slow down or hang, through the same policies as real faults, so a test
//! can check how a service degrades without mocking its dependencies.
//!
//! ```
//! use resilience_runtime::{database_call, ResilienceError, Runtime};
//! use std::time::Duration;
//!
//! #[database_call(dependency = "ledger")]
//! async fn balance(account: u64) -> Result<u64, ResilienceError> {
//!     Ok(account * 100) // the real query
//! }
//!
//! /// What the service shows when the ledger is down or slow.
//! async fn balance_or_unknown(account: u64) -> String {
//!     match balance(account).await {
//!         Ok(cents) => format!("{cents} cents"),
//!         Err(e) if e.is_timeout() => "unknown (the ledger is slow)".into(),
//!         Err(_) => "unknown".into(),
//!     }
//! }
//!
//! // In a test suite: #[tokio::test(start_paused = true)]
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let rt = Runtime::from_yaml_str(
//!     "resilience:\n  external_dependencies:\n    ledger: { type: database, timeout_seconds: 2 }\n",
//! )
//! .unwrap();
//! let ledger = rt.inject("ledger");
//! ledger.fail_next(1);
//! assert_eq!(rt.scope(balance_or_unknown(7)).await, "unknown");
//! ledger.delay_next(1, Duration::from_secs(5)); // past the 2 s timeout, on paused time
//! assert_eq!(rt.scope(balance_or_unknown(7)).await, "unknown (the ledger is slow)");
//! assert_eq!(rt.scope(balance_or_unknown(7)).await, "700 cents");
//! let h = rt.health_snapshot();
//! assert_eq!(h.dependencies["ledger"].bulkhead.failed_requests, 1);
//! assert_eq!(h.dependencies["ledger"].bulkhead.timed_out_requests, 1);
//! # }
//! ```

use crate::dependency::Dependency;
use std::sync::Arc;
use std::time::Duration;

/// A test's hand on one dependency's next calls, from
/// [`Runtime::inject`](crate::Runtime::inject). It works on annotated
/// `async fn` sites and on services behind the tower layer alike.
///
/// An injection applies after the breaker, rate limiter and bulkhead admit
/// a call, inside its timeout: an injected failure counts as `failed` and
/// as a breaker failure (`ResilienceError::InjectedFault`), a delay counts
/// against the call's timeout, a hang lasts until the timeout. Injected
/// failures are used first, then delays, then hangs. On blocking and
/// `on_pool` sites the injection comes before the bulkhead instead: a fault
/// takes no worker, and a delay is waited out by the caller, not on a
/// worker thread.
#[derive(Clone)]
pub struct FaultInjector {
    dep: Arc<Dependency>,
}

impl std::fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector")
            .field("dependency", &self.dep.name)
            .finish()
    }
}

impl FaultInjector {
    pub(crate) fn new(dep: Arc<Dependency>) -> Self {
        FaultInjector { dep }
    }

    fn injected(&self) -> &crate::chaos::Injected {
        self.dep.injected()
    }

    /// The next `n` calls fail with `InjectedFault` without running.
    pub fn fail_next(&self, n: u32) {
        self.injected().fail_next(n);
    }

    /// The next `n` calls wait `by` before they run, inside their timeout.
    pub fn delay_next(&self, n: u32, by: Duration) {
        self.injected().delay_next(n, by);
    }

    /// The next `n` calls never run: each waits out its timeout (for ever
    /// without one).
    pub fn hang_next(&self, n: u32) {
        self.injected().hang_next(n);
    }

    /// Drops every injection not used yet.
    pub fn clear(&self) {
        self.injected().clear();
    }
}
