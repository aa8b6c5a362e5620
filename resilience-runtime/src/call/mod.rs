//! What an annotated function's body becomes. The policies apply in this
//! order: circuit breaker, then bulkhead, then timeout around the function
//! itself (a wait for a slot is bounded by the bulkhead's wait, not by the
//! call timeout). Around all three, for idempotent sites, the retry loop in
//! `recovery.rs`; after them, a site's fallback.

pub(crate) mod recovery;
pub(crate) mod span;

use crate::__private::CarriesResilienceError;
use crate::bulkhead::{Bulkhead, Semaphore};
use crate::circuit_breaker::Ticket;
use crate::dependency::{DepRef, Dependency, Policies};
use crate::rate_limiter::{NotYet, RateLimiter, Reservation};
use crate::site::CallSite;
use crate::stats::Outcome;
use crate::timeout::{run_timed, Step, FROM_FIRST_PENDING};
use crate::ResilienceError;
use crate::{defaults, runtime};
use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::time::Duration;

/// Whether a body error counts as a failure of the dependency (for its
/// breaker and its health): the site's `record_if`, or every error when it
/// has none. The default is zero-sized, so it costs a site nothing.
#[doc(hidden)]
pub trait Record<E>: Copy {
    /// True when `error` is the dependency's failure, not the caller's.
    fn failure(self, error: &E) -> bool;
}

/// Every body error is a failure: a site without `record_if`.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct AllErrors;

impl<E> Record<E> for AllErrors {
    #[inline(always)]
    fn failure(self, _: &E) -> bool {
        true
    }
}

/// A site's `record_if`.
#[doc(hidden)]
pub struct RecordIf<E>(fn(&E) -> bool);

impl<E> Clone for RecordIf<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for RecordIf<E> {}

impl<E> RecordIf<E> {
    /// Wraps `record_if`, the error type inferred.
    #[doc(hidden)]
    pub fn new(record_if: fn(&E) -> bool) -> Self {
        RecordIf(record_if)
    }
}

impl<E> Record<E> for RecordIf<E> {
    #[inline]
    fn failure(self, error: &E) -> bool {
        (self.0)(error)
    }
}

/// A site's `record_if` for a function returning `R`; a wrong signature is
/// an error at the argument.
#[doc(hidden)]
pub fn record_if<R: recovery::ResultParts>(record_if: fn(&R::Err) -> bool) -> RecordIf<R::Err> {
    RecordIf(record_if)
}

/// The steps of one attempt of an `async` body: breaker → rate limiter →
/// bulkhead → timeout, counted once by the guard (`first_of_retried`: see `Guard`). `|refused| ...` handles a policy's
/// refusal or cut-off (it must leave the enclosing block, with `return` or
/// `break`); `|result| ...` gets what the body returned, once counted.
///
/// A macro rather than an `async fn`, so each caller's state machine holds the
/// steps itself: a nested one costs a site about 30 instructions a call
/// (measured with callgrind).
macro_rules! attempt_steps {
    ($dep:expr, $policies:expr, $site:expr, $body:expr, $timeout:expr, $success:expr, $record:expr,
     first_of_retried: $first:expr, attempt: $attempt:expr,
     |$refused:ident| $on_refused:expr, |$result:ident| $on_done:expr) => {{
        let policies: &$crate::dependency::Policies = $policies;
        let span = $crate::call::span::attempt_span($site, $attempt);
        // The breaker's answer apart, so the guard itself is no `Result`: it
        // is written in place (see `Guard::new`).
        let ticket = match $crate::call::Guard::admit($dep, policies, $site, &span) {
            Ok(ticket) => ticket,
            Err($refused) => $on_refused,
        };
        let mut guard = $crate::call::Guard::new($dep, policies, $site, &span, ticket);
        guard.first_of_retried = $first;
        // The timeout runs from the attempt's start, unless it waits for a
        // turn or a slot: then from the body's first pending.
        let mut began = guard.timeout_began();
        if let Some(limiter) = &policies.rate_limiter {
            // A turn that is due now is taken without an await.
            if let Err(now) = limiter.take_due(guard.began) {
                began = $crate::timeout::FROM_FIRST_PENDING;
                // A local refusal without an await: the future `take_turn`
                // starts would cost it a stalled copy of its arguments.
                let turn = match $crate::call::refuse_now(limiter, &mut guard, now) {
                    Ok(turn) => turn,
                    Err($refused) => $on_refused,
                };
                match $crate::call::take_turn(limiter, &mut guard, turn).await {
                    Ok(()) => {}
                    Err($refused) => $on_refused,
                }
            }
        }
        let $crate::bulkhead::Bulkhead::Semaphore(semaphore) = &$dep.bulkhead else {
            unreachable!("runtime construction refuses async sites on thread-pool dependencies")
        };
        if !semaphore.try_acquire() {
            began = $crate::timeout::FROM_FIRST_PENDING;
            if !semaphore.wait_for_slot().await {
                let $refused = guard.reject();
                $on_refused
            }
        }
        guard.hold(semaphore);
        let mut timeout = $timeout;
        if let Some(faults) = &policies.faults {
            if let Some(injection) = faults.next() {
                began = $crate::timeout::FROM_FIRST_PENDING;
                match $crate::call::inject(injection, &mut guard, timeout).await {
                    Ok(left) => timeout = left,
                    Err($refused) => $on_refused,
                }
            }
        }
        // Declared after the guard, so it is dropped (cancelled) before the slot frees.
        // Built straight into its place: `pin!` would build it in a
        // temporary and copy it (see `call`).
        let mut body = $body;
        // SAFETY: `body` is shadowed at once and never moved again, as in
        // `tokio::pin!`.
        let body = unsafe { ::std::pin::Pin::new_unchecked(&mut body) };
        match $crate::timeout::run_timed(body, timeout, began, span.as_ref(), Some($site)).await {
            $crate::timeout::Step::Done(result) => {
                let $result = guard.finish_with(result, $success, $record);
                $on_done
            }
            $crate::timeout::Step::TimedOut(timeout) => {
                let $refused = guard.time_out(timeout);
                $on_refused
            }
            $crate::timeout::Step::Panicked(payload) => guard.panicked(payload),
        }
    }};
}
pub(crate) use attempt_steps;

