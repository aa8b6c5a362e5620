//! Why an annotated call site cannot run under a configuration: structured,
//! so that tools can act on it, and displayed as a sentence a person can.

use std::fmt;

/// One annotated call site that the configuration cannot serve; see
/// [`ConfigError::CallSites`](crate::ConfigError::CallSites).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallSiteProblem {
    /// The source file of the annotated function.
    pub file: &'static str,
    /// Its line.
    pub line: u32,
    /// The dependency the attribute names.
    pub dependency: &'static str,
    /// The operation (the function's name unless renamed).
    pub operation: &'static str,
    /// What is wrong.
    pub reason: CallSiteReason,
}

/// What is wrong with a call site under a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallSiteReason {
    /// The configuration does not list the dependency.
    UnknownDependency {
        /// The dependencies it does list, sorted.
        listed: Vec<String>,
    },
    /// An `async fn` without `on_pool` names a `thread_pool` dependency.
    AsyncOnThreadPool {
        /// The config line of the dependency's `bulkhead_type`, when known.
        config_line: Option<usize>,
    },
}

impl fmt::Display for CallSiteProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, line, op, dep) = (self.file, self.line, self.operation, self.dependency);
        match &self.reason {
            CallSiteReason::UnknownDependency { listed } => {
                let listed = if listed.is_empty() {
                    "none".to_owned()
                } else {
                    listed.join(", ")
                };
                write!(
                    f,
                    "{file}:{line}: `{op}` names dependency `{dep}`, which \
                     resilience.external_dependencies does not list (it lists: {listed}); \
                     add an entry for it"
                )
            }
            CallSiteReason::AsyncOnThreadPool { config_line } => {
                let at = config_line.map_or(String::new(), |l| format!(" (config line {l})"));
                write!(
                    f,
                    "{file}:{line}: async fn `{op}` cannot run on the thread pool of `{dep}`{at}: \
                     its future may borrow from the caller. Add `on_pool` to its attribute (its \
                     arguments must then be Send + 'static), make it a plain (blocking) fn, or set \
                     bulkhead_type: semaphore for `{dep}`"
                )
            }
        }
    }
}
