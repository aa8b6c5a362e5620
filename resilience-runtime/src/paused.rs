//! Keeps tokio's paused clock still while a job runs on one of our own
//! worker threads.
//!
//! On a paused clock (`#[tokio::test(start_paused = true)]`) tokio jumps time
//! to the next timer as soon as the runtime has nothing to do. While a job
//! runs on a dependency's thread pool the caller's runtime is idle, so
//! without this the call's own timeout would fire at once. tokio holds the
//! clock still while a `spawn_blocking` task runs; we borrow that: for the
//! job's duration a blocking task waits on a channel, and either end of the
//! call (the job finishing, or the caller giving up) lets it go.
//!
//! Only a paused clock pays for this, and only on the thread-pool path,
//! which hands a job to another thread anyway.

use std::sync::mpsc;

/// One end of a hold; dropping either end releases the clock.
pub(crate) struct ClockHold(mpsc::Sender<()>);

impl Drop for ClockHold {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Two ends of a hold on tokio's clock (one for the job, one for the
/// caller), or `None` when the clock is not paused.
pub(crate) fn hold_if_paused() -> Option<(ClockHold, ClockHold)> {
    if !clock_is_paused() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    // tokio stops auto-advancing from here until this task ends.
    tokio::task::spawn_blocking(move || {
        let _ = rx.recv();
    });
    Some((ClockHold(tx.clone()), ClockHold(tx)))
}

/// tokio has no public "is paused": a paused clock stands still between two
/// reads with no await between them, a running one moves (its resolution is
/// a nanosecond). Were a running clock ever to read the same twice, the
/// cost is one needless hold, not a wrong answer.
///
/// A paused clock, once seen, turns every policy clock to tokio's
/// ([`crate::clock::follow_tokio`]).
pub(crate) fn clock_is_paused() -> bool {
    let first = tokio::time::Instant::now();
    let paused = first == tokio::time::Instant::now();
    if paused {
        crate::clock::follow_tokio();
    }
    paused
}
