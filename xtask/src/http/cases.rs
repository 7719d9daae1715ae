//! One backend's run: pre-fill, inputs, a release `tessera serve` over the
//! store beside the bare `ceiling`, the sanity checks, then every case under
//! wrk (the bare ceiling, `/health/live`, the refusals, valid checks, the
//! same under a login flood and again without, renewals, creations); valid
//! checks once more on a server that keeps no last-used times and on one
//! without a cache; revocations propagated from one node to two others;
//! and the valid checks on one node, then spread over three.

use std::path::{Path, PathBuf};

use tessera_testsupport::{Launch, Server};
use tokio::runtime::Runtime;

use super::backend::Backend;
use super::ceiling::Ceiling;
use super::fleet::{self, FleetFigures};
use super::flood::{self, Flood, FloodTally};
use super::inputs::Inputs;
use super::prefill::prefill;
use super::profile::Sampler;
use super::propagation::{self, Propagation};
use super::report::Row;
use super::wrk::{self, WrkFigures};
use super::{sanity, Sizes};

/// Where a run finds what it needs.
pub struct Setup<'a> {
    /// The release `tessera`.
    pub binary: &'a Path,
    /// The release `ceiling` (bare warp).
    pub ceiling: &'a Path,
    /// The Lua scripts.
    pub scripts: &'a Path,
    /// This backend's own directory for inputs.
    pub dir: &'a Path,
    /// Where to write a profile of the valid-check case, if asked.
    pub profile: Option<PathBuf>,
}

/// A case's script arguments for a run (`warmup`, `measured`): the renewal
/// case needs pairs of its own for each.
type ArgsFor = Box<dyn Fn(&str) -> Vec<String>>;

/// A case: its name, wrk's URL, script and script arguments.
struct Case {
    name: &'static str,
    url: String,
    script: Option<PathBuf>,
    args: ArgsFor,
}

impl Case {
    /// Runs wrk for the case, `run` being `warmup` or `measured`.
    fn wrk(&self, run: &str, secs: u32) -> Result<String, String> {
        wrk::run(&self.url, self.script.as_deref(), &(self.args)(run), secs)
    }
}

/// `tessera serve` over the backend's store with `extra` arguments.
fn serve(setup: &Setup, backend: &Backend, extra: &[&str]) -> Result<Server, String> {
    Launch::new(setup.binary, &backend.fixture)
        .args(extra)
        .keep_log_lines(20)
        .start()
}

/// `result`, an error with the server's last log lines added.
fn with_log<T>(result: Result<T, String>, server: &Server) -> Result<T, String> {
    result.map_err(|e| format!("{e}\nserver log (last lines):\n{}", server.log_text()))
}

