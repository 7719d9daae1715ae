//! What the HTTP part measured: rows, backends skipped, the table printed
//! and the JSON written to `report.json`.

use serde_json::{json, Value};

use super::fleet::FleetFigures;
use super::propagation::Propagation;
use super::wrk::WrkFigures;

/// A measured case.
pub struct Row {
    /// `sqlite`, `postgres`, `redis`, `redis-cluster`.
    pub backend: &'static str,
    /// `bare`, `live`, `check-valid`, …
    pub case: &'static str,
    /// What wrk reported.
    pub figures: WrkFigures,
}

/// A backend the run could not measure, and why.
pub struct Skipped {
    /// Which.
    pub backend: &'static str,
    /// Why.
    pub reason: String,
}

/// This row's requests/s over the same backend's `case` row's (`bare`:
/// the bare warp ceiling; `live`: Tessera's `/health/live`).
fn ratio(rows: &[Row], row: &Row, case: &str) -> Option<f64> {
    let ceiling = rows
        .iter()
        .find(|r| r.backend == row.backend && r.case == case)?;
    (ceiling.figures.requests_per_sec > 0.0)
        .then(|| row.figures.requests_per_sec / ceiling.figures.requests_per_sec)
}

/// A ratio for the table.
fn shown(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |x| format!("{x:.2}"))
}

/// Prints the table of every row, then the skipped backends.
pub fn print_table(rows: &[Row], skipped: &[Skipped]) {
    println!();
    println!(
        "{:<13} {:<15} {:>11} {:>10} {:>10} {:>6} {:>6} {:>16} {:>8}",
        "backend", "case", "requests/s", "p50", "p99", "÷bare", "÷live", "non-2xx", "sock.err"
    );
    for r in rows {
        println!(
            "{:<13} {:<15} {:>11.0} {:>10} {:>10} {:>6} {:>6} {:>16} {:>8}",
            r.backend,
            r.case,
            r.figures.requests_per_sec,
            format_us(r.figures.p50_us),
            format_us(r.figures.p99_us),
            shown(ratio(rows, r, "bare")),
            shown(ratio(rows, r, "live")),
            format!("{}/{}", r.figures.non_2xx, r.figures.requests),
            r.figures.socket_errors,
        );
    }
    for s in skipped {
        println!("{:<13} SKIPPED: {}", s.backend, s.reason);
    }
}

/// Prints the propagation figures, one line a backend.
pub fn print_propagation(moved: &[Propagation]) {
    if moved.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<13} {:>11} {:>6} {:>9} {:>9} {:>9} {:>12}",
        "backend", "revocations", "nodes", "p50", "p99", "max", "stale allows"
    );
    for m in moved {
        println!(
            "{:<13} {:>11} {:>6} {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>12}",
            m.backend,
            m.revocations,
            1 + m.others,
            m.p50(),
            m.p99(),
            m.max(),
            m.stale_allows
        );
    }
}

/// Prints the fleet case, one line a backend: one node, then three.
pub fn print_fleet(spread: &[FleetFigures]) {
    if spread.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<13} {:>15} {:>15} {:>15} {:>15} {:>13}",
        "backend",
        "1 node chk/s",
        "1 node µs CPU",
        "3 nodes chk/s",
        "3 nodes µs CPU",
        "cost ÷ 1 node"
    );
    for f in spread {
        let at = |n: usize| f.runs.iter().find(|r| r.nodes == n);
        let (one, three) = (at(1), at(3));
        println!(
            "{:<13} {:>15.0} {:>15.1} {:>15.0} {:>15.1} {:>13}",
            f.backend,
            one.map_or(f64::NAN, |r| r.checks_per_sec),
            one.map_or(f64::NAN, |r| r.cpu_us_per_check),
            three.map_or(f64::NAN, |r| r.checks_per_sec),
            three.map_or(f64::NAN, |r| r.cpu_us_per_check),
            shown(f.cost_ratio()),
        );
    }
}

/// The rows, propagation figures, fleet figures and skips as `report.json`'s `http`
/// object, with the run's settings.
pub fn json(
    settings: Value,
    rows: &[Row],
    moved: &[Propagation],
    spread: &[FleetFigures],
    skipped: &[Skipped],
) -> Value {
    let rows_json: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "backend": r.backend,
                "case": r.case,
                "requests_per_sec": r.figures.requests_per_sec,
                "p50_us": r.figures.p50_us,
                "p99_us": r.figures.p99_us,
                "ratio_to_bare": ratio(rows, r, "bare"),
                "ratio_to_live": ratio(rows, r, "live"),
                "requests": r.figures.requests,
                "non_2xx": r.figures.non_2xx,
                "socket_errors": r.figures.socket_errors,
            })
        })
        .collect();
    let skipped_json: Vec<Value> = skipped
        .iter()
        .map(|s| json!({"backend": s.backend, "reason": s.reason}))
        .collect();
    let moved_json: Vec<Value> = moved.iter().map(Propagation::json).collect();
    json!({
        "settings": settings,
        "rows": rows_json,
        "propagation": moved_json,
        "fleet": spread.iter().map(FleetFigures::json).collect::<Vec<_>>(),
        "skipped": skipped_json,
    })
}

fn format_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}
