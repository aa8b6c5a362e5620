//! The tower layer: the same dependency as annotated sites (one breaker, one
//! bulkhead, one set of counters), its refusals as boxed `ResilienceError`s,
//! a missing or thread-pool dependency as a clear error, readiness from the
//! inner service. On the paused clock.

use resilience_runtime::tower::{LayerError, ResilienceLayer};
use resilience_runtime::{database_call, ResilienceError, Runtime};
use resilience_tests::{counters, health, TestError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

const CONFIG: &str = "
resilience:
  external_dependencies:
    ledger:
      type: database
      max_concurrent: 1
      timeout_seconds: 5
      circuit_breaker_failure_threshold: 2
      circuit_breaker_timeout: 30
    pool:
      type: external_api
      bulkhead_type: thread_pool
      max_workers: 1
";

#[database_call(dependency = "ledger")]
async fn annotated_post() -> Result<u32, TestError> {
    Ok(1)
}

#[derive(Debug)]
struct Declined;
impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("declined")
    }
}
impl std::error::Error for Declined {}

/// A service that fails when asked to, counting the calls that ran.
fn ledger(
    runs: Arc<AtomicU32>,
) -> impl Service<bool, Response = u32, Error = Declined, Future: Send + 'static> + Clone {
    tower::service_fn(move |fail: bool| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            if fail {
                Err(Declined)
            } else {
                Ok(2)
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn layered_and_annotated_calls_share_one_dependency() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let mut svc = ServiceBuilder::new()
        .layer(ResilienceLayer::new("ledger", "post_entry"))
        .service(ledger(runs.clone()));
    assert_eq!(
        rt.scope(svc.ready().await.unwrap().call(false))
            .await
            .unwrap(),
        2
    );
    assert_eq!(rt.scope(annotated_post()).await, Ok(1));
    let h = health(&rt, "ledger");
    assert_eq!(h.bulkhead.successful_requests, 2);
    assert_eq!(h.operations, ["annotated_post", "post_entry"]);

    // Two failures, one from each side, open the one breaker.
    let err = rt.scope(svc.call(true)).await.unwrap_err();
    assert!(
        err.downcast_ref::<Declined>().is_some(),
        "the service's own error comes back"
    );
    let err = rt.scope(svc.call(true)).await.unwrap_err();
    assert!(err.downcast_ref::<Declined>().is_some());
    let refused = rt.scope(svc.call(false)).await.unwrap_err();
    let refused = refused
        .downcast_ref::<ResilienceError>()
        .expect("a boxed ResilienceError");
    assert!(refused.is_circuit_open());
    assert!(
        matches!(rt.scope(annotated_post()).await, Err(TestError::Resilience(e)) if e.is_circuit_open())
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3, "the refused call never ran");
    assert_eq!(counters(&rt, "ledger"), [2, 2, 0, 0, 2, 0]);
}

#[tokio::test(start_paused = true)]
async fn the_bulkhead_and_timeout_apply_to_a_layered_service() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let slow = tower::service_fn(|for_: Duration| async move {
        tokio::time::sleep(for_).await;
        Ok::<_, Declined>(())
    });
    let svc = ResilienceLayer::new("ledger", "slow").layer(slow);
    // One slot: a second call while the first runs is rejected.
    let first = rt.spawn(svc.clone().oneshot(Duration::from_secs(60)));
    tokio::task::yield_now().await;
    let second = rt
        .scope(svc.clone().oneshot(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(second
        .downcast_ref::<ResilienceError>()
        .unwrap()
        .is_rejected());
    // The first times out at 5 s.
    let first = first.await.unwrap().unwrap_err();
    assert!(matches!(
        first.downcast_ref::<ResilienceError>(),
        Some(ResilienceError::Timeout {
            dependency: "ledger",
            operation: "slow",
            ..
        })
    ));
    assert_eq!(counters(&rt, "ledger"), [0, 0, 1, 1, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_missing_or_thread_pool_dependency_is_an_error_that_says_what_to_do() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let mut missing = ResilienceLayer::new("nowhere", "x").layer(ledger(runs.clone()));
    let err = rt.scope(missing.call(false)).await.unwrap_err();
    let err = err.downcast_ref::<LayerError>().expect("a LayerError");
    assert!(matches!(
        err,
        LayerError::UnknownDependency {
            dependency: "nowhere",
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("`nowhere`") && text.contains("tower_layer.rs"),
        "{text}"
    );

    let mut pool = ResilienceLayer::new("pool", "x").layer(ledger(runs.clone()));
    let err = rt.scope(pool.call(false)).await.unwrap_err();
    assert!(
        err.to_string().contains("bulkhead_type: semaphore"),
        "{err}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "neither ran");
}

/// A service that is not ready until told.
#[derive(Clone)]
struct Gate(Arc<AtomicU32>);

impl Service<()> for Gate {
    type Response = ();
    type Error = Declined;
    type Future = std::future::Ready<Result<(), Declined>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Declined>> {
        match self.0.load(Ordering::SeqCst) {
            0 => Poll::Pending,
            1 => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(Declined)),
        }
    }

    fn call(&mut self, _: ()) -> Self::Future {
        std::future::ready(Ok(()))
    }
}

#[test]
fn readiness_is_the_inner_services() {
    let state = Arc::new(AtomicU32::new(0));
    let mut svc = ResilienceLayer::new("ledger", "gate").layer(Gate(state.clone()));
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(svc.poll_ready(&mut cx).is_pending());
    state.store(1, Ordering::SeqCst);
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    state.store(2, Ordering::SeqCst);
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Err(e)) => assert!(e.downcast_ref::<Declined>().is_some()),
        _ => panic!("the inner service's error"),
    }
}

#[test]
fn the_layered_future_is_send() {
    fn send<T: Send>(_: &T) {}
    let runs = Arc::new(AtomicU32::new(0));
    let mut svc = ResilienceLayer::new("ledger", "sent").layer(ledger(runs));
    let future = svc.call(false);
    send(&future);
}

#[tokio::test(start_paused = true)]
async fn spawned_in_a_scope_the_layer_uses_that_runtime() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let svc = ResilienceLayer::new("ledger", "spawned").layer(ledger(runs));
    let handle = rt.spawn(svc.oneshot(false));
    assert_eq!(handle.await.unwrap().unwrap(), 2);
    assert_eq!(health(&rt, "ledger").bulkhead.successful_requests, 1);
}

#[tokio::test(start_paused = true)]
async fn one_service_counts_in_whichever_runtime_it_runs_in() {
    let (first, second) = (
        Runtime::from_yaml_str(CONFIG).unwrap(),
        Runtime::from_yaml_str(CONFIG).unwrap(),
    );
    let runs = Arc::new(AtomicU32::new(0));
    let mut svc = ResilienceLayer::new("ledger", "both").layer(ledger(runs));
    for _ in 0..2 {
        assert_eq!(first.scope(svc.call(false)).await.unwrap(), 2);
        assert_eq!(second.scope(svc.call(false)).await.unwrap(), 2);
    }
    assert_eq!(health(&first, "ledger").bulkhead.successful_requests, 2);
    assert_eq!(health(&second, "ledger").bulkhead.successful_requests, 2);
}
