//! The health snapshot: every dependency's status, counters and breaker.
//!
//! Status rules, checked in this order for each dependency:
//! 1. `unavailable`: its circuit breaker is open;
//! 2. `idle`: no call has been made and none is in flight;
//! 3. `degraded`: its breaker is half-open, or its latest finished call
//!    failed or timed out;
//! 4. `under_pressure`: its latest admission attempt was rejected, or at
//!    least 90 % of its slots are in use;
//! 5. `healthy` otherwise.
//!
//! Overall: `fail` when a critical dependency is unavailable; `warn` when any
//! dependency is unavailable, degraded or under pressure; `pass` otherwise.

use crate::bulkhead::Bulkhead;
use crate::circuit_breaker::BreakerState;
use crate::dependency::Dependency;
use crate::rate_limiter::{RateLimitScope, RateLimiter};
use crate::retry::get;
use crate::Kind;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The whole runtime's health. Serialises to the JSON the README documents.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct HealthSnapshot {
    /// Where the configuration of the runtime this snapshot describes came from.
    pub source: ConfigSource,
    /// The overall status.
    pub status: OverallStatus,
    /// When the snapshot was taken, RFC 3339 in UTC.
    pub timestamp: String,
    /// 1 at start, one more per successful reload.
    pub config_version: u64,
    /// When the latest successful reload happened, RFC 3339 in UTC; `None`
    /// (`null`) before any.
    pub reloaded_at: Option<String>,
    /// Every dependency, by name.
    pub dependencies: BTreeMap<String, DependencyHealth>,
}

/// Where a runtime's configuration came from: `defaults`, `global` or `scoped`.
///
/// `defaults` means no configuration: the built-in defaults of each call
/// site's kind, which calls use before [`init_from_file`](crate::init_from_file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConfigSource {
    /// The built-in defaults: nothing was initialised.
    Defaults,
    /// The runtime installed by `init_from_file` or `init_from_yaml_str`.
    Global,
    /// A runtime built from configuration and used through [`Runtime::scope`](crate::Runtime::scope).
    Scoped,
}

/// `pass`, `warn` or `fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OverallStatus {
    /// Every dependency is idle or healthy.
    Pass,
    /// Something is degraded, under pressure, or a non-critical dependency is unavailable.
    Warn,
    /// A critical dependency is unavailable.
    Fail,
}

/// One dependency's status; see the module rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DependencyStatus {
    /// No call yet.
    Idle,
    /// Working normally.
    Healthy,
    /// At or near its concurrency limit.
    UnderPressure,
    /// Failing, or probing after an outage.
    Degraded,
    /// Its breaker is open.
    Unavailable,
}

/// One dependency in the snapshot.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct DependencyHealth {
    /// Its kind.
    pub kind: Kind,
    /// Whether it being unavailable fails the overall status.
    pub critical: bool,
    /// Its status.
    pub status: DependencyStatus,
    /// The operations annotated for it.
    pub operations: Vec<String>,
    /// Its call timeout; `null` when timeouts are disabled.
    pub timeout_seconds: Option<f64>,
    /// Its bulkhead and call counters.
    pub bulkhead: BulkheadHealth,
    /// Its breaker; `null` when it has none.
    pub circuit_breaker: Option<BreakerHealth>,
    /// Its retries; `null` when no site of it is `idempotent` or no retries
    /// are configured.
    pub retry: Option<RetryHealth>,
    /// Its sites' fallbacks; `null` when none declares one.
    pub fallback: Option<FallbackHealth>,
    /// Its rate limiter; `null` when it has none.
    pub rate_limiter: Option<RateLimiterHealth>,
    /// Its chaos settings; absent when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaos: Option<ChaosHealth>,
    /// How long its calls took over the last minute; `null` when none
    /// finished in it.
    pub latency: Option<LatencyHealth>,
}

/// Durations of a dependency's calls that ran to an end (succeeded, failed
/// or timed out) in the last `window_seconds`, from the moment the call
/// passed its breaker to its end, waits for a turn or a slot included.
///
/// The window moves in 5 s steps, so it holds between 55 and 60 s of calls.
/// Percentiles are read off the duration buckets of
/// `resilience_call_duration_seconds` (interpolated inside a bucket, as
/// Prometheus's `histogram_quantile` does, and never above `max_ms`);
/// `max_ms` is exact.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct LatencyHealth {
    /// The median, in milliseconds.
    pub p50_ms: f64,
    /// The 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// The slowest call, in milliseconds.
    pub max_ms: f64,
    /// The window's length: 60.
    pub window_seconds: u32,
}

