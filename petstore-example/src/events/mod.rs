//! `kafka_events`: order events. Each event is written to the database's
//! outbox in the order's own transaction, so none is lost. A background relay
//! ([`Events::spawn_relay`]) publishes pending events, oldest first, and
//! marks each delivered once the broker acknowledges it: to NATS JetStream
//! (stream `PETSTORE_EVENTS`, subjects `petstore.>`) when `NATS_URL` is set,
//! else to the [embedded broker](Broker). An order only wakes the relay, so a
//! dead broker never holds an order; its events wait in the outbox.

mod broker;
mod nats;

pub use broker::{Broker, BrokerStats, Delivered};
pub use nats::STREAM;

use crate::background::{self, Pass, Wake, Worker};
use crate::db::{self, Db};
use crate::error::DepError;
use nats::NatsLink;
use resilience_runtime::message_queue_call;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Events one relay pass takes on at most.
const BATCH: i64 = 500;
/// A relay pass runs at least this often, woken or not.
const PERIOD: Duration = Duration::from_secs(5);

/// Where events go after the outbox, and the relay's state.
#[derive(Clone)]
pub struct Events {
    sink: Sink,
    wake: Wake,
    status: Arc<Mutex<Status>>,
}

#[derive(Clone)]
enum Sink {
    Embedded(Arc<Broker>),
    Nats(Arc<NatsLink>),
}

#[derive(Default)]
struct Status {
    published: u64,
    last_error: Option<String>,
}

/// What a relay pass did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RelayReport {
    /// Events delivered in this pass.
    pub published: usize,
    /// Events still waiting in the outbox.
    pub pending: i64,
    /// Why delivery stopped, if it did.
    pub error: Option<String>,
}

/// The relay as `GET /events` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EventsStatus {
    /// `embedded` or `nats`.
    pub backend: &'static str,
    /// Events waiting in the outbox.
    pub pending: i64,
    /// Events this process has delivered.
    pub published: u64,
    /// Why the last pass stopped, if it failed; cleared by a clean pass.
    pub last_error: Option<String>,
}

impl Events {
    /// Relays to a new embedded broker, started on the current tokio runtime.
    pub fn embedded() -> Events {
        Events::with(Sink::Embedded(Arc::new(Broker::start())))
    }

    /// Relays to NATS at `url`; connects on first use and again after a failure.
    pub fn nats(url: &str) -> Events {
        Events::with(Sink::Nats(Arc::new(NatsLink::new(url))))
    }

    fn with(sink: Sink) -> Events {
        Events {
            sink,
            wake: Wake::default(),
            status: Arc::default(),
        }
    }

    /// `embedded` or `nats`.
    pub fn backend(&self) -> &'static str {
        match self.sink {
            Sink::Embedded(_) => "embedded",
            Sink::Nats(_) => "nats",
        }
    }

    /// The embedded broker, when events go to it.
    pub fn broker(&self) -> Option<&Broker> {
        match &self.sink {
            Sink::Embedded(broker) => Some(broker),
            Sink::Nats(_) => None,
        }
    }

    /// Points the relay at another NATS URL (for example once the broker is back).
    pub async fn set_url(&self, url: &str) {
        if let Sink::Nats(link) = &self.sink {
            link.set_url(url).await;
        }
    }

    /// Asks the relay for a pass now; returns at once.
    pub fn wake(&self) {
        self.wake.wake();
    }

    /// Publishes pending outbox events, oldest first, until one fails.
    pub async fn relay(&self, db: &Db) -> Result<RelayReport, DepError> {
        let mut report = RelayReport::default();
        for event in db::pending_events(db, BATCH).await? {
            if let Err(e) = publish(&self.sink, &event.subject, &event.id, &event.payload).await {
                report.error = Some(e.to_string());
                break;
            }
            db::mark_published(db, &event.id).await?;
            report.published += 1;
        }
        report.pending = db::outbox_counts(db).await?.0;
        let mut status = self.status.lock().unwrap();
        status.published += report.published as u64;
        status.last_error.clone_from(&report.error);
        Ok(report)
    }

    /// The relay's state and the outbox's backlog.
    pub async fn status(&self, db: &Db) -> Result<EventsStatus, DepError> {
        let pending = db::outbox_counts(db).await?.0;
        let status = self.status.lock().unwrap();
        Ok(EventsStatus {
            backend: self.backend(),
            pending,
            published: status.published,
            last_error: status.last_error.clone(),
        })
    }

    /// Runs relay passes in the background, on [`wake`](Events::wake) and
    /// every 5 s, backing off while the broker fails. A failure is printed
    /// once, when delivery stops, and once more when it resumes.
    pub fn spawn_relay(&self, db: Db) -> Worker {
        let events = self.clone();
        let failing = Arc::new(AtomicBool::new(false));
        background::spawn(&self.wake, PERIOD, move || {
            let (events, db, failing) = (events.clone(), db.clone(), Arc::clone(&failing));
            async move {
                let error = match events.relay(&db).await {
                    Ok(r) if r.error.is_none() => {
                        if failing.swap(false, Ordering::Relaxed) {
                            eprintln!("events: delivery resumed");
                        }
                        return if r.published == BATCH as usize {
                            Pass::More
                        } else {
                            Pass::Idle
                        };
                    }
                    Ok(r) => format!(
                        "{} ({} waiting in the outbox)",
                        r.error.unwrap_or_default(),
                        r.pending
                    ),
                    Err(e) => {
                        let error = format!("the outbox cannot be read: {e}");
                        events.status.lock().unwrap().last_error = Some(error.clone());
                        error
                    }
                };
                if !failing.swap(true, Ordering::Relaxed) {
                    eprintln!("events: delivery paused, retrying with backoff: {error}");
                }
                Pass::Failed
            }
        })
    }
}

/// Publishes one event and waits for the broker's acknowledgement. The event
/// id is the message id, so a repeat after a lost acknowledgement is dropped
/// by the broker's de-duplication.
#[message_queue_call(dependency = "kafka_events", operation = "publish_event")]
async fn publish(sink: &Sink, subject: &str, id: &str, payload: &str) -> Result<(), DepError> {
    match sink {
        Sink::Embedded(broker) => broker.publish(subject, id, payload).await,
        Sink::Nats(link) => link.publish(subject, id, payload).await,
    }
}
