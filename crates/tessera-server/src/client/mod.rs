//! `tessera login`, `logout` and `token …`: a terminal client of a Tessera
//! server, over its public REST API only (as `vault token create` or `gh
//! auth token` are of theirs).
//!
//! * `session` — the session file (`$XDG_CONFIG_HOME/tessera/session.json`,
//!   mode 0600, written atomically, refused when others may read it);
//! * `api` — the REST calls, and the one mapping of an answer's status to a
//!   [`ClientError`];
//! * `output` — the token table, a created token, dates.
//!
//! Every failure is a [`ClientError`], whose variant (never its text)
//! decides the exit code ([`ClientError::exit_code`], [`EXIT_CODES`]).

mod api;
mod output;
mod session;

use std::io::{self, BufRead as _, Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Map, Value};

use crate::config::{
    LoginArgs, ScopeArg, TokenCommand, TokenCreateArgs, TokenListArgs, TokenRenewArgs,
    TokenRevokeArgs,
};
use api::Api;
pub use output::parse_date;
use session::Session;
use tessera_core::secret::Secret;

/// The exit codes of the client commands, for their `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the server refused (its message is printed), or a local file or the
     terminal could not be used
  2  usage error
  3  not logged in, or the session expired or was refused: run `tessera login URL`
  4  not found (e.g. revoking an unknown token id)
  5  the server cannot be reached or is unavailable (connection refused,
     timeout, 503)";

/// Why a client command failed, printed as `tessera: <message>`; the
/// variant decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request: its own message.
    #[error("{0}")]
    Refused(String),
    /// No session is kept here.
    #[error("not logged in: run `tessera login URL` first")]
    NotLoggedIn,
    /// The server refused the kept session (logged out, idled out, ended
    /// by a password change).
    #[error(
        "the session is no longer valid ({message}): run `tessera login {server}` to log in again"
    )]
    SessionRejected {
        /// The server that refused it.
        server: String,
        /// Its message.
        message: String,
    },
    /// The session file cannot be understood.
    #[error("cannot use the session in {}: {reason}; run `tessera login URL` to log in again", path.display())]
    BadSession {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// What was asked for does not exist (the server's message, or ours).
    #[error("{0}")]
    NotFound(String),
    /// No answer at all: refused connection, unknown host, timeout, TLS.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The server.
        url: String,
        /// Why (the innermost cause).
        reason: String,
    },
    /// The server (or a proxy before it) answered that it is unavailable.
    #[error("{url} is unavailable: {message}")]
    Unavailable {
        /// The server.
        url: String,
        /// Its message.
        message: String,
    },
    /// `logout` removed the session here but could not end it on the server.
    #[error("logged out here, but could not tell the server: {cause}; the session stays valid there until it idles out")]
    LogoutNotTold {
        /// Why the server was not told.
        cause: Box<ClientError>,
    },
    /// A 2xx answer without what it should hold.
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer {
        /// The server.
        url: String,
        /// What was missing.
        reason: String,
    },
    /// A local file cannot be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// `read`, `write`, `create`, `remove`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A session file that group or others may read (refused, as ssh
    /// refuses such a key).
    #[error("refusing the session in {}: group or others may access it (mode {mode:03o}); run `chmod 600 {}`, or remove it and log in again", path.display(), path.display())]
    UnsafeSession {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Neither XDG_CONFIG_HOME nor HOME says where to keep the session.
    #[error("cannot tell where to keep the session: set XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    /// Standard input or the terminal cannot be read.
    #[error("cannot read {what}: {source}")]
    Input {
        /// What was being read.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// What was read is not what the command takes (its message says why).
    #[error("{0}")]
    Unusable(String),
    /// `token renew` without a server to ask.
    #[error(
        "no server to ask: give --server URL (or TESSERA_URL), or log in with `tessera login URL`"
    )]
    NoServer,
}

