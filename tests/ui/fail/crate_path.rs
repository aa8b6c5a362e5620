use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::database_call(crate = "not a path", dependency = "db")]
async fn one() -> Result<u64, MyError> {
    Ok(1)
}

#[resilience_runtime::database_call(crate = "nowhere", dependency = "db")]
async fn two() -> Result<u64, MyError> {
    Ok(2)
}

fn main() {}
