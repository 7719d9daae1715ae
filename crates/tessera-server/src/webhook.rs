//! Outbound webhooks: the receivers (`--webhook`), the signature, and the
//! sender that delivers what the store's outbox holds
//! ([`tessera_core::notify`]).
//!
//! Each notice is one `POST` of a JSON object ([`crate::wire::Notice`])
//! signed as Standard Webhooks sign (<https://www.standardwebhooks.com/>):
//! headers `webhook-id` (the notice's key, the same on every attempt),
//! `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature: v1,<base64 of HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`.
//! A receiver recomputes the HMAC over the raw body it read, compares in
//! constant time, refuses a timestamp far from its clock (a replay), and
//! drops an id it has already handled (delivery is at least once).
//!
//! The sender runs on every node: every second it claims due deliveries
//! for its receivers (atomically, so each goes to one node while its lease
//! runs), posts them, and settles each: sent on a 2xx answer, otherwise
//! retried after a doubling wait until the retry time passes, then given
//! up (and counted). Redirects are not followed.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use tessera_core::notify::{Claimed, Settle};
use tessera_core::service::Tessera;

/// Shortest secret accepted, in bytes (after a `whsec_` prefix is decoded).
pub const MIN_SECRET_BYTES: usize = 16;

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a claim holds a delivery: well past an attempt's timeout, so
/// that a slow receiver that answers is not sent the notice again by
/// another node meanwhile.
pub const LEASE_SECONDS: i64 = 60;

/// Deliveries claimed per round.
const CLAIM_BATCH: usize = 32;

/// How often the sender looks at the outbox.
const POLL: Duration = Duration::from_secs(1);

/// How often the backlog gauges are read from the store.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// A configured receiver.
pub struct Receiver {
    /// Where notices are posted (without the fragment the secret came in).
    pub url: reqwest::Url,
    /// Its id in the outbox: hex of the first 16 bytes of SHA-256 of the
    /// URL (a URL may carry a capability, so the store never holds it).
    pub id: String,
    /// Its name in logs and metrics: host and the id's first 8 digits.
    pub label: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Why the webhook settings were refused at start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// The URL does not parse, or is not http(s).
    #[error("--webhook {0:?} is not an http:// or https:// URL")]
    Url(String),
    /// The fragment held something other than `secret=…`.
    #[error("--webhook {0:?}: the only fragment understood is #secret=SECRET")]
    Fragment(String),
    /// No secret for a receiver.
    #[error("--webhook {0}: no secret; give --webhook-secret (or TESSERA_WEBHOOK_SECRET), or #secret=SECRET on the URL")]
    NoSecret(String),
    /// A secret shorter than [`MIN_SECRET_BYTES`], or a `whsec_` one that is not base64.
    #[error("--webhook {0}: the secret must be at least {MIN_SECRET_BYTES} bytes (a whsec_ secret: base64 of them)")]
    WeakSecret(String),
    /// The same URL twice.
    #[error("--webhook {0} is given twice")]
    Twice(String),
}

/// The key bytes of `secret`: a `whsec_` secret is base64 of its key (as
/// Standard Webhooks' libraries take it), any other is its own bytes.
fn key_of(secret: &str) -> Option<Vec<u8>> {
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok()?,
        None => secret.as_bytes().to_vec(),
    };
    (key.len() >= MIN_SECRET_BYTES).then_some(key)
}

