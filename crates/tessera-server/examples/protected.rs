//! Another Rust service protecting its own routes with Tessera's check, in
//! process, against the same store as the `tessera` server:
//!
//! ```sh
//! TESSERA_STORE=sqlite://tessera.db cargo run -p tessera-server --example protected
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3030/Client/5
//! ```
//!
//! A token whose scope allows `GET /Client/5` gets `hello <user>`; others get
//! 401 or 403 with a `WWW-Authenticate` challenge, or 503 if the store is down.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::check::Allowed;
use tessera_core::clock::SystemClock;
use tessera_core::policy::{Policy, PolicyConfig};
use tessera_core::service::Tessera;
use tessera_server::filter::{authorized, recover, Addressing};
use tessera_server::stores::{open, StoreOptions};
use warp::Filter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("TESSERA_STORE").unwrap_or_else(|_| "sqlite://tessera.db".into());
    let options = StoreOptions {
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        retention: Duration::from_secs(7 * 86_400),
        redis_prefix: "tessera:".into(),
    };
    let store = open(&url, &options).await?;
    let svc = Arc::new(Tessera::new(
        store,
        Policy::new(PolicyConfig::default())?,
        Arc::new(SystemClock),
    ));
    svc.checker().refresh_legacy_horizon().await?;

    // Every route below `authorized` sees only allowed callers.
    let routes = authorized(svc, Addressing::default())
        .map(|who: Allowed| format!("hello {} (token {})\n", who.user_name(), who.token_id().0))
        .recover(recover);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3030").await?;
    println!("protected service on http://{}", listener.local_addr()?);
    warp::serve(routes).incoming(listener).run().await;
    Ok(())
}
