//! The wire: Commvault V4 JSON shapes, as serde types. Only this module knows
//! the JSON; it converts to and from the core's domain types, which are not
//! `Serialize` (an invariant: no secret-bearing domain type is ever serialised).
//!
//! Requests ignore unknown fields (Commvault clients send `mode`, `clientType`,
//! `deviceId` and more). Numbers may also arrive as numeric strings.

use serde::{Deserialize, Deserializer, Serialize};
use tessera_core::model::{Actor, LoggedEvent, TokenRecord, User};
use tessera_core::policy::{PolicyConfig, RateLimitRequest, TokenRequest};
use tessera_core::scope::TokenType;
use utoipa::ToSchema;

/// Accepts a JSON number (a whole one, `2` or `2.0`) or a string holding one
/// (some clients quote ids); `null` and `""` are absent.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error as _;
    let whole = |f: f64| (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64);
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().and_then(whole))
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a whole number, got {n}"))),
        Some(serde_json::Value::String(t)) if t.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected a number, got {t:?}"))),
        Some(other) => Err(D::Error::custom(format!(
            "expected a number, got {}",
            match other {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Array(_) => "a list",
                _ => "an object",
            }
        ))),
    }
}

/// Accepts a list of strings, or one string of entries separated by commas
/// or line breaks (as a form field would give them).
fn lenient_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<ListOrText>::deserialize(d)? {
        None => None,
        Some(ListOrText::List(l)) => Some(l),
        Some(ListOrText::Text(t)) => Some(
            t.split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ),
    })
}

/// `POST /Login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The user name.
    pub username: Option<String>,
    /// Base64 of the UTF-8 password.
    pub password: Option<String>,
}

/// `POST /Login` success.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginReply {
    /// `QSDK <session secret>`, for the `Authtoken` header.
    pub token: String,
    /// The user's name.
    pub user_name: String,
    /// The user's id.
    pub user_id: u64,
}

/// One entry of `errList` in a failed login.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrListEntry {
    /// Human message.
    pub err_log_message: String,
    /// Non-zero code.
    pub error_code: u16,
}

/// `POST /Login` failure (Commvault's shape), with the lock-out fields its
/// clients read.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginFailure {
    /// The reason.
    pub err_list: Vec<ErrListEntry>,
    /// Whether further attempts are refused for a while.
    pub is_account_locked: bool,
    /// Seconds until attempts are accepted again (0 when not locked).
    pub remaining_lock_time: u64,
}

/// `{"errorCode": 0, "errorMessage": ""}` and its failures.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    /// 0 on success; otherwise the HTTP status.
    pub error_code: u16,
    /// Empty on success; otherwise what went wrong.
    pub error_message: String,
}

impl ErrorInfo {
    /// Success.
    pub fn ok() -> Self {
        ErrorInfo {
            error_code: 0,
            error_message: String::new(),
        }
    }
}

/// Every error answer: the flat envelope, the nested `error` one (as create
/// and edit answer), and the request field concerned, if any.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReply {
    /// Non-zero: the HTTP status.
    pub error_code: u16,
    /// What went wrong.
    pub error_message: String,
    /// The same, nested, as in create and edit answers.
    pub error: ErrorInfo,
    /// The request field the error concerns (for a form to show it there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `POST /WhoAmI` success.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmIReply {
    /// 0.
    pub error_code: u16,
    /// The caller.
    pub user: UserRef,
    /// Whether the caller is an admin (the admin-only calls answer them),
    /// for a client that offers admin views.
    pub is_admin: bool,
}

/// A user's name and id.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRef {
    /// Name.
    pub user_name: String,
    /// Id.
    pub user_id: u64,
}

