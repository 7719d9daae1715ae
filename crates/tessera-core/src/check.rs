//! The check (the hot path): may this presented access token call this
//! method on this path from this address?
//!
//! Order, cheapest first, so that refusals cost as little as possible:
//! 1. the token's text (prefix, shape, checksum) — no store;
//! 2. the request path's normal form (traversal tricks refused) — no store;
//! 3. the record: from the exact local cache ([`crate::cache`]) when it is
//!    on, or one store look-up (by id on a cache miss, by digest without the
//!    cache or for legacy tokens);
//! 4. the digest (constant time), revocation, expiry, address list, scope —
//!    in memory, from the record, on every request.
//!
//! Every failure refuses: an unreachable store is [`CheckError::Unavailable`]
//! (the server answers 503), never an allow.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::cache::{Cache, Lookup};
use crate::clock::Clock;
use crate::error::StoreError;
use crate::model::{RateLimit, TokenId, TokenRecord, Use, UserId};
use crate::path::PathError;
use crate::policy::Policy;
use crate::scope::TokenType;
use crate::secret::{self, Digest, SecretKey, SecretKind};
use crate::store::TokenStore;

/// Longest legacy token text looked up; longer is malformed at once.
const MAX_LEGACY_LEN: usize = 512;

/// Last-used times are written at most this often per token (seconds).
pub const LAST_USED_EVERY: i64 = 60;

/// A request the check allowed: who is calling, with which token. Holds the
/// shared record the store returned, so allowing copies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    token: Arc<TokenRecord>,
    /// Where a rate-limited token stands in its window.
    quota: Option<Quota>,
}

/// A rate-limited token's standing after an allowed check: the
/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Allowed checks per window.
    pub limit: u32,
    /// Those left in this window.
    pub remaining: u32,
    /// Seconds until the window ends.
    pub reset: u32,
}

impl Allowed {
    /// The token's owner (`X-Tessera-User-Id`).
    pub fn user_id(&self) -> UserId {
        self.token.user_id
    }

    /// The owner's name (`X-Tessera-User`).
    pub fn user_name(&self) -> &str {
        &self.token.user_name
    }

    /// The token (`X-Tessera-Token-Id`).
    pub fn token_id(&self) -> TokenId {
        self.token.id
    }

    /// The token's scope number.
    pub fn token_type(&self) -> TokenType {
        self.token.scope.token_type()
    }

    /// The token's current access expiry (RFC 7662 `exp`,
    /// `X-Tessera-Token-Expires`).
    pub fn expires_at(&self) -> i64 {
        self.token.access_expires_at
    }

    /// Until when the token may be renewed, for refreshable scopes
    /// (`X-Tessera-Renewable-Until`).
    pub fn renewable_until(&self) -> Option<i64> {
        self.token.renewable_until
    }

    /// The whole record (RFC 7662 introspection shows more of it).
    pub fn token(&self) -> &TokenRecord {
        &self.token
    }

    /// Where the token stands in its rate-limit window, if it has a limit.
    pub fn quota(&self) -> Option<Quota> {
        self.quota
    }
}

/// Why the check refused. [`Refusal::insufficient_scope`] sorts them into
/// RFC 6750's two answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No token, or not a well-formed one (decided without the store).
    #[error("the token is malformed")]
    Malformed,
    /// Well-formed, but no such token.
    #[error("the token is unknown")]
    Unknown,
    /// The access secret has expired.
    #[error("the token has expired")]
    Expired,
    /// The token was revoked.
    #[error("the token was revoked")]
    Revoked,
    /// The request path is refused outright (traversal, encoded separators…).
    #[error("the request path is refused: {0}")]
    Path(PathError),
    /// The token's scope does not cover this method and path.
    #[error("the token's scope does not allow this request")]
    Scope,
    /// The client address is not in the token's `allowedIPs`.
    #[error("the token may not be used from this address")]
    Address,
    /// The token's rate limit is spent for this window (429).
    #[error("the token's rate limit is reached; retry in {reset} s")]
    RateLimited {
        /// Allowed checks per window.
        limit: u32,
        /// Seconds until the window ends (`Retry-After`).
        reset: u32,
    },
}

