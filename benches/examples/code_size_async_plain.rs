//! the same 64 `async fn`s without the attribute; see `benches/code_size.sh`.
macro_rules! call {
    ($f:expr) => {
        $f.await
    };
}
include!("code_size/sites.rs");
sites!(site [];
    s00 s01 s02 s03 s04 s05 s06 s07 s08 s09 s10 s11 s12 s13 s14 s15
    s16 s17 s18 s19 s20 s21 s22 s23 s24 s25 s26 s27 s28 s29 s30 s31
    s32 s33 s34 s35 s36 s37 s38 s39 s40 s41 s42 s43 s44 s45 s46 s47
    s48 s49 s50 s51 s52 s53 s54 s55 s56 s57 s58 s59 s60 s61 s62 s63);

fn main() {
    // The runtime is initialised in every variant, so only the sites differ.
    resilience_runtime::init_from_yaml_str(
        "resilience:\n  external_dependencies:\n    db: { type: database }\n",
    )
    .expect("config");
    run();
}
