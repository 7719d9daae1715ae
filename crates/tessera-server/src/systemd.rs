//! Telling a service manager how the server stands (systemd's `Type=notify`,
//! `deploy/tessera.service`): ready once it listens and the store has
//! answered, stopping once shutdown begins. Without `NOTIFY_SOCKET` in the
//! environment (not started by systemd) each call does nothing.
//!
//! *Why:* with `Type=exec` systemd takes the service as started as soon as
//! the binary runs, so units ordered after it (a proxy, a job that creates
//! tokens) may start before it listens; and a `systemctl stop` shows the
//! drain as "deactivating" only when told.

use std::net::SocketAddr;

use sd_notify::NotifyState;

/// The server listens on `addr` and has read its store: systemd may start
/// what waits for it.
pub fn ready(addr: SocketAddr) {
    let status = format!("listening on http://{addr}");
    tell(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Shutdown has begun: not ready, draining the requests in flight.
pub fn stopping() {
    tell(&[
        NotifyState::Stopping,
        NotifyState::Status("draining the requests in flight"),
    ]);
}

/// Sends `states`; a failure is logged, never fatal (systemd then times the
/// start out, which says more than a server that refused to run).
fn tell(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}
