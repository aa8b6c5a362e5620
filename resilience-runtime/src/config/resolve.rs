//! Folds the levels of the configuration into one policy set per dependency:
//! the dependency's entry, then `bulkheads.<kind>`, then the top-level and
//! `timeouts` keys, then the kind's built-in defaults.

use super::schema::{BulkheadType, DependencySection, KindSection, ResilienceSection};
use super::ConfigError;
use crate::bulkhead::BulkheadConfig;
use crate::circuit_breaker::{BreakerConfig, FailureRateConfig};
use crate::Kind;
use std::time::Duration;

/// Built-in breaker defaults, shared by every kind.
const FAILURE_THRESHOLD: u32 = 5;
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
const WINDOW_SIZE: u32 = 100;
const MAX_WINDOW_SIZE: u32 = 1_000_000;

/// The policies of one dependency once every configuration level is applied.
#[derive(Clone, Debug, PartialEq)]
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
}

/// Picks the first level that sets a key.
macro_rules! first {
    ($dep:expr, $kind:expr, $key:ident) => {
        $dep.and_then(|d| d.$key).or($kind.and_then(|k| k.$key))
    };
}

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
    let bulkhead = match first!(dep, per_kind, bulkhead_type).unwrap_or(BulkheadType::Semaphore) {
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
        BulkheadType::ThreadPool => BulkheadConfig::ThreadPool {
            max_workers: first!(dep, per_kind, max_workers).map_or(max_concurrent, |c| c.0),
            queue_capacity: first!(dep, per_kind, queue_capacity).map_or(0, |c| c.0),
        },
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
    let circuit_breaker = if breaker_on {
        let failure_rate = match first!(dep, per_kind, circuit_breaker_failure_rate_threshold) {
            None => None,
            Some(rate) => {
                let window_size =
                    first!(dep, per_kind, circuit_breaker_window_size).map_or(WINDOW_SIZE, |c| c.0);
                let minimum_calls = first!(dep, per_kind, circuit_breaker_minimum_calls)
                    .map_or(window_size, |c| c.0);
                if window_size > MAX_WINDOW_SIZE {
                    return Err(ConfigError::value(
                        path("circuit_breaker_window_size"),
                        format!("{window_size} is more than the largest window, {MAX_WINDOW_SIZE}"),
                    ));
                }
                if minimum_calls > window_size {
                    return Err(ConfigError::value(
                        path("circuit_breaker_minimum_calls"),
                        format!(
                            "{minimum_calls} is more than circuit_breaker_window_size ({window_size}), \
                             so the failure rate could never trip the breaker"
                        ),
                    ));
                }
                Some(FailureRateConfig {
                    threshold: rate.0,
                    window_size,
                    minimum_calls,
                })
            }
        };
        Some(BreakerConfig {
            failure_threshold: first!(dep, per_kind, circuit_breaker_failure_threshold)
                .or(top.circuit_breaker_failure_threshold)
                .map_or(FAILURE_THRESHOLD, |c| c.0),
            recovery_timeout: first!(dep, per_kind, circuit_breaker_timeout)
                .or(top.timeouts.circuit_breaker_timeout)
                .map_or(RECOVERY_TIMEOUT, |s| s.0),
            half_open_max_calls: first!(dep, per_kind, circuit_breaker_half_open_max_calls)
                .map_or(1, |c| c.0),
            success_threshold: first!(dep, per_kind, circuit_breaker_success_threshold)
                .map_or(1, |c| c.0),
            failure_rate,
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
    })
}
