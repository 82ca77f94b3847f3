//! `application/problem+json` (RFC 9457) responses for every error, with a stable `code`.

use crate::domain::error::Code;
use crate::domain::error::ErrorKind;
use crate::domain::Error;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Always `about:blank`: `code` carries the machine-readable kind.
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable error code, e.g. `SEAT_UNAVAILABLE`, `TOKEN_EXPIRED`.
    pub code: Code,
    /// Set on `TOKEN_WAITING`: where the token stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// Set when a group hold is refused: the seats that were already taken.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seats: Vec<i32>,
}

/// The problem+json body of an error (internal details stay in the log).
pub fn body_of(e: &Error) -> Vec<u8> {
    let status = status_of(e.kind());
    let problem = Problem {
        type_: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail: if e.kind() == ErrorKind::Internal { "internal error".into() } else { e.detail.clone() },
        code: e.code,
        position: e.waiting.map(|w| w.position),
        eta_seconds: e.waiting.map(|w| w.eta_seconds),
        seats: e.seats.clone(),
    };
    serde_json::to_vec(&problem).unwrap_or_default()
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Waiting => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(e.kind());
        match e.kind() {
            ErrorKind::Internal => {
                tracing::error!(code = e.code.as_str(), detail = %e.detail, "internal error")
            }
            ErrorKind::Unavailable => {
                tracing::warn!(code = e.code.as_str(), detail = %e.detail, "dependency unavailable")
            }
            _ => {}
        }
        let body = body_of(&e);
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = e.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        metrics::counter!("boxoffice_errors_total", "code" => e.code.as_str()).increment(1);
        // For the request metrics, which know the route: problems by route, status and code.
        res.extensions_mut().insert(e.code);
        res
    }
}
