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
//! requests, and shows the timeout, then the open breaker, as boxed
//! `ResilienceError`s. Retries are not part of the layer: put tower's
//! `Retry` outside it when the requests can be cloned.

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
use tower::{Service, ServiceBuilder, ServiceExt};

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
    let partner = start_partner().await?;

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut api = ServiceBuilder::new()
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
async fn start_partner() -> std::io::Result<std::net::SocketAddr> {
    let served = Arc::new(AtomicU32::new(0));
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
