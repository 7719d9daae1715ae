//! The change stream over Redis pub/sub: every write of a token record made
//! through one store handle is announced to a subscription made through
//! another on the same prefix, atomically with the write and in order;
//! heartbeats come back through the same channel; a subscription whose
//! connection is killed fails instead of ending quietly or reconnecting.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::feed::{Change, ChangeFeed, ChangeStream, MAX_IDS_PER_MESSAGE};
use tessera_core::model::{Role, RotateOutcome, TokenChanges, TokenId, TokenRecord, User};
use tessera_core::scope::TokenType;
use tessera_core::secret::Digest;
use tessera_core::store::{Store, TokenStore};
use tessera_core::testkit::{new_token, rotation, user, T0};
use tessera_core::StoreError;
use tessera_redis::RedisStore;
use tessera_testsupport::feed::{every_token_write_is_heard, reads_for_the_cache, Heard};

/// A bound on waiting for a message, not a performance target.
const WAIT: Duration = Duration::from_secs(10);

/// Two handles on one fresh prefix: `reader` subscribes, `writer` writes;
/// and the prefix (its keys deleted when dropped).
struct Bed {
    reader: RedisStore,
    writer: Arc<dyn Store>,
    prefix: common::RedisPrefix,
}

async fn bed() -> Option<Bed> {
    let (reader, prefix) = common::open().await?;
    let writer = RedisStore::connect(common::config(&prefix)).await.unwrap();
    Some(Bed {
        reader,
        writer: Arc::new(writer),
        prefix,
    })
}

/// A [`bed`] with a subscription made through `reader`, and a user.
async fn subscribed(name: &str) -> Option<(Bed, Box<dyn ChangeStream>, User)> {
    let bed = bed().await?;
    let stream = bed.reader.subscribe().await.unwrap();
    let u = user(&bed.writer, name, Role::User).await;
    Some((bed, stream, u))
}

