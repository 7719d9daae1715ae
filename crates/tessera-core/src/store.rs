//! The storage contract. Backends (memory, SQLite, PostgreSQL, Redis)
//! implement these traits and nothing else; every rule about *whether*
//! something may happen lives in [`crate::policy`] and [`crate::service`].
//!
//! Architecture invariants for implementors:
//! * A store sees digests, never secrets in clear.
//! * Every operation that must be atomic is one call here: the rotation of a
//!   pair ([`TokenStore::rotate`]), the all-or-nothing legacy import, the
//!   deletion of a user with their tokens and sessions. A backend that cannot
//!   make the last two atomic (Redis Cluster: they span hash slots) makes
//!   them a sequence that is safe to retry and documents it; the rotation is
//!   atomic everywhere.
//! * The token check makes at most one call: [`TokenStore::token_by_access`]
//!   (cache off) or [`TokenStore::token_for_check`] (on a cache miss), one
//!   round trip to the backend; a token with a rate limit adds one more,
//!   [`TokenStore::count_use`], when its node's share of the window is used
//!   up, so that the limit holds across the fleet.
//! * Every write that changes a token record announces it on the change
//!   stream ([`crate::feed`]), atomically with the write.
//! * Any failure to reach the backend is [`StoreError::Unavailable`], each
//!   round trip bounded by the backend's configured timeout, never an empty
//!   answer.
//! * A backend may let records leave by itself (key expiry) only once they
//!   are dead by their own timestamps (`ends_at`, `revoked_at`) plus its
//!   retention, and never sooner than the retention after its last write by
//!   the wall clock (the core's clock may be a test's).

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::feed::ChangeFeed;
use crate::model::{
    Event, EventQuery, LoggedEvent, NewAddress, NewUser, RefreshLookup, RotateOutcome, Rotation,
    SessionRecord, Timestamp, TokenChanges, TokenId, TokenRecord, Use, User, UserId,
};
use crate::notify::{Backlog, Claimed, Delivery, Settle};
use crate::secret::password::PasswordHash;
use crate::secret::{Digest, SecretKey};

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user with a fresh id; `Conflict` when the name is taken.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    /// The user with this id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The user with this name (exact match).
    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>>;
    /// Every user, by id.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Whether any user exists (first start creates the admin when none does).
    async fn has_users(&self) -> StoreResult<bool>;
    /// Deletes the user, ends their sessions and revokes (at `now`) every token
    /// they own, in one operation. False when there was no such user.
    async fn delete_user(&self, id: UserId, now: Timestamp) -> StoreResult<bool>;

    /// Replaces the user's password hash and ends every session of theirs
    /// but `keep` (the one that asked, if it was theirs). False when there
    /// is no such user. The hash is written first: a call that stops half
    /// way leaves sessions that a retry ends.
    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: Option<&Digest>,
    ) -> StoreResult<bool>;
}

/// Login sessions, keyed by the digest of their secret.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: SessionRecord) -> StoreResult<()>;
    /// The session with this digest.
    async fn session(&self, digest: &Digest) -> StoreResult<Option<SessionRecord>>;
    /// Moves the session's last use to `now` (sliding expiry).
    async fn touch_session(&self, digest: &Digest, now: Timestamp) -> StoreResult<()>;
    /// Ends a session; false when there was none.
    async fn delete_session(&self, digest: &Digest) -> StoreResult<bool>;
}