impl Refusal {
    /// True for refusals of a valid token (403, `insufficient_scope`); false
    /// for an invalid token (401, `invalid_token`).
    pub fn insufficient_scope(self) -> bool {
        matches!(self, Refusal::Path(_) | Refusal::Scope | Refusal::Address)
    }
}

/// The check's failure: a refusal, or a store that could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Refused, with the reason.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store could not answer: refuse with 503.
    #[error("the token store is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for CheckError {
    fn from(e: StoreError) -> Self {
        // A corrupt record refuses as well: fail closed.
        CheckError::Unavailable(e.to_string())
    }
}

/// Shards of the map of uses not yet written.
const USAGE_SHARDS: usize = 16;

/// (token, address) pairs one shard remembers as already sent to the
/// store; a full shard is emptied (its pairs are then sent once more, and
/// the store, which knows them, reports nothing new).
const KNOWN_PER_SHARD: usize = 8192;

/// Rate-limit shares one map shard keeps before it drops those of ended
/// windows.
const SHARES_PER_SHARD: usize = 4096;

/// What this node took of a rate-limited token's window and has not used.
#[derive(Debug, Clone, Copy)]
struct Share {
    /// The window's index.
    window: i64,
    /// The limit it was taken under (an edit starts afresh).
    limit: RateLimit,
    /// Checks taken and not used yet.
    left: u32,
    /// The window's count in the store after this node's last take.
    counted: u64,
    /// The store's count reached the limit: the window refuses from
    /// memory to its end (a count never falls within a window).
    spent: bool,
    /// The window's end, for the shard's clean-up.
    until: i64,
}

/// The check, over one store, policy and clock.
pub struct Checker {
    store: Arc<dyn TokenStore>,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    /// Latest expiry among stored legacy tokens (`i64::MIN`: none). While it
    /// lies ahead, prefix-less tokens are looked up; otherwise refused at once.
    legacy_horizon: AtomicI64,
    /// Uses not yet written to the store: token → first use since its
    /// recorded last use went stale. Drained by [`Checker::take_usage`], off
    /// the request path; the check itself never writes to the store.
    /// Sharded by token id, so that checks on different threads rarely
    /// meet on one lock (contention showed up in the profile).
    pending_usage: [Mutex<HashMap<TokenId, (i64, IpAddr)>>; USAGE_SHARDS],
    /// The (token, client address) pairs this node has allowed and sent
    /// (or queued) for the store's `note_addresses`, sharded by token.
    known_addresses: [Mutex<HashSet<(TokenId, IpAddr)>>; USAGE_SHARDS],
    /// Rate-limited tokens' shares of their windows ([`RateLimit::share`]),
    /// sharded by token.
    shares: [Mutex<HashMap<TokenId, Share>>; USAGE_SHARDS],
    /// Pairs allowed for the first time on this node, with the token's
    /// owner, not yet sent: taken by [`Checker::take_addresses`].
    pending_addresses: Mutex<Vec<(Use, UserId)>>,
    /// Whether uses are noted at all (on by default; off only where an
    /// operator chose not to keep last-used times, and for the benchmark
    /// that measures what keeping them costs).
    track_usage: AtomicBool,
    /// Uses taken by a [`Checker::flush_usage`] still writing them.
    flushing: AtomicUsize,
    /// The exact local cache of token records; `None`: every check reads
    /// the store.
    cache: Option<Arc<Cache>>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("legacy_horizon", &self.legacy_horizon)
            .finish_non_exhaustive()
    }
}

impl Checker {
    /// A checker that assumes no legacy tokens until [`Checker::refresh_legacy_horizon`] runs.
    pub fn new(store: Arc<dyn TokenStore>, policy: Arc<Policy>, clock: Arc<dyn Clock>) -> Self {
        Checker {
            store,
            policy,
            clock,
            legacy_horizon: AtomicI64::new(i64::MIN),
            pending_usage: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            known_addresses: std::array::from_fn(|_| Mutex::new(HashSet::new())),
            shares: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            pending_addresses: Mutex::new(Vec::new()),
            track_usage: AtomicBool::new(true),
            flushing: AtomicUsize::new(0),
            cache: None,
        }
    }

    /// Checks through `cache` from now on. It serves nothing until
    /// [`crate::cache::follow`] keeps it in step with the store.
    pub fn set_cache(&mut self, cache: Arc<Cache>) {
        self.cache = Some(cache);
    }

