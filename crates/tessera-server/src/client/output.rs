//! What the client prints: the token table, a created token, dates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tessera_core::scope::TokenType;

/// A Unix time as `YYYY-MM-DD HH:MM` (UTC); `-` for none (absent or 0).
pub(super) fn date(secs: Option<i64>) -> String {
    match secs.and_then(|s| u64::try_from(s).ok()).filter(|s| *s > 0) {
        None => "-".into(),
        Some(s) => {
            let t = UNIX_EPOCH + Duration::from_secs(s);
            // `2027-01-31T12:00:00Z` → `2027-01-31 12:00`.
            let text = humantime::format_rfc3339_seconds(t).to_string();
            format!("{} {}", &text[..10], &text[11..16])
        }
    }
}

/// `text` as it may reach a terminal: control characters (an escape
/// sequence in a token name another user chose, or in a server's message)
/// shown as `\u{…}` rather than acted on.
pub(super) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A string field of a server's answer, as it may reach a terminal
/// ([`printable`]); empty when absent.
pub(super) fn text(v: &Value) -> String {
    printable(v.as_str().unwrap_or_default())
}

/// The scope's name for a `tokenType` number (`?N` for one this client
/// does not know).
pub(super) fn scope_name(token_type: Option<u64>) -> String {
    token_type
        .and_then(|n| i64::try_from(n).ok())
        .and_then(TokenType::from_number)
        .map(|t| t.kind().label().to_string())
        .unwrap_or_else(|| format!("?{}", token_type.unwrap_or_default()))
}

/// The token list as an aligned table, one line per token and a header.
pub(super) fn token_table(tokens: &[Value]) -> String {
    let header = [
        "ID",
        "NAME",
        "SCOPE",
        "CREATED",
        "EXPIRES",
        "RENEWABLE UNTIL",
        "LAST USED",
        "NOTE",
    ];
    let rows: Vec<[String; 8]> = tokens
        .iter()
        .map(|t| {
            [
                t["tokenId"]
                    .as_u64()
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
                text(&t["tokenName"]),
                scope_name(t["tokenType"].as_u64()),
                date(t["createdTimestamp"].as_i64()),
                date(t["tokenExpiryTimestamp"].as_i64()),
                date(t["renewableUntilTimestamp"].as_i64()),
                date(t["lastUsedTimestamp"].as_i64()),
                if t["isLegacy"].as_bool() == Some(true) {
                    "legacy".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                let pad = w - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&header);
    for row in &rows {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    out
}

/// A created token for a person: what it is, then its secrets. The note
/// that they are shown once goes to standard error (see the caller).
pub(super) fn created(info: &Value) -> String {
    let mut out = format!(
        "Created token {} {:?} ({}) for {}.\n",
        info["tokenId"],
        text(&info["tokenName"]),
        scope_name(info["tokenType"].as_u64()),
        printable(info["userName"].as_str().unwrap_or("?")),
    );
    out.push_str(&format!(
        "  Access token expires: {} UTC\n",
        date(info["tokenExpiryTimestamp"].as_i64())
    ));
    if let Some(until) = info["renewableUntilTimestamp"].as_i64() {
        out.push_str(&format!(
            "  Renewable until:      {} UTC\n",
            date(Some(until))
        ));
    }
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default()
    };
    let endpoints = list(&info["apiEndpoints"]);
    if !endpoints.is_empty() {
        out.push_str(&format!(
            "  Endpoints:            {}\n",
            endpoints.join(", ")
        ));
    }
    let ips = list(&info["allowedIPs"]);
    if !ips.is_empty() {
        out.push_str(&format!("  Allowed addresses:    {}\n", ips.join(", ")));
    }
    out.push_str(&format!(
        "\nAccess token:  {}\n",
        info["accessToken"].as_str().unwrap_or_default()
    ));
    if let Some(r) = info["refreshToken"].as_str().filter(|r| !r.is_empty()) {
        out.push_str(&format!("Refresh token: {r}\n"));
    }
    out
}

/// Parses a date given on the command line: RFC 3339 in UTC
/// (`2027-01-31T12:00:00Z`) or a plain day (`2027-01-31`, midnight UTC);
/// Unix seconds.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let full = if t.len() == 10 {
        format!("{t}T00:00:00Z")
    } else {
        t.to_string()
    };
    let when = humantime::parse_rfc3339_weak(&full).map_err(|e| {
        format!("{text:?} is not a date ({e}): give 2027-01-31 or 2027-01-31T12:00:00Z (UTC)")
    })?;
    let secs = when
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| format!("{text:?} is before 1970"))?
        .as_secs();
    i64::try_from(secs).map_err(|_| format!("{text:?} is too far ahead"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_in_and_out() {
        assert_eq!(parse_date("2027-01-31"), Ok(1_801_353_600));
        assert_eq!(parse_date("2027-01-31T12:00:00Z"), Ok(1_801_396_800));
        assert_eq!(parse_date("2027-01-31T12:00:00+00:00"), Ok(1_801_396_800));
        assert!(parse_date("31/01/2027").is_err());
        assert!(parse_date("2027-02-30").is_err());
        assert_eq!(date(Some(1_801_396_800)), "2027-01-31 12:00");
        assert_eq!(date(Some(0)), "-");
        assert_eq!(date(None), "-");
    }

    #[test]
    fn the_table_is_aligned() {
        let t = token_table(&[
            json!({"tokenId": 7, "tokenName": "ci", "tokenType": 3, "createdTimestamp": 1_801_396_800, "tokenExpiryTimestamp": 1_801_396_800, "isLegacy": false, "lastUsedTimestamp": 0}),
            json!({"tokenId": 12, "tokenName": "a longer name", "tokenType": 1, "isLegacy": true}),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  NAME           SCOPE"), "{t}");
        assert!(lines[1].starts_with("7   ci             Custom"), "{t}");
        assert!(
            lines[2].contains("Microsoft SCIM") && lines[2].ends_with("legacy"),
            "{t}"
        );
    }
}
