//! How long calls take: the `resilience_call_duration_seconds` histogram
//! and the snapshot's last-minute latency, on tokio's paused clock (exact
//! durations), plus calls on the real clock whose body does CPU work
//! before it ever awaits.
//!
//! A site's calls are timed once one of them has waited, so each test has
//! sites of its own and starts with one call that waits and is not timed.

use resilience_runtime::{database_call, Runtime};
use resilience_tests::TestError;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::{advance, sleep};

const CONFIG: &str = "
resilience:
  external_dependencies:
    db:
      type: database
      max_concurrent: 4
      timeout_seconds: 2
      circuit_breaker_failure_threshold: 100
";

/// Takes `millis` on tokio's clock, then succeeds or fails.
async fn take(millis: u64, fail: bool) -> Result<u64, TestError> {
    sleep(Duration::from_millis(millis)).await;
    if fail {
        Err(TestError::Failed("no"))
    } else {
        Ok(millis)
    }
}

#[database_call(dependency = "db")]
async fn query(millis: u64, fail: bool) -> Result<u64, TestError> {
    take(millis, fail).await
}

#[database_call(dependency = "db")]
async fn windowed(millis: u64) -> Result<u64, TestError> {
    take(millis, false).await
}

/// Busy for `millis` of real time before it returns; waits first if asked.
async fn work(millis: u64, wait_first: bool) -> Result<u64, TestError> {
    if wait_first {
        tokio::task::yield_now().await;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(millis) {
        std::hint::spin_loop();
    }
    Ok(millis)
}

#[database_call(dependency = "db")]
async fn busy(millis: u64, wait_first: bool) -> Result<u64, TestError> {
    work(millis, wait_first).await
}

#[database_call(dependency = "db")]
async fn never_waits(millis: u64) -> Result<u64, TestError> {
    work(millis, false).await
}

/// `db`'s duration samples, as `series{le or nothing}` → value.
fn durations(rt: &Runtime, outcome: &str) -> BTreeMap<String, f64> {
    let prefix = "resilience_call_duration_seconds_";
    let labels = format!(r#"dependency="db",kind="database",outcome="{outcome}""#);
    rt.render_prometheus()
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(&labels))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let suffix = &series[prefix.len()..];
            let le = suffix
                .split("le=\"")
                .nth(1)
                .map(|v| v.trim_end_matches("\"}"));
            let key = match le {
                Some(le) => format!("bucket {le}"),
                None => suffix.split('{').next().unwrap().to_owned(),
            };
            (key, value.parse().unwrap())
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_call_lands_in_its_bucket_with_its_exact_duration() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    rt.scope(query(1, false)).await.unwrap();
    assert_eq!(
        durations(&rt, "successful")["count"],
        0.0,
        "the first wait is not timed"
    );
    for millis in [3, 3, 40, 700] {
        assert_eq!(rt.scope(query(millis, false)).await, Ok(millis));
    }
    let _ = rt.scope(query(120, true)).await;
    // Cut off by the 2 s timeout.
    let _ = rt.scope(query(5_000, false)).await;

    let ok = durations(&rt, "successful");
    let cumulative = |le: &str| ok[&format!("bucket {le}")];
    assert_eq!(cumulative("0.0025"), 0.0);
    assert_eq!(cumulative("0.005"), 2.0, "both 3 ms calls");
    assert_eq!(cumulative("0.025"), 2.0);
    assert_eq!(cumulative("0.05"), 3.0, "the 40 ms call");
    assert_eq!(cumulative("0.5"), 3.0);
    assert_eq!(cumulative("1"), 4.0, "the 700 ms call");
    assert_eq!(cumulative("+Inf"), 4.0);
    assert_eq!(ok["count"], 4.0);
    assert!((ok["sum"] - 0.746).abs() < 1e-9, "sum {}", ok["sum"]);

    let failed = durations(&rt, "failed");
    assert_eq!(failed["bucket 0.1"], 0.0);
    assert_eq!(failed["bucket 0.25"], 1.0);
    assert!((failed["sum"] - 0.12).abs() < 1e-9);
    let timed_out = durations(&rt, "timed_out");
    assert_eq!(timed_out["bucket 1"], 0.0);
    assert_eq!(timed_out["bucket 2.5"], 1.0, "cut at its 2 s timeout");
    assert!((timed_out["sum"] - 2.0).abs() < 1e-9);

    let latency = rt.health_snapshot().dependencies["db"]
        .latency
        .clone()
        .unwrap();
    assert_eq!(latency.window_seconds, 60);
    assert_eq!(latency.max_ms, 2000.0, "the timed-out call is the slowest");
    // Six calls: the median is the third or fourth (40 or 120 ms), the 99th
    // percentile the slowest.
    assert!(
        (25.0..=250.0).contains(&latency.p50_ms),
        "p50 {}",
        latency.p50_ms
    );
    assert!(
        (1000.0..=2000.0).contains(&latency.p99_ms),
        "p99 {}",
        latency.p99_ms
    );
}

#[tokio::test(start_paused = true)]
async fn the_latency_window_forgets_calls_older_than_a_minute() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let latency = || rt.health_snapshot().dependencies["db"].latency.clone();
    assert_eq!(latency(), None, "null before any call");
    rt.scope(windowed(1)).await.unwrap();
    assert_eq!(latency(), None, "null before any timed call");

    rt.scope(windowed(900)).await.unwrap();
    advance(Duration::from_secs(30)).await;
    for _ in 0..10 {
        rt.scope(windowed(2)).await.unwrap();
    }
    let both = latency().unwrap();
    assert_eq!(both.max_ms, 900.0);
    assert!(both.p50_ms <= 2.0, "p50 {}", both.p50_ms);

    // 65 s after the slow call: it has left the window, the fast ones have not.
    advance(Duration::from_secs(35)).await;
    let fast = latency().unwrap();
    assert_eq!(fast.max_ms, 2.0, "the 900 ms call is over a minute old");
    assert!(fast.p99_ms <= 2.0, "p99 {}", fast.p99_ms);

    // And a minute after the last call, nothing is left.
    advance(Duration::from_secs(61)).await;
    assert_eq!(latency(), None);
    // The histogram, unlike the window, keeps everything.
    assert_eq!(durations(&rt, "successful")["count"], 11.0);

    // A call after a quiet spell starts a fresh window.
    advance(Duration::from_secs(300)).await;
    rt.scope(windowed(7)).await.unwrap();
    let fresh = latency().unwrap();
    assert_eq!((fresh.max_ms, fresh.p50_ms, fresh.p99_ms), (7.0, 7.0, 7.0));
}

