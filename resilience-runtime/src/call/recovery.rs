//! Recovery around the attempt: the retry loop of idempotent sites, and the
//! fallback a site runs once its call has failed for good.
//!
//! Retry is outermost: each attempt goes through breaker → bulkhead →
//! timeout and is judged by the breaker. Backoff waits hold no slot.

use super::{attempt, attempt_blocking, attempt_on_pool, attempt_steps, flatten, Record};
use crate::__private::CarriesResilienceError;
use crate::clock;
use crate::dependency::{Dependency, Policies};
use crate::fallback::FallbackStats;
use crate::retry::{bump, Retry, RetryStats};
use crate::site::CallSite;
use crate::stats::Outcome;
use crate::ResilienceError;
use crate::{defaults, runtime};
use std::future::Future;
use std::panic::resume_unwind;
use std::time::Duration;
use tokio::time::Instant;

/// The `Result` type an annotated function returns, taken apart so that the
/// macros can name its error type without parsing it (an alias such as
/// `std::io::Result<T>` or `AppResult<T>` included).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result<T, E>`",
    label = "an annotated function returns `Result<T, E>`, or an alias of one",
    note = "the function must return `Result<T, E>` where `E: From<ResilienceError>`, so a rejection, timeout or open circuit can reach the caller"
)]
pub trait ResultParts {
    /// The `Err` type.
    type Err;
}

impl<T, E> ResultParts for Result<T, E> {
    type Err = E;
}

/// A site's `retry_if` and `retry_after` functions.
#[doc(hidden)]
pub struct Hooks<E> {
    retry_if: Option<fn(&E) -> bool>,
    retry_after: Option<fn(&E) -> Option<Duration>>,
}

/// No hooks, for a function returning `R`.
#[doc(hidden)]
pub fn hooks<R: ResultParts>() -> Hooks<R::Err> {
    Hooks {
        retry_if: None,
        retry_after: None,
    }
}

impl<E> Hooks<E> {
    /// No hooks, the error type inferred.
    #[doc(hidden)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Hooks {
            retry_if: None,
            retry_after: None,
        }
    }

    /// Sets `retry_if`; a wrong signature is an error at the argument.
    #[doc(hidden)]
    pub fn retry_if(mut self, f: fn(&E) -> bool) -> Self {
        self.retry_if = Some(f);
        self
    }

    /// Sets `retry_after`; a wrong signature is an error at the argument.
    #[doc(hidden)]
    pub fn retry_after(mut self, f: fn(&E) -> Option<Duration>) -> Self {
        self.retry_after = Some(f);
        self
    }
}

/// How the first attempt of an idempotent `async fn` failed, handed to
/// [`call_retrying`].
#[doc(hidden)]
pub struct FirstFailure<E> {
    failure: Failure<E>,
    /// When the call started, if a deadline needs it.
    started: Option<Instant>,
}

/// The first attempt of an idempotent `async fn`. It is a site without
/// retries in all but two figures: a success lands in the first-try counter,
/// and with a deadline the timeout may be shorter. So a first-try success
/// costs about what a site without retries does; only a failure goes on to
/// [`call_retrying`], whose state the caller's future holds but never runs.
/// `make` builds the body where it is pinned, as in [`call`](crate::call::call).
#[doc(hidden)]
#[allow(clippy::needless_return)] // `return` leaves the macro's steps early
pub async fn call_first<M, F, T, E, R>(
    site: &'static CallSite,
    record: R,
    make: M,
) -> Result<T, FirstFailure<E>>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<T, E>>,
    R: Record<E>,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(FirstFailure {
            failure: Failure::Policy(defaults::refusal(site)),
            started: None,
        });
    };
    let p = dep.policies();
    let (success, timeout, started) = match &p.retry {
        None => (Outcome::Success, p.config.call_timeout, None),
        Some(retry) => match retry.config.max_elapsed {
            None => (Outcome::SuccessFirstTry, p.config.call_timeout, None),
            Some(max) => {
                let timeout = p.config.call_timeout.map_or(max, |t| t.min(max));
                (
                    Outcome::SuccessFirstTry,
                    Some(timeout),
                    Some(Instant::now()),
                )
            }
        },
    };
    // Its guard ends the logical call if the caller drops it mid-attempt;
    // after a failure, `call_retrying` takes the call over.
    let first = matches!(success, Outcome::SuccessFirstTry);
    attempt_steps!(&*dep, p, site, make(), timeout, success, record, first_of_retried: first, attempt: 1,
        |refused| return Err(FirstFailure { failure: Failure::Policy(refused), started }),
        |result| result.map_err(|error| FirstFailure { failure: Failure::Body(error), started }))
}

