//! Call durations, in the same striped cells that count outcomes: a call's
//! one atomic add lands in the cell of its outcome and its duration's
//! bucket, so timing a call costs no second atomic operation.
//!
//! A cell for a bucket of at most 1 s packs a count (high 24 bits) and a
//! sum of nanoseconds (low 40 bits) into one word. Whichever call sees a
//! half-full field moves the cell's contents into `Drained`, under a lock,
//! long before it could overflow (about 8 million calls, or 550 s of summed
//! time, per cell and shard). Slower buckets keep a count and a sum apart:
//! their calls last a second or more, so a second atomic add is nothing.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Upper bounds of the buckets, in nanoseconds (`le`, as Prometheus has
/// it); a last bucket above them holds the rest.
pub(crate) const BOUNDS_NS: [u64; 21] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];
pub(crate) const BUCKETS: usize = BOUNDS_NS.len() + 1;
/// Buckets up to 1 s, whose count and sum share a word.
const PACKED: usize = 16;
const SLOW: usize = BUCKETS - PACKED;

const ONE: u64 = 1 << 40;
const SUM: u64 = ONE - 1;
/// Drain once the count or the sum passes half its field.
const COUNT_HALF: u64 = 1 << 63;
const SUM_HALF: u64 = 1 << 39;

/// The bucket a duration falls in: the first whose bound it does not pass.
#[inline]
pub(crate) fn bucket(nanos: u64) -> usize {
    let mut i = 0;
    while i < BOUNDS_NS.len() && nanos > BOUNDS_NS[i] {
        i += 1;
    }
    i
}

/// One outcome's cells in one shard.
#[derive(Default)]
pub(crate) struct Cells {
    /// Calls nobody timed (`CallSite::timed`): counted, in no bucket.
    untimed: AtomicU64,
    packed: [AtomicU64; PACKED],
    slow_count: [AtomicU64; SLOW],
    slow_sum: [AtomicU64; SLOW],
}

/// One bucket's figures as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub count: u64,
    pub sum_ns: u64,
}

impl Cells {
    /// Adds one call; `true` when the cell must be drained. `owned`: see
    /// [`bump`].
    #[inline]
    pub(crate) fn add(&self, bucket: usize, nanos: u64, owned: bool) -> bool {
        if bucket < PACKED {
            let before = bump(&self.packed[bucket], ONE | nanos, owned);
            before >= COUNT_HALF || before & SUM >= SUM_HALF
        } else {
            self.add_slow(bucket - PACKED, nanos);
            false
        }
    }

    /// Adds one call nobody timed.
    #[inline]
    pub(crate) fn add_untimed(&self, owned: bool) {
        bump(&self.untimed, 1, owned);
    }

    pub(crate) fn untimed(&self) -> u64 {
        self.untimed.load(Relaxed)
    }

    #[cold]
    fn add_slow(&self, slow: usize, nanos: u64) {
        self.slow_count[slow].fetch_add(1, Relaxed);
        self.slow_sum[slow].fetch_add(nanos, Relaxed);
    }

    /// The cell's figures; the caller holds `Drained`'s lock, so no drain
    /// moves them meanwhile.
    fn tally(&self, bucket: usize) -> Tally {
        if bucket < PACKED {
            let word = self.packed[bucket].load(Relaxed);
            Tally {
                count: word >> 40,
                sum_ns: word & SUM,
            }
        } else {
            Tally {
                count: self.slow_count[bucket - PACKED].load(Relaxed),
                sum_ns: self.slow_sum[bucket - PACKED].load(Relaxed),
            }
        }
    }
}

/// Adds `by` to `cell` and returns what it held. `owned`: only this thread
/// writes the cell, so a load and a store will do (a reader still sees
/// whole words); otherwise an atomic add.
#[inline]
fn bump(cell: &AtomicU64, by: u64, owned: bool) -> u64 {
    if owned {
        let before = cell.load(Relaxed);
        cell.store(before.wrapping_add(by), Relaxed);
        before
    } else {
        cell.fetch_add(by, Relaxed)
    }
}

