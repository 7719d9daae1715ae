//! The end-to-end harness, on `tessera_testsupport`: a real `tessera`
//! process on a random port per test, on a fresh store (a temporary SQLite
//! file; a PostgreSQL schema or a Redis key prefix when those backends are
//! compiled in and reachable), removed afterwards. Readiness is the line the
//! server prints when it listens, never a fixed sleep. The server derefs to
//! its typed client (`s.login(…)`, `s.token(…)`, `s.check(…)`).

// Each suite uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod proxy;

use std::process::Command;

use serde_json::Value;
pub use tessera_testsupport::client::base64;
pub use tessera_testsupport::process;
pub use tessera_testsupport::server::signal;
pub use tessera_testsupport::{Answer, Client, Launch, Server, StoreFixture, TempDir, Token};

/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "admin-pw-for-tests";

/// A temporary SQLite file.
pub fn sqlite() -> StoreFixture {
    StoreFixture::sqlite("tessera-e2e")
}

/// A fresh PostgreSQL schema, or `None` (SKIPPED; a failure under CI).
#[cfg(feature = "postgres")]
pub async fn postgres() -> Option<StoreFixture> {
    StoreFixture::postgres("e2e").await
}

/// A fresh Redis key prefix, or `None` (SKIPPED; a failure under CI).
#[cfg(feature = "redis")]
pub async fn redis() -> Option<StoreFixture> {
    StoreFixture::redis("e2e").await
}

/// A fresh key prefix on the suites' Redis Cluster, or `None` (SKIPPED; a
/// failure under CI).
#[cfg(feature = "redis")]
pub async fn redis_cluster() -> Option<StoreFixture> {
    StoreFixture::redis_cluster("e2e").await
}

/// Every backend compiled in and reachable, each fresh.
pub async fn all_stores() -> Vec<StoreFixture> {
    #[allow(unused_mut)]
    let mut v = vec![sqlite()];
    #[cfg(feature = "postgres")]
    v.extend(postgres().await);
    #[cfg(feature = "redis")]
    v.extend(redis().await);
    v
}

/// The `tessera` binary built with this test, or the one `TESSERA_TEST_BINARY`
/// names (to run the suites against another build, e.g. to see a new test
/// fail on the code before a fix).
pub fn binary() -> String {
    std::env::var("TESSERA_TEST_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tessera").to_string())
}

/// `tessera serve` over `store` as the suites start it: the admin password
/// [`ADMIN_PASSWORD`] for a first start, `info` logs. Not started yet.
pub fn launch(store: &StoreFixture) -> Launch {
    Launch::new(binary(), store)
        .admin_password(ADMIN_PASSWORD)
        .env("TESSERA_LOG", "info")
}

/// Starts `tessera serve` on a random port over `store`, with `extra` arguments.
pub fn spawn(store: &StoreFixture, extra: &[&str]) -> Server {
    launch(store)
        .args(extra)
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Imports legacy tokens (one JSON object per `lines` entry) into `store`
/// with `tessera import-legacy`, while no server runs; panics on failure.
/// The file exists only for the import.
pub fn import_legacy(store: &StoreFixture, lines: &[Value]) {
    let out = run_import(store, lines);
    assert!(
        out.status.success(),
        "import-legacy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tessera import-legacy` of `lines` into `store`: what it did.
pub fn run_import(store: &StoreFixture, lines: &[Value]) -> std::process::Output {
    let dir = TempDir::new("tessera-legacy");
    let file = dir.join("legacy.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    Command::new(binary())
        .args([
            "import-legacy",
            file.to_str().unwrap(),
            "--store",
            &store.url,
        ])
        .args(&store.args)
        .output()
        .unwrap()
}
