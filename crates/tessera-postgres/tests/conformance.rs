//! The core's conformance and cache suites on PostgreSQL, a fresh schema
//! per case (the cache cases' two nodes: two stores on it).

mod common;

tessera_core::conformance_suite!(common::fresh_store);
tessera_core::cache_suite!(common::fresh_store);
