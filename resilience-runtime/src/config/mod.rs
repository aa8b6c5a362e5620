//! Loading and checking the YAML configuration.
//!
//! The README's configuration reference lists every key; `schema.rs` is the
//! layout, `values.rs` the checked numbers and `resolve.rs` the precedence.

mod layers;
mod resolve;
mod schema;
mod shape;
mod site_problem;
mod values;

pub(crate) use layers::Layer;
pub use resolve::DependencyConfig;
pub use site_problem::{CallSiteProblem, CallSiteReason};

use crate::Kind;
use schema::{FileSection, ResilienceSection};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The most entries `external_dependencies` may have.
const MAX_DEPENDENCIES: usize = 1000;

/// A parsed `resilience:` section.
#[derive(Debug, Default)]
pub(crate) struct Config {
    section: ResilienceSection,
    /// The texts it came from, in order; one unless layered.
    layers: Vec<Layer>,
    /// Every entry under `external_dependencies`, resolved once at load.
    dependencies: BTreeMap<String, DependencyConfig>,
}

impl Config {
    pub(crate) fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        Config::from_layers(vec![Layer::text(text)])
    }

    pub(crate) fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::from_layers(vec![Layer::read(path.as_ref())?])
    }

    /// Later layers override earlier ones key by key; an error names the
    /// layer (and its file) it comes from.
    pub(crate) fn from_layers(layers: Vec<Layer>) -> Result<Config, ConfigError> {
        let parsed = if let [layer] = layers.as_slice() {
            Config::parse(&layer.text).map_err(|e| layers::in_layer(e, &layers, 0))
        } else {
            let merged = layers::merge(&layers)?.unwrap_or_default();
            Config::parse(&merged).map_err(|e| layers::locate(e, &layers))
        };
        let (section, dependencies) = parsed?;
        Ok(Config {
            section,
            layers,
            dependencies,
        })
    }

    /// One YAML text, its errors located in it.
    #[allow(clippy::type_complexity)]
    fn parse(
        text: &str,
    ) -> Result<(ResilienceSection, BTreeMap<String, DependencyConfig>), ConfigError> {
        let file: FileSection = if text.trim().is_empty() {
            FileSection::default()
        } else {
            shape::check(text)?;
            serde_yaml::from_str(text).map_err(ConfigError::from_yaml)?
        };
        let section = file.resilience.unwrap_or_default();
        if section.external_dependencies.len() > MAX_DEPENDENCIES {
            return Err(ConfigError::value(
                "resilience.external_dependencies".into(),
                format!(
                    "{} dependencies is more than {MAX_DEPENDENCIES}, the most one runtime takes",
                    section.external_dependencies.len()
                ),
            )
            .located(text));
        }
        // Resolved now, so that cross-key mistakes surface at load.
        let dependencies = section
            .external_dependencies
            .iter()
            .map(|(name, entry)| {
                resolve::resolve(&section, name, entry.kind, Some(entry))
                    .map(|resolved| (name.clone(), resolved))
                    .map_err(|e| e.located(text))
            })
            .collect::<Result<_, _>>()?;
        // The kind and top levels alone, so a mistake there is found even
        // before a dependency inherits it.
        for kind in Kind::ALL {
            resolve::resolve(&section, kind.as_str(), kind, None).map_err(|e| e.located(text))?;
        }
        Ok((section, dependencies))
    }

    /// The entries under `external_dependencies`, resolved, by name.
    pub(crate) fn dependencies(&self) -> &BTreeMap<String, DependencyConfig> {
        &self.dependencies
    }

    /// The shared backend of cluster-scope rate limits, if configured.
    pub(crate) fn cluster(&self) -> Option<crate::rate_limiter::ClusterConfig> {
        let section = self.section.cluster.as_ref()?;
        Some(crate::rate_limiter::ClusterConfig {
            redis_url: section.redis_url.as_ref()?.0.clone(),
            key_prefix: section
                .key_prefix
                .as_ref()
                .map_or_else(|| "resilience".to_owned(), |p| p.0.clone()),
            timeout: section
                .timeout_seconds
                .map_or(std::time::Duration::from_millis(50), |s| s.0),
        })
    }

    /// Kind-level defaults for a dependency the file does not list.
    pub(crate) fn unlisted(&self, name: &str, kind: Kind) -> Result<DependencyConfig, ConfigError> {
        resolve::resolve(&self.section, name, kind, None)
    }

    /// Finds the line of a dotted key path (1-based) in the last layer that
    /// writes it.
    pub(crate) fn line_of(&self, path: &str) -> Option<usize> {
        self.layers
            .iter()
            .rev()
            .find_map(|l| line_of(&l.text, path))
    }
}

