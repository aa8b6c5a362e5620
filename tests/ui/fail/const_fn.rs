use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::database_call(dependency = "db")]
const fn fixed() -> Result<u32, MyError> {
    Ok(1)
}

fn main() {}
