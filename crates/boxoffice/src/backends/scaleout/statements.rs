//! How statements reach PostgreSQL: straight, or through a transaction pooler.
//!
//! Straight to PostgreSQL, sqlx prepares each statement once per connection under a name
//! (`sqlx_s_1`, …) and reuses it. A transaction pooler (PgBouncer in `pool_mode = transaction`,
//! which before 1.21 keeps no prepared statements) hands each transaction whichever server
//! connection is free, where that name is already taken or was never prepared. Through one,
//! every statement is sent unnamed (parsed on each use) and only inside a transaction: sqlx
//! parses and then executes a statement in two round trips, and outside a transaction the
//! pooler may send them to two different servers.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{FromRow, Postgres};

/// The statements of one store: named and kept (straight), or unnamed (through a pooler).
#[derive(Clone, Copy, Debug)]
pub struct Statements {
    named: bool,
}

impl Statements {
    pub fn new(through_pooler: bool) -> Self {
        Self { named: !through_pooler }
    }

    /// Reads outside a use case's transaction must open one of their own.
    pub fn need_transactions(self) -> bool {
        !self.named
    }

    pub fn query(self, sql: &str) -> Query<'_, Postgres, PgArguments> {
        sqlx::query(sql).persistent(self.named)
    }

    pub fn query_as<O>(self, sql: &str) -> QueryAs<'_, Postgres, O, PgArguments>
    where
        O: for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_as(sql).persistent(self.named)
    }

    pub fn query_scalar<O>(self, sql: &str) -> QueryScalar<'_, Postgres, O, PgArguments>
    where
        (O,): for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_scalar(sql).persistent(self.named)
    }
}
