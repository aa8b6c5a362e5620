//! `kafka_events`: order events. Each event is written to the database's
//! outbox in the order's own transaction, so none is lost. With `NATS_URL`
//! set, a relay publishes pending events to NATS JetStream (stream
//! `PETSTORE_EVENTS`, subjects `petstore.>`) and marks them delivered; while
//! NATS is unreachable they wait in the outbox. Without `NATS_URL` the outbox
//! table is the event store.

use crate::db::{self, Db};
use crate::error::DepError;
use crate::redact;
use async_nats::jetstream;
use resilience_runtime::message_queue_call;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The stream events go to.
pub const STREAM: &str = "PETSTORE_EVENTS";

/// Where events go after the outbox.
#[derive(Clone)]
pub enum Events {
    /// The outbox table is the event store.
    Outbox,
    /// Relayed to NATS JetStream.
    Nats(Arc<NatsLink>),
}

/// A lazily (re)connected JetStream context.
pub struct NatsLink {
    url: std::sync::Mutex<String>,
    context: Mutex<Option<jetstream::Context>>,
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

impl Events {
    /// Relays to NATS at `url`; connects on first use and again after a failure.
    pub fn nats(url: &str) -> Events {
        Events::Nats(Arc::new(NatsLink {
            url: std::sync::Mutex::new(url.to_owned()),
            context: Mutex::new(None),
        }))
    }

    /// `nats` or `outbox`.
    pub fn backend(&self) -> &'static str {
        match self {
            Events::Outbox => "outbox",
            Events::Nats(_) => "nats",
        }
    }

    /// Points the relay at another NATS URL (for example once the broker is back).
    pub async fn set_url(&self, url: &str) {
        if let Events::Nats(link) = self {
            *link.url.lock().unwrap() = url.to_owned();
            *link.context.lock().await = None;
        }
    }

    /// Publishes pending outbox events, oldest first, until one fails.
    pub async fn relay(&self, db: &Db) -> Result<RelayReport, DepError> {
        let mut report = RelayReport::default();
        if let Events::Nats(link) = self {
            for event in db::pending_events(db, 500).await? {
                if let Err(e) = publish(link, &event.subject, &event.id, &event.payload).await {
                    report.error = Some(e.reason());
                    break;
                }
                db::mark_published(db, &event.id).await?;
                report.published += 1;
            }
        }
        report.pending = db::outbox_counts(db).await?.0;
        Ok(report)
    }
}

async fn connect(url: &str) -> Result<jetstream::Context, DepError> {
    let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
    // async-nats ignores credentials written in the URL: pass them itself.
    if let Ok(addr) = url.parse::<async_nats::ServerAddr>() {
        if let (Some(user), Some(pass)) = (addr.username(), addr.password()) {
            options = options.user_and_password(user.to_owned(), pass.to_owned());
        }
    }
    let client = options.connect(url).await.map_err(|e| {
        DepError::Failed(redact::scrub(
            &format!("NATS unreachable at {url}: {e}"),
            url,
        ))
    })?;
    let js = jetstream::new(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: STREAM.to_owned(),
        subjects: vec!["petstore.>".to_owned()],
        ..Default::default()
    })
    .await
    .map_err(|e| DepError::Failed(format!("cannot create stream {STREAM}: {e}")))?;
    Ok(js)
}

/// Publishes one event and waits for JetStream's acknowledgement. The event
/// id is the message id, so a repeat after a lost acknowledgement is dropped
/// by JetStream's de-duplication.
#[message_queue_call(dependency = "kafka_events", operation = "publish_event")]
async fn publish(link: &NatsLink, subject: &str, id: &str, payload: &str) -> Result<(), DepError> {
    let mut context = link.context.lock().await;
    if context.is_none() {
        let url = link.url.lock().unwrap().clone();
        *context = Some(connect(&url).await?);
    }
    let js = context.as_ref().expect("connected");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    let sent = js
        .publish_with_headers(subject.to_owned(), headers, payload.to_owned().into())
        .await;
    let acked = match sent {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    acked.map_err(|e| {
        *context = None;
        DepError::Failed(format!("NATS publish failed: {e}"))
    })
}
