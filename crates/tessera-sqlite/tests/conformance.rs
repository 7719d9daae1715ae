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
    let store = SqliteStore::open(&SqliteConfig::new(url.clone()))
        .await
        .expect("open SQLite");
    // A second node is a second store on the same file (as a second process
    // would open it). Its stream (data_version, polled) cannot be cut from
    // outside: the cut case does not apply.
    let reopen: tessera_core::testkit::nodes::Reopen = Arc::new(move || {
        let url = url.clone();
        Box::pin(async move {
            let store: Arc<dyn tessera_core::store::Store> = Arc::new(
                SqliteStore::open(&SqliteConfig::new(url))
                    .await
                    .expect("open SQLite again"),
            );
            store
        })
    });
    Some(
        Fixture::with_cleanup(
            Arc::new(store),
            Box::pin(async move {
                let _ = std::fs::remove_dir_all(&dir);
            }),
        )
        .with_nodes(reopen, None),
    )
}

tessera_core::conformance_suite!(fresh_store);
tessera_core::cache_suite!(fresh_store);
