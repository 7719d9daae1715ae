//! The validity policy (CONTRACT §2–§4) as plain functions over a configuration
//! and an explicit `now`. Every figure is a field of [`PolicyConfig`], whose
//! defaults are CONTRACT §2's. A request past a limit is refused with an error
//! that names the field and the limit; nothing is ever clamped.
//!
//! Boundaries (each tested one second either side):
//! * an access secret works while `now < access_expires_at`;
//! * a renewal needs `now < renewable_until` *and*
//!   `now <= access_expires_at + renewal_grace` ("more than 14 days after the
//!   access token expired" fails);
//! * a requested `renewableUntilTimestamp` / `tokenExpiryTimestamp` must be
//!   `> now` and `<= created_at + maximum`;
//! * a session works while `now < last_seen_at + session_idle`.

use crate::address::IpAllowList;
use crate::error::{Error, Result};
use crate::model::{
    RateLimit, Role, SessionRecord, Timestamp, TokenChanges, TokenRecord, User, UserId, UserKind,
};
use crate::path::{Normaliser, PathError};
use crate::scope::{parse_endpoints, Scope, ScopeKind, ScopeRules, TokenType};

const MINUTE: i64 = 60;
const DAY: i64 = 24 * 60 * MINUTE;

/// The message of CONTRACT §3 for any edit of a legacy token, exactly.
pub const LEGACY_EDIT_MESSAGE: &str =
    "This token was upgraded from an older format and cannot be edited.";

/// Every figure of the policy, in seconds where it is a duration. Defaults are CONTRACT §2's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Life of an access secret of a refreshable scope, from creation or renewal (30 min).
    pub access_lifetime: i64,
    /// How long after its access secret expired a token may still be renewed (14 days).
    pub renewal_grace: i64,
    /// Default `renewableUntil`, from creation (90 days).
    pub renewable_default: i64,
    /// Latest `renewableUntil`, from creation (365 days).
    pub renewable_max: i64,
    /// Default SCIM expiry, from creation (30 days).
    pub scim_default: i64,
    /// Latest SCIM expiry, from creation (365 days).
    pub scim_max: i64,
    /// Default 1-Touch expiry, from creation (7 days).
    pub one_touch_default: i64,
    /// Latest 1-Touch expiry, from creation (14 days).
    pub one_touch_max: i64,
    /// Seconds after a rotation during which presenting the rotated-out
    /// refresh token is refused as a duplicate of that renewal instead of
    /// revoking the token (0, the default: every replay revokes, as CONTRACT §2
    /// says). Raise it for clients that retry renewals.
    pub reuse_grace: i64,
    /// Session idle limit (30 min, sliding).
    pub session_idle: i64,
    /// Most entries of a Custom token's `apiEndpoints` (100).
    pub max_endpoints: usize,
    /// Most entries of `allowedIPs` (100).
    pub max_allowed_ips: usize,
    /// Longest `tokenName`, in characters (255).
    pub max_name_chars: usize,
    /// Web-service roots stripped from request paths.
    pub web_roots: Vec<String>,
    /// Paths a SCIM token may call.
    pub scim_prefixes: Vec<String>,
    /// Paths a 1-Touch token may call.
    pub one_touch_paths: Vec<String>,
    /// Paths a Hyperscale token may call.
    pub hyperscale_prefixes: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        PolicyConfig {
            access_lifetime: 30 * MINUTE,
            renewal_grace: 14 * DAY,
            renewable_default: 90 * DAY,
            renewable_max: 365 * DAY,
            scim_default: 30 * DAY,
            scim_max: 365 * DAY,
            one_touch_default: 7 * DAY,
            one_touch_max: 14 * DAY,
            reuse_grace: 0,
            session_idle: 30 * MINUTE,
            max_endpoints: 100,
            max_allowed_ips: 100,
            max_name_chars: 255,
            web_roots: strings(&["/commandcenter/api", "/webconsole/api"]),
            scim_prefixes: strings(&["/scim"]),
            one_touch_paths: strings(&[
                "/Client",
                "/MediaAgent",
                "/ClientGroup",
                "/V4/ServerGroup",
                "/FirewallSummary",
            ]),
            hyperscale_prefixes: strings(&["/V4/Hyperscale"]),
        }
    }
}

