//! Concerts, their dates and seats.

use crate::app::seat_map::SeatsView;
use crate::domain::error::Code;
use crate::domain::{ConcertId, Error, ScheduleId};
use crate::http::extract::{ApiPath, ApiQuery, Bearer, PathId};
use crate::http::problem::{ApiResult, Problem};
use crate::http::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConcertView {
    pub concert_id: i64,
    pub title: String,
    pub venue: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConcertsResponse {
    pub concerts: Vec<ConcertView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub schedule_id: i64,
    pub concert_id: i64,
    pub starts_at: String,
    pub seat_count: i32,
    pub available_seats: u32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulesResponse {
    pub concert_id: i64,
    /// Most seats one hold (and one payment) may take, all of one date.
    pub max_seats_per_order: usize,
    pub schedules: Vec<ScheduleView>,
}

/// A concert's on-sale draw: before the on-sale only its commitment; afterwards the seed and the
/// entries in the order the draw gave them places (`boxoffice verify-draw` recomputes it).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawView {
    pub concert_id: i64,
    /// When the on-sale starts (RFC 3339).
    pub on_sale_at: String,
    /// SHA-256 (hex) of the seed, published before the draw.
    pub commitment: String,
    pub drawn: bool,
    /// The seed, once drawn: the order ranks each entry by SHA-256(seed ":" entry), smallest first.
    pub seed: Option<String>,
    /// The pre-queue's entries, first place first, once drawn.
    pub entries: Vec<String>,
}

/// The published on-sale draw of a concert.
#[utoipa::path(get, path = "/api/v1/concerts/{concertId}/draw", tag = "catalog", params(("concertId" = i64, Path)),
    responses((status = 200, body = DrawView),
        (status = 404, description = "unknown concert, or no on-sale scheduled (DRAW_NOT_FOUND)", body = Problem, content_type = "application/problem+json")))]
pub async fn draw(State(s): State<AppState>, ApiPath(PathId(concert)): ApiPath<PathId>) -> ApiResult<Json<DrawView>> {
    let concert = ConcertId::parse(concert)?;
    let d = s.app.published_draw(concert).await?;
    Ok(Json(DrawView {
        concert_id: concert.get(),
        on_sale_at: d.on_sale_at.rfc3339(),
        commitment: d.commitment,
        drawn: d.entries.is_some(),
        seed: d.seed,
        entries: d.entries.unwrap_or_default(),
    }))
}

/// Concerts on sale.
#[utoipa::path(get, path = "/api/v1/concerts", tag = "catalog", responses((status = 200, body = ConcertsResponse)))]
pub async fn concerts(State(s): State<AppState>) -> ApiResult<Json<ConcertsResponse>> {
    let concerts = s.app.concerts().await?;
    Ok(Json(ConcertsResponse {
        concerts: concerts
            .into_iter()
            .map(|c| ConcertView { concert_id: c.id.get(), title: c.title, venue: c.venue })
            .collect(),
    }))
}

/// A concert's dates with how many seats are available. Needs an ACTIVE token for this concert.
#[utoipa::path(get, path = "/api/v1/concerts/{concertId}/schedules", tag = "catalog", security(("queueToken" = [])),
    params(("concertId" = i64, Path)),
    responses(
        (status = 200, body = SchedulesResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "still waiting", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn schedules(
    State(s): State<AppState>,
    Bearer(ticket): Bearer,
    ApiPath(PathId(concert)): ApiPath<PathId>,
) -> ApiResult<Json<SchedulesResponse>> {
    let concert = ConcertId::parse(concert)?;
    let list = s.app.schedules(ticket, concert).await?;
    Ok(Json(SchedulesResponse {
        concert_id: concert.get(),
        max_seats_per_order: s.app.max_seats_per_order(),
        schedules: list
            .into_iter()
            .map(|a| ScheduleView {
                schedule_id: a.schedule.id.get(),
                concert_id: a.schedule.concert.get(),
                starts_at: a.schedule.starts_at.rfc3339(),
                seat_count: a.schedule.seat_count,
                available_seats: a.available,
            })
            .collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeatFilter {
    /// `AVAILABLE` lists only seats that can be held now.
    #[param(pattern = "^AVAILABLE$")]
    pub status: Option<String>,
}

/// Seats 1..N of a date. Served from an in-memory snapshot, never a query per request.
#[utoipa::path(get, path = "/api/v1/schedules/{scheduleId}/seats", tag = "catalog", security(("queueToken" = [])),
    params(("scheduleId" = i64, Path), SeatFilter),
    responses(
        (status = 200, body = SeatsView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn seats(
    State(s): State<AppState>,
    headers: HeaderMap,
    Bearer(ticket): Bearer,
    ApiPath(PathId(schedule)): ApiPath<PathId>,
    ApiQuery(filter): ApiQuery<SeatFilter>,
) -> ApiResult<impl IntoResponse> {
    let only_available = match filter.status.as_deref() {
        None => false,
        Some("AVAILABLE") => true,
        Some(other) => {
            return Err(Error::new(Code::InvalidQuery, format!("status filter must be AVAILABLE, got {other:?}")).into())
        }
    };
    let map = s.app.seats(ticket, ScheduleId::parse(schedule)?).await?;
    let gzip = accepts_gzip(&headers);
    let body = map.body(only_available, gzip);
    let mut res =
        ([(header::CONTENT_TYPE, "application/json"), (header::VARY, "accept-encoding")], body).into_response();
    if gzip {
        res.headers_mut().insert(header::CONTENT_ENCODING, header::HeaderValue::from_static("gzip"));
    }
    Ok(res)
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without refusing it with `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        h
    }

    #[test]
    fn gzip_is_used_only_when_accepted() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("br, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
