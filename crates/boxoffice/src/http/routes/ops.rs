//! Liveness, readiness, metrics and the OpenAPI document.

use crate::http::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::time::Duration;

pub async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when every dependency answers within a second; 503 with each one's state otherwise.
pub async fn ready(State(s): State<AppState>) -> Response {
    let limit = Duration::from_secs(1);
    let describe = |r: Result<Result<(), crate::domain::Error>, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => ("up", String::new()),
        Ok(Err(e)) => ("down", e.detail),
        Err(_) => ("down", "timed out".to_owned()),
    };
    let db = describe(tokio::time::timeout(limit, s.app.store.ping()).await);
    let queue = describe(tokio::time::timeout(limit, async { s.app.queue.stats().await.map(|_| ()) }).await);
    let ok = db.0 == "up" && queue.0 == "up";
    let body = json!({
        "status": if ok { "ready" } else { "unavailable" },
        "dependencies": {
            "database": { "state": db.0, "detail": db.1 },
            "queue": { "state": queue.0, "detail": queue.1 },
        }
    });
    let mut res = (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body)).into_response();
    if !ok {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

pub async fn metrics(State(s): State<AppState>) -> Response {
    crate::telemetry::refresh_process_metrics();
    let pool = s.app.store.pool_stats();
    metrics::gauge!("boxoffice_db_pool_size").set(pool.size as f64);
    metrics::gauge!("boxoffice_db_pool_in_use").set(pool.in_use as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}

pub async fn openapi(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s.openapi.clone()).into_response()
}
