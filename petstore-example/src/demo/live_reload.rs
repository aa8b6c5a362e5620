//! Scenario 8, live reload: the database's bulkhead is halved while calls
//! are in flight; the calls finish, the next burst meets the new limit, and
//! the breakers and counters carry over.

use super::scenarios::{quiesce, slow_reads, Burst};
use super::*;

/// What the reload scenario saw.
#[derive(Debug, Serialize)]
pub struct ReloadScenario {
    /// The reload's own report, as the log line an operator reads.
    pub report: String,
    pub config_version: u64,
    pub limit_before: u32,
    pub limit_after: u32,
    /// Reads in flight when the reload happened, and how many of them then
    /// succeeded (none is cut).
    pub in_flight_at_reload: u32,
    pub in_flight_succeeded: usize,
    /// The burst right after: how many reads were admitted and rejected.
    pub burst: usize,
    pub burst_admitted: usize,
    pub burst_rejected: usize,
    /// The database's total calls before the reload and after the burst:
    /// the counters went on, they did not start again.
    pub total_before: u64,
    pub total_after: u64,
    /// The payment gateway's breaker, before and after: its state and
    /// failure count carry over.
    pub gateway_breaker_before: (BreakerState, u32),
    pub gateway_breaker_after: (BreakerState, u32),
}

/// The demo's configuration with the database's bulkhead at `limit`.
fn with_database_limit(limit: u32) -> Result<String, String> {
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&demo_config()).map_err(|e| e.to_string())?;
    doc["resilience"]["external_dependencies"]["petstore_database"]["max_concurrent"] =
        limit.into();
    serde_yaml::to_string(&doc).map_err(|e| e.to_string())
}

pub(super) async fn live_reload(
    store: &Petstore,
    rt: &Runtime,
    gateway: &Gateway,
    say: &mut impl FnMut(String),
) -> Result<ReloadScenario, String> {
    let limit_before = database(rt).bulkhead.max_concurrent.unwrap_or_default();
    let limit_after = limit_before / 2;
    say(format!(
        "\n8. Live reload: petstore_database's max_concurrent {limit_before} → {limit_after} while reads are in flight"
    ));
    quiesce(store, rt).await?;
    // One failed charge, so the gateway's breaker has something to remember.
    gateway.set_fault(Fault::Fail, Duration::ZERO);
    for attempt in 0..5 {
        let charge =
            crate::gateway::charge(store.gateway.clone(), format!("demo-reload-{attempt}"), 100);
        match charge.await {
            // The burst of scenario 7 may still hold the rate limiter.
            Err(DepError::Resilience(e)) if e.is_rate_limited() => {
                tokio::time::sleep(e.retry_after().unwrap_or(Duration::from_millis(20))).await
            }
            _ => break,
        }
    }
    gateway.set_fault(Fault::None, Duration::ZERO);
    let total_before = database(rt).bulkhead.total_requests;
    let gateway_breaker_before = gateway_breaker(rt);

    // Slow reads fill more slots than the new limit allows.
    let in_flight_at_reload = limit_before - 2;
    store.db.inject_latency(Duration::from_millis(300));
    let flowing: Vec<_> = (0..in_flight_at_reload)
        .map(|i| {
            let db = store.db.clone();
            rt.spawn(async move { db::get_pet(&db, 1 + i64::from(i) % 12).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while database(rt).bulkhead.current_load < in_flight_at_reload && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = rt
        .reload_from_yaml_str(&with_database_limit(limit_after)?)
        .map_err(|e| e.to_string())?;
    say(format!("   reloaded: {report}"));
    let mut in_flight_succeeded = 0;
    for call in flowing {
        if matches!(call.await, Ok(Ok(Some(_)))) {
            in_flight_succeeded += 1;
        }
    }
    say(format!(
        "   the {in_flight_at_reload} reads in flight kept their slots and finished: {in_flight_succeeded} succeeded"
    ));

    let burst: usize = 15;
    let Burst {
        admitted: burst_admitted,
        rejected: burst_rejected,
        ..
    } = slow_reads(store, burst).await;
    say(format!(
        "   the next burst of {burst}: {burst_admitted} admitted, {burst_rejected} rejected: the new limit"
    ));
    let after = rt.health_snapshot();
    let total_after = after.dependencies["petstore_database"]
        .bulkhead
        .total_requests;
    let gateway_breaker_after = gateway_breaker(rt);
    say(format!(
        "   carried over: database calls counted {total_before} → {total_after}; payment_gateway breaker {} with failure count {} → {} with failure count {}; config version {}",
        state_name(gateway_breaker_before.0),
        gateway_breaker_before.1,
        state_name(gateway_breaker_after.0),
        gateway_breaker_after.1,
        after.config_version
    ));
    Ok(ReloadScenario {
        report: report.to_string(),
        config_version: after.config_version,
        limit_before,
        limit_after,
        in_flight_at_reload,
        in_flight_succeeded,
        burst,
        burst_admitted,
        burst_rejected,
        total_before,
        total_after,
        gateway_breaker_before,
        gateway_breaker_after,
    })
}

fn database(rt: &Runtime) -> resilience_runtime::DependencyHealth {
    rt.health_snapshot().dependencies["petstore_database"].clone()
}

fn gateway_breaker(rt: &Runtime) -> (BreakerState, u32) {
    let b = rt.health_snapshot().dependencies["payment_gateway"]
        .circuit_breaker
        .clone()
        .expect("the gateway has a breaker");
    (b.state, b.failure_count)
}
