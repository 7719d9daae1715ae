//! The HTTP part of `cargo xtask bench`: `wrk` against a release build of
//! `tessera serve`, once per backend, each on a fresh store pre-filled
//! through the library (not over HTTP), then a table of requests/s and
//! latencies, each case set against the `/health/live` ceiling measured in
//! the same run on the same backend.
//!
//! The secrets written under `target/bench/` for wrk's Lua scripts are
//! throw-away test secrets of a store that is deleted at the end; they are
//! never printed.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tessera_core::clock::SystemClock;
use tessera_core::model::{NewUser, Role, TokenId, User, UserKind};
use tessera_core::policy::{Credential, Policy, PolicyConfig, TokenRequest};
use tessera_core::secret::{self, SecretKind};
use tessera_core::service::{Caller, Tessera};
use tessera_core::store::Store;

/// wrk's threads (fixed: the Lua scripts hand each its own slice).
const WRK_THREADS: usize = 2;
/// wrk's connections.
const WRK_CONNECTIONS: usize = 64;
/// Wrong logins per second during the `check-flood` case, each from another
/// address (`X-Forwarded-For`, the server trusting the loopback proxy) and
/// for another unknown user, so that no lock stops them before Argon2.
const FLOOD_PER_SEC: u64 = 100;
/// Threads sending the flood (each login waits for its answer).
const FLOOD_THREADS: usize = 32;
/// The check under a login flood keeps at least this share of its rate.
const FLOOD_TARGET: f64 = 0.8;
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

/// How big the run is.
struct Sizes {
    users: usize,
    tokens: usize,
    /// Renewable pairs per wrk thread and per run (warm-up, measured).
    pairs_per_thread: usize,
    /// `-d` of the measured run, in seconds.
    duration_s: u32,
    /// `-d` of the warm-up run; `None`: no warm-up.
    warmup_s: Option<u32>,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                users: 100,
                tokens: 2_000,
                pairs_per_thread: 100,
                duration_s: 1,
                warmup_s: None,
            }
        } else {
            Sizes {
                users: 1_000,
                tokens: 100_000,
                pairs_per_thread: 200,
                duration_s: 10,
                warmup_s: Some(2),
            }
        }
    }

    /// The runs that use renewal pairs (each needs pairs of its own: a pair
    /// rotated by one wrk process is spent for the next).
    fn renew_runs(&self) -> Vec<&'static str> {
        if self.warmup_s.is_some() {
            vec!["warmup", "measured"]
        } else {
            vec!["measured"]
        }
    }
}

/// One case's figures, parsed from wrk's output.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkFigures {
    /// `Requests/sec:`.
    pub requests_per_sec: f64,
    /// The `50%` latency line, in microseconds.
    pub p50_us: f64,
    /// The `99%` latency line, in microseconds.
    pub p99_us: f64,
    /// `N requests in …`.
    pub requests: u64,
    /// `Non-2xx or 3xx responses:` (0 when the line is absent).
    pub non_2xx: u64,
    /// Sum of `Socket errors:` (connect, read, write, timeout).
    pub socket_errors: u64,
}

/// Parses wrk's report (run with `--latency`).
pub fn parse_wrk(text: &str) -> Result<WrkFigures, String> {
    let mut rps = None;
    let (mut p50, mut p99, mut requests) = (None, None, None);
    let (mut non_2xx, mut socket_errors) = (0u64, 0u64);
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = t.strip_prefix("50%") {
            p50 = parse_duration_us(v.trim());
        } else if let Some(v) = t.strip_prefix("99%") {
            p99 = parse_duration_us(v.trim());
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            socket_errors = v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1))
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
        } else if t.contains(" requests in ") {
            requests = t.split_whitespace().next().and_then(|n| n.parse().ok());
        }
    }
    match (rps, p50, p99) {
        (Some(requests_per_sec), Some(p50_us), Some(p99_us)) => Ok(WrkFigures {
            requests_per_sec,
            p50_us,
            p99_us,
            requests: requests.unwrap_or(0),
            non_2xx,
            socket_errors,
        }),
        _ => Err(format!("cannot read wrk's report:\n{text}")),
    }
}

/// A wrk duration (`635.91us`, `1.00ms`, `2.10s`, `1.00m`) in microseconds.
fn parse_duration_us(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.trim().parse().ok()?;
    let factor = match unit.trim() {
        "ns" => 0.001,
        "us" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        "m" => 60_000_000.0,
        "h" => 3_600_000_000.0,
        _ => return None,
    };
    Some(n * factor)
}

