//! Counters and latency histograms, exposed at `/metrics` in Prometheus'
//! text format. Lock-free atomics: the check path only increments.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Check outcomes, in the order of [`Metrics::checks`].
pub const CHECK_OUTCOMES: [&str; 10] = [
    "allowed",
    "malformed",
    "unknown",
    "expired",
    "revoked",
    "path",
    "scope",
    "address",
    "unavailable",
    // The request to check could not be read (forward-auth headers, client address): 400.
    "unreadable",
];

/// Route groups timed separately.
pub const ROUTES: [&str; 6] = ["check", "login", "tokens", "renew", "users", "other"];

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
    /// Checks by outcome ([`CHECK_OUTCOMES`]).
    pub checks: [AtomicU64; CHECK_OUTCOMES.len()],
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
    /// Request latency by route group ([`ROUTES`]).
    pub latency: [Histogram; ROUTES.len()],
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections refused because every open one was busy at the bound.
    pub connections_refused: AtomicU64,
}

impl Metrics {
    /// Counts a check outcome by name.
    pub fn check(&self, outcome: &str) {
        if let Some(i) = CHECK_OUTCOMES.iter().position(|o| *o == outcome) {
            self.checks[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a request's latency under its route group.
    pub fn observe(&self, route: &str, d: Duration) {
        let i = ROUTES
            .iter()
            .position(|r| *r == route)
            .unwrap_or(ROUTES.len() - 1);
        self.latency[i].observe(d);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# HELP tessera_checks_total Token checks by outcome.\n# TYPE tessera_checks_total counter\n");
        for (i, o) in CHECK_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "tessera_checks_total{{outcome=\"{o}\"}} {}",
                get(&self.checks[i])
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
        for (i, route) in ROUTES.iter().enumerate() {
            let h = &self.latency[i];
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