/// Runs an `async fn`'s body under its dependency's policies. `make`
/// builds the body where it is pinned: a body built by the caller and
/// moved in was copied twice more, each copy a wide read of fields just
/// written one by one, which stalls the CPU (`perf annotate` of the ready
/// path; the same reason the guard is built in place).
#[doc(hidden)]
#[allow(clippy::needless_return)] // `return` leaves the macro's steps early
pub async fn call<M, F, T, E, R>(site: &'static CallSite, record: R, make: M) -> Result<T, E>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
    E: CarriesResilienceError,
    R: Record<E>,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(defaults::refusal(site).into());
    };
    let p = dep.policies();
    attempt_steps!(
        &*dep,
        p,
        site,
        make(),
        p.config.call_timeout,
        Outcome::Success,
        record,
        first_of_retried: false,
        attempt: 1,
        |refused| return Err(refused.into()),
        |result| result
    )
}

/// Runs a blocking function's body on a worker thread: the dependency's own
/// pool, or tokio's blocking pool under the dependency's semaphore.
#[doc(hidden)]
pub async fn call_blocking<F, T, E, R>(site: &'static CallSite, record: R, body: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: CarriesResilienceError + Send + 'static,
    R: Record<E>,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(defaults::refusal(site).into());
    };
    let p = dep.policies();
    let timeout = p.config.call_timeout;
    flatten(attempt_blocking(&dep, p, site, body, timeout, Outcome::Success, record, 1).await)
}

/// Runs an `on_pool` `async fn`'s body: on a thread-pool dependency it is
/// driven to completion on one of the pool's workers, by that worker's own
/// current-thread tokio runtime; on a semaphore dependency it runs in the
/// caller's task like any `async fn`.
#[doc(hidden)]
pub async fn call_on_pool<F, T, E, R>(site: &'static CallSite, record: R, body: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: CarriesResilienceError + Send + 'static,
    R: Record<E>,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(defaults::refusal(site).into());
    };
    let p = dep.policies();
    let timeout = p.config.call_timeout;
    flatten(attempt_on_pool(&dep, p, site, body, timeout, Outcome::Success, record, 1).await)
}

/// A policy's refusal becomes the function's own error type.
#[inline]
fn flatten<T, E: From<ResilienceError>>(
    attempt: Result<Result<T, E>, ResilienceError>,
) -> Result<T, E> {
    match attempt {
        Ok(result) => result,
        Err(refused) => Err(refused.into()),
    }
}

