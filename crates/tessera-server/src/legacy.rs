//! `tessera import-legacy FILE`: the JSON Lines format of CONTRACT §7, read into
//! the core's [`LegacyImport`]s. Every bad line is reported with its number;
//! nothing is imported unless every line is good (the core makes the import
//! itself all-or-nothing).

use serde::Deserialize;
use tessera_core::secret::{Digest, Secret};
use tessera_core::service::{LegacyImport, LegacySecret};

/// One line as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    user_name: String,
    token_name: String,
    token_type: i64,
    #[serde(default)]
    api_endpoints: Vec<String>,
    #[serde(default, rename = "allowedIPs")]
    allowed_ips: Vec<String>,
    token_expiry_timestamp: i64,
    access_token: Option<String>,
    access_token_sha256: Option<String>,
}

/// Parses a whole file. Blank lines are skipped; the error lists every bad
/// line as `line N: why`.
pub fn parse(text: &str) -> Result<Vec<LegacyImport>, String> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(raw) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("line {n}: {e}"));
                continue;
            }
        };
        let secret = match (line.access_token, line.access_token_sha256) {
            (Some(clear), None) if !clear.is_empty() => {
                LegacySecret::Clear(Secret::from_presented(clear))
            }
            (None, Some(hex)) => match Digest::from_hex(hex.trim()) {
                Some(d) => LegacySecret::Sha256(d),
                None => {
                    problems.push(format!("line {n}: accessTokenSha256 is not 64 hex digits"));
                    continue;
                }
            },
            _ => {
                problems.push(format!(
                    "line {n}: give exactly one of accessToken and accessTokenSha256"
                ));
                continue;
            }
        };
        out.push(LegacyImport {
            line: n,
            user_name: line.user_name,
            token_name: line.token_name,
            token_type: line.token_type,
            api_endpoints: line.api_endpoints,
            allowed_ips: line.allowed_ips,
            expires_at: line.token_expiry_timestamp,
            secret,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_lines() {
        let good = r#"{"userName":"a","tokenName":"t","tokenType":2,"tokenExpiryTimestamp":9,"accessToken":"OLD"}

{"userName":"a","tokenName":"u","tokenType":3,"apiEndpoints":["/Client"],"tokenExpiryTimestamp":9,"accessTokenSha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#;
        let lines = parse(good).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].line, 3);
        let bad = "{\"userName\":\"a\"}\nnot json\n{\"userName\":\"a\",\"tokenName\":\"t\",\"tokenType\":2,\"tokenExpiryTimestamp\":9}";
        let e = parse(bad).unwrap_err();
        assert!(
            e.contains("line 1:") && e.contains("line 2:") && e.contains("line 3:"),
            "{e}"
        );
        assert!(!e.contains("OLD"));
    }
}
