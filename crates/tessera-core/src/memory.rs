//! [`MemoryStore`]: a complete in-memory backend, for tests, benchmarks and
//! single-process trials. Everything is lost when the process ends.
//!
//! One `RwLock` over all maps makes every operation atomic: the check takes
//! a read lock; writes (rotation, revocation, …) take the write lock.
//!
//! Its change stream is an in-process broadcast, sent under the write lock
//! (so in the order of the writes): several services over one
//! `MemoryStore` behave as nodes over one database.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::feed::{Change, ChangeFeed, ChangeStream};
use crate::model::{
    Event, EventId, EventQuery, LoggedEvent, NewAddress, NewUser, RefreshLookup, RotateOutcome,
    Rotation, SessionRecord, Timestamp, TokenChanges, TokenId, TokenRecord, Use, User, UserId,
};
use crate::notify::{Backlog, Claimed, Delivery, DeliveryId, Settle};
use crate::secret::password::PasswordHash;
use crate::secret::{Digest, DigestBuildHasher, SecretKey};
use crate::store::{Outbox, SessionStore, Store, StoreResult, TokenStore, UserStore};

/// The in-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

/// A delivery in the outbox.
#[derive(Debug)]
struct Waiting {
    delivery: Delivery,
    attempts: u32,
    /// When it is next due (a claim moves it to the lease's end).
    due_at: Timestamp,
    /// The nonce of the claim holding it, if any.
    claim: Option<u64>,
    /// Sent or given up.
    settled: bool,
}

/// Messages a subscriber may fall behind by before its stream is cut.
const FEED_BACKLOG: usize = 4096;

#[derive(Debug)]
struct Inner {
    /// Last user id handed out.
    last_user: u64,
    /// Last token id handed out.
    last_token: u64,
    users: BTreeMap<UserId, User>,
    /// Unique index of user names.
    user_names: HashMap<String, UserId>,
    sessions: HashMap<Digest, SessionRecord, DigestBuildHasher>,
    /// Every token by id. Records are shared with `by_access` and replaced
    /// whole on change, so the check hands one out without copying.
    tokens: BTreeMap<TokenId, Arc<TokenRecord>>,
    /// Current access digest → token (the check's index).
    by_access: HashMap<Digest, Arc<TokenRecord>, DigestBuildHasher>,
    /// Current refresh digest → token.
    by_refresh: HashMap<Digest, TokenId, DigestBuildHasher>,
    /// Rotated-out refresh digests → (token, when rotated out), for reuse detection.
    spent: HashMap<Digest, (TokenId, Timestamp), DigestBuildHasher>,
    /// Rate-limit counts: (token, window) → (count, window end).
    rate_counts: HashMap<(TokenId, i64), (u64, Timestamp)>,
    /// The addresses each token was used from.
    addresses: HashMap<TokenId, std::collections::HashSet<std::net::IpAddr>>,
    /// The audit trail, oldest first (ids increasing).
    events: Vec<LoggedEvent>,
    /// The last event id handed out.
    last_event: u64,
    /// The webhook outbox, by delivery id.
    outbox: BTreeMap<DeliveryId, Waiting>,
    /// Its (receiver, key) pairs.
    outbox_keys: std::collections::HashSet<(String, String)>,
    /// The last delivery id handed out.
    last_delivery: u64,
    /// The change stream.
    changes: broadcast::Sender<Change>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            last_user: 0,
            last_token: 0,
            users: BTreeMap::new(),
            user_names: HashMap::new(),
            sessions: HashMap::default(),
            tokens: BTreeMap::new(),
            by_access: HashMap::default(),
            by_refresh: HashMap::default(),
            spent: HashMap::default(),
            addresses: HashMap::new(),
            rate_counts: HashMap::new(),
            events: Vec::new(),
            last_event: 0,
            outbox: BTreeMap::new(),
            outbox_keys: std::collections::HashSet::new(),
            last_delivery: 0,
            changes: broadcast::channel(FEED_BACKLOG).0,
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave a half-applied change
    // behind (each write is applied after its checks), so poisoning is ignored.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts every subscription to the change stream (as a lost connection
    /// would): for the tests of what a node does then.
    pub fn cut_streams(&self) {
        self.write().changes = broadcast::channel(FEED_BACKLOG).0;
    }
}

