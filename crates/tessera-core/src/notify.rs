//! Webhook notices: which events are sent to receivers, what the outbox
//! holds, when a token's expiry is announced, and how a failed delivery is
//! retried. The store keeps the outbox ([`crate::store::Outbox`]); the
//! server posts what it claims from it (HTTP lives there, not here).
//!
//! Delivery is at least once: a notice is in the store before anything is
//! sent, a delivery is claimed by one node at a time for a lease, and it is
//! settled only after the receiver answered. A node that dies holding a
//! claim lets its lease run out, and another sends it again: a receiver
//! tells repeats apart by the delivery's key (`webhook-id`).

use crate::model::{Event, EventKind, Timestamp, TokenRecord};

/// The event kinds that are sent to webhook receivers.
pub const NOTICE_KINDS: &[EventKind] = &[
    EventKind::ReuseDetected,
    EventKind::TokenExpiring,
    EventKind::NewAddress,
    EventKind::LoginLocked,
];

/// Whether events of `kind` are sent to webhook receivers.
pub fn is_notice(kind: EventKind) -> bool {
    NOTICE_KINDS.contains(&kind)
}

/// Days before a token's end of life at which `token.expiring` is sent,
/// once each, largest first.
pub const WARN_DAYS: [i64; 3] = [14, 7, 1];

const DAY: i64 = 86_400;

/// The expiry warning due for `token` at `now`: the number of days of the
/// smallest threshold of [`WARN_DAYS`] that its end of life (`ends_at`: the
/// renewable-until of a refreshable token, the fixed expiry otherwise) is
/// within, counting a threshold only if the token lived past it (it was
/// created more than that many days before its end: a token made with five
/// days to live hears at one day left, not at once). `None` for a revoked or
/// ended token, or before the first threshold.
pub fn expiry_warning(token: &TokenRecord, now: Timestamp) -> Option<i64> {
    if token.revoked_at.is_some() || token.ends_at <= now {
        return None;
    }
    let left = token.ends_at - now;
    WARN_DAYS
        .iter()
        .rev()
        .copied()
        .find(|&d| left <= d * DAY && token.created_at < token.ends_at - d * DAY)
}

/// The outbox key of the `days` warning of a token ending at `ends_at`:
/// the same on every node, so the outbox takes it once per receiver; a
/// token whose end moves (an edit) is warned again for its new end.
pub fn expiry_key(token: &TokenRecord, days: i64) -> String {
    format!("expiring-{}-{}-{days}d", token.id.0, token.ends_at)
}

/// A delivery's place in the outbox, assigned by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(pub u64);

/// One notice for one receiver, as enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The receiver's id (a digest of its address: an address may carry a
    /// capability, so the store never holds it).
    pub receiver: String,
    /// The notice's key, the same for every receiver and every attempt
    /// (`webhook-id`); the outbox holds one delivery per (receiver, key)
    /// until it is swept.
    pub key: String,
    /// What happened.
    pub event: Event,
    /// For `token.expiring`: the token's end of life.
    pub deadline: Option<Timestamp>,
    /// The earliest time a settled delivery may be swept (an expiry
    /// warning's key must outlive its threshold, so it is kept until the
    /// token's end).
    pub keep_until: Timestamp,
}

/// A delivery claimed from the outbox by one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its place in the outbox (what [`Settle`] names).
    pub id: DeliveryId,
    /// The notice.
    pub delivery: Delivery,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What became of a claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// The receiver took it (a 2xx answer): it is done.
    Sent,
    /// It failed; it is due again at `at`.
    Retry {
        /// When it is due again.
        at: Timestamp,
    },
    /// It failed for longer than the retry time: it is done, unsent.
    GiveUp,
}

/// What waits in the outbox for one receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// The receiver's id.
    pub receiver: String,
    /// Deliveries not yet settled as sent or given up.
    pub pending: u64,
    /// When the oldest of them happened.
    pub oldest: Option<Timestamp>,
}

/// The wait before attempt `attempts + 1` after `attempts` failed ones:
/// one second, doubling, at most `max` seconds (at least one).
pub fn backoff(attempts: u32, max: i64) -> i64 {
    let doubled = 1i64
        .checked_shl(attempts.saturating_sub(1))
        .unwrap_or(i64::MAX);
    doubled.clamp(1, max.max(1))
}

