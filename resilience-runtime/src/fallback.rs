//! Fallbacks have no configuration: a site declares one with `fallback =
//! path`, and the call path runs it once the call has failed for good. This
//! module holds what a dependency counts of them.

use std::sync::atomic::AtomicU64;

/// Fallback runs of one dependency's sites. `invoked` minus the other two
/// is the number running now or dropped by their callers.
#[derive(Default)]
pub(crate) struct FallbackStats {
    pub invoked: AtomicU64,
    pub successful: AtomicU64,
    pub failed: AtomicU64,
}
