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

/// The conformance and cache suites' factory: a second node is a second
/// store on the schema; a cut terminates the backends of this schema's
/// listeners (its application name, its `LISTEN`).
pub async fn fresh_store() -> Option<Fixture> {
    let (config, schema) = fresh().await?;
    let store = open(&config).await;
    let channel = store.dialect().channel().to_string();
    let base = schema.base_url().to_string();
    let (reopen_config, cut_config) = (config.clone(), config.clone());
    let reopen: tessera_core::testkit::nodes::Reopen = Arc::new(move || {
        let config = reopen_config.clone();
        Box::pin(async move {
            let store: Arc<dyn tessera_core::store::Store> = Arc::new(open(&config).await);
            store
        })
    });
    let cut: tessera_core::testkit::nodes::Cut = Arc::new(move || {
        let (base, app, channel) = (
            base.clone(),
            cut_config.application_name.clone(),
            channel.clone(),
        );
        Box::pin(async move {
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
                .await
                .expect("an admin connection");
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1 AND query ILIKE 'LISTEN%' AND strpos(query, $2) > 0",
            )
            .bind(app)
            .bind(channel)
            .execute(&mut admin)
            .await
            .expect("terminating the listeners");
        })
    });
    Some(
        Fixture::with_cleanup(Arc::new(store), Box::pin(async move { drop(schema) }))
            .with_nodes(reopen, Some(cut)),
    )
}
