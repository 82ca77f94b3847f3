//! The operator API: each line's live figures and controls, and the log of operator actions,
//! behind the admin secret.

use crate::app::LineFigures;
use crate::domain::error::Code;
use crate::domain::line_controls::{Closed, LineChange, LineSettings, Paused};
use crate::domain::new_concert::{NewConcert, PriceTier};
use crate::domain::{whole_number, ConcertId, Error, Millis, Points, SeatNo};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, PathId};
use crate::http::problem::{ApiError, ApiResult, Problem};
use crate::http::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

/// The caller showed the admin secret (`Authorization: Bearer <admin token>`). The comparison
/// takes the same time whatever the guess: both sides are hashed to 32 bytes first, and the
/// bytes are compared without an early exit.
pub struct Operator;

pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(g) if same_secret(g.as_bytes(), &state.admin_secret) => Ok(Operator),
            _ => {
                metrics::counter!("boxoffice_admin_refused_total").increment(1);
                Err(ApiError(Error::new(
                    Code::AdminTokenRequired,
                    "send the admin secret as Authorization: Bearer <admin token>",
                )))
            }
        }
    }
}

/// What the operator set; null means the server's start-up setting.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub max_active: Option<u64>,
    pub admission_rate: Option<f64>,
    pub paused: bool,
    pub closed: bool,
    /// When the on-sale starts (RFC 3339), if scheduled.
    pub on_sale_at: Option<String>,
}

impl From<LineSettings> for SettingsView {
    fn from(s: LineSettings) -> Self {
        Self {
            max_active: s.max_active,
            admission_rate: s.admission_rate,
            paused: s.paused,
            closed: s.closed,
            on_sale_at: s.on_sale_at.map(Millis::rfc3339),
        }
    }
}

/// One line, live.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    pub concert_id: i64,
    pub waiting: u64,
    pub active: u64,
    /// The active limit in force: the operator's or the server's, capped by seats left.
    pub max_active: u64,
    /// The admission rate in force (people per second).
    pub admission_rate: f64,
    /// Measured admissions per second.
    pub admitted_per_second: f64,
    /// ETA of the last person in line.
    pub eta_last_seconds: u64,
    /// Seats not sold (free or held), over every date; null for a concert without dates.
    pub seats_left: Option<u64>,
    /// Seats free to hold now.
    pub seats_free: Option<u64>,
    /// Why admission is paused: `OPERATOR` or `NO_SEATS`; null when it runs.
    #[schema(value_type = Option<String>)]
    pub paused: Option<Paused>,
    /// Why the line is closed: `SOLD_OUT` or `LINE_CLOSED`; null when open.
    #[schema(value_type = Option<String>)]
    pub closed: Option<Closed>,
    /// The server's cap of active users per unsold seat.
    pub active_per_seat: f64,
    /// People in the pre-queue, waiting for the on-sale draw.
    pub pre_queue: u64,
    /// When the on-sale starts (RFC 3339); null when none is scheduled.
    pub on_sale_at: Option<String>,
    /// The SHA-256 commitment of the draw's seed, published before the draw.
    pub draw_commitment: Option<String>,
    pub settings: SettingsView,
}

fn line_view(concert: ConcertId, f: LineFigures) -> LineView {
    let settings = f.settings;
    LineView {
        concert_id: concert.get(),
        waiting: f.stats.waiting,
        active: f.stats.active,
        max_active: f.outflow.max_active,
        admission_rate: f.outflow.rate,
        admitted_per_second: f.stats.rate_per_sec,
        eta_last_seconds: f.stats.eta_last_seconds,
        seats_left: f.inventory.map(|i| i.unsold),
        seats_free: f.inventory.map(|i| i.free),
        paused: f.outflow.paused,
        closed: f.outflow.closed,
        active_per_seat: f.active_per_seat,
        pre_queue: f.stats.pre_queue,
        on_sale_at: f.on_sale_at.map(Millis::rfc3339),
        draw_commitment: f.commitment,
        settings: settings.into(),
    }
}

/// A change to a line: only the fields given change. At least one is needed.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineChangeRequest {
    /// Most users active at once (1 to 10,000,000).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10000000)]
    pub max_active: Option<serde_json::Number>,
    /// Admissions per second (above 0, at most 1,000,000).
    #[schema(value_type = Option<f64>, exclusive_minimum = 0, maximum = 1000000)]
    pub admission_rate: Option<f64>,
    pub paused: Option<bool>,
    pub closed: Option<bool>,
    /// When the on-sale starts (RFC 3339): joins before it go to the pre-queue, which is drawn
    /// at this instant. It cannot move once the draw has run (409 ON_SALE_STARTED).
    #[schema(format = DateTime)]
    pub on_sale_at: Option<String>,
}

