use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::cache_call(dependency = "redis_cache", dependency_name = "other")]
async fn get() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
