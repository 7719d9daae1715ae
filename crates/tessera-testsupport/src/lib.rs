//! Tessera's test support, for the suites and `cargo xtask` only (never
//! published): one implementation of each thing the tests and the benchmark
//! both need.
//!
//! * [`postgres`], [`redis`]: a fresh PostgreSQL schema or Redis key prefix
//!   per test, removed when dropped; an unreachable server is SKIPPED, or a
//!   failure under CI ([`skip`], the rule of `tessera_core::testkit`);
//! * [`feed`]: what a node's cache needs of a store, the same test for
//!   every backend (every token write heard on another store value's change
//!   stream; the reads by id);
//! * [`store`]: a fresh store for a `tessera` process (a temporary SQLite
//!   file, a schema, a prefix) as the URL and arguments `serve` takes;
//! * [`server`]: `tessera serve` on a random port, ready when it says it
//!   listens, stopped when dropped;
//! * [`client`]: a typed HTTP client for the REST API (login, tokens, users,
//!   the check), and the raw request for hostile input;
//! * [`cluster`]: a real Redis Cluster on loopback ports (three masters,
//!   with replicas when asked), removed when dropped;
//! * [`proxy`]: finding a proxy's binary, a free port, our own nginx;
//! * [`fleet`]: several `tessera` nodes over one store behind nginx,
//!   round-robin (a node killed, a node added);
//! * [`process`]: waiting for a child process with a deadline;
//! * [`temp`]: a temporary directory removed when dropped.

pub mod client;
pub mod cluster;
pub mod feed;
pub mod fleet;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod server;
pub mod store;
pub mod temp;

pub use client::{Answer, Client, Token};
pub use fleet::Fleet;
pub use server::{Launch, Server};
pub use store::StoreFixture;
pub use temp::TempDir;
/// The skip-or-fail rule: `SKIPPED: <reason>` on a developer's machine, a
/// panic under CI (`CI=true` or `TESSERA_REQUIRE_BACKENDS=1`).
pub use tessera_core::testkit::{backends_required, skip, unique_suffix};

/// The `Ok` value; after an `Err`, `None` once the skip-or-fail rule has
/// been applied to the reason ([`skip`]: SKIPPED, or a panic under CI).
pub fn or_skip<T>(result: Result<T, String>) -> Option<T> {
    result.map_err(|reason| skip(&reason)).ok()
}
