//! How records are written into Redis values and read back.
//!
//! Every record is a hash of text fields. Numbers are decimal, digests are
//! lower-case hex (64 digits), optional values are absent fields, and lists
//! (Custom endpoints, allowed IPs) use a length-prefixed form
//! (`<byte length>:<entry>` repeated) so that no entry, whatever characters it
//! holds, can be split or merged on the way back. A value that does not parse
//! is [`StoreError::Corrupt`]: the caller fails closed.

use redis::Value;
use tessera_core::address::IpAllowList;
use tessera_core::model::{
    Event, EventKind, Role, SessionRecord, Timestamp, TokenId, TokenRecord, User, UserId, UserKind,
};
use tessera_core::scope::Scope;
use tessera_core::secret::password::PasswordHash;
use tessera_core::secret::Digest;
use tessera_core::StoreError;

/// Fields of a token record, in the order the scripts and `HMGET` return them.
/// The Lua scripts are generated with this same list, so the two cannot drift.
pub(crate) const TOKEN_FIELDS: [&str; 16] = [
    "id", "user", "uname", "name", "type", "eps", "ips", "created", "exp", "ren", "ends", "ad",
    "rd", "legacy", "rev", "used",
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

/// Writes a list as `<len>:<entry>` repeated (`len` in bytes).
pub(crate) fn encode_list(items: &[String]) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&item.len().to_string());
        out.push(':');
        out.push_str(item);
    }
    out
}

/// Reads a list written by [`encode_list`]; `None` when malformed.
pub(crate) fn decode_list(mut rest: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let colon = rest.find(':')?;
        let len_text = &rest[..colon];
        if len_text.is_empty() || !len_text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let len: usize = len_text.parse().ok()?;
        let start = colon + 1;
        let end = start.checked_add(len)?;
        out.push(rest.get(start..end)?.to_string());
        rest = rest.get(end..)?;
    }
    Some(out)
}

/// The fields of a token record, as `(field, value)` pairs; absent options are left out.
pub(crate) fn token_fields(t: &TokenRecord) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("id", t.id.0.to_string()),
        ("user", t.user_id.0.to_string()),
        ("uname", t.user_name.clone()),
        ("name", t.name.clone()),
        ("type", t.scope.token_type().number().to_string()),
        ("eps", encode_list(&t.scope.endpoint_strings())),
        ("ips", encode_list(t.allowed_ips.entries())),
        ("created", t.created_at.to_string()),
        ("exp", t.access_expires_at.to_string()),
        ("ends", t.ends_at.to_string()),
        ("ad", t.access_digest.to_hex()),
        ("legacy", if t.legacy { "1" } else { "0" }.to_string()),
    ];
    if let Some(r) = t.renewable_until {
        f.push(("ren", r.to_string()));
    }
    if let Some(d) = t.refresh_digest {
        f.push(("rd", d.to_hex()));
    }
    if let Some(r) = t.revoked_at {
        f.push(("rev", r.to_string()));
    }
    if let Some(u) = t.last_used_at {
        f.push(("used", u.to_string()));
    }
    f
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
    let id = TokenId(int(&need(next(), "id")?, "token id")?);
    let user_id = UserId(int(&need(next(), "user")?, "token user")?);
    let user_name = need(next(), "user name")?;
    let name = need(next(), "name")?;
    let token_type: i64 = int(&need(next(), "type")?, "token type")?;
    let eps = decode_list(&need(next(), "endpoints")?)
        .ok_or_else(|| corrupt("token endpoints are malformed"))?;
    let ips = decode_list(&need(next(), "allowed IPs")?)
        .ok_or_else(|| corrupt("token allowed IPs are malformed"))?;
    let created_at = int(&need(next(), "created")?, "token created")?;
    let access_expires_at = int(&need(next(), "expiry")?, "token expiry")?;
    let renewable_until = opt_int(next(), "token renewable until")?;
    let ends_at = int(&need(next(), "end of life")?, "token end of life")?;
    let access_digest = digest(&need(next(), "access digest")?, "access digest")?;
    let refresh_digest = next().map(|d| digest(&d, "refresh digest")).transpose()?;
    let legacy = match need(next(), "legacy flag")?.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(corrupt("token legacy flag is malformed")),
    };
    let revoked_at = opt_int(next(), "token revoked at")?;
    let last_used_at = opt_int(next(), "token last used")?;
    let scope = Scope::from_stored(token_type, &eps).map_err(|e| corrupt(format!("scope: {e}")))?;
    let allowed_ips = IpAllowList::parse(&ips).map_err(|e| corrupt(format!("allowed IPs: {e}")))?;
    Ok(Some(TokenRecord {
        id,
        user_id,
        user_name,
        name,
        scope,
        allowed_ips,
        created_at,
        access_expires_at,
        renewable_until,
        ends_at,
        access_digest,
        refresh_digest,
        legacy,
        revoked_at,
        last_used_at,
    }))
}

