//! The bare HTTP ceiling of `cargo xtask bench`: warp with one route, `GET
//! /` answering `ok`, on tokio's default multi-threaded runtime, as
//! `tessera` runs. No store, no log, no middleware: what the HTTP stack
//! alone answers on this machine, measured in the same run as every case.
//!
//! Binds `127.0.0.1:0` (or the address given as its one argument) and prints
//! `http://ADDR` on its first line of stdout once it listens.

use std::io::Write;
use std::net::SocketAddr;

use warp::Filter;

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("an address such as 127.0.0.1:8080"))
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let route = warp::path::end().and(warp::get()).map(|| "ok");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("cannot bind the ceiling's address");
    let local = listener.local_addr().expect("a bound address");
    println!("http://{local}");
    std::io::stdout().flush().expect("stdout");
    warp::serve(route).incoming(listener).run().await;
}
