//! Login rate limiting, per user name and per client address (SPEC §6).
//!
//! After `max_failures` failed logins within `window` seconds, further
//! attempts for that user (or from that address) are refused for `lockout`
//! seconds, even with the right password; the answer says so
//! (`isAccountLocked`, `remainingLockTime`). Kept in this process's memory:
//! several nodes each count their own attempts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most keys remembered; past it, entries idle for a window are dropped.
const MAX_KEYS: usize = 100_000;

/// The limits.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failures that lock.
    pub max_failures: u32,
    /// Seconds within which failures count together.
    pub window: i64,
    /// Seconds a lock lasts.
    pub lockout: i64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Failures in the current window.
    failures: u32,
    /// Attempts begun and not yet decided (their passwords being verified).
    pending: u32,
    /// Start of the current window.
    since: i64,
    /// Locked until then.
    locked_until: i64,
}

/// Why an attempt may not begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user or the address is locked for this many more seconds.
    Locked(u64),
    /// As many attempts as the limit allows are being verified right now:
    /// another one could not be counted before it was decided.
    Pending,
}

/// The login throttle.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<String, Entry>>,
}

/// A login attempt that has been counted before its password is verified.
/// Decide it with [`Attempt::failed`] or [`Attempt::succeeded`]; dropped
/// undecided (the request went away), it no longer counts.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: [String; 2],
    decided: bool,
}

impl LoginThrottle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> Self {
        LoginThrottle {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, ip: IpAddr) -> [String; 2] {
        [format!("user:{user}"), format!("ip:{ip}")]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Begins an attempt for `user` from `ip` at `now`: refused while either
    /// is locked, or while failures and attempts still being verified
    /// already add up to the limit. Counting the attempt here, before the
    /// (slow) verification, keeps the limit under concurrency: of many
    /// simultaneous wrong passwords, at most `max_failures` are verified.
    pub fn begin(&self, user: &str, ip: IpAddr, now: i64) -> Result<Attempt<'_>, Refused> {
        let c = self.config;
        let keys = Self::keys(user, ip);
        let mut entries = self.lock();
        if entries.len() > MAX_KEYS {
            entries
                .retain(|_, e| e.pending > 0 || e.locked_until > now || now - e.since < c.window);
        }
        let mut left = 0;
        let mut full = false;
        for key in &keys {
            if let Some(e) = entries.get_mut(key) {
                if now - e.since >= c.window {
                    e.failures = 0;
                    e.since = now;
                }
                left = left.max(e.locked_until - now);
                full |= e.failures + e.pending >= c.max_failures;
            }
        }
        if left > 0 {
            return Err(Refused::Locked(left as u64));
        }
        if full {
            return Err(Refused::Pending);
        }
        for key in &keys {
            let e = entries.entry(key.clone()).or_insert(Entry {
                since: now,
                ..Entry::default()
            });
            e.pending += 1;
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
    pub fn failed(mut self, now: i64) -> Option<u64> {
        self.decided = true;
        let c = self.throttle.config;
        let mut entries = self.throttle.lock();
        let mut locked = None;
        for key in &self.keys {
            let e = entries.entry(key.clone()).or_default();
            e.pending = e.pending.saturating_sub(1);
            if now - e.since >= c.window {
                e.failures = 0;
                e.since = now;
            }
            e.failures += 1;
            if e.failures >= c.max_failures {
                e.locked_until = now + c.lockout;
                e.failures = 0;
                e.since = now;
                locked = Some(c.lockout as u64);
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
        if let Some(e) = entries.get_mut(user) {
            e.pending = e.pending.saturating_sub(1);
            e.failures = 0;
        }
        if let Some(e) = entries.get_mut(ip) {
            e.pending = e.pending.saturating_sub(1);
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
            if let Some(e) = entries.get_mut(key) {
                e.pending = e.pending.saturating_sub(1);
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
        let t = LoginThrottle::new(ThrottleConfig {
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
        let t = LoginThrottle::new(ThrottleConfig {
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
        let t = LoginThrottle::new(ThrottleConfig {
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
        let t = LoginThrottle::new(ThrottleConfig {
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
