//! A counting semaphore whose uncontended acquire and release are one atomic
//! operation each, with no lock and no allocation. Waiting callers park on a
//! `Notify`, which release touches only when someone is waiting.

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::{deadline, Notify};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Low 32 bits: calls holding a slot. High 32 bits: callers waiting.
const WAITER: u64 = 1 << 32;

/// Keeps the contended word off the lines of its neighbours.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

pub(crate) struct Semaphore {
    state: Padded<AtomicU64>,
    /// Slots; a reload may change it (see [`Semaphore::resize`]).
    max: AtomicU32,
    /// The longest wait for a slot, in nanoseconds; a reload may change it.
    max_wait: AtomicU64,
    notify: Notify,
}

impl Semaphore {
    pub(crate) fn new(max: u32, max_wait: Duration) -> Self {
        Semaphore {
            state: Padded(AtomicU64::new(0)),
            max: AtomicU32::new(max),
            max_wait: AtomicU64::new(nanos(max_wait)),
            notify: Notify::new(),
        }
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// New limits for calls that come from now on. Shrinking cuts no call
    /// short: the calls in flight keep their slots, and nobody new gets one
    /// until they fall under the new limit. Growing wakes waiters for the
    /// new slots.
    pub(crate) fn resize(&self, max: u32, max_wait: Duration) {
        self.max_wait.store(nanos(max_wait), Ordering::Relaxed);
        let before = self.max.swap(max, Ordering::AcqRel);
        for _ in before..max.min(before.saturating_add(self.waiting())) {
            self.notify.notify_one();
        }
    }

    fn waiting(&self) -> u32 {
        (self.state.load(Ordering::Relaxed) >> 32) as u32
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.state.load(Ordering::Relaxed) as u32
    }

    /// Takes a slot if one is free. A CAS rather than add-then-undo, so a
    /// transient overshoot can never make a concurrent caller see "full".
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        let mut current = self.state.load(Ordering::Relaxed);
        let max = self.max.load(Ordering::Relaxed);
        loop {
            if current as u32 >= max {
                return false;
            }
            match self.state.compare_exchange_weak(
                current,
                current + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Takes a slot, waiting up to the configured wait. Returns false when
    /// none came free in time.
    #[inline]
    pub(crate) async fn acquire(&self) -> bool {
        self.try_acquire() || self.wait_for_slot().await
    }

    /// [`Semaphore::acquire`] after a `try_acquire` that failed: waits up to
    /// the bulkhead's wait, or refuses at once when it has none.
    pub(crate) async fn wait_for_slot(&self) -> bool {
        let max_wait = self.max_wait.load(Ordering::Relaxed);
        if max_wait == 0 {
            return false;
        }
        self.acquire_slow(Duration::from_nanos(max_wait)).await
    }

    async fn acquire_slow(&self, max_wait: Duration) -> bool {
        self.state.fetch_add(WAITER, Ordering::Relaxed);
        let _registered = WaiterGuard(&self.state);
        let mut deadline = pin!(deadline(max_wait));
        loop {
            // Register for a wake-up before looking, so a release between the
            // look and the wait is not missed.
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if self.try_acquire() {
                return true;
            }
            let timed_out = poll_fn(|cx| {
                if notified.as_mut().poll(cx).is_ready() {
                    Poll::Ready(false)
                } else if deadline.as_mut().poll(cx).is_ready() {
                    Poll::Ready(true)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if timed_out {
                return self.try_acquire();
            }
        }
    }

    #[inline]
    pub(crate) fn release(&self) {
        let before = self.state.fetch_sub(1, Ordering::Release);
        if before >= WAITER {
            self.notify.notify_one();
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

struct WaiterGuard<'a>(&'a AtomicU64);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(WAITER, Ordering::Relaxed);
    }
}

// Loom's atomics cannot be read outside a model; `loom_models.rs` covers this there.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_waiter_served_or_timed_out_leaves_no_trace_in_the_word() {
        let sem = Arc::new(Semaphore::new(1, Duration::from_secs(1)));
        assert!(sem.acquire().await);
        let waiter = tokio::spawn({
            let sem = Arc::clone(&sem);
            async move { sem.acquire().await }
        });
        tokio::task::yield_now().await;
        // Slots in the low half, waiters in the high half: one of each.
        assert_eq!(sem.state.load(Ordering::SeqCst), (1 << 32) + 1);
        sem.release();
        assert!(waiter.await.unwrap(), "the release served the waiter");
        sem.release();
        assert_eq!(sem.state.load(Ordering::SeqCst), 0, "no slot, no waiter");

        assert!(sem.acquire().await);
        assert!(!sem.acquire().await, "no slot came free within the wait");
        sem.release();
        assert_eq!(sem.state.load(Ordering::SeqCst), 0, "no slot, no waiter");
    }
}
