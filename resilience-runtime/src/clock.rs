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
    /// The model's time; leaked so that the clock stays `Copy`.
    #[cfg(loom)]
    model: &'static std::sync::atomic::AtomicU64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            anchor: Instant::now(),
            #[cfg(loom)]
            model: Box::leak(Box::new(std::sync::atomic::AtomicU64::new(0))),
        }
    }

    /// Nanoseconds since this clock was made.
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        self.elapsed().as_nanos() as u64
    }

    /// The instant on tokio's clock `nanos` after this clock was made.
    pub(crate) fn instant_at(&self, nanos: u64) -> Instant {
        self.anchor + Duration::from_nanos(nanos)
    }

    /// Time since this clock was made.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.anchor)
    }

    /// Under loom, the model sets each clock's time ([`Clock::set`]), so every
    /// execution of a model sees the same times.
    #[cfg(loom)]
    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.model.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Sets this clock's time in a loom model; a plain atomic, not loom's, so
    /// setting the time is no step loom interleaves.
    #[cfg(all(loom, test))]
    pub(crate) fn set(&self, since_start: Duration) {
        let nanos = since_start.as_nanos() as u64;
        self.model.store(nanos, std::sync::atomic::Ordering::SeqCst);
    }
}

#[allow(dead_code)] // used by the retry policy
/// Waits `delay` on tokio's clock; returns at once for zero.
pub(crate) async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}
