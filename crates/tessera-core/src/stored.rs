//! The flat form of the model that storage backends keep: integers, strings
//! and 32-byte digests, as a table row or a Redis hash holds them. Every
//! backend converts through here, so the encoding of scopes, address lists,
//! roles and digests exists once, and a record that does not decode back is
//! refused as [`StoreError::Corrupt`] (fail closed) in one place.

use crate::address::IpAllowList;
use crate::error::StoreError;
use crate::model::{
    Actor, Event, EventKind, RateLimit, Role, TokenId, TokenRecord, User, UserId, UserKind,
    EVENT_DETAIL_MAX,
};
use crate::scope::Scope;
use crate::secret::password::PasswordHash;
use crate::secret::Digest;

/// A token as columns. Ids are `i64` because SQL integers are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// [`TokenRecord::id`].
    pub id: i64,
    /// [`TokenRecord::user_id`].
    pub user_id: i64,
    /// [`TokenRecord::user_name`].
    pub user_name: String,
    /// [`TokenRecord::name`].
    pub name: String,
    /// The `tokenType` wire number.
    pub token_type: i64,
    /// Custom entries as written (see [`join_list`]).
    pub api_endpoints: String,
    /// `allowedIPs` entries as written (see [`join_list`]).
    pub allowed_ips: String,
    /// [`TokenRecord::created_at`].
    pub created_at: i64,
    /// [`TokenRecord::access_expires_at`].
    pub access_expires_at: i64,
    /// [`TokenRecord::renewable_until`].
    pub renewable_until: Option<i64>,
    /// [`TokenRecord::ends_at`].
    pub ends_at: i64,
    /// SHA-256 of the current access secret.
    pub access_digest: [u8; 32],
    /// SHA-256 of the current refresh secret.
    pub refresh_digest: Option<[u8; 32]>,
    /// [`TokenRecord::legacy`].
    pub legacy: bool,
    /// [`TokenRecord::revoked_at`].
    pub revoked_at: Option<i64>,
    /// [`TokenRecord::last_used_at`].
    pub last_used_at: Option<i64>,
    /// [`TokenRecord::last_used_ip`] as text (`None` or `""`: none).
    pub last_used_ip: Option<String>,
    /// [`RateLimit::requests`] (with `rate_per`, both or neither).
    pub rate_requests: Option<i64>,
    /// [`RateLimit::per_seconds`].
    pub rate_per: Option<i64>,
}

/// A user as columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    /// [`User::id`].
    pub id: i64,
    /// [`User::name`].
    pub name: String,
    /// `admin` or `user`.
    pub role: String,
    /// `person` or `service`.
    pub kind: String,
    /// [`User::owner`].
    pub owner_id: Option<i64>,
    /// Argon2id PHC string.
    pub password_hash: Option<String>,
    /// [`User::created_at`].
    pub created_at: i64,
}

/// An event as columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// [`Event::at`].
    pub at: i64,
    /// [`EventKind::as_str`].
    pub kind: String,
    /// [`Event::token_id`].
    pub token_id: Option<i64>,
    /// [`Event::user_id`].
    pub user_id: Option<i64>,
    /// [`Actor::User`]'s id.
    pub actor_user_id: Option<i64>,
    /// [`Actor::Token`]'s id.
    pub actor_token_id: Option<i64>,
    /// [`Event::address`] as text (`""`: none).
    pub address: String,
    /// [`Event::detail`].
    pub detail: String,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// An id as a signed column value (ids beyond `i64::MAX` are never made).
pub fn id_to_i64(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| corrupt("id out of range"))
}

