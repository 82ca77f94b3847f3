//! How SQLite's errors become the service's: a busy, locked, full or failing disk is a dependency
//! that is unavailable (503, try again); anything else is a bug.

use crate::domain::Error;

pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | CannotOpen | DiskFull | SystemIoFailure | OutOfMemory) => {
            Error::unavailable("database", e)
        }
        _ => Error::internal(format!("database: {e}")),
    }
}
