use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::api_call(dependency = "payment_gateway", retries = "3")]
async fn pay() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
