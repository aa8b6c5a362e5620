//! The runtime: every dependency's live policies, resolved for every call
//! site, plus the global instance and task-local scopes.

use crate::config::{
    CallSiteProblem, CallSiteReason, Config, ConfigError, DependencyConfig, Layer,
};
use crate::defaults;
use crate::dependency::{DepRef, Dependency, SiteFlags};
use crate::events::{Events, ResilienceEvent};
use crate::live::Live;
use crate::rate_limiter::{ClusterConfig, RateLimitScope, Shared};
use crate::reload::{KeyChange, ReloadReport};
use crate::site::{sites, CallSite, Flavor};
use crate::snapshot::{ConfigSource, HealthSnapshot};
use once_cell::sync::Lazy;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// A set of configured dependencies with their bulkheads, breakers and
/// counters.
///
/// Most services initialise the global runtime once with
/// [`init_from_file`](crate::init_from_file). Tests build their own and run
/// code inside [`Runtime::scope`], so they share no state:
///
/// ```
/// use resilience_runtime::Runtime;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let rt = Runtime::from_yaml_str("resilience:\n  timeout_enabled: false\n").unwrap();
/// let status = rt.scope(async { resilience_runtime::health_snapshot().status }).await;
/// assert_eq!(serde_json::to_value(status).unwrap(), "pass");
/// # });
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    /// Built from the built-in defaults rather than from configuration (until
    /// a reload).
    defaults: AtomicBool,
    /// Sorted by name. A reload that adds or drops dependencies replaces the
    /// map; the dependencies in it last.
    dependencies: Live<BTreeMap<String, Arc<Dependency>>>,
    /// Indexed by `CallSite::index`. A reload never changes it: a site's
    /// dependency may not be dropped, and keeps its identity.
    by_site: Vec<Arc<Dependency>>,
    /// Taken by a reload from start to end, so reloads apply one at a time.
    reload: Mutex<Backend>,
    /// 1 at start, one more per successful reload.
    version: AtomicU64,
    events: Arc<Events>,
    reloaded_at: Mutex<Option<SystemTime>>,
}

/// The cluster backend the rate limiters share, and the settings it was made
/// from, so a reload knows whether to make another.
struct Backend {
    shared: Shared,
    cluster: Option<ClusterConfig>,
    has_backend: bool,
}

/// What the annotated sites of each dependency declare.
type SiteOperations = BTreeMap<&'static str, (Vec<&'static str>, SiteFlags)>;

tokio::task_local! {
    static CURRENT: Runtime;
}

