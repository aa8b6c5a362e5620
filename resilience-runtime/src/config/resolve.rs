//! Folds the levels of the configuration into one policy set per dependency:
//! the dependency's entry, then `bulkheads.<kind>`, then the top-level and
//! `timeouts` keys, then the kind's built-in defaults.

use super::schema::{
    BulkheadType, DependencySection, KindSection, RateLimitScopeItem, ResilienceSection,
    RetryBackoff, RetryJitter, RetryOnItem, WindowTypeItem,
};
use super::values::MAX_WORKERS;
use super::ConfigError;
use crate::bulkhead::BulkheadConfig;
use crate::chaos::ChaosConfig;
use crate::circuit_breaker::{BreakerConfig, FailureRateConfig, SlowCallConfig};
use crate::rate_limiter::{RateLimitConfig, RateLimitScope};
use crate::retry::{Backoff, Jitter, RetryConfig, RetryOn};
use crate::Kind;
use std::time::Duration;

/// Built-in breaker defaults, shared by every kind.
const FAILURE_THRESHOLD: u32 = 5;
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
const WINDOW_SIZE: u32 = 100;

/// The policies of one dependency once every configuration level is applied.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DependencyConfig {
    /// The dependency's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Whether its being unavailable fails the overall health.
    pub critical: bool,
    /// The call timeout; `None` when `timeout_enabled: false`.
    pub call_timeout: Option<Duration>,
    /// Its bulkhead.
    pub bulkhead: BulkheadConfig,
    /// Its breaker; `None` when disabled.
    pub circuit_breaker: Option<BreakerConfig>,
    /// Its retries; `None` when disabled or `max_retry_attempts` is 0. Only
    /// sites marked `idempotent` use them.
    pub retry: Option<RetryConfig>,
    /// Its rate limit; `None` without `rate_limit_per_second`.
    pub rate_limit: Option<RateLimitConfig>,
    /// Its chaos; `None` without `chaos_*` keys.
    pub chaos: Option<ChaosConfig>,
}

/// Picks the first level that sets a key.
macro_rules! first {
    ($dep:expr, $kind:expr, $key:ident) => {
        $dep.and_then(|d| d.$key).or($kind.and_then(|k| k.$key))
    };
}

/// Like `first!`, down to the top level too.
macro_rules! any_level {
    ($top:expr, $dep:expr, $kind:expr, $key:ident) => {
        first!($dep, $kind, $key).or($top.$key)
    };
}

/// Built-in retry defaults.
const RETRY_INITIAL_DELAY: Duration = Duration::from_millis(100);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(10);
const RETRY_MULTIPLIER: f64 = 2.0;
const RETRY_BUDGET_RATIO: f64 = 0.2;
const RETRY_BUDGET_MIN_PER_SECOND: u32 = 10;

