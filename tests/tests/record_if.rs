//! `record_if` decides which body errors are the dependency's failures: the
//! others are counted as failed calls, but neither the breaker nor the
//! health status sees them.

use resilience_runtime::{api_call, Runtime};
use resilience_tests::{counters, health, TestError};

/// A declined payment is the customer's problem; anything else is the gateway's.
fn gateways_fault(e: &TestError) -> bool {
    !matches!(e, TestError::Failed("declined"))
}

#[api_call(dependency = "gateway", record_if = gateways_fault)]
async fn charge(outcome: Result<u32, &'static str>) -> Result<u32, TestError> {
    outcome.map_err(TestError::Failed)
}

/// Blocking and retried sites take it too.
#[api_call(dependency = "gateway", idempotent, record_if = gateways_fault)]
fn void(outcome: Result<u32, &'static str>) -> Result<u32, TestError> {
    outcome.map_err(TestError::Failed)
}

const CONFIG: &str = "
resilience:
  external_dependencies:
    gateway: { type: external_api, circuit_breaker_failure_threshold: 2, circuit_breaker_timeout: 60,
               max_retry_attempts: 2, retry_initial_delay_seconds: 0 }
";

#[tokio::test(start_paused = true)]
async fn declines_leave_the_breaker_closed_and_the_status_healthy() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    assert_eq!(rt.scope(charge(Ok(1))).await, Ok(1));
    for _ in 0..5 {
        assert_eq!(
            rt.scope(charge(Err("declined"))).await,
            Err(TestError::Failed("declined"))
        );
    }
    let gateway = health(&rt, "gateway");
    let breaker = gateway.circuit_breaker.unwrap();
    assert_eq!(
        (
            breaker.failure_count,
            serde_json::to_value(breaker.state).unwrap()
        ),
        (0, "closed".into())
    );
    assert_eq!(serde_json::to_value(gateway.status).unwrap(), "healthy");
    assert_eq!(
        counters(&rt, "gateway"),
        [1, 5, 0, 0, 0, 0],
        "declines are failed calls all the same"
    );

    // Two of the gateway's own failures open it.
    for _ in 0..2 {
        assert!(rt.scope(charge(Err("gateway error"))).await.is_err());
    }
    let gateway = health(&rt, "gateway");
    assert_eq!(serde_json::to_value(gateway.status).unwrap(), "unavailable");
}

#[tokio::test(start_paused = true)]
async fn a_retried_blocking_site_records_only_what_record_if_accepts() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    // A decline is retried (retry_if is not set) but never trips the breaker.
    assert!(rt.scope(void(Err("declined"))).await.is_err());
    let gateway = health(&rt, "gateway");
    assert_eq!(gateway.retry.unwrap().retries, 2);
    assert_eq!(gateway.circuit_breaker.unwrap().failure_count, 0);
    assert_eq!(counters(&rt, "gateway")[1], 3);
}
