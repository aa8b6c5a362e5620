//! The petstore's domain types, shared by the adapters, the service and the
//! HTTP API. Prices are in cents.

use serde::{Deserialize, Serialize};

/// A pet in the catalogue. Prices are in cents.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pet {
    pub id: i64,
    pub name: String,
    pub species: String,
    pub breed: String,
    pub age_years: i64,
    pub price_cents: i64,
    pub stock: i64,
    pub traits: Vec<String>,
}

/// A placed order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub pet_id: i64,
    pub amount_cents: i64,
    pub payment_id: String,
    pub status: String,
}

/// An event waiting in (or delivered from) the outbox.
#[derive(Clone, Debug, Serialize)]
pub struct OutboxEvent {
    pub id: String,
    pub seq: i64,
    pub subject: String,
    pub payload: String,
}

/// Pets as the database listed them, or, when it could not, the last list it
/// gave (then `stale` says why).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PetList {
    pub pets: Vec<Pet>,
    /// Why the list is the last known one instead of a fresh read.
    pub stale: Option<String>,
}
