use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::database_call(dependency = "db")]
async fn get_name(id: u64) -> Result<String, MyError> {
    let name: String = id;
    Ok(name)
}

fn main() {}
