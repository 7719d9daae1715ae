//! Shared by the PostgreSQL test files: a fresh schema per test, dropped
//! afterwards; SKIPPED (or a failure under CI) when the server is unreachable.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use tessera_core::testkit::{skip, unique_suffix, Fixture};
use tessera_postgres::{quote_ident, PostgresConfig, PostgresStore};

/// The server the suites use (`TESSERA_TEST_POSTGRES_URL`).
pub fn url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A configuration with a fresh schema and short timeouts.
pub fn config() -> PostgresConfig {
    let suffix = unique_suffix();
    PostgresConfig {
        schema: Some(format!("tessera_test_{suffix}")),
        application_name: format!("tessera-test-{suffix}"),
        connect_timeout: Duration::from_secs(5),
        ..PostgresConfig::new(url())
    }
}

/// Drops `schema` with everything in it.
pub async fn drop_schema(schema: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(&url()).await {
        let sql = sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quote_ident(schema)
        ));
        let _ = sqlx::query(sql).execute(&mut conn).await;
    }
}

/// A test's schema, dropped when this goes out of scope — also when the
/// test panics, so a failing test leaves nothing behind.
pub struct Schema(pub String);

impl std::ops::Deref for Schema {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime: use a thread of its own.
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_schema(&name));
            }
        })
        .join();
    }
}

/// A store on a fresh schema, or `None` (SKIPPED) when PostgreSQL is unreachable.
pub async fn open(config: PostgresConfig) -> Option<(PostgresStore, Schema)> {
    let schema = Schema(config.schema.clone().unwrap_or_default());
    match PostgresStore::open(&config).await {
        Ok(store) => Some((store, schema)),
        Err(e) => {
            skip(&format!("PostgreSQL at {} unreachable: {e}", url()));
            None
        }
    }
}

/// The conformance suite's factory.
pub async fn fresh_store() -> Option<Fixture> {
    let (store, schema) = open(config()).await?;
    Some(Fixture::with_cleanup(
        Arc::new(store),
        Box::pin(async move { drop(schema) }),
    ))
}