pub(crate) fn resolve(
    top: &ResilienceSection,
    name: &str,
    kind: Kind,
    dep: Option<&DependencySection>,
) -> Result<DependencyConfig, ConfigError> {
    let defaults = kind.defaults();
    let per_kind: Option<&KindSection> = top.bulkheads.get(&kind);
    let path = |key: &str| format!("resilience.external_dependencies.{name}.{key}");

    let max_concurrent =
        first!(dep, per_kind, max_concurrent).map_or(defaults.max_concurrent, |c| c.0);
    let bulkhead_type = first!(dep, per_kind, bulkhead_type).unwrap_or(BulkheadType::Semaphore);
    if let Some(d) = dep {
        inapplicable(name, d, bulkhead_type, top, per_kind)?;
    }
    let bulkhead = match bulkhead_type {
        BulkheadType::Semaphore => {
            let reject = first!(dep, per_kind, reject_on_full).unwrap_or(false);
            let wait = dep
                .and_then(|d| d.max_wait_seconds)
                .or(per_kind.and_then(|k| k.max_wait_seconds))
                .map_or(Duration::ZERO, |s| s.0);
            BulkheadConfig::Semaphore {
                max_concurrent,
                max_wait: if reject { Duration::ZERO } else { wait },
            }
        }
        BulkheadType::ThreadPool => {
            let max_workers = match first!(dep, per_kind, max_workers) {
                Some(workers) => workers.0,
                // `max_concurrent` stands in for it, within the same bound.
                None if max_concurrent > MAX_WORKERS => {
                    return Err(ConfigError::value(
                        path("max_concurrent"),
                        format!(
                        "{max_concurrent} worker threads is more than {MAX_WORKERS}, the most a \
                             thread pool may have (max_concurrent is its max_workers here); \
                             set max_workers"
                    ),
                    ))
                }
                None => max_concurrent,
            };
            BulkheadConfig::ThreadPool {
                max_workers,
                queue_capacity: first!(dep, per_kind, queue_capacity).map_or(0, |c| c.0),
            }
        }
    };

    let call_timeout = (top.timeout_enabled != Some(false)).then(|| {
        dep.and_then(|d| d.timeout_seconds)
            .or(top.timeouts.for_kind(kind))
            .or(top.timeouts.default_timeout)
            .or(top.default_timeout_seconds)
            .map_or(defaults.call_timeout, |s| s.0)
    });

    let breaker_on = top.circuit_breaker_enabled != Some(false)
        && first!(dep, per_kind, enable_circuit_breaker).unwrap_or(true);
    let circuit_breaker =
        if breaker_on {
            let rate = first!(dep, per_kind, circuit_breaker_failure_rate_threshold);
            let slow_rate = first!(dep, per_kind, circuit_breaker_slow_call_rate_threshold);
            let slow_seconds = first!(dep, per_kind, circuit_breaker_slow_call_seconds);
            let slow_at = |key: &str| {
                let in_dep = dep.is_some_and(|d| match key {
                    "circuit_breaker_slow_call_seconds" => {
                        d.circuit_breaker_slow_call_seconds.is_some()
                    }
                    _ => d.circuit_breaker_slow_call_rate_threshold.is_some(),
                });
                origin(name, kind, key, in_dep, !in_dep)
            };
            match (slow_rate, slow_seconds) {
                (Some(_), None) => {
                    return Err(ConfigError::value(
                        slow_at("circuit_breaker_slow_call_rate_threshold"),
                        "needs circuit_breaker_slow_call_seconds: say how long a call may take \
                     before it counts as slow"
                            .into(),
                    ))
                }
                (None, Some(_)) => return Err(ConfigError::value(
                    slow_at("circuit_breaker_slow_call_seconds"),
                    "applies only with circuit_breaker_slow_call_rate_threshold: set the share \
                     of slow calls that opens the breaker, or remove it"
                        .into(),
                )),
                _ => {}
            }
            // One window serves both rate triggers: the last N calls, or the
            // calls of the last N seconds.
            let time_window = match first!(dep, per_kind, circuit_breaker_window_type) {
                Some(WindowTypeItem::Time) => Some(Duration::from_secs(u64::from(
                    first!(dep, per_kind, circuit_breaker_window_seconds).map_or(60, |s| s.0),
                ))),
                _ => None,
            };
            let window = if rate.is_some() || slow_rate.is_some() {
                let window_size =
                    first!(dep, per_kind, circuit_breaker_window_size).map_or(WINDOW_SIZE, |c| c.0);
                let minimum_calls = first!(dep, per_kind, circuit_breaker_minimum_calls)
                    .map_or(window_size, |c| c.0);
                if time_window.is_none() && minimum_calls > window_size {
                    return Err(ConfigError::value(
                        path("circuit_breaker_minimum_calls"),
                        format!(
                        "{minimum_calls} is more than circuit_breaker_window_size ({window_size}), \
                         so the rate could never trip the breaker"
                    ),
                    ));
                }
                Some((window_size, minimum_calls))
            } else {
                None
            };
            let failure_rate = rate
                .zip(window)
                .map(|(rate, (window_size, minimum_calls))| FailureRateConfig {
                    threshold: rate.0,
                    window_size,
                    minimum_calls,
                });
            let slow_calls = slow_rate.zip(slow_seconds).zip(window).map(
                |((rate, seconds), (window_size, minimum_calls))| SlowCallConfig {
                    duration: seconds.0,
                    threshold: rate.0,
                    window_size,
                    minimum_calls,
                },
            );
            let recovery_timeout = first!(dep, per_kind, circuit_breaker_timeout)
                .or(top.timeouts.circuit_breaker_timeout)
                .map_or(RECOVERY_TIMEOUT, |s| s.0);
            let max_timeout = first!(dep, per_kind, circuit_breaker_max_timeout).map(|s| s.0);
            if max_timeout.is_some_and(|max| max < recovery_timeout) {
                let in_dep = dep.is_some_and(|d| d.circuit_breaker_max_timeout.is_some());
                return Err(ConfigError::value(
                    origin(name, kind, "circuit_breaker_max_timeout", in_dep, !in_dep),
                    format!(
                        "is below circuit_breaker_timeout ({} s): the longest open time cannot be \
                     shorter than the first",
                        recovery_timeout.as_secs_f64()
                    ),
                ));
            }
            Some(BreakerConfig {
                failure_threshold: first!(dep, per_kind, circuit_breaker_failure_threshold)
                    .or(top.circuit_breaker_failure_threshold)
                    .map_or(FAILURE_THRESHOLD, |c| c.0),
                recovery_timeout,
                timeout_multiplier: first!(dep, per_kind, circuit_breaker_timeout_multiplier)
                    .map_or(1.0, |m| m.0),
                max_timeout,
                half_open_max_calls: first!(dep, per_kind, circuit_breaker_half_open_max_calls)
                    .map_or(1, |c| c.0),
                success_threshold: first!(dep, per_kind, circuit_breaker_success_threshold)
                    .map_or(1, |c| c.0),
                failure_rate,
                slow_calls,
                time_window: time_window.filter(|_| window.is_some()),
            })
        } else {
            None
        };

    Ok(DependencyConfig {
        name: name.to_owned(),
        kind,
        critical: first!(dep, per_kind, critical).unwrap_or(true),
        call_timeout,
        bulkhead,
        circuit_breaker,
        retry: resolve_retry(top, name, kind, dep, per_kind)?,
        rate_limit: resolve_rate_limit(top, name, kind, dep, per_kind)?,
        chaos: resolve_chaos(top, name, kind, dep, per_kind)?,
    })
}