static GLOBAL: OnceLock<Runtime> = OnceLock::new();
static DEFAULTS: Lazy<Runtime> = Lazy::new(Runtime::with_defaults);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("defaults", &self.inner.defaults)
            .field(
                "dependencies",
                &self.inner.dependencies.get().keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Runtime {
    /// Builds a runtime from YAML text. Fails on any config error, and when an
    /// annotated call site names a dependency the text lacks or cannot run
    /// under its configured bulkhead.
    pub fn from_yaml_str(yaml: &str) -> Result<Runtime, ConfigError> {
        Runtime::build(&Config::from_yaml_str(yaml)?, true)
    }

    /// Like [`Runtime::from_yaml_str`], reading the file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Runtime, ConfigError> {
        Runtime::build(&Config::from_file(path)?, true)
    }

    /// Builds a runtime from layers of YAML text: each later layer overrides
    /// the earlier ones key by key (a mapping merges into a mapping; any other
    /// value replaces), so a test can reuse the production config and change
    /// only what it needs. An error names the layer it comes from, with its
    /// line and column. At most 16 layers.
    ///
    /// ```
    /// use resilience_runtime::Runtime;
    ///
    /// let production = "resilience:
    ///   external_dependencies:
    ///     payments: { type: external_api, timeout_seconds: 30, max_concurrent: 20 }
    /// ";
    /// let test_overlay = "resilience:
    ///   external_dependencies:
    ///     payments: { timeout_seconds: 0.1 }
    ///     test_double: { type: cache }
    /// ";
    /// let rt = Runtime::from_yaml_layers(&[production, test_overlay]).unwrap();
    /// let payments = rt.dependency_config("payments").unwrap();
    /// assert_eq!(payments.call_timeout, Some(std::time::Duration::from_millis(100)));
    /// assert!(rt.dependency_config("test_double").is_some());
    ///
    /// let err = Runtime::from_yaml_layers(&[production, "resilience:\n  timeout_secs: 1\n"])
    ///     .err()
    ///     .unwrap();
    /// assert!(err.to_string().starts_with("<config> (layer 2), line 2, column 3"), "{err}");
    /// ```
    pub fn from_yaml_layers(layers: &[&str]) -> Result<Runtime, ConfigError> {
        let layers = layers.iter().map(|text| Layer::text(text)).collect();
        Runtime::build(&Config::from_layers(layers)?, true)
    }

    /// Like [`Runtime::from_yaml_layers`], reading each layer from a file;
    /// errors name the file.
    pub fn from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Runtime, ConfigError> {
        let layers = paths
            .iter()
            .map(|p| Layer::read(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Runtime::build(&Config::from_layers(layers)?, true)
    }

    /// The runtime calls use before any initialisation: every dependency an
    /// annotated site names gets the built-in defaults of the site's kind.
    pub fn with_defaults() -> Runtime {
        let rt = Runtime::build(&Config::default(), false).expect("built-in defaults are valid");
        rt.inner.defaults.store(true, Ordering::Relaxed);
        rt
    }

    fn build(config: &Config, strict: bool) -> Result<Runtime, ConfigError> {
        let (configs, mut operations) = resolve(config, strict)?;
        let cluster = config.cluster();
        let has_backend = needs_cluster(&configs);
        let shared = Shared::new(cluster.clone(), has_backend);
        let events = Arc::new(Events::default());
        let dependencies: BTreeMap<String, Arc<Dependency>> = configs
            .into_iter()
            .map(|(name, cfg)| {
                let (mut ops, flags) = operations.remove(name.as_str()).unwrap_or_default();
                ops.sort_unstable();
                ops.dedup();
                let dep = Dependency::new(cfg, ops, flags, &shared, &events);
                (name, Arc::new(dep))
            })
            .collect();
        let by_site = sites()
            .iter()
            .map(|s| Arc::clone(&dependencies[s.dependency]))
            .collect();
        Ok(Runtime {
            inner: Arc::new(Inner {
                defaults: AtomicBool::new(false),
                dependencies: Live::new(dependencies),
                by_site,
                reload: Mutex::new(Backend {
                    shared,
                    cluster,
                    has_backend,
                }),
                version: AtomicU64::new(1),
                reloaded_at: Mutex::new(None),
                events,
            }),
        })
    }

    /// Puts a new configuration in force without losing what the runtime
    /// has learned, and says what changed.
    ///
    /// All or nothing: a configuration with any error changes nothing, and
    /// the error is as located as one at start-up. Refused too: dropping a
    /// dependency an annotated site names, and switching a dependency
    /// between `semaphore` and `thread_pool` (its calls in flight hold the
    /// old kind's slots).
    ///
    /// Kept: every counter, the calls in flight and their slots, each
    /// breaker's state and window (unless the new settings shape the window
    /// differently: then it starts closed and the report says so), an
    /// operator's breaker override, the rate limiters' turns already taken.
    /// In force for every call that starts from now on: timeouts, bulkhead
    /// sizes and waits (a smaller bulkhead admits nobody until its load falls
    /// under the new size; a thread pool grows by starting workers and
    /// shrinks as surplus workers finish their jobs), breaker thresholds,
    /// retries, rate limits and chaos. A call in flight finishes under the
    /// settings it started with. New dependencies may be added.
    ///
    /// Calls pay nothing for this: a call reads its dependency's settings
    /// with one atomic load. Replaced settings are kept, not freed, for as
    /// long as the runtime lives (a call may still hold them); that is a few
    /// hundred bytes per changed dependency per reload.
    ///
    /// ```
    /// use resilience_runtime::Runtime;
    ///
    /// let yaml = |limit: u32| format!(
    ///     "resilience:\n  external_dependencies:\n    db: {{ type: database, max_concurrent: {limit} }}\n"
    /// );
    /// let rt = Runtime::from_yaml_str(&yaml(10)).unwrap();
    /// let report = rt.reload_from_yaml_str(&yaml(4)).unwrap();
    /// println!("{report}"); // config version 2: db: max_concurrent 10 → 4
    /// assert_eq!(rt.health_snapshot().dependencies["db"].bulkhead.max_concurrent, Some(4));
    ///
    /// // A bad reload changes nothing.
    /// let err = rt.reload_from_yaml_str("resilience:\n  external_dependencies:\n    db: { type: database, max_concurrent: 0 }\n");
    /// assert!(err.unwrap_err().to_string().contains("max_concurrent"));
    /// assert_eq!(rt.health_snapshot().config_version, 2);
    /// ```
    pub fn reload_from_yaml_str(&self, yaml: &str) -> Result<ReloadReport, ConfigError> {
        self.reload(&Config::from_yaml_str(yaml)?)
    }

    /// Like [`Runtime::reload_from_yaml_str`], reading the file at `path`.
    pub fn reload_from_file(&self, path: impl AsRef<Path>) -> Result<ReloadReport, ConfigError> {
        self.reload(&Config::from_file(path)?)
    }

    /// Like [`Runtime::reload_from_yaml_str`], from layers of YAML text as
    /// [`Runtime::from_yaml_layers`] reads them.
    pub fn reload_from_yaml_layers(&self, layers: &[&str]) -> Result<ReloadReport, ConfigError> {
        let layers = layers.iter().map(|text| Layer::text(text)).collect();
        self.reload(&Config::from_layers(layers)?)
    }

    /// Like [`Runtime::reload_from_yaml_str`], from layers as
    /// [`Runtime::from_files`] reads them.
    pub fn reload_from_files<P: AsRef<Path>>(
        &self,
        paths: &[P],
    ) -> Result<ReloadReport, ConfigError> {
        let layers = paths
            .iter()
            .map(|p| Layer::read(p.as_ref()))
            .collect::<Result<_, _>>()?;
        self.reload(&Config::from_layers(layers)?)
    }

    fn reload(&self, config: &Config) -> Result<ReloadReport, ConfigError> {
        let mut backend = self.inner.reload.lock().unwrap_or_else(|p| p.into_inner());
        let (configs, _) = resolve(config, true)?;
        let current = self.inner.dependencies.get();
        for (name, new) in &configs {
            if let Some(dep) = current.get(name) {
                let old = &dep.policies().config;
                if is_pool(&old.bulkhead) != is_pool(&new.bulkhead) {
                    return Err(switched_bulkhead(config, name, &old.bulkhead));
                }
            }
        }
        // Checked: from here on nothing fails.
        let cluster = config.cluster();
        let needed = needs_cluster(&configs);
        let new_backend = cluster != backend.cluster || (needed && !backend.has_backend);
        if new_backend {
            *backend = Backend {
                shared: Shared::new(cluster.clone(), needed),
                cluster,
                has_backend: needed,
            };
        }
        let mut report = ReloadReport::default();
        let mut next = BTreeMap::new();
        for (name, cfg) in configs {
            let dep = match current.get(&name) {
                Some(dep) => {
                    let mut changes = crate::reload::diff(&dep.policies().config, &cfg);
                    let on_cluster = cfg
                        .rate_limit
                        .is_some_and(|r| r.scope == RateLimitScope::Cluster);
                    if new_backend && on_cluster {
                        // The URL may hold a password: it is not shown.
                        changes.push(KeyChange {
                            key: "cluster".to_owned(),
                            old: "the earlier backend".to_owned(),
                            new: "a new backend".to_owned(),
                        });
                    }
                    if !changes.is_empty() {
                        if dep.retune(cfg, &backend.shared) {
                            report.breakers_restarted.push(name.clone());
                        }
                        report.changed.insert(name.clone(), changes);
                    }
                    Arc::clone(dep)
                }
                None => {
                    report.added.push(name.clone());
                    let flags = SiteFlags::default();
                    let events = &self.inner.events;
                    Arc::new(Dependency::new(
                        cfg,
                        Vec::new(),
                        flags,
                        &backend.shared,
                        events,
                    ))
                }
            };
            next.insert(name, dep);
        }
        report.removed = current
            .keys()
            .filter(|name| !next.contains_key(*name))
            .cloned()
            .collect();
        if !report.added.is_empty() || !report.removed.is_empty() {
            self.inner.dependencies.replace(next);
        }
        self.inner.defaults.store(false, Ordering::Relaxed);
        *self
            .inner
            .reloaded_at
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(SystemTime::now());
        report.config_version = self.inner.version.fetch_add(1, Ordering::AcqRel) + 1;
        Ok(report)
    }

    /// Runs `future` so that annotated calls made while polling it, and
    /// [`health_snapshot`](crate::health_snapshot), use this runtime.
    ///
    /// Tasks spawned inside do not inherit the scope (tokio task-locals do not
    /// propagate): start them with [`Runtime::spawn`] or
    /// [`spawn`](crate::spawn).
    ///
    /// ```
    /// use resilience_runtime::{database_call, ResilienceError, Runtime};
    ///
    /// #[database_call(dependency = "db")]
    /// async fn load(id: u64) -> Result<u64, ResilienceError> {
    ///     Ok(id)
    /// }
    ///
    /// // In a test suite: #[tokio::test(start_paused = true)]
    /// async fn each_test_has_its_own_counters() {
    ///     let rt = Runtime::from_yaml_str(
    ///         "resilience:\n  external_dependencies:\n    db: { type: database }\n",
    ///     )
    ///     .unwrap();
    ///     assert_eq!(rt.scope(load(3)).await.unwrap(), 3);
    ///     let db = &rt.health_snapshot().dependencies["db"];
    ///     assert_eq!(db.bulkhead.successful_requests, 1);
    /// }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
    /// #     .block_on(each_test_has_its_own_counters());
    /// ```
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        let scoped = CURRENT.scope(self.clone(), future);
        async move {
            // A runtime built outside a test's paused tokio runtime must
            // still time its calls on that paused clock.
            crate::clock::notice_pause();
            scoped.await
        }
    }

    /// The runtime in force for the current task: the innermost
    /// [`scope`](Runtime::scope), else the initialised one, else the defaults.
    ///
    /// A task spawned from inside a scope keeps it by taking this along:
    ///
    /// ```
    /// use resilience_runtime::Runtime;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let yaml = "resilience:\n  external_dependencies:\n    ledger: {type: database}\n";
    /// let rt = Runtime::from_yaml_str(yaml).unwrap();
    /// assert!(Runtime::current().dependency_config("ledger").is_none());
    /// let spawned = rt.scope(async {
    ///     let here = Runtime::current();
    ///     // Annotated calls in the spawned task use `rt`, not the global runtime.
    ///     tokio::spawn(here.scope(async { Runtime::current().dependency_config("ledger").is_some() }))
    /// });
    /// assert!(spawned.await.await.unwrap());
    /// # }
    /// ```
    pub fn current() -> Runtime {
        CURRENT
            .try_with(Runtime::clone)
            .unwrap_or_else(|_| global().clone())
    }

    /// Runs `f` with the runtime in force, without cloning it.
    #[cfg_attr(not(any(feature = "tower", feature = "metrics")), allow(dead_code))]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Runtime) -> R) -> R {
        let mut f = Some(f);
        match CURRENT.try_with(|rt| (f.take().expect("called once"))(rt)) {
            Ok(r) => r,
            Err(_) => (f.take().expect("called once"))(global()),
        }
    }

    /// Whether `self` and `other` are the same runtime.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn same(&self, other: &Runtime) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The dependency `name`, for callers that are not annotated sites.
    #[cfg_attr(not(any(feature = "tower", feature = "testing")), allow(dead_code))]
    pub(crate) fn dependency_named(&self, name: &str) -> Option<Arc<Dependency>> {
        self.inner.dependencies.get().get(name).cloned()
    }

    /// The resolved policies of `name`, if this runtime has it.
    pub fn dependency_config(&self, name: &str) -> Option<&DependencyConfig> {
        self.inner
            .dependencies
            .get()
            .get(name)
            .map(|d| &d.policies().config)
    }

    /// An operator's control of `dependency`'s circuit breaker: force it
    /// open, disable it, let it only compute its state, or reset it. `None`
    /// when this runtime has no such dependency or it has no breaker.
    pub fn circuit_breaker(&self, dependency: &str) -> Option<crate::BreakerControl> {
        let dep = self.inner.dependencies.get().get(dependency)?;
        crate::BreakerControl::new(DepRef::Scoped(dep.clone()))
    }

    /// A test's fault injector for `dependency` (feature `testing`); see
    /// [`testing`](crate::testing).
    ///
    /// # Panics
    ///
    /// When this runtime has no such dependency: a test names its own.
    #[cfg(feature = "testing")]
    pub fn inject(&self, dependency: &str) -> crate::testing::FaultInjector {
        let dep = self.dependency_named(dependency).unwrap_or_else(|| {
            panic!(
                "Runtime::inject(\"{dependency}\"): this runtime has no such dependency; it has {:?}",
                self.inner.dependencies.get().keys().collect::<Vec<_>>()
            )
        });
        crate::testing::FaultInjector::new(dep)
    }

    /// Spawns `future` on tokio, in this runtime's scope: annotated calls in
    /// the task use this runtime, as they do inside [`scope`](Runtime::scope).
    /// A plain `tokio::spawn` loses the scope (task-locals do not cross it),
    /// and its calls would use the global runtime or the built-in defaults.
    ///
    /// ```
    /// use resilience_runtime::{ConfigSource, Runtime};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let rt = Runtime::from_yaml_str("resilience:\n  timeout_enabled: false\n").unwrap();
    /// let source = rt.spawn(async { resilience_runtime::health_snapshot().source });
    /// assert_eq!(source.await.unwrap(), ConfigSource::Scoped);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(self.scope(future))
    }

    /// Every state change of this runtime from now on: each circuit
    /// breaker's transitions, in the order they happen (an operator's
    /// override included). Calls themselves are not announced; their figures
    /// are in [`health_snapshot`](Runtime::health_snapshot). A receiver that
    /// falls more than 1024 events behind is told how many it missed
    /// (`RecvError::Lagged`) and goes on from the oldest kept.
    ///
    /// ```
    /// use resilience_runtime::{BreakerState, ResilienceEvent, Runtime};
    ///
    /// let rt = Runtime::from_yaml_str(
    ///     "resilience:\n  external_dependencies:\n    db: { type: database }\n",
    /// )
    /// .unwrap();
    /// let mut events = rt.subscribe();
    /// rt.circuit_breaker("db").unwrap().force_open();
    /// match events.try_recv().unwrap() {
    ///     ResilienceEvent::BreakerTransition { dependency, from, to, .. } => {
    ///         assert_eq!((dependency.as_str(), from, to), ("db", BreakerState::Closed, BreakerState::ForcedOpen));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    #[cfg(not(loom))]
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ResilienceEvent> {
        self.inner.events.subscribe()
    }

    /// This runtime's figures in the Prometheus text exposition format
    /// (feature `metrics`, on by default), encoded by the Prometheus
    /// project's Rust client, `prometheus-client`. Every series has
    /// `dependency` and `kind` labels:
    ///
    /// | metric | type | more labels |
    /// |---|---|---|
    /// | `resilience_calls_total` | counter | `outcome`: successful, failed, timed_out, rejected, short_circuited, cancelled, rate_limited |
    /// | `resilience_bulkhead_in_flight` | gauge | |
    /// | `resilience_bulkhead_capacity` | gauge | |
    /// | `resilience_thread_pool_queue_depth` | gauge | (thread-pool dependencies) |
    /// | `resilience_circuit_breaker_state` | gauge | `state`: 1 for the current one, 0 for the others |
    /// | `resilience_circuit_breaker_transitions_total` | counter | `from`, `to` |
    /// | `resilience_circuit_breaker_failure_rate` | gauge | (with a failure-rate trigger, once its window holds its minimum) |
    /// | `resilience_retry_calls_total` | counter | `outcome`: the four retry outcomes of the snapshot |
    /// | `resilience_retries_total` | counter | |
    /// | `resilience_rate_limiter_available_permits` | gauge | |
    ///
    /// The figures are read when rendered, from the counters the snapshot
    /// reads, so at a moment of quiet the two agree to the unit, and a call
    /// pays nothing for being watched.
    ///
    /// ```
    /// use resilience_runtime::Runtime;
    ///
    /// let rt = Runtime::from_yaml_str(
    ///     "resilience:\n  external_dependencies:\n    db: { type: database, max_concurrent: 4 }\n",
    /// )
    /// .unwrap();
    /// let text = rt.render_prometheus();
    /// assert!(text.contains(r#"resilience_bulkhead_capacity{dependency="db",kind="database"} 4"#), "{text}");
    /// assert!(text.contains(r#"resilience_calls_total{dependency="db",kind="database",outcome="successful"} 0"#));
    /// ```
    #[cfg(feature = "metrics")]
    pub fn render_prometheus(&self) -> String {
        let deps = self.inner.dependencies.get();
        crate::metrics::render(&self.health_snapshot(), deps.values().map(|d| &**d))
    }

    /// This runtime's health and counters.
    pub fn health_snapshot(&self) -> HealthSnapshot {
        let source = if self.inner.defaults.load(Ordering::Relaxed) {
            ConfigSource::Defaults
        } else if GLOBAL
            .get()
            .is_some_and(|g| Arc::ptr_eq(&g.inner, &self.inner))
        {
            ConfigSource::Global
        } else {
            ConfigSource::Scoped
        };
        let version = (
            self.inner.version.load(Ordering::Acquire),
            *self
                .inner
                .reloaded_at
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let deps = self.inner.dependencies.get();
        HealthSnapshot::of(source, version, deps.values().map(|d| &**d))
    }
}

