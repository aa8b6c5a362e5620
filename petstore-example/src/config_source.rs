//! Where `serve` reads its resilience configuration, kept so that a reload
//! (`POST /admin/reload`, `serve --watch-config`) reads it exactly as start-up
//! did: the file (or the embedded config), then the same overlays.

use resilience_runtime::{ConfigError, ReloadReport, Runtime};
use std::path::{Path, PathBuf};

/// The base configuration and the layers `serve` put over it.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    /// `None`: the embedded config, which never changes.
    file: Option<PathBuf>,
    /// Layers over the base, in order (the cluster overlay, the chaos profile).
    overlays: Vec<String>,
}

impl ConfigSource {
    /// The embedded configuration, [`EMBEDDED_CONFIG`](crate::EMBEDDED_CONFIG).
    pub fn embedded() -> Self {
        ConfigSource::default()
    }

    /// The YAML file at `path`, read afresh at each reload.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        ConfigSource {
            file: Some(path.into()),
            overlays: Vec::new(),
        }
    }

    /// Adds a layer over everything so far.
    pub fn with_overlay(mut self, layer: impl Into<String>) -> Self {
        self.overlays.push(layer.into());
        self
    }

    /// The file, if the configuration comes from one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Installs the configuration as the global runtime.
    pub fn init(&self) -> Result<&'static Runtime, ConfigError> {
        match (&self.file, self.overlays.is_empty()) {
            // Alone, the file is read as a file, so errors name it.
            (Some(path), true) => resilience_runtime::init_from_file(path),
            _ => resilience_runtime::init_from_yaml_layers(&self.texts()?.each()),
        }
    }

    /// Puts the configuration, read afresh, in force in `runtime`. A bad
    /// file changes nothing: `runtime` goes on with what it had.
    pub fn reload(&self, runtime: &Runtime) -> Result<ReloadReport, ConfigError> {
        match (&self.file, self.overlays.is_empty()) {
            (Some(path), true) => runtime.reload_from_file(path),
            _ => runtime.reload_from_yaml_layers(&self.texts()?.each()),
        }
    }

    fn texts(&self) -> Result<Texts, ConfigError> {
        let base = match &self.file {
            Some(path) => std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
                file: path.clone(),
                error,
            })?,
            None => crate::EMBEDDED_CONFIG.to_owned(),
        };
        Ok(Texts(
            std::iter::once(base)
                .chain(self.overlays.iter().cloned())
                .collect(),
        ))
    }
}

struct Texts(Vec<String>);

impl Texts {
    fn each(&self) -> Vec<&str> {
        self.0.iter().map(String::as_str).collect()
    }
}
