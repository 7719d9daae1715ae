//! The core's storage traits over Redis (layout and guarantees: crate docs).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use redis::{Script, Value};
use tessera_core::feed::{ChangeFeed, ChangeStream};
use tessera_core::model::{
    Event, EventId, EventQuery, LoggedEvent, NewAddress, NewUser, RefreshLookup, RotateOutcome,
    Rotation, SessionRecord, Timestamp, TokenChanges, TokenId, TokenRecord, Use, User, UserId,
};
use tessera_core::notify::{Backlog, Claimed, Delivery, DeliveryId, Settle};
use tessera_core::secret::password::PasswordHash;
use tessera_core::secret::{Digest, SecretKey};
use tessera_core::store::{Outbox, SessionStore, Store, StoreResult, TokenStore, UserStore};
use tessera_core::StoreError;

use crate::codec::{
    self, array, corrupt, decode_token, int, required, tagged, text, texts, SESSION_FIELDS,
    TOKEN_FIELDS, USER_FIELDS,
};
use crate::conn::{Batch, Order};
use crate::{Loc, RedisStore};

/// What a by-id script said, and where the record was.
struct ById {
    /// The script's status word (`none` when there is no such token).
    tag: String,
    /// The rest of the reply.
    rest: Vec<Value>,
    /// Where the record was found (a legacy token is reached through its pointer).
    loc: Loc,
}

/// Event ids read per round trip of a page of the trail or of its sweep.
const EVENTS_PAGE: usize = 500;

/// How far apart in time (seconds) the nodes writing the trail may be:
/// reading down a trail for events since T, one older than T by this much
/// ends the read.
const EVENT_CLOCK_SLACK: i64 = 3600;

/// Uses written by one pipeline of [`TokenStore::record_last_used`].
const LAST_USED_PIPELINE: usize = 500;

/// Records the sweep visits, or a listing reads, per batch (one user's
/// tokens or sessions, a page at a time).
const SWEEP_PIPELINE: usize = 500;

