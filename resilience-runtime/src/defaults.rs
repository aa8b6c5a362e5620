//! A call that finds no runtime in force: no scope, and nothing initialised.
//! It runs on the built-in defaults, and says so once; in strict mode it
//! fails instead.

use crate::site::CallSite;
use crate::ResilienceError;
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicBool, Ordering};

static STRICT: AtomicBool = AtomicBool::new(false);
static STRICT_FROM_ENV: Lazy<bool> = Lazy::new(|| {
    std::env::var("RESILIENCE_STRICT").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
});
/// Whether a call has run on the defaults (and the warning was given).
static USED: AtomicBool = AtomicBool::new(false);

/// Makes every annotated call that finds no runtime in force (nothing
/// initialised, no [`Runtime::scope`](crate::Runtime::scope)) fail with
/// [`ResilienceError::NotInitialised`] instead of running on the built-in
/// defaults. Call it at start-up, or set `RESILIENCE_STRICT=1`. It cannot be
/// turned off again.
///
/// ```
/// use resilience_runtime::{database_call, ResilienceError};
///
/// #[database_call(dependency = "ledger")]
/// async fn balance() -> Result<u64, ResilienceError> {
///     Ok(7)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// resilience_runtime::enable_strict_mode();
/// let err = balance().await.unwrap_err();
/// assert!(err.is_not_initialised(), "{err}");
/// # });
/// ```
pub fn enable_strict_mode() {
    STRICT.store(true, Ordering::Relaxed);
}

/// Whether calls without a runtime fail: [`enable_strict_mode`] was called or
/// `RESILIENCE_STRICT` is `1`, `true`, `yes` or `on`.
pub fn is_strict_mode() -> bool {
    STRICT.load(Ordering::Relaxed) || *STRICT_FROM_ENV
}

/// `site` found no runtime in force: whether it may run on the defaults
/// (if not, [`refusal`] says why).
#[cold]
pub(crate) fn admit(site: &'static CallSite) -> bool {
    if is_strict_mode() {
        return false;
    }
    if !USED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            call_site = %site.location(),
            dependency = site.dependency,
            operation = site.operation,
            "{}/{} at {} runs on the built-in defaults: no resilience runtime is initialised and \
             the call is not inside Runtime::scope. Call resilience_runtime::init_from_file at \
             start-up; set RESILIENCE_STRICT=1 to make such calls fail. (Said once; later calls \
             on the defaults are not reported.)",
            site.dependency,
            site.operation,
            site.location(),
        );
    }
    true
}

/// The error of a call that [`admit`] refused.
#[cold]
pub(crate) fn refusal(site: &'static CallSite) -> ResilienceError {
    ResilienceError::NotInitialised {
        dependency: site.dependency,
        operation: site.operation,
    }
}

/// Initialisation comes after calls that ran on the defaults: their counts
/// stay there, and the new runtime starts from zero.
pub(crate) fn warn_if_used_before_init() {
    if USED.load(Ordering::Relaxed) {
        tracing::warn!(
            "the resilience runtime is initialised after calls already ran on the built-in \
             defaults: those calls are not in its counters or breakers. Initialise before the \
             first annotated call"
        );
    }
}
