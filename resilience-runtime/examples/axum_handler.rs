//! An axum handler calling an annotated database function.
//!
//! ```sh
//! cargo run -p resilience-runtime --example axum_handler            # one request, then exits
//! cargo run -p resilience-runtime --example axum_handler -- --serve # keeps serving on :3000
//! ```
//!
//! The function `load_balance` is protected by the `accounts_db` dependency
//! (bulkhead, breaker, timeout, counters); the handler turns each
//! `ResilienceError` into the HTTP status a client can act on.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use resilience_runtime::{database_call, ResilienceError};
use serde_json::json;

const CONFIG: &str = "
resilience:
  external_dependencies:
    accounts_db:
      type: database
      max_concurrent: 20
      timeout_seconds: 2
      circuit_breaker_failure_threshold: 5
";

#[derive(Debug)]
enum AppError {
    NoSuchAccount(u64),
    Resilience(ResilienceError),
}

impl From<ResilienceError> for AppError {
    fn from(e: ResilienceError) -> Self {
        AppError::Resilience(e)
    }
}

/// The query: an in-memory table here, a real database in a service.
#[database_call(dependency = "accounts_db")]
async fn load_balance(account: u64) -> Result<u64, AppError> {
    tokio::task::yield_now().await; // a real query waits on its socket
    match account {
        1..=100 => Ok(account * 1_000),
        _ => Err(AppError::NoSuchAccount(account)),
    }
}

async fn balance(Path(account): Path<u64>) -> Response {
    match load_balance(account).await {
        Ok(cents) => Json(json!({"account": account, "balance_cents": cents})).into_response(),
        Err(AppError::NoSuchAccount(id)) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no account {id}")})),
        )
            .into_response(),
        Err(AppError::Resilience(e)) => {
            let status = if e.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let mut response = (status, Json(json!({"error": e.to_string()}))).into_response();
            if let Some(after) = e.retry_after() {
                let secs = after.as_secs_f64().ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, secs.into());
            }
            response
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    resilience_runtime::init_from_yaml_str(CONFIG)?;
    let app = Router::new()
        .route("/balance/{account}", get(balance))
        .route(
            "/health/resilience",
            get(|| async { Json(resilience_runtime::health_snapshot()) }),
        );
    let serve = std::env::args().any(|a| a == "--serve");
    let listener = tokio::net::TcpListener::bind(if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    })
    .await?;
    let addr = listener.local_addr()?;
    if serve {
        println!("listening on http://{addr}: try /balance/7 and /health/resilience");
        axum::serve(listener, app).await?;
        return Ok(());
    }
    tokio::spawn(async move { axum::serve(listener, app).await });
    for account in [7, 404] {
        let reply = get_text(addr, &format!("/balance/{account}")).await?;
        println!("GET /balance/{account} -> {reply}");
    }
    let db = &resilience_runtime::health_snapshot().dependencies["accounts_db"];
    println!(
        "accounts_db: {} calls, {} successful, {} failed, status {:?}",
        db.bulkhead.total_requests,
        db.bulkhead.successful_requests,
        db.bulkhead.failed_requests,
        db.status
    );
    Ok(())
}

/// A bare HTTP/1.1 GET, so the example needs no HTTP client.
async fn get_text(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let status = raw.lines().next().unwrap_or_default().to_owned();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Ok(format!("{status} {body}"))
}
