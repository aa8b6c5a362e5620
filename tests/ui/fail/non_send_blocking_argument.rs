use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

use std::rc::Rc;

#[resilience_runtime::api_call(dependency = "ml_pet_advisor")]
fn score(history: Rc<Vec<u32>>) -> Result<u32, MyError> {
    Ok(history.iter().sum())
}

fn main() {}
