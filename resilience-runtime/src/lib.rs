//! Bulkheads, timeouts, circuit breakers, retries and fallbacks for async
//! Rust, configured in YAML and applied with one attribute per function.
//!
//! ```
//! use resilience_runtime::{database_call, ResilienceError};
//!
//! #[derive(Debug)]
//! enum StoreError {
//!     Resilience(ResilienceError),
//!     NotFound,
//! }
//! impl From<ResilienceError> for StoreError {
//!     fn from(e: ResilienceError) -> Self {
//!         StoreError::Resilience(e)
//!     }
//! }
//!
//! /// Loads a pet's name.
//! #[database_call(dependency = "petstore_database", operation = "get_pet")]
//! async fn get_pet(id: u64) -> Result<String, StoreError> {
//!     if id == 1 { Ok("Rex".into()) } else { Err(StoreError::NotFound) }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let rt = resilience_runtime::Runtime::from_yaml_str(
//!     "resilience:
//!        external_dependencies:
//!          petstore_database: { type: database, max_concurrent: 10, timeout_seconds: 10.0 }",
//! )
//! .unwrap();
//! rt.scope(async {
//!     assert_eq!(get_pet(1).await.unwrap(), "Rex");
//!     assert!(matches!(get_pet(2).await, Err(StoreError::NotFound)));
//!     let snapshot = resilience_runtime::health_snapshot();
//!     let db = &snapshot.dependencies["petstore_database"];
//!     assert_eq!(db.bulkhead.successful_requests, 1);
//!     assert_eq!(db.bulkhead.failed_requests, 1);
//!     assert_eq!(db.operations, ["get_pet"]);
//! })
//! .await;
//! # });
//! ```
//!
//! The policies apply in this order: circuit breaker, bulkhead, then the call
//! timeout around the function body. Sites marked `idempotent` are retried
//! around all three, as their dependency's `max_retry_attempts` allows; a
//! site's `fallback` runs once the call has failed for good:
//!
//! ```
//! use resilience_runtime::{database_call, ResilienceError};
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! #[derive(Debug, PartialEq)]
//! enum StoreError {
//!     Resilience(ResilienceError),
//!     Unavailable,
//! }
//! impl From<ResilienceError> for StoreError {
//!     fn from(e: ResilienceError) -> Self {
//!         StoreError::Resilience(e)
//!     }
//! }
//!
//! fn is_transient(e: &StoreError) -> bool {
//!     *e == StoreError::Unavailable
//! }
//!
//! /// Fails while `failures` lasts.
//! #[database_call(dependency = "db", idempotent, retry_if = is_transient, fallback = cached)]
//! async fn load(failures: &AtomicU32, id: u64) -> Result<String, StoreError> {
//!     if failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
//!         return Err(StoreError::Unavailable);
//!     }
//!     Ok(format!("pet {id}"))
//! }
//!
//! /// The same arguments, then the error.
//! async fn cached(_: &AtomicU32, id: u64, _: StoreError) -> Result<String, StoreError> {
//!     Ok(format!("pet {id} (cached)"))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let rt = resilience_runtime::Runtime::from_yaml_str(
//!     "resilience:
//!        external_dependencies:
//!          db: { type: database, max_retry_attempts: 2, retry_initial_delay_seconds: 0 }",
//! )
//! .unwrap();
//! rt.scope(async {
//!     // Two failures, then a success on the third attempt.
//!     assert_eq!(load(&AtomicU32::new(2), 1).await.unwrap(), "pet 1");
//!     // Three failures use up the attempts: the fallback answers.
//!     assert_eq!(load(&AtomicU32::new(3), 2).await.unwrap(), "pet 2 (cached)");
//!     let db = &resilience_runtime::health_snapshot().dependencies["db"];
//!     let retry = db.retry.as_ref().unwrap();
//!     assert_eq!((retry.successful_with_retry, retry.failed_with_retry, retry.retries), (1, 1, 4));
//!     assert_eq!(db.bulkhead.total_requests, 2 + 4, "attempts: two calls and four retries");
//!     assert_eq!(db.fallback.as_ref().unwrap().successful, 1);
//! })
//! .await;
//! # });
//! ```
//!
//! See the README for the configuration reference and the behaviour in full.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod breaker_control;
mod bulkhead;
mod call;
mod chaos;
mod circuit_breaker;
mod clock;
mod config;
mod defaults;
mod dependency;
mod error;
mod events;
mod fallback;
mod kind;
mod live;
#[cfg(all(test, loom))]
mod loom_models;
#[cfg(feature = "metrics")]
mod metrics;
mod paused;
mod rate_limiter;
mod reload;
mod retry;
mod runtime;
mod site;
mod snapshot;
mod stats;
mod sync;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod timeout;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use breaker_control::BreakerControl;
pub use bulkhead::BulkheadConfig;
pub use chaos::ChaosConfig;
pub use circuit_breaker::BreakerState;
pub use circuit_breaker::{BreakerConfig, FailureRateConfig, SlowCallConfig};
pub use config::{CallSiteProblem, CallSiteReason, ConfigError, DependencyConfig};
pub use defaults::{enable_strict_mode, is_strict_mode};
pub use error::ResilienceError;
pub use events::ResilienceEvent;
pub use kind::Kind;
/// Protects a call to a database (kind `database`).
///
/// ```
/// use resilience_runtime::{database_call, ResilienceError};
///
/// #[derive(Debug)]
/// struct AppError(String);
/// impl From<ResilienceError> for AppError {
///     fn from(e: ResilienceError) -> Self {
///         AppError(e.to_string())
///     }
/// }
///
/// #[database_call(dependency = "petstore_database", operation = "get_pet")]
/// async fn get_pet(id: u64) -> Result<String, AppError> {
///     Ok(format!("pet {id}"))
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let rt = resilience_runtime::Runtime::from_yaml_str(
///     "resilience:\n  external_dependencies:\n    petstore_database: { type: database }\n",
/// )
/// .unwrap();
/// let answer = rt.scope(get_pet(7)).await.unwrap();
/// # let _ = answer;
/// # });
/// ```
#[doc = include_str!("../docs/attributes.md")]
#[doc(inline)]
pub use resilience_macros::database_call;

/// Protects a call to a remote API (kind `external_api`). A plain `fn` runs
/// on a worker thread, and its callers `.await` it:
///
/// ```
/// use resilience_runtime::{api_call, ResilienceError};
///
/// #[derive(Debug)]
/// struct AppError(String);
/// impl From<ResilienceError> for AppError {
///     fn from(e: ResilienceError) -> Self {
///         AppError(e.to_string())
///     }
/// }
///
/// #[api_call(dependency = "payment_gateway", idempotent)]
/// fn charge(cents: u64) -> Result<u64, AppError> {
///     Ok(cents)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let rt = resilience_runtime::Runtime::from_yaml_str(
///     "resilience:\n  external_dependencies:\n    payment_gateway: { type: external_api }\n",
/// )
/// .unwrap();
/// let answer = rt.scope(charge(1250)).await.unwrap();
/// # let _ = answer;
/// # });
/// ```
#[doc = include_str!("../docs/attributes.md")]
#[doc(inline)]
pub use resilience_macros::api_call;

/// Protects a call to a cache (kind `cache`).
///
/// ```
/// use resilience_runtime::{cache_call, ResilienceError};
///
/// #[derive(Debug)]
/// struct AppError(String);
/// impl From<ResilienceError> for AppError {
///     fn from(e: ResilienceError) -> Self {
///         AppError(e.to_string())
///     }
/// }
///
/// #[cache_call(dependency = "redis_cache")]
/// async fn cached(key: &str) -> Result<Option<String>, AppError> {
///     Ok(key.strip_prefix("pet:").map(str::to_owned))
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let rt = resilience_runtime::Runtime::from_yaml_str(
///     "resilience:\n  external_dependencies:\n    redis_cache: { type: cache }\n",
/// )
/// .unwrap();
/// let answer = rt.scope(cached("pet:7")).await.unwrap();
/// # let _ = answer;
/// # });
/// ```
#[doc = include_str!("../docs/attributes.md")]
#[doc(inline)]
pub use resilience_macros::cache_call;

/// Protects a call to a message broker (kind `message_queue`).
///
/// ```
/// use resilience_runtime::{message_queue_call, ResilienceError};
///
/// #[derive(Debug)]
/// struct AppError(String);
/// impl From<ResilienceError> for AppError {
///     fn from(e: ResilienceError) -> Self {
///         AppError(e.to_string())
///     }
/// }
///
/// #[message_queue_call(dependency = "kafka_events", operation = "publish")]
/// async fn publish(event: String) -> Result<usize, AppError> {
///     Ok(event.len())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let rt = resilience_runtime::Runtime::from_yaml_str(
///     "resilience:\n  external_dependencies:\n    kafka_events: { type: message_queue }\n",
/// )
/// .unwrap();
/// let answer = rt.scope(publish("order.created".into())).await.unwrap();
/// # let _ = answer;
/// # });
/// ```
#[doc = include_str!("../docs/attributes.md")]
#[doc(inline)]
pub use resilience_macros::message_queue_call;

/// Protects a file-system operation (kind `file_system`). A blocking `fn`'s
/// arguments move to a worker thread, so they are owned:
///
/// ```
/// use resilience_runtime::{file_system_call, ResilienceError};
///
/// #[derive(Debug)]
/// struct AppError(String);
/// impl From<ResilienceError> for AppError {
///     fn from(e: ResilienceError) -> Self {
///         AppError(e.to_string())
///     }
/// }
///
/// #[file_system_call(dependency = "uploads")]
/// fn file_len(path: std::path::PathBuf) -> Result<u64, AppError> {
///     Ok(path.as_os_str().len() as u64)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let rt = resilience_runtime::Runtime::from_yaml_str(
///     "resilience:\n  external_dependencies:\n    uploads: { type: file_system }\n",
/// )
/// .unwrap();
/// let answer = rt.scope(file_len("pets.csv".into())).await.unwrap();
/// # let _ = answer;
/// # });
/// ```
#[doc = include_str!("../docs/attributes.md")]
#[doc(inline)]
pub use resilience_macros::file_system_call;

pub use rate_limiter::{RateLimitConfig, RateLimitScope};
pub use reload::{KeyChange, ReloadReport};
/// Protects a call of any kind, named with `kind = "..."`: one of `database`,
/// `external_api`, `cache`, `message_queue`, `file_system`, `cpu_intensive`,
/// `memory_intensive`.
///
/// ```
/// use resilience_runtime::{resilient, ResilienceError};
///
/// #[derive(Debug)]
/// struct AppError(String);
/// impl From<ResilienceError> for AppError {
///     fn from(e: ResilienceError) -> Self {
///         AppError(e.to_string())
///     }
/// }
///
/// #[resilient(kind = "cpu_intensive", dependency = "thumbnails")]
/// fn thumbnail(pixels: Vec<u8>) -> Result<usize, AppError> {
///     Ok(pixels.len() / 4)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let rt = resilience_runtime::Runtime::from_yaml_str(
///     "resilience:\n  external_dependencies:\n    thumbnails: { type: cpu_intensive }\n",
/// )
/// .unwrap();
/// let answer = rt.scope(thumbnail(vec![0; 64])).await.unwrap();
/// # let _ = answer;
/// # });
/// ```
#[doc = include_str!("../docs/attributes.md")]
#[doc(inline)]
pub use resilience_macros::resilient;
pub use retry::{Backoff, Jitter, RetryConfig, RetryOn};
pub use runtime::Runtime;
pub use snapshot::{
    BreakerHealth, BulkheadHealth, BulkheadType, ChaosHealth, ConfigSource, DependencyHealth,
    DependencyStatus, FallbackHealth, HealthSnapshot, LatencyHealth, OverallStatus,
    RateLimitBackend, RateLimitScopeName, RateLimiterHealth, RetryHealth,
};

use std::path::Path;

/// Loads the YAML file at `path` and makes it the global runtime.
///
/// Fails on any configuration error, when an annotated call site does not
/// fit the configuration, and when the global runtime is already initialised
/// (it is never replaced). Call it once at start-up, before the first
/// annotated call:
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     resilience_runtime::init_from_file("config/enhanced_config.yaml")?;
///     // ... serve; every annotated call now uses this configuration.
///     Ok(())
/// }
/// ```
pub fn init_from_file(path: impl AsRef<Path>) -> Result<&'static Runtime, ConfigError> {
    runtime::install(|| Runtime::from_file(path))
}

/// Like [`init_from_file`], from YAML text.
pub fn init_from_yaml_str(yaml: &str) -> Result<&'static Runtime, ConfigError> {
    runtime::install(|| Runtime::from_yaml_str(yaml))
}

