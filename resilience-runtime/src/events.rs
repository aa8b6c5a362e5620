//! State changes a runtime announces to whoever subscribes
//! ([`Runtime::subscribe`](crate::Runtime::subscribe)). Calls themselves are
//! not announced: that would cost every call; their figures are in the
//! snapshot and the metrics.

use crate::BreakerState;
use std::time::SystemTime;

/// Something that changed in a runtime.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ResilienceEvent {
    /// A circuit breaker changed state, as the snapshot reports states
    /// (an operator's override included).
    BreakerTransition {
        /// The dependency whose breaker it is.
        dependency: String,
        /// The state before.
        from: BreakerState,
        /// The state now.
        to: BreakerState,
        /// When, on the wall clock.
        at: SystemTime,
    },
}

/// How many events a subscriber may fall behind before it misses some (it
/// is told how many, with `RecvError::Lagged`).
pub(crate) const CAPACITY: usize = 1024;

/// A runtime's announcer.
pub(crate) struct Events {
    #[cfg(not(loom))]
    sender: tokio::sync::broadcast::Sender<ResilienceEvent>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            #[cfg(not(loom))]
            sender: tokio::sync::broadcast::channel(CAPACITY).0,
        }
    }
}

impl Events {
    /// A receiver of every event from now on.
    #[cfg(not(loom))]
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ResilienceEvent> {
        self.sender.subscribe()
    }

    /// Announces `event`; with nobody subscribed it goes nowhere.
    pub(crate) fn emit(&self, event: ResilienceEvent) {
        #[cfg(not(loom))]
        let _ = self.sender.send(event);
        #[cfg(loom)]
        drop(event);
    }
}
