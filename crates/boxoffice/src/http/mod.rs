//! The HTTP edge: routing, extractors, problem+json errors, OpenAPI, request metrics.

pub mod extract;
pub mod openapi;
pub mod problem;
mod request_metrics;
pub mod routes;
pub mod serve;
pub mod web;

use crate::app::App;
use crate::domain::error::Code;
use crate::domain::Error;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use problem::ApiError;
use routes::{admin, booking, catalog, ops, points, queue};
use std::sync::Arc;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Bodies larger than this are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach. axum clones the state for the middleware, each extractor and
/// the handler of every request, so it is one `Arc`: one reference count to bump, not four
/// (profiling the status endpoint found ~6% of its CPU in cloning and dropping the wider struct).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub app: Arc<App>,
    pub metrics: PrometheusHandle,
    pub openapi: Bytes,
    /// Serve the pages from this directory instead of the copies compiled in.
    pub web_dir: Option<std::path::PathBuf>,
    /// The operator's secret for /api/v1/admin/.
    pub admin_secret: Vec<u8>,
    requests: request_metrics::RequestMetrics,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub fn router(
    app: Arc<App>,
    metrics: PrometheusHandle,
    web_dir: Option<std::path::PathBuf>,
    request_timeout: std::time::Duration,
    admin_secret: Vec<u8>,
) -> Router {
    let openapi = openapi::document(app.max_seats_per_order());
    let state =
        AppState(Arc::new(Shared { app, metrics, openapi, web_dir, admin_secret, requests: Default::default() }));
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/api/v1/queue/tokens", post(queue::join))
        .route("/api/v1/queue/status", get(queue::status))
        .route("/api/v1/queue/events", get(queue::events))
        .route("/api/v1/queue/leave", post(queue::leave))
        .route("/api/v1/concerts", get(catalog::concerts))
        .route("/api/v1/concerts/{concert_id}/schedules", get(catalog::schedules))
        .route("/api/v1/concerts/{concert_id}/draw", get(catalog::draw))
        .route("/api/v1/schedules/{schedule_id}/seats", get(catalog::seats))
        .route("/api/v1/reservations", post(booking::hold))
        .route("/api/v1/reservations/{reservation_id}", get(booking::get_reservation))
        .route("/api/v1/reservations/{reservation_id}/release", post(booking::release))
        .route("/api/v1/me/reservations", get(booking::my_reservations))
        .route("/api/v1/payments", post(booking::pay))
        .route("/api/v1/users/{user_id}/points", get(points::balance))
        .route("/api/v1/users/{user_id}/points/charge", post(points::charge))
        .route("/api/v1/users/{user_id}/points/use", post(points::use_points))
        .route("/api/v1/users/{user_id}/points/history", get(points::history))
        .route("/api/v1/admin/concerts/{concert_id}/line", get(admin::line).patch(admin::change_line))
        .route("/api/v1/admin/audit", get(admin::audit))
        .route("/api/v1/admin/concerts", post(admin::create_concert))
        .route("/health/live", get(ops::live))
        .route("/health/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/", get(web::index))
        .route("/admin", get(web::admin))
        .route("/assets/{name}", get(web::asset))
        .route_layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        // Inside routing, so spans are named by the matched route template, never the raw path.
        .route_layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str());
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), route, request_id = id)
        }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_large_bodies))
        .layer(middleware::from_fn_with_state(request_timeout, time_limit))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, request_metrics::FastRequestId))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError(Error::internal("handler panicked")).into_response()
        }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError(Error::new(Code::RouteNotFound, "no such endpoint"))
}

async fn method_not_allowed() -> ApiError {
    ApiError(Error::new(Code::MethodNotAllowed, "this endpoint does not take that method"))
}

/// Refuses a declared oversized body before reading any of it (and before `100 Continue`), so a
/// client never streams megabytes only to be cut off. Bodies without a length are capped by
/// `DefaultBodyLimit` as they are read.
async fn refuse_large_bodies(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return ApiError(Error::new(
            Code::PayloadTooLarge,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        ))
        .into_response();
    }
    next.run(req).await
}

/// Bounds reading the request body and producing the answer (a stream's body, once started,
/// is not bounded here): a client that trickles its body in is cut off with 408.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            metrics::counter!("boxoffice_http_request_timeouts_total").increment(1);
            ApiError(Error::new(
                Code::RequestTimeout,
                format!("the request was not received and answered within {limit:?}"),
            ))
            .into_response()
        }
    }
}

/// The endpoints an admitted person uses: their health decides adaptive admission.
const BOOKING_ROUTES: &[&str] = &[
    "/api/v1/concerts/{concert_id}/schedules",
    "/api/v1/schedules/{schedule_id}/seats",
    "/api/v1/reservations",
    "/api/v1/reservations/{reservation_id}",
    "/api/v1/reservations/{reservation_id}/release",
    "/api/v1/payments",
];

/// Request count and latency by route template, never by raw path.
async fn track_metrics(axum::extract::State(s): axum::extract::State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", |m| m.as_str());
    let method = req.method().clone();
    let res = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    s.requests.record(route, &method, res.status().as_u16(), elapsed);
    if let Some(code) = res.extensions().get::<Code>() {
        request_metrics::problem(route, &method, res.status().as_u16(), *code);
    }
    if BOOKING_ROUTES.contains(&route) {
        s.app.admission.observe(elapsed, res.status().is_server_error());
    }
    res
}