/// Like [`init_from_file`], from layered files: see [`Runtime::from_files`].
pub fn init_from_files<P: AsRef<Path>>(paths: &[P]) -> Result<&'static Runtime, ConfigError> {
    runtime::install(|| Runtime::from_files(paths))
}

/// Like [`init_from_file`], from layers of YAML text: see
/// [`Runtime::from_yaml_layers`].
pub fn init_from_yaml_layers(layers: &[&str]) -> Result<&'static Runtime, ConfigError> {
    runtime::install(|| Runtime::from_yaml_layers(layers))
}

/// The `Content-Type` of [`render_prometheus`]'s text: the Prometheus text
/// format, version 0.0.4.
#[cfg(feature = "metrics")]
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus exposition of the runtime in force (as
/// [`health_snapshot`] picks it); see [`Runtime::render_prometheus`].
#[cfg(feature = "metrics")]
pub fn render_prometheus() -> String {
    Runtime::with_current(Runtime::render_prometheus)
}

/// Reloads the global runtime from the file at `path`, keeping its live
/// state; see [`Runtime::reload_from_yaml_str`] for what changes and what
/// stays. An error, including [`ConfigError::NotInitialised`] before
/// [`init_from_file`], changes nothing.
pub fn reload_from_file(path: impl AsRef<Path>) -> Result<ReloadReport, ConfigError> {
    runtime::installed()?.reload_from_file(path)
}

/// Like [`reload_from_file`], from YAML text.
pub fn reload_from_yaml_str(yaml: &str) -> Result<ReloadReport, ConfigError> {
    runtime::installed()?.reload_from_yaml_str(yaml)
}

/// Spawns `future` on tokio in the runtime in force here (the scoped one,
/// else the global one, else the defaults), so the task's annotated calls
/// count where the caller's do. See [`Runtime::spawn`].
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::spawn` does.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    Runtime::current().spawn(future)
}

/// The health of the runtime in force: the scoped one inside
/// [`Runtime::scope`], else the global one, else the built-in defaults.
/// Its fields are described in [`snapshot_reference`].
///
/// ```
/// use resilience_runtime::{database_call, ResilienceError, Runtime};
///
/// #[database_call(dependency = "db")]
/// async fn ping() -> Result<(), ResilienceError> {
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let rt = Runtime::from_yaml_str("resilience:\n  external_dependencies:\n    db: { type: database }\n").unwrap();
/// rt.scope(async {
///     ping().await.unwrap();
///     let snapshot = resilience_runtime::health_snapshot();
///     let json = serde_json::to_value(&snapshot).unwrap();
///     assert_eq!(json["status"], "pass");
///     assert_eq!(json["dependencies"]["db"]["bulkhead"]["successful_requests"], 1);
/// })
/// .await;
/// # });
/// ```
pub fn health_snapshot() -> HealthSnapshot {
    runtime::current_snapshot()
}

/// The configuration reference: every key, its levels, defaults and
/// precedence, and the bounds on every value.
#[doc = include_str!("../docs/configuration.md")]
pub mod config_reference {}

/// The health snapshot reference: every field and how the status is judged.
#[doc = include_str!("../docs/snapshot.md")]
pub mod snapshot_reference {}

/// What the attribute macros expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::call::recovery::{
        call_blocking_retrying, call_first, call_on_pool_retrying, call_retrying, fallback,
        fallback_blocking, hooks, FirstFailure, Hooks, ResultParts,
    };
    pub use crate::call::{
        call, call_blocking, call_on_pool, record_if, AllErrors, Record, RecordIf,
    };
    pub use crate::site::{CallSite, Flavor, SiteRef};
    pub use crate::Kind;
    pub use inventory;

    /// The local rate limiter's decision alone, so that the benchmarks can
    /// set it beside governor's `check()` decision for decision. Not an
    /// API: it may change with any release.
    pub struct GcraForBench(crate::rate_limiter::Gcra);

    impl GcraForBench {
        /// A limiter of `rate_per_second` with a burst of `burst`.
        pub fn new(rate_per_second: f64, burst: u32) -> Self {
            let interval = ((1e9 / rate_per_second).ceil() as u64).max(1);
            GcraForBench(crate::rate_limiter::Gcra::new(interval, burst))
        }

        /// Takes a turn now if one is due.
        #[inline]
        pub fn check(&self) -> bool {
            self.0.take_due(crate::clock::fast_now())
        }
    }

    /// One reading of the policy clock, the precise reading a rate limiter
    /// takes per call, so that the benchmarks can say what it costs. Not an
    /// API: it may change with any release.
    #[inline]
    pub fn policy_clock_for_bench() -> u64 {
        crate::clock::fast_now()
    }

    /// Implemented by every type a blocking function's argument may have.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot move to a worker thread",
        label = "this argument moves to a worker thread, so it must be `Send + 'static`",
        note = "pass an owned, thread-safe value (e.g. `Arc<T>` instead of `Rc<T>`), or keep the call in the caller's task: an `async fn` without `on_pool`"
    )]
    pub trait BlockingArgument {}
    impl<T: Send + 'static> BlockingArgument for T {}

    /// Implemented by every error type an annotated function may return.
    /// `do_not_recommend` makes a missing `From` report this trait's
    /// message, once, instead of listing every `From` impl of the type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot carry a `ResilienceError`",
        label = "the error type of this return type needs `impl From<ResilienceError>`",
        note = "add `impl From<resilience_runtime::ResilienceError> for YourError`, so a rejection, timeout or open circuit can reach the caller; a foreign type such as `std::io::Error` cannot take one: return an error type of your own that wraps it"
    )]
    pub trait CarriesResilienceError: From<crate::ResilienceError> {}
    #[diagnostic::do_not_recommend]
    impl<E: From<crate::ResilienceError>> CarriesResilienceError for E {}

    /// Checks, at the return type, that it is a `Result` (or an alias of
    /// one). Whether its error type fits is the entry points' bound, which the
    /// expansion places at the return type too: one error, not one per entry.
    pub fn assert_result<R: ResultParts>() {}

    /// Checks, at the argument's span, that it can move to a worker thread.
    pub fn assert_blocking_argument<T: BlockingArgument>(_: &T) {}

    /// Implemented by every type a retried or fallback site's argument may
    /// have: each attempt and the fallback get their own copy.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is used again by a retry or a fallback, so it must be `Clone`",
        label = "each attempt and the fallback need their own copy of this argument",
        note = "derive or implement `Clone`, pass a shared reference (`&T`) or an `Arc<T>`, or drop `idempotent` and `fallback` from the attribute"
    )]
    pub trait Reuse: Sized {
        /// A copy for one attempt or the fallback.
        fn reuse(&self) -> Self;
    }
    impl<T: Clone> Reuse for T {
        #[inline(always)]
        fn reuse(&self) -> Self {
            self.clone()
        }
    }
}
