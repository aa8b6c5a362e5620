//! Work that must not hold a request: relaying the outbox and finishing
//! recorded voids. A request only wakes the worker; the worker runs a pass,
//! again at once while a pass leaves work it could do now, then sleeps until
//! the next wake or its period. After a failed pass it backs off (doubling,
//! up to its period) and ignores wakes meanwhile, so a burst of orders
//! against a dead broker does not become a burst of connection attempts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How a pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Nothing left that can be done now.
    Idle,
    /// It stopped at its batch size; run another at once.
    More,
    /// The dependency failed; back off before the next pass.
    Failed,
}

/// Wakes a worker; cheap to clone. A wake while the worker is busy is kept
/// and runs one more pass, so none is lost.
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// A running worker; dropping it stops the worker.
pub struct Worker(tokio::task::AbortHandle);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The first wait after a failed pass.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Runs `pass` in the background, in the current resilience runtime (so the
/// worker's calls count where the caller's do), on `wake` and every `period`.
pub fn spawn<F, Fut>(wake: &Wake, period: Duration, mut pass: F) -> Worker
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Pass> + Send,
{
    let notify = Arc::clone(&wake.0);
    let task = resilience_runtime::spawn(async move {
        let mut backoff = FIRST_BACKOFF.min(period);
        loop {
            match pass().await {
                Pass::More => continue,
                Pass::Idle => {
                    backoff = FIRST_BACKOFF.min(period);
                    tokio::select! {
                        () = notify.notified() => {}
                        () = tokio::time::sleep(period) => {}
                    }
                }
                Pass::Failed => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(period);
                }
            }
        }
    });
    Worker(task.abort_handle())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// Runs a worker whose passes return `script` in turn (then Idle), and
    /// records the paused clock's time of each pass.
    fn scripted(
        wake: &Wake,
        script: Vec<Pass>,
    ) -> (Worker, Arc<Mutex<Vec<Duration>>>, Arc<AtomicU32>) {
        let start = tokio::time::Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let passes = Arc::new(AtomicU32::new(0));
        let (t, p) = (Arc::clone(&times), Arc::clone(&passes));
        let script = Arc::new(script);
        let worker = spawn(wake, Duration::from_secs(5), move || {
            let n = p.fetch_add(1, Ordering::SeqCst) as usize;
            t.lock().unwrap().push(start.elapsed());
            let outcome = script.get(n).copied().unwrap_or(Pass::Idle);
            async move { outcome }
        });
        (worker, times, passes)
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_runs_a_pass_and_the_period_runs_one_without_a_wake() {
        let wake = Wake::default();
        let (_worker, times, passes) = scripted(&wake, vec![]);
        settle().await;
        assert_eq!(passes.load(Ordering::SeqCst), 1, "one pass at start");
        wake.wake();
        settle().await;
        assert_eq!(passes.load(Ordering::SeqCst), 2, "a wake runs a pass now");
        tokio::time::sleep(Duration::from_millis(5001)).await;
        assert_eq!(passes.load(Ordering::SeqCst), 3, "the period runs one");
        let times = times.lock().unwrap().clone();
        assert_eq!(times[0], times[1]);
        assert_eq!(times[2] - times[1], Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn more_runs_again_at_once_and_failures_back_off_doubling_and_ignore_wakes() {
        let wake = Wake::default();
        let script = vec![Pass::More, Pass::Failed, Pass::Failed, Pass::Failed];
        let (_worker, times, passes) = scripted(&wake, script);
        settle().await;
        assert_eq!(passes.load(Ordering::SeqCst), 2, "More, then Failed");
        wake.wake();
        settle().await;
        assert_eq!(
            passes.load(Ordering::SeqCst),
            2,
            "a wake does not cut a backoff"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let times = times.lock().unwrap().clone();
        let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
        // Then Idle, and the wake kept during the backoff runs one more pass.
        let ms = Duration::from_millis;
        assert_eq!(gaps, [ms(0), ms(100), ms(200), ms(400), ms(0)]);
        assert_eq!(passes.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_worker_stops_it() {
        let wake = Wake::default();
        let (worker, _, passes) = scripted(&wake, vec![]);
        settle().await;
        drop(worker);
        settle().await;
        wake.wake();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(passes.load(Ordering::SeqCst), 1);
    }
}
