//! The Prometheus exposition of a runtime (feature `metrics`): the
//! snapshot's figures as counters and gauges, encoded by the Prometheus
//! project's own Rust client. Everything is read when rendered, from the
//! same counters the snapshot reads, so a scrape costs calls nothing and,
//! at a moment of quiet, agrees with the snapshot to the unit.

use crate::dependency::Dependency;
use crate::snapshot::{BulkheadType, DependencyHealth, HealthSnapshot};
use crate::stats::histogram::{Tally, BOUNDS_NS, BUCKETS};
use crate::stats::{Outcome, OUTCOMES};
use crate::BreakerState;
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

type Labels = Vec<(&'static str, String)>;

/// The families, registered once per rendering.
struct Families {
    calls: Family<Labels, Counter>,
    durations: Family<Labels, Durations>,
    in_flight: Family<Labels, Gauge>,
    capacity: Family<Labels, Gauge>,
    queue_depth: Family<Labels, Gauge>,
    state: Family<Labels, Gauge>,
    transitions: Family<Labels, Counter>,
    failure_rate: Family<Labels, Gauge<f64, AtomicU64>>,
    retry_calls: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    rate_limit_permits: Family<Labels, Gauge>,
}

impl Families {
    fn registered(registry: &mut Registry) -> Families {
        Families {
            calls: add(
                registry,
                "resilience_calls",
                "Attempts by outcome, each counted once (the snapshot's bulkhead counters)",
            ),
            durations: add(
                registry,
                "resilience_call_duration_seconds",
                "Attempts by outcome and duration, from passing the breaker to the end, \
                 at sites whose calls wait (go pending); see README, How calls are timed",
            ),
            in_flight: add(
                registry,
                "resilience_bulkhead_in_flight",
                "Calls holding a slot now; for a thread pool, running plus queued jobs",
            ),
            capacity: add(
                registry,
                "resilience_bulkhead_capacity",
                "Slots: max_concurrent, or a thread pool's workers plus queue places",
            ),
            queue_depth: add(
                registry,
                "resilience_thread_pool_queue_depth",
                "Jobs waiting for a worker of a thread-pool dependency",
            ),
            state: add(
                registry,
                "resilience_circuit_breaker_state",
                "1 for the breaker's current state, 0 for the others",
            ),
            transitions: add(
                registry,
                "resilience_circuit_breaker_transitions",
                "Breaker state changes, by from and to",
            ),
            failure_rate: add(
                registry,
                "resilience_circuit_breaker_failure_rate",
                "Failure rate over the breaker's window, once it holds its minimum calls",
            ),
            retry_calls: add(
                registry,
                "resilience_retry_calls",
                "Logical calls of idempotent sites, by how they ended",
            ),
            retries: add(
                registry,
                "resilience_retries",
                "Extra attempts made by retries",
            ),
            rate_limit_permits: add(
                registry,
                "resilience_rate_limiter_available_permits",
                "Calls that could start now without waiting for the rate limiter",
            ),
        }
    }
}

/// A metric registered under `name`, to set before encoding.
fn add<M: Default + Clone + prometheus_client::registry::Metric>(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

/// The exposition of `snapshot`, with each breaker's transition counts read
/// from `deps` (the same runtime's dependencies).
pub(crate) fn render<'a>(
    snapshot: &HealthSnapshot,
    deps: impl Iterator<Item = &'a Dependency>,
) -> String {
    let mut registry = Registry::default();
    let f = Families::registered(&mut registry);
    for dep in deps {
        let Some(h) = snapshot.dependencies.get(&dep.name) else {
            continue;
        };
        let base = || -> Labels {
            vec![
                ("dependency", dep.name.clone()),
                ("kind", h.kind.to_string()),
            ]
        };
        let with = |key: &'static str, value: &str| {
            let mut labels = base();
            labels.push((key, value.to_owned()));
            labels
        };
        let b = &h.bulkhead;
        let histogram = dep.stats.histogram();
        let counts = dep.stats.counts_with(&histogram);
        for outcome in OUTCOME_NAMES {
            let labels = with("outcome", outcome);
            let calls = (0..OUTCOMES)
                .filter(|&o| Outcome::ALL[o].name() == outcome)
                .map(|o| counts[o])
                .sum();
            f.calls.get_or_create(&labels).inc_by(calls);
            f.durations
                .get_or_create(&labels)
                .set(merge(&histogram, outcome));
        }
        f.in_flight
            .get_or_create(&base())
            .set(i64::from(b.current_load));
        f.capacity.get_or_create(&base()).set(capacity(h));
        if b.bulkhead_type == BulkheadType::ThreadPool {
            let queued = b.queued.unwrap_or_default();
            f.queue_depth.get_or_create(&base()).set(i64::from(queued));
        }
        if let Some(breaker) = &h.circuit_breaker {
            for state in BreakerState::ALL {
                let on = i64::from(state == breaker.state);
                f.state
                    .get_or_create(&with("state", state.as_str()))
                    .set(on);
            }
            for from in BreakerState::ALL {
                for to in BreakerState::ALL {
                    let n = dep.kept.breaker_watch.count(from, to);
                    if n > 0 {
                        let mut labels = with("from", from.as_str());
                        labels.push(("to", to.as_str().to_owned()));
                        f.transitions.get_or_create(&labels).inc_by(n);
                    }
                }
            }
            if let Some(rate) = breaker.failure_rate {
                f.failure_rate.get_or_create(&base()).set(rate);
            }
        }
        if let Some(r) = &h.retry {
            for (outcome, n) in [
                ("successful_without_retry", r.successful_without_retry),
                ("successful_with_retry", r.successful_with_retry),
                ("failed_without_retry", r.failed_without_retry),
                ("failed_with_retry", r.failed_with_retry),
            ] {
                f.retry_calls
                    .get_or_create(&with("outcome", outcome))
                    .inc_by(n);
            }
            f.retries.get_or_create(&base()).inc_by(r.retries);
        }
        if let Some(l) = &h.rate_limiter {
            let permits = i64::from(l.available_permits);
            f.rate_limit_permits.get_or_create(&base()).set(permits);
        }
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

/// The `outcome` labels, each the union of the `Outcome`s of that name.
const OUTCOME_NAMES: [&str; 7] = [
    "successful",
    "failed",
    "timed_out",
    "rejected",
    "short_circuited",
    "cancelled",
    "rate_limited",
];

/// The buckets of every `Outcome` called `name`.
fn merge(histogram: &[[Tally; BUCKETS]; OUTCOMES], name: &str) -> [Tally; BUCKETS] {
    let mut merged = [Tally::default(); BUCKETS];
    for (i, buckets) in histogram.iter().enumerate() {
        if Outcome::ALL[i].name() == name {
            for (m, t) in merged.iter_mut().zip(buckets) {
                m.count += t.count;
                m.sum_ns += t.sum_ns;
            }
        }
    }
    merged
}

/// A histogram read from a dependency's cells, to encode as it is.
#[derive(Clone, Default, Debug)]
struct Durations(Arc<Mutex<[Tally; BUCKETS]>>);

impl Durations {
    fn set(&self, tallies: [Tally; BUCKETS]) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = tallies;
    }
}

impl prometheus_client::metrics::TypedMetric for Durations {
    const TYPE: prometheus_client::metrics::MetricType =
        prometheus_client::metrics::MetricType::Histogram;
}

impl EncodeMetric for Durations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let tallies = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        let buckets: Vec<(f64, u64)> = tallies
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let bound = BOUNDS_NS
                    .get(i)
                    .map_or(f64::INFINITY, |&ns| ns as f64 / 1e9);
                (bound, t.count)
            })
            .collect();
        let count = tallies.iter().map(|t| t.count).sum();
        let sum_ns: u64 = tallies.iter().map(|t| t.sum_ns).sum();
        encoder.encode_histogram::<NoLabelSet>(sum_ns as f64 / 1e9, count, &buckets, None)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// What `resilience_bulkhead_capacity` reports.
fn capacity(h: &DependencyHealth) -> i64 {
    let b = &h.bulkhead;
    match b.bulkhead_type {
        BulkheadType::Semaphore => i64::from(b.max_concurrent.unwrap_or_default()),
        BulkheadType::ThreadPool => {
            i64::from(b.max_workers.unwrap_or_default())
                + i64::from(b.queue_capacity.unwrap_or_default())
        }
    }
}
