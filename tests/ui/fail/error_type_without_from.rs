#[derive(Debug)]
pub struct PlainError;

#[resilience_runtime::database_call(dependency = "db")]
async fn get() -> Result<u32, PlainError> {
    Ok(1)
}

fn main() {}
