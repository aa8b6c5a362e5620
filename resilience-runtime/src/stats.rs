//! Per-dependency accounting. Each call lands in exactly one counter; the
//! total is their sum, computed when read, so it cannot drift from them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    /// Returned `Err` or panicked.
    Failure,
    TimedOut,
    /// The bulkhead had no slot.
    Rejected,
    /// The breaker was open.
    ShortCircuited,
    /// The caller dropped the call's future before it ended.
    Cancelled,
}

#[derive(Default)]
pub(crate) struct Stats {
    successful: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    rejected: AtomicU64,
    short_circuited: AtomicU64,
    cancelled: AtomicU64,
    /// Failures and timeouts since the last success; feeds the health status.
    consecutive_failures: AtomicU32,
    /// Whether the latest admission attempt was refused for want of a slot.
    saturated: AtomicBool,
}

/// A consistent-enough read of the counters (each is exact; they are read
/// one after another).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub successful: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub rejected: u64,
    pub short_circuited: u64,
    pub cancelled: u64,
    pub consecutive_failures: u32,
    pub saturated: bool,
}

impl Stats {
    #[inline]
    pub(crate) fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Success => {
                clear(&self.consecutive_failures);
                &self.successful
            }
            Outcome::Failure | Outcome::TimedOut => {
                self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
                if outcome == Outcome::Failure {
                    &self.failed
                } else {
                    &self.timed_out
                }
            }
            Outcome::Rejected => {
                self.saturated.store(true, Ordering::Relaxed);
                &self.rejected
            }
            Outcome::ShortCircuited => &self.short_circuited,
            Outcome::Cancelled => &self.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A slot was granted: the dependency is no longer saturated.
    #[inline]
    pub(crate) fn admitted(&self) {
        if self.saturated.load(Ordering::Relaxed) {
            self.saturated.store(false, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            successful: get(&self.successful),
            failed: get(&self.failed),
            timed_out: get(&self.timed_out),
            rejected: get(&self.rejected),
            short_circuited: get(&self.short_circuited),
            cancelled: get(&self.cancelled),
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            saturated: self.saturated.load(Ordering::Relaxed),
        }
    }
}

/// Writes zero only when needed, so the common path stays a read of a shared line.
#[inline]
fn clear(counter: &AtomicU32) {
    if counter.load(Ordering::Relaxed) != 0 {
        counter.store(0, Ordering::Relaxed);
    }
}

impl Counts {
    pub(crate) fn total(&self) -> u64 {
        self.successful
            + self.failed
            + self.timed_out
            + self.rejected
            + self.short_circuited
            + self.cancelled
    }

    /// successful / (successful + failed + timed out); `None` before such a call.
    pub(crate) fn success_rate(&self) -> Option<f64> {
        let finished = self.successful + self.failed + self.timed_out;
        (finished > 0).then(|| self.successful as f64 / finished as f64)
    }
}
