//! 64 annotated `async fn`s; see `benches/code_size.sh`.
macro_rules! call {
    ($f:expr) => {
        $f.await
    };
}
include!("code_size/sites.rs");
example!(site [#[resilience_runtime::database_call(dependency = "db")]]);
