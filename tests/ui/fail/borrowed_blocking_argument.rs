use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::file_system_call(dependency = "fs")]
fn read_len(path: &str) -> Result<u64, MyError> {
    Ok(path.len() as u64)
}

#[resilience_runtime::file_system_call(dependency = "fs", on_pool)]
async fn read_on_pool(path: std::borrow::Cow<'_, str>) -> Result<u64, MyError> {
    Ok(path.len() as u64)
}

/// Callers see only the error above, not "not a future" besides.
async fn caller() -> Result<u64, MyError> {
    Ok(read_len("pets.csv").await? + read_on_pool("x".into()).await?)
}

fn main() {
    drop(caller());
}