impl Inner {
    /// Announces a change of token `id` (no subscriber is no error).
    fn announce(&self, id: TokenId) {
        let _ = self.changes.send(Change::Tokens(vec![id]));
    }
}

impl Inner {
    fn revoke(&mut self, id: TokenId, now: Timestamp) -> bool {
        match self.tokens.get(&id) {
            Some(t) if t.revoked_at.is_none() => {
                let mut t = TokenRecord::clone(t);
                t.revoked_at = Some(now);
                self.put(t);
                true
            }
            _ => false,
        }
    }

    /// Stores `token`, replacing any earlier version and its index entries.
    fn put(&mut self, token: TokenRecord) {
        self.unindex(token.id);
        let token = Arc::new(token);
        self.by_access.insert(token.access_digest, token.clone());
        if let Some(r) = token.refresh_digest {
            self.by_refresh.insert(r, token.id);
        }
        self.last_token = self.last_token.max(token.id.0);
        let id = token.id;
        self.tokens.insert(id, token);
        self.announce(id);
    }

    /// Removes a token's current digests from the indexes.
    fn unindex(&mut self, id: TokenId) {
        if let Some(old) = self.tokens.get(&id) {
            self.by_access.remove(&old.access_digest);
            if let Some(r) = old.refresh_digest {
                self.by_refresh.remove(&r);
            }
        }
    }

    /// Applies `change` to a copy of the token and stores it; false when absent.
    fn modify(
        &mut self,
        id: TokenId,
        change: impl FnOnce(&mut TokenRecord),
    ) -> Option<Arc<TokenRecord>> {
        let mut t = TokenRecord::clone(self.tokens.get(&id)?);
        change(&mut t);
        self.put(t);
        self.tokens.get(&id).cloned()
    }

    fn digest_taken(&self, d: &Digest) -> bool {
        self.by_access.contains_key(d)
            || self.by_refresh.contains_key(d)
            || self.spent.contains_key(d)
    }

