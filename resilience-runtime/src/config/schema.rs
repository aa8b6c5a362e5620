//! The YAML layout, as written. Every section inside `resilience:` refuses
//! unknown keys so that a typo is an error, never a silent default.

use super::values::{
    Attempts, BudgetRatio, CallRate, Count, DelaySeconds, ElapsedSeconds, Instances, Interpolated,
    MaxDelaySeconds, Multiplier, PerSecond, PositiveSeconds, Rate, RoundTripSeconds, Seconds, Seed,
    Share, Size, Window, WindowSeconds, Workers,
};
use crate::Kind;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole file. Top-level sections other than `resilience` belong to the
/// application and are ignored.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct FileSection {
    #[serde(default)]
    pub resilience: Option<ResilienceSection>,
}

/// A section that takes the retry keys, which the top level, a kind's
/// defaults and a dependency's entry share (`deny_unknown_fields` does not
/// combine with `#[serde(flatten)]`, so a macro keeps the lists identical).
macro_rules! with_retry_keys {
    ($(#[$meta:meta])* $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $($fields)*
            pub retry_enabled: Option<bool>,
            pub max_retry_attempts: Option<Attempts>,
            pub retry_backoff: Option<RetryBackoff>,
            pub retry_initial_delay_seconds: Option<DelaySeconds>,
            pub retry_max_delay_seconds: Option<MaxDelaySeconds>,
            pub retry_multiplier: Option<Multiplier>,
            pub retry_jitter: Option<RetryJitter>,
            pub retry_on: Option<Vec<RetryOnItem>>,
            pub retry_budget_ratio: Option<BudgetRatio>,
            pub retry_budget_min_per_second: Option<PerSecond>,
            pub retry_max_elapsed_seconds: Option<ElapsedSeconds>,
        }
    };
}

with_retry_keys!(
    #[derive(Default)]
    ResilienceSection {
        pub circuit_breaker_enabled: Option<bool>,
        pub timeout_enabled: Option<bool>,
        pub chaos_enabled: Option<bool>,
        pub default_timeout_seconds: Option<PositiveSeconds>,
        pub circuit_breaker_failure_threshold: Option<Count>,
        #[serde(default)]
        pub timeouts: TimeoutsSection,
        #[serde(default)]
        pub bulkheads: BTreeMap<Kind, KindSection>,
        #[serde(default)]
        pub external_dependencies: BTreeMap<String, DependencySection>,
        pub cluster: Option<ClusterSection>,
    }
);

/// `cluster`: the backend that `rate_limit_scope: cluster` shares.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSection {
    pub redis_url: Option<Interpolated>,
    pub key_prefix: Option<Interpolated>,
    pub timeout_seconds: Option<RoundTripSeconds>,
}

/// `circuit_breaker_window_type`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WindowTypeItem {
    Count,
    Time,
}

/// `rate_limit_scope`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RateLimitScopeItem {
    Local,
    Cluster,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutsSection {
    pub default_timeout: Option<PositiveSeconds>,
    pub database_timeout: Option<PositiveSeconds>,
    pub api_call_timeout: Option<PositiveSeconds>,
    pub message_queue_timeout: Option<PositiveSeconds>,
    pub cache_timeout: Option<PositiveSeconds>,
    pub file_operation_timeout: Option<PositiveSeconds>,
    pub circuit_breaker_timeout: Option<PositiveSeconds>,
}

impl TimeoutsSection {
    pub fn for_kind(&self, kind: Kind) -> Option<PositiveSeconds> {
        match kind {
            Kind::Database => self.database_timeout,
            Kind::ExternalApi => self.api_call_timeout,
            Kind::Cache => self.cache_timeout,
            Kind::MessageQueue => self.message_queue_timeout,
            Kind::FileSystem => self.file_operation_timeout,
            Kind::CpuIntensive | Kind::MemoryIntensive => None,
        }
    }
}

/// `bulkhead_type`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BulkheadType {
    Semaphore,
    ThreadPool,
}

/// `retry_backoff`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RetryBackoff {
    Constant,
    Linear,
    Exponential,
}

/// `retry_jitter`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RetryJitter {
    Full,
    Equal,
    None,
}

/// One entry of `retry_on`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RetryOnItem {
    Error,
    Timeout,
    Rejected,
    RateLimited,
}

impl RetryOnItem {
    /// As the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryOnItem::Error => "error",
            RetryOnItem::Timeout => "timeout",
            RetryOnItem::Rejected => "rejected",
            RetryOnItem::RateLimited => "rate_limited",
        }
    }
}

/// The keys a kind's defaults and a dependency's entry share. A macro keeps
/// the two sections' lists identical while letting each add its own keys
/// (`deny_unknown_fields` does not combine with `#[serde(flatten)]`).
macro_rules! policy_section {
    ($(#[$meta:meta])* $name:ident { $($extra:tt)* }) => {
        with_retry_keys!(
        $(#[$meta])*
        $name {
            $($extra)*
            pub max_concurrent: Option<Count>,
            pub bulkhead_type: Option<BulkheadType>,
            pub reject_on_full: Option<bool>,
            pub max_workers: Option<Workers>,
            pub queue_capacity: Option<Size>,
            pub enable_circuit_breaker: Option<bool>,
            pub circuit_breaker_failure_threshold: Option<Count>,
            pub circuit_breaker_timeout: Option<PositiveSeconds>,
            pub circuit_breaker_timeout_multiplier: Option<Multiplier>,
            pub circuit_breaker_max_timeout: Option<PositiveSeconds>,
            pub circuit_breaker_half_open_max_calls: Option<Count>,
            pub circuit_breaker_success_threshold: Option<Count>,
            pub circuit_breaker_failure_rate_threshold: Option<Rate>,
            pub circuit_breaker_slow_call_seconds: Option<PositiveSeconds>,
            pub circuit_breaker_window_type: Option<WindowTypeItem>,
            pub circuit_breaker_window_seconds: Option<WindowSeconds>,
            pub circuit_breaker_slow_call_rate_threshold: Option<Rate>,
            pub circuit_breaker_window_size: Option<Window>,
            pub circuit_breaker_minimum_calls: Option<Count>,
            pub critical: Option<bool>,
            pub rate_limit_per_second: Option<CallRate>,
            pub rate_limit_burst: Option<Count>,
            pub rate_limit_max_wait_seconds: Option<Seconds>,
            pub rate_limit_scope: Option<RateLimitScopeItem>,
            pub rate_limit_cluster_instances: Option<Instances>,
            pub chaos_fault_rate: Option<Share>,
            pub chaos_latency_rate: Option<Share>,
            pub chaos_latency_seconds: Option<PositiveSeconds>,
            pub chaos_seed: Option<Seed>,
        });
    };
}

policy_section!(
    /// `bulkheads.<kind>`: here `timeout_seconds` is the longest wait for a slot.
    KindSection {
        #[serde(alias = "timeout_seconds")]
        pub max_wait_seconds: Option<Seconds>,
    }
);

policy_section!(
    /// `external_dependencies.<name>`: here `timeout_seconds` is the call timeout.
    DependencySection {
        #[serde(rename = "type")]
        pub kind: Kind,
        pub timeout_seconds: Option<PositiveSeconds>,
        pub max_wait_seconds: Option<Seconds>,
    }
);
