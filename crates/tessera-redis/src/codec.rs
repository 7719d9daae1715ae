//! How records are written into Redis values and read back.
//!
//! Every record is a hash of text fields. Numbers are decimal, digests are
//! lower-case hex (64 digits), optional values are absent fields. Records go
//! through [`tessera_core::stored`], which owns the encoding shared by every
//! backend (lists, roles, kinds, ids). A value that does not parse is
//! [`StoreError::Corrupt`]: the caller fails closed.

use redis::Value;
use tessera_core::model::{Event, SessionRecord, TokenRecord, User, UserId};
use tessera_core::notify::Delivery;
use tessera_core::secret::Digest;
use tessera_core::stored::{StoredEvent, StoredToken, StoredUser};
use tessera_core::StoreError;

/// Fields of a token record, in the order the scripts and `HMGET` return them.
/// The Lua scripts are generated with this same list, so the two cannot drift.
pub(crate) const TOKEN_FIELDS: [&str; 19] = [
    "id", "user", "uname", "name", "type", "eps", "ips", "created", "exp", "ren", "ends", "ad",
    "rd", "legacy", "rev", "used", "uip", "rl", "rp",
];

/// Fields of a user record, in `HMGET` order.
pub(crate) const USER_FIELDS: [&str; 7] = ["id", "name", "role", "kind", "owner", "pw", "created"];

/// Fields of a session record, in `HMGET` order.
pub(crate) const SESSION_FIELDS: [&str; 3] = ["user", "created", "seen"];

/// A `Corrupt` error naming what could not be read.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("redis record: {what}"))
}

/// The text of a reply element; `None` for a nil (absent key or field).
pub(crate) fn text(v: Value) -> Result<Option<String>, StoreError> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| corrupt("a value is not UTF-8")),
        Value::SimpleString(s) => Ok(Some(s)),
        Value::Int(i) => Ok(Some(i.to_string())),
        Value::Okay => Ok(Some("OK".into())),
        Value::VerbatimString { text, .. } => Ok(Some(text)),
        Value::Double(d) => Ok(Some(d.to_string())),
        Value::ServerError(e) => Err(crate::server_error(&e)),
        _ => Err(corrupt("unexpected reply type")),
    }
}

/// The text of a reply element that must be present.
pub(crate) fn required(v: Value, what: &str) -> Result<String, StoreError> {
    text(v)?.ok_or_else(|| corrupt(format!("{what} is missing")))
}

/// The elements of an array reply (a nil is an empty array).
pub(crate) fn array(v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        Value::ServerError(e) => Err(crate::server_error(&e)),
        _ => Err(corrupt("expected an array reply")),
    }
}

/// An array reply as optional texts (the shape of `HMGET`).
pub(crate) fn texts(v: Value) -> Result<Vec<Option<String>>, StoreError> {
    array(v)?.into_iter().map(text).collect()
}

/// A script's tagged reply: its status word and the remaining elements.
pub(crate) fn tagged(v: Value) -> Result<(String, Vec<Value>), StoreError> {
    let mut items = array(v)?.into_iter();
    let tag = required(
        items.next().ok_or_else(|| corrupt("empty script reply"))?,
        "script status",
    )?;
    Ok((tag, items.collect()))
}

/// Parses a decimal field.
pub(crate) fn int<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| corrupt(format!("{what} is not a number")))
}

/// Parses an optional decimal field.
fn opt_int<T: std::str::FromStr>(s: Option<String>, what: &str) -> Result<Option<T>, StoreError> {
    s.map(|s| int(&s, what)).transpose()
}

/// Parses a hex digest field.
pub(crate) fn digest(s: &str, what: &str) -> Result<Digest, StoreError> {
    Digest::from_hex(s).ok_or_else(|| corrupt(format!("{what} is not a digest")))
}

fn hex(bytes: [u8; 32]) -> String {
    Digest::from_bytes(bytes).to_hex()
}