/// A token creation request as the caller sent it (wire names in comments).
/// `None` means the field was absent; `Some(0)` for a timestamp is treated as
/// absent too, as Commvault's clients send 0 for "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// `tokenName`.
    pub name: Option<String>,
    /// `tokenType` (default All, 2).
    pub token_type: Option<i64>,
    /// `renewableUntilTimestamp` (All, Custom, Hyperscale).
    pub renewable_until: Option<i64>,
    /// `tokenExpiryTimestamp` (SCIM, 1-Touch).
    pub token_expiry: Option<i64>,
    /// `apiEndpoints` (Custom).
    pub api_endpoints: Option<Vec<String>>,
    /// `allowedIPs`.
    pub allowed_ips: Option<Vec<String>>,
    /// `rateLimit` (absent: none on create, unchanged on edit).
    pub rate_limit: Option<RateLimitRequest>,
}

/// A `rateLimit` as a request gives it, before the policy checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitRequest {
    /// `null`: no limit (an edit removes one).
    Remove,
    /// `{"requests": N, "perSeconds": S}` (either may be missing: a 400).
    Set {
        /// `requests`.
        requests: Option<i64>,
        /// `perSeconds`.
        per_seconds: Option<i64>,
    },
}

impl TokenRequest {
    /// A request for an All token named `name`, every other field absent.
    pub fn named(name: &str) -> Self {
        TokenRequest {
            name: Some(name.to_string()),
            ..TokenRequest::default()
        }
    }
}

/// A `rateLimit` checked: both figures present, whole, within
/// 1..=[`RateLimit::MAX_REQUESTS`] requests per 1..=[`RateLimit::MAX_SECONDS`]
/// seconds; a 400 naming the figure otherwise, never a clamp.
fn check_rate_limit(r: RateLimitRequest) -> Result<Option<RateLimit>> {
    let RateLimitRequest::Set {
        requests,
        per_seconds,
    } = r
    else {
        return Ok(None);
    };
    let figure = |v: Option<i64>, name: &str, max: u32| -> Result<u32> {
        let v = v.ok_or_else(|| Error::invalid(name, "required in a rate limit"))?;
        u32::try_from(v)
            .ok()
            .filter(|v| (1..=max).contains(v))
            .ok_or_else(|| Error::invalid(name, format!("1 to {max}, not {v}")))
    };
    Ok(Some(RateLimit {
        requests: figure(requests, "rateLimit.requests", RateLimit::MAX_REQUESTS)?,
        per_seconds: figure(per_seconds, "rateLimit.perSeconds", RateLimit::MAX_SECONDS)?,
    }))
}

/// The validated parts of a new token, before the store gives it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTokenPlan {
    /// Validated name.
    pub name: String,
    /// Validated scope.
    pub scope: Scope,
    /// Validated address list.
    pub allowed_ips: IpAllowList,
    /// When the first access secret expires.
    pub access_expires_at: Timestamp,
    /// Renewal limit (refreshable scopes).
    pub renewable_until: Option<Timestamp>,
    /// End of life (see [`TokenRecord::ends_at`]).
    pub ends_at: Timestamp,
    /// Validated rate limit.
    pub rate_limit: Option<RateLimit>,
}

/// What a caller authenticated with. Token management needs a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authtoken: QSDK …` from `POST /Login`.
    Session,
    /// An access token (`Authorization: Bearer …`).
    AccessToken,
}

/// The policy: configuration plus what is parsed from it once at start.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    normaliser: Normaliser,
    rules: ScopeRules,
}