impl ClientError {
    /// The exit code (see [`EXIT_CODES`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused(_)
            | ClientError::BadAnswer { .. }
            | ClientError::File { .. }
            | ClientError::UnsafeSession { .. }
            | ClientError::NoConfigDir
            | ClientError::Input { .. }
            | ClientError::Unusable(_) => 1,
            ClientError::NoServer => 2,
            ClientError::NotLoggedIn
            | ClientError::SessionRejected { .. }
            | ClientError::BadSession { .. } => 3,
            ClientError::NotFound(_) => 4,
            ClientError::Unreachable { .. }
            | ClientError::Unavailable { .. }
            | ClientError::LogoutNotTold { .. } => 5,
        }
    }
}

/// A command's outcome as the process's: nothing more to say on success,
/// `tessera: <message>` on standard error and the error's exit code otherwise.
pub fn exit(result: Result<(), ClientError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Checks a server URL given on the command line: `http://` or `https://`,
/// a host, no query or fragment; the trailing slash dropped.
pub fn parse_server_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        format!("{text:?} is not a URL ({e}): give e.g. https://tessera.example.com")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{text:?}: the URL must start with https:// or http://"
        ));
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?}: give the server's base URL (no query, no fragment)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?}: no credentials in the URL"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Warns (standard error) when `url` is plain HTTP to a host other than
/// this machine: passwords and tokens would cross the network in clear.
fn warn_if_clear(url: &str) {
    let Ok(u) = reqwest::Url::parse(url) else {
        return;
    };
    let host = u.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    if u.scheme() == "http" && !loopback {
        eprintln!(
            "tessera: warning: {url} is plain HTTP: the password and tokens travel in clear; use https://"
        );
    }
}

// ---- login, logout -------------------------------------------------------------

/// `tessera login URL`: asks for what is missing, logs in, keeps the session.
pub async fn login(args: LoginArgs) -> Result<(), ClientError> {
    warn_if_clear(&args.url);
    let username = match args.username {
        Some(u) => u,
        None => {
            let name = prompt_line("Username: ")?;
            if name.is_empty() {
                return Err(ClientError::Unusable("no user name given".into()));
            }
            name
        }
    };
    let password = if args.password_stdin {
        Secret::from_presented(read_line("the password from standard input")?)
    } else {
        Secret::from_presented(rpassword::prompt_password("Password: ").map_err(|source| {
            ClientError::Input {
                what: "the password from the terminal (without one, use --password-stdin)",
                source,
            }
        })?)
    };
    // Where the session will go, known before a session is made for nothing.
    session::path()?;
    let api = Api::new(&args.url)?;
    let logged = api.login(&username, &password).await?;
    let kept = Session {
        server: args.url.clone(),
        username: logged.username,
        token: logged.token,
    };
    session::save(&kept)?;
    eprintln!("Logged in to {} as {}.", kept.server, kept.username);
    Ok(())
}

/// `tessera logout`: ends the session on the server, then removes it here
/// (even when the server cannot be told).
pub async fn logout() -> Result<(), ClientError> {
    let kept = session::load()?;
    let path = session::path()?;
    let told = Api::new(&kept.server)?.logout(&kept.token).await;
    session::remove(&path)?;
    match told {
        Ok(()) => {
            eprintln!("Logged out of {}.", kept.server);
            Ok(())
        }
        // Already over on the server: nothing left to end.
        Err(ClientError::SessionRejected { .. }) => {
            eprintln!(
                "Logged out of {} (the session had already ended there).",
                kept.server
            );
            Ok(())
        }
        Err(e @ (ClientError::Unreachable { .. } | ClientError::Unavailable { .. })) => {
            Err(ClientError::LogoutNotTold { cause: Box::new(e) })
        }
        Err(e) => Err(e),
    }
}

// ---- tokens --------------------------------------------------------------------

/// `tessera token …`.
pub async fn token(command: TokenCommand) -> Result<(), ClientError> {
    match command {
        TokenCommand::Create(a) => create(a).await,
        TokenCommand::List(a) => list(a).await,
        TokenCommand::Revoke(a) => revoke(a).await,
        TokenCommand::Renew(a) => renew(a).await,
    }
}

/// The kept session and a client of its server.
fn logged_in() -> Result<(Session, Api), ClientError> {
    let kept = session::load()?;
    let api = Api::new(&kept.server)?;
    Ok((kept, api))
}

