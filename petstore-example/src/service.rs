//! The business operations. Critical steps fail the operation with a clear
//! reason; non-critical steps (cache, recommendations, event delivery)
//! degrade and are listed in the result's `degraded`.

use crate::advisor::{self, Advisor, Recommendation};
use crate::background::Wake;
use crate::cache::{self, Cache};
use crate::compensation;
use crate::db::{self, Db};
use crate::error::{DepError, ServiceError};
use crate::events::Events;
use crate::gateway::{self, GatewayClient, Payment};
use crate::model::{Order, Pet};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const CATALOGUE_TTL: Duration = Duration::from_secs(30);
const ORDER_STATUS_TTL: Duration = Duration::from_secs(300);

/// The petstore and its five dependencies.
#[derive(Clone)]
pub struct Petstore {
    pub db: Db,
    pub cache: Cache,
    pub gateway: GatewayClient,
    pub advisor: Advisor,
    pub events: Events,
    /// Wakes the compensation reconciler.
    pub reconciler: Wake,
    order_seq: Arc<AtomicU64>,
}

/// The catalogue, and where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct Catalogue {
    pub pets: Vec<Pet>,
    /// `cache`, `database`, or `last_known` (the database failed; see `degraded`).
    pub source: &'static str,
    pub degraded: Vec<String>,
}

/// One pet with recommendations.
#[derive(Clone, Debug, Serialize)]
pub struct PetView {
    pub pet: Pet,
    pub recommendations: Vec<Recommendation>,
    pub source: &'static str,
    pub degraded: Vec<String>,
}

/// What the customer pays; the pet's price when absent.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub amount: Option<f64>,
}

/// A placed order.
#[derive(Clone, Debug, Serialize)]
pub struct OrderResult {
    pub order: Order,
    pub payment: Payment,
    pub events: EventsQueued,
    pub degraded: Vec<String>,
}

/// The order's event: saved in the outbox with the order, and delivered by
/// the background relay.
#[derive(Clone, Debug, Serialize)]
pub struct EventsQueued {
    /// Events this order put in the outbox.
    pub queued: u32,
    /// Where the relay delivers them: `embedded` or `nats`.
    pub backend: &'static str,
}

/// An order and where its status came from.
#[derive(Clone, Debug, Serialize)]
pub struct OrderView {
    pub order: Order,
    pub source: &'static str,
    /// What the gateway says of the order's charge now (`payment_lookup`);
    /// `None` when it could not say, and then `degraded` says why.
    pub payment_status: Option<crate::gateway::ChargeStatus>,
    pub degraded: Vec<String>,
}

/// An id as a message may quote it: a client's megabyte-long id is not
/// echoed back whole.
fn shown(id: &str) -> String {
    const MAX: usize = 64;
    match id.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… ({} characters)", &id[..at], id.chars().count()),
        None => id.to_owned(),
    }
}

fn cents(amount: f64) -> Result<i64, ServiceError> {
    if !amount.is_finite() || amount <= 0.0 {
        return Err(ServiceError::Invalid(format!(
            "payment.amount must be a positive number, got {amount}"
        )));
    }
    if amount > 1e12 {
        return Err(ServiceError::Invalid(format!(
            "payment.amount {amount} is too large"
        )));
    }
    let cents = (amount * 100.0).round() as i64;
    if cents < 1 {
        return Err(ServiceError::Invalid(format!(
            "payment.amount must be at least 0.01, got {amount}"
        )));
    }
    Ok(cents)
}