/// Where a file stops being UTF-8 text.
fn not_utf8(bytes: &[u8], error: std::str::Utf8Error) -> ConfigError {
    let valid = &bytes[..error.valid_up_to()];
    let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    ConfigError::Invalid {
        file: None,
        layer: None,
        path: String::new(),
        message: format!(
            "the file is not UTF-8 text (byte 0x{:02x}); save it as UTF-8",
            bytes[error.valid_up_to()]
        ),
        line: Some(line),
        column: Some(column),
    }
}

/// Walks `a.b.c` down the text: each segment must appear as a key after the
/// previous one, at a deeper indentation.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let mut lines = text.lines().enumerate();
    let mut indent = None::<usize>;
    let mut found = None;
    let all: Vec<&str> = text.lines().collect();
    for segment in path.split('.') {
        // A key inside a flow mapping (`db: { type: database, retry_on: [] }`)
        // sits on its parent's line.
        if let Some(parent) = found {
            if flow_key(all[parent - 1], segment) {
                return Some(parent);
            }
        }
        let (number, depth) = lines.by_ref().find_map(|(i, line)| {
            let trimmed = line.trim_start();
            let depth = line.len() - trimmed.len();
            let deeper = indent.is_none_or(|d| depth > d);
            let key = trimmed.strip_prefix(segment)?.trim_start();
            (deeper && key.starts_with(':')).then_some((i + 1, depth))
        })?;
        indent = Some(depth);
        found = Some(number);
    }
    found
}

/// Whether `line` holds `key:` inside a flow mapping.
fn flow_key(line: &str, key: &str) -> bool {
    let Some((_, flow)) = line.split_once('{') else {
        return false;
    };
    flow.split([',', '{']).any(|part| {
        part.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    })
}

/// What is wrong with a configuration, or with initialising the runtime.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file asked for.
        file: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// Malformed YAML, an unknown key or an invalid value.
    Invalid {
        /// The file, when loaded from one.
        file: Option<PathBuf>,
        /// Which layer (1-based) of a layered configuration, when there are
        /// several.
        layer: Option<usize>,
        /// The dotted key path, e.g. `resilience.bulkheads.database.max_concurrent`
        /// (empty for a syntax error).
        path: String,
        /// What is wrong and what is expected.
        message: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
    },
    /// Annotated call sites that the configuration cannot serve.
    CallSites {
        /// One per site: where it is, what it names and what is wrong.
        problems: Vec<CallSiteProblem>,
    },
    /// `init_from_*` was called when the global runtime already exists.
    AlreadyInitialised,
    /// `reload_from_*` was called before the global runtime was initialised.
    NotInitialised,
}

