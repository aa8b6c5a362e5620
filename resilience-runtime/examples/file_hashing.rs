//! A blocking file-hashing function on a thread-pool dependency.
//!
//! ```sh
//! cargo run -p resilience-runtime --example file_hashing
//! ```
//!
//! `hash_file` is a plain `fn`: the attribute runs it on the `hasher`
//! dependency's own two worker threads, with two more jobs allowed to
//! queue, so a burst of files can neither starve tokio's threads nor pile up
//! without bound. A call beyond that is `Rejected` at once.

use resilience_runtime::{file_system_call, ResilienceError};
use std::hash::Hasher;
use std::path::PathBuf;

const CONFIG: &str = "
resilience:
  external_dependencies:
    hasher:
      type: file_system
      bulkhead_type: thread_pool
      max_workers: 2
      queue_capacity: 2
      timeout_seconds: 10
";

#[derive(Debug)]
enum HashError {
    Io(String),
    Resilience(ResilienceError),
}

impl From<ResilienceError> for HashError {
    fn from(e: ResilienceError) -> Self {
        HashError::Resilience(e)
    }
}

/// Reads and hashes a whole file, blocking its worker thread while it does.
#[file_system_call(dependency = "hasher")]
fn hash_file(path: PathBuf) -> Result<u64, HashError> {
    let bytes =
        std::fs::read(&path).map_err(|e| HashError::Io(format!("{}: {e}", path.display())))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(&bytes);
    Ok(hasher.finish())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    resilience_runtime::init_from_yaml_str(CONFIG)?;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files.truncate(4);
    files.push(dir.join("no_such_file.rs"));
    // One at a time: each gets a worker.
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        match hash_file(file.clone()).await {
            Ok(hash) => println!("{name:>16}  {hash:016x}"),
            Err(HashError::Io(e)) => println!("{name:>16}  error: {e}"),
            Err(HashError::Resilience(e)) => println!("{name:>16}  not hashed: {e}"),
        }
    }
    // Ten at once: at most two run and two wait; a call that finds both full
    // is rejected at once (how many are depends on how fast the files hash).
    let burst: Vec<_> = (0..10)
        .map(|_| tokio::spawn(hash_file(files[0].clone())))
        .collect();
    let mut rejected = 0;
    for call in burst {
        if let Err(HashError::Resilience(e)) = call.await? {
            rejected += usize::from(e.is_rejected());
        }
    }
    println!(
        "a burst of 10: {rejected} rejected at once, {} hashed",
        10 - rejected
    );
    let hasher = &resilience_runtime::health_snapshot().dependencies["hasher"];
    println!(
        "hasher: {} calls, {} successful, {} failed, {} rejected",
        hasher.bulkhead.total_requests,
        hasher.bulkhead.successful_requests,
        hasher.bulkhead.failed_requests,
        hasher.bulkhead.rejected_requests
    );
    Ok(())
}
