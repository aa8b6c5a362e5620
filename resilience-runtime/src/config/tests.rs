use super::*;
use crate::bulkhead::BulkheadConfig;
use crate::retry::{Backoff, Jitter, RetryConfig, RetryOn};
use std::time::Duration;

const PROJECT_CONFIG: &str = include_str!("../../../config/enhanced_config.yaml");

fn dep(config: &Config, name: &str) -> DependencyConfig {
    config.dependencies()[name].clone()
}

fn invalid(yaml: &str) -> (String, Option<usize>, String) {
    match Config::from_yaml_str(yaml).expect_err("must be refused") {
        e @ ConfigError::Invalid { .. } => (
            e.path().unwrap_or_default().to_owned(),
            e.line(),
            e.to_string(),
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn project_config_encodes_the_seed_figures() {
    let c = Config::from_yaml_str(PROJECT_CONFIG).unwrap();
    let names: Vec<&str> = c.dependencies().keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "kafka_events",
            "ml_pet_advisor",
            "payment_gateway",
            "payment_lookup",
            "petstore_database",
            "redis_cache"
        ]
    );

    let db = dep(&c, "petstore_database");
    assert_eq!(db.kind, Kind::Database);
    assert_eq!(
        db.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 10,
            max_wait: secs(15.0)
        }
    );
    assert_eq!(db.call_timeout, Some(secs(10.0)));
    assert_eq!(db.circuit_breaker.unwrap().failure_threshold, 5);
    assert!(db.critical);

    let pay = dep(&c, "payment_gateway");
    assert_eq!(
        pay.bulkhead,
        BulkheadConfig::ThreadPool {
            max_workers: 5,
            queue_capacity: 0
        }
    );
    assert_eq!(pay.call_timeout, Some(secs(15.0)));
    assert_eq!(pay.circuit_breaker.unwrap().failure_threshold, 3);

    // The gateway's read side, through a tower stack: a semaphore, since a
    // tower service runs in the caller's task.
    let lookup = dep(&c, "payment_lookup");
    assert!(matches!(
        lookup.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 20,
            ..
        }
    ));
    assert_eq!(lookup.call_timeout, Some(secs(2.0)));
    assert!(!lookup.critical);

    let cache = dep(&c, "redis_cache");
    assert_eq!(
        cache.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 100,
            max_wait: secs(0.5)
        }
    );
    assert_eq!(cache.call_timeout, Some(secs(1.5)));
    assert_eq!(cache.circuit_breaker, None);
    assert!(!cache.critical);

    let events = dep(&c, "kafka_events");
    assert_eq!(
        events.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 20,
            max_wait: secs(2.0)
        }
    );
    assert_eq!(events.call_timeout, Some(secs(8.0)));
    assert_eq!(events.circuit_breaker.unwrap().failure_threshold, 5);

    let ml = dep(&c, "ml_pet_advisor");
    assert_eq!(
        ml.bulkhead,
        BulkheadConfig::ThreadPool {
            max_workers: 6,
            queue_capacity: 0
        }
    );
    assert_eq!(ml.call_timeout, Some(secs(30.0)));
    let breaker = ml.circuit_breaker.unwrap();
    assert_eq!(breaker.failure_threshold, 4);
    assert_eq!(
        breaker.recovery_timeout,
        secs(30.0),
        "from bulkheads.external_api"
    );
    assert!(!ml.critical);
}

