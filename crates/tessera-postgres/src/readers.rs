//! Connections of the check's own, outside the pool.
//!
//! sqlx's pool pings a connection each time one is handed back (and, unless
//! told otherwise, before one is handed out): three round trips to the
//! server for one look-up. The check is the hot path, so its single
//! `SELECT` runs on a few connections kept here instead: one round trip.
//! A connection is taken out of its slot while in use and put back only
//! after a clean answer, so a call cancelled by the time bound, or one that
//! failed for any reason but an error the server reported, leaves the slot
//! empty, and the next call there connects afresh: the store recovers by
//! itself, as the pool does.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Postgres};
use tokio::sync::Mutex;

/// A few connections for the check's look-up.
pub(crate) struct Readers {
    /// Each slot holds a connection, or none until the next call connects.
    slots: Vec<Mutex<Option<PgConnection>>>,
    /// Where the next call starts looking for a free slot (spreads the load).
    next: AtomicUsize,
    /// The pool's own options (schema, statement timeout, application name).
    options: PgConnectOptions,
}

impl Readers {
    /// `n` slots (at least one), connected lazily.
    pub(crate) fn new(options: PgConnectOptions, n: usize) -> Self {
        Readers {
            slots: (0..n.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            options,
        }
    }

    /// Runs `query` on a free slot's connection (waiting for one when all
    /// are busy): at most one row.
    pub(crate) async fn fetch_optional(
        &self,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let free = (0..n).find_map(|i| self.slots[(start + i) % n].try_lock().ok());
        let mut slot = match free {
            Some(s) => s,
            None => self.slots[start].lock().await,
        };
        let mut conn = match slot.take() {
            Some(c) => c,
            None => self.options.connect().await?,
        };
        let result = query.fetch_optional(&mut conn).await;
        // An error the server reported leaves the connection usable; any
        // other (I/O, protocol) may not, so it is dropped.
        if result.is_ok() || matches!(result, Err(sqlx::Error::Database(_))) {
            *slot = Some(conn);
        }
        result
    }
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}
