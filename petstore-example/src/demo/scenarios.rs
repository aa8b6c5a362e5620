//! One function per scenario. Each prints its lines through `say` and
//! returns what it measured; every figure is read from the runtime's
//! snapshot or measured here.

use super::*;

/// Scenario 1, basic operations: a pet, the catalogue twice, an order, recommendations.
pub(super) async fn basic(store: &Petstore, say: &mut impl FnMut(String)) -> Result<Basic, String> {
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
        "   order {}: payment {} of {:.2} captured; its event is in the outbox, and the relay delivers it to the {} broker",
        order.order.id,
        order.payment.payment_id,
        order.payment.amount_cents as f64 / 100.0,
        order.events.backend
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
    Ok(Basic {
        pet,
        catalogue_sources: sources,
        order_id: order.order.id.clone(),
        payment_id: order.payment.payment_id.clone(),
        amount_cents: order.payment.amount_cents,
        recommendations: view.recommendations,
    })
}

/// Scenario 2, bulkhead isolation: 15 concurrent reads against a limit of 10.
pub(super) async fn bulkhead(
    store: &Petstore,
    rt: &Runtime,
    say: &mut impl FnMut(String),
) -> Result<BulkheadScenario, String> {
    say("\n2. Bulkhead isolation: 15 concurrent database reads against a limit of 10".into());
    // The order's event is relayed first: the relay's reads share this bulkhead.
    quiesce(store, rt).await?;
    let Burst {
        admitted,
        succeeded: admitted_succeeded,
        rejected,
    } = slow_reads(store, 15).await;
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
    Ok(BulkheadScenario {
        concurrent_calls: 15,
        limit: db_health.bulkhead.max_concurrent.unwrap_or_default(),
        admitted,
        admitted_succeeded,
        rejected,
        breaker_state: db_breaker.state,
        breaker_failures: db_breaker.failure_count,
    })
}

/// What a burst of concurrent reads met.
pub(super) struct Burst {
    pub admitted: usize,
    /// Admitted reads that found their pet.
    pub succeeded: usize,
    pub rejected: usize,
}

/// `n` concurrent database reads, each slowed to 300 ms so they overlap.
pub(super) async fn slow_reads(store: &Petstore, n: usize) -> Burst {
    store.db.inject_latency(Duration::from_millis(300));
    let calls = (0..n).map(|i| {
        let db = store.db.clone();
        async move { db::get_pet(&db, 1 + (i % 12) as i64).await }
    });
    let results = join_all(calls).await;
    store.db.inject_latency(Duration::ZERO);
    let rejected = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(DepError::Resilience(ResilienceError::Rejected { .. }))
            )
        })
        .count();
    Burst {
        admitted: results.len() - rejected,
        succeeded: results.iter().filter(|r| matches!(r, Ok(Some(_)))).count(),
        rejected,
    }
}

/// Scenario 3, the circuit breaker: declined payments open it, a call is
/// short-circuited, a probe closes it.
pub(super) async fn circuit_breaker(
    store: &Petstore,
    rt: &Runtime,
    gateway: &Gateway,
    say: &mut impl FnMut(String),
) -> BreakerScenario {
    say(
        "\n3. Circuit breaker: declines are the customer's problem; gateway failures open it"
            .into(),
    );
    let mut declined = Vec::new();
    for _ in 0..3 {
        declined.push(pay(store, rt, 15000.0, say).await);
    }
    say("   the gateway starts failing (its `fail` fault):".into());
    gateway.set_fault(Fault::Fail, Duration::ZERO);
    let mut failing = Vec::new();
    while failing.len() < 3
        && failing
            .last()
            .is_none_or(|s: &BreakerStep| s.state != BreakerState::Open)
    {
        failing.push(pay(store, rt, 100.0, say).await);
    }
    gateway.set_fault(Fault::None, Duration::ZERO);
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
    BreakerScenario {
        declined,
        failing,
        short_circuited,
        gateway_before,
        gateway_after_short_circuit: gateway_after,
        probe,
    }
}

