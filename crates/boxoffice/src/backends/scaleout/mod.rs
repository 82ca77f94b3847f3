//! The scale-out mode: PostgreSQL as the system of record and Redis as the waiting room, shared
//! by any number of stateless instances.

mod audit;
mod line_view;
mod notices;
mod seed;
mod statements;
mod store;
mod waiting_room;

pub use notices::RedisNotices;
pub use store::PgStore;
pub use waiting_room::RedisQueue;
