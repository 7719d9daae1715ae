//! The check's look-up: batched, on connections of its own.
//!
//! sqlx's pool pings a connection each time one is handed back (and, unless
//! told otherwise, before one is handed out): three round trips for one
//! look-up. And under load, one round trip per check is most of the check's
//! cost: PostgreSQL wakes a backend, parses a message, answers, sleeps.
//!
//! So the checks' look-ups go to a queue served by a few tasks, each with a
//! connection of its own. A task takes every look-up waiting (up to
//! [`MAX_BATCH`]) and answers them all with one statement,
//! `… WHERE access_digest = ANY($1) UNION ALL … WHERE id = ANY($2)`: one
//! round trip for as many checks as arrived meanwhile, whether they look a
//! token up by access digest (no cache) or by id (the cache's miss,
//! whatever the digest). An idle system answers a lone look-up at once, so
//! a batch never waits to fill.
//!
//! Failures: a connection that failed, or whose statement outran the bound,
//! is dropped (the next batch connects afresh), and every look-up of that
//! batch is answered `Unavailable`: fail closed, never a wrong answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::ConnectOptions;
use tessera_core::model::TokenRecord;
use tessera_core::store::StoreResult;
use tessera_core::stored::id_to_i64;
use tessera_core::StoreError;
use tessera_sql::{store_err, token_columns, token_row};
use tokio::sync::{mpsc, oneshot, Mutex};

/// The most look-ups one statement answers.
pub(crate) const MAX_BATCH: usize = 128;

/// The statement, over every waiting digest and id (an empty array costs
/// its branch nothing).
const SQL: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens WHERE access_digest = ANY($1) UNION ALL SELECT ",
    token_columns!(),
    " FROM tokens WHERE id = ANY($2)"
);

/// What one look-up asks for.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// The token whose current access digest this is.
    Access([u8; 32]),
    /// The token with this id, whatever its digest.
    Id(i64),
}

/// One look-up waiting for its answer.
struct Pending {
    /// What is looked up.
    key: Key,
    /// Where its answer goes.
    reply: oneshot::Sender<StoreResult<Option<Arc<TokenRecord>>>>,
}

/// The queue of the checks' look-ups, and the tasks that serve it.
pub(crate) struct Lookups {
    /// Closed (and the tasks end) when the store is dropped.
    queue: mpsc::UnboundedSender<Pending>,
    /// Bound on a look-up, waiting included.
    timeout: Duration,
}

impl Lookups {
    /// Starts `tasks` serving tasks (at least one), connecting lazily with
    /// `options`; each statement is bounded by `timeout`.
    pub(crate) fn start(options: PgConnectOptions, tasks: usize, timeout: Duration) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..tasks.max(1) {
            tokio::spawn(serve(rx.clone(), options.clone(), timeout));
        }
        Lookups { queue, timeout }
    }

    /// The token whose access digest is `digest`, if any.
    pub(crate) async fn token(&self, digest: [u8; 32]) -> StoreResult<Option<Arc<TokenRecord>>> {
        self.look_up(Key::Access(digest)).await
    }

    /// The token with id `id`, if any, whatever its digest.
    pub(crate) async fn token_by_id(&self, id: i64) -> StoreResult<Option<Arc<TokenRecord>>> {
        self.look_up(Key::Id(id)).await
    }

    async fn look_up(&self, key: Key) -> StoreResult<Option<Arc<TokenRecord>>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { key, reply })
            .map_err(|_| StoreError::Unavailable("the look-up tasks have stopped".into()))?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "a look-up task stopped before answering".into(),
            )),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// One serving task: takes what waits, answers it with one statement.
async fn serve(
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    options: PgConnectOptions,
    timeout: Duration,
) {
    let mut conn: Option<PgConnection> = None;
    loop {
        let mut batch = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else {
                return; // the store is gone
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            batch
        };
        // A caller that gave up (its own bound) needs no answer.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let mut digests: Vec<Vec<u8>> = Vec::new();
        let mut ids: Vec<i64> = Vec::new();
        for p in &batch {
            match p.key {
                Key::Access(d) => digests.push(d.to_vec()),
                Key::Id(id) => ids.push(id),
            }
        }
        let looked_up = fetch(&mut conn, &options, &digests, &ids);
        let rows = match tokio::time::timeout(timeout, looked_up).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(store_err(e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {timeout:?}"
            ))),
        };
        answer(batch, rows);
    }
}

/// Runs the statement on the task's connection (connecting first if it has
/// none). The connection is kept only after a clean answer or an error the
/// server reported; a cancelled call drops it with the future.
async fn fetch(
    slot: &mut Option<PgConnection>,
    options: &PgConnectOptions,
    digests: &[Vec<u8>],
    ids: &[i64],
) -> Result<Vec<PgRow>, sqlx::Error> {
    let mut conn = match slot.take() {
        Some(c) => c,
        None => options.connect().await?,
    };
    let result = sqlx::query(SQL)
        .bind(digests)
        .bind(ids)
        .fetch_all(&mut conn)
        .await;
    if result.is_ok() || matches!(result, Err(sqlx::Error::Database(_))) {
        *slot = Some(conn);
    }
    result
}

/// The records a batch found, by access digest and by id.
#[derive(Default)]
struct Found {
    by_access: HashMap<[u8; 32], Arc<TokenRecord>>,
    by_id: HashMap<i64, Arc<TokenRecord>>,
}

impl Found {
    fn of(rows: &[PgRow]) -> StoreResult<Found> {
        let mut found = Found::default();
        for r in rows {
            let t = Arc::new(token_row(r)?);
            found
                .by_access
                .insert(*t.access_digest.as_bytes(), t.clone());
            found.by_id.insert(id_to_i64(t.id.0)?, t);
        }
        Ok(found)
    }

    fn get(&self, key: Key) -> Option<Arc<TokenRecord>> {
        match key {
            Key::Access(d) => self.by_access.get(&d).cloned(),
            Key::Id(id) => self.by_id.get(&id).cloned(),
        }
    }
}

/// Hands each look-up its record (or none), or everyone the error.
fn answer(batch: Vec<Pending>, rows: StoreResult<Vec<PgRow>>) {
    let found = rows.and_then(|rows| Found::of(&rows));
    for p in batch {
        let result = match &found {
            Ok(found) => Ok(found.get(p.key)),
            Err(e) => Err(e.clone()),
        };
        let _ = p.reply.send(result);
    }
}

impl std::fmt::Debug for Lookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookups")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
