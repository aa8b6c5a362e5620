//! A value that a reload replaces while calls read it, with no lock and no
//! reference count on the reading side.
//!
//! A reader gets a plain `&T` from one atomic load. A replaced value is not
//! freed but retired: a call that loaded it before the swap may still be
//! using it, and proving that none is would cost every call. Retired values
//! live as long as the `Live` itself, so memory grows by one value per
//! reload that changed it (a dependency's settings are a few hundred bytes),
//! which is the price of a reader that pays nothing.

// Plain std atomics under loom too: no model replaces a value.
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

pub(crate) struct Live<T> {
    current: AtomicPtr<T>,
    retired: Mutex<Vec<Box<T>>>,
}

// SAFETY: a `Live<T>` hands out `&T` to any thread and moves `T`s between
// threads when replacing, exactly what `T: Send + Sync` allows.
unsafe impl<T: Send + Sync> Send for Live<T> {}
unsafe impl<T: Send + Sync> Sync for Live<T> {}

impl<T> Live<T> {
    pub(crate) fn new(value: T) -> Self {
        Live {
            current: AtomicPtr::new(Box::into_raw(Box::new(value))),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// The value in force. Acquire pairs with `replace`'s release, so a
    /// reader sees the new value fully built.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        // SAFETY: `current` always points at a live box: it starts as one,
        // `replace` swaps in another and retires (never frees) the old one,
        // and both are freed only when `self` drops, after every borrow.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// Puts `value` in force for every later `get`; borrows of the old
    /// value stay valid.
    pub(crate) fn replace(&self, value: T) {
        let new = Box::into_raw(Box::new(value));
        let old = self.current.swap(new, Ordering::AcqRel);
        // SAFETY: `old` came from `Box::into_raw` and nothing else owns it.
        let old = unsafe { Box::from_raw(old) };
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(old);
    }
}

impl<T> Drop for Live<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no borrow of any value remains.
        drop(unsafe { Box::from_raw(*self.current.get_mut()) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_borrow_outlives_the_replacement_and_every_value_is_dropped_once() {
        let drops = Arc::new(());
        let live = Live::new((1, Arc::clone(&drops)));
        let old = live.get();
        live.replace((2, Arc::clone(&drops)));
        assert_eq!(
            old.0, 1,
            "the borrow from before the swap still reads its value"
        );
        assert_eq!(live.get().0, 2);
        assert_eq!(Arc::strong_count(&drops), 3);
        drop(live);
        assert_eq!(
            Arc::strong_count(&drops),
            1,
            "current and retired both freed"
        );
    }

    #[test]
    fn readers_on_other_threads_see_whole_values() {
        let live = Arc::new(Live::new([0u64; 8]));
        let reader = {
            let live = Arc::clone(&live);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    let v = live.get();
                    assert!(v.iter().all(|&x| x == v[0]), "a torn value: {v:?}");
                }
            })
        };
        for i in 1..=200 {
            live.replace([i; 8]);
        }
        reader.join().unwrap();
        assert_eq!(live.get()[0], 200);
    }
}