/// One attempt of an `async fn`'s body through breaker → bulkhead →
/// timeout, counted once. `Err` is a policy's refusal or cut-off; `Ok` holds
/// what the body returned. `success` is the counter a success lands in.
#[allow(clippy::needless_return)] // `return` leaves the macro's steps early
#[allow(clippy::too_many_arguments)] // each is one step's input
pub(crate) async fn attempt<F, T, E, R>(
    dep: &Dependency,
    p: &Policies,
    site: &'static CallSite,
    body: F,
    timeout: Option<Duration>,
    success: Outcome,
    record: R,
    number: u32,
) -> Result<Result<T, E>, ResilienceError>
where
    F: Future<Output = Result<T, E>>,
    R: Record<E>,
{
    attempt_steps!(
        dep,
        p,
        site,
        body,
        timeout,
        success,
        record,
        first_of_retried: false,
        attempt: number,
        |refused| return Err(refused),
        |result| Ok(result)
    )
}

/// One attempt of a blocking body on a worker thread; see [`attempt`].
#[allow(clippy::too_many_arguments)] // each is one step's input
pub(crate) async fn attempt_blocking<F, T, E, R>(
    dep: &DepRef,
    p: &Policies,
    site: &'static CallSite,
    body: F,
    timeout: Option<Duration>,
    success: Outcome,
    record: R,
    number: u32,
) -> Result<Result<T, E>, ResilienceError>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    R: Record<E>,
{
    let span = span::attempt_span(site, number);
    let ticket = Guard::admit(dep, p, site, &span)?;
    let mut guard = Guard::new(dep, p, site, &span, ticket);
    // A job handed to another thread always waits: time it from the start.
    guard.began = crate::clock::fast_now();
    if let Some(limiter) = &p.rate_limiter {
        if let Err(now) = limiter.take_due(guard.began) {
            let turn = refuse_now(limiter, &mut guard, now)?;
            take_turn(limiter, &mut guard, turn).await?;
        }
    }
    let mut timeout = timeout;
    // Before the bulkhead here, unlike async sites: an injected fault takes
    // no worker, and an injected delay is waited out by the caller, inside
    // the timeout, not on a worker (a real sleep there would not follow a
    // paused clock).
    if let Some(injection) = p.faults.as_ref().and_then(|f| f.next()) {
        timeout = inject(injection, &mut guard, timeout).await?;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A job whose caller already gave up (timed out or cancelled) is skipped.
    // It runs inside the attempt's span, so what it logs is the call's.
    let worker_span = span.clone();
    let job = move || {
        if !tx.is_closed() {
            let _inside = span::Inside::enter(worker_span.as_ref());
            let _ = tx.send(catch_unwind(AssertUnwindSafe(body)));
        }
    };
    // Dropped when this attempt ends, however it ends.
    let _caller_hold;
    match &dep.bulkhead {
        Bulkhead::ThreadPool(pool) => {
            let submitted = match crate::paused::hold_if_paused() {
                None => pool.try_submit(Box::new(job)),
                Some((job_hold, caller_hold)) => {
                    _caller_hold = caller_hold;
                    pool.try_submit(Box::new(move || {
                        let _job_hold = job_hold;
                        job()
                    }))
                }
            };
            if submitted.is_err() {
                return Err(guard.reject());
            }
        }
        Bulkhead::Semaphore(semaphore) => {
            if !semaphore.acquire().await {
                return Err(guard.reject());
            }
            // The job owns the slot: it frees when the work really ends, even
            // after the caller's timeout. Boxed like a thread-pool job, so
            // tokio's task machinery is compiled once, not once per function
            // (3.2 KB each; `benches/code_size.sh`).
            spawn_blocking_job(Box::new(job), OwnedPermit(dep.clone()));
        }
    }
    guard.admitted();
    let rx = pin!(rx);
    match run_timed(rx, timeout, FROM_FIRST_PENDING, None, None).await {
        Step::Done(Ok(Ok(result))) => Ok(guard.finish_with(result, success, record)),
        Step::Done(Ok(Err(payload))) => guard.panicked(payload),
        Step::Done(Err(_)) => guard.panicked(Box::new(format!(
            "the worker running {}/{} dropped its job: the runtime is shutting down",
            site.dependency, site.operation
        ))),
        Step::TimedOut(timeout) => Err(guard.time_out(timeout)),
        Step::Panicked(payload) => guard.panicked(payload),
    }
}

/// An injected fault or delay, inside the call's timeout: `Ok` with the
/// time left for the body, or the attempt's end, counted.
#[cold]
pub(crate) async fn inject(
    injection: crate::chaos::Injection,
    guard: &mut Guard<'_>,
    timeout: Option<Duration>,
) -> Result<Option<Duration>, ResilienceError> {
    use crate::chaos::Injection;
    let wait = match injection {
        Injection::Fault => return Err(guard.inject_fault()),
        Injection::Delay(by) => Some(by),
        Injection::Hang => None,
    };
    let waited = std::pin::pin!(async {
        match wait {
            Some(by) => crate::clock::sleep(by).await,
            None => std::future::pending().await,
        }
    });
    match run_timed(waited, timeout, FROM_FIRST_PENDING, None, None).await {
        Step::Done(()) => Ok(timeout.map(|t| t.saturating_sub(wait.unwrap_or_default()))),
        Step::TimedOut(timeout) => Err(guard.time_out(timeout)),
        Step::Panicked(payload) => guard.panicked(payload),
    }
}

/// The rate limiter's step when no turn was due at the attempt's start, as
/// of `now`, the reading `RateLimiter::take_due` decided on: a local
/// refusal, counted, or what [`take_turn`] finishes (`None`: Redis decides).
/// Out of line, so that the admitting path around it stays small enough
/// to inline into its caller.
#[inline(never)]
pub(crate) fn refuse_now(
    limiter: &RateLimiter,
    guard: &mut Guard<'_>,
    now: u64,
) -> Result<Option<Reservation>, ResilienceError> {
    match limiter.local_turn(now) {
        Some(Err(NotYet(retry_after))) => Err(guard.rate_limited(retry_after)),
        Some(Ok(turn)) => Ok(Some(turn)),
        None => Ok(None),
    }
}

/// The rate limiter's step, second half: a wait for a local turn (on
/// tokio's clock, holding no slot; a caller that stops waiting gives its
/// turn back), or Redis's decision for the cluster scope (`local` is
/// `None`), counted if it refuses.
pub(crate) async fn take_turn(
    limiter: &RateLimiter,
    guard: &mut Guard<'_>,
    local: Option<Reservation>,
) -> Result<(), ResilienceError> {
    let turn = match local {
        Some(turn) => turn,
        None => match cluster_turn(limiter).await {
            Ok(turn) => turn,
            Err(NotYet(retry_after)) => return Err(guard.rate_limited(retry_after)),
        },
    };
    wait_for(limiter, turn).await;
    Ok(())
}

#[cfg(feature = "cluster")]
async fn cluster_turn(limiter: &RateLimiter) -> Result<Reservation, NotYet> {
    limiter.cluster_turn().await
}

#[cfg(not(feature = "cluster"))]
async fn cluster_turn(_: &RateLimiter) -> Result<Reservation, NotYet> {
    unreachable!("without the cluster feature every limiter decides locally")
}

/// Waits for a turn that is not yet due, giving it back if dropped.
async fn wait_for(limiter: &RateLimiter, turn: Reservation) {
    if turn.wait.is_zero() {
        return;
    }
    let wait = turn.wait;
    let mut waiting = TurnGuard {
        limiter,
        turn: Some(turn),
    };
    crate::clock::sleep(wait).await;
    waiting.turn = None;
}

/// A turn being waited for; given back if the wait is dropped.
struct TurnGuard<'a> {
    limiter: &'a RateLimiter,
    turn: Option<Reservation>,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        if let Some(turn) = &self.turn {
            self.limiter.give_back(turn);
        }
    }
}

