//! A hyper HTTP client wrapped in `ResilienceLayer` (feature `tower`).
//!
//! ```sh
//! cargo run -p resilience-runtime --features tower --example tower_client
//! ```
//!
//! The client is a `tower::Service`, so it takes the `partner_api`
//! dependency's policies as a layer: the same breaker, bulkhead, timeout
//! and counters an annotated function naming `partner_api` would use. The
//! example starts a small "partner" server that turns slow after two
//! requests, and shows the timeouts, then the open breaker, as boxed
//! `ResilienceError`s. Retries are not part of the layer: tower's `Retry`
//! goes outside it, so each attempt passes the breaker and is counted; the
//! policy here retries a timed-out GET once, after 50 ms, and never a call
//! the breaker or the bulkhead refused.

use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use resilience_runtime::tower::ResilienceLayer;
use resilience_runtime::ResilienceError;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

const CONFIG: &str = "
resilience:
  external_dependencies:
    partner_api:
      type: external_api
      max_concurrent: 10
      timeout_seconds: 0.2
      circuit_breaker_failure_threshold: 2
      circuit_breaker_timeout: 30
";

#[tokio::main]
async fn main() -> Result<(), resilience_runtime::tower::BoxError> {
    resilience_runtime::init_from_yaml_str(CONFIG)?;
    let partner_requests = Arc::new(AtomicU32::new(0));
    let partner = start_partner(partner_requests.clone()).await?;

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut api = ServiceBuilder::new()
        .retry(RetryTimedOutGet { left: 1 })
        .layer(ResilienceLayer::new("partner_api", "get_quote"))
        .service(client);

    for attempt in 1..=5 {
        let request =
            hyper::Request::get(format!("http://{partner}/quote")).body(Empty::<Bytes>::new())?;
        match api.ready().await?.call(request).await {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                println!(
                    "call {attempt}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
            }
            Err(e) => match e.downcast_ref::<ResilienceError>() {
                Some(refused) => println!("call {attempt}: {refused}"),
                None => println!("call {attempt}: the client failed: {e}"),
            },
        }
    }
    println!(
        "the partner saw {} requests",
        partner_requests.load(Ordering::SeqCst)
    );
    let api = &resilience_runtime::health_snapshot().dependencies["partner_api"];
    println!(
        "partner_api ({:?}): {} successful, {} timed out, {} short-circuited; breaker {}",
        api.operations,
        api.bulkhead.successful_requests,
        api.bulkhead.timed_out_requests,
        api.bulkhead.short_circuited_requests,
        api.circuit_breaker
            .as_ref()
            .map_or("none".into(), |b| b.state.to_string())
    );
    Ok(())
}

/// A partner that answers at once twice, then takes a second per request.
async fn start_partner(served: Arc<AtomicU32>) -> std::io::Result<std::net::SocketAddr> {
    let app = Router::new().route(
        "/quote",
        get(move || {
            let served = served.clone();
            async move {
                if served.fetch_add(1, Ordering::SeqCst) >= 2 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                "42.00 EUR"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Retries a GET that timed out, `left` times per call, after 50 ms. A
/// refusal (open breaker, full bulkhead) is not retried: waiting is the
/// point of it.
#[derive(Clone)]
struct RetryTimedOutGet {
    left: u32,
}

impl<Res> tower::retry::Policy<hyper::Request<Empty<Bytes>>, Res, BoxError> for RetryTimedOutGet {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut hyper::Request<Empty<Bytes>>,
        result: &mut Result<Res, BoxError>,
    ) -> Option<Self::Future> {
        let timed_out = result
            .as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<ResilienceError>())
            .is_some_and(ResilienceError::is_timeout);
        (timed_out && request.method() == hyper::Method::GET && self.left > 0).then(|| {
            self.left -= 1;
            tokio::time::sleep(Duration::from_millis(50))
        })
    }

    fn clone_request(
        &mut self,
        request: &hyper::Request<Empty<Bytes>>,
    ) -> Option<hyper::Request<Empty<Bytes>>> {
        let mut copy = hyper::Request::new(Empty::new());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}
