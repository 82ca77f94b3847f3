//! The one error type of the service. Each error has a kind (which decides the HTTP status in the
//! http layer) and a stable machine-readable `code` clients can switch on.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed body or header.
    BadRequest,
    /// Missing, forged, expired or misused queue token.
    Unauthorized,
    /// The token is valid but still waiting in line.
    Waiting,
    NotFound,
    /// The endpoint exists but not with this method.
    MethodNotAllowed,
    Conflict,
    /// The hold ran out.
    Gone,
    PayloadTooLarge,
    /// The client did not send the request (e.g. its body) in time.
    RequestTimeout,
    /// Well-formed but not an acceptable value.
    Invalid,
    TooManyRequests,
    /// A dependency (database, queue) is down or too slow: try again later.
    Unavailable,
    /// A bug. Never caused by anything a client can send.
    Internal,
}

/// Where a waiting token stands; carried by `Waiting` errors so a client can show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingInfo {
    pub position: u64,
    pub eta_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub detail: String,
    pub waiting: Option<WaitingInfo>,
    /// Seconds the client should wait before trying again.
    pub retry_after: Option<u64>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, code: &'static str, detail: impl Into<String>) -> Self {
        Self { kind, code, detail: detail.into(), waiting: None, retry_after: None }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, detail)
    }
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, code, detail)
    }
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, detail)
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, detail)
    }
    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "INTERNAL", detail)
    }

    pub fn waiting(position: u64, eta_seconds: u64, retry_after: u64) -> Self {
        Self {
            waiting: Some(WaitingInfo { position, eta_seconds }),
            retry_after: Some(retry_after),
            ..Self::new(ErrorKind::Waiting, "TOKEN_WAITING", format!("still waiting in line at position {position}"))
        }
    }

    /// The caller went over a request budget; `wait` is when it may try again (at least 1 s).
    pub fn too_many_requests(code: &'static str, detail: impl Into<String>, wait: std::time::Duration) -> Self {
        Self {
            retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(ErrorKind::TooManyRequests, code, detail)
        }
    }

    /// A dependency failed or timed out; clients should come back in `retry_after` seconds.
    pub fn unavailable(dependency: &str, detail: impl fmt::Display) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                ErrorKind::Unavailable,
                "DEPENDENCY_UNAVAILABLE",
                format!("{dependency} is unavailable: {detail}"),
            )
        }
    }

    pub fn seat_unavailable() -> Self {
        Self::conflict("SEAT_UNAVAILABLE", "the seat is held or sold")
    }
    pub fn token_expired() -> Self {
        Self::unauthorized("TOKEN_EXPIRED", "the queue token has ended; join the waiting room again")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Error {}
