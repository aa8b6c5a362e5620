//! The cluster scope: one GCRA per dependency, kept in Redis and shared by
//! every instance. Each decision is one `EVALSHA` of the script below,
//! atomic in Redis and timed by Redis's own clock (`TIME`), so instances
//! with skewed clocks agree. A round trip is bounded by the configured
//! timeout; past it, or while Redis is unreachable, the dependency's local
//! limiter decides at the rate over the number of instances, and a probe
//! goes back to Redis once a second. Redis trouble never fails a call.

use super::{ClusterConfig, NotYet};
use crate::clock::Clock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// GCRA in microseconds on Redis's clock. KEYS[1]: the limiter; ARGV: the
/// interval, the tolerance and the longest wait. Returns {admitted, wait}.
/// The key expires once its TAT is a second in the past: an idle limiter
/// costs Redis nothing.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, wait} end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX',
  math.ceil((next_tat - now) / 1000) + 1000)
return {1, wait}
"#;

/// How long an unreachable Redis is left alone before the next probe.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// One runtime's connection to the cluster backend, shared by its
/// dependencies, with its health: Redis is reachable for all of them or for
/// none.
pub(crate) struct Backend {
    config: ClusterConfig,
    /// `None` when the URL does not parse: every decision is local.
    client: Option<redis::Client>,
    connection: OnceCell<redis::aio::ConnectionManager>,
    script: redis::Script,
    /// False until Redis has answered, and while it does not.
    healthy: AtomicBool,
    /// While unhealthy: when the next probe may go to Redis, on `clock`.
    next_probe: AtomicU64,
    /// Whether the warning for this outage was given.
    said_down: AtomicBool,
    clock: Clock,
}

impl Backend {
    pub(crate) fn new(config: ClusterConfig) -> Backend {
        let client = redis::Client::open(config.redis_url.as_str()).ok();
        if client.is_none() {
            // The URL may hold a password: it is not repeated.
            tracing::warn!(
                "resilience.cluster.redis_url is not a Redis URL; cluster rate limits decide \
                 locally, at their rate over rate_limit_cluster_instances"
            );
        }
        Backend {
            config,
            client,
            connection: OnceCell::new(),
            script: redis::Script::new(SCRIPT),
            healthy: AtomicBool::new(false),
            next_probe: AtomicU64::new(0),
            said_down: AtomicBool::new(false),
            clock: Clock::new(),
        }
    }

    /// Whether decisions go to Redis now.
    pub(crate) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records the outcome of a round trip; says so once per change.
    /// `why` never holds the URL, which may carry a password.
    fn mark(&self, healthy: bool, why: &str) {
        if !healthy {
            let next = self.clock.nanos() + PROBE_EVERY.as_nanos() as u64;
            self.next_probe.store(next, Ordering::Relaxed);
        }
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        // The first failure says so too: "not reached yet" becomes "down".
        let first_failure = !healthy && !self.said_down.swap(true, Ordering::Relaxed);
        if was != healthy || first_failure {
            if healthy {
                self.said_down.store(false, Ordering::Relaxed);
                tracing::warn!("cluster rate limits reach Redis: the limits are shared");
            } else {
                tracing::warn!(
                    "cluster rate limits cannot use Redis: {why}. Each decides locally, at its \
                     rate over rate_limit_cluster_instances, and Redis is tried again every {:?}",
                    PROBE_EVERY
                );
            }
        }
    }
}

/// A dependency's view of the backend.
pub(crate) struct ClusterLimiter {
    backend: Arc<Backend>,
    key: String,
    /// Microseconds, for the script.
    interval: u64,
    tolerance: u64,
    max_wait: u64,
}

/// What the backend decided, or that it could not.
pub(crate) enum Decision {
    /// Go after this wait.
    Turn(Duration),
    Refused(NotYet),
    /// Redis did not answer in time: the local limiter decides.
    Unavailable,
}

impl ClusterLimiter {
    pub(crate) fn new(
        backend: Arc<Backend>,
        dependency: &str,
        interval_nanos: u64,
        burst: u32,
        max_wait: Duration,
    ) -> Self {
        let interval = interval_nanos.div_ceil(1000).max(1);
        ClusterLimiter {
            key: format!("{}:rl:{dependency}", backend.config.key_prefix),
            backend,
            interval,
            tolerance: interval * u64::from(burst.max(1) - 1),
            max_wait: max_wait.as_micros().min(u128::from(u64::MAX)) as u64,
        }
    }

    /// Whether decisions go to Redis now.
    pub(crate) fn healthy(&self) -> bool {
        self.backend.healthy()
    }

    /// One decision by Redis, bounded by the backend's timeout.
    pub(crate) async fn decide(&self) -> Decision {
        let backend = &*self.backend;
        if !backend.healthy() && backend.clock.nanos() < backend.next_probe.load(Ordering::Relaxed)
        {
            return Decision::Unavailable;
        }
        match tokio::time::timeout(backend.config.timeout, self.round_trip()).await {
            Ok(Ok((admitted, wait))) => {
                backend.mark(true, "");
                let wait = Duration::from_micros(wait.max(0) as u64);
                if admitted == 1 {
                    Decision::Turn(wait)
                } else {
                    Decision::Refused(NotYet(wait))
                }
            }
            Ok(Err(error)) => {
                backend.mark(false, &format!("Redis failed ({:?})", error.kind()));
                Decision::Unavailable
            }
            Err(_) => {
                backend.mark(
                    false,
                    &format!("no answer within {:?}", backend.config.timeout),
                );
                Decision::Unavailable
            }
        }
    }

    async fn round_trip(&self) -> redis::RedisResult<(i64, i64)> {
        let backend = &*self.backend;
        let Some(client) = &backend.client else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "not a Redis URL",
            )));
        };
        let connection = backend
            .connection
            .get_or_try_init(|| redis::aio::ConnectionManager::new(client.clone()))
            .await?;
        backend
            .script
            .key(&self.key)
            .arg(self.interval)
            .arg(self.tolerance)
            .arg(self.max_wait)
            .invoke_async(&mut connection.clone())
            .await
    }
}
