//! The seed's five scenarios, a sixth for recovery and a seventh for rate limits, run against the real code paths on embedded
//! defaults: a fresh SQLite file, the in-process cache, the outbox, the
//! in-process gateway and the recommender. Every number printed is read from
//! the runtime's snapshot or measured here.

mod live_reload;
mod scenarios;

pub use live_reload::ReloadScenario;

use crate::db;
use crate::error::DepError;
use crate::events::EventsStatus;
use crate::gateway::{Fault, Gateway, GatewayRules, GatewayStats};
use crate::service::{PaymentRequest, Petstore};
use crate::{advisor, cache, config_with, App, Settings};
use resilience_runtime::{BreakerState, HealthSnapshot, ResilienceError, RetryHealth, Runtime};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Changes to `config/enhanced_config.yaml` that let the demo finish in about
/// 15 s: (dependency, key, value, why).
pub const DEMO_OVERRIDES: [(&str, &str, f64, &str); 4] = [
    (
        "petstore_database",
        "timeout_seconds",
        1.0,
        "cut the slow query at 1 s instead of 10 s",
    ),
    (
        "petstore_database",
        "max_wait_seconds",
        0.0,
        "shed the 5 extra calls at once instead of queueing them for 15 s",
    ),
    (
        "payment_gateway",
        "circuit_breaker_timeout",
        2.0,
        "probe after 2 s instead of 30 s",
    ),
    (
        "ml_pet_advisor",
        "timeout_seconds",
        1.0,
        "cut the slow model at 1 s instead of 30 s",
    ),
];

/// The configuration the demo runs: the embedded file with [`DEMO_OVERRIDES`].
pub fn demo_config() -> String {
    let overrides: Vec<(&str, &str, f64)> = DEMO_OVERRIDES
        .iter()
        .map(|(d, k, v, _)| (*d, *k, *v))
        .collect();
    config_with(&overrides)
}

/// Everything the demo measured.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub basic: Basic,
    pub bulkhead: BulkheadScenario,
    pub circuit_breaker: BreakerScenario,
    pub timeouts: TimeoutScenario,
    /// The event relay once the orders' events are delivered.
    pub events: EventsStatus,
    pub health: HealthSnapshot,
    pub recovery: RecoveryScenario,
    pub rate_limit: RateLimitScenario,
    pub reload: ReloadScenario,
    pub health_path: PathBuf,
}

