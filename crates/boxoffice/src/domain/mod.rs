//! Pure types and rules. Nothing in here knows about HTTP, SQL or Redis.

pub mod booking;
pub mod draw;
pub mod error;
pub mod ids;
pub mod line_controls;
pub mod new_concert;
pub mod points;
pub mod queue_policy;
pub mod seat;
pub mod time;

pub use error::{Code, Error, Result};
pub use ids::{ConcertId, IdempotencyKey, PaymentId, ReservationId, ScheduleId, UserId};
pub use points::Points;
pub use seat::{SeatNo, SeatStatus};
pub use time::Millis;

/// A JSON number that is a whole number, also when written with a zero fraction (`5.0`): JSON
/// Schema calls both integers, so a client generated from the contract may send either.
pub fn whole_number(raw: &serde_json::Number) -> Option<i64> {
    if let Some(v) = raw.as_i64() {
        return Some(v);
    }
    let f = raw.as_f64()?;
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}
