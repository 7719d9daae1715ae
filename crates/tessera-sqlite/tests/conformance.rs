//! The core's conformance suite on SQLite: a fresh database file per case,
//! in a temporary directory removed afterwards.

use std::sync::Arc;

use tessera_core::testkit::Fixture;
use tessera_sqlite::{SqliteConfig, SqliteStore};

async fn fresh_store() -> Option<Fixture> {
    let dir = std::env::temp_dir().join(format!(
        "tessera-sqlite-test-{}",
        tessera_core::testkit::unique_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("tessera.db").display());
    let store = SqliteStore::open(&SqliteConfig::new(url))
        .await
        .expect("open SQLite");
    Some(Fixture::with_cleanup(
        Arc::new(store),
        Box::pin(async move {
            let _ = std::fs::remove_dir_all(&dir);
        }),
    ))
}

tessera_core::conformance_suite!(fresh_store);
