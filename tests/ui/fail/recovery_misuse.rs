use resilience_runtime::ResilienceError;

#[derive(Debug, Clone)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

use resilience_runtime::database_call;

fn transient(_: &MyError) -> bool {
    true
}

#[database_call(dependency = "db", retry_if = transient)]
async fn get_pet(id: u64) -> Result<u64, MyError> {
    Ok(id)
}

#[database_call(dependency = "db", fallback = "cached")]
async fn get_owner(id: u64) -> Result<u64, MyError> {
    Ok(id)
}

pub struct Repo(u64);

impl Repo {
    #[database_call(dependency = "db", idempotent)]
    async fn bump(&mut self) -> Result<u64, MyError> {
        self.0 += 1;
        Ok(self.0)
    }
}

#[database_call(dependency = "db", idempotent)]
async fn pair((a, b): (u64, u64)) -> Result<u64, MyError> {
    Ok(a + b)
}

#[database_call(dependency = "db", idempotent)]
async fn fill(buffer: &mut Vec<u8>) -> Result<usize, MyError> {
    buffer.push(1);
    Ok(buffer.len())
}

fn main() {}
