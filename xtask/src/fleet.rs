//! `cargo xtask fleet --store URL [--nodes N] [--release] [-- <serve args>]`:
//! the fleet the tests run (`tests/fleet.rs`), for a person to try: N
//! `tessera serve` nodes over one store (every node the same URL and
//! arguments) behind our own nginx, round-robin, the addresses printed;
//! everything stopped on Enter, end of input or Ctrl-C.

use std::io::BufRead;

use tessera_testsupport::fleet::{Fleet, LaunchFn};
use tessera_testsupport::{Launch, StoreFixture};

/// What `fleet` was asked.
struct Options {
    store: String,
    nodes: usize,
    release: bool,
    serve_args: Vec<String>,
}

const USAGE: &str =
    "usage: cargo xtask fleet --store URL [--nodes N] [--release] [-- <tessera serve args>]";

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        store: String::new(),
        nodes: 3,
        release: false,
        serve_args: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => o.store = it.next().ok_or(USAGE)?.clone(),
            "--nodes" => {
                o.nodes = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--nodes takes a number of nodes, at least 1")?
            }
            "--release" => o.release = true,
            "--" => o.serve_args = it.by_ref().cloned().collect(),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.store.is_empty() {
        return Err(format!("--store is required (sqlite://…, postgres://…, redis://…, redis+cluster://h:p,h:p,…)\n{USAGE}"));
    }
    Ok(o)
}

/// Builds `tessera` with every backend, starts the fleet, prints where it
/// listens, and waits for Enter.
pub fn run(args: &[String]) -> Result<(), String> {
    let o = options(args)?;
    let nginx = tessera_testsupport::proxy::find_binary("nginx")
        .ok_or("nginx is not installed (Debian/Ubuntu: `apt-get install nginx-light`)")?;
    let mut build = crate::cargo();
    build.args(["build", "-p", "tessera-server", "--all-features"]);
    if o.release {
        build.arg("--release");
    }
    crate::run_command(build)?;
    let profile = if o.release { "release" } else { "debug" };
    let binary = crate::target_dir().join(profile).join("tessera");
    let password =
        std::env::var("TESSERA_ADMIN_PASSWORD").unwrap_or_else(|_| "change-me".to_string());
    let store = StoreFixture::external(o.store.clone(), Vec::new());
    let (serve_args, admin) = (o.serve_args.clone(), password.clone());
    let launch: LaunchFn = Box::new(move || {
        Launch::new(&binary, &store)
            .admin_password(&admin)
            // The balancer is the nodes' proxy: they read the client's
            // address from the X-Forwarded-For it appends.
            .args(["--trusted-proxies", "127.0.0.1"])
            .args(&serve_args)
            .keep_log_lines(1000)
    });
    let fleet = Fleet::start(&nginx, o.nodes, launch)?;
    println!("{} nodes over {}", o.nodes, o.store);
    print!("{}", fleet.describe());
    let base = fleet.balancer().base.clone();
    let encoded = tessera_testsupport::client::base64(&password);
    println!(
        "\nadmin password (a first start over an empty store): {password}\n\
         try: curl -si {base}/Login -H 'Content-Type: application/json' \
         -d '{{\"username\":\"admin\",\"password\":\"{encoded}\"}}'\n\
         every answer through the balancer names its node in X-Fleet-Node.\n\
         Press Enter (or Ctrl-C) to stop."
    );
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    drop(fleet);
    Ok(())
}
