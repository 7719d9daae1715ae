//! Before the load: the cases' requests answer as they should (a wrong
//! answer fails the benchmark, a figure never does); and between cases, the
//! last-used times of the one before written.

use std::time::{Duration, Instant};

use serde_json::json;
use tessera_testsupport::Client;

use super::inputs::Inputs;
use super::prefill::Prefilled;

/// Valid checks answer 200, the malformed and unknown tokens 401, a renewal 200.
pub async fn check(client: &Client, pre: &Prefilled, inputs: &Inputs) -> Result<(), String> {
    let live = client.live().await;
    if live != 200 {
        return Err(format!("/health/live answered {live}"));
    }
    for line in pre.check_lines.iter().take(20) {
        let mut parts = line.split('\t');
        let (token, method, uri) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let status = client.try_check(token, method, uri).await?;
        if status != 200 {
            return Err(format!(
                "sanity: /auth/check of a valid token for {method} {uri} answered {status}, not 200"
            ));
        }
    }
    for (what, token) in [
        ("malformed", &inputs.malformed_token),
        ("unknown", &inputs.unknown_token),
        (
            "unknown (below the highest id)",
            &inputs.unknown_below_token,
        ),
    ] {
        let status = client.try_check(token, "GET", "/Client/5").await?;
        if status != 401 {
            return Err(format!(
                "sanity: /auth/check of a {what} token answered {status}, not 401"
            ));
        }
    }
    let (a, r) = &pre.sanity_pair;
    let renewed = client.renew(a, r).await;
    if renewed.status != 200 || !renewed.json["refreshToken"].is_string() {
        return Err(format!("sanity: a renewal answered {}", renewed.status));
    }
    Ok(())
}

/// Logs the admin in; the session, once one creation with it succeeded.
pub async fn login(client: &Client, (name, password): &(String, String)) -> Result<String, String> {
    let a = client.login_attempt(name, password).await;
    let session = match (a.status, a.json["token"].as_str()) {
        (200, Some(t)) => t.to_string(),
        _ => return Err(format!("the admin's login answered {}", a.status)),
    };
    let created = client
        .create_token(
            &session,
            json!({"tokenName": "bench-sanity", "tokenType": 2}),
        )
        .await;
    if created.status != 200 {
        return Err(format!(
            "sanity: a token creation answered {}",
            created.status
        ));
    }
    Ok(session)
}

/// Waits (polling `/metrics`, at most two minutes) until the server has
/// written every last-used time its checks noted.
pub async fn usage_flushed(client: &Client) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = client.try_metrics_text().await?;
        let backlog = text
            .lines()
            .find_map(|l| l.strip_prefix("tessera_last_used_backlog "))
            .and_then(|n| n.trim().parse::<u64>().ok());
        match backlog {
            Some(0) => return Ok(()),
            Some(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Some(n) => return Err(format!("{n} last-used times still unwritten after 2 min")),
            None => return Err("/metrics shows no tessera_last_used_backlog".into()),
        }
    }
}
