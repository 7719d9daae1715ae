//! Counters and latency histograms, exposed at `/metrics` in Prometheus'
//! text format. Lock-free atomics: the check path only increments.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tessera_core::cache::CacheStatus;
use tessera_core::check::{CheckError, Refusal};

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// A check's outcome, as counted (`tessera_checks_total{outcome=…}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Allowed (200).
    Allowed,
    /// No token, or not a well-formed one.
    Malformed,
    /// Well-formed, but no such token.
    Unknown,
    /// The access secret has expired.
    Expired,
    /// The token was revoked.
    Revoked,
    /// The request path is refused outright.
    Path,
    /// The token's scope does not cover the request.
    Scope,
    /// The client address is not in the token's list.
    Address,
    /// The token's rate limit is spent (429).
    RateLimited,
    /// The store could not be asked (503).
    Unavailable,
    /// The request to check could not be read (forward-auth headers, client address): 400.
    Unreadable,
}

impl CheckOutcome {
    /// Every outcome, in the order of [`Metrics::checks`] and of the exposition.
    pub const ALL: [CheckOutcome; 11] = [
        CheckOutcome::Allowed,
        CheckOutcome::Malformed,
        CheckOutcome::Unknown,
        CheckOutcome::Expired,
        CheckOutcome::Revoked,
        CheckOutcome::Path,
        CheckOutcome::Scope,
        CheckOutcome::Address,
        CheckOutcome::RateLimited,
        CheckOutcome::Unavailable,
        CheckOutcome::Unreadable,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Allowed => "allowed",
            CheckOutcome::Malformed => "malformed",
            CheckOutcome::Unknown => "unknown",
            CheckOutcome::Expired => "expired",
            CheckOutcome::Revoked => "revoked",
            CheckOutcome::Path => "path",
            CheckOutcome::Scope => "scope",
            CheckOutcome::Address => "address",
            CheckOutcome::RateLimited => "rate_limited",
            CheckOutcome::Unavailable => "unavailable",
            CheckOutcome::Unreadable => "unreadable",
        }
    }

    /// The outcome of a check's result (what it allowed is not looked at).
    pub fn of<T>(result: &Result<T, CheckError>) -> Self {
        match result {
            Ok(_) => CheckOutcome::Allowed,
            Err(CheckError::Unavailable(_)) => CheckOutcome::Unavailable,
            Err(CheckError::Refused(r)) => match r {
                Refusal::Malformed => CheckOutcome::Malformed,
                Refusal::Unknown => CheckOutcome::Unknown,
                Refusal::Expired => CheckOutcome::Expired,
                Refusal::Revoked => CheckOutcome::Revoked,
                Refusal::Path(_) => CheckOutcome::Path,
                Refusal::Scope => CheckOutcome::Scope,
                Refusal::Address => CheckOutcome::Address,
                Refusal::RateLimited { .. } => CheckOutcome::RateLimited,
            },
        }
    }
}

/// A group of routes whose latency is timed together
/// (`tessera_request_duration_seconds{route=…}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    /// Forward auth, RFC 7662 and RFC 7009.
    Check,
    /// Log in and out.
    Login,
    /// Token management and the validity policy.
    Tokens,
    /// Renewals.
    Renew,
    /// User administration.
    Users,
    /// Everything else: who-am-I, operations, the console, 404s and 405s.
    Other,
}

impl RouteGroup {
    /// Every group, in the order of [`Metrics::latency`] and of the exposition.
    pub const ALL: [RouteGroup; 6] = [
        RouteGroup::Check,
        RouteGroup::Login,
        RouteGroup::Tokens,
        RouteGroup::Renew,
        RouteGroup::Users,
        RouteGroup::Other,
    ];

    /// The label value (also the `route` field of the request log).
    pub fn as_str(self) -> &'static str {
        match self {
            RouteGroup::Check => "check",
            RouteGroup::Login => "login",
            RouteGroup::Tokens => "tokens",
            RouteGroup::Renew => "renew",
            RouteGroup::Users => "users",
            RouteGroup::Other => "other",
        }
    }
}

/// A latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Every metric of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Checks by outcome, indexed by [`CheckOutcome`].
    pub checks: [AtomicU64; CheckOutcome::ALL.len()],
    /// Successful renewals.
    pub renewals_ok: AtomicU64,
    /// Refused renewals.
    pub renewals_refused: AtomicU64,
    /// Renewals that found a rotated-out refresh token.
    pub reuse_detections: AtomicU64,
    /// Successful logins.
    pub logins_ok: AtomicU64,
    /// Failed logins (including locked).
    pub logins_failed: AtomicU64,
    /// Answers of 503 because the store was unavailable.
    pub store_errors: AtomicU64,
    /// Request latency, indexed by [`RouteGroup`].
    pub latency: [Histogram; RouteGroup::ALL.len()],
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections refused because every open one was busy at the bound.
    pub connections_refused: AtomicU64,
    /// The webhook sender's figures, when webhooks are configured.
    pub webhooks: std::sync::OnceLock<std::sync::Arc<crate::webhook::WebhookStatus>>,
}