impl LatencyHealth {
    fn of(latency: crate::stats::window::Latency) -> Self {
        // Microsecond precision is plenty for a figure in milliseconds.
        let ms = |ns: u64| (ns as f64 / 1_000.0).round() / 1_000.0;
        LatencyHealth {
            p50_ms: ms(latency.p50_ns),
            p99_ms: ms(latency.p99_ns),
            max_ms: ms(latency.max_ns),
            window_seconds: (crate::stats::window::SLICE_NS * crate::stats::window::SLICES
                / 1_000_000_000) as u32,
        }
    }
}

/// A dependency's chaos settings, so nobody mistakes injected faults for
/// real ones.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ChaosHealth {
    /// Share of calls failed on purpose.
    pub fault_rate: f64,
    /// Share of calls delayed on purpose.
    pub latency_rate: f64,
    /// The delay, in seconds.
    pub latency_seconds: f64,
    /// The seed, when the choices repeat from run to run.
    pub seed: Option<u64>,
}

/// A dependency's rate limiter.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RateLimiterHealth {
    /// `local` (this process) or `cluster` (every instance, through Redis).
    pub scope: RateLimitScopeName,
    /// Sustained calls per second.
    pub rate_per_second: f64,
    /// Calls allowed at once above the rate.
    pub burst: u32,
    /// Calls that could start now without waiting, as this process sees it.
    pub available_permits: u32,
    /// Where decisions are made now: `redis`, or `local` (a local limiter,
    /// or a cluster limiter on its fallback while Redis is unreachable).
    pub backend: RateLimitBackend,
    /// False while a cluster limiter cannot reach Redis.
    pub backend_healthy: bool,
}

/// `local` or `cluster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RateLimitScopeName {
    /// This process.
    Local,
    /// Every instance.
    Cluster,
}

/// `local` or `redis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RateLimitBackend {
    /// Decided in this process.
    Local,
    /// Decided by Redis, shared by every instance.
    Redis,
}

/// The logical calls of a dependency's idempotent sites. Each lands in
/// exactly one of the four `*_retry` counters (a call dropped by its caller
/// counts as failed); `retries` is the number of extra attempts, so the
/// attempts counted in `bulkhead` are these calls plus `retries` (plus the
/// calls of the dependency's other sites).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RetryHealth {
    /// Attempts a call may make: `max_retry_attempts` + 1.
    pub max_attempts: u32,
    /// Succeeded on the first attempt.
    pub successful_without_retry: u64,
    /// Succeeded after one or more retries.
    pub successful_with_retry: u64,
    /// Failed on the first attempt and was not retried (not retryable, budget
    /// or deadline exhausted, or dropped).
    pub failed_without_retry: u64,
    /// Failed after one or more retries.
    pub failed_with_retry: u64,
    /// Extra attempts made.
    pub retries: u64,
    /// Calls that stopped because the retry budget was spent.
    pub budget_exhausted: u64,
    /// Calls that stopped because `retry_max_elapsed_seconds` left no time
    /// for another wait and attempt (not counting calls out of attempts).
    pub deadline_exhausted: u64,
}

/// A dependency's fallback runs. `invoked` minus the other two is the
/// number running now or dropped by their callers.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct FallbackHealth {
    /// Fallbacks started.
    pub invoked: u64,
    /// Fallbacks that returned `Ok`.
    pub successful: u64,
    /// Fallbacks that returned `Err` or panicked.
    pub failed: u64,
}

/// `semaphore` or `thread_pool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BulkheadType {
    /// In-task concurrency limit.
    Semaphore,
    /// Dedicated worker threads.
    ThreadPool,
}

/// A bulkhead's limits, load and the dependency's attempt counters: a call that
/// is retried counts once per attempt here (its calls are in [`RetryHealth`]).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BulkheadHealth {
    /// The bulkhead type.
    #[serde(rename = "type")]
    pub bulkhead_type: BulkheadType,
    /// Semaphore: calls in flight at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Thread pool: worker threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
    /// Thread pool: jobs that may wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_capacity: Option<u32>,
    /// Calls holding a slot now (thread pool: running plus queued, including
    /// jobs still running after their caller timed out).
    pub current_load: u32,
    /// Thread pool: jobs waiting for a worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<u32>,
    /// The sum of the six counters below.
    pub total_requests: u64,
    /// Returned `Ok`.
    pub successful_requests: u64,
    /// Returned `Err` or panicked.
    pub failed_requests: u64,
    /// Cut off by the call timeout.
    pub timed_out_requests: u64,
    /// Refused by the bulkhead.
    pub rejected_requests: u64,
    /// Refused by an open breaker.
    pub short_circuited_requests: u64,
    /// Dropped by the caller before they ended.
    pub cancelled_requests: u64,
    /// Refused by the rate limiter.
    pub rate_limited_requests: u64,
    /// successful / (successful + failed + timed out); `null` before such a call.
    pub success_rate: Option<f64>,
}