/// A measured case, for the table and the report.
struct Row {
    backend: &'static str,
    case: &'static str,
    figures: WrkFigures,
}

/// A backend the run could not measure, and why.
struct Skipped {
    backend: &'static str,
    reason: String,
}

/// What the HTTP part produced, for the report.
pub struct HttpReport {
    /// Rows and skips, as JSON for `report.json`.
    pub json: Value,
}

/// What `cargo xtask bench` asked of the HTTP part.
pub struct Options {
    /// Short runs on a small store (the CI smoke run).
    pub quick: bool,
    /// Sample the server with `perf record` during the measured valid-check
    /// run, and write `perf report`'s flat profile under `target/bench/`.
    pub profile: bool,
    /// Only these backends (empty: all three).
    pub backends: Vec<String>,
}

/// Runs the HTTP benchmark. Unavailable pieces (wrk, a backend) are SKIPPED,
/// never a failure; a server that answers the sanity requests wrongly is.
pub fn run(options: &Options, target_dir: &Path, cargo: Command) -> Result<HttpReport, String> {
    let quick = options.quick;
    let sizes = Sizes::new(quick);
    println!();
    println!("== HTTP load (wrk) ==");
    let settings = json!({
        "threads": WRK_THREADS,
        "connections": WRK_CONNECTIONS,
        "duration_s": sizes.duration_s,
        "warmup_s": sizes.warmup_s,
        "users": sizes.users,
        "tokens": sizes.tokens,
    });
    if !wrk_available() {
        println!("SKIPPED: `wrk` is not installed (Debian/Ubuntu: `apt-get install wrk`).");
        return Ok(HttpReport {
            json: json!({
                "settings": settings,
                "rows": [],
                "skipped": [{"backend": "all", "reason": "wrk is not installed"}],
            }),
        });
    }
    build_release(cargo)?;
    let binary = target_dir.join("release").join("tessera");
    if !binary.is_file() {
        return Err(format!("{} was not built", binary.display()));
    }
    let work = target_dir.join("bench").join("http");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    write_scripts(&work)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;

    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut failure = None;
    for backend in ["sqlite", "postgres", "redis"] {
        if !options.backends.is_empty() && !options.backends.iter().any(|b| b == backend) {
            continue;
        }
        let fixture = match rt.block_on(Fixture::open(backend)) {
            Ok(f) => f,
            // Under CI every backend must be measured, as the test suites
            // must run (the same rule: `testkit::backends_required`).
            Err(reason) if tessera_core::testkit::backends_required() => {
                return Err(format!("{backend} is unreachable under CI: {reason}"));
            }
            Err(reason) => {
                println!("{backend}: SKIPPED ({reason})");
                skipped.push(Skipped { backend, reason });
                continue;
            }
        };
        let dir = work.join(backend);
        let outcome = fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
            .and_then(|()| {
                let profile = options
                    .profile
                    .then(|| target_dir.join("bench").join(format!("profile-{backend}")));
                measure_backend(&rt, &fixture, &sizes, &binary, &work, &dir, profile)
            });
        rt.block_on(fixture.cleanup());
        let _ = fs::remove_dir_all(&dir);
        match outcome {
            Ok(mut r) => rows.append(&mut r),
            Err(e) => {
                println!("{backend}: FAILED: {e}");
                failure = Some(format!("HTTP benchmark on {backend}: {e}"));
            }
        }
    }
    print_table(&rows, &skipped);
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "backend": r.backend,
                "case": r.case,
                "requests_per_sec": r.figures.requests_per_sec,
                "p50_us": r.figures.p50_us,
                "p99_us": r.figures.p99_us,
                "ratio_to_ceiling": ratio(&rows, r),
                "requests": r.figures.requests,
                "non_2xx": r.figures.non_2xx,
                "socket_errors": r.figures.socket_errors,
            })
        })
        .collect();
    let json_skipped: Vec<Value> = skipped
        .iter()
        .map(|s| json!({"backend": s.backend, "reason": s.reason}))
        .collect();
    if let Some(f) = failure {
        return Err(f);
    }
    Ok(HttpReport {
        json: json!({"settings": settings, "rows": json_rows, "skipped": json_skipped}),
    })
}

