use resilience_runtime::ResilienceError;

#[derive(Debug, Clone)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

use resilience_runtime::database_call;

fn takes_owned(_: MyError) -> bool {
    true
}

#[database_call(dependency = "db", idempotent, retry_if = takes_owned)]
async fn get_pet(id: u64) -> Result<u64, MyError> {
    Ok(id)
}

fn seconds(_: &MyError) -> u64 {
    1
}

#[database_call(dependency = "db", idempotent, retry_after = seconds)]
async fn get_owner(id: u64) -> Result<u64, MyError> {
    Ok(id)
}

fn declined(_: MyError) -> bool {
    false
}

#[database_call(dependency = "db", record_if = declined)]
async fn charge(id: u64) -> Result<u64, MyError> {
    Ok(id)
}

fn main() {}
