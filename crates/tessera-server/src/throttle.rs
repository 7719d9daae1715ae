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
    /// Start of the current window.
    since: i64,
    /// Locked until then.
    locked_until: i64,
}

/// The login throttle.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<String, Entry>>,
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

    /// `Err(seconds left)` when the user or the address is locked at `now`.
    pub fn check(&self, user: &str, ip: IpAddr, now: i64) -> Result<(), u64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let left = Self::keys(user, ip)
            .iter()
            .filter_map(|k| entries.get(k))
            .map(|e| e.locked_until - now)
            .max()
            .unwrap_or(0);
        if left > 0 {
            Err(left as u64)
        } else {
            Ok(())
        }
    }

    /// Counts a failure; returns the lock's length if this one locked.
    pub fn failed(&self, user: &str, ip: IpAddr, now: i64) -> Option<u64> {
        let c = self.config;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > MAX_KEYS {
            entries.retain(|_, e| e.locked_until > now || now - e.since < c.window);
        }
        let mut locked = None;
        for key in Self::keys(user, ip) {
            let e = entries.entry(key).or_default();
            if now - e.since >= c.window {
                *e = Entry {
                    failures: 0,
                    since: now,
                    locked_until: e.locked_until,
                };
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

    /// A successful login clears the user's failures (not the address's).
    pub fn succeeded(&self, user: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&format!("user:{user}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_unlocks_after_the_lockout() {
        let t = LoginThrottle::new(ThrottleConfig {
            max_failures: 3,
            window: 60,
            lockout: 100,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.failed("a", ip, 0), None);
        assert_eq!(t.failed("a", ip, 1), None);
        assert_eq!(t.check("a", ip, 2), Ok(()));
        assert_eq!(t.failed("a", ip, 2), Some(100));
        assert_eq!(t.check("a", ip, 3), Err(99));
        assert_eq!(t.check("b", ip, 3), Err(99), "the address is locked too");
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            t.check("a", other, 101),
            Err(1),
            "the user is locked from anywhere"
        );
        assert_eq!(t.check("c", other, 101), Ok(()));
        assert_eq!(t.check("a", ip, 102), Ok(()));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = LoginThrottle::new(ThrottleConfig {
            max_failures: 2,
            window: 10,
            lockout: 100,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.failed("a", ip, 0), None);
        assert_eq!(t.failed("a", ip, 20), None);
        assert_eq!(t.check("a", ip, 21), Ok(()));
    }
}
