//! The one seam for time. Every policy reads tokio's clock through here, so
//! tests on a paused clock drive them all.
//!
//! Two readings of a clock. [`Clock::exact_nanos`] always reads tokio's
//! clock: call deadlines use it, since a call may never be cut off early.
//! [`Clock::nanos`] is the policies' reading (breaker, rate limiter, call
//! timing): it reads the CPU's counter (`tsc.rs`, about a third of the
//! cost) while no tokio clock in the process has been seen paused, and
//! tokio's clock from the moment one has (see [`follow_tokio`]), so
//! paused-time tests see exact times.

pub(crate) mod coarse;
mod tsc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Nanoseconds since the clock was made, on the policy clock (see
/// [`fast_now`]): small enough to keep in an atomic, and monotonic.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    #[cfg_attr(loom, allow(dead_code))]
    anchor: Instant,
    /// `fast_now()` when the clock was made.
    #[cfg_attr(loom, allow(dead_code))]
    base: u64,
    /// The model's time; leaked so that the clock stays `Copy`.
    #[cfg(loom)]
    model: &'static std::sync::atomic::AtomicU64,
}

impl Clock {
    /// A policy's clock: cheap, and tokio's own once a paused clock is seen.
    pub(crate) fn new() -> Self {
        // A policy made inside a paused runtime (a test's) must read that
        // runtime's clock from its first call.
        notice_pause();
        Clock {
            anchor: Instant::now(),
            base: fast_now(),
            #[cfg(loom)]
            model: Box::leak(Box::new(std::sync::atomic::AtomicU64::new(0))),
        }
    }

    /// Nanoseconds since this clock was made.
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        self.elapsed_nanos()
    }

    /// [`Clock::nanos`] for a reading of [`fast_now`] taken earlier.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn nanos_from(&self, fast_now: u64) -> u64 {
        fast_now.saturating_sub(self.base)
    }

    /// Under loom the model's time stands still between its steps.
    #[cfg(loom)]
    pub(crate) fn nanos_from(&self, _: u64) -> u64 {
        self.elapsed_nanos()
    }

    /// The instant on tokio's clock `nanos` after this clock was made.
    pub(crate) fn instant_at(&self, nanos: u64) -> Instant {
        self.anchor + Duration::from_nanos(nanos)
    }

    /// Time since this clock was made.
    #[inline]
    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_nanos())
    }

    /// Nanoseconds since this clock was made on tokio's clock, whatever
    /// the policies read: for deadlines, which must never come early.
    #[cfg(not(loom))]
    pub(crate) fn exact_nanos(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.anchor)
            .as_nanos() as u64
    }

    #[cfg(loom)]
    pub(crate) fn exact_nanos(&self) -> u64 {
        self.elapsed_nanos()
    }

    #[cfg(not(loom))]
    #[inline]
    fn elapsed_nanos(&self) -> u64 {
        fast_now().saturating_sub(self.base)
    }

    /// Under loom, the model sets each clock's time ([`Clock::set`]), so every
    /// execution of a model sees the same times.
    #[cfg(loom)]
    fn elapsed_nanos(&self) -> u64 {
        self.model.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sets this clock's time in a loom model; a plain atomic, not loom's, so
    /// setting the time is no step loom interleaves.
    #[cfg(all(loom, test))]
    pub(crate) fn set(&self, since_start: Duration) {
        let nanos = since_start.as_nanos() as u64;
        self.model.store(nanos, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Set for good once any tokio clock in the process is seen paused. tokio
/// keeps the same flag for itself: a paused clock exists only where tokio's
/// `test-util` is on, that is, in tests.
static FOLLOW_TOKIO: AtomicBool = AtomicBool::new(false);

/// From now on every policy clock reads tokio's. Called wherever a paused
/// clock is seen (`paused::clock_is_paused`): a policy's creation inside a
/// runtime, a breaker opening, a call's first deadline, the timer thread's
/// look at current-thread runtimes.
pub(crate) fn follow_tokio() {
    if !FOLLOW_TOKIO.load(Ordering::Relaxed) {
        FOLLOW_TOKIO.store(true, Ordering::Relaxed);
        tsc::retire();
    }
}

/// Looks whether the tokio runtime this thread is in has a paused clock
/// (two clock reads, on a current-thread runtime, the only kind tokio can
/// pause): for rare moments and a scope's start, never per call.
pub(crate) fn notice_pause() {
    #[cfg(not(loom))]
    if !FOLLOW_TOKIO.load(Ordering::Relaxed) {
        let handle = tokio::runtime::Handle::try_current();
        if handle.is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        {
            crate::paused::clock_is_paused();
        }
    }
}

/// Far from zero, so that a paused clock behind the origin still reads as
/// a number that only grows.
const MIDDLE: u64 = 1 << 62;

/// Nanoseconds on the process's policy clock: the counter's, or tokio's once
/// a paused clock has been seen. Both count from the same origin, so a
/// switch between them is seamless on a running clock.
#[inline]
pub(crate) fn fast_now() -> u64 {
    // Following tokio retires the counter, so one null check decides.
    match tsc::now() {
        Some(ns) => MIDDLE + ns,
        None => tokio_now(),
    }
}

/// Nanoseconds on the deadline clock: the counter, paused clocks or not,
/// where it can serve, else tokio's clock, from the same origin as
/// [`fast_now`] (so the two agree while no paused clock has been seen).
/// Call deadlines are kept on it; the timer thread maps it onto each
/// runtime's own clock before it cuts a call off (`timeout/deadlines.rs`).
#[inline]
pub(crate) fn deadline_now() -> u64 {
    match tsc::live_now() {
        Some(ns) => MIDDLE + ns,
        None => tokio_now(),
    }
}

/// Whether a [`fast_now`] reading is also one on the deadline clock: true
/// until a paused clock has been seen.
#[inline]
pub(crate) fn policy_reads_deadline_clock() -> bool {
    !FOLLOW_TOKIO.load(Ordering::Relaxed)
}

/// Out of line: on x86 it serves only tests and the first read; where no
/// counter can serve, it is every read, as before the counter.
#[inline(never)]
fn tokio_now() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(|| match tsc::origin() {
        Some(at) => Instant::from_std(at),
        None => Instant::now(),
    });
    let now = Instant::now();
    match now.checked_duration_since(origin) {
        Some(after) => MIDDLE + after.as_nanos() as u64,
        None => MIDDLE - origin.duration_since(now).as_nanos() as u64,
    }
}

#[allow(dead_code)] // used by the retry policy
/// Waits `delay` on tokio's clock; returns at once for zero.
pub(crate) async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_policy_clock_made_on_a_paused_runtime_follows_it_exactly() {
        let clock = Clock::new();
        assert!(FOLLOW_TOKIO.load(Ordering::Relaxed));
        let before = clock.nanos();
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.nanos() - before, 1_500_000_000);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(clock.nanos() - before, 61_500_000_000);
    }
}
