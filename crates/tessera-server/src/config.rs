//! The command line (CONTRACT §7): every setting is a flag with a `TESSERA_*`
//! environment twin. Durations take seconds or a suffix: `90s`, `30m`, `12h`, `14d`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use tessera_core::policy::PolicyConfig;

use crate::auth::ClientIpHeader;
use crate::forward::Convention;

/// `tessera`.
#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Scoped access tokens for REST APIs, speaking Commvault's V4 JSON."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API.
    Serve(Box<ServeArgs>),
    /// Administer users.
    User {
        /// The user command.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Import legacy tokens from a JSON Lines file (all or nothing).
    ImportLegacy(ImportArgs),
    /// Log in to a Tessera server; the session is kept for the `token` commands.
    ///
    /// The session is kept in $XDG_CONFIG_HOME/tessera/session.json (else
    /// ~/.config/tessera/session.json), readable by you only; it is refused
    /// when group or others may read it.
    #[command(after_help = crate::client::EXIT_CODES)]
    Login(LoginArgs),
    /// End the session on the server and remove it here.
    #[command(after_help = crate::client::EXIT_CODES)]
    Logout,
    /// Create, list, renew and revoke access tokens on the server logged in to.
    #[command(after_help = crate::client::EXIT_CODES)]
    Token {
        /// The token command.
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// `tessera login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's base URL, e.g. https://tessera.example.com.
    #[arg(value_parser = crate::client::parse_server_url)]
    pub url: String,
    /// The user name (asked for when not given).
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Read the password from one line of standard input instead of asking
    /// for it on the terminal (for scripts; needs --username).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// `tessera token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its access and refresh tokens are shown once.
    #[command(after_help = crate::client::EXIT_CODES)]
    Create(TokenCreateArgs),
    /// List the tokens (yours, or another user's with --user).
    #[command(after_help = crate::client::EXIT_CODES)]
    List(TokenListArgs),
    /// Revoke a token by id: it stops working at once.
    #[command(after_help = crate::client::EXIT_CODES)]
    Revoke(TokenRevokeArgs),
    /// Renew a token: both secrets rotate.
    ///
    /// Reads the pair (JSON with accessToken and refreshToken, as `token
    /// create --json` prints it) from --file or standard input, and writes
    /// the new pair back to the file (atomically, mode 0600) or to standard
    /// output. No session is needed. The old pair stops working at once;
    /// presenting the old refresh token again revokes the whole token
    /// (reuse detection), so keep only the new pair.
    #[command(after_help = crate::client::EXIT_CODES)]
    Renew(TokenRenewArgs),
}

/// A token's scope, as `token create --scope` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Every path of the protected API (renewable).
    All,
    /// The SCIM paths (fixed expiry).
    Scim,
    /// The 1-Touch recovery paths (fixed expiry).
    OneTouch,
    /// The token's own --endpoint list (renewable).
    Custom,
    /// The Hyperscale paths (renewable).
    Hyperscale,
}

/// `tessera token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The token's name.
    #[arg(long)]
    pub name: String,
    /// What the token may call.
    #[arg(long, value_enum)]
    pub scope: ScopeArg,
    /// A Custom token's entry: `METHOD /path` or `/path` (any method); repeatable.
    #[arg(long, value_name = "'METHOD /PATH'")]
    pub endpoint: Vec<String>,
    /// An address or CIDR the token may be used from; repeatable (default: anywhere).
    #[arg(long, value_name = "IP|CIDR")]
    pub allowed_ip: Vec<String>,
    /// Until when a renewable token may be renewed: 2027-01-31 (midnight
    /// UTC) or 2027-01-31T12:00:00Z.
    #[arg(long, value_name = "DATE", value_parser = crate::client::parse_date)]
    pub renewable_until: Option<i64>,
    /// When a fixed-expiry token (scim, one-touch) expires: 2027-01-31 or
    /// 2027-01-31T12:00:00Z (UTC).
    #[arg(long, value_name = "DATE", value_parser = crate::client::parse_date)]
    pub expires: Option<i64>,
    /// Create it for another user, by name: a service account you own (the
    /// name is looked up in the user list, which admins may read).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Print the new token as one JSON object (what `token renew` reads).
    #[arg(long)]
    pub json: bool,
}

/// `tessera token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Another user's tokens, by name (admins).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Print the server's list as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tessera token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (`token list` shows it).
    pub id: u64,
}

