//! The core's conformance suite on PostgreSQL, a fresh schema per case.

mod common;

tessera_core::conformance_suite!(common::fresh_store);
