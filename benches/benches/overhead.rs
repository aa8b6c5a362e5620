//! Per-call overhead of the annotated path against peers, in one process, on
//! the same trivial function, with every layer built once outside the timed
//! loop. Run: `cargo bench -p resilience-bench`. BENCHMARKS.md has results.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use resilience_runtime::{database_call, ResilienceError};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tower::{Service, ServiceBuilder, ServiceExt};

#[derive(Debug)]
struct BenchError;

impl From<ResilienceError> for BenchError {
    fn from(_: ResilienceError) -> Self {
        BenchError
    }
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bench error")
    }
}

impl std::error::Error for BenchError {}

const CONFIG: &str = "
resilience:
  external_dependencies:
    bench_db: { type: database, max_concurrent: 1024, timeout_seconds: 10 }
    bench_full: { type: database, max_concurrent: 1, reject_on_full: true }
    bench_open: { type: database, circuit_breaker_failure_threshold: 1, circuit_breaker_timeout: 86400 }
    bench_pool: { type: external_api, bulkhead_type: thread_pool, max_workers: 1, timeout_seconds: 10 }
    bench_retry: { type: database, max_concurrent: 1024, timeout_seconds: 10, max_retry_attempts: 3 }
    bench_limited: { type: database, max_concurrent: 1024, timeout_seconds: 10,
                     rate_limit_per_second: 1000000, rate_limit_burst: 1000000 }
    bench_all: { type: database, max_concurrent: 1024, timeout_seconds: 10, max_retry_attempts: 3,
                 rate_limit_per_second: 1000000, rate_limit_burst: 1000000 }
    bench_paced: { type: database, max_concurrent: 1024, timeout_seconds: 10,
                   rate_limit_per_second: 0.001, rate_limit_burst: 1 }
";

/// Calls per fresh limiter: fewer than its burst, so every call is admitted.
const CHUNK: u64 = 500_000;

/// Times `iters` calls of `call` in a scope of its own, starting a fresh
/// runtime (so fresh limiters) every [`CHUNK`] calls; only the calls count.
///
/// Generic over the call, as [`bench_async`] is: through a function pointer
/// the call's future would be built in a return slot and copied into place
/// (about 20 ns for an 800-byte future), which no direct caller pays.
fn bench_fresh<F, Fut>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    call: F,
) where
    F: Fn(u64) -> Fut + Copy,
    Fut: Future<Output = Result<u64, BenchError>>,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                left -= n;
                let scoped = resilience_runtime::Runtime::from_yaml_str(CONFIG).unwrap();
                total += rt.block_on(scoped.scope(async move {
                    let start = Instant::now();
                    for i in 0..n {
                        black_box(call(black_box(i)).await.unwrap());
                    }
                    start.elapsed()
                }));
            }
            total
        })
    });
}

/// Times `iters` admitted decisions of a limiter `make` returns, a fresh
/// one every [`CHUNK`] calls (below its burst); only the decisions count.
fn bench_fresh_limiter<L>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    make: impl Fn() -> L,
    admit: impl Fn(&L) -> bool,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                left -= n;
                let limiter = make();
                let start = Instant::now();
                for _ in 0..n {
                    assert!(black_box(admit(&limiter)));
                }
                total += start.elapsed();
            }
            total
        })
    });
}