impl ConfigError {
    fn from_yaml(e: serde_yaml::Error) -> ConfigError {
        let location = e.location();
        let mut message = e.to_string();
        if let Some(l) = &location {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        // serde_yaml writes "path.to.key: message"; a bare message has a space first.
        let (path, message) = match message.split_once(": ") {
            Some((p, m)) if !p.is_empty() && !p.contains(' ') => (p.to_owned(), m.to_owned()),
            _ => (String::new(), message),
        };
        // A duplicate map entry (a dependency named twice) would keep the last one.
        let message = match message.strip_prefix("duplicate entry with key ") {
            Some(key) => format!(
                "duplicate key {key}: YAML would keep only the last entry of that name; keep one"
            ),
            None => message,
        };
        // A hostile key can be a megabyte long; the message stays readable.
        let (path, message) = (shape::cut(&path, 200), shape::cut(&message, 500));
        ConfigError::Invalid {
            file: None,
            layer: None,
            path,
            message: message
                .replace(
                    "duplicate field `max_wait_seconds`",
                    "duplicate key: `timeout_seconds` and `max_wait_seconds` are the same key here; keep one",
                )
                .replace("duplicate field", "duplicate key")
                .replace("unknown field", "unknown key"),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
        }
    }

    pub(crate) fn value(path: String, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: None,
            layer: None,
            path,
            message,
            line: None,
            column: None,
        }
    }

    fn located(self, text: &str) -> ConfigError {
        let path = self.path().unwrap_or_default().to_owned();
        self.located_at(text, &path)
    }

    /// Sets the line and column of `path` in `text`, unless the error has a
    /// line already.
    fn located_at(mut self, text: &str, path: &str) -> ConfigError {
        if let ConfigError::Invalid { line, column, .. } = &mut self {
            if line.is_none() {
                *line = line_of(text, path);
                // The column of the key the path ends in, on that line.
                let key = path.rsplit('.').next().unwrap_or_default();
                *column = line.and_then(|l| {
                    let at = text.lines().nth(l - 1)?.find(&format!("{key}:"))?;
                    Some(at + 1)
                });
            }
        }
        self
    }

    /// Forgets a position found in a merged document, which no one wrote.
    fn without_position(mut self) -> ConfigError {
        if let ConfigError::Invalid { line, column, .. } = &mut self {
            (*line, *column) = (None, None);
        }
        self
    }

    fn in_layer(mut self, index: usize) -> ConfigError {
        if let ConfigError::Invalid { layer, .. } = &mut self {
            *layer = Some(index);
        }
        self
    }

    /// Sets the line of an error that has none.
    fn at_line(mut self, at: Option<usize>) -> ConfigError {
        if let ConfigError::Invalid { line, .. } = &mut self {
            *line = at;
        }
        self
    }

    fn in_file(mut self, path: &Path) -> ConfigError {
        if let ConfigError::Invalid { file, .. } = &mut self {
            *file = Some(path.to_owned());
        }
        self
    }

    /// The dotted key path the error is about, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { path, .. } if !path.is_empty() => Some(path),
            _ => None,
        }
    }

    /// The 1-based line the error is about, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { file, error } => {
                write!(
                    f,
                    "cannot read resilience config {}: {error}",
                    file.display()
                )
            }
            ConfigError::Invalid {
                file,
                layer,
                path,
                message,
                line,
                column,
            } => {
                match file {
                    Some(file) => write!(f, "{}", file.display())?,
                    None => f.write_str("<config>")?,
                }
                if let Some(layer) = layer {
                    write!(f, " (layer {layer})")?;
                }
                if let Some(line) = line {
                    write!(f, ", line {line}")?;
                    if let Some(column) = column {
                        write!(f, ", column {column}")?;
                    }
                }
                if !path.is_empty() {
                    write!(f, ": {path}")?;
                }
                write!(f, ": {message}")
            }
            ConfigError::CallSites { problems } => {
                write!(
                    f,
                    "{} annotated call site(s) do not fit the configuration:",
                    problems.len()
                )?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
            ConfigError::AlreadyInitialised => f.write_str(
                "the global resilience runtime is already initialised; it is never replaced. \
                 Initialise once at start-up, or build a Runtime and use Runtime::scope",
            ),
            ConfigError::NotInitialised => f.write_str(
                "the global resilience runtime is not initialised, so there is nothing to \
                 reload: call init_from_file at start-up first",
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
