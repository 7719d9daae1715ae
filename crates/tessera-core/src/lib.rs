//! Tessera's core: the policy, the model, scope and address matching, the
//! secret format and the storage contract. No I/O beyond the storage traits:
//! this crate knows nothing of HTTP, SQL or Redis.
//!
//! Map (see `docs/ARCHITECTURE.md`):
//! * [`model`] — users, sessions, tokens, events (not `Serialize`);
//!   [`audit`] — where the service tells of the events it recorded;
//! * [`policy`] — CONTRACT §2–§4 as functions of a configuration and `now`;
//!   [`lockout`] — the login lock-out rule (CONTRACT §6);
//! * [`secret`] — secret generation, recognition and digests; passwords;
//! * [`path`], [`scope`], [`address`] — what a token may call, from where;
//! * [`check`] — the hot-path check; [`cache`] — its exact local cache of
//!   token records, kept exact by [`feed`], the store's change stream;
//! * [`service`] — every operation, composed from the above over a store;
//! * [`store`] — the storage traits; [`stored`] — the flat form backends keep;
//!   [`memory`] — the in-memory store;
//! * [`clock`] — injected time; [`error`] — the crate's errors;
//! * `testkit` (feature) — the conformance suite every backend runs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod audit;
pub mod cache;
pub mod check;
pub mod clock;
pub mod error;
pub mod feed;
pub mod lockout;
pub mod memory;
pub mod model;
pub mod notify;
pub mod path;
pub mod policy;
pub mod scope;
pub mod secret;
pub mod service;
pub mod store;
pub mod stored;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, Result, StoreError};