#[test]
fn levels_apply_in_order_entry_then_kind_then_top_then_builtin() {
    let c = Config::from_yaml_str(
        "resilience:
  circuit_breaker_failure_threshold: 7
  default_timeout_seconds: 40
  timeouts:
    cache_timeout: 3
    circuit_breaker_timeout: 20
  bulkheads:
    cache:
      max_concurrent: 50
      max_wait_seconds: 0.25
      circuit_breaker_failure_threshold: 9
  external_dependencies:
    a: { type: cache }
    b: { type: cache, max_concurrent: 5, timeout_seconds: 0.5, circuit_breaker_timeout: 1 }
    c: { type: database }
    d: { type: cache, reject_on_full: true }
",
    )
    .unwrap();
    let a = dep(&c, "a");
    assert_eq!(
        a.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 50,
            max_wait: secs(0.25)
        }
    );
    assert_eq!(a.call_timeout, Some(secs(3.0)));
    assert_eq!(a.circuit_breaker.unwrap().failure_threshold, 9);
    assert_eq!(a.circuit_breaker.unwrap().recovery_timeout, secs(20.0));
    let b = dep(&c, "b");
    assert_eq!(
        b.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 5,
            max_wait: secs(0.25)
        }
    );
    assert_eq!(b.call_timeout, Some(secs(0.5)));
    assert_eq!(b.circuit_breaker.unwrap().recovery_timeout, secs(1.0));
    let cc = dep(&c, "c");
    assert_eq!(
        cc.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 10,
            max_wait: Duration::ZERO
        }
    );
    assert_eq!(
        cc.call_timeout,
        Some(secs(40.0)),
        "default_timeout_seconds beats the built-in 10 s"
    );
    assert_eq!(cc.circuit_breaker.unwrap().failure_threshold, 7);
    let d = dep(&c, "d");
    assert_eq!(
        d.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 50,
            max_wait: Duration::ZERO
        }
    );
}

#[test]
fn global_switches_disable_every_breaker_and_timeout() {
    let c = Config::from_yaml_str(
        "resilience:
  circuit_breaker_enabled: false
  timeout_enabled: false
  external_dependencies:
    a: { type: database, enable_circuit_breaker: true, timeout_seconds: 3 }
",
    )
    .unwrap();
    let a = dep(&c, "a");
    assert_eq!(a.circuit_breaker, None);
    assert_eq!(a.call_timeout, None);
}

#[test]
fn builtin_defaults_per_kind() {
    let c = Config::default();
    let db = c.unlisted("x", Kind::Database).unwrap();
    assert_eq!(
        db.bulkhead,
        BulkheadConfig::Semaphore {
            max_concurrent: 10,
            max_wait: Duration::ZERO
        }
    );
    assert_eq!(db.call_timeout, Some(secs(10.0)));
    let b = db.circuit_breaker.unwrap();
    assert_eq!((b.failure_threshold, b.recovery_timeout), (5, secs(60.0)));
    assert_eq!(
        (b.half_open_max_calls, b.success_threshold, b.failure_rate),
        (1, 1, None)
    );
    assert_eq!(
        c.unlisted("x", Kind::Cache).unwrap().call_timeout,
        Some(secs(2.0))
    );
    assert_eq!(
        c.unlisted("x", Kind::ExternalApi).unwrap().call_timeout,
        Some(secs(15.0))
    );
}

#[test]
fn failure_rate_keys_resolve_with_window_defaults() {
    let c = Config::from_yaml_str(
        "resilience:
  external_dependencies:
    a: { type: database, circuit_breaker_failure_rate_threshold: 0.5, circuit_breaker_window_size: 20 }
",
    )
    .unwrap();
    let rate = dep(&c, "a").circuit_breaker.unwrap().failure_rate.unwrap();
    assert_eq!(
        (rate.threshold, rate.window_size, rate.minimum_calls),
        (0.5, 20, 20)
    );
}

#[test]
fn application_sections_are_ignored() {
    let c =
        Config::from_yaml_str("service: {name: x, anything: [1, 2]}\nfeature_flags: {a: true}\n")
            .unwrap();
    assert!(c.dependencies().is_empty());
    assert!(Config::from_yaml_str("").is_ok());
}

#[test]
fn unknown_key_names_the_key_its_path_and_its_line() {
    let (path, line, text) = invalid(
        "resilience:
  bulkheads:
    database:
      max_concurrent: 10
      max_concurent: 3
",
    );
    assert_eq!(path, "resilience.bulkheads.database");
    assert_eq!(line, Some(5));
    assert!(text.contains("unknown key `max_concurent`"), "{text}");
    assert!(text.contains("<config>, line 5, column 7: "), "{text}");

    let (path, line, text) = invalid("resilience:\n  timeout_enabeld: true\n");
    assert_eq!((path.as_str(), line), ("resilience", Some(2)));
    assert!(text.contains("`timeout_enabeld`"), "{text}");

    let (path, line, _) = invalid(
        "resilience:\n  external_dependencies:\n    db:\n      type: database\n      timeout: 3\n",
    );
    assert_eq!(
        (path.as_str(), line),
        ("resilience.external_dependencies.db", Some(5))
    );

    let (path, line, _) = invalid("resilience:\n  timeouts:\n    databse_timeout: 3\n");
    assert_eq!((path.as_str(), line), ("resilience.timeouts", Some(3)));
}