/// A burst of charges against the payment gateway's rate limit.
#[derive(Debug, Serialize)]
pub struct RateLimitScenario {
    pub attempted: u64,
    /// Successful charges, from the snapshot.
    pub admitted: u64,
    /// Refused by the rate limiter, from the snapshot.
    pub rate_limited: u64,
    /// Charge requests the gateway received.
    pub gateway_requests: u64,
    pub elapsed_ms: f64,
    /// The `Retry-After` the first refusal carried, in ms.
    pub first_retry_after_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Basic {
    pub pet: crate::model::Pet,
    pub catalogue_sources: Vec<&'static str>,
    pub order_id: String,
    pub payment_id: String,
    pub amount_cents: i64,
    pub recommendations: Vec<advisor::Recommendation>,
}

#[derive(Debug, Serialize)]
pub struct BulkheadScenario {
    pub concurrent_calls: usize,
    pub limit: u32,
    pub admitted: usize,
    pub admitted_succeeded: usize,
    pub rejected: usize,
    pub breaker_state: BreakerState,
    pub breaker_failures: u32,
}

#[derive(Debug, Serialize)]
pub struct BreakerStep {
    pub amount: f64,
    pub outcome: String,
    pub state: BreakerState,
    pub failure_count: u32,
    pub failure_threshold: u32,
}

#[derive(Debug, Serialize)]
pub struct BreakerScenario {
    /// Payments over the gateway's limit: declined, and the breaker stays closed.
    pub declined: Vec<BreakerStep>,
    /// Payments while the gateway fails, until the breaker opens.
    pub failing: Vec<BreakerStep>,
    pub short_circuited: BreakerStep,
    pub gateway_before: GatewayStats,
    pub gateway_after_short_circuit: GatewayStats,
    pub probe: BreakerStep,
}

#[derive(Debug, Serialize)]
pub struct TimeoutScenario {
    pub slow_db_ms: f64,
    pub slow_db_error: String,
    pub slow_ml_ms: f64,
    pub slow_ml_error: String,
    pub pool_saturated_rejection: String,
    pub db_latency_ms: Latency,
    pub cache_latency_ms: Latency,
}

#[derive(Debug, Serialize)]
pub struct RecoveryScenario {
    pub retried_read: RetriedRead,
    /// What the order whose charge failed returned.
    pub payment_outcome: String,
    /// Charge requests the gateway saw for that order.
    pub charge_requests: u64,
}

/// A read that failed twice and recovered; the counts are the snapshot's
/// changes across the call.
#[derive(Debug, Serialize)]
pub struct RetriedRead {
    pub pet: String,
    pub elapsed_ms: f64,
    pub failed_attempts: u64,
    pub retries: u64,
    pub successful_with_retry: u64,
    pub max_attempts: u32,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub calls: usize,
    pub mean: f64,
    pub max: f64,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1000.0
}

fn breaker_step(rt: &Runtime, amount: f64, outcome: String) -> BreakerStep {
    let b = rt.health_snapshot().dependencies["payment_gateway"]
        .circuit_breaker
        .clone()
        .expect("payment_gateway has a breaker");
    BreakerStep {
        amount,
        outcome,
        state: b.state,
        failure_count: b.failure_count,
        failure_threshold: b.failure_threshold,
    }
}

/// Orders pet 3 for alice, paying `amount`, and reports the payment breaker.
async fn pay(
    store: &Petstore,
    rt: &Runtime,
    amount: f64,
    say: &mut impl FnMut(String),
) -> BreakerStep {
    let payment = PaymentRequest {
        amount: Some(amount),
    };
    let outcome = match store
        .create_order_with_resilience("alice", 3, payment)
        .await
    {
        Ok(_) => "paid".to_owned(),
        Err(e) => e.to_string(),
    };
    let step = breaker_step(rt, amount, outcome);
    say(format!(
        "   payment {amount:.2}: {} -> breaker {} ({}/{})",
        step.outcome,
        state_name(step.state),
        step.failure_count,
        step.failure_threshold
    ));
    step
}

/// Runs the seven scenarios. `say` receives the human-readable lines.
pub async fn run(
    seed: u64,
    health_out: PathBuf,
    mut say: impl FnMut(String),
) -> Result<DemoReport, String> {
    let rt = Runtime::from_yaml_str(&demo_config()).map_err(|e| e.to_string())?;
    let db_path = std::env::temp_dir().join(format!("petstore-demo-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db_path);
    let settings = Settings {
        database_url: Some(format!("sqlite://{}?mode=rwc", db_path.display())),
        gateway_rules: GatewayRules {
            seed,
            ..GatewayRules::default()
        },
        ..Settings::default()
    };
    let report = rt
        .scope(scenarios(&rt, settings, health_out, &mut say))
        .await;
    let _ = std::fs::remove_file(&db_path);
    report
}

async fn scenarios(
    rt: &Runtime,
    settings: Settings,
    health_out: PathBuf,
    say: &mut impl FnMut(String),
) -> Result<DemoReport, String> {
    let app = App::start(settings).await?;
    let store = &app.store;
    let gateway = app.gateway.as_ref().expect("the demo runs its own gateway");
    say("Configuration: config/enhanced_config.yaml (embedded), with these demo timings:".into());
    for (dep, key, value, why) in DEMO_OVERRIDES {
        say(format!("  {dep}.{key} = {value} ({why})"));
    }
    let basic = scenarios::basic(store, say).await?;
    let bulkhead = scenarios::bulkhead(store, rt, say).await?;
    let circuit_breaker = scenarios::circuit_breaker(store, rt, gateway, say).await;
    let timeouts = scenarios::timeouts(store, rt, gateway, say).await?;
    let events = scenarios::quiesce(store, rt).await?;
    let health = scenarios::final_health(rt, &events, &health_out, say)?;
    let recovery = scenarios::recovery(store, rt, gateway, say).await?;
    let rate_limit = scenarios::rate_limit(store, rt, gateway, say).await?;
    let reload = live_reload::live_reload(store, rt, gateway, say).await?;
    Ok(DemoReport {
        basic,
        bulkhead,
        circuit_breaker,
        timeouts,
        events,
        health,
        recovery,
        rate_limit,
        reload,
        health_path: health_out,
    })
}

/// The error's text, or "completed" when there was none.
fn error_text<T, E: std::fmt::Display>(result: Result<T, E>) -> String {
    result
        .err()
        .map_or_else(|| "completed".to_owned(), |e| e.to_string())
}

fn state_name(s: BreakerState) -> &'static str {
    s.as_str()
}

/// One row per dependency.
pub fn table(health: &HealthSnapshot) -> Vec<String> {
    let mut rows = vec![format!(
        "{:<18} {:<14} {:<15} {:>7} {:>6} {:>5} {:>6} {:>7} {:>8} {:>8} {:>9} {:>8}",
        "dependency",
        "status",
        "breaker",
        "load",
        "total",
        "ok",
        "failed",
        "timeout",
        "rejected",
        "short-c.",
        "cancelled",
        "success"
    )];
    for (name, d) in &health.dependencies {
        let b = &d.bulkhead;
        let capacity = b.max_concurrent.or(b.max_workers).unwrap_or_default();
        let breaker = d.circuit_breaker.as_ref().map_or("none".to_owned(), |c| {
            format!(
                "{} {}/{}",
                state_name(c.state),
                c.failure_count,
                c.failure_threshold
            )
        });
        let status = serde_json::to_value(d.status).expect("serialises");
        let [ok, failed, timed_out, rejected, short_circuited, cancelled] = b.outcomes();
        rows.push(format!(
            "{:<18} {:<14} {:<15} {:>7} {:>6} {:>5} {:>6} {:>7} {:>8} {:>8} {:>9} {:>8}",
            name,
            status.as_str().unwrap_or_default(),
            breaker,
            format!("{}/{}", b.current_load, capacity),
            b.total_requests,
            ok,
            failed,
            timed_out,
            rejected,
            short_circuited,
            cancelled,
            b.success_rate
                .map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0)),
        ));
    }
    rows
}

/// Polls the futures together on this task.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in set.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}