/// Access tokens and their secrets' digests.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// A fresh token id, never handed out before by this store. It is written
    /// into the token's secrets, so it is allocated before the record exists.
    async fn next_token_id(&self) -> StoreResult<TokenId>;

    /// Stores a new token; `Conflict` when its id is taken. (Its digests are
    /// of fresh 256-bit random secrets: a clash cannot happen, and a store
    /// sharded by token need not keep a global index to rule it out.)
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;

    /// The token with this id, revoked or not.
    async fn token(&self, id: TokenId) -> StoreResult<Option<TokenRecord>>;

    /// The hot path: the token whose *current* access digest is `key.digest`
    /// (revoked ones included, so the check can say why it refuses).
    /// `key.token_id` is the id written in the secret (`None` for legacy
    /// tokens); a backend may use it to find the record, but must still
    /// compare the digest.
    /// Shared (`Arc`) so that a backend holding records in memory hands one
    /// out without copying it.
    async fn token_by_access(&self, key: &SecretKey) -> StoreResult<Option<Arc<TokenRecord>>>;

    /// The cache's read on a miss: the token with this id, revoked or not,
    /// whatever secret was presented (the check compares the digest itself,
    /// so a forged secret for a cached id is refused from memory). Backends
    /// answer it on the check's own connections where they have them.
    async fn token_for_check(&self, id: TokenId) -> StoreResult<Option<Arc<TokenRecord>>> {
        Ok(self.token(id).await?.map(Arc::new))
    }

    /// An upper bound of the ids of stored tokens: never below the id of a
    /// token whose insert committed before this call began (the highest id
    /// handed out will do). `None` when no token was ever stored. With it the
    /// cache refuses ids beyond every issued one without a look-up per
    /// check. The default knows nothing (`u64::MAX`), which is always safe.
    async fn highest_token_id(&self) -> StoreResult<Option<TokenId>> {
        Ok(Some(TokenId(u64::MAX)))
    }

    /// The user's tokens that are not revoked, by id.
    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>>;

    /// Applies an edit the policy approved. False when the token is gone or revoked.
    async fn update_token(&self, changes: &TokenChanges) -> StoreResult<bool>;

    /// What `key.digest` is as a refresh token: the current one of a token,
    /// a spent one of a token, or unknown.
    async fn refresh_lookup(&self, key: &SecretKey) -> StoreResult<RefreshLookup>;

    /// Atomically: if `rotation.presented_refresh` is still the token's
    /// current refresh digest and the token is not revoked, install the new
    /// pair and expiry, remember the presented digest as spent, and return the
    /// new record. Otherwise change nothing and say whether the presented
    /// digest is a spent one of this token. Of any number of concurrent
    /// rotations of one pair, exactly one returns `Rotated`.
    async fn rotate(&self, rotation: &Rotation) -> StoreResult<RotateOutcome>;

    /// Revokes a token (every secret of its chain stops working). False when
    /// it was already revoked or does not exist.
    async fn revoke_token(&self, id: TokenId, now: Timestamp) -> StoreResult<bool>;

    /// Stores imported legacy tokens, all or none (`Conflict` if any id, or
    /// any access digest of a stored or listed legacy token, is taken: an
    /// import run twice imports nothing the second time).
    async fn import_legacy(&self, tokens: &[TokenRecord]) -> StoreResult<()>;

    /// The latest expiry among unrevoked legacy tokens, if any. While it lies
    /// in the future, a presented token without the Tessera prefix is looked
    /// up by digest; otherwise it is refused at once.
    async fn legacy_horizon(&self) -> StoreResult<Option<Timestamp>>;

    /// Records when, and from which address, tokens were last used
    /// (coalesced by the caller, off the hot path). A token's time never
    /// moves back; its address is that of its latest use. Unknown ids are
    /// skipped.
    async fn record_last_used(&self, uses: &[Use]) -> StoreResult<()>;

    /// Counts `n` checks of a rate-limited token in its window `window`
    /// (the window's index, `now / perSeconds`), atomically across every
    /// node of the store, and answers the window's count so far (these
    /// included). The count may be forgotten once `until` (the window's
    /// end, Unix seconds) has passed. The only call a check of a
    /// rate-limited token makes beyond the record's look-up, and only when
    /// its node's share of the window is spent ([`crate::model::RateLimit::share`]).
    async fn count_use(
        &self,
        id: TokenId,
        window: i64,
        until: Timestamp,
        n: u32,
    ) -> StoreResult<u64>;

    /// Remembers that each token was used from its address, once per pair:
    /// the answer names the pairs the store had not seen, each with
    /// whether the token had been used from any address before (a first
    /// use is no "new address"). Unknown tokens are skipped.
    async fn note_addresses(&self, uses: &[Use]) -> StoreResult<Vec<NewAddress>>;

    /// Appends an event to the audit trail, durably, with an id above
    /// every id handed out before it.
    async fn record_event(&self, event: &Event) -> StoreResult<()>;

    /// The events `query` admits ([`EventQuery::admits`]), newest (highest
    /// id) first, at most `query.limit`. A backend that cannot filter by
    /// index may read a bounded number of events per call and answer fewer
    /// than `limit`; it never skips one: every event it did not read has an
    /// id below the last one it answered.
    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<LoggedEvent>>;

    /// Deletes the events that happened before `before` (the audit
    /// retention). Returns how many left.
    async fn sweep_events(&self, before: Timestamp) -> StoreResult<u64>;

    /// Deletes tokens revoked, or whose `ends_at` passed, before `before`, and
    /// sessions idle since before `sessions_before` (and rate-limit counts
    /// of windows that ended before it). Returns how many records left.
    async fn sweep(&self, before: Timestamp, sessions_before: Timestamp) -> StoreResult<u64>;
}

/// The webhook outbox ([`crate::notify`]): notices wait here, in the same
/// store as the tokens, until a node delivers them, so that none is lost
/// while a receiver is down or a node restarts, and each is sent by one
/// node at a time.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Adds `deliveries`, skipping any whose (receiver, key) the outbox
    /// holds already (pending or settled, until swept): of any number of
    /// nodes enqueuing one notice, one adds it. Answers how many were added.
    async fn enqueue(&self, deliveries: &[Delivery]) -> StoreResult<u64>;

    /// Claims at most `limit` deliveries to `receivers` that are due at
    /// `now` (not settled, next attempt at or before `now`), oldest first,
    /// and makes each due again only at `lease_until` (so that a node that
    /// dies holding one lets another send it then), under the nonce
    /// `claim`. Atomic across every node: two claims never both answer a
    /// delivery while its lease runs.
    async fn claim(
        &self,
        receivers: &[String],
        now: Timestamp,
        lease_until: Timestamp,
        claim: u64,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>>;

    /// Settles `delivery`, claimed under `claim`: sent or given up (kept,
    /// settled, until [`Outbox::sweep_outbox`] passes its `keep_until`), or
    /// due again at a time with one more attempt counted. False, changing
    /// nothing, when the claim is no longer held (its lease ran out and
    /// another node claimed it) or the delivery is gone.
    async fn settle(&self, delivery: &Claimed, claim: u64, outcome: &Settle) -> StoreResult<bool>;

    /// What waits, per receiver that has anything waiting.
    async fn backlog(&self) -> StoreResult<Vec<Backlog>>;

    /// Deletes settled deliveries whose `keep_until` is before `before`,
    /// and unsettled ones whose event happened before it (a receiver no
    /// node names any more leaves its backlog behind). Returns how many left.
    async fn sweep_outbox(&self, before: Timestamp) -> StoreResult<u64>;
}

/// Everything a Tessera server needs from one backend: the records, the
/// webhook outbox, and the change stream that keeps every node's cache exact.
#[async_trait]
pub trait Store: UserStore + SessionStore + TokenStore + Outbox + ChangeFeed {
    /// Whether the backend answers now (`/health/ready`, with the check's
    /// own look-up beside it): a read of a stored table by the connections
    /// the management calls use, not a bare round trip (`SELECT 1` reads no
    /// page of a damaged file).
    async fn ping(&self) -> StoreResult<()>;
}