/// Where a key was set, for an error about it: the dependency's entry, else
/// its kind's defaults, else the top level.
fn origin(name: &str, kind: Kind, key: &str, in_dep: bool, in_kind: bool) -> String {
    if in_dep {
        format!("resilience.external_dependencies.{name}.{key}")
    } else if in_kind {
        format!("resilience.bulkheads.{}.{key}", kind.as_str())
    } else {
        format!("resilience.{key}")
    }
}

/// Chaos, refused unless the top level allows it, so that a config copied
/// from a game day cannot turn it on by accident.
fn resolve_chaos(
    top: &ResilienceSection,
    name: &str,
    kind: Kind,
    dep: Option<&DependencySection>,
    per_kind: Option<&KindSection>,
) -> Result<Option<ChaosConfig>, ConfigError> {
    let fault_rate = first!(dep, per_kind, chaos_fault_rate);
    let latency_rate = first!(dep, per_kind, chaos_latency_rate);
    let latency = first!(dep, per_kind, chaos_latency_seconds);
    let seed = first!(dep, per_kind, chaos_seed);
    let at = |key: &str, in_dep: bool| origin(name, kind, key, in_dep, !in_dep);
    let set = [
        (
            "chaos_fault_rate",
            dep.is_some_and(|d| d.chaos_fault_rate.is_some()),
            fault_rate.is_some(),
        ),
        (
            "chaos_latency_rate",
            dep.is_some_and(|d| d.chaos_latency_rate.is_some()),
            latency_rate.is_some(),
        ),
        (
            "chaos_latency_seconds",
            dep.is_some_and(|d| d.chaos_latency_seconds.is_some()),
            latency.is_some(),
        ),
        (
            "chaos_seed",
            dep.is_some_and(|d| d.chaos_seed.is_some()),
            seed.is_some(),
        ),
    ];
    let Some((key, in_dep, _)) = set.iter().find(|(_, _, set)| *set) else {
        return Ok(None);
    };
    if top.chaos_enabled != Some(true) {
        return Err(ConfigError::value(
            at(key, *in_dep),
            "chaos is off for this config: set `chaos_enabled: true` under `resilience:` to allow \
             it (on purpose, for a game day or a test), or remove the key"
                .into(),
        ));
    }
    if latency_rate.is_some() != latency.is_some() {
        let (key, in_dep) = if latency_rate.is_some() {
            ("chaos_latency_rate", set[1].1)
        } else {
            ("chaos_latency_seconds", set[2].1)
        };
        return Err(ConfigError::value(
            at(key, in_dep),
            "chaos_latency_rate and chaos_latency_seconds go together: set both, or neither".into(),
        ));
    }
    Ok(Some(ChaosConfig {
        fault_rate: fault_rate.map_or(0.0, |r| r.0),
        latency_rate: latency_rate.map_or(0.0, |r| r.0),
        latency: latency.map_or(Duration::ZERO, |s| s.0),
        seed: seed.map(|s| s.0),
    }))
}