/// Runs `job` on tokio's blocking pool, holding `permit` until it ends.
fn spawn_blocking_job(job: Box<dyn FnOnce() + Send>, permit: OwnedPermit) {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        job();
    });
}

/// One attempt of an `on_pool` body; see [`call_on_pool`].
#[allow(clippy::too_many_arguments)] // each is one step's input
pub(crate) async fn attempt_on_pool<F, T, E, R>(
    dep: &DepRef,
    p: &Policies,
    site: &'static CallSite,
    body: F,
    timeout: Option<Duration>,
    success: Outcome,
    record: R,
    number: u32,
) -> Result<Result<T, E>, ResilienceError>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    R: Record<E>,
{
    if matches!(dep.bulkhead, Bulkhead::ThreadPool(_)) {
        let job = move || worker_runtime(|rt| rt.block_on(body));
        attempt_blocking(dep, p, site, job, timeout, success, record, number).await
    } else {
        attempt(dep, p, site, body, timeout, success, record, number).await
    }
}

/// The calling worker thread's own tokio runtime, made on first use.
fn worker_runtime<R>(f: impl FnOnce(&tokio::runtime::Runtime) -> R) -> R {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a worker thread's tokio runtime");
    }
    RUNTIME.with(f)
}

/// One call's bookkeeping. Whatever way the call ends, it is counted once:
/// if the caller drops the call's future first, `Drop` counts it cancelled.
/// `Guard::started` for a call nobody times.
const NOT_TIMED: u64 = u64::MAX;