/// `perf record` attached to the server for one case (a flat profile,
/// sampled at 999 Hz on the CPU clock, which works where hardware counters
/// are not exposed).
struct Sampler {
    child: Child,
    data: PathBuf,
    report: PathBuf,
}

impl Sampler {
    fn start(pid: u32, out: &Path) -> Result<Sampler, String> {
        let data = out.with_extension("data");
        let report = out.with_extension("txt");
        let child = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-o"])
            .arg(&data)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("--profile needs perf (apt-get install linux-perf): {e}"))?;
        Ok(Sampler {
            child,
            data,
            report,
        })
    }

    /// Stops the recording (SIGINT, as perf expects) and writes the report.
    fn finish(mut self) -> Result<(), String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let out = Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--sort", "dso,symbol"])
            .args(["--percent-limit", "0.3", "-g", "none", "-i"])
            .arg(&self.data)
            .output()
            .map_err(|e| format!("cannot run perf report: {e}"))?;
        // perf pads its columns for a terminal: trim every line.
        let text: String = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end().trim_end_matches(['-', ' ']).to_string() + "\n")
            .collect();
        fs::write(&self.report, text)
            .map_err(|e| format!("cannot write {}: {e}", self.report.display()))?;
        println!(
            "profile written to {} (raw samples: {})",
            self.report.display(),
            self.data.display()
        );
        Ok(())
    }
}

/// Whether `wrk` can be started.
fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `cargo build --release -p tessera-server --all-features`.
fn build_release(mut c: Command) -> Result<(), String> {
    c.args([
        "build",
        "--release",
        "-p",
        "tessera-server",
        "--all-features",
    ]);
    eprintln!("xtask: running {c:?}");
    let status = c
        .status()
        .map_err(|e| format!("cannot start the release build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the release build failed with {status}"))
    }
}

/// This row's requests/s over the same backend's `/health/live` figure.
fn ratio(rows: &[Row], row: &Row) -> Option<f64> {
    let ceiling = rows
        .iter()
        .find(|r| r.backend == row.backend && r.case == "ceiling")?;
    (ceiling.figures.requests_per_sec > 0.0)
        .then(|| row.figures.requests_per_sec / ceiling.figures.requests_per_sec)
}

fn print_table(rows: &[Row], skipped: &[Skipped]) {
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

fn format_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// A fresh store of one backend, opened for the pre-fill.
struct Fixture {
    name: &'static str,
    /// The URL `tessera serve --store` gets.
    url: String,
    /// Extra `serve` arguments.
    serve_args: Vec<String>,
    store: Arc<dyn Store>,
    cleanup: Cleanup,
}

/// How to remove a fixture's store.
enum Cleanup {
    /// Delete the temporary directory.
    Sqlite(PathBuf),
    /// `DROP SCHEMA … CASCADE` over this pool.
    Postgres(sqlx::PgPool, String),
    /// SCAN + DEL the keys under the prefix.
    Redis(String, String),
}

/// A name no other run on this machine uses.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", std::process::id())
}

