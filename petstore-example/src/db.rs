//! `petstore_database`: pets, customers, orders and the event outbox in SQL.
//! SQLite in a file by default; PostgreSQL when the URL says so. The
//! application creates its own schema; every query is parameterised.

use crate::cache::Cache;
use crate::error::DepError;
use crate::model::{Order, OutboxEvent, Pet, PetList};
use resilience_runtime::database_call;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    postgres: bool,
    /// Latency injected before each query, in milliseconds (demo and tests).
    injected_latency_ms: Arc<AtomicU64>,
    /// Makes `save_order` fail inside its transaction (a fault switch).
    failing_saves: Arc<AtomicBool>,
    /// Reads that fail before the database answers again (a fault switch).
    failing_reads: Arc<AtomicU64>,
    next_seq: Arc<AtomicU64>,
}

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS pets (id BIGINT PRIMARY KEY, name TEXT NOT NULL, species TEXT NOT NULL, \
     breed TEXT NOT NULL, age_years BIGINT NOT NULL, price_cents BIGINT NOT NULL, \
     stock BIGINT NOT NULL CHECK (stock >= 0), traits TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, pet_id BIGINT NOT NULL, \
     amount_cents BIGINT NOT NULL, payment_id TEXT NOT NULL, status TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, subject TEXT NOT NULL, \
     payload TEXT NOT NULL, published BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS compensations (payment_key TEXT PRIMARY KEY, reason TEXT NOT NULL, \
     attempts BIGINT NOT NULL, done BIGINT NOT NULL, next_attempt_ms BIGINT NOT NULL, last_error TEXT)",
];

/// (id, name, species, breed, age, price in cents, stock, traits)
type SeedPet = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    i64,
    i64,
    i64,
    &'static str,
);

const SEED_PETS: [SeedPet; 12] = [
    (
        1,
        "Rex",
        "dog",
        "labrador",
        3,
        29999,
        5,
        "friendly,active,family",
    ),
    (
        2,
        "Mittens",
        "cat",
        "siamese",
        2,
        19999,
        4,
        "calm,indoor,vocal",
    ),
    (
        3,
        "Goldie",
        "fish",
        "goldfish",
        1,
        1999,
        20,
        "calm,low-maintenance",
    ),
    (
        4,
        "Buddy",
        "dog",
        "beagle",
        4,
        24999,
        3,
        "friendly,curious,family",
    ),
    (
        5,
        "Shadow",
        "cat",
        "maine coon",
        5,
        34999,
        2,
        "calm,large,family",
    ),
    (
        6,
        "Kiwi",
        "bird",
        "parakeet",
        1,
        4999,
        8,
        "vocal,active,small",
    ),
    (
        7,
        "Luna",
        "dog",
        "husky",
        2,
        49999,
        1,
        "active,vocal,outdoor",
    ),
    (
        8,
        "Pepper",
        "rabbit",
        "lop",
        1,
        7999,
        6,
        "calm,small,indoor",
    ),
    (
        9,
        "Max",
        "dog",
        "german shepherd",
        3,
        59999,
        2,
        "active,loyal,outdoor",
    ),
    (
        10,
        "Cleo",
        "cat",
        "sphynx",
        3,
        99999,
        1,
        "indoor,curious,vocal",
    ),
    (
        11,
        "Nemo",
        "fish",
        "clownfish",
        1,
        2999,
        15,
        "low-maintenance,small",
    ),
    (
        12,
        "Sunny",
        "bird",
        "cockatiel",
        2,
        8999,
        4,
        "vocal,friendly,small",
    ),
];

const SEED_CUSTOMERS: [(&str, &str); 3] =
    [("customer_123", "Ada"), ("alice", "Alice"), ("bob", "Bob")];

