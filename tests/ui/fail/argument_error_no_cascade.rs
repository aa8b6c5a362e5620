//! A mistake in the attribute is the only error: the function keeps the
//! shape the expansion gives it (a blocking fn is `async`), so its callers
//! compile.
use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::database_call(dependency = "db", retries = 3)]
fn count_rows() -> Result<u64, MyError> {
    Ok(3)
}

async fn caller() -> Result<u64, MyError> {
    count_rows().await
}

fn main() {
    drop(caller());
}
