//! The check's look-up: synchronous, on connections of its own.
//!
//! sqlx runs every SQLite statement on a worker thread of the connection's
//! and hands the answer back, and its pool pings a connection (another hand-
//! off) each time one is returned. Profiled under load, those thread
//! switches were most of the check's time, while SQLite's own work — one
//! read by a unique index, from pages the OS already holds — is a few
//! microseconds. So the check reads here, through rusqlite, on the calling
//! thread, like any other short computation.
//!
//! Never a long wait on the async worker: each connection waits at most
//! [`BUSY_WAIT_MS`] for a lock (in WAL mode readers almost never wait), and
//! a look-up that finds every connection in use, or the database busy, is
//! handed back to the caller, who runs it on the pool instead. In WAL mode a
//! look-up reads the latest committed state, as the pool's connections do.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use tessera_core::stored::StoredToken;

/// The longest a look-up waits for SQLite's lock before it gives up here.
pub(crate) const BUSY_WAIT_MS: u64 = 20;

/// What a look-up here came to.
// Returned once by value and matched at once: no point boxing the row.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Lookup {
    /// The row (or none).
    Done(Option<StoredToken>),
    /// Every connection was in use, or the database was busy: use the pool.
    Elsewhere,
}

/// A few read-only connections to the store's file.
pub(crate) struct Readers {
    /// Each slot holds a connection, or none until the next look-up there
    /// opens one (also after a failure, so a look-up never reuses a
    /// connection in an unknown state).
    slots: Vec<Mutex<Option<Connection>>>,
    /// Where the next look-up starts looking for a free slot.
    next: AtomicUsize,
    /// The database file.
    path: PathBuf,
}

impl Readers {
    /// `n` slots (at least one) on the file at `path`, opened lazily.
    pub(crate) fn new(path: PathBuf, n: usize) -> Self {
        Readers {
            slots: (0..n.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            path,
        }
    }

    /// Runs `sql` (one `?` parameter, the token columns) with `param` (an
    /// access digest, or a token id).
    pub(crate) fn token(
        &self,
        sql: &str,
        param: impl rusqlite::ToSql,
    ) -> Result<Lookup, rusqlite::Error> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let Some(mut slot) = (0..n).find_map(|i| self.slots[(start + i) % n].try_lock().ok())
        else {
            return Ok(Lookup::Elsewhere);
        };
        let conn = match slot.take() {
            Some(c) => c,
            None => match open(&self.path) {
                Ok(c) => c,
                Err(e) if is_busy(&e) => return Ok(Lookup::Elsewhere),
                Err(e) => return Err(e),
            },
        };
        let result = conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_row([param], stored_token).optional());
        match result {
            Ok(row) => {
                *slot = Some(conn);
                Ok(Lookup::Done(row))
            }
            // Busy: the connection is fine, the pool will wait longer.
            Err(e) if is_busy(&e) => {
                *slot = Some(conn);
                Ok(Lookup::Elsewhere)
            }
            Err(e) => Err(e),
        }
    }
}

/// A read-only connection to the file at `path`, as the readers (and the
/// change stream's poll) use it.
pub(crate) fn open(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_WAIT_MS))?;
    conn.pragma_update(None, "query_only", true)?;
    // Never a memory map: a file truncated or replaced under a mapped
    // reader kills the process with SIGBUS, where read(2) returns an
    // error that answers 503.
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "cache_size", 0)?;
    Ok(conn)
}

/// SQLite's lock was not to be had in time.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A row of the token columns (in `token_columns!` order), as stored.
fn stored_token(row: &rusqlite::Row<'_>) -> Result<StoredToken, rusqlite::Error> {
    let digest = |i: usize| -> Result<[u8; 32], rusqlite::Error> {
        let v: Vec<u8> = row.get(i)?;
        v.try_into().map_err(|v: Vec<u8>| {
            rusqlite::Error::FromSqlConversionFailure(
                i,
                rusqlite::types::Type::Blob,
                format!("a digest of {} bytes", v.len()).into(),
            )
        })
    };
    let refresh: Option<Vec<u8>> = row.get(12)?;
    Ok(StoredToken {
        id: row.get(0)?,
        user_id: row.get(1)?,
        user_name: row.get(2)?,
        name: row.get(3)?,
        token_type: row.get(4)?,
        api_endpoints: row.get(5)?,
        allowed_ips: row.get(6)?,
        created_at: row.get(7)?,
        access_expires_at: row.get(8)?,
        renewable_until: row.get(9)?,
        ends_at: row.get(10)?,
        access_digest: digest(11)?,
        refresh_digest: match refresh {
            None => None,
            Some(_) => Some(digest(12)?),
        },
        legacy: row.get(13)?,
        revoked_at: row.get(14)?,
        last_used_at: row.get(15)?,
        last_used_ip: row.get(16)?,
        rate_requests: row.get(17)?,
        rate_per: row.get(18)?,
    })
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}