async fn create(args: TokenCreateArgs) -> Result<(), ClientError> {
    let (kept, api) = logged_in()?;
    let token_type = match args.scope {
        ScopeArg::All => tessera_core::scope::TokenType::ALL,
        ScopeArg::Scim => tessera_core::scope::TokenType::SCIM,
        ScopeArg::OneTouch => tessera_core::scope::TokenType::ONE_TOUCH,
        ScopeArg::Custom => tessera_core::scope::TokenType::CUSTOM,
        ScopeArg::Hyperscale => tessera_core::scope::TokenType::HYPERSCALE,
    };
    let mut body = Map::new();
    body.insert("tokenName".into(), json!(args.name));
    body.insert("tokenType".into(), json!(token_type.number()));
    if !args.endpoint.is_empty() {
        body.insert("apiEndpoints".into(), json!(args.endpoint));
    }
    if !args.allowed_ip.is_empty() {
        body.insert("allowedIPs".into(), json!(args.allowed_ip));
    }
    if let Some(t) = args.renewable_until {
        body.insert("renewableUntilTimestamp".into(), json!(t));
    }
    if let Some(t) = args.expires {
        body.insert("tokenExpiryTimestamp".into(), json!(t));
    }
    if let Some(name) = &args.user {
        let id = api.user_id(&kept.token, name).await?;
        body.insert("userId".into(), json!(id));
    }
    let mut info = api.create_token(&kept.token, &Value::Object(body)).await?;
    let mut out = io::stdout().lock();
    let printed = if args.json {
        // The server's `tokenInfo`, flat, with the server beside it:
        // `tessera token renew` reads the pair (and the server) back.
        info["server"] = json!(kept.server);
        writeln!(out, "{}", pretty(&info))
    } else {
        write!(out, "{}", output::created(&info))
    };
    printed
        .and_then(|()| out.flush())
        .map_err(|source| ClientError::File {
            action: "write",
            path: "standard output".into(),
            source,
        })?;
    eprintln!(
        "The access and refresh tokens are shown only this once: keep them now. \
         Renew the pair with `tessera token renew`."
    );
    Ok(())
}

async fn list(args: TokenListArgs) -> Result<(), ClientError> {
    let (kept, api) = logged_in()?;
    let user = match &args.user {
        Some(name) => Some(api.user_id(&kept.token, name).await?),
        None => None,
    };
    let answer = api.list_tokens(&kept.token, user).await?;
    let tokens = answer["tokens"].as_array().cloned().unwrap_or_default();
    if args.json {
        println!("{}", pretty(&answer));
    } else if tokens.is_empty() {
        eprintln!("No tokens.");
    } else {
        print!("{}", output::token_table(&tokens));
    }
    Ok(())
}

async fn revoke(args: TokenRevokeArgs) -> Result<(), ClientError> {
    let (kept, api) = logged_in()?;
    api.revoke(&kept.token, args.id).await?;
    eprintln!("Revoked token {}.", args.id);
    Ok(())
}

/// Where the pair to renew was found in the document read.
#[derive(Debug, Clone, Copy)]
enum PairAt {
    /// At the top: `create --json`, a renewal answer, `{accessToken, refreshToken}`.
    Top,
    /// Under `tokenInfo` (the create answer as the server sent it).
    TokenInfo,
}