/// A circuit breaker's state.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BreakerHealth {
    /// `closed`, `open`, `half_open`, or an operator's override:
    /// `forced_open`, `disabled`, `metrics_only`.
    pub state: BreakerState,
    /// Consecutive failures counted (kept while open, reset on closing).
    pub failure_count: u32,
    /// Consecutive failures that open it.
    pub failure_threshold: u32,
    /// How long it stays open.
    pub recovery_timeout_seconds: f64,
    /// The failure rate over its window, when that trigger is configured and
    /// the window holds its minimum number of calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// The share of slow calls over its window, when that trigger is
    /// configured and the window holds its minimum number of calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_call_rate: Option<f64>,
}

impl BreakerState {
    /// The state as the snapshot spells it: `closed`, `open`, `half_open`,
    /// or an operator's `forced_open`, `disabled` or `metrics_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
            BreakerState::MetricsOnly => "metrics_only",
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The breaker's state as the snapshot spells it; the breaker itself knows
/// nothing of serde.
impl Serialize for BreakerState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl HealthSnapshot {
    pub(crate) fn of<'a>(
        source: ConfigSource,
        (config_version, reloaded_at): (u64, Option<SystemTime>),
        deps: impl Iterator<Item = &'a Dependency>,
    ) -> HealthSnapshot {
        let dependencies: BTreeMap<String, DependencyHealth> = deps
            .map(|d| (d.name.clone(), DependencyHealth::of(d)))
            .collect();
        let status = dependencies
            .values()
            .fold(OverallStatus::Pass, |overall, d| {
                match (d.status, d.critical) {
                    (DependencyStatus::Unavailable, true) => OverallStatus::Fail,
                    (DependencyStatus::Idle | DependencyStatus::Healthy, _) => overall,
                    _ if overall == OverallStatus::Fail => overall,
                    _ => OverallStatus::Warn,
                }
            });
        HealthSnapshot {
            source,
            status,
            timestamp: rfc3339(SystemTime::now()),
            config_version,
            reloaded_at: reloaded_at.map(rfc3339),
            dependencies,
        }
    }
}

