//! Operator routes, off unless `PETSTORE_ADMIN_TOKEN` is set, and then only
//! with `Authorization: Bearer <token>`.
//!
//! `POST /admin/reload` reads the configuration again, as `serve` read it at
//! start-up (`ConfigSource`), and puts it in force in the runtime without
//! losing its state: 200 with the report (`config_version`, the keys changed
//! per dependency, old and new), or 422 with the located error, and then
//! nothing changed.
//!
//! `POST /admin/breakers/{dependency}` with `{"state": "forced_open" |
//! "disabled" | "metrics_only" | "reset"}` overrides that dependency's circuit
//! breaker in the resilience runtime in force (see `BreakerControl`). Without
//! the variable the routes answer 404, as any unknown route; with a wrong or
//! missing token, 401, and nothing changes.

use crate::config_source::ConfigSource;
use crate::http::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The operator's token. Its `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// A token; `None` for an empty one, which would let anyone in.
    pub fn new(token: &str) -> Option<AdminToken> {
        let token = token.trim();
        (!token.is_empty()).then(|| AdminToken(token.into()))
    }

    /// `PETSTORE_ADMIN_TOKEN`, when set and not empty.
    pub fn from_env() -> Option<AdminToken> {
        let token = std::env::var("PETSTORE_ADMIN_TOKEN").ok()?;
        let parsed = AdminToken::new(&token);
        if parsed.is_none() {
            eprintln!("warning: PETSTORE_ADMIN_TOKEN is set but empty: the admin routes stay off");
        }
        parsed
    }

    /// Whether `headers` carry this token as a bearer token, compared in
    /// time that does not depend on where the two first differ.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        constant_time_eq(given.trim().as_bytes(), self.0.as_bytes())
    }
}

/// Equal bytes, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0
}

/// What the admin routes need: the token, and where a reload reads the
/// configuration.
#[derive(Clone, Debug)]
pub struct Admin {
    token: AdminToken,
    config: Arc<ConfigSource>,
}

impl Admin {
    /// Admin routes under `token`, reloading from `config`.
    pub fn new(token: AdminToken, config: ConfigSource) -> Admin {
        Admin {
            token,
            config: Arc::new(config),
        }
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.token.admits(headers) {
            Ok(())
        } else {
            Err(ApiError::unauthorized(
                "this route needs `Authorization: Bearer <PETSTORE_ADMIN_TOKEN>`",
            ))
        }
    }
}

/// The admin routes, to merge into the service's router.
pub fn routes<S: Clone + Send + Sync + 'static>(admin: Admin) -> Router<S> {
    Router::new()
        .route("/admin/reload", post(reload))
        .route("/admin/breakers/{dependency}", post(set_breaker))
        .with_state(admin)
}

async fn reload(State(admin): State<Admin>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    admin.check(&headers)?;
    let runtime = resilience_runtime::Runtime::current();
    match admin.config.reload(&runtime) {
        Ok(report) => {
            println!("resilience config reloaded: {report}");
            let mut body = serde_json::to_value(&report).expect("a report serialises");
            body["summary"] = report.to_string().into();
            Ok(Json(body))
        }
        Err(error) => {
            eprintln!("resilience config reload refused, nothing changed: {error}");
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the configuration was not reloaded, nothing changed (still config version {}): {error}",
                    runtime.health_snapshot().config_version
                ),
            ))
        }
    }
}

#[derive(Deserialize)]
struct BreakerRequest {
    state: String,
}

async fn set_breaker(
    State(admin): State<Admin>,
    headers: HeaderMap,
    dependency: Path<String>,
    body: Result<Json<BreakerRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    admin.check(&headers)?;
    let Json(request) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body must be JSON like {{\"state\": \"forced_open\"}}: {}",
                e.body_text()
            ),
        )
    })?;
    let runtime = resilience_runtime::Runtime::current();
    let Some(breaker) = runtime.circuit_breaker(&dependency) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no dependency `{}` with a circuit breaker", *dependency),
        ));
    };
    match request.state.as_str() {
        "forced_open" => breaker.force_open(),
        "disabled" => breaker.disable(),
        "metrics_only" => breaker.metrics_only(),
        "reset" => breaker.reset(),
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "unknown state `{other}`: use forced_open, disabled, metrics_only or reset"
                ),
            ))
        }
    }
    Ok(Json(
        json!({"dependency": *dependency, "state": breaker.state().as_str()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"s3cretx", b"s3cret"));
        assert!(!constant_time_eq(b"S3cret", b"s3cret"));
        assert!(!constant_time_eq(b"", b"s3cret"));
    }

    #[test]
    fn an_empty_token_is_no_token_and_debug_hides_it() {
        assert!(AdminToken::new("  ").is_none());
        let token = AdminToken::new("s3cret").unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
