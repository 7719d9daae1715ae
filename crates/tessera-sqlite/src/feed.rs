//! The change stream (`tessera_core::feed`) on SQLite: `PRAGMA data_version`
//! polled on a connection of its own, and the `token_changes` log read when
//! it moves.
//!
//! SQLite has no notifications. But each connection's `data_version`
//! changes whenever *another* connection has committed a write to the file
//! since it last looked: another process sharing the file, and this store's
//! own pool connections alike (they are other connections than the poll's,
//! so the node's own writes are heard too; the poll's connection is
//! read-only and never writes). So a subscription opens a connection,
//! reads the value, and polls it; when it moved, it reads the entries of
//! `token_changes` (migration 0003) past the last one it saw and says which
//! tokens changed ([`Change::Tokens`]).
//!
//! * Why `data_version`: it is the one signal that sees every commit to the
//!   file, from any connection or process, and it is read in microseconds
//!   without touching a table. It does not say *what* changed: that is the
//!   log's part. Triggers on `tokens` append each changed row's id in the
//!   writing transaction, so the entry commits exactly when the write does;
//!   writes elsewhere (last-used flushes, sessions, events, logins) append
//!   nothing and empty no cache.
//! * Exact: SQLite serialises writers, so entries' `seq` grows in commit
//!   order without gaps. A subscription remembers the last `seq` it handed
//!   out; when the next entry it reads is not the one after (the log keeps
//!   its newest 100,000 entries), or more than a message names have
//!   arrived, it says [`Change::All`].
//! * Heartbeats ([`Feed::beat`]) do not go through the file (that would be
//!   a write). A beat is queued for each subscription of this store value
//!   (and its clones) and handed out only after a poll that began after it
//!   was queued has completed, and after what that poll found: so a beat
//!   that comes back proves that every commit before it was heard. A
//!   subscription does not hear the beats of stores opened elsewhere on the
//!   same file; it needs none, a node only counts its own.
//! * A poll that proves beats also reads a row of `tokens` and of `users`
//!   (the connection caches no page): a file shrunk or overwritten under the
//!   node fails it, so the cache stops serving exactly when the checks'
//!   own reads would answer 503.
//! * Cut: a poll that fails (other than a busy file, which is polled again
//!   and proves nothing meanwhile) ends the subscription with an error, and
//!   so does dropping the store: the core's follower empties its cache and
//!   subscribes again.
//!
//! Memory databases have no change stream (a second connection would see a
//! database of its own): subscribing fails, so the cache stays empty and
//! every check reads the store.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::Connection;
use tessera_core::feed::{Change, ChangeStream, MAX_IDS_PER_MESSAGE};
use tessera_core::model::TokenId;
use tessera_core::store::StoreResult;
use tessera_core::StoreError;
use tokio::sync::broadcast;

use crate::readers;

/// How often a subscription reads `data_version` (a queued beat also starts
/// a poll at once). 5 ms: a change is heard, and a beat comes back, within
/// a few milliseconds, well inside the shortest staleness bound the server
/// takes (10 ms) and a small part of the default (100 ms); a poll costs a
/// few microseconds, so 200 a second cost a node far less than 1% of a core.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(5);

/// Beats a subscription may fall behind by; past it the oldest are lost,
/// which only makes the cache stale sooner.
const BEAT_BACKLOG: usize = 64;

/// A file store's change stream: where to poll, and the beats queued.
#[derive(Debug)]
pub(crate) struct Feed {
    /// The database file.
    path: PathBuf,
    /// Every subscription's queue of beats.
    beats: broadcast::Sender<String>,
}

impl Feed {
    /// The feed of the file at `path`.
    pub(crate) fn new(path: PathBuf) -> Self {
        Feed {
            path,
            beats: broadcast::channel(BEAT_BACKLOG).0,
        }
    }

    /// Opens the subscription's connection and reads `data_version`, then
    /// the log's newest entry: every commit after this returns moves the
    /// one and adds entries past the other.
    pub(crate) fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>> {
        // Subscribe to the beats first: a beat queued after the version was
        // read must not be missed.
        let beats = self.beats.subscribe();
        let conn = readers::open(&self.path).map_err(unavailable)?;
        // The version first: a commit between the two reads moves it, and is
        // then read again (harmlessly) or found past `seen`.
        let version = data_version(&conn).map_err(unavailable)?;
        let seen = newest_change(&conn).map_err(unavailable)?;
        Ok(Box::new(SqliteStream {
            conn: Some(conn),
            version,
            seen,
            beats,
            queued: Vec::new(),
            proven: VecDeque::new(),
        }))
    }

    /// Queues `text` for every subscription (none is no error).
    pub(crate) fn beat(&self, text: &str) {
        let _ = self.beats.send(text.to_owned());
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("the change stream's poll failed: {e}"))
}

fn data_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.pragma_query_value(None, "data_version", |row| row.get(0))
}

