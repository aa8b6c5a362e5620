//! What operators watch: the event stream of breaker transitions and the
//! Prometheus exposition, against the snapshot, on the paused clock.

use resilience_runtime::{database_call, BreakerState, ResilienceError, ResilienceEvent, Runtime};
use resilience_tests::TestError;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::advance;

const CONFIG: &str = "
resilience:
  external_dependencies:
    db:
      type: database
      max_concurrent: 1
      timeout_seconds: 1
      circuit_breaker_failure_threshold: 2
      circuit_breaker_timeout: 10
    limited:
      type: cache
      rate_limit_per_second: 1
      enable_circuit_breaker: false
    files:
      type: file_system
      bulkhead_type: thread_pool
      max_workers: 2
      queue_capacity: 3
";

#[database_call(dependency = "db")]
async fn query(how: How) -> Result<u32, TestError> {
    match how {
        How::Ok => Ok(1),
        How::Fail => Err(TestError::Failed("no")),
        How::Hang => std::future::pending().await,
    }
}

#[database_call(dependency = "limited")]
async fn cached() -> Result<u32, TestError> {
    Ok(2)
}

#[derive(Clone, Copy)]
enum How {
    Ok,
    Fail,
    Hang,
}

/// The transitions received so far, as (from, to).
fn transitions(
    rx: &mut tokio::sync::broadcast::Receiver<ResilienceEvent>,
) -> Vec<(BreakerState, BreakerState)> {
    let mut seen = Vec::new();
    let mut last_at = None;
    loop {
        match rx.try_recv() {
            Ok(ResilienceEvent::BreakerTransition {
                dependency,
                from,
                to,
                at,
            }) => {
                assert_eq!(dependency, "db");
                assert!(last_at.is_none_or(|l| l <= at), "in order of time");
                last_at = Some(at);
                seen.push((from, to));
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(TryRecvError::Empty) => return seen,
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_event_stream_delivers_every_breaker_transition_in_order() {
    use BreakerState::*;
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let mut rx = rt.subscribe();
    for _ in 0..2 {
        let _ = rt.scope(query(How::Fail)).await;
    }
    assert_eq!(transitions(&mut rx), [(Closed, Open)]);
    assert!(rt.scope(query(How::Ok)).await.is_err(), "short-circuited");
    assert_eq!(transitions(&mut rx), [], "a refusal is no transition");

    advance(Duration::from_secs(10)).await;
    let _ = rt.scope(query(How::Fail)).await;
    assert_eq!(
        transitions(&mut rx),
        [(Open, HalfOpen), (HalfOpen, Open)],
        "a failed probe reopens"
    );
    advance(Duration::from_secs(10)).await;
    assert_eq!(rt.scope(query(How::Ok)).await, Ok(1));
    assert_eq!(transitions(&mut rx), [(Open, HalfOpen), (HalfOpen, Closed)]);

    let control = rt.circuit_breaker("db").unwrap();
    control.force_open();
    control.reset();
    control.metrics_only();
    control.disable();
    control.reset();
    assert_eq!(
        transitions(&mut rx),
        [
            (Closed, ForcedOpen),
            (ForcedOpen, Closed),
            (Closed, MetricsOnly),
            (MetricsOnly, Disabled),
            (Disabled, Closed)
        ]
    );

    // A second subscriber sees what happens after it subscribed, the first too.
    let mut late = rt.subscribe();
    for _ in 0..2 {
        let _ = rt.scope(query(How::Fail)).await;
    }
    assert_eq!(transitions(&mut late), [(Closed, Open)]);
    assert_eq!(transitions(&mut rx), [(Closed, Open)]);

    // The exposition counts every one of them.
    let metrics = parse(&rt.render_prometheus());
    let count = |from: &str, to: &str| {
        metrics[&format!(
            r#"resilience_circuit_breaker_transitions_total{{dependency="db",kind="database",from="{from}",to="{to}"}}"#
        )]
    };
    assert_eq!(count("closed", "open"), 2.0);
    assert_eq!(count("open", "half_open"), 2.0);
    assert_eq!(count("half_open", "open"), 1.0);
    assert_eq!(count("half_open", "closed"), 1.0);
    assert_eq!(count("closed", "forced_open"), 1.0);
}

/// Sample lines as `name{labels}` → value; checks every family has HELP
/// and TYPE lines before its samples.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "{name} has no TYPE line before it");
        samples.insert(series.to_owned(), value.parse().unwrap());
    }
    samples
}

#[tokio::test(start_paused = true)]
async fn the_exposition_agrees_with_the_snapshot_to_the_unit() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    // Every outcome at least once: success, failure, timeout (which opens
    // the breaker), short-circuit; then, closed again, a rejection and a
    // cancellation; a rate-limited call.
    assert_eq!(rt.scope(query(How::Ok)).await, Ok(1));
    let _ = rt.scope(query(How::Fail)).await;
    let _ = rt.scope(query(How::Hang)).await;
    let _ = rt.scope(query(How::Ok)).await;
    advance(Duration::from_secs(10)).await;
    assert_eq!(rt.scope(query(How::Ok)).await, Ok(1), "the probe closes it");
    let holder = rt.spawn(query(How::Hang));
    tokio::task::yield_now().await;
    let rejected = rt.scope(query(How::Ok)).await.unwrap_err();
    assert!(matches!(
        rejected.resilience(),
        Some(ResilienceError::Rejected { .. })
    ));
    holder.abort();
    let _ = holder.await;
    assert_eq!(rt.scope(cached()).await, Ok(2));
    assert!(rt.scope(cached()).await.is_err(), "rate limited");

    let snapshot = rt.health_snapshot();
    let metrics = parse(&rt.render_prometheus());
    for (name, h) in &snapshot.dependencies {
        let b = &h.bulkhead;
        let labels = format!(r#"dependency="{name}",kind="{}""#, h.kind);
        let calls = |outcome: &str| {
            metrics[&format!(r#"resilience_calls_total{{{labels},outcome="{outcome}"}}"#)] as u64
        };
        assert_eq!(
            [
                calls("successful"),
                calls("failed"),
                calls("timed_out"),
                calls("rejected"),
                calls("short_circuited"),
                calls("cancelled"),
                calls("rate_limited"),
            ],
            [
                b.successful_requests,
                b.failed_requests,
                b.timed_out_requests,
                b.rejected_requests,
                b.short_circuited_requests,
                b.cancelled_requests,
                b.rate_limited_requests,
            ],
            "{name}"
        );
        for outcome in [
            "successful",
            "failed",
            "timed_out",
            "rejected",
            "short_circuited",
            "cancelled",
            "rate_limited",
        ] {
            let series = |suffix: &str, extra: &str| {
                metrics[&format!(
                    r#"resilience_call_duration_seconds_{suffix}{{{labels},outcome="{outcome}"{extra}}}"#
                )]
            };
            // Timed calls only: those of sites that have waited before.
            let timed = series("count", "");
            assert!(timed <= calls(outcome) as f64, "{name} {outcome}");
            assert_eq!(series("bucket", r#",le="+Inf""#), timed);
        }
        let gauge = |metric: &str| metrics[&format!("{metric}{{{labels}}}")];
        assert_eq!(
            gauge("resilience_bulkhead_in_flight"),
            f64::from(b.current_load)
        );
        if let Some(breaker) = &h.circuit_breaker {
            for state in [
                "closed",
                "open",
                "half_open",
                "forced_open",
                "disabled",
                "metrics_only",
            ] {
                let on = metrics
                    [&format!(r#"resilience_circuit_breaker_state{{{labels},state="{state}"}}"#)];
                assert_eq!(
                    on,
                    f64::from(u8::from(breaker.state.as_str() == state)),
                    "{name} {state}"
                );
            }
        }
    }
    let db = &snapshot.dependencies["db"].bulkhead;
    assert_eq!(
        [
            db.successful_requests,
            db.failed_requests,
            db.timed_out_requests,
            db.rejected_requests,
            db.short_circuited_requests,
            db.cancelled_requests
        ],
        [2, 1, 1, 1, 1, 1],
        "each outcome happened"
    );
    assert_eq!(
        metrics[r#"resilience_bulkhead_capacity{dependency="files",kind="file_system"}"#], 5.0,
        "a thread pool's workers plus its queue"
    );
    assert_eq!(
        metrics[r#"resilience_thread_pool_queue_depth{dependency="files",kind="file_system"}"#],
        0.0
    );
    assert!(
        !metrics
            .keys()
            .any(|k| k.starts_with("resilience_thread_pool_queue_depth{dependency=\"db\"")),
        "only thread pools have a queue"
    );
    assert_eq!(
        metrics[r#"resilience_rate_limiter_available_permits{dependency="limited",kind="cache"}"#],
        0.0
    );
    // The global function renders the runtime in force.
    let scoped = rt
        .scope(async { resilience_runtime::render_prometheus() })
        .await;
    assert_eq!(parse(&scoped), metrics);
}
