use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::database_call(dependency = petstore_database)]
async fn a() -> Result<(), MyError> {
    Ok(())
}

#[resilience_runtime::database_call(dependency = "db", operation = 5)]
async fn b() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