impl Metrics {
    /// Counts a check outcome.
    pub fn check(&self, outcome: CheckOutcome) {
        self.checks[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a request's latency under its route group.
    pub fn observe(&self, route: RouteGroup, d: Duration) {
        self.latency[route as usize].observe(d);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# HELP tessera_checks_total Token checks by outcome.\n# TYPE tessera_checks_total counter\n");
        for o in CheckOutcome::ALL {
            let _ = writeln!(
                out,
                "tessera_checks_total{{outcome=\"{}\"}} {}",
                o.as_str(),
                get(&self.checks[o as usize])
            );
        }
        out.push_str("# HELP tessera_renewals_total Renewals by outcome.\n# TYPE tessera_renewals_total counter\n");
        let _ = writeln!(
            out,
            "tessera_renewals_total{{outcome=\"renewed\"}} {}",
            get(&self.renewals_ok)
        );
        let _ = writeln!(
            out,
            "tessera_renewals_total{{outcome=\"refused\"}} {}",
            get(&self.renewals_refused)
        );
        out.push_str("# HELP tessera_reuse_detections_total Rotated-out refresh tokens presented.\n# TYPE tessera_reuse_detections_total counter\n");
        let _ = writeln!(
            out,
            "tessera_reuse_detections_total {}",
            get(&self.reuse_detections)
        );
        out.push_str(
            "# HELP tessera_logins_total Logins by outcome.\n# TYPE tessera_logins_total counter\n",
        );
        let _ = writeln!(
            out,
            "tessera_logins_total{{outcome=\"ok\"}} {}",
            get(&self.logins_ok)
        );
        let _ = writeln!(
            out,
            "tessera_logins_total{{outcome=\"failed\"}} {}",
            get(&self.logins_failed)
        );
        out.push_str("# HELP tessera_store_errors_total Requests answered 503 because the store was unavailable.\n# TYPE tessera_store_errors_total counter\n");
        let _ = writeln!(
            out,
            "tessera_store_errors_total {}",
            get(&self.store_errors)
        );
        out.push_str("# HELP tessera_connections_open Connections open now.\n# TYPE tessera_connections_open gauge\n");
        let _ = writeln!(
            out,
            "tessera_connections_open {}",
            get(&self.connections_open)
        );
        out.push_str("# HELP tessera_connections_refused_total Connections refused at the bound with every open one busy.\n# TYPE tessera_connections_refused_total counter\n");
        let _ = writeln!(
            out,
            "tessera_connections_refused_total {}",
            get(&self.connections_refused)
        );
        out.push_str("# HELP tessera_request_duration_seconds Request latency by route group.\n# TYPE tessera_request_duration_seconds histogram\n");
        for group in RouteGroup::ALL {
            let (route, h) = (group.as_str(), &self.latency[group as usize]);
            for (b, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tessera_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    get(&h.buckets[b])
                );
            }
            let count = get(&h.count);
            let _ = writeln!(
                out,
                "tessera_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "tessera_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                get(&h.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "tessera_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        out
    }
}

/// The gauge of last-used times noted by checks and not yet written (the
/// core's backlog; it drains at each flush).
pub fn usage_backlog(n: usize) -> String {
    format!(
        "# HELP tessera_last_used_backlog Last-used times noted by checks, not yet written.\n\
         # TYPE tessera_last_used_backlog gauge\ntessera_last_used_backlog {n}\n"
    )
}

/// The check cache's figures (`None`: the cache is off, shown as capacity 0).
pub fn cache(status: Option<CacheStatus>) -> String {
    let s = status.unwrap_or_default();
    let mut out = String::new();
    let mut line = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP tessera_cache_{name} {help}\n# TYPE tessera_cache_{name} {kind}\ntessera_cache_{name} {value}\n"
        );
    };
    line(
        "entries",
        "gauge",
        "Token records (and ids known absent) the check keeps in memory.",
        s.entries as u64,
    );
    line(
        "bytes",
        "gauge",
        "Approximate bytes the check cache holds.",
        s.bytes as u64,
    );
    line(
        "capacity",
        "gauge",
        "The check cache's capacity in entries (0: off).",
        s.capacity as u64,
    );
    line(
        "fresh",
        "gauge",
        "1 while the change stream's heartbeat is recent and the cache serves records.",
        u64::from(s.fresh),
    );
    line(
        "hits_total",
        "counter",
        "Checks answered from the cache.",
        s.hits,
    );
    line(
        "misses_total",
        "counter",
        "Checks with the cache on that read the store.",
        s.misses,
    );
    line(
        "clears_total",
        "counter",
        "Times the whole cache was emptied.",
        s.clears,
    );
    line(
        "subscriptions_total",
        "counter",
        "Subscriptions to the store's change stream.",
        s.subscriptions,
    );
    line(
        "stream_cuts_total",
        "counter",
        "Times the change stream was cut or could not be subscribed.",
        s.cuts,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orders_index_the_arrays() {
        for (i, o) in CheckOutcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "{}", o.as_str());
        }
        for (i, g) in RouteGroup::ALL.iter().enumerate() {
            assert_eq!(*g as usize, i, "{}", g.as_str());
        }
    }

    #[test]
    fn the_exposition_names_each_outcome_and_group() {
        let m = Metrics::default();
        m.check(CheckOutcome::Unreadable);
        m.observe(RouteGroup::Renew, Duration::from_micros(300));
        let text = m.render();
        assert!(text.contains("tessera_checks_total{outcome=\"allowed\"} 0\n"));
        assert!(text.contains("tessera_checks_total{outcome=\"unreadable\"} 1\n"));
        assert!(text.contains(
            "tessera_request_duration_seconds_bucket{route=\"renew\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains("tessera_request_duration_seconds_count{route=\"other\"} 0\n"));
    }
}
