//! The waiting room: join, and see where you stand.

use crate::app::App;
use crate::domain::line_controls::{Closed, Paused};
use crate::domain::{ConcertId, Millis, UserId};
use crate::http::extract::{ApiJson, Bearer, StreamBearer};
use crate::http::problem::{ApiResult, Problem};
use crate::http::AppState;
use crate::queue::{Standing, Ticket};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    #[schema(value_type = i64, minimum = 1)]
    pub user_id: serde_json::Number,
    #[schema(value_type = i64, minimum = 1)]
    pub concert_id: serde_json::Number,
}

#[derive(Serialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueStatus {
    /// Joined before the on-sale: no place yet; at `onSaleAt` a fair draw gives everyone here a
    /// place (see GET /api/v1/concerts/{concertId}/draw).
    PreQueue,
    Waiting,
    Active,
    Expired,
    /// Every seat is sold: the line closed and this place ended.
    SoldOut,
    /// The operator closed the line: this place ended.
    LineClosed,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    pub status: QueueStatus,
    /// 1 for the person at the front; null unless waiting.
    pub position: Option<u64>,
    pub eta_seconds: Option<u64>,
    /// When an ACTIVE token ends (RFC 3339).
    pub active_until: Option<String>,
    /// Set while admission is paused: `OPERATOR`, or `NO_SEATS` when every seat left is held
    /// (seats may come back when holds run out).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "NO_SEATS")]
    pub paused: Option<Paused>,
    /// While paused for want of seats: when the first live hold runs out (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats_may_return_at: Option<String>,
    /// When the on-sale starts (RFC 3339), for a line with a scheduled on-sale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_sale_at: Option<String>,
    /// Seconds until the on-sale starts, while in the pre-queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_in_seconds: Option<u64>,
    /// This fan's pseudonymous entry in the on-sale draw: find it in the published draw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub token: String,
    #[serde(flatten)]
    pub standing: StatusResponse,
}

/// The answer for a standing; `app` adds why admission is paused, for people waiting, and the
/// on-sale and draw entry where the line has an on-sale.
fn view(app: &App, ticket: &Ticket, s: Standing) -> (StatusResponse, Option<u64>) {
    let concert = ticket.concert;
    let on_sale = app.on_sale_of(ticket);
    let ended = |status| StatusResponse {
        status,
        position: None,
        eta_seconds: None,
        active_until: None,
        paused: None,
        seats_may_return_at: None,
        on_sale_at: None,
        starts_in_seconds: None,
        entry_id: None,
    };
    let drawn = |mut r: StatusResponse| {
        if let Some((at, entry)) = &on_sale {
            r.on_sale_at = Some(at.rfc3339());
            r.entry_id = Some(entry.clone());
        }
        r
    };
    match s {
        Standing::PreQueue => {
            let starts = on_sale.as_ref().map_or(0, |(at, _)| Millis::now().secs_until(*at).max(0) as u64);
            let r = drawn(StatusResponse { starts_in_seconds: Some(starts), ..ended(QueueStatus::PreQueue) });
            (r, Some(starts.clamp(1, 30)))
        }
        Standing::Waiting { position, eta_seconds, retry_after } => {
            let pause = app.pause_of(concert);
            (
                drawn(StatusResponse {
                    status: QueueStatus::Waiting,
                    position: Some(position),
                    eta_seconds: Some(eta_seconds),
                    paused: pause.map(|(p, _)| p),
                    seats_may_return_at: pause.and_then(|(_, at)| at).map(|at| at.rfc3339()),
                    ..ended(QueueStatus::Waiting)
                }),
                Some(retry_after),
            )
        }
        Standing::Active { until } => (
            drawn(StatusResponse {
                eta_seconds: Some(0),
                active_until: Some(until.rfc3339()),
                ..ended(QueueStatus::Active)
            }),
            None,
        ),
        Standing::Expired => (ended(QueueStatus::Expired), None),
        Standing::Closed(Closed::SoldOut) => (ended(QueueStatus::SoldOut), None),
        Standing::Closed(Closed::ByOperator) => (ended(QueueStatus::LineClosed), None),
    }
}