/// `POST /V4/AccessToken` and `PUT /V4/AccessToken/{id}` bodies.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenBody {
    /// `tokenName`.
    pub token_name: Option<String>,
    /// `tokenType` (0–5).
    #[serde(deserialize_with = "lenient_i64")]
    pub token_type: Option<i64>,
    /// `renewableUntilTimestamp`.
    #[serde(deserialize_with = "lenient_i64")]
    pub renewable_until_timestamp: Option<i64>,
    /// `tokenExpiryTimestamp`.
    #[serde(deserialize_with = "lenient_i64")]
    pub token_expiry_timestamp: Option<i64>,
    /// `apiEndpoints`.
    #[serde(deserialize_with = "lenient_list")]
    pub api_endpoints: Option<Vec<String>>,
    /// `allowedIPs`.
    #[serde(rename = "allowedIPs", deserialize_with = "lenient_list")]
    pub allowed_ips: Option<Vec<String>>,
    /// `userId`: the owner (create only).
    #[serde(deserialize_with = "lenient_i64")]
    pub user_id: Option<i64>,
    /// `rateLimit`: `{"requests": N, "perSeconds": S}`, or `null` for none
    /// (an edit without it keeps the token's).
    #[serde(default, deserialize_with = "rate_limit")]
    #[schema(value_type = Option<RateLimitInfo>)]
    pub rate_limit: Option<RateLimitField>,
}

/// `rateLimit` as a request sent it (the policy checks the figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RateLimitField {
    /// `null`.
    Remove,
    /// An object, with the figures it held.
    Set {
        /// `requests`.
        requests: Option<i64>,
        /// `perSeconds`.
        per_seconds: Option<i64>,
    },
}

impl From<RateLimitField> for RateLimitRequest {
    fn from(f: RateLimitField) -> Self {
        match f {
            RateLimitField::Remove => RateLimitRequest::Remove,
            RateLimitField::Set {
                requests,
                per_seconds,
            } => RateLimitRequest::Set {
                requests,
                per_seconds,
            },
        }
    }
}

/// `rateLimit` in a request: absent (the field's default), `null`, or an
/// object whose figures are numbers (or numeric strings, as elsewhere).
fn rate_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RateLimitField>, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Figures {
        #[serde(default, deserialize_with = "lenient_i64")]
        requests: Option<i64>,
        #[serde(default, deserialize_with = "lenient_i64")]
        per_seconds: Option<i64>,
    }
    Ok(Some(match Option::<Figures>::deserialize(d)? {
        None => RateLimitField::Remove,
        Some(f) => RateLimitField::Set {
            requests: f.requests,
            per_seconds: f.per_seconds,
        },
    }))
}

/// A token's rate limit on the wire.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitInfo {
    /// Allowed checks per window (1 to 1,000,000).
    pub requests: u32,
    /// The window, in seconds (1 to 86,400).
    pub per_seconds: u32,
}

impl TokenBody {
    /// The core's request.
    pub fn to_request(&self) -> TokenRequest {
        TokenRequest {
            name: self.token_name.clone(),
            token_type: self.token_type,
            renewable_until: self.renewable_until_timestamp,
            token_expiry: self.token_expiry_timestamp,
            api_endpoints: self.api_endpoints.clone(),
            allowed_ips: self.allowed_ips.clone(),
            rate_limit: self.rate_limit.map(RateLimitRequest::from),
        }
    }
}

