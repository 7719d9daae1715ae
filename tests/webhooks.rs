//! Outbound webhooks (issue 14) through real `tessera` processes, on every
//! backend: `login.locked`, `token.reuse_detected` and `token.new_address`
//! reach two receivers, one up throughout (the shared secret) and one that
//! is down (nothing listens on its port) until after the node that
//! recorded them has stopped; the node starts again beside a second one,
//! the receiver comes up, and every notice arrives, signed (verified here
//! with HMAC-SHA256 as a receiver would, not with Tessera's code), with the
//! fields of its event, exactly once per receiver, though two nodes share
//! the outbox. (`token.expiring` needs days to pass: the core's tests drive
//! it with a clock, on every backend.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{all_stores, base64, launch, Server, StoreFixture};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use warp::Filter;

const OWN_SECRET: &str = "the-down-receivers-own-secret";
const SHARED_SECRET: &str = "whsec_c2hhcmVkLXNlY3JldC1vZi0yNC1ieXRlcw==";

/// One notice as a receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    timestamp: i64,
    signature: String,
    body: Vec<u8>,
}

/// A webhook receiver on loopback: answers 204 and keeps what it saw.
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    async fn start(addr: SocketAddr) -> Receiver {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let keep = seen.clone();
        let route = warp::post()
            .and(warp::path("hook"))
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(move |h: warp::http::HeaderMap, body: hyper::body::Bytes| {
                let get = |n: &str| {
                    h.get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                keep.lock().unwrap().push(Seen {
                    id: get("webhook-id"),
                    timestamp: get("webhook-timestamp").parse().unwrap_or(0),
                    signature: get("webhook-signature"),
                    body: body.to_vec(),
                });
                warp::http::StatusCode::NO_CONTENT
            });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let server = warp::serve(route).incoming(listener).graceful(async {
            let _ = stopped.await;
        });
        tokio::spawn(server.run());
        Receiver { seen, _stop: stop }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A loopback port nothing listens on (bound, then let go).
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Verifies a notice as a receiver would; its body as JSON.
fn verified(s: &Seen, key: &[u8]) -> Value {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{}.{}.", s.id, s.timestamp).as_bytes());
    mac.update(&s.body);
    let tag = s.signature.strip_prefix("v1,").expect("a v1 signature");
    let tag = base64::engine::general_purpose::STANDARD
        .decode(tag)
        .unwrap();
    mac.verify_slice(&tag).expect("the signature verifies");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - s.timestamp).abs() < 300, "a fresh timestamp");
    serde_json::from_slice(&s.body).unwrap()
}

async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn node(store: &StoreFixture, down: &str, up: &str) -> Server {
    launch(store)
        .args([
            "--webhook",
            &format!("http://{down}/hook#secret={OWN_SECRET}"),
            "--webhook",
            &format!("http://{up}/hook"),
            "--webhook-secret",
            SHARED_SECRET,
            "--webhook-backoff-max",
            "1s",
            "--trusted-proxies",
            "127.0.0.1",
            "--last-used-flush",
            "200ms",
            "--login-max-failures",
            "2",
        ])
        .start()
        .unwrap()
}

