//! A petstore service on `resilience-runtime`. Every call to one of its five
//! dependencies goes through an annotated function:
//!
//! | dependency | module | attribute |
//! |---|---|---|
//! | `petstore_database` | [`db`] | `#[database_call]` |
//! | `payment_gateway` | [`gateway`] | `#[api_call]`, thread pool |
//! | `redis_cache` | [`cache`] | `#[cache_call]` |
//! | `kafka_events` | [`events`] | `#[message_queue_call]` |
//! | `ml_pet_advisor` | [`advisor`] | `#[api_call]`, thread pool |
//!
//! The gateway's read side, a charge's status, is a tower service stack
//! with `ResilienceLayer` on a sixth dependency, `payment_lookup`
//! ([`gateway::PaymentLookup`]).
//!
//! [`model`] holds the domain types, [`service`] the business operations, [`http`] the API and [`demo`]
//! the scenarios `cargo run -p petstore-example` prints.

pub mod admin;
pub mod advisor;
pub mod background;
pub mod cache;
pub mod compensation;
pub mod config_source;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod gateway;
pub mod http;
pub mod model;
pub mod redact;
pub mod rng;
pub mod service;
pub mod watch;

use std::path::PathBuf;

/// The project's configuration, embedded so the demo needs no files.
pub const EMBEDDED_CONFIG: &str = include_str!("../../config/enhanced_config.yaml");

/// The layer that shares `payment_gateway`'s rate limit between every
/// petstore instance through the Redis at `redis_url` (`serve` adds it to the
/// embedded config when `REDIS_URL` is set). Built with the YAML library, so
/// any URL is quoted correctly.
pub fn cluster_overlay(redis_url: &str) -> String {
    let overlay = serde_json::json!({
        "resilience": {
            "cluster": { "redis_url": redis_url, "key_prefix": "petstore", "timeout_seconds": 0.05 },
            "external_dependencies": {
                "payment_gateway": { "rate_limit_scope": "cluster", "rate_limit_cluster_instances": 2 }
            }
        }
    });
    serde_yaml::to_string(&overlay).expect("a JSON value prints as YAML")
}

/// The game-day chaos profile `serve --chaos` layers over the configuration:
/// the non-critical dependencies fail or slow down now and then, and the
/// payment gateway is slowed (never failed: a game day should not cost a
/// customer a payment). The demo never uses it, so it stays deterministic.
pub const CHAOS_OVERLAY: &str = "
resilience:
  chaos_enabled: true
  external_dependencies:
    ml_pet_advisor: { chaos_fault_rate: 0.2, chaos_latency_rate: 0.2, chaos_latency_seconds: 1.5 }
    redis_cache: { chaos_fault_rate: 0.1 }
    kafka_events: { chaos_latency_rate: 0.1, chaos_latency_seconds: 0.5 }
    payment_gateway: { chaos_latency_rate: 0.05, chaos_latency_seconds: 2 }
";

/// The embedded configuration with some keys of some dependencies changed:
/// `(dependency, key, value)`. The demo and the tests use it for short timings.
pub fn config_with(overrides: &[(&str, &str, f64)]) -> String {
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(EMBEDDED_CONFIG).expect("embedded config is YAML");
    for (dep, key, value) in overrides {
        doc["resilience"]["external_dependencies"][*dep][*key] = serde_yaml::Value::from(*value);
    }
    serde_yaml::to_string(&doc).expect("serialises")
}

/// Where the dependencies are. Unset URLs mean the embedded defaults.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `postgres://...` or `sqlite://...`; default: a SQLite file.
    pub database_url: Option<String>,
    /// `redis://...`; default: an in-process TTL cache.
    pub redis_url: Option<String>,
    /// `nats://...`; default: the embedded broker.
    pub nats_url: Option<String>,
    /// A running gateway's `host:port`; default: one started in-process.
    pub gateway_addr: Option<String>,
    /// Rules for the in-process gateway.
    pub gateway_rules: gateway::GatewayRules,
}

/// A started petstore: the service, its background workers (the event relay
/// and the compensation reconciler, stopped when the app is dropped) and,
/// when it runs one, its gateway.
pub struct App {
    pub store: service::Petstore,
    pub gateway: Option<gateway::Gateway>,
    _workers: [background::Worker; 2],
}

/// The default SQLite file: `petstore.db` under the system's temp directory.
pub fn default_sqlite_path() -> PathBuf {
    std::env::temp_dir()
        .join("petstore-example")
        .join("petstore.db")
}

impl App {
    /// Connects to (or starts) every dependency, and starts the workers in the
    /// current resilience runtime.
    pub async fn start(settings: Settings) -> Result<App, String> {
        let database_url = match settings.database_url {
            Some(url) => url,
            None => {
                let path = default_sqlite_path();
                std::fs::create_dir_all(path.parent().expect("has a parent"))
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                format!("sqlite://{}?mode=rwc", path.display())
            }
        };
        let db = db::Db::connect(&database_url).await?;
        let cache = match &settings.redis_url {
            Some(url) => cache::Cache::redis(url).await?,
            None => cache::Cache::memory(),
        };
        let events = match &settings.nats_url {
            Some(url) => events::Events::nats(url),
            None => events::Events::embedded(),
        };
        let (client, gateway) = match &settings.gateway_addr {
            Some(addr) => {
                let addr = tokio::net::lookup_host(addr)
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        format!("cannot resolve the gateway address {}", redact::url(addr))
                    })?;
                (gateway::GatewayClient::new(addr), None)
            }
            None => {
                let gw = gateway::Gateway::start(settings.gateway_rules.clone(), 0)
                    .await
                    .map_err(|e| format!("cannot start the payment gateway: {e}"))?;
                (gw.client(), Some(gw))
            }
        };
        let store = service::Petstore::new(db, cache, client, advisor::Advisor::default(), events);
        // Their first passes deliver what a previous run left in the outbox
        // and void what it recorded but could not confirm.
        let workers = [
            store.events.spawn_relay(store.db.clone()),
            compensation::spawn_reconciler(&store),
        ];
        Ok(App {
            store,
            gateway,
            _workers: workers,
        })
    }
}
