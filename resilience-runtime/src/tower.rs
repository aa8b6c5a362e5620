//! A tower [`Layer`] over the same policies as the attributes (feature
//! `tower`): for services held as a `tower::Service` (a hyper or reqwest
//! client stack, a tonic channel) rather than written as an `async fn`.
//!
//! ```
//! use resilience_runtime::tower::ResilienceLayer;
//! use resilience_runtime::{ResilienceError, Runtime};
//! use tower::{Layer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let rt = Runtime::from_yaml_str(
//!     "resilience:\n  external_dependencies:\n    partner_api: { type: external_api }\n",
//! )
//! .unwrap();
//! let client = tower::service_fn(|order: u32| async move {
//!     Ok::<_, std::io::Error>(format!("order {order} accepted"))
//! });
//! let mut svc = ResilienceLayer::new("partner_api", "submit_order").layer(client);
//! let reply = rt.scope(svc.call(7)).await.unwrap();
//! assert_eq!(reply, "order 7 accepted");
//! let h = rt.health_snapshot();
//! assert_eq!(h.dependencies["partner_api"].bulkhead.successful_requests, 1);
//! assert_eq!(h.dependencies["partner_api"].operations, ["submit_order"]);
//!
//! // A refusal is a boxed `ResilienceError`, as tower's own errors are.
//! rt.circuit_breaker("partner_api").unwrap().force_open();
//! let err = rt.scope(svc.call(8)).await.unwrap_err();
//! assert!(err.downcast_ref::<ResilienceError>().unwrap().is_circuit_open());
//! # }
//! ```
//!
//! The wrapped service goes through the dependency of that name in the
//! runtime in force where the call's future runs (the scope's, else the
//! global one):
//! the same breaker, rate limiter, bulkhead, timeout and counters as
//! annotated functions naming it, and the operation shows in the snapshot's
//! `operations`. A service error that is returned counts as a failure.
//!
//! `poll_ready` is the inner service's; the policies decide in `call`, as
//! tower's `LoadShed` does, so a refusal is an error from the call's future
//! and the inner service's future, made by `call`, is dropped unpolled.
//!
//! Not applied here: retries and fallbacks (a tower request is not
//! guaranteed to be cloneable; use tower's `Retry` outside this layer), and
//! thread-pool dependencies, which are refused with [`LayerError`], as
//! `async fn` sites are. Each call through the layer allocates its boxed
//! future, as most tower middleware with an async body does.

use crate::call::{attempt, AllErrors};
use crate::dependency::Dependency;
use crate::site::{CallSite, Flavor};
use crate::stats::Outcome;
use crate::{Kind, Runtime};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
pub use tower::BoxError;
use tower::{Layer, Service};

/// Puts a service behind one dependency's policies; see the [module
/// docs](self).
#[derive(Clone, Debug)]
pub struct ResilienceLayer {
    site: &'static CallSite,
}

impl ResilienceLayer {
    /// A layer for calls to `dependency`, reported as `operation`.
    ///
    /// Each layer made is kept for the life of the process (a few dozen
    /// bytes): make layers once, at start-up, as tower stacks are.
    #[track_caller]
    pub fn new(dependency: &'static str, operation: &'static str) -> Self {
        let at = std::panic::Location::caller();
        let site = CallSite::new(
            Kind::ExternalApi,
            dependency,
            operation,
            at.file(),
            at.line(),
            Flavor::Async,
            false,
            false,
        );
        ResilienceLayer {
            site: Box::leak(Box::new(site)),
        }
    }
}

impl<S> Layer<S> for ResilienceLayer {
    type Service = ResilienceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResilienceService {
            inner,
            site: self.site,
            noted: Arc::new(AtomicUsize::new(0)),
            first: Arc::new(OnceLock::new()),
        }
    }
}

