//! `serve --watch-config`: an edited file is put in force without a restart,
//! and a bad one is logged and leaves the service on the last good config.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Kills the service when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every line the service prints, from both streams.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    let err = BufReader::new(child.stderr.take().unwrap());
    for stream in [
        Box::new(out) as Box<dyn BufRead + Send>,
        Box::new(err) as Box<dyn BufRead + Send>,
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in stream.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    rx
}

/// Waits for a line containing `needle`, keeping what came before in `seen`.
fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no line with {needle:?} ({e}); saw {seen:#?}"),
        }
    }
}

async fn config_version(addr: SocketAddr) -> serde_json::Value {
    common::get(addr, "/health/resilience").await.body["config_version"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_config_is_reloaded_and_a_broken_one_is_logged_and_ignored() {
    let port = common::free_port();
    let config = common::fresh_path("yaml");
    std::fs::write(&config, petstore_example::EMBEDDED_CONFIG).unwrap();
    let mut app = Command::new(env!("CARGO_BIN_EXE_petstore-example"))
        .args(["serve", "--port", &port.to_string(), "--watch-config"])
        .arg("--config")
        .arg(&config)
        .env("DATABASE_URL", common::sqlite_url())
        .env_remove("PETSTORE_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut app);
    let _app = Running(app);
    let mut seen = Vec::new();
    wait_for_line(&lines, "petstore listening", &mut seen);
    wait_for_line(&lines, "watching", &mut seen);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(config_version(addr).await, 1);

    let text = petstore_example::EMBEDDED_CONFIG;
    let smaller = text.replacen(
        "petstore_database:\n      type: database\n      max_concurrent: 10",
        "petstore_database:\n      type: database\n      max_concurrent: 5",
        1,
    );
    assert_ne!(
        smaller, text,
        "the embedded config reads as this test expects"
    );
    std::fs::write(&config, &smaller).unwrap();
    let said = wait_for_line(&lines, "config reloaded", &mut seen);
    assert!(
        said.contains("petstore_database: max_concurrent 10 → 5"),
        "{said}"
    );
    assert_eq!(config_version(addr).await, 2);
    let snapshot = common::get(addr, "/health/resilience").await.body;
    assert_eq!(
        snapshot["dependencies"]["petstore_database"]["bulkhead"]["max_concurrent"],
        5
    );

    // A broken file: logged with where it is wrong; the service goes on.
    std::fs::write(
        &config,
        smaller.replace("max_concurrent: 5", "max_concurrent: -1"),
    )
    .unwrap();
    let said = wait_for_line(&lines, "refused", &mut seen);
    assert!(said.contains("config version 2"), "{said}");
    assert!(said.contains("max_concurrent"), "{said}");
    assert_eq!(config_version(addr).await, 2);
    assert_eq!(
        common::get(addr, "/pets/1").await.status,
        200,
        "still serving"
    );

    // Put right again, it is reloaded.
    std::fs::write(&config, text).unwrap();
    let said = wait_for_line(&lines, "config reloaded", &mut seen);
    assert!(said.contains("max_concurrent 5 → 10"), "{said}");
    assert_eq!(config_version(addr).await, 3);
}

#[test]
fn watching_needs_a_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_petstore-example"))
        .args(["serve", "--port", "0", "--watch-config"])
        .env_remove("RESILIENCE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--watch-config needs --config PATH"), "{err}");
}
