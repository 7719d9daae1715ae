//! The conformance suite on `MemoryStore`, through the same macro every backend uses.

use std::sync::Arc;

use tessera_core::memory::MemoryStore;
use tessera_core::testkit::Fixture;

async fn fresh_store() -> Option<Fixture> {
    Some(Fixture::new(Arc::new(MemoryStore::new())))
}

tessera_core::conformance_suite!(fresh_store);