    fn remove_token(&mut self, id: TokenId) {
        self.unindex(id);
        if self.tokens.remove(&id).is_some() {
            self.spent.retain(|_, (owner, _)| *owner != id);
            self.addresses.remove(&id);
            self.announce(id);
        }
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let mut g = self.write();
        if g.user_names.contains_key(&new.name) {
            return Err(StoreError::Conflict(format!(
                "user name {:?} is taken",
                new.name
            )));
        }
        g.last_user += 1;
        let user = new.into_user(UserId(g.last_user));
        g.user_names.insert(user.name.clone(), user.id);
        g.users.insert(user.id, user.clone());
        Ok(user)
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.read().users.get(&id).cloned())
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let g = self.read();
        Ok(g.user_names
            .get(name)
            .and_then(|id| g.users.get(id))
            .cloned())
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(self.read().users.values().cloned().collect())
    }

    async fn has_users(&self) -> StoreResult<bool> {
        Ok(!self.read().users.is_empty())
    }

    async fn delete_user(&self, id: UserId, now: Timestamp) -> StoreResult<bool> {
        let mut g = self.write();
        let Some(user) = g.users.remove(&id) else {
            return Ok(false);
        };
        g.user_names.remove(&user.name);
        g.sessions.retain(|_, s| s.user_id != id);
        let owned: Vec<TokenId> = g
            .tokens
            .values()
            .filter(|t| t.user_id == id)
            .map(|t| t.id)
            .collect();
        for t in owned {
            g.revoke(t, now);
        }
        Ok(true)
    }

    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: Option<&Digest>,
    ) -> StoreResult<bool> {
        let mut g = self.write();
        let Some(user) = g.users.get_mut(&id) else {
            return Ok(false);
        };
        user.password = Some(hash.clone());
        g.sessions.retain(|d, s| s.user_id != id || Some(d) == keep);
        Ok(true)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, session: SessionRecord) -> StoreResult<()> {
        let mut g = self.write();
        if g.sessions.contains_key(&session.digest) {
            return Err(StoreError::Conflict("session digest is taken".into()));
        }
        g.sessions.insert(session.digest, session);
        Ok(())
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<SessionRecord>> {
        Ok(self.read().sessions.get(digest).cloned())
    }

    async fn touch_session(&self, digest: &Digest, now: Timestamp) -> StoreResult<()> {
        if let Some(s) = self.write().sessions.get_mut(digest) {
            s.last_seen_at = s.last_seen_at.max(now);
        }
        Ok(())
    }

    async fn delete_session(&self, digest: &Digest) -> StoreResult<bool> {
        Ok(self.write().sessions.remove(digest).is_some())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn next_token_id(&self) -> StoreResult<TokenId> {
        let mut g = self.write();
        g.last_token += 1;
        Ok(TokenId(g.last_token))
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let mut g = self.write();
        if g.tokens.contains_key(&token.id) {
            return Err(StoreError::Conflict(format!(
                "token id {} is taken",
                token.id.0
            )));
        }
        g.put(token.clone());
        Ok(())
    }

    async fn token(&self, id: TokenId) -> StoreResult<Option<TokenRecord>> {
        Ok(self.read().tokens.get(&id).map(|t| TokenRecord::clone(t)))
    }

    async fn token_for_check(&self, id: TokenId) -> StoreResult<Option<Arc<TokenRecord>>> {
        Ok(self.read().tokens.get(&id).cloned())
    }

    async fn highest_token_id(&self) -> StoreResult<Option<TokenId>> {
        Ok(self.read().tokens.keys().next_back().copied())
    }

    async fn token_by_access(&self, key: &SecretKey) -> StoreResult<Option<Arc<TokenRecord>>> {
        Ok(self.read().by_access.get(&key.digest).cloned())
    }

    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>> {
        Ok(self
            .read()
            .tokens
            .values()
            .filter(|t| t.user_id == user && t.revoked_at.is_none())
            .map(|t| TokenRecord::clone(t))
            .collect())
    }

    async fn update_token(&self, c: &TokenChanges) -> StoreResult<bool> {
        let mut g = self.write();
        if g.tokens.get(&c.id).is_none_or(|t| t.revoked_at.is_some()) {
            return Ok(false);
        }
        g.modify(c.id, |t| {
            t.name.clone_from(&c.name);
            t.scope = c.scope.clone();
            t.allowed_ips = c.allowed_ips.clone();
            t.access_expires_at = c.access_expires_at;
            t.renewable_until = c.renewable_until;
            t.ends_at = c.ends_at;
            t.rate_limit = c.rate_limit;
        });
        Ok(true)
    }

    async fn refresh_lookup(&self, key: &SecretKey) -> StoreResult<RefreshLookup> {
        let g = self.read();
        if let Some(t) = g
            .by_refresh
            .get(&key.digest)
            .and_then(|id| g.tokens.get(id))
        {
            return Ok(RefreshLookup::Current(Box::new(TokenRecord::clone(t))));
        }
        Ok(match g.spent.get(&key.digest) {
            Some((id, rotated_at)) => RefreshLookup::Spent {
                id: *id,
                rotated_at: *rotated_at,
            },
            None => RefreshLookup::Unknown,
        })
    }

    async fn rotate(&self, r: &Rotation) -> StoreResult<RotateOutcome> {
        let mut g = self.write();
        let Some(t) = g.tokens.get(&r.id) else {
            return Ok(RotateOutcome::Unknown);
        };
        if t.revoked_at.is_some() || t.refresh_digest != Some(r.presented_refresh) {
            return Ok(match g.spent.get(&r.presented_refresh) {
                Some((id, rotated_at)) if *id == r.id => RotateOutcome::Spent {
                    rotated_at: *rotated_at,
                },
                _ => RotateOutcome::Unknown,
            });
        }
        if g.digest_taken(&r.new_access) || g.digest_taken(&r.new_refresh) {
            return Err(StoreError::Conflict("new digest is taken".into()));
        }
        g.spent.insert(r.presented_refresh, (r.id, r.at));
        let rotated = g.modify(r.id, |t| {
            t.access_digest = r.new_access;
            t.refresh_digest = Some(r.new_refresh);
            t.access_expires_at = r.access_expires_at;
            t.ends_at = r.ends_at;
        });
        Ok(match rotated {
            Some(t) => RotateOutcome::Rotated(Box::new(TokenRecord::clone(&t))),
            None => RotateOutcome::Unknown,
        })
    }

    async fn revoke_token(&self, id: TokenId, now: Timestamp) -> StoreResult<bool> {
        Ok(self.write().revoke(id, now))
    }

    async fn import_legacy(&self, tokens: &[TokenRecord]) -> StoreResult<()> {
        let mut g = self.write();
        let mut seen = std::collections::HashSet::new();
        for t in tokens {
            if g.tokens.contains_key(&t.id)
                || g.digest_taken(&t.access_digest)
                || !seen.insert(t.access_digest)
            {
                return Err(StoreError::Conflict(format!(
                    "legacy token {:?} is already stored",
                    t.name
                )));
            }
        }
        for t in tokens {
            g.put(t.clone());
        }
        Ok(())
    }

    async fn legacy_horizon(&self) -> StoreResult<Option<Timestamp>> {
        Ok(self
            .read()
            .tokens
            .values()
            .filter(|t| t.legacy && t.revoked_at.is_none())
            .map(|t| t.access_expires_at)
            .max())
    }

    async fn record_last_used(&self, uses: &[Use]) -> StoreResult<()> {
        let mut g = self.write();
        for u in uses {
            g.modify(u.id, |t| {
                if t.last_used_at.is_none_or(|prev| prev <= u.at) {
                    t.last_used_at = Some(u.at);
                    t.last_used_ip = Some(u.address);
                }
            });
        }
        Ok(())
    }

    async fn count_use(
        &self,
        id: TokenId,
        window: i64,
        until: Timestamp,
        n: u32,
    ) -> StoreResult<u64> {
        let mut g = self.write();
        let c = g.rate_counts.entry((id, window)).or_insert((0, until));
        c.0 += u64::from(n);
        Ok(c.0)
    }

    async fn note_addresses(&self, uses: &[Use]) -> StoreResult<Vec<NewAddress>> {
        let mut g = self.write();
        let mut new = Vec::new();
        for u in uses {
            if !g.tokens.contains_key(&u.id) {
                continue;
            }
            let known = g.addresses.entry(u.id).or_default();
            let first = known.is_empty();
            if known.insert(u.address) {
                new.push(NewAddress { used: *u, first });
            }
        }
        Ok(new)
    }

    async fn record_event(&self, event: &Event) -> StoreResult<()> {
        let mut g = self.write();
        g.last_event += 1;
        let id = EventId(g.last_event);
        g.events.push(LoggedEvent {
            id,
            event: event.clone(),
        });
        Ok(())
    }

    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<LoggedEvent>> {
        Ok(self
            .read()
            .events
            .iter()
            .rev()
            .filter(|e| query.admits(e.id, &e.event))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn sweep_events(&self, before: Timestamp) -> StoreResult<u64> {
        let mut g = self.write();
        let n = g.events.len();
        g.events.retain(|e| e.event.at >= before);
        Ok((n - g.events.len()) as u64)
    }

    async fn sweep(&self, before: Timestamp, sessions_before: Timestamp) -> StoreResult<u64> {
        let mut g = self.write();
        let dead: Vec<TokenId> = g
            .tokens
            .values()
            .filter(|t| t.revoked_at.is_some_and(|r| r < before) || t.ends_at < before)
            .map(|t| t.id)
            .collect();
        for id in &dead {
            g.remove_token(*id);
        }
        g.rate_counts
            .retain(|_, (_, until)| *until >= sessions_before);
        let sessions = g.sessions.len();
        g.sessions.retain(|_, s| s.last_seen_at >= sessions_before);
        Ok((dead.len() + sessions - g.sessions.len()) as u64)
    }
}

/// A subscription to a [`MemoryStore`]'s changes.
struct MemoryStream(broadcast::Receiver<Change>);

#[async_trait]
impl ChangeStream for MemoryStream {
    async fn next(&mut self) -> StoreResult<Change> {
        self.0
            .recv()
            .await
            .map_err(|e| StoreError::Unavailable(format!("the change stream was cut: {e}")))
    }
}

#[async_trait]
impl ChangeFeed for MemoryStore {
    async fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>> {
        Ok(Box::new(MemoryStream(self.read().changes.subscribe())))
    }

    async fn beat(&self, text: &str) -> StoreResult<()> {
        let _ = self.write().changes.send(Change::Beat(text.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn enqueue(&self, deliveries: &[Delivery]) -> StoreResult<u64> {
        let mut g = self.write();
        let mut added = 0;
        for d in deliveries {
            if !g.outbox_keys.insert((d.receiver.clone(), d.key.clone())) {
                continue;
            }
            g.last_delivery += 1;
            let id = DeliveryId(g.last_delivery);
            let due_at = d.event.at;
            g.outbox.insert(
                id,
                Waiting {
                    delivery: d.clone(),
                    attempts: 0,
                    due_at,
                    claim: None,
                    settled: false,
                },
            );
            added += 1;
        }
        Ok(added)
    }

    async fn claim(
        &self,
        receivers: &[String],
        now: Timestamp,
        lease_until: Timestamp,
        claim: u64,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>> {
        let mut g = self.write();
        let mut out = Vec::new();
        for (id, w) in g.outbox.iter_mut() {
            if out.len() == limit {
                break;
            }
            if w.settled || w.due_at > now || !receivers.contains(&w.delivery.receiver) {
                continue;
            }
            w.due_at = lease_until;
            w.claim = Some(claim);
            out.push(Claimed {
                id: *id,
                delivery: w.delivery.clone(),
                attempts: w.attempts,
            });
        }
        Ok(out)
    }

    async fn settle(&self, delivery: &Claimed, claim: u64, outcome: &Settle) -> StoreResult<bool> {
        let mut g = self.write();
        let Some(w) = g.outbox.get_mut(&delivery.id) else {
            return Ok(false);
        };
        if w.settled || w.claim != Some(claim) {
            return Ok(false);
        }
        w.claim = None;
        w.attempts += 1;
        match outcome {
            Settle::Sent | Settle::GiveUp => w.settled = true,
            Settle::Retry { at } => w.due_at = *at,
        }
        Ok(true)
    }

    async fn backlog(&self) -> StoreResult<Vec<Backlog>> {
        let g = self.read();
        let mut by: BTreeMap<&str, Backlog> = BTreeMap::new();
        for w in g.outbox.values().filter(|w| !w.settled) {
            let b = by.entry(&w.delivery.receiver).or_insert_with(|| Backlog {
                receiver: w.delivery.receiver.clone(),
                pending: 0,
                oldest: None,
            });
            b.pending += 1;
            let at = w.delivery.event.at;
            b.oldest = Some(b.oldest.map_or(at, |o| o.min(at)));
        }
        Ok(by.into_values().collect())
    }

    async fn sweep_outbox(&self, before: Timestamp) -> StoreResult<u64> {
        let mut g = self.write();
        let gone: Vec<DeliveryId> = g
            .outbox
            .iter()
            .filter(|(_, w)| {
                if w.settled {
                    w.delivery.keep_until < before
                } else {
                    w.delivery.event.at < before
                }
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            if let Some(w) = g.outbox.remove(id) {
                g.outbox_keys.remove(&(w.delivery.receiver, w.delivery.key));
            }
        }
        Ok(gone.len() as u64)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