impl Policy {
    /// Checks and parses a configuration.
    pub fn new(config: PolicyConfig) -> std::result::Result<Self, PathError> {
        let normaliser = Normaliser::new(&config.web_roots)?;
        let rules = ScopeRules::new(
            &config.scim_prefixes,
            &config.one_touch_paths,
            &config.hyperscale_prefixes,
        )?;
        Ok(Policy {
            config,
            normaliser,
            rules,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The request-path normaliser (web-service roots from the configuration).
    pub fn normaliser(&self) -> &Normaliser {
        &self.normaliser
    }

    /// The fixed scopes' path rules.
    pub fn rules(&self) -> &ScopeRules {
        &self.rules
    }

    // ---- §2: validity -------------------------------------------------

    /// Validates a creation request at `now`.
    pub fn plan_new_token(&self, req: &TokenRequest, now: Timestamp) -> Result<NewTokenPlan> {
        let name = self.check_name(req.name.as_deref())?;
        let token_type = match req.token_type {
            None => TokenType::ALL,
            Some(n) => TokenType::from_number(n).ok_or_else(|| {
                Error::invalid("tokenType", format!("{n} is not a token type (0 to 5)"))
            })?,
        };
        let kind = token_type.kind();
        let scope = self.check_scope(token_type, req.api_endpoints.as_deref())?;
        let allowed_ips = self.check_ips(req.allowed_ips.as_deref())?;
        let (access_expires_at, renewable_until) = if kind.refreshable() {
            reject_field("tokenExpiryTimestamp", req.token_expiry, kind)?;
            let until = match given(req.renewable_until) {
                None => now + self.config.renewable_default,
                Some(v) => self.check_limit(
                    "renewableUntilTimestamp",
                    v,
                    now,
                    now,
                    self.config.renewable_max,
                )?,
            };
            (now + self.config.access_lifetime, Some(until))
        } else {
            reject_field("renewableUntilTimestamp", req.renewable_until, kind)?;
            let (default, max) = self.fixed_expiry(kind);
            let expiry = match given(req.token_expiry) {
                None => now + default,
                Some(v) => self.check_limit("tokenExpiryTimestamp", v, now, now, max)?,
            };
            (expiry, None)
        };
        Ok(NewTokenPlan {
            name,
            scope,
            allowed_ips,
            access_expires_at,
            renewable_until,
            ends_at: self.ends_at(access_expires_at, renewable_until),
            rate_limit: match req.rate_limit {
                None => None,
                Some(r) => check_rate_limit(r)?,
            },
        })
    }

    /// Validates an edit of `token` at `now`. Absent fields keep their value;
    /// limits count from the token's creation. A legacy token is never edited.
    pub fn plan_edit(
        &self,
        token: &TokenRecord,
        req: &TokenRequest,
        now: Timestamp,
    ) -> Result<TokenChanges> {
        if token.legacy {
            return Err(Error::Conflict(LEGACY_EDIT_MESSAGE.to_string()));
        }
        if token.revoked_at.is_some() {
            return Err(Error::NotFound(format!(
                "token {} does not exist",
                token.id.0
            )));
        }
        let name = match req.name.as_deref() {
            None => token.name.clone(),
            Some(n) => self.check_name(Some(n))?,
        };
        let old_kind = token.scope.kind();
        let token_type = match req.token_type {
            None => token.scope.token_type(),
            Some(n) => TokenType::from_number(n).ok_or_else(|| {
                Error::invalid("tokenType", format!("{n} is not a token type (0 to 5)"))
            })?,
        };
        let kind = token_type.kind();
        if kind != old_kind && !(kind.refreshable() && old_kind.refreshable()) {
            return Err(Error::invalid(
                "tokenType",
                format!(
                    "a {} token cannot become a {} token (their lifetimes differ); create a new token",
                    old_kind.label(),
                    kind.label()
                ),
            ));
        }
        let scope = match (&req.api_endpoints, req.token_type) {
            (None, None) => token.scope.clone(),
            (None, Some(_)) if kind.takes_endpoints() && old_kind.takes_endpoints() => {
                Scope::new(token_type, token.scope.endpoints().to_vec())
            }
            (endpoints, _) => self.check_scope(token_type, endpoints.as_deref())?,
        };
        let allowed_ips = match &req.allowed_ips {
            None => token.allowed_ips.clone(),
            Some(list) => self.check_ips(Some(list))?,
        };
        let created = token.created_at;
        let (access_expires_at, renewable_until) = if kind.refreshable() {
            reject_field("tokenExpiryTimestamp", req.token_expiry, kind)?;
            let until = match given(req.renewable_until) {
                None => token.renewable_until,
                Some(v) => Some(self.check_limit(
                    "renewableUntilTimestamp",
                    v,
                    now,
                    created,
                    self.config.renewable_max,
                )?),
            };
            (token.access_expires_at, until)
        } else {
            reject_field("renewableUntilTimestamp", req.renewable_until, kind)?;
            let (_, max) = self.fixed_expiry(kind);
            let expiry = match given(req.token_expiry) {
                None => token.access_expires_at,
                Some(v) => self.check_limit("tokenExpiryTimestamp", v, now, created, max)?,
            };
            (expiry, None)
        };
        Ok(TokenChanges {
            id: token.id,
            name,
            scope,
            allowed_ips,
            access_expires_at,
            renewable_until,
            ends_at: self.ends_at(access_expires_at, renewable_until),
            rate_limit: match req.rate_limit {
                None => token.rate_limit,
                Some(r) => check_rate_limit(r)?,
            },
        })
    }

    /// Whether `token` may be renewed at `now`; the error says which limit passed.
    pub fn check_renewal(&self, token: &TokenRecord, now: Timestamp) -> Result<()> {
        if token.revoked_at.is_some() {
            return Err(Error::Unauthorized("this token was revoked".into()));
        }
        let Some(until) = token
            .renewable_until
            .filter(|_| !token.legacy && token.scope.kind().refreshable())
        else {
            return Err(Error::Unauthorized(
                "this token cannot be renewed; create a new token".into(),
            ));
        };
        if now >= until {
            return Err(Error::Unauthorized(format!(
                "renewableUntilTimestamp ({until}) has passed; create a new token"
            )));
        }
        let grace_end = token.access_expires_at + self.config.renewal_grace;
        if now > grace_end {
            return Err(Error::Unauthorized(format!(
                "the access token expired more than {} days ago (renewal closed at {grace_end}); create a new token",
                self.config.renewal_grace / DAY
            )));
        }
        Ok(())
    }

    /// Whether presenting a refresh secret rotated out at `rotated_at` is, at
    /// `now`, a replay that revokes the token (true) or a duplicate of that
    /// renewal within the reuse grace (false).
    pub fn is_replay(&self, rotated_at: Timestamp, now: Timestamp) -> bool {
        now >= rotated_at + self.config.reuse_grace
    }

    /// Expiry of an access secret issued at `now` by a renewal.
    pub fn renewed_access_expiry(&self, now: Timestamp) -> Timestamp {
        now + self.config.access_lifetime
    }

    /// End of life of a token (see [`TokenRecord::ends_at`]).
    pub fn ends_at(
        &self,
        access_expires_at: Timestamp,
        renewable_until: Option<Timestamp>,
    ) -> Timestamp {
        match renewable_until {
            Some(until) => until
                .min(access_expires_at + self.config.renewal_grace)
                .max(access_expires_at),
            None => access_expires_at,
        }
    }

    /// Whether an access secret of `token` works at `now` (not revoked, not expired).
    pub fn access_valid(&self, token: &TokenRecord, now: Timestamp) -> bool {
        token.revoked_at.is_none() && now < token.access_expires_at
    }

    /// Whether a use of `session` at `now` should be written back (slide its
    /// window): at most once a minute, and at least twice per idle limit, so
    /// that a session in use never lapses while writes stay rare.
    pub fn session_needs_touch(&self, session: &SessionRecord, now: Timestamp) -> bool {
        now - session.last_seen_at >= (self.config.session_idle / 2).clamp(0, 60)
    }

    /// Whether a session is still alive at `now` (sliding idle limit).
    pub fn session_alive(&self, session: &SessionRecord, now: Timestamp) -> bool {
        now < session.last_seen_at + self.config.session_idle
    }

    // ---- §4: who may do what --------------------------------------------

    /// Whether `user` is an admin: what the admin-only calls require, and
    /// what `WhoAmI` reports (`isAdmin`) so that a client offers admin views.
    pub fn is_admin(&self, user: &User) -> bool {
        user.role == Role::Admin
    }

    /// May a caller read the validity policy (`GET /V4/AccessToken/Policy`)?
    /// Any session, as for token management, whose forms it serves; an
    /// access token may not (403).
    pub fn may_read_policy(&self, credential: Credential) -> Result<()> {
        self.require_session(credential)
    }

    /// May a caller introspect tokens (RFC 7662)? An admin's session only:
    /// an answer tells any token's owner and scope.
    pub fn may_introspect(&self, credential: Credential, user: &User) -> Result<()> {
        if credential == Credential::Session && self.is_admin(user) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "introspection needs an admin's session".into(),
            ))
        }
    }