/// The rate limit, with its cross-key checks at the key that was set.
fn resolve_rate_limit(
    top: &ResilienceSection,
    name: &str,
    kind: Kind,
    dep: Option<&DependencySection>,
    per_kind: Option<&KindSection>,
) -> Result<Option<RateLimitConfig>, ConfigError> {
    let Some(rate) = first!(dep, per_kind, rate_limit_per_second) else {
        // A dependency that sets a rate-limit key without a rate has a mistake.
        if let Some(d) = dep {
            for (key, set) in [
                ("rate_limit_burst", d.rate_limit_burst.is_some()),
                (
                    "rate_limit_max_wait_seconds",
                    d.rate_limit_max_wait_seconds.is_some(),
                ),
                ("rate_limit_scope", d.rate_limit_scope.is_some()),
                (
                    "rate_limit_cluster_instances",
                    d.rate_limit_cluster_instances.is_some(),
                ),
            ] {
                if set {
                    return Err(ConfigError::value(
                        origin(name, kind, key, true, false),
                        "applies only with a rate limit: set rate_limit_per_second, or remove it"
                            .into(),
                    ));
                }
            }
        }
        return Ok(None);
    };
    let scope = match first!(dep, per_kind, rate_limit_scope) {
        Some(RateLimitScopeItem::Cluster) => RateLimitScope::Cluster,
        Some(RateLimitScopeItem::Local) | None => RateLimitScope::Local,
    };
    let has_backend = top.cluster.as_ref().is_some_and(|c| c.redis_url.is_some());
    if scope == RateLimitScope::Cluster && !has_backend {
        return Err(ConfigError::value(
            origin(
                name,
                kind,
                "rate_limit_scope",
                dep.is_some_and(|d| d.rate_limit_scope.is_some()),
                true,
            ),
            "`cluster` shares the limit through Redis, and resilience.cluster.redis_url is not \
             set: set it (for example redis_url: ${REDIS_URL}), or use rate_limit_scope: local"
                .into(),
        ));
    }
    if scope == RateLimitScope::Cluster && !cfg!(feature = "cluster") {
        // Refused rather than run locally: a limit that is silently per
        // instance would admit `instances` times the rate.
        return Err(ConfigError::value(
            origin(
                name,
                kind,
                "rate_limit_scope",
                dep.is_some_and(|d| d.rate_limit_scope.is_some()),
                true,
            ),
            "this build has no cluster limiter: enable the `cluster` feature of \
             resilience-runtime, or use rate_limit_scope: local"
                .into(),
        ));
    }
    Ok(Some(RateLimitConfig {
        rate_per_second: rate.0,
        burst: first!(dep, per_kind, rate_limit_burst).map_or(1, |c| c.0),
        max_wait: first!(dep, per_kind, rate_limit_max_wait_seconds)
            .map_or(Duration::ZERO, |s| s.0),
        scope,
        cluster_instances: first!(dep, per_kind, rate_limit_cluster_instances).map_or(1, |c| c.0),
    }))
}

