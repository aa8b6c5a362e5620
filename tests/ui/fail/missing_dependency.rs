use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::database_call(operation = "get_pet")]
async fn get_pet() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
