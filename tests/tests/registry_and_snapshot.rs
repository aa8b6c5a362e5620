//! The call-site registry checks a configuration against every annotated
//! function, and the snapshot reports what the JSON shape says.

use resilience_runtime::{
    api_call, cache_call, database_call, CallSiteReason, ConfigError, DependencyStatus,
    OverallStatus, Runtime,
};
use resilience_tests::{health, TestError};
use serde_json::{json, Value};
use std::time::Duration;

const CONFIG: &str = "
resilience:
  external_dependencies:
    orders_db: { type: database, max_concurrent: 2, reject_on_full: true, circuit_breaker_failure_threshold: 2 }
    cache: { type: cache, max_concurrent: 10, enable_circuit_breaker: false, critical: false }
    advisor: { type: external_api, bulkhead_type: thread_pool, max_workers: 3, queue_capacity: 2, circuit_breaker_failure_threshold: 1, critical: false }
    unused: { type: file_system }
";

const ORDER_LINE: u32 = line!() + 1;
#[database_call(dependency = "orders_db", operation = "load_order")]
async fn load_order(ok: bool) -> Result<u32, TestError> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    if ok {
        Ok(1)
    } else {
        Err(TestError::Failed("no"))
    }
}

const CACHE_LINE: u32 = line!() + 1;
#[cache_call(dependency = "cache")]
async fn cached() -> Result<u32, TestError> {
    Ok(2)
}

#[api_call(dependency = "advisor")]
fn advise(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Failed("model down"))
    } else {
        Ok(3)
    }
}

#[test]
fn a_config_missing_dependencies_lists_every_site_that_names_one() {
    let err = Runtime::from_yaml_str("resilience:\n  external_dependencies:\n    advisor: { type: external_api, bulkhead_type: thread_pool }\n")
        .expect_err("must fail");
    let ConfigError::CallSites { problems } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(problems.len(), 2, "{err}");
    for p in problems {
        assert_eq!(p.file, "tests/tests/registry_and_snapshot.rs");
        assert_eq!(
            p.reason,
            CallSiteReason::UnknownDependency {
                listed: vec!["advisor".into()]
            }
        );
    }
    let order = problems.iter().find(|p| p.operation == "load_order");
    assert_eq!(
        order.map(|p| (p.dependency, p.line)),
        Some(("orders_db", ORDER_LINE))
    );
    let text = err.to_string();
    for (line, op, dep) in [
        (ORDER_LINE, "load_order", "orders_db"),
        (CACHE_LINE, "cached", "cache"),
    ] {
        let want =
            format!("tests/tests/registry_and_snapshot.rs:{line}: `{op}` names dependency `{dep}`");
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn the_configured_type_decides_when_a_sites_kind_differs() {
    let rt =
        Runtime::from_yaml_str(&CONFIG.replace("cache: { type: cache", "cache: { type: database"))
            .expect("a kind that differs is no obstacle");
    assert_eq!(
        health(&rt, "cache").kind,
        resilience_runtime::Kind::Database
    );
}

#[tokio::test(start_paused = true)]
async fn the_snapshot_has_the_documented_shape_and_starts_idle() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    let json = serde_json::to_value(rt.health_snapshot()).unwrap();
    assert_eq!(json["status"], "pass");
    let timestamp = json["timestamp"].as_str().unwrap();
    assert!(
        timestamp.len() == 24 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );
    assert_eq!(
        json["dependencies"]["orders_db"],
        json!({
            "kind": "database", "critical": true, "status": "idle",
            "operations": ["load_order"],
            "timeout_seconds": 10.0,
            "bulkhead": {
                "type": "semaphore", "max_concurrent": 2, "current_load": 0,
                "total_requests": 0, "successful_requests": 0, "failed_requests": 0,
                "timed_out_requests": 0, "rejected_requests": 0,
                "short_circuited_requests": 0, "cancelled_requests": 0,
                "rate_limited_requests": 0, "success_rate": null
            },
            "circuit_breaker": {
                "state": "closed", "failure_count": 0, "failure_threshold": 2,
                "recovery_timeout_seconds": 60.0
            },
            "retry": null,
            "fallback": null,
            "rate_limiter": null,
            "latency": null
        })
    );
    let advisor = &json["dependencies"]["advisor"];
    assert_eq!(advisor["kind"], "external_api");
    assert_eq!(advisor["bulkhead"]["type"], "thread_pool");
    assert_eq!(advisor["bulkhead"]["max_workers"], 3);
    assert_eq!(advisor["bulkhead"]["queue_capacity"], 2);
    assert!(advisor["bulkhead"].get("max_concurrent").is_none());
    assert_eq!(
        json["dependencies"]["cache"]["circuit_breaker"],
        Value::Null
    );
    assert_eq!(json["dependencies"]["unused"]["operations"], json!([]));
    for (name, dep) in json["dependencies"].as_object().unwrap() {
        assert_eq!(dep["status"], "idle", "{name} has had no traffic");
    }
}

#[tokio::test(start_paused = true)]
async fn statuses_follow_the_documented_rules() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    rt.scope(async {
        let status = |name: &str| health(&rt, name).status;
        cached().await.unwrap();
        assert_eq!(status("cache"), DependencyStatus::Healthy);
        assert_eq!(rt.health_snapshot().status, OverallStatus::Pass);

        // Both slots busy, then a third call is rejected: under pressure.
        let (a, b, c) = tokio::join!(load_order(true), load_order(true), async {
            tokio::task::yield_now().await;
            let before = status("orders_db");
            (before, load_order(true).await)
        });
        assert_eq!((a, b), (Ok(1), Ok(1)));
        assert_eq!(c.0, DependencyStatus::UnderPressure, "2 of 2 slots in use");
        assert!(c.1.unwrap_err().resilience().unwrap().is_rejected());
        assert_eq!(
            status("orders_db"),
            DependencyStatus::UnderPressure,
            "the latest admission was refused"
        );
        assert_eq!(rt.health_snapshot().status, OverallStatus::Warn);
        load_order(true).await.unwrap();
        assert_eq!(status("orders_db"), DependencyStatus::Healthy);

        load_order(false).await.unwrap_err();
        assert_eq!(
            status("orders_db"),
            DependencyStatus::Degraded,
            "the latest call failed"
        );
        load_order(false).await.unwrap_err();
        assert_eq!(
            status("orders_db"),
            DependencyStatus::Unavailable,
            "breaker open"
        );
        assert_eq!(
            rt.health_snapshot().status,
            OverallStatus::Fail,
            "a critical dependency is down"
        );

        let rate = health(&rt, "orders_db").bulkhead.success_rate.unwrap();
        assert_eq!(
            rate,
            3.0 / 5.0,
            "rejections do not count in the success rate"
        );
    })
    .await;
}

#[tokio::test]
async fn a_non_critical_dependency_down_only_warns() {
    let rt = Runtime::from_yaml_str(CONFIG).unwrap();
    rt.scope(async {
        assert_eq!(advise(false).await, Ok(3));
        assert_eq!(advise(true).await, Err(TestError::Failed("model down")));
        assert_eq!(health(&rt, "advisor").status, DependencyStatus::Unavailable);
        assert_eq!(rt.health_snapshot().status, OverallStatus::Warn);
        assert_eq!(
            resilience_runtime::health_snapshot().status,
            OverallStatus::Warn,
            "the scoped runtime"
        );
        let rate = health(&rt, "advisor").bulkhead.success_rate.unwrap();
        assert!((0.0..=1.0).contains(&rate));
    })
    .await;
}
