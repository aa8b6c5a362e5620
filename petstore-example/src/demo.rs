//! The seed's five scenarios, run against the real code paths on embedded
//! defaults: a fresh SQLite file, the in-process cache, the outbox, the
//! in-process gateway and the recommender. Every number printed is read from
//! the runtime's snapshot or measured here.

use crate::db;
use crate::error::DepError;
use crate::gateway::{Fault, GatewayRules, GatewayStats};
use crate::service::{PaymentRequest, Petstore};
use crate::{advisor, cache, config_with, App, Settings};
use resilience_runtime::{BreakerState, HealthSnapshot, ResilienceError, Runtime};
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
    pub health: HealthSnapshot,
    pub health_path: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Basic {
    pub pet: db::Pet,
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
    pub declined: Vec<BreakerStep>,
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

/// Runs the five scenarios. `say` receives the human-readable lines.
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

    // 1. Basic operations.
    say("\n1. Basic operations".into());
    let pet = store.get_pet(1).await.map_err(|e| e.to_string())?;
    say(format!(
        "   get_pet(1): {} the {} ({}), {:.2}",
        pet.name,
        pet.breed,
        pet.species,
        pet.price_cents as f64 / 100.0
    ));
    let mut sources = Vec::new();
    for _ in 0..2 {
        let c = store.browse_pets().await.map_err(|e| e.to_string())?;
        say(format!(
            "   browse_pets: {} pets from the {}",
            c.pets.len(),
            c.source
        ));
        sources.push(c.source);
    }
    let order = store
        .create_order_with_resilience(
            "customer_123",
            1,
            PaymentRequest {
                amount: Some(299.99),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    say(format!(
        "   order {}: payment {} of {:.2} captured; events: {} pending in the outbox",
        order.order.id,
        order.payment.payment_id,
        order.payment.amount_cents as f64 / 100.0,
        order.events.pending
    ));
    let view = store
        .get_pet_with_cache_and_recommendations(4, Some("customer_123"))
        .await
        .map_err(|e| e.to_string())?;
    let recs: Vec<String> = view
        .recommendations
        .iter()
        .map(|r| format!("{} ({:.3})", r.name, r.score))
        .collect();
    say(format!(
        "   recommendations for customer_123 viewing {}: {}",
        view.pet.name,
        recs.join(", ")
    ));
    let basic = Basic {
        pet,
        catalogue_sources: sources,
        order_id: order.order.id.clone(),
        payment_id: order.payment.payment_id.clone(),
        amount_cents: order.payment.amount_cents,
        recommendations: view.recommendations,
    };

    // 2. Bulkhead isolation.
    say("\n2. Bulkhead isolation: 15 concurrent database reads against a limit of 10".into());
    store.db.inject_latency(Duration::from_millis(300));
    let calls = (0..15).map(|i| {
        let db = store.db.clone();
        async move { db::get_pet(&db, 1 + i % 12).await }
    });
    let results = join_all(calls).await;
    store.db.inject_latency(Duration::ZERO);
    let admitted_succeeded = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    let rejected = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(DepError::Resilience(ResilienceError::Rejected { .. }))
            )
        })
        .count();
    let admitted = results.len() - rejected;
    let db_health = rt.health_snapshot().dependencies["petstore_database"].clone();
    let db_breaker = db_health.circuit_breaker.clone().expect("database breaker");
    say(format!("   admitted: {admitted}, of which succeeded: {admitted_succeeded}; rejected at once: {rejected}"));
    say(format!(
        "   success rate of admitted calls: {:.1} %",
        100.0 * admitted_succeeded as f64 / admitted.max(1) as f64
    ));
    say(format!(
        "   database breaker: {} ({}/{} failures): rejections are not failures",
        state_name(db_breaker.state),
        db_breaker.failure_count,
        db_breaker.failure_threshold
    ));
    let bulkhead = BulkheadScenario {
        concurrent_calls: results.len(),
        limit: db_health.bulkhead.max_concurrent.unwrap_or_default(),
        admitted,
        admitted_succeeded,
        rejected,
        breaker_state: db_breaker.state,
        breaker_failures: db_breaker.failure_count,
    };

    // 3. Circuit breaker.
    say("\n3. Circuit breaker: payments of 15000.00 exceed the gateway's limit".into());
    let mut declined = Vec::new();
    for _ in 0..3 {
        declined.push(pay(store, rt, 15000.0, say).await);
    }
    let gateway_before = gateway.stats();
    let short_circuited = pay(store, rt, 100.0, say).await;
    let gateway_after = gateway.stats();
    say(format!(
        "   gateway requests: {} before the 100.00 payment, {} after",
        gateway_before.requests, gateway_after.requests
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_wait = breaker_step(rt, 0.0, String::new());
    say(format!(
        "   after 2 s: breaker {}",
        state_name(after_wait.state)
    ));
    let probe = pay(store, rt, 100.0, say).await;
    let circuit_breaker = BreakerScenario {
        declined,
        short_circuited,
        gateway_before,
        gateway_after_short_circuit: gateway_after,
        probe,
    };

    // 4. Timeouts and isolation.
    say("\n4. Timeouts and isolation".into());
    store.db.inject_latency(Duration::from_secs(3));
    let start = Instant::now();
    let slow_db = db::get_pet(&store.db, 1).await;
    let slow_db_ms = ms(start.elapsed());
    store.db.inject_latency(Duration::ZERO);
    let slow_db_error = error_text(slow_db);
    say(format!(
        "   a 3 s database query returned after {slow_db_ms} ms: {slow_db_error}"
    ));

    store.advisor.set_slowness(Duration::from_secs(3));
    let catalogue = store.browse_pets().await.map_err(|e| e.to_string())?.pets;
    // Recommendations for a visitor with no history, viewing pet `i`.
    let viewing = |i: usize| {
        let (advisor, pets) = (store.advisor.clone(), catalogue.clone());
        let focus = Some(catalogue[i].clone());
        advisor::recommend(advisor, pets, Vec::new(), focus, 3)
    };
    let start = Instant::now();
    let slow_ml = viewing(0).await;
    let slow_ml_ms = ms(start.elapsed());
    let slow_ml_error = error_text(slow_ml);
    say(format!(
        "   a 3 s recommendation returned after {slow_ml_ms} ms: {slow_ml_error}"
    ));

    // The timed-out job still runs on its worker and keeps its slot: five
    // more jobs, each just inside the timeout, fill the pool of six.
    store.advisor.set_slowness(Duration::from_millis(900));
    let busy: Vec<_> = (0..5).map(|_| viewing(1)).collect();
    let busy = tokio::spawn(rt.scope(join_all(busy)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seventh = viewing(2).await;
    let pool_saturated_rejection = error_text(seventh);
    say(format!(
        "   with the timed-out job and 5 slow ones on the 6 advisor workers, a 7th request: {pool_saturated_rejection}"
    ));
    let (mut db_times, mut cache_times) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let start = Instant::now();
        db::get_pet(&store.db, 1 + i % 12)
            .await
            .map_err(|e| e.to_string())?;
        db_times.push(start.elapsed());
        let start = Instant::now();
        let _ = cache::get(&store.cache, "catalogue").await;
        cache_times.push(start.elapsed());
    }
    let latency = |t: &[Duration]| Latency {
        calls: t.len(),
        mean: ms(t.iter().sum::<Duration>() / t.len() as u32),
        max: ms(*t.iter().max().expect("measured")),
    };
    let (db_latency_ms, cache_latency_ms) = (latency(&db_times), latency(&cache_times));
    say(format!(
        "   meanwhile, 20 database reads: mean {} ms, max {} ms; 20 cache reads: mean {} ms, max {} ms",
        db_latency_ms.mean, db_latency_ms.max, cache_latency_ms.mean, cache_latency_ms.max
    ));
    let busy = busy.await.map_err(|e| e.to_string())?;
    say(format!(
        "   the 5 slow jobs: {} succeeded",
        busy.iter().filter(|r| r.is_ok()).count()
    ));
    store.advisor.set_slowness(Duration::ZERO);
    // Let the timed-out job finish, so the snapshot shows settled numbers.
    for _ in 0..100 {
        if rt.health_snapshot().dependencies["ml_pet_advisor"]
            .bulkhead
            .current_load
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.set_fault(Fault::None, Duration::ZERO);
    let timeouts = TimeoutScenario {
        slow_db_ms,
        slow_db_error,
        slow_ml_ms,
        slow_ml_error,
        pool_saturated_rejection,
        db_latency_ms,
        cache_latency_ms,
    };

    // 5. Final health snapshot.
    let health = rt.health_snapshot();
    let overall = serde_json::to_value(health.status).expect("serialises");
    say(format!(
        "\n5. Final health snapshot: overall {}",
        overall.as_str().unwrap_or_default()
    ));
    for line in table(&health) {
        say(format!("   {line}"));
    }
    let json = serde_json::to_string_pretty(&health).expect("snapshot serialises");
    if let Some(dir) = health_out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&health_out, json)
        .map_err(|e| format!("cannot write {}: {e}", health_out.display()))?;
    say(format!(
        "   the snapshot JSON is in {}",
        health_out.display()
    ));

    Ok(DemoReport {
        basic,
        bulkhead,
        circuit_breaker,
        timeouts,
        health,
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
    match s {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
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
