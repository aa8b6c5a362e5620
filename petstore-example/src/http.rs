//! The HTTP API (`serve`). Errors carry a status and a message a person can
//! act on: 503 with `Retry-After` when a bulkhead is full or a circuit open,
//! 429 with `Retry-After` when a rate limit allows no call now, 504 on a timeout, 400/422 for bad input, 404 for unknown ids.

use crate::error::ServiceError;
use crate::events::EventsStatus;
use crate::service::{PaymentRequest, Petstore};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use resilience_runtime::OverallStatus;
use serde::Deserialize;
use serde_json::json;

/// The service's routes, with the admin routes when `PETSTORE_ADMIN_TOKEN`
/// is set.
pub fn router(store: Petstore) -> Router {
    let admin = crate::admin::AdminToken::from_env().map(|token| {
        crate::admin::Admin::new(token, crate::config_source::ConfigSource::embedded())
    });
    router_with(store, admin)
}

/// The service's routes, with the admin routes (`admin.rs`) when `admin` is
/// given.
pub fn router_with(store: Petstore, admin: Option<crate::admin::Admin>) -> Router {
    let routes = Router::new();
    let routes = match admin {
        Some(admin) => routes.merge(crate::admin::routes(admin)),
        None => routes,
    };
    routes
        .route("/pets", get(list_pets))
        .route("/pets/{id}", get(get_pet))
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/events", get(events))
        .route("/health", get(health))
        .route("/health/resilience", get(health_resilience))
        .route("/metrics", get(metrics))
        .route("/dashboard", get(dashboard))
        .fallback(|| async {
            ApiError(
                StatusCode::NOT_FOUND,
                "no such route; see the README for the API".into(),
                None,
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method: /orders and /admin/* take POST, the others GET"
                    .into(),
                None,
            )
        })
        .with_state(store)
}

/// [`router`] with every request run in `runtime`'s scope, for tests and for
/// embedding beside other runtimes.
pub fn router_in(store: Petstore, runtime: resilience_runtime::Runtime) -> Router {
    in_scope(router(store), runtime)
}

/// `router` with every request run in `runtime`'s scope.
pub fn in_scope(router: Router, runtime: resilience_runtime::Runtime) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let runtime = runtime.clone();
            async move { runtime.scope(next.run(request)).await }
        },
    ))
}

/// The event relay: its backend, the outbox's backlog, what this process
/// delivered, and why delivery last stopped.
async fn events(State(store): State<Petstore>) -> Result<Json<EventsStatus>, ApiError> {
    let status = store.events.status(&store.db).await;
    Ok(Json(
        status.map_err(|e| ServiceError::at("read the outbox", e))?,
    ))
}

/// A status, a message, and maybe a `Retry-After` in seconds.
pub struct ApiError(StatusCode, String, Option<u64>);

impl ApiError {
    /// An error with `status` and a message a person can act on.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(status, message.into(), None)
    }

    /// 401, with the `WWW-Authenticate` challenge a client expects.
    pub fn unauthorized(message: &str) -> Self {
        ApiError(StatusCode::UNAUTHORIZED, message.into(), None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({"error": self.1}))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = self.2 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let mut inner = &e;
        while let ServiceError::Noted(e, _) = inner {
            inner = e;
        }
        let status = match inner {
            ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::OutOfStock(_) => StatusCode::CONFLICT,
            ServiceError::PaymentDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            ServiceError::Unavailable { error, .. } if error.is_rate_limited() => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ServiceError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ServiceError::DependencyFailed { .. } | ServiceError::Noted(..) => {
                StatusCode::BAD_GATEWAY
            }
        };
        let retry = e
            .retry_after()
            .map(|d| d.as_secs_f64().ceil().max(1.0) as u64);
        ApiError(status, e.to_string(), retry)
    }
}

fn bad_path(e: PathRejection, what: &str) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        format!("{what}: {}", e.body_text()),
        None,
    )
}

async fn list_pets(State(store): State<Petstore>) -> Result<Response, ApiError> {
    let catalogue = store.browse_pets().await?;
    Ok(Json(catalogue).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PetQuery {
    customer_id: Option<String>,
}

async fn get_pet(
    State(store): State<Petstore>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<PetQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) =
        id.map_err(|e| bad_path(e, "the pet id must be a whole number, as in /pets/1"))?;
    let Query(query) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text(), None))?;
    let view = store
        .get_pet_with_cache_and_recommendations(id, query.customer_id.as_deref())
        .await?;
    Ok(Json(view).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    customer_id: String,
    pet_id: i64,
    #[serde(default)]
    payment: PaymentRequest,
}

async fn create_order(
    State(store): State<Petstore>,
    body: Result<Json<NewOrder>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(order) = body.map_err(|e| {
        // axum's own status for the rest: 400 for bad JSON, 413 for a body
        // over its 2 MB limit, 415 for a missing content type.
        let status = match e {
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ref other => other.status(),
        };
        ApiError(
            status,
            format!(
                "{}; expected a JSON body such as {{\"customer_id\": \"alice\", \"pet_id\": 1, \"payment\": {{\"amount\": 299.99}}}}",
                e.body_text()
            ),
            None,
        )
    })?;
    let result = store
        .create_order_with_resilience(&order.customer_id, order.pet_id, order.payment)
        .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

async fn get_order(
    State(store): State<Petstore>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| bad_path(e, "bad order id"))?;
    Ok(Json(store.get_order(&id).await?).into_response())
}

async fn health() -> Response {
    let snapshot = resilience_runtime::health_snapshot();
    let status = if snapshot.status == OverallStatus::Fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({"status": snapshot.status, "timestamp": snapshot.timestamp})),
    )
        .into_response()
}

/// One self-contained page (no build step, no CDN) that refreshes every
/// second from `/health/resilience`.
async fn dashboard() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("dashboard.html"))
}

/// The Prometheus exposition of the runtime in force.
async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            resilience_runtime::PROMETHEUS_CONTENT_TYPE,
        )],
        resilience_runtime::render_prometheus(),
    )
}

async fn health_resilience() -> Response {
    Json(resilience_runtime::health_snapshot()).into_response()
}
