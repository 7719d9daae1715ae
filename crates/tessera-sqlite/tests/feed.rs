//! The change stream on SQLite: every token write made through a second
//! store on the file is heard (as `All`), and so is another connection's
//! commit; a beat comes back; dropping the store fails its subscriptions;
//! memory databases have no stream. And the cache's reads by id.

use std::sync::Arc;

use tessera_core::feed::{Change, ChangeFeed};
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

#[tokio::test]
async fn every_token_write_is_heard_by_another_store() {
    let (_dir, _, url) = temp_db();
    let writer = Arc::new(open(&url).await);
    let listener = Arc::new(open(&url).await);
    every_token_write_is_heard(writer, listener, Heard::All).await;
}

#[tokio::test]
async fn the_cache_reads_by_id() {
    let (_dir, _, url) = temp_db();
    reads_for_the_cache(Arc::new(open(&url).await)).await;
}

#[tokio::test]
async fn another_connections_commit_is_heard() {
    let (_dir, file, url) = temp_db();
    let store = open(&url).await;
    let mut stream = store.subscribe().await.unwrap();
    assert!(until_beat(&store, &mut *stream).await.is_empty());
    // As another process would: a connection of its own, no store.
    let other = rusqlite::Connection::open(&file).unwrap();
    other
        .execute("UPDATE tokens SET name = name WHERE id = -1", [])
        .unwrap();
    other
        .execute("INSERT INTO events (at, kind) VALUES (1, 'x')", [])
        .unwrap();
    assert!(until_beat(&store, &mut *stream)
        .await
        .contains(&Change::All));
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