impl Fixture {
    /// Opens a fresh store, or says why the backend cannot be measured.
    async fn open(name: &'static str) -> Result<Fixture, String> {
        match name {
            "sqlite" => {
                let dir = std::env::temp_dir().join(format!("tessera-bench-{}", unique()));
                fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let url = format!("sqlite://{}", dir.join("tessera.db").display());
                let store = tessera_sqlite::SqliteStore::open(&tessera_sqlite::SqliteConfig::new(
                    url.as_str(),
                ))
                .await
                .map_err(|e| format!("cannot open {url}: {e}"))?;
                Ok(Fixture {
                    name,
                    url,
                    serve_args: vec![],
                    store: Arc::new(store),
                    cleanup: Cleanup::Sqlite(dir),
                })
            }
            "postgres" => {
                let base = std::env::var("TESSERA_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                let schema = format!("tessera_bench_{}", unique());
                let config = tessera_postgres::PostgresConfig {
                    schema: Some(schema.clone()),
                    connect_timeout: Duration::from_secs(3),
                    max_connections: 16,
                    ..tessera_postgres::PostgresConfig::new(base.as_str())
                };
                let store = tessera_postgres::PostgresStore::open(&config)
                    .await
                    .map_err(|e| format!("PostgreSQL unreachable: {e}"))?;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options[search_path]={schema}");
                let pool = store.pool().clone();
                Ok(Fixture {
                    name,
                    url,
                    serve_args: vec![],
                    store: Arc::new(store),
                    cleanup: Cleanup::Postgres(pool, schema),
                })
            }
            _ => {
                let url = std::env::var("TESSERA_TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                let prefix = format!("tessera-bench-{}:", unique());
                let config = tessera_redis::RedisConfig {
                    prefix: prefix.clone(),
                    command_timeout: Duration::from_secs(5),
                    ..tessera_redis::RedisConfig::new(url.as_str())
                };
                let store = tessera_redis::RedisStore::connect(config)
                    .await
                    .map_err(|e| format!("Redis unreachable: {e}"))?;
                Ok(Fixture {
                    name,
                    url: url.clone(),
                    serve_args: vec!["--redis-prefix".into(), prefix.clone()],
                    store: Arc::new(store),
                    cleanup: Cleanup::Redis(url, prefix),
                })
            }
        }
    }

    /// Removes the store (best effort; says so when it cannot).
    async fn cleanup(self) {
        let name = self.name;
        drop(self.store);
        let result: Result<(), String> = match self.cleanup {
            Cleanup::Sqlite(dir) => fs::remove_dir_all(&dir).map_err(|e| e.to_string()),
            Cleanup::Postgres(pool, schema) => {
                let sql = format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    tessera_postgres::quote_ident(&schema)
                );
                let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                pool.close().await;
                r
            }
            Cleanup::Redis(url, prefix) => redis_delete_prefix(&url, &prefix).await,
        };
        if let Err(e) = result {
            eprintln!("xtask: cannot clean up the {name} store: {e}");
        }
    }
}

/// Deletes every key under `prefix` with SCAN + DEL (never FLUSHDB).
async fn redis_delete_prefix(url: &str, prefix: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await
            .map_err(|e| e.to_string())?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut con)
                .await
                .map_err(|e| e.to_string())?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// The secrets the load needs, kept from the pre-fill.
struct Prefilled {
    /// Admin name and password (for the HTTP login of the creation case).
    admin: (String, String),
    /// `token \t method \t uri` lines, each allowed by the token's scope.
    check_lines: Vec<String>,
    /// Renewable pairs: per run (warm-up, measured), per wrk thread.
    renew_pairs: Vec<Vec<Vec<(String, String)>>>,
    /// One more pair for the sanity request.
    sanity_pair: (String, String),
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
async fn prefill(fixture: &Fixture, sizes: &Sizes) -> Result<Prefilled, String> {
    let started = Instant::now();
    let policy = Policy::new(PolicyConfig::default()).map_err(|e| e.to_string())?;
    let svc = Arc::new(Tessera::new(
        fixture.store.clone(),
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
        let user = fixture
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
        fixture.name,
        sizes.users + 1,
        sizes.tokens,
        started.elapsed().as_secs_f64()
    );
    Ok(Prefilled {
        admin: (admin_name, admin_password),
        check_lines,
        renew_pairs,
        sanity_pair,
    })
}

/// A running `tessera serve`, stopped when dropped.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    /// The last lines of its standard error, for messages.
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the release binary and waits for its ready line.
    fn start(binary: &Path, fixture: &Fixture, extra: &[&str]) -> Result<Server, String> {
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", &fixture.url])
            .args(&fixture.serve_args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        // Drains the server's log for as long as it runs (it logs every request).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("tessera listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
                if let Ok(mut l) = sink.lock() {
                    if l.len() >= 20 {
                        l.remove(0);
                    }
                    l.push(line);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Ok(Server { child, addr, log }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "tessera did not report it was listening: {}",
                    log.lock().map(|l| l.join("\n")).unwrap_or_default()
                ))
            }
        }
    }

    /// SIGTERM, then SIGKILL if it has not gone within 10 s.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_tail(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

/// One HTTP/1.0 request (the connection closes after the answer): status and body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    if let Some(b) = body {
        let _ = write!(
            req,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        );
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes())
        .map_err(|e| format!("cannot send {method} {path}: {e}"))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| format!("cannot read the answer to {method} {path}: {e}"))?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in the answer to {method} {path}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// Standard base64 (for the login body, which carries the password so).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes `lines` to `path`, one a line.
