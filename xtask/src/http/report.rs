//! What the HTTP part measured: rows, backends skipped, the table printed
//! and the JSON written to `report.json`.

use serde_json::{json, Value};

use super::wrk::WrkFigures;

/// A measured case.
pub struct Row {
    /// `sqlite`, `postgres`, `redis`.
    pub backend: &'static str,
    /// `ceiling`, `check-valid`, …
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

/// This row's requests/s over the same backend's `/health/live` figure.
fn ratio(rows: &[Row], row: &Row) -> Option<f64> {
    let ceiling = rows
        .iter()
        .find(|r| r.backend == row.backend && r.case == "ceiling")?;
    (ceiling.figures.requests_per_sec > 0.0)
        .then(|| row.figures.requests_per_sec / ceiling.figures.requests_per_sec)
}

/// Prints the table of every row, then the skipped backends.
pub fn print_table(rows: &[Row], skipped: &[Skipped]) {
    println!();
    println!(
        "{:<9} {:<13} {:>11} {:>10} {:>10} {:>8} {:>10} {:>9}",
        "backend", "case", "requests/s", "p50", "p99", "÷ceiling", "non-2xx", "sock.err"
    );
    for r in rows {
        let ratio = ratio(rows, r).map_or("-".to_string(), |x| format!("{x:.2}"));
        println!(
            "{:<9} {:<13} {:>11.0} {:>10} {:>10} {:>8} {:>10} {:>9}",
            r.backend,
            r.case,
            r.figures.requests_per_sec,
            format_us(r.figures.p50_us),
            format_us(r.figures.p99_us),
            ratio,
            format!("{}/{}", r.figures.non_2xx, r.figures.requests),
            r.figures.socket_errors,
        );
    }
    for s in skipped {
        println!("{:<9} SKIPPED: {}", s.backend, s.reason);
    }
}

/// The rows and skips as `report.json`'s `http` object, with the run's settings.
pub fn json(settings: Value, rows: &[Row], skipped: &[Skipped]) -> Value {
    let rows_json: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "backend": r.backend,
                "case": r.case,
                "requests_per_sec": r.figures.requests_per_sec,
                "p50_us": r.figures.p50_us,
                "p99_us": r.figures.p99_us,
                "ratio_to_ceiling": ratio(rows, r),
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
    json!({"settings": settings, "rows": rows_json, "skipped": skipped_json})
}

fn format_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}