/// The pair in `doc`, and where it was.
fn find_pair(doc: &Value) -> Result<(PairAt, Secret, Secret), ClientError> {
    let at = if doc.get("accessToken").is_some() {
        PairAt::Top
    } else if doc["tokenInfo"].get("accessToken").is_some() {
        PairAt::TokenInfo
    } else {
        return Err(ClientError::Unusable(
            "no accessToken in the input: give the JSON `tessera token create --json` printed, \
             a renewal's answer, or {\"accessToken\": …, \"refreshToken\": …}"
                .into(),
        ));
    };
    let obj = match at {
        PairAt::Top => doc,
        PairAt::TokenInfo => &doc["tokenInfo"],
    };
    let text = |k: &str| {
        obj[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let access = text("accessToken")
        .ok_or_else(|| ClientError::Unusable("accessToken is not a token".into()))?;
    let refresh = text("refreshToken").ok_or_else(|| {
        ClientError::Unusable(
            "no refreshToken in the input: only tokens of a renewable scope (all, custom, \
             hyperscale) have one"
                .into(),
        )
    })?;
    Ok((
        at,
        Secret::from_presented(access),
        Secret::from_presented(refresh),
    ))
}

async fn renew(args: TokenRenewArgs) -> Result<(), ClientError> {
    let text = match &args.file {
        Some(path) => {
            let (text, loose) = session::read_secret_file(path)?;
            if let Some(mode) = loose {
                // Not refused (a shell's `>` makes 0644): it is rewritten 0600.
                eprintln!(
                    "tessera: warning: {} was open to group or others (mode {mode:03o}); \
                     the renewed file is 0600",
                    path.display()
                );
            }
            text
        }
        None => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| ClientError::Input {
                    what: "the token pair from standard input",
                    source,
                })?;
            text
        }
    };
    let mut doc: Value = serde_json::from_str(&text)
        .map_err(|e| ClientError::Unusable(format!("the token pair is not JSON: {e}")))?;
    let (at, access, refresh) = find_pair(&doc)?;
    let server = match (&args.server, doc["server"].as_str()) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => parse_server_url(s).map_err(ClientError::Unusable)?,
        (None, None) => match session::load() {
            Ok(kept) => kept.server,
            Err(ClientError::NotLoggedIn) => return Err(ClientError::NoServer),
            Err(e) => return Err(e),
        },
    };
    warn_if_clear(&server);
    let answer = Api::new(&server)?.renew(&access, &refresh).await?;
    // The new pair and its times, where the old ones were: the document
    // keeps its shape, so it can be renewed again the same way.
    let target = match at {
        PairAt::Top => &mut doc,
        PairAt::TokenInfo => &mut doc["tokenInfo"],
    };
    for key in [
        "accessToken",
        "refreshToken",
        "tokenExpiryTimestamp",
        "renewableUntilTimestamp",
    ] {
        if let Some(v) = answer.get(key) {
            target[key] = v.clone();
        }
    }
    let mut text = pretty(&doc);
    text.push('\n');
    match &args.file {
        Some(path) => {
            if let Err(e) = session::write_private(path, text.as_bytes()) {
                // The old pair no longer works: the new one must not be lost.
                print!("{text}");
                eprintln!("tessera: the new pair is printed above: the old one no longer works");
                return Err(e);
            }
            eprintln!(
                "Renewed token {}; the new pair is in {}.",
                answer["tokenId"],
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON serialises")
}

/// Asks `prompt` on standard error and reads one line of standard input.
fn prompt_line(prompt: &str) -> Result<String, ClientError> {
    eprint!("{prompt}");
    let _ = io::stderr().flush();
    read_line("the user name from standard input")
}

/// One line of standard input, without its line break; an error at end of input.
fn read_line(what: &'static str) -> Result<String, ClientError> {
    let mut line = String::new();
    let n = io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|source| ClientError::Input { what, source })?;
    if n == 0 {
        return Err(ClientError::Input {
            what,
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "end of input"),
        });
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_secrets() {
        assert_eq!(
            parse_server_url("https://t.example.com/"),
            Ok("https://t.example.com".into())
        );
        assert_eq!(
            parse_server_url("http://127.0.0.1:8080/commandcenter/api/"),
            Ok("http://127.0.0.1:8080/commandcenter/api".into())
        );
        assert!(parse_server_url("localhost:8080").is_err());
        assert!(parse_server_url("ftp://h").is_err());
        assert!(parse_server_url("https://u:p@h").is_err());
    }

    #[test]
    fn pairs_are_found_in_every_shape() {
        let flat = json!({"accessToken": "a", "refreshToken": "r"});
        let wrapped = json!({"error": {}, "tokenInfo": {"accessToken": "a", "refreshToken": "r"}});
        for doc in [flat, wrapped] {
            let (_, a, r) = find_pair(&doc).unwrap();
            assert_eq!((a.expose(), r.expose()), ("a", "r"));
        }
        assert!(matches!(
            find_pair(&json!({"accessToken": "a"})),
            Err(ClientError::Unusable(m)) if m.contains("refreshToken")
        ));
        assert!(find_pair(&json!({"x": 1})).is_err());
    }
}
