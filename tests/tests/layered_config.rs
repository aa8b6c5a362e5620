//! The production file plus a small test overlay: one extra dependency for
//! this file's own call site, one timeout shortened, and mistakes in the
//! overlay reported at the overlay's file, line and column.

use resilience_runtime::{database_call, ConfigError, Runtime};
use resilience_tests::{health, TestError};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[database_call(dependency = "petstore_database")]
async fn get_pet(id: u64) -> Result<u64, TestError> {
    Ok(id)
}

/// The call site production does not know about.
#[database_call(dependency = "test_fixtures")]
async fn load_fixture() -> Result<u64, TestError> {
    Ok(1)
}

fn production() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/enhanced_config.yaml")
}

/// Writes `text` to a file of this test's own.
fn overlay(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("resilience-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const OVERLAY: &str = "\
resilience:
  external_dependencies:
    petstore_database:
      timeout_seconds: 0.05
    test_fixtures: { type: database, max_concurrent: 2 }
";

#[tokio::test]
async fn an_overlay_adds_a_site_and_overrides_one_key() {
    let alone = Runtime::from_file(production()).expect_err("production lacks the test's site");
    assert!(matches!(alone, ConfigError::CallSites { .. }), "{alone}");

    let rt = Runtime::from_files(&[production(), overlay("ok.yaml", OVERLAY)]).unwrap();
    let db = rt.dependency_config("petstore_database").unwrap();
    assert_eq!(
        db.call_timeout,
        Some(Duration::from_millis(50)),
        "overridden"
    );
    let base =
        Runtime::from_yaml_layers(&[&std::fs::read_to_string(production()).unwrap(), OVERLAY])
            .unwrap();
    let from_base = base.dependency_config("petstore_database").unwrap();
    assert_eq!(from_base, db, "text layers and file layers agree");
    assert_eq!(
        health(&rt, "petstore_database").bulkhead.max_concurrent,
        Some(10),
        "every other key stays as production has it"
    );
    assert_eq!(rt.scope(load_fixture()).await, Ok(1));
    assert_eq!(rt.scope(get_pet(4)).await, Ok(4));
}

#[test]
fn a_mistake_in_the_overlay_names_the_overlay_file_line_and_column() {
    for (name, text, line, column, says) in [
        (
            "typo.yaml",
            "resilience:\n  external_dependencies:\n    petstore_database:\n      timeout_secs: 1\n    test_fixtures: { type: database }\n",
            4,
            7,
            "unknown key `timeout_secs`",
        ),
        (
            "negative.yaml",
            "resilience:\n  external_dependencies:\n    test_fixtures: { type: database }\n    petstore_database:\n      max_concurrent: -3\n",
            5,
            7,
            "max_concurrent",
        ),
        (
            "twice.yaml",
            "resilience:\n  timeout_enabled: true\n  timeout_enabled: false\n",
            2,
            3,
            "duplicate key",
        ),
    ] {
        let path = overlay(name, text);
        let err = Runtime::from_files(&[production(), path.clone()])
            .expect_err("must be refused");
        let ConfigError::Invalid { file, layer, line: l, column: c, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(file.as_deref(), Some(path.as_path()), "{err}");
        assert_eq!((*layer, *l, *c), (Some(2), Some(line), Some(column)), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{} (layer 2), line {line}, column {column}", path.display())),
            "{text}"
        );
        assert!(text.contains(says), "{text}");
    }
}
