//! The call timeout: polls the body until it ends or its time runs out,
//! catching panics so the call path can count them before they propagate.
//! The deadline itself lives in `deadlines.rs`, which arms it without a
//! tokio timer per call.

mod deadlines;
#[cfg(test)]
mod tests;

use deadlines::{Armed, Due};

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

pub(crate) enum Step<T> {
    Done(T),
    TimedOut(Duration),
    Panicked(Box<dyn Any + Send>),
}

/// The timeout runs from the first time the future is pending (see
/// [`run_timed`]).
pub(crate) const FROM_FIRST_PENDING: u64 = u64::MAX;

/// Polls `fut` to completion or timeout, catching panics, each poll inside
/// `span` when there is one. No timer is armed for a future that completes
/// on its first poll. The timeout runs from `began`, a reading of
/// `clock::deadline_now` taken before the first poll, or, for
/// [`FROM_FIRST_PENDING`], from the first time `fut` is pending. From then
/// on `site`'s calls are timed.
pub(crate) async fn run_timed<F: Future>(
    mut fut: Pin<&mut F>,
    timeout: Option<Duration>,
    began: u64,
    span: Option<&tracing::Span>,
    site: Option<&crate::site::CallSite>,
) -> Step<F::Output> {
    if let Poll::Ready(step) = (FirstPoll {
        fut: &mut fut,
        span,
    })
    .await
    {
        return step;
    }
    if let Some(site) = site {
        site.waited();
    }
    // The first poll already registered the waker: start by waiting.
    let mut first = true;
    let Some(timeout) = timeout else {
        return poll_fn(|cx| {
            if std::mem::take(&mut first) {
                return Poll::Pending;
            }
            poll_caught(fut.as_mut(), cx, span)
        })
        .await;
    };
    let mut armed = None;
    let mut fallback = pin!(None);
    poll_fn(|cx| {
        if !std::mem::take(&mut first) {
            if let Poll::Ready(step) = poll_caught(fut.as_mut(), cx, span) {
                return Poll::Ready(step);
            }
        }
        poll_deadline(&mut armed, fallback.as_mut(), began, timeout, cx)
            .map(|()| Step::TimedOut(timeout))
    })
    .await
}

/// The first poll, as a future of its own that always inlines (a
/// `poll_fn` here was left out of line once the span joined it: about 30
/// instructions a call under callgrind).
struct FirstPoll<'a, 'b, F> {
    fut: &'a mut Pin<&'b mut F>,
    span: Option<&'a tracing::Span>,
}

impl<F: Future> Future for FirstPoll<'_, '_, F> {
    type Output = Poll<Step<F::Output>>;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let span = self.span;
        Poll::Ready(poll_caught(self.fut.as_mut(), cx, span))
    }
}

/// Arms the deadline on its first poll, then reports whether it passed: in
/// the runtime's table, or on a tokio timer where no table can keep it.
fn poll_deadline(
    armed: &mut Option<Armed>,
    mut fallback: Pin<&mut Option<Sleep>>,
    began: u64,
    timeout: Duration,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if let Some(sleep) = fallback.as_mut().as_pin_mut() {
        return sleep.poll(cx);
    }
    let due = match armed {
        Some(armed) => armed.poll(cx.waker()),
        None => {
            let began = match began {
                FROM_FIRST_PENDING => crate::clock::deadline_now(),
                began => began,
            };
            match Armed::new(began, timeout, cx.waker()) {
                Some(new) => armed.insert(new).first_poll(),
                // Later than `began` + `timeout`, never earlier.
                None => Due::Orphaned(Instant::now() + timeout),
            }
        }
    };
    match due {
        Due::Pending => Poll::Pending,
        Due::Fired => Poll::Ready(()),
        Due::Orphaned(deadline) => {
            *armed = None;
            fallback.set(Some(tokio::time::sleep_until(deadline)));
            poll_deadline(armed, fallback, began, timeout, cx)
        }
    }
}

/// Enters `span` around the poll without a drop guard: the poll's panics
/// are caught here, so the exit always runs, and no unwind path is added.
#[inline]
fn poll_caught<F: Future>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
    span: Option<&tracing::Span>,
) -> Poll<Step<F::Output>> {
    if let Some(span) = span {
        crate::call::span::enter(span);
    }
    let polled = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
    if let Some(span) = span {
        crate::call::span::exit(span);
    }
    match polled {
        Ok(Poll::Ready(out)) => Poll::Ready(Step::Done(out)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Step::Panicked(payload)),
    }
}
