//! What a new user writes on the first day: a facade crate's path, a type
//! alias for the return type, a module whose name contains `impl`.
use resilience_runtime::ResilienceError;

#[derive(Debug)]
pub struct AppError;
impl From<ResilienceError> for AppError {
    fn from(_: ResilienceError) -> Self {
        AppError
    }
}
impl From<std::num::ParseIntError> for AppError {
    fn from(_: std::num::ParseIntError) -> Self {
        AppError
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// A service's facade that re-exports the runtime under its own path.
mod facade {
    pub use resilience_runtime as resilience;
}

mod my_impl {
    pub struct Pet(pub u32);
}

#[facade::resilience::database_call(crate = "crate::facade::resilience", dependency = "db")]
async fn through_facade() -> AppResult<u32> {
    Ok(1)
}

#[resilience_runtime::database_call(dependency = "db")]
fn blocking_alias(text: String) -> AppResult<u32> {
    Ok(text.parse::<u32>()?)
}

/// `?` needs the declared error type: the inference edge must be there.
#[resilience_runtime::database_call(dependency = "db", idempotent)]
async fn parsed(text: &str) -> Result<my_impl::Pet, AppError> {
    let n = text.parse::<u32>()?;
    Ok(my_impl::Pet(n))
}

#[resilience_runtime::database_call(dependency = "db")]
fn read_static(name: &'static str) -> AppResult<usize> {
    Ok(name.len())
}

fn main() {
    let rt = resilience_runtime::Runtime::from_yaml_str(
        "resilience:\n  external_dependencies:\n    db: { type: database }\n",
    )
    .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(rt.scope(async {
            assert_eq!(through_facade().await.unwrap(), 1);
            assert_eq!(blocking_alias("7".into()).await.unwrap(), 7);
            assert_eq!(parsed("9").await.unwrap().0, 9);
            assert!(parsed("x").await.is_err());
            assert_eq!(read_static("pets").await.unwrap(), 4);
        }));
}
