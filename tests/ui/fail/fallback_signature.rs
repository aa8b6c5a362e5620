use resilience_runtime::ResilienceError;

#[derive(Debug, Clone)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

use resilience_runtime::database_call;

async fn wrong_fallback(id: u64) -> Result<String, MyError> {
    Ok(id.to_string())
}

#[database_call(dependency = "db", fallback = wrong_fallback)]
async fn get_pet(id: u64) -> Result<String, MyError> {
    Ok(id.to_string())
}

fn wrong_type(id: u64, _: MyError) -> Result<u32, MyError> {
    Ok(id as u32)
}

#[database_call(dependency = "db", fallback = wrong_type)]
fn read(id: u64) -> Result<String, MyError> {
    Ok(id.to_string())
}

fn main() {}
