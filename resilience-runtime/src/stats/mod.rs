//! Per-dependency accounting. Each call lands in exactly one counter; the
//! total is their sum, computed when read, so it cannot drift from them.
//!
//! The counters are striped: each thread adds to its own cache-line-sized
//! shard, and a read sums the shards. Threads calling one dependency then
//! share no counter line; the sums stay exact.
//!
//! A counter is a histogram: each outcome has a cell per duration bucket
//! (`histogram.rs`) and one for calls nobody timed (`CallSite::timed`), and
//! a call adds to one cell, once. An outcome's count is the sum of its
//! cells, so at a timed site the histogram's count equals it by
//! construction. `window.rs` turns the same cells into the last minute's
//! latency.

pub(crate) mod histogram;
pub(crate) mod window;

use histogram::{Cells, Drained, Tally, BUCKETS};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use window::{Buckets, Latency, Window};

/// Shards each written by one thread only: the first threads to count get
/// one each, and add with a plain load and store instead of an atomic
/// read-modify-write. (Criterion on a noisy machine showed no difference
/// either way on one thread; the store cannot be slower.)
const OWNED: usize = 8;
/// Shards the later threads take in turn, adding atomically.
const SHARED: usize = 8;
const SHARDS: usize = OWNED + SHARED;
/// How many `Outcome`s there are.
pub(crate) const OUTCOMES: usize = 9;
/// `Stats::record`'s start for a call nobody timed.
pub(crate) const UNTIMED: u64 = u64::MAX;

/// One thread's cells, apart from other threads' lines.
#[derive(Default)]
#[repr(align(128))]
struct Shard([Cells; OUTCOMES]);

