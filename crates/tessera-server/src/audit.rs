//! The audit trail's log lines: every event the service records is one
//! line at `info` on the `tessera::audit` target (one JSON object with
//! `--log-format json`), and a warning when the store could not keep it
//! (the trail's record, or the webhook notice enqueued after it).

use tessera_core::audit::EventSink;
use tessera_core::model::{Actor, Event};
use tessera_core::StoreError;

/// The server's [`EventSink`]: log lines only (the store keeps the trail).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditLog;

impl EventSink for AuditLog {
    fn recorded(&self, e: &Event, stored: Result<(), &StoreError>) {
        let (actor_user_id, actor_token_id) = match e.actor {
            Actor::User(u) => (Some(u.0), None),
            Actor::Token(t) => (None, Some(t.0)),
            Actor::Nobody => (None, None),
        };
        let address = e.address.map(|a| a.to_string());
        tracing::info!(
            target: "tessera::audit",
            event = e.kind.as_str(),
            outcome = e.kind.outcome().as_str(),
            at = e.at,
            actor_user_id,
            actor_token_id,
            user_id = e.user_id.map(|u| u.0),
            token_id = e.token_id.map(|t| t.0),
            address = address.as_deref(),
            detail = e.detail.as_str(),
            stored = stored.is_ok(),
            "audit"
        );
        if let Err(error) = stored {
            tracing::warn!(
                target: "tessera::audit",
                event = e.kind.as_str(),
                %error,
                "the store could not keep this event (its trail record, or its webhook notice)"
            );
        }
    }
}
