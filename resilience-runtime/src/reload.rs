//! What a reload changed, key by key, in the configuration's own names.

use crate::bulkhead::BulkheadConfig;
use crate::config::DependencyConfig;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What a successful reload changed. Its `Display` is the log line an
/// operator reads:
///
/// ```
/// use resilience_runtime::Runtime;
///
/// let rt = Runtime::from_yaml_str(
///     "resilience:\n  external_dependencies:\n    db: { type: database, max_concurrent: 10 }\n",
/// )
/// .unwrap();
/// let report = rt
///     .reload_from_yaml_str(
///         "resilience:\n  external_dependencies:\n    db: { type: database, max_concurrent: 5 }\n",
///     )
///     .unwrap();
/// assert_eq!(report.config_version, 2);
/// let change = &report.changed["db"][0];
/// assert_eq!((change.key.as_str(), change.old.as_str(), change.new.as_str()), ("max_concurrent", "10", "5"));
/// assert_eq!(report.to_string(), "config version 2: db: max_concurrent 10 → 5");
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct ReloadReport {
    /// The version now in force: 1 at start, one more per successful reload.
    pub config_version: u64,
    /// Per dependency that stayed, the keys whose resolved values changed.
    /// A dependency with no change is absent.
    pub changed: BTreeMap<String, Vec<KeyChange>>,
    /// Dependencies the new configuration added.
    pub added: Vec<String>,
    /// Dependencies it dropped (none an annotated site names).
    pub removed: Vec<String>,
    /// Dependencies whose breaker started afresh, closed: the new settings
    /// shape its window differently, so its counts no longer meant anything.
    /// (An operator's override carries over all the same.)
    pub breakers_restarted: Vec<String>,
}

/// One key whose resolved value a reload changed. Values are written as in
/// YAML; `none` is a policy or limit switched off.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct KeyChange {
    /// The configuration key, as at the dependency level.
    pub key: String,
    /// Its value before.
    pub old: String,
    /// Its value now.
    pub new: String,
}

