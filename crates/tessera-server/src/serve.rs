//! Connections: accepting them, bounding them, and letting them go.
//!
//! warp's own server keeps every connection for as long as the client likes
//! and, on shutdown, waits for all of them without a deadline; one half-sent
//! request head kept `tessera` from ever exiting, and 20,000 silent
//! connections used up its file descriptors. This module serves the same
//! warp filter over hyper, with:
//! * a **header-read timeout**: once the first byte of a request has
//!   arrived, its head must be complete within it (and, in the API, its
//!   body), or the connection closes. hyper's own timeout also counts the
//!   idle time before that first byte, which would close every keep-alive
//!   connection a proxy holds after a few seconds, so the connection watches
//!   its socket itself ([`Watched`]);
//! * an **idle timeout**: a connection on which nothing arrives, and no
//!   request is in flight, for that long is closed;
//! * a **bound on open connections**: at the bound, the connection idle the
//!   longest is closed to make room, one that never sent a request first (a
//!   flood of silent connections never locks a proxy's check out); when none
//!   is idle, the new one is refused;
//! * a **drain** on shutdown: `/health/ready` turns not-ready and every
//!   answer says `Connection: close`; what is already in the listen queue is
//!   accepted, then the listener closes; each connection answers what it has
//!   received and closes once idle (after [`SETTLE`]); whatever is left when
//!   the grace ends is closed.
//!
//! It also puts `X-Content-Type-Options: nosniff` on every answer, and the
//! peer's address in each request ([`Peer`]). A [`Front`], when given,
//! answers the check ahead of the filter; everything above holds for its
//! answers too.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::Either;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use warp::http::{header, HeaderValue, Request};

use crate::front::Front;
use crate::metrics::Metrics;

/// After the drain begins, a connection that has had no request in flight
/// for this long is closed: long enough for a request already sent to be
/// read and answered (with `Connection: close`), short enough to let
/// shutdown finish quickly.
pub const SETTLE: Duration = Duration::from_millis(250);

/// How long the accept loop pauses when the process is out of file
/// descriptors (after closing an idle connection), instead of spinning.
const DESCRIPTORS_PAUSE: Duration = Duration::from_millis(10);

/// The limits of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A request head must be complete within this (HTTP/1).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// From the shutdown signal to the last connection closed.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The peer of the connection a request came on, put in each request's
/// extensions (warp's own `addr::remote` is only filled by warp's server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// The most connections this process can hold open with room to spare for
/// the store's connections and files: the descriptor limit less 256, at
/// most 10,000 (Linux; elsewhere 10,000).
pub fn default_max_connections() -> usize {
    #[cfg(target_os = "linux")]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(n) = limit.current {
            return usize::try_from(n.saturating_sub(256))
                .unwrap_or(usize::MAX)
                .clamp(16, 10_000);
        }
    }
    10_000
}

/// One open connection, as the registry sees it.
#[derive(Debug, Default)]
struct Conn {
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Requests answered so far.
    served: AtomicU64,
    /// When a request last ended (or the connection opened), in ms since
    /// the registry's epoch.
    last_active: AtomicU64,
    /// When the first byte of the next request arrived, in ms since the
    /// epoch plus one (0: nothing has arrived since the last request).
    head_started: AtomicU64,
    /// Told to close (to make room for a new connection).
    evict: Notify,
    /// Told that a request's first byte arrived (its head's clock starts).
    head: Notify,
}

impl Conn {
    /// Bytes arrived: if no request is in flight and none has begun, the
    /// next one begins now.
    fn arrived(&self, now_ms: u64) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(now_ms + 1, Ordering::Relaxed);
            self.head.notify_one();
        }
    }
}

/// Every open connection.
#[derive(Debug)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
    epoch: Instant,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn add(self: &Arc<Self>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::default());
        conn.last_active.store(self.now_ms(), Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, conn.clone());
        Registered {
            registry: self.clone(),
            id,
            conn,
        }
    }

    /// Tells the connection idle the longest to close, one that never sent
    /// a whole request first (a flood of silent connections then displaces
    /// its own kind, not a proxy's idle keep-alive connections); false when
    /// every connection has a request in flight.
    fn evict_oldest_idle(&self) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = conns
            .values()
            .filter(|c| c.in_flight.load(Ordering::Relaxed) == 0)
            .min_by_key(|c| {
                (
                    c.served.load(Ordering::Relaxed) > 0,
                    c.last_active.load(Ordering::Relaxed),
                )
            });
        match oldest {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// When `conn` is to be closed for a head that takes too long, or for
    /// nothing arriving at all; `None` while a request is in flight.
    fn deadline(&self, conn: &Conn, options: &ServeOptions) -> Option<Instant> {
        if conn.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let (since, limit) = match conn.head_started.load(Ordering::Relaxed) {
            0 => (
                conn.last_active.load(Ordering::Relaxed),
                options.idle_timeout,
            ),
            started => (started - 1, options.header_read_timeout),
        };
        Some(self.epoch + Duration::from_millis(since) + limit)
    }

    /// How long `conn` has had no request in flight (zero while it has one).
    fn idle_for(&self, conn: &Conn) -> Duration {
        if conn.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = conn.last_active.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }
}

