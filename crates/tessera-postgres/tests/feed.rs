//! The change stream on PostgreSQL: every token write made through a second
//! store on the schema is heard, itemised; a beat comes back after the
//! changes committed before it; more ids than a message names are `all`;
//! a schema hears only its own writes; a cut listener fails the stream.
//! And the cache's reads by id.

mod common;

use std::sync::Arc;

use sqlx::Row;
use tessera_core::feed::{Change, ChangeFeed, MAX_IDS_PER_MESSAGE};
use tessera_core::model::Role;
use tessera_core::scope::TokenType;
use tessera_core::store::Store;
use tessera_core::testkit::{new_token, user, T0};
use tessera_testsupport::feed::{
    every_token_write_is_heard, next_within, reads_for_the_cache, until_beat, Heard,
};

#[tokio::test]
async fn every_token_write_is_heard_by_another_store() {
    let Some((config, schema)) = common::fresh().await else {
        return;
    };
    let writer = Arc::new(common::open(&config).await);
    let listener = Arc::new(common::open(&config).await);
    every_token_write_is_heard(writer, listener, Heard::Itemised).await;
    drop(schema);
}

#[tokio::test]
async fn the_cache_reads_by_id() {
    let Some((config, schema)) = common::fresh().await else {
        return;
    };
    reads_for_the_cache(Arc::new(common::open(&config).await)).await;
    drop(schema);
}

#[tokio::test]
async fn a_beat_comes_back_after_the_changes_committed_before_it() {
    let Some((config, schema)) = common::fresh().await else {
        return;
    };
    let writer: Arc<dyn Store> = Arc::new(common::open(&config).await);
    let listener = common::open(&config).await;
    let ann = user(&writer, "ann", Role::User).await;
    let mut stream = listener.subscribe().await.unwrap();
    let (t, _, _) = new_token(&writer, &ann, TokenType::ALL).await;
    // Sent through the other store: one channel for every store on the schema.
    writer.beat("after-insert").await.unwrap();
    assert_eq!(
        next_within(&mut *stream).await.unwrap(),
        Change::Tokens(vec![t.id])
    );
    assert_eq!(
        next_within(&mut *stream).await.unwrap(),
        Change::Beat("after-insert".into())
    );
    drop(schema);
}

#[tokio::test]
async fn more_ids_than_a_message_names_are_all() {
    let Some((config, schema)) = common::fresh().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(common::open(&config).await);
    let mut stream = store.subscribe().await.unwrap();
    for (name, n) in [
        ("most", MAX_IDS_PER_MESSAGE),
        ("more", MAX_IDS_PER_MESSAGE + 1),
    ] {
        let owner = user(&store, name, Role::User).await;
        let mut ids = Vec::new();
        for _ in 0..n {
            ids.push(new_token(&store, &owner, TokenType::ALL).await.0.id);
        }
        until_beat(&*store, &mut *stream).await;
        // One statement revokes them all: one message.
        assert!(store.delete_user(owner.id, T0 + 1).await.unwrap());
        let heard = until_beat(&*store, &mut *stream).await;
        let expected = if n > MAX_IDS_PER_MESSAGE {
            Change::All
        } else {
            Change::Tokens(ids)
        };
        assert_eq!(heard, vec![expected], "{n} ids");
    }
    drop(schema);
}

#[tokio::test]
async fn a_schema_hears_only_its_own_writes() {
    let Some((config, schema)) = common::fresh().await else {
        return;
    };
    let Some((other_config, other_schema)) = common::fresh().await else {
        return;
    };
    let pg = common::open(&config).await;
    let other = common::open(&other_config).await;
    assert_ne!(pg.dialect().channel(), other.dialect().channel());
    let store: Arc<dyn Store> = Arc::new(pg);
    let mut stream = other.subscribe().await.unwrap();
    let ann = user(&store, "ann", Role::User).await;
    new_token(&store, &ann, TokenType::ALL).await;
    store.beat("not for the other schema").await.unwrap();
    assert!(until_beat(&other, &mut *stream).await.is_empty());
    drop((schema, other_schema));
}

#[tokio::test]
async fn channels_are_per_schema_and_fit_an_identifier() {
    let Some((config, schema)) = common::fresh().await else {
        return;
    };
    let store = common::open(&config).await;
    assert_eq!(
        store.dialect().channel(),
        format!("tessera_changes_{}", schema.name())
    );
    // A schema name too long for a channel: hashed, deterministic, and
    // accepted by pg_notify.
    let row = sqlx::query(
        "SELECT tessera_changes_channel(repeat('s', 200)) AS a, \
                tessera_changes_channel(repeat('s', 200)) AS b, \
                tessera_changes_channel(repeat('s', 199)) AS c, \
                pg_notify(tessera_changes_channel(repeat('é', 100)), 'x')::text AS sent",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let (a, b, c): (String, String, String) = (row.get("a"), row.get("b"), row.get("c"));
    assert!(a.len() <= 63 && c.len() <= 63, "{a} {c}");
    assert_eq!(a, b);
    assert_ne!(a, c);
    drop(schema);
}

#[tokio::test]
async fn a_cut_listener_fails_the_stream() {
    let Some((config, schema)) = common::fresh().await else {
        return;
    };
    let store = common::open(&config).await;
    let mut stream = store.subscribe().await.unwrap();
    until_beat(&store, &mut *stream).await;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(schema.base_url())
        .await
        .unwrap();
    // This schema's listener only: its application name, its LISTEN.
    let killed: i64 = sqlx::query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE application_name = $1 AND query ILIKE 'LISTEN%' AND strpos(query, $2) > 0",
    )
    .bind(&config.application_name)
    .bind(store.dialect().channel())
    .fetch_one(&mut admin)
    .await
    .unwrap()
    .get("n");
    assert_eq!(killed, 1, "the listener's backend");
    assert!(
        next_within(&mut *stream).await.is_err(),
        "a cut is an error"
    );
    // And stays one: no silent reconnection.
    assert!(next_within(&mut *stream).await.is_err());
    // A new subscription works.
    let mut stream = store.subscribe().await.unwrap();
    until_beat(&store, &mut *stream).await;
    drop(schema);
}