/// A service behind a dependency's policies, made by [`ResilienceLayer`].
#[derive(Clone)]
pub struct ResilienceService<S> {
    inner: S,
    site: &'static CallSite,
    /// The dependency this service's operation was last added to, so that
    /// it is added once per dependency, not once per call.
    noted: Arc<AtomicUsize>,
    /// The first runtime this service ran in, and its dependency: later
    /// calls in that runtime skip the lookup by name. The runtime is held, so
    /// its address cannot be reused by another.
    first: Arc<OnceLock<(Runtime, Arc<Dependency>)>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ResilienceService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilienceService")
            .field("dependency", &self.site.dependency)
            .field("operation", &self.site.operation)
            .field("inner", &self.inner)
            .finish()
    }
}

/// Why a layered call could not be made at all.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerError {
    /// The runtime in force has no dependency of this name.
    UnknownDependency {
        /// The name the layer was given.
        dependency: &'static str,
        /// Where the layer was made.
        layer_at: String,
    },
    /// The dependency has a thread-pool bulkhead, which runs blocking
    /// functions on its own threads; a tower service's future may borrow
    /// from its caller and cannot be sent there.
    ThreadPool {
        /// The dependency's name.
        dependency: &'static str,
        /// Where the layer was made.
        layer_at: String,
    },
}

impl std::fmt::Display for LayerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerError::UnknownDependency {
                dependency,
                layer_at,
            } => write!(
                f,
                "the ResilienceLayer made at {layer_at} names dependency `{dependency}`, which the \
                 resilience runtime in force does not configure: add it under \
                 resilience.external_dependencies, or run the call in the scope of a runtime \
                 that has it"
            ),
            LayerError::ThreadPool {
                dependency,
                layer_at,
            } => write!(
                f,
                "the ResilienceLayer made at {layer_at} names dependency `{dependency}`, which has \
                 a thread-pool bulkhead; a tower service cannot run on it: give `{dependency}` \
                 bulkhead_type: semaphore, or use another dependency"
            ),
        }
    }
}

impl std::error::Error for LayerError {}

impl<S, Request> Service<Request> for ResilienceService<S>
where
    S: Service<Request>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let site = self.site;
        let noted = self.noted.clone();
        let first = self.first.clone();
        let body = self.inner.call(request);
        // The runtime in force is the one where the future runs (a scope
        // wraps the future, not the `call`).
        Box::pin(async move {
            let dep = lookup(site, &noted, &first)?;
            let p = dep.policies();
            let timeout = p.config.call_timeout;
            match attempt(&dep, p, site, body, timeout, Outcome::Success, AllErrors, 1).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(error)) => Err(error.into()),
                Err(refused) => Err(Box::new(refused) as BoxError),
            }
        })
    }
}

/// The dependency `site` names in the runtime in force, its operation
/// added to the snapshot's list the first time.
fn lookup(
    site: &'static CallSite,
    noted: &AtomicUsize,
    first: &OnceLock<(Runtime, Arc<Dependency>)>,
) -> Result<Arc<Dependency>, BoxError> {
    let cached = Runtime::with_current(|rt| {
        first
            .get()
            .filter(|(seen, _)| seen.same(rt))
            .map(|(_, dep)| dep.clone())
    });
    if let Some(dep) = cached {
        return Ok(dep);
    }
    let layer_at = || format!("{}:{}", site.file, site.line);
    let runtime = Runtime::current();
    let Some(dep) = runtime.dependency_named(site.dependency) else {
        return Err(Box::new(LayerError::UnknownDependency {
            dependency: site.dependency,
            layer_at: layer_at(),
        }));
    };
    if matches!(dep.bulkhead, crate::bulkhead::Bulkhead::ThreadPool(_)) {
        return Err(Box::new(LayerError::ThreadPool {
            dependency: site.dependency,
            layer_at: layer_at(),
        }));
    }
    let address = Arc::as_ptr(&dep) as usize;
    if noted.swap(address, Ordering::Relaxed) != address {
        dep.note_operation(site.operation);
    }
    let _ = first.set((runtime, dep.clone()));
    Ok(dep)
}