/// The retry policy, with its cross-key checks reported at the level that
/// set the offending key.
fn resolve_retry(
    top: &ResilienceSection,
    name: &str,
    kind: Kind,
    dep: Option<&DependencySection>,
    per_kind: Option<&KindSection>,
) -> Result<Option<RetryConfig>, ConfigError> {
    // `retry_enabled: false` at the top switches every retry off.
    let enabled =
        top.retry_enabled != Some(false) && first!(dep, per_kind, retry_enabled).unwrap_or(true);
    let max_retries = any_level!(top, dep, per_kind, max_retry_attempts).map_or(0, |a| a.0);
    if !enabled || max_retries == 0 {
        return Ok(None);
    }
    let origin = |key: &str, in_dep: bool, in_kind: bool| origin(name, kind, key, in_dep, in_kind);
    let initial_delay = any_level!(top, dep, per_kind, retry_initial_delay_seconds)
        .map_or(RETRY_INITIAL_DELAY, |s| s.0);
    let max_delay = any_level!(top, dep, per_kind, retry_max_delay_seconds);
    if let Some(max) = max_delay {
        if max.0 < initial_delay {
            return Err(ConfigError::value(
                origin(
                    "retry_max_delay_seconds",
                    dep.is_some_and(|d| d.retry_max_delay_seconds.is_some()),
                    per_kind.is_some_and(|k| k.retry_max_delay_seconds.is_some()),
                ),
                format!(
                    "{}s is shorter than retry_initial_delay_seconds ({}s); no wait could be that long",
                    max.0.as_secs_f64(),
                    initial_delay.as_secs_f64()
                ),
            ));
        }
    }
    let retry_on_list = dep
        .and_then(|d| d.retry_on.as_ref().map(|l| (l, true, false)))
        .or(per_kind.and_then(|k| k.retry_on.as_ref().map(|l| (l, false, true))))
        .or(top.retry_on.as_ref().map(|l| (l, false, false)));
    let retry_on = match retry_on_list {
        None => RetryOn {
            error: true,
            timeout: true,
            rejected: false,
            rate_limited: false,
        },
        Some((list, in_dep, in_kind)) => {
            let path = origin("retry_on", in_dep, in_kind);
            if list.is_empty() {
                return Err(ConfigError::value(
                    path,
                    "an empty list retries nothing; list some of error, timeout, rejected, \
                     rate_limited, or set max_retry_attempts: 0"
                        .into(),
                ));
            }
            let mut on = RetryOn {
                error: false,
                timeout: false,
                rejected: false,
                rate_limited: false,
            };
            for item in list {
                let flag = match item {
                    RetryOnItem::Error => &mut on.error,
                    RetryOnItem::Timeout => &mut on.timeout,
                    RetryOnItem::Rejected => &mut on.rejected,
                    RetryOnItem::RateLimited => &mut on.rate_limited,
                };
                if std::mem::replace(flag, true) {
                    return Err(ConfigError::value(
                        path,
                        format!("`{}` is listed twice; keep one", item.as_str()),
                    ));
                }
            }
            on
        }
    };
    Ok(Some(RetryConfig {
        max_retries,
        backoff: match any_level!(top, dep, per_kind, retry_backoff) {
            Some(RetryBackoff::Constant) => Backoff::Constant,
            Some(RetryBackoff::Linear) => Backoff::Linear,
            Some(RetryBackoff::Exponential) | None => Backoff::Exponential,
        },
        initial_delay,
        max_delay: max_delay.map_or(RETRY_MAX_DELAY.max(initial_delay), |s| s.0),
        multiplier: any_level!(top, dep, per_kind, retry_multiplier)
            .map_or(RETRY_MULTIPLIER, |m| m.0),
        jitter: match any_level!(top, dep, per_kind, retry_jitter) {
            Some(RetryJitter::Full) | None => Jitter::Full,
            Some(RetryJitter::Equal) => Jitter::Equal,
            Some(RetryJitter::None) => Jitter::None,
        },
        retry_on,
        budget_ratio: any_level!(top, dep, per_kind, retry_budget_ratio)
            .map_or(RETRY_BUDGET_RATIO, |r| r.0),
        budget_min_per_second: any_level!(top, dep, per_kind, retry_budget_min_per_second)
            .map_or(RETRY_BUDGET_MIN_PER_SECOND, |r| r.0),
        max_elapsed: any_level!(top, dep, per_kind, retry_max_elapsed_seconds).map(|s| s.0),
    }))
}