/// Retries an idempotent `async fn` whose first attempt failed: `make`
/// builds a fresh body per attempt.
#[doc(hidden)]
pub async fn call_retrying<F, Fut, T, E, R>(
    site: &'static CallSite,
    hooks: Hooks<E>,
    record: R,
    first: FirstFailure<E>,
    mut make: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: CarriesResilienceError,
    R: Record<E>,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(defaults::refusal(site).into());
    };
    let d = &dep;
    let p = dep.policies();
    let Some(retry) = &p.retry else {
        return Err(first.failure.into_error());
    };
    let deadline = first
        .started
        .zip(retry.config.max_elapsed)
        .map(|(s, max)| s + max);
    // Whether the first attempt's timeout was the deadline's, as `call_first`
    // chose it. Recomputed here rather than carried from `call_first` (or
    // shared with `first_deadline`): carrying it costs the first-try success
    // 11 instructions a call (callgrind).
    let shortened = match (deadline, retry.config.max_elapsed) {
        (Some(_), Some(max)) => p.config.call_timeout.is_none_or(|t| max < t),
        _ => false,
    };
    let call = LogicalCall {
        stats: &retry.stats,
        retries: 0,
        done: false,
    };
    // The retries wrap the body in a type of their own, so the first
    // attempt's timer code has `call_first` as its one caller and inlines
    // there, as a site without retries does (callgrind: 30 instructions).
    #[allow(clippy::redundant_async_block)] // the new type is the point
    let run = move |timeout, success, number| {
        let body = make();
        attempt(
            d,
            p,
            site,
            async move { body.await },
            timeout,
            success,
            record,
            number,
        )
    };
    after_failure(
        d,
        p,
        retry,
        &hooks,
        call,
        deadline,
        (first.failure, shortened),
        run,
    )
    .await
}

/// Runs an idempotent blocking `fn`: `make` builds a fresh job per attempt.
#[doc(hidden)]
pub async fn call_blocking_retrying<F, B, T, E, R>(
    site: &'static CallSite,
    hooks: Hooks<E>,
    record: R,
    mut make: F,
) -> Result<T, E>
where
    F: FnMut() -> B,
    B: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: CarriesResilienceError + Send + 'static,
    R: Record<E>,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(defaults::refusal(site).into());
    };
    let d = &dep;
    let p = dep.policies();
    retry_loop(d, p, &hooks, move |timeout, success, number| {
        attempt_blocking(d, p, site, make(), timeout, success, record, number)
    })
    .await
}

/// Runs an idempotent `on_pool` `async fn`.
#[doc(hidden)]
pub async fn call_on_pool_retrying<F, Fut, T, E, R>(
    site: &'static CallSite,
    hooks: Hooks<E>,
    record: R,
    mut make: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: CarriesResilienceError + Send + 'static,
    R: Record<E>,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(defaults::refusal(site).into());
    };
    let d = &dep;
    let p = dep.policies();
    retry_loop(d, p, &hooks, move |timeout, success, number| {
        attempt_on_pool(d, p, site, make(), timeout, success, record, number)
    })
    .await
}

/// The call's deadline, and its first attempt's timeout (shortened by the
/// deadline when that is nearer: then `true`).
#[inline]
fn first_deadline(p: &Policies, retry: &Retry) -> (Option<Instant>, Option<Duration>, bool) {
    match retry.config.max_elapsed {
        None => (None, p.config.call_timeout, false),
        Some(max) => {
            let deadline = Some(Instant::now() + max);
            let (timeout, shortened) = attempt_timeout(p.config.call_timeout, deadline);
            (deadline, timeout, shortened)
        }
    }
}