/// Every dependency's resolved settings, with those that annotated sites
/// name but the configuration lacks (outside strict mode), and what the sites
/// of each declare. Strict: a site whose dependency is missing, or cannot run
/// under it, is an error.
fn resolve(
    config: &Config,
    strict: bool,
) -> Result<(BTreeMap<String, DependencyConfig>, SiteOperations), ConfigError> {
    let mut configs: BTreeMap<String, DependencyConfig> = config.dependencies().clone();
    let mut problems = Vec::new();
    for site in sites() {
        match configs.get(site.dependency) {
            Some(dep) if strict => problems.extend(misfit(site, dep, config)),
            Some(_) => {}
            None if strict => problems.push(CallSiteProblem {
                file: site.file,
                line: site.line,
                dependency: site.dependency,
                operation: site.operation,
                reason: CallSiteReason::UnknownDependency {
                    listed: configs.keys().cloned().collect(),
                },
            }),
            None => {
                configs.insert(
                    site.dependency.to_owned(),
                    config.unlisted(site.dependency, site.kind)?,
                );
            }
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::CallSites { problems });
    }
    let mut operations = SiteOperations::new();
    for site in sites() {
        let (ops, flags) = operations.entry(site.dependency).or_default();
        ops.push(site.operation);
        flags.idempotent |= site.idempotent;
        flags.fallback |= site.fallback;
    }
    Ok((configs, operations))
}

