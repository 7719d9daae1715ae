//! Operations against a real `tessera` process: the store going down and
//! coming back (503, never 200; recovery without a restart), graceful
//! shutdown with a request in flight, first start, `user add`, store URLs,
//! JSON logs without secrets.

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
    let created = s
        .call(
            "POST",
            "/V4/AccessToken",
            &[("Authtoken", &admin)],
            Some(json!({"tokenName": "t"})),
        )
        .await;
    let access = created.json["tokenInfo"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.check(&access, "GET", "/Job").await, 200);

    signal(redis.child.id(), "-STOP");
    for _ in 0..3 {
        assert_eq!(
            s.check(&access, "GET", "/Job").await,
            503,
            "a check with the store down is 503, never 200"
        );
    }
    let a = s
        .call("GET", "/V4/AccessToken", &[("Authtoken", &admin)], None)
        .await;
    assert_eq!(a.status, 503);
    assert_eq!(a.json["errorCode"], 503, "a JSON error: {}", a.json);
    assert_eq!(s.call("GET", "/health/ready", &[], None).await.status, 503);
    assert_eq!(s.call("GET", "/health/live", &[], None).await.status, 200);
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
    assert_eq!(
        s.call("GET", "/V4/AccessToken", &[("Authtoken", &admin)], None)
            .await
            .status,
        200
    );
    let m = s.metrics_text().await;
    assert!(
        m.contains("tessera_checks_total{outcome=\"unavailable\"} 3"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish() {
    let store = common::sqlite();
    let mut s = spawn(&store, &[]);
    let admin = s.admin().await;
    // A request whose body is still arriving when SIGTERM comes.
    let addr = s.base.trim_start_matches("http://").to_string();
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
    // Make sure the server has the request before the signal.
    std::thread::sleep(Duration::from_millis(200));
    signal(s.pid(), "-TERM");
    std::thread::sleep(Duration::from_millis(200));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_random_admin_password_once() {
    let store = common::sqlite();
    let mut cmd = Command::new(common::binary());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", &store.url])
        .env_remove("TESSERA_ADMIN_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut password = None;
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    use std::io::BufRead;
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(p) = line.trim().strip_prefix("Password: ") {
            password = Some(p.to_string());
        }
        if line.starts_with("tessera listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let password = password.expect("a password was printed");
    assert!(password.len() >= 20);
    // It works, and a second start prints nothing new.
    let s = spawn(&store, &[]);
    s.login("admin", &password).await;
    assert!(!s.log_text().contains("Password:"));
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
    let users = s
        .call("GET", "/V4/User", &[("Authtoken", &dave)], None)
        .await;
    assert_eq!(users.status, 200, "dave is an admin");
    let names: Vec<_> = users.json["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].clone())
        .collect();
    assert!(!names.contains(&json!("erin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_urls_are_checked_at_start() {
    let out = Command::new(common::binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "mysql://localhost/x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown store URL"));
    #[cfg(not(feature = "redis"))]
    {
        let out = Command::new(common::binary())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--store",
                "redis://127.0.0.1:6379",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--features redis"));
    }
    #[cfg(not(feature = "postgres"))]
    {
        let out = Command::new(common::binary())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--store",
                "postgres://u:hunter2@127.0.0.1/x",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
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
    let created = s
        .call(
            "POST",
            "/V4/AccessToken",
            &[("Authtoken", &admin)],
            Some(json!({"tokenName": "t"})),
        )
        .await;
    let access = created.json["tokenInfo"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = created.json["tokenInfo"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    s.check(&access, "GET", "/Job?token=abc").await;
    s.call(
        "POST",
        "/V4/AccessToken/Renew",
        &[],
        Some(json!({"accessToken": access, "refreshToken": refresh})),
    )
    .await;
    // Give the log thread a moment to read what was written (bounded poll).
    let deadline = Instant::now() + Duration::from_secs(5);
    let requests = loop {
        let lines: Vec<serde_json::Value> = s
            .log
            .lock()
            .unwrap()
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