/// The local limiter per decision, against governor's, both admitting
/// everything (a fresh limiter every [`CHUNK`] calls, below its burst) and
/// both refusing everything.
fn rate_limiting(c: &mut Criterion) {
    use governor::{Quota, RateLimiter};
    use std::num::NonZeroU32;
    let rt = current_thread();
    let mut group = c.benchmark_group("rate_limiter");
    bench_fresh(&mut group, "annotated_without_limiter", &rt, annotated);
    bench_fresh(&mut group, "annotated_admitted", &rt, limited);
    let million = NonZeroU32::new(1_000_000).unwrap();
    bench_fresh_limiter(
        &mut group,
        "governor_admitted",
        || RateLimiter::direct(Quota::per_second(million).allow_burst(million)),
        |limiter| limiter.check().is_ok(),
    );
    // Our GCRA alone, on the same terms as governor's `check()`.
    bench_fresh_limiter(
        &mut group,
        "gcra_admitted",
        || resilience_runtime::__private::GcraForBench::new(1e6, 1_000_000),
        |limiter| limiter.check(),
    );
    let gcra = resilience_runtime::__private::GcraForBench::new(1.0 / 3600.0, 1);
    assert!(gcra.check());
    group.bench_function("gcra_refused", |b| {
        b.iter(|| assert!(!black_box(gcra.check())))
    });
    rt.block_on(async {
        paced(0).await.unwrap();
        assert!(paced(0).await.is_err(), "the one turn is taken");
    });
    bench_async(&mut group, "annotated_refused", &rt, paced);
    let governor = RateLimiter::direct(Quota::per_hour(NonZeroU32::new(1).unwrap()));
    assert!(governor.check().is_ok());
    group.bench_function("governor_refused", |b| {
        b.iter(|| assert!(black_box(governor.check()).is_err()))
    });
    // What a decision would pay on tokio's clock (std's Instant here),
    // which the policies read only once a paused clock has been seen.
    let anchor = tokio::time::Instant::now();
    group.bench_function("tokio_clock_read", |b| {
        b.iter(|| black_box(tokio::time::Instant::now().saturating_duration_since(anchor)))
    });
    // The reading a limiter does take: the CPU's counter where it serves.
    group.bench_function("policy_clock_read", |b| {
        b.iter(|| black_box(resilience_runtime::__private::policy_clock_for_bench()))
    });
    group.finish();
}

async fn direct(x: u64) -> Result<u64, BenchError> {
    Ok(x + 1)
}

async fn direct_pending(x: u64) -> Result<u64, BenchError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

#[database_call(dependency = "bench_db")]
async fn annotated(x: u64) -> Result<u64, BenchError> {
    Ok(x + 1)
}

#[database_call(dependency = "bench_db")]
async fn annotated_pending(x: u64) -> Result<u64, BenchError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

/// A call that is pending ten times before it ends, as a query that waits
/// on its socket a few times does.
async fn direct_pending_ten(x: u64) -> Result<u64, BenchError> {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    Ok(x + 1)
}

#[database_call(dependency = "bench_db")]
async fn annotated_pending_ten(x: u64) -> Result<u64, BenchError> {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    Ok(x + 1)
}

/// The same call on a dependency with three retries configured: its first
/// attempt succeeds.
#[database_call(dependency = "bench_retry", idempotent)]
async fn annotated_idempotent(x: u64) -> Result<u64, BenchError> {
    Ok(x + 1)
}

#[database_call(dependency = "bench_full")]
async fn hold_slot() -> Result<(), BenchError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[database_call(dependency = "bench_full")]
async fn rejected(x: u64) -> Result<u64, BenchError> {
    Ok(x)
}

#[database_call(dependency = "bench_open")]
async fn short_circuited(fail: bool) -> Result<u64, BenchError> {
    if fail {
        Err(BenchError)
    } else {
        Ok(1)
    }
}

#[resilience_runtime::api_call(dependency = "bench_pool")]
fn on_pool(x: u64) -> Result<u64, BenchError> {
    Ok(x + 1)
}

#[database_call(dependency = "bench_limited")]
async fn limited(x: u64) -> Result<u64, BenchError> {
    Ok(x + 1)
}

#[database_call(dependency = "bench_paced")]
async fn paced(x: u64) -> Result<u64, BenchError> {
    Ok(x + 1)
}

/// Every policy that has landed on one dependency: breaker, bulkhead, call
/// timeout, three retries (the first attempt succeeds) and a rate limiter
/// with turns free.
#[database_call(dependency = "bench_all", idempotent)]
async fn all_policies_ready(x: u64) -> Result<u64, BenchError> {
    Ok(x + 1)
}

