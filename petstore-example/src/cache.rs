//! `redis_cache`: the catalogue and order statuses with TTLs. Redis when a
//! URL is given, an in-process TTL map otherwise. Callers treat every cache
//! error as a miss, so the cache never fails a request.

use crate::db::Db;
use crate::error::DepError;
use crate::model::PetList;
use crate::redact;
use resilience_runtime::cache_call;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The cache backend.
#[derive(Clone)]
pub enum Cache {
    /// An in-process map with expiry times.
    Memory(Arc<Mutex<HashMap<String, (Instant, String)>>>),
    /// A Redis server.
    Redis(redis::aio::ConnectionManager),
}

impl Cache {
    /// The in-process cache.
    pub fn memory() -> Cache {
        Cache::Memory(Arc::default())
    }

    /// Connects to Redis at `url` (e.g. `redis://127.0.0.1:6379`).
    pub async fn redis(url: &str) -> Result<Cache, String> {
        let client = redis::Client::open(url)
            .map_err(|e| redact::scrub(&format!("bad REDIS_URL {url}: {e}"), url))?;
        let manager = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| redact::scrub(&format!("cannot connect to Redis at {url}: {e}"), url))?;
        Ok(Cache::Redis(manager))
    }

    /// `redis` or `memory`.
    pub fn backend(&self) -> &'static str {
        match self {
            Cache::Memory(_) => "memory",
            Cache::Redis(_) => "redis",
        }
    }
}

fn failed(e: redis::RedisError) -> DepError {
    DepError::Failed(format!("cache error: {e}"))
}

/// The cached value of `key`, if fresh.
#[cache_call(dependency = "redis_cache", operation = "cache_get", idempotent, retry_if = DepError::is_transient)]
pub async fn get(cache: &Cache, key: &str) -> Result<Option<String>, DepError> {
    match cache {
        Cache::Memory(map) => {
            let mut map = map.lock().unwrap();
            match map.get(key) {
                Some((expires, value)) if *expires > Instant::now() => Ok(Some(value.clone())),
                Some(_) => {
                    map.remove(key);
                    Ok(None)
                }
                None => Ok(None),
            }
        }
        Cache::Redis(conn) => {
            let mut conn = conn.clone();
            redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(failed)
        }
    }
}

/// Stores `value` under `key` for `ttl`.
#[cache_call(dependency = "redis_cache", operation = "cache_set")]
pub async fn set(cache: &Cache, key: &str, value: &str, ttl: Duration) -> Result<(), DepError> {
    match cache {
        Cache::Memory(map) => {
            map.lock()
                .unwrap()
                .insert(key.to_owned(), (Instant::now() + ttl, value.to_owned()));
            Ok(())
        }
        Cache::Redis(conn) => {
            let mut conn = conn.clone();
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query_async::<()>(&mut conn)
                .await
                .map_err(failed)
        }
    }
}

/// Where the last catalogue read from the database is kept, and for how long.
const LAST_KNOWN_CATALOGUE: &str = "catalogue:last_known";
const LAST_KNOWN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Keeps `pets_json` as the last known catalogue. Best effort: the cache is
/// never critical.
pub async fn keep_catalogue(cache: &Cache, pets_json: &str) {
    let _ = set(cache, LAST_KNOWN_CATALOGUE, pets_json, LAST_KNOWN_TTL).await;
}

/// The fallback of [`crate::db::list_pets`]: the last known catalogue, marked
/// stale with the database's error; the database's error itself when the
/// cache has none (or fails too).
pub async fn last_known_catalogue(
    _db: &Db,
    cache: &Cache,
    error: DepError,
) -> Result<PetList, DepError> {
    match get(cache, LAST_KNOWN_CATALOGUE).await {
        Ok(Some(json)) => match serde_json::from_str(&json) {
            Ok(pets) => Ok(PetList {
                pets,
                stale: Some(error.reason()),
            }),
            Err(_) => Err(error),
        },
        _ => Err(error),
    }
}
