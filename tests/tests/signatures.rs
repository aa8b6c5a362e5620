//! The attributes accept every signature shape the issue lists, keep the
//! signature as written, and keep futures `Send`.

use resilience_runtime::{
    api_call, cache_call, database_call, resilient, ResilienceError, Runtime,
};
use std::fmt::Display;
use std::sync::Arc;

#[derive(Debug, PartialEq)]
enum AppError {
    Resilience(String),
    Invalid(&'static str),
}

impl From<ResilienceError> for AppError {
    fn from(e: ResilienceError) -> Self {
        AppError::Resilience(e.to_string())
    }
}

const CONFIG: &str = "
resilience:
  external_dependencies:
    db: { type: database, max_concurrent: 4 }
    api: { type: external_api, bulkhead_type: thread_pool, max_workers: 2 }
    cache: { type: cache }
    cpu: { type: cpu_intensive }
";

/// A free function with a borrowed argument and a doc comment.
#[database_call(dependency = "db")]
pub async fn borrowed_len(text: &str) -> Result<usize, AppError> {
    if text.is_empty() {
        return Err(AppError::Invalid("empty"));
    }
    Ok(text.len())
}

#[database_call(dependency_name = "db", operation_name = "generic_max")]
async fn generic_max<T: PartialOrd + Copy>(items: &[T]) -> Result<T, AppError> {
    let mut best = *items.first().ok_or(AppError::Invalid("no items"))?;
    for &x in items {
        if x > best {
            best = x;
        }
    }
    Ok(best)
}

#[cache_call(dependency = "cache")]
async fn with_lifetimes<'a, 'b>(a: &'a str, _b: &'b str) -> Result<&'a str, AppError> {
    tokio::task::yield_now().await;
    Ok(a)
}

#[cache_call(dependency = "cache")]
async fn impl_trait_arg(value: impl Display + Send) -> Result<String, AppError> {
    Ok(format!("<{value}>"))
}

#[resilient(kind = "cpu_intensive", dependency = "cpu")]
async fn question_mark(input: &str) -> Result<u32, AppError> {
    let n: u32 = input
        .parse()
        .map_err(|_| AppError::Invalid("not a number"))?;
    Ok(n * 2)
}

/// A blocking function on a thread-pool dependency.
#[api_call(dependency = "api")]
fn blocking_sum(values: Vec<u64>) -> Result<u64, AppError> {
    Ok(values.iter().sum())
}

struct Store {
    prefix: String,
    hits: u32,
}

impl Store {
    #[database_call(dependency = "db")]
    async fn describe(&self, id: u64) -> Result<String, AppError> {
        Ok(format!("{}-{id}", self.prefix))
    }

    #[database_call(dependency = "db")]
    async fn bump(&mut self) -> Result<u32, AppError> {
        self.hits += 1;
        Ok(self.hits)
    }
}

trait Catalogue {
    async fn count(&self) -> Result<usize, AppError>;
}

impl Catalogue for Store {
    #[database_call(dependency = "db", operation = "catalogue_count")]
    async fn count(&self) -> Result<usize, AppError> {
        Ok(self.prefix.len())
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test]
async fn every_signature_shape_runs_under_its_runtime() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    rt.scope(async {
        assert_eq!(borrowed_len("four").await, Ok(4));
        assert_eq!(borrowed_len("").await, Err(AppError::Invalid("empty")));
        assert_eq!(generic_max(&[3, 9, 2]).await, Ok(9));
        assert_eq!(generic_max(&[1.5, 0.5]).await, Ok(1.5));
        let owner = String::from("kept");
        assert_eq!(with_lifetimes(&owner, "x").await, Ok("kept"));
        assert_eq!(impl_trait_arg(42).await.unwrap(), "<42>");
        assert_eq!(question_mark("21").await, Ok(42));
        assert_eq!(
            question_mark("x").await,
            Err(AppError::Invalid("not a number"))
        );
        assert_eq!(blocking_sum(vec![1, 2, 3]).await, Ok(6));
        let mut store = Store {
            prefix: "pet".into(),
            hits: 0,
        };
        assert_eq!(store.describe(7).await.unwrap(), "pet-7");
        assert_eq!(store.bump().await, Ok(1));
        assert_eq!(store.count().await, Ok(3));

        let snapshot = resilience_runtime::health_snapshot();
        let db = &snapshot.dependencies["db"];
        assert_eq!(
            db.operations,
            [
                "borrowed_len",
                "bump",
                "catalogue_count",
                "describe",
                "generic_max"
            ]
        );
        assert_eq!(db.bulkhead.successful_requests, 6);
        assert_eq!(db.bulkhead.failed_requests, 1);
        assert_eq!(snapshot.dependencies["api"].bulkhead.successful_requests, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_futures_are_send_and_spawnable() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let shared = Arc::new(Store {
        prefix: "s".into(),
        hits: 0,
    });
    let task = {
        let rt = rt.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(rt.scope(async move { assert_send(shared.describe(1)).await }))
    };
    assert_eq!(task.await.unwrap().unwrap(), "s-1");
    let text = String::from("abc");
    assert_eq!(rt.scope(assert_send(borrowed_len(&text))).await, Ok(3));
    assert_eq!(rt.scope(assert_send(blocking_sum(vec![4]))).await, Ok(4));
}
