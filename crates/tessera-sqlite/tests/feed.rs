//! The change stream on SQLite: every token write made through a second
//! store on the file is heard, by id, and so is another connection's; a
//! write to any other table is not; a gap in the log is heard as `All`; a
//! beat comes back; dropping the store fails its subscriptions; memory
//! databases have no stream. And the cache's reads by id.

use std::sync::Arc;

use tessera_core::feed::{Change, ChangeFeed};
use tessera_core::model::{Role, User};
use tessera_core::scope::TokenType;
use tessera_core::store::{Store, TokenStore};
use tessera_core::testkit::{new_token, user, T0};
use tessera_sqlite::{SqliteConfig, SqliteStore};
use tessera_testsupport::feed::{
    every_token_write_is_heard, next_within, reads_for_the_cache, until_beat, Heard,
};
use tessera_testsupport::TempDir;

/// A fresh file's directory (removed when dropped), the file and its URL.
fn temp_db() -> (TempDir, std::path::PathBuf, String) {
    let dir = TempDir::new("tessera-sqlite-feed");
    let file = dir.path().join("tessera.db");
    let url = format!("sqlite://{}", file.display());
    (dir, file, url)
}

async fn open(url: &str) -> SqliteStore {
    SqliteStore::open(&SqliteConfig::new(url)).await.unwrap()
}

/// A store on a fresh file, the same as a `dyn Store`, and a user.
async fn with_user() -> (
    TempDir,
    std::path::PathBuf,
    Arc<SqliteStore>,
    Arc<dyn Store>,
    User,
) {
    let (dir, file, url) = temp_db();
    let store = Arc::new(open(&url).await);
    let as_store: Arc<dyn Store> = store.clone();
    let ann = user(&as_store, "ann", Role::User).await;
    (dir, file, store, as_store, ann)
}

#[tokio::test]
async fn every_token_write_is_heard_by_another_store() {
    let (_dir, _, url) = temp_db();
    let writer = Arc::new(open(&url).await);
    let listener = Arc::new(open(&url).await);
    every_token_write_is_heard(writer, listener, Heard::Itemised).await;
}

#[tokio::test]
async fn the_cache_reads_by_id() {
    let (_dir, _, url) = temp_db();
    reads_for_the_cache(Arc::new(open(&url).await)).await;
}

#[tokio::test]
async fn another_connections_commit_is_heard_and_other_tables_are_not() {
    let (_dir, file, store, as_store, ann) = with_user().await;
    let (t, _, _) = new_token(&as_store, &ann, TokenType::ALL).await;
    let mut stream = store.subscribe().await.unwrap();
    assert!(until_beat(&*store, &mut *stream).await.is_empty());
    // As another process would: a connection of its own, no store.
    let other = rusqlite::Connection::open(&file).unwrap();
    other
        .execute("UPDATE tokens SET name = name WHERE id = -1", [])
        .unwrap();
    other
        .execute("INSERT INTO events (at, kind) VALUES (1, 'x')", [])
        .unwrap();
    store
        .record_last_used(&[tessera_core::testkit::used(t.id, T0 + 5, "10.0.0.5")])
        .await
        .unwrap();
    assert_eq!(
        until_beat(&*store, &mut *stream).await,
        vec![],
        "no token row changed"
    );
    other
        .execute(
            "UPDATE tokens SET name = 'other' WHERE id = ?1",
            [t.id.0 as i64],
        )
        .unwrap();
    assert_eq!(
        until_beat(&*store, &mut *stream).await,
        vec![Change::Tokens(vec![t.id])]
    );
}

#[tokio::test]
async fn a_gap_in_the_log_is_heard_as_all() {
    let (_dir, file, store, as_store, ann) = with_user().await;
    let mut stream = store.subscribe().await.unwrap();
    let (t, _, _) = new_token(&as_store, &ann, TokenType::ALL).await;
    let (u, _, _) = new_token(&as_store, &ann, TokenType::ALL).await;
    // The first entry is pruned before the subscription read it.
    let other = rusqlite::Connection::open(&file).unwrap();
    let pruned = other
        .execute(
            "DELETE FROM token_changes WHERE token_id = ?1",
            [t.id.0 as i64],
        )
        .unwrap();
    assert_eq!(pruned, 1);
    let heard = until_beat(&*store, &mut *stream).await;
    assert!(heard.contains(&Change::All), "{heard:?} ({u:?})");
    // And the stream goes on from the newest entry.
    assert!(store.revoke_token(u.id, T0 + 1).await.unwrap());
    assert_eq!(
        until_beat(&*store, &mut *stream).await,
        vec![Change::Tokens(vec![u.id])]
    );
}

#[tokio::test]
async fn a_beat_comes_back() {
    let (_dir, _, url) = temp_db();
    let store = open(&url).await;
    let mut stream = store.subscribe().await.unwrap();
    store.beat("hello").await.unwrap();
    assert_eq!(
        next_within(&mut *stream).await.unwrap(),
        Change::Beat("hello".into())
    );
}

#[tokio::test]
async fn dropping_the_store_fails_its_subscriptions() {
    let (_dir, _, url) = temp_db();
    let store = open(&url).await;
    let mut stream = store.subscribe().await.unwrap();
    drop(store);
    assert!(next_within(&mut *stream).await.is_err());
    assert!(next_within(&mut *stream).await.is_err());
}

#[tokio::test]
async fn memory_databases_have_no_stream() {
    let store = open("sqlite::memory:").await;
    assert!(store.subscribe().await.is_err());
    store.beat("nobody hears it").await.unwrap();
}