/// The receivers of `urls` (each `URL` or `URL#secret=SECRET`), with
/// `shared` as the secret of those that name none.
pub fn parse_receivers(
    urls: &[String],
    shared: Option<&str>,
) -> Result<Vec<Receiver>, WebhookError> {
    let mut out: Vec<Receiver> = Vec::new();
    // An empty entry (an environment file's `TESSERA_WEBHOOKS=`) is none.
    for raw in urls.iter().filter(|u| !u.trim().is_empty()) {
        let mut url = reqwest::Url::parse(raw).map_err(|_| WebhookError::Url(redact(raw)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(WebhookError::Url(redact(raw)));
        }
        let own = match url.fragment() {
            None => None,
            Some(f) => Some(
                f.strip_prefix("secret=")
                    .map(str::to_owned)
                    .ok_or_else(|| WebhookError::Fragment(redact(raw)))?,
            ),
        };
        url.set_fragment(None);
        let digest = Sha256::digest(url.as_str().as_bytes());
        let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let label = format!("{}#{}", url.host_str().unwrap_or(""), &id[..8]);
        let secret = own
            .as_deref()
            .or(shared)
            .ok_or_else(|| WebhookError::NoSecret(label.clone()))?;
        let key = key_of(secret).ok_or_else(|| WebhookError::WeakSecret(label.clone()))?;
        if out.iter().any(|r| r.id == id) {
            return Err(WebhookError::Twice(label));
        }
        out.push(Receiver {
            url,
            id,
            label,
            key,
        });
    }
    Ok(out)
}

/// A URL as it may be printed: scheme and host only.
fn redact(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "(unparsable)".into(),
    }
}

/// The `webhook-signature` value for `body` sent as `id` at `timestamp`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// Delivery figures of one receiver, for `/metrics`.
#[derive(Debug, Default)]
struct Figures {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// From the store's backlog: waiting deliveries and the oldest's time.
    pending: AtomicU64,
    oldest: AtomicU64,
}

/// What `/metrics` shows of the webhooks.
#[derive(Debug, Default)]
pub struct WebhookStatus {
    /// (label, id, figures) per receiver, in configuration order.
    receivers: Vec<(String, String, Figures)>,
    /// Whether the last read of the backlog failed.
    backlog_failed: AtomicU64,
    /// Unix seconds of the last backlog read (for the age gauge).
    read_at: Mutex<i64>,
}

impl WebhookStatus {
    fn of(&self, id: &str) -> Option<&Figures> {
        self.receivers.iter().find(|r| r.1 == id).map(|r| &r.2)
    }

    /// The Prometheus text of the webhook figures.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# HELP tessera_webhook_deliveries_total Webhook delivery attempts by receiver and outcome (sent; failed: to be retried; dropped: given up).\n# TYPE tessera_webhook_deliveries_total counter\n");
        for (label, _, f) in &self.receivers {
            for (outcome, v) in [
                ("sent", &f.sent),
                ("failed", &f.failed),
                ("dropped", &f.dropped),
            ] {
                let _ = writeln!(
                    out,
                    "tessera_webhook_deliveries_total{{receiver=\"{label}\",outcome=\"{outcome}\"}} {}",
                    get(v)
                );
            }
        }
        out.push_str("# HELP tessera_webhook_pending Webhook deliveries waiting in the store's outbox (every node's), by receiver.\n# TYPE tessera_webhook_pending gauge\n");
        for (label, _, f) in &self.receivers {
            let _ = writeln!(
                out,
                "tessera_webhook_pending{{receiver=\"{label}\"}} {}",
                get(&f.pending)
            );
        }
        out.push_str("# HELP tessera_webhook_oldest_pending_seconds Age of the oldest waiting webhook delivery, by receiver (0: none).\n# TYPE tessera_webhook_oldest_pending_seconds gauge\n");
        let read_at = *self.read_at.lock().unwrap_or_else(|e| e.into_inner());
        for (label, _, f) in &self.receivers {
            let oldest = get(&f.oldest) as i64;
            let age = if get(&f.pending) == 0 || oldest == 0 {
                0
            } else {
                (read_at - oldest).max(0)
            };
            let _ = writeln!(
                out,
                "tessera_webhook_oldest_pending_seconds{{receiver=\"{label}\"}} {age}"
            );
        }
        out.push_str("# HELP tessera_webhook_backlog_unreadable Whether the last read of the outbox's backlog failed.\n# TYPE tessera_webhook_backlog_unreadable gauge\n");
        let _ = writeln!(
            out,
            "tessera_webhook_backlog_unreadable {}",
            get(&self.backlog_failed)
        );
        out
    }
}