impl Db {
    /// Connects, creates the schema and seeds it on first run.
    /// `url` is `sqlite://path?mode=rwc` or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Db, String> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| {
                crate::redact::scrub(
                    &format!("cannot connect to the database at {url}: {e}"),
                    url,
                )
            })?;
        let db = Db {
            pool,
            postgres: url.starts_with("postgres"),
            injected_latency_ms: Arc::new(AtomicU64::new(0)),
            failing_saves: Arc::new(AtomicBool::new(false)),
            failing_reads: Arc::new(AtomicU64::new(0)),
            next_seq: Arc::new(AtomicU64::new(0)),
        };
        db.migrate()
            .await
            .map_err(|e| format!("cannot create the schema: {e}"))?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        for statement in SCHEMA {
            sqlx::query(statement).execute(&self.pool).await?;
        }
        let pets: i64 = sqlx::query("SELECT COUNT(*) AS n FROM pets")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        if pets == 0 {
            for (id, name, species, breed, age, price, stock, traits) in SEED_PETS {
                sqlx::query(
                    "INSERT INTO pets (id, name, species, breed, age_years, price_cents, stock, traits) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(name)
                .bind(species)
                .bind(breed)
                .bind(age)
                .bind(price)
                .bind(stock)
                .bind(traits)
                .execute(&self.pool)
                .await?;
            }
            for (id, name) in SEED_CUSTOMERS {
                sqlx::query("INSERT INTO customers (id, name) VALUES ($1, $2)")
                    .bind(id)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
            }
        }
        let seq: Option<i64> = sqlx::query("SELECT MAX(seq) AS s FROM outbox")
            .fetch_one(&self.pool)
            .await?
            .try_get("s")?;
        self.next_seq
            .store(seq.unwrap_or(0) as u64 + 1, Ordering::Relaxed);
        Ok(())
    }

    /// Makes the next `reads` reads fail, as a database that drops
    /// connections for a moment would (a fault switch for demos and tests).
    pub fn fail_next_reads(&self, reads: u64) {
        self.failing_reads.store(reads, Ordering::Relaxed);
    }

    /// Fails this read if the fault switch says so.
    fn read_fault(&self) -> Result<(), DepError> {
        let take = self
            .failing_reads
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        match take {
            Ok(_) => Err(DepError::Failed(
                "database error: connection reset by peer (injected)".into(),
            )),
            Err(_) => Ok(()),
        }
    }

    /// Makes every `save_order` fail with a real SQL error inside its
    /// transaction, which then rolls back (a fault switch for tests).
    pub fn fail_saves(&self, fail: bool) {
        self.failing_saves.store(fail, Ordering::Relaxed);
    }

    /// Adds `latency` before every query (a fault switch for demos and tests).
    pub fn inject_latency(&self, latency: Duration) {
        self.injected_latency_ms
            .store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    /// The injected latency: on PostgreSQL a real server-side `pg_sleep`, on
    /// SQLite (which has no sleep) a pause before the query.
    async fn latency(&self) -> Result<(), DepError> {
        let ms = self.injected_latency_ms.load(Ordering::Relaxed);
        if ms == 0 {
            return Ok(());
        }
        if self.postgres {
            sqlx::query("SELECT pg_sleep($1)")
                .bind(ms as f64 / 1000.0)
                .execute(&self.pool)
                .await
                .map_err(failed)?;
        } else {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(())
    }

    /// Whether this is PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }
}

fn failed(e: sqlx::Error) -> DepError {
    DepError::Failed(format!("database error: {e}"))
}

fn pets_from(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Pet>, DepError> {
    rows.iter()
        .map(pet_from)
        .collect::<Result<_, _>>()
        .map_err(failed)
}

fn pet_from(row: &sqlx::any::AnyRow) -> Result<Pet, sqlx::Error> {
    let traits: String = row.try_get("traits")?;
    Ok(Pet {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        species: row.try_get("species")?,
        breed: row.try_get("breed")?,
        age_years: row.try_get("age_years")?,
        price_cents: row.try_get("price_cents")?,
        stock: row.try_get("stock")?,
        traits: traits.split(',').map(str::to_owned).collect(),
    })
}

/// One pet, if it exists.
#[database_call(dependency = "petstore_database", idempotent, retry_if = DepError::is_transient)]
pub async fn get_pet(db: &Db, id: i64) -> Result<Option<Pet>, DepError> {
    db.read_fault()?;
    db.latency().await?;
    let row = sqlx::query("SELECT id, name, species, breed, age_years, price_cents, stock, traits FROM pets WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .map_err(failed)?;
    row.as_ref().map(pet_from).transpose().map_err(failed)
}

/// The whole catalogue, by id. When the database has failed for good
/// (after retries, or with its breaker open), the last catalogue it served,
/// as `last_known` keeps it, marked stale.
#[database_call(
    dependency = "petstore_database",
    idempotent,
    retry_if = DepError::is_transient,
    fallback = crate::cache::last_known_catalogue
)]
pub async fn list_pets(db: &Db, last_known: &Cache) -> Result<PetList, DepError> {
    db.read_fault()?;
    db.latency().await?;
    let rows = sqlx::query("SELECT id, name, species, breed, age_years, price_cents, stock, traits FROM pets ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .map_err(failed)?;
    let _ = last_known; // read only by the fallback
    Ok(PetList {
        pets: pets_from(&rows)?,
        stale: None,
    })
}

/// Whether the customer exists.
#[database_call(dependency = "petstore_database", idempotent, retry_if = DepError::is_transient)]
pub async fn customer_exists(db: &Db, id: &str) -> Result<bool, DepError> {
    db.read_fault()?;
    db.latency().await?;
    let row = sqlx::query("SELECT id FROM customers WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .map_err(failed)?;
    Ok(row.is_some())
}

/// Takes one unit of stock. One atomic statement, so concurrent orders for
/// the last pet cannot both succeed and stock never goes negative.
#[database_call(dependency = "petstore_database")]
pub async fn reserve_stock(db: &Db, pet_id: i64) -> Result<bool, DepError> {
    db.latency().await?;
    let done = sqlx::query("UPDATE pets SET stock = stock - 1 WHERE id = $1 AND stock > 0")
        .bind(pet_id)
        .execute(&db.pool)
        .await
        .map_err(failed)?;
    Ok(done.rows_affected() == 1)
}

/// Gives back a unit of stock taken by [`reserve_stock`].
#[database_call(dependency = "petstore_database")]
pub async fn release_stock(db: &Db, pet_id: i64) -> Result<(), DepError> {
    sqlx::query("UPDATE pets SET stock = stock + 1 WHERE id = $1")
        .bind(pet_id)
        .execute(&db.pool)
        .await
        .map_err(failed)?;
    Ok(())
}

/// Saves the order and its event in one transaction (the outbox pattern):
/// an order never exists without its event, nor the event without it.
#[database_call(dependency = "petstore_database")]
pub async fn save_order(
    db: &Db,
    order: &Order,
    subject: &str,
    payload: &str,
) -> Result<OutboxEvent, DepError> {
    db.latency().await?;
    let mut tx = db.pool.begin().await.map_err(failed)?;
    sqlx::query(
        "INSERT INTO orders (id, customer_id, pet_id, amount_cents, payment_id, status) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&order.id)
    .bind(&order.customer_id)
    .bind(order.pet_id)
    .bind(order.amount_cents)
    .bind(&order.payment_id)
    .bind(&order.status)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    let event = OutboxEvent {
        id: format!("evt-{}", order.id),
        seq: db.next_seq.fetch_add(1, Ordering::Relaxed) as i64,
        subject: subject.to_owned(),
        payload: payload.to_owned(),
    };
    sqlx::query(
        "INSERT INTO outbox (id, seq, subject, payload, published) VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(&event.id)
    .bind(event.seq)
    .bind(&event.subject)
    .bind(&event.payload)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    if db.failing_saves.load(Ordering::Relaxed) {
        sqlx::query("INSERT INTO fault_injected_missing_table VALUES (1)")
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)?;
    Ok(event)
}

/// One order, if it exists.
#[database_call(dependency = "petstore_database", idempotent, retry_if = DepError::is_transient)]
pub async fn get_order(db: &Db, id: &str) -> Result<Option<Order>, DepError> {
    db.read_fault()?;
    db.latency().await?;
    let row = sqlx::query("SELECT id, customer_id, pet_id, amount_cents, payment_id, status FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .map_err(failed)?;
    let Some(row) = row else { return Ok(None) };
    let get = || -> Result<Order, sqlx::Error> {
        Ok(Order {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            pet_id: row.try_get("pet_id")?,
            amount_cents: row.try_get("amount_cents")?,
            payment_id: row.try_get("payment_id")?,
            status: row.try_get("status")?,
        })
    };
    get().map(Some).map_err(failed)
}

/// The pets a customer has ordered, for recommendations.
#[database_call(dependency = "petstore_database", idempotent, retry_if = DepError::is_transient)]
pub async fn customer_history(db: &Db, customer_id: &str) -> Result<Vec<Pet>, DepError> {
    db.read_fault()?;
    db.latency().await?;
    let rows = sqlx::query(
        "SELECT p.id, p.name, p.species, p.breed, p.age_years, p.price_cents, p.stock, p.traits \
         FROM pets p JOIN orders o ON o.pet_id = p.id WHERE o.customer_id = $1 ORDER BY o.id",
    )
    .bind(customer_id)
    .fetch_all(&db.pool)
    .await
    .map_err(failed)?;
    pets_from(&rows)
}

/// Events not yet delivered to the broker, oldest first.
#[database_call(dependency = "petstore_database")]
pub async fn pending_events(db: &Db, limit: i64) -> Result<Vec<OutboxEvent>, DepError> {
    let rows = sqlx::query(
        "SELECT id, seq, subject, payload FROM outbox WHERE published = 0 ORDER BY seq LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await
    .map_err(failed)?;
    rows.iter()
        .map(|r| {
            Ok(OutboxEvent {
                id: r.try_get("id")?,
                seq: r.try_get("seq")?,
                subject: r.try_get("subject")?,
                payload: r.try_get("payload")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(failed)
}

/// Marks an event delivered.
#[database_call(dependency = "petstore_database")]
pub async fn mark_published(db: &Db, id: &str) -> Result<(), DepError> {
    sqlx::query("UPDATE outbox SET published = 1 WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .map_err(failed)?;
    Ok(())
}

/// Records that the charge of `payment_key` must be voided: durably, before
/// anything tries to. Recording it twice is harmless.
#[database_call(dependency = "petstore_database")]
pub async fn record_compensation(db: &Db, payment_key: &str, reason: &str) -> Result<(), DepError> {
    sqlx::query(
        "INSERT INTO compensations (payment_key, reason, attempts, done, next_attempt_ms) \
         VALUES ($1, $2, 0, 0, 0) ON CONFLICT (payment_key) DO NOTHING",
    )
    .bind(payment_key)
    .bind(reason)
    .execute(&db.pool)
    .await
    .map_err(failed)?;
    Ok(())
}

/// Up to `limit` compensations not yet confirmed by the gateway whose next
/// try is due at `now_ms` (Unix milliseconds), fewest tries first:
/// (payment key, tries so far).
#[database_call(dependency = "petstore_database", idempotent, retry_if = DepError::is_transient)]
pub async fn due_compensations(
    db: &Db,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, DepError> {
    let rows = sqlx::query(
        "SELECT payment_key, attempts FROM compensations WHERE done = 0 AND next_attempt_ms <= $1 \
         ORDER BY attempts, payment_key LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
    .map_err(failed)?;
    rows.iter()
        .map(|r| Ok((r.try_get("payment_key")?, r.try_get("attempts")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(failed)
}

/// Marks a compensation confirmed by the gateway (`retry` is `None`), or
/// counts a failed try and sets when to try again.
#[database_call(dependency = "petstore_database")]
pub async fn settle_compensation(
    db: &Db,
    payment_key: &str,
    retry: Option<(String, i64)>,
) -> Result<(), DepError> {
    let query = match &retry {
        None => sqlx::query(
            "UPDATE compensations SET done = 1, attempts = attempts + 1, last_error = NULL \
             WHERE payment_key = $1",
        )
        .bind(payment_key),
        Some((error, next_attempt_ms)) => sqlx::query(
            "UPDATE compensations SET attempts = attempts + 1, last_error = $2, next_attempt_ms = $3 \
             WHERE payment_key = $1",
        )
        .bind(payment_key)
        .bind(error.clone())
        .bind(*next_attempt_ms),
    };
    query.execute(&db.pool).await.map_err(failed)?;
    Ok(())
}

/// A count row's `pending` and `done` columns.
fn pending_and_done(row: &sqlx::any::AnyRow) -> Result<(i64, i64), DepError> {
    Ok((
        row.try_get("pending").map_err(failed)?,
        row.try_get("done").map_err(failed)?,
    ))
}

/// (pending, confirmed) compensations.
#[database_call(dependency = "petstore_database", idempotent, retry_if = DepError::is_transient)]
pub async fn compensation_counts(db: &Db) -> Result<(i64, i64), DepError> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN done = 0 THEN 1 ELSE 0 END), 0) AS pending, \
         COALESCE(SUM(done), 0) AS done FROM compensations",
    )
    .fetch_one(&db.pool)
    .await
    .map_err(failed)?;
    pending_and_done(&row)
}

/// (pending, delivered) events in the outbox.
#[database_call(dependency = "petstore_database")]
pub async fn outbox_counts(db: &Db) -> Result<(i64, i64), DepError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN published = 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending, \
         CAST(COALESCE(SUM(published), 0) AS BIGINT) AS done FROM outbox",
    )
    .fetch_one(&db.pool)
    .await
    .map_err(failed)?;
    pending_and_done(&row)
}
