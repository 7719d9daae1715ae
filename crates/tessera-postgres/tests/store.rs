//! PostgreSQL-specific tests: no secret in any table, and faults — a closed
//! port answers `Unavailable` within the bound; a connection terminated
//! mid-run (`pg_terminate_backend`) fails calls as `Unavailable`, never as an
//! answer, and the store recovers by itself.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Column, Row, TypeInfo, ValueRef};
use tessera_core::store::{Store, TokenStore, UserStore};
use tessera_core::testkit::{assert_no_secrets, plant_secrets};
use tessera_postgres::{quote_ident, PostgresConfig, PostgresStore, PostgresStoreError};

#[tokio::test]
async fn no_secret_appears_in_any_table() {
    let Some((config, schema)) = common::fresh().await else {
        return;
    };
    let pg = common::open(&config).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let secrets = plant_secrets(&store).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(schema.name())
    .fetch_all(pg.pool())
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "tokens") && tables.iter().any(|t| t == "spent_refresh"));
    let mut dump = String::new();
    for table in &tables {
        // Every column as text (bytea shows as \x… hex), so nothing escapes the scan.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT t::text AS row FROM {}.{} t",
            quote_ident(schema.name()),
            quote_ident(table)
        ));
        for row in sqlx::query(sql).fetch_all(pg.pool()).await.unwrap() {
            dump.push_str(&row.get::<String, _>("row"));
            dump.push('\n');
        }
        // And the bytea columns raw, in case a secret were stored as bytes.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT * FROM {}.{}",
            quote_ident(schema.name()),
            quote_ident(table)
        ));
        for row in sqlx::query(sql).fetch_all(pg.pool()).await.unwrap() {
            for col in row.columns() {
                let raw = row.try_get_raw(col.ordinal()).unwrap();
                if !raw.is_null() && raw.type_info().name() == "BYTEA" {
                    let b: Vec<u8> = row.get(col.ordinal());
                    dump.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
    }
    assert_no_secrets(&dump, &secrets);
    drop(store);
    pg.pool().close().await;
    drop(schema);
}

#[tokio::test]
async fn a_closed_port_is_unavailable_within_the_bound() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = PostgresConfig {
        connect_timeout: Duration::from_secs(1),
        command_timeout: Duration::from_secs(1),
        ..PostgresConfig::new(format!("postgres://postgres@127.0.0.1:{port}/test"))
    };
    let started = Instant::now();
    let r = PostgresStore::open(&config).await;
    assert!(matches!(r, Err(PostgresStoreError::Connect(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded, not hanging"
    );
}

#[tokio::test]
async fn a_terminated_connection_is_unavailable_then_recovers() {
    let Some((mut config, schema)) = common::fresh().await else {
        return;
    };
    config.max_connections = 2;
    config.command_timeout = Duration::from_secs(2);
    let pg = common::open(&config).await;
    pg.user_by_name("nobody").await.unwrap();
    // Kill every backend of this test's pool from outside, mid-run.
    // A plain connection, not a store: opening a store would apply the
    // migrations to the database's default schema, outside this test's own.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(schema.base_url())
        .await
        .unwrap();
    let killed: i64 = sqlx::query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&config.application_name)
    .fetch_one(&mut admin)
    .await
    .unwrap()
    .get("n");
    assert!(killed >= 1, "the pool's connection was terminated");
    // The next call meets a terminated connection: Unavailable, never a
    // wrong answer, never a hang. Within a bounded time the store recovers
    // by itself (the broken connection is replaced).
    let started = Instant::now();
    let mut unavailable = 0;
    loop {
        let t0 = Instant::now();
        match pg.next_token_id().await {
            Ok(_) => break,
            Err(tessera_core::StoreError::Unavailable(_)) => unavailable += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "a call hung");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "did not recover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        unavailable >= 1,
        "no call met the terminated connection: the first one after it already succeeded"
    );
    assert!(pg.ping().await.is_ok());
    pg.pool().close().await;
    drop(schema);
}
