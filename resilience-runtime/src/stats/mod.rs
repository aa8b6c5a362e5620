//! Per-dependency accounting. Each call lands in exactly one counter; the
//! total is their sum, computed when read, so it cannot drift from them.
//!
//! The counters are striped: each thread adds to its own cache-line-sized
//! shard, and a read sums the shards. Threads calling one dependency then
//! share no counter line; the sums stay exact.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

const SHARDS: usize = 8;

/// One thread's counters, on a line of its own.
#[derive(Default)]
#[repr(align(128))]
struct Shard([AtomicU64; 9]);

/// Which shard this thread adds to: threads take shards in turn.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Outcome {
    Success,
    /// Returned `Err` (that counts for the breaker) or panicked.
    Failure,
    TimedOut,
    /// The bulkhead had no slot.
    Rejected,
    /// The breaker was open.
    ShortCircuited,
    /// The caller dropped the call's future before it ended.
    Cancelled,
    /// A success on the first attempt of a call that may retry. Counted as a
    /// success; kept apart so the retry figures cost the hot path nothing.
    SuccessFirstTry,
    /// Returned an `Err` that the site's `record_if` says is not the
    /// dependency's failure (a declined payment, say). Counted as failed, but
    /// neither the breaker nor the health status sees it.
    FailureUnrecorded,
    /// The rate limiter had no turn within the call's wait.
    RateLimited,
}

impl Outcome {
    /// The name the snapshot's counter and the metrics give this outcome.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::Success | Outcome::SuccessFirstTry => "successful",
            Outcome::Failure | Outcome::FailureUnrecorded => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::Rejected => "rejected",
            Outcome::ShortCircuited => "short_circuited",
            Outcome::Cancelled => "cancelled",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    /// Indexed by `Outcome as usize`.
    shards: [Shard; SHARDS],
    /// Failures and timeouts since the last success; feeds the health status.
    consecutive_failures: AtomicU32,
    /// Whether the latest admission attempt was refused for want of a slot.
    saturated: AtomicBool,
}

/// A read of the counters: each is exact, and they are read one after another.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    /// Every success, `successful_first_try` included.
    pub successful: u64,
    /// Successes on the first attempt of a call that may retry.
    pub successful_first_try: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub rejected: u64,
    pub short_circuited: u64,
    pub cancelled: u64,
    pub rate_limited: u64,
    pub consecutive_failures: u32,
    pub saturated: bool,
}

impl Stats {
    #[inline]
    pub(crate) fn record(&self, outcome: Outcome) {
        match outcome {
            Outcome::Success | Outcome::SuccessFirstTry => clear(&self.consecutive_failures),
            Outcome::Failure | Outcome::TimedOut => {
                self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Rejected => self.saturated.store(true, Ordering::Relaxed),
            Outcome::ShortCircuited
            | Outcome::Cancelled
            | Outcome::FailureUnrecorded
            | Outcome::RateLimited => {}
        }
        self.shards[shard_index()].0[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A slot was granted: the dependency is no longer saturated.
    #[inline]
    pub(crate) fn admitted(&self) {
        if self.saturated.load(Ordering::Relaxed) {
            self.saturated.store(false, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self) -> Counts {
        let get = |o: Outcome| {
            self.shards
                .iter()
                .map(|s| s.0[o as usize].load(Ordering::Relaxed))
                .sum()
        };
        Counts {
            successful: get(Outcome::Success) + get(Outcome::SuccessFirstTry),
            successful_first_try: get(Outcome::SuccessFirstTry),
            failed: get(Outcome::Failure) + get(Outcome::FailureUnrecorded),
            timed_out: get(Outcome::TimedOut),
            rejected: get(Outcome::Rejected),
            short_circuited: get(Outcome::ShortCircuited),
            cancelled: get(Outcome::Cancelled),
            rate_limited: get(Outcome::RateLimited),
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
            + self.rate_limited
    }

    /// successful / (successful + failed + timed out); `None` before such a call.
    pub(crate) fn success_rate(&self) -> Option<f64> {
        let finished = self.successful + self.failed + self.timed_out;
        (finished > 0).then(|| self.successful as f64 / finished as f64)
    }
}