/// Whether some dependency's rate limit holds across the cluster.
fn needs_cluster(configs: &BTreeMap<String, DependencyConfig>) -> bool {
    configs.values().any(|c| {
        c.rate_limit
            .is_some_and(|r| r.scope == RateLimitScope::Cluster)
    })
}

fn is_pool(bulkhead: &crate::bulkhead::BulkheadConfig) -> bool {
    matches!(bulkhead, crate::bulkhead::BulkheadConfig::ThreadPool { .. })
}

/// A reload may not switch a dependency between the two bulkheads: its calls
/// in flight hold the old kind's slots.
fn switched_bulkhead(
    config: &Config,
    name: &str,
    old: &crate::bulkhead::BulkheadConfig,
) -> ConfigError {
    let path = format!("resilience.external_dependencies.{name}.bulkhead_type");
    let (from, to) = if is_pool(old) {
        ("thread_pool", "semaphore")
    } else {
        ("semaphore", "thread_pool")
    };
    let line = config.line_of(&path);
    let mut error = ConfigError::value(
        path,
        format!(
            "a reload cannot switch `{name}` from {from} to {to}: its calls in flight hold \
             {from} slots. Keep bulkhead_type: {from} here, or restart the service to change it"
        ),
    );
    if let ConfigError::Invalid { line: at, .. } = &mut error {
        *at = line;
    }
    error
}

