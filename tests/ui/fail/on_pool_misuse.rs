use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

#[resilience_runtime::api_call(dependency = "ml_pet_advisor", on_pool)]
fn already_blocking() -> Result<u32, MyError> {
    Ok(1)
}

#[resilience_runtime::api_call(dependency = "ml_pet_advisor", on_pool)]
async fn shares(history: std::rc::Rc<Vec<u32>>) -> Result<u32, MyError> {
    Ok(history.iter().sum())
}

#[resilience_runtime::api_call(dependency = "ml_pet_advisor", on_pool = true)]
async fn valued() -> Result<u32, MyError> {
    Ok(1)
}

fn main() {}