    /// Token management (create, list, edit, revoke) needs a login session.
    pub fn require_session(&self, credential: Credential) -> Result<()> {
        match credential {
            Credential::Session => Ok(()),
            Credential::AccessToken => Err(Error::Forbidden(
                "an access token cannot manage tokens; log in and use the session (Authtoken: QSDK …)".into(),
            )),
        }
    }

    /// May `caller` create a token owned by the user `id` (`owner`: that
    /// user, `None` when there is none)? Only for themselves, or for a
    /// service account they own (an admin: any service account). Naming
    /// another person is refused, for admins too.
    ///
    /// A non-admin gets the same refusal whether the user is missing, a
    /// person or another's service account, so that ids tell them nothing;
    /// an admin, who may list every user anyway, hears that it is missing.
    pub fn may_create_for(&self, caller: &User, id: UserId, owner: Option<&User>) -> Result<()> {
        let refused = || {
            Error::Forbidden(
                "tokens are created for yourself only (or for a service account you own)".into(),
            )
        };
        match owner {
            Some(owner) if caller.id == owner.id => Ok(()),
            Some(owner) if owner.kind == UserKind::Service => {
                if self.is_admin(caller) || owner.owner == Some(caller.id) {
                    Ok(())
                } else {
                    Err(refused())
                }
            }
            Some(_) => Err(refused()),
            None if self.is_admin(caller) => Err(missing_user(id)),
            None => Err(refused()),
        }
    }

