//! Dependency kinds and their built-in defaults.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// What sort of thing a dependency is. The kind picks the defaults that apply
/// when neither the dependency's entry nor `bulkheads.<kind>` sets a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// A SQL or document database (`#[database_call]`).
    Database,
    /// A remote HTTP/RPC service (`#[api_call]`).
    ExternalApi,
    /// A cache such as Redis (`#[cache_call]`).
    Cache,
    /// A broker or event stream (`#[message_queue_call]`).
    MessageQueue,
    /// Local or network file storage (`#[file_system_call]`).
    FileSystem,
    /// CPU-heavy work (`#[resilient(kind = "cpu_intensive")]`).
    CpuIntensive,
    /// Memory-heavy work (`#[resilient(kind = "memory_intensive")]`).
    MemoryIntensive,
}

/// Built-in defaults of one kind, used when no configuration says otherwise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KindDefaults {
    pub max_concurrent: u32,
    pub call_timeout: Duration,
}

impl Kind {
    /// Every kind, in the order the README documents them.
    pub const ALL: [Kind; 7] = [
        Kind::Database,
        Kind::ExternalApi,
        Kind::Cache,
        Kind::MessageQueue,
        Kind::FileSystem,
        Kind::CpuIntensive,
        Kind::MemoryIntensive,
    ];

    /// The name used in YAML and in the snapshot, e.g. `"external_api"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Database => "database",
            Kind::ExternalApi => "external_api",
            Kind::Cache => "cache",
            Kind::MessageQueue => "message_queue",
            Kind::FileSystem => "file_system",
            Kind::CpuIntensive => "cpu_intensive",
            Kind::MemoryIntensive => "memory_intensive",
        }
    }

    /// Parses a YAML / attribute name such as `"database"`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub(crate) const fn defaults(self) -> KindDefaults {
        let (max_concurrent, secs) = match self {
            Kind::Database => (10, 10.0),
            Kind::ExternalApi => (5, 15.0),
            Kind::Cache => (100, 2.0),
            Kind::MessageQueue => (20, 5.0),
            Kind::FileSystem => (5, 30.0),
            Kind::CpuIntensive => (4, 30.0),
            Kind::MemoryIntensive => (2, 30.0),
        };
        KindDefaults {
            max_concurrent,
            call_timeout: Duration::from_millis((secs * 1000.0) as u64),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
