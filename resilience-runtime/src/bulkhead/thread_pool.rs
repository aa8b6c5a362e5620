//! A dependency's own worker threads with a bounded queue. Blocking or
//! CPU-heavy work on one dependency then starves only that dependency, never
//! tokio's shared blocking pool.

use crate::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::sync::{spawn_thread, Arc, Condvar, Mutex};
use std::collections::VecDeque;

pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Starts a named thread; the OS may refuse.
type Spawn = fn(String, Box<dyn FnOnce() + Send>) -> std::io::Result<()>;

pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
    /// Whether the workers are running; `start` guards the starting.
    started: AtomicBool,
    start: Mutex<()>,
    spawn: Spawn,
    name: String,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    work: Condvar,
    /// Jobs admitted and not yet finished: running plus queued.
    occupied: AtomicU32,
    running: AtomicU32,
    /// Workers plus queue places: admitted jobs at most.
    limit: AtomicU32,
    shutdown: AtomicBool,
    /// The workers the pool should have; a reload may change it.
    target: AtomicU32,
    /// Worker threads running their loop; above `target`, one exits after
    /// its current job.
    alive: AtomicU32,
    /// Names the next worker thread.
    started_workers: AtomicU32,
}

impl ThreadPool {
    pub(crate) fn new(name: &str, max_workers: u32, queue_capacity: u32) -> Self {
        Self::with_spawn(name, max_workers, queue_capacity, spawn_thread)
    }