/// The webhook sender's settings.
#[derive(Debug)]
pub struct Webhooks {
    /// The receivers.
    pub receivers: Vec<Receiver>,
    /// How long a failing delivery is retried, in seconds from its event.
    pub retry_for: i64,
    /// The longest wait between attempts, in seconds.
    pub backoff_max: i64,
    /// How often `token.expiring` warnings are looked for.
    pub expiry_scan: Duration,
    /// What `/metrics` shows.
    pub status: Arc<WebhookStatus>,
    client: reqwest::Client,
    /// Rounds in a row that could not read the outbox (the first of a run
    /// is logged, then every 60th: a second's poll would flood the log).
    claim_failures: AtomicU64,
}

impl Webhooks {
    /// The sender for `receivers`.
    pub fn new(
        receivers: Vec<Receiver>,
        retry_for: Duration,
        backoff_max: Duration,
        expiry_scan: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let status = Arc::new(WebhookStatus {
            receivers: receivers
                .iter()
                .map(|r| (r.label.clone(), r.id.clone(), Figures::default()))
                .collect(),
            ..WebhookStatus::default()
        });
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Ok(Webhooks {
            receivers,
            retry_for: secs(retry_for),
            backoff_max: secs(backoff_max).max(1),
            expiry_scan,
            status,
            client,
            claim_failures: AtomicU64::new(0),
        })
    }

    /// The receivers' outbox ids (what the service enqueues for).
    pub fn ids(&self) -> Vec<String> {
        self.receivers.iter().map(|r| r.id.clone()).collect()
    }

