//! `payment_gateway`: a simulated payment gateway served over HTTP on a
//! loopback port ([`Gateway`]), and the blocking client the
//! service calls it with on the dependency's thread pool. Its read side,
//! a charge's status, goes through a tower service stack on
//! `payment_lookup` ([`PaymentLookup`]).
//!
//! The gateway follows the seed's rules: latency from a range, amounts over
//! 10000.00 declined with "Payment amount exceeds limit", and a seeded random
//! failure rate. Fault switches make it hang, slow down or fail. Every charge
//! carries an idempotency key; a repeated key never charges twice, and a
//! voided key refuses a late charge.

mod client;
mod lookup;
mod server;

pub use client::{charge, void, GatewayClient, Payment};
pub use lookup::{ChargeStatus, PaymentLookup};
pub use server::{Fault, Gateway, GatewayRules, GatewayStats, LIMIT_CENTS};