impl DependencyHealth {
    fn of(dep: &Dependency) -> DependencyHealth {
        let p = dep.policies();
        let counts = dep.stats.read();
        let (load, capacity, mut bulkhead) = match &dep.bulkhead {
            Bulkhead::Semaphore(s) => (
                s.in_flight(),
                s.capacity(),
                BulkheadHealth::new(
                    BulkheadType::Semaphore,
                    Some(s.capacity()),
                    None,
                    None,
                    None,
                ),
            ),
            Bulkhead::ThreadPool(p) => (
                p.occupied(),
                p.workers() + p.queue_capacity(),
                BulkheadHealth::new(
                    BulkheadType::ThreadPool,
                    None,
                    Some(p.workers()),
                    Some(p.queue_capacity()),
                    Some(p.occupied().saturating_sub(p.running())),
                ),
            ),
        };
        bulkhead.current_load = load;
        bulkhead.total_requests = counts.total();
        bulkhead.successful_requests = counts.successful;
        bulkhead.failed_requests = counts.failed;
        bulkhead.timed_out_requests = counts.timed_out;
        bulkhead.rejected_requests = counts.rejected;
        bulkhead.short_circuited_requests = counts.short_circuited;
        bulkhead.cancelled_requests = counts.cancelled;
        bulkhead.rate_limited_requests = counts.rate_limited;
        bulkhead.success_rate = counts.success_rate();

        let circuit_breaker = p.breaker.as_ref().map(|b| BreakerHealth {
            state: b.state(),
            failure_count: b.failure_count(),
            failure_threshold: b.config().failure_threshold,
            recovery_timeout_seconds: b.config().recovery_timeout.as_secs_f64(),
            failure_rate: b.failure_rate(),
            slow_call_rate: b.slow_call_rate(),
        });
        let breaker = circuit_breaker.as_ref().map(|b| b.state);
        // Disabled and metrics-only breakers refuse nothing: their
        // dependency is judged by its outcomes alone.
        let status = if matches!(breaker, Some(BreakerState::Open | BreakerState::ForcedOpen)) {
            DependencyStatus::Unavailable
        } else if counts.total() == 0 && load == 0 {
            DependencyStatus::Idle
        } else if breaker == Some(BreakerState::HalfOpen) || counts.consecutive_failures > 0 {
            DependencyStatus::Degraded
        } else if counts.saturated || u64::from(load) * 10 >= u64::from(capacity) * 9 {
            DependencyStatus::UnderPressure
        } else {
            DependencyStatus::Healthy
        };
        let retry = p.retry.as_ref().map(|r| RetryHealth {
            max_attempts: r.config.max_retries + 1,
            successful_without_retry: counts.successful_first_try,
            successful_with_retry: get(&r.stats.successful_with_retry),
            failed_without_retry: get(&r.stats.failed_without_retry),
            failed_with_retry: get(&r.stats.failed_with_retry),
            retries: get(&r.stats.retries),
            budget_exhausted: get(&r.stats.budget_exhausted),
            deadline_exhausted: get(&r.stats.deadline_exhausted),
        });
        let fallback = dep.fallback.as_ref().map(|f| FallbackHealth {
            invoked: get(&f.invoked),
            successful: get(&f.successful),
            failed: get(&f.failed),
        });
        DependencyHealth {
            kind: p.config.kind,
            critical: p.config.critical,
            status,
            operations: dep.all_operations(),
            timeout_seconds: p.config.call_timeout.map(|t| t.as_secs_f64()),
            bulkhead,
            circuit_breaker,
            retry,
            fallback,
            rate_limiter: p.rate_limiter.as_ref().map(rate_limiter_health),
            chaos: p
                .faults
                .as_ref()
                .and_then(|f| f.chaos())
                .map(|c| ChaosHealth {
                    fault_rate: c.fault_rate,
                    latency_rate: c.latency_rate,
                    latency_seconds: c.latency.as_secs_f64(),
                    seed: c.seed,
                }),
            latency: dep.stats.latency().map(LatencyHealth::of),
        }
    }
}

fn rate_limiter_health(limiter: &RateLimiter) -> RateLimiterHealth {
    let config = &limiter.config;
    RateLimiterHealth {
        scope: match config.scope {
            RateLimitScope::Cluster => RateLimitScopeName::Cluster,
            _ => RateLimitScopeName::Local,
        },
        rate_per_second: config.rate_per_second,
        burst: config.burst,
        available_permits: limiter.available(),
        backend: if limiter.on_redis() {
            RateLimitBackend::Redis
        } else {
            RateLimitBackend::Local
        },
        backend_healthy: limiter.backend_healthy(),
    }
}

impl BulkheadHealth {
    /// The six outcome counters of every bulkhead, in snapshot order:
    /// successful, failed, timed out, rejected, short-circuited, cancelled.
    /// With `rate_limited_requests` they sum to `total_requests`.
    pub fn outcomes(&self) -> [u64; 6] {
        [
            self.successful_requests,
            self.failed_requests,
            self.timed_out_requests,
            self.rejected_requests,
            self.short_circuited_requests,
            self.cancelled_requests,
        ]
    }

    fn new(
        bulkhead_type: BulkheadType,
        max_concurrent: Option<u32>,
        max_workers: Option<u32>,
        queue_capacity: Option<u32>,
        queued: Option<u32>,
    ) -> Self {
        BulkheadHealth {
            bulkhead_type,
            max_concurrent,
            max_workers,
            queue_capacity,
            queued,
            current_load: 0,
            total_requests: 0,
            successful_requests: 0,
            failed_requests: 0,
            timed_out_requests: 0,
            rejected_requests: 0,
            short_circuited_requests: 0,
            cancelled_requests: 0,
            rate_limited_requests: 0,
            success_rate: None,
        }
    }
}

/// Formats `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-27T23:44:25.123Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil-from-days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::{Duration, SystemTime};

    #[test]
    fn rfc3339_matches_known_instants() {
        let at = |s: u64, ms: u64| {
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(s * 1000 + ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_823_065, 123), "2026-11-27T23:44:25.123Z");
    }
}
