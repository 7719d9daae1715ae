//! Operations against a real `tessera` process: the store going down and
//! coming back (503, never 200; recovery without a restart), graceful
//! shutdown with a request in flight, first start, `user add`, store URLs,
//! JSON logs without secrets, `--help` without the environment's secrets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{signal, spawn};
use serde_json::json;

/// A private Redis on a free port, stopped and resumed with SIGSTOP/SIGCONT
/// (so the data survives the outage), killed when dropped.
#[cfg(feature = "redis")]
struct PrivateRedis {
    child: std::process::Child,
    port: u16,
}

#[cfg(feature = "redis")]
impl PrivateRedis {
    fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            tessera_core::testkit::skip("redis-server is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Ready when it accepts connections (bounded poll, not a fixed sleep).
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(PrivateRedis { child, port })
    }
}

#[cfg(feature = "redis")]
impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_goes_down_answers_503_then_recovers_by_itself() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let store = common::StoreFixture::external(format!("redis://127.0.0.1:{}", redis.port), vec![]);
    let s = spawn(
        &store,
        &[
            "--store-command-timeout",
            "1s",
            "--store-connect-timeout",
            "1s",
        ],
    );
    let admin = s.admin().await;
    let access = s.token(&admin, json!({"tokenName": "t"})).await.access;
    assert_eq!(s.check(&access, "GET", "/Job").await, 200);

    signal(redis.child.id(), "-STOP");
    // The check's cache may serve a record it holds for at most
    // --cache-staleness (100 ms) after the store stops answering: then its
    // heartbeat is late, and every check is 503, never 200.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = s.check(&access, "GET", "/Job").await;
        if status == 503 {
            break;
        }
        assert_eq!(status, 200, "before the bound passes: the cached allow");
        assert!(
            Instant::now() < deadline,
            "still allowed with the store down"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..3 {
        assert_eq!(
            s.check(&access, "GET", "/Job").await,
            503,
            "a check with the store down is 503, never 200"
        );
    }
    let a = s.list_tokens(&admin, None).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.json["errorCode"], 503, "a JSON error: {}", a.json);
    assert_eq!(s.ready().await, 503);
    assert_eq!(s.live().await, 200);
    // A malformed token needs no store: still refused as such.
    assert_eq!(s.check("tess_at_1_garbage", "GET", "/Job").await, 401);

    signal(redis.child.id(), "-CONT");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = s.check(&access, "GET", "/Job").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "while recovering: 503 only");
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.list_tokens(&admin, None).await.status, 200);
    let m = s.metrics_text().await;
    assert!(
        m.contains("tessera_checks_total{outcome=\"unavailable\"} 4"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish() {
    let store = common::sqlite();
    let mut s = spawn(&store, &[]);
    let admin = s.admin().await;
    // A request whose body is still arriving when SIGTERM comes.
    let addr = s.addr().to_string();
    let body = json!({"tokenName": "in flight"}).to_string();
    let mut conn = TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /V4/AccessToken HTTP/1.1\r\nHost: {addr}\r\nAuthtoken: {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body.as_bytes()[..5]).unwrap();
    conn.flush().unwrap();
    // Give the server a moment to read the head before the signal (nothing
    // it says shows that it has; the connection being open does not).
    std::thread::sleep(Duration::from_millis(200));
    signal(s.pid(), "-TERM");
    // The rest of the body once the shutdown has begun.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log_text().contains("shutting down") {
        assert!(Instant::now() < deadline, "no shutdown: {}", s.log_text());
        std::thread::sleep(Duration::from_millis(10));
    }
    conn.write_all(&body.as_bytes()[5..]).unwrap();
    let mut answer = String::new();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("in flight"));
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("the server exits after finishing");
    assert!(status.success(), "{status:?}");
    assert!(s.log_text().contains("shutting down"));
    // The listener is closed.
    assert!(TcpStream::connect(&addr).is_err());
}

