// Included by every code-size example: 64 functions, each with a body of
// its own, each boxed behind `dyn Future` so none is inlined away. The attribute is
// the only difference between the two binaries.
#[allow(unused_macros)] // each example uses one of the two
macro_rules! site {
    ([$($attr:tt)*] $name:ident) => {
        $($attr)*
        #[inline(never)]
        async fn $name(x: u64) -> Result<u64, CallError> {
            let salt = stringify!($name).len() as u64;
            if x == u64::MAX { return Err(CallError) }
            Ok(x.wrapping_mul(salt).rotate_left(salt as u32))
        }
    };
}

#[allow(unused_macros)]
macro_rules! blocking_site {
    ([$($attr:tt)*] $name:ident) => {
        $($attr)*
        #[inline(never)]
        fn $name(x: u64) -> Result<u64, CallError> {
            let salt = stringify!($name).len() as u64;
            if x == u64::MAX { return Err(CallError) }
            Ok(x.wrapping_mul(salt).rotate_left(salt as u32))
        }
    };
}

/// `$kind` is `site` or `blocking_site`; each example's `call!` says how a
/// call becomes a future (`.await`ed, or run in place for a plain fn).
macro_rules! sites {
    ($kind:ident $attrs:tt ; $($name:ident)*) => {
        $( $kind!($attrs $name); )*
        const COUNT: usize = [$(stringify!($name)),*].len();
        // Boxed, so that each function's state machine is compiled once, as
        // its own poll function, rather than inlined into a caller.
        fn call_one(
            i: usize,
            x: u64,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, CallError>>>> {
            let names = [$(stringify!($name)),*];
            $(
                if names[i % COUNT] == stringify!($name) { return Box::pin(async move { call!($name(x)) }); }
            )*
            unreachable!()
        }
    };
}

#[derive(Debug)]
pub struct CallError;

impl From<resilience_runtime::ResilienceError> for CallError {
    fn from(_: resilience_runtime::ResilienceError) -> Self {
        CallError
    }
}

/// The 64 functions of one example: `$kind` is `site` or `blocking_site`,
/// `$attrs` the attribute (or nothing).
macro_rules! example {
    ($kind:ident $attrs:tt) => {
        sites!($kind $attrs;
            s00 s01 s02 s03 s04 s05 s06 s07 s08 s09 s10 s11 s12 s13 s14 s15
            s16 s17 s18 s19 s20 s21 s22 s23 s24 s25 s26 s27 s28 s29 s30 s31
            s32 s33 s34 s35 s36 s37 s38 s39 s40 s41 s42 s43 s44 s45 s46 s47
            s48 s49 s50 s51 s52 s53 s54 s55 s56 s57 s58 s59 s60 s61 s62 s63);
    };
}

fn main() {
    // The runtime is initialised in every example, so only the sites differ.
    resilience_runtime::init_from_yaml_str(
        "resilience:\n  external_dependencies:\n    db: { type: database }\n",
    )
    .expect("config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let i = std::hint::black_box(std::env::args().count());
    let out = rt.block_on(call_one(i, i as u64));
    std::hint::black_box(out.is_ok());
}