/// An id as a signed column value, or `None` when no row can have it (past
/// `i64::MAX`): a look-up by such an id finds nothing, it is no fault.
pub fn id_in_range(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// A signed column value as an id.
pub fn id_from_i64(id: i64) -> Result<u64, StoreError> {
    u64::try_from(id).map_err(|_| corrupt("negative id"))
}

/// Writes a list as `<byte length>:<entry>` repeated, so that no entry,
/// whatever it holds (an address range may hold a line break around its
/// `-`), can be split or merged on the way back. The empty list is "".
pub fn join_list(entries: &[String]) -> String {
    let mut out = String::new();
    for entry in entries {
        out.push_str(&entry.len().to_string());
        out.push(':');
        out.push_str(entry);
    }
    out
}

/// Reads what [`join_list`] wrote; anything else is `Corrupt`.
pub fn split_list(mut rest: &str) -> Result<Vec<String>, StoreError> {
    let bad = || corrupt("a stored list is malformed");
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(':').ok_or_else(bad)?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let len: usize = len.parse().map_err(|_| bad())?;
        out.push(tail.get(..len).ok_or_else(bad)?.to_string());
        rest = tail.get(len..).ok_or_else(bad)?;
    }
    Ok(out)
}

/// A digest from a column of bytes (exactly 32).
pub fn digest_from_slice(bytes: &[u8]) -> Result<Digest, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(Digest::from_bytes)
        .map_err(|_| corrupt("a digest is not 32 bytes"))
}

impl StoredToken {
    /// The columns of `t`.
    pub fn from_record(t: &TokenRecord) -> Result<Self, StoreError> {
        Ok(StoredToken {
            id: id_to_i64(t.id.0)?,
            user_id: id_to_i64(t.user_id.0)?,
            user_name: t.user_name.clone(),
            name: t.name.clone(),
            token_type: i64::from(t.scope.token_type().number()),
            api_endpoints: join_list(&t.scope.endpoint_strings()),
            allowed_ips: join_list(t.allowed_ips.entries()),
            created_at: t.created_at,
            access_expires_at: t.access_expires_at,
            renewable_until: t.renewable_until,
            ends_at: t.ends_at,
            access_digest: *t.access_digest.as_bytes(),
            refresh_digest: t.refresh_digest.map(|d| *d.as_bytes()),
            legacy: t.legacy,
            revoked_at: t.revoked_at,
            last_used_at: t.last_used_at,
            last_used_ip: t.last_used_ip.map(|a| a.to_string()),
            rate_requests: t.rate_limit.map(|r| i64::from(r.requests)),
            rate_per: t.rate_limit.map(|r| i64::from(r.per_seconds)),
        })
    }

    /// Back to the model; a record that does not parse is `Corrupt`.
    pub fn into_record(self) -> Result<TokenRecord, StoreError> {
        let scope = Scope::from_stored(self.token_type, &split_list(&self.api_endpoints)?)
            .map_err(|e| StoreError::Corrupt(format!("token {}: {e}", self.id)))?;
        let allowed_ips = IpAllowList::parse(split_list(&self.allowed_ips)?)
            .map_err(|e| StoreError::Corrupt(format!("token {}: {e}", self.id)))?;
        let rate_limit = match (self.rate_requests, self.rate_per) {
            (None, None) => None,
            (Some(requests), Some(per)) => {
                let bad = || StoreError::Corrupt(format!("token {}: rate limit", self.id));
                let requests = u32::try_from(requests).map_err(|_| bad())?;
                let per_seconds = u32::try_from(per).map_err(|_| bad())?;
                if !(1..=RateLimit::MAX_REQUESTS).contains(&requests)
                    || !(1..=RateLimit::MAX_SECONDS).contains(&per_seconds)
                {
                    return Err(bad());
                }
                Some(RateLimit {
                    requests,
                    per_seconds,
                })
            }
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "token {}: half a rate limit",
                    self.id
                )))
            }
        };
        let last_used_ip = match self.last_used_ip.as_deref() {
            None | Some("") => None,
            Some(a) => Some(a.parse().map_err(|_| {
                StoreError::Corrupt(format!("token {}: last-used address", self.id))
            })?),
        };
        Ok(TokenRecord {
            id: TokenId(id_from_i64(self.id)?),
            user_id: UserId(id_from_i64(self.user_id)?),
            user_name: self.user_name,
            name: self.name,
            scope,
            allowed_ips,
            created_at: self.created_at,
            access_expires_at: self.access_expires_at,
            renewable_until: self.renewable_until,
            ends_at: self.ends_at,
            access_digest: Digest::from_bytes(self.access_digest),
            refresh_digest: self.refresh_digest.map(Digest::from_bytes),
            legacy: self.legacy,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            last_used_ip,
            rate_limit,
        })
    }
}

