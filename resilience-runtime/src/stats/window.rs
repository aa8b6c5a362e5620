//! The last 60 s of finished calls, for the snapshot's latency figures,
//! kept without a timer and without a second counter per call.
//!
//! Time is cut into 5 s slices. The first call to finish in a new slice
//! notes the cumulative bucket counts as they stand (the histogram's own
//! cells): nobody else finished in that slice before it, so that is the
//! count at the slice's start. The window's counts are then the counts now
//! minus those at the start of the oldest of its 12 slices; a slice in which
//! no call finished left no note, and the next note serves in its place. The
//! window therefore spans the current slice and the 11 before it: between
//! 55 and 60 s. Each slice also keeps its slowest call, in one word tagged
//! with the slice, written only when a call beats it.

use super::histogram::{BOUNDS_NS, BUCKETS};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

pub(crate) const SLICE_NS: u64 = 5_000_000_000;
pub(crate) const SLICES: u64 = 12;
/// Room for every slice of a window, and a spare.
const KEPT: usize = SLICES as usize + 4;
const MAX_BITS: u32 = 40;
const MAX_MASK: u64 = (1 << MAX_BITS) - 1;

pub(crate) type Buckets = [u64; BUCKETS];

pub(crate) struct Window {
    /// When the next slice starts, on the policy clock.
    next_slice_at: AtomicU64,
    /// (slice, cumulative counts at its start), oldest first.
    notes: Mutex<VecDeque<(u64, Buckets)>>,
    /// Per slice modulo `KEPT`: the slice (high bits) and its slowest call
    /// in nanoseconds (low 40 bits, about 18 minutes at most).
    slowest: [AtomicU64; KEPT],
}

impl Default for Window {
    fn default() -> Self {
        Window {
            next_slice_at: AtomicU64::new(0),
            notes: Mutex::new(VecDeque::with_capacity(KEPT)),
            slowest: Default::default(),
        }
    }
}

/// The window's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Latency {
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    pub calls: u64,
}

impl Window {
    /// Whether a call finishing at `now` opens a new slice, so the caller
    /// must [`Window::note`] the counts before adding its own.
    #[inline]
    pub(crate) fn new_slice(&self, now: u64) -> bool {
        now >= self.next_slice_at.load(Relaxed)
    }

    /// Notes the counts at the start of `now`'s slice.
    #[cold]
    #[inline(never)]
    pub(crate) fn note(&self, now: u64, counts: impl FnOnce() -> Buckets) {
        let slice = now / SLICE_NS;
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if notes.back().is_some_and(|(last, _)| *last >= slice) {
            return;
        }
        if notes.len() == KEPT {
            notes.pop_front();
        }
        notes.push_back((slice, counts()));
        self.next_slice_at
            .store((slice + 1).saturating_mul(SLICE_NS), Relaxed);
    }

    /// Keeps `nanos` if it is the slowest call of `now`'s slice so far.
    #[inline]
    pub(crate) fn slowest(&self, now: u64, nanos: u64) {
        let slice = now / SLICE_NS;
        let word = (slice << MAX_BITS) | nanos.min(MAX_MASK);
        let cell = &self.slowest[(slice % KEPT as u64) as usize];
        let current = cell.load(Relaxed);
        if current >> MAX_BITS != slice & (u64::MAX >> MAX_BITS) || current < word {
            self.raise(cell, slice, word);
        }
    }

    #[cold]
    fn raise(&self, cell: &AtomicU64, slice: u64, word: u64) {
        let _ = cell.fetch_update(Relaxed, Relaxed, |current| {
            let same = current >> MAX_BITS == slice & (u64::MAX >> MAX_BITS);
            (!same || current < word).then_some(word)
        });
    }

    /// The figures of the window ending at `now`, given the cumulative
    /// counts now; `None` when no call finished in it.
    pub(crate) fn latency(&self, now: u64, counts_now: &Buckets) -> Option<Latency> {
        let slice = now / SLICE_NS;
        let first = (slice + 1).saturating_sub(SLICES);
        let base = {
            let notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
            notes
                .iter()
                .find(|(s, _)| *s >= first)
                .map(|(_, counts)| *counts)
                .unwrap_or(*counts_now)
        };
        let window: Buckets = std::array::from_fn(|b| counts_now[b].saturating_sub(base[b]));
        let calls: u64 = window.iter().sum();
        if calls == 0 {
            return None;
        }
        let max_ns = (first..=slice)
            .filter_map(|s| {
                let word = self.slowest[(s % KEPT as u64) as usize].load(Relaxed);
                (word >> MAX_BITS == s & (u64::MAX >> MAX_BITS)).then_some(word & MAX_MASK)
            })
            .max()
            .unwrap_or(0);
        Some(Latency {
            p50_ns: quantile(&window, calls, 0.50, max_ns),
            p99_ns: quantile(&window, calls, 0.99, max_ns),
            max_ns,
            calls,
        })
    }
}

/// The `q` quantile of bucketed durations, interpolated linearly inside
/// its bucket (as Prometheus's `histogram_quantile` does) and never above
/// the slowest call seen.
pub(crate) fn quantile(buckets: &Buckets, calls: u64, q: f64, max_ns: u64) -> u64 {
    let rank = ((q * calls as f64).ceil() as u64).clamp(1, calls);
    let mut below = 0;
    for (b, &count) in buckets.iter().enumerate() {
        if below + count >= rank {
            let lower = if b == 0 { 0 } else { BOUNDS_NS[b - 1] };
            let upper = BOUNDS_NS
                .get(b)
                .copied()
                .unwrap_or(max_ns)
                .min(max_ns.max(lower));
            let share = (rank - below) as f64 / count as f64;
            let value = lower as f64 + (upper.saturating_sub(lower)) as f64 * share;
            return (value as u64).min(max_ns);
        }
        below += count;
    }
    max_ns
}

#[cfg(test)]
mod tests {
    use super::super::histogram::bucket;
    use super::*;

    fn counts(durations: &[u64]) -> Buckets {
        let mut b = [0; BUCKETS];
        for &d in durations {
            b[bucket(d)] += 1;
        }
        b
    }

    #[test]
    fn quantiles_fall_in_the_right_bucket_and_never_pass_the_slowest() {
        // 98 fast calls of 2 ms, two slow ones of 400 ms.
        let mut d = vec![2_000_000; 98];
        d.extend([400_000_000, 400_000_000]);
        let b = counts(&d);
        let p50 = quantile(&b, 100, 0.5, 400_000_000);
        assert!((1_000_000..=2_500_000).contains(&p50), "{p50}");
        let p99 = quantile(&b, 100, 0.99, 400_000_000);
        assert!((250_000_000..=400_000_000).contains(&p99), "{p99}");
        // A lone call: every quantile is at most itself.
        let one = counts(&[3_000_000]);
        assert_eq!(quantile(&one, 1, 0.99, 3_000_000), 3_000_000);
        // Beyond the last bound, the slowest call is the bound.
        let huge = counts(&[90_000_000_000]);
        assert_eq!(quantile(&huge, 1, 0.5, 90_000_000_000), 90_000_000_000);
    }
}