#[database_call(dependency = "bench_all", idempotent)]
async fn all_policies_pending(x: u64) -> Result<u64, BenchError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Times `iters` sequential awaits of `call` inside one `block_on`.
fn bench_async<F, Fut, T>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    mut call: F,
) where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = T>,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(call(black_box(i)).await);
                }
                start.elapsed()
            })
        })
    });
}

/// Times `iters` sequential calls of a tower service, readied each time.
fn bench_service<S>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    mut svc: S,
) where
    S: Service<u64>,
    S::Error: std::fmt::Debug,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(svc.ready().await.unwrap().call(black_box(i)).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
}

fn ready_and_pending(c: &mut Criterion) {
    let rt = current_thread();
    for (group_name, yields) in [("ready", 0), ("pending_once", 1), ("pending_ten", 10)] {
        let mut group = c.benchmark_group(group_name);
        let body = move |x: u64| async move {
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            Ok::<u64, BenchError>(x + 1)
        };
        match yields {
            0 => {
                bench_async(&mut group, "direct", &rt, direct);
                bench_async(&mut group, "annotated", &rt, annotated);
            }
            1 => {
                bench_async(&mut group, "direct", &rt, direct_pending);
                bench_async(&mut group, "annotated", &rt, annotated_pending);
            }
            _ => {
                bench_async(&mut group, "direct", &rt, direct_pending_ten);
                bench_async(&mut group, "annotated", &rt, annotated_pending_ten);
            }
        }

        let semaphore = tokio::sync::Semaphore::new(1024);
        bench_async(&mut group, "tokio_semaphore_timeout", &rt, |x| {
            let semaphore = &semaphore;
            async move {
                let _permit = semaphore.try_acquire().unwrap();
                tokio::time::timeout(Duration::from_secs(10), body(x)).await
            }
        });

        let tower_svc = ServiceBuilder::new()
            .concurrency_limit(1024)
            .timeout(Duration::from_secs(10))
            .service_fn(body);
        bench_service(&mut group, "tower_limit_timeout", &rt, tower_svc);

        let resilience_svc = rt.block_on(async {
            ServiceBuilder::new()
                .layer(
                    tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
                        .build()
                        .unwrap(),
                )
                .layer(
                    tower_resilience::bulkhead::BulkheadLayer::builder()
                        .max_concurrent_calls(1024)
                        .build()
                        .unwrap(),
                )
                .layer(
                    tower_resilience::timelimiter::TimeLimiterLayer::builder()
                        .timeout_duration(Duration::from_secs(10))
                        .build(),
                )
                .service_fn(move |x: u64| async move {
                    body(x).await.map_err(|_| std::io::Error::other("x"))
                })
        });
        bench_service(&mut group, "tower_resilience", &rt, resilience_svc);

        let failsafe = failsafe::Config::new().build();
        bench_async(&mut group, "failsafe", &rt, |x| {
            failsafe::futures::CircuitBreaker::call(&failsafe, body(x))
        });

        let recloser = recloser::AsyncRecloser::from(recloser::Recloser::default());
        bench_async(&mut group, "recloser", &rt, |x| recloser.call(body(x)));
        group.finish();
    }
}

/// Every policy at once (see `all_policies_ready`) against tower's
/// `ConcurrencyLimit` + `Timeout`, ready and pending once. A fresh runtime
/// every [`CHUNK`] calls keeps the limiter's turns free.
fn all_policies(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("all_policies");
    bench_async(&mut group, "ready_direct", &rt, direct);
    bench_fresh(&mut group, "ready_annotated", &rt, all_policies_ready);
    let tower_ready = ServiceBuilder::new()
        .concurrency_limit(1024)
        .timeout(Duration::from_secs(10))
        .service_fn(direct);
    bench_service(&mut group, "ready_tower_limit_timeout", &rt, tower_ready);
    bench_async(&mut group, "pending_direct", &rt, direct_pending);
    bench_fresh(&mut group, "pending_annotated", &rt, all_policies_pending);
    let tower_pending = ServiceBuilder::new()
        .concurrency_limit(1024)
        .timeout(Duration::from_secs(10))
        .service_fn(direct_pending);
    bench_service(
        &mut group,
        "pending_tower_limit_timeout",
        &rt,
        tower_pending,
    );
    group.finish();
}