/// What drains have moved out of the packed cells, per outcome and bucket.
pub(crate) struct Drained<const OUTCOMES: usize> {
    tallies: Mutex<[[Tally; PACKED]; OUTCOMES]>,
}

impl<const OUTCOMES: usize> Default for Drained<OUTCOMES> {
    fn default() -> Self {
        Drained {
            tallies: Mutex::new([[Tally::default(); PACKED]; OUTCOMES]),
        }
    }
}

impl<const OUTCOMES: usize> Drained<OUTCOMES> {
    /// Moves a packed cell's contents here. The swap loses no add: an add
    /// lands either in what is moved or in the emptied cell.
    #[cold]
    #[inline(never)]
    pub(crate) fn drain(&self, cells: &Cells, outcome: usize, bucket: usize) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let word = cells.packed[bucket].swap(0, Relaxed);
        let tally = &mut tallies[outcome][bucket];
        tally.count += word >> 40;
        tally.sum_ns += word & SUM;
    }

    /// Every bucket of every outcome, summed over `shards`.
    pub(crate) fn read<'a>(
        &self,
        shards: impl Iterator<Item = &'a [Cells; OUTCOMES]> + Clone,
    ) -> [[Tally; BUCKETS]; OUTCOMES] {
        let tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        std::array::from_fn(|outcome| {
            std::array::from_fn(|bucket| {
                let mut total = if bucket < PACKED {
                    tallies[outcome][bucket]
                } else {
                    Tally::default()
                };
                for shard in shards.clone() {
                    let t = shard[outcome].tally(bucket);
                    total.count += t.count;
                    total.sum_ns += t.sum_ns;
                }
                total
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_bucket_whose_bound_they_do_not_pass() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(10_000), 0);
        assert_eq!(bucket(10_001), 1);
        assert_eq!(bucket(1_000_000_000), 15);
        assert_eq!(bucket(1_000_000_001), 16);
        assert_eq!(bucket(60_000_000_000), 20);
        assert_eq!(bucket(u64::MAX), 21);
    }

    #[test]
    fn a_drain_keeps_every_count_and_nanosecond() {
        let cells: [Cells; 1] = Default::default();
        let drained = Drained::<1>::default();
        let mut expected = Tally::default();
        // Enough 0.9 s calls to pass half the sum field many times over.
        for i in 0..5_000u64 {
            let nanos = 900_000_000 + i;
            let b = bucket(nanos);
            assert_eq!(b, 15);
            if cells[0].add(b, nanos, i % 2 == 0) {
                drained.drain(&cells[0], 0, b);
            }
            expected.count += 1;
            expected.sum_ns += nanos;
        }
        cells[0].add(bucket(7_000_000_000), 7_000_000_000, false);
        let read = drained.read(std::iter::once(&cells));
        assert_eq!(read[0][15], expected);
        assert_eq!(
            read[0][18],
            Tally {
                count: 1,
                sum_ns: 7_000_000_000
            }
        );
        assert_eq!(read[0][0], Tally::default());
    }

    #[test]
    fn the_count_field_drains_before_it_fills() {
        let cells: [Cells; 1] = Default::default();
        let drained = Drained::<1>::default();
        // Start just under the drain point to keep the test fast.
        cells[0].packed[0].store((COUNT_HALF - ONE) | 5, Relaxed);
        assert!(
            !cells[0].add(0, 1, true),
            "the add that reaches half is seen by the next"
        );
        assert!(cells[0].add(0, 1, false));
        drained.drain(&cells[0], 0, 0);
        let read = drained.read(std::iter::once(&cells));
        assert_eq!(read[0][0].count, (1 << 23) + 1);
        assert_eq!(read[0][0].sum_ns, 7);
        assert_eq!(cells[0].packed[0].load(Relaxed), 0);
    }
}
