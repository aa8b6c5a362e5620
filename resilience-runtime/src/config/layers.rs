//! Configurations made of layers: a production file, then overlays (a test's
//! extra dependency, a shorter timeout) that override it key by key. Each
//! layer is checked on its own first, so a mistake is reported in the layer
//! that made it; the merged document is then parsed as one, and an error
//! there is placed in the last layer that wrote the key.

use super::{line_of, shape, ConfigError};
use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// The most layers one configuration takes.
pub(super) const MAX_LAYERS: usize = 16;

/// One YAML text, and the file it came from.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(super) text: String,
    pub(super) file: Option<PathBuf>,
}

impl Layer {
    pub(crate) fn text(text: &str) -> Layer {
        Layer {
            text: text.to_owned(),
            file: None,
        }
    }

    pub(crate) fn read(path: &Path) -> Result<Layer, ConfigError> {
        let bytes = std::fs::read(path).map_err(|error| ConfigError::Io {
            file: path.to_owned(),
            error,
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| super::not_utf8(e.as_bytes(), e.utf8_error()).in_file(path))?;
        Ok(Layer {
            text,
            file: Some(path.to_owned()),
        })
    }
}

/// Marks `error` as coming from layer `index` (0-based) of `count`.
pub(super) fn in_layer(error: ConfigError, layers: &[Layer], index: usize) -> ConfigError {
    let layer = &layers[index];
    let error = match &layer.file {
        Some(file) => error.in_file(file),
        None => error,
    };
    if layers.len() > 1 {
        error.in_layer(index + 1)
    } else {
        error
    }
}

/// Checks each layer alone (syntax, repeated keys, `~` values, names) and
/// merges them: later mappings override earlier ones key by key; any other
/// value replaces what was there. `None` when every layer is empty.
pub(super) fn merge(layers: &[Layer]) -> Result<Option<String>, ConfigError> {
    if layers.len() > MAX_LAYERS {
        return Err(ConfigError::value(
            String::new(),
            format!(
                "{} layers is more than {MAX_LAYERS}, the most one configuration takes",
                layers.len()
            ),
        ));
    }
    let mut merged: Option<Value> = None;
    for (i, layer) in layers.iter().enumerate() {
        if layer.text.trim().is_empty() {
            continue;
        }
        shape::check(&layer.text).map_err(|e| in_layer(e, layers, i))?;
        let value: Value = serde_yaml::from_str(&layer.text)
            .map_err(|e| in_layer(ConfigError::from_yaml(e), layers, i))?;
        merged = Some(match merged {
            None => value,
            Some(base) => overlay(base, value),
        });
    }
    Ok(merged.map(|v| serde_yaml::to_string(&v).expect("a parsed document prints")))
}

fn overlay(base: Value, top: Value) -> Value {
    match (base, top) {
        (Value::Mapping(mut base), Value::Mapping(top)) => {
            for (key, value) in top {
                let merged = match base.remove(&key) {
                    Some(old) => overlay(old, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Mapping(base)
        }
        (_, top) => top,
    }
}

/// Places an error found in the merged document: in the last layer that
/// writes the key it names (for an unknown key, the key itself), with that
/// layer's line and column.
pub(super) fn locate(error: ConfigError, layers: &[Layer]) -> ConfigError {
    let Some(path) = error.path().map(str::to_owned) else {
        return error.without_position();
    };
    let mut candidates = Vec::new();
    if let ConfigError::Invalid { message, .. } = &error {
        if let Some(key) = message
            .strip_prefix("unknown key `")
            .and_then(|rest| rest.split('`').next())
        {
            candidates.push(format!("{path}.{key}"));
        }
    }
    candidates.push(path);
    for candidate in &candidates {
        if let Some(i) = (0..layers.len())
            .rev()
            .find(|&i| line_of(&layers[i].text, candidate).is_some())
        {
            let error = error
                .without_position()
                .located_at(&layers[i].text, candidate);
            return in_layer(error, layers, i);
        }
    }
    error.without_position()
}