impl RedisStore {
    /// A batch that ends the sessions of `user` named by `digests` (hex),
    /// one script each (each checks the owner), in order, so that the
    /// caller may queue the index's update after them.
    fn ending_sessions(&self, user: UserId, digests: &[String]) -> Batch<'_> {
        let mut p = Self::pipe_with(Order::InOrder, &[&self.scripts.delete_session]);
        for hex in digests {
            if let Some(d) = Digest::from_hex(hex) {
                let mut inv = self.scripts.delete_session.prepare_invoke();
                inv.key(self.keys.session(&d)).arg(user.0);
                p.invoke(&self.scripts.delete_session, &inv).ignore();
            }
        }
        p
    }

    /// The bodies of these events (`None` for one swept meanwhile).
    async fn event_bodies_of<T: redis::ToRedisArgs + Send + Sync>(
        &self,
        ids: &[T],
    ) -> StoreResult<Vec<Option<String>>> {
        texts(
            self.cmd(redis::cmd("HMGET").arg(self.keys.event_bodies()).arg(ids))
                .await?,
        )
    }

    /// The indexes an event is kept in besides the whole trail: the users
    /// it concerns or who did it, and the token it concerns.
    fn event_indexes(&self, e: &Event) -> Vec<String> {
        let mut users: Vec<UserId> = e.user_id.into_iter().chain(e.actor_user()).collect();
        users.dedup();
        let mut keys: Vec<String> = users
            .into_iter()
            .map(|u| self.keys.user_events(u))
            .collect();
        keys.extend(e.token_id.map(|t| self.keys.token_events(t)));
        keys
    }

    /// Writes the last-used times of `uses` in one pipeline (and a second
    /// for legacy tokens, reached through their pointer).
    async fn last_used_chunk(&self, uses: &[Use]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let script = &self.scripts.last_used;
        let mut p = Self::pipe_with(Order::Any, &[script]);
        for u in uses {
            let loc = Loc::Token(u.id);
            let mut inv = script.prepare_invoke();
            inv.key(self.keys.rec(&loc))
                .key(self.keys.ptr(&loc))
                .key(self.keys.spent(&loc))
                .arg(u.at)
                .arg(u.address.to_string());
            p.invoke(script, &inv);
        }
        let replies = self.pipe(&p).await?;
        // Legacy tokens answered with their pointer: a second round for them.
        let mut legacy = Self::pipe_with(Order::Any, &[script]);
        let mut any = false;
        for (u, reply) in uses.iter().zip(replies) {
            let (tag, rest) = tagged(reply)?;
            if tag != "moved" {
                continue;
            }
            let hex = required(
                rest.into_iter().next().unwrap_or_default(),
                "legacy pointer",
            )?;
            let loc = Loc::Legacy(u.id, codec::digest(&hex, "legacy pointer")?.to_hex());
            let mut inv = script.prepare_invoke();
            inv.key(self.keys.rec(&loc))
                .key(self.keys.ptr(&loc))
                .key(self.keys.spent(&loc))
                .arg(u.at)
                .arg(u.address.to_string());
            legacy.invoke(script, &inv).ignore();
            any = true;
        }
        if any {
            self.pipe(&legacy).await?;
        }
        Ok(())
    }

    /// `HMGET` of a token record's fields.
    fn hmget_token(&self, loc: &Loc) -> redis::Cmd {
        let mut c = redis::cmd("HMGET");
        c.arg(self.keys.rec(loc)).arg(&TOKEN_FIELDS[..]);
        c
    }

    /// Reads the token record at `loc`.
    async fn read_token(&self, loc: &Loc) -> StoreResult<Option<TokenRecord>> {
        decode_token(texts(self.cmd(&self.hmget_token(loc)).await?)?)
    }

    /// Runs a by-id script (`KEYS`: rec, ptr, spent) on the token's slot,
    /// following a legacy pointer once if the script meets one.
    async fn by_id(&self, script: &Script, id: TokenId, args: &[String]) -> StoreResult<ById> {
        let mut loc = Loc::Token(id);
        for _ in 0..2 {
            let mut inv = script.prepare_invoke();
            inv.key(self.keys.rec(&loc))
                .key(self.keys.ptr(&loc))
                .key(self.keys.spent(&loc));
            for a in args {
                inv.arg(a);
            }
            let (tag, mut rest) = tagged(self.script(&inv).await?)?;
            if tag != "moved" {
                return Ok(ById { tag, rest, loc });
            }
            let hex = required(rest.pop().unwrap_or_default(), "legacy pointer")?;
            let hex = codec::digest(&hex, "legacy pointer")?.to_hex();
            loc = Loc::Legacy(id, hex);
        }
        Err(corrupt("a legacy pointer leads to another pointer"))
    }

    /// After a legacy record changed: keep its pointer's expiry with the
    /// record's, and the legacy horizon in step (`expiry` = `Some` to list it
    /// at that access expiry, `None` to drop it).
    async fn legacy_follow_up(
        &self,
        id: TokenId,
        expire_at: Option<String>,
        expiry: Option<Timestamp>,
    ) -> StoreResult<()> {
        let mut p = Batch::new(Order::Any);
        if let Some(at) = expire_at.filter(|a| !a.is_empty()) {
            p.cmd("EXPIREAT", self.keys.ptr(&Loc::Token(id)))
                .arg(at)
                .ignore();
        }
        match expiry {
            Some(exp) => p.cmd("ZADD", self.keys.horizon()).arg(exp).arg(id.0),
            None => p.cmd("ZREM", self.keys.horizon()).arg(id.0),
        }
        .ignore();
        self.pipe(&p).await.map(drop)
    }

    /// Reads a sorted set of index members (a user's tokens, in id order).
    async fn index_members(&self, key: String) -> StoreResult<Vec<String>> {
        let v = self
            .cmd(redis::cmd("ZRANGE").arg(key).arg(0).arg(-1))
            .await?;
        array(v)?
            .into_iter()
            .map(|m| required(m, "index member"))
            .collect()
    }

    /// Reads a set's members.
    async fn set_members(&self, key: String) -> StoreResult<Vec<String>> {
        let v = self.cmd(redis::cmd("SMEMBERS").arg(key)).await?;
        array(v)?
            .into_iter()
            .map(|m| required(m, "set member"))
            .collect()
    }

    /// Revokes the tokens named by `members` (of a user's index) at `now`,
    /// each only if `owner` owns it. Idempotent.
    async fn revoke_members(
        &self,
        members: &[String],
        now: Timestamp,
        owner: UserId,
    ) -> StoreResult<()> {
        if members.is_empty() {
            return Ok(());
        }
        let locs: Vec<Loc> = members
            .iter()
            .map(|m| Loc::from_member(m).ok_or_else(|| corrupt("a token index entry is malformed")))
            .collect::<StoreResult<_>>()?;
        let mut p = Self::pipe_with(Order::Any, &[&self.scripts.revoke]);
        for loc in &locs {
            let mut inv = self.scripts.revoke.prepare_invoke();
            inv.key(self.keys.rec(loc))
                .key(self.keys.ptr(loc))
                .key(self.keys.spent(loc))
                .arg(now)
                .arg(self.retention_secs)
                .arg(owner.0);
            p.invoke(&self.scripts.revoke, &inv);
        }
        let replies = self.pipe(&p).await?;
        for (loc, reply) in locs.iter().zip(replies) {
            let (tag, mut rest) = tagged(reply)?;
            if let Loc::Legacy(id, _) = loc {
                if tag == "revoked" || tag == "already" {
                    let at = rest.drain(..).next().map(text).transpose()?.flatten();
                    self.legacy_follow_up(*id, at, None).await?;
                }
            }
        }
        Ok(())
    }

    /// Sweeps one user's indexes; returns how many records left.
    async fn sweep_user(
        &self,
        uid: UserId,
        before: Timestamp,
        sessions_before: Timestamp,
    ) -> StoreResult<u64> {
        let mut removed = 0;
        let tokens_key = self.keys.user_tokens(uid);
        let all_members = self.index_members(tokens_key.clone()).await?;
        // A page at a time: one user's tens of thousands of tokens in one
        // batch held the connection past the command timeout, so the sweep
        // failed and every call sharing the connection waited behind it.
        for members in all_members.chunks(SWEEP_PIPELINE) {
            let mut p = Self::pipe_with(Order::Any, &[&self.scripts.sweep_token]);
            let locs: Vec<Option<Loc>> = members.iter().map(|m| Loc::from_member(m)).collect();
            for loc in locs.iter().flatten() {
                let mut inv = self.scripts.sweep_token.prepare_invoke();
                inv.key(self.keys.rec(loc))
                    .key(self.keys.spent(loc))
                    .arg(before);
                p.invoke(&self.scripts.sweep_token, &inv);
            }
            let mut replies = self.pipe(&p).await?.into_iter();
            let mut follow = Batch::new(Order::Any);
            for (member, loc) in members.iter().zip(&locs) {
                let Some(loc) = loc else {
                    // An entry nobody could have written: drop it.
                    follow.cmd("ZREM", &tokens_key).arg(member).ignore();
                    continue;
                };
                let status = required(
                    replies
                        .next()
                        .ok_or_else(|| corrupt("sweep reply is short"))?,
                    "sweep status",
                )?;
                if status == "live" {
                    continue;
                }
                if status == "swept" {
                    removed += 1;
                }
                follow.cmd("ZREM", &tokens_key).arg(member).ignore();
                if let Loc::Legacy(id, _) = loc {
                    follow.cmd("DEL", self.keys.ptr(&Loc::Token(*id))).ignore();
                    follow.cmd("ZREM", self.keys.horizon()).arg(id.0).ignore();
                }
            }
            if !follow.is_empty() {
                self.pipe(&follow).await?;
            }
        }
        let sessions_key = self.keys.user_sessions(uid);
        let all_digests = self.set_members(sessions_key.clone()).await?;
        for digests in all_digests.chunks(SWEEP_PIPELINE) {
            let mut p = Self::pipe_with(Order::Any, &[&self.scripts.sweep_session]);
            let parsed: Vec<Option<Digest>> = digests.iter().map(|h| Digest::from_hex(h)).collect();
            for d in parsed.iter().flatten() {
                let mut inv = self.scripts.sweep_session.prepare_invoke();
                inv.key(self.keys.session(d)).arg(sessions_before);
                p.invoke(&self.scripts.sweep_session, &inv);
            }
            let mut replies = self.pipe(&p).await?.into_iter();
            let mut follow = Batch::new(Order::Any);
            for (hex, d) in digests.iter().zip(&parsed) {
                if d.is_some() {
                    let status = required(
                        replies
                            .next()
                            .ok_or_else(|| corrupt("sweep reply is short"))?,
                        "sweep status",
                    )?;
                    if status == "live" {
                        continue;
                    }
                    if status == "swept" {
                        removed += 1;
                    }
                }
                follow.cmd("SREM", &sessions_key).arg(hex).ignore();
            }
            if !follow.is_empty() {
                self.pipe(&follow).await?;
            }
        }
        // A deleted user whose indexes are now empty needs no more visits.
        let mut p = Batch::new(Order::Any);
        p.cmd("EXISTS", self.keys.user(uid));
        p.cmd("ZCARD", &tokens_key);
        p.cmd("SCARD", &sessions_key);
        let counts: Vec<i64> = self
            .pipe(&p)
            .await?
            .into_iter()
            .map(|v| int(&required(v, "count")?, "count"))
            .collect::<StoreResult<_>>()?;
        if counts.iter().all(|c| *c == 0) {
            self.cmd(redis::cmd("ZREM").arg(self.keys.users_indexed()).arg(uid.0))
                .await?;
        }
        Ok(removed)
    }
}

