//! The one error type of the service. Each error has a stable machine-readable `Code` that
//! clients switch on; the code decides its kind, and the kind decides the HTTP status in the
//! http layer. Adding or changing a code touches this file only.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed body or header.
    BadRequest,
    /// Missing, forged, expired or misused queue token (or admin secret).
    Unauthorized,
    /// The token is valid but still waiting in line.
    Waiting,
    NotFound,
    /// The endpoint exists but not with this method.
    MethodNotAllowed,
    /// The client did not send the request (e.g. its body) in time.
    RequestTimeout,
    Conflict,
    /// Gone for good: the hold ran out, the concert sold out.
    Gone,
    PayloadTooLarge,
    /// Well-formed but not an acceptable value.
    Invalid,
    TooManyRequests,
    /// A dependency (database, queue) is down or too slow: try again later.
    Unavailable,
    /// A bug. Never caused by anything a client can send.
    Internal,
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $text:literal => $kind:ident,)*) => {
        /// Every error code the service answers with, as `code` in problem+json.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $text,)*
                }
            }

            pub fn kind(self) -> ErrorKind {
                match self {
                    $(Code::$name => ErrorKind::$kind,)*
                }
            }
        }
    };
}

codes! {
    // 400: the request itself is malformed.
    MalformedJson = "MALFORMED_JSON" => BadRequest,
    InvalidBody = "INVALID_BODY" => BadRequest,
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE" => BadRequest,
    InvalidPath = "INVALID_PATH" => BadRequest,
    InvalidQuery = "INVALID_QUERY" => BadRequest,
    InvalidIdempotencyKey = "INVALID_IDEMPOTENCY_KEY" => BadRequest,
    IdempotencyKeyRequired = "IDEMPOTENCY_KEY_REQUIRED" => BadRequest,
    InvalidRedisUrl = "INVALID_REDIS_URL" => BadRequest,
    InvalidDatabaseUrl = "INVALID_DATABASE_URL" => BadRequest,
    // 401: who is asking is unknown or not allowed.
    TokenMissing = "TOKEN_MISSING" => Unauthorized,
    TokenInvalid = "TOKEN_INVALID" => Unauthorized,
    TokenExpired = "TOKEN_EXPIRED" => Unauthorized,
    TokenWrongConcert = "TOKEN_WRONG_CONCERT" => Unauthorized,
    AdminTokenRequired = "ADMIN_TOKEN_REQUIRED" => Unauthorized,
    // 403: a valid token that is still in line.
    TokenWaiting = "TOKEN_WAITING" => Waiting,
    // 404
    RouteNotFound = "ROUTE_NOT_FOUND" => NotFound,
    UserNotFound = "USER_NOT_FOUND" => NotFound,
    ConcertNotFound = "CONCERT_NOT_FOUND" => NotFound,
    ScheduleNotFound = "SCHEDULE_NOT_FOUND" => NotFound,
    SeatNotFound = "SEAT_NOT_FOUND" => NotFound,
    ReservationNotFound = "RESERVATION_NOT_FOUND" => NotFound,
    DrawNotFound = "DRAW_NOT_FOUND" => NotFound,
    StoreNotFound = "STORE_NOT_FOUND" => NotFound,
    MethodNotAllowed = "METHOD_NOT_ALLOWED" => MethodNotAllowed,
    RequestTimeout = "REQUEST_TIMEOUT" => RequestTimeout,
    // 409: the request is fine but the state does not allow it.
    SeatUnavailable = "SEAT_UNAVAILABLE" => Conflict,
    AlreadyPaid = "ALREADY_PAID" => Conflict,
    InsufficientPoints = "INSUFFICIENT_POINTS" => Conflict,
    BalanceLimit = "BALANCE_LIMIT" => Conflict,
    IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED" => Conflict,
    HoldLimit = "HOLD_LIMIT" => Conflict,
    NotOnSaleYet = "NOT_ON_SALE_YET" => Conflict,
    OnSaleStarted = "ON_SALE_STARTED" => Conflict,
    StoreNotEmpty = "STORE_NOT_EMPTY" => Conflict,
    StoreExists = "STORE_EXISTS" => Conflict,
    BackupExists = "BACKUP_EXISTS" => Conflict,
    DataDirInUse = "DATA_DIR_IN_USE" => Conflict,
    // 410: over for good.
    HoldExpired = "HOLD_EXPIRED" => Gone,
    SoldOut = "SOLD_OUT" => Gone,
    LineClosed = "LINE_CLOSED" => Gone,
    PayloadTooLarge = "PAYLOAD_TOO_LARGE" => PayloadTooLarge,
    // 422: well-formed, but not a value we take.
    InvalidId = "INVALID_ID" => Invalid,
    InvalidAmount = "INVALID_AMOUNT" => Invalid,
    InvalidSeatNo = "INVALID_SEAT_NO" => Invalid,
    TooManySeats = "TOO_MANY_SEATS" => Invalid,
    InvalidValue = "INVALID_VALUE" => Invalid,
    JoinRateLimited = "JOIN_RATE_LIMITED" => TooManyRequests,
    DependencyUnavailable = "DEPENDENCY_UNAVAILABLE" => Unavailable,
    TooManyConnections = "TOO_MANY_CONNECTIONS" => Unavailable,
    Internal = "INTERNAL" => Internal,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a waiting token stands; carried by `Waiting` errors so a client can show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingInfo {
    pub position: u64,
    pub eta_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub code: Code,
    pub detail: String,
    pub waiting: Option<WaitingInfo>,
    /// Seconds the client should wait before trying again.
    pub retry_after: Option<u64>,
    /// Seats involved, e.g. those already taken when a group hold is refused.
    pub seats: Vec<i32>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), waiting: None, retry_after: None, seats: Vec::new() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.code.kind()
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(Code::Internal, detail)
    }

    pub fn waiting(position: u64, eta_seconds: u64, retry_after: u64) -> Self {
        Self {
            waiting: Some(WaitingInfo { position, eta_seconds }),
            retry_after: Some(retry_after),
            ..Self::new(Code::TokenWaiting, format!("still waiting in line at position {position}"))
        }
    }

    /// The caller went over a request budget; `wait` is when it may try again (at least 1 s).
    pub fn too_many_requests(code: Code, detail: impl Into<String>, wait: std::time::Duration) -> Self {
        Self { retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64), ..Self::new(code, detail) }
    }

    /// A dependency failed or timed out; clients should come back in `retry_after` seconds.
    pub fn unavailable(dependency: &str, detail: impl fmt::Display) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(Code::DependencyUnavailable, format!("{dependency} is unavailable: {detail}"))
        }
    }

    pub fn with_seats(mut self, seats: Vec<i32>) -> Self {
        self.seats = seats;
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn seat_unavailable() -> Self {
        Self::new(Code::SeatUnavailable, "the seat is held or sold")
    }
    pub fn token_expired() -> Self {
        Self::new(Code::TokenExpired, "the queue token has ended; join the waiting room again")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_screaming_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(c.as_str().chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'), "{c}");
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str(), "serde and as_str agree");
        }
    }
}