fn retry_header(retry: Option<u64>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(secs) = retry {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    h
}

/// Join a concert's waiting room. The same user and concert again returns the same token.
#[utoipa::path(post, path = "/api/v1/queue/tokens", tag = "queue", request_body = JoinRequest,
    responses(
        (status = 201, description = "joined", body = TokenResponse),
        (status = 200, description = "already in line: the same token and place", body = TokenResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown user or concert", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "the line is closed: SOLD_OUT (every seat is sold) or LINE_CLOSED (by the operator)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "this user asked for tokens too often (Retry-After says when to come back)", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn join(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<JoinRequest>,
) -> ApiResult<(StatusCode, HeaderMap, Json<TokenResponse>)> {
    let user = UserId::parse_json(&req.user_id)?;
    let concert = ConcertId::parse_json(&req.concert_id)?;
    let (joined, token) = s.app.join(concert, user).await?;
    let (standing, retry) = view(&s.app, &joined.ticket, joined.standing);
    let code = if joined.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, retry_header(retry), Json(TokenResponse { token, standing })))
}

/// Where the token stands. While waiting, `Retry-After` says when to ask again.
#[utoipa::path(get, path = "/api/v1/queue/status", tag = "queue", security(("queueToken" = [])),
    responses(
        (status = 200, body = StatusResponse),
        (status = 401, description = "missing or forged token", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn status(State(s): State<AppState>, Bearer(ticket): Bearer) -> ApiResult<(HeaderMap, Json<StatusResponse>)> {
    let (body, retry) = view(&s.app, &ticket, s.app.poll(ticket).await?);
    Ok((retry_header(retry), Json(body)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaveResponse {
    /// Always `LEFT`: the token has ended.
    pub status: &'static str,
    /// Where the token was: `WAITING`, `ACTIVE`, or `ENDED` when it had ended already.
    pub was: &'static str,
}

/// Leave the line. The people behind move up at once; leaving while ACTIVE frees the slot for
/// the next person. The token ends either way (its status reads EXPIRED afterwards).
#[utoipa::path(post, path = "/api/v1/queue/leave", tag = "queue", security(("queueToken" = [])),
    responses(
        (status = 200, body = LeaveResponse),
        (status = 401, description = "missing or forged token", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn leave(State(s): State<AppState>, Bearer(ticket): Bearer) -> ApiResult<Json<LeaveResponse>> {
    let was = match s.app.leave(ticket).await? {
        crate::queue::Left::Waiting => "WAITING",
        crate::queue::Left::Active => "ACTIVE",
        crate::queue::Left::AlreadyOver => "ENDED",
    };
    Ok(Json(LeaveResponse { status: "LEFT", was }))
}

/// A subscriber re-reads its standing at least this often even when no local tick moved its line.
const SSE_FALLBACK_WAKE: Duration = Duration::from_secs(15);

/// Counts open event streams; decremented when the stream is dropped.
struct Subscriber;

impl Subscriber {
    fn new() -> Self {
        metrics::gauge!("boxoffice_queue_event_subscribers").increment(1.0);
        Subscriber
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        metrics::gauge!("boxoffice_queue_event_subscribers").decrement(1.0);
    }
}

/// Live position as Server-Sent Events (`event: status`, data as `GET /queue/status`). A new event
/// is sent whenever the answer changes; the stream ends after `EXPIRED`, `SOLD_OUT` or `LINE_CLOSED`. The token may be passed
/// as `?token=` since EventSource cannot set headers.
#[utoipa::path(get, path = "/api/v1/queue/events", tag = "queue", security(("queueToken" = [])),
    params(("token" = Option<String>, Query, description = "the queue token, when no Authorization header can be sent")),
    responses(
        (status = 200, description = "text/event-stream of `status` events", content_type = "text/event-stream"),
        (status = 204, description = "the token has ended: nothing to stream"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(s): State<AppState>,
    StreamBearer(ticket): StreamBearer,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    // Fail fast (401/503) before the stream starts, rather than inside it.
    let first = s.app.poll(ticket).await?;
    if first == Standing::Expired {
        // 204 tells an EventSource to stop reconnecting; there is nothing more to say.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let changes = s.app.queue_changes();
    struct Feed {
        app: std::sync::Arc<crate::app::App>,
        changes: tokio::sync::watch::Receiver<u64>,
        open: tokio::sync::watch::Receiver<bool>,
        last: Option<String>,
        next: Option<Standing>,
        ended: bool,
        /// No event before this instant: people far back hear at most one update per Retry-After.
        quiet_until: tokio::time::Instant,
        _sub: Subscriber,
    }
    let init = Feed {
        app: s.app.clone(),
        changes,
        open: s.app.streams_open(),
        last: None,
        next: Some(first),
        ended: false,
        quiet_until: tokio::time::Instant::now(),
        _sub: Subscriber::new(),
    };
    let stream = futures::stream::unfold(init, move |mut st| async move {
        if st.ended || !*st.open.borrow() {
            return None;
        }
        loop {
            st.changes.borrow_and_update();
            // A dependency hiccup yields nothing now; the next change looks again.
            let standing = match st.next.take() {
                Some(s) => Some(s),
                None => st.app.poll(ticket).await.ok(),
            };
            if let Some(standing) = standing {
                let (body, retry) = view(&st.app, &ticket, standing);
                let json = serde_json::to_string(&body).unwrap_or_default();
                if st.last.as_deref() != Some(json.as_str()) {
                    let pace = Duration::from_secs(retry.unwrap_or(1)).min(st.app.live_update_cap());
                    st.quiet_until = tokio::time::Instant::now() + pace;
                    st.ended =
                        !matches!(body.status, QueueStatus::PreQueue | QueueStatus::Waiting | QueueStatus::Active);
                    st.last = Some(json.clone());
                    return Some((Ok::<_, std::convert::Infallible>(Event::default().event("status").data(json)), st));
                }
            }
            // Then wake on the next admission tick that moved a line, or after a while regardless
            // (another instance may have moved it, and the ETA drifts). Each subscriber costs a
            // timer and a few hundred bytes while it waits; nothing is polled.
            let fallback = SSE_FALLBACK_WAKE.min(st.app.live_update_cap());
            let stopping = async {
                let _ = st.open.wait_for(|open| !open).await;
            };
            tokio::select! {
                () = stopping => return None,
                () = async {
                    tokio::time::sleep_until(st.quiet_until).await;
                    let _ = tokio::time::timeout(fallback, st.changes.changed()).await;
                } => {}
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response())
}