impl StoredUser {
    /// The columns of `u`.
    pub fn from_user(u: &User) -> Result<Self, StoreError> {
        Ok(StoredUser {
            id: id_to_i64(u.id.0)?,
            name: u.name.clone(),
            role: u.role.as_str().to_string(),
            kind: u.kind.as_str().to_string(),
            owner_id: u.owner.map(|o| id_to_i64(o.0)).transpose()?,
            password_hash: u.password.as_ref().map(|p| p.as_phc().to_string()),
            created_at: u.created_at,
        })
    }

    /// Back to the model; unknown roles or kinds are `Corrupt`.
    pub fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: UserId(id_from_i64(self.id)?),
            role: Role::parse(&self.role).ok_or_else(|| corrupt("unknown role"))?,
            kind: UserKind::parse(&self.kind).ok_or_else(|| corrupt("unknown user kind"))?,
            owner: self.owner_id.map(id_from_i64).transpose()?.map(UserId),
            password: self.password_hash.map(PasswordHash::from_phc),
            name: self.name,
            created_at: self.created_at,
        })
    }
}

impl StoredEvent {
    /// The columns of `e`.
    pub fn from_event(e: &Event) -> Result<Self, StoreError> {
        let id = |n: u64| id_to_i64(n);
        let (actor_user_id, actor_token_id) = match e.actor {
            Actor::User(u) => (Some(id(u.0)?), None),
            Actor::Token(t) => (None, Some(id(t.0)?)),
            Actor::Nobody => (None, None),
        };
        Ok(StoredEvent {
            at: e.at,
            kind: e.kind.as_str().to_string(),
            token_id: e.token_id.map(|t| id(t.0)).transpose()?,
            user_id: e.user_id.map(|u| id(u.0)).transpose()?,
            actor_user_id,
            actor_token_id,
            address: e.address.map(|a| a.to_string()).unwrap_or_default(),
            detail: e.detail.chars().take(EVENT_DETAIL_MAX).collect(),
        })
    }