/// A token as listed and returned (`tokenInfo`); secrets only in the create
/// answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Id.
    pub token_id: u64,
    /// Name.
    pub token_name: String,
    /// Scope number.
    pub token_type: u8,
    /// Owner's id.
    pub user_id: u64,
    /// Owner's name.
    pub user_name: String,
    /// Creation, Unix seconds.
    pub created_timestamp: i64,
    /// When the current access token expires.
    pub token_expiry_timestamp: i64,
    /// Until when renewal works (refreshable scopes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewable_until_timestamp: Option<i64>,
    /// Custom entries.
    pub api_endpoints: Vec<String>,
    /// Address list.
    #[serde(rename = "allowedIPs")]
    pub allowed_ips: Vec<String>,
    /// Imported from the older format (cannot be edited).
    pub is_legacy: bool,
    /// Last successful check (0: never).
    pub last_used_timestamp: i64,
    /// The client address of that check (`""`: never used, or not known).
    pub last_used_ip: String,
    /// The token's rate limit, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitInfo>,
    /// The access token, in the create answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The refresh token, in the create answer only (refreshable scopes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl TokenInfo {
    /// A token's public fields (no secrets).
    pub fn of(t: &TokenRecord) -> Self {
        TokenInfo {
            token_id: t.id.0,
            token_name: t.name.clone(),
            token_type: t.scope.token_type().number(),
            user_id: t.user_id.0,
            user_name: t.user_name.clone(),
            created_timestamp: t.created_at,
            token_expiry_timestamp: t.access_expires_at,
            renewable_until_timestamp: t.renewable_until,
            api_endpoints: t.scope.endpoint_strings(),
            allowed_ips: t.allowed_ips.entries().to_vec(),
            is_legacy: t.legacy,
            last_used_timestamp: t.last_used_at.unwrap_or(0),
            last_used_ip: t.last_used_ip.map(|a| a.to_string()).unwrap_or_default(),
            rate_limit: t.rate_limit.map(|r| RateLimitInfo {
                requests: r.requests,
                per_seconds: r.per_seconds,
            }),
            access_token: None,
            refresh_token: None,
        }
    }
}

/// Create and edit answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenReply {
    /// Success envelope.
    pub error: ErrorInfo,
    /// The token.
    pub token_info: TokenInfo,
}

/// `GET /V4/AccessToken`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// The tokens, without secrets.
    pub tokens: Vec<TokenInfo>,
}

/// One event of the audit trail (`GET /V4/AccessToken/Events`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventInfo {
    /// Its place in the trail: higher is later. Pass the last one seen as
    /// `cursor` for the next page.
    pub event_id: u64,
    /// When it happened (Unix seconds).
    pub timestamp: i64,
    /// What happened: `login.succeeded`, `login.failed`, `login.locked`,
    /// `session.ended`, `token.created`, `token.edited`, `token.renewed`,
    /// `token.revoked`, `token.reuse_detected`, `token.new_address`,
    /// `user.created`, `user.deleted`, `user.password_changed`,
    /// `legacy.imported`.
    pub event: &'static str,
    /// `success`, or `failure` for what was refused (a failed login, a
    /// lock, a replayed refresh token).
    pub outcome: &'static str,
    /// The user who did it (absent: not a user; see `actorTokenId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_user_id: Option<u64>,
    /// The token that did it (a renewal, a check, RFC 7009 revocation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_token_id: Option<u64>,
    /// The user concerned (a token's owner, the user acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    /// The token concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<u64>,
    /// The client's address (trusted proxies applied); absent outside a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A word of detail: the name a failed login tried, a new token's
    /// name, how many tokens an import brought.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl EventInfo {
    /// The wire form of a trail entry.
    pub fn of(e: &LoggedEvent) -> Self {
        let ev = &e.event;
        let (actor_user_id, actor_token_id) = match ev.actor {
            Actor::User(u) => (Some(u.0), None),
            Actor::Token(t) => (None, Some(t.0)),
            Actor::Nobody => (None, None),
        };
        EventInfo {
            event_id: e.id.0,
            timestamp: ev.at,
            event: ev.kind.as_str(),
            outcome: ev.kind.outcome().as_str(),
            actor_user_id,
            actor_token_id,
            user_id: ev.user_id.map(|u| u.0),
            token_id: ev.token_id.map(|t| t.0),
            address: ev.address.map(|a| a.to_string()),
            detail: ev.detail.clone(),
        }
    }
}

