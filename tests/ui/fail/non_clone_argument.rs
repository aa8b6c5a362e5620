use resilience_runtime::ResilienceError;

#[derive(Debug, Clone)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

use resilience_runtime::database_call;

pub struct Connection;

#[database_call(dependency = "db", idempotent)]
async fn get_pet(conn: Connection, id: u64) -> Result<u64, MyError> {
    let _ = conn;
    Ok(id)
}

fn main() {}
