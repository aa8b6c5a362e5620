//! Each attempt runs in a `resilience.call` span with `dependency`,
//! `operation`, `attempt` and, once it ends, `outcome`; what the body logs,
//! on the caller's task or on a worker thread, is that span's child. A
//! capturing subscriber, installed globally (worker threads log through
//! the global dispatcher), records spans, their fields and each event's
//! parent.

use resilience_runtime::{database_call, file_system_call, Runtime};
use resilience_tests::TestError;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Debug)]
struct SpanRec {
    name: String,
    fields: BTreeMap<String, String>,
    parent: Option<u64>,
}

#[derive(Clone, Debug)]
struct EventRec {
    message: String,
    fields: BTreeMap<String, String>,
    parent: Option<u64>,
    level: tracing::Level,
}

#[derive(Default)]
struct Capture {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, SpanRec>>,
    events: Mutex<Vec<EventRec>>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

fn current() -> Option<u64> {
    STACK.with(|s| s.borrow().last().copied())
}

struct Fields(BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

/// The global subscriber: a handle on the one capture.
struct Handle(&'static Capture);

impl std::ops::Deref for Handle {
    type Target = Capture;
    fn deref(&self) -> &Capture {
        self.0
    }
}

impl Subscriber for Handle {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        let parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => current(),
            None => None,
        };
        let name = attrs.metadata().name().to_owned();
        let rec = SpanRec {
            name,
            fields: fields.0,
            parent,
        };
        self.spans.lock().unwrap().insert(id, rec);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = Fields(BTreeMap::new());
        values.record(&mut fields);
        if let Some(rec) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            rec.fields.extend(fields.0);
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let parent = match event.parent() {
            Some(p) => Some(p.into_u64()),
            None if event.is_contextual() => current(),
            None => None,
        };
        self.events.lock().unwrap().push(EventRec {
            message,
            fields: fields.0,
            parent,
            level: *event.metadata().level(),
        });
    }
    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(at) = s.iter().rposition(|&id| id == span.into_u64()) {
                s.remove(at);
            }
        });
    }
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let capture = CAPTURE.get_or_init(Capture::default);
    INSTALLED.get_or_init(|| tracing::subscriber::set_global_default(Handle(capture)).unwrap());
    capture
}

impl Capture {
    /// The `resilience.call` spans of `operation`, oldest first.
    fn calls(&self, operation: &str) -> Vec<(u64, SpanRec)> {
        let mut calls: Vec<_> = self
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| {
                s.name == "resilience.call"
                    && s.fields.get("operation").map(String::as_str) == Some(operation)
            })
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        calls.sort_by_key(|(id, _)| *id);
        calls
    }

    fn events_in(&self, span: u64) -> Vec<EventRec> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.parent == Some(span))
            .cloned()
            .collect()
    }

    fn parent_of(&self, span: u64) -> Option<u64> {
        self.spans.lock().unwrap()[&span].parent
    }
}

const CONFIG: &str = "
resilience:
  external_dependencies:
    db: { type: database, timeout_seconds: 1, max_retry_attempts: 2, retry_initial_delay_seconds: 0.01, retry_jitter: none }
    files: { type: file_system, bulkhead_type: thread_pool, max_workers: 1, timeout_seconds: 5 }
";

#[database_call(dependency = "db")]
async fn lookup(id: u64) -> Result<u64, TestError> {
    let _child = tracing::info_span!("parse").entered();
    tracing::info!(id, "looking up");
    Ok(id)
}

#[file_system_call(dependency = "files")]
fn checksum(bytes: Vec<u8>) -> Result<u64, TestError> {
    tracing::info!(len = bytes.len(), "hashing on a worker");
    Ok(bytes.iter().map(|&b| u64::from(b)).sum())
}

#[database_call(dependency = "db", idempotent)]
async fn flaky(fails: Arc<AtomicU64>) -> Result<u64, TestError> {
    if fails.fetch_sub(1, Ordering::SeqCst) > 0 {
        return Err(TestError::Failed("once"));
    }
    Ok(7)
}

#[database_call(dependency = "db")]
async fn stuck() -> Result<u64, TestError> {
    std::future::pending().await
}

#[tokio::test]
async fn an_async_bodys_events_and_spans_are_children_of_its_call_span() {
    let capture = capture();
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    assert_eq!(rt.scope(lookup(3)).await, Ok(3));
    let calls = capture.calls("lookup");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (id, span) = &calls[0];
    assert_eq!(span.fields["dependency"], "db");
    assert_eq!(span.fields["attempt"], "1");
    assert_eq!(span.fields["outcome"], "successful");
    let events: Vec<_> = capture
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.message == "looking up")
        .cloned()
        .collect();
    assert_eq!(events.len(), 1);
    let parse = events[0]
        .parent
        .expect("the event is inside the body's span");
    assert_eq!(
        capture.parent_of(parse),
        Some(*id),
        "the body's span is the call's child"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_bodys_events_on_the_worker_thread_are_the_calls_children() {
    let capture = capture();
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    assert_eq!(rt.scope(checksum(vec![1, 2, 3])).await, Ok(6));
    let calls = capture.calls("checksum");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (id, span) = &calls[0];
    assert_eq!(
        (
            span.fields["dependency"].as_str(),
            span.fields["outcome"].as_str()
        ),
        ("files", "successful")
    );
    let inside = capture.events_in(*id);
    assert_eq!(inside.len(), 1, "{inside:?}");
    assert_eq!(inside[0].message, "hashing on a worker");
    assert_eq!(inside[0].fields["len"], "3");
}

#[tokio::test(start_paused = true)]
async fn each_attempt_has_its_span_and_a_timeout_is_a_debug_event_inside_it() {
    let capture = capture();
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    assert_eq!(rt.scope(flaky(Arc::new(AtomicU64::new(1)))).await, Ok(7));
    let attempts: Vec<_> = capture
        .calls("flaky")
        .into_iter()
        .map(|(_, s)| (s.fields["attempt"].clone(), s.fields["outcome"].clone()))
        .collect();
    assert_eq!(
        attempts,
        [
            ("1".into(), "failed".into()),
            ("2".into(), "successful".into())
        ]
    );

    let started = tokio::time::Instant::now();
    let timed_out = tokio::spawn(rt.scope(stuck()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(timed_out.await.unwrap().is_err());
    assert!(started.elapsed() >= Duration::from_secs(1));
    let calls = capture.calls("stuck");
    let (id, span) = &calls[0];
    assert_eq!(span.fields["outcome"], "timed_out");
    let said = capture.events_in(*id);
    assert!(
        said.iter()
            .any(|e| e.level == tracing::Level::DEBUG && e.message == "call timed out"),
        "{said:?}"
    );
}
