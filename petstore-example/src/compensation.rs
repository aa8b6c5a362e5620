//! Durable voids. When an order may have been charged without being saved (a
//! payment that timed out or failed unclearly, or an order that failed to
//! save), the void is recorded in the database before anything tries it, and
//! the reconciler keeps trying until the gateway confirms. It runs in the
//! background ([`spawn_reconciler`]): at start-up, when an order wakes it, and
//! every few seconds. A void is idempotent by its key, so trying again is
//! always safe.

use crate::background::{self, Pass, Worker};
use crate::db;
use crate::error::DepError;
use crate::gateway;
use crate::service::Petstore;
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// Compensations one reconciler pass takes on at most.
const BATCH: i64 = 100;
/// A reconciler pass runs at least this often, woken or not.
const PERIOD: Duration = Duration::from_secs(5);
/// The longest wait between two tries of one compensation.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What a reconciler pass did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Reconciled {
    /// Voids the gateway confirmed.
    pub confirmed: u64,
    /// Voids that failed and wait for their next try.
    pub failed: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// Records the void of `payment_key`, then tries it once. `Err` says why the
/// gateway has not confirmed it yet; the reconciler will try again.
pub async fn void(store: &Petstore, payment_key: &str, reason: &str) -> Result<(), String> {
    let recorded = db::record_compensation(&store.db, payment_key, reason).await;
    let voided = try_void(store, payment_key, 0).await;
    match (recorded, voided) {
        (_, Ok(())) => Ok(()),
        (Ok(()), Err(e)) => Err(format!(
            "{e}; recorded, and retried until the gateway confirms"
        )),
        (Err(db_error), Err(e)) => Err(format!(
            "{e}; and it could not be recorded for a retry ({db_error})"
        )),
    }
}

/// One try of a void, settled in the database.
async fn try_void(store: &Petstore, payment_key: &str, tries: i64) -> Result<(), DepError> {
    let result = gateway::void(store.gateway.clone(), payment_key.to_owned()).await;
    let retry = result.as_ref().err().map(|e| {
        let backoff = Duration::from_secs(1)
            .saturating_mul(1 << tries.clamp(0, 16))
            .min(MAX_BACKOFF);
        (e.to_string(), now_ms() + backoff.as_millis() as i64)
    });
    // A failed settle leaves the row as it was: pending, so tried again.
    let _ = db::settle_compensation(&store.db, payment_key, retry).await;
    result.map(drop)
}

/// One pass over the compensations that are due.
pub async fn reconcile(store: &Petstore) -> Result<Reconciled, DepError> {
    let mut report = Reconciled::default();
    for (key, tries) in db::due_compensations(&store.db, now_ms(), BATCH).await? {
        match try_void(store, &key, tries).await {
            Ok(()) => report.confirmed += 1,
            Err(_) => report.failed += 1,
        }
    }
    Ok(report)
}

/// Runs reconciler passes in the background, on the store's
/// `reconciler` wake and every 5 s. Each void waits for its own backoff;
/// a pass that cannot read the database backs the worker off.
pub fn spawn_reconciler(store: &Petstore) -> Worker {
    let store = store.clone();
    background::spawn(&store.reconciler.clone(), PERIOD, move || {
        let store = store.clone();
        async move {
            match reconcile(&store).await {
                Ok(r) if r.confirmed + r.failed == BATCH as u64 => Pass::More,
                Ok(_) => Pass::Idle,
                Err(_) => Pass::Failed,
            }
        }
    })
}
