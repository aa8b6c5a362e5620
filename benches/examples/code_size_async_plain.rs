//! The same 64 `async fn`s without the attribute; see `benches/code_size.sh`.
macro_rules! call {
    ($f:expr) => {
        $f.await
    };
}
include!("code_size/sites.rs");
example!(site []);
