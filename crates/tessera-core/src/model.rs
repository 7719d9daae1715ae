//! The domain model: users, sessions, access tokens, events.
//!
//! These types are not `Serialize`: the server owns the wire types and maps
//! to and from these, so a change of the JSON never silently changes the
//! domain, and no secret-bearing type can be serialised by accident.

use crate::address::IpAllowList;
use crate::scope::Scope;
use crate::secret::password::PasswordHash;
use crate::secret::Digest;

/// Unix time in whole seconds, as on the wire.
pub type Timestamp = i64;

/// A user's numeric id (`userId` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub u64);

/// A token's numeric id (`tokenId` on the wire). Public: it is written in the
/// token's secrets, and knowing it grants nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub u64);

/// What a user may administer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages every user's tokens and the users themselves.
    Admin,
    /// Manages their own tokens (and those of service accounts they own).
    User,
}

impl Role {
    /// The role's name on the wire and in stores (`admin`, `user`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Parses a role name (exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// Whether a user is a person or a service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserKind {
    /// A person, who logs in with a password.
    Person,
    /// A service account: no password, cannot log in, has an owner who manages its tokens.
    Service,
}

impl UserKind {
    /// The kind's name on the wire and in stores (`person`, `service`).
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::Person => "person",
            UserKind::Service => "service",
        }
    }

    /// Parses a kind name (exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(UserKind::Person),
            "service" => Some(UserKind::Service),
            _ => None,
        }
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Assigned by the store at creation, never reused while the user exists.
    pub id: UserId,
    /// Unique login name.
    pub name: String,
    /// What the user may administer.
    pub role: Role,
    /// Person or service account.
    pub kind: UserKind,
    /// For a service account, the user who created it and manages its tokens.
    pub owner: Option<UserId>,
    /// Argon2id hash; `None` for service accounts, which cannot log in.
    pub password: Option<PasswordHash>,
    /// When the user was created.
    pub created_at: Timestamp,
}

/// A user to be created; the store assigns the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Unique login name.
    pub name: String,
    /// What the user may administer.
    pub role: Role,
    /// Person or service account.
    pub kind: UserKind,
    /// Owner of a service account.
    pub owner: Option<UserId>,
    /// Argon2id hash (people only).
    pub password: Option<PasswordHash>,
    /// Creation time.
    pub created_at: Timestamp,
}

impl NewUser {
    /// The user as created, with the id the store assigned (every store's
    /// `create_user` ends here, so a field added to both types is carried
    /// over in one place).
    pub fn into_user(self, id: UserId) -> User {
        User {
            id,
            name: self.name,
            role: self.role,
            kind: self.kind,
            owner: self.owner,
            password: self.password,
            created_at: self.created_at,
        }
    }
}

/// A login session as stored: only the digest of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session secret.
    pub digest: Digest,
    /// Whose session it is.
    pub user_id: UserId,
    /// When it was made by `POST /Login`.
    pub created_at: Timestamp,
    /// Last time it was used; the idle limit counts from here (sliding expiry).
    pub last_seen_at: Timestamp,
}

/// An access token as stored, with its current pair of digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Assigned by the store before the secrets are made (the id is written in them).
    pub id: TokenId,
    /// Owner.
    pub user_id: UserId,
    /// Owner's name, kept with the token so that the check needs one look-up.
    pub user_name: String,
    /// Name the owner chose (`tokenName`).
    pub name: String,
    /// What the token may call.
    pub scope: Scope,
    /// Client addresses it may be used from (empty: any).
    pub allowed_ips: IpAllowList,
    /// When it was created.
    pub created_at: Timestamp,
    /// When the current access secret stops working (`tokenExpiryTimestamp`).
    pub access_expires_at: Timestamp,
    /// Until when renewal is possible (refreshable scopes only).
    pub renewable_until: Option<Timestamp>,
    /// After this instant neither the access secret nor a renewal can work
    /// (computed by the policy): the record may be swept after the retention,
    /// and a store with key expiry may let it go.
    pub ends_at: Timestamp,
    /// SHA-256 of the current access secret.
    pub access_digest: Digest,
    /// SHA-256 of the current refresh secret (refreshable scopes only).
    pub refresh_digest: Option<Digest>,
    /// Imported from the older format: fixed expiry, no refresh, never edited.
    pub legacy: bool,
    /// Set when the token was revoked; a revoked token stays only until the sweep.
    pub revoked_at: Option<Timestamp>,
    /// Last time a check allowed it (coalesced; may lag by a minute).
    pub last_used_at: Option<Timestamp>,
    /// The client address of that use (`lastUsedIp`).
    pub last_used_ip: Option<std::net::IpAddr>,
    /// At most so many allowed checks per window (`rateLimit`), if any.
    pub rate_limit: Option<RateLimit>,
}

