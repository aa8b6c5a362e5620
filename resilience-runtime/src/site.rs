//! Annotated call sites, registered at link time so the runtime knows every
//! one of them before the first call.

use crate::Kind;
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How the annotated function runs.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// An `async fn`, polled in the caller's task.
    Async,
    /// A plain `fn`, run on a worker thread.
    Blocking,
    /// An `async fn` marked `on_pool`: on a thread pool, driven on a worker.
    AsyncOnPool,
}

/// One annotated function. The macros emit one `static` per function.
#[doc(hidden)]
#[derive(Debug)]
pub struct CallSite {
    pub kind: Kind,
    pub dependency: &'static str,
    pub operation: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub flavor: Flavor,
    /// Marked `idempotent`: the only sites ever retried.
    pub idempotent: bool,
    /// Declares a `fallback`.
    pub fallback: bool,
    /// Position in [`sites`]; lets a runtime find the site's dependency by
    /// index instead of by name on every call.
    index: AtomicUsize,
    /// Whether a call of this site has ever waited (gone pending): from
    /// then on its calls are timed. See [`CallSite::timed`].
    waited: AtomicBool,
}

/// The registration record `inventory` collects.
#[doc(hidden)]
pub struct SiteRef(pub &'static CallSite);

inventory::collect!(SiteRef);

const UNINDEXED: usize = usize::MAX;

impl CallSite {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        kind: Kind,
        dependency: &'static str,
        operation: &'static str,
        file: &'static str,
        line: u32,
        flavor: Flavor,
        idempotent: bool,
        fallback: bool,
    ) -> CallSite {
        CallSite {
            kind,
            dependency,
            operation,
            file,
            line,
            flavor,
            idempotent,
            fallback,
            index: AtomicUsize::new(UNINDEXED),
            waited: AtomicBool::new(false),
        }
    }

    /// Whether this site's calls are timed: once one of them has waited.
    /// A clock read costs as much as a third of a call that completes at
    /// once, so a site whose calls never wait (an in-memory lookup) reads
    /// none; every site that does I/O waits on its first call.
    #[inline]
    pub(crate) fn timed(&self) -> bool {
        self.waited.load(Ordering::Relaxed)
    }

    /// A call of this site went pending: time its calls from now on.
    #[inline]
    pub(crate) fn waited(&self) {
        if !self.waited.load(Ordering::Relaxed) {
            self.waited.store(true, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn index(&'static self) -> usize {
        let i = self.index.load(Ordering::Relaxed);
        if i != UNINDEXED {
            return i;
        }
        Lazy::force(&SITES);
        let i = self.index.load(Ordering::Relaxed);
        assert!(
            i != UNINDEXED,
            "call site {}:{} was not registered; was it compiled into this binary by a build \
             whose linker dropped the registration?",
            self.file,
            self.line
        );
        i
    }

    /// `file:line` for error messages.
    pub(crate) fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

static SITES: Lazy<Vec<&'static CallSite>> = Lazy::new(|| {
    let mut sites: Vec<&'static CallSite> = inventory::iter::<SiteRef>
        .into_iter()
        .map(|s| s.0)
        .collect();
    sites.sort_by_key(|s| (s.file, s.line, s.operation));
    sites.dedup_by_key(|s| *s as *const CallSite);
    for (i, site) in sites.iter().enumerate() {
        site.index.store(i, Ordering::Relaxed);
    }
    sites
});

/// Every registered site, in a stable order (file, line).
pub(crate) fn sites() -> &'static [&'static CallSite] {
    &SITES
}