/// The fields of a token record, as `(field, value)` pairs; absent options are left out.
pub(crate) fn token_fields(t: &TokenRecord) -> Result<Vec<(&'static str, String)>, StoreError> {
    let t = StoredToken::from_record(t)?;
    let mut f = vec![
        ("id", t.id.to_string()),
        ("user", t.user_id.to_string()),
        ("uname", t.user_name),
        ("name", t.name),
        ("type", t.token_type.to_string()),
        ("eps", t.api_endpoints),
        ("ips", t.allowed_ips),
        ("created", t.created_at.to_string()),
        ("exp", t.access_expires_at.to_string()),
        ("ends", t.ends_at.to_string()),
        ("ad", hex(t.access_digest)),
        ("legacy", if t.legacy { "1" } else { "0" }.to_string()),
    ];
    let optional = [
        ("ren", t.renewable_until.map(|v| v.to_string())),
        ("rd", t.refresh_digest.map(hex)),
        ("rev", t.revoked_at.map(|v| v.to_string())),
        ("used", t.last_used_at.map(|v| v.to_string())),
        ("uip", t.last_used_ip),
        ("rl", t.rate_requests.map(|v| v.to_string())),
        ("rp", t.rate_per.map(|v| v.to_string())),
    ];
    f.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    Ok(f)
}

/// Reads a token record from values in [`TOKEN_FIELDS`] order. `None` when
/// every field is absent (no such key).
pub(crate) fn decode_token(values: Vec<Option<String>>) -> Result<Option<TokenRecord>, StoreError> {
    if values.len() != TOKEN_FIELDS.len() {
        return Err(corrupt("token record has the wrong number of fields"));
    }
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut it = values.into_iter();
    let mut next = || it.next().flatten();
    let need = |v: Option<String>, what: &str| {
        v.ok_or_else(|| corrupt(format!("token {what} is missing")))
    };
    let bytes = |d: &str, what: &str| digest(d, what).map(|d| *d.as_bytes());
    let stored = StoredToken {
        id: int(&need(next(), "id")?, "token id")?,
        user_id: int(&need(next(), "user")?, "token user")?,
        user_name: need(next(), "user name")?,
        name: need(next(), "name")?,
        token_type: int(&need(next(), "type")?, "token type")?,
        api_endpoints: need(next(), "endpoints")?,
        allowed_ips: need(next(), "allowed IPs")?,
        created_at: int(&need(next(), "created")?, "token created")?,
        access_expires_at: int(&need(next(), "expiry")?, "token expiry")?,
        renewable_until: opt_int(next(), "token renewable until")?,
        ends_at: int(&need(next(), "end of life")?, "token end of life")?,
        access_digest: bytes(&need(next(), "access digest")?, "access digest")?,
        refresh_digest: next().map(|d| bytes(&d, "refresh digest")).transpose()?,
        legacy: match need(next(), "legacy flag")?.as_str() {
            "1" => true,
            "0" => false,
            _ => return Err(corrupt("token legacy flag is malformed")),
        },
        revoked_at: opt_int(next(), "token revoked at")?,
        last_used_at: opt_int(next(), "token last used")?,
        last_used_ip: next(),
        rate_requests: opt_int(next(), "token rate limit")?,
        rate_per: opt_int(next(), "token rate window")?,
    };
    stored.into_record().map(Some)
}

/// The fields of a user record (absent options left out).
pub(crate) fn user_fields(u: &User) -> Result<Vec<(&'static str, String)>, StoreError> {
    let u = StoredUser::from_user(u)?;
    let mut f = vec![
        ("id", u.id.to_string()),
        ("name", u.name),
        ("role", u.role),
        ("kind", u.kind),
        ("created", u.created_at.to_string()),
    ];
    if let Some(o) = u.owner_id {
        f.push(("owner", o.to_string()));
    }
    if let Some(p) = u.password_hash {
        f.push(("pw", p));
    }
    Ok(f)
}

/// Reads a user from values in [`USER_FIELDS`] order; `None` when absent.
pub(crate) fn decode_user(values: Vec<Option<String>>) -> Result<Option<User>, StoreError> {
    if values.len() != USER_FIELDS.len() {
        return Err(corrupt("user record has the wrong number of fields"));
    }
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut it = values.into_iter();
    let mut next = || it.next().flatten();
    let need =
        |v: Option<String>, what: &str| v.ok_or_else(|| corrupt(format!("user {what} is missing")));
    let stored = StoredUser {
        id: int(&need(next(), "id")?, "user id")?,
        name: need(next(), "name")?,
        role: need(next(), "role")?,
        kind: need(next(), "kind")?,
        owner_id: opt_int(next(), "user owner")?,
        password_hash: next(),
        created_at: int(&need(next(), "created")?, "user created")?,
    };
    stored.into_user().map(Some)
}

