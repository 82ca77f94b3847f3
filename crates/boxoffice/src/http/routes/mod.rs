pub mod admin;
pub mod booking;
pub mod catalog;
pub mod ops;
pub mod points;
pub mod queue;
