use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

struct Advisor;

impl Advisor {
    #[resilience_runtime::api_call(dependency = "ml_pet_advisor")]
    fn score(&self) -> Result<u32, MyError> {
        Ok(1)
    }
}

fn main() {}