impl LineChangeRequest {
    fn parse(self) -> Result<LineChange, Error> {
        let invalid = |what: &str| Error::new(Code::InvalidValue, what.to_owned());
        let max_active = match self.max_active {
            None => None,
            Some(n) => match whole_number(&n) {
                Some(v) if (1..=10_000_000).contains(&v) => Some(v as u64),
                _ => return Err(invalid("maxActive must be a whole number from 1 to 10000000")),
            },
        };
        let admission_rate = match self.admission_rate {
            Some(r) if !(r > 0.0 && r <= 1_000_000.0) => {
                return Err(invalid("admissionRate must be above 0 and at most 1000000"))
            }
            r => r,
        };
        let on_sale_at = match self.on_sale_at.as_deref() {
            None => None,
            Some(s) => Some(
                Millis::parse_rfc3339(s)
                    .ok_or_else(|| invalid("onSaleAt must be an RFC 3339 instant, e.g. 2026-12-24T18:00:00Z"))?,
            ),
        };
        let change = LineChange { max_active, admission_rate, paused: self.paused, closed: self.closed, on_sale_at };
        if change.is_empty() {
            return Err(invalid("nothing to change: give maxActive, admissionRate, paused, closed or onSaleAt"));
        }
        Ok(change)
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineChangeResponse {
    pub before: SettingsView,
    pub after: SettingsView,
    pub line: LineView,
}

/// A line's live figures and controls.
#[utoipa::path(get, path = "/api/v1/admin/concerts/{concertId}/line", tag = "admin",
    security(("adminToken" = [])), params(("concertId" = i64, Path)),
    responses(
        (status = 200, body = LineView),
        (status = 401, description = "no admin secret, or a wrong one (ADMIN_TOKEN_REQUIRED)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn line(
    State(s): State<AppState>,
    _: Operator,
    ApiPath(PathId(concert)): ApiPath<PathId>,
) -> ApiResult<Json<LineView>> {
    let concert = ConcertId::parse(concert)?;
    Ok(Json(line_view(concert, s.app.line_figures(concert).await?)))
}

/// Change a line while people wait: the active limit, the admission rate, pause or resume
/// admission, close or reopen the line. In force at once here and on every instance within a
/// second; logged with the settings before and after.
#[utoipa::path(patch, path = "/api/v1/admin/concerts/{concertId}/line", tag = "admin",
    security(("adminToken" = [])), params(("concertId" = i64, Path)), request_body = LineChangeRequest,
    responses(
        (status = 200, body = LineChangeResponse),
        (status = 401, description = "no admin secret, or a wrong one (ADMIN_TOKEN_REQUIRED): nothing changes", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "onSaleAt given after the on-sale's draw has run (ON_SALE_STARTED)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a value out of range, or nothing to change (INVALID_VALUE)", body = Problem, content_type = "application/problem+json")))]
pub async fn change_line(
    State(s): State<AppState>,
    _: Operator,
    ApiPath(PathId(concert)): ApiPath<PathId>,
    ApiJson(req): ApiJson<LineChangeRequest>,
) -> ApiResult<Json<LineChangeResponse>> {
    let concert = ConcertId::parse(concert)?;
    let change = req.parse()?;
    let (before, after) = s.app.change_line(concert, change).await?;
    let line = line_view(concert, s.app.line_figures(concert).await?);
    tracing::info!(%concert, action = change.action(), "operator changed a line");
    Ok(Json(LineChangeResponse { before: before.into(), after: after.into(), line }))
}

/// Seats `fromSeat..=toSeat` cost `price` points each.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceTierRequest {
    #[schema(value_type = i64, minimum = 1, maximum = 100000)]
    pub from_seat: serde_json::Number,
    #[schema(value_type = i64, minimum = 1, maximum = 100000)]
    pub to_seat: serde_json::Number,
    #[schema(value_type = i64, minimum = 1, maximum = 100000000)]
    pub price: serde_json::Number,
}

/// A new concert: its dates (each with the whole seat map), the number of seats, and price tiers
/// that give every seat 1..seatCount exactly one price.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewConcertRequest {
    pub title: String,
    pub venue: String,
    /// When each date starts (RFC 3339); 1 to 100 dates.
    pub dates: Vec<String>,
    #[schema(value_type = i64, minimum = 1, maximum = 100000)]
    pub seat_count: serde_json::Number,
    pub price_tiers: Vec<PriceTierRequest>,
}