/// `ResilienceLayer` on a `service_fn`, against tower's `ConcurrencyLimit` +
/// `Timeout` on the same service, ready and pending once.
fn tower_layer(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("tower_layer");
    layered_pair(&mut group, "ready", &rt, direct);
    layered_pair(&mut group, "pending", &rt, direct_pending);
    group.finish();
}

/// `call` behind `ResilienceLayer`, then behind tower's two layers.
fn layered_pair<Fut>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    call: fn(u64) -> Fut,
) where
    Fut: Future<Output = Result<u64, BenchError>> + Send + 'static,
{
    use resilience_runtime::tower::ResilienceLayer;
    let ours = ServiceBuilder::new()
        .layer(ResilienceLayer::new("bench_db", "layered"))
        .service_fn(call);
    bench_service(group, &format!("{name}_resilience_layer"), rt, ours);
    let tower = ServiceBuilder::new()
        .concurrency_limit(1024)
        .timeout(Duration::from_secs(10))
        .service_fn(call);
    bench_service(group, &format!("{name}_tower_limit_timeout"), rt, tower);
}

/// The pending-once call on a 2-worker multi-thread runtime, where a
/// service's calls run: in a task on a worker (`pending_once_multi_thread`),
/// and in `block_on` on the bench thread, which is no worker
/// (`pending_once_multi_thread_block_on`).
fn pending_multi_thread(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tower_svc = ServiceBuilder::new()
        .concurrency_limit(1024)
        .timeout(Duration::from_secs(10))
        .service_fn(direct_pending);
    let mut group = c.benchmark_group("pending_once_multi_thread");
    bench_in_task(&mut group, "direct", &rt, direct_pending);
    bench_in_task(&mut group, "annotated", &rt, annotated_pending);
    group.bench_function("tower_limit_timeout", |b| {
        b.iter_custom(|iters| {
            let mut svc = tower_svc.clone();
            rt.block_on(rt.spawn(async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(svc.ready().await.unwrap().call(black_box(i)).await.unwrap());
                }
                start.elapsed()
            }))
            .unwrap()
        })
    });
    group.finish();
    let mut group = c.benchmark_group("pending_once_multi_thread_block_on");
    bench_async(&mut group, "direct", &rt, direct_pending);
    bench_async(&mut group, "annotated", &rt, annotated_pending);
    bench_service(&mut group, "tower_limit_timeout", &rt, tower_svc);
    group.finish();
}

/// Times `iters` sequential awaits of `call` in a task spawned on `rt`.
fn bench_in_task<Fut>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    call: fn(u64) -> Fut,
) where
    Fut: Future<Output = Result<u64, BenchError>> + Send + 'static,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(rt.spawn(async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(call(black_box(i)).await.unwrap());
                }
                start.elapsed()
            }))
            .unwrap()
        })
    });
}

fn saying_no(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("saying_no");
    let mut holder = Box::pin(hold_slot());
    rt.block_on(async {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(
            holder.as_mut().poll(&mut cx).is_pending(),
            "holder takes the only slot"
        );
        assert!(rejected(0).await.is_err());
        assert!(short_circuited(true).await.is_err());
        assert!(short_circuited(false).await.is_err(), "breaker is open");
    });
    bench_async(&mut group, "annotated_rejected", &rt, rejected);
    bench_async(&mut group, "annotated_short_circuited", &rt, |_| {
        short_circuited(false)
    });

    let failsafe = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            1,
            failsafe::backoff::constant(Duration::from_secs(86_400)),
        ))
        .build();
    let recloser = recloser::AsyncRecloser::from(
        recloser::Recloser::custom()
            .closed_len(1)
            .error_rate(0.5)
            .open_wait(Duration::from_secs(86_400))
            .build(),
    );
    rt.block_on(async {
        for _ in 0..3 {
            let _ =
                failsafe::futures::CircuitBreaker::call(&failsafe, async { Err::<u64, ()>(()) })
                    .await;
            let _ = recloser.call(async { Err::<u64, ()>(()) }).await;
        }
        assert!(matches!(
            failsafe::futures::CircuitBreaker::call(&failsafe, async { Ok::<u64, ()>(1) }).await,
            Err(failsafe::Error::Rejected)
        ));
        assert!(matches!(
            recloser.call(async { Ok::<u64, ()>(1) }).await,
            Err(recloser::Error::Rejected)
        ));
    });
    bench_async(&mut group, "failsafe_open", &rt, |x| {
        failsafe::futures::CircuitBreaker::call(&failsafe, async move { Ok::<u64, ()>(x) })
    });
    bench_async(&mut group, "recloser_open", &rt, |x| {
        recloser.call(async move { Ok::<u64, ()>(x) })
    });
    group.finish();
    drop(holder);
}

