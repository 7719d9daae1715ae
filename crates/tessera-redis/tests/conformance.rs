//! The core's conformance suite against a real Redis (`TESSERA_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`), one fresh key prefix per case.

mod common;

tessera_core::conformance_suite!(common::fresh_store);
