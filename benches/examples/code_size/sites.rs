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

fn run() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let i = std::hint::black_box(std::env::args().count());
    let out = rt.block_on(call_one(i, i as u64));
    std::hint::black_box(out.is_ok());
}
