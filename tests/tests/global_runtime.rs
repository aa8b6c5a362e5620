//! The global runtime: built-in defaults before initialisation, the project's
//! config after it, and no second initialisation. One test, because the
//! global state is the subject.

use resilience_runtime::{
    database_call, init_from_file, init_from_yaml_str, BulkheadConfig, ConfigError, ConfigSource,
    Runtime,
};
use resilience_tests::{Logs, TestError};
use std::path::Path;
use std::time::Duration;

const GET_PET_LINE: u32 = line!() + 1;
#[database_call(dependency = "petstore_database")]
async fn get_pet(id: u64) -> Result<u64, TestError> {
    Ok(id)
}

#[tokio::test]
async fn defaults_before_init_then_the_configured_runtime_which_is_never_replaced() {
    let logs = Logs::default();
    tracing::subscriber::set_global_default(logs.clone()).unwrap();
    let warnings = || logs.take(tracing::Level::WARN);
    // Before any initialisation: the database kind's built-in defaults.
    assert_eq!(get_pet(1).await, Ok(1));
    let said = warnings();
    assert_eq!(said.len(), 1, "{said:?}");
    let site = format!("tests/tests/global_runtime.rs:{GET_PET_LINE}");
    assert!(
        said[0].contains(&format!(
            "petstore_database/get_pet at {site} runs on the built-in defaults"
        )),
        "the warning names the call site: {said:?}"
    );
    assert!(said[0].contains("RESILIENCE_STRICT=1"), "{said:?}");
    assert_eq!(get_pet(1).await, Ok(1));
    assert!(warnings().is_empty(), "said once");
    let before = resilience_runtime::health_snapshot();
    let db = &before.dependencies["petstore_database"];
    assert_eq!(db.bulkhead.max_concurrent, Some(10));
    assert_eq!(db.timeout_seconds, Some(10.0));
    assert_eq!(db.bulkhead.successful_requests, 2);
    assert_eq!(
        before.source,
        ConfigSource::Defaults,
        "the snapshot says so"
    );
    assert_eq!(
        before.dependencies.len(),
        1,
        "only dependencies that sites name"
    );

    // Nothing to reload before initialisation.
    let early = resilience_runtime::reload_from_file("no/such/file.yaml").unwrap_err();
    assert!(matches!(early, ConfigError::NotInitialised), "{early}");
    assert_eq!(resilience_runtime::health_snapshot().config_version, 1);

    // A broken file is refused and leaves the global runtime uninitialised.
    let broken = init_from_yaml_str("resilience:\n  nonsense: 1\n")
        .err()
        .unwrap();
    assert!(matches!(broken, ConfigError::Invalid { .. }), "{broken}");

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/enhanced_config.yaml");
    let rt: &'static Runtime = init_from_file(&path).unwrap();
    let said = warnings();
    assert!(
        said.len() == 1
            && said[0].contains("initialised after calls already ran on the built-in defaults"),
        "{said:?}"
    );
    assert_eq!(
        rt.dependency_config("petstore_database").unwrap().bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 10,
            max_wait: Duration::from_secs(15)
        }
    );
    assert_eq!(get_pet(2).await, Ok(2));
    let after = resilience_runtime::health_snapshot();
    assert_eq!(after.dependencies.len(), 6, "the configured runtime");
    assert_eq!(after.source, ConfigSource::Global);
    assert_eq!(rt.health_snapshot().source, ConfigSource::Global);
    let json = serde_json::to_value(&after).unwrap();
    assert_eq!(json["source"], "global");

    // A scope wins over the global runtime, and `spawn` carries it into a task.
    let scoped = Runtime::from_yaml_str(
        "resilience:\n  external_dependencies:\n    petstore_database: { type: database }\n",
    )
    .unwrap();
    let (here, there) = scoped
        .scope(async {
            let here = resilience_runtime::health_snapshot().source;
            let spawned = resilience_runtime::spawn(async {
                get_pet(7).await.unwrap();
                resilience_runtime::health_snapshot().source
            });
            let plain = tokio::spawn(async { resilience_runtime::health_snapshot().source });
            assert_eq!(
                plain.await.unwrap(),
                ConfigSource::Global,
                "tokio::spawn loses the scope"
            );
            (here, spawned.await.unwrap())
        })
        .await;
    assert_eq!((here, there), (ConfigSource::Scoped, ConfigSource::Scoped));
    assert_eq!(
        scoped.health_snapshot().dependencies["petstore_database"]
            .bulkhead
            .successful_requests,
        1,
        "the spawned task's call counted in the scoped runtime"
    );
    assert_eq!(
        Runtime::with_defaults().health_snapshot().source,
        ConfigSource::Defaults
    );
    assert_eq!(
        after.dependencies["petstore_database"]
            .bulkhead
            .successful_requests,
        1
    );
    assert_eq!(
        after.dependencies["petstore_database"].operations,
        ["get_pet"]
    );

    let again = init_from_file(&path).expect_err("a second init is an error");
    assert!(matches!(again, ConfigError::AlreadyInitialised), "{again}");
    let again = init_from_yaml_str("resilience: {}").expect_err("a second init is an error");
    assert!(matches!(again, ConfigError::AlreadyInitialised), "{again}");
    assert_eq!(get_pet(3).await, Ok(3));
    let last = resilience_runtime::health_snapshot();
    assert_eq!(
        last.dependencies["petstore_database"]
            .bulkhead
            .successful_requests,
        2,
        "still the first"
    );
    assert_eq!(
        (last.config_version, last.reloaded_at.as_deref()),
        (1, None)
    );

    // Reloading the same file changes nothing but the version; the counters stay.
    let report = resilience_runtime::reload_from_file(&path).unwrap();
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.to_string(), "config version 2: no change");
    let reloaded = resilience_runtime::health_snapshot();
    assert_eq!(reloaded.config_version, 2);
    assert!(reloaded.reloaded_at.is_some());
    assert_eq!(
        reloaded.dependencies["petstore_database"]
            .bulkhead
            .successful_requests,
        2
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let smaller = text.replacen(
        "petstore_database:\n      type: database\n      max_concurrent: 10",
        "petstore_database:\n      type: database\n      max_concurrent: 3",
        1,
    );
    assert_ne!(
        smaller, text,
        "the project's config still reads as this test expects"
    );
    let halved = resilience_runtime::reload_from_yaml_str(&smaller).unwrap();
    assert_eq!(halved.config_version, 3);
    assert_eq!(
        resilience_runtime::health_snapshot().dependencies["petstore_database"]
            .bulkhead
            .max_concurrent,
        Some(3),
        "{halved}"
    );
}