impl Petstore {
    /// A petstore over these dependencies.
    pub fn new(
        db: Db,
        cache: Cache,
        gateway: GatewayClient,
        advisor: Advisor,
        events: Events,
    ) -> Self {
        Petstore {
            db,
            cache,
            gateway,
            advisor,
            events,
            reconciler: Wake::default(),
            order_seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// One pet, from the database.
    pub async fn get_pet(&self, id: i64) -> Result<Pet, ServiceError> {
        db::get_pet(&self.db, id)
            .await
            .map_err(|e| ServiceError::at("load pet", e))?
            .ok_or_else(|| ServiceError::NotFound(format!("pet {id}")))
    }

    /// The catalogue: from the cache when fresh, else from the database (and
    /// then cached). A cache failure is a miss, never an error.
    pub async fn browse_pets(&self) -> Result<Catalogue, ServiceError> {
        let mut degraded = Vec::new();
        let fresh = self
            .cached("catalogue", &mut degraded, |json| {
                serde_json::from_str::<Vec<Pet>>(json).ok()
            })
            .await;
        if let Some(pets) = fresh {
            return Ok(Catalogue {
                pets,
                source: "cache",
                degraded,
            });
        }
        let listed = db::list_pets(&self.db, &self.cache)
            .await
            .map_err(|e| ServiceError::at("load catalogue", e))?;
        let pets = listed.pets;
        if let Some(why) = listed.stale {
            degraded.push(format!("database: {why}; showing the last known catalogue"));
            return Ok(Catalogue {
                pets,
                source: "last_known",
                degraded,
            });
        }
        if degraded.is_empty() {
            let json = serde_json::to_string(&pets).expect("pets serialise");
            if let Err(e) = cache::set(&self.cache, "catalogue", &json, CATALOGUE_TTL).await {
                degraded.push(format!("cache: {}", e.reason()));
            }
            cache::keep_catalogue(&self.cache, &json).await;
        }
        Ok(Catalogue {
            pets,
            source: "database",
            degraded,
        })
    }

    /// A pet (through the cache) with recommendations for `customer_id`.
    /// Recommendations are optional: when the advisor fails, the pet is still
    /// returned and the failure is listed.
    pub async fn get_pet_with_cache_and_recommendations(
        &self,
        pet_id: i64,
        customer_id: Option<&str>,
    ) -> Result<PetView, ServiceError> {
        let catalogue = self.browse_pets().await?;
        let mut degraded = catalogue.degraded.clone();
        let pet = catalogue
            .pets
            .iter()
            .find(|p| p.id == pet_id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("pet {pet_id}")))?;
        let mut recommendations = Vec::new();
        if let Some(customer) = customer_id {
            let history = match db::customer_history(&self.db, customer).await {
                Ok(h) => h,
                Err(e) => {
                    degraded.push(format!("history: {}", e.reason()));
                    Vec::new()
                }
            };
            match advisor::recommend(
                self.advisor.clone(),
                catalogue.pets,
                history,
                Some(pet.clone()),
                3,
            )
            .await
            {
                Ok(advice) => {
                    if let Some(why) = advice.fallback {
                        degraded.push(format!("recommendations: {why}"));
                    }
                    recommendations = advice.recommendations;
                }
                Err(e) => degraded.push(format!("recommendations: {}", e.reason())),
            }
        }
        Ok(PetView {
            pet,
            recommendations,
            source: catalogue.source,
            degraded,
        })
    }

    /// Places an order: load the customer and the pet, reserve stock, take the
    /// payment, save the order with its event. The payment is never retried
    /// blindly; it carries the order id as its idempotency key, and any step
    /// that fails after it voids (refunds) it and gives the stock back.
    pub async fn create_order_with_resilience(
        &self,
        customer_id: &str,
        pet_id: i64,
        payment: PaymentRequest,
    ) -> Result<OrderResult, ServiceError> {
        if customer_id.trim().is_empty() {
            return Err(ServiceError::Invalid(
                "customer_id must not be empty".into(),
            ));
        }
        if !db::customer_exists(&self.db, customer_id)
            .await
            .map_err(|e| ServiceError::at("load customer", e))?
        {
            return Err(ServiceError::NotFound(format!(
                "customer {}",
                shown(customer_id)
            )));
        }
        let pet = self.get_pet(pet_id).await?;
        let amount_cents = match payment.amount {
            Some(amount) => cents(amount)?,
            None => pet.price_cents,
        };
        if !db::reserve_stock(&self.db, pet_id)
            .await
            .map_err(|e| ServiceError::at("reserve stock", e))?
        {
            return Err(ServiceError::OutOfStock(pet_id));
        }

        let order_id = self.new_order_id();
        let paid = gateway::charge(self.gateway.clone(), order_id.clone(), amount_cents).await;
        let paid = match paid {
            Ok(p) => p,
            Err(e) => {
                let mut error = ServiceError::at("take payment", e.clone());
                // A timeout or an unclear failure may have charged: void the key
                // so the charge is refunded, or refused if it arrives late.
                let unclear = matches!(&e, DepError::Failed(_))
                    || matches!(&e, DepError::Resilience(r) if r.is_timeout());
                if unclear {
                    let reason = "the payment timed out or failed unclearly";
                    if let Err(void_error) = compensation::void(self, &order_id, reason).await {
                        error = error
                            .with_note(format!("voiding payment {order_id} failed: {void_error}"));
                    }
                }
                self.give_back(pet_id).await;
                return Err(error);
            }
        };

        let order = Order {
            id: order_id.clone(),
            customer_id: customer_id.to_owned(),
            pet_id,
            amount_cents,
            payment_id: paid.payment_id.clone(),
            status: "confirmed".into(),
        };
        let payload = serde_json::json!({"type": "order_created", "order": order}).to_string();
        if let Err(e) = db::save_order(&self.db, &order, "petstore.orders.created", &payload).await
        {
            let mut error = ServiceError::at("save order", e);
            let reason = "the order could not be saved";
            if let Err(void_error) = compensation::void(self, &order_id, reason).await {
                error = error.with_note(format!(
                    "refunding payment {} failed: {void_error}",
                    paid.payment_id
                ));
            }
            self.give_back(pet_id).await;
            return Err(error);
        }

        self.advisor.record_sale(pet_id);
        let mut degraded = Vec::new();
        if let Err(e) = cache::set(
            &self.cache,
            &format!("order:{order_id}"),
            &payload,
            ORDER_STATUS_TTL,
        )
        .await
        {
            degraded.push(format!("cache: {}", e.reason()));
        }
        // Neither waits: a dead broker or a stuck void never holds an order.
        self.events.wake();
        self.reconciler.wake();
        Ok(OrderResult {
            order,
            payment: paid,
            events: EventsQueued {
                queued: 1,
                backend: self.events.backend(),
            },
            degraded,
        })
    }

    /// One order: its status from the cache when present, else the database.
    pub async fn get_order(&self, id: &str) -> Result<OrderView, ServiceError> {
        let mut degraded = Vec::new();
        let cached = self
            .cached(&format!("order:{id}"), &mut degraded, |json| {
                serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| serde_json::from_value::<Order>(v["order"].clone()).ok())
            })
            .await;
        let (order, source) = match cached {
            Some(order) => (order, "cache"),
            None => {
                let order = db::get_order(&self.db, id)
                    .await
                    .map_err(|e| ServiceError::at("load order", e))?
                    .ok_or_else(|| ServiceError::NotFound(format!("order {}", shown(id))))?;
                (order, "database")
            }
        };
        // The charge carries the order id as its key. A lookup that fails
        // costs the answer one field, never the order.
        let payment_status = match self.gateway.status(&order.id).await {
            Ok(status) => Some(status),
            Err(e) => {
                degraded.push(format!("payment status: {}", e.reason()));
                None
            }
        };
        Ok(OrderView {
            order,
            source,
            payment_status,
            degraded,
        })
    }

    /// The entry at `key` as `parse` reads it. A miss or an unreadable entry
    /// is `None`; so is a cache failure, which is also listed in `degraded`:
    /// the cache is never critical.
    async fn cached<T>(
        &self,
        key: &str,
        degraded: &mut Vec<String>,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        match cache::get(&self.cache, key).await {
            Ok(Some(json)) => parse(&json),
            Ok(None) => None,
            Err(e) => {
                degraded.push(format!("cache: {}", e.reason()));
                None
            }
        }
    }

    async fn give_back(&self, pet_id: i64) {
        // Best effort: the database may be the failing step.
        let _ = db::release_stock(&self.db, pet_id).await;
    }

    fn new_order_id(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!(
            "ord-{nanos:x}-{}",
            self.order_seq.fetch_add(1, Ordering::Relaxed)
        )
    }
}