/// Pre-fills the backend, serves it, sanity-checks, runs every case; the
/// rows, the propagation case and the fleet case.
pub fn measure(
    rt: &Runtime,
    backend: &Backend,
    sizes: &Sizes,
    setup: &Setup,
) -> Result<(Vec<Row>, Propagation, FleetFigures), String> {
    let pre = rt.block_on(prefill(backend, sizes))?;
    let inputs = Inputs::write(setup.dir, &pre, sizes)?;
    let ceiling = Ceiling::start(setup.ceiling)?;
    // The loopback is a trusted proxy, so that the flood's logins come
    // "from" many addresses; no other case sends a forwarded header.
    let server = serve(setup, backend, &["--trusted-proxies", "127.0.0.1"])?;
    let result = rt
        .block_on(sanity::check(&server, &pre, &inputs))
        .and_then(|()| rt.block_on(sanity::login(&server, &pre.admin)))
        .and_then(|session| inputs.session(&session))
        .and_then(|session| {
            let cases = cases(&server.base, &ceiling.url, setup.scripts, &inputs, &session);
            run_cases(rt, &server, backend.name, &cases, sizes, setup)
        });
    let result = with_log(result, &server);
    server.stop();
    drop(ceiling);
    let mut rows = result?;

    // What last-used tracking costs: the same valid checks on a server that
    // keeps no last-used times (`--last-used-flush 0`), same store; and
    // what the cache gives: the same on a server without one (today's path
    // before the cache, `--cache-capacity 0`).
    for (case, args) in [
        ("check-untracked", ["--last-used-flush", "0"]),
        ("check-nocache", ["--cache-capacity", "0"]),
    ] {
        let server = serve(setup, backend, &args)?;
        let check = check_case(case, &server.base, setup.scripts, &inputs.check);
        let result = sizes
            .warmup_s
            .map_or(Ok(String::new()), |w| check.wrk("warmup", w))
            .and_then(|_| check.wrk("measured", sizes.duration_s))
            .and_then(|text| wrk::parse(&text).map_err(|e| format!("{case}: {e}")));
        let result = with_log(result, &server);
        server.stop();
        rows.push(Row {
            backend: backend.name,
            case,
            figures: result?,
        });
    }

    // What a rate limit costs the check: the same requests' shape with
    // tokens that each carry a limit far above what the run sends, so that
    // every check is allowed and counted in the store (one more call).
    let server = serve(setup, backend, &[])?;
    let result = rt
        .block_on(limited_tokens(&server, &pre.admin, setup.dir))
        .and_then(|file| {
            let check = check_case("check-limited", &server.base, setup.scripts, &file);
            sizes
                .warmup_s
                .map_or(Ok(String::new()), |w| check.wrk("warmup", w))
                .and_then(|_| check.wrk("measured", sizes.duration_s))
                .and_then(|text| wrk::parse(&text).map_err(|e| format!("check-limited: {e}")))
        });
    let result = with_log(result, &server);
    server.stop();
    rows.push(Row {
        backend: backend.name,
        case: "check-limited",
        figures: result?,
    });

    // Three nodes over the store: revoke on one, time until each other refuses.
    let mut nodes = Vec::with_capacity(propagation::NODES);
    for _ in 0..propagation::NODES {
        nodes.push(serve(setup, backend, &[])?);
    }
    let result = rt.block_on(async {
        let session = sanity::login(&nodes[0], &pre.admin).await?;
        let others: Vec<&Server> = nodes[1..].iter().collect();
        propagation::measure(
            backend.name,
            &nodes[0],
            &others,
            &session,
            sizes.revocations,
        )
        .await
    });
    let result = nodes.iter().fold(result, with_log);
    nodes.into_iter().for_each(Server::stop);
    let moved = result.map_err(|e| format!("propagation: {e}"))?;
    println!(
        "{} propagation: revoked on one node, refused by each of {} others after p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms ({} revocations; target p99 ≤ 100 ms: {})",
        backend.name,
        moved.others,
        moved.p50(),
        moved.p99(),
        moved.max(),
        moved.revocations,
        if moved.p99() <= 100.0 {
            "met"
        } else {
            "not met"
        },
    );

    // The fleet case: the valid checks on one node, then spread over three.
    let mut runs = Vec::new();
    for n in fleet::SHAPES {
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            nodes.push(serve(setup, backend, &[])?);
        }
        let result = fleet::run(
            &nodes,
            setup.scripts,
            &inputs.check,
            sizes.warmup_s,
            sizes.duration_s,
        );
        let result = nodes.iter().fold(result, with_log);
        nodes.into_iter().for_each(Server::stop);
        runs.push(result.map_err(|e| format!("fleet of {n}: {e}"))?);
    }
    let spread = FleetFigures {
        backend: backend.name,
        runs,
    };
    for r in &spread.runs {
        println!(
            "{} fleet: {} node(s): {:.0} checks/s, {:.1} µs of the nodes' CPU per check \
             ({} checks, {} failed)",
            backend.name, r.nodes, r.checks_per_sec, r.cpu_us_per_check, r.requests, r.failed
        );
    }
    Ok((rows, moved, spread))
}

/// A check case reading the lines of `file` (in the warm-up, every line in
/// turn: the measured run meets a warm cache).
/// Tokens for the check-limited case: [`LIMITED_TOKENS`] All tokens, each
/// limited to a million checks a day (no run comes near it), created through
/// the API; the check lines file, as the check case reads it.
async fn limited_tokens(
    server: &Server,
    admin: &(String, String),
    dir: &Path,
) -> Result<PathBuf, String> {
    let session = sanity::login(server, admin).await?;
    let mut lines = String::new();
    for i in 0..LIMITED_TOKENS {
        let body = serde_json::json!({
            "tokenName": format!("bench-limited-{i}"),
            "tokenType": 2,
            "rateLimit": {"requests": 1_000_000, "perSeconds": 86_400},
        });
        let a = server.create_token(&session, body).await;
        let token = match (a.status, a.json["tokenInfo"]["accessToken"].as_str()) {
            (200, Some(t)) => t.to_string(),
            _ => return Err(format!("creating a limited token answered {}", a.status)),
        };
        lines.push_str(&format!("{token}\tGET\t/Client/5\n"));
    }
    let file = dir.join("check-limited.txt");
    std::fs::write(&file, lines).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(file)
}

/// How many rate-limited tokens the check-limited case spreads its checks over.
const LIMITED_TOKENS: usize = 200;

fn check_case(name: &'static str, base: &str, scripts: &Path, file: &Path) -> Case {
    let file = file.display().to_string();
    Case {
        name,
        url: base.to_string(),
        script: Some(scripts.join("check.lua")),
        args: Box::new(move |run| vec![file.clone(), run.to_string()]),
    }
}