/// A token's rate limit: at most `requests` allowed checks in each window
/// of `per_seconds` seconds (CONTRACT §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Allowed checks per window (1 to [`RateLimit::MAX_REQUESTS`]).
    pub requests: u32,
    /// The window, in seconds (1 to [`RateLimit::MAX_SECONDS`]).
    pub per_seconds: u32,
}

impl RateLimit {
    /// The most requests a window may allow.
    pub const MAX_REQUESTS: u32 = 1_000_000;
    /// The longest window: a day.
    pub const MAX_SECONDS: u32 = 86_400;

    /// How many checks of one window a node takes from the store's count
    /// at once (its share): a hundredth of the limit, between 1 and 100. A
    /// limit under 200 is counted check by check, exactly; a larger one
    /// costs the store one write per share instead of one per check. A
    /// fleet never allows more than the limit, and refuses early by at most
    /// what its nodes took and had not used when the window ended: under
    /// `nodes × (share − 1)` checks, at most `nodes` percent of the limit.
    pub fn share(&self) -> u32 {
        (self.requests / 100).clamp(1, 100)
    }
}

/// A token used from an address the store had not seen it used from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAddress {
    /// The use.
    pub used: Use,
    /// Whether it is the token's first address at all.
    pub first: bool,
}

/// One use of a token, as the check's coalesced flush writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    /// The token.
    pub id: TokenId,
    /// When.
    pub at: Timestamp,
    /// From which client address.
    pub address: std::net::IpAddr,
}

/// The fields an edit may change, already validated by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChanges {
    /// The token to change.
    pub id: TokenId,
    /// New name.
    pub name: String,
    /// New scope.
    pub scope: Scope,
    /// New address list.
    pub allowed_ips: IpAllowList,
    /// New access expiry (non-refreshable scopes change it with `tokenExpiryTimestamp`).
    pub access_expires_at: Timestamp,
    /// New renewal limit (refreshable scopes).
    pub renewable_until: Option<Timestamp>,
    /// New end of life (see [`TokenRecord::ends_at`]).
    pub ends_at: Timestamp,
    /// New rate limit.
    pub rate_limit: Option<RateLimit>,
}

/// A renewal to apply atomically: only if `presented_refresh` is still current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The token being renewed.
    pub id: TokenId,
    /// The refresh digest the caller presented and the policy approved.
    pub presented_refresh: Digest,
    /// When the rotation happens (kept with the spent digest).
    pub at: Timestamp,
    /// Digest of the new access secret.
    pub new_access: Digest,
    /// Digest of the new refresh secret.
    pub new_refresh: Digest,
    /// When the new access secret expires.
    pub access_expires_at: Timestamp,
    /// The record's new end of life (see [`TokenRecord::ends_at`]).
    pub ends_at: Timestamp,
}

/// What a store found for a presented refresh digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshLookup {
    /// It is the token's current refresh digest.
    Current(Box<TokenRecord>),
    /// It was rotated out of token `id` at `rotated_at`: a replay, unless
    /// within the policy's reuse grace.
    Spent {
        /// The token it belonged to.
        id: TokenId,
        /// When it was rotated out.
        rotated_at: Timestamp,
    },
    /// Neither: refused, and nothing changes.
    Unknown,
}

/// Outcome of the atomic rotate-if-current operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The pair was rotated; the record as it now is.
    Rotated(Box<TokenRecord>),
    /// The presented digest is a spent one of this token, rotated out at
    /// `rotated_at` (another renewal won).
    Spent {
        /// When it was rotated out.
        rotated_at: Timestamp,
    },
    /// The presented digest is unknown, or the token is gone or revoked.
    Unknown,
}

/// Who did what an [`Event`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A user, by a session or by one of their access tokens.
    User(UserId),
    /// A token, through a check (`token.new_address`) or a renewal.
    Token(TokenId),
    /// Nobody known: a failed login, an operator at the command line.
    Nobody,
}

/// Something security-relevant that happened, kept by the store for audit
/// (the trail of `GET /V4/AccessToken/Events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it happened.
    pub at: Timestamp,
    /// What happened, such as `token.reuse_detected` (see [`EventKind::as_str`]).
    pub kind: EventKind,
    /// Who did it.
    pub actor: Actor,
    /// The token concerned, if any.
    pub token_id: Option<TokenId>,
    /// The user concerned, if any: the owner of the token concerned, or the
    /// user acted on. A user's own trail is the events that concern them or
    /// that they did.
    pub user_id: Option<UserId>,
    /// The client address the request came from, as the server resolved it
    /// (trusted proxies applied), if there was a request.
    pub address: Option<std::net::IpAddr>,
    /// A short word of detail: the name a failed login tried, how many
    /// tokens an import brought. Never a secret.
    pub detail: String,
}

impl Event {
    /// An event of `kind` at `at` by `actor`, concerning nothing yet.
    pub fn new(kind: EventKind, at: Timestamp, actor: Actor) -> Self {
        Event {
            at,
            kind,
            actor,
            token_id: None,
            user_id: None,
            address: None,
            detail: String::new(),
        }
    }

