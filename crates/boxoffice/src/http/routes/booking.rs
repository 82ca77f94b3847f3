//! Holds and payments.

use crate::domain::booking::{Receipt, Reservation, ReservationStatus};
use crate::domain::{Code, Error, Millis, ReservationId, ScheduleId, SeatNo};
use crate::http::extract::{ApiJson, ApiPath, Bearer, IdemKey, PathId};
use crate::http::problem::{ApiResult, Problem};
use crate::http::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One seat (`seatNo`) or several together (`seatNos`, 1 to `--max-seats-per-order`), all of one date.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldRequest {
    #[schema(value_type = i64, minimum = 1)]
    pub schedule_id: serde_json::Number,
    #[schema(value_type = Option<i32>, minimum = 1)]
    pub seat_no: Option<serde_json::Number>,
    #[schema(value_type = Option<Vec<i32>>)]
    pub seat_nos: Option<Vec<serde_json::Number>>,
}

impl HoldRequest {
    fn seats(&self) -> Result<Vec<SeatNo>, Error> {
        match (&self.seat_no, &self.seat_nos) {
            (Some(one), None) => Ok(vec![SeatNo::parse(one)?]),
            (None, Some(many)) => many.iter().map(SeatNo::parse).collect(),
            _ => Err(Error::new(Code::InvalidBody, "send either seatNo or seatNos")),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatPriceView {
    pub seat_no: i32,
    pub price: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    pub reservation_id: i64,
    pub user_id: i64,
    pub schedule_id: i64,
    /// The first (lowest) seat: the only one of a single-seat hold.
    pub seat_no: i32,
    pub seat_nos: Vec<i32>,
    pub seats: Vec<SeatPriceView>,
    /// What all the seats cost together.
    pub price: i64,
    pub status: ReservationStatus,
    pub created_at: String,
    pub expires_at: String,
    pub payment_id: Option<i64>,
}

impl ReservationView {
    pub fn of(r: Reservation) -> Self {
        Self {
            reservation_id: r.id.get(),
            user_id: r.user.get(),
            schedule_id: r.schedule.get(),
            seat_no: r.seats.first().map_or(0, |s| s.seat_no.get()),
            seat_nos: r.seats.iter().map(|s| s.seat_no.get()).collect(),
            seats: r.seats.iter().map(|s| SeatPriceView { seat_no: s.seat_no.get(), price: s.price.get() }).collect(),
            price: r.price().get(),
            status: r.effective_status(Millis::now()),
            created_at: r.created_at.rfc3339(),
            expires_at: r.expires_at.rfc3339(),
            payment_id: r.payment_id.map(|p| p.get()),
        }
    }
}

/// Hold a seat for the token's user until `expiresAt`.
#[utoipa::path(post, path = "/api/v1/reservations", tag = "booking", security(("queueToken" = [])), request_body = HoldRequest,
    responses(
        (status = 201, description = "held: every seat asked for, until expiresAt", body = ReservationView),
        (status = 200, description = "you already hold exactly these seats: that hold again", body = ReservationView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "SEAT_UNAVAILABLE (`seats` names the taken seats; none was held), HOLD_LIMIT (you hold other seats)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn hold(
    State(s): State<AppState>,
    Bearer(ticket): Bearer,
    ApiJson(req): ApiJson<HoldRequest>,
) -> ApiResult<(StatusCode, Json<ReservationView>)> {
    let schedule = ScheduleId::parse_json(&req.schedule_id)?;
    let held = s.app.hold(ticket, schedule, req.seats()?).await?;
    let code = if held.again { StatusCode::OK } else { StatusCode::CREATED };
    Ok((code, Json(ReservationView::of(held.reservation))))
}

/// Let go of a hold: its seats are available to others at once. Any token of the holder will do.
#[utoipa::path(post, path = "/api/v1/reservations/{reservationId}/release", tag = "booking", security(("queueToken" = [])),
    params(("reservationId" = i64, Path)),
    responses(
        (status = 200, description = "released (or already over: expired or released before)", body = ReservationView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "ALREADY_PAID: a sold ticket cannot be released", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn release(
    State(s): State<AppState>,
    Bearer(ticket): Bearer,
    ApiPath(PathId(id)): ApiPath<PathId>,
) -> ApiResult<Json<ReservationView>> {
    let released = s.app.release(ticket, ReservationId::parse(id)?).await?;
    Ok(Json(ReservationView::of(released.reservation)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyReservations {
    pub user_id: i64,
    /// Newest first: holds (with their end), purchases, and what expired or was released.
    pub reservations: Vec<ReservationView>,
}

/// My tickets: the token's user's reservations and purchases. Any validly signed token proves
/// who asks, also one that ended when its purchase went through.
#[utoipa::path(get, path = "/api/v1/me/reservations", tag = "booking", security(("queueToken" = [])),
    responses(
        (status = 200, body = MyReservations),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn my_reservations(State(s): State<AppState>, Bearer(ticket): Bearer) -> ApiResult<Json<MyReservations>> {
    let list = s.app.my_reservations(ticket, 100).await?;
    Ok(Json(MyReservations {
        user_id: ticket.user.get(),
        reservations: list.into_iter().map(ReservationView::of).collect(),
    }))
}

/// The caller's own hold or booking.
#[utoipa::path(get, path = "/api/v1/reservations/{reservationId}", tag = "booking", security(("queueToken" = [])),
    params(("reservationId" = i64, Path)),
    responses(
        (status = 200, body = ReservationView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_reservation(
    State(s): State<AppState>,
    Bearer(ticket): Bearer,
    ApiPath(PathId(id)): ApiPath<PathId>,
) -> ApiResult<Json<ReservationView>> {
    let r = s.app.reservation(ticket, ReservationId::parse(id)?).await?;
    Ok(Json(ReservationView::of(r)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayRequest {
    #[schema(value_type = i64, minimum = 1)]
    pub reservation_id: serde_json::Number,
}

/// Pay for a hold with points. Needs an `Idempotency-Key`; the same key always answers the same.
/// The seat becomes SOLD and the queue token ends.
#[utoipa::path(post, path = "/api/v1/payments", tag = "booking", security(("queueToken" = [])), request_body = PayRequest,
    params(("Idempotency-Key" = String, Header, description = "1-255 visible ASCII characters")),
    responses(
        (status = 201, body = Receipt),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "ALREADY_PAID, INSUFFICIENT_POINTS, IDEMPOTENCY_KEY_REUSED", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "HOLD_EXPIRED", body = Problem, content_type = "application/problem+json")))]
pub async fn pay(
    State(s): State<AppState>,
    Bearer(ticket): Bearer,
    IdemKey(key): IdemKey,
    ApiJson(req): ApiJson<PayRequest>,
) -> ApiResult<(StatusCode, Json<Receipt>)> {
    let key = key.ok_or_else(|| Error::new(Code::IdempotencyKeyRequired, "payments need an Idempotency-Key header"))?;
    let reservation = ReservationId::parse_json(&req.reservation_id)?;
    let receipt = s.app.pay(ticket, reservation, key).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}