#[async_trait]
impl UserStore for RedisStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let id = required(
            self.cmd(redis::cmd("INCR").arg(self.keys.user_counter()))
                .await?,
            "user id",
        )?;
        let user = new.into_user(UserId(int(&id, "user id")?));
        let mut inv = self.scripts.create_user.prepare_invoke();
        inv.key(self.keys.user(user.id))
            .key(self.keys.user_name(&user.name))
            .key(self.keys.users_all())
            .key(self.keys.users_indexed())
            .arg(user.id.0);
        for (f, v) in codec::user_fields(&user)? {
            inv.arg(f).arg(v);
        }
        match self.script(&inv).await? {
            Value::Int(1) => Ok(user),
            Value::Int(0) => Err(StoreError::Conflict(format!(
                "user name {:?} is taken",
                user.name
            ))),
            _ => Err(corrupt("unexpected reply to create_user")),
        }
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let v = self
            .cmd(
                redis::cmd("HMGET")
                    .arg(self.keys.user(id))
                    .arg(&USER_FIELDS[..]),
            )
            .await?;
        let user = codec::decode_user(texts(v)?)?;
        match user {
            Some(u) if u.id != id => Err(corrupt("a user record holds another id")),
            u => Ok(u),
        }
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let Some(id) = text(
            self.cmd(redis::cmd("GET").arg(self.keys.user_name(name)))
                .await?,
        )?
        else {
            return Ok(None);
        };
        let user = self.user_by_id(UserId(int(&id, "user id")?)).await?;
        // Deleted (or recreated) in between: the name no longer leads here.
        Ok(user.filter(|u| u.name == name))
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let ids = self.index_members(self.keys.users_all()).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = Batch::new(Order::Any);
        for id in &ids {
            let id = UserId(int(id, "user id")?);
            p.cmd("HMGET", self.keys.user(id)).arg(&USER_FIELDS[..]);
        }
        let mut users = Vec::with_capacity(ids.len());
        for v in self.pipe(&p).await? {
            // A user deleted since the listing was read is skipped.
            if let Some(u) = codec::decode_user(texts(v)?)? {
                users.push(u);
            }
        }
        users.sort_by_key(|u| u.id);
        Ok(users)
    }

    async fn has_users(&self) -> StoreResult<bool> {
        let v = self
            .cmd(redis::cmd("EXISTS").arg(self.keys.users_all()))
            .await?;
        Ok(matches!(v, Value::Int(n) if n > 0))
    }

    async fn delete_user(&self, id: UserId, now: Timestamp) -> StoreResult<bool> {
        let Some(user) = self.user_by_id(id).await? else {
            return Ok(false);
        };
        // 1. Tokens (the user record still exists, so a retry gets here again).
        let members = self.index_members(self.keys.user_tokens(id)).await?;
        self.revoke_members(&members, now, id).await?;
        // 2. Sessions, then their index.
        let sessions_key = self.keys.user_sessions(id);
        let digests = self.set_members(sessions_key.clone()).await?;
        // In order: the set goes only after every session it names.
        let mut p = self.ending_sessions(id, &digests);
        p.cmd("DEL", &sessions_key).ignore();
        self.pipe(&p).await?;
        // 3. The user, last.
        let mut inv = self.scripts.delete_user.prepare_invoke();
        inv.key(self.keys.user(id))
            .key(self.keys.user_name(&user.name))
            .key(self.keys.users_all())
            .arg(id.0);
        Ok(matches!(self.script(&inv).await?, Value::Int(1)))
    }

    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: Option<&Digest>,
    ) -> StoreResult<bool> {
        // The hash first (the `{users}` slot), then the sessions, each in
        // its own slot: a call that stops half way leaves sessions that a
        // retry ends, never a password that did not change.
        let mut inv = self.scripts.set_password.prepare_invoke();
        inv.key(self.keys.user(id)).arg(hash.as_phc());
        if !matches!(self.script(&inv).await?, Value::Int(1)) {
            return Ok(false);
        }
        let sessions_key = self.keys.user_sessions(id);
        let kept = keep.map(Digest::to_hex);
        let ending: Vec<String> = self
            .set_members(sessions_key.clone())
            .await?
            .into_iter()
            .filter(|hex| Some(hex) != kept.as_ref())
            .collect();
        if ending.is_empty() {
            return Ok(true);
        }
        // In order: an index entry goes only after its session.
        let mut p = self.ending_sessions(id, &ending);
        p.cmd("SREM", &sessions_key).arg(&ending).ignore();
        self.pipe(&p).await?;
        Ok(true)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(&self, s: SessionRecord) -> StoreResult<()> {
        // The index entry first, so a user deletion never misses the session.
        let mut p = Self::pipe_with(Order::InOrder, &[&self.scripts.create_session]);
        p.cmd("SADD", self.keys.user_sessions(s.user_id))
            .arg(s.digest.to_hex())
            .ignore();
        p.cmd("ZADD", self.keys.users_indexed())
            .arg("NX")
            .arg(s.user_id.0)
            .arg(s.user_id.0)
            .ignore();
        let mut inv = self.scripts.create_session.prepare_invoke();
        inv.key(self.keys.session(&s.digest))
            .arg(s.user_id.0)
            .arg(s.created_at)
            .arg(s.last_seen_at)
            .arg(self.retention_secs);
        p.invoke(&self.scripts.create_session, &inv);
        let reply = self.pipe(&p).await?.into_iter().next();
        match reply {
            Some(Value::Int(1)) => Ok(()),
            Some(Value::Int(0)) => Err(StoreError::Conflict("session digest is taken".into())),
            _ => Err(corrupt("unexpected reply to create_session")),
        }
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<SessionRecord>> {
        let v = self
            .cmd(
                redis::cmd("HMGET")
                    .arg(self.keys.session(digest))
                    .arg(&SESSION_FIELDS[..]),
            )
            .await?;
        codec::decode_session(*digest, texts(v)?)
    }

    async fn touch_session(&self, digest: &Digest, now: Timestamp) -> StoreResult<()> {
        let mut inv = self.scripts.touch_session.prepare_invoke();
        inv.key(self.keys.session(digest))
            .arg(now)
            .arg(self.retention_secs);
        self.script(&inv).await.map(drop)
    }

    async fn delete_session(&self, digest: &Digest) -> StoreResult<bool> {
        let mut inv = self.scripts.delete_session.prepare_invoke();
        inv.key(self.keys.session(digest)).arg("");
        let (tag, rest) = tagged(self.script(&inv).await?)?;
        if tag != "deleted" {
            return Ok(false);
        }
        // Tidy the user's session index. The session is gone already; a
        // failure here leaves a stale entry that the sweep prunes.
        if let Some(Ok(Some(uid))) = rest.into_iter().next().map(text) {
            if let Ok(uid) = uid.parse::<u64>() {
                let _ = self
                    .cmd(
                        redis::cmd("SREM")
                            .arg(self.keys.user_sessions(UserId(uid)))
                            .arg(digest.to_hex()),
                    )
                    .await;
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn next_token_id(&self) -> StoreResult<TokenId> {
        let v = self
            .cmd(redis::cmd("INCR").arg(self.keys.token_counter()))
            .await?;
        Ok(TokenId(int(&required(v, "token id")?, "token id")?))
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        if token.legacy {
            // A legacy record lives under its digest: the import path stores it.
            return self.import_legacy(std::slice::from_ref(token)).await;
        }
        let loc = Loc::Token(token.id);
        let index = self.keys.user_tokens(token.user_id);
        // One round trip (one per command on a Cluster), in order: index
        // entries first, the id counter kept ahead of any inserted id, then
        // the record itself (atomic, one slot).
        let mut p = Self::pipe_with(
            Order::InOrder,
            &[&self.scripts.bump_counter, &self.scripts.insert_token],
        );
        p.cmd("ZADD", &index)
            .arg(token.id.0)
            .arg(loc.member())
            .ignore();
        p.cmd("ZADD", self.keys.users_indexed())
            .arg("NX")
            .arg(token.user_id.0)
            .arg(token.user_id.0)
            .ignore();
        let mut bump = self.scripts.bump_counter.prepare_invoke();
        bump.key(self.keys.token_counter()).arg(token.id.0);
        p.invoke(&self.scripts.bump_counter, &bump).ignore();
        let mut inv = self.scripts.insert_token.prepare_invoke();
        inv.key(self.keys.rec(&loc))
            .key(self.keys.ptr(&loc))
            .key(self.keys.spent(&loc))
            .arg(self.retention_secs);
        for (f, v) in codec::token_fields(token)? {
            inv.arg(f).arg(v);
        }
        p.invoke(&self.scripts.insert_token, &inv);
        let reply = self
            .pipe(&p)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| corrupt("no reply to insert_token"))?;
        let (tag, rest) = tagged(reply)?;
        match tag.as_str() {
            "ok" => Ok(()),
            "conflict" => {
                let owner = rest.into_iter().next().map(text).transpose()?.flatten();
                if owner.as_deref() != Some(token.user_id.0.to_string().as_str()) {
                    // The entry just added names someone else's token: take it back.
                    let _ = self
                        .cmd(redis::cmd("ZREM").arg(&index).arg(loc.member()))
                        .await;
                }
                Err(StoreError::Conflict(format!(
                    "token id {} is taken",
                    token.id.0
                )))
            }
            _ => Err(corrupt("unexpected reply to insert_token")),
        }
    }

    async fn token(&self, id: TokenId) -> StoreResult<Option<TokenRecord>> {
        let loc = Loc::Token(id);
        let mut p = Batch::new(Order::Any);
        p.add(self.hmget_token(&loc));
        p.cmd("GET", self.keys.ptr(&loc));
        let mut replies = self.pipe(&p).await?.into_iter();
        let rec = decode_token(texts(replies.next().unwrap_or_default())?)?;
        let ptr = text(replies.next().unwrap_or_default())?;
        let rec = match (rec, ptr) {
            (Some(rec), _) => Some(rec),
            (None, Some(hex)) => {
                let hex = codec::digest(&hex, "legacy pointer")?.to_hex();
                self.read_token(&Loc::Legacy(id, hex)).await?
            }
            (None, None) => None,
        };
        match rec {
            Some(r) if r.id != id => Err(corrupt("a token record holds another id")),
            r => Ok(r),
        }
    }

    async fn token_for_check(&self, id: TokenId) -> StoreResult<Option<Arc<TokenRecord>>> {
        // `token`: one round trip (the record and the legacy pointer of the
        // id's slot, pipelined) on the connection the check uses; a second
        // only for the id of a legacy token, which a Tessera secret never
        // names (the core then refuses it by its digest).
        Ok(self.token(id).await?.map(Arc::new))
    }

    async fn highest_token_id(&self) -> StoreResult<Option<TokenId>> {
        // The id counter: every id is handed out by it or, when inserted
        // otherwise (imports, conformance tests), moves it up first.
        let v = self
            .cmd(redis::cmd("GET").arg(self.keys.token_counter()))
            .await?;
        match text(v)? {
            Some(n) => Ok(Some(TokenId(int(&n, "token id counter")?))),
            None => Ok(None),
        }
    }

    async fn token_by_access(&self, key: &SecretKey) -> StoreResult<Option<Arc<TokenRecord>>> {
        // One round trip: by the id written in the secret, or (legacy) by digest.
        let cmd = match key.token_id {
            Some(id) => self.hmget_token(&Loc::Token(id)),
            None => {
                let mut c = redis::cmd("HMGET");
                c.arg(self.keys.legacy_rec(&key.digest))
                    .arg(&TOKEN_FIELDS[..]);
                c
            }
        };
        let rec = decode_token(texts(self.cmd(&cmd).await?)?)?;
        Ok(rec
            .filter(|t| t.access_digest == key.digest && key.token_id.is_none_or(|id| id == t.id))
            .map(Arc::new))
    }

    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>> {
        let members = self.index_members(self.keys.user_tokens(user)).await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(members.len());
        // A page at a time, each within the command timeout (as the sweep).
        for page in members.chunks(SWEEP_PIPELINE) {
            let mut p = Batch::new(Order::Any);
            for m in page {
                let loc = Loc::from_member(m)
                    .ok_or_else(|| corrupt("a token index entry is malformed"))?;
                p.add(self.hmget_token(&loc));
            }
            for v in self.pipe(&p).await? {
                // Expired records and entries naming someone else's token are skipped.
                if let Some(t) = decode_token(texts(v)?)? {
                    if t.user_id == user && t.revoked_at.is_none() {
                        out.push(t);
                    }
                }
            }
        }
        out.sort_by_key(|t| t.id);
        Ok(out)
    }

    async fn update_token(&self, c: &TokenChanges) -> StoreResult<bool> {
        let args = [
            self.retention_secs.to_string(),
            c.name.clone(),
            c.scope.token_type().number().to_string(),
            tessera_core::stored::join_list(&c.scope.endpoint_strings()),
            tessera_core::stored::join_list(c.allowed_ips.entries()),
            c.access_expires_at.to_string(),
            c.renewable_until.map(|r| r.to_string()).unwrap_or_default(),
            c.ends_at.to_string(),
            c.rate_limit
                .map(|r| r.requests.to_string())
                .unwrap_or_default(),
            c.rate_limit
                .map(|r| r.per_seconds.to_string())
                .unwrap_or_default(),
        ];
        let r = self.by_id(&self.scripts.update, c.id, &args).await?;
        if r.tag != "updated" {
            return Ok(false);
        }
        if let Loc::Legacy(..) = r.loc {
            let at = r.rest.into_iter().next().map(text).transpose()?.flatten();
            self.legacy_follow_up(c.id, at, Some(c.access_expires_at))
                .await?;
        }
        Ok(true)
    }

    async fn refresh_lookup(&self, key: &SecretKey) -> StoreResult<RefreshLookup> {
        // A refresh secret always carries its token's id; without one there is
        // nothing to look up (and no global digest index to ask).
        let Some(id) = key.token_id else {
            return Ok(RefreshLookup::Unknown);
        };
        let loc = Loc::Token(id);
        let mut inv = self.scripts.lookup_refresh.prepare_invoke();
        inv.key(self.keys.rec(&loc))
            .key(self.keys.spent(&loc))
            .arg(key.digest.to_hex());
        let (tag, rest) = tagged(self.script(&inv).await?)?;
        let first = rest.into_iter().next().unwrap_or_default();
        match tag.as_str() {
            "current" => match decode_token(texts(first)?)? {
                Some(t) if t.id == id => Ok(RefreshLookup::Current(Box::new(t))),
                _ => Err(corrupt("refresh look-up found an unreadable record")),
            },
            "spent" => Ok(RefreshLookup::Spent {
                id,
                rotated_at: int(&required(first, "rotated at")?, "rotated at")?,
            }),
            "unknown" => Ok(RefreshLookup::Unknown),
            _ => Err(corrupt("unexpected reply to refresh_lookup")),
        }
    }

    async fn rotate(&self, r: &Rotation) -> StoreResult<RotateOutcome> {
        let loc = Loc::Token(r.id);
        let mut inv = self.scripts.rotate.prepare_invoke();
        inv.key(self.keys.rec(&loc))
            .key(self.keys.spent(&loc))
            .arg(r.presented_refresh.to_hex())
            .arg(r.at)
            .arg(r.new_access.to_hex())
            .arg(r.new_refresh.to_hex())
            .arg(r.access_expires_at)
            .arg(r.ends_at)
            .arg(self.retention_secs);
        let (tag, rest) = tagged(self.script(&inv).await?)?;
        let first = rest.into_iter().next().unwrap_or_default();
        match tag.as_str() {
            "rotated" => match decode_token(texts(first)?)? {
                Some(t) if t.id == r.id => Ok(RotateOutcome::Rotated(Box::new(t))),
                _ => Err(corrupt("rotation left an unreadable record")),
            },
            "spent" => Ok(RotateOutcome::Spent {
                rotated_at: int(&required(first, "rotated at")?, "rotated at")?,
            }),
            "unknown" => Ok(RotateOutcome::Unknown),
            "conflict" => Err(StoreError::Conflict("new digest is taken".into())),
            _ => Err(corrupt("unexpected reply to rotate")),
        }
    }

    async fn revoke_token(&self, id: TokenId, now: Timestamp) -> StoreResult<bool> {
        let args = [
            now.to_string(),
            self.retention_secs.to_string(),
            String::new(),
        ];
        let r = self.by_id(&self.scripts.revoke, id, &args).await?;
        let changed = r.tag == "revoked";
        if let Loc::Legacy(..) = r.loc {
            if changed || r.tag == "already" {
                // Out of the horizon (also repairs an earlier, interrupted revocation).
                let at = r.rest.into_iter().next().map(text).transpose()?.flatten();
                self.legacy_follow_up(id, at, None).await?;
            }
        }
        Ok(changed)
    }

    async fn import_legacy(&self, tokens: &[TokenRecord]) -> StoreResult<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let mut ids = HashSet::new();
        let mut digests = HashSet::new();
        for t in tokens {
            if !ids.insert(t.id) || !digests.insert(t.access_digest.to_hex()) {
                return Err(StoreError::Conflict(format!(
                    "legacy token {:?} is listed twice",
                    t.name
                )));
            }
        }
        if self.is_cluster() {
            return self.import_legacy_staged(tokens).await;
        }
        let mut inv = self.scripts.import_legacy.prepare_invoke();
        inv.key(self.keys.horizon())
            .key(self.keys.token_counter())
            .key(self.keys.users_indexed())
            .arg(self.retention_secs)
            .arg(tokens.len());
        for t in tokens {
            let hex = t.access_digest.to_hex();
            let loc = Loc::Legacy(t.id, hex.clone());
            inv.key(self.keys.rec(&Loc::Token(t.id)))
                .key(self.keys.ptr(&Loc::Token(t.id)))
                .key(self.keys.rec(&loc))
                .key(self.keys.user_tokens(t.user_id));
            let fields = codec::token_fields(t)?;
            inv.arg(t.id.0)
                .arg(&hex)
                .arg(t.access_expires_at)
                .arg(t.user_id.0)
                .arg(match (t.legacy, t.revoked_at) {
                    (true, None) => "",
                    _ => "unlisted",
                })
                .arg(fields.len() * 2);
            for (f, v) in fields {
                inv.arg(f).arg(v);
            }
        }
        let (tag, rest) = tagged(self.script(&inv).await?)?;
        match tag.as_str() {
            "ok" => Ok(()),
            "conflict" => {
                let i: usize = rest
                    .into_iter()
                    .next()
                    .map(text)
                    .transpose()?
                    .flatten()
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                let name = tokens.get(i).map_or("?", |t| t.name.as_str());
                Err(StoreError::Conflict(format!(
                    "legacy token {name:?} is already stored"
                )))
            }
            _ => Err(corrupt("unexpected reply to import_legacy")),
        }
    }

    async fn legacy_horizon(&self) -> StoreResult<Option<Timestamp>> {
        let v = self
            .cmd(
                redis::cmd("ZREVRANGE")
                    .arg(self.keys.horizon())
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES"),
            )
            .await?;
        let mut items = array(v)?.into_iter();
        let (Some(_member), Some(score)) = (items.next(), items.next()) else {
            return Ok(None);
        };
        let score = required(score, "horizon score")?;
        let at = match score.parse::<i64>() {
            Ok(at) => at,
            Err(_) => {
                let f: f64 = int(&score, "horizon score")?;
                if !f.is_finite() {
                    return Err(corrupt("horizon score is not finite"));
                }
                f as i64
            }
        };
        Ok(Some(at))
    }

    async fn record_last_used(&self, uses: &[Use]) -> StoreResult<()> {
        // In pipelines of a bounded size, one after the other: the checks
        // share the connection, and one pipeline of every use of a busy
        // minute would hold their look-ups behind it.
        for chunk in uses.chunks(LAST_USED_PIPELINE) {
            self.last_used_chunk(chunk).await?;
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
        let mut inv = self.scripts.count_use.prepare_invoke();
        // A minute past the later of the window's end and the server's now.
        inv.key(self.keys.rate(id, window))
            .arg(until)
            .arg(60)
            .arg(n);
        match self.script(&inv).await? {
            Value::Int(n) => u64::try_from(n).map_err(|_| corrupt("a negative count")),
            _ => Err(corrupt("unexpected reply to count_use")),
        }
    }

    async fn note_addresses(&self, uses: &[Use]) -> StoreResult<Vec<NewAddress>> {
        // A script per pair, on the token's slot; one pipeline.
        let mut new = Vec::new();
        for chunk in uses.chunks(LAST_USED_PIPELINE) {
            let script = &self.scripts.note_address;
            let mut p = Self::pipe_with(Order::Any, &[script]);
            for u in chunk {
                let loc = Loc::Token(u.id);
                let mut inv = script.prepare_invoke();
                inv.key(self.keys.rec(&loc))
                    .key(self.keys.ptr(&loc))
                    .key(self.keys.addresses(u.id))
                    .arg(u.address.to_string());
                p.invoke(script, &inv);
            }
            for (u, reply) in chunk.iter().zip(self.pipe(&p).await?) {
                let flags: Vec<i64> = array(reply)?
                    .into_iter()
                    .map(|v| match v {
                        Value::Int(n) => Ok(n),
                        _ => Err(corrupt("unexpected reply to note_address")),
                    })
                    .collect::<StoreResult<_>>()?;
                if let [1, first] = flags.as_slice() {
                    new.push(NewAddress {
                        used: *u,
                        first: *first == 1,
                    });
                }
            }
        }
        Ok(new)
    }

    async fn record_event(&self, event: &Event) -> StoreResult<()> {
        // One script on the `{events}` slot: the body, the trail, the
        // times and the indexes, all or nothing.
        let mut inv = self.scripts.record_event.prepare_invoke();
        inv.key(self.keys.event_counter())
            .key(self.keys.event_bodies())
            .key(self.keys.event_ids())
            .key(self.keys.event_times());
        for key in self.event_indexes(event) {
            inv.key(key);
        }
        inv.arg(codec::encode_event(event)?).arg(event.at);
        self.script(&inv).await.map(drop)
    }

    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<LoggedEvent>> {
        // The narrowest index that holds every event the query admits; what
        // it holds beyond them (a user's events of other tokens, older
        // ones) is filtered here, a page of ids at a time.
        let index = match (query.token, query.user) {
            (Some(t), _) => self.keys.token_events(t),
            (None, Some(u)) => self.keys.user_events(u),
            (None, None) => self.keys.event_ids(),
        };
        let step = query.limit.clamp(1, EVENTS_PAGE);
        let mut below = query
            .before
            .map_or("+inf".to_string(), |b| format!("({}", b.0));
        let mut out = Vec::new();
        loop {
            let v = self
                .cmd(
                    redis::cmd("ZRANGE")
                        .arg(&index)
                        .arg(&below)
                        .arg("-inf")
                        .arg("BYSCORE")
                        .arg("REV")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(step),
                )
                .await?;
            let ids: Vec<u64> = array(v)?
                .into_iter()
                .map(|v| int(&required(v, "event id")?, "event id"))
                .collect::<StoreResult<_>>()?;
            let Some(last) = ids.last() else {
                return Ok(out);
            };
            below = format!("({last}");
            let bodies = self.event_bodies_of(&ids).await?;
            let mut older = false;
            for (id, body) in ids.iter().zip(bodies) {
                // A body swept since its id was read: gone, not corrupt.
                let Some(body) = body else { continue };
                let e = LoggedEvent {
                    id: EventId(*id),
                    event: codec::decode_event(&body)?,
                };
                older |= query
                    .since
                    .is_some_and(|s| e.event.at < s.saturating_sub(EVENT_CLOCK_SLACK));
                if query.admits(e.id, &e.event) {
                    out.push(e);
                    if out.len() == query.limit {
                        return Ok(out);
                    }
                }
            }
            // Ids grow with time (up to the nodes' clocks' disagreement):
            // past `since` by the slack, nothing further down is admitted.
            if older || ids.len() < step {
                return Ok(out);
            }
        }
    }

    async fn sweep_events(&self, before: Timestamp) -> StoreResult<u64> {
        let mut removed = 0;
        loop {
            let v = self
                .cmd(
                    redis::cmd("ZRANGE")
                        .arg(self.keys.event_times())
                        .arg("-inf")
                        .arg(format!("({before}"))
                        .arg("BYSCORE")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(EVENTS_PAGE),
                )
                .await?;
            let ids: Vec<String> = array(v)?
                .into_iter()
                .map(|v| required(v, "event id"))
                .collect::<StoreResult<_>>()?;
            if ids.is_empty() {
                return Ok(removed);
            }
            let bodies = self.event_bodies_of(&ids).await?;
            // Every index the events are in, read from the events themselves.
            let mut keys = std::collections::BTreeSet::new();
            for body in bodies.into_iter().flatten() {
                keys.extend(self.event_indexes(&codec::decode_event(&body)?));
            }
            let mut inv = self.scripts.sweep_events.prepare_invoke();
            inv.key(self.keys.event_bodies())
                .key(self.keys.event_ids())
                .key(self.keys.event_times());
            for key in keys {
                inv.key(key);
            }
            for id in &ids {
                inv.arg(id);
            }
            let gone: u64 = int(&required(self.script(&inv).await?, "swept")?, "swept")?;
            removed += gone;
            if ids.len() < EVENTS_PAGE {
                return Ok(removed);
            }
        }
    }

    async fn sweep(&self, before: Timestamp, sessions_before: Timestamp) -> StoreResult<u64> {
        if self.is_cluster() {
            self.finish_imports().await?;
        }
        let users = self.index_members(self.keys.users_indexed()).await?;
        let mut removed = 0;
        for uid in users {
            let uid = UserId(int(&uid, "user id")?);
            removed += self.sweep_user(uid, before, sessions_before).await?;
        }
        Ok(removed)
    }
}

#[async_trait]
impl ChangeFeed for RedisStore {
    async fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>> {
        self.feed.subscribe().await
    }

    async fn beat(&self, text: &str) -> StoreResult<()> {
        // A script, so that the heartbeat is published by the very helper the
        // changes are (one place to switch to sharded pub/sub), on the
        // store's own connection, after every change committed before it.
        if self.is_cluster() {
            // Through every master, each saying who it is (see `crate::feed`).
            let mut eval = redis::cmd("EVAL");
            eval.arg(&self.scripts.beat_cluster).arg(0).arg(text);
            return self.on_every_master(eval).await.map(drop);
        }
        let mut inv = self.scripts.beat.prepare_invoke();
        inv.arg(text);
        self.script(&inv).await.map(drop)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        self.ping_all().await
    }
}

/// Deliveries the outbox sweep removes per script.
const OUTBOX_SWEEP_PAGE: usize = 500;

#[async_trait]
impl Outbox for RedisStore {
    async fn enqueue(&self, deliveries: &[Delivery]) -> StoreResult<u64> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let mut inv = self.scripts.enqueue.prepare_invoke();
        inv.key(self.keys.outbox_counter())
            .key(self.keys.outbox_bodies())
            .key(self.keys.outbox_attempts())
            .key(self.keys.outbox_keys())
            .key(self.keys.outbox_receivers());
        for d in deliveries {
            inv.key(self.keys.outbox_due(&d.receiver))
                .key(self.keys.outbox_pending(&d.receiver));
        }
        for d in deliveries {
            inv.arg(&d.receiver)
                .arg(&d.key)
                .arg(codec::encode_delivery(d)?)
                .arg(d.event.at);
        }
        let v = self.script(&inv).await?;
        int(&required(v, "deliveries added")?, "deliveries added")
    }

    async fn claim(
        &self,
        receivers: &[String],
        now: Timestamp,
        lease_until: Timestamp,
        claim: u64,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>> {
        let mut out = Vec::new();
        for r in receivers {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let mut inv = self.scripts.claim.prepare_invoke();
            inv.key(self.keys.outbox_due(r))
                .key(self.keys.outbox_claims())
                .key(self.keys.outbox_bodies())
                .key(self.keys.outbox_attempts())
                .arg(now)
                .arg(lease_until)
                .arg(claim)
                .arg(left);
            let flat = array(self.script(&inv).await?)?;
            for chunk in flat.chunks(3) {
                let [id, body, attempts] = chunk else {
                    return Err(StoreError::Corrupt("a claim's answer is malformed".into()));
                };
                let id: u64 = int(&required(id.clone(), "delivery id")?, "delivery id")?;
                let body = required(body.clone(), "delivery")?;
                // A body swept under a live entry cannot be sent: skip it.
                if body.is_empty() {
                    continue;
                }
                out.push(Claimed {
                    id: DeliveryId(id),
                    delivery: codec::decode_delivery(&body)?,
                    attempts: int(&required(attempts.clone(), "attempts")?, "attempts")?,
                });
            }
        }
        Ok(out)
    }

    async fn settle(&self, delivery: &Claimed, claim: u64, outcome: &Settle) -> StoreResult<bool> {
        let r = &delivery.delivery.receiver;
        let mut inv = self.scripts.settle.prepare_invoke();
        inv.key(self.keys.outbox_claims())
            .key(self.keys.outbox_attempts())
            .key(self.keys.outbox_due(r))
            .key(self.keys.outbox_pending(r))
            .key(self.keys.outbox_settled())
            .arg(delivery.id.0)
            .arg(claim);
        match outcome {
            Settle::Retry { at } => inv.arg("retry").arg(*at),
            Settle::Sent | Settle::GiveUp => inv.arg("done").arg(delivery.delivery.keep_until),
        };
        let v = self.script(&inv).await?;
        Ok(int::<i64>(&required(v, "settled")?, "settled")? == 1)
    }

    async fn backlog(&self) -> StoreResult<Vec<Backlog>> {
        let v = self
            .cmd(redis::cmd("SMEMBERS").arg(self.keys.outbox_receivers()))
            .await?;
        let mut receivers: Vec<String> = array(v)?
            .into_iter()
            .map(|v| required(v, "receiver"))
            .collect::<StoreResult<_>>()?;
        receivers.sort();
        let mut out = Vec::new();
        for r in receivers {
            let key = self.keys.outbox_pending(&r);
            let n = self.cmd(redis::cmd("ZCARD").arg(&key)).await?;
            let pending: u64 = int(&required(n, "backlog")?, "backlog")?;
            if pending == 0 {
                continue;
            }
            let first = array(
                self.cmd(
                    redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(0)
                        .arg("WITHSCORES"),
                )
                .await?,
            )?;
            let oldest = match first.get(1) {
                Some(s) => Some(int::<f64>(&required(s.clone(), "oldest")?, "oldest")? as i64),
                None => None,
            };
            out.push(Backlog {
                receiver: r,
                pending,
                oldest,
            });
        }
        Ok(out)
    }

    async fn sweep_outbox(&self, before: Timestamp) -> StoreResult<u64> {
        // Settled deliveries past their keep time, then each receiver's
        // unsettled ones whose event is older than `before`.
        let settled = self.keys.outbox_settled();
        let mut removed = self
            .drop_scored_below(&settled, &[&settled], before)
            .await?;
        let v = self
            .cmd(redis::cmd("SMEMBERS").arg(self.keys.outbox_receivers()))
            .await?;
        for r in array(v)? {
            let r = required(r, "receiver")?;
            let (due, pending) = (self.keys.outbox_due(&r), self.keys.outbox_pending(&r));
            removed += self
                .drop_scored_below(&pending, &[&due, &pending], before)
                .await?;
        }
        Ok(removed)
    }
}

impl RedisStore {
    /// Deletes the deliveries `by` scores below `before`, a page at a time,
    /// from the outbox and from each of `sets`. Returns how many left.
    async fn drop_scored_below(
        &self,
        by: &str,
        sets: &[&str],
        before: Timestamp,
    ) -> StoreResult<u64> {
        let mut removed = 0;
        loop {
            let v = self
                .cmd(
                    redis::cmd("ZRANGE")
                        .arg(by)
                        .arg("-inf")
                        .arg(format!("({before}"))
                        .arg("BYSCORE")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(OUTBOX_SWEEP_PAGE),
                )
                .await?;
            let ids = array(v)?
                .into_iter()
                .map(|v| required(v, "delivery id"))
                .collect::<StoreResult<Vec<_>>>()?;
            if ids.is_empty() {
                return Ok(removed);
            }
            let mut inv = self.scripts.drop_deliveries.prepare_invoke();
            inv.key(self.keys.outbox_bodies())
                .key(self.keys.outbox_attempts())
                .key(self.keys.outbox_claims())
                .key(self.keys.outbox_keys());
            for set in sets {
                inv.key(*set);
            }
            for id in &ids {
                inv.arg(id);
            }
            let v = self.script(&inv).await?;
            removed += int::<u64>(&required(v, "dropped")?, "dropped")?;
        }
    }
}