/// `tessera token renew`.
#[derive(Debug, Args)]
pub struct TokenRenewArgs {
    /// The file holding the pair, rewritten with the new one; without it,
    /// standard input in and standard output out.
    #[arg(long, short = 'f')]
    pub file: Option<std::path::PathBuf>,
    /// The server to ask (default: the file's `server`, else the session's).
    #[arg(long, env = "TESSERA_URL", value_parser = crate::client::parse_server_url)]
    pub server: Option<String>,
}

/// `tessera user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a person; the password comes from TESSERA_PASSWORD or one line of standard input.
    Add(UserAddArgs),
    /// Set a person's password (every session of theirs ends); the password
    /// comes from TESSERA_PASSWORD or one line of standard input.
    Passwd(UserPasswdArgs),
}

/// Which store, and how patiently to talk to it.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Store URL: sqlite://FILE, sqlite::memory:, postgres://…, redis://…,
    /// redis+cluster://HOST:PORT,HOST:PORT,… (a Redis Cluster by some of its nodes).
    /// Its environment value is never shown in --help (it may hold a password).
    #[arg(
        long,
        env = "TESSERA_STORE",
        default_value = "sqlite://tessera.db",
        hide_env_values = true
    )]
    pub store: String,
    /// Bound on connecting to the store.
    #[arg(long, env = "TESSERA_STORE_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub store_connect_timeout: Duration,
    /// Bound on each store call; past it the request answers 503.
    #[arg(long, env = "TESSERA_STORE_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub store_command_timeout: Duration,
    /// Key prefix in Redis, so several deployments (or test runs) share one server.
    #[arg(long, env = "TESSERA_REDIS_PREFIX", default_value = "tessera:")]
    pub redis_prefix: String,
    /// How long revoked or expired tokens stay (listable) before they are swept.
    #[arg(long, env = "TESSERA_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// `tessera serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The policy figures.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Proxies (addresses or CIDRs, comma-separated) whose forwarded client address is believed.
    #[arg(
        long,
        env = "TESSERA_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub trusted_proxies: Vec<String>,
    /// Which header of a trusted proxy carries the client's address:
    /// x-forwarded-for (read right to left; every proxy that appends) or
    /// x-real-ip (only behind a proxy that overwrites it).
    #[arg(
        long,
        env = "TESSERA_CLIENT_IP_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub client_ip_header: ClientIpHeader,
    /// The proxy in front, which says where forward auth reads the request
    /// being checked: nginx (X-Original-Method/-URI), traefik or caddy
    /// (X-Forwarded-Method/-Uri), envoy (the check request's own method, its
    /// path after /auth/check).
    #[arg(
        long,
        env = "TESSERA_FORWARD_AUTH",
        value_enum,
        default_value = "nginx"
    )]
    pub forward_auth: Convention,
    /// Once a request's first byte has arrived, its head must be complete
    /// within this (else the connection closes), and then its body (else 408).
    #[arg(long, env = "TESSERA_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// A connection on which nothing arrives, with no request in flight, for
    /// this long is closed (longer than a proxy's own keep-alive timeout, so
    /// that the proxy is the one to close: nginx 60s, Traefik 90s, Caddy 2m).
    #[arg(long, env = "TESSERA_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Most connections open at once (default: the file-descriptor limit
    /// less 256, at most 10000); at the bound the longest-idle one is closed.
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// After SIGTERM: not ready at once, then requests received are answered
    /// and connections closed; whatever is left after this is cut.
    #[arg(long, env = "TESSERA_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Bound on /health/ready's reads of the store.
    #[arg(long, env = "TESSERA_READY_TIMEOUT", default_value = "500ms", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Threads that hash and verify passwords (default: half the CPUs, at least 1).
    #[arg(long, env = "TESSERA_HASH_WORKERS")]
    pub hash_workers: Option<usize>,
    /// Password checks that may wait for a hashing thread; past it a login
    /// is answered 503 with Retry-After (default: 16 per thread).
    #[arg(long, env = "TESSERA_HASH_QUEUE")]
    pub hash_queue: Option<usize>,
    /// The share of one CPU (percent, 1-100) each hashing thread may use;
    /// it rests after each hash for the rest, so a login flood takes at
    /// most that much from the checks.
    #[arg(long, env = "TESSERA_HASH_SHARE", default_value_t = crate::hashing::DEFAULT_SHARE,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub hash_share: u32,
    /// Log format.
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// How often the last-used times noted by checks are written to the
    /// store (at most one write per token per minute either way); `0` turns
    /// last-used tracking off.
    #[arg(long, env = "TESSERA_LAST_USED_FLUSH", default_value = "10s", value_parser = parse_duration)]
    pub last_used_flush: Duration,
    /// How long audit events are kept (`GET /V4/AccessToken/Events`);
    /// older ones are swept with the dead records.
    #[arg(long, env = "TESSERA_AUDIT_RETENTION", default_value = "90d", value_parser = parse_duration)]
    pub audit_retention: Duration,
    /// A webhook receiver: `token.reuse_detected`, `token.expiring`,
    /// `token.new_address` and `login.locked` are posted to it as signed
    /// JSON (repeatable; in the environment, space-separated, empty for
    /// none). Its own
    /// secret may follow as `#secret=SECRET` (never sent: a fragment).
    #[arg(
        long = "webhook",
        value_name = "URL",
        env = "TESSERA_WEBHOOKS",
        value_delimiter = ' ',
        hide_env_values = true
    )]
    pub webhooks: Vec<String>,
    /// The webhook signing secret of receivers without their own (at least
    /// 16 bytes; `whsec_<base64>` as Standard Webhooks' libraries take it).
    #[arg(long, env = "TESSERA_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// How long a failing webhook delivery is retried, from its event,
    /// before it is given up (and counted in `/metrics`).
    #[arg(long, env = "TESSERA_WEBHOOK_RETRY_FOR", default_value = "24h", value_parser = parse_duration)]
    pub webhook_retry_for: Duration,
    /// The longest wait between attempts (waits double from one second).
    #[arg(long, env = "TESSERA_WEBHOOK_BACKOFF_MAX", default_value = "10m", value_parser = parse_duration)]
    pub webhook_backoff_max: Duration,
    /// How often tokens are looked at for `token.expiring` (14, 7 and 1
    /// day before their end, once each).
    #[arg(long, env = "TESSERA_WEBHOOK_EXPIRY_SCAN", default_value = "1h", value_parser = parse_duration)]
    pub webhook_expiry_scan: Duration,
    /// How often dead records are swept.
    #[arg(long, env = "TESSERA_SWEEP_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub sweep_interval: Duration,
    /// Failed logins (per user, and per address) that lock further attempts.
    #[arg(long, env = "TESSERA_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// Window within which failed logins count together.
    #[arg(long, env = "TESSERA_LOGIN_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub login_window: Duration,
    /// How long a lock lasts.
    #[arg(long, env = "TESSERA_LOGIN_LOCKOUT", default_value = "15m", value_parser = parse_duration)]
    pub login_lockout: Duration,
    /// Token records the check keeps in memory (the exact local cache fed
    /// by the store's change stream); `0` turns the cache off, so that every
    /// check reads the store.
    #[arg(long, env = "TESSERA_CACHE_CAPACITY", default_value_t = 100_000)]
    pub cache_capacity: usize,
    /// How late the change stream's heartbeat may be before the cache is
    /// dropped and every check reads the store (at most 1s).
    #[arg(long, env = "TESSERA_CACHE_STALENESS", default_value = "100ms", value_parser = parse_staleness)]
    pub cache_staleness: Duration,
}