/// Makes one `login.locked`, one `token.reuse_detected` and one
/// `token.new_address` on `s`, tagged with `tag` (the locked name, the
/// token's name). Returns the token's id.
async fn three_events(s: &Server, admin: &str, tag: &str) -> u64 {
    let user = format!("ghost-{tag}");
    for _ in 0..2 {
        let body = json!({"username": user, "password": base64("wrong")});
        s.call(
            "POST",
            "/Login",
            &[("X-Forwarded-For", "192.0.2.9")],
            Some(body),
        )
        .await;
    }
    let t = s
        .token(admin, json!({"tokenName": tag, "tokenType": 0}))
        .await;
    let pair = json!({"accessToken": t.access, "refreshToken": t.refresh});
    let renewed = s
        .call("POST", "/V4/AccessToken/Renew", &[], Some(pair.clone()))
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.json);
    let replay = s
        .call("POST", "/V4/AccessToken/Renew", &[], Some(pair))
        .await;
    assert_eq!(replay.status, 401, "{}", replay.json);
    // A second token used from two addresses: the second one is new.
    let roaming = s
        .token(admin, json!({"tokenName": format!("{tag}-roaming")}))
        .await;
    for ip in ["198.51.100.1", "198.51.100.2"] {
        let bearer = format!("Bearer {}", roaming.access);
        let headers: [(&str, &[u8]); 4] = [
            ("Authorization", bearer.as_bytes()),
            ("X-Original-Method", b"GET"),
            ("X-Original-URI", b"/Client"),
            ("X-Forwarded-For", ip.as_bytes()),
        ];
        assert_eq!(
            s.send("GET", "/auth/check", &headers, None).await.status,
            200
        );
        if ip.ends_with(".1") {
            // The first address is written before the second is noted.
            eventually("the first use written", Duration::from_secs(20), || async {
                let tokens = s.tokens(admin, None).await;
                tokens
                    .iter()
                    .any(|x| x["tokenId"].as_u64() == Some(roaming.id) && x["lastUsedIp"] == ip)
                    .then_some(())
            })
            .await;
        }
    }
    roaming.id
}

/// What a receiver holds: by id, verified; panics on an id seen twice.
fn by_id(seen: &[Seen], key: &[u8], name: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for s in seen {
        let body = verified(s, key);
        assert_eq!(body["id"], s.id.as_str(), "{name}: the body names its id");
        assert!(
            out.insert(s.id.clone(), body).is_none(),
            "{name}: {} arrived twice",
            s.id
        );
    }
    out
}

