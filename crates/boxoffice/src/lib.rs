//! boxoffice: concert ticketing with a virtual waiting room.
//!
//! Layout: `domain` (pure rules) ← `app` (use cases) ← `http` (the edge); `store` and `queue` are
//! the ports with their backends; `server` wires them together; `jobs` are the background loops.

pub mod app;
pub mod audit;
pub mod backends;
pub mod cli;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod notices;
pub mod operator;
pub mod queue;
pub mod server;
pub mod store;
pub mod telemetry;
