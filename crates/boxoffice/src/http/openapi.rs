//! The OpenAPI document, generated from the handlers' annotations.

use super::problem::Problem;
use super::routes::{admin, booking, catalog, points, queue};
use crate::app::seat_map::{SeatView, SeatsView};
use crate::domain::booking::ReservationStatus;
use crate::domain::booking::{PointsChange, Receipt};
use crate::domain::SeatStatus;
use bytes::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct QueueTokenAuth;

impl Modify for QueueTokenAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        for (name, what) in [
            ("queueToken", "queue token from POST /api/v1/queue/tokens"),
            ("adminToken", "the operator's secret: --admin-token, or <data-dir>/admin.token"),
        ] {
            let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(what)).build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "boxoffice", description = "Concert ticketing with a virtual waiting room. Errors are application/problem+json with a stable `code`."),
    paths(
        queue::join, queue::status, queue::events, queue::leave,
        catalog::concerts, catalog::schedules, catalog::seats, catalog::draw,
        booking::hold, booking::get_reservation, booking::release, booking::my_reservations, booking::pay,
        points::balance, points::charge, points::use_points, points::history,
        admin::line, admin::change_line, admin::audit, admin::create_concert,
    ),
    components(schemas(Problem, SeatView, SeatsView, SeatStatus, ReservationStatus, Receipt, PointsChange, crate::domain::Code)),
    modifiers(&QueueTokenAuth),
)]
pub struct ApiDoc;

/// The document, with the limits this server was started with.
pub fn document(max_seats_per_order: usize) -> Bytes {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    exact(&mut doc, max_seats_per_order);
    Bytes::from(serde_json::to_vec_pretty(&doc).expect("the OpenAPI document serialises"))
}

/// What every operation may answer besides its own successes and business errors, and the
/// bounds the server enforces that the annotations cannot say, written once here so that the
/// published document describes the API that answers (a client generated from it is right).
fn exact(doc: &mut serde_json::Value, max_seats_per_order: usize) {
    use serde_json::{json, Value};
    let problem = |what: &str| json!({"description": what, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    let id_param = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else { continue };
            let secured = op.get("security").is_some();
            let has_body = op.get("requestBody").is_some();
            let responses = op.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else { continue };
            let mut add = |code: &str, what: &str| {
                responses.entry(code.to_owned()).or_insert_with(|| problem(what));
            };
            add("400", "a malformed request: path, query, header or body (MALFORMED_JSON, INVALID_BODY, INVALID_PATH, INVALID_QUERY, …)");
            add("408", "the request was not received within the request timeout (REQUEST_TIMEOUT)");
            add("503", "a dependency is down or too slow, or the server is at its connection limit; see Retry-After");
            if secured && !path.contains("/admin/") && !path.starts_with("/api/v1/queue") {
                add("409", "NOT_ON_SALE_YET: a pre-queue token before the on-sale's draw (Retry-After says when)");
                add("410", "SOLD_OUT or LINE_CLOSED: the line closed while this token was in it");
            }
            if secured {
                add("401", "the queue token is missing, forged or ended (TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_WRONG_CONCERT)");
            }
            if has_body {
                add("413", "the body is larger than 64 KiB (PAYLOAD_TOO_LARGE)");
                add("422", "a value out of range (INVALID_ID, INVALID_AMOUNT, INVALID_SEAT_NO)");
            }
            if path.contains('{') {
                add("404", "no such id");
                add("422", "an id that is not a positive whole number (INVALID_ID)");
            }
            if method == "post" && path.ends_with("/queue/tokens") {
                add("429", "this user asked for tokens too often (JOIN_RATE_LIMITED); see Retry-After");
            }
            // Path ids are positive 63-bit integers.
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params.iter_mut() {
                    let name = p.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
                    let place = p.get("in").and_then(Value::as_str).unwrap_or("").to_owned();
                    if place == "path" && name.ends_with("Id") {
                        p["schema"] = id_param.clone();
                    }
                    if place == "header" && name == "Idempotency-Key" {
                        // Required on payments, optional on charges and uses.
                        p["required"] = json!(path.ends_with("/payments"));
                        p["schema"] =
                            json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$"});
                    }
                }
            }
        }
    }
    // A hold names one seat or several, never both.
    if let Some(hold) = doc.pointer_mut("/components/schemas/HoldRequest") {
        hold["oneOf"] = json!([{"required": ["scheduleId", "seatNo"]}, {"required": ["scheduleId", "seatNos"]}]);
        hold["properties"]["seatNo"] = json!({"type": "integer", "minimum": 1, "maximum": crate::domain::SeatNo::MAX});
        hold["properties"]["seatNos"] = json!({"type": "array", "minItems": 1, "maxItems": max_seats_per_order, "uniqueItems": true,
            "items": {"type": "integer", "minimum": 1, "maximum": crate::domain::SeatNo::MAX}});
    }
    for (schema, field) in [
        ("JoinRequest", "userId"),
        ("JoinRequest", "concertId"),
        ("HoldRequest", "scheduleId"),
        ("PayRequest", "reservationId"),
    ] {
        if let Some(f) = doc.pointer_mut(&format!("/components/schemas/{schema}/properties/{field}")) {
            *f = id_param.clone();
        }
    }
    if let Some(f) = doc.pointer_mut("/components/schemas/AmountRequest/properties/amount") {
        *f = json!({"type": "integer", "minimum": 1, "maximum": crate::domain::Points::MAX_AMOUNT});
    }
}
