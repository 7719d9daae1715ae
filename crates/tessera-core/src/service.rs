//! [`Tessera`]: every operation of the service, as the server calls it —
//! the policy applied over one store, with secrets made here and only their
//! digests handed to the store. The server only translates HTTP to these calls.

use std::net::IpAddr;
use std::sync::Arc;

use crate::audit::{EventSink, Silent};
use crate::check::Checker;
use crate::clock::Clock;
use crate::error::{Error, Result, StoreError};
use crate::model::{
    Actor, Event, EventKind, EventQuery, LoggedEvent, NewUser, RefreshLookup, Role, RotateOutcome,
    Rotation, SessionRecord, Timestamp, TokenId, TokenRecord, User, UserId, UserKind,
};
use crate::notify::{self, Backlog, Claimed, Delivery, Settle};
use crate::policy::{Credential, Policy, TokenRequest};
use crate::scope::{parse_endpoints, Scope, TokenType};
use crate::secret::password::{self, Inline, PasswordHash, PasswordWork, WorkError};
use crate::secret::{self, Digest, Secret, SecretKind};
use crate::store::Store;
use rand::{rngs::OsRng, RngCore};

/// Why a renewal failed, with reuse detection told apart by its type, so
/// that a server counts and logs it without reading a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenewError {
    /// A rotated-out refresh token was presented past the reuse grace: a
    /// replay (CONTRACT §2), so the whole token is now revoked. A 401 as any
    /// refused renewal ([`Error::Unauthorized`] once converted).
    #[error("this refresh token was already used; the token has been revoked")]
    Reused,
    /// Any other refusal or failure.
    #[error(transparent)]
    Refused(#[from] Error),
}

impl From<StoreError> for RenewError {
    fn from(e: StoreError) -> Self {
        RenewError::Refused(e.into())
    }
}

impl From<RenewError> for Error {
    fn from(e: RenewError) -> Self {
        match e {
            RenewError::Reused => Error::Unauthorized(e.to_string()),
            RenewError::Refused(e) => e,
        }
    }
}

/// Why a password change failed, with a wrong old password told apart by
/// its type, so that the server counts it as a failed login would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The old password given does not match (403).
    #[error("the old password does not match")]
    WrongPassword,
    /// Any other refusal or failure.
    #[error(transparent)]
    Refused(#[from] Error),
}

impl From<StoreError> for PasswordError {
    fn from(e: StoreError) -> Self {
        PasswordError::Refused(e.into())
    }
}

impl From<PasswordError> for Error {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::WrongPassword => Error::Forbidden(e.to_string()),
            PasswordError::Refused(e) => e,
        }
    }
}

/// Who is calling a management operation, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The authenticated user.
    pub user: User,
    /// How they authenticated.
    pub credential: Credential,
    /// Where the request came from (trusted proxies applied), for the
    /// audit trail; `None` outside a request.
    pub address: Option<IpAddr>,
}

impl Caller {
    /// The event of `kind` now, done by this caller from their address.
    fn event(&self, kind: EventKind, at: Timestamp) -> Event {
        Event::new(kind, at, Actor::User(self.user.id)).from(self.address)
    }
}

/// A token just created or renewed, with its secrets in clear — shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The token as stored.
    pub token: TokenRecord,
    /// The access secret.
    pub access: Secret,
    /// The refresh secret (refreshable scopes).
    pub refresh: Option<Secret>,
}

/// A legacy secret as an import file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacySecret {
    /// The secret in clear, as the old system issued it (hashed at once).
    Clear(Secret),
    /// Its SHA-256.
    Sha256(Digest),
}

/// One line of a legacy import (CONTRACT §7), already decoded from JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyImport {
    /// The line number in the file, for errors.
    pub line: usize,
    /// Owner's user name.
    pub user_name: String,
    /// `tokenName`.
    pub token_name: String,
    /// `tokenType`.
    pub token_type: i64,
    /// `apiEndpoints` (Custom).
    pub api_endpoints: Vec<String>,
    /// `allowedIPs`.
    pub allowed_ips: Vec<String>,
    /// `tokenExpiryTimestamp`: the fixed expiry.
    pub expires_at: Timestamp,
    /// The secret or its digest.
    pub secret: LegacySecret,
}

/// What [`Tessera::ready`] found.
#[derive(Debug)]
pub enum Readiness {
    /// The store answered both probes in time.
    Ready,
    /// The store answered with an error.
    Unavailable(StoreError),
    /// The store did not answer within the bound.
    TooSlow,
}

/// The service: policy, store, clock, and the check.
pub struct Tessera {
    store: Arc<dyn Store>,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    checker: Checker,
    /// Where Argon2 runs (default: on the calling thread).
    passwords: Arc<dyn PasswordWork>,
    /// Told of every recorded event (default: nobody).
    sink: Arc<dyn EventSink>,
    /// The webhook receivers' ids that notices are enqueued for (default: none).
    receivers: Arc<[String]>,
}