impl ReloadReport {
    /// True when the reload changed nothing (the version still moves on).
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config version {}: ", self.config_version)?;
        if self.is_empty() {
            return write!(f, "no change");
        }
        let mut parts = Vec::new();
        for (dep, changes) in &self.changed {
            let keys: Vec<String> = changes
                .iter()
                .map(|c| format!("{} {} → {}", c.key, c.old, c.new))
                .collect();
            let mut part = format!("{dep}: {}", keys.join(", "));
            if self.breakers_restarted.contains(dep) {
                part.push_str(" (breaker restarted closed)");
            }
            parts.push(part);
        }
        if !self.added.is_empty() {
            parts.push(format!("added {}", self.added.join(", ")));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", self.removed.join(", ")));
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// The keys whose values differ between `old` and `new`, in the order of
/// [`settings`].
pub(crate) fn diff(old: &DependencyConfig, new: &DependencyConfig) -> Vec<KeyChange> {
    settings(old)
        .into_iter()
        .zip(settings(new))
        .filter(|((_, before), (_, after))| before != after)
        .map(|((key, old), (_, new))| KeyChange {
            key: key.to_owned(),
            old,
            new,
        })
        .collect()
}

/// Every resolved setting of a dependency under its configuration key, the
/// same keys in the same order whatever is switched on (`none` when off).
fn settings(c: &DependencyConfig) -> Vec<(&'static str, String)> {
    let none = || "none".to_owned();
    let secs = |d: Duration| format!("{}", d.as_secs_f64());
    let opt_secs = |d: Option<Duration>| d.map_or_else(none, secs);
    let mut out = vec![
        ("type", c.kind.to_string()),
        ("critical", c.critical.to_string()),
        ("timeout_seconds", opt_secs(c.call_timeout)),
    ];
    let (max_concurrent, max_wait, workers, queue) = match c.bulkhead {
        BulkheadConfig::Semaphore {
            max_concurrent,
            max_wait,
        } => (max_concurrent.to_string(), secs(max_wait), none(), none()),
        BulkheadConfig::ThreadPool {
            max_workers,
            queue_capacity,
        } => (
            none(),
            none(),
            max_workers.to_string(),
            queue_capacity.to_string(),
        ),
    };
    out.extend([
        ("max_concurrent", max_concurrent),
        ("max_wait_seconds", max_wait),
        ("max_workers", workers),
        ("queue_capacity", queue),
    ]);
    let b = c.circuit_breaker;
    let rate = b.and_then(|b| b.failure_rate);
    let slow = b.and_then(|b| b.slow_calls);
    let window = rate.map(|r| r.window_size).or(slow.map(|s| s.window_size));
    let minimum = rate
        .map(|r| r.minimum_calls)
        .or(slow.map(|s| s.minimum_calls));
    let text = |v: Option<String>| v.unwrap_or_else(none);
    out.extend([
        ("enable_circuit_breaker", b.is_some().to_string()),
        (
            "circuit_breaker_failure_threshold",
            text(b.map(|b| b.failure_threshold.to_string())),
        ),
        (
            "circuit_breaker_timeout",
            text(b.map(|b| secs(b.recovery_timeout))),
        ),
        (
            "circuit_breaker_timeout_multiplier",
            text(b.map(|b| b.timeout_multiplier.to_string())),
        ),
        (
            "circuit_breaker_max_timeout",
            text(b.and_then(|b| b.max_timeout).map(secs)),
        ),
        (
            "circuit_breaker_half_open_max_calls",
            text(b.map(|b| b.half_open_max_calls.to_string())),
        ),
        (
            "circuit_breaker_success_threshold",
            text(b.map(|b| b.success_threshold.to_string())),
        ),
        (
            "circuit_breaker_failure_rate_threshold",
            text(rate.map(|r| r.threshold.to_string())),
        ),
        (
            "circuit_breaker_slow_call_seconds",
            text(slow.map(|s| secs(s.duration))),
        ),
        (
            "circuit_breaker_slow_call_rate_threshold",
            text(slow.map(|s| s.threshold.to_string())),
        ),
        (
            "circuit_breaker_window_size",
            text(window.map(|w| w.to_string())),
        ),
        (
            "circuit_breaker_minimum_calls",
            text(minimum.map(|m| m.to_string())),
        ),
        (
            "circuit_breaker_window_type",
            text(b.filter(|_| window.is_some()).map(|b| {
                if b.time_window.is_some() {
                    "time"
                } else {
                    "count"
                }
                .to_owned()
            })),
        ),
        (
            "circuit_breaker_window_seconds",
            text(b.and_then(|b| b.time_window).map(secs)),
        ),
    ]);
    let r = c.retry;
    let lower = |d: &dyn fmt::Debug| format!("{d:?}").to_lowercase();
    out.extend([
        ("retry_enabled", r.is_some().to_string()),
        (
            "max_retry_attempts",
            text(r.map(|r| r.max_retries.to_string())),
        ),
        ("retry_backoff", text(r.map(|r| lower(&r.backoff)))),
        (
            "retry_initial_delay_seconds",
            text(r.map(|r| secs(r.initial_delay))),
        ),
        (
            "retry_max_delay_seconds",
            text(r.map(|r| secs(r.max_delay))),
        ),
        (
            "retry_multiplier",
            text(r.map(|r| r.multiplier.to_string())),
        ),
        ("retry_jitter", text(r.map(|r| lower(&r.jitter)))),
        (
            "retry_on",
            text(r.map(|r| {
                let on = r.retry_on;
                let names = [
                    (on.error, "error"),
                    (on.timeout, "timeout"),
                    (on.rejected, "rejected"),
                    (on.rate_limited, "rate_limited"),
                ];
                let list: Vec<&str> = names
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| *n)
                    .collect();
                format!("[{}]", list.join(", "))
            })),
        ),
        (
            "retry_budget_ratio",
            text(r.map(|r| r.budget_ratio.to_string())),
        ),
        (
            "retry_budget_min_per_second",
            text(r.map(|r| r.budget_min_per_second.to_string())),
        ),
        (
            "retry_max_elapsed_seconds",
            text(r.and_then(|r| r.max_elapsed).map(secs)),
        ),
    ]);
    let l = c.rate_limit;
    out.extend([
        (
            "rate_limit_per_second",
            text(l.map(|l| l.rate_per_second.to_string())),
        ),
        ("rate_limit_burst", text(l.map(|l| l.burst.to_string()))),
        (
            "rate_limit_max_wait_seconds",
            text(l.map(|l| secs(l.max_wait))),
        ),
        ("rate_limit_scope", text(l.map(|l| lower(&l.scope)))),
        (
            "rate_limit_cluster_instances",
            text(l.map(|l| l.cluster_instances.to_string())),
        ),
    ]);
    let x = c.chaos;
    out.extend([
        (
            "chaos_fault_rate",
            text(x.map(|x| x.fault_rate.to_string())),
        ),
        (
            "chaos_latency_rate",
            text(x.map(|x| x.latency_rate.to_string())),
        ),
        ("chaos_latency_seconds", text(x.map(|x| secs(x.latency)))),
        (
            "chaos_seed",
            text(x.and_then(|x| x.seed).map(|s| s.to_string())),
        ),
    ]);
    out
}
