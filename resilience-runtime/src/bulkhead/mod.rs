//! Bulkheads: how many calls of one dependency may be in flight at once.

mod semaphore;
mod thread_pool;

pub(crate) use semaphore::Semaphore;
pub(crate) use thread_pool::ThreadPool;

use std::time::Duration;

// The semaphore is large on purpose: its word sits on a cache line of its own.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Bulkhead {
    Semaphore(Semaphore),
    ThreadPool(ThreadPool),
}

impl Bulkhead {
    pub(crate) fn new(name: &str, config: BulkheadConfig) -> Self {
        match config {
            BulkheadConfig::Semaphore {
                max_concurrent,
                max_wait,
            } => Bulkhead::Semaphore(Semaphore::new(max_concurrent, max_wait)),
            BulkheadConfig::ThreadPool {
                max_workers,
                queue_capacity,
            } => Bulkhead::ThreadPool(ThreadPool::new(name, max_workers, queue_capacity)),
        }
    }

    /// A reload's new sizes, in place. The caller has refused a change of
    /// type, which would strand the calls in flight.
    pub(crate) fn resize(&self, config: BulkheadConfig) {
        match (self, config) {
            (
                Bulkhead::Semaphore(s),
                BulkheadConfig::Semaphore {
                    max_concurrent,
                    max_wait,
                },
            ) => s.resize(max_concurrent, max_wait),
            (
                Bulkhead::ThreadPool(p),
                BulkheadConfig::ThreadPool {
                    max_workers,
                    queue_capacity,
                },
            ) => p.resize(max_workers, queue_capacity),
            _ => unreachable!("a reload that changes a bulkhead's type is refused"),
        }
    }

    /// The figure a `Rejected` error reports.
    pub(crate) fn capacity(&self) -> u32 {
        match self {
            Bulkhead::Semaphore(s) => s.capacity(),
            Bulkhead::ThreadPool(p) => p.workers(),
        }
    }
}

/// A resolved bulkhead.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum BulkheadConfig {
    /// At most `max_concurrent` calls in flight; a call waits at most `max_wait`.
    Semaphore {
        /// Calls in flight at most.
        max_concurrent: u32,
        /// Longest wait for a slot (zero: reject at once).
        max_wait: Duration,
    },
    /// Dedicated worker threads with a bounded queue.
    ThreadPool {
        /// Worker threads.
        max_workers: u32,
        /// Jobs that may wait for a worker.
        queue_capacity: u32,
    },
}
