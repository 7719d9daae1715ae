//! The check's exact local cache of token records.
//!
//! **Architecture invariant: a node never allows what it could have been
//! told is no longer allowed.** The cache holds *records* (never decisions:
//! expiry, address list and scope are decided per request from the record),
//! and a record leaves it as soon as the node hears that it changed:
//! * the node's own writes forget the record before they answer
//!   ([`Cache::forget`], called by [`crate::service`]);
//! * other nodes' writes arrive on the store's change stream
//!   ([`crate::feed`]), which [`follow`] applies;
//! * a read that raced a change is never kept: every shard has a generation,
//!   bumped by every change it hears of, and a record read from the store is
//!   kept only if its shard's generation did not move while it was read;
//! * **fail closed**: records are served only while a heartbeat sent through
//!   the stream came back within the staleness bound. A late heartbeat or a
//!   cut stream empties the cache, and every check reads the store until a
//!   new subscription's heartbeat has come back.
//!
//! Records are kept by token id (the id is written in every Tessera secret),
//! so a forged secret for a cached id is refused from memory: the check
//! compares the digest against the record in constant time. Ids no stored
//! token has are kept too (as absent), and ids beyond the highest issued one
//! are refused after one shared read of that bound, so a flood of unknown
//! tokens does not cost a store round trip each. Legacy tokens (no id in
//! their text) are not cached.
//!
//! Bounded: at most `capacity` entries, split over shards; a full shard
//! drops an arbitrary entry (the hash map's first) to make room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::feed::{Change, ChangeFeed};
use crate::model::{TokenId, TokenRecord};
use crate::secret::Digest;
use crate::store::TokenStore;

/// Most shards; fewer when the capacity is smaller.
const SHARDS: usize = 64;

/// Heartbeats per staleness bound: a beat every quarter of it, so that one
/// late or lost beat does not yet make the cache stale.
const BEATS_PER_BOUND: u32 = 4;

/// What [`Cache::lookup`] found.
#[derive(Debug)]
pub enum Lookup {
    /// The token's current record, whose access digest is the one presented.
    Hit(Arc<TokenRecord>),
    /// No stored token has this id, or its record (read from the store
    /// within the last heartbeat interval) holds another access digest: a
    /// forged secret, refused from memory.
    Absent,
    /// Not known here: read the store, then [`Cache::fill`] with the ticket.
    Miss(Ticket),
}

/// Permission to keep what a store read returned: valid only if nothing
/// changed in the shard, and the cache stayed fresh, since it was taken.
#[derive(Debug)]
pub struct Ticket {
    /// `None` when the cache was stale: nothing may be kept.
    shard: Option<(usize, u64)>,
}

/// One cached id.
#[derive(Debug)]
enum Slot {
    /// The record, and when it was read from the store (µs).
    Present(Arc<TokenRecord>, u64),
    Absent,
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<TokenId, (Slot, usize)>,
    /// Bumped by every change heard of in this shard.
    generation: u64,
}

/// The cache's figures, for `/metrics` (all zero: no cache).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStatus {
    /// Entries held (records and absent ids).
    pub entries: usize,
    /// Approximate bytes the entries hold.
    pub bytes: usize,
    /// The capacity in entries.
    pub capacity: usize,
    /// Whether records are served now (the stream's heartbeat is recent).
    pub fresh: bool,
    /// Checks answered from memory.
    pub hits: u64,
    /// Checks that read the store.
    pub misses: u64,
    /// Times the whole cache was emptied.
    pub clears: u64,
    /// Subscriptions to the change stream (1 + reconnections).
    pub subscriptions: u64,
    /// Times the stream was cut or could not be subscribed.
    pub cuts: u64,
}

