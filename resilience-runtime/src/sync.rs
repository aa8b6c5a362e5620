//! The synchronisation the policies use, from `std` and tokio in a normal
//! build and from loom under `--cfg loom`, so that the loom models in
//! `loom_models.rs` explore the real semaphore, breaker and thread pool.

#[cfg(not(loom))]
pub(crate) use std::sync::{atomic, Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use tokio::sync::Notify;

#[cfg(loom)]
pub(crate) use self::notify::Notify;
#[cfg(loom)]
pub(crate) use loom::sync::{atomic, Arc, Condvar, Mutex, MutexGuard};

/// Starts a named thread.
#[cfg(not(loom))]
pub(crate) fn spawn_thread(name: String, body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    std::thread::Builder::new().name(name).spawn(body).map(drop)
}

/// Starts a thread loom schedules.
#[cfg(loom)]
pub(crate) fn spawn_thread(_name: String, body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    drop(loom::thread::spawn(body));
    Ok(())
}

/// Waits `delay` on tokio's clock: a bounded wait for a slot.
#[cfg(not(loom))]
pub(crate) async fn deadline(delay: std::time::Duration) {
    tokio::time::sleep(delay).await
}

/// Loom has no clock: a wait for a slot never times out, so a lost wake-up
/// shows as a deadlock.
#[cfg(loom)]
pub(crate) async fn deadline(_delay: std::time::Duration) {
    std::future::pending::<()>().await
}

/// A model of `tokio::sync::Notify` with the semantics the semaphore relies
/// on: `notify_one` wakes the oldest registered waiter, or stores one permit
/// when none is registered; `enable` registers a waiter (taking a stored
/// permit at once); a waiter dropped after its notification passes it on.
#[cfg(loom)]
mod notify {
    use loom::sync::Mutex;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    #[derive(Default)]
    struct State {
        permit: bool,
        next: u64,
        /// Registered waiters, oldest first.
        waiting: Vec<(u64, Option<Waker>)>,
        /// Waiters notified and not yet done.
        notified: Vec<u64>,
    }

    pub(crate) struct Notify {
        state: Mutex<State>,
    }

    pub(crate) struct Notified<'a> {
        notify: &'a Notify,
        id: Option<u64>,
        done: bool,
    }

    impl Notify {
        pub(crate) fn new() -> Notify {
            Notify {
                state: Mutex::new(State::default()),
            }
        }

        pub(crate) fn notified(&self) -> Notified<'_> {
            Notified {
                notify: self,
                id: None,
                done: false,
            }
        }

        pub(crate) fn notify_one(&self) {
            let mut state = self.state.lock().unwrap();
            Self::wake_one(&mut state);
        }

        fn wake_one(state: &mut State) {
            if state.waiting.is_empty() {
                state.permit = true;
            } else {
                let (id, waker) = state.waiting.remove(0);
                state.notified.push(id);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }

    impl Notified<'_> {
        pub(crate) fn enable(self: Pin<&mut Self>) {
            let this = self.get_mut();
            if this.id.is_some() || this.done {
                return;
            }
            let mut state = this.notify.state.lock().unwrap();
            if std::mem::take(&mut state.permit) {
                this.done = true;
                return;
            }
            let id = state.next;
            state.next += 1;
            state.waiting.push((id, None));
            this.id = Some(id);
        }
    }

    impl Future for Notified<'_> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.as_mut().enable();
            let this = self.get_mut();
            if this.done {
                return Poll::Ready(());
            }
            let id = this.id.expect("enabled");
            let mut state = this.notify.state.lock().unwrap();
            if let Some(at) = state.notified.iter().position(|n| *n == id) {
                state.notified.remove(at);
                this.done = true;
                this.id = None;
                return Poll::Ready(());
            }
            if let Some(entry) = state.waiting.iter_mut().find(|(n, _)| *n == id) {
                entry.1 = Some(cx.waker().clone());
            }
            Poll::Pending
        }
    }

    impl Drop for Notified<'_> {
        fn drop(&mut self) {
            let Some(id) = self.id else { return };
            let mut state = self.notify.state.lock().unwrap();
            state.waiting.retain(|(n, _)| *n != id);
            if let Some(at) = state.notified.iter().position(|n| *n == id) {
                state.notified.remove(at);
                Notify::wake_one(&mut state);
            }
        }
    }
}