/// What becomes of `claimed` after a failed attempt at `now`: due again
/// after [`backoff`] (at most `backoff_max` seconds), or given up once
/// `retry_for` seconds have passed since its event, the next wait included.
pub fn after_failure(
    claimed: &Claimed,
    now: Timestamp,
    retry_for: i64,
    backoff_max: i64,
) -> Settle {
    let next = now.saturating_add(backoff(claimed.attempts + 1, backoff_max));
    if next > claimed.delivery.event.at.saturating_add(retry_for) {
        Settle::GiveUp
    } else {
        Settle::Retry { at: next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::IpAllowList;
    use crate::model::{TokenId, UserId};
    use crate::scope::{Scope, TokenType};
    use crate::secret::Digest;

    fn token_record(id: u64) -> TokenRecord {
        TokenRecord {
            id: TokenId(id),
            user_id: UserId(1),
            user_name: "alice".into(),
            name: "n".into(),
            scope: Scope::new(TokenType::ALL, Vec::new()),
            allowed_ips: IpAllowList::default(),
            created_at: 0,
            access_expires_at: 0,
            renewable_until: None,
            ends_at: 0,
            access_digest: Digest::of("a"),
            refresh_digest: None,
            legacy: false,
            revoked_at: None,
            last_used_at: None,
            last_used_ip: None,
            rate_limit: None,
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_its_bound() {
        let waits: Vec<i64> = (1..=8).map(|a| backoff(a, 60)).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(0, 60), 1);
        assert_eq!(backoff(200, 300), 300);
        assert_eq!(backoff(3, 0), 1);
    }

    #[test]
    fn each_threshold_is_due_from_its_second_on_and_only_if_the_token_lived_past_it() {
        let mut t = token_record(1);
        t.created_at = 0;
        t.ends_at = 100 * DAY;
        let at = |left: i64| t.ends_at - left;
        assert_eq!(expiry_warning(&t, at(14 * DAY + 1)), None);
        assert_eq!(expiry_warning(&t, at(14 * DAY)), Some(14));
        assert_eq!(expiry_warning(&t, at(7 * DAY + 1)), Some(14));
        assert_eq!(expiry_warning(&t, at(7 * DAY)), Some(7));
        assert_eq!(expiry_warning(&t, at(DAY + 1)), Some(7));
        assert_eq!(expiry_warning(&t, at(DAY)), Some(1));
        assert_eq!(expiry_warning(&t, at(1)), Some(1));
        assert_eq!(expiry_warning(&t, at(0)), None, "ended");
        // Made with five days to live: nothing until one day is left.
        t.created_at = t.ends_at - 5 * DAY;
        assert_eq!(expiry_warning(&t, at(5 * DAY)), None);
        assert_eq!(expiry_warning(&t, at(DAY + 1)), None);
        assert_eq!(expiry_warning(&t, at(DAY)), Some(1));
        // Made exactly seven days before its end: it never lived past seven.
        t.created_at = t.ends_at - 7 * DAY;
        assert_eq!(expiry_warning(&t, at(7 * DAY)), None);
        t.created_at -= 1;
        assert_eq!(expiry_warning(&t, at(7 * DAY)), Some(7));
        t.revoked_at = Some(0);
        assert_eq!(expiry_warning(&t, at(DAY)), None, "revoked");
    }

    #[test]
    fn a_failure_is_retried_until_the_next_wait_would_pass_the_retry_time() {
        let c = |attempts| Claimed {
            id: DeliveryId(1),
            delivery: Delivery {
                receiver: "r".into(),
                key: "k".into(),
                event: Event::new(EventKind::LoginLocked, 1_000, crate::model::Actor::Nobody),
                deadline: None,
                keep_until: 1_000,
            },
            attempts,
        };
        assert_eq!(
            after_failure(&c(0), 1_000, 60, 300),
            Settle::Retry { at: 1_001 }
        );
        assert_eq!(
            after_failure(&c(2), 1_010, 60, 300),
            Settle::Retry { at: 1_014 }
        );
        // The wait ends exactly at the retry time: still tried; a second later: given up.
        assert_eq!(
            after_failure(&c(0), 1_059, 60, 300),
            Settle::Retry { at: 1_060 }
        );
        assert_eq!(after_failure(&c(0), 1_060, 60, 300), Settle::GiveUp);
    }

    #[test]
    fn an_expiry_key_names_the_token_its_end_and_the_threshold() {
        let mut t = token_record(9);
        t.ends_at = 1_000;
        assert_eq!(expiry_key(&t, 7), "expiring-9-1000-7d");
        t.ends_at = 2_000;
        assert_ne!(expiry_key(&t, 7), "expiring-9-1000-7d");
    }
}