/// The newest entry of the change log (0: none yet).
fn newest_change(conn: &Connection) -> Result<i64, rusqlite::Error> {
    let mut st = conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM token_changes")?;
    st.query_row([], |row| row.get(0))
}

/// What the log says since entry `seen`, and the entry it says it up to:
/// nothing, the tokens named, or `All` (a gap: entries pruned before they
/// were read; or more tokens than a message names).
fn changes_since(conn: &Connection, seen: i64) -> Result<(Option<Change>, i64), rusqlite::Error> {
    let mut st = conn.prepare_cached(
        "SELECT seq, token_id FROM token_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let limit = MAX_IDS_PER_MESSAGE as i64 + 1;
    let entries: Vec<(i64, i64)> = st
        .query_map([seen, limit], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let Some(&(first, _)) = entries.first() else {
        return Ok((None, seen));
    };
    if first != seen + 1 || entries.len() > MAX_IDS_PER_MESSAGE {
        // Entries committed after this read are applied after the `All`
        // that covers them: nothing is missed by moving past them.
        return Ok((Some(Change::All), newest_change(conn)?));
    }
    let last = entries.last().map_or(seen, |e| e.0);
    let mut ids: Vec<TokenId> = Vec::with_capacity(entries.len());
    for (_, id) in entries {
        match u64::try_from(id) {
            Ok(id) if !ids.contains(&TokenId(id)) => ids.push(TokenId(id)),
            Ok(_) => {}
            // No token has a negative id; an entry that says one is damage.
            Err(_) => return Ok((Some(Change::All), last)),
        }
    }
    Ok((Some(Change::Tokens(ids)), last))
}

/// Reads the newest token row's id, and a user's: pages of both tables
/// from the file, as the check and readiness read them.
fn readable(conn: &Connection) -> Result<(), rusqlite::Error> {
    for sql in [
        "SELECT max(id) FROM tokens",
        "SELECT id FROM users ORDER BY id LIMIT 1",
    ] {
        let mut st = conn.prepare_cached(sql)?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
    }
    Ok(())
}

/// One subscription.
struct SqliteStream {
    /// The poll's connection; `None` once cut (every later call fails too).
    conn: Option<Connection>,
    /// The last value read.
    version: i64,
    /// The last log entry handed out.
    seen: i64,
    /// Beats as they are queued.
    beats: broadcast::Receiver<String>,
    /// Beats queued before the poll under way began.
    queued: Vec<String>,
    /// Beats a completed poll has proven, to hand out.
    proven: VecDeque<String>,
}

impl SqliteStream {
    /// Moves every beat queued so far to `queued`; false when the store is gone.
    fn take_beats(&mut self) -> bool {
        loop {
            match self.beats.try_recv() {
                Ok(text) => self.queued.push(text),
                Err(broadcast::error::TryRecvError::Empty) => return true,
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(broadcast::error::TryRecvError::Closed) => return false,
            }
        }
    }

    /// Waits until the next poll is due or a beat is queued.
    async fn wait(&mut self) -> bool {
        match tokio::time::timeout(POLL_EVERY, self.beats.recv()).await {
            Ok(Ok(text)) => self.queued.push(text),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => return false,
        }
        true
    }

    fn cut(&mut self, why: StoreError) -> StoreResult<Change> {
        self.conn = None;
        Err(why)
    }
}

#[async_trait]
impl ChangeStream for SqliteStream {
    async fn next(&mut self) -> StoreResult<Change> {
        loop {
            if let Some(text) = self.proven.pop_front() {
                return Ok(Change::Beat(text));
            }
            if self.conn.is_none() {
                return Err(StoreError::Unavailable("the change stream was cut".into()));
            }
            let gone = || StoreError::Unavailable("the store was closed".into());
            if !self.take_beats() {
                return self.cut(gone());
            }
            let Some(conn) = &self.conn else {
                continue;
            };
            // The poll begins after every beat in `queued` was queued.
            // A beat is proven only by a poll that also read a table's pages
            // from the file (the connection caches none): a file damaged
            // under the node must stop the cache, as it fails the checks.
            // The log is read when the version moved; what it says is
            // handed out before the beats this poll proves.
            let seen = self.seen;
            let polled = data_version(conn).and_then(|v| {
                let found = if v != self.version {
                    changes_since(conn, seen)?
                } else {
                    (None, seen)
                };
                if !self.queued.is_empty() {
                    readable(conn)?;
                }
                Ok((v, found))
            });
            match polled {
                Ok((version, (change, seen))) => {
                    self.proven.extend(self.queued.drain(..));
                    self.version = version;
                    self.seen = seen;
                    if let Some(change) = change {
                        return Ok(change);
                    }
                }
                // Proves nothing; the next poll tries again.
                Err(e) if readers::is_busy(&e) => {}
                Err(e) => return self.cut(unavailable(e)),
            }
            if self.proven.is_empty() && !self.wait().await {
                return self.cut(gone());
            }
        }
    }
}