    /// Posts one claimed delivery; whether the receiver took it (2xx).
    async fn post(&self, c: &Claimed, now: i64) -> Result<(), String> {
        let Some(r) = self.receivers.iter().find(|r| r.id == c.delivery.receiver) else {
            return Err("no such receiver on this node".into());
        };
        let body = serde_json::to_vec(&crate::wire::Notice::of(c))
            .map_err(|e| format!("encoding the notice: {e}"))?;
        let key = &c.delivery.key;
        let answer = self
            .client
            .post(r.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", key)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature(&r.key, key, now, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                // reqwest's message may name the URL: keep the kind only.
                if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    "could not connect".to_string()
                } else {
                    "the request failed".to_string()
                }
            })?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", answer.status().as_u16()))
        }
    }

    /// One round: claims what is due and delivers it, concurrently.
    async fn round(&self, svc: &Tessera) {
        let nonce = rand::RngCore::next_u64(&mut rand::rngs::OsRng);
        let claimed = match svc.claim_notices(LEASE_SECONDS, nonce, CLAIM_BATCH).await {
            Ok(c) => {
                self.claim_failures.store(0, Ordering::Relaxed);
                c
            }
            Err(e) => {
                let n = self.claim_failures.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(60) {
                    tracing::warn!(target: "tessera::webhook", error = %e, failures = n + 1,
                        "cannot read the webhook outbox: notices wait in the store");
                }
                return;
            }
        };
        let sends = claimed.iter().map(|c| async move {
            let result = self.post(c, svc.now()).await;
            let label = self
                .receivers
                .iter()
                .find(|r| r.id == c.delivery.receiver)
                .map_or("?", |r| r.label.as_str());
            let settled = svc
                .settle_notice(c, nonce, result.is_ok(), self.retry_for, self.backoff_max)
                .await;
            let figures = self.status.of(&c.delivery.receiver);
            match (&result, &settled) {
                (Ok(()), _) => {
                    if let Some(f) = figures {
                        f.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::info!(target: "tessera::webhook", receiver = label, id = %c.delivery.key,
                        event = c.delivery.event.kind.as_str(), attempt = c.attempts + 1, "webhook delivered");
                }
                (Err(why), Ok((Settle::GiveUp, _))) => {
                    if let Some(f) = figures {
                        f.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::error!(target: "tessera::webhook", receiver = label, id = %c.delivery.key,
                        event = c.delivery.event.kind.as_str(), attempt = c.attempts + 1, error = %why,
                        "webhook given up: its retry time passed");
                }
                (Err(why), _) => {
                    if let Some(f) = figures {
                        f.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(target: "tessera::webhook", receiver = label, id = %c.delivery.key,
                        event = c.delivery.event.kind.as_str(), attempt = c.attempts + 1, error = %why,
                        "webhook delivery failed; it will be retried");
                }
            }
            if let Err(e) = settled {
                // Its lease runs out and it is sent again: at least once.
                tracing::warn!(target: "tessera::webhook", error = %e, "cannot settle a webhook delivery");
            }
        });
        futures_util::future::join_all(sends).await;
    }

    /// Reads the outbox's backlog into the gauges.
    async fn read_backlog(&self, svc: &Tessera) {
        match svc.notice_backlog().await {
            Ok(backlog) => {
                for (_, id, f) in &self.status.receivers {
                    let b = backlog.iter().find(|b| &b.receiver == id);
                    f.pending
                        .store(b.map_or(0, |b| b.pending), Ordering::Relaxed);
                    f.oldest.store(
                        b.and_then(|b| b.oldest).map_or(0, |o| o.max(0) as u64),
                        Ordering::Relaxed,
                    );
                }
                *self
                    .status
                    .read_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = svc.now();
                self.status.backlog_failed.store(0, Ordering::Relaxed);
            }
            Err(_) => self.status.backlog_failed.store(1, Ordering::Relaxed),
        }
    }
}

/// Runs the sender on its own task: a round every second, the backlog
/// gauges every five, and the `token.expiring` scan every `expiry_scan`
/// (the first at once).
pub fn spawn(svc: Arc<Tessera>, hooks: Arc<Webhooks>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(POLL);
        let mut backlog = tokio::time::interval(BACKLOG_EVERY);
        let mut scan = tokio::time::interval(hooks.expiry_scan.max(Duration::from_secs(1)));
        for i in [&mut poll, &mut backlog, &mut scan] {
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = poll.tick() => hooks.round(&svc).await,
                _ = backlog.tick() => hooks.read_backlog(&svc).await,
                _ = scan.tick() => match svc.warn_expiring().await {
                    Ok(n) if n > 0 => tracing::info!(target: "tessera::webhook", enqueued = n, "token.expiring notices enqueued"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(target: "tessera::webhook", error = %e, "the token.expiring scan failed"),
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_standard_webhooks_v1() {
        // The example of the Standard Webhooks specification's test vectors.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn receivers_take_a_shared_or_their_own_secret_and_refuse_weak_ones() {
        let urls = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let shared = Some("0123456789abcdef");
        let r = parse_receivers(
            &urls(&[
                "https://hooks.example/a",
                "http://127.0.0.1:9/b#secret=another-long-secret",
            ]),
            shared,
        )
        .unwrap();
        assert_eq!(r[0].key, b"0123456789abcdef");
        assert_eq!(r[1].key, b"another-long-secret");
        assert_eq!(
            r[1].url.as_str(),
            "http://127.0.0.1:9/b",
            "the fragment is not sent"
        );
        assert_ne!(r[0].id, r[1].id);
        assert_eq!(r[0].id.len(), 32);
        assert!(r[0].label.starts_with("hooks.example#"));
        assert!(
            parse_receivers(&urls(&["", " "]), None).unwrap().is_empty(),
            "empty: none"
        );
        let err = |u: &str, s: Option<&str>| parse_receivers(&urls(&[u]), s).unwrap_err();
        assert!(matches!(
            err("https://h/x", None),
            WebhookError::NoSecret(_)
        ));
        assert!(matches!(
            err("https://h/x", Some("short")),
            WebhookError::WeakSecret(_)
        ));
        assert!(matches!(
            err("https://h/x#secret=short", shared),
            WebhookError::WeakSecret(_)
        ));
        assert!(matches!(
            err("https://h/x#other", shared),
            WebhookError::Fragment(_)
        ));
        assert!(matches!(err("ftp://h/x", shared), WebhookError::Url(_)));
        assert!(matches!(err("not a url", shared), WebhookError::Url(_)));
        assert!(matches!(
            parse_receivers(
                &urls(&["https://h/x", "https://h/x#secret=0123456789abcdefg"]),
                shared
            )
            .unwrap_err(),
            WebhookError::Twice(_)
        ));
        // A URL's path (a capability, as Slack's are) is never in an error.
        let e = err("https://h/SECRETPATH#bad", shared).to_string();
        assert!(!e.contains("SECRETPATH"), "{e}");
    }
}