/// `tessera serve` over `store` with no `TESSERA_ADMIN_PASSWORD` at all
/// (none set, none inherited): what a first start does by default.
fn start_without_admin_password(store: &common::StoreFixture) -> common::Server {
    common::Launch::new(common::binary(), store)
        .env_remove("TESSERA_ADMIN_PASSWORD")
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The passwords a log shows (`Password: …` lines).
fn passwords_in(log: &[String]) -> Vec<String> {
    log.iter()
        .filter_map(|l| l.trim().strip_prefix("Password: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_random_admin_password_once() {
    let store = common::sqlite();
    let first = start_without_admin_password(&store);
    let printed = passwords_in(&first.log_lines());
    assert_eq!(printed.len(), 1, "one password: {}", first.log_text());
    let password = printed[0].clone();
    assert!(password.len() >= 20, "{password:?}");
    assert!(
        first.log_text().contains("It is shown only this once"),
        "{}",
        first.log_text()
    );
    drop(first);
    // It works, and a second start (again without a password set) prints
    // nothing new and keeps the admin as it is.
    let s = start_without_admin_password(&store);
    s.login("admin", &password).await;
    let log = s.log_text();
    assert!(passwords_in(&s.log_lines()).is_empty(), "{log}");
    assert!(!log.contains("First start"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_reads_the_password_from_stdin_or_the_environment() {
    let store = common::sqlite();
    drop(spawn(&store, &[])); // creates the store and the admin
    let mut child = Command::new(common::binary())
        .args(["user", "add", "carol", "--store", &store.url])
        .env_remove("TESSERA_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"carol-pw\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(common::binary())
        .args(["user", "add", "dave", "--admin", "--store", &store.url])
        .env("TESSERA_PASSWORD", "dave-pw")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No password at all: refused, never a default.
    let out = Command::new(common::binary())
        .args(["user", "add", "erin", "--store", &store.url])
        .env_remove("TESSERA_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let s = spawn(&store, &[]);
    s.login("carol", "carol-pw").await;
    let dave = s.login("dave", "dave-pw").await;
    assert_eq!(s.list_users(&dave).await.status, 200, "dave is an admin");
    let names = s.user_names(&dave).await;
    assert!(!names.iter().any(|n| n == "erin"), "{names:?}");
}

/// Starts `binary serve` on `url` and waits (bounded) for it to refuse;
/// what it wrote to standard error. Panics if it does not exit (it serves
/// instead) or exits successfully.
fn refused_start(binary: &str, url: &str) -> String {
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--store", url])
        .env_remove("TESSERA_ADMIN_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = common::process::wait_or_kill(&mut child, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{binary} serve --store {url} did not refuse to start"));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "{binary} --store {url}: {err}");
    err
}

/// A server built without a backend whose feature `compiled_here` says
/// whether this test's own binary has: this one if it lacks it, else the
/// default-features build `TESSERA_TEST_DEFAULT_FEATURES_BINARY` names
/// (`.ci/run` builds it); `None` (SKIPPED, a failure under CI) without one.
fn binary_without(feature: &str, compiled_here: bool) -> Option<String> {
    if !compiled_here {
        return Some(common::binary());
    }
    match std::env::var("TESSERA_TEST_DEFAULT_FEATURES_BINARY") {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            tessera_core::testkit::skip(&format!(
                "a store URL of a backend not compiled in ({feature}): this test's tessera has \
                 every backend; set TESSERA_TEST_DEFAULT_FEATURES_BINARY to a \
                 `cargo build -p tessera-server` binary (.ci/run does)"
            ));
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_urls_are_checked_at_start() {
    let err = refused_start(&common::binary(), "mysql://localhost/x");
    assert!(err.contains("unknown store URL"), "{err}");
    if let Some(bin) = binary_without("redis", cfg!(feature = "redis")) {
        let err = refused_start(&bin, "redis://127.0.0.1:6379");
        assert!(err.contains("--features redis"), "{err}");
    }
    if let Some(bin) = binary_without("postgres", cfg!(feature = "postgres")) {
        let err = refused_start(&bin, "postgres://u:hunter2@127.0.0.1/x");
        assert!(
            err.contains("--features postgres") && !err.contains("hunter2"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_and_no_secret() {
    let store = common::sqlite();
    let s = spawn(&store, &["--log-format", "json"]);
    let admin = s.admin().await;
    let t = s.token(&admin, json!({"tokenName": "t"})).await;
    let (access, refresh) = (t.access, t.refresh.expect("refreshable"));
    s.check(&access, "GET", "/Job?token=abc").await;
    s.renew(&access, &refresh).await;
    // Give the log thread a moment to read what was written (bounded poll).
    let deadline = Instant::now() + Duration::from_secs(5);
    let requests = loop {
        let lines: Vec<serde_json::Value> = s
            .log_lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &serde_json::Value| v["fields"]["message"] == "request")
            .collect();
        if lines.len() >= 4 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(requests.len(), 4, "login, create, check, renew");
    for r in &requests {
        assert!(
            r["fields"]["status"].is_u64() && r["fields"]["latency_us"].is_u64(),
            "{r}"
        );
    }
    let log = s.log_text();
    let session = admin.trim_start_matches("QSDK ");
    for secret in [
        access.as_str(),
        refresh.as_str(),
        session,
        common::ADMIN_PASSWORD,
    ] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

#[test]
fn help_never_shows_the_secrets_the_environment_holds() {
    // A service's environment file sets these; `--help` run beside it (or
    // pasted into an issue) must not print them.
    let secrets = [
        (
            "TESSERA_STORE",
            "postgres://tessera:hunter2-store@db/tessera",
        ),
        (
            "TESSERA_WEBHOOKS",
            "https://hooks.example/t#secret=hunter2-hook",
        ),
        ("TESSERA_WEBHOOK_SECRET", "hunter2-signing-secret"),
    ];
    for args in [
        &["serve", "--help"][..],
        &["user", "add", "--help"],
        &["user", "passwd", "--help"],
        &["import-legacy", "--help"],
    ] {
        let mut c = Command::new(common::binary());
        c.args(args);
        for (k, v) in secrets {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(text.contains("TESSERA_STORE"), "{args:?}: {text}");
        assert!(!text.contains("hunter2"), "{args:?} shows a secret: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_is_told_when_the_server_is_ready_and_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    // What systemd does for a Type=notify service: a datagram socket named
    // in NOTIFY_SOCKET.
    let dir = common::TempDir::new("tessera-notify");
    let path = dir.join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let next = || {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let store = common::sqlite();
    let mut s = common::launch(&store)
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .start()
        .unwrap();
    let ready = next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.contains(&format!("STATUS=listening on http://{}", s.addr())),
        "{ready:?}"
    );
    // Ready means ready: the first request after it is answered.
    assert_eq!(s.ready().await, 200);
    signal(s.pid(), "-TERM");
    let stopping = next();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}