impl std::fmt::Debug for Tessera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tessera").finish_non_exhaustive()
    }
}

/// A random secret could not be made: treat as unavailable, never weaken.
fn rng_failed(e: rand::Error) -> Error {
    Error::Internal(format!("the OS random source failed: {e}"))
}

impl Tessera {
    /// The service over `store`.
    pub fn new(store: Arc<dyn Store>, policy: Policy, clock: Arc<dyn Clock>) -> Self {
        let policy = Arc::new(policy);
        let token_store: Arc<dyn crate::store::TokenStore> =
            store.clone() as Arc<dyn crate::store::TokenStore>;
        let checker = Checker::new(token_store, policy.clone(), clock.clone());
        Tessera {
            store,
            policy,
            clock,
            checker,
            passwords: Arc::new(Inline),
            sink: Arc::new(Silent),
            receivers: Arc::from(Vec::new()),
        }
    }

    /// Enqueues a webhook notice ([`crate::notify`]) for each of `receivers`
    /// (their ids) whenever a notice's event is recorded, and lets
    /// [`Tessera::warn_expiring`] and [`Tessera::claim_notices`] work for them.
    pub fn with_webhook_receivers(mut self, receivers: Vec<String>) -> Self {
        self.receivers = Arc::from(receivers);
        self
    }

    /// Tells `sink` of every event recorded (the server's JSON log lines).
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Runs every password hash and verification on `work` (the server's
    /// bounded, low-priority pool) instead of the calling thread.
    pub fn with_password_work(mut self, work: Arc<dyn PasswordWork>) -> Self {
        self.passwords = work;
        self
    }

    /// Checks through `cache` (see [`crate::cache`]); the caller runs
    /// [`crate::cache::follow`] with the store's change stream beside it.
    pub fn with_cache(mut self, cache: Arc<crate::cache::Cache>) -> Self {
        self.checker.set_cache(cache);
        self
    }

    /// The check (hot path).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store (for health checks and sweeps).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Readiness: what the check reads ([`Checker::probe`]) and what the
    /// management calls use ([`Store::ping`]) both answer, `within` the
    /// bound. When they do not, the cache is distrusted too, so that checks
    /// meet what readiness says rather than records kept from before.
    pub async fn ready(&self, within: std::time::Duration) -> Readiness {
        let probe = async {
            self.checker.probe().await?;
            self.store.ping().await
        };
        let answer = match tokio::time::timeout(within, probe).await {
            Ok(Ok(())) => return Readiness::Ready,
            Ok(Err(e)) => Readiness::Unavailable(e),
            Err(_) => Readiness::TooSlow,
        };
        self.checker.distrust_cache();
        answer
    }

    /// Now, by the injected clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    // ---- users and sessions ---------------------------------------------

    /// Creates a user outside any session (the `user add` command, first start).
    pub async fn add_user(&self, name: &str, password: &str, role: Role) -> Result<User> {
        let hash = self.hash_password(password).await?;
        let user = self
            .insert_user(name, Some(hash), role, UserKind::Person, None)
            .await?;
        let at = self.now();
        self.record(Event::new(EventKind::UserCreated, at, Actor::Nobody).user(user.id))
            .await;
        Ok(user)
    }

    /// Creates a user for an admin (`POST /V4/User`). A service account gets
    /// no password and is owned by the caller.
    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        password: Option<&str>,
        role: Role,
        kind: UserKind,
    ) -> Result<User> {
        self.policy.require_session(caller.credential)?;
        self.policy.require_admin(&caller.user)?;
        let user = match kind {
            UserKind::Person => {
                let pw = password
                    .ok_or_else(|| Error::invalid("password", "a person needs a password"))?;
                let hash = self.hash_password(pw).await?;
                self.insert_user(name, Some(hash), role, kind, None).await?
            }
            UserKind::Service => {
                if password.is_some_and(|p| !p.is_empty()) {
                    return Err(Error::invalid(
                        "password",
                        "a service account has no password",
                    ));
                }
                self.insert_user(name, None, role, kind, Some(caller.user.id))
                    .await?
            }
        };
        let at = self.now();
        self.record(caller.event(EventKind::UserCreated, at).user(user.id))
            .await;
        Ok(user)
    }

