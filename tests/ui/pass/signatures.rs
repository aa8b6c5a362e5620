//! Methods, generics, lifetimes, borrowed and `impl Trait` arguments.
use resilience_runtime::{api_call, database_call, resilient, ResilienceError};
use std::fmt::Display;

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}

pub struct Repo {
    name: String,
}

impl Repo {
    /// Documented, public, borrowing `self`.
    #[database_call(dependency = "db")]
    #[inline]
    pub async fn name_len(&self, extra: &str) -> Result<usize, MyError> {
        Ok(self.name.len() + extra.len())
    }

    #[database_call(dependency = "db")]
    async fn rename(&mut self, to: impl Into<String>) -> Result<(), MyError> {
        self.name = to.into();
        Ok(())
    }
}

#[database_call(dependency = "db")]
async fn first<'a, T: Display + ?Sized>(items: &'a [&'a T]) -> Result<&'a T, MyError> {
    items.first().copied().ok_or(MyError)
}

#[resilient(kind = "file_system", dependency = "fs")]
pub(crate) async fn show(v: impl Display) -> Result<String, MyError> {
    Ok(v.to_string())
}

#[api_call(dependency = "api")]
fn blocking(values: Vec<u32>, label: String) -> Result<String, MyError> {
    Ok(format!("{label}:{}", values.len()))
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut repo = Repo { name: "rex".into() };
        assert_eq!(repo.name_len("!").await.unwrap(), 4);
        repo.rename("fido").await.unwrap();
        assert_eq!(first::<str>(&["a", "b"]).await.unwrap(), "a");
        assert_eq!(show(5).await.unwrap(), "5");
        assert_eq!(blocking(vec![1, 2], "n".into()).await.unwrap(), "n:2");
    });
}
