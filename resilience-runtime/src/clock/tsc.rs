//! The CPU's time-stamp counter as a clock: a read is `rdtsc`, a multiply
//! and a shift, against 20–30 ns for the kernel's `CLOCK_MONOTONIC` (which
//! `std::time::Instant` and tokio read) on the machines we measure.
//!
//! Used only where the counter is invariant (it ticks at one rate in every
//! power state and on every core: CPUID's "invariant TSC" bit) and, on Linux,
//! where the kernel itself keeps time with it, so it has not judged the
//! counter unstable. Anywhere else, [`now`] answers `None` and the caller
//! reads tokio's clock.
//!
//! Calibration costs no caller a wait: the first read spins 1 ms against
//! `Instant` for a first rate (within about 1e-4), and reads at 10×, 100×, …
//! that age re-measure the rate over the whole time since then, so the
//! error falls to parts per billion within minutes. Each new scale starts
//! where the old one ends, so the clock never steps backwards.
//!
//! Two views of the one counter: [`now`], the policies', which a paused
//! tokio clock retires for good, and [`live_now`], the call deadlines',
//! which nothing retires (the timer thread maps it onto tokio's clock).

use std::sync::atomic::Ordering::{AcqRel, Acquire, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds on this clock at `tsc0`, and the rate after it.
struct Scale {
    tsc0: u64,
    ns0: u64,
    /// Nanoseconds per tick, as a 32.32 fixed-point number.
    mult: u64,
    /// The counter's value at which to re-measure the rate.
    refine_at: u64,
    /// Its place in `SCALES`.
    step: usize,
}

/// Where the clock began: an `Instant` and the counter read beside it.
struct Origin {
    at: Instant,
    tsc: u64,
}

static ORIGIN: OnceLock<Origin> = OnceLock::new();
/// The policies' view: null until calibrated, and again once retired.
static SCALE: AtomicPtr<Scale> = AtomicPtr::new(std::ptr::null_mut());
/// The deadlines' view: the same scale, never retired.
static LIVE: AtomicPtr<Scale> = AtomicPtr::new(std::ptr::null_mut());

/// Every scale the clock will have: the first, then one per tenfold age up
/// to `LAST_REFINE` (1 ms × 10⁶). Static, so that a refinement, which
/// happens inside some call, allocates nothing.
const STEPS: usize = 8;
static SCALES: [OnceLock<Scale>; STEPS] = [const { OnceLock::new() }; STEPS];

const UNKNOWN: u8 = 0;
const USABLE: u8 = 1;
const UNUSABLE: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
/// Retired for good: the policies read tokio's clock ([`retire`]).
static RETIRED: AtomicBool = AtomicBool::new(false);

/// Stop re-measuring once the baseline is this long: the rate is then
/// known to far better than any duration we report.
const LAST_REFINE: Duration = Duration::from_secs(1000);

/// Nanoseconds since the clock began (its zero is `origin()`), or `None`
/// where the counter cannot serve or has been retired.
#[inline]
pub(super) fn now() -> Option<u64> {
    read_scale(&SCALE).or_else(first_read)
}

/// [`now`], retired or not: `None` only where the counter cannot serve.
#[inline]
pub(super) fn live_now() -> Option<u64> {
    read_scale(&LIVE).or_else(first_live_read)
}

#[inline(always)]
fn read_scale(view: &AtomicPtr<Scale>) -> Option<u64> {
    let scale = view.load(Acquire);
    if scale.is_null() {
        return None;
    }
    // Never freed: see `refine`.
    let scale = unsafe { &*scale };
    let tsc = read();
    if tsc >= scale.refine_at {
        return Some(refine(scale, tsc));
    }
    Some(scale.at(tsc))
}

/// The `Instant` this clock's zero stands for.
pub(super) fn origin() -> Option<Instant> {
    ORIGIN.get().map(|o| o.at)
}

impl Scale {
    #[inline]
    fn at(&self, tsc: u64) -> u64 {
        let ticks = tsc.saturating_sub(self.tsc0) as u128;
        self.ns0 + ((ticks * self.mult as u128) >> 32) as u64
    }
}

/// Stops the policies' view for good: [`now`] answers `None` from here on,
/// with no more cost to its callers than the load of a null pointer.
pub(super) fn retire() {
    RETIRED.store(true, SeqCst);
    SCALE.store(std::ptr::null_mut(), SeqCst);
}

/// Calibrates on first use; whether the counter can serve.
fn usable() -> bool {
    match STATE.load(Acquire) {
        USABLE => true,
        UNUSABLE => false,
        _ => {
            let usable = counter_is_invariant() && calibrate();
            // Racing threads agree: the first verdict stands.
            let state = if usable { USABLE } else { UNUSABLE };
            match STATE.compare_exchange(UNKNOWN, state, AcqRel, Acquire) {
                Ok(_) => usable,
                Err(first) => first == USABLE,
            }
        }
    }
}

#[cold]
fn first_read() -> Option<u64> {
    if RETIRED.load(SeqCst) || !usable() {
        return None;
    }
    let scale = LIVE.load(Acquire);
    let _ = SCALE.compare_exchange(std::ptr::null_mut(), scale, AcqRel, Acquire);
    // Retired meanwhile: take back what was just installed.
    if RETIRED.load(SeqCst) {
        SCALE.store(std::ptr::null_mut(), SeqCst);
        return None;
    }
    read_scale(&LIVE)
}

#[cold]
fn first_live_read() -> Option<u64> {
    if !usable() {
        return None;
    }
    read_scale(&LIVE)
}

/// The first scale, from 1 ms of spinning against `Instant`.
fn calibrate() -> bool {
    let origin = ORIGIN.get_or_init(|| {
        let tsc = read();
        Origin {
            at: Instant::now(),
            tsc,
        }
    });
    let mut elapsed = origin.at.elapsed();
    while elapsed < Duration::from_millis(1) {
        std::hint::spin_loop();
        elapsed = origin.at.elapsed();
    }
    let ticks = read().saturating_sub(origin.tsc);
    let Some(mult) = rate(elapsed, ticks) else {
        return false;
    };
    // Another thread may have calibrated first; then its scale stands.
    let scale = SCALES[0].get_or_init(|| Scale {
        tsc0: origin.tsc,
        ns0: 0,
        mult,
        refine_at: origin.tsc + ticks * 10,
        step: 0,
    });
    let _ = LIVE.compare_exchange(
        std::ptr::null_mut(),
        scale as *const Scale as *mut Scale,
        AcqRel,
        Acquire,
    );
    true
}

/// Ticks to 32.32 nanoseconds per tick, refusing a counter slower than
/// 100 MHz or faster than 100 GHz (not a clock we understand).
fn rate(elapsed: Duration, ticks: u64) -> Option<u64> {
    let ns = elapsed.as_nanos();
    if ticks == 0 || ns == 0 {
        return None;
    }
    let hz = ticks as u128 * 1_000_000_000 / ns;
    if !(100_000_000..=100_000_000_000).contains(&hz) {
        return None;
    }
    u64::try_from((ns << 32) / ticks as u128).ok()
}

/// A better rate, measured over the whole time since the origin, taking
/// over where the current scale is now. Scales live in `SCALES` for the
/// process's life, so a reader holding an old one is never left dangling.
#[cold]
#[inline(never)]
fn refine(current: &Scale, tsc: u64) -> u64 {
    let now = current.at(tsc);
    let (Some(origin), Some(slot)) = (ORIGIN.get(), SCALES.get(current.step + 1)) else {
        return now;
    };
    let next = slot.get_or_init(|| {
        let elapsed = origin.at.elapsed();
        let ticks = read().saturating_sub(origin.tsc);
        let last = elapsed >= LAST_REFINE || current.step + 2 == STEPS;
        Scale {
            tsc0: tsc,
            ns0: now,
            mult: rate(elapsed, ticks).unwrap_or(current.mult),
            refine_at: if last {
                u64::MAX
            } else {
                tsc.saturating_add(ticks.saturating_mul(9))
            },
            step: current.step + 1,
        }
    });
    // Both views move on; a retired one stays null.
    for view in [&LIVE, &SCALE] {
        let _ = view.compare_exchange(
            current as *const Scale as *mut Scale,
            next as *const Scale as *mut Scale,
            AcqRel,
            Acquire,
        );
    }
    // A thread that lost the race to another scale reads that one.
    next.at(read()).max(now)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read() -> u64 {
    // SAFETY: rdtsc exists on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn read() -> u64 {
    0
}

/// CPUID's invariant-TSC bit, and on Linux the kernel's own clocksource.
#[cfg(target_arch = "x86_64")]
fn counter_is_invariant() -> bool {
    use core::arch::x86_64::__cpuid;
    // SAFETY: cpuid exists on every x86_64 CPU; the extended leaf is read
    // only when the CPU says it has it. (Safe to call from Rust 1.87 on.)
    #[allow(unused_unsafe)]
    let invariant = unsafe {
        __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
    };
    invariant && kernel_keeps_time_with_it()
}

#[cfg(not(target_arch = "x86_64"))]
fn counter_is_invariant() -> bool {
    false
}

/// Linux stops using the counter when it finds it unreliable (a VM that
/// migrates, unsynchronised sockets); so do we. Elsewhere the CPUID bit
/// decides alone.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn kernel_keeps_time_with_it() -> bool {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .map(|s| s.trim() == "tsc")
        .unwrap_or(false)
}

#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn kernel_keeps_time_with_it() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_keeps_time_with_instant() {
        let Some(start) = now() else {
            eprintln!("no invariant TSC here: the clock reads tokio's");
            return;
        };
        let origin = origin().expect("an origin once calibrated");
        let wall = origin.elapsed().as_nanos() as u64;
        // Read right after `wall`, so it may be a little later, never much.
        let ours = now().unwrap();
        assert!(ours >= start, "monotonic");
        let off = ours.abs_diff(wall);
        assert!(off < 1_000_000, "within 1 ms of Instant, off by {off} ns");
    }

    #[test]
    fn rate_refuses_what_is_not_a_clock() {
        assert_eq!(rate(Duration::from_millis(1), 0), None);
        assert_eq!(rate(Duration::from_millis(1), 10), None); // 10 kHz
        let ghz = rate(Duration::from_millis(1), 2_500_000).unwrap();
        // 0.4 ns per tick at 2.5 GHz, in 32.32.
        assert_eq!(ghz, 1_717_986_918);
    }
}
