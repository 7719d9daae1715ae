//! The change stream: how a store tells every node which token records
//! changed, so that a node's cache ([`crate::cache`]) never serves a record
//! it could have been told is no longer current.
//!
//! Every backend implements [`ChangeFeed`]:
//! * a write that changes token records publishes which ones *atomically with
//!   the write* (PostgreSQL: `NOTIFY` in the same transaction; Redis: `PUBLISH`
//!   in the same script; memory: under the same lock), so that no subscriber
//!   can read the new record before the message is on its way;
//! * a subscription delivers messages in commit order, and fails (never ends
//!   quietly) when it loses its connection;
//! * [`ChangeFeed::beat`] sends a heartbeat through the same channel. A beat
//!   that comes back proves that every change committed before it was sent
//!   has been delivered; the cache serves records only while one has come
//!   back recently enough.
//!
//! Messages travel as short text ([`Change::encode`], [`Change::parse`]), the
//! same on every backend; anything unreadable is read as [`Change::All`], so a
//! damaged message empties the cache instead of being ignored.

use async_trait::async_trait;

use crate::model::TokenId;
use crate::store::StoreResult;

/// Most token ids one message names. A change naming more is sent as
/// [`Change::All`]: the cache empties rather than receive a message longer
/// than a backend carries (PostgreSQL's payloads end at 8,000 bytes).
pub const MAX_IDS_PER_MESSAGE: usize = 300;

/// One message of a store's change stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These token records were inserted, changed or removed.
    Tokens(Vec<TokenId>),
    /// Any token record may have changed (a write the stream does not
    /// itemise, or a message this node cannot read): empty the cache.
    All,
    /// A heartbeat published with [`ChangeFeed::beat`] (any node's).
    Beat(String),
}

impl Change {
    /// The message's text: `t:1,2,3`, `all` or `b:<beat>`.
    pub fn encode(&self) -> String {
        match self {
            Change::Tokens(ids) if ids.len() <= MAX_IDS_PER_MESSAGE && !ids.is_empty() => {
                let list: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
                format!("t:{}", list.join(","))
            }
            Change::Tokens(_) | Change::All => "all".to_owned(),
            Change::Beat(text) => format!("b:{text}"),
        }
    }

    /// Reads a message's text. Anything that is not exactly one of the three
    /// forms is [`Change::All`] (fail closed).
    pub fn parse(text: &str) -> Change {
        if let Some(beat) = text.strip_prefix("b:") {
            return Change::Beat(beat.to_owned());
        }
        if let Some(list) = text.strip_prefix("t:") {
            let ids: Option<Vec<TokenId>> = list
                .split(',')
                .map(|n| {
                    // Digits only: `u64::from_str` would take a leading `+`.
                    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| n.parse().ok().map(TokenId))
                        .flatten()
                })
                .collect();
            if let Some(ids) = ids {
                return Change::Tokens(ids);
            }
        }
        Change::All
    }
}

/// A store's change stream (see the module doc for what a backend promises).
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Subscribes. Once this returns, every change committed afterwards is
    /// delivered by the returned stream, in commit order, or the stream
    /// fails.
    async fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>>;

    /// Publishes a heartbeat through the same channel as the changes: every
    /// subscriber receives `Change::Beat(text)` after every change committed
    /// before this call.
    async fn beat(&self, text: &str) -> StoreResult<()>;
}

/// One subscription to a [`ChangeFeed`].
#[async_trait]
pub trait ChangeStream: Send {
    /// The next message. An error once the subscription is cut: the caller
    /// drops what it cached and subscribes again.
    async fn next(&mut self) -> StoreResult<Change>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for c in [
            Change::Tokens(vec![TokenId(1)]),
            Change::Tokens(vec![TokenId(7), TokenId(u64::MAX)]),
            Change::All,
            Change::Beat("node:12".into()),
            Change::Beat(String::new()),
        ] {
            assert_eq!(Change::parse(&c.encode()), c);
        }
    }

    #[test]
    fn anything_unreadable_empties_the_cache() {
        for text in [
            "",
            "t:",
            "t:1,",
            "t:,1",
            "t:+1",
            "t:-1",
            "t:1 ",
            "t:x",
            "T:1",
            "tokens",
            "all ",
            "t:18446744073709551616",
        ] {
            assert_eq!(Change::parse(text), Change::All, "{text:?}");
        }
    }

    #[test]
    fn too_many_ids_are_sent_as_all() {
        let ids: Vec<TokenId> = (0..=MAX_IDS_PER_MESSAGE as u64).map(TokenId).collect();
        assert_eq!(Change::Tokens(ids.clone()).encode(), "all");
        let most = Change::Tokens(ids[..MAX_IDS_PER_MESSAGE].to_vec());
        assert_eq!(Change::parse(&most.encode()), most);
        assert_eq!(Change::Tokens(vec![]).encode(), "all");
        // The longest itemised message fits PostgreSQL's payload limit.
        let longest = Change::Tokens(vec![TokenId(u64::MAX); MAX_IDS_PER_MESSAGE]).encode();
        assert!(longest.len() < 8000, "{}", longest.len());
    }
}