    /// The cache, if the check has one.
    pub fn cache(&self) -> Option<&Arc<Cache>> {
        self.cache.as_ref()
    }

    /// Forgets cached records of these tokens: every write of this node calls
    /// it before it answers (and whether or not the write succeeded: a write
    /// that timed out may still have happened).
    pub fn forget(&self, ids: &[TokenId]) {
        if let Some(c) = &self.cache {
            c.forget(ids);
        }
    }

    /// Forgets every cached record (a write that may touch many tokens: a
    /// user's deletion, a sweep, an import).
    pub fn forget_all(&self) {
        if let Some(c) = &self.cache {
            c.clear();
        }
    }

    /// The record of the token `key` names, if any: from the cache (a miss
    /// reads the store by id and keeps the answer), or by digest from the
    /// store when there is no cache or the key has no id (legacy).
    async fn record(&self, key: &SecretKey) -> Result<Option<Arc<TokenRecord>>, CheckError> {
        let (Some(cache), Some(id)) = (&self.cache, key.token_id) else {
            return Ok(self.store.token_by_access(key).await?);
        };
        if cache
            .beyond(id, &*self.store)
            .await
            .inspect_err(|_| cache.distrust())?
        {
            return Ok(None);
        }
        match cache.lookup(id, &key.digest) {
            Lookup::Hit(t) => Ok(Some(t)),
            Lookup::Absent => Ok(None),
            Lookup::Miss(ticket) => {
                let found = self.store.token_for_check(id).await.inspect_err(|_| {
                    cache.distrust();
                })?;
                cache.fill(ticket, id, found.clone());
                Ok(found)
            }
        }
    }

    /// Tells the cache (if any) that the store failed a read: it serves
    /// nothing until the change stream proves itself again.
    pub fn distrust_cache(&self) {
        if let Some(cache) = &self.cache {
            cache.distrust();
        }
    }

    /// Turns last-used tracking on (the default) or off. Off, checks note
    /// nothing and tokens keep the last-used time they had.
    pub fn set_usage_tracking(&self, on: bool) {
        self.track_usage.store(on, Ordering::Relaxed);
    }

    /// Re-reads the legacy horizon from the store. The server calls this at
    /// start, after an import, and periodically (other nodes may import).
    pub async fn refresh_legacy_horizon(&self) -> Result<(), StoreError> {
        let h = self.store.legacy_horizon().await?.unwrap_or(i64::MIN);
        self.legacy_horizon.store(h, Ordering::Relaxed);
        Ok(())
    }

    /// Takes the uses noted since the last call, for one
    /// [`TokenStore::record_last_used`] write. The server calls this
    /// periodically.
    pub fn take_usage(&self) -> Vec<Use> {
        let mut uses = Vec::new();
        for shard in &self.pending_usage {
            let mut pending = shard.lock().unwrap_or_else(|e| e.into_inner());
            uses.extend(
                pending
                    .drain()
                    .map(|(id, (at, address))| Use { id, at, address }),
            );
        }
        uses
    }

