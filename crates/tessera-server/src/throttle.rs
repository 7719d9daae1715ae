//! Login rate limiting, per user name and per client address (CONTRACT §6):
//! the plumbing around the core's rule ([`tessera_core::lockout`]), which
//! says when failures lock and for how long. Here: one [`Tally`] per key in
//! this process's memory, behind a lock, and the [`Attempt`] guard that
//! decides or releases a counted attempt. Several nodes each count their
//! own attempts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use tessera_core::lockout::Tally;
pub use tessera_core::lockout::{Lockout, Refused};
use tessera_core::model::Timestamp;

/// Most keys remembered; past it, spent entries are dropped.
const MAX_KEYS: usize = 100_000;

/// The login throttle.
#[derive(Debug)]
pub struct LoginThrottle {
    rule: Lockout,
    entries: Mutex<HashMap<String, Tally>>,
}

/// A login attempt that has been counted before its password is verified.
/// Decide it with [`Attempt::failed`] or [`Attempt::succeeded`]; dropped
/// undecided (the request went away), it no longer counts.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    /// The user's key, then the address's.
    keys: [String; 2],
    decided: bool,
}

impl LoginThrottle {
    /// A throttle applying `rule`.
    pub fn new(rule: Lockout) -> Self {
        LoginThrottle {
            rule,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, ip: IpAddr) -> [String; 2] {
        [format!("user:{user}"), format!("ip:{ip}")]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tally>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Begins an attempt for `user` from `ip` at `now`, as the rule admits
    /// it ([`Lockout::admit`]): counted here, before the (slow) verification,
    /// so that of many simultaneous wrong passwords at most the limit's
    /// worth are verified.
    pub fn begin(&self, user: &str, ip: IpAddr, now: Timestamp) -> Result<Attempt<'_>, Refused> {
        let keys = Self::keys(user, ip);
        let mut entries = self.lock();
        if entries.len() > MAX_KEYS {
            entries.retain(|_, t| !self.rule.is_spent(t, now));
        }
        let [user_key, ip_key] = &keys;
        let seen = entries.get_disjoint_mut([user_key.as_str(), ip_key.as_str()]);
        self.rule.admit(seen.into_iter().flatten(), now)?;
        for key in &keys {
            entries
                .entry(key.clone())
                .or_insert_with(|| Tally::new(now))
                .begin();
        }
        drop(entries);
        Ok(Attempt {
            throttle: self,
            keys,
            decided: false,
        })
    }
}

impl Attempt<'_> {
    /// The password was wrong: counts a failure; returns the lock's length
    /// if this one locked.
    pub fn failed(mut self, now: Timestamp) -> Option<u64> {
        self.decided = true;
        let rule = self.throttle.rule;
        let mut entries = self.throttle.lock();
        let mut locked = None;
        for key in &self.keys {
            let tally = entries.entry(key.clone()).or_default();
            if let Some(lock) = rule.failed(tally, now) {
                locked = Some(lock);
            }
        }
        locked
    }

    /// The password was right: clears the user's failures (not the
    /// address's).
    pub fn succeeded(mut self) {
        self.decided = true;
        let mut entries = self.throttle.lock();
        let [user, ip] = &self.keys;
        if let Some(t) = entries.get_mut(user) {
            t.end();
            t.forgive();
        }
        if let Some(t) = entries.get_mut(ip) {
            t.end();
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.decided {
            return;
        }
        let mut entries = self.throttle.lock();
        for key in &self.keys {
            if let Some(t) = entries.get_mut(key) {
                t.end();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &LoginThrottle, user: &str, ip: IpAddr, now: i64) -> Option<u64> {
        t.begin(user, ip, now).unwrap().failed(now)
    }

    #[test]
    fn locks_after_the_limit_and_unlocks_after_the_lockout() {
        let t = LoginThrottle::new(Lockout {
            max_failures: 3,
            window: 60,
            lockout: 100,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(fail(&t, "a", ip, 0), None);
        assert_eq!(fail(&t, "a", ip, 1), None);
        assert_eq!(fail(&t, "a", ip, 2), Some(100));
        assert_eq!(t.begin("a", ip, 3).unwrap_err(), Refused::Locked(99));
        assert_eq!(
            t.begin("b", ip, 3).unwrap_err(),
            Refused::Locked(99),
            "the address is locked too"
        );
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            t.begin("a", other, 101).unwrap_err(),
            Refused::Locked(1),
            "the user is locked from anywhere"
        );
        t.begin("c", other, 101).unwrap().succeeded();
        t.begin("a", ip, 102).unwrap().succeeded();
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = LoginThrottle::new(Lockout {
            max_failures: 2,
            window: 10,
            lockout: 100,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(fail(&t, "a", ip, 0), None);
        assert_eq!(fail(&t, "a", ip, 20), None);
        assert!(t.begin("a", ip, 21).is_ok());
    }

    #[test]
    fn concurrent_attempts_are_counted_before_they_are_decided() {
        let t = LoginThrottle::new(Lockout {
            max_failures: 5,
            window: 60,
            lockout: 100,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // 100 attempts at once: only the limit's worth may go on to verify.
        let begun: Vec<_> = (0..100).filter_map(|_| t.begin("a", ip, 0).ok()).collect();
        assert_eq!(begun.len(), 5);
        assert_eq!(t.begin("a", ip, 0).unwrap_err(), Refused::Pending);
        // Another user from the same address: the address is full too.
        assert_eq!(t.begin("b", ip, 0).unwrap_err(), Refused::Pending);
        let locks: Vec<_> = begun.into_iter().map(|a| a.failed(0)).collect();
        assert_eq!(locks.iter().flatten().count(), 1, "{locks:?}");
        assert_eq!(t.begin("a", ip, 1).unwrap_err(), Refused::Locked(99));
    }

    #[test]
    fn an_undecided_attempt_stops_counting() {
        let t = LoginThrottle::new(Lockout {
            max_failures: 1,
            window: 60,
            lockout: 100,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = t.begin("a", ip, 0).unwrap();
        assert_eq!(t.begin("a", ip, 0).unwrap_err(), Refused::Pending);
        drop(a);
        t.begin("a", ip, 0).unwrap().succeeded();
    }
}