    /// The same, concerning `token` of `user`.
    pub fn token(mut self, token: TokenId, user: Option<UserId>) -> Self {
        self.token_id = Some(token);
        self.user_id = user;
        self
    }

    /// The same, concerning `user`.
    pub fn user(mut self, user: UserId) -> Self {
        self.user_id = Some(user);
        self
    }

    /// The same, from `address`.
    pub fn from(mut self, address: Option<std::net::IpAddr>) -> Self {
        self.address = address;
        self
    }

    /// The same, with `detail`: cut to [`EVENT_DETAIL_MAX`] characters,
    /// control characters replaced by U+FFFD (it is often a name a client
    /// wrote, and it goes into log lines).
    pub fn detail(mut self, detail: &str) -> Self {
        self.detail = detail
            .chars()
            .take(EVENT_DETAIL_MAX)
            .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
            .collect();
        self
    }

    /// The user who acted, if a user did.
    pub fn actor_user(&self) -> Option<UserId> {
        match self.actor {
            Actor::User(u) => Some(u),
            _ => None,
        }
    }
}

/// Longest [`Event::detail`] kept, in characters (a user name's limit).
pub const EVENT_DETAIL_MAX: usize = 255;

/// An event's place in the trail: assigned by the store, increasing in the
/// order events were stored, so it pages the trail (`before`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub u64);

/// An event as the trail holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Its place in the trail.
    pub id: EventId,
    /// What happened.
    pub event: Event,
}

/// Which events to read, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventQuery {
    /// Only those that concern this user or that they did.
    pub user: Option<UserId>,
    /// Only those that concern this token.
    pub token: Option<TokenId>,
    /// Only those at or after this time.
    pub since: Option<Timestamp>,
    /// Only those stored before this one (the page's cursor).
    pub before: Option<EventId>,
    /// At most this many (at least 1).
    pub limit: usize,
}

impl EventQuery {
    /// The newest `limit` events of every kind.
    pub fn newest(limit: usize) -> Self {
        EventQuery {
            user: None,
            token: None,
            since: None,
            before: None,
            limit,
        }
    }

    /// Whether `e` (with `id`) is one this query reads: every backend that
    /// filters in memory filters with this.
    pub fn admits(&self, id: EventId, e: &Event) -> bool {
        self.user
            .is_none_or(|u| e.user_id == Some(u) || e.actor_user() == Some(u))
            && self.token.is_none_or(|t| e.token_id == Some(t))
            && self.since.is_none_or(|s| e.at >= s)
            && self.before.is_none_or(|b| id < b)
    }
}

/// Whether an event records something done or something refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was refused or it failed (a wrong password, a lock, a replay).
    Failure,
}

impl Outcome {
    /// `success` or `failure`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $name:ident = $text:literal, $outcome:ident;)*) => {
        /// The kinds of recorded events.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $($(#[$doc])* $name,)*
        }

        impl EventKind {
            /// Every kind, in the order of the documentation.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$name,)*];

            /// The event's stable name, as in logs, stores and webhooks.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$name => $text,)*
                }
            }

            /// Whether it records something done or refused.
            pub fn outcome(self) -> Outcome {
                match self {
                    $(EventKind::$name => Outcome::$outcome,)*
                }
            }
        }
    };
}

event_kinds! {
    /// A person logged in (a session began).
    LoginSucceeded = "login.succeeded", Success;
    /// A login was refused: unknown user or wrong password.
    LoginFailed = "login.failed", Failure;
    /// Failed logins locked further attempts for a while.
    LoginLocked = "login.locked", Failure;
    /// A session was ended by `POST /Logout`.
    SessionEnded = "session.ended", Success;
    /// A token was created.
    TokenCreated = "token.created", Success;
    /// A token was edited.
    TokenEdited = "token.edited", Success;
    /// A token's pair was renewed.
    TokenRenewed = "token.renewed", Success;
    /// A token was revoked by its owner, an admin, or RFC 7009.
    TokenRevoked = "token.revoked", Success;
    /// A rotated-out refresh token was presented; the token was revoked.
    ReuseDetected = "token.reuse_detected", Failure;
    /// A check allowed a token from an address it had not been used from.
    NewAddress = "token.new_address", Success;
    /// A token's end of life is near (14, 7 or 1 day): a webhook notice
    /// only ([`crate::notify`]); the trail does not record it.
    TokenExpiring = "token.expiring", Success;
    /// A user was created.
    UserCreated = "user.created", Success;
    /// A user was deleted with all their tokens.
    UserDeleted = "user.deleted", Success;
    /// A user's password was changed (by themselves or an admin).
    PasswordChanged = "user.password_changed", Success;
    /// Legacy tokens were imported.
    LegacyImported = "legacy.imported", Success;
}

impl EventKind {
    /// Parses a stable name back.
    pub fn parse(s: &str) -> Option<Self> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}