fn contention(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("contention");
    for threads in [1u64, 2] {
        group.throughput(Throughput::Elements(threads));
        group.bench_function(format!("annotated_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..threads)
                        .map(|_| {
                            tokio::spawn(async move {
                                for i in 0..iters {
                                    black_box(annotated(black_box(i)).await.unwrap());
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        // The floor for any exact shared limit: one acquire and one release
        // on a word every thread writes.
        let shared = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        group.bench_function(format!("bare_shared_atomic_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..threads)
                        .map(|_| {
                            let shared = shared.clone();
                            tokio::spawn(async move {
                                use std::sync::atomic::Ordering::{Acquire, Release};
                                for _ in 0..iters {
                                    black_box(shared.fetch_add(1, Acquire));
                                    black_box(shared.fetch_sub(1, Release));
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        let svc = ServiceBuilder::new()
            .concurrency_limit(1024)
            .timeout(Duration::from_secs(10))
            .service_fn(|x: u64| async move { Ok::<u64, Infallible>(x + 1) });
        group.bench_function(format!("tower_limit_timeout_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..threads)
                        .map(|_| {
                            let mut svc = svc.clone();
                            tokio::spawn(async move {
                                for i in 0..iters {
                                    black_box(
                                        svc.ready()
                                            .await
                                            .unwrap()
                                            .call(black_box(i))
                                            .await
                                            .unwrap(),
                                    );
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

/// Up to three retries of any error, with no wait: the least a tower
/// `Retry` policy can do.
#[derive(Clone)]
struct RetryErrors(u32);

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for RetryErrors {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        (result.is_err() && self.0 > 0).then(|| {
            self.0 -= 1;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// A retried call whose first attempt succeeds: the price of being ready to
/// retry, next to the plain annotated call and the peers' retries.
fn retry(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("retry");
    bench_async(&mut group, "annotated", &rt, annotated);
    bench_async(
        &mut group,
        "annotated_idempotent",
        &rt,
        annotated_idempotent,
    );
    let tower_retry = ServiceBuilder::new()
        .layer(tower::retry::RetryLayer::new(RetryErrors(3)))
        .service_fn(direct);
    bench_service(&mut group, "tower_retry", &rt, tower_retry);
    bench_async(&mut group, "backon", &rt, |x| {
        use backon::Retryable;
        (move || direct(x))
            .retry(backon::ExponentialBuilder::default().with_max_times(3))
            .sleep(tokio::time::sleep)
    });
    group.finish();
}

fn thread_pool_hop(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("thread_pool_hop");
    bench_async(&mut group, "annotated_thread_pool", &rt, on_pool);
    bench_async(&mut group, "tokio_spawn_blocking", &rt, |x| {
        tokio::task::spawn_blocking(move || x + 1)
    });
    group.finish();
}

fn init() {
    resilience_runtime::init_from_yaml_str(CONFIG).expect("bench config");
}

fn all(c: &mut Criterion) {
    init();
    ready_and_pending(c);
    pending_multi_thread(c);
    all_policies(c);
    tower_layer(c);
    retry(c);
    saying_no(c);
    rate_limiting(c);
    contention(c);
    thread_pool_hop(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = all
}
criterion_main!(benches);
