//! Strict mode from the environment: a call that finds no runtime fails
//! with `NotInitialised` instead of running on the built-in defaults, and
//! its fallback does not hide that. One test, because the mode is global
//! and one-way.

use resilience_runtime::{database_call, ResilienceError, Runtime};
use resilience_tests::TestError;
use std::sync::atomic::{AtomicU32, Ordering};

static RAN: AtomicU32 = AtomicU32::new(0);

#[database_call(dependency = "ledger")]
async fn balance() -> Result<u64, TestError> {
    RAN.fetch_add(1, Ordering::SeqCst);
    Ok(7)
}

#[database_call(dependency = "ledger", idempotent, fallback = cached)]
async fn balance_or_cached() -> Result<u64, TestError> {
    RAN.fetch_add(1, Ordering::SeqCst);
    Ok(7)
}

async fn cached(_: TestError) -> Result<u64, TestError> {
    Ok(0)
}

#[database_call(dependency = "ledger")]
fn balance_blocking() -> Result<u64, TestError> {
    RAN.fetch_add(1, Ordering::SeqCst);
    Ok(7)
}

#[tokio::test]
async fn with_resilience_strict_set_a_call_before_init_fails_clearly() {
    // Before the first call reads it, as a service's environment would be.
    std::env::set_var("RESILIENCE_STRICT", "1");
    assert!(resilience_runtime::is_strict_mode());
    for result in [
        balance().await,
        balance_or_cached().await,
        balance_blocking().await,
    ] {
        let err = result.unwrap_err();
        let e = err.resilience().expect("a resilience error");
        assert!(e.is_not_initialised(), "{e:?}");
        assert_eq!((e.dependency(), e.retry_after()), ("ledger", None));
    }
    assert_eq!(RAN.load(Ordering::SeqCst), 0, "no body ran");
    let e = ResilienceError::NotInitialised {
        dependency: "ledger",
        operation: "balance",
    };
    assert_eq!(
        e.to_string(),
        "ledger/balance not attempted: strict mode is on and no resilience runtime is \
         initialised; call resilience_runtime::init_from_file at start-up, before any annotated \
         call, or run the call inside Runtime::scope"
    );

    // Inside a scope there is a runtime in force: strict mode has no say.
    let rt = Runtime::from_yaml_str(
        "resilience:\n  external_dependencies:\n    ledger: { type: database }\n",
    )
    .unwrap();
    assert_eq!(rt.scope(balance()).await, Ok(7));
    assert_eq!(rt.scope(balance_or_cached()).await, Ok(7));
    assert_eq!(rt.scope(balance_blocking()).await, Ok(7));
}