/// A `--cache-staleness`: a duration from 10ms to 1s. Longer would let a
/// cached record outlive a change by more than a proxy's patience.
pub fn parse_staleness(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(1) {
        return Err(format!("{text:?} is outside 10ms..=1s"));
    }
    Ok(d)
}

/// Every figure of the policy (defaults: CONTRACT §2).
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Life of an access token of a refreshable scope.
    #[arg(long, env = "TESSERA_ACCESS_LIFETIME", default_value = "30m", value_parser = parse_duration)]
    pub access_lifetime: Duration,
    /// How long after expiry a token may still be renewed.
    #[arg(long, env = "TESSERA_RENEWAL_GRACE", default_value = "14d", value_parser = parse_duration)]
    pub renewal_grace: Duration,
    /// Default renewableUntil, from creation.
    #[arg(long, env = "TESSERA_RENEWABLE_DEFAULT", default_value = "90d", value_parser = parse_duration)]
    pub renewable_default: Duration,
    /// Latest renewableUntil, from creation.
    #[arg(long, env = "TESSERA_RENEWABLE_MAX", default_value = "365d", value_parser = parse_duration)]
    pub renewable_max: Duration,
    /// Default SCIM expiry.
    #[arg(long, env = "TESSERA_SCIM_DEFAULT", default_value = "30d", value_parser = parse_duration)]
    pub scim_default: Duration,
    /// Latest SCIM expiry.
    #[arg(long, env = "TESSERA_SCIM_MAX", default_value = "365d", value_parser = parse_duration)]
    pub scim_max: Duration,
    /// Default 1-Touch expiry.
    #[arg(long, env = "TESSERA_ONE_TOUCH_DEFAULT", default_value = "7d", value_parser = parse_duration)]
    pub one_touch_default: Duration,
    /// Latest 1-Touch expiry.
    #[arg(long, env = "TESSERA_ONE_TOUCH_MAX", default_value = "14d", value_parser = parse_duration)]
    pub one_touch_max: Duration,
    /// Session idle limit (sliding).
    #[arg(long, env = "TESSERA_SESSION_IDLE", default_value = "30m", value_parser = parse_duration)]
    pub session_idle: Duration,
    /// Seconds after a renewal during which the rotated-out refresh token is refused without revoking (0: every replay revokes).
    #[arg(long, env = "TESSERA_REUSE_GRACE", default_value = "0s", value_parser = parse_duration)]
    pub reuse_grace: Duration,
    /// Web-service roots stripped from paths (comma-separated).
    #[arg(
        long,
        env = "TESSERA_WEB_ROOTS",
        value_delimiter = ',',
        default_value = "/commandcenter/api,/webconsole/api"
    )]
    pub web_roots: Vec<String>,
    /// Paths a SCIM token may call.
    #[arg(
        long,
        env = "TESSERA_SCIM_PREFIXES",
        value_delimiter = ',',
        default_value = "/scim"
    )]
    pub scim_prefixes: Vec<String>,
    /// Paths a Hyperscale token may call.
    #[arg(
        long,
        env = "TESSERA_HYPERSCALE_PREFIXES",
        value_delimiter = ',',
        default_value = "/V4/Hyperscale"
    )]
    pub hyperscale_prefixes: Vec<String>,
    /// Paths a 1-Touch token may call.
    #[arg(
        long,
        env = "TESSERA_ONE_TOUCH_PATHS",
        value_delimiter = ',',
        default_value = "/Client,/MediaAgent,/ClientGroup,/V4/ServerGroup,/FirewallSummary"
    )]
    pub one_touch_paths: Vec<String>,
}

