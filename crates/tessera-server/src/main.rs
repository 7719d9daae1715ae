//! `tessera`: serve, add users, import legacy tokens (CONTRACT §7); and a
//! terminal client of a server (`login`, `logout`, `token …`: see
//! [`tessera_server::client`]).

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rand::distributions::Alphanumeric;
use rand::Rng;
use tessera_core::cache::Cache;
use tessera_core::clock::SystemClock;
use tessera_core::model::Role;
use tessera_core::path::PathError;
use tessera_core::policy::{Policy, PolicyConfig};
use tessera_core::service::Tessera;
use tessera_core::{Error as CoreError, StoreError};
use tessera_server::auth::Addressing;
use tessera_server::client;
use tessera_server::config::{
    parse_proxies, Cli, Command, ImportArgs, LogFormat, ServeArgs, StoreArgs, UserAddArgs,
    UserCommand, UserPasswdArgs,
};
use tessera_server::hashing::HashPool;
use tessera_server::metrics::Metrics;
use tessera_server::serve::{default_max_connections, ServeOptions};
use tessera_server::stores::{self, OpenError, StoreOptions};
use tessera_server::throttle::{Lockout, LoginThrottle};
use tessera_server::App;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

/// Why a command failed, printed as `tessera: <message>`. Each message says
/// what was being done and, from the error kept as its source, why it failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// An argument that cannot be used (its message names it).
    #[error("{0}")]
    Argument(String),
    /// The policy's paths (web-service roots, scope prefixes) do not parse.
    #[error("invalid policy configuration: {0}")]
    Policy(#[source] PathError),
    /// The store named cannot be opened.
    #[error(transparent)]
    Store(#[from] OpenError),
    /// The store opened, then could not be read.
    #[error("cannot read the store: {0}")]
    ReadStore(#[source] StoreError),
    /// The password-hashing threads could not be started.
    #[error("cannot start the password hashing threads: {0}")]
    HashThreads(#[source] io::Error),
    /// The listening address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// Why binding failed.
        source: io::Error,
    },
    /// The bound listener's address cannot be read.
    #[error("cannot read the listening address: {0}")]
    LocalAddr(#[source] io::Error),
    /// The service refused or failed (a user not added).
    #[error("{0}")]
    Service(#[from] CoreError),
    /// No password could be read for `user add`.
    #[error("cannot read the password from standard input: {0}")]
    ReadPassword(#[source] io::Error),
    /// `user add` without a password.
    #[error("no password: set TESSERA_PASSWORD or give it on standard input")]
    NoPassword,
    /// The legacy import file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file named.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// The legacy import file has bad lines (each named in the message).
    #[error("nothing imported:\n{0}")]
    ImportFile(String),
    /// The legacy import was refused as a whole.
    #[error("nothing imported: {0}")]
    Import(#[source] CoreError),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (result, log) = match cli.command {
        Command::Serve(args) => {
            let log = Log::init(args.log_format);
            (serve(*args, &log).await, Some(log))
        }
        Command::User {
            command: UserCommand::Add(args),
        } => (user_add(args).await, None),
        Command::User {
            command: UserCommand::Passwd(args),
        } => (user_passwd(args).await, None),
        Command::ImportLegacy(args) => (import_legacy(args).await, None),
        // The client commands have exit codes of their own.
        Command::Login(args) => return client::exit(client::login(args).await),
        Command::Logout => return client::exit(client::logout().await),
        Command::Token { command } => return client::exit(client::token(command).await),
    };
    // Every line logged is written before anything else is said, and
    // before the process exits.
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The server's log on standard error: the subscriber's lines, and the
/// few the server prints itself ([`Log::say`]), in the order they were
/// made. A thread of its own writes them, so that a request's log line is
/// handed over, never waited for: a slow reader of standard error slows
/// the writing thread, not the workers answering requests (until 128,000
/// lines wait; then a line waits for room rather than being lost). Dropping
/// it writes every line sent before (within a second).
struct Log {
    writer: NonBlocking,
    _written: WorkerGuard,
}

impl Log {
    /// Installs the subscriber (`TESSERA_LOG` filters, `info` by default)
    /// writing in `format` to standard error through the log's thread.
    fn init(format: LogFormat) -> Log {
        let (writer, written) = NonBlockingBuilder::default()
            .lossy(false)
            .thread_name("tessera-log")
            .finish(io::BufWriter::new(io::stderr()));
        let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(writer.clone());
        match format {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().init(),
        }
        Log {
            writer,
            _written: written,
        }
    }

    /// Prints `text` as one line of its own on standard error, after every
    /// line logged before it.
    fn say(&self, text: &str) {
        let line = format!("{text}\n");
        let _ = self.writer.clone().write_all(line.as_bytes());
    }
}

/// The service over the store the arguments name.
async fn service(store: &StoreArgs, policy: PolicyConfig) -> Result<Tessera, Failure> {
    let policy = Policy::new(policy).map_err(Failure::Policy)?;
    let options = StoreOptions {
        connect_timeout: store.store_connect_timeout,
        command_timeout: store.store_command_timeout,
        retention: store.retention,
        redis_prefix: store.redis_prefix.clone(),
    };
    let store = stores::open(&store.store, &options).await?;
    Ok(Tessera::new(store, policy, Arc::new(SystemClock))
        .with_event_sink(Arc::new(tessera_server::audit::AuditLog)))
}

async fn serve(args: ServeArgs, log: &Log) -> Result<(), Failure> {
    let trusted_proxies = parse_proxies(&args.trusted_proxies).map_err(Failure::Argument)?;
    let policy = args.policy.to_config();
    let (default_workers, default_queue) = HashPool::default_size();
    let workers = args.hash_workers.unwrap_or(default_workers).max(1);
    let hashing = HashPool::new(
        workers,
        args.hash_queue.unwrap_or(default_queue),
        args.hash_share,
    )
    .map_err(Failure::HashThreads)?;
    let mut svc = service(&args.store, policy)
        .await?
        .with_password_work(Arc::new(hashing));
    if args.cache_capacity > 0 {
        svc = svc.with_cache(Arc::new(Cache::new(
            args.cache_capacity,
            args.cache_staleness,
        )));
    }
    let receivers =
        tessera_server::webhook::parse_receivers(&args.webhooks, args.webhook_secret.as_deref())
            .map_err(|e| Failure::Argument(e.to_string()))?;
    let hooks = if receivers.is_empty() {
        None
    } else {
        let hooks = tessera_server::webhook::Webhooks::new(
            receivers,
            args.webhook_retry_for,
            args.webhook_backoff_max,
            args.webhook_expiry_scan,
        )
        .map_err(|e| Failure::Argument(format!("the webhook client: {e}")))?;
        svc = svc.with_webhook_receivers(hooks.ids());
        Some(Arc::new(hooks))
    };
    let svc = Arc::new(svc);
    first_start(&svc, log).await?;
    if let Err(e) = svc.checker().refresh_legacy_horizon().await {
        tracing::warn!(error = %e, "cannot read the legacy horizon yet");
    }
    let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let app = Arc::new(App {
        svc: svc.clone(),
        addressing: Addressing {
            trusted_proxies,
            header: args.client_ip_header,
        },
        forward: args.forward_auth,
        throttle: LoginThrottle::new(Lockout {
            max_failures: args.login_max_failures.max(1),
            window: secs(args.login_window),
            lockout: secs(args.login_lockout),
        }),
        metrics: Arc::new(Metrics::default()),
        draining: Arc::default(),
        ready_timeout: args.ready_timeout,
        body_timeout: args.header_read_timeout,
    });
    let options = ServeOptions {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args
            .max_connections
            .unwrap_or_else(default_max_connections)
            .max(1),
        shutdown_grace: args.shutdown_grace,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|source| Failure::Listen {
            addr: args.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(Failure::LocalAddr)?;
    let usage_every = (!args.last_used_flush.is_zero()).then_some(args.last_used_flush);
    svc.checker().set_usage_tracking(usage_every.is_some());
    tessera_server::spawn_upkeep(
        svc.clone(),
        args.sweep_interval,
        secs(args.store.retention),
        secs(args.audit_retention),
        usage_every,
    );
    tessera_server::spawn_follower(svc.clone());
    if let Some(hooks) = hooks {
        let _ = app.metrics.webhooks.set(hooks.status.clone());
        for r in &hooks.receivers {
            tracing::info!(receiver = %r.label, "webhook receiver");
        }
        tessera_server::webhook::spawn(svc.clone(), hooks);
    }
    tracing::info!(%addr, store = %stores::redact_url(&args.store.store), "listening");
    log.say(&format!("tessera listening on http://{addr}"));
    tessera_server::systemd::ready(addr);
    tracing::info!(
        forward_auth = ?args.forward_auth,
        client_ip_header = ?args.client_ip_header,
        max_connections = options.max_connections,
        hash_workers = workers,
        hash_share = args.hash_share,
        cache_capacity = args.cache_capacity,
        cache_staleness_ms = args.cache_staleness.as_millis() as u64,
        "serving"
    );
    let shutdown = async {
        tessera_server::shutdown_signal().await;
        tessera_server::systemd::stopping();
    };
    tessera_server::run(listener, app, options, shutdown).await;
    // The last-used times noted since the last flush, before leaving.
    match svc.flush_usage().await {
        Ok(n) if n > 0 => tracing::info!(written = n, "last-used times written"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "writing last-used times failed"),
    }
    Ok(())
}

/// On a store with no user at all, creates the admin `admin` with the
/// password in TESSERA_ADMIN_PASSWORD, or a random one printed once.
async fn first_start(svc: &Tessera, log: &Log) -> Result<(), Failure> {
    if svc.store().has_users().await.map_err(Failure::ReadStore)? {
        return Ok(());
    }
    let (password, generated) = match std::env::var("TESSERA_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (
            rand::rngs::OsRng
                .sample_iter(&Alphanumeric)
                .take(24)
                .map(char::from)
                .collect::<String>(),
            true,
        ),
    };
    svc.add_user("admin", &password, Role::Admin).await?;
    if generated {
        log.say(&format!(
            "\n\
             *************************************************************\n  \
             First start: created the admin user `admin`.\n  \
             Password: {password}\n  \
             It is shown only this once. Change it after logging in\n  \
             (POST /V4/User/Password with the old and the new one), or\n  \
             with `tessera user passwd admin` on this store.\n\
             *************************************************************\n"
        ));
    } else {
        log.say("First start: created the admin user `admin` with the password in TESSERA_ADMIN_PASSWORD.");
    }
    Ok(())
}

/// The password a `user` command is given: TESSERA_PASSWORD, or one line
/// of standard input; never empty.
fn given_password() -> Result<String, Failure> {
    let password = match std::env::var("TESSERA_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(Failure::ReadPassword)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if password.is_empty() {
        return Err(Failure::NoPassword);
    }
    Ok(password)
}

async fn user_passwd(args: UserPasswdArgs) -> Result<(), Failure> {
    let password = given_password()?;
    let svc = service(&args.store, PolicyConfig::default()).await?;
    let user = svc.set_password_of(&args.name, &password).await?;
    println!(
        "set the password of {:?} (id {}); their sessions ended",
        user.name, user.id.0
    );
    Ok(())
}

async fn user_add(args: UserAddArgs) -> Result<(), Failure> {
    let password = given_password()?;
    let svc = service(&args.store, PolicyConfig::default()).await?;
    let role = if args.admin { Role::Admin } else { Role::User };
    let user = svc.add_user(&args.name, &password, role).await?;
    println!(
        "created user {:?} (id {}, role {})",
        user.name,
        user.id.0,
        role.as_str()
    );
    Ok(())
}

async fn import_legacy(args: ImportArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&args.file).map_err(|source| Failure::ReadFile {
        path: args.file.clone(),
        source,
    })?;
    let lines = tessera_server::legacy::parse(&text).map_err(Failure::ImportFile)?;
    let svc = service(&args.store, PolicyConfig::default()).await?;
    let n = svc.import_legacy(&lines).await.map_err(Failure::Import)?;
    println!("imported {n} legacy tokens");
    Ok(())
}
