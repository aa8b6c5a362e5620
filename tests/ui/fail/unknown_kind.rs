use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::resilient(kind = "quantum", dependency = "q")]
async fn entangle() -> Result<(), MyError> {
    Ok(())
}

#[resilience_runtime::resilient(dependency = "q")]
async fn no_kind() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
