//! Checks the typed parse cannot make: YAML lets a mapping repeat a key and
//! lets `~` stand for "nothing", and serde would silently keep the last entry
//! or the default. Both are refused here, before the typed parse, as are
//! dependency names no one could mean and a second YAML document.

use super::{line_of, ConfigError};
use serde_yaml::Value;

/// The longest dependency name, in characters.
const MAX_NAME: usize = 100;

/// Walks the untyped document; `text` locates what it finds.
pub(super) fn check(text: &str) -> Result<(), ConfigError> {
    let document: Value = serde_yaml::from_str(text).map_err(|e| {
        if e.to_string().contains("more than one document") {
            second_document(text)
        } else {
            ConfigError::from_yaml(e)
        }
    })?;
    let Some(section) = document.get("resilience") else {
        return Ok(());
    };
    no_nulls(section, "resilience", text)?;
    if let Some(Value::Mapping(dependencies)) = section.get("external_dependencies") {
        for name in dependencies.keys() {
            let name = name.as_str().unwrap_or_default();
            let bad = name.trim().is_empty()
                || name.chars().any(char::is_control)
                || name.chars().count() > MAX_NAME;
            if bad {
                return Err(ConfigError::value(
                    "resilience.external_dependencies".into(),
                    format!(
                        "dependency name {:?} is not usable: a name is 1 to {MAX_NAME} characters, \
                         not blank, without control characters",
                        cut(name, 40)
                    ),
                )
                .located(text));
            }
        }
    }
    Ok(())
}

/// A `~` (or empty) value inside `resilience:` would silently mean "the
/// default"; the fix is to remove the key.
fn no_nulls(value: &Value, path: &str, text: &str) -> Result<(), ConfigError> {
    match value {
        Value::Null => Err(ConfigError::value(
            path.to_owned(),
            "`~` (or nothing) is not a value here; remove the key to use the default".into(),
        )
        .located(text)),
        Value::Mapping(map) => {
            for (key, child) in map {
                let key = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_owned);
                no_nulls(child, &format!("{path}.{key}"), text)?;
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                no_nulls(item, &format!("{path}[{i}]"), text).map_err(|e| {
                    // A list item has no key of its own: locate its list.
                    if e.line().is_none() {
                        e.at_line(line_of(text, path))
                    } else {
                        e
                    }
                })?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The error for a file holding more than one YAML document, at the `---`
/// that starts the second.
fn second_document(text: &str) -> ConfigError {
    let mut seen_content = false;
    let mut line = None;
    for (i, l) in text.lines().enumerate() {
        if l.starts_with("---") {
            if seen_content {
                line = Some(i + 1);
                break;
            }
            seen_content = true;
        } else if !l.trim().is_empty() && !l.trim_start().starts_with('#') {
            seen_content = true;
        }
    }
    ConfigError::Invalid {
        file: None,
        layer: None,
        path: String::new(),
        message: "a config holds one YAML document; this `---` starts a second one. Remove it, \
                  or move that document to a file of its own"
            .into(),
        line,
        column: line.map(|_| 1),
    }
}

/// At most `max` characters of `text`, marked when cut.
pub(super) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!(
            "{}… ({} characters in all)",
            &text[..at],
            text.chars().count()
        ),
        None => text.to_owned(),
    }
}
