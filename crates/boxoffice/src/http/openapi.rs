//! The OpenAPI document, generated from the handlers' annotations.

use super::problem::Problem;
use super::routes::{booking, catalog, points, queue};
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
        components.add_security_scheme(
            "queueToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("queue token from POST /api/v1/queue/tokens"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "boxoffice", description = "Concert ticketing with a virtual waiting room. Errors are application/problem+json with a stable `code`."),
    paths(
        queue::join, queue::status, queue::events, queue::leave,
        catalog::concerts, catalog::schedules, catalog::seats,
        booking::hold, booking::get_reservation, booking::release, booking::my_reservations, booking::pay,
        points::balance, points::charge, points::use_points, points::history,
    ),
    components(schemas(Problem, SeatView, SeatsView, SeatStatus, ReservationStatus, Receipt, PointsChange, crate::domain::Code)),
    modifiers(&QueueTokenAuth),
)]
pub struct ApiDoc;

pub fn document() -> Bytes {
    Bytes::from(ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises"))
}
