//! The web console (`/console/`) end to end: a real `tessera` on a fresh
//! SQLite store with non-default validity figures (which the Add token
//! dialog must show), data prepared through the REST API and `import-legacy`, then
//! `node tests/console/console.mjs` drives headless Chromium through every
//! scenario (sign in, add, use, edit, revoke, a legacy token, an admin
//! revoking another user's token, users, sign out) at 1280×800 and 390×844,
//! with every request to another host aborted and counted (there must be
//! none). Screenshots land in `<target>/console-screenshots/`.
//!
//! Without node, `tests/console/node_modules/playwright-core` or
//! `/usr/bin/chromium` it prints `SKIPPED: …` and passes, except under CI
//! (`CI=true` or `TESSERA_REQUIRE_BACKENDS=1`), where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{spawn, sqlite, ADMIN_PASSWORD};
use serde_json::json;

/// Chromium, unless `TESSERA_CHROMIUM` names another.
fn chromium() -> PathBuf {
    std::env::var_os("TESSERA_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$CARGO_TARGET_DIR/console-screenshots`, else `<repo>/target/…`.
fn screenshot_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_absolute() => t,
        Some(t) => repo().join(t),
        None => repo().join("target"),
    };
    target.join("console-screenshots")
}

/// What is missing to run the browser suite, if anything.
fn missing_prerequisite(dir: &Path) -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not installed".into());
    }
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Some(format!(
            "{} is missing (run `npm ci` in tests/console)",
            dir.join("node_modules/playwright-core").display()
        ));
    }
    let chromium = chromium();
    if !chromium.exists() {
        return Some(format!(
            "{} is missing (apt-get install chromium)",
            chromium.display()
        ));
    }
    None
}

/// The validity figures the console's server runs with, in days: not CONTRACT
/// §2's defaults, so the console must show what `GET /V4/AccessToken/Policy`
/// reports. (`serve` flag, what console.mjs reads, days.)
const POLICY: &[(&str, &str, u32)] = &[
    ("--renewable-default", "POLICY_RENEWABLE_DEFAULT_DAYS", 60),
    ("--renewable-max", "POLICY_RENEWABLE_MAX_DAYS", 200),
    ("--scim-default", "POLICY_SCIM_DEFAULT_DAYS", 45),
    ("--one-touch-default", "POLICY_ONE_TOUCH_DEFAULT_DAYS", 7),
    ("--one-touch-max", "POLICY_ONE_TOUCH_MAX_DAYS", 10),
];

/// Imports one legacy token for `admin` while no server runs.
fn import_legacy(store: &common::StoreFixture) {
    let far = 4_102_444_800i64; // 2100-01-01
    common::import_legacy(
        store,
        &[
            json!({"userName": "admin", "tokenName": "old console token", "tokenType": 3,
                 "apiEndpoints": ["/Client"], "tokenExpiryTimestamp": far,
                 "accessToken": "0123456789ABCDEFCONSOLELEGACY"}),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    let dir = repo().join("tests/console");
    if let Some(reason) = missing_prerequisite(&dir) {
        tessera_core::testkit::skip(&format!("web console browser tests: {reason}"));
        return;
    }

    let store = sqlite();
    // The first start creates the admin, whom the legacy token belongs to.
    drop(spawn(&store, &[]));
    import_legacy(&store);
    let policy_args: Vec<String> = POLICY
        .iter()
        .flat_map(|(flag, _, days)| [flag.to_string(), format!("{days}d")])
        .collect();
    let s = spawn(
        &store,
        &policy_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // The files themselves: headers, the redirect, a 404 like the API's.
    let page = s.call("GET", "/console/", &[], None).await;
    assert_eq!(page.status, 200);
    let h = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(h("content-security-policy").starts_with("default-src 'self'"));
    assert!(!h("content-security-policy").contains("unsafe-inline"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("cache-control"), "no-store");
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.url("/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status().as_u16(), 308);
    assert_eq!(redirect.headers()["location"], "console/");
    let missing = s.call("GET", "/console/nothing.js", &[], None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["errorCode"], 404);
    assert_eq!(
        s.call("GET", "/commandcenter/api/console/console.js", &[], None)
            .await
            .status,
        200
    );

    // Another user with two tokens, for "an admin revokes another user's
    // token" (one per screen size).
    let admin = s.admin().await;
    let (_bob_id, bob) = s.person(&admin, "bob", "user").await;
    let mut bob_tokens = Vec::new();
    for size in ["desktop", "mobile"] {
        let secret = s
            .token(
                &bob,
                json!({"tokenName": format!("bob {size}"), "tokenType": 0}),
            )
            .await
            .access;
        assert_eq!(s.check(&secret, "GET", "/Client").await, 200);
        bob_tokens.push(secret);
    }

    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let mut node = Command::new("node");
    for (_, var, days) in POLICY {
        node.env(var, days.to_string());
    }
    let mut child = node
        .arg("console.mjs")
        .current_dir(&dir)
        .env("BASE_URL", &s.base)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("CHROMIUM", chromium())
        .env("SCREENSHOT_DIR", &shots)
        .env("BOB_TOKEN_DESKTOP", &bob_tokens[0])
        .env("BOB_TOKEN_MOBILE", &bob_tokens[1])
        .env("LEGACY_TOKEN", "0123456789ABCDEFCONSOLELEGACY")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let status = tokio::task::spawn_blocking(move || {
        common::process::wait_or_kill(&mut child, Duration::from_secs(300))
    })
    .await
    .unwrap()
    .expect("the console suite took more than 300 s");
    assert!(
        status.success(),
        "the console suite failed ({status}); server log:\n{}",
        s.log_text()
    );
    println!("console screenshots in {}", shots.display());
}
