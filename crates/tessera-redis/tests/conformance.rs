//! The core's conformance and cache suites against a real Redis
//! (`TESSERA_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), one fresh
//! key prefix per case (the cache cases' two nodes: two stores on it); and
//! the same suites on a real Redis Cluster (`TESSERA_TEST_REDIS_CLUSTER_URL`,
//! three masters with a replica each, started by `cargo xtask test`).

mod common;

tessera_core::conformance_suite!(common::fresh_store);
tessera_core::cache_suite!(common::fresh_store);

/// The same cases on the Cluster.
mod cluster {
    use super::common;

    tessera_core::conformance_suite!(common::fresh_cluster_store);
    tessera_core::cache_suite!(common::fresh_cluster_store);
}
