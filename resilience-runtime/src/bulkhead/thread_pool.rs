//! A dependency's own worker threads with a bounded queue. Blocking or
//! CPU-heavy work on one dependency then starves only that dependency, never
//! tokio's shared blocking pool.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
    started: OnceLock<()>,
    name: String,
    workers: u32,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    work: Condvar,
    /// Jobs admitted and not yet finished: running plus queued.
    occupied: AtomicU32,
    running: AtomicU32,
    limit: u32,
    shutdown: AtomicBool,
}

impl ThreadPool {
    pub(crate) fn new(name: &str, max_workers: u32, queue_capacity: u32) -> Self {
        ThreadPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                work: Condvar::new(),
                occupied: AtomicU32::new(0),
                running: AtomicU32::new(0),
                limit: max_workers + queue_capacity,
                shutdown: AtomicBool::new(false),
            }),
            started: OnceLock::new(),
            name: name.to_owned(),
            workers: max_workers,
        }
    }

    /// Queues `job` unless every worker is busy and the queue is full.
    pub(crate) fn try_submit(&self, job: Job) -> Result<(), Job> {
        let admitted = self
            .shared
            .occupied
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.shared.limit).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Err(job);
        }
        // Threads start on first use so that building a Runtime stays cheap.
        self.started.get_or_init(|| self.spawn_workers());
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(job);
        self.shared.work.notify_one();
        Ok(())
    }

    pub(crate) fn workers(&self) -> u32 {
        self.workers
    }

    pub(crate) fn queue_capacity(&self) -> u32 {
        self.shared.limit - self.workers
    }

    fn spawn_workers(&self) {
        for i in 0..self.workers {
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name(format!("{}-{i}", self.name))
                .spawn(move || shared.work_loop())
                .expect("the OS refused to start a bulkhead worker thread");
        }
    }

    pub(crate) fn running(&self) -> u32 {
        self.shared.running.load(Ordering::Relaxed)
    }

    pub(crate) fn occupied(&self) -> u32 {
        self.shared.occupied.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn work_loop(&self) {
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(job) = queue.pop_front() {
                        break job;
                    }
                    if self.shutdown.load(Ordering::Acquire) {
                        return;
                    }
                    queue = self.work.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
            };
            self.running.fetch_add(1, Ordering::Relaxed);
            // Jobs catch their own panics; the slot frees only when the job
            // really ends, even if its caller gave up long ago.
            job();
            self.running.fetch_sub(1, Ordering::Relaxed);
            self.occupied.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        let _queue = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.work.notify_all();
    }
}