pub(crate) struct Guard<'a> {
    dep: &'a Dependency,
    /// The attempt's span, if anyone listens: its `outcome` is recorded
    /// when it ends.
    span: &'a Option<tracing::Span>,
    /// The generation of policies the call started under, to its end.
    p: &'a Policies,
    site: &'static CallSite,
    ticket: Option<Ticket>,
    permit: Option<&'a Semaphore>,
    done: bool,
    /// When the bulkhead admitted the call, for a breaker that times calls;
    /// `NOT_TIMED` otherwise.
    started: u64,
    /// The first attempt of a call that may retry: if it is dropped, its
    /// logical call ends here too, as failed without retry.
    first_of_retried: bool,
    /// When the attempt began (past the breaker), on the policy clock: its
    /// duration in the histogram runs from here, waits for a turn or a slot
    /// included, as its caller sees it. `UNTIMED` at a site none of whose
    /// calls has waited yet (`CallSite::timed`).
    began: u64,
}

impl<'a> Guard<'a> {
    /// The breaker's step: a ticket (`None` without a breaker), or the
    /// refusal of an open one, counted.
    #[inline(always)]
    fn admit(
        dep: &Dependency,
        p: &Policies,
        site: &'static CallSite,
        span: &Option<tracing::Span>,
    ) -> Result<Option<Ticket>, ResilienceError> {
        match &p.breaker {
            None => Ok(None),
            Some(breaker) => match breaker.try_acquire() {
                Ok(ticket) => Ok(Some(ticket)),
                Err(retry_after) => Err(short_circuit(dep, site, span, retry_after)),
            },
        }
    }

    /// Always inlined, and no `Result`: returned from a call, or matched out
    /// of one, the guard was written field by field to a temporary, then
    /// copied into the call's future 16 bytes at a time, and a wide read of
    /// narrow writes just made stalls the CPU (seen with `perf annotate` on
    /// the ready path). Built in place, its fields are written once.
    #[inline(always)]
    fn new(
        dep: &'a Dependency,
        p: &'a Policies,
        site: &'static CallSite,
        span: &'a Option<tracing::Span>,
        ticket: Option<Ticket>,
    ) -> Self {
        Guard {
            dep,
            span,
            p,
            site,
            ticket,
            permit: None,
            done: false,
            started: NOT_TIMED,
            first_of_retried: false,
            began: if site.timed() {
                crate::clock::fast_now()
            } else {
                crate::stats::UNTIMED
            },
        }
    }

    /// When the attempt's timeout begins: its start, on the deadline clock.
    /// That is the reading that times the call, except once a paused clock
    /// has been seen (in tests), when the policies read tokio's. A site none
    /// of whose calls has waited reads no clock: its first call to wait is
    /// timed out from its first pending.
    #[inline]
    pub(crate) fn timeout_began(&self) -> u64 {
        if self.began == crate::stats::UNTIMED {
            FROM_FIRST_PENDING
        } else if crate::clock::policy_reads_deadline_clock() {
            self.began
        } else {
            crate::clock::deadline_now()
        }
    }

    #[inline]
    fn hold(&mut self, semaphore: &'a Semaphore) {
        self.permit = Some(semaphore);
        self.admitted();
    }

    #[inline]
    fn admitted(&mut self) {
        self.dep.stats.admitted();
        if let Some(breaker) = &self.p.breaker {
            if breaker.times_calls() {
                self.started = breaker.call_started();
            }
        }
    }

    #[inline]
    fn finish(&mut self, outcome: Outcome) {
        self.done = true;
        self.dep.stats.record(outcome, self.began);
        span::record_outcome(self.span, outcome.name());
        if let (Some(breaker), Some(ticket)) = (&self.p.breaker, self.ticket) {
            let slow = || self.started != NOT_TIMED && breaker.is_slow(self.started);
            match outcome {
                Outcome::Success | Outcome::SuccessFirstTry => breaker.on_success(ticket, slow()),
                Outcome::Failure | Outcome::TimedOut => breaker.on_failure(ticket, slow()),
                _ => breaker.on_ignored(ticket),
            }
        }
    }