fn write_lines(path: &Path, lines: impl IntoIterator<Item = String>) -> Result<(), String> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Pre-fills a fixture, serves it, sanity-checks, runs every case.
fn measure_backend(
    rt: &tokio::runtime::Runtime,
    fixture: &Fixture,
    sizes: &Sizes,
    binary: &Path,
    scripts: &Path,
    dir: &Path,
    profile: Option<PathBuf>,
) -> Result<Vec<Row>, String> {
    let pre = rt.block_on(prefill(fixture, sizes))?;

    // Files for the Lua scripts.
    let check_file = dir.join("check.txt");
    write_lines(&check_file, pre.check_lines.iter().cloned())?;
    let any_access = pre
        .check_lines
        .first()
        .and_then(|l| l.split('\t').next())
        .ok_or("no check token")?;
    let mut malformed = any_access.to_string();
    let last = malformed.pop().ok_or("empty token")?;
    malformed.push(if last == 'A' { 'B' } else { 'A' });
    let malformed_file = dir.join("malformed.txt");
    write_lines(&malformed_file, [format!("{malformed}\tGET\t/Client/5")])?;
    let unknown = secret::generate(SecretKind::Access, Some(TokenId(987_654_321)))
        .map_err(|e| format!("no randomness: {e}"))?;
    let unknown_file = dir.join("unknown.txt");
    write_lines(
        &unknown_file,
        [format!("{}\tGET\t/Client/5", unknown.expose())],
    )?;
    let runs = sizes.renew_runs();
    for (run, per_thread) in runs.iter().zip(&pre.renew_pairs) {
        for (t, pairs) in per_thread.iter().enumerate() {
            let f = dir.join(format!("renew-{run}.{}.txt", t + 1));
            write_lines(&f, pairs.iter().map(|(a, r)| format!("{a}\t{r}")))?;
        }
    }

    // The loopback is a trusted proxy, so that the flood's logins come
    // "from" many addresses; no other case sends a forwarded header.
    let server = Server::start(binary, fixture, &["--trusted-proxies", "127.0.0.1"])?;
    let result = (|| {
        let addr = server.addr.clone();
        sanity(&addr, &pre, &malformed, unknown.expose())?;
        let session = login(&addr, &pre.admin)?;
        let session_file = dir.join("session.txt");
        write_lines(&session_file, [session])?;

        let base = format!("http://{addr}");
        let arg = |p: &Path| p.display().to_string();
        type Case = (&'static str, String, Option<PathBuf>, Vec<String>);
        // The refusals right after the ceiling: they touch no store (or
        // only read it), so they are measured while the database is as
        // quiet as for the ceiling, before any case that makes it write.
        let mut cases: Vec<Case> = vec![
            ("ceiling", format!("{base}/health/live"), None, vec![]),
            (
                "malformed",
                base.clone(),
                Some(scripts.join("check.lua")),
                vec![arg(&malformed_file)],
            ),
            (
                "unknown",
                base.clone(),
                Some(scripts.join("check.lua")),
                vec![arg(&unknown_file)],
            ),
            (
                "check-valid",
                base.clone(),
                Some(scripts.join("check.lua")),
                vec![arg(&check_file)],
            ),
        ];
        // The renewal case names its pair files by run below.
        cases.push((
            "renew",
            base.clone(),
            Some(scripts.join("renew.lua")),
            vec![],
        ));
        cases.push((
            "create",
            base.clone(),
            Some(scripts.join("create.lua")),
            vec![arg(&session_file)],
        ));
        let mut rows = Vec::new();
        for (case, url, script, args) in cases {
            let args_for = |run: &str| {
                if case == "renew" {
                    vec![arg(&dir.join(format!("renew-{run}")))]
                } else {
                    args.clone()
                }
            };
            // Each case starts with the last-used times of the one before
            // written, so no case pays for another's background writes.
            wait_for_usage_flush(&addr)?;
            if let Some(w) = sizes.warmup_s {
                wrk(&url, script.as_deref(), &args_for("warmup"), w)?;
            }
            let sampler = match (&profile, case) {
                (Some(out), "check-valid") => Some(Sampler::start(server.child.id(), out)?),
                _ => None,
            };
            let text = wrk(
                &url,
                script.as_deref(),
                &args_for("measured"),
                sizes.duration_s,
            )?;
            if let Some(s) = sampler {
                s.finish()?;
            }
            let figures = parse_wrk(&text).map_err(|e| format!("{case}: {e}"))?;
            eprintln!(
                "xtask: {} {case}: {:.0} requests/s, {} non-2xx of {}",
                fixture.name, figures.requests_per_sec, figures.non_2xx, figures.requests
            );
            rows.push(Row {
                backend: fixture.name,
                case,
                figures,
            });
            if case == "check-valid" {
                // The same checks while wrong logins flood in, then
                // once more without: the flood is compared with the
                // mean of the runs on either side (runs vary ±10 %).
                let measured = |flood: bool| -> Result<(WrkFigures, Option<FloodTally>), String> {
                    wait_for_usage_flush(&addr)?;
                    let running = flood.then(|| Flood::start(&addr));
                    let text = wrk(
                        &url,
                        script.as_deref(),
                        &args_for("measured"),
                        sizes.duration_s,
                    );
                    let tally = running.map(Flood::stop);
                    let figures = parse_wrk(&text?)?;
                    Ok((figures, tally))
                };
                let (flooded, tally) = measured(true).map_err(|e| format!("check-flood: {e}"))?;
                let (again, _) = measured(false).map_err(|e| format!("check-again: {e}"))?;
                let before = rows.last().map_or(0.0, |r| r.figures.requests_per_sec);
                let without = (before + again.requests_per_sec) / 2.0;
                let share = flooded.requests_per_sec / without.max(1.0);
                let tally = tally.ok_or("the flood did not run")?;
                println!(
                    "{} check-flood: {:.0} checks/s under {} wrong logins/s ({:.0}/s sent: {}), \
                         {:.2} of the {:.0}/s without (check-valid {:.0}, check-again {:.0}; \
                         target ≥ {FLOOD_TARGET}: {})",
                    fixture.name,
                    flooded.requests_per_sec,
                    FLOOD_PER_SEC,
                    tally.sent as f64 / tally.secs.max(0.001),
                    tally.summary(),
                    share,
                    without,
                    before,
                    again.requests_per_sec,
                    if share >= FLOOD_TARGET {
                        "met"
                    } else {
                        "not met"
                    },
                );
                rows.push(Row {
                    backend: fixture.name,
                    case: "check-flood",
                    figures: flooded,
                });
                rows.push(Row {
                    backend: fixture.name,
                    case: "check-again",
                    figures: again,
                });
            }
        }
        Ok(rows)
    })();
    let result =
        result.map_err(|e: String| format!("{e}\nserver log (last lines):\n{}", server.log_tail()));
    server.stop();
    let mut rows = result?;

    // What last-used tracking costs: the same valid checks on a server that
    // keeps no last-used times (`--last-used-flush 0`), same store.
    let server = Server::start(binary, fixture, &["--last-used-flush", "0"])?;
    let url = format!("http://{}", server.addr);
    let script = scripts.join("check.lua");
    let args = vec![check_file.display().to_string()];
    let result = (|| {
        if let Some(w) = sizes.warmup_s {
            wrk(&url, Some(&script), &args, w)?;
        }
        let text = wrk(&url, Some(&script), &args, sizes.duration_s)?;
        parse_wrk(&text).map_err(|e| format!("check-untracked: {e}"))
    })();
    let result =
        result.map_err(|e: String| format!("{e}\nserver log (last lines):\n{}", server.log_tail()));
    server.stop();
    rows.push(Row {
        backend: fixture.name,
        case: "check-untracked",
        figures: result?,
    });
    Ok(rows)
}

/// Wrong logins sent at [`FLOOD_PER_SEC`] by [`FLOOD_THREADS`] threads,
/// each from another forwarded address and for another unknown user.
struct Flood {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<u16>>>,
    started: Instant,
}

/// What the flood's logins were answered.
struct FloodTally {
    sent: usize,
    secs: f64,
    by_status: std::collections::BTreeMap<u16, usize>,
}

impl FloodTally {
    fn summary(&self) -> String {
        self.by_status
            .iter()
            .map(|(s, n)| match s {
                0 => format!("{n} no answer"),
                s => format!("{n}× {s}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Flood {
    fn start(addr: &str) -> Flood {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let every = Duration::from_micros(1_000_000 / FLOOD_PER_SEC);
        let threads = (0..FLOOD_THREADS)
            .map(|_| {
                let (stop, next, addr) = (stop.clone(), next.clone(), addr.to_string());
                std::thread::spawn(move || {
                    let mut statuses = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        // The k-th login goes at start + k/rate, whoever sends it.
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let at = started + every * k as u32;
                        if let Some(wait) = at.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let from = format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255);
                        let body = format!(r#"{{"username":"flood-{k}","password":"d3Jvbmc="}}"#);
                        let status = http(
                            &addr,
                            "POST",
                            "/Login",
                            &[("X-Forwarded-For", &from)],
                            Some(&body),
                        )
                        .map_or(0, |(s, _)| s);
                        statuses.push(status);
                    }
                    statuses
                })
            })
            .collect();
        Flood {
            stop,
            threads,
            started,
        }
    }

    fn stop(self) -> FloodTally {
        self.stop.store(true, Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let mut by_status = std::collections::BTreeMap::new();
        let mut sent = 0;
        for t in self.threads {
            for s in t.join().unwrap_or_default() {
                sent += 1;
                *by_status.entry(s).or_insert(0) += 1;
            }
        }
        FloodTally {
            sent,
            secs,
            by_status,
        }
    }
}

/// Waits (polling `/metrics`, at most two minutes) until the server has
/// written every last-used time its checks noted.
fn wait_for_usage_flush(addr: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = http(addr, "GET", "/metrics", &[], None)?;
        let backlog = body
            .lines()
            .find_map(|l| l.strip_prefix("tessera_last_used_backlog "))
            .and_then(|n| n.trim().parse::<u64>().ok());
        match backlog {
            Some(0) => return Ok(()),
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Some(n) => return Err(format!("{n} last-used times still unwritten after 2 min")),
            None => {
                return Err(format!(
                    "/metrics ({status}) shows no tessera_last_used_backlog"
                ))
            }
        }
    }
}

/// Before the load: the cases' requests answer as they should.
fn sanity(addr: &str, pre: &Prefilled, malformed: &str, unknown: &str) -> Result<(), String> {
    let (status, _) = http(addr, "GET", "/health/live", &[], None)?;
    if status != 200 {
        return Err(format!("/health/live answered {status}"));
    }
    let check = |token: &str, method: &str, uri: &str| {
        let bearer = format!("Bearer {token}");
        http(
            addr,
            "GET",
            "/auth/check",
            &[
                ("Authorization", &bearer),
                ("X-Original-Method", method),
                ("X-Original-URI", uri),
            ],
            None,
        )
        .map(|(s, _)| s)
    };
    for line in pre.check_lines.iter().take(20) {
        let mut parts = line.split('\t');
        let (token, method, uri) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let status = check(token, method, uri)?;
        if status != 200 {
            return Err(format!(
                "sanity: /auth/check of a valid token for {method} {uri} answered {status}, not 200"
            ));
        }
    }
    for (what, token) in [("malformed", malformed), ("unknown", unknown)] {
        let status = check(token, "GET", "/Client/5")?;
        if status != 401 {
            return Err(format!(
                "sanity: /auth/check of a {what} token answered {status}, not 401"
            ));
        }
    }
    let (a, r) = &pre.sanity_pair;
    let body = json!({"accessToken": a, "refreshToken": r}).to_string();
    let (status, answer) = http(addr, "POST", "/V4/AccessToken/Renew", &[], Some(&body))?;
    let renewed = serde_json::from_str::<Value>(&answer).unwrap_or(Value::Null);
    if status != 200 || !renewed["refreshToken"].is_string() {
        return Err(format!("sanity: a renewal answered {status}"));
    }
    Ok(())
}

/// Logs the admin in over HTTP; the `Authtoken` value (`QSDK …`).
fn login(addr: &str, (name, password): &(String, String)) -> Result<String, String> {
    let body = json!({"username": name, "password": base64(password.as_bytes())}).to_string();
    let (status, answer) = http(addr, "POST", "/Login", &[], Some(&body))?;
    let v: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
    match (status, v["token"].as_str()) {
        (200, Some(t)) => {
            // Sanity for the creation case: one creation with this session.
            let (status, _) = http(
                addr,
                "POST",
                "/V4/AccessToken",
                &[("Authtoken", t)],
                Some(r#"{"tokenName":"bench-sanity","tokenType":2}"#),
            )?;
            if status != 200 {
                return Err(format!("sanity: a token creation answered {status}"));
            }
            Ok(t.to_string())
        }
        _ => Err(format!("the admin's login answered {status}")),
    }
}

/// Runs wrk once; its report.
fn wrk(url: &str, script: Option<&Path>, args: &[String], secs: u32) -> Result<String, String> {
    let mut c = Command::new("wrk");
    c.args([
        format!("-t{WRK_THREADS}"),
        format!("-c{WRK_CONNECTIONS}"),
        format!("-d{secs}s"),
        "--latency".into(),
    ]);
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    c.arg(url);
    if !args.is_empty() {
        c.arg("--").args(args);
    }
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

/// `/auth/check` with a random line of the file in args[1]
/// (`token \t method \t uri`); requests are formatted once, in `init`.
const CHECK_LUA: &str = r#"-- Written by `cargo xtask bench`: GET /auth/check, random line of args[1].
local reqs = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
function init(args)
  for line in io.lines(args[1]) do
    local tok, m, uri = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    if tok then
      reqs[#reqs + 1] = wrk.format("GET", "/auth/check", {
        ["Authorization"] = "Bearer " .. tok,
        ["X-Original-Method"] = m,
        ["X-Original-URI"] = uri,
      })
    end
  end
  math.randomseed(os.time() * 16 + (id or 0))
end
function request()
  return reqs[math.random(#reqs)]
end
"#;

/// Renewal: each thread keeps a queue of its own pairs (file args[1].ID.txt),
/// pops one per request and pushes back the pair the answer carries.
const RENEW_LUA: &str = r#"-- Written by `cargo xtask bench`: POST /V4/AccessToken/Renew.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
local queue, head, tail = {}, 1, 0
function init(args)
  for line in io.lines(args[1] .. "." .. id .. ".txt") do
    local a, r = line:match("^([^\t]+)\t([^\t]+)$")
    if a then
      tail = tail + 1
      queue[tail] = { a, r }
    end
  end
end
function request()
  local p = { "none", "none" }
  if head <= tail then
    p = queue[head]
    queue[head] = nil
    head = head + 1
  end
  return wrk.format("POST", "/V4/AccessToken/Renew", { ["Content-Type"] = "application/json" },
    '{"accessToken":"' .. p[1] .. '","refreshToken":"' .. p[2] .. '"}')
end
function response(status, headers, body)
  if status == 200 then
    local a = body:match('"accessToken"%s*:%s*"([^"]+)"')
    local r = body:match('"refreshToken"%s*:%s*"([^"]+)"')
    if a and r then
      tail = tail + 1
      queue[tail] = { a, r }
    end
  end
end
"#;

/// Creation: POST /V4/AccessToken with the admin's session (file args[1]).
const CREATE_LUA: &str = r#"-- Written by `cargo xtask bench`: POST /V4/AccessToken.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
local session
local n = 0
function init(args)
  local f = assert(io.open(args[1]))
  session = f:read("*l")
  f:close()
end
function request()
  n = n + 1
  return wrk.format("POST", "/V4/AccessToken", {
    ["Authtoken"] = session,
    ["Content-Type"] = "application/json",
  }, '{"tokenName":"bench-create-' .. (id or 0) .. '-' .. n .. '","tokenType":2}')
end
"#;

fn write_scripts(dir: &Path) -> Result<(), String> {
    for (name, text) in [
        ("check.lua", CHECK_LUA),
        ("renew.lua", RENEW_LUA),
        ("create.lua", CREATE_LUA),
    ] {
        let p = dir.join(name);
        fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_report() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.02ms  500.00us  20.00ms   90.00%\n    Req/Sec    30.00k     2.00k   35.00k    70.00%\n  Latency Distribution\n     50%  635.91us\n     75%  712.34us\n     90%    1.00ms\n     99%    2.43ms\n  600000 requests in 10.00s, 60.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 12\nRequests/sec:  60000.50\nTransfer/sec:      6.00MB\n";
        let f = parse_wrk(text).unwrap();
        assert_eq!(f.requests_per_sec, 60000.5);
        assert!((f.p50_us - 635.91).abs() < 1e-9);
        assert!((f.p99_us - 2430.0).abs() < 1e-9);
        assert_eq!(f.requests, 600000);
        assert_eq!(f.non_2xx, 12);
        assert_eq!(f.socket_errors, 5);
        assert!(parse_wrk("nonsense").is_err());
    }

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
