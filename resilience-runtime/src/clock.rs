//! The one seam for time. Every policy reads tokio's clock through here, so
//! tests on a paused clock drive them all, and a cheaper source can replace
//! this one in a single place when a hot path needs it.

use std::time::Duration;
use tokio::time::Instant;

/// Nanoseconds on tokio's clock since the clock was made: small enough to
/// keep in an atomic, and monotonic.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    #[cfg_attr(loom, allow(dead_code))]
    anchor: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            anchor: Instant::now(),
        }
    }

    /// Nanoseconds since this clock was made.
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        self.elapsed().as_nanos() as u64
    }

    /// Time since this clock was made.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.anchor)
    }

    /// Under loom, the model sets the time ([`set_model_time`]), so every
    /// execution of a model sees the same clock.
    #[cfg(loom)]
    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(MODEL_TIME.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(loom)]
static MODEL_TIME: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sets the time every [`Clock`] reads in a loom model.
#[cfg(all(loom, test))]
pub(crate) fn set_model_time(since_start: Duration) {
    MODEL_TIME.store(
        since_start.as_nanos() as u64,
        std::sync::atomic::Ordering::SeqCst,
    );
}

#[allow(dead_code)] // used by the retry policy
/// Waits `delay` on tokio's clock; returns at once for zero.
pub(crate) async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}
