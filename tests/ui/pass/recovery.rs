//! idempotent, retry_if, retry_after and fallback on every flavour of site.
use resilience_runtime::ResilienceError;

#[derive(Debug, Clone)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

use resilience_runtime::{api_call, cache_call, database_call, file_system_call, resilient};
use std::sync::Arc;
use std::time::Duration;

fn transient(_: &MyError) -> bool {
    true
}

fn hint(_: &MyError) -> Option<Duration> {
    None
}

#[database_call(dependency = "db", idempotent, retry_if = transient, retry_after = hint, fallback = cached)]
async fn get_pet(db: &str, id: u64, tags: Vec<String>) -> Result<String, MyError> {
    Ok(format!("{db}{id}{}", tags.len()))
}

#[cache_call(dependency = "cache", idempotent)]
async fn cached(db: &str, id: u64, tags: Vec<String>, error: MyError) -> Result<String, MyError> {
    let _ = (db, id, tags, error);
    Ok(String::new())
}

/// A fallback may be a plain fn returning a future.
fn later(amount: u64, _: MyError) -> std::future::Ready<Result<u64, MyError>> {
    std::future::ready(Ok(amount))
}

#[api_call(dependency = "gateway", fallback = later)]
async fn charge(mut amount: u64) -> Result<u64, MyError> {
    amount += 1;
    Ok(amount)
}

/// A `&mut` argument is lent to the one attempt, then to the fallback.
#[database_call(dependency = "db", fallback = count_later)]
async fn count(seen: &mut Vec<u64>, id: u64) -> Result<usize, MyError> {
    seen.push(id);
    Ok(seen.len())
}

async fn count_later(seen: &mut Vec<u64>, id: u64, _: MyError) -> Result<usize, MyError> {
    seen.push(id);
    Ok(seen.len())
}

pub struct Repo {
    name: String,
}

impl Repo {
    #[database_call(dependency = "db", idempotent, fallback = Self::remembered)]
    pub async fn name_len(&self, extra: &str) -> Result<usize, MyError> {
        Ok(self.name.len() + extra.len())
    }

    async fn remembered(&self, extra: &str, _: MyError) -> Result<usize, MyError> {
        Ok(extra.len())
    }

    /// Generic and retried.
    #[database_call(dependency = "db", idempotent)]
    async fn show<T: std::fmt::Display + Clone>(&self, value: T) -> Result<String, MyError> {
        Ok(format!("{}{value}", self.name))
    }
}

#[file_system_call(dependency = "files", idempotent, retry_if = transient, fallback = backup)]
fn read(path: String, shared: Arc<Vec<u8>>) -> Result<usize, MyError> {
    Ok(path.len() + shared.len())
}

fn backup(path: String, shared: Arc<Vec<u8>>, _: MyError) -> Result<usize, MyError> {
    Ok(path.len() + shared.len())
}

#[resilient(kind = "cpu_intensive", dependency = "pool", on_pool, idempotent, fallback = score_later)]
async fn score(v: Vec<f32>) -> Result<f32, MyError> {
    Ok(v.iter().sum())
}

async fn score_later(_: Vec<f32>, _: MyError) -> Result<f32, MyError> {
    Ok(0.0)
}

fn is_send<T: Send>(_: T) {}

fn main() {
    let repo = Repo { name: "x".into() };
    is_send(get_pet("db", 1, vec![]));
    is_send(charge(1));
    let mut seen = Vec::new();
    is_send(count(&mut seen, 1));
    is_send(repo.name_len("a"));
    is_send(repo.show(5));
    is_send(read(String::new(), Arc::new(vec![])));
    is_send(score(vec![]));
}
