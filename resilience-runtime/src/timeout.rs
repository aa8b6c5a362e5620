//! The call timeout: polls the body until it ends or its time runs out,
//! catching panics so the call path can count them before they propagate.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

pub(crate) enum Step<T> {
    Done(T),
    TimedOut(Duration),
    Panicked(Box<dyn Any + Send>),
}

/// Polls `fut` to completion or timeout, catching panics. No timer is armed
/// for a future that completes on its first poll; the timeout runs from the
/// first time it is pending.
pub(crate) async fn run_timed<F: Future>(
    mut fut: Pin<&mut F>,
    timeout: Option<Duration>,
) -> Step<F::Output> {
    if let Poll::Ready(step) = poll_fn(|cx| Poll::Ready(poll_caught(fut.as_mut(), cx))).await {
        return step;
    }
    // The first poll already registered the waker: start by waiting.
    let mut first = true;
    let Some(timeout) = timeout else {
        return poll_fn(|cx| {
            if std::mem::take(&mut first) {
                return Poll::Pending;
            }
            poll_caught(fut.as_mut(), cx)
        })
        .await;
    };
    let mut deadline = pin!(tokio::time::sleep(timeout));
    poll_fn(|cx| {
        if !std::mem::take(&mut first) {
            if let Poll::Ready(step) = poll_caught(fut.as_mut(), cx) {
                return Poll::Ready(step);
            }
        }
        deadline.as_mut().poll(cx).map(|()| Step::TimedOut(timeout))
    })
    .await
}

#[inline]
fn poll_caught<F: Future>(fut: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<Step<F::Output>> {
    match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Ready(out)) => Poll::Ready(Step::Done(out)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Step::Panicked(payload)),
    }
}
