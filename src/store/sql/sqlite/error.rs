//! SQLite errors as [`StoreError`]s: constraint failures are the caller's (conflict, not
//! found); a busy, locked, full, read-only or failing database is
//! [`StoreError::Unavailable`] — the server answers 503 and tries again on the next
//! request.

use rusqlite::ffi::ErrorCode;

use crate::store::StoreError;

pub(crate) fn sqlite_err(e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let text = msg.clone().unwrap_or_else(|| f.to_string());
            match f.code {
                ErrorCode::ConstraintViolation => {
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
                        StoreError::NotFound(text)
                    } else {
                        StoreError::Conflict(text)
                    }
                }
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::OutOfMemory
                | ErrorCode::CannotOpen
                | ErrorCode::OperationAborted
                | ErrorCode::FileLockingProtocolFailed => {
                    StoreError::Unavailable(format!("SQLite: {text}"))
                }
                _ => StoreError::Backend(Box::new(rusqlite::Error::SqliteFailure(*f, msg.clone()))),
            }
        }
        other => StoreError::Backend(other.to_string().into()),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        sqlite_err(&e)
    }
}

/// The engine's threads are gone (the store was closed).
pub(crate) fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite store is closed".into())
}
