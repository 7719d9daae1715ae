//! Faults that must never take `tessera` down or make it lie (issue 10):
//! the SQLite file shrunk or corrupted under load, a PostgreSQL table
//! locked, SIGTERM under keep-alive load with logins hashing, half-sent
//! request heads and thousands of silent connections. Each against a real
//! process; every wait is a deadline poll.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{signal, spawn, Server};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits (polling `/metrics`, at most `within`) until the server has
/// allowed `n` checks.
async fn allowed_checks_reach(s: &Server, n: u64, within: Duration) {
    let start = Instant::now();
    loop {
        let allowed = s
            .metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix("tessera_checks_total{outcome=\"allowed\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if allowed >= n {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{allowed} checks allowed after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `/health/ready` until it answers `want`, for at most `within`;
/// the time it took.
async fn ready_becomes(s: &Server, want: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = s.ready().await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "/health/ready still {got} after {within:?}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates `n` All tokens; their access secrets.
async fn tokens(s: &Server, admin: &str, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = s
            .token(admin, json!({"tokenName": format!("t{i}"), "tokenType": 2}))
            .await;
        out.push(t.access);
    }
    out
}

/// Checks in a loop on `workers` tasks until `stop`; every status seen.
fn check_load(
    s: &Server,
    tokens: Arc<Vec<String>>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<HashMap<u16, usize>>> {
    (0..workers)
        .map(|w| {
            let (http, url) = (s.http.clone(), s.url("/auth/check"));
            let (tokens, stop) = (tokens.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = HashMap::new();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let t = &tokens[i % tokens.len()];
                    i += workers;
                    let r = http
                        .get(&url)
                        .bearer_auth(t)
                        .header("X-Original-Method", "GET")
                        .header("X-Original-URI", "/Job/1")
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                    *seen.entry(status).or_insert(0) += 1;
                }
                seen
            })
        })
        .collect()
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<HashMap<u16, usize>>>) -> HashMap<u16, usize> {
    let mut all = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            *all.entry(k).or_insert(0) += v;
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_shrunk_under_load_answers_503_and_the_process_lives() {
    let store = common::sqlite();
    let mut s = spawn(&store, &["--ready-timeout", "300ms"]);
    let admin = s.admin().await;
    let toks = Arc::new(tokens(&s, &admin, 300).await);
    let stop = Arc::new(AtomicBool::new(false));
    let load = check_load(&s, toks.clone(), 4, stop.clone());
    // Checks flow; then the file shrinks under the readers.
    allowed_checks_reach(&s, 100, Duration::from_secs(10)).await;
    // The database shrinks to its first page, and its write-ahead log (where
    // the pages written since the last checkpoint live) to nothing.
    let path = store.sqlite_file().unwrap();
    for (file, len) in [
        (path.clone(), 4096),
        (PathBuf::from(format!("{}-wal", path.display())), 0),
    ] {
        let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        f.set_len(len).unwrap();
    }
    // Every check from here on reads pages that are gone: 503s, no crash.
    let took = ready_becomes(&s, 503, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let st = s.check(&toks[0], "GET", "/Job/1").await;
        if st == 503 {
            break;
        }
        assert!(st == 200, "a check on a damaged store answered {st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = collect(load).await;
    println!("statuses under the shrunk file: {seen:?}; not ready after {took:?}");
    assert!(
        s.wait_exit(Duration::from_millis(1)).is_none(),
        "tessera died: {}",
        s.log_text()
    );
    assert_eq!(s.live().await, 200);
    assert!(seen.get(&503).is_some_and(|n| *n > 0), "{seen:?}");
    assert!(
        seen.keys().all(|k| *k == 200 || *k == 503),
        "only 200 (before) and 503: {seen:?}"
    );
    // Once the load has stopped, every token again: 503, or 200 for a
    // token the node's SQLite connections can still answer from memory
    // (the file as last committed: SQLite drops what it holds when the
    // write-ahead log's index moves, on any commit, which the change stream
    // hears too). Seen here: in about one run of three, 54 to 89 of the 300
    // tokens (those one load worker had checked) answered 200 with
    // `tessera_cache_hits_total` at 0, so from SQLite, not from the node's
    // cache. The earlier form of this line, one token that must answer
    // 503, failed whenever that token was among them.
    let mut after = HashMap::new();
    for t in toks.iter() {
        *after.entry(s.check(t, "GET", "/Job/1").await).or_insert(0) += 1;
    }
    println!("every token once more: {after:?}");
    assert!(after.get(&503).is_some_and(|n| *n > 0), "{after:?}");
    assert!(
        after.keys().all(|k| *k == 200 || *k == 503),
        "only 200 and 503: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_false_within_a_second_of_a_corrupted_sqlite_file() {
    let store = common::sqlite();
    let s = spawn(&store, &["--ready-timeout", "300ms"]);
    let admin = s.admin().await;
    let toks = tokens(&s, &admin, 50).await;
    assert_eq!(s.ready().await, 200);
    assert_eq!(s.check(&toks[0], "GET", "/Job/1").await, 200);
    // Overwrite the database's files (the main file and its write-ahead
    // log, where recent pages live) with garbage, keeping their sizes.
    let path = store.sqlite_file().unwrap();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    for f in [&path, &wal] {
        let len = std::fs::metadata(f).unwrap().len() as usize;
        std::fs::write(f, vec![0xA5u8; len]).unwrap();
    }
    let took = ready_becomes(&s, 503, Duration::from_secs(1)).await;
    println!("not ready {took:?} after the corruption");
    // What readiness says is what checks meet.
    assert_eq!(s.check(&toks[0], "GET", "/Job/1").await, 503);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_false_within_a_second_of_a_locked_postgres_table() {
    use sqlx::Connection;
    let Some(store) = common::postgres().await else {
        return;
    };
    let s = spawn(&store, &["--ready-timeout", "300ms"]);
    let admin = s.admin().await;
    let toks = tokens(&s, &admin, 3).await;
    assert_eq!(s.ready().await, 200);
    let mut conn = sqlx::PgConnection::connect(&store.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")
        .execute(&mut conn)
        .await
        .unwrap();
    let took = ready_becomes(&s, 503, Duration::from_secs(1)).await;
    println!("not ready {took:?} after the lock");
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    ready_becomes(&s, 200, Duration::from_secs(10)).await;
    assert_eq!(s.check(&toks[0], "GET", "/Job/1").await, 200);
}

/// One request on a keep-alive connection: when its last byte was written,
/// and whether a whole answer came back.
#[derive(Debug, Clone)]
struct Sent {
    written: Instant,
    answered: Option<u16>,
}

/// Writes `request` and reads one answer (head and `Content-Length` body).
async fn exchange(conn: &mut TcpStream, request: &[u8], log: &Mutex<Vec<Sent>>) -> Option<bool> {
    conn.write_all(request).await.ok()?;
    let written = Instant::now();
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Sent {
            written,
            answered: None,
        });
        log.len() - 1
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    log.lock().unwrap()[index].answered = Some(status);
    Some(head.contains("connection: close"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_every_request_written_before_it() {
    let store = common::sqlite();
    let mut s = spawn(&store, &["--login-max-failures", "1000000"]);
    let admin = s.admin().await;
    let token = s
        .token(&admin, json!({"tokenName": "t", "tokenType": 2}))
        .await
        .access;
    let addr = s.addr().to_string();
    let check = format!(
        "GET /auth/check HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
         X-Original-Method: GET\r\nX-Original-URI: /Job/1\r\n\r\n"
    );
    let body = json!({"username": "admin", "password": "d3Jvbmc="}).to_string();
    let login = format!(
        "POST /Login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    // 12 keep-alive connections checking, 4 logging in (Argon2 busy).
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let request = if i < 12 { check.clone() } else { login.clone() };
            let (addr, log) = (addr.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(mut conn) = TcpStream::connect(&addr).await else {
                    return;
                };
                // Until the server closes the connection.
                while let Some(false) = exchange(&mut conn, request.as_bytes(), &log).await {}
            })
        })
        .collect();
    // Let the load run, then the signal.
    let deadline = Instant::now() + Duration::from_secs(10);
    while log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.answered.is_some())
        .count()
        < 500
    {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let signalled = Instant::now();
    signal(s.pid(), "-TERM");
    let status = s
        .wait_exit(Duration::from_secs(15))
        .expect("tessera exits within its grace");
    assert!(status.success(), "{status:?}");
    for c in clients {
        let _ = c.await;
    }
    let log = log.lock().unwrap();
    let before: Vec<&Sent> = log.iter().filter(|r| r.written < signalled).collect();
    let lost: Vec<&&Sent> = before.iter().filter(|r| r.answered.is_none()).collect();
    println!(
        "{} requests written before SIGTERM, {} after; lost before: {}",
        before.len(),
        log.len() - before.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} requests written before SIGTERM got no answer",
        lost.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_connections_neither_starve_checks_nor_block_shutdown() {
    let store = common::sqlite();
    let mut s = spawn(
        &store,
        &[
            "--header-read-timeout",
            "1s",
            "--idle-timeout",
            "2s",
            "--max-connections",
            "300",
            "--shutdown-grace",
            "3s",
        ],
    );
    let admin = s.admin().await;
    let token = s
        .token(&admin, json!({"tokenName": "t", "tokenType": 2}))
        .await
        .access;
    let addr = s.addr().to_string();
    // One half-sent request head, then 2,000 connections that say nothing.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = Vec::new();
    for _ in 0..2000 {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }
    // A fresh check still answers (the longest-idle connections make room).
    let fresh = reqwest::Client::new();
    let r = fresh
        .get(s.url("/auth/check"))
        .bearer_auth(&token)
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/Job/1")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("a check answers beside 2,000 silent connections");
    assert_eq!(r.status(), 200);
    // The half-sent head and the silent ones are closed by the server.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), half.read(&mut buf))
        .await
        .expect("the half-sent head was closed by the server")
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    for c in silent.iter_mut().step_by(97) {
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("a silent connection was closed by the server")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    let m = s.metrics_text().await;
    println!(
        "{}",
        m.lines()
            .filter(|l| l.contains("connections"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Another half-sent head, then SIGTERM: out within the grace.
    let mut again = TcpStream::connect(&addr).await.unwrap();
    again
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let signalled = Instant::now();
    signal(s.pid(), "-TERM");
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("tessera exits despite a half-sent head");
    assert!(status.success(), "{status:?}");
    println!("exited {:?} after SIGTERM", signalled.elapsed());
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_displace_their_own_kind_not_a_proxys() {
    let store = common::sqlite();
    let s = spawn(&store, &["--max-connections", "50"]);
    let addr = s.addr().to_string();
    let log = Mutex::new(Vec::new());
    let live = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    // A proxy's keep-alive connection that has served a request, then idles.
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(exchange(&mut kept, live, &log).await, Some(false));
    // 200 silent connections arrive, four times the bound.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }
    // A fresh connection is admitted, and the proxy's still answers.
    let mut fresh = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(exchange(&mut fresh, live, &log).await, Some(false));
    assert_eq!(
        exchange(&mut kept, live, &log).await,
        Some(false),
        "the keep-alive connection was closed to make room for silent ones"
    );
    drop(silent);
}

/// Reads until the server closes `conn`, at most `within`; what it sent.
async fn until_closed(conn: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_may_idle_a_stalled_request_may_not() {
    let store = common::sqlite();
    let s = spawn(
        &store,
        &["--header-read-timeout", "1s", "--idle-timeout", "4s"],
    );
    let admin = s.admin().await;
    let addr = s.addr().to_string();
    let log = Mutex::new(Vec::new());
    let live = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    // A proxy's keep-alive connection: idle longer than the header-read
    // timeout, it is still there (nothing of a request has arrived).
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(exchange(&mut kept, live, &log).await, Some(false));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        exchange(&mut kept, live, &log).await,
        Some(false),
        "a keep-alive connection was closed after the header-read timeout"
    );
    // A head begun and not finished: closed after the header-read timeout,
    // long before the idle timeout.
    let started = Instant::now();
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /health/live HTTP/1.1\r\nHo")
        .await
        .unwrap();
    until_closed(&mut half, Duration::from_secs(3))
        .await
        .expect("a half-sent head was closed within the header-read timeout");
    println!("half-sent head closed after {:?}", started.elapsed());
    // A body that stops arriving: 408, within the same bound.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /V4/AccessToken HTTP/1.1\r\nHost: x\r\nAuthtoken: {admin}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"tokenName\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = until_closed(&mut slow, Duration::from_secs(3))
        .await
        .expect("a stalled body was answered within the header-read timeout");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A connection on which nothing ever arrives: closed at the idle timeout.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    until_closed(&mut silent, Duration::from_secs(8))
        .await
        .expect("a silent connection was closed at the idle timeout");
}
