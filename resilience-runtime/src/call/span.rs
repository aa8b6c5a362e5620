//! The `tracing` span each attempt runs in: `resilience.call`, with the
//! site's `dependency` and `operation`, the `attempt` (1 for the first), and
//! the `outcome` once it ends. The body is polled inside it, on a worker
//! thread too, so what the body logs and the spans it opens are the call's
//! children. With no subscriber interested, making the span is one load of
//! tracing's global level, and entering it one branch.

use crate::site::CallSite;
use tracing::Span;

/// The span of attempt `attempt` of a call at `site`; `None`, at the cost
/// of one load and one comparison, when no subscriber wants `info` spans.
#[inline(always)]
pub(crate) fn attempt_span(site: &'static CallSite, attempt: u32) -> Option<Span> {
    if tracing::level_enabled!(tracing::Level::INFO) {
        Some(make(site, attempt))
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn make(site: &'static CallSite, attempt: u32) -> Span {
    tracing::info_span!(
        target: "resilience",
        "resilience.call",
        dependency = site.dependency,
        operation = site.operation,
        attempt,
        outcome = tracing::field::Empty,
    )
}

/// Inside a span until dropped (a panic included). Entering and leaving are
/// out of line: a call nobody traces pays a branch for each, and the body's
/// poll stays small enough to inline.
pub(crate) struct Inside<'a>(Option<&'a Span>);

impl<'a> Inside<'a> {
    #[inline(always)]
    pub(crate) fn enter(span: Option<&'a Span>) -> Self {
        if let Some(span) = span {
            enter(span);
        }
        Inside(span)
    }
}

impl Drop for Inside<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(span) = self.0 {
            exit(span);
        }
    }
}

#[cold]
#[inline(never)]
pub(crate) fn enter(span: &Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
}

#[cold]
#[inline(never)]
pub(crate) fn exit(span: &Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
}

/// Records how the attempt ended, if it has a span.
#[inline]
pub(crate) fn record_outcome(span: &Option<Span>, outcome: &'static str) {
    if let Some(span) = span {
        span.record("outcome", outcome);
    }
}