#[test]
fn invalid_values_name_their_path() {
    let cases = [
        ("bulkheads:\n    database:\n      max_concurrent: 0", "resilience.bulkheads.database.max_concurrent"),
        (
            "external_dependencies:\n    db: { type: database, timeout_seconds: -1 }",
            "resilience.external_dependencies.db.timeout_seconds",
        ),
        (
            "external_dependencies:\n    db: { type: database, timeout_seconds: .nan }",
            "resilience.external_dependencies.db.timeout_seconds",
        ),
        ("timeouts:\n    cache_timeout: .inf", "resilience.timeouts.cache_timeout"),
        ("circuit_breaker_failure_threshold: 0", "resilience.circuit_breaker_failure_threshold"),
        (
            "external_dependencies:\n    db: { type: database, circuit_breaker_failure_rate_threshold: 1.5 }",
            "resilience.external_dependencies.db.circuit_breaker_failure_rate_threshold",
        ),
        (
            "external_dependencies:\n    db: { type: database, circuit_breaker_failure_rate_threshold: 0 }",
            "resilience.external_dependencies.db.circuit_breaker_failure_rate_threshold",
        ),
        (
            "external_dependencies:\n    db: { type: database, bulkhead_type: fiber }",
            "resilience.external_dependencies.db.bulkhead_type",
        ),
        ("external_dependencies:\n    db: { type: databse }", "resilience.external_dependencies.db.type"),
        ("bulkheads:\n    databse: {}", "resilience.bulkheads"),
        ("max_retry_attempts: 101", "resilience.max_retry_attempts"),
        (
            "external_dependencies:\n    db: { type: database, max_concurrent: 2.5 }",
            "resilience.external_dependencies.db.max_concurrent",
        ),
        (
            "external_dependencies:\n    db: { type: database, max_concurrent: \"10\" }",
            "resilience.external_dependencies.db.max_concurrent",
        ),
    ];
    for (body, want) in cases {
        let (path, line, text) = invalid(&format!("resilience:\n  {body}\n"));
        assert_eq!(path, want, "{text}");
        assert!(line.is_some(), "{text}");
    }
}

#[test]
fn a_missing_type_is_an_error() {
    let (path, _, text) =
        invalid("resilience:\n  external_dependencies:\n    db: { max_concurrent: 3 }\n");
    assert_eq!(path, "resilience.external_dependencies.db");
    assert!(text.contains("missing field `type`"), "{text}");
}