/// The exact local cache (see the module doc).
pub struct Cache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    capacity: usize,
    staleness: Duration,
    /// Monotonic origin of the millisecond figures below.
    origin: Instant,
    /// Records are served while `now_us() < fresh_until`; 0: stale (µs).
    fresh_until: AtomicU64,
    /// When the current subscription was made, or the store last failed a
    /// read (µs): beats sent before it prove nothing.
    subscribed_at: AtomicU64,
    /// When the newest beat accepted on this subscription was sent (µs).
    caught_up: AtomicU64,
    /// This node's beats carry this, so that other nodes' are ignored.
    node: u64,
    /// Highest token id known to exist, plus one (0: none known).
    highest: AtomicU64,
    /// Serialises reads of the highest id; see [`Cache::beyond`].
    highest_read: tokio::sync::Mutex<()>,
    highest_started: AtomicU64,
    highest_done: AtomicU64,
    entries: AtomicUsize,
    bytes: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
    clears: AtomicU64,
    subscriptions: AtomicU64,
    cuts: AtomicU64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// Approximate bytes one record holds.
fn record_bytes(t: &TokenRecord) -> usize {
    std::mem::size_of::<TokenRecord>()
        + t.user_name.len()
        + t.name.len()
        + t.scope
            .endpoint_strings()
            .iter()
            .map(|e| e.len() + 24)
            .sum::<usize>()
        + t.allowed_ips
            .entries()
            .iter()
            .map(|e| e.len() + 24)
            .sum::<usize>()
}

impl Cache {
    /// A cache of at most `capacity` (> 0) entries that serves records only
    /// while the change stream's heartbeat is at most `staleness` old. It
    /// starts stale: nothing is served until [`follow`] has subscribed and
    /// its first heartbeat has come back.
    pub fn new(capacity: usize, staleness: Duration) -> Self {
        let capacity = capacity.max(1);
        let shards = SHARDS.min(capacity);
        Cache {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(shards),
            capacity,
            staleness,
            origin: Instant::now(),
            fresh_until: AtomicU64::new(0),
            subscribed_at: AtomicU64::new(0),
            caught_up: AtomicU64::new(0),
            node: rand::RngCore::next_u64(&mut rand::rngs::OsRng),
            highest: AtomicU64::new(0),
            highest_read: tokio::sync::Mutex::new(()),
            highest_started: AtomicU64::new(0),
            highest_done: AtomicU64::new(0),
            entries: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            clears: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
        }
    }