/// A body that works for 5 ms before it first returns is not a fast call,
/// though it never went pending: at a site that has waited, the real clock
/// times it; at one that never has, it is counted and never reported fast.
#[tokio::test]
async fn a_call_that_is_ready_at_once_but_works_long_is_never_reported_fast() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    assert_eq!(rt.scope(never_waits(5)).await, Ok(5));
    let ok = durations(&rt, "successful");
    assert_eq!(ok["count"], 0.0, "a site that never waited times nothing");
    let db = &rt.health_snapshot().dependencies["db"];
    assert_eq!(db.bulkhead.successful_requests, 1, "but counts every call");
    assert_eq!(db.latency, None);

    assert_eq!(rt.scope(busy(0, true)).await, Ok(0), "waits: untimed");
    assert_eq!(rt.scope(busy(5, false)).await, Ok(5), "ready at once");
    let ok = durations(&rt, "successful");
    assert_eq!(ok["bucket 0.0025"], 0.0, "not reported under 2.5 ms");
    assert_eq!(ok["count"], 1.0);
    assert!(ok["sum"] >= 0.005, "sum {}", ok["sum"]);
    let latency = rt.health_snapshot().dependencies["db"]
        .latency
        .clone()
        .unwrap();
    assert!(latency.max_ms >= 5.0, "max {}", latency.max_ms);
}