/// This thread's shard, and whether it alone writes it.
#[inline]
fn shard_of_thread() -> (usize, bool) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: (usize, bool) = {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            if n < OWNED {
                (n, true)
            } else {
                (OWNED + n % SHARED, false)
            }
        };
    }
    SHARD.with(|s| *s)
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
    /// Every outcome, in the order of their `usize` values.
    #[cfg(any(test, feature = "metrics"))]
    pub(crate) const ALL: [Outcome; OUTCOMES] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::TimedOut,
        Outcome::Rejected,
        Outcome::ShortCircuited,
        Outcome::Cancelled,
        Outcome::SuccessFirstTry,
        Outcome::FailureUnrecorded,
        Outcome::RateLimited,
    ];

    /// The outcomes of calls that ran to an end: the latency figures'.
    pub(crate) const FINISHED: [Outcome; 5] = [
        Outcome::Success,
        Outcome::SuccessFirstTry,
        Outcome::Failure,
        Outcome::FailureUnrecorded,
        Outcome::TimedOut,
    ];

    /// Whether this is one of `FINISHED`, as one comparison chain.
    #[inline]
    fn finished(self) -> bool {
        matches!(
            self,
            Outcome::Success
                | Outcome::SuccessFirstTry
                | Outcome::Failure
                | Outcome::FailureUnrecorded
                | Outcome::TimedOut
        )
    }

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
    drained: Drained<OUTCOMES>,
    window: Window,
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
    /// Counts a call that began at `started` on the policy clock
    /// ([`crate::clock::fast_now`]) and ends now, or, for `UNTIMED`, a call
    /// nobody timed (it reads no clock).
    #[inline]
    pub(crate) fn record(&self, outcome: Outcome, started: u64) {
        if started == UNTIMED {
            return self.count_untimed(outcome);
        }
        let now = crate::clock::fast_now();
        let nanos = now.saturating_sub(started);
        if outcome.finished() {
            if self.window.new_slice(now) {
                self.window.note(now, || self.finished_counts());
            }
            self.window.slowest(now, nanos);
        }
        self.count(outcome, nanos);
    }

    /// Counts a call refused before it started, with no time spent (and no
    /// clock read).
    #[inline]
    pub(crate) fn record_refused(&self, outcome: Outcome) {
        self.count(outcome, 0);
    }

    #[inline]
    fn count(&self, outcome: Outcome, nanos: u64) {
        self.note_outcome(outcome);
        let (shard, owned) = shard_of_thread();
        let cells = &self.shards[shard].0[outcome as usize];
        let bucket = histogram::bucket(nanos);
        if cells.add(bucket, nanos, owned) {
            self.drained.drain(cells, outcome as usize, bucket);
        }
    }

    #[inline]
    fn count_untimed(&self, outcome: Outcome) {
        self.note_outcome(outcome);
        let (shard, owned) = shard_of_thread();
        self.shards[shard].0[outcome as usize].add_untimed(owned);
    }

    /// What the health status needs from each outcome.
    #[inline]
    fn note_outcome(&self, outcome: Outcome) {
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
    }

    /// Every outcome's duration buckets, summed over the shards.
    pub(crate) fn histogram(&self) -> [[Tally; BUCKETS]; OUTCOMES] {
        self.drained.read(self.shards.iter().map(|s| &s.0))
    }

    /// Every outcome's count: its timed calls (the histogram's) and its
    /// untimed ones.
    pub(crate) fn counts(&self) -> [u64; OUTCOMES] {
        self.counts_with(&self.histogram())
    }

    /// [`Stats::counts`] from a histogram already read; the untimed cells
    /// are read after it, so no count is ever below its histogram's.
    pub(crate) fn counts_with(&self, histogram: &[[Tally; BUCKETS]; OUTCOMES]) -> [u64; OUTCOMES] {
        std::array::from_fn(|o| {
            let untimed: u64 = self.shards.iter().map(|s| s.0[o].untimed()).sum();
            untimed + histogram[o].iter().map(|t| t.count).sum::<u64>()
        })
    }

    /// Calls that ran to an end (succeeded, failed, timed out), by bucket.
    fn finished_counts(&self) -> Buckets {
        let histogram = self.histogram();
        std::array::from_fn(|b| {
            Outcome::FINISHED
                .iter()
                .map(|&o| histogram[o as usize][b].count)
                .sum()
        })
    }

    /// The last minute's latency of calls that ran to an end; `None`
    /// before any.
    pub(crate) fn latency(&self) -> Option<Latency> {
        self.window
            .latency(crate::clock::fast_now(), &self.finished_counts())
    }

    /// A slot was granted: the dependency is no longer saturated.
    #[inline]
    pub(crate) fn admitted(&self) {
        if self.saturated.load(Ordering::Relaxed) {
            self.saturated.store(false, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self) -> Counts {
        let counts = self.counts();
        let get = |o: Outcome| counts[o as usize];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_outcome_at_its_index_and_finished_agrees() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
            assert_eq!(o.finished(), Outcome::FINISHED.contains(o), "{o:?}");
        }
    }

    #[test]
    fn untimed_and_timed_calls_both_count_and_only_timed_ones_have_buckets() {
        let stats = Stats::default();
        stats.record(Outcome::Success, UNTIMED);
        stats.record(Outcome::Success, crate::clock::fast_now());
        stats.record_refused(Outcome::ShortCircuited);
        let counts = stats.read();
        assert_eq!((counts.successful, counts.short_circuited), (2, 1));
        let histogram = stats.histogram();
        let timed: u64 = histogram[Outcome::Success as usize]
            .iter()
            .map(|t| t.count)
            .sum();
        assert_eq!(timed, 1);
        assert_eq!(stats.latency().map(|l| l.calls), Some(1));
    }

    /// More threads than owned shards, so both ways of adding race with
    /// each other and with reads; nothing is lost.
    #[test]
    fn threads_owning_and_sharing_shards_lose_no_call() {
        let stats = std::sync::Arc::new(Stats::default());
        let threads: Vec<_> = (0..OWNED + 2 * SHARED)
            .map(|t| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000u64 {
                        let outcome = if i % 5 == 0 {
                            Outcome::Failure
                        } else {
                            Outcome::Success
                        };
                        stats.count(outcome, (t as u64 * 7 + i) % 3_000_000);
                        if i % 1_000 == 0 {
                            let _ = stats.read();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let counts = stats.read();
        let calls = (OWNED + 2 * SHARED) as u64 * 5_000;
        assert_eq!(counts.successful + counts.failed, calls);
        assert_eq!(counts.failed, calls / 5);
    }
}
