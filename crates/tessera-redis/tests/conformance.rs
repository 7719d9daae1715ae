//! The core's conformance suite against a real Redis (`TESSERA_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`), one fresh key prefix per case.

mod common;

use std::sync::Arc;

use tessera_core::testkit::Fixture;

async fn fresh_store() -> Option<Fixture> {
    let url = common::redis_url();
    let prefix = common::fresh_prefix();
    let store = match common::connect(&url, &prefix).await {
        Ok(store) => store,
        Err(e) => {
            return tessera_core::testkit::skip(&format!("Redis at {url} unreachable: {e}"));
        }
    };
    Some(Fixture::with_cleanup(
        Arc::new(store),
        Box::pin(async move { common::delete_prefix(&url, &prefix).await }),
    ))
}

tessera_core::conformance_suite!(fresh_store);