/// A key a dependency's entry sets that its other settings make meaningless:
/// silently ignoring it would hide a mistake.
fn inapplicable(
    name: &str,
    d: &DependencySection,
    bulkhead_type: BulkheadType,
    top: &ResilienceSection,
    per_kind: Option<&KindSection>,
) -> Result<(), ConfigError> {
    let error = |key: &str, why: &str| {
        Err(ConfigError::value(
            format!("resilience.external_dependencies.{name}.{key}"),
            why.to_owned(),
        ))
    };
    let pool_only = "applies to a thread pool, and this dependency's bulkhead is a semaphore: \
                     set bulkhead_type: thread_pool, or remove it";
    let semaphore_only = "applies to a semaphore, and this dependency's bulkhead is a thread pool \
                          (which never waits for a slot): remove it";
    match bulkhead_type {
        BulkheadType::Semaphore if d.max_workers.is_some() => {
            return error("max_workers", pool_only)
        }
        BulkheadType::Semaphore if d.queue_capacity.is_some() => {
            return error("queue_capacity", pool_only)
        }
        BulkheadType::ThreadPool if d.max_wait_seconds.is_some() => {
            return error("max_wait_seconds", semaphore_only)
        }
        BulkheadType::ThreadPool if d.reject_on_full.is_some() => {
            return error("reject_on_full", semaphore_only)
        }
        _ => {}
    }
    let rate_trigger = d.circuit_breaker_failure_rate_threshold.is_some()
        || per_kind.is_some_and(|k| k.circuit_breaker_failure_rate_threshold.is_some())
        || d.circuit_breaker_slow_call_rate_threshold.is_some()
        || per_kind.is_some_and(|k| k.circuit_breaker_slow_call_rate_threshold.is_some());
    let time_type = d
        .circuit_breaker_window_type
        .or(per_kind.and_then(|k| k.circuit_breaker_window_type))
        == Some(WindowTypeItem::Time);
    if time_type && d.circuit_breaker_window_size.is_some() {
        return error(
            "circuit_breaker_window_size",
            "counts calls, but circuit_breaker_window_type is time: set circuit_breaker_window_seconds \
             instead",
        );
    }
    if !time_type && d.circuit_breaker_window_seconds.is_some() {
        return error(
            "circuit_breaker_window_seconds",
            "applies only with circuit_breaker_window_type: time",
        );
    }
    for (key, set) in [
        (
            "circuit_breaker_window_size",
            d.circuit_breaker_window_size.is_some(),
        ),
        (
            "circuit_breaker_minimum_calls",
            d.circuit_breaker_minimum_calls.is_some(),
        ),
        (
            "circuit_breaker_window_type",
            d.circuit_breaker_window_type.is_some(),
        ),
        (
            "circuit_breaker_window_seconds",
            d.circuit_breaker_window_seconds.is_some(),
        ),
    ] {
        if set && !rate_trigger {
            return error(
                key,
                "applies only with a rate trigger: set circuit_breaker_failure_rate_threshold or \
                 circuit_breaker_slow_call_rate_threshold, or remove it",
            );
        }
    }
    let breaker_off =
        top.circuit_breaker_enabled == Some(false) || d.enable_circuit_breaker == Some(false);
    let breaker_keys = [
        (
            "circuit_breaker_failure_threshold",
            d.circuit_breaker_failure_threshold.is_some(),
        ),
        (
            "circuit_breaker_timeout",
            d.circuit_breaker_timeout.is_some(),
        ),
        (
            "circuit_breaker_timeout_multiplier",
            d.circuit_breaker_timeout_multiplier.is_some(),
        ),
        (
            "circuit_breaker_max_timeout",
            d.circuit_breaker_max_timeout.is_some(),
        ),
        (
            "circuit_breaker_half_open_max_calls",
            d.circuit_breaker_half_open_max_calls.is_some(),
        ),
        (
            "circuit_breaker_success_threshold",
            d.circuit_breaker_success_threshold.is_some(),
        ),
        (
            "circuit_breaker_failure_rate_threshold",
            rate_trigger && d.circuit_breaker_failure_rate_threshold.is_some(),
        ),
        (
            "circuit_breaker_slow_call_rate_threshold",
            d.circuit_breaker_slow_call_rate_threshold.is_some(),
        ),
        (
            "circuit_breaker_slow_call_seconds",
            d.circuit_breaker_slow_call_seconds.is_some(),
        ),
    ];
    if breaker_off {
        if let Some((key, _)) = breaker_keys.iter().find(|(_, set)| *set) {
            return error(
                key,
                "the circuit breaker is disabled for this dependency, so this has no effect: \
                 remove it, or enable the breaker",
            );
        }
    }
    Ok(())
}
