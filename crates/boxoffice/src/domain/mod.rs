//! Pure types and rules. Nothing in here knows about HTTP, SQL or Redis.

pub mod booking;
pub mod error;
pub mod ids;
pub mod points;
pub mod queue_policy;
pub mod seat;
pub mod time;

pub use error::{Code, Error, Result};
pub use ids::{ConcertId, IdempotencyKey, PaymentId, ReservationId, ScheduleId, UserId};
pub use points::Points;
pub use seat::{SeatNo, SeatStatus};
pub use time::Millis;
