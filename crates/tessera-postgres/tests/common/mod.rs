//! Shared by the PostgreSQL test files: a store on a fresh schema per test
//! (`tessera_testsupport::postgres`: dropped afterwards; SKIPPED, or a
//! failure under CI, when the server is unreachable).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tessera_core::testkit::Fixture;
use tessera_postgres::{PostgresConfig, PostgresStore};
use tessera_testsupport::postgres::PgSchema;

/// A configuration on `schema`, with its own application name (so a test
/// can find its connections) and short timeouts.
pub fn config(schema: &PgSchema) -> PostgresConfig {
    PostgresConfig {
        schema: Some(schema.name().to_string()),
        application_name: schema.name().replace('_', "-"),
        connect_timeout: Duration::from_secs(5),
        ..PostgresConfig::new(schema.base_url())
    }
}

/// A fresh schema and a configuration on it, or `None` (SKIPPED).
pub async fn fresh() -> Option<(PostgresConfig, PgSchema)> {
    let schema = PgSchema::create("test").await?;
    Some((config(&schema), schema))
}

/// A store opened with `config`; panics if it cannot be (the server answered
/// a moment ago, when the schema was made).
pub async fn open(config: &PostgresConfig) -> PostgresStore {
    PostgresStore::open(config)
        .await
        .unwrap_or_else(|e| panic!("cannot open the store on {:?}: {e}", config.schema))
}

/// The conformance suite's factory.
pub async fn fresh_store() -> Option<Fixture> {
    let (config, schema) = fresh().await?;
    let store = open(&config).await;
    Some(Fixture::with_cleanup(
        Arc::new(store),
        Box::pin(async move { drop(schema) }),
    ))
}
