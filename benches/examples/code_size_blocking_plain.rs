//! The same 64 blocking `fn`s without the attribute, called in place; see `benches/code_size.sh`.
macro_rules! call {
    ($f:expr) => {
        $f
    };
}
include!("code_size/sites.rs");
example!(blocking_site []);