#[test]
fn cross_key_mistakes_name_the_key_and_find_its_line() {
    let (path, line, text) = invalid(
        "resilience:
  external_dependencies:
    db:
      type: database
      circuit_breaker_failure_rate_threshold: 0.5
      circuit_breaker_window_size: 10
      circuit_breaker_minimum_calls: 20
",
    );
    assert_eq!(
        path,
        "resilience.external_dependencies.db.circuit_breaker_minimum_calls"
    );
    assert_eq!(line, Some(7));
    assert!(text.contains("could never trip"), "{text}");
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    let err = Config::from_yaml_str("resilience:\n  bulkheads: [unclosed\n  x: 1\n").unwrap_err();
    assert!(err.line().is_some(), "{err}");
    match &err {
        ConfigError::Invalid { column, .. } => assert!(column.is_some()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn file_errors_name_the_file() {
    let err = Config::from_file("/nonexistent/enhanced_config.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string()
            .contains("/nonexistent/enhanced_config.yaml"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("resilience-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "resilience:\n  bogus: 1\n").unwrap();
    let err = Config::from_file(&file).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}, line 2, column 3: resilience: unknown key `bogus`",
            file.display()
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_key_and_its_alias_together_are_refused() {
    let (path, line, text) =
        invalid("resilience:\n  bulkheads:\n    database:\n      timeout_seconds: 1\n      max_wait_seconds: 1\n");
    assert_eq!(
        (path.as_str(), line),
        ("resilience.bulkheads.database", Some(4))
    );
    assert!(
        text.contains("`timeout_seconds` and `max_wait_seconds` are the same key"),
        "{text}"
    );
}

#[test]
fn retry_keys_resolve_dependency_over_kind_over_top_over_defaults() {
    let config = Config::from_yaml_str(
        "
resilience:
  max_retry_attempts: 2
  retry_backoff: linear
  retry_on: [error]
  bulkheads:
    database: { max_retry_attempts: 4, retry_jitter: equal, retry_initial_delay_seconds: 0.5 }
  external_dependencies:
    db: { type: database, retry_max_delay_seconds: 3, retry_budget_ratio: 0.6, retry_max_elapsed_seconds: 20 }
    api: { type: external_api, retry_on: [timeout, rejected], retry_multiplier: 3 }
    off: { type: cache, retry_enabled: false }
",
    )
    .unwrap();
    let db = dep(&config, "db").retry.unwrap();
    assert_eq!(
        db,
        RetryConfig {
            max_retries: 4,
            backoff: Backoff::Linear,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
            multiplier: 2.0,
            jitter: Jitter::Equal,
            retry_on: RetryOn {
                error: true,
                timeout: false,
                rejected: false,
                rate_limited: false
            },
            budget_ratio: 0.6,
            budget_min_per_second: 10,
            max_elapsed: Some(Duration::from_secs(20)),
        }
    );
    let api = dep(&config, "api").retry.unwrap();
    assert_eq!(api.max_retries, 2);
    assert_eq!(
        (api.initial_delay, api.max_delay),
        (Duration::from_millis(100), Duration::from_secs(10))
    );
    assert_eq!(api.multiplier, 3.0);
    assert_eq!(api.jitter, Jitter::Full);
    assert_eq!(
        api.retry_on,
        RetryOn {
            error: false,
            timeout: true,
            rejected: true,
            rate_limited: false
        }
    );
    assert_eq!(dep(&config, "off").retry, None);
}

#[test]
fn retries_are_off_by_default_and_by_the_top_level_switch() {
    let config = Config::from_yaml_str(
        "resilience:\n  external_dependencies:\n    db: { type: database }\n",
    )
    .unwrap();
    assert_eq!(dep(&config, "db").retry, None);
    let config = Config::from_yaml_str(
        "resilience:\n  retry_enabled: false\n  external_dependencies:\n    db: { type: database, max_retry_attempts: 3 }\n",
    )
    .unwrap();
    assert_eq!(dep(&config, "db").retry, None);
    // The project's file keeps its three retries for every dependency.
    let config = Config::from_yaml_str(PROJECT_CONFIG).unwrap();
    for (name, d) in config.dependencies() {
        let retry = d.retry.unwrap();
        assert_eq!(retry.max_retries, 3, "{name}");
        let errors_only = RetryOn {
            error: true,
            timeout: false,
            rejected: false,
            rate_limited: false,
        };
        assert_eq!(retry.retry_on, errors_only, "{name}");
    }
}

#[test]
fn bad_retry_values_are_located_errors() {
    let cases = [
        ("max_retry_attempts: -1", "resilience.max_retry_attempts"),
        ("max_retry_attempts: 2.5", "resilience.max_retry_attempts"),
        ("retry_backoff: fibonacci", "resilience.retry_backoff"),
        ("retry_jitter: some", "resilience.retry_jitter"),
        (
            "retry_initial_delay_seconds: -0.1",
            "resilience.retry_initial_delay_seconds",
        ),
        (
            "retry_initial_delay_seconds: 3601",
            "resilience.retry_initial_delay_seconds",
        ),
        (
            "retry_max_delay_seconds: 0",
            "resilience.retry_max_delay_seconds",
        ),
        (
            "retry_max_delay_seconds: .inf",
            "resilience.retry_max_delay_seconds",
        ),
        ("retry_multiplier: 0.5", "resilience.retry_multiplier"),
        ("retry_multiplier: .nan", "resilience.retry_multiplier"),
        ("retry_budget_ratio: -0.1", "resilience.retry_budget_ratio"),
        ("retry_budget_ratio: 1001", "resilience.retry_budget_ratio"),
        (
            "retry_budget_min_per_second: 0.5",
            "resilience.retry_budget_min_per_second",
        ),
        (
            "retry_max_elapsed_seconds: 0",
            "resilience.retry_max_elapsed_seconds",
        ),
        (
            "retry_max_elapsed_seconds: 86401",
            "resilience.retry_max_elapsed_seconds",
        ),
        ("retry_on: [error, crash]", "resilience.retry_on[1]"),
        (
            "bulkheads:\n    database: { retry_multiplier: 200 }",
            "resilience.bulkheads.database.retry_multiplier",
        ),
        (
            "external_dependencies:\n    db: { type: database, retry_on: errors }",
            "resilience.external_dependencies.db.retry_on",
        ),
    ];
    for (body, want) in cases {
        let (path, line, text) = invalid(&format!("resilience:\n  {body}\n"));
        assert_eq!(path, want, "{body}: {text}");
        assert!(line.is_some(), "{text}");
    }
}

#[test]
fn contradicting_retry_keys_are_errors_at_the_key_that_was_set() {
    let cases = [
        (
            "max_retry_attempts: 1\n  retry_initial_delay_seconds: 5\n  retry_max_delay_seconds: 2",
            "resilience.retry_max_delay_seconds",
            4,
            "shorter than retry_initial_delay_seconds",
        ),
        (
            "max_retry_attempts: 1\n  external_dependencies:\n    db: { type: database, retry_on: [] }",
            "resilience.external_dependencies.db.retry_on",
            4,
            "retries nothing",
        ),
        (
            "max_retry_attempts: 1\n  bulkheads:\n    database: { retry_on: [timeout, timeout] }\n  external_dependencies:\n    db: { type: database }",
            "resilience.bulkheads.database.retry_on",
            4,
            "listed twice",
        ),
    ];
    for (body, want, want_line, says) in cases {
        let (path, line, text) = invalid(&format!("resilience:\n  {body}\n"));
        assert_eq!((path.as_str(), line), (want, Some(want_line)), "{text}");
        assert!(text.contains(says), "{text}");
    }
}

#[test]
fn every_count_size_and_duration_is_bounded() {
    let d = "external_dependencies:\n    db: { type: database, ";
    let cases = [
        (format!("{d}bulkhead_type: thread_pool, max_workers: 4294967295, queue_capacity: 1 }}"), "max_workers"),
        (format!("{d}bulkhead_type: thread_pool, max_workers: 1025 }}"), "max_workers"),
        (format!("{d}bulkhead_type: thread_pool, max_concurrent: 5000 }}"), "max_concurrent"),
        (format!("{d}bulkhead_type: thread_pool, queue_capacity: 1000001 }}"), "queue_capacity"),
        (format!("{d}max_concurrent: 1000001 }}"), "max_concurrent"),
        (format!("{d}circuit_breaker_failure_rate_threshold: 0.5, circuit_breaker_window_size: 1000000 }}"), "circuit_breaker_window_size"),
        (format!("{d}circuit_breaker_failure_threshold: 1000001 }}"), "circuit_breaker_failure_threshold"),
        (format!("{d}timeout_seconds: 1e-10 }}"), "timeout_seconds"),
        (format!("{d}timeout_seconds: 86401 }}"), "timeout_seconds"),
        (format!("{d}max_wait_seconds: 0.0001 }}"), "max_wait_seconds"),
        (format!("{d}circuit_breaker_timeout: 0.0005 }}"), "circuit_breaker_timeout"),
        (format!("{d}retry_initial_delay_seconds: 0.0001 }}"), "retry_initial_delay_seconds"),
    ];
    for (body, key) in cases {
        let (path, line, text) = invalid(&format!("resilience:\n  {body}\n"));
        assert_eq!(
            path,
            format!("resilience.external_dependencies.db.{key}"),
            "{body}: {text}"
        );
        assert_eq!(line, Some(3), "{text}");
    }
    // Zero stays a valid wait, and a millisecond a valid timeout.
    let ok = Config::from_yaml_str(&format!(
        "resilience:\n  {d}max_wait_seconds: 0, timeout_seconds: 0.001 }}\n"
    ))
    .unwrap();
    assert_eq!(dep(&ok, "db").call_timeout, Some(Duration::from_millis(1)));

    let many: String = (0..1001)
        .map(|i| format!("    d{i}: {{ type: cache }}\n"))
        .collect();
    let (path, line, text) = invalid(&format!("resilience:\n  external_dependencies:\n{many}"));
    assert_eq!(path, "resilience.external_dependencies", "{text}");
    assert_eq!(line, Some(2));
    assert!(
        text.contains("1001 dependencies is more than 1000"),
        "{text}"
    );
}

#[test]
fn what_yaml_allows_but_no_one_means_is_refused_with_its_place() {
    let cases = [
        (
            "resilience:\n  external_dependencies:\n    db: { type: database }\n    db: { type: cache }\n",
            "resilience.external_dependencies",
            Some(3),
            "duplicate key \"db\"",
        ),
        (
            "resilience:\n  bulkheads:\n    database: {}\n    database: { max_concurrent: 3 }\n",
            "resilience.bulkheads",
            Some(3),
            "duplicate key",
        ),
        (
            "resilience:\n  external_dependencies:\n    db: { type: database, max_concurrent: ~ }\n",
            "resilience.external_dependencies.db.max_concurrent",
            Some(3),
            "remove the key to use the default",
        ),
        (
            "resilience:\n  timeouts:\n    database_timeout:\n",
            "resilience.timeouts.database_timeout",
            Some(3),
            "`~` (or nothing)",
        ),
        (
            "resilience:\n  external_dependencies:\n    \"\": { type: database }\n",
            "resilience.external_dependencies",
            Some(2),
            "not usable",
        ),
        (
            "resilience:\n  external_dependencies:\n    \"a\\tb\": { type: database }\n",
            "resilience.external_dependencies",
            Some(2),
            "control characters",
        ),
        (
            "resilience: {}\n---\nresilience: {}\n",
            "",
            Some(2),
            "starts a second one",
        ),
    ];
    for (yaml, want_path, want_line, says) in cases {
        let (path, line, text) = invalid(yaml);
        assert_eq!(
            (path.as_str(), line),
            (want_path, want_line),
            "{yaml}: {text}"
        );
        assert!(text.contains(says), "{yaml}: {text}");
    }
}

#[test]
fn keys_that_cannot_apply_are_errors_that_say_why() {
    let d = "resilience:\n  external_dependencies:\n    db: { type: database, ";
    let cases = [
        ("max_workers: 4", "max_workers", "thread pool"),
        ("queue_capacity: 4", "queue_capacity", "thread pool"),
        (
            "bulkhead_type: thread_pool, max_wait_seconds: 1",
            "max_wait_seconds",
            "semaphore",
        ),
        (
            "bulkhead_type: thread_pool, reject_on_full: true",
            "reject_on_full",
            "semaphore",
        ),
        (
            "circuit_breaker_window_size: 50",
            "circuit_breaker_window_size",
            "a rate trigger",
        ),
        (
            "circuit_breaker_minimum_calls: 5",
            "circuit_breaker_minimum_calls",
            "a rate trigger",
        ),
        (
            "enable_circuit_breaker: false, circuit_breaker_failure_threshold: 3",
            "circuit_breaker_failure_threshold",
            "breaker is disabled",
        ),
    ];
    for (keys, key, says) in cases {
        let (path, line, text) = invalid(&format!("{d}{keys} }}\n"));
        assert_eq!(
            path,
            format!("resilience.external_dependencies.db.{key}"),
            "{text}"
        );
        assert_eq!(line, Some(3), "{text}");
        assert!(text.contains(says), "{text}");
        // Cross-key errors now carry the key's column too.
        assert!(text.contains(", column "), "{text}");
    }
}

#[test]
fn a_hostile_key_makes_a_short_message_and_bad_bytes_are_located() {
    // An explicit key (`? key`) may be any length.
    let key = "k".repeat(1_000_000);
    let (_, line, text) = invalid(&format!("resilience:\n  ? {key}\n  : 1\n"));
    assert_eq!(line, Some(2));
    assert!(text.len() < 2000, "{} bytes", text.len());
    assert!(text.contains("characters in all"), "{text}");

    let dir = std::env::temp_dir().join(format!("resilience-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("latin1.yaml");
    std::fs::write(&file, b"resilience:\n  timeout_enabled: tru\xe9\n").unwrap();
    let text = Config::from_file(&file).unwrap_err().to_string();
    assert!(text.contains("line 2, column 23"), "{text}");
    assert!(text.contains("not UTF-8"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn layered(layers: &[&str]) -> Result<Config, ConfigError> {
    Config::from_layers(layers.iter().map(|t| Layer::text(t)).collect())
}

#[test]
fn later_layers_merge_mappings_and_replace_everything_else() {
    let c = layered(&[
        "resilience:\n  retry_on: [error, timeout]\n  external_dependencies:\n    db: { type: database, max_concurrent: 3, timeout_seconds: 9 }\n",
        "",
        "resilience:\n  retry_on: [rejected]\n  external_dependencies:\n    db: { timeout_seconds: 2 }\n",
    ])
    .unwrap();
    let db = dep(&c, "db");
    assert_eq!(db.call_timeout, Some(secs(2.0)), "overridden");
    assert!(
        matches!(
            db.bulkhead,
            BulkheadConfig::Semaphore {
                max_concurrent: 3,
                ..
            }
        ),
        "kept: {:?}",
        db.bulkhead
    );
    let retry_on = c.section.retry_on.as_ref().unwrap();
    assert_eq!(retry_on.len(), 1, "a list is replaced, not appended to");
    assert_eq!(
        c.line_of("resilience.external_dependencies.db.timeout_seconds"),
        Some(4)
    );
}

#[test]
fn an_error_is_placed_in_the_layer_that_wrote_it() {
    let base =
        "resilience:\n  external_dependencies:\n    db: { type: database, max_concurrent: 0 }\n";
    let e = layered(&[base, "resilience:\n  timeout_enabled: true\n"]).unwrap_err();
    let ConfigError::Invalid { layer, line, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((*layer, *line), (Some(1), Some(3)), "{e}");
    // The overlay fixes it: the merged value is the one that counts.
    layered(&[
        base,
        "resilience:\n  external_dependencies:\n    db: { max_concurrent: 4 }\n",
    ])
    .unwrap();
    // A mistake the overlay alone makes (a `~`) is its own.
    let e = layered(&[base, "resilience:\n  timeout_enabled: ~\n"]).unwrap_err();
    assert!(
        e.to_string().starts_with("<config> (layer 2), line 2"),
        "{e}"
    );
    // One layer: no layer number, as before.
    let e = layered(&[base]).unwrap_err();
    assert!(e.to_string().starts_with("<config>, line 3"), "{e}");
}

#[test]
fn layers_are_bounded() {
    let many = vec![""; layers::MAX_LAYERS + 1];
    let e = layered(&many).unwrap_err();
    assert!(e.to_string().contains("17 layers is more than 16"), "{e}");
    assert!(layered(&vec![""; layers::MAX_LAYERS]).is_ok());
}

#[test]
fn interpolation_reads_variables_and_defaults_and_never_echoes_a_value() {
    use super::values::interpolate;
    let env = |name: &str| (name == "PASS").then(|| "s3cret".to_owned());
    assert_eq!(
        interpolate("redis://:${PASS}@h:${PORT:-6379}/0", env).unwrap(),
        "redis://:s3cret@h:6379/0"
    );
    assert_eq!(interpolate("no variables", env).unwrap(), "no variables");
    let unset = interpolate("${MISSING}", env).unwrap_err();
    assert!(unset.contains("MISSING is not set"), "{unset}");
    for bad in ["${}", "${1X}", "${A-B}", "${OPEN"] {
        let e = interpolate(bad, env).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
    // 4096 characters, before and after reading the environment.
    assert!(interpolate(&"x".repeat(4096), env).is_ok());
    assert!(interpolate(&"x".repeat(4097), env).is_err(), "bounded");
    let long_env = |name: &str| (name == "LONG").then(|| "y".repeat(100));
    let grows = format!("{}${{LONG}}", "x".repeat(3996));
    assert_eq!(interpolate(&grows, long_env).unwrap().len(), 4096);
    let too_long = format!("{}${{LONG}}", "x".repeat(3997));
    assert!(
        interpolate(&too_long, long_env).is_err(),
        "bounded once read"
    );
    let shown = format!("{:?}", super::values::Interpolated("s3cret".into()));
    assert!(
        !shown.contains("s3cret") && shown.contains("not shown"),
        "{shown}"
    );
}

/// Without the feature a cluster limit would silently be one per instance:
/// it is refused instead.
#[cfg(not(feature = "cluster"))]
#[test]
fn a_cluster_scope_needs_the_cluster_feature() {
    let (path, line, text) = invalid(
        "resilience:\n  cluster: { redis_url: \"redis://127.0.0.1\" }\n  external_dependencies:\n    p: { type: external_api, rate_limit_per_second: 5,\n         rate_limit_scope: cluster }\n",
    );
    assert_eq!(path, "resilience.external_dependencies.p.rate_limit_scope");
    assert_eq!(line, Some(5));
    assert!(text.contains("enable the `cluster` feature"), "{text}");
}

#[test]
fn open_time_backoff_keys_resolve_and_are_checked() {
    let c = Config::from_yaml_str(
        "resilience:
  bulkheads:
    database: { circuit_breaker_timeout_multiplier: 2 }
  external_dependencies:
    a: { type: database, circuit_breaker_timeout: 10, circuit_breaker_max_timeout: 300 }
    b: { type: external_api }
",
    )
    .unwrap();
    let a = dep(&c, "a").circuit_breaker.unwrap();
    assert_eq!(
        (a.timeout_multiplier, a.max_timeout),
        (2.0, Some(secs(300.0)))
    );
    let b = dep(&c, "b").circuit_breaker.unwrap();
    assert_eq!((b.timeout_multiplier, b.max_timeout), (1.0, None));

    let (path, line, text) = invalid(
        "resilience:
  external_dependencies:
    db:
      type: database
      circuit_breaker_timeout: 60
      circuit_breaker_max_timeout: 30
",
    );
    assert_eq!(
        path,
        "resilience.external_dependencies.db.circuit_breaker_max_timeout"
    );
    assert_eq!(line, Some(6));
    assert!(
        text.contains("below circuit_breaker_timeout (60 s)"),
        "{text}"
    );

    for (yaml, at) in [
        (
            "external_dependencies:\n    db: { type: database, circuit_breaker_timeout_multiplier: 0.5 }",
            "resilience.external_dependencies.db.circuit_breaker_timeout_multiplier",
        ),
        (
            "external_dependencies:\n    db: { type: database, circuit_breaker_max_timeout: 86401 }",
            "resilience.external_dependencies.db.circuit_breaker_max_timeout",
        ),
        (
            "external_dependencies:\n    db: { type: database, enable_circuit_breaker: false, circuit_breaker_timeout_multiplier: 2 }",
            "resilience.external_dependencies.db.circuit_breaker_timeout_multiplier",
        ),
    ] {
        let (path, _, text) = invalid(&format!("resilience:\n  {yaml}\n"));
        assert_eq!(path, at, "{text}");
    }
}

#[test]
fn time_window_keys_resolve_and_are_checked() {
    let c = Config::from_yaml_str(
        "resilience:
  external_dependencies:
    a: { type: database, circuit_breaker_failure_rate_threshold: 0.5,
         circuit_breaker_window_type: time, circuit_breaker_window_seconds: 30,
         circuit_breaker_minimum_calls: 20 }
    b: { type: database, circuit_breaker_slow_call_rate_threshold: 0.5,
         circuit_breaker_slow_call_seconds: 2, circuit_breaker_window_type: time }
    c: { type: database, circuit_breaker_failure_rate_threshold: 0.5 }
",
    )
    .unwrap();
    let a = dep(&c, "a").circuit_breaker.unwrap();
    assert_eq!(a.time_window, Some(secs(30.0)));
    assert_eq!(a.failure_rate.unwrap().minimum_calls, 20);
    assert_eq!(
        dep(&c, "b").circuit_breaker.unwrap().time_window,
        Some(secs(60.0))
    );
    assert_eq!(dep(&c, "c").circuit_breaker.unwrap().time_window, None);

    for (entry, key, says) in [
        (
            "circuit_breaker_failure_rate_threshold: 0.5, circuit_breaker_window_type: time, circuit_breaker_window_size: 10",
            "circuit_breaker_window_size",
            "circuit_breaker_window_seconds instead",
        ),
        (
            "circuit_breaker_failure_rate_threshold: 0.5, circuit_breaker_window_seconds: 10",
            "circuit_breaker_window_seconds",
            "window_type: time",
        ),
        (
            "circuit_breaker_window_type: time",
            "circuit_breaker_window_type",
            "a rate trigger",
        ),
        (
            "circuit_breaker_failure_rate_threshold: 0.5, circuit_breaker_window_type: time, circuit_breaker_window_seconds: 3601",
            "circuit_breaker_window_seconds",
            "1 to 3600",
        ),
    ] {
        let (path, _, text) = invalid(&format!(
            "resilience:\n  external_dependencies:\n    db: {{ type: database, {entry} }}\n"
        ));
        assert_eq!(path, format!("resilience.external_dependencies.db.{key}"), "{text}");
        assert!(text.contains(says), "{text}");
    }
}
