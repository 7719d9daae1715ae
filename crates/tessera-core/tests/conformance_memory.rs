//! The conformance suite on `MemoryStore`, through the same macro every backend uses.

use std::sync::Arc;

use tessera_core::memory::MemoryStore;
use tessera_core::testkit::Fixture;

async fn fresh_store() -> Option<Fixture> {
    Some(Fixture::new(Arc::new(MemoryStore::new())))
}

tessera_core::conformance_suite!(fresh_store);

/// The scan helpers themselves: a dump holding a secret is caught.
#[tokio::test]
#[should_panic(expected = "appears")]
async fn assert_no_secrets_catches_a_secret() {
    let store: Arc<dyn tessera_core::store::Store> = Arc::new(MemoryStore::new());
    let secrets = tessera_core::testkit::plant_secrets(&store).await;
    let leaky = format!("row: {}", secrets[1]);
    tessera_core::testkit::assert_no_secrets(&leaky, &secrets);
}

/// A `Debug` dump of the memory store's records shows no secret.
#[tokio::test]
async fn memory_store_contents_hold_no_secret() {
    let store: Arc<dyn tessera_core::store::Store> = Arc::new(MemoryStore::new());
    let secrets = tessera_core::testkit::plant_secrets(&store).await;
    let mut dump = format!("{:?}", store.list_users().await.unwrap());
    for u in store.list_users().await.unwrap() {
        dump += &format!("{:?}", store.tokens_of_user(u.id).await.unwrap());
    }
    tessera_core::testkit::assert_no_secrets(&dump, &secrets);
}
