//! The embedded broker: an in-process stand-in for NATS, as the in-process
//! cache stands in for Redis, so the default petstore relays its events
//! through `kafka_events` like a deployment with a real broker. A publish
//! waits until the consumer has acknowledged the message; a message id seen
//! before is acknowledged without being delivered again (JetStream's
//! de-duplication does the same), so a relay that repeats a publish after a
//! lost acknowledgement delivers it once.

use crate::error::DepError;
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Messages waiting for the consumer; a full queue makes publishers wait.
const QUEUE: usize = 1024;
/// Message ids remembered for de-duplication, and messages kept for reading.
const REMEMBERED: usize = 10_000;

/// A message the consumer acknowledged.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Delivered {
    pub id: String,
    pub subject: String,
    pub payload: String,
}

/// What the broker has done.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct BrokerStats {
    /// Messages the consumer acknowledged.
    pub acknowledged: u64,
    /// Publishes of an id already acknowledged: acknowledged, not delivered.
    pub duplicates: u64,
}

struct Message {
    delivered: Delivered,
    ack: oneshot::Sender<()>,
}

#[derive(Default)]
struct Log {
    ids: HashSet<String>,
    recent: VecDeque<Delivered>,
}

/// The broker and its acknowledging consumer. Dropping the last handle stops
/// the consumer.
pub struct Broker {
    queue: mpsc::Sender<Message>,
    log: Arc<Mutex<Log>>,
    stats: Arc<Counters>,
    down: AtomicBool,
}

#[derive(Default)]
struct Counters {
    acknowledged: AtomicU64,
    duplicates: AtomicU64,
}

impl Broker {
    /// Starts the broker's consumer on the current tokio runtime.
    pub fn start() -> Broker {
        let (queue, mut inbox) = mpsc::channel::<Message>(QUEUE);
        let log = Arc::new(Mutex::new(Log::default()));
        let stats = Arc::new(Counters::default());
        let (consumer_log, counters) = (Arc::clone(&log), Arc::clone(&stats));
        // One consumer decides delivery and de-duplication in arrival order,
        // so two publishes of one id cannot both be delivered.
        tokio::spawn(async move {
            while let Some(message) = inbox.recv().await {
                let fresh = {
                    let mut log = consumer_log.lock().unwrap();
                    let fresh = !log.ids.contains(&message.delivered.id);
                    if fresh {
                        if log.recent.len() == REMEMBERED {
                            let oldest = log.recent.pop_front().expect("full");
                            log.ids.remove(&oldest.id);
                        }
                        log.ids.insert(message.delivered.id.clone());
                        log.recent.push_back(message.delivered);
                    }
                    fresh
                };
                let counter = if fresh {
                    &counters.acknowledged
                } else {
                    &counters.duplicates
                };
                counter.fetch_add(1, Ordering::SeqCst);
                // The publisher may have given up (a timeout); the message
                // is delivered all the same, and a repeat is a duplicate.
                let _ = message.ack.send(());
            }
        });
        Broker {
            queue,
            log,
            stats,
            down: AtomicBool::new(false),
        }
    }

    /// Publishes one message and waits for the consumer's acknowledgement.
    pub async fn publish(&self, subject: &str, id: &str, payload: &str) -> Result<(), DepError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(DepError::Failed("the embedded broker is down".into()));
        }
        let (ack, acked) = oneshot::channel();
        let message = Message {
            delivered: Delivered {
                id: id.to_owned(),
                subject: subject.to_owned(),
                payload: payload.to_owned(),
            },
            ack,
        };
        let stopped = || DepError::Failed("the embedded broker's consumer has stopped".into());
        self.queue.send(message).await.map_err(|_| stopped())?;
        acked.await.map_err(|_| stopped())
    }

    /// Takes the broker down (`true`) or brings it back: while down, every
    /// publish fails, as with an unreachable NATS.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn stats(&self) -> BrokerStats {
        BrokerStats {
            acknowledged: self.stats.acknowledged.load(Ordering::SeqCst),
            duplicates: self.stats.duplicates.load(Ordering::SeqCst),
        }
    }

    /// The most recent acknowledged messages, oldest first.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.log.lock().unwrap().recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_publish_returns_once_acknowledged_and_a_repeated_id_is_delivered_once() {
        let broker = Broker::start();
        broker.publish("petstore.a", "e1", "{}").await.unwrap();
        broker.publish("petstore.a", "e1", "{}").await.unwrap();
        broker.publish("petstore.b", "e2", "[]").await.unwrap();
        assert_eq!(
            broker.stats(),
            BrokerStats {
                acknowledged: 2,
                duplicates: 1
            }
        );
        let ids: Vec<_> = broker.delivered().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["e1", "e2"]);
    }

    #[tokio::test]
    async fn a_down_broker_refuses_and_delivers_nothing() {
        let broker = Broker::start();
        broker.set_down(true);
        let e = broker.publish("petstore.a", "e1", "{}").await.unwrap_err();
        assert!(e.to_string().contains("embedded broker is down"), "{e}");
        broker.set_down(false);
        broker.publish("petstore.a", "e1", "{}").await.unwrap();
        assert_eq!(broker.stats().acknowledged, 1);
    }

    #[tokio::test]
    async fn the_oldest_ids_are_forgotten_beyond_the_bound() {
        let broker = Broker::start();
        for i in 0..REMEMBERED + 1 {
            broker.publish("s", &format!("e{i}"), "").await.unwrap();
        }
        let delivered = broker.delivered();
        assert_eq!(delivered.len(), REMEMBERED);
        assert_eq!(delivered[0].id, "e1");
        broker.publish("s", "e0", "").await.unwrap();
        assert_eq!(broker.stats().duplicates, 0, "e0 was forgotten");
    }
}
