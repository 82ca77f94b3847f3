//! Points: balance, charge, use and the ledger.

use crate::domain::booking::{PointsChange, PointsOp};
use crate::domain::{Points, UserId};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, IdemKey, PathId};
use crate::http::problem::{ApiResult, Problem};
use crate::http::AppState;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceView {
    pub user_id: i64,
    pub balance: i64,
}

#[derive(Deserialize, ToSchema)]
pub struct AmountRequest {
    #[schema(value_type = i64, minimum = 1, maximum = 100000000)]
    pub amount: serde_json::Number,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerView {
    pub id: i64,
    /// CHARGE or USE.
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub payment_id: Option<i64>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    pub user_id: i64,
    pub entries: Vec<LedgerView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many entries, newest first: default 100; 0 reads as 1 and anything above 1000 as 1000.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub limit: Option<u32>,
}

/// A user's balance.
#[utoipa::path(get, path = "/api/v1/users/{userId}/points", tag = "points", params(("userId" = i64, Path)),
    responses((status = 200, body = BalanceView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn balance(
    State(s): State<AppState>,
    ApiPath(PathId(user)): ApiPath<PathId>,
) -> ApiResult<Json<BalanceView>> {
    let user = UserId::parse(user)?;
    let b = s.app.balance(user).await?;
    Ok(Json(BalanceView { user_id: user.get(), balance: b.get() }))
}

async fn move_points(
    s: AppState,
    user: i64,
    op: PointsOp,
    key: IdemKey,
    req: AmountRequest,
) -> ApiResult<Json<PointsChange>> {
    let user = UserId::parse(user)?;
    let amount = Points::amount_from_json(&req.amount)?;
    Ok(Json(s.app.move_points(user, op, amount, key.0).await?))
}

/// Add points. With an `Idempotency-Key`, a retry never charges twice.
#[utoipa::path(post, path = "/api/v1/users/{userId}/points/charge", tag = "points", request_body = AmountRequest,
    params(("userId" = i64, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = PointsChange),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "BALANCE_LIMIT, IDEMPOTENCY_KEY_REUSED", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "INVALID_AMOUNT", body = Problem, content_type = "application/problem+json")))]
pub async fn charge(
    State(s): State<AppState>,
    ApiPath(PathId(user)): ApiPath<PathId>,
    key: IdemKey,
    ApiJson(req): ApiJson<AmountRequest>,
) -> ApiResult<Json<PointsChange>> {
    move_points(s, user, PointsOp::Charge, key, req).await
}

/// Spend points outside a payment (the same ledger operation a payment uses).
#[utoipa::path(post, path = "/api/v1/users/{userId}/points/use", tag = "points", request_body = AmountRequest,
    params(("userId" = i64, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = PointsChange),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "INSUFFICIENT_POINTS", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn use_points(
    State(s): State<AppState>,
    ApiPath(PathId(user)): ApiPath<PathId>,
    key: IdemKey,
    ApiJson(req): ApiJson<AmountRequest>,
) -> ApiResult<Json<PointsChange>> {
    move_points(s, user, PointsOp::Use, key, req).await
}

/// The ledger, newest first.
#[utoipa::path(get, path = "/api/v1/users/{userId}/points/history", tag = "points", params(("userId" = i64, Path), HistoryQuery),
    responses((status = 200, body = HistoryView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn history(
    State(s): State<AppState>,
    ApiPath(PathId(user)): ApiPath<PathId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryView>> {
    let user = UserId::parse(user)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = s.app.history(user, limit).await?;
    Ok(Json(HistoryView {
        user_id: user.get(),
        entries: entries
            .into_iter()
            .map(|e| LedgerView {
                id: e.id,
                kind: e.op,
                amount: e.amount.get(),
                balance_after: e.balance_after.get(),
                payment_id: e.payment_id.map(|p| p.get()),
                created_at: e.created_at.rfc3339(),
            })
            .collect(),
    }))
}