/// Why an attempt did not succeed.
enum Failure<E> {
    /// The body returned this error.
    Body(E),
    /// A policy refused the attempt or cut it off.
    Policy(ResilienceError),
}

impl<E: From<ResilienceError>> Failure<E> {
    /// The error the caller gets.
    fn into_error(self) -> E {
        match self {
            Failure::Body(e) => e,
            Failure::Policy(refused) => refused.into(),
        }
    }
}

/// The retry loop. `attempt(timeout, success)` makes one attempt with the
/// given timeout, counting a success in `success`. The first attempt is
/// straight-line code; the loop after a failure is a function of its own.
#[inline]
async fn retry_loop<T, E, A, AF>(
    dep: &Dependency,
    p: &Policies,
    hooks: &Hooks<E>,
    mut attempt: A,
) -> Result<T, E>
where
    A: FnMut(Option<Duration>, Outcome, u32) -> AF,
    AF: Future<Output = Result<Result<T, E>, ResilienceError>>,
    E: CarriesResilienceError,
{
    let Some(retry) = &p.retry else {
        return flatten(attempt(p.config.call_timeout, Outcome::Success, 1).await);
    };
    let (deadline, timeout, shortened) = first_deadline(p, retry);
    let mut call = LogicalCall {
        stats: &retry.stats,
        retries: 0,
        done: false,
    };
    let failure = match attempt(timeout, Outcome::SuccessFirstTry, 1).await {
        Ok(Ok(value)) => {
            call.done = true;
            return Ok(value);
        }
        Ok(Err(error)) => Failure::Body(error),
        Err(refused) => Failure::Policy(refused),
    };
    after_failure(
        dep,
        p,
        retry,
        hooks,
        call,
        deadline,
        (failure, shortened),
        attempt,
    )
    .await
}

/// Retries after a failed attempt until one succeeds or the call must stop.
#[allow(clippy::too_many_arguments)] // the loop's whole state, passed once
async fn after_failure<T, E, A, AF>(
    dep: &Dependency,
    p: &Policies,
    retry: &Retry,
    hooks: &Hooks<E>,
    mut call: LogicalCall<'_>,
    deadline: Option<Instant>,
    (mut failure, mut shortened): (Failure<E>, bool),
    mut attempt: A,
) -> Result<T, E>
where
    A: FnMut(Option<Duration>, Outcome, u32) -> AF,
    AF: Future<Output = Result<Result<T, E>, ResilienceError>>,
    E: CarriesResilienceError,
{
    let config = &retry.config;
    loop {
        let retryable = match &failure {
            Failure::Body(e) => config.retry_on.error && hooks.retry_if.is_none_or(|f| f(e)),
            Failure::Policy(ResilienceError::Timeout { .. }) => config.retry_on.timeout,
            Failure::Policy(ResilienceError::Rejected { .. }) => config.retry_on.rejected,
            Failure::Policy(ResilienceError::RateLimited { .. }) => config.retry_on.rate_limited,
            // An open circuit, or any refusal added later: stop at once.
            Failure::Policy(_) => false,
        };
        if !retryable || call.retries >= config.max_retries {
            return Err(call.failed(failure));
        }
        let cut_by_deadline =
            shortened && matches!(failure, Failure::Policy(ResilienceError::Timeout { .. }));
        let hint = match &failure {
            Failure::Body(e) => hooks.retry_after.and_then(|f| f(e)),
            // Sooner than the limiter's next turn, the attempt is refused again.
            Failure::Policy(ResilienceError::RateLimited { retry_after, .. }) => Some(*retry_after),
            Failure::Policy(_) => None,
        };
        let delay = config.delay(call.retries + 1, hint);
        if cut_by_deadline || deadline.is_some_and(|d| Instant::now() + delay >= d) {
            bump(&retry.stats.deadline_exhausted);
            return Err(call.failed(failure));
        }
        if !retry.budget.try_withdraw(first_attempts(dep, retry)) {
            bump(&retry.stats.budget_exhausted);
            return Err(call.failed(failure));
        }
        clock::sleep(delay).await;
        call.retries += 1;
        bump(&retry.stats.retries);
        let timeout;
        (timeout, shortened) = attempt_timeout(p.config.call_timeout, deadline);
        failure = match attempt(timeout, Outcome::Success, call.retries + 1).await {
            Ok(Ok(value)) => {
                call.succeeded();
                return Ok(value);
            }
            Ok(Err(error)) => Failure::Body(error),
            Err(refused) => Failure::Policy(refused),
        };
    }
}