/// Why `site` cannot run under `dep`, if it cannot. (A site whose kind
/// differs from the configured `type` can: the configured type decides.)
fn misfit(site: &CallSite, dep: &DependencyConfig, config: &Config) -> Option<CallSiteProblem> {
    let pool = matches!(
        dep.bulkhead,
        crate::bulkhead::BulkheadConfig::ThreadPool { .. }
    );
    (pool && site.flavor == Flavor::Async).then(|| CallSiteProblem {
        file: site.file,
        line: site.line,
        dependency: site.dependency,
        operation: site.operation,
        reason: CallSiteReason::AsyncOnThreadPool {
            config_line: config.line_of(&format!(
                "resilience.external_dependencies.{}.bulkhead_type",
                dep.name
            )),
        },
    })
}

/// Builds and installs the global runtime. Never replaces an earlier one,
/// and says so before looking at the new configuration.
pub(crate) fn install(
    build: impl FnOnce() -> Result<Runtime, ConfigError>,
) -> Result<&'static Runtime, ConfigError> {
    if GLOBAL.get().is_some() {
        return Err(ConfigError::AlreadyInitialised);
    }
    GLOBAL
        .set(build()?)
        .map_err(|_| ConfigError::AlreadyInitialised)?;
    defaults::warn_if_used_before_init();
    Ok(GLOBAL.get().expect("just set"))
}