/// Scenario 4, timeouts and isolation: a slow query and a slow model are cut
/// off, a full pool rejects, and the other dependencies stay fast.
pub(super) async fn timeouts(
    store: &Petstore,
    rt: &Runtime,
    gateway: &Gateway,
    say: &mut impl FnMut(String),
) -> Result<TimeoutScenario, String> {
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
    let slow_ml_error = advice_text(slow_ml);
    say(format!(
        "   a 3 s recommendation returned after {slow_ml_ms} ms with {slow_ml_error}"
    ));

    // The timed-out job still runs on its worker and keeps its slot: five
    // more jobs, each just inside the timeout, fill the pool of six.
    store.advisor.set_slowness(Duration::from_millis(900));
    let busy: Vec<_> = (0..5).map(|_| viewing(1)).collect();
    let busy = tokio::spawn(rt.scope(join_all(busy)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seventh = viewing(2).await;
    let pool_saturated_rejection = advice_text(seventh);
    say(format!(
        "   with the timed-out job and 5 slow ones on the 6 advisor workers, a 7th request got {pool_saturated_rejection}"
    ));
    let (mut db_times, mut cache_times) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let start = Instant::now();
        db::get_pet(&store.db, 1 + i % 12)
            .await
            .map_err(|e| e.to_string())?;
        db_times.push(start.elapsed());
        let start = Instant::now();
        cache::get(&store.cache, "catalogue")
            .await
            .map_err(|e| e.to_string())?;
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
    Ok(TimeoutScenario {
        slow_db_ms,
        slow_db_error,
        slow_ml_ms,
        slow_ml_error,
        pool_saturated_rejection,
        db_latency_ms,
        cache_latency_ms,
    })
}

/// Scenario 5, the final health snapshot: a table, and the JSON written to `health_out`.
pub(super) fn final_health(
    rt: &Runtime,
    events: &EventsStatus,
    health_out: &std::path::Path,
    say: &mut impl FnMut(String),
) -> Result<HealthSnapshot, String> {
    let health = rt.health_snapshot();
    let overall = serde_json::to_value(health.status).expect("serialises");
    say(format!(
        "\n5. Final health snapshot: overall {}",
        overall.as_str().unwrap_or_default()
    ));
    for line in table(&health) {
        say(format!("   {line}"));
    }
    say(format!(
        "   order events: {} delivered through kafka_events to the {} broker, {} waiting in the outbox",
        events.published, events.backend, events.pending
    ));
    let json = serde_json::to_string_pretty(&health).expect("snapshot serialises");
    if let Some(dir) = health_out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(health_out, json)
        .map_err(|e| format!("cannot write {}: {e}", health_out.display()))?;
    say(format!(
        "   the snapshot JSON is in {}",
        health_out.display()
    ));
    Ok(health)
}

/// Waits (up to 10 s) until the relay has delivered every order event and
/// no database call is in flight, so that a scenario has the database to
/// itself and the snapshot shows settled numbers.
pub(super) async fn quiesce(store: &Petstore, rt: &Runtime) -> Result<EventsStatus, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = store
            .events
            .status(&store.db)
            .await
            .map_err(|e| e.to_string())?;
        let load = rt.health_snapshot().dependencies["petstore_database"]
            .bulkhead
            .current_load;
        if (status.pending == 0 && load == 0) || Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a recommendation call gave: the fallback's reason when it answered,
/// else the error, else "completed".
fn advice_text(result: Result<advisor::Advice, DepError>) -> String {
    match result {
        Ok(advice) => advice.fallback.unwrap_or_else(|| "completed".to_owned()),
        Err(e) => e.to_string(),
    }
}

/// The retry figures of `dependency` and its failed attempts, from the snapshot.
fn retry_figures(rt: &Runtime, dependency: &str) -> (RetryHealth, u64) {
    let d = rt.health_snapshot().dependencies[dependency].clone();
    let retry = d
        .retry
        .expect("the dependency has idempotent sites and retries");
    (retry, d.bulkhead.failed_requests)
}

/// Scenario 6, recovery: a database that fails its next two reads recovers by
/// retry, while a payment whose charge fails is attempted once and voided.
pub(super) async fn recovery(
    store: &Petstore,
    rt: &Runtime,
    gateway: &Gateway,
    say: &mut impl FnMut(String),
) -> Result<RecoveryScenario, String> {
    say("\n6. Recovery: retries where a repeat is safe, never for a payment".into());
    let (before, failed_before) = retry_figures(rt, "petstore_database");
    store.db.fail_next_reads(2);
    let start = Instant::now();
    let pet = store.get_pet(2).await.map_err(|e| e.to_string())?;
    let read_ms = ms(start.elapsed());
    let (after, failed_after) = retry_figures(rt, "petstore_database");
    let recovered = RetriedRead {
        pet: pet.name.clone(),
        elapsed_ms: read_ms,
        failed_attempts: failed_after - failed_before,
        retries: after.retries - before.retries,
        successful_with_retry: after.successful_with_retry - before.successful_with_retry,
        max_attempts: after.max_attempts,
    };
    say(format!(
        "   get_pet(2) with the database failing its next 2 reads: {} after {read_ms} ms",
        recovered.pet
    ));
    say(format!(
        "   from the snapshot: {} failed attempts, {} retries, {} call successful after retry (up to {} attempts a call)",
        recovered.failed_attempts, recovered.retries, recovered.successful_with_retry, recovered.max_attempts
    ));

    gateway.set_fault(Fault::FailCharges, Duration::ZERO);
    let charges_before = gateway.stats().requests;
    let order = store
        .create_order_with_resilience("alice", 5, PaymentRequest { amount: Some(50.0) })
        .await;
    let charge_requests = gateway.stats().requests - charges_before;
    gateway.set_fault(Fault::None, Duration::ZERO);
    let payment_outcome = error_text(order);
    say(format!("   an order whose charge fails: {payment_outcome}"));
    say(format!(
        "   the gateway saw {charge_requests} charge request for it: process_payment is not idempotent, so it is never retried"
    ));
    Ok(RecoveryScenario {
        retried_read: recovered,
        payment_outcome,
        charge_requests,
    })
}

/// Scenario 7, rate limiting: a burst of payments above the provider's
/// limit. The figures are the snapshot's changes across the burst.
pub(super) async fn rate_limit(
    store: &Petstore,
    rt: &Runtime,
    gateway: &Gateway,
    say: &mut impl FnMut(String),
) -> Result<RateLimitScenario, String> {
    let limit = rt
        .dependency_config("payment_gateway")
        .and_then(|c| c.rate_limit)
        .ok_or("payment_gateway has no rate limit in this configuration")?;
    say(format!(
        "\n7. Rate limit: 30 charges as fast as they go, against payment_gateway's {}/s (burst {})",
        limit.rate_per_second, limit.burst
    ));
    let counts = |rt: &Runtime| {
        let b = &rt.health_snapshot().dependencies["payment_gateway"].bulkhead;
        (b.successful_requests, b.rate_limited_requests)
    };
    let (ok_before, limited_before) = counts(rt);
    let requests_before = gateway.stats().requests;
    let start = Instant::now();
    let mut first_retry_after = None;
    for i in 0..30 {
        let charge = crate::gateway::charge(store.gateway.clone(), format!("demo-burst-{i}"), 100);
        if let Err(DepError::Resilience(e)) = charge.await {
            if e.is_rate_limited() && first_retry_after.is_none() {
                first_retry_after = e.retry_after().map(ms);
            }
        }
    }
    let elapsed_ms = ms(start.elapsed());
    let (ok_after, limited_after) = counts(rt);
    let scenario = RateLimitScenario {
        attempted: 30,
        admitted: ok_after - ok_before,
        rate_limited: limited_after - limited_before,
        gateway_requests: gateway.stats().requests - requests_before,
        elapsed_ms,
        first_retry_after_ms: first_retry_after,
    };
    say(format!(
        "   in {elapsed_ms} ms, from the snapshot: {} charged, {} rate limited (HTTP 429, Retry-After); the gateway saw {} requests",
        scenario.admitted, scenario.rate_limited, scenario.gateway_requests
    ));
    Ok(scenario)
}
