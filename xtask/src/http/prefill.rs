//! The pre-fill: users and tokens written through the library (not over
//! HTTP), concurrently, and the secrets the load needs kept aside.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tessera_core::clock::SystemClock;
use tessera_core::model::{NewUser, Role, TokenId, User, UserKind};
use tessera_core::policy::{Credential, Policy, PolicyConfig, TokenRequest};
use tessera_core::secret::{self, SecretKind};
use tessera_core::service::{Caller, Tessera};

use super::backend::Backend;
use super::wrk::THREADS as WRK_THREADS;
use super::Sizes;

/// Concurrent tasks creating tokens during the pre-fill.
const PREFILL_TASKS: usize = 32;

/// `/auth/check` targets: method and `X-Original-URI`. Each check token gets
/// one its scope allows (decided with the library's own policy).
const CHECK_TARGETS: &[(&str, &str)] = &[
    ("GET", "/Client/5"),
    ("GET", "/Job/7"),
    ("GET", "/commandcenter/api/V4/ServerGroup/2?x=1"),
    ("POST", "/Job/7/action"),
    ("GET", "/MediaAgent/3"),
    ("GET", "/webconsole/api/ClientGroup/4"),
    ("PUT", "/V4/ServerGroup/9"),
    ("GET", "/FirewallSummary"),
    ("GET", "/scim/v2/Users?count=10"),
    ("GET", "/commandcenter/api/Client/12/properties"),
];

/// A Custom token's `apiEndpoints` in the pre-fill.
const CUSTOM_ENDPOINTS: &[&str] = &["GET /Client", "/Job", "GET /V4/ServerGroup"];

/// The secrets the load needs, kept from the pre-fill.
pub struct Prefilled {
    /// Admin name and password (for the HTTP login of the creation case).
    pub admin: (String, String),
    /// `token \t method \t uri` lines, each allowed by the token's scope.
    pub check_lines: Vec<String>,
    /// Renewable pairs: per run (warm-up, measured), per wrk thread.
    pub renew_pairs: Vec<Vec<Vec<(String, String)>>>,
    /// One more pair for the sanity request.
    pub sanity_pair: (String, String),
    /// An id taken from the store's counter before any token, never used:
    /// below the highest id, yet no token's (the `unknown-below` case).
    pub absent_id: TokenId,
}

/// The scope of the i-th pre-filled token: mostly All, some Custom,
/// 1-Touch and SCIM.
fn token_request(i: usize) -> TokenRequest {
    let mut req = TokenRequest::named(&format!("bench-{i}"));
    match i % 20 {
        0..=13 => req.token_type = Some(2),
        14..=16 => {
            req.token_type = Some(3);
            req.api_endpoints = Some(CUSTOM_ENDPOINTS.iter().map(|s| s.to_string()).collect());
        }
        17..=18 => req.token_type = Some(4),
        _ => req.token_type = Some(1),
    }
    req
}

/// Fills the store: users without passwords, one admin with one, then the
/// tokens, created concurrently through `Tessera::create_token`.
pub async fn prefill(backend: &Backend, sizes: &Sizes) -> Result<Prefilled, String> {
    let started = Instant::now();
    let policy = Policy::new(PolicyConfig::default()).map_err(|e| e.to_string())?;
    let svc = Arc::new(Tessera::new(
        backend.store.clone(),
        policy,
        Arc::new(SystemClock),
    ));
    let admin_name = "bench-admin".to_string();
    let admin_password = secret::generate(SecretKind::Session, None)
        .map_err(|e| format!("no randomness: {e}"))?
        .expose()
        .to_string();
    svc.add_user(&admin_name, &admin_password, Role::Admin)
        .await
        .map_err(|e| format!("cannot create the admin: {e}"))?;
    let mut users: Vec<User> = Vec::with_capacity(sizes.users);
    for u in 0..sizes.users {
        let user = backend
            .store
            .create_user(NewUser {
                name: format!("bench-user-{u}"),
                role: Role::User,
                kind: UserKind::Person,
                owner: None,
                password: None,
                created_at: svc.now(),
            })
            .await
            .map_err(|e| format!("cannot create a user: {e}"))?;
        users.push(user);
    }
    let users = Arc::new(users);
    let absent_id = backend
        .store
        .next_token_id()
        .await
        .map_err(|e| format!("cannot take a token id: {e}"))?;
    let renew_runs = sizes.renew_runs().len();
    // Tokens 20·k (All) … are spread over users; the renewal cases take
    // All tokens of their own, never used by another case.
    let renew_needed = renew_runs * WRK_THREADS * sizes.pairs_per_thread + 1;
    let next = Arc::new(AtomicUsize::new(0));
    let total = sizes.tokens;
    let mut tasks = Vec::new();
    for _ in 0..PREFILL_TASKS {
        let (svc, users, next) = (svc.clone(), users.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, String>(out);
                }
                let user = users[i % users.len()].clone();
                let req = token_request(i);
                let caller = Caller {
                    user,
                    credential: Credential::Session,
                    address: None,
                };
                let issued = svc
                    .create_token(&caller, None, &req)
                    .await
                    .map_err(|e| format!("cannot create token {i}: {e}"))?;
                out.push((i, issued));
            }
        }));
    }
    let policy = svc.policy();
    let mut check_lines = Vec::new();
    let mut renewable = Vec::new();
    for t in tasks {
        let issued = t
            .await
            .map_err(|e| format!("a pre-fill task failed: {e}"))??;
        for (i, issued) in issued {
            let refresh = issued.refresh.as_ref().map(|r| r.expose().to_string());
            let access = issued.access.expose().to_string();
            if i % 20 <= 13 && renewable.len() < renew_needed {
                if let Some(refresh) = refresh {
                    renewable.push((access, refresh));
                    continue;
                }
            }
            // One allowed target per token, starting at a spread-out offset.
            let n = CHECK_TARGETS.len();
            let allowed = (0..n)
                .map(|k| CHECK_TARGETS[(i * 7 + k) % n])
                .find(|(m, uri)| {
                    let path = uri.split('?').next().unwrap_or(uri);
                    policy
                        .normaliser()
                        .normalise(path)
                        .map(|p| issued.token.scope.allows(policy.rules(), m, &p))
                        .unwrap_or(false)
                });
            if let Some((m, uri)) = allowed {
                check_lines.push(format!("{access}\t{m}\t{uri}"));
            }
        }
    }
    if renewable.len() < renew_needed {
        return Err(format!(
            "only {} renewable tokens for {renew_needed} pairs",
            renewable.len()
        ));
    }
    if check_lines.is_empty() {
        return Err("no token allows any check target".into());
    }
    let sanity_pair = renewable.pop().ok_or("no renewable pair left")?;
    let mut renew_pairs = Vec::new();
    for _ in 0..renew_runs {
        let mut per_thread = Vec::new();
        for _ in 0..WRK_THREADS {
            let at = renewable.len() - sizes.pairs_per_thread;
            per_thread.push(renewable.split_off(at));
        }
        renew_pairs.push(per_thread);
    }
    eprintln!(
        "xtask: {}: pre-filled {} users and {} tokens in {:.1} s",
        backend.name,
        sizes.users + 1,
        sizes.tokens,
        started.elapsed().as_secs_f64()
    );
    Ok(Prefilled {
        admin: (admin_name, admin_password),
        check_lines,
        renew_pairs,
        sanity_pair,
        absent_id,
    })
}