/// Reads a session from values in [`SESSION_FIELDS`] order; `None` when absent.
pub(crate) fn decode_session(
    digest: Digest,
    values: Vec<Option<String>>,
) -> Result<Option<SessionRecord>, StoreError> {
    if values.len() != SESSION_FIELDS.len() {
        return Err(corrupt("session record has the wrong number of fields"));
    }
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut it = values.into_iter();
    let mut next = || it.next().flatten();
    let need = |v: Option<String>, what: &str| {
        v.ok_or_else(|| corrupt(format!("session {what} is missing")))
    };
    Ok(Some(SessionRecord {
        digest,
        user_id: UserId(int(&need(next(), "user")?, "session user")?),
        created_at: int(&need(next(), "created")?, "session created")?,
        last_seen_at: int(&need(next(), "last seen")?, "session last seen")?,
    }))
}

/// An event as one hash value: `<at> <kind> <token id> <user id> <actor
/// user id> <actor token id> <address> <detail>`, `-` for an absent id or
/// address; the detail is last, so it may hold spaces.
pub(crate) fn encode_event(e: &Event) -> Result<String, StoreError> {
    let e = StoredEvent::from_event(e)?;
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let address = if e.address.is_empty() {
        "-"
    } else {
        &e.address
    };
    Ok(format!(
        "{} {} {} {} {} {} {} {}",
        e.at,
        e.kind,
        opt(e.token_id),
        opt(e.user_id),
        opt(e.actor_user_id),
        opt(e.actor_token_id),
        address,
        e.detail
    ))
}

/// A webhook delivery as the outbox holds it: receiver, key, deadline
/// (`-`: none) and keep-until on a line each, then the event
/// ([`encode_event`]). Receiver and key hold no line break or space (the
/// outbox's index joins them with one): a delivery that would is refused.
pub(crate) fn encode_delivery(d: &Delivery) -> Result<String, StoreError> {
    if [&d.receiver, &d.key]
        .iter()
        .any(|s| s.is_empty() || s.contains(['\n', ' ']))
    {
        return Err(StoreError::Corrupt(
            "a webhook receiver or key holds a space or a line break".into(),
        ));
    }
    let deadline = d
        .deadline
        .map_or_else(|| "-".to_string(), |t| t.to_string());
    Ok(format!(
        "{}\n{}\n{deadline}\n{}\n{}",
        d.receiver,
        d.key,
        d.keep_until,
        encode_event(&d.event)?
    ))
}

/// Reads a delivery written by [`encode_delivery`].
pub(crate) fn decode_delivery(s: &str) -> Result<Delivery, StoreError> {
    let parts: Vec<&str> = s.splitn(5, '\n').collect();
    let [receiver, key, deadline, keep_until, event] = parts.as_slice() else {
        return Err(corrupt("a webhook delivery is malformed"));
    };
    Ok(Delivery {
        receiver: (*receiver).to_string(),
        key: (*key).to_string(),
        deadline: match *deadline {
            "-" => None,
            d => Some(int(d, "a delivery's deadline")?),
        },
        keep_until: int(keep_until, "a delivery's keep-until")?,
        event: decode_event(event)?,
    })
}

/// Reads an event written by [`encode_event`].
pub(crate) fn decode_event(s: &str) -> Result<Event, StoreError> {
    let parts: Vec<&str> = s.splitn(8, ' ').collect();
    let [at, kind, token, user, actor_user, actor_token, address, detail] = parts.as_slice() else {
        return Err(corrupt("event is malformed"));
    };
    let opt = |v: &str| -> Result<Option<i64>, StoreError> {
        if v == "-" {
            Ok(None)
        } else {
            int(v, "event id").map(Some)
        }
    };
    StoredEvent {
        at: int(at, "event time")?,
        kind: (*kind).to_string(),
        token_id: opt(token)?,
        user_id: opt(user)?,
        actor_user_id: opt(actor_user)?,
        actor_token_id: opt(actor_token)?,
        address: if *address == "-" {
            String::new()
        } else {
            (*address).to_string()
        },
        detail: (*detail).to_string(),
    }
    .into_event()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::model::{Actor, EventKind, TokenId};

    #[test]
    fn events_round_trip() {
        let e = Event::new(EventKind::ReuseDetected, -5, Actor::Token(TokenId(7)))
            .token(TokenId(7), None);
        let spaced = Event::new(EventKind::LoginFailed, 1, Actor::Nobody)
            .user(UserId(3))
            .from(Some("::1".parse().unwrap()))
            .detail(" a name  with spaces ");
        for e in [e, spaced] {
            assert_eq!(decode_event(&encode_event(&e).unwrap()).unwrap(), e);
        }
        assert!(decode_event("1 token.revoked 2").is_err());
        assert!(decode_event("1 nope - - - - - ").is_err());
        assert!(decode_event("1 login.failed - - - - 10.0.0.999 ").is_err());
    }
}