    fn with_spawn(name: &str, max_workers: u32, queue_capacity: u32, spawn: Spawn) -> Self {
        ThreadPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                work: Condvar::new(),
                occupied: AtomicU32::new(0),
                running: AtomicU32::new(0),
                // Bounded by the config (1024 + 1,000,000); saturating all the same.
                limit: AtomicU32::new(max_workers.saturating_add(queue_capacity)),
                shutdown: AtomicBool::new(false),
                target: AtomicU32::new(max_workers),
                alive: AtomicU32::new(0),
                started_workers: AtomicU32::new(0),
            }),
            started: AtomicBool::new(false),
            start: Mutex::new(()),
            spawn,
            name: name.to_owned(),
        }
    }

    /// Queues `job` unless every worker is busy and the queue is full, or no
    /// worker thread could be started (then the slot is freed again, and the
    /// next call tries to start them anew).
    pub(crate) fn try_submit(&self, job: Job) -> Result<(), Job> {
        let admitted = self
            .shared
            .occupied
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.shared.limit.load(Ordering::Relaxed)).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Err(job);
        }
        // Threads start on first use so that building a Runtime stays cheap.
        if !self.started.load(Ordering::Acquire) && !self.start_workers() {
            self.shared.occupied.fetch_sub(1, Ordering::AcqRel);
            return Err(job);
        }
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(job);
        self.shared.work.notify_one();
        Ok(())
    }

    pub(crate) fn workers(&self) -> u32 {
        self.shared.target.load(Ordering::Relaxed)
    }

    pub(crate) fn queue_capacity(&self) -> u32 {
        self.shared.limit.load(Ordering::Relaxed) - self.workers()
    }

    /// New sizes for jobs admitted from now on. The pool grows by starting
    /// workers (if it has started at all) and shrinks by letting surplus
    /// workers exit after their current job; no job is cut short, and jobs
    /// already queued beyond a smaller queue still run.
    pub(crate) fn resize(&self, max_workers: u32, queue_capacity: u32) {
        let _starting = self.start.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.target.store(max_workers, Ordering::Release);
        self.shared.limit.store(
            max_workers.saturating_add(queue_capacity),
            Ordering::Release,
        );
        if self.started.load(Ordering::Acquire) {
            let alive = self.shared.alive.load(Ordering::Acquire);
            for _ in alive..max_workers {
                if !self.start_worker() {
                    break;
                }
            }
        }
        // Idle workers wake to see whether they are surplus.
        let _queue = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.work.notify_all();
    }

    /// Starts one worker; false when the OS refused.
    fn start_worker(&self) -> bool {
        let shared = Arc::clone(&self.shared);
        let i = self.shared.started_workers.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{i}", self.name);
        self.shared.alive.fetch_add(1, Ordering::AcqRel);
        if (self.spawn)(name, Box::new(move || shared.work_loop())).is_err() {
            self.shared.alive.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Starts the workers; false when the OS refused even the first. When it
    /// refuses a later one, the pool runs with those it has: its queue drains
    /// all the same, and no caller's thread panics.
    #[cold]
    fn start_workers(&self) -> bool {
        let _starting = self.start.lock().unwrap_or_else(|p| p.into_inner());
        if self.started.load(Ordering::Acquire) {
            return true;
        }
        for i in 0..self.workers() {
            if !self.start_worker() {
                if i == 0 {
                    return false;
                }
                break;
            }
        }
        self.started.store(true, Ordering::Release);
        true
    }

    pub(crate) fn running(&self) -> u32 {
        self.shared.running.load(Ordering::Relaxed)
    }

    /// Acquire, so that a reader who sees a slot freed also sees its job
    /// no longer running (loom found the snapshot could show otherwise).
    pub(crate) fn occupied(&self) -> u32 {
        self.shared.occupied.load(Ordering::Acquire)
    }
}

impl Shared {
    /// True, and counted gone, when this worker is one too many.
    fn surplus_leaves(&self) -> bool {
        let target = self.target.load(Ordering::Acquire);
        self.alive
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |alive| {
                (alive > target).then(|| alive - 1)
            })
            .is_ok()
    }

    fn work_loop(&self) {
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if self.surplus_leaves() {
                        return;
                    }
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

// Its statics need const atomics, which loom's are not.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Submits jobs 0 to 3; the returned function waits for all four and
    /// gives their numbers, sorted.
    fn submit_four(pool: &ThreadPool) -> impl FnOnce() -> Vec<i32> {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..4 {
            let tx = tx.clone();
            assert!(pool
                .try_submit(Box::new(move || tx.send(i).unwrap()))
                .is_ok());
        }
        move || {
            let mut done: Vec<i32> = (0..4).map(|_| rx.recv().unwrap()).collect();
            done.sort();
            done
        }
    }

    fn refuse(_: String, _: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        Err(std::io::Error::other("no more threads"))
    }

    #[test]
    fn a_pool_whose_threads_cannot_start_refuses_cleanly_and_frees_its_slot() {
        let pool = ThreadPool::with_spawn("refused", 2, 0, refuse);
        for _ in 0..3 {
            assert!(pool.try_submit(Box::new(|| {})).is_err());
            assert_eq!(pool.occupied(), 0, "no slot leaks");
        }
    }

    #[test]
    fn dropping_the_pool_ends_its_threads_once_the_queue_is_drained() {
        static ENDED: AtomicU32 = AtomicU32::new(0);
        fn counted(name: String, body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
            spawn_thread(
                name,
                Box::new(move || {
                    body();
                    ENDED.fetch_add(1, Ordering::SeqCst);
                }),
            )
        }
        let pool = ThreadPool::with_spawn("dropped", 2, 4, counted);
        let done = submit_four(&pool);
        drop(pool);
        assert_eq!(done(), [0, 1, 2, 3], "queued jobs still run");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if ENDED.load(Ordering::SeqCst) == 2 {
                return;
            }
            std::thread::yield_now();
        }
        panic!("{} of 2 worker threads ended", ENDED.load(Ordering::SeqCst));
    }

    #[test]
    fn a_resized_pool_starts_workers_and_lets_surplus_ones_go_after_their_job() {
        let pool = ThreadPool::new("resized", 1, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        assert!(pool
            .try_submit(Box::new(move || tx.send(()).unwrap()))
            .is_ok());
        rx.recv().unwrap();
        let alive = |n: u32| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if pool.shared.alive.load(Ordering::SeqCst) == n {
                    return;
                }
                std::thread::yield_now();
            }
            panic!(
                "{} workers alive, not {n}",
                pool.shared.alive.load(Ordering::SeqCst)
            );
        };
        alive(1);
        pool.resize(3, 2);
        assert_eq!((pool.workers(), pool.queue_capacity()), (3, 2));
        alive(3);
        // Three jobs that wait for one another run only on three workers.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        for _ in 0..3 {
            let barrier = barrier.clone();
            assert!(pool
                .try_submit(Box::new(move || {
                    barrier.wait();
                }))
                .is_ok());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pool.running() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "three jobs never ran at once"
            );
            std::thread::yield_now();
        }
        pool.resize(1, 0);
        assert!(
            pool.try_submit(Box::new(|| {})).is_err(),
            "three jobs admitted, the new limit is one"
        );
        assert_eq!(
            pool.shared.alive.load(Ordering::SeqCst),
            3,
            "no running job is cut"
        );
        barrier.wait();
        alive(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut job = Some(Box::new(move || tx.send(()).unwrap()) as Job);
        while let Some(j) = job.take() {
            if let Err(j) = pool.try_submit(j) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the slots never freed"
                );
                job = Some(j);
                std::thread::yield_now();
            }
        }
        rx.recv().unwrap();
    }

    #[test]
    fn a_pool_that_gets_some_of_its_threads_runs_on_them() {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        fn one_only(name: String, body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
            if STARTED.fetch_add(1, Ordering::SeqCst) > 0 {
                return Err(std::io::Error::other("no more threads"));
            }
            spawn_thread(name, body)
        }
        let pool = ThreadPool::with_spawn("partial", 3, 5, one_only);
        let done = submit_four(&pool);
        assert_eq!(done(), [0, 1, 2, 3], "the one worker drained the queue");
        assert_eq!(
            STARTED.load(Ordering::SeqCst),
            2,
            "it stopped asking after a refusal"
        );
    }
}