/// The stream's next message, within [`WAIT`].
async fn next(stream: &mut Box<dyn ChangeStream>) -> Change {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap_or_else(|_| panic!("no message within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("the stream failed: {e:?}"))
}

fn tokens(ids: &[TokenId]) -> Change {
    Change::Tokens(ids.to_vec())
}

/// Proves that nothing was published since the last message read: a beat
/// sent now is the next message.
async fn nothing_since(bed: &Bed, stream: &mut Box<dyn ChangeStream>, label: &str) {
    bed.writer.beat(label).await.unwrap();
    assert_eq!(next(stream).await, Change::Beat(label.into()), "{label}");
}

#[tokio::test]
async fn inserts_edits_rotations_and_revocations_are_announced() {
    let Some((bed, mut stream, u)) = subscribed("alice").await else {
        return;
    };
    let w = &bed.writer;
    nothing_since(&bed, &mut stream, "a user is no token").await;

    let (t, _, refresh) = new_token(w, &u, TokenType::ALL).await;
    assert_eq!(next(&mut stream).await, tokens(&[t.id]), "insert");
    assert!(w.insert_token(&t).await.is_err());
    nothing_since(&bed, &mut stream, "a refused insert").await;

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
    assert!(w.update_token(&edit).await.unwrap());
    assert_eq!(next(&mut stream).await, tokens(&[t.id]), "edit");

    let (rot, _, _) = rotation(&t, &refresh.unwrap(), T0 + 3600);
    assert!(matches!(
        w.rotate(&rot).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    assert_eq!(next(&mut stream).await, tokens(&[t.id]), "rotation");
    assert!(!matches!(
        w.rotate(&rot).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    nothing_since(&bed, &mut stream, "a refused rotation").await;

    // Last uses are not security-relevant: not announced.
    w.record_last_used(&[tessera_core::testkit::used(t.id, T0 + 5, "10.0.0.5")])
        .await
        .unwrap();
    nothing_since(&bed, &mut stream, "a last use").await;

    assert!(w.revoke_token(t.id, T0 + 20).await.unwrap());
    assert_eq!(next(&mut stream).await, tokens(&[t.id]), "revocation");
    assert!(!w.revoke_token(t.id, T0 + 30).await.unwrap());
    assert!(!w.update_token(&edit).await.unwrap());
    nothing_since(&bed, &mut stream, "writes to a revoked token").await;
}

#[tokio::test]
async fn deleting_a_user_and_sweeping_are_announced_token_by_token() {
    let Some((bed, mut stream, u)) = subscribed("bob").await else {
        return;
    };
    let w = &bed.writer;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (t, _, _) = new_token(w, &u, TokenType::SCIM).await;
        assert_eq!(next(&mut stream).await, tokens(&[t.id]));
        ids.push(t.id);
    }
    assert!(w.revoke_token(ids[0], T0 + 1).await.unwrap());
    assert_eq!(next(&mut stream).await, tokens(&[ids[0]]));

    // The two live ones are revoked, in the index's (id) order.
    assert!(w.delete_user(u.id, T0 + 2).await.unwrap());
    for id in &ids[1..] {
        assert_eq!(next(&mut stream).await, tokens(&[*id]), "delete_user");
    }
    nothing_since(&bed, &mut stream, "after delete_user").await;

    // All three are now dead: the sweep removes (and announces) each.
    assert_eq!(w.sweep(T0 + 86_400, T0).await.unwrap(), 3);
    for id in &ids {
        assert_eq!(next(&mut stream).await, tokens(&[*id]), "sweep");
    }
    assert_eq!(w.sweep(T0 + 86_400, T0).await.unwrap(), 0);
    nothing_since(&bed, &mut stream, "an empty sweep").await;
}

fn legacy(id: u64, owner: &User) -> TokenRecord {
    TokenRecord {
        id: TokenId(id),
        user_id: owner.id,
        user_name: owner.name.clone(),
        name: format!("legacy {id}"),
        scope: tessera_core::scope::Scope::new(TokenType::ALL, vec![]),
        allowed_ips: Default::default(),
        created_at: T0,
        access_expires_at: T0 + 86_400,
        renewable_until: None,
        ends_at: T0 + 86_400,
        access_digest: Digest::of(&format!("legacy secret {id}")),
        refresh_digest: None,
        legacy: true,
        revoked_at: None,
        last_used_at: None,
        last_used_ip: None,
        rate_limit: None,
    }
}

#[tokio::test]
async fn imports_are_announced_in_one_message_or_as_all() {
    let Some((bed, mut stream, u)) = subscribed("carol").await else {
        return;
    };
    let w = &bed.writer;

    let batch = [legacy(1000, &u), legacy(1001, &u)];
    w.import_legacy(&batch).await.unwrap();
    assert_eq!(
        next(&mut stream).await,
        tokens(&[TokenId(1000), TokenId(1001)])
    );
    assert!(w.import_legacy(&batch).await.is_err());
    nothing_since(&bed, &mut stream, "a refused import").await;

    // A legacy token's edit and revocation run on its digest's slot, and
    // are announced by its id.
    assert!(w.revoke_token(TokenId(1000), T0 + 1).await.unwrap());
    assert_eq!(next(&mut stream).await, tokens(&[TokenId(1000)]));

    let many: Vec<TokenRecord> = (0..=MAX_IDS_PER_MESSAGE as u64)
        .map(|i| legacy(2000 + i, &u))
        .collect();
    w.import_legacy(&many).await.unwrap();
    assert_eq!(next(&mut stream).await, Change::All, "too many to name");
    let one = [legacy(5000, &u)];
    w.insert_token(&one[0]).await.unwrap();
    assert_eq!(next(&mut stream).await, tokens(&[TokenId(5000)]));
}

#[tokio::test]
async fn beats_come_back_after_the_changes_before_them() {
    let Some((bed, mut stream, u)) = subscribed("dave").await else {
        return;
    };
    let (t, _, _) = new_token(&bed.writer, &u, TokenType::ALL).await;
    // Sent on the other handle: the order holds across connections.
    bed.reader.beat("node:1").await.unwrap();
    assert_eq!(next(&mut stream).await, tokens(&[t.id]));
    assert_eq!(next(&mut stream).await, Change::Beat("node:1".into()));
    // Every subscription hears every beat.
    let mut second = bed.writer.subscribe().await.unwrap();
    bed.writer.beat("").await.unwrap();
    assert_eq!(next(&mut stream).await, Change::Beat(String::new()));
    assert_eq!(next(&mut second).await, Change::Beat(String::new()));
}

/// The scenario every backend runs (itemised here); the tests above add
/// what only Redis promises (one message per write, refused writes silent).
#[tokio::test]
async fn every_token_write_is_heard_by_another_store() {
    let Some(bed) = bed().await else { return };
    let listener: Arc<dyn Store> = Arc::new(bed.reader);
    every_token_write_is_heard(bed.writer, listener, Heard::Itemised).await;
    drop(bed.prefix);
}

#[tokio::test]
async fn the_new_bounds_read_the_store() {
    let Some(bed) = bed().await else { return };
    reads_for_the_cache(bed.writer.clone()).await;
    // An inserted id above the counter moves the bound up.
    let u = user(&bed.writer, "erin", Role::User).await;
    let (t, _, _) = new_token(&bed.writer, &u, TokenType::ALL).await;
    let mut high = t.clone();
    high.id = TokenId(t.id.0 + 1000);
    high.access_digest = Digest::of("another");
    high.refresh_digest = None;
    bed.writer.insert_token(&high).await.unwrap();
    assert_eq!(bed.reader.highest_token_id().await.unwrap(), Some(high.id));
}

#[tokio::test]
async fn a_killed_subscription_fails_the_stream() {
    let Some(bed) = bed().await else { return };
    let url = bed.prefix.url().to_string();
    let mut stream = bed.reader.subscribe().await.unwrap();
    let name = bed.reader.feed_client_name().to_string();
    assert!(name.contains(bed.prefix.prefix()), "{name}");
    let ids = common::clients_named(&url, &name).await;
    assert_eq!(ids.len(), 1, "one subscription under {name}: {ids:?}");
    // The store's own connection is not the subscription.
    assert!(!ids.contains(&bed.reader.client_id().await.unwrap()));

    assert_eq!(common::cut_feeds(&url, &name).await, 1);
    let start = Instant::now();
    let r = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("the stream neither failed nor answered");
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    // Failed for good: no silent reconnection.
    let again = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
    assert!(again.is_err(), "{again:?}");
    eprintln!("the stream failed {:?} after the kill", start.elapsed());

    // The store itself is untouched, and subscribes again.
    bed.writer.ping().await.unwrap();
    bed.reader.ping().await.unwrap();
    let mut stream = bed.reader.subscribe().await.unwrap();
    bed.reader.beat("again").await.unwrap();
    assert_eq!(next(&mut stream).await, Change::Beat("again".into()));
}
