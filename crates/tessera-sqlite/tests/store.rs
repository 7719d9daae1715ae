//! SQLite-specific tests: no secret in the raw database (tables and the file
//! bytes themselves), memory databases, and faults (a bad path; a lock held
//! by another process makes calls `Unavailable` within the bound, and the
//! store recovers by itself when it is released).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Column, Row, TypeInfo, ValueRef};
use tessera_core::store::{Store, TokenStore, UserStore};
use tessera_core::testkit::{assert_no_secrets, plant_secrets, unique_suffix};
use tessera_core::StoreError;
use tessera_sqlite::{SqliteConfig, SqliteStore};

fn temp_db() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("tessera-sqlite-test-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("tessera.db").display());
    (dir, url)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn no_secret_appears_in_any_table_or_in_the_file() {
    let (dir, url) = temp_db();
    let sqlite = SqliteStore::open(&SqliteConfig::new(&url)).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let secrets = plant_secrets(&store).await;

    let mut dump = String::new();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(sqlite.pool())
            .await
            .unwrap();
    assert!(tables.iter().any(|t| t == "tokens") && tables.iter().any(|t| t == "sessions"));
    for table in &tables {
        let sql = sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\""));
        for row in sqlx::query(sql).fetch_all(sqlite.pool()).await.unwrap() {
            for col in row.columns() {
                let raw = row.try_get_raw(col.ordinal()).unwrap();
                if raw.is_null() {
                    continue;
                }
                let shown = match raw.type_info().name() {
                    "BLOB" => {
                        let b: Vec<u8> = row.get(col.ordinal());
                        format!("{} {}", hex(&b), String::from_utf8_lossy(&b))
                    }
                    "TEXT" => row.get::<String, _>(col.ordinal()),
                    _ => row.get::<i64, _>(col.ordinal()).to_string(),
                };
                dump.push_str(&shown);
                dump.push('\n');
            }
        }
    }
    assert_no_secrets(&dump, &secrets);

    // The bytes on disk too (database and write-ahead log).
    drop(store);
    sqlite.pool().close().await;
    let mut disk = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        disk.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert_no_secrets(&String::from_utf8_lossy(&disk), &secrets);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn memory_databases_work() {
    let store = SqliteStore::open(&SqliteConfig::new("sqlite::memory:"))
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert!(!store.has_users().await.unwrap());
}

#[tokio::test]
async fn a_path_that_cannot_be_opened_is_an_error() {
    let url = format!("sqlite:///nonexistent-{}/dir/tessera.db", unique_suffix());
    let err = SqliteStore::open(&SqliteConfig::new(url))
        .await
        .unwrap_err();
    assert!(
        matches!(err, tessera_sqlite::SqliteStoreError::Open(_)),
        "{err}"
    );
}

#[tokio::test]
async fn a_held_lock_makes_writes_unavailable_within_the_bound_then_recovers() {
    let (dir, url) = temp_db();
    let config = SqliteConfig {
        busy_timeout: Duration::from_millis(300),
        command_timeout: Duration::from_secs(2),
        ..SqliteConfig::new(&url)
    };
    let store = SqliteStore::open(&config).await.unwrap();
    // Another process's exclusive lock, simulated by a second pool.
    let other = SqliteStore::open(&SqliteConfig::new(&url)).await.unwrap();
    let mut conn = other.pool().acquire().await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut *conn)
        .await
        .unwrap();

    let started = Instant::now();
    let r = store.next_token_id().await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded, not hanging"
    );

    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    drop(conn);
    // No restart: the same store works again.
    assert!(store.next_token_id().await.is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
