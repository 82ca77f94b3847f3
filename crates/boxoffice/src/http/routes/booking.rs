//! Holds and payments.

use crate::domain::booking::{Reservation, ReservationStatus};
use crate::domain::error::Code;
use crate::domain::{Error, Millis, ReservationId, ScheduleId, SeatNo};
use crate::http::extract::{ApiJson, ApiPath, Bearer, IdemKey};
use crate::http::problem::{ApiResult, Problem};
use crate::http::AppState;
use crate::store::Receipt;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldRequest {
    pub schedule_id: i64,
    #[schema(value_type = i32, minimum = 1)]
    pub seat_no: serde_json::Number,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    pub reservation_id: i64,
    pub user_id: i64,
    pub schedule_id: i64,
    pub seat_no: i32,
    pub price: i64,
    pub status: ReservationStatus,
    pub created_at: String,
    pub expires_at: String,
    pub payment_id: Option<i64>,
}

impl ReservationView {
    fn of(r: Reservation) -> Self {
        Self {
            reservation_id: r.id.get(),
            user_id: r.user.get(),
            schedule_id: r.schedule.get(),
            seat_no: r.seat_no.get(),
            price: r.price.get(),
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
        (status = 201, body = ReservationView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "SEAT_UNAVAILABLE", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn hold(
    State(s): State<AppState>,
    Bearer(ticket): Bearer,
    ApiJson(req): ApiJson<HoldRequest>,
) -> ApiResult<(StatusCode, Json<ReservationView>)> {
    let schedule = ScheduleId::parse(req.schedule_id)?;
    let seat = SeatNo::parse(&req.seat_no)?;
    let r = s.app.hold(ticket, schedule, seat).await?;
    Ok((StatusCode::CREATED, Json(ReservationView::of(r))))
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
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ReservationView>> {
    let r = s.app.reservation(ticket, ReservationId::parse(id)?).await?;
    Ok(Json(ReservationView::of(r)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayRequest {
    pub reservation_id: i64,
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
    let reservation = ReservationId::parse(req.reservation_id)?;
    let receipt = s.app.pay(ticket, reservation, key).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}
