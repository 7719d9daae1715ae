//! What a node's cache needs of a store, tested the same way on every
//! backend: every token write made through one store value is heard on
//! another's change stream ([`every_token_write_is_heard`]), and the cache's
//! reads by id ([`reads_for_the_cache`]).
//!
//! No fixed sleeps: a heartbeat is the barrier. [`until_beat`] reads a
//! stream until a beat sent now comes back; by the stream's promise every
//! change committed before it has then been delivered.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::feed::{Change, ChangeStream};
use tessera_core::model::{Role, RotateOutcome, TokenChanges, TokenId, TokenRecord};
use tessera_core::scope::TokenType;
use tessera_core::secret::Digest;
use tessera_core::store::{Store, StoreResult};
use tessera_core::testkit::{new_token, rotation, unique_suffix, user, T0};

/// How long a test waits for any one message.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The stream's next message within [`PATIENCE`]; panics past it.
pub async fn next_within(stream: &mut dyn ChangeStream) -> StoreResult<Change> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .unwrap_or_else(|_| panic!("no message within {PATIENCE:?}"))
}

/// Sends a beat through `feed` and reads `stream` until it comes back:
/// every change delivered before it (other beats left out).
pub async fn until_beat(feed: &dyn Store, stream: &mut dyn ChangeStream) -> Vec<Change> {
    let text = format!("barrier-{}", unique_suffix());
    feed.beat(&text).await.expect("beat");
    let mut heard = Vec::new();
    loop {
        match next_within(stream).await.expect("the stream failed") {
            Change::Beat(t) if t == text => return heard,
            Change::Beat(_) => {}
            change => heard.push(change),
        }
    }
}

/// What a backend's stream says of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// The ids it changed (PostgreSQL, Redis, memory).
    Itemised,
    /// That anything may have changed (SQLite).
    All,
}

/// Asserts that `heard` announces exactly `ids` (or, for [`Heard::All`],
/// says `All`).
fn assert_heard(what: &str, heard: &[Change], ids: &[TokenId], style: Heard) {
    match style {
        Heard::All => assert!(
            heard.contains(&Change::All),
            "{what}: expected All, heard {heard:?}"
        ),
        Heard::Itemised => {
            let mut named = BTreeSet::new();
            for c in heard {
                match c {
                    Change::Tokens(t) => named.extend(t.iter().copied()),
                    other => panic!("{what}: expected ids, heard {other:?}"),
                }
            }
            let wanted: BTreeSet<TokenId> = ids.iter().copied().collect();
            assert_eq!(named, wanted, "{what}: heard {heard:?}");
        }
    }
}

/// A legacy record like `t`, with a fresh id and digest, unrevoked.
async fn legacy_copy(store: &Arc<dyn Store>, t: &TokenRecord) -> TokenRecord {
    let id = store.next_token_id().await.unwrap();
    TokenRecord {
        id,
        name: format!("legacy {}", id.0),
        access_digest: Digest::of(&format!("legacy secret {}", unique_suffix())),
        refresh_digest: None,
        renewable_until: None,
        legacy: true,
        revoked_at: None,
        ..t.clone()
    }
}

/// Every kind of token write (create, edit, revoke, rotation, a user's
/// deletion, sweep, legacy import), made through `writer`, is heard on a
/// subscription of `listener` (another store value on the same data),
/// as `style` says; and nothing else is heard between them.
pub async fn every_token_write_is_heard(
    writer: Arc<dyn Store>,
    listener: Arc<dyn Store>,
    style: Heard,
) {
    let ann = user(&writer, "ann", Role::User).await;
    let bob = user(&writer, "bob", Role::User).await;
    let mut stream = listener.subscribe().await.expect("subscribe");
    let s = &mut *stream;
    until_beat(&*listener, s).await;

    let (t, _, refresh) = new_token(&writer, &ann, TokenType::ALL).await;
    assert_heard("create", &until_beat(&*listener, s).await, &[t.id], style);

    let edit = TokenChanges {
        id: t.id,
        name: "renamed".into(),
        scope: t.scope.clone(),
        allowed_ips: t.allowed_ips.clone(),
        access_expires_at: t.access_expires_at,
        renewable_until: t.renewable_until,
        ends_at: t.ends_at,
        rate_limit: None,
    };
    assert!(writer.update_token(&edit).await.unwrap());
    assert_heard("edit", &until_beat(&*listener, s).await, &[t.id], style);

    let refresh = refresh.expect("a refreshable token");
    let (rot, _, _) = rotation(&t, &refresh, T0 + 3600);
    let rotated = writer.rotate(&rot).await.unwrap();
    assert!(matches!(rotated, RotateOutcome::Rotated(_)), "{rotated:?}");
    assert_heard("rotation", &until_beat(&*listener, s).await, &[t.id], style);

    let (doomed, _, _) = new_token(&writer, &ann, TokenType::ALL).await;
    until_beat(&*listener, s).await;
    assert!(writer.revoke_token(doomed.id, T0 + 5).await.unwrap());
    assert_heard(
        "revoke",
        &until_beat(&*listener, s).await,
        &[doomed.id],
        style,
    );

    let (b1, _, _) = new_token(&writer, &bob, TokenType::ALL).await;
    let (b2, _, _) = new_token(&writer, &bob, TokenType::ALL).await;
    until_beat(&*listener, s).await;
    assert!(writer.delete_user(bob.id, T0 + 5).await.unwrap());
    let bobs = [b1.id, b2.id];
    assert_heard(
        "delete user",
        &until_beat(&*listener, s).await,
        &bobs,
        style,
    );

    // Revoked before T0 + 6: the revoked token and bob's.
    let swept = writer.sweep(T0 + 6, T0 - 1).await.unwrap();
    assert_eq!(swept, 3);
    let gone = [doomed.id, b1.id, b2.id];
    assert_heard("sweep", &until_beat(&*listener, s).await, &gone, style);

    let legacy = [
        legacy_copy(&writer, &t).await,
        legacy_copy(&writer, &t).await,
    ];
    until_beat(&*listener, s).await;
    writer.import_legacy(&legacy).await.unwrap();
    let imported = [legacy[0].id, legacy[1].id];
    assert_heard("import", &until_beat(&*listener, s).await, &imported, style);
}

/// The cache's reads: `token_for_check` finds a record by id whatever the
/// presented digest, revoked ones too, and nothing for ids no row can have;
/// `highest_token_id` is none on an empty store, then at least every
/// inserted id.
pub async fn reads_for_the_cache(store: Arc<dyn Store>) {
    assert_eq!(store.highest_token_id().await.unwrap(), None);
    let ann = user(&store, "ann", Role::User).await;
    let (t, _, _) = new_token(&store, &ann, TokenType::ALL).await;
    let (u, _, _) = new_token(&store, &ann, TokenType::ALL).await;
    let highest = store.highest_token_id().await.unwrap().expect("a bound");
    assert!(highest >= t.id && highest >= u.id, "{highest:?}");

    let found = store.token_for_check(t.id).await.unwrap().expect("found");
    assert_eq!(*found, t);
    assert!(store.revoke_token(t.id, T0 + 1).await.unwrap());
    let found = store.token_for_check(t.id).await.unwrap().expect("found");
    assert_eq!(found.revoked_at, Some(T0 + 1));
    assert_eq!(
        store.token_for_check(TokenId(u.id.0 + 1000)).await.unwrap(),
        None
    );
    assert_eq!(
        store.token_for_check(TokenId(u64::MAX)).await.unwrap(),
        None
    );
    assert_eq!(store.token_for_check(TokenId(0)).await.unwrap(), None);
}