    /// Back to the model; an unknown kind, an actor that is both a user
    /// and a token, or an address that does not parse is `Corrupt`.
    pub fn into_event(self) -> Result<Event, StoreError> {
        let actor = match (self.actor_user_id, self.actor_token_id) {
            (Some(u), None) => Actor::User(UserId(id_from_i64(u)?)),
            (None, Some(t)) => Actor::Token(TokenId(id_from_i64(t)?)),
            (None, None) => Actor::Nobody,
            (Some(_), Some(_)) => return Err(corrupt("an event has two actors")),
        };
        let address = match self.address.as_str() {
            "" => None,
            a => Some(a.parse().map_err(|_| corrupt("an event's address"))?),
        };
        Ok(Event {
            at: self.at,
            kind: EventKind::parse(&self.kind).ok_or_else(|| corrupt("unknown event kind"))?,
            actor,
            token_id: self.token_id.map(id_from_i64).transpose()?.map(TokenId),
            user_id: self.user_id.map(id_from_i64).transpose()?.map(UserId),
            address,
            detail: self.detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::{parse_endpoints, TokenType};

    #[test]
    fn a_token_round_trips_through_columns() {
        let t = TokenRecord {
            id: TokenId(7),
            user_id: UserId(3),
            user_name: "alice".into(),
            name: "n".into(),
            scope: Scope::new(
                TokenType::CUSTOM,
                parse_endpoints(&["GET /Client".into(), "/Job".into()]).unwrap(),
            ),
            allowed_ips: IpAllowList::parse(["10.0.0.0/8", "::1"]).unwrap(),
            created_at: 1,
            access_expires_at: 2,
            renewable_until: Some(3),
            ends_at: 4,
            access_digest: Digest::of("a"),
            refresh_digest: None,
            legacy: false,
            revoked_at: Some(5),
            last_used_at: None,
            last_used_ip: None,
            rate_limit: Some(RateLimit {
                requests: 100,
                per_seconds: 60,
            }),
        };
        let cols = StoredToken::from_record(&t).unwrap();
        assert_eq!(cols.api_endpoints, "11:GET /Client4:/Job");
        assert_eq!(cols.into_record().unwrap(), t);
    }

    #[test]
    fn events_round_trip_through_columns() {
        let base = Event::new(EventKind::LoginFailed, 9, Actor::Nobody)
            .user(UserId(2))
            .from(Some("2001:db8::1".parse().unwrap()))
            .detail("bob");
        for e in [
            base.clone(),
            Event::new(EventKind::NewAddress, 1, Actor::Token(TokenId(4)))
                .token(TokenId(4), Some(UserId(3))),
            Event::new(EventKind::TokenCreated, 1, Actor::User(UserId(1)))
                .token(TokenId(4), Some(UserId(3)))
                .from(Some("10.0.0.1".parse().unwrap())),
        ] {
            let cols = StoredEvent::from_event(&e).unwrap();
            assert_eq!(cols.into_event().unwrap(), e);
        }
        let mut bad = StoredEvent::from_event(&base).unwrap();
        bad.address = "10.0.0.300".into();
        assert!(bad.clone().into_event().is_err());
        bad.address = String::new();
        bad.actor_user_id = Some(1);
        bad.actor_token_id = Some(1);
        assert!(bad.into_event().is_err());
        let long = Event::new(EventKind::LoginFailed, 1, Actor::Nobody).detail(&"é".repeat(300));
        assert_eq!(long.detail.chars().count(), EVENT_DETAIL_MAX);
    }

    #[test]
    fn lists_round_trip_whatever_they_hold() {
        for list in [
            vec![],
            vec!["".to_string()],
            vec![
                "10.0.0.1 -\n 10.0.0.5".to_string(),
                "a:b".into(),
                "12:x".into(),
                "é".into(),
            ],
        ] {
            assert_eq!(split_list(&join_list(&list)), Ok(list));
        }
    }

    #[test]
    fn bad_columns_are_corrupt() {
        let mut cols = StoredToken::from_record(&TokenRecord {
            id: TokenId(1),
            user_id: UserId(1),
            user_name: "a".into(),
            name: "n".into(),
            scope: Scope::new(TokenType::ALL, vec![]),
            allowed_ips: IpAllowList::default(),
            created_at: 0,
            access_expires_at: 0,
            renewable_until: None,
            ends_at: 0,
            access_digest: Digest::of("a"),
            refresh_digest: None,
            legacy: false,
            revoked_at: None,
            last_used_at: None,
            last_used_ip: None,
            rate_limit: None,
        })
        .unwrap();
        cols.allowed_ips = "not an address".into();
        assert!(matches!(
            cols.clone().into_record(),
            Err(StoreError::Corrupt(_))
        ));
        cols.allowed_ips = String::new();
        cols.token_type = 9;
        assert!(matches!(
            cols.clone().into_record(),
            Err(StoreError::Corrupt(_))
        ));
        cols.token_type = 2;
        cols.id = -1;
        assert!(matches!(cols.into_record(), Err(StoreError::Corrupt(_))));
        assert!(digest_from_slice(&[0u8; 31]).is_err());
        assert_eq!(split_list(""), Ok(Vec::<String>::new()));
        for bad in ["5:abc", "x:abc", ":", "3", "-1:a"] {
            assert!(split_list(bad).is_err(), "{bad}");
        }
    }
}