/// The initialised global runtime.
pub(crate) fn installed() -> Result<&'static Runtime, ConfigError> {
    GLOBAL.get().ok_or(ConfigError::NotInitialised)
}

/// The runtime outside any scope: the initialised one, else the defaults.
pub(crate) fn global() -> &'static Runtime {
    GLOBAL.get().unwrap_or_else(|| &DEFAULTS)
}

/// The snapshot of the runtime in force for the current task.
pub(crate) fn current_snapshot() -> HealthSnapshot {
    CURRENT
        .try_with(Runtime::health_snapshot)
        .unwrap_or_else(|_| global().health_snapshot())
}

/// The dependency `site` calls, in the runtime in force. An index, not a
/// name lookup. `None` only in strict mode, before initialisation: then
/// [`defaults::refusal`] is the call's error. (An `Option` of a pointer is
/// returned in registers; a `Result` carrying the error was 14 instructions a
/// call dearer under callgrind.)
#[inline]
pub(crate) fn dependency(site: &'static CallSite) -> Option<DepRef> {
    require_tokio(site);
    let i = site.index();
    match CURRENT.try_with(|rt| Arc::clone(&rt.inner.by_site[i])) {
        Ok(dep) => Some(DepRef::Scoped(dep)),
        Err(_) => match GLOBAL.get() {
            Some(rt) => Some(DepRef::Global(&rt.inner.by_site[i])),
            None => defaults::admit(site).then(|| DepRef::Global(&DEFAULTS.inner.by_site[i])),
        },
    }
}

/// Every call needs a tokio runtime with its time driver: a pending call arms
/// a timer. Without this check a call that completes at once would work and
/// one that waits would panic deep inside tokio, so a test could pass while
/// production panics. Checked on every call, cheaply: a runtime's own worker
/// thread (or a current-thread runtime's `block_on`) is known from a
/// thread-local read; only other threads ask for the runtime's handle.
#[inline]
fn require_tokio(site: &'static CallSite) {
    if tokio::runtime::worker_index().is_none() && tokio::runtime::Handle::try_current().is_err() {
        outside_tokio(site)
    }
}

#[cold]
#[inline(never)]
fn outside_tokio(site: &'static CallSite) -> ! {
    panic!(
        "`{}` ({}/{} at {}) was called outside a tokio runtime. Annotated calls need one, with \
         its time driver enabled: run them under #[tokio::main] or #[tokio::test], or in a \
         runtime built with enable_all() (or enable_time())",
        site.operation,
        site.dependency,
        site.operation,
        site.location()
    )
}