/// The cases, in order: the bare ceiling and `/health/live` first, then the
/// refusals: they touch no store (or only read it), so they are measured
/// while the database is as quiet as for the ceilings, before any case that
/// makes it write.
fn cases(base: &str, bare: &str, scripts: &Path, inputs: &Inputs, session: &Path) -> Vec<Case> {
    let renewals = inputs.renewals();
    let session = vec![session.display().to_string()];
    vec![
        Case {
            name: "bare",
            url: bare.to_string(),
            script: None,
            args: Box::new(|_| vec![]),
        },
        Case {
            name: "live",
            url: format!("{base}/health/live"),
            script: None,
            args: Box::new(|_| vec![]),
        },
        check_case("malformed", base, scripts, &inputs.malformed),
        check_case("unknown", base, scripts, &inputs.unknown),
        check_case("unknown-below", base, scripts, &inputs.unknown_below),
        check_case("check-valid", base, scripts, &inputs.check),
        Case {
            name: "renew",
            url: base.to_string(),
            script: Some(scripts.join("renew.lua")),
            args: Box::new(move |run| vec![renewals(run)]),
        },
        Case {
            name: "create",
            url: base.to_string(),
            script: Some(scripts.join("create.lua")),
            args: Box::new(move |_| session.clone()),
        },
    ]
}

/// Runs `cases` against `server`; a row each, and the flood's two after
/// `check-valid`.
fn run_cases(
    rt: &Runtime,
    server: &Server,
    backend: &'static str,
    cases: &[Case],
    sizes: &Sizes,
    setup: &Setup,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for case in cases {
        // Each case starts with the last-used times of the one before
        // written, so no case pays for another's background writes.
        rt.block_on(sanity::usage_flushed(server))?;
        if let Some(w) = sizes.warmup_s {
            case.wrk("warmup", w)?;
        }
        let sampler = match (&setup.profile, case.name) {
            (Some(out), "check-valid") => Some(Sampler::start(server.pid(), out)?),
            _ => None,
        };
        let text = case.wrk("measured", sizes.duration_s)?;
        if let Some(s) = sampler {
            s.finish()?;
        }
        let figures = wrk::parse(&text).map_err(|e| format!("{}: {e}", case.name))?;
        eprintln!(
            "xtask: {backend} {}: {:.0} requests/s, {} non-2xx of {}",
            case.name, figures.requests_per_sec, figures.non_2xx, figures.requests
        );
        let before = figures.requests_per_sec;
        rows.push(Row {
            backend,
            case: case.name,
            figures,
        });
        if case.name == "check-valid" {
            rows.extend(flood_rows(rt, server, backend, case, sizes, before)?);
        }
    }
    Ok(rows)
}

/// The valid checks while wrong logins flood in, then once more without:
/// the flood is compared with the mean of the runs on either side (runs
/// vary ±10 %), `before` being the valid-check figure.
fn flood_rows(
    rt: &Runtime,
    server: &Server,
    backend: &'static str,
    case: &Case,
    sizes: &Sizes,
    before: f64,
) -> Result<Vec<Row>, String> {
    let measured = |flooded: bool| -> Result<(WrkFigures, Option<FloodTally>), String> {
        rt.block_on(sanity::usage_flushed(server))?;
        let running = flooded.then(|| Flood::start(rt, server));
        let text = case.wrk("measured", sizes.duration_s);
        let tally = running.map(|f| f.stop(rt));
        Ok((wrk::parse(&text?)?, tally))
    };
    let (flooded, tally) = measured(true).map_err(|e| format!("check-flood: {e}"))?;
    let (again, _) = measured(false).map_err(|e| format!("check-again: {e}"))?;
    let without = (before + again.requests_per_sec) / 2.0;
    let share = flooded.requests_per_sec / without.max(1.0);
    let tally = tally.ok_or("the flood did not run")?;
    println!(
        "{backend} check-flood: {:.0} checks/s under {} wrong logins/s ({:.0}/s sent: {}), \
         {:.2} of the {:.0}/s without (check-valid {:.0}, check-again {:.0}; \
         target ≥ {}: {})",
        flooded.requests_per_sec,
        flood::PER_SEC,
        tally.sent as f64 / tally.secs.max(0.001),
        tally.summary(),
        share,
        without,
        before,
        again.requests_per_sec,
        flood::TARGET,
        if share >= flood::TARGET {
            "met"
        } else {
            "not met"
        },
    );
    Ok(vec![
        Row {
            backend,
            case: "check-flood",
            figures: flooded,
        },
        Row {
            backend,
            case: "check-again",
            figures: again,
        },
    ])
}