    /// May `caller` list the tokens of the user `id` (`owner`: that user,
    /// `None` when there is none)? Their own, those of service accounts they
    /// own, and anyone's for an admin. As for creation, a non-admin hears
    /// the same for a missing user as for someone else's.
    pub fn may_list_for(&self, caller: &User, id: UserId, owner: Option<&User>) -> Result<()> {
        match owner {
            Some(owner) if self.may_manage(caller, owner) => Ok(()),
            None if self.is_admin(caller) => Err(missing_user(id)),
            _ => Err(Error::Forbidden(
                "you may list only your own tokens (or those of service accounts you own)".into(),
            )),
        }
    }

    /// Whose audit trail `caller` reads when they ask for `asked` (the
    /// `userId` filter; `owner` is that user's record, if any): the filter
    /// to apply. An admin reads anyone's, a deleted user's too, and
    /// everyone's without a filter; anyone else reads their own (the
    /// default) or that of a service account they own, and nothing more.
    pub fn events_filter(
        &self,
        caller: &User,
        asked: Option<UserId>,
        owner: Option<&User>,
    ) -> Result<Option<UserId>> {
        if self.is_admin(caller) {
            return Ok(asked);
        }
        match (asked, owner) {
            (None, _) => Ok(Some(caller.id)),
            (Some(id), _) if id == caller.id => Ok(Some(id)),
            (Some(id), Some(owner)) if owner.id == id && self.may_manage(caller, owner) => {
                Ok(Some(id))
            }
            _ => Err(Error::Forbidden(
                "you may read only your own events (or those of service accounts you own)".into(),
            )),
        }
    }

    /// May `caller` list, edit or revoke the tokens of `owner`? Their own,
    /// those of service accounts they own, and anyone's for an admin.
    pub fn may_manage(&self, caller: &User, owner: &User) -> bool {
        self.is_admin(caller)
            || caller.id == owner.id
            || (owner.kind == UserKind::Service && owner.owner == Some(caller.id))
    }

