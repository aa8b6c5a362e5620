//! An open breaker on the real clock, in a process that never pauses one:
//! here it refuses on the kernel's coarse clock while its recovery time is
//! far, and must still never say a retry-after that is too short nor admit
//! a probe early, nor allocate. No test here sleeps: they poll.

use resilience_runtime::{database_call, ResilienceError, Runtime};
use resilience_tests::{allocations_per_call, CountingAllocator, TestError};
use std::time::{Duration, Instant};

const CONFIG: &str = "
resilience:
  external_dependencies:
    flaky:
      type: database
      circuit_breaker_failure_threshold: 1
      circuit_breaker_timeout: 0.05
    down:
      type: database
      circuit_breaker_failure_threshold: 1
      circuit_breaker_timeout: 3600
";

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[database_call(dependency = "down")]
async fn refused(fail: bool) -> Result<(), TestError> {
    answer(fail)
}

/// Refused on the coarse clock (its recovery time is an hour away), with
/// nothing allocated. (Checked to fail at 1.0 with a `Box` per call.)
#[tokio::test]
async fn a_refusal_on_the_coarse_clock_allocates_nothing() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    rt.scope(async {
        assert!(refused(true).await.is_err());
        let per_call = allocations_per_call(1000, || async {
            let err = refused(false).await.unwrap_err();
            assert!(matches!(
                err,
                TestError::Resilience(ResilienceError::CircuitOpen { .. })
            ));
        })
        .await;
        assert_eq!(per_call, 0.0, "allocations per short-circuit");
    })
    .await;
}

/// What the dependency says: a failure when asked to fail.
fn answer(fail: bool) -> Result<(), TestError> {
    if fail {
        Err(TestError::Failed("down"))
    } else {
        Ok(())
    }
}

#[database_call(dependency = "flaky")]
async fn call(fail: bool) -> Result<(), TestError> {
    answer(fail)
}

#[tokio::test]
async fn refusals_never_say_too_short_a_wait_and_the_first_probe_is_never_early() {
    let recovery = Duration::from_millis(50);
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let before_opening = Instant::now();
    assert_eq!(rt.scope(call(true)).await, Err(TestError::Failed("down")));
    let after_opening = Instant::now();
    let mut refusals = 0;
    let probed_at = loop {
        let asked = Instant::now();
        match rt.scope(call(false)).await {
            Ok(()) => break Instant::now(),
            Err(TestError::Resilience(ResilienceError::CircuitOpen { retry_after, .. })) => {
                refusals += 1;
                // The recovery time is at least `before_opening + recovery`;
                // the refusal came no later than now.
                let least = (before_opening + recovery).saturating_duration_since(Instant::now());
                assert!(
                    retry_after >= least,
                    "said {retry_after:?}, {least:?} were left"
                );
                // At most the recovery time plus the coarse clock's slack.
                let most = (after_opening + recovery + Duration::from_millis(20))
                    .saturating_duration_since(asked);
                assert!(
                    retry_after <= most,
                    "said {retry_after:?}, at most {most:?} were left"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        tokio::task::yield_now().await;
    };
    assert!(refusals > 0);
    assert!(
        probed_at >= before_opening + recovery,
        "a probe after {:?}, before the recovery time",
        probed_at - before_opening
    );
}