/// The (type, detail-or-token) of each notice, to compare receivers.
fn shapes(m: &BTreeMap<String, Value>) -> BTreeSet<String> {
    m.values()
        .map(|v| {
            format!(
                "{} {} {} {}",
                v["type"], v["tokenId"], v["address"], v["detail"]
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notice_arrives_signed_once_per_receiver_across_an_outage_a_restart_and_two_nodes() {
    for store in all_stores().await {
        let name = store.name;
        let (down, up) = (free_port(), free_port());
        let always = Receiver::start(up).await;
        let shared_key = base64::engine::general_purpose::STANDARD
            .decode(SHARED_SECRET.strip_prefix("whsec_").unwrap())
            .unwrap();

        let a = node(&store, &down.to_string(), &up.to_string());
        let admin = a.admin().await;
        let admin_id = a.whoami(&admin).await.json["user"]["userId"].as_u64();
        assert!(admin_id.is_some());
        let first_token = three_events(&a, &admin, "first").await;
        let got = eventually(
            "three notices at the receiver that is up",
            Duration::from_secs(30),
            || async {
                let seen = always.seen();
                (seen.len() >= 3).then_some(seen)
            },
        )
        .await;
        let notices = by_id(&got, &shared_key, name);
        let types: BTreeSet<&str> = notices
            .values()
            .map(|v| v["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            BTreeSet::from(["login.locked", "token.new_address", "token.reuse_detected"]),
            "{name}: {notices:?}"
        );
        for v in notices.values() {
            match v["type"].as_str().unwrap() {
                "login.locked" => {
                    assert_eq!(v["detail"], "ghost-first", "{name}: {v}");
                    assert_eq!(v["address"], "192.0.2.9", "{name}: {v}");
                    assert_eq!(v["outcome"], "failure");
                }
                "token.new_address" => {
                    assert_eq!(v["tokenId"].as_u64(), Some(first_token), "{name}: {v}");
                    assert_eq!(v["actorTokenId"].as_u64(), Some(first_token));
                    assert_eq!(v["userId"].as_u64(), admin_id);
                    assert_eq!(v["address"], "198.51.100.2", "{name}: {v}");
                }
                _ => {
                    assert_eq!(v["userId"].as_u64(), admin_id, "{name}: {v}");
                    assert!(v["tokenId"].is_u64());
                }
            }
            assert!(v["timestamp"].is_i64());
        }
        // The other receiver is down: its notices wait, failing, in the store.
        eventually(
            "the failed attempts counted",
            Duration::from_secs(30),
            || async {
                let m = a.metrics_text().await;
                let failing = m.lines().any(|l| {
                    l.starts_with("tessera_webhook_deliveries_total")
                        && l.contains("outcome=\"failed\"")
                        && !l.ends_with(" 0")
                });
                let pending = m
                    .lines()
                    .any(|l| l.starts_with("tessera_webhook_pending") && l.ends_with(" 3"));
                (failing && pending).then_some(())
            },
        )
        .await;
        a.stop();

        // Two nodes now share the outbox; three more events on the second.
        let a = node(&store.again(), &down.to_string(), &up.to_string());
        let b = node(&store.again(), &down.to_string(), &up.to_string());
        let late = Receiver::start(down).await;
        let admin_b = b.admin().await;
        three_events(&b, &admin_b, "second").await;
        let want = 6;
        for (r, key, label) in [
            (
                &late,
                OWN_SECRET.as_bytes().to_vec(),
                "the receiver that was down",
            ),
            (&always, shared_key.clone(), "the receiver that was up"),
        ] {
            eventually(
                &format!("{name}: {want} notices at {label}"),
                Duration::from_secs(60),
                || async { (r.seen().len() >= want).then_some(()) },
            )
            .await;
            let _ = key;
        }
        // Everything settled on both nodes: nothing more can come but a
        // repeat, and none may have.
        for n in [&a, &b] {
            eventually("an empty outbox", Duration::from_secs(30), || async {
                let m = n.metrics_text().await;
                let waiting = m
                    .lines()
                    .filter(|l| l.starts_with("tessera_webhook_pending{"))
                    .any(|l| !l.ends_with(" 0"));
                (!waiting).then_some(())
            })
            .await;
        }
        let late_notices = by_id(&late.seen(), OWN_SECRET.as_bytes(), name);
        let always_notices = by_id(&always.seen(), &shared_key, name);
        assert_eq!(
            late_notices.len(),
            want,
            "{name}: each once at the receiver that was down"
        );
        assert_eq!(
            always_notices.len(),
            want,
            "{name}: each once at the receiver that was up"
        );
        assert_eq!(
            late_notices.keys().collect::<Vec<_>>(),
            always_notices.keys().collect::<Vec<_>>(),
            "{name}: one key per notice, the same for every receiver"
        );
        assert_eq!(shapes(&late_notices), shapes(&always_notices));
        let sent: u64 = [&a, &b]
            .iter()
            .map(|n| async { n.metrics_text().await })
            .collect::<futures_util::future::JoinAll<_>>()
            .await
            .iter()
            .flat_map(|m| {
                m.lines()
                    .filter(|l| {
                        l.starts_with("tessera_webhook_deliveries_total")
                            && l.contains("outcome=\"sent\"")
                    })
                    .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .sum();
        // The restarted node and the new one sent the 3 that waited and
        // the 3 new ones to the receiver that was down, and the 3 new ones
        // to the other: 9 deliveries between them, none twice.
        assert_eq!(sent, 9, "{name}: deliveries counted by the two nodes");
    }
}

#[test]
fn a_webhook_without_a_secret_or_with_a_weak_one_refuses_to_start() {
    let store = common::sqlite();
    for (args, says) in [
        (vec!["--webhook", "http://127.0.0.1:9/hook"], "no secret"),
        (
            vec![
                "--webhook",
                "http://127.0.0.1:9/hook",
                "--webhook-secret",
                "short",
            ],
            "at least 16 bytes",
        ),
        (
            vec![
                "--webhook",
                "ftp://127.0.0.1:9/capability-path",
                "--webhook-secret",
                SHARED_SECRET,
            ],
            "not an http",
        ),
    ] {
        let out = std::process::Command::new(common::binary())
            .args(["serve", "--store", &store.url, "--listen", "127.0.0.1:0"])
            .args(&args)
            .env("TESSERA_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains("capability-path"),
            "a URL's path is never printed: {err}"
        );
    }
}
