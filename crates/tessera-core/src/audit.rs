//! The audit trail's other end: what the service tells the world after it
//! stored an [`Event`]. The server's sink writes each as one JSON log line;
//! the store keeps the trail itself ([`crate::store::TokenStore::record_event`]).

use crate::error::StoreError;
use crate::model::Event;

/// Told of every event the service recorded, once, after the store was
/// asked to keep it (`stored` says whether it did). Called on the request's
/// task: an implementation must not block.
pub trait EventSink: Send + Sync {
    /// `event` happened; `stored` is the store's answer to keeping it (its
    /// trail record, then, for a webhook notice's kind, the notice).
    fn recorded(&self, event: &Event, stored: Result<(), &StoreError>);
}

/// A sink that does nothing (the default: the trail is in the store).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl EventSink for Silent {
    fn recorded(&self, _: &Event, _: Result<(), &StoreError>) {}
}

/// A sink that keeps what it is told, for tests.
#[derive(Debug, Default)]
pub struct Collect(std::sync::Mutex<Vec<(Event, bool)>>);

impl Collect {
    /// Every event told so far, with whether it was stored.
    pub fn taken(&self) -> Vec<(Event, bool)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl EventSink for Collect {
    fn recorded(&self, event: &Event, stored: Result<(), &StoreError>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((event.clone(), stored.is_ok()));
    }
}