/// A webhook notice, the body of one `POST` to a receiver: the event's
/// fields as the trail shows them ([`EventInfo`]), with its key and type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// The notice's key, the same for every attempt and every receiver
    /// (also the `webhook-id` header): a receiver drops one it has seen.
    pub id: String,
    /// `token.reuse_detected`, `token.expiring`, `token.new_address` or `login.locked`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it happened (Unix seconds).
    pub timestamp: i64,
    /// `success`, or `failure` for what was refused.
    pub outcome: &'static str,
    /// The user who did it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_user_id: Option<u64>,
    /// The token that did it (a check, a renewal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_token_id: Option<u64>,
    /// The user concerned (a token's owner; the user a lock is about).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    /// The token concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<u64>,
    /// The client's address (trusted proxies applied), if there was a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A word of detail: the name a locked login tried; how near an end is.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// For `token.expiring`: when the token ends (its renewable-until, or
    /// its fixed expiry), Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl Notice {
    /// The body of a claimed delivery.
    pub fn of(c: &tessera_core::notify::Claimed) -> Self {
        let d = &c.delivery;
        let info = EventInfo::of(&LoggedEvent {
            id: tessera_core::model::EventId(0),
            event: d.event.clone(),
        });
        Notice {
            id: d.key.clone(),
            kind: info.event,
            timestamp: info.timestamp,
            outcome: info.outcome,
            actor_user_id: info.actor_user_id,
            actor_token_id: info.actor_token_id,
            user_id: info.user_id,
            token_id: info.token_id,
            address: info.address,
            detail: info.detail,
            expires_at: d.deadline,
        }
    }
}

/// `GET /V4/AccessToken/Events`: a page of the audit trail, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    /// The events, newest first.
    pub events: Vec<EventInfo>,
    /// Present when there may be more: send it as `cursor` for the next
    /// (older) page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /V4/AccessToken/Policy`: the validity figures this server applies
/// (CONTRACT §2; every one is server configuration), in seconds, and the scopes
/// a token may have. Read-only: the server only reports them; the limits
/// are enforced on create and edit.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPolicy {
    /// `renewableUntilTimestamp` of the refreshable scopes (`tokenType` 0, 2, 3, 5), from creation.
    pub renewable_until: ValidityWindow,
    /// `tokenExpiryTimestamp` of the fixed-expiry scopes, by `tokenType`, from creation.
    pub token_expiry: FixedExpiry,
    /// Life of an access token of a refreshable scope, from creation or renewal.
    pub access_token_seconds: i64,
    /// How long after its access token expired a token may still be renewed.
    pub renewal_grace_seconds: i64,
    /// Every `tokenType` a token may be created with, in order, with what
    /// applies to it.
    pub scopes: Vec<ScopeInfo>,
}

/// One `tokenType`, as a client offering a choice of scopes needs it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeInfo {
    /// The wire number.
    pub token_type: u8,
    /// The scope's name.
    pub name: String,
    /// Whether its tokens get a refresh token and a `renewableUntilTimestamp`
    /// (otherwise a fixed `tokenExpiryTimestamp`).
    pub refreshable: bool,
    /// Whether `apiEndpoints` apply (Custom): the token's own list of
    /// what it may call.
    pub takes_endpoints: bool,
    /// For a number that is another's alias (2 is All, as 0 is): that number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as: Option<u8>,
}

impl ScopeInfo {
    /// The core's facts about `t`.
    pub fn of(t: TokenType) -> Self {
        ScopeInfo {
            token_type: t.number(),
            name: t.kind().label().to_string(),
            refreshable: t.kind().refreshable(),
            takes_endpoints: t.kind().takes_endpoints(),
            same_as: t.same_as().map(TokenType::number),
        }
    }
}

/// A default and a maximum, in seconds from the token's creation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidityWindow {
    /// Applied when the field is absent (or 0): creation + this.
    pub default_seconds: i64,
    /// The latest value accepted: creation + this.
    pub max_seconds: i64,
}