/// An attempt's timeout: the call timeout, or the time left before the
/// deadline when that is shorter (then `true`: the deadline cut it).
#[inline]
fn attempt_timeout(call: Option<Duration>, deadline: Option<Instant>) -> (Option<Duration>, bool) {
    let Some(deadline) = deadline else {
        return (call, false);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    match call {
        Some(timeout) if timeout <= left => (Some(timeout), false),
        _ => (Some(left), true),
    }
}

/// The dependency's first attempts so far: every attempt counted, less the
/// retries. The budget needs nothing else, so first attempts cost it nothing.
fn first_attempts(dep: &Dependency, retry: &Retry) -> u64 {
    dep.stats
        .read()
        .total()
        .saturating_sub(crate::retry::get(&retry.stats.retries))
}

/// One logical call of an idempotent site. It lands in exactly one of the
/// four retry counters; a call dropped mid-attempt or mid-backoff counts as
/// failed. (A success on the first attempt is counted by the attempt itself.)
struct LogicalCall<'a> {
    stats: &'a RetryStats,
    retries: u32,
    done: bool,
}

impl LogicalCall<'_> {
    #[inline]
    fn succeeded(&mut self) {
        self.done = true;
        if self.retries > 0 {
            bump(&self.stats.successful_with_retry);
        }
    }

    fn failed<E: From<ResilienceError>>(&mut self, failure: Failure<E>) -> E {
        self.record_failure();
        failure.into_error()
    }

    fn record_failure(&mut self) {
        self.done = true;
        bump(if self.retries > 0 {
            &self.stats.failed_with_retry
        } else {
            &self.stats.failed_without_retry
        });
    }
}

impl Drop for LogicalCall<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.record_failure();
        }
    }
}

/// Runs a site's `async` fallback once its call has failed for good, and
/// counts it. The fallback runs under no policy of this dependency. In
/// strict mode without a runtime it does not run: the caller gets
/// `NotInitialised`, not an answer that hides it.
#[doc(hidden)]
pub async fn fallback<Fut, T, E>(site: &'static CallSite, fallback: Fut) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: CarriesResilienceError,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(defaults::refusal(site).into());
    };
    let mut run = FallbackRun::start(dep.fallback.as_ref());
    let result = fallback.await;
    run.finish(result.is_ok());
    result
}

/// Runs a blocking function's fallback on tokio's blocking pool, never on
/// an async worker thread, and counts it.
#[doc(hidden)]
pub async fn fallback_blocking<F, T, E>(site: &'static CallSite, fallback: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: CarriesResilienceError + Send + 'static,
{
    let Some(dep) = runtime::dependency(site) else {
        return Err(defaults::refusal(site).into());
    };
    let mut run = FallbackRun::start(dep.fallback.as_ref());
    let result = match tokio::task::spawn_blocking(fallback).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
        Err(_) => panic!(
            "the fallback of {}/{} was dropped: the runtime is shutting down",
            site.dependency, site.operation
        ),
    };
    run.finish(result.is_ok());
    result
}

/// One fallback run: `invoked` at the start, then `successful` or `failed`
/// (a panic is a failure; a fallback dropped by its caller is neither).
struct FallbackRun<'a> {
    stats: Option<&'a FallbackStats>,
    done: bool,
}

impl<'a> FallbackRun<'a> {
    fn start(stats: Option<&'a FallbackStats>) -> Self {
        if let Some(s) = stats {
            bump(&s.invoked);
        }
        FallbackRun { stats, done: false }
    }

    fn finish(&mut self, ok: bool) {
        self.done = true;
        if let Some(s) = self.stats {
            bump(if ok { &s.successful } else { &s.failed });
        }
    }
}

impl Drop for FallbackRun<'_> {
    fn drop(&mut self) {
        if !self.done && std::thread::panicking() {
            self.finish(false);
        }
    }
}
