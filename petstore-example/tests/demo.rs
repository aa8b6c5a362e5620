//! The demo's scenarios end to end, with the figures the issue asks for.

use petstore_example::demo;
use resilience_runtime::BreakerState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_true_numbers_for_every_scenario() {
    let out = std::env::temp_dir().join(format!("petstore-demo-test-{}.json", std::process::id()));
    let mut lines = Vec::new();
    let report = demo::run(7, out.clone(), |l| lines.push(l)).await.unwrap();

    assert_eq!(report.basic.pet.name, "Rex");
    assert_eq!(report.basic.catalogue_sources, ["database", "cache"]);
    assert_eq!(report.basic.amount_cents, 29999);
    assert_eq!(report.basic.recommendations.len(), 3);

    let b = &report.bulkhead;
    assert_eq!(
        (
            b.concurrent_calls,
            b.limit,
            b.admitted,
            b.admitted_succeeded,
            b.rejected
        ),
        (15, 10, 10, 10, 5)
    );
    assert_eq!(
        (b.breaker_state, b.breaker_failures),
        (BreakerState::Closed, 0)
    );

    let cb = &report.circuit_breaker;
    let steps: Vec<_> = cb
        .declined
        .iter()
        .map(|s| (s.state, s.failure_count, s.failure_threshold))
        .collect();
    assert_eq!(
        steps,
        [(BreakerState::Closed, 0, 3); 3],
        "declines are not the gateway's failures"
    );
    assert!(cb
        .declined
        .iter()
        .all(|s| s.outcome.contains("Payment amount exceeds limit")));
    let last = cb.failing.last().unwrap();
    assert_eq!((last.state, last.failure_count), (BreakerState::Open, 3));
    assert!(
        last.outcome.contains("answered 500") || last.outcome.contains("circuit breaker is open")
    );
    assert!(
        cb.short_circuited
            .outcome
            .contains("circuit breaker is open"),
        "{}",
        cb.short_circuited.outcome
    );
    assert_eq!(
        cb.gateway_before.requests,
        cb.gateway_after_short_circuit.requests
    );
    assert_eq!(
        (cb.probe.outcome.as_str(), cb.probe.state),
        ("paid", BreakerState::Closed)
    );

    // Wall-clock upper bounds would flake on a loaded machine. What proves
    // the cut is the timeout's own error; tokio never fires a timer early,
    // so the lower bound holds everywhere.
    let t = &report.timeouts;
    assert!(t.slow_db_ms >= 1000.0, "{}", t.slow_db_ms);
    assert!(t.slow_db_error.contains("timed out after 1s"));
    assert!(t.slow_ml_ms >= 1000.0, "{}", t.slow_ml_ms);
    // Both fall back to the most popular pets, and say why.
    assert_eq!(t.slow_ml_error, "the most popular pets instead (timeout)");
    assert_eq!(
        t.pool_saturated_rejection,
        "the most popular pets instead (bulkhead full)"
    );
    // With the advisor's pool full, every database and cache read still ran.
    assert_eq!((t.db_latency_ms.calls, t.cache_latency_ms.calls), (20, 20));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let deps = written["dependencies"].as_object().unwrap();
    assert_eq!(deps.len(), 6, "five dependencies and the payment lookup");
    for (name, d) in deps {
        if let Some(rate) = d["bulkhead"]["success_rate"].as_f64() {
            assert!((0.0..=1.0).contains(&rate), "{name}: {rate}");
        }
    }
    // Every order's event went through `kafka_events` to the embedded broker.
    let e = &report.events;
    assert_eq!(
        (e.backend, e.pending, e.last_error.as_deref()),
        ("embedded", 0, None)
    );
    assert!(e.published >= 2, "{e:?}");
    assert_eq!(
        deps["kafka_events"]["bulkhead"]["successful_requests"],
        e.published
    );
    assert_eq!(deps["kafka_events"]["status"], "healthy");
    assert_eq!(
        deps["petstore_database"]["bulkhead"]["rejected_requests"],
        5
    );
    // The 100.00 payment, and the failing charge's void on its last retry.
    assert_eq!(
        deps["payment_gateway"]["bulkhead"]["short_circuited_requests"],
        2
    );
    assert!(lines.iter().any(|l| l.contains("admitted: 10")));

    let r = &report.recovery;
    let read = &r.retried_read;
    assert_eq!(
        (
            read.failed_attempts,
            read.retries,
            read.successful_with_retry,
            read.max_attempts
        ),
        (2, 2, 1, 4)
    );
    assert_eq!(read.pet, "Mittens");
    assert_eq!(r.charge_requests, 1, "a failing payment is attempted once");
    assert!(
        r.payment_outcome.contains("answered 500"),
        "{}",
        r.payment_outcome
    );

    // The burst: ten at once (the burst), then one per 20 ms; the rest are
    // refused without reaching the gateway.
    let l = &report.rate_limit;
    assert!(l.admitted >= 10, "the burst passes: {l:?}");
    assert!(
        (l.admitted as f64) <= 10.0 + 50.0 * l.elapsed_ms / 1000.0 + 1.0,
        "no more than the limit: {l:?}"
    );
    assert_eq!(l.admitted + l.rate_limited, l.attempted, "{l:?}");
    assert_eq!(
        l.gateway_requests, l.admitted,
        "a limited charge never reaches the gateway"
    );
    assert!(
        l.first_retry_after_ms
            .is_some_and(|ms| ms > 0.0 && ms <= 20.0),
        "{l:?}"
    );

    let r = &report.reload;
    assert_eq!(
        r.report,
        "config version 2: petstore_database: max_concurrent 10 → 5"
    );
    assert_eq!(
        (r.limit_before, r.limit_after, r.config_version),
        (10, 5, 2)
    );
    assert_eq!(
        (r.in_flight_at_reload, r.in_flight_succeeded),
        (8, 8),
        "no call in flight is cut"
    );
    assert_eq!(
        (r.burst, r.burst_admitted, r.burst_rejected),
        (15, 5, 10),
        "the next burst meets the new limit"
    );
    // Nothing is reset: every call of the scenario adds to the old count.
    // The outbox relay and the reconciler also read on their 5 s period; if
    // one does inside the scenario's ~0.7 s, the halved bulkhead rejects it
    // and it backs off 100, 200, 400 ms (`background.rs`): at most four
    // reads each in that time.
    assert!(
        (r.total_before + 8 + 15..=r.total_before + 8 + 15 + 8).contains(&r.total_after),
        "the counters go on from where they were: {r:?}"
    );
    assert_eq!(r.gateway_breaker_before, (BreakerState::Closed, 1));
    assert_eq!(r.gateway_breaker_after, r.gateway_breaker_before);
    assert!(
        lines.iter().any(|l| l.contains("8. Live reload")),
        "{lines:?}"
    );
    let _ = std::fs::remove_file(out);
}

#[test]
fn the_default_command_with_json_prints_the_report_and_writes_the_snapshot() {
    let out = std::env::temp_dir().join(format!("petstore-cli-test-{}.json", std::process::id()));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_petstore-example"))
        .args(["--json", "--seed", "3", "--health-out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&run.stdout).expect("stdout is one JSON document");
    let progress = String::from_utf8_lossy(&run.stderr);
    assert!(
        progress
            .lines()
            .any(|l| l.starts_with("1. Basic operations"))
            && progress.lines().any(|l| l.starts_with("8. Live reload")),
        "one progress line per scenario on stderr: {progress}"
    );
    assert_eq!(report["bulkhead"]["admitted"], 10);
    assert_eq!(report["bulkhead"]["rejected"], 5);
    assert_eq!(report["circuit_breaker"]["probe"]["state"], "closed");
    assert_eq!(report["health_path"], out.display().to_string());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["dependencies"], report["health"]["dependencies"]);
    let _ = std::fs::remove_file(out);

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_petstore-example"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unexpected argument \"--bogus\""));
}
