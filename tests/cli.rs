//! The terminal client (issue 15): `tessera login`, `logout` and `token
//! create|list|renew|revoke`, run as the real binary against a real server
//! on a random port, each run with a fresh `XDG_CONFIG_HOME` and `HOME`.
//! What the commands did is checked against the server with the typed
//! client (the check, whoami), never only by what they print.

mod common;

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Server, TempDir, ADMIN_PASSWORD};
use serde_json::Value;

/// What a run of `tessera` did.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts success; the standard output as JSON.
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// A person at a terminal: their own configuration and home directories.
struct User {
    dir: TempDir,
}

impl User {
    fn new() -> User {
        User {
            dir: TempDir::new("tessera-cli"),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("config")
    }

    fn session_path(&self) -> PathBuf {
        self.config().join("tessera").join("session.json")
    }

    /// The `Authtoken` the session file holds.
    fn session_token(&self) -> String {
        let text = std::fs::read_to_string(self.session_path()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    /// Runs `tessera args` with `stdin` as its standard input.
    fn run(&self, args: &[&str], stdin: &str) -> Out {
        self.run_env(args, stdin, &[], &[])
    }

    /// [`User::run`] with variables set and removed.
    fn run_env(&self, args: &[&str], stdin: &str, set: &[(&str, &str)], unset: &[&str]) -> Out {
        let mut c = Command::new(common::binary());
        c.args(args)
            .env("XDG_CONFIG_HOME", self.config())
            .env("HOME", self.dir.join("home"))
            .env_remove("TESSERA_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in set {
            c.env(k, v);
        }
        for k in unset {
            c.env_remove(k);
        }
        let mut child = c.spawn().unwrap();
        // A command that reads nothing may exit first: a broken pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Logs in as the admin; panics unless it worked.
    fn login_admin(&self, s: &Server) {
        let out = self.run(
            &["login", &s.base, "--username", "admin", "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        );
        assert_eq!(out.code, 0, "{out:?}");
    }

    /// `token create … --json`: the object printed.
    fn create(&self, args: &[&str]) -> Value {
        let mut all = vec!["token", "create", "--json"];
        all.extend_from_slice(args);
        self.run(&all, "").json()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A server on a fresh SQLite store (kept as long as the server runs).
fn server() -> (common::StoreFixture, Server) {
    let store = common::sqlite();
    let s = common::spawn(&store, &[]);
    (store, s)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Writes `text` to a new file with `mode`.
fn write_with_mode(path: &Path, text: &str, mode: u32) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_keeps_a_private_session_and_a_wrong_password_keeps_none() {
    let (_store, s) = server();
    let u = User::new();
    // A wrong password: the server's own message, exit 1, nothing kept.
    let out = u.run(
        &["login", &s.base, "-u", "admin", "--password-stdin"],
        "not-the-password\n",
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr.trim(),
        "tessera: Invalid user name or password.",
        "{out:?}"
    );
    assert!(!u.session_path().exists());
    // --password-stdin without --username is a usage error (clap's).
    let out = u.run(&["login", &s.base, "--password-stdin"], "x\n");
    assert_eq!(out.code, 2, "{out:?}");
    // Not a URL: a usage error too.
    let out = u.run(&["login", "localhost:8080"], "");
    assert_eq!(out.code, 2, "{out:?}");

    // A trailing slash is dropped.
    let out = u.run(
        &[
            "login",
            &format!("{}/", s.base),
            "-u",
            "admin",
            "--password-stdin",
        ],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stderr.trim(),
        format!("Logged in to {} as admin.", s.base),
        "a loopback http URL gets no warning: {out:?}"
    );
    let path = u.session_path();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(ADMIN_PASSWORD), "{text}");
    assert!(!text.contains(&common::base64(ADMIN_PASSWORD)), "{text}");
    let kept: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(str_of(&kept, "server"), s.base);
    assert_eq!(str_of(&kept, "username"), "admin");
    let token = u.session_token();
    assert!(token.starts_with("QSDK tess_ss_"), "{token}");
    assert_eq!(s.whoami(&token).await.status, 200);
    // No temporary file left beside it.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["session.json"]);

    // Without XDG_CONFIG_HOME: $HOME/.config.
    let out = u.run_env(
        &["login", &s.base, "-u", "admin", "--password-stdin"],
        &format!("{ADMIN_PASSWORD}\n"),
        &[],
        &["XDG_CONFIG_HOME"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let home_session = u.dir.join("home/.config/tessera/session.json");
    assert_eq!(mode(&home_session), 0o600);
    // Neither: a clear error, before any password is sent.
    let out = u.run_env(
        &["login", &s.base, "-u", "admin", "--password-stdin"],
        &format!("{ADMIN_PASSWORD}\n"),
        &[],
        &["XDG_CONFIG_HOME", "HOME"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("set XDG_CONFIG_HOME or HOME"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_makes_every_scope_as_asked() {
    let (_store, s) = server();
    let u = User::new();
    u.login_admin(&s);

    // All: anything, renewable.
    let all = u.create(&["--name", "everything", "--scope", "all"]);
    assert_eq!(all["tokenType"], 2);
    assert_eq!(str_of(&all, "server"), s.base);
    assert!(str_of(&all, "refreshToken").starts_with("tess_rt_"));
    let access = str_of(&all, "accessToken");
    assert_eq!(s.check(access, "DELETE", "/Client/5").await, 200);
    assert_eq!(s.check(access, "GET", "/V4/Hyperscale/x").await, 200);

    // SCIM: the SCIM paths only, a fixed expiry (RFC 3339), no refresh token.
    let in_ten_days = SystemTime::now() + Duration::from_secs(10 * 86_400);
    let stamp = humantime::format_rfc3339_seconds(in_ten_days).to_string();
    let scim = u.create(&[
        "--name",
        "directory",
        "--scope",
        "scim",
        "--expires",
        &stamp,
    ]);
    assert_eq!(scim["tokenType"], 1);
    let secs = in_ten_days.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(scim["tokenExpiryTimestamp"], secs);
    assert!(scim.get("refreshToken").is_none(), "{scim}");
    let access = str_of(&scim, "accessToken");
    assert_eq!(s.check(access, "GET", "/scim/v2/Users").await, 200);
    assert_eq!(s.check(access, "GET", "/Client/5").await, 403);

    // 1-Touch: its paths only.
    let one = u.create(&["--name", "recovery", "--scope", "one-touch"]);
    assert_eq!(one["tokenType"], 4);
    let access = str_of(&one, "accessToken");
    assert_eq!(s.check(access, "GET", "/Client/5").await, 200);
    assert_eq!(s.check(access, "GET", "/Job/1").await, 403);

    // Custom: its own entries and addresses.
    let custom = u.create(&[
        "--name",
        "ci",
        "--scope",
        "custom",
        "--endpoint",
        "GET /Client",
        "--endpoint",
        "/Job",
        "--allowed-ip",
        "127.0.0.0/8",
    ]);
    assert_eq!(custom["tokenType"], 3);
    assert_eq!(
        custom["apiEndpoints"],
        serde_json::json!(["GET /Client", "/Job"])
    );
    assert_eq!(custom["allowedIPs"], serde_json::json!(["127.0.0.0/8"]));
    let access = str_of(&custom, "accessToken");
    assert_eq!(s.check(access, "GET", "/Client/5").await, 200);
    assert_eq!(s.check(access, "DELETE", "/Client/5").await, 403);
    assert_eq!(s.check(access, "POST", "/Job/7").await, 200);
    // An address list that leaves this machine out: refused here.
    let elsewhere = u.create(&[
        "--name",
        "elsewhere",
        "--scope",
        "custom",
        "--endpoint",
        "GET /Client",
        "--allowed-ip",
        "10.0.0.0/8",
    ]);
    let access = str_of(&elsewhere, "accessToken");
    assert_eq!(s.check(access, "GET", "/Client/5").await, 403);

    // Hyperscale: its prefix only.
    let hs = u.create(&["--name", "hs", "--scope", "hyperscale"]);
    assert_eq!(hs["tokenType"], 5);
    let access = str_of(&hs, "accessToken");
    assert_eq!(s.check(access, "GET", "/V4/Hyperscale/nodes").await, 200);
    assert_eq!(s.check(access, "GET", "/Client/5").await, 403);

    // --renewable-until as a plain day: midnight UTC.
    let day = &stamp[..10];
    let renewable = u.create(&[
        "--name",
        "until",
        "--scope",
        "all",
        "--renewable-until",
        day,
    ]);
    let midnight = secs - secs % 86_400;
    assert_eq!(renewable["renewableUntilTimestamp"], midnight);

    // For a person: what the token is, its secrets, the warning.
    let out = u.run(
        &[
            "token",
            "create",
            "--name",
            "person",
            "--scope",
            "custom",
            "--endpoint",
            "GET /Client",
        ],
        "",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("\"person\" (Custom) for admin"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Access token:  tess_at_"), "{out:?}");
    assert!(out.stdout.contains("Refresh token: tess_rt_"), "{out:?}");
    assert!(out.stderr.contains("shown only this once"), "{out:?}");
    let access = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Access token:  "))
        .unwrap();
    assert_eq!(s.check(access, "GET", "/Client/1").await, 200);

    // The server's refusals: its message, exit 1; a bad date is usage.
    let out = u.run(&["token", "create", "--name", " ", "--scope", "all"], "");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.starts_with("tessera: tokenName: "), "{out:?}");
    let out = u.run(
        &[
            "token",
            "create",
            "--name",
            "x",
            "--scope",
            "all",
            "--expires",
            "31/01/2027",
        ],
        "",
    );
    assert_eq!(out.code, 2, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_a_table_json_and_another_users_tokens() {
    let (_store, s) = server();
    let u = User::new();
    u.login_admin(&s);
    let admin = s.admin().await;
    let (alice_id, alice) = s.person(&admin, "alice", "user").await;
    let hers = s
        .token(
            &alice,
            serde_json::json!({"tokenName": "for-alice", "tokenType": 2}),
        )
        .await;
    // Created for another user: a service account the admin owns.
    let robot_id = s.service_account(&admin, "robot").await;
    let its = u.create(&["--name", "for-robot", "--scope", "all", "--user", "robot"]);
    assert_eq!(its["userId"], robot_id);
    assert_eq!(its["userName"], "robot");
    u.create(&["--name", "mine-one", "--scope", "all"]);
    u.create(&["--name", "mine-two", "--scope", "scim"]);
    // A person's: the server's refusal, exit 1.
    let out = u.run(
        &[
            "token", "create", "--name", "x", "--scope", "all", "--user", "alice",
        ],
        "",
    );
    assert_eq!(out.code, 1, "{out:?}");

    let out = u.run(&["token", "list"], "");
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(lines[0].starts_with("ID  NAME "), "{out:?}");
    assert!(lines[0].contains("RENEWABLE UNTIL"), "{out:?}");
    assert!(out.stdout.contains("mine-one") && out.stdout.contains("mine-two"));
    assert!(!out.stdout.contains("for-alice") && !out.stdout.contains("for-robot"));
    // Columns line up: each name starts where the header's NAME does.
    let at = lines[0].find("NAME").unwrap();
    assert!(
        lines[1..].iter().all(|l| l[at..].starts_with("mine-")),
        "{out:?}"
    );

    let listed = u.run(&["token", "list", "--json"], "").json();
    let names: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| str_of(t, "tokenName"))
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(names.contains(&"mine-one") && names.contains(&"mine-two"));

    let theirs = u
        .run(&["token", "list", "--user", "alice", "--json"], "")
        .json();
    let tokens = theirs["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{theirs}");
    assert_eq!(tokens[0]["tokenId"], hers.id);
    assert_eq!(tokens[0]["userId"], alice_id);
    let its_list = u
        .run(&["token", "list", "--user", "robot", "--json"], "")
        .json();
    assert_eq!(its_list["tokens"][0]["tokenName"], "for-robot");
    let out = u.run(&["token", "list", "--user", "nobody"], "");
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("no user named \"nobody\""), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_rotates_the_pair_in_a_file_and_through_stdin() {
    let (_store, s) = server();
    let u = User::new();
    u.login_admin(&s);

    // In a file, as a shell's `>` leaves it (0644): rewritten 0600.
    let out = u.run(
        &[
            "token", "create", "--name", "ci", "--scope", "all", "--json",
        ],
        "",
    );
    let old: Value = out.json();
    let file = u.dir.join("pair.json");
    write_with_mode(&file, &out.stdout, 0o644);
    let out = u.run(&["token", "renew", "--file", file.to_str().unwrap()], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.is_empty(), "no secret printed: {out:?}");
    assert_eq!(mode(&file), 0o600);
    let new: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for key in ["accessToken", "refreshToken"] {
        assert_ne!(new[key], old[key], "{key} rotated");
    }
    assert_eq!(new["tokenId"], old["tokenId"]);
    assert_eq!(new["tokenName"], "ci", "the document keeps its shape");
    assert_eq!(
        s.check(str_of(&new, "accessToken"), "GET", "/Client").await,
        200
    );
    assert_eq!(
        s.check(str_of(&old, "accessToken"), "GET", "/Client").await,
        401
    );
    // And again from the file, 0600 now (no warning).
    let out = u.run(&["token", "renew", "-f", file.to_str().unwrap()], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("warning"), "{out:?}");
    let newer: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        s.check(str_of(&newer, "accessToken"), "GET", "/Client")
            .await,
        200
    );
    // The old pair again: refused (and, by reuse detection, the token ends).
    let stale =
        serde_json::json!({"accessToken": old["accessToken"], "refreshToken": old["refreshToken"]});
    let out = u.run(&["token", "renew"], &stale.to_string());
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.starts_with("tessera: "), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        s.check(str_of(&newer, "accessToken"), "GET", "/Client")
            .await,
        401
    );

    // Standard input to standard output, in the create answer's own shape
    // (`tokenInfo`), with no server in it: the session's.
    let admin = s.admin().await;
    let t = s
        .token(&admin, serde_json::json!({"tokenName": "piped", "tokenType": 3, "apiEndpoints": ["GET /Client"]}))
        .await;
    let wrapped = serde_json::json!({"tokenInfo": t.info});
    let out = u.run(&["token", "renew"], &wrapped.to_string());
    let renewed = out.json();
    let access = str_of(&renewed["tokenInfo"], "accessToken");
    assert_ne!(access, t.access);
    assert_eq!(s.check(access, "GET", "/Client").await, 200);
    assert_eq!(s.check(&t.access, "GET", "/Client").await, 401);
    // Renewed again from what it printed, with no session: TESSERA_URL.
    std::fs::remove_file(u.session_path()).unwrap();
    let out = u.run(&["token", "renew"], &out.stdout);
    assert_eq!(out.code, 2, "no server to ask: {out:?}");
    assert!(out.stderr.contains("--server"), "{out:?}");
    let before = renewed.to_string();
    let out = u.run_env(
        &["token", "renew"],
        &before,
        &[("TESSERA_URL", &s.base)],
        &[],
    );
    let again = out.json();
    assert_eq!(
        s.check(str_of(&again["tokenInfo"], "accessToken"), "GET", "/Client")
            .await,
        200
    );

    // Input that holds no pair; a token without a refresh token.
    let out = u.run(&["token", "renew", "--server", &s.base], "{\"x\": 1}");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no accessToken"), "{out:?}");
    let out = u.run(
        &["token", "renew", "--server", &s.base],
        "{\"accessToken\": \"a\"}",
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no refreshToken"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_ends_a_token_and_an_unknown_id_is_exit_4() {
    let (_store, s) = server();
    let u = User::new();
    u.login_admin(&s);
    let t = u.create(&["--name", "short-lived", "--scope", "all"]);
    let access = str_of(&t, "accessToken");
    assert_eq!(s.check(access, "GET", "/Client").await, 200);
    let id = t["tokenId"].to_string();
    let out = u.run(&["token", "revoke", &id], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.check(access, "GET", "/Client").await, 401);
    let out = u.run(&["token", "revoke", &id], "");
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.starts_with("tessera: token "), "{out:?}");
    let out = u.run(&["token", "revoke", "987654"], "");
    assert_eq!(out.code, 4, "{out:?}");
    let out = u.run(&["token", "revoke", "not-a-number"], "");
    assert_eq!(out.code, 2, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_there_and_here() {
    let (_store, s) = server();
    let u = User::new();
    u.login_admin(&s);
    let session = u.session_token();
    let out = u.run(&["logout"], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!u.session_path().exists());
    assert_eq!(s.whoami(&session).await.status, 401);
    // Afterwards: not logged in.
    for args in [
        &["token", "list"][..],
        &["token", "create", "--name", "x", "--scope", "all"],
        &["logout"],
    ] {
        let out = u.run(args, "");
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(out.stderr.contains("run `tessera login URL`"), "{out:?}");
    }

    // A session the server ended (here, by a logout elsewhere): exit 3,
    // naming the server to log in to again.
    u.login_admin(&s);
    assert_eq!(s.logout(&u.session_token()).await.status, 200);
    let out = u.run(&["token", "list"], "");
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("run `tessera login {}`", s.base)),
        "{out:?}"
    );
    // Logging out of an ended session still clears it here.
    let out = u.run(&["logout"], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!u.session_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_others_may_read_is_refused() {
    let (_store, s) = server();
    let u = User::new();
    u.login_admin(&s);
    let path = u.session_path();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    for args in [&["token", "list"][..], &["logout"]] {
        let out = u.run(args, "");
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains("chmod 600"), "{out:?}");
        assert!(out.stderr.contains(path.to_str().unwrap()), "{out:?}");
    }
    assert!(path.exists());
    // A new login replaces it with a private one.
    u.login_admin(&s);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(u.run(&["token", "list"], "").code, 0);
}

#[test]
fn a_server_that_is_down_is_exit_5() {
    let u = User::new();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let unreachable = format!("tessera: cannot reach {url}: connection refused");

    let out = u.run(&["login", &url, "-u", "admin", "--password-stdin"], "pw\n");
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.stderr.trim(), unreachable, "{out:?}");
    assert!(!u.session_path().exists());

    // A session kept for a server that is gone since.
    let dir = u.session_path().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let kept = serde_json::json!({"server": url, "username": "admin", "token": "QSDK tess_ss_x"});
    write_with_mode(&u.session_path(), &kept.to_string(), 0o600);
    let out = u.run(&["token", "list"], "");
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.stderr.trim(), unreachable, "{out:?}");

    let pair = r#"{"accessToken": "tess_at_1_x", "refreshToken": "tess_rt_1_x"}"#;
    let out = u.run(&["token", "renew"], pair);
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.stderr.trim(), unreachable, "{out:?}");
    let out = u.run_env(&["token", "renew"], pair, &[("TESSERA_URL", &url)], &[]);
    assert_eq!(out.code, 5, "{out:?}");

    // Logout: the file goes all the same, and the message says the server
    // still holds the session.
    let out = u.run(&["logout"], "");
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("could not tell the server"), "{out:?}");
    assert!(out.stderr.contains(&url), "{out:?}");
    assert!(!u.session_path().exists());
}

#[test]
fn help_documents_the_exit_codes_and_reuse_detection() {
    let u = User::new();
    for args in [
        &["login", "--help"][..],
        &["logout", "--help"],
        &["token", "create", "--help"],
        &["token", "list", "--help"],
        &["token", "revoke", "--help"],
        &["token", "renew", "--help"],
    ] {
        let out = u.run(args, "");
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("Exit codes:"), "{args:?}: {out:?}");
        assert!(out.stdout.contains("3  not logged in"), "{args:?}: {out:?}");
    }
    let out = u.run(&["token", "renew", "--help"], "");
    assert!(out.stdout.contains("reuse detection"), "{out:?}");
    // Plain HTTP to another machine: warned about before anything is sent.
    let out = u.run(
        &[
            "login",
            "http://192.0.2.1:9",
            "-u",
            "admin",
            "--password-stdin",
        ],
        "",
    );
    assert!(
        out.stderr
            .contains("warning: http://192.0.2.1:9 is plain HTTP"),
        "{out:?}"
    );
}

/// A small HTTP server on 127.0.0.1 that answers every request with
/// `status`, the header lines `headers` and the JSON `body`, and records
/// each request head it reads.
fn answering(
    status: &str,
    headers: &str,
    body: &str,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::Read as _;
    let reply = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = [0u8; 8192];
            let n = conn.read(&mut buf).unwrap_or(0);
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    (port, seen)
}

#[test]
fn a_redirect_is_never_followed_and_control_characters_are_shown_not_acted_on() {
    let u = User::new();
    let login_to = |port: u16| {
        u.run(
            &[
                "login",
                &format!("http://127.0.0.1:{port}"),
                "--username",
                "admin",
                "--password-stdin",
            ],
            "secret-pw\n",
        )
    };
    // Wherever a server redirects a login (a 307 keeps the method and the
    // body), the password is not sent there.
    let (elsewhere, seen_elsewhere) = answering("200 OK", "", "{}");
    let location = format!("Location: http://127.0.0.1:{elsewhere}/Login\r\n");
    let (redirecting, _) = answering("307 Temporary Redirect", &location, "");
    let out = login_to(redirecting);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("redirect"), "{out:?}");
    assert!(seen_elsewhere.lock().unwrap().is_empty(), "followed");
    assert!(!u.session_path().exists());

    // A server's message with an escape sequence (Tessera refuses control
    // characters in what it stores; a wrong URL may reach anything) reaches
    // the terminal inert.
    let (hostile, _) = answering(
        "401 Unauthorized",
        "",
        r#"{"errList":[{"errLogMessage":"\u001b[2Jwiped"}]}"#,
    );
    let out = login_to(hostile);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!out.stderr.contains('\u{1b}'), "{out:?}");
    assert!(out.stderr.contains("\\u{1b}[2Jwiped"), "{out:?}");
    // Nor in the name a login answers with.
    let (named, _) = answering(
        "200 OK",
        "",
        r#"{"token":"QSDK x","userName":"\u001b]0;pwn\u0007"}"#,
    );
    let out = login_to(named);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains('\u{1b}'), "{out:?}");
    assert!(out.stderr.contains("as \\u{1b}]0;pwn\\u{7}."), "{out:?}");
}
