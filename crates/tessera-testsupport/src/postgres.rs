//! A fresh PostgreSQL schema per test (or benchmark run), dropped with
//! everything in it when the [`PgSchema`] is dropped, also when the test
//! panics.

use sqlx::Connection;

/// The server the suites use: `TESSERA_TEST_POSTGRES_URL`, else the local default.
pub fn url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Quotes an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A schema of its own on the test server.
#[derive(Debug)]
pub struct PgSchema {
    base: String,
    name: String,
}

impl PgSchema {
    /// Creates `tessera_<label>_<16 hex digits>` on [`url`]; the error says
    /// why the server cannot be used.
    pub async fn try_create(label: &str) -> Result<PgSchema, String> {
        let base = url();
        let name = format!("tessera_{label}_{}", crate::unique_suffix());
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .map_err(|e| format!("PostgreSQL at {base} unreachable: {e}"))?;
        let sql = sqlx::AssertSqlSafe(format!("CREATE SCHEMA {}", quote(&name)));
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot create schema {name} at {base}: {e}"))?;
        let _ = conn.close().await;
        Ok(PgSchema { base, name })
    }

    /// [`PgSchema::try_create`], or `None` after `SKIPPED: …` (a panic under CI).
    pub async fn create(label: &str) -> Option<PgSchema> {
        crate::or_skip(PgSchema::try_create(label).await)
    }

    /// The schema's name (unquoted).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's URL, without the schema.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A URL whose connections use this schema (`options[search_path]`), as
    /// `tessera serve --store` takes it.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={}", self.base, self.name)
    }

    /// Drops the schema now; the error says why it could not be.
    pub async fn drop_now(&self) -> Result<(), String> {
        drop_schema(&self.base, &self.name).await
    }
}

/// `DROP SCHEMA … CASCADE` of `name` on the server at `base`.
async fn drop_schema(base: &str, name: &str) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .map_err(|e| e.to_string())?;
    let sql = sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(name)));
    let r = sqlx::query(sql).execute(&mut conn).await;
    let _ = conn.close().await;
    r.map(|_| ()).map_err(|e| e.to_string())
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop may run inside a test's runtime: clean up on a thread with a
        // small runtime of its own.
        let (base, name) = (self.base.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                if let Err(e) = rt.block_on(drop_schema(&base, &name)) {
                    eprintln!("cannot drop schema {name}: {e}");
                }
            }
        })
        .join();
    }
}
