//! The cluster rate limiter's decision latency against a Redis on this
//! machine: 10,000 annotated calls, each admitted (the rate is far above
//! the call rate), timed one by one; prints the mean, p50, p99 and max.
//!
//! ```sh
//! cargo run --release -p resilience-bench --features cluster --example cluster_latency \
//!   [redis://127.0.0.1:6379]
//! ```
//!
//! A local call without a limiter is timed the same way, so the difference
//! is the decision.

use resilience_runtime::{database_call, ResilienceError, Runtime};
use std::time::{Duration, Instant};

#[database_call(dependency = "shared")]
async fn shared() -> Result<(), ResilienceError> {
    Ok(())
}

#[database_call(dependency = "plain")]
async fn plain() -> Result<(), ResilienceError> {
    Ok(())
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let yaml = format!(
        "resilience:
  cluster: {{ redis_url: \"{url}\", key_prefix: \"latency-{nanos}\", timeout_seconds: 1 }}
  external_dependencies:
    shared: {{ type: database, rate_limit_per_second: 1000000, rate_limit_burst: 1000000,
              rate_limit_scope: cluster }}
    plain: {{ type: database }}
"
    );
    let rt = Runtime::from_yaml_str(&yaml).expect("config");
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio_rt.block_on(rt.scope(async {
        shared().await.expect("warm-up");
        let on_redis = serde_json::to_value(resilience_runtime::health_snapshot()).unwrap()
            ["dependencies"]["shared"]["rate_limiter"]["backend"]
            == "redis";
        assert!(on_redis, "Redis at {url} did not answer");
        for (name, cluster) in [("without a limiter", false), ("cluster limiter", true)] {
            let mut times: Vec<Duration> = (0..10_000).map(|_| Duration::ZERO).collect();
            for t in times.iter_mut() {
                let start = Instant::now();
                if cluster {
                    shared().await.expect("admitted");
                } else {
                    plain().await.expect("admitted");
                }
                *t = start.elapsed();
            }
            times.sort();
            let mean = times.iter().sum::<Duration>() / times.len() as u32;
            println!(
                "{name}: mean {mean:?}, p50 {:?}, p99 {:?}, max {:?} over {} calls",
                times[times.len() / 2],
                times[times.len() * 99 / 100],
                times[times.len() - 1],
                times.len()
            );
        }
    }));
}