/// `tokenExpiryTimestamp` windows, keyed by `tokenType`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FixedExpiry {
    /// Microsoft SCIM (`tokenType` 1).
    #[serde(rename = "1")]
    pub scim: ValidityWindow,
    /// 1-Touch recovery (`tokenType` 4).
    #[serde(rename = "4")]
    pub one_touch: ValidityWindow,
}

impl TokenPolicy {
    /// The figures of the policy in force (reported as configured, nothing
    /// computed), and the scopes as the core defines them.
    pub fn of(c: &PolicyConfig) -> Self {
        let window = |default_seconds, max_seconds| ValidityWindow {
            default_seconds,
            max_seconds,
        };
        TokenPolicy {
            renewable_until: window(c.renewable_default, c.renewable_max),
            token_expiry: FixedExpiry {
                scim: window(c.scim_default, c.scim_max),
                one_touch: window(c.one_touch_default, c.one_touch_max),
            },
            access_token_seconds: c.access_lifetime,
            renewal_grace_seconds: c.renewal_grace,
            scopes: TokenType::every().map(ScopeInfo::of).collect(),
        }
    }
}

/// `POST /V4/AccessToken/Renew` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenewBody {
    /// The current access token.
    pub access_token: Option<String>,
    /// The current refresh token.
    pub refresh_token: Option<String>,
}

/// `POST /V4/AccessToken/Renew` success.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenewReply {
    /// 0.
    pub error_code: u16,
    /// The token (unchanged).
    pub token_id: u64,
    /// The new access token.
    pub access_token: String,
    /// The new refresh token.
    pub refresh_token: String,
    /// When the new access token expires.
    pub token_expiry_timestamp: i64,
    /// Unchanged renewal limit.
    pub renewable_until_timestamp: i64,
}

/// `POST /V4/User` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    /// Unique name.
    pub user_name: Option<String>,
    /// Base64 of the UTF-8 password (people only).
    pub password: Option<String>,
    /// `user` (default) or `admin`.
    pub role: Option<String>,
    /// `person` (default) or `service`.
    pub kind: Option<String>,
}

/// `POST /V4/User/Password` and `POST /V4/User/{userId}/Password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordBody {
    /// Base64 of the UTF-8 current password (one's own change only).
    pub old_password: Option<String>,
    /// Base64 of the UTF-8 new password, not empty.
    pub new_password: Option<String>,
}

/// `POST /V4/User` success.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    /// New id.
    pub user_id: u64,
    /// Name.
    pub user_name: String,
}

/// One user in `GET /V4/User`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// Id.
    pub user_id: u64,
    /// Name.
    pub user_name: String,
    /// `admin` or `user`.
    pub role: String,
    /// `person` or `service`.
    pub kind: String,
    /// Owner of a service account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<u64>,
}

impl UserInfo {
    /// A user's public fields (never the password hash).
    pub fn of(u: &User) -> Self {
        UserInfo {
            user_id: u.id.0,
            user_name: u.name.clone(),
            role: u.role.as_str().into(),
            kind: u.kind.as_str().into(),
            owner_id: u.owner.map(|o| o.0),
        }
    }
}

/// `GET /V4/User`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// Every user.
    pub users: Vec<UserInfo>,
}

/// RFC 7662 introspection answer.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// The token's scope, as its `tokenType` label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `access_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Owner's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Owner's id, as a string (RFC 7662 `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Creation, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Tessera's token id.
    #[serde(rename = "tokenId", skip_serializing_if = "Option::is_none")]
    pub token_id: Option<u64>,
    /// Tessera's scope number.
    #[serde(rename = "tokenType", skip_serializing_if = "Option::is_none")]
    pub tessera_token_type: Option<u8>,
}

/// The body of RFC 7662/7009 calls: `token=…` (form) or `{"token": …}` (JSON).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenParam {
    /// The token to introspect or revoke.
    pub token: Option<String>,
    /// A hint (ignored: both kinds are tried).
    #[allow(dead_code)]
    pub token_type_hint: Option<String>,
}
