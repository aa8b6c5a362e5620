//! Helpers shared by the integration tests under `tests/tests`. This crate
//! holds no annotated functions, so it adds no call sites to the binaries.

use resilience_runtime::{DependencyHealth, ResilienceError, Runtime};

/// The error type the test functions return.
#[derive(Debug, PartialEq)]
pub enum TestError {
    /// A policy refused or cut off the call.
    Resilience(ResilienceError),
    /// The function itself failed.
    Failed(&'static str),
}

impl From<ResilienceError> for TestError {
    fn from(e: ResilienceError) -> Self {
        TestError::Resilience(e)
    }
}

impl TestError {
    /// The resilience error, if that is what this is.
    pub fn resilience(&self) -> Option<&ResilienceError> {
        match self {
            TestError::Resilience(e) => Some(e),
            TestError::Failed(_) => None,
        }
    }
}

/// One dependency's entry in `rt`'s snapshot.
pub fn health(rt: &Runtime, dependency: &str) -> DependencyHealth {
    rt.health_snapshot()
        .dependencies
        .get(dependency)
        .unwrap_or_else(|| panic!("no dependency {dependency} in the snapshot"))
        .clone()
}

/// The six counters every bulkhead has, in snapshot order: successful,
/// failed, timed out, rejected, short-circuited, cancelled. Checks that they
/// and `rate_limited_requests` sum to the total.
pub fn counters(rt: &Runtime, dependency: &str) -> [u64; 6] {
    let b = health(rt, dependency).bulkhead;
    let outcomes = b.outcomes();
    assert_eq!(
        b.total_requests,
        outcomes.iter().sum::<u64>() + b.rate_limited_requests,
        "the total is the sum of the outcomes"
    );
    outcomes
}

/// Yields until `condition` holds, for work finishing on other threads.
/// Panics after a bounded number of tries instead of hanging CI.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1_000_000 {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
        std::thread::yield_now();
    }
    panic!("gave up waiting for: {what}");
}

/// Collects the fields of every `tracing` event, as a service's subscriber
/// would receive them: install it with `tracing::subscriber::with_default`
/// or `set_global_default`.
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<(tracing::Level, String)>>>);

impl Logs {
    /// Takes the messages logged at `level` so far.
    pub fn take(&self, level: tracing::Level) -> Vec<String> {
        let mut all = self.0.lock().unwrap();
        let (taken, kept) = std::mem::take(&mut *all)
            .into_iter()
            .partition(|(l, _)| *l == level);
        *all = kept;
        taken.into_iter().map(|(_, text)| text).collect()
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        /// The message, then every other field as `name=value`.
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0.insert_str(0, &format!("{value:?} "));
                } else {
                    self.0.push_str(&format!("{}={value:?} ", field.name()));
                }
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let level = *event.metadata().level();
        self.0.lock().unwrap().push((level, fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A global allocator that counts this thread's allocations, for the
/// allocation tests: `#[global_allocator] static A: CountingAllocator =
/// CountingAllocator;` in the test binary, then [`allocations_per_call`].
pub struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by this thread while `f` runs `n` times, after one
/// warm-up run (counted only where [`CountingAllocator`] is the global
/// allocator).
pub async fn allocations_per_call<F, Fut>(n: u64, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await;
    let before = ALLOCATIONS.with(std::cell::Cell::get);
    for _ in 0..n {
        f().await;
    }
    (ALLOCATIONS.with(std::cell::Cell::get) - before) as f64 / n as f64
}
