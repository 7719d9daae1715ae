//! Proxies as child processes: finding a proxy's binary, a free port,
//! waiting (bounded) until a process listens, and nginx itself, run from a
//! temporary directory with its own configuration (never the system
//! service), stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process;
use crate::temp::TempDir;

/// A binary of a proxy, if installed (`/usr/sbin` is not on every user's PATH).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until a proxy listens on `port`; the error, with
/// `log()`, if it exits first or does not listen within `within`.
pub fn try_wait_listening(
    name: &str,
    port: u16,
    child: &mut Child,
    within: Duration,
    log: impl Fn() -> String,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            return Err(format!(
                "{name} did not start on port {port} ({exited:?}); its log:\n{}",
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// [`try_wait_listening`], panicking on its error.
pub fn wait_listening(
    name: &str,
    port: u16,
    child: &mut Child,
    within: Duration,
    log: impl Fn() -> String,
) {
    if let Err(e) = try_wait_listening(name, port, child, within, log) {
        panic!("{e}");
    }
}

/// Our own nginx process, with everything (configuration, logs, temporary
/// files, pid) under a temporary directory; stopped, and the directory
/// removed, when dropped.
pub struct Nginx {
    child: Child,
    dir: TempDir,
    port: u16,
    bin: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master stops its worker too; SIGKILL would orphan it.
        process::terminate(&mut self.child, Duration::from_secs(5));
    }
}

impl Nginx {
    /// Starts nginx on a free port of 127.0.0.1 with the `http { … }`
    /// contents that `http(dir, port)` writes (`server` blocks, upstreams,
    /// log formats; `dir` holds the logs), and waits (bounded) until it
    /// accepts connections.
    pub fn start(bin: &Path, http: impl FnOnce(&Path, u16) -> String) -> Result<Nginx, String> {
        let dir = TempDir::new("tessera-nginx");
        let port = free_port();
        let conf = dir.join("nginx.conf");
        write_conf(&conf, dir.path(), &http(dir.path(), port))?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            // The error log nginx uses before it has read the configuration.
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut nginx = Nginx {
            child,
            dir,
            port,
            bin: bin.to_path_buf(),
        };
        let log = nginx.dir.join("error.log");
        try_wait_listening(
            "nginx",
            port,
            &mut nginx.child,
            Duration::from_secs(10),
            || std::fs::read_to_string(&log).unwrap_or_default(),
        )?;
        Ok(nginx)
    }

    /// Rewrites the configuration with new `http { … }` contents (on the
    /// same port) and has nginx load it (`-s reload`: new workers take the
    /// new configuration; requests in flight finish on the old ones).
    pub fn reload(&self, http: impl FnOnce(&Path, u16) -> String) -> Result<(), String> {
        let conf = self.dir.join("nginx.conf");
        write_conf(&conf, self.dir.path(), &http(self.dir.path(), self.port))?;
        let out = Command::new(&self.bin)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .args(["-s", "reload"])
            .output()
            .map_err(|e| format!("cannot run nginx -s reload: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nginx -s reload: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its directory (`access.log`, `error.log` live there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// Writes `nginx.conf`: the process settings every test nginx shares (one
/// worker, everything under `dir`), around the `http` block's contents.
fn write_conf(conf: &Path, dir: &Path, http: &str) -> Result<(), String> {
    let d = dir.display();
    let text = format!(
        "worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
{http}
}}
"
    );
    std::fs::write(conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))
}
