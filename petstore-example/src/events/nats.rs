//! The NATS JetStream link: connects lazily, and again after a failure.

use crate::error::DepError;
use crate::redact;
use async_nats::jetstream;
use std::time::Duration;
use tokio::sync::Mutex;

/// The stream events go to.
pub const STREAM: &str = "PETSTORE_EVENTS";

/// A lazily (re)connected JetStream context.
pub struct NatsLink {
    url: std::sync::Mutex<String>,
    context: Mutex<Option<jetstream::Context>>,
}

impl NatsLink {
    pub fn new(url: &str) -> NatsLink {
        NatsLink {
            url: std::sync::Mutex::new(url.to_owned()),
            context: Mutex::new(None),
        }
    }

    pub async fn set_url(&self, url: &str) {
        *self.url.lock().unwrap() = url.to_owned();
        *self.context.lock().await = None;
    }

    /// Publishes one event with `id` as its message id, and waits for
    /// JetStream's acknowledgement.
    pub async fn publish(&self, subject: &str, id: &str, payload: &str) -> Result<(), DepError> {
        let mut context = self.context.lock().await;
        if context.is_none() {
            let url = self.url.lock().unwrap().clone();
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
