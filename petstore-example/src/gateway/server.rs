//! The simulated gateway: an axum server on loopback with the seed's rules,
//! idempotency keys and fault switches.

use super::GatewayClient;
use crate::rng::SplitMix;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The largest amount the gateway accepts, in cents.
pub const LIMIT_CENTS: i64 = 1_000_000;

/// How the simulated gateway behaves.
#[derive(Clone, Debug)]
pub struct GatewayRules {
    /// Latency range per request.
    pub latency: (Duration, Duration),
    /// Share of requests that fail at random, in [0, 1].
    pub failure_rate: f64,
    /// Seed of the latency and failure draws.
    pub seed: u64,
}

impl Default for GatewayRules {
    fn default() -> Self {
        GatewayRules {
            latency: (Duration::from_millis(2), Duration::from_millis(10)),
            failure_rate: 0.0,
            seed: 42,
        }
    }
}

/// A fault switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Normal behaviour.
    None,
    /// Never answer.
    Hang,
    /// Answer after `slow_ms`.
    Slow,
    /// Answer 500.
    Fail,
    /// Answer 500 to charges only; voids work (a partial outage).
    FailCharges,
}

#[derive(Clone, Debug, PartialEq)]
enum Charge {
    Captured {
        payment_id: String,
        amount_cents: i64,
    },
    Refunded {
        payment_id: String,
    },
    Voided,
}

struct Sim {
    rules: GatewayRules,
    rng: Mutex<SplitMix>,
    fault: Mutex<(Fault, u64)>,
    charges: Mutex<HashMap<String, Charge>>,
    requests: AtomicU64,
    captured: AtomicU64,
    refunded: AtomicU64,
}

/// A running gateway: its address and its counters.
#[derive(Clone)]
pub struct Gateway {
    addr: SocketAddr,
    sim: Arc<Sim>,
}

/// What the gateway has seen.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct GatewayStats {
    /// Charge requests that reached it.
    pub requests: u64,
    /// Charges captured (each idempotency key at most once).
    pub captured: u64,
    /// Captured charges refunded by a void.
    pub refunded: u64,
}

impl Gateway {
    /// Serves the gateway on `127.0.0.1:port` (0: any free port).
    pub async fn start(rules: GatewayRules, port: u16) -> std::io::Result<Gateway> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let sim = Arc::new(Sim {
            rng: Mutex::new(SplitMix::new(rules.seed)),
            rules,
            fault: Mutex::new((Fault::None, 0)),
            charges: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            captured: AtomicU64::new(0),
            refunded: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/charges", post(charge_handler))
            .route("/charges/{key}", get(status_handler))
            .route("/charges/{key}/void", post(void_handler))
            .route("/stats", get(stats_handler))
            .route("/faults", post(fault_handler))
            .with_state(Arc::clone(&sim));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Gateway { addr, sim })
    }