    #[inline]
    fn finish_with<T, E, R: Record<E>>(
        &mut self,
        result: Result<T, E>,
        success: Outcome,
        record: R,
    ) -> Result<T, E> {
        self.finish(match &result {
            Ok(_) => success,
            Err(error) if record.failure(error) => Outcome::Failure,
            Err(_) => Outcome::FailureUnrecorded,
        });
        result
    }

    fn reject(&mut self) -> ResilienceError {
        self.finish(Outcome::Rejected);
        refused_if_heard(self.span, Outcome::Rejected, self.site);
        ResilienceError::Rejected {
            dependency: self.site.dependency,
            operation: self.site.operation,
            capacity: self.dep.bulkhead.capacity(),
        }
    }

    fn rate_limited(&mut self, retry_after: Duration) -> ResilienceError {
        self.finish(Outcome::RateLimited);
        ResilienceError::RateLimited {
            dependency: self.site.dependency,
            operation: self.site.operation,
            retry_after,
        }
    }

    fn inject_fault(&mut self) -> ResilienceError {
        self.finish(Outcome::Failure);
        ResilienceError::InjectedFault {
            dependency: self.site.dependency,
            operation: self.site.operation,
        }
    }

    fn time_out(&mut self, timeout: Duration) -> ResilienceError {
        self.finish(Outcome::TimedOut);
        refused_if_heard(self.span, Outcome::TimedOut, self.site);
        ResilienceError::Timeout {
            dependency: self.site.dependency,
            operation: self.site.operation,
            timeout,
        }
    }

    /// A panic is a failure; the permit frees as the unwind drops the guard.
    fn panicked(&mut self, payload: Box<dyn Any + Send>) -> ! {
        self.finish(Outcome::Failure);
        resume_unwind(payload)
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.cancelled();
        }
        if let Some(semaphore) = self.permit {
            semaphore.release();
        }
    }
}

impl Guard<'_> {
    /// The caller dropped the call before it ended. Out of line, so that
    /// the drop every call runs stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn cancelled(&mut self) {
        self.finish(Outcome::Cancelled);
        if self.first_of_retried {
            if let Some(retry) = &self.p.retry {
                crate::retry::bump(&retry.stats.failed_without_retry);
            }
        }
    }
}

/// An open breaker's refusal, counted. Out of line: inlined, it made the
/// admitting path of a retried site 15 instructions longer (callgrind),
/// for 20 fewer on the refusal.
#[cold]
#[inline(never)]
fn short_circuit(
    dep: &Dependency,
    site: &'static CallSite,
    span: &Option<tracing::Span>,
    retry_after: Duration,
) -> ResilienceError {
    dep.stats.record_refused(Outcome::ShortCircuited);
    refused_if_heard(span, Outcome::ShortCircuited, site);
    ResilienceError::CircuitOpen {
        dependency: site.dependency,
        operation: site.operation,
        retry_after,
    }
}

/// [`refused`], skipped without a call when nobody listens: no span, and
/// `debug` events off (a load and a comparison).
#[inline(always)]
fn refused_if_heard(span: &Option<tracing::Span>, outcome: Outcome, site: &'static CallSite) {
    if span.is_some() || tracing::level_enabled!(tracing::Level::DEBUG) {
        refused(span, outcome, site);
    }
}

/// A `debug` event, inside the attempt's span, for a call a policy refused
/// or cut off. (A short-circuited call never got a guard: its outcome is
/// recorded here.)
#[cold]
fn refused(span: &Option<tracing::Span>, outcome: Outcome, site: &'static CallSite) {
    span::record_outcome(span, outcome.name());
    let _inside = span::Inside::enter(span.as_ref());
    tracing::debug!(
        target: "resilience",
        dependency = site.dependency,
        operation = site.operation,
        outcome = outcome.name(),
        "call {}",
        outcome.name().replace('_', " ")
    );
}

/// A semaphore slot that a blocking job carries to its thread.
struct OwnedPermit(DepRef);

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if let Bulkhead::Semaphore(s) = &self.0.bulkhead {
            s.release();
        }
    }
}