impl PolicyArgs {
    /// The core's configuration.
    pub fn to_config(&self) -> PolicyConfig {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let list = |v: &[String]| {
            v.iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        PolicyConfig {
            access_lifetime: secs(self.access_lifetime),
            renewal_grace: secs(self.renewal_grace),
            renewable_default: secs(self.renewable_default),
            renewable_max: secs(self.renewable_max),
            scim_default: secs(self.scim_default),
            scim_max: secs(self.scim_max),
            one_touch_default: secs(self.one_touch_default),
            one_touch_max: secs(self.one_touch_max),
            session_idle: secs(self.session_idle),
            reuse_grace: secs(self.reuse_grace),
            web_roots: list(&self.web_roots),
            scim_prefixes: list(&self.scim_prefixes),
            one_touch_paths: list(&self.one_touch_paths),
            hyperscale_prefixes: list(&self.hyperscale_prefixes),
            ..PolicyConfig::default()
        }
    }
}

/// `tessera user add`.
#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The new user's name.
    pub name: String,
    /// Make the user an admin.
    #[arg(long)]
    pub admin: bool,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `tessera user passwd`.
#[derive(Debug, Args)]
pub struct UserPasswdArgs {
    /// The user's name.
    pub name: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `tessera import-legacy`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// JSON Lines file, one legacy token a line.
    pub file: std::path::PathBuf,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Parses `trusted_proxies` entries: addresses or CIDRs.
pub fn parse_proxies(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("--trusted-proxies: {e:?} is not an address or CIDR"))
        })
        .collect()
}

/// `90`, `90s`, `30m`, `12h`, `14d`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 30m, 12h, 14d, 500ms)"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?}: unknown unit (ms, s, m, h, d)")),
    };
    n.checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_proxies() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5x").is_err() && parse_duration("").is_err());
        assert_eq!(
            parse_proxies(&["10.0.0.0/8".into(), " ::1 ".into(), "".into()])
                .unwrap()
                .len(),
            2
        );
        assert!(parse_proxies(&["nope".into()]).is_err());
    }

    #[test]
    fn defaults_are_the_specs() {
        let cli = Cli::try_parse_from(["tessera", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.policy.to_config(), PolicyConfig::default());
    }
}
