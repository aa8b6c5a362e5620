//! The gateway's read side, `GET /charges/{key}`, as a tower service stack:
//! hyper's async client behind `ResilienceLayer` for the `payment_lookup`
//! dependency (its own bulkhead, timeout, breaker and counters, in the same
//! snapshot as everything else).
//!
//! Why a second client next to the blocking one: money moves through the
//! annotated blocking client on `payment_gateway`'s own thread pool, where a
//! charge is never retried and a void is retried by its idempotent site. A
//! lookup is a read that many requests make at once; a pooled async client
//! serves it without a thread per call, and a `tower::Service` is how Rust
//! services usually hold such a client. The layer refuses thread-pool
//! dependencies, so the lookup has its own, semaphore-bound one.

use crate::error::DepError;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use resilience_runtime::tower::{BoxError, ResilienceLayer, ResilienceService};
use resilience_runtime::ResilienceError;
use std::net::SocketAddr;
use tower::util::MapResult;
use tower::{Service, ServiceBuilder};

type Answer = Result<hyper::Response<Incoming>, BoxError>;
type Stack = ResilienceService<
    MapResult<
        Client<HttpConnector, Empty<Bytes>>,
        fn(Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error>) -> Answer,
    >,
>;

/// What the gateway knows of a charge.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    Captured,
    Refunded,
    Voided,
    /// The gateway has no charge under that key.
    None,
}

/// The lookup service: cheap to clone (the client's pool is shared).
#[derive(Clone)]
pub struct PaymentLookup {
    addr: SocketAddr,
    service: Stack,
}

impl std::fmt::Debug for PaymentLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentLookup")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A gateway error answer is the dependency's failure: inside the layer,
/// so the breaker sees it. A 404 is an answer ("no such charge").
fn server_errors_fail(
    answer: Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error>,
) -> Answer {
    let response = answer?;
    if response.status().is_server_error() {
        return Err(format!("payment gateway answered {} to a lookup", response.status()).into());
    }
    Ok(response)
}

impl PaymentLookup {
    /// A lookup against the gateway at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let map: fn(_) -> Answer = server_errors_fail;
        let service = ServiceBuilder::new()
            .layer(ResilienceLayer::new("payment_lookup", "get_charge"))
            .map_result(map)
            .service(client);
        PaymentLookup { addr, service }
    }

    /// The status of the charge made under `key`.
    pub async fn status(&self, key: &str) -> Result<ChargeStatus, DepError> {
        let uri = format!("http://{}/charges/{}", self.addr, encode(key));
        let request = hyper::Request::get(uri)
            .body(Empty::<Bytes>::new())
            .map_err(|e| DepError::Failed(format!("a bad lookup request: {e}")))?;
        // `call` gives the layer's boxed `Send` future. Awaiting tower's
        // generic `Oneshot` instead made this future fail to prove `Send`
        // ("implementation of `From` is not general enough"), a known
        // limit of rustc with higher-ranked bounds in async code.
        let mut service = self.service.clone();
        let response = async {
            std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
            service.call(request).await
        }
        .await
        .map_err(|e: BoxError| match e.downcast::<ResilienceError>() {
            Ok(refused) => DepError::Resilience(*refused),
            Err(other) => DepError::Failed(format!("payment lookup failed: {other}")),
        })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| DepError::Failed(format!("payment lookup cut short: {e}")))?
            .to_bytes();
        if status == hyper::StatusCode::NOT_FOUND {
            return Ok(ChargeStatus::None);
        }
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match json["status"].as_str() {
            Some("captured") => Ok(ChargeStatus::Captured),
            Some("refunded") => Ok(ChargeStatus::Refunded),
            Some("voided") => Ok(ChargeStatus::Voided),
            _ => Err(DepError::Failed(format!(
                "payment gateway answered {status} to a lookup, without a status"
            ))),
        }
    }
}

/// `key` as one path segment: an order id is plain, but nothing relies on it.
fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