    /// Microseconds on the cache's monotonic clock (fine enough that a
    /// mark taken after a change and a beat sent before it never share a
    /// tick); +1 so that 0 always means "never".
    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64 + 1
    }

    fn shard_of(&self, id: TokenId) -> usize {
        (id.0 % self.shards.len() as u64) as usize
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic under the lock leaves the map whole (every change is one
        // insert or remove), so poisoning is ignored.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cache's own monotonic clock, in microseconds (what
    /// [`Cache::caught_up_to`] is measured in).
    pub fn clock(&self) -> u64 {
        self.now_us()
    }

    /// When the newest heartbeat that came back on the current subscription
    /// was sent (0: none yet). Every change committed before then has been
    /// applied: a test waits for this to pass a mark taken after a change.
    pub fn caught_up_to(&self) -> u64 {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Whether records may be served now.
    pub fn is_fresh(&self) -> bool {
        self.now_us() < self.fresh_until.load(Ordering::Acquire)
    }

    /// What the cache knows of the token `id` presented with access digest
    /// `digest`. While stale, always a miss whose ticket keeps nothing.
    ///
    /// A cached record with another digest may be a forgery or a renewal on
    /// another node not heard of yet. The record is read again only if it
    /// was read more than a heartbeat interval ago: a rotation made since
    /// the last read has then had time to be heard of, and a flood of
    /// forged secrets for one id costs at most one store read per interval.
    pub fn lookup(&self, id: TokenId, digest: &Digest) -> Lookup {
        if !self.is_fresh() {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss(Ticket { shard: None });
        }
        let i = self.shard_of(id);
        let shard = self.lock(i);
        let miss = || {
            Lookup::Miss(Ticket {
                shard: Some((i, shard.generation)),
            })
        };
        let found = match shard.map.get(&id) {
            Some((Slot::Present(t, _), _)) if t.access_digest == *digest => Lookup::Hit(t.clone()),
            Some((Slot::Present(_, read_at), _))
                if self.now_us().saturating_sub(*read_at)
                    < self.beat_every().as_micros() as u64 =>
            {
                Lookup::Absent
            }
            Some((Slot::Present(..), _)) => miss(),
            Some((Slot::Absent, _)) => Lookup::Absent,
            None => miss(),
        };
        drop(shard);
        let counter = match found {
            Lookup::Miss(_) => &self.misses,
            _ => &self.hits,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps what the store said of `id` (`None`: no such token), unless the
    /// shard changed or the cache went stale since `ticket` was taken.
    pub fn fill(&self, ticket: Ticket, id: TokenId, record: Option<Arc<TokenRecord>>) {
        let Some((i, generation)) = ticket.shard else {
            return;
        };
        if !self.is_fresh() {
            return;
        }
        if let Some(t) = &record {
            if t.id != id {
                return; // a backend's mistake is not kept
            }
        }
        let (slot, size) = match record {
            Some(t) => {
                let size = record_bytes(&t);
                (Slot::Present(t, self.now_us()), size)
            }
            None => (Slot::Absent, std::mem::size_of::<(TokenId, Slot, usize)>()),
        };
        let mut shard = self.lock(i);
        if shard.generation != generation {
            return;
        }
        if !shard.map.contains_key(&id) && shard.map.len() >= self.per_shard {
            if let Some(victim) = shard.map.keys().next().copied() {
                self.remove(&mut shard, victim);
            }
        }
        if let Some((_, old)) = shard.map.insert(id, (slot, size)) {
            self.bytes.fetch_sub(old, Ordering::Relaxed);
        } else {
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    fn remove(&self, shard: &mut Shard, id: TokenId) {
        if let Some((_, size)) = shard.map.remove(&id) {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            self.bytes.fetch_sub(size, Ordering::Relaxed);
        }
    }

    /// Replaces a cached record by the same record with a later last use, so
    /// that a node notes (and writes) a token's use at most once per
    /// interval. Only if `seen` is still the cached record.
    pub fn note_use(&self, seen: &Arc<TokenRecord>, at: i64) {
        let i = self.shard_of(seen.id);
        let mut shard = self.lock(i);
        if let Some((Slot::Present(t, _), _)) = shard.map.get_mut(&seen.id) {
            if Arc::ptr_eq(t, seen) {
                let mut used = TokenRecord::clone(seen);
                used.last_used_at = Some(at);
                *t = Arc::new(used);
            }
        }
    }

    /// Forgets these ids (a change this node made or heard of).
    pub fn forget(&self, ids: &[TokenId]) {
        for &id in ids {
            self.bump_highest(id);
            let i = self.shard_of(id);
            let mut shard = self.lock(i);
            shard.generation += 1;
            self.remove(&mut shard, id);
        }
    }

    /// Empties the cache (a change it cannot itemise; a stale stream).
    pub fn clear(&self) {
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            shard.generation += 1;
            let ids: Vec<TokenId> = shard.map.keys().copied().collect();
            for id in ids {
                self.remove(&mut shard, id);
            }
        }
        self.clears.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies one message of the change stream.
    pub fn apply(&self, change: &Change) {
        match change {
            Change::Tokens(ids) => self.forget(ids),
            Change::All => self.clear(),
            Change::Beat(text) => self.on_beat(text),
        }
    }

    /// The text of this node's next heartbeat: the node, and when it is sent.
    pub fn beat_text(&self) -> String {
        format!("{:x}:{}", self.node, self.now_us())
    }

    fn on_beat(&self, text: &str) {
        let Some((node, sent)) = text.split_once(':') else {
            return;
        };
        let (Ok(node), Ok(sent)) = (u64::from_str_radix(node, 16), sent.parse::<u64>()) else {
            return;
        };
        let now = self.now_us();
        if node != self.node || sent > now || sent < self.subscribed_at.load(Ordering::Acquire) {
            return;
        }
        // Back from stale: nothing cached before may be trusted.
        if now >= self.fresh_until.load(Ordering::Acquire) {
            self.clear();
        }
        self.caught_up.fetch_max(sent, Ordering::AcqRel);
        let until = sent + self.staleness.as_micros() as u64;
        self.fresh_until.fetch_max(until, Ordering::AcqRel);
    }

    /// A new subscription: stale until its first heartbeat, and empty.
    pub fn on_subscribed(&self) {
        self.fresh_until.store(0, Ordering::Release);
        self.caught_up.store(0, Ordering::Release);
        self.subscribed_at.store(self.now_us(), Ordering::Release);
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
        self.clear();
    }

    /// The stream was cut (or could not be subscribed): stale, and empty.
    pub fn on_cut(&self) {
        self.fresh_until.store(0, Ordering::Release);
        self.caught_up.store(0, Ordering::Release);
        self.cuts.fetch_add(1, Ordering::Relaxed);
        self.clear();
    }

    /// The store failed a read (readiness, or a check's miss): the node now
    /// knows the store may be down or damaged, so the cache is stale and
    /// empty until a heartbeat sent after this moment comes back. What the
    /// node's readiness says is then what its checks meet.
    pub fn distrust(&self) {
        self.subscribed_at
            .fetch_max(self.now_us(), Ordering::AcqRel);
        self.fresh_until.store(0, Ordering::Release);
        self.clear();
    }

    /// Empties the cache if the heartbeat is late (called on every beat
    /// tick); checks already refuse to serve it by then.
    pub fn expire_if_late(&self) {
        if !self.is_fresh() && self.entries.load(Ordering::Relaxed) > 0 {
            self.clear();
        }
    }

    fn bump_highest(&self, id: TokenId) {
        self.highest
            .fetch_max(id.0.saturating_add(1), Ordering::AcqRel);
    }

    /// Whether `id` lies beyond every stored token's id. Exact: true only
    /// after a read of the store's bound that began after this call did.
    /// Concurrent callers share reads: at most one is under way, and each
    /// caller waits for one that began after it arrived.
    pub async fn beyond(&self, id: TokenId, store: &dyn TokenStore) -> Result<bool, StoreError> {
        // (`u64::MAX`: a store that knows no bound; every id may exist.)
        let known = |c: &Cache| {
            let h = c.highest.load(Ordering::Acquire);
            id.0 < h || h == u64::MAX
        };
        if known(self) {
            return Ok(false);
        }
        let arrived = self.highest_started.load(Ordering::Acquire);
        let _one = self.highest_read.lock().await;
        if known(self) {
            return Ok(false);
        }
        if self.highest_done.load(Ordering::Acquire) <= arrived {
            let number = self.highest_started.fetch_add(1, Ordering::AcqRel) + 1;
            if let Some(h) = store.highest_token_id().await? {
                self.bump_highest(h);
            }
            self.highest_done.store(number, Ordering::Release);
        }
        Ok(!known(self))
    }

    /// The cache's figures.
    pub fn status(&self) -> CacheStatus {
        CacheStatus {
            entries: self.entries.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            capacity: self.capacity,
            fresh: self.is_fresh(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            clears: self.clears.load(Ordering::Relaxed),
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
            cuts: self.cuts.load(Ordering::Relaxed),
        }
    }

    /// How often [`follow`] sends a heartbeat.
    pub fn beat_every(&self) -> Duration {
        (self.staleness / BEATS_PER_BOUND).max(Duration::from_millis(1))
    }
}

/// Keeps `cache` exact from `feed`, for ever: subscribes (again after every
/// cut, after `retry`), applies every message, sends a heartbeat every
/// quarter of the staleness bound and empties the cache when one is late.
/// `on_cut` hears why a subscription ended or could not be made (the server
/// logs it). Run it on its own task; dropping it leaves the cache stale.
pub async fn follow(
    cache: &Cache,
    feed: &dyn ChangeFeed,
    retry: Duration,
    on_cut: &(dyn Fn(&StoreError) + Send + Sync),
) {
    loop {
        let mut stream = match feed.subscribe().await {
            Ok(stream) => stream,
            Err(e) => {
                cache.on_cut();
                on_cut(&e);
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        cache.on_subscribed();
        let receive = async {
            loop {
                match stream.next().await {
                    Ok(change) => cache.apply(&change),
                    Err(e) => return e,
                }
            }
        };
        let send = async {
            let mut tick = tokio::time::interval(cache.beat_every());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                cache.expire_if_late();
                // A beat that cannot be sent simply does not come back: the
                // cache goes stale on its own.
                let _ = feed.beat(&cache.beat_text()).await;
            }
        };
        let e = tokio::select! {
            e = receive => e,
            _ = send => unreachable!("the heartbeat loop never ends"),
        };
        cache.on_cut();
        on_cut(&e);
        tokio::time::sleep(retry).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::model::Role;
    use crate::scope::TokenType;
    use crate::store::Store;
    use crate::testkit::{new_token, user, T0};

    const BOUND: Duration = Duration::from_secs(3600);

    fn fresh_cache(capacity: usize) -> Cache {
        let c = Cache::new(capacity, BOUND);
        c.on_subscribed();
        c.apply(&Change::Beat(c.beat_text()));
        assert!(c.is_fresh());
        c
    }

    async fn record(store: &Arc<dyn Store>) -> Arc<TokenRecord> {
        let u = user(store, "ann", Role::User).await;
        let (t, _, _) = new_token(store, &u, TokenType::ALL).await;
        Arc::new(t)
    }

    fn hit(c: &Cache, t: &TokenRecord) -> Option<Arc<TokenRecord>> {
        match c.lookup(t.id, &t.access_digest) {
            Lookup::Hit(t) => Some(t),
            _ => None,
        }
    }

    /// A fresh cache of capacity 10 holding one record.
    async fn holding_one() -> (Cache, Arc<TokenRecord>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = record(&store).await;
        let c = fresh_cache(10);
        let k = ticket(&c, t.id);
        c.fill(k, t.id, Some(t.clone()));
        (c, t)
    }

    fn ticket(c: &Cache, id: TokenId) -> Ticket {
        match c.lookup(id, &Digest::of("any")) {
            Lookup::Miss(t) => t,
            other => panic!("expected a miss, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_fill_is_served_until_forgotten() {
        let (c, t) = holding_one().await;
        assert!(Arc::ptr_eq(&hit(&c, &t).unwrap(), &t));
        assert_eq!(c.status().entries, 1);
        assert!(c.status().bytes > std::mem::size_of::<TokenRecord>());
        c.forget(&[t.id]);
        assert!(hit(&c, &t).is_none());
        assert_eq!((c.status().entries, c.status().bytes), (0, 0));
    }

    #[tokio::test]
    async fn a_read_that_raced_a_change_is_not_kept() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = record(&store).await;
        let c = fresh_cache(10);
        let k = ticket(&c, t.id);
        c.apply(&Change::Tokens(vec![t.id])); // heard while reading
        c.fill(k, t.id, Some(t.clone()));
        assert!(hit(&c, &t).is_none());
        let k = ticket(&c, t.id);
        c.apply(&Change::All);
        c.fill(k, t.id, None);
        assert!(matches!(c.lookup(t.id, &t.access_digest), Lookup::Miss(_)));
    }

    #[tokio::test]
    async fn nothing_is_served_or_kept_while_stale() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = record(&store).await;
        let c = Cache::new(10, BOUND);
        assert!(!c.is_fresh(), "a new cache starts stale");
        let k = ticket(&c, t.id);
        c.fill(k, t.id, Some(t.clone()));
        assert_eq!(c.status().entries, 0);

        let c = fresh_cache(10);
        let k = ticket(&c, t.id);
        c.fill(k, t.id, Some(t.clone()));
        c.on_cut();
        assert!(!c.is_fresh());
        assert_eq!(c.status().entries, 0);
        assert!(hit(&c, &t).is_none());
        // A beat sent before the new subscription proves nothing.
        let old = c.beat_text();
        std::thread::sleep(Duration::from_millis(2));
        c.on_subscribed();
        c.apply(&Change::Beat(old));
        assert!(!c.is_fresh());
        c.apply(&Change::Beat(c.beat_text()));
        assert!(c.is_fresh());
    }

    #[tokio::test]
    async fn a_failed_store_read_distrusts_the_cache_until_a_later_beat() {
        let (c, t) = holding_one().await;
        let before = c.beat_text();
        // The cache's clock is in µs: wait for it to move past the beat.
        let mark = c.clock();
        while c.clock() <= mark {
            std::hint::spin_loop();
        }
        c.distrust();
        assert!(!c.is_fresh());
        assert_eq!(c.status().entries, 0);
        assert!(hit(&c, &t).is_none());
        // A beat sent before the failure (still in flight) proves nothing.
        c.apply(&Change::Beat(before));
        assert!(!c.is_fresh());
        c.apply(&Change::Beat(c.beat_text()));
        assert!(c.is_fresh());
    }

    #[tokio::test]
    async fn a_late_heartbeat_makes_the_cache_stale_and_empty() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = record(&store).await;
        let c = Cache::new(10, Duration::from_millis(20));
        c.on_subscribed();
        c.apply(&Change::Beat(c.beat_text()));
        let k = ticket(&c, t.id);
        c.fill(k, t.id, Some(t.clone()));
        assert!(hit(&c, &t).is_some());
        // Polled with a deadline: the bound passes without a beat.
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.is_fresh() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(hit(&c, &t).is_none());
        c.expire_if_late();
        assert_eq!(c.status().entries, 0);
    }

    #[tokio::test]
    async fn other_nodes_beats_are_ignored() {
        let c = Cache::new(10, BOUND);
        c.on_subscribed();
        let other = Cache::new(10, BOUND);
        c.apply(&Change::Beat(other.beat_text()));
        for junk in ["", "x", "zz:1", "1:x", &format!("{:x}:99999999999", c.node)] {
            c.apply(&Change::Beat(junk.to_owned()));
        }
        assert!(!c.is_fresh());
    }

    #[tokio::test]
    async fn capacity_bounds_the_entries() {
        let c = fresh_cache(100);
        for id in 0..1000 {
            let k = ticket(&c, TokenId(id));
            c.fill(k, TokenId(id), None);
        }
        let s = c.status();
        assert!(s.entries <= 100 + SHARDS, "{s:?}");
        assert!(s.entries >= 64, "{s:?}");
        let c = fresh_cache(3);
        for id in 0..50 {
            let k = ticket(&c, TokenId(id));
            c.fill(k, TokenId(id), None);
        }
        assert_eq!(c.status().entries, 3);
    }

    #[tokio::test]
    async fn ids_beyond_the_highest_are_known_after_one_read() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = record(&store).await;
        let c = fresh_cache(10);
        assert!(!c.beyond(t.id, &*store).await.unwrap());
        assert!(c.beyond(TokenId(t.id.0 + 1), &*store).await.unwrap());
        // A token inserted since is found: every call reads again.
        let u = store.user_by_name("ann").await.unwrap().unwrap();
        let (t2, _, _) = new_token(&store, &u, TokenType::ALL).await;
        assert!(!c.beyond(t2.id, &*store).await.unwrap());
        assert!(c.beyond(TokenId(u64::MAX), &*store).await.unwrap());
    }

    #[tokio::test]
    async fn another_digest_is_refused_from_memory_then_read_again() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = record(&store).await;
        let c = Cache::new(10, Duration::from_millis(40));
        c.on_subscribed();
        c.apply(&Change::Beat(c.beat_text()));
        let k = ticket(&c, t.id);
        c.fill(k, t.id, Some(t.clone()));
        let forged = Digest::of("forged");
        assert!(matches!(c.lookup(t.id, &forged), Lookup::Absent));
        // A heartbeat interval after the read, the record is read again
        // (it may have been renewed on another node).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            c.apply(&Change::Beat(c.beat_text()));
            if let Lookup::Miss(k) = c.lookup(t.id, &forged) {
                c.fill(k, t.id, Some(t.clone()));
                break;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(matches!(c.lookup(t.id, &forged), Lookup::Absent));
        assert!(hit(&c, &t).is_some());
    }

    #[tokio::test]
    async fn a_noted_use_replaces_only_the_record_seen() {
        let (c, t) = holding_one().await;
        c.note_use(&t, T0 + 5);
        let now = hit(&c, &t).unwrap();
        assert_eq!(now.last_used_at, Some(T0 + 5));
        c.note_use(&t, T0 + 9); // no longer the cached one
        assert_eq!(hit(&c, &t).unwrap().last_used_at, Some(T0 + 5));
    }
}