    /// Takes the (token, address) pairs first allowed on this node since
    /// the last call, each with the token's owner, for one
    /// [`TokenStore::note_addresses`] (the service turns what is new to
    /// the store into `token.new_address` events).
    pub fn take_addresses(&self) -> Vec<(Use, UserId)> {
        std::mem::take(
            &mut *self
                .pending_addresses
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Puts back pairs that could not be sent (the store failed), so that a
    /// later flush sends them again.
    pub fn requeue_addresses(&self, pairs: Vec<(Use, UserId)>) {
        self.pending_addresses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(pairs);
    }

    /// Takes the noted uses and writes them to the store in one call.
    pub async fn flush_usage(&self) -> Result<usize, StoreError> {
        let uses = self.take_usage();
        if !uses.is_empty() {
            self.flushing.fetch_add(uses.len(), Ordering::Relaxed);
            let written = self.store.record_last_used(&uses).await;
            self.flushing.fetch_sub(uses.len(), Ordering::Relaxed);
            written?;
        }
        Ok(uses.len())
    }

    /// Uses noted and not yet written (waiting, or being written now): the
    /// backlog of last-used tracking, shown in the server's metrics.
    pub fn usage_backlog(&self) -> usize {
        let pending: usize = self
            .pending_usage
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum();
        pending + self.flushing.load(Ordering::Relaxed)
    }

    /// Readiness: one look-up of a token that cannot exist, through the very
    /// path the check takes (a backend's check connections, its batching,
    /// its slot), so that a store the check cannot read is not "ready".
    pub async fn probe(&self) -> Result<(), StoreError> {
        let key = SecretKey {
            kind: SecretKind::Access,
            token_id: Some(TokenId(0)),
            digest: Digest::of("tessera readiness probe"),
        };
        match &self.cache {
            Some(_) => self.store.token_for_check(TokenId(0)).await.map(|_| ()),
            None => self.store.token_by_access(&key).await.map(|_| ()),
        }
    }

    /// Recognises a presented access token without the store: a Tessera
    /// access secret, or (while legacy tokens live) a legacy secret's digest.
    pub fn recognise(&self, presented: &str, now: i64) -> Result<SecretKey, Refusal> {
        if secret::has_tessera_prefix(presented) {
            return secret::parse(presented, SecretKind::Access).map_err(|_| Refusal::Malformed);
        }
        let legacy_live = now < self.legacy_horizon.load(Ordering::Relaxed);
        let plausible = !presented.is_empty()
            && presented.len() <= MAX_LEGACY_LEN
            && presented.bytes().all(|b| b.is_ascii_graphic());
        if legacy_live && plausible {
            Ok(SecretKey {
                kind: SecretKind::Access,
                token_id: None,
                digest: Digest::of(presented),
            })
        } else {
            Err(Refusal::Malformed)
        }
    }

    /// Checks `presented` (the bare token, without `Bearer `) for `method`
    /// on `raw_path` (as sent, query included) from `client`.
    pub async fn check(
        &self,
        presented: &str,
        method: &str,
        raw_path: &str,
        client: IpAddr,
    ) -> Result<Allowed, CheckError> {
        let now = self.clock.now();
        let key = self.recognise(presented, now)?;
        let path = self
            .policy
            .normaliser()
            .normalise(raw_path)
            .map_err(Refusal::Path)?;
        let token = self.record(&key).await?.ok_or(Refusal::Unknown)?;
        let mut allowed = self.decide(token, &key, method, &path, client, now)?;
        allowed.quota = self.within_rate(&allowed.token, now).await?;
        self.note_use(&allowed.token, client, now);
        Ok(allowed)
    }

    /// A rate-limited token's check counted in its window, across the
    /// fleet: from this node's share of the window when it has one left
    /// (no store call), otherwise by taking a new share from the store's
    /// count (one atomic call, the only one a check makes beyond the
    /// record's look-up); refused once the store's count has reached the
    /// limit. A store that cannot count refuses (503), never allows.
    async fn within_rate(
        &self,
        token: &TokenRecord,
        now: i64,
    ) -> Result<Option<Quota>, CheckError> {
        let Some(limit) = token.rate_limit else {
            return Ok(None);
        };
        let per = i64::from(limit.per_seconds.max(1));
        let window = now.div_euclid(per);
        let until = (window + 1) * per;
        let reset = u32::try_from(until - now).unwrap_or(limit.per_seconds);
        let quota = |counted: u64, left: u32| Quota {
            limit: limit.requests,
            // What the store has not given out, and what this node holds.
            remaining: (u64::from(limit.requests).saturating_sub(counted) + u64::from(left))
                .min(u64::from(limit.requests)) as u32,
            reset,
        };
        let shard = &self.shares[(token.id.0 % USAGE_SHARDS as u64) as usize];
        {
            let mut shares = shard.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = shares.get_mut(&token.id) {
                if s.window == window && s.limit == limit {
                    if s.left > 0 {
                        s.left -= 1;
                        return Ok(Some(quota(s.counted, s.left)));
                    }
                    if s.spent {
                        return Err(Refusal::RateLimited {
                            limit: limit.requests,
                            reset,
                        }
                        .into());
                    }
                }
            }
        }
        let take = limit.share();
        let counted = self.store.count_use(token.id, window, until, take).await?;
        let before = counted.saturating_sub(u64::from(take));
        let granted = u64::from(limit.requests)
            .saturating_sub(before)
            .min(u64::from(take)) as u32;
        let mut shares = shard.lock().unwrap_or_else(|e| e.into_inner());
        if shares.len() >= SHARES_PER_SHARD {
            shares.retain(|_, s| s.until > now);
        }
        let fresh = Share {
            window,
            limit,
            left: 0,
            counted,
            spent: false,
            until,
        };
        let s = shares.entry(token.id).or_insert(fresh);
        if s.window != window || s.limit != limit {
            *s = fresh;
        }
        s.counted = s.counted.max(counted);
        if granted == 0 {
            s.spent = true;
            return Err(Refusal::RateLimited {
                limit: limit.requests,
                reset,
            }
            .into());
        }
        // Two checks that both found the share used up both took one: keep both.
        s.left += granted - 1;
        Ok(Some(quota(s.counted, s.left)))
    }

    /// RFC 7662 introspection: the token's record when it is valid now (a
    /// well-formed, current, unrevoked, unexpired access secret), whatever
    /// the path or address; `None` otherwise. One store look-up at most.
    pub async fn introspect(
        &self,
        presented: &str,
    ) -> Result<Option<Arc<TokenRecord>>, CheckError> {
        let now = self.clock.now();
        let Ok(key) = self.recognise(presented, now) else {
            return Ok(None);
        };
        let Some(token) = self.record(&key).await? else {
            return Ok(None);
        };
        Ok(self.verify(&token, &key, now).is_ok().then_some(token))
    }

    /// The record is the presented secret's, not revoked, not expired.
    fn verify(&self, token: &TokenRecord, key: &SecretKey, now: i64) -> Result<(), Refusal> {
        // The store matched the digest; compare again here (constant time) so
        // that a backend looking up by id can never allow a wrong secret.
        if token.access_digest != key.digest || key.token_id.is_some_and(|id| id != token.id) {
            return Err(Refusal::Unknown);
        }
        if token.revoked_at.is_some() {
            return Err(Refusal::Revoked);
        }
        if !self.policy.access_valid(token, now) {
            return Err(Refusal::Expired);
        }
        Ok(())
    }

    /// The in-memory part of the check, after the one look-up.
    fn decide(
        &self,
        token: Arc<TokenRecord>,
        key: &SecretKey,
        method: &str,
        path: &crate::path::NormalPath,
        client: IpAddr,
        now: i64,
    ) -> Result<Allowed, CheckError> {
        self.verify(&token, key, now)?;
        if !token.allowed_ips.allows(client) {
            return Err(Refusal::Address.into());
        }
        if !token.scope.allows(self.policy.rules(), method, path) {
            return Err(Refusal::Scope.into());
        }
        Ok(Allowed { token, quota: None })
    }

    /// Notes an allowed check's use (its time and address), in memory only.
    fn note_use(&self, token: &Arc<TokenRecord>, client: IpAddr, now: i64) {
        // Coalesced last-used tracking: only when the stored time is a
        // minute old (so at most one write per token per minute), and only
        // into memory here.
        if token
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_EVERY)
            && self.track_usage.load(Ordering::Relaxed)
        {
            self.pending_usage[(token.id.0 % USAGE_SHARDS as u64) as usize]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(token.id)
                .or_insert((now, client));
            // The cached record now says so, so this node notes the next
            // use only after another interval.
            if let Some(c) = &self.cache {
                c.note_use(token, now);
            }
        }
        if self.track_usage.load(Ordering::Relaxed) {
            self.note_address(token, client, now);
        }
    }

    /// Queues (token, client) for the store's address book the first time
    /// this node allows that pair: a set look-up per allowed check, a
    /// queue push only for a new pair; nothing is written here.
    fn note_address(&self, token: &TokenRecord, client: IpAddr, now: i64) {
        let shard = &self.known_addresses[(token.id.0 % USAGE_SHARDS as u64) as usize];
        let mut known = shard.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(&(token.id, client)) {
            return;
        }
        if known.len() >= KNOWN_PER_SHARD {
            known.clear();
        }
        known.insert((token.id, client));
        drop(known);
        let used = Use {
            id: token.id,
            at: now,
            address: client,
        };
        self.pending_addresses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((used, token.user_id));
    }
}
