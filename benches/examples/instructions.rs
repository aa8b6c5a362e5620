//! Runs N calls of one kind of site, for counting instructions a call with
//! callgrind, which counts the same total every run (wall-clock benches on a
//! shared machine do not):
//!
//! ```sh
//! cargo build --release -p resilience-bench --example instructions
//! for n in 1000 11000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions idempotent $n 2>&1 | grep Collected
//! done   # instructions a call = (second − first) / 10000
//! ```
//!
//! Kinds: `plain` (no retries configured), `pending` (the same, pending once
//! before it succeeds, so its timer is armed), `idempotent` (three retries
//! configured, the first attempt succeeds), `limited` (a rate limiter that
//! admits every call), `all` (every policy at once, as `bench_all` in the
//! overhead bench), `short_circuited` (an open breaker refuses every
//! call, counted as 1 for the sum), `rate_limited` (a rate limiter refuses
//! every call, likewise). The sites live in this one
//! binary, as in a real service with many sites.

use resilience_runtime::{database_call, ResilienceError};

#[derive(Debug)]
struct CallError;

impl From<ResilienceError> for CallError {
    fn from(_: ResilienceError) -> Self {
        CallError
    }
}

#[database_call(dependency = "plain")]
async fn plain(x: u64) -> Result<u64, CallError> {
    Ok(x + 1)
}

#[database_call(dependency = "plain")]
async fn pending(x: u64) -> Result<u64, CallError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

/// `pending` with call timeouts switched off: what the timer costs.
#[database_call(dependency = "plain")]
async fn pending_untimed(x: u64) -> Result<u64, CallError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

async fn pending_direct(x: u64) -> Result<u64, CallError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

/// Admitted by a rate limiter whose burst outlasts the run.
#[database_call(dependency = "limited")]
async fn limited(x: u64) -> Result<u64, CallError> {
    Ok(x + 1)
}

/// Refused by a rate limiter whose one turn an earlier call took.
#[database_call(dependency = "paced")]
async fn rate_limited(x: u64) -> Result<u64, CallError> {
    Ok(x + 1)
}

/// Refused by an open breaker (it opens on the first failure, for a day).
#[database_call(dependency = "open")]
async fn short_circuited(fail: bool) -> Result<u64, CallError> {
    if fail {
        Err(CallError)
    } else {
        Ok(1)
    }
}

#[database_call(dependency = "retried", idempotent)]
async fn idempotent(x: u64) -> Result<u64, CallError> {
    Ok(x + 1)
}

/// Every policy on one dependency: breaker, bulkhead, timeout, retries
/// (the first attempt succeeds) and a rate limiter that admits every call.
#[database_call(dependency = "all", idempotent)]
async fn all(x: u64) -> Result<u64, CallError> {
    Ok(x + 1)
}

const CONFIG: &str = "
resilience:
  external_dependencies:
    plain: { type: database, max_concurrent: 1024, timeout_seconds: 10 }
    retried: { type: database, max_concurrent: 1024, timeout_seconds: 10, max_retry_attempts: 3 }
    limited: { type: database, max_concurrent: 1024, timeout_seconds: 10,
               rate_limit_per_second: 1000000, rate_limit_burst: 1000000 }
    open: { type: database, circuit_breaker_failure_threshold: 1, circuit_breaker_timeout: 86400 }
    paced: { type: database, rate_limit_per_second: 0.001, rate_limit_burst: 1 }
    all: { type: database, max_concurrent: 1024, timeout_seconds: 10, max_retry_attempts: 3,
           rate_limit_per_second: 1000000, rate_limit_burst: 1000000 }
";

fn main() {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: instructions plain|pending|pending_untimed|pending_direct|idempotent|limited|rate_limited|all|short_circuited CALLS";
    let kind = args.next().expect(usage);
    let calls: u64 = args.next().and_then(|n| n.parse().ok()).expect(usage);
    let config = match kind.as_str() {
        "pending_untimed" => CONFIG.replace("resilience:", "resilience:\n  timeout_enabled: false"),
        _ => CONFIG.to_owned(),
    };
    resilience_runtime::init_from_yaml_str(&config).expect("config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if kind == "short_circuited" {
            short_circuited(true).await.expect_err("opens the breaker");
        }
        if kind == "rate_limited" {
            rate_limited(0).await.expect("takes the one turn");
        }
        let mut sum = 0;
        for i in 0..calls {
            let x = std::hint::black_box(i);
            sum += match kind.as_str() {
                "plain" => plain(x).await,
                "pending" => pending(x).await,
                "pending_untimed" => pending_untimed(x).await,
                "pending_direct" => pending_direct(x).await,
                "idempotent" => idempotent(x).await,
                "all" => all(x).await,
                "limited" => limited(x).await,
                "short_circuited" => short_circuited(false).await.or(Ok(1)),
                "rate_limited" => rate_limited(x).await.or(Ok(1)),
                _ => panic!("{usage}"),
            }
            .expect("succeeds");
        }
        std::hint::black_box(sum);
    });
}
