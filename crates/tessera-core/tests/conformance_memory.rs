//! The conformance and cache suites on `MemoryStore`, through the same macros every backend uses.

use std::sync::Arc;

use tessera_core::memory::MemoryStore;
use tessera_core::testkit::Fixture;

async fn fresh_store() -> Option<Fixture> {
    let memory = Arc::new(MemoryStore::new());
    let shared = memory.clone();
    let cut = memory.clone();
    // Two handles on one MemoryStore are two nodes over one database.
    Some(Fixture::new(memory).with_nodes(
        Arc::new(move || {
            let store: Arc<dyn tessera_core::store::Store> = shared.clone();
            Box::pin(async move { store })
        }),
        Some(Arc::new(move || {
            cut.cut_streams();
            Box::pin(async {})
        })),
    ))
}

tessera_core::conformance_suite!(fresh_store);
tessera_core::cache_suite!(fresh_store);

/// The scan helpers themselves: a dump holding a secret is caught.
#[tokio::test]
#[should_panic(expected = "appears")]
async fn assert_no_secrets_catches_a_secret() {
    let store: Arc<dyn tessera_core::store::Store> = Arc::new(MemoryStore::new());
    let secrets = tessera_core::testkit::plant_secrets(&store).await;
    let leaky = format!("row: {}", secrets[1]);
    tessera_core::testkit::assert_no_secrets(&leaky, &secrets);
}

/// Everything the memory store holds shows no secret: its whole state as
/// `Debug` prints it (users, sessions, tokens, spent refresh digests, every
/// index, the events), and the fields `Debug` redacts as they are stored
/// (password hashes, digests), which would otherwise hide a secret kept there.
#[tokio::test]
async fn memory_store_contents_hold_no_secret() {
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn tessera_core::store::Store> = memory.clone();
    let secrets = tessera_core::testkit::plant_secrets(&store).await;
    let mut dump = format!("{memory:?}\n");
    for u in store.list_users().await.unwrap() {
        if let Some(hash) = &u.password {
            dump += &format!("{} password {}\n", u.name, hash.as_phc());
        }
        for t in store.tokens_of_user(u.id).await.unwrap() {
            let digests = std::iter::once(t.access_digest).chain(t.refresh_digest);
            for d in digests {
                dump += &format!("token {} digest {} ", t.id.0, d.to_hex());
                dump += &String::from_utf8_lossy(d.as_bytes());
                dump.push('\n');
            }
        }
    }
    // The dump holds what was planted: a session, tokens of each user, hashes.
    for part in ["sessions", "spent", "events", "password $argon2id$"] {
        assert!(dump.contains(part), "no {part} in the dump:\n{dump}");
    }
    tessera_core::testkit::assert_no_secrets(&dump, &secrets);
}
