//! Calls outside a tokio runtime fail at once, the same way whether or not
//! they would have waited, with a message naming the function; inside one
//! they work from every kind of thread tokio has.

use resilience_runtime::{database_call, Runtime};
use resilience_tests::TestError;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

const CONFIG: &str = "resilience:\n  external_dependencies:\n    db: { type: database }\n";

#[database_call(dependency = "db")]
async fn ready() -> Result<u32, TestError> {
    Ok(1)
}

#[database_call(dependency = "db")]
async fn waits() -> Result<u32, TestError> {
    std::future::pending::<()>().await;
    Ok(2)
}

#[database_call(dependency = "db")]
fn blocking() -> Result<u32, TestError> {
    Ok(3)
}

/// Polls `future` once on this plain thread, as a non-tokio executor would.
fn poll_once<F: Future>(future: F) -> String {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let mut future = pin!(rt.scope(future));
        let polled = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(polled, Poll::Pending | Poll::Ready(_)));
    }))
    .expect_err("a call outside tokio must fail");
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(other) => format!("{:?}", other.downcast_ref::<&str>()),
    }
}

#[test]
fn every_call_outside_tokio_fails_at_once_naming_the_function() {
    for (name, message) in [
        ("ready", poll_once(ready())),
        ("waits", poll_once(waits())),
        ("blocking", poll_once(blocking())),
    ] {
        assert!(
            message.starts_with(&format!(
                "`{name}` (db/{name} at tests/tests/outside_tokio.rs:"
            )),
            "{message}"
        );
        assert!(
            message.contains("was called outside a tokio runtime")
                && message.contains("time driver enabled"),
            "{message}"
        );
    }
}

#[test]
fn inside_tokio_calls_work_from_block_on_tasks_and_blocking_threads() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    for tokio_rt in [
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    ] {
        let rt = rt.clone();
        let results = tokio_rt.block_on(async move {
            let in_block_on = rt.scope(ready()).await;
            let in_task = rt.spawn(ready()).await.unwrap();
            let handle = tokio::runtime::Handle::current();
            let rt2 = rt.clone();
            let on_blocking_thread =
                tokio::task::spawn_blocking(move || handle.block_on(rt2.scope(blocking())))
                    .await
                    .unwrap();
            [in_block_on, in_task, on_blocking_thread]
        });
        assert_eq!(results, [Ok(1), Ok(1), Ok(3)]);
    }
}
