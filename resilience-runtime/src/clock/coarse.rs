//! The kernel's coarse clock: `CLOCK_MONOTONIC_COARSE`, tokio's own clock
//! as of the last scheduler tick, read from the vDSO without touching the
//! CPU's counter (about 5 ns, against 10–25 ns for a precise reading on the
//! machines we measure). It may lag the true time by up to one tick (1 to
//! 10 ms, [`slack`] allows two), so it can only prove that a moment is still
//! some way off: an open breaker refuses with it while its recovery time is
//! further away than that, and reads the precise clock near it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Nanoseconds on `CLOCK_MONOTONIC_COARSE`, never ahead of tokio's clock
/// (running, never paused): `None` where there is none, or once a paused
/// clock has been seen (tests must see exact times).
#[inline]
pub(crate) fn now() -> Option<u64> {
    if !super::policy_reads_deadline_clock() {
        return None;
    }
    read()
}

/// How far the coarse clock may lag tokio's: two of its ticks.
pub(crate) fn slack() -> u64 {
    static SLACK: AtomicU64 = AtomicU64::new(0);
    match SLACK.load(Relaxed) {
        0 => {
            let slack = resolution().saturating_mul(2).max(1);
            SLACK.store(slack, Relaxed);
            slack
        }
        slack => slack,
    }
}

#[cfg(all(target_os = "linux", not(loom)))]
#[inline]
fn read() -> Option<u64> {
    ask(libc::clock_gettime, libc::CLOCK_MONOTONIC_COARSE)
}

#[cfg(all(target_os = "linux", not(loom)))]
fn resolution() -> u64 {
    // Linux's coarsest tick (HZ = 100) if the kernel will not say.
    ask(libc::clock_getres, libc::CLOCK_MONOTONIC_COARSE).unwrap_or(10_000_000)
}

/// `clock_gettime` or `clock_getres` of `clock`, in nanoseconds.
#[cfg(all(target_os = "linux", not(loom)))]
#[inline]
fn ask(
    call: unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int,
    clock: libc::clockid_t,
) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a clock id the kernel knows and a timespec we own.
    if unsafe { call(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(any(not(target_os = "linux"), loom))]
#[inline]
fn read() -> Option<u64> {
    None
}

#[cfg(any(not(target_os = "linux"), loom))]
fn resolution() -> u64 {
    0
}

#[cfg(all(test, target_os = "linux", not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_trails_the_precise_one_by_less_than_its_slack() {
        // CLOCK_MONOTONIC, tokio's clock and the coarse clock's own base.
        let precise = || ask(libc::clock_gettime, libc::CLOCK_MONOTONIC).unwrap();
        for _ in 0..1000 {
            let before = precise();
            let coarse = read().expect("Linux has the coarse clock");
            let after = precise();
            assert!(coarse <= after, "never ahead");
            assert!(
                before < coarse + slack(),
                "behind by less than {} ns",
                slack()
            );
        }
        assert!(
            slack() >= 2 * 1_000_000 && slack() <= 20_000_000,
            "{}",
            slack()
        );
    }
}