/// The fields of a user record (absent options left out).
pub(crate) fn user_fields(u: &User) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("id", u.id.0.to_string()),
        ("name", u.name.clone()),
        ("role", u.role.as_str().to_string()),
        ("kind", u.kind.as_str().to_string()),
        ("created", u.created_at.to_string()),
    ];
    if let Some(o) = u.owner {
        f.push(("owner", o.0.to_string()));
    }
    if let Some(p) = &u.password {
        f.push(("pw", p.as_phc().to_string()));
    }
    f
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
    let id = UserId(int(&need(next(), "id")?, "user id")?);
    let name = need(next(), "name")?;
    let role =
        Role::parse(&need(next(), "role")?).ok_or_else(|| corrupt("user role is unknown"))?;
    let kind =
        UserKind::parse(&need(next(), "kind")?).ok_or_else(|| corrupt("user kind is unknown"))?;
    let owner = opt_int(next(), "user owner")?.map(UserId);
    let password = next().map(PasswordHash::from_phc);
    let created_at = int(&need(next(), "created")?, "user created")?;
    Ok(Some(User {
        id,
        name,
        role,
        kind,
        owner,
        password,
        created_at,
    }))
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

/// An event as one list element: `<at> <kind> <token id or -> <user id or ->`.
pub(crate) fn encode_event(e: &Event) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    format!(
        "{} {} {} {}",
        e.at,
        e.kind.as_str(),
        opt(e.token_id.map(|t| t.0)),
        opt(e.user_id.map(|u| u.0))
    )
}

/// Reads an event written by [`encode_event`].
pub(crate) fn decode_event(s: &str) -> Result<Event, StoreError> {
    let parts: Vec<&str> = s.split(' ').collect();
    let [at, kind, token, user] = parts.as_slice() else {
        return Err(corrupt("event is malformed"));
    };
    let opt = |v: &str| -> Result<Option<u64>, StoreError> {
        if v == "-" {
            Ok(None)
        } else {
            int(v, "event id").map(Some)
        }
    };
    Ok(Event {
        at: int::<Timestamp>(at, "event time")?,
        kind: EventKind::parse(kind).ok_or_else(|| corrupt("event kind is unknown"))?,
        token_id: opt(token)?.map(TokenId),
        user_id: opt(user)?.map(UserId),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_whatever_they_hold() {
        for list in [
            vec![],
            vec![String::new()],
            vec![
                "GET /Client".to_string(),
                "10.0.0.5\n-\n10.0.0.9".to_string(),
            ],
            vec!["3:abc".to_string(), "ünï:cødé".to_string(), ":".to_string()],
        ] {
            assert_eq!(decode_list(&encode_list(&list)), Some(list));
        }
        for bad in ["3:ab", "x:abc", ":abc", "1:é", "1:a2", "-1:a", "+1:a"] {
            assert_eq!(decode_list(bad), None, "{bad}");
        }
    }

    #[test]
    fn events_round_trip() {
        let e = Event {
            at: -5,
            kind: EventKind::ReuseDetected,
            token_id: Some(TokenId(7)),
            user_id: None,
        };
        assert_eq!(decode_event(&encode_event(&e)).unwrap(), e);
        assert!(decode_event("1 token.revoked 2").is_err());
        assert!(decode_event("1 nope - -").is_err());
    }
}