    async fn insert_user(
        &self,
        name: &str,
        password: Option<PasswordHash>,
        role: Role,
        kind: UserKind,
        owner: Option<UserId>,
    ) -> Result<User> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "userName",
                "1 to 255 characters, no control characters",
            ));
        }
        let new = NewUser {
            name: name.to_string(),
            role,
            kind,
            owner,
            password,
            created_at: self.now(),
        };
        self.store.create_user(new).await.map_err(|e| match e {
            StoreError::Conflict(_) => Error::Conflict(format!("the user name {name:?} is taken")),
            e => e.into(),
        })
    }

    /// `POST /V4/User/Password`: the caller changes their own password,
    /// giving the old one; every other session of theirs ends (the one
    /// `session` names, if it is theirs, stays).
    pub async fn change_password(
        &self,
        caller: &Caller,
        session: Option<&str>,
        old: &str,
        new: &str,
    ) -> std::result::Result<(), PasswordError> {
        self.policy.require_session(caller.credential)?;
        let Some(stored) = caller.user.password.clone() else {
            return Err(Error::invalid("oldPassword", "a service account has no password").into());
        };
        let matches = self
            .passwords
            .verify(old.to_string(), stored)
            .await
            .map_err(work_failed)?;
        if !matches {
            return Err(PasswordError::WrongPassword);
        }
        let keep = session
            .and_then(|s| secret::parse(s, SecretKind::Session).ok())
            .map(|k| k.digest);
        self.replace_password(caller.user.id, new, keep.as_ref(), "newPassword")
            .await?;
        let at = self.now();
        self.record(
            caller
                .event(EventKind::PasswordChanged, at)
                .user(caller.user.id),
        )
        .await;
        Ok(())
    }

    /// `POST /V4/User/{userId}/Password`: an admin sets another person's
    /// password; every session of theirs ends. Not one's own (that takes
    /// the old password), not a service account's (it has none).
    pub async fn reset_password(&self, caller: &Caller, id: UserId, new: &str) -> Result<()> {
        self.policy.require_session(caller.credential)?;
        self.policy.require_admin(&caller.user)?;
        if id == caller.user.id {
            return Err(Error::Forbidden(
                "change your own password with POST /V4/User/Password and the old one".into(),
            ));
        }
        let user = self
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {} does not exist", id.0)))?;
        if user.kind == UserKind::Service {
            return Err(Error::invalid(
                "newPassword",
                "a service account has no password",
            ));
        }
        self.replace_password(id, new, None, "newPassword").await?;
        let at = self.now();
        self.record(caller.event(EventKind::PasswordChanged, at).user(id))
            .await;
        Ok(())
    }

    /// `tessera user passwd NAME`: an operator sets a person's password at
    /// the command line; every session of theirs ends.
    pub async fn set_password_of(&self, name: &str, new: &str) -> Result<User> {
        let user = self
            .store
            .user_by_name(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {name:?}")))?;
        if user.kind == UserKind::Service {
            return Err(Error::invalid(
                "password",
                "a service account has no password",
            ));
        }
        self.replace_password(user.id, new, None, "password")
            .await?;
        let at = self.now();
        self.record(Event::new(EventKind::PasswordChanged, at, Actor::Nobody).user(user.id))
            .await;
        Ok(user)
    }

    /// Hashes `new` and stores it, ending the user's sessions but `keep`.
    async fn replace_password(
        &self,
        id: UserId,
        new: &str,
        keep: Option<&Digest>,
        field: &str,
    ) -> Result<()> {
        if new.is_empty() {
            return Err(Error::invalid(field, "a password cannot be empty"));
        }
        let hash = self.hash_password(new).await?;
        if !self.store.set_password(id, &hash, keep).await? {
            return Err(Error::NotFound(format!("user {} does not exist", id.0)));
        }
        Ok(())
    }

    /// Lists users (admins).
    pub async fn list_users(&self, caller: &Caller) -> Result<Vec<User>> {
        self.policy.require_session(caller.credential)?;
        self.policy.require_admin(&caller.user)?;
        Ok(self.store.list_users().await?)
    }

    /// Deletes a user with their tokens and sessions (admins; not oneself).
    pub async fn delete_user(&self, caller: &Caller, id: UserId) -> Result<()> {
        self.policy.require_session(caller.credential)?;
        self.policy.require_admin(&caller.user)?;
        if caller.user.id == id {
            return Err(Error::Forbidden(
                "an admin cannot delete their own account".into(),
            ));
        }
        let now = self.now();
        let deleted = self.store.delete_user(id, now).await;
        self.checker.forget_all();
        if !deleted? {
            return Err(Error::NotFound(format!("user {} does not exist", id.0)));
        }
        self.record(caller.event(EventKind::UserDeleted, now).user(id))
            .await;
        Ok(())
    }

    /// `POST /Login`: a new session for a person whose password matches.
    /// The same answer for an unknown user and a wrong password.
    pub async fn login(&self, name: &str, password: &str) -> Result<(Secret, User)> {
        self.login_from(name, password, None).await
    }

    /// [`Tessera::login`] from `address`: the trail records
    /// `login.succeeded` or `login.failed` (with the name tried).
    pub async fn login_from(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<(Secret, User)> {
        let user = self.store.user_by_name(name).await?;
        // Without a user (or a password), verify against a fixed hash: the
        // same time as a real check, so timing tells nothing.
        let (stored, real) = match user.as_ref().and_then(|u| u.password.as_ref()) {
            Some(hash) => (hash.clone(), true),
            None => (dummy_hash().clone(), false),
        };
        let ok = self
            .passwords
            .verify(password.to_string(), stored)
            .await
            .map_err(work_failed)?
            && real;
        let user = match user {
            Some(u) if ok => u,
            other => {
                let mut e = Event::new(EventKind::LoginFailed, self.now(), Actor::Nobody)
                    .from(address)
                    .detail(name);
                e.user_id = other.map(|u| u.id);
                self.record(e).await;
                return Err(Error::Unauthorized("invalid user name or password".into()));
            }
        };
        let secret = secret::generate(SecretKind::Session, None).map_err(rng_failed)?;
        let now = self.now();
        self.store
            .create_session(SessionRecord {
                digest: secret.digest(),
                user_id: user.id,
                created_at: now,
                last_seen_at: now,
            })
            .await?;
        self.record(
            Event::new(EventKind::LoginSucceeded, now, Actor::User(user.id))
                .user(user.id)
                .from(address),
        )
        .await;
        Ok((secret, user))
    }

    /// Failed logins of `name` (or from `address`) have just locked further
    /// attempts (the server's throttle decides): `login.locked`, once per lock.
    pub async fn login_locked(&self, name: &str, address: Option<IpAddr>) {
        let user = self.store.user_by_name(name).await.ok().flatten();
        let mut e = Event::new(EventKind::LoginLocked, self.now(), Actor::Nobody)
            .from(address)
            .detail(name);
        e.user_id = user.map(|u| u.id);
        self.record(e).await;
    }

    /// `POST /Logout`: ends the session.
    pub async fn logout(&self, session: &str, address: Option<IpAddr>) -> Result<()> {
        let key = secret::parse(session, SecretKind::Session)
            .map_err(|_| Error::Unauthorized("not a valid session".into()))?;
        let user = self.store.session(&key.digest).await?.map(|s| s.user_id);
        if self.store.delete_session(&key.digest).await? {
            if let Some(u) = user {
                let at = self.now();
                self.record(
                    Event::new(EventKind::SessionEnded, at, Actor::User(u))
                        .user(u)
                        .from(address),
                )
                .await;
            }
        }
        Ok(())
    }

    /// The user behind a session secret (sliding: each use extends it).
    pub async fn session_user(&self, session: &str) -> Result<User> {
        let invalid =
            || Error::Unauthorized("the session is invalid or has expired; log in again".into());
        let key = secret::parse(session, SecretKind::Session).map_err(|_| invalid())?;
        let s = self.store.session(&key.digest).await?.ok_or_else(invalid)?;
        let now = self.now();
        if !self.policy.session_alive(&s, now) {
            return Err(invalid());
        }
        let user = self
            .store
            .user_by_id(s.user_id)
            .await?
            .ok_or_else(invalid)?;
        if self.policy.session_needs_touch(&s, now) {
            self.store.touch_session(&key.digest, now).await?;
        }
        Ok(user)
    }

    // ---- tokens -------------------------------------------------------------

    /// `POST /V4/AccessToken`: a new token for `owner` (default: the caller).
    pub async fn create_token(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        req: &TokenRequest,
    ) -> Result<Issued> {
        self.policy.require_session(caller.credential)?;
        let (id, found) = self.named_user(caller, owner).await?;
        self.policy
            .may_create_for(&caller.user, id, found.as_ref())?;
        // may_create_for refuses a missing user, so `found` holds one here.
        let owner =
            found.ok_or_else(|| Error::NotFound(format!("user {} does not exist", id.0)))?;
        let now = self.now();
        let plan = self.policy.plan_new_token(req, now)?;
        let id = self.store.next_token_id().await?;
        let access = secret::generate(SecretKind::Access, Some(id)).map_err(rng_failed)?;
        let refresh = if plan.scope.kind().refreshable() {
            Some(secret::generate(SecretKind::Refresh, Some(id)).map_err(rng_failed)?)
        } else {
            None
        };
        let token = TokenRecord {
            id,
            user_id: owner.id,
            user_name: owner.name.clone(),
            name: plan.name,
            scope: plan.scope,
            allowed_ips: plan.allowed_ips,
            created_at: now,
            access_expires_at: plan.access_expires_at,
            renewable_until: plan.renewable_until,
            ends_at: plan.ends_at,
            access_digest: access.digest(),
            refresh_digest: refresh.as_ref().map(Secret::digest),
            legacy: false,
            revoked_at: None,
            last_used_at: None,
            last_used_ip: None,
            rate_limit: plan.rate_limit,
        };
        // An id probed before it existed may be cached as absent.
        let inserted = self.store.insert_token(&token).await;
        self.checker.forget(&[id]);
        inserted?;
        self.record(
            caller
                .event(EventKind::TokenCreated, now)
                .token(id, Some(token.user_id))
                .detail(&token.name),
        )
        .await;
        Ok(Issued {
            token,
            access,
            refresh,
        })
    }

    /// `GET /V4/AccessToken?userId=N`: the tokens of `user` (default: the caller).
    pub async fn list_tokens(
        &self,
        caller: &Caller,
        user: Option<UserId>,
    ) -> Result<Vec<TokenRecord>> {
        self.policy.require_session(caller.credential)?;
        let (id, found) = self.named_user(caller, user).await?;
        self.policy.may_list_for(&caller.user, id, found.as_ref())?;
        Ok(self.store.tokens_of_user(id).await?)
    }

    /// The user a request names (default: the caller), and the record if
    /// there is one; the policy decides what a missing one answers.
    async fn named_user(
        &self,
        caller: &Caller,
        named: Option<UserId>,
    ) -> Result<(UserId, Option<User>)> {
        match named {
            None => Ok((caller.user.id, Some(caller.user.clone()))),
            Some(id) if id == caller.user.id => Ok((id, Some(caller.user.clone()))),
            Some(id) => Ok((id, self.store.user_by_id(id).await?)),
        }
    }

    /// A token the caller may manage; anything else is "not found", so ids
    /// of other users' tokens are not confirmed.
    async fn managed_token(&self, caller: &Caller, id: TokenId) -> Result<TokenRecord> {
        self.policy.require_session(caller.credential)?;
        let missing = || Error::NotFound(format!("token {} does not exist", id.0));
        let token = self
            .store
            .token(id)
            .await?
            .filter(|t| t.revoked_at.is_none())
            .ok_or_else(missing)?;
        if token.user_id != caller.user.id {
            let owner = self
                .store
                .user_by_id(token.user_id)
                .await?
                .ok_or_else(missing)?;
            if !self.policy.may_manage(&caller.user, &owner) {
                return Err(missing());
            }
        }
        Ok(token)
    }

    /// `PUT /V4/AccessToken/{id}`.
    pub async fn edit_token(
        &self,
        caller: &Caller,
        id: TokenId,
        req: &TokenRequest,
    ) -> Result<TokenRecord> {
        let token = self.managed_token(caller, id).await?;
        let now = self.now();
        let changes = self.policy.plan_edit(&token, req, now)?;
        let updated = self.store.update_token(&changes).await;
        self.checker.forget(&[id]);
        if !updated? {
            return Err(Error::NotFound(format!("token {} does not exist", id.0)));
        }
        self.record(
            caller
                .event(EventKind::TokenEdited, now)
                .token(id, Some(token.user_id)),
        )
        .await;
        self.store
            .token(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("token {} does not exist", id.0)))
    }

    /// `DELETE /V4/AccessToken/{id}`.
    pub async fn revoke_token(&self, caller: &Caller, id: TokenId) -> Result<()> {
        let token = self.managed_token(caller, id).await?;
        let now = self.now();
        let revoked = self.store.revoke_token(id, now).await;
        self.checker.forget(&[id]);
        if !revoked? {
            return Err(Error::NotFound(format!("token {} does not exist", id.0)));
        }
        self.record(
            caller
                .event(EventKind::TokenRevoked, now)
                .token(id, Some(token.user_id)),
        )
        .await;
        Ok(())
    }

    /// RFC 7009: revokes the token whose access or refresh secret is
    /// presented. Unknown or malformed input changes nothing and is not an
    /// error (RFC 7009 §2.2).
    pub async fn revoke_by_secret(&self, presented: &str, address: Option<IpAddr>) -> Result<()> {
        let now = self.now();
        let found = if let Ok(key) = secret::parse(presented, SecretKind::Refresh) {
            match self.store.refresh_lookup(&key).await? {
                RefreshLookup::Current(t) => Some((t.id, t.user_id)),
                _ => None,
            }
        } else if let Ok(key) = self.checker.recognise(presented, now) {
            self.store
                .token_by_access(&key)
                .await?
                .filter(|t| t.access_digest == key.digest)
                .map(|t| (t.id, t.user_id))
        } else {
            None
        };
        if let Some((id, user)) = found {
            let revoked = self.store.revoke_token(id, now).await;
            self.checker.forget(&[id]);
            if revoked? {
                self.record(
                    Event::new(EventKind::TokenRevoked, now, Actor::Token(id))
                        .token(id, Some(user))
                        .from(address),
                )
                .await;
            }
        }
        Ok(())
    }

    /// `POST /V4/AccessToken/Renew`: rotates both secrets. A rotated-out
    /// refresh secret revokes the whole token (reuse detection).
    ///
    /// Concurrent renewals with one pair: the store's atomic rotation lets
    /// exactly one win. The losers presented a pair that is, by the time
    /// they are decided, rotated out: by default (reuse grace 0) that is a
    /// replay and revokes the token, as CONTRACT §2 says; with a reuse grace of
    /// G seconds, losers within G seconds of the winning rotation are only
    /// refused, and the winner's new pair stays good.
    pub async fn renew(&self, access: &str, refresh: &str) -> Result<Issued> {
        Ok(self.try_renew(access, refresh, None).await?)
    }

    /// As [`Tessera::renew`] from `address`, telling a replay
    /// ([`RenewError::Reused`]) apart from the other refusals.
    pub async fn try_renew(
        &self,
        access: &str,
        refresh: &str,
        address: Option<IpAddr>,
    ) -> std::result::Result<Issued, RenewError> {
        let refused = |why: &str| RenewError::from(Error::Unauthorized(why.to_string()));
        let rkey = secret::parse(refresh, SecretKind::Refresh)
            .map_err(|_| refused("the refresh token is malformed"))?;
        let now = self.now();
        let token = match self.store.refresh_lookup(&rkey).await? {
            RefreshLookup::Unknown => return Err(refused("the refresh token is not valid")),
            RefreshLookup::Spent { id, rotated_at } => {
                return Err(self.on_spent(id, rotated_at, now, address).await)
            }
            RefreshLookup::Current(t) => *t,
        };
        if rkey.token_id != Some(token.id) {
            return Err(refused("the refresh token is not valid"));
        }
        // The pair must match: the access secret presented must be this token's current one.
        let akey = secret::parse(access, SecretKind::Access)
            .map_err(|_| refused("the access token is malformed"))?;
        if akey.digest != token.access_digest {
            return Err(refused(
                "the access token does not belong to this refresh token",
            ));
        }
        self.policy.check_renewal(&token, now)?;
        let new_access =
            secret::generate(SecretKind::Access, Some(token.id)).map_err(rng_failed)?;
        let new_refresh =
            secret::generate(SecretKind::Refresh, Some(token.id)).map_err(rng_failed)?;
        let access_expires_at = self.policy.renewed_access_expiry(now);
        let rotation = Rotation {
            id: token.id,
            presented_refresh: rkey.digest,
            at: now,
            new_access: new_access.digest(),
            new_refresh: new_refresh.digest(),
            access_expires_at,
            ends_at: self
                .policy
                .ends_at(access_expires_at, token.renewable_until),
        };
        let rotated = self.store.rotate(&rotation).await;
        self.checker.forget(&[token.id]);
        match rotated? {
            RotateOutcome::Rotated(token) => {
                self.record(
                    Event::new(EventKind::TokenRenewed, now, Actor::Token(token.id))
                        .token(token.id, Some(token.user_id))
                        .from(address),
                )
                .await;
                Ok(Issued {
                    token: *token,
                    access: new_access,
                    refresh: Some(new_refresh),
                })
            }
            RotateOutcome::Spent { rotated_at } => {
                Err(self.on_spent(token.id, rotated_at, now, address).await)
            }
            RotateOutcome::Unknown => Err(refused("the refresh token is not valid")),
        }
    }

    /// A rotated-out refresh secret was presented: revoke the token and
    /// record `token.reuse_detected`, unless within the reuse grace. Returns
    /// the error to answer with.
    async fn on_spent(
        &self,
        id: TokenId,
        rotated_at: Timestamp,
        now: Timestamp,
        address: Option<IpAddr>,
    ) -> RenewError {
        if !self.policy.is_replay(rotated_at, now) {
            return Error::Unauthorized("this pair was already renewed by another request".into())
                .into();
        }
        let revoked = self.store.revoke_token(id, now).await;
        self.checker.forget(&[id]);
        if let Err(e) = revoked {
            return e.into();
        }
        // The owner, for their trail (a rare path: one more read).
        let owner = match self.store.token(id).await {
            Ok(t) => t.map(|t| t.user_id),
            Err(e) => return e.into(),
        };
        let event = Event::new(EventKind::ReuseDetected, now, Actor::Token(id))
            .token(id, owner)
            .from(address);
        if let Err(e) = self.keep(event).await {
            return e.into();
        }
        RenewError::Reused
    }

    /// Records an audit event and tells the sink; a failure here must not
    /// undo what was done (the sink hears of it).
    async fn record(&self, event: Event) {
        let _ = self.keep(event).await;
    }

    /// [`Tessera::record`], answering whether the store kept the event (a
    /// reuse detection answers a store failure rather than "reused").
    async fn keep(&self, event: Event) -> std::result::Result<(), StoreError> {
        let mut stored = self.store.record_event(&event).await;
        if stored.is_ok() && notify::is_notice(event.kind) && !self.receivers.is_empty() {
            // After the trail: a node that stops between the two loses the
            // notice, never the record.
            stored = self.enqueue_notice(&event).await;
        }
        self.sink.recorded(&event, stored.as_ref().map(|_| ()));
        stored
    }

    /// Enqueues `event` for every receiver under one fresh random key.
    async fn enqueue_notice(&self, event: &Event) -> std::result::Result<(), StoreError> {
        let mut nonce = [0u8; 16];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| StoreError::Unavailable(format!("the OS random source failed: {e}")))?;
        let key: String = std::iter::once("evt_".to_string())
            .chain(nonce.iter().map(|b| format!("{b:02x}")))
            .collect();
        let deliveries = self.deliveries(&key, event, None, event.at);
        self.store.enqueue(&deliveries).await.map(|_| ())
    }

    /// One delivery of `event` under `key` for each receiver.
    fn deliveries(
        &self,
        key: &str,
        event: &Event,
        deadline: Option<Timestamp>,
        keep_until: Timestamp,
    ) -> Vec<Delivery> {
        self.receivers
            .iter()
            .map(|r| Delivery {
                receiver: r.clone(),
                key: key.to_string(),
                event: event.clone(),
                deadline,
                keep_until,
            })
            .collect()
    }

    // ---- webhooks ---------------------------------------------------------

    /// Enqueues `token.expiring` for every live token whose end of life
    /// passed a warning threshold ([`notify::expiry_warning`]), once per
    /// token, threshold and receiver however often it runs and on however
    /// many nodes (the outbox keeps one delivery per key). The server runs
    /// it periodically when webhooks are configured. Answers how many
    /// deliveries were added.
    pub async fn warn_expiring(&self) -> Result<u64> {
        if self.receivers.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let mut added = 0;
        for user in self.store.list_users().await? {
            let mut due = Vec::new();
            for t in self.store.tokens_of_user(user.id).await? {
                let Some(days) = notify::expiry_warning(&t, now) else {
                    continue;
                };
                let key = notify::expiry_key(&t, days);
                let event = Event::new(EventKind::TokenExpiring, now, Actor::Nobody)
                    .token(t.id, Some(t.user_id))
                    .detail(&format!("ends within {days} days"));
                due.extend(self.deliveries(&key, &event, Some(t.ends_at), t.ends_at));
            }
            if !due.is_empty() {
                added += self.store.enqueue(&due).await?;
            }
        }
        Ok(added)
    }

    /// Claims at most `limit` due notices for this node's receivers, each
    /// for `lease` seconds under the nonce `claim` ([`crate::store::Outbox::claim`]).
    pub async fn claim_notices(
        &self,
        lease: i64,
        claim: u64,
        limit: usize,
    ) -> std::result::Result<Vec<Claimed>, StoreError> {
        if self.receivers.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        self.store
            .claim(
                &self.receivers,
                now,
                now.saturating_add(lease),
                claim,
                limit,
            )
            .await
    }

    /// Settles a claimed notice: sent, or failed (due again after
    /// [`notify::backoff`], at most `backoff_max` seconds, or given up once
    /// `retry_for` seconds passed since it happened). Answers what was
    /// decided, and whether the claim was still held.
    pub async fn settle_notice(
        &self,
        claimed: &Claimed,
        claim: u64,
        sent: bool,
        retry_for: i64,
        backoff_max: i64,
    ) -> std::result::Result<(Settle, bool), StoreError> {
        let now = self.now();
        let outcome = if sent {
            Settle::Sent
        } else {
            notify::after_failure(claimed, now, retry_for, backoff_max)
        };
        let held = self.store.settle(claimed, claim, &outcome).await?;
        Ok((outcome, held))
    }

    /// What waits in the outbox, per receiver (for `/metrics`).
    pub async fn notice_backlog(&self) -> std::result::Result<Vec<Backlog>, StoreError> {
        self.store.backlog().await
    }

    /// `GET /V4/AccessToken/Events`: the audit trail, newest first. A user
    /// reads what concerns them or what they did (and those of the users
    /// they manage, by `userId`); an admin reads everyone's.
    pub async fn events(&self, caller: &Caller, query: &EventQuery) -> Result<Vec<LoggedEvent>> {
        self.policy.require_session(caller.credential)?;
        if query.limit == 0 {
            return Err(Error::invalid("limit", "at least 1"));
        }
        let owner = match query.user {
            Some(id) if id != caller.user.id && !self.policy.is_admin(&caller.user) => {
                self.store.user_by_id(id).await?
            }
            _ => None,
        };
        let user = self
            .policy
            .events_filter(&caller.user, query.user, owner.as_ref())?;
        Ok(self.store.events(&EventQuery { user, ..*query }).await?)
    }

    /// Writes what the checks noted, off their path: the coalesced
    /// last-used times and addresses, then the (token, address) pairs first
    /// allowed on this node, and records `token.new_address` for each pair
    /// the store had not seen of a token used before. Pairs the store could
    /// not take are kept for the next flush. Returns how many uses were
    /// written. The server calls it periodically and at shutdown.
    pub async fn flush_usage(&self) -> std::result::Result<usize, StoreError> {
        let written = self.checker.flush_usage().await;
        let pairs = self.checker.take_addresses();
        if !pairs.is_empty() {
            let uses: Vec<crate::model::Use> = pairs.iter().map(|(u, _)| *u).collect();
            match self.store.note_addresses(&uses).await {
                Ok(new) => {
                    let owners: std::collections::HashMap<_, _> =
                        pairs.iter().map(|(u, owner)| (u.id, *owner)).collect();
                    for n in new.into_iter().filter(|n| !n.first) {
                        let u = n.used;
                        self.record(
                            Event::new(EventKind::NewAddress, u.at, Actor::Token(u.id))
                                .token(u.id, owners.get(&u.id).copied())
                                .from(Some(u.address)),
                        )
                        .await;
                    }
                }
                Err(e) => {
                    self.checker.requeue_addresses(pairs);
                    written?;
                    return Err(e);
                }
            }
        }
        written
    }

    /// Deletes audit events older than `retention` seconds, and settled
    /// webhook deliveries kept that long past their `keep_until` (the
    /// server calls it with the sweep).
    pub async fn sweep_events(&self, retention: i64) -> Result<u64> {
        let before = self.now().saturating_sub(retention);
        let events = self.store.sweep_events(before).await?;
        Ok(events + self.store.sweep_outbox(before).await?)
    }

    /// Deletes what can no longer be used: tokens revoked, or past their end
    /// of life, more than `retention` seconds ago (an expired token stays
    /// listable until then) and
    /// sessions idle past the policy's limit. The server calls it periodically.
    pub async fn sweep(&self, retention: i64) -> Result<u64> {
        let now = self.now();
        let sessions_before = now - self.policy.config().session_idle;
        let swept = self.store.sweep(now - retention, sessions_before).await;
        self.checker.forget_all();
        Ok(swept?)
    }

    // ---- legacy -----------------------------------------------------------

    /// Imports legacy tokens, all or nothing. Every bad line is reported with
    /// its number; nothing is stored unless every line is good.
    pub async fn import_legacy(&self, lines: &[LegacyImport]) -> Result<usize> {
        let now = self.now();
        let mut problems = Vec::new();
        let mut records = Vec::with_capacity(lines.len());
        for l in lines {
            match self.legacy_record(l, now).await {
                Ok(r) => records.push(r),
                Err(Error::Unavailable(m)) => return Err(Error::Unavailable(m)),
                Err(e) => problems.push(format!("line {}: {e}", l.line)),
            }
        }
        if !problems.is_empty() {
            return Err(Error::invalid("import", problems.join("; ")));
        }
        let imported = self.store.import_legacy(&records).await;
        self.checker.forget_all();
        imported.map_err(|e| match e {
            StoreError::Conflict(m) => Error::Conflict(format!("nothing imported: {m}")),
            e => e.into(),
        })?;
        self.checker.refresh_legacy_horizon().await?;
        self.record(
            Event::new(EventKind::LegacyImported, now, Actor::Nobody)
                .detail(&format!("{} tokens", records.len())),
        )
        .await;
        Ok(records.len())
    }

    async fn legacy_record(&self, l: &LegacyImport, now: Timestamp) -> Result<TokenRecord> {
        let user = self
            .store
            .user_by_name(&l.user_name)
            .await?
            .ok_or_else(|| Error::invalid("userName", format!("no user {:?}", l.user_name)))?;
        let token_type = TokenType::from_number(l.token_type).ok_or_else(|| {
            Error::invalid(
                "tokenType",
                format!("{} is not a token type (0 to 5)", l.token_type),
            )
        })?;
        let endpoints = parse_endpoints(&l.api_endpoints)
            .map_err(|e| Error::invalid("apiEndpoints", e.to_string()))?;
        if token_type.kind().takes_endpoints() && endpoints.is_empty() {
            return Err(Error::invalid(
                "apiEndpoints",
                "a Custom token needs at least one entry",
            ));
        }
        let allowed_ips = crate::address::IpAllowList::parse(&l.allowed_ips)
            .map_err(|e| Error::invalid("allowedIPs", e.to_string()))?;
        let digest = match &l.secret {
            LegacySecret::Clear(s) => {
                if s.expose().is_empty() || secret::has_tessera_prefix(s.expose()) {
                    return Err(Error::invalid("accessToken", "not a legacy token"));
                }
                s.digest()
            }
            LegacySecret::Sha256(d) => *d,
        };
        let name = l.token_name.trim();
        if name.is_empty() {
            return Err(Error::invalid("tokenName", "a token needs a name"));
        }
        let id = self.store.next_token_id().await?;
        Ok(TokenRecord {
            id,
            user_id: user.id,
            user_name: user.name,
            name: name.to_string(),
            scope: Scope::new(token_type, endpoints),
            allowed_ips,
            created_at: now,
            access_expires_at: l.expires_at,
            renewable_until: None,
            ends_at: l.expires_at,
            access_digest: digest,
            refresh_digest: None,
            legacy: true,
            revoked_at: None,
            last_used_at: None,
            last_used_ip: None,
            rate_limit: None,
        })
    }
}

impl Tessera {
    async fn hash_password(&self, pw: &str) -> Result<PasswordHash> {
        if pw.is_empty() {
            return Err(Error::invalid("password", "a password cannot be empty"));
        }
        self.passwords
            .hash(pw.to_string())
            .await
            .map_err(work_failed)
    }
}

/// A hash or verification not done: busy (503, retry) or a fault (500).
fn work_failed(e: WorkError) -> Error {
    match e {
        WorkError::Busy => Error::Busy(e.to_string()),
        WorkError::Failed => Error::Internal(e.to_string()),
    }
}

/// A fixed hash to verify against when the user does not exist.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: std::sync::OnceLock<PasswordHash> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        password::hash("tessera-dummy").unwrap_or_else(|_| PasswordHash::from_phc(""))
    })
}