    /// The client for this gateway.
    pub fn client(&self) -> GatewayClient {
        GatewayClient::new(self.addr)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Flips a fault switch.
    pub fn set_fault(&self, fault: Fault, slow: Duration) {
        *self.sim.fault.lock().unwrap() = (fault, slow.as_millis() as u64);
    }

    /// Its counters.
    pub fn stats(&self) -> GatewayStats {
        GatewayStats {
            requests: self.sim.requests.load(Ordering::SeqCst),
            captured: self.sim.captured.load(Ordering::SeqCst),
            refunded: self.sim.refunded.load(Ordering::SeqCst),
        }
    }
}

#[derive(Deserialize)]
struct ChargeRequest {
    idempotency_key: String,
    amount_cents: i64,
}

type Reply = (StatusCode, Json<Value>);

/// Applies the fault switch to a request (a charge when `charge`): `Some`
/// is the reply to send.
async fn fault(sim: &Sim, charge: bool) -> Option<Reply> {
    let (fault, slow_ms) = *sim.fault.lock().unwrap();
    match fault {
        Fault::Hang => std::future::pending::<()>().await,
        Fault::Slow => tokio::time::sleep(Duration::from_millis(slow_ms)).await,
        Fault::FailCharges if !charge => {}
        Fault::Fail | Fault::FailCharges => {
            let body = Json(json!({"error": "gateway fault injected"}));
            return Some((StatusCode::INTERNAL_SERVER_ERROR, body));
        }
        Fault::None => {}
    }
    None
}

async fn charge_handler(State(sim): State<Arc<Sim>>, Json(req): Json<ChargeRequest>) -> Reply {
    sim.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(reply) = fault(&sim, true).await {
        return reply;
    }
    let (latency, unlucky) = {
        let mut rng = sim.rng.lock().unwrap();
        let (lo, hi) = sim.rules.latency;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        let latency = lo + Duration::from_micros(if span == 0 { 0 } else { rng.next_u64() % span });
        (latency, rng.unit() < sim.rules.failure_rate)
    };
    tokio::time::sleep(latency).await;
    if req.amount_cents <= 0 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "amount must be positive"})),
        );
    }
    if req.amount_cents > LIMIT_CENTS {
        return (
            StatusCode::PAYMENT_REQUIRED,
            Json(json!({"error": "Payment amount exceeds limit"})),
        );
    }
    let mut charges = sim.charges.lock().unwrap();
    match charges.get(&req.idempotency_key) {
        Some(Charge::Captured {
            payment_id,
            amount_cents,
        }) => {
            return (
                StatusCode::OK,
                Json(
                    json!({"payment_id": payment_id, "amount_cents": amount_cents, "replayed": true}),
                ),
            )
        }
        Some(Charge::Refunded { .. } | Charge::Voided) => {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "this payment was voided"})),
            )
        }
        None => {}
    }
    if unlucky {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "gateway temporarily unavailable"})),
        );
    }
    let payment_id = format!("pay-{}", sim.captured.fetch_add(1, Ordering::SeqCst) + 1);
    charges.insert(
        req.idempotency_key,
        Charge::Captured {
            payment_id: payment_id.clone(),
            amount_cents: req.amount_cents,
        },
    );
    (
        StatusCode::OK,
        Json(
            json!({"payment_id": payment_id, "amount_cents": req.amount_cents, "replayed": false}),
        ),
    )
}

/// Refunds a captured charge, or voids a key not yet charged so that a late
/// charge with it is refused.
async fn void_handler(State(sim): State<Arc<Sim>>, Path(key): Path<String>) -> Reply {
    if let Some(reply) = fault(&sim, false).await {
        return reply;
    }
    let mut charges = sim.charges.lock().unwrap();
    let next = match charges.remove(&key) {
        Some(Charge::Captured { payment_id, .. }) => {
            sim.refunded.fetch_add(1, Ordering::SeqCst);
            Charge::Refunded { payment_id }
        }
        Some(Charge::Refunded { payment_id }) => Charge::Refunded { payment_id },
        Some(Charge::Voided) | None => Charge::Voided,
    };
    let status = if matches!(next, Charge::Refunded { .. }) {
        "refunded"
    } else {
        "voided"
    };
    charges.insert(key, next);
    (StatusCode::OK, Json(json!({"status": status})))
}

/// What the gateway knows of the charge under `key`.
async fn status_handler(State(sim): State<Arc<Sim>>, Path(key): Path<String>) -> Reply {
    if let Some(reply) = fault(&sim, false).await {
        return reply;
    }
    let charges = sim.charges.lock().unwrap();
    match charges.get(&key) {
        Some(Charge::Captured {
            payment_id,
            amount_cents,
        }) => (
            StatusCode::OK,
            Json(
                json!({"status": "captured", "payment_id": payment_id, "amount_cents": amount_cents}),
            ),
        ),
        Some(Charge::Refunded { payment_id }) => (
            StatusCode::OK,
            Json(json!({"status": "refunded", "payment_id": payment_id})),
        ),
        Some(Charge::Voided) => (StatusCode::OK, Json(json!({"status": "voided"}))),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no charge with this key"})),
        ),
    }
}

async fn stats_handler(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({
        "requests": sim.requests.load(Ordering::SeqCst),
        "captured": sim.captured.load(Ordering::SeqCst),
        "refunded": sim.refunded.load(Ordering::SeqCst),
    }))
}

#[derive(Deserialize)]
struct FaultRequest {
    mode: Fault,
    #[serde(default)]
    slow_ms: u64,
}

async fn fault_handler(State(sim): State<Arc<Sim>>, Json(req): Json<FaultRequest>) -> Reply {
    *sim.fault.lock().unwrap() = (req.mode, req.slow_ms);
    (
        StatusCode::OK,
        Json(json!({"mode": req.mode, "slow_ms": req.slow_ms})),
    )
}
