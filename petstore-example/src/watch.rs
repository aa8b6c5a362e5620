//! `serve --watch-config`: reload the resilience configuration whenever its
//! file changes, logging each reload's report, or its error and that the
//! service goes on with the last good configuration.

use crate::config_source::ConfigSource;
use notify::{RecursiveMode, Watcher};
use resilience_runtime::Runtime;
use std::path::PathBuf;
use std::time::Duration;

/// Editors write a file in several steps (truncate, write, rename): events
/// closer together than this are one change.
const SETTLE: Duration = Duration::from_millis(100);

/// Watches while it lives.
pub struct ConfigWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reloads `runtime` from `source` each time `source`'s file changes. The
/// directory is watched, not the file, so a file replaced by a rename (as
/// most editors save) is still seen.
pub fn watch(source: ConfigSource, runtime: Runtime) -> Result<ConfigWatch, String> {
    let path: PathBuf = source
        .path()
        .ok_or("--watch-config needs --config PATH: the embedded configuration never changes")?
        .to_owned();
    let name = path.file_name().map(|n| n.to_owned());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if event.paths.iter().any(|p| p.file_name() == name.as_deref()) {
                let _ = tx.send(());
            }
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", path.display()))?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    println!("watching {} for changes", path.display());
    let mut last = std::fs::read_to_string(&path).ok();
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let the writer finish, then take every event it caused as one.
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            let now = std::fs::read_to_string(&path).ok();
            if now.is_some() && now == last {
                continue;
            }
            match source.reload(&runtime) {
                Ok(report) => {
                    println!("config reloaded from {}: {report}", path.display());
                    last = now;
                }
                Err(error) => eprintln!(
                    "config reload from {} refused, the service goes on with config version {}: {error}",
                    path.display(),
                    runtime.health_snapshot().config_version
                ),
            }
        }
    });
    Ok(ConfigWatch {
        _watcher: watcher,
        task,
    })
}