/// A connection's place in the registry, given up when its task ends
/// (also when the task is aborted at the end of the grace).
struct Registered {
    registry: Arc<Registry>,
    id: u64,
    conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// A request in flight on a connection; its end makes the connection idle.
struct InFlight {
    registry: Arc<Registry>,
    conn: Arc<Conn>,
}

impl InFlight {
    fn new(registry: &Arc<Registry>, conn: &Arc<Conn>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::Relaxed);
        conn.head_started.store(0, Ordering::Relaxed);
        InFlight {
            registry: registry.clone(),
            conn: conn.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn
            .last_active
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.conn.served.fetch_add(1, Ordering::Relaxed);
        self.conn.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's socket, noting when bytes arrive (for the header-read
/// and idle timeouts).
struct Watched {
    stream: TcpStream,
    registry: Arc<Registry>,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.arrived(self.registry.now_ms());
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `filter` on `listener` until `shutdown` resolves, then drains
/// (see the module's documentation) and returns within
/// `options.shutdown_grace`. `draining` is set when the drain begins (the
/// API's readiness reads it). `front`, if any, answers the requests it
/// takes (the check) before `filter` sees them.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
    front: Option<Front>,
    options: ServeOptions,
    draining: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: warp::Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let registry = Arc::new(Registry {
        conns: Mutex::new(HashMap::new()),
        next: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let (drain_tx, drain_rx) = watch::channel(false);
    let service = hyper_util::service::TowerToHyperService::new(warp::service(filter));
    let mut tasks = JoinSet::new();
    let start = |stream: TcpStream, peer: SocketAddr, tasks: &mut JoinSet<()>| {
        let registered = registry.add();
        tasks.spawn(connection(
            stream,
            peer,
            registered,
            Answer {
                front: front.clone(),
                service: service.clone(),
            },
            options.clone(),
            draining.clone(),
            drain_rx.clone(),
        ));
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        metrics
            .connections_open
            .store(registry.len() as u64, Ordering::Relaxed);
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if registry.len() >= options.max_connections && !registry.evict_oldest_idle() {
                        // Every connection is busy: refuse this one (closed at once).
                        metrics.connections_refused.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    start(stream, peer, &mut tasks);
                }
                Err(e) => {
                    if is_out_of_descriptors(&e) {
                        registry.evict_oldest_idle();
                        tokio::time::sleep(DESCRIPTORS_PAUSE).await;
                    } else {
                        tracing::debug!(error = %e, "accept failed");
                    }
                }
            },
        }
    }

    // The drain: not ready, `Connection: close` on every answer.
    let grace_ends = Instant::now() + options.shutdown_grace;
    draining.store(true, Ordering::SeqCst);
    let _ = drain_tx.send(true);
    // Connections the kernel accepted already may hold requests: take them.
    while let Some(Ok((stream, peer))) = listener.accept().now_or_never() {
        start(stream, peer, &mut tasks);
    }
    drop(listener);
    tracing::info!(
        connections = registry.len(),
        grace_ms = options.shutdown_grace.as_millis() as u64,
        "draining connections"
    );
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout_at(grace_ends, all_done).await.is_err() {
        tracing::warn!(
            connections = registry.len(),
            "shutdown grace over: closing the connections left"
        );
        tasks.shutdown().await;
    }
}

/// What answers a connection's requests: the front, for those it takes,
/// then the filter's service.
struct Answer<S> {
    front: Option<Front>,
    service: S,
}

/// Serves one connection until it ends, idles out, is evicted, or the
/// drain closes it.
async fn connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    registered: Registered,
    answer: Answer<S>,
    options: ServeOptions,
    draining: Arc<AtomicBool>,
    mut drain: watch::Receiver<bool>,
) where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let registry = registered.registry.clone();
    let conn = registered.conn.clone();
    let (svc_registry, svc_conn) = (registry.clone(), conn.clone());
    let Answer { front, service } = answer;
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let in_flight = InFlight::new(&svc_registry, &svc_conn);
        let answer = match front.as_ref().and_then(|f| Some((f, f.takes(&req)?))) {
            Some((front, way)) => Either::Left(front.answer(req, way, peer).map(Ok)),
            None => {
                req.extensions_mut().insert(Peer(peer));
                Either::Right(service.call(req))
            }
        };
        let draining = draining.clone();
        async move {
            let mut response = answer.await?;
            drop(in_flight);
            let headers = response.headers_mut();
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            if draining.load(Ordering::Relaxed) {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timeouts are this module's (see `Registry::deadline`).
    builder.http1().header_read_timeout(None);
    let io = Watched {
        stream,
        registry: registry.clone(),
        conn: conn.clone(),
    };
    let served = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    let mut served = std::pin::pin!(served);
    // When, after the drain began, an idle connection is let go.
    let mut settle_at: Option<Instant> = drain.borrow().then(|| Instant::now() + SETTLE);
    let mut shutting = false;
    loop {
        // While a request is in flight, look again after an idle timeout.
        let deadline = registry.deadline(&conn, &options);
        let wake = deadline.unwrap_or_else(|| Instant::now() + options.idle_timeout);
        let settle = async {
            match settle_at {
                Some(at) if !shutting => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = served.as_mut() => break,
            _ = conn.evict.notified() => break,
            // A head began: its deadline may be sooner than the idle one.
            _ = conn.head.notified() => {}
            _ = tokio::time::sleep_until(wake) => {
                if registry.deadline(&conn, &options).is_some_and(|d| d <= Instant::now()) {
                    break;
                }
            }
            changed = drain.changed(), if settle_at.is_none() => {
                if changed.is_err() || *drain.borrow() {
                    settle_at = Some(Instant::now() + SETTLE);
                }
            }
            _ = settle => {
                if registry.idle_for(&conn) >= SETTLE {
                    // hyper closes an idle connection at once, and a busy
                    // one after its answer.
                    served.as_mut().graceful_shutdown();
                    shutting = true;
                } else {
                    settle_at = Some(Instant::now() + SETTLE);
                }
            }
        }
    }
    drop(registered);
}

/// The process (or system) has no file descriptor left for a new connection.
fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}
