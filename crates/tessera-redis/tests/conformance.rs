//! The core's conformance and cache suites against a real Redis
//! (`TESSERA_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), one fresh
//! key prefix per case (the cache cases' two nodes: two stores on it).

mod common;

tessera_core::conformance_suite!(common::fresh_store);
tessera_core::cache_suite!(common::fresh_store);