    /// User administration is for admins.
    pub fn require_admin(&self, caller: &User) -> Result<()> {
        if self.is_admin(caller) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "only an admin may administer users".into(),
            ))
        }
    }

    // ---- helpers --------------------------------------------------------

    fn check_name(&self, name: Option<&str>) -> Result<String> {
        let name = name.map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Err(Error::invalid("tokenName", "a token needs a name"));
        }
        if name.chars().count() > self.config.max_name_chars {
            return Err(Error::invalid(
                "tokenName",
                format!("at most {} characters", self.config.max_name_chars),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "tokenName",
                "control characters are not allowed",
            ));
        }
        Ok(name.to_string())
    }

    fn check_scope(&self, token_type: TokenType, endpoints: Option<&[String]>) -> Result<Scope> {
        let entries = endpoints.unwrap_or_default();
        if !token_type.kind().takes_endpoints() {
            if !entries.is_empty() {
                return Err(Error::invalid(
                    "apiEndpoints",
                    format!(
                        "applies to Custom tokens only, not to {}",
                        token_type.kind().label()
                    ),
                ));
            }
            return Ok(Scope::new(token_type, Vec::new()));
        }
        let max = self.config.max_endpoints;
        if entries.is_empty() || entries.len() > max {
            return Err(Error::invalid(
                "apiEndpoints",
                format!(
                    "a Custom token needs 1 to {max} entries, got {}",
                    entries.len()
                ),
            ));
        }
        let rules =
            parse_endpoints(entries).map_err(|e| Error::invalid("apiEndpoints", e.to_string()))?;
        for (i, rule) in rules.iter().enumerate() {
            // A rule written under a web-service root would never match, since
            // request paths lose their root before matching: say so.
            match self.normaliser.normalise(rule.path().as_str()) {
                Ok(p) if p.as_str() == rule.path().as_str() => {}
                _ => {
                    return Err(Error::invalid(
                        "apiEndpoints",
                        format!(
                            "apiEndpoints[{i}]: write the path without the web-service root ({})",
                            self.config.web_roots.join(", ")
                        ),
                    ))
                }
            }
        }
        Ok(Scope::new(token_type, rules))
    }

    fn check_ips(&self, entries: Option<&[String]>) -> Result<IpAllowList> {
        let entries = entries.unwrap_or_default();
        if entries.len() > self.config.max_allowed_ips {
            return Err(Error::invalid(
                "allowedIPs",
                format!(
                    "at most {} entries, got {}",
                    self.config.max_allowed_ips,
                    entries.len()
                ),
            ));
        }
        IpAllowList::parse(entries).map_err(|e| Error::invalid("allowedIPs", e.to_string()))
    }

    /// A requested instant must lie after `now` and at most `max` after `from`.
    fn check_limit(
        &self,
        field: &str,
        value: i64,
        now: Timestamp,
        from: Timestamp,
        max: i64,
    ) -> Result<Timestamp> {
        if value <= now {
            return Err(Error::invalid(
                field,
                format!("{value} is not in the future (now is {now})"),
            ));
        }
        let limit = from + max;
        if value > limit {
            return Err(Error::invalid(
                field,
                format!(
                    "{value} is past the limit {limit} (creation + {} days)",
                    max / DAY
                ),
            ));
        }
        Ok(value)
    }

    fn fixed_expiry(&self, kind: ScopeKind) -> (i64, i64) {
        match kind {
            ScopeKind::OneTouch => (self.config.one_touch_default, self.config.one_touch_max),
            _ => (self.config.scim_default, self.config.scim_max),
        }
    }
}

/// A timestamp field counts as given unless absent or 0.
fn given(v: Option<i64>) -> Option<i64> {
    v.filter(|v| *v != 0)
}

/// A field that does not apply to `kind` is refused when given.
fn reject_field(field: &str, v: Option<i64>, kind: ScopeKind) -> Result<()> {
    match given(v) {
        None => Ok(()),
        Some(_) => Err(Error::invalid(
            field,
            format!("does not apply to {} tokens", kind.label()),
        )),
    }
}

/// "No such user" (404), for those who may know.
fn missing_user(id: UserId) -> Error {
    Error::NotFound(format!("user {} does not exist", id.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> User {
        User {
            id: UserId(7),
            name: "u".into(),
            role,
            kind: UserKind::Person,
            owner: None,
            password: None,
            created_at: 0,
        }
    }

    #[test]
    fn only_an_admins_session_introspects() {
        let p = Policy::new(PolicyConfig::default()).unwrap();
        let (admin, person) = (user(Role::Admin), user(Role::User));
        assert!(p.is_admin(&admin) && !p.is_admin(&person));
        assert_eq!(p.may_introspect(Credential::Session, &admin), Ok(()));
        for (credential, who) in [
            (Credential::Session, &person),
            (Credential::AccessToken, &admin),
            (Credential::AccessToken, &person),
        ] {
            assert!(
                matches!(p.may_introspect(credential, who), Err(Error::Forbidden(_))),
                "{credential:?} {:?}",
                who.role
            );
        }
    }

    #[test]
    fn any_session_reads_the_policy_and_no_access_token() {
        let p = Policy::new(PolicyConfig::default()).unwrap();
        assert_eq!(p.may_read_policy(Credential::Session), Ok(()));
        assert!(matches!(
            p.may_read_policy(Credential::AccessToken),
            Err(Error::Forbidden(_))
        ));
    }
}