impl NewConcertRequest {
    fn parse(self) -> Result<NewConcert, Error> {
        let invalid = |what: String| Error::new(Code::InvalidValue, what);
        let whole = |n: &serde_json::Number, what: &str, max: i64| {
            whole_number(n)
                .filter(|v| (1..=max).contains(v))
                .ok_or_else(|| invalid(format!("{what} must be a whole number from 1 to {max}")))
        };
        let dates = self
            .dates
            .iter()
            .map(|d| Millis::parse_rfc3339(d).ok_or_else(|| invalid(format!("date {d:?} is not an RFC 3339 instant"))))
            .collect::<Result<Vec<_>, _>>()?;
        let seat_count = whole(&self.seat_count, "seatCount", SeatNo::MAX)?;
        let tiers = self
            .price_tiers
            .iter()
            .map(|t| {
                Ok(PriceTier {
                    from: whole(&t.from_seat, "fromSeat", SeatNo::MAX)? as i32,
                    to: whole(&t.to_seat, "toSeat", SeatNo::MAX)? as i32,
                    price: Points::from_trusted(whole(&t.price, "price", Points::MAX_AMOUNT)?),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        NewConcert::new(self.title, self.venue, dates, seat_count, tiers)
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedScheduleView {
    pub schedule_id: i64,
    pub starts_at: String,
    pub seat_count: i32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedConcertView {
    pub concert_id: i64,
    pub title: String,
    pub venue: String,
    pub schedules: Vec<CreatedScheduleView>,
}

/// Create a concert with its dates, seat map and price tiers. Its line opens with the server's
/// defaults; schedule an on-sale with PATCH …/line {onSaleAt} before fans arrive.
#[utoipa::path(post, path = "/api/v1/admin/concerts", tag = "admin", security(("adminToken" = [])),
    request_body = NewConcertRequest,
    responses(
        (status = 201, body = CreatedConcertView),
        (status = 401, description = "no admin secret, or a wrong one (ADMIN_TOKEN_REQUIRED): nothing is created", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a value out of range, or price tiers that do not cover every seat once (INVALID_VALUE)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_concert(
    State(s): State<AppState>,
    _: Operator,
    ApiJson(req): ApiJson<NewConcertRequest>,
) -> ApiResult<(StatusCode, Json<CreatedConcertView>)> {
    let (concert, schedules) = s.app.create_concert(req.parse()?).await?;
    tracing::info!(concert = %concert.id, dates = schedules.len(), "operator created a concert");
    Ok((
        StatusCode::CREATED,
        Json(CreatedConcertView {
            concert_id: concert.id.get(),
            title: concert.title,
            venue: concert.venue,
            schedules: schedules
                .into_iter()
                .map(|s| CreatedScheduleView {
                    schedule_id: s.id.get(),
                    starts_at: s.starts_at.rfc3339(),
                    seat_count: s.seat_count,
                })
                .collect(),
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many entries, newest first: default 100; 0 reads as 1 and anything above 1000 as 1000.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    pub concert_id: Option<i64>,
    /// pause, resume, close, reopen, set_max_active, set_admission_rate, schedule_on_sale,
    /// change (several at once) or create_concert.
    pub action: String,
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub entries: Vec<AuditEntryView>,
}

/// Every operator action, newest first: what, when, and the settings before and after.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("adminToken" = [])), params(AuditQuery),
    responses(
        (status = 200, body = AuditView),
        (status = 401, description = "no admin secret, or a wrong one (ADMIN_TOKEN_REQUIRED)", body = Problem, content_type = "application/problem+json")))]
pub async fn audit(
    State(s): State<AppState>,
    _: Operator,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditView>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = s
        .app
        .admin_log(limit)
        .await?
        .into_iter()
        .map(|e| AuditEntryView {
            id: e.id,
            at: e.at.rfc3339(),
            concert_id: e.concert_id.map(|c| c.get()),
            action: e.action,
            before: e.before,
            after: e.after,
        })
        .collect();
    Ok(Json(AuditView { entries }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret-s3cret-s3cret", b"s3cret-s3cret-s3cret"));
        assert!(!same_secret(b"s3cret-s3cret-s3cre", b"s3cret-s3cret-s3cret"));
        assert!(!same_secret(b"", b"s3cret-s3cret-s3cret"));
    }

    #[test]
    fn a_change_needs_a_value_in_range() {
        let req = |v: serde_json::Value| serde_json::from_value::<LineChangeRequest>(v).unwrap().parse();
        assert_eq!(req(serde_json::json!({"paused": true})).unwrap().paused, Some(true));
        assert_eq!(req(serde_json::json!({"maxActive": 5.0})).unwrap().max_active, Some(5));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"maxActive": 0}),
            serde_json::json!({"maxActive": 1.5}),
            serde_json::json!({"admissionRate": 0}),
            serde_json::json!({"admissionRate": -3}),
        ] {
            assert_eq!(req(bad.clone()).unwrap_err().code, Code::InvalidValue, "{bad}");
        }
        assert!(serde_json::from_value::<LineChangeRequest>(serde_json::json!({"maxActiv": 3})).is_err());
    }
}
