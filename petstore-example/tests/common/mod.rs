//! Shared by the petstore's integration tests: starting a store on a fresh
//! SQLite file, serving it, and a small HTTP client.

#![allow(dead_code)]

use petstore_example::admin::{Admin, AdminToken};
use petstore_example::config_source::ConfigSource;
use petstore_example::{config_with, http, App, Settings};
use resilience_runtime::Runtime;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Short timings so fault tests finish quickly.
pub const FAST: [(&str, &str, f64); 7] = [
    ("payment_lookup", "timeout_seconds", 0.3),
    ("petstore_database", "timeout_seconds", 0.5),
    ("petstore_database", "max_wait_seconds", 0.0),
    ("payment_gateway", "timeout_seconds", 0.5),
    ("payment_gateway", "circuit_breaker_timeout", 1.0),
    ("redis_cache", "timeout_seconds", 0.3),
    ("ml_pet_advisor", "timeout_seconds", 1.0),
];

/// A fresh SQLite URL for this test.
pub fn sqlite_url() -> String {
    format!("sqlite://{}?mode=rwc", fresh_path("db").display())
}

/// A path in the tests' temporary directory that no other test uses.
pub fn fresh_path(extension: &str) -> std::path::PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join("petstore-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}-{}.{extension}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// A running service: its address, its app and its runtime.
pub struct Served {
    pub addr: SocketAddr,
    pub app: App,
    pub rt: Runtime,
    /// The file its configuration was read from, which `POST /admin/reload`
    /// reads again.
    pub config_file: std::path::PathBuf,
}

/// Starts the app with `settings` (a fresh SQLite file unless given) and
/// serves it on a loopback port inside its own runtime.
pub async fn serve(settings: Settings) -> Served {
    serve_with(settings, &[]).await
}

/// Like [`serve`], with more `(dependency, key, value)` overrides.
pub async fn serve_with(settings: Settings, more: &[(&str, &str, f64)]) -> Served {
    serve_full(settings, more, None).await
}

/// Like [`serve`], with the admin routes on under `token`.
#[allow(dead_code)] // not every test binary uses it
pub async fn serve_admin(token: &str) -> Served {
    serve_full(Settings::default(), &[], AdminToken::new(token)).await
}

async fn serve_full(
    mut settings: Settings,
    more: &[(&str, &str, f64)],
    admin: Option<AdminToken>,
) -> Served {
    if settings.database_url.is_none() {
        settings.database_url = Some(sqlite_url());
    }
    let overrides: Vec<_> = FAST.iter().chain(more).copied().collect();
    let config_file = fresh_path("yaml");
    std::fs::write(&config_file, config_with(&overrides)).unwrap();
    let rt = Runtime::from_file(&config_file).unwrap();
    let admin = admin.map(|token| Admin::new(token, ConfigSource::file(&config_file)));
    // In the runtime's scope, so the app's workers count in it too.
    let app = rt.scope(App::start(settings)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = http::in_scope(http::router_with(app.store.clone(), admin), rt.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Served {
        addr,
        app,
        rt,
        config_file,
    }
}

/// A response: status, headers (lower-case names) and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The body as text, for a route that does not answer JSON.
    pub text: String,
}

impl Reply {
    /// The body's `error` message; "" when there is none.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request and reads the whole response.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Reply {
    request_with(addr, method, path, body, "").await
}

/// [`request`] with `extra` header lines, each ending in `\r\n`.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    extra: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server may answer (413, say) and close before the whole body is in.
    let _ = stream.write_all(body.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: serde_json::from_str(payload).unwrap_or(Value::Null),
        text: payload.to_owned(),
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, None).await
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    request(addr, "POST", path, Some(body)).await
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `done` every 20 ms until it holds or `within` has passed; returns
/// whether it held. Tests wait on a condition, never for a fixed time, so a
/// loaded machine makes them slower, not red.
pub async fn eventually<F, Fut>(within: std::time::Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if done().await {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
