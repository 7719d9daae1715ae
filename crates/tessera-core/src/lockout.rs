//! The login lock-out rule (CONTRACT §6), as a pure type over explicit times.
//!
//! After [`Lockout::max_failures`] failed logins within [`Lockout::window`]
//! seconds, further attempts for that key (a user name, a client address)
//! are refused for [`Lockout::lockout`] seconds, even with the right
//! password. An attempt is counted when it begins, before its (slow)
//! password verification, so that many concurrent wrong passwords cannot
//! overrun the limit: failures and attempts still being verified together
//! may not exceed it.
//!
//! Each key's state is a [`Tally`]; the caller keeps one per key (the
//! server: a map behind a lock) and passes the time of its injected clock
//! ([`crate::service::Tessera::now`]), so tests set the time to one second
//! either side of a limit instead of sleeping.

use crate::model::Timestamp;

/// The figures of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Failures that lock (at least 1 in practice).
    pub max_failures: u32,
    /// Seconds within which failures count together, from the first.
    pub window: i64,
    /// Seconds a lock lasts.
    pub lockout: i64,
}

/// Why an attempt may not begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A key is locked for this many more seconds (the longest, of several).
    Locked(u64),
    /// As many attempts as the limit allows are being verified right now:
    /// another one could not be counted before it was decided.
    Pending,
}

/// One key's state: its failures in the current window, its attempts being
/// verified, and its lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Failures in the current window.
    failures: u32,
    /// Attempts begun and not yet decided (their passwords being verified).
    pending: u32,
    /// Start of the current window.
    since: Timestamp,
    /// Locked until then.
    locked_until: Timestamp,
}

impl Tally {
    /// A key first seen at `now`: no failure, no lock, its window opening.
    pub fn new(now: Timestamp) -> Self {
        Tally {
            since: now,
            ..Tally::default()
        }
    }

    /// Counts an attempt that [`Lockout::admit`] let begin.
    pub fn begin(&mut self) {
        self.pending += 1;
    }

    /// An attempt decided without a failure (a right password, or one
    /// abandoned undecided): it no longer counts.
    pub fn end(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    /// The right password for this key's user: their failures are forgiven
    /// (an address's are not, so it is the caller's choice which keys).
    pub fn forgive(&mut self) {
        self.failures = 0;
    }
}

impl Lockout {
    /// A window over at `now` starts afresh, its failures forgotten.
    fn roll(&self, tally: &mut Tally, now: Timestamp) {
        if now - tally.since >= self.window {
            tally.failures = 0;
            tally.since = now;
        }
    }

    /// Whether an attempt concerning every one of `tallies` (those of the
    /// keys seen before) may begin at `now`: refused while any is locked
    /// (with the longest remaining lock), or while any one's failures and
    /// attempts being verified already add up to the limit. Counts nothing:
    /// call [`Tally::begin`] on every key's tally when admitted.
    pub fn admit<'a>(
        &self,
        tallies: impl IntoIterator<Item = &'a mut Tally>,
        now: Timestamp,
    ) -> Result<(), Refused> {
        let mut left = 0;
        let mut full = false;
        for t in tallies {
            self.roll(t, now);
            left = left.max(t.locked_until - now);
            full |= t.failures + t.pending >= self.max_failures;
        }
        if left > 0 {
            return Err(Refused::Locked(left as u64));
        }
        if full {
            return Err(Refused::Pending);
        }
        Ok(())
    }

    /// A begun attempt failed at `now` (a wrong password): counts the
    /// failure; returns the lock's length if this one locked the key.
    pub fn failed(&self, tally: &mut Tally, now: Timestamp) -> Option<u64> {
        tally.end();
        self.roll(tally, now);
        tally.failures += 1;
        if tally.failures < self.max_failures {
            return None;
        }
        tally.locked_until = now + self.lockout;
        tally.failures = 0;
        tally.since = now;
        Some(self.lockout as u64)
    }

    /// Whether `tally` says nothing any more at `now` (no attempt being
    /// verified, no lock, its window over), so that its key may be forgotten.
    pub fn is_spent(&self, tally: &Tally, now: Timestamp) -> bool {
        tally.pending == 0 && tally.locked_until <= now && now - tally.since >= self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const T0: Timestamp = 1_700_000_000;
    const RULE: Lockout = Lockout {
        max_failures: 3,
        window: 60,
        lockout: 100,
    };

    /// One attempt on `t` that fails at the clock's time.
    fn fail(t: &mut Tally, clock: &ManualClock) -> Option<u64> {
        RULE.admit([&mut *t], clock.now()).unwrap();
        t.begin();
        RULE.failed(t, clock.now())
    }

    #[test]
    fn the_limit_locks_for_the_lockout_to_the_second() {
        let clock = ManualClock::new(T0);
        let mut t = Tally::new(clock.now());
        assert_eq!(fail(&mut t, &clock), None);
        assert_eq!(fail(&mut t, &clock), None);
        assert_eq!(fail(&mut t, &clock), Some(100), "the third failure locks");
        clock.advance(99);
        assert_eq!(
            RULE.admit([&mut t], clock.now()),
            Err(Refused::Locked(1)),
            "one second before the lock ends"
        );
        clock.advance(1);
        assert_eq!(RULE.admit([&mut t], clock.now()), Ok(()), "when it ends");
    }

    #[test]
    fn failures_count_together_within_the_window_only() {
        let clock = ManualClock::new(T0);
        let mut t = Tally::new(clock.now());
        assert_eq!(fail(&mut t, &clock), None);
        assert_eq!(fail(&mut t, &clock), None);
        // One second before the window ends: the third failure still counts.
        clock.advance(59);
        let mut inside = t;
        assert_eq!(fail(&mut inside, &clock), Some(100));
        // When it ends: the window starts afresh, this is the first failure.
        clock.advance(1);
        assert_eq!(fail(&mut t, &clock), None);
        assert_eq!(fail(&mut t, &clock), None);
        assert_eq!(fail(&mut t, &clock), Some(100));
    }

    #[test]
    fn attempts_being_verified_count_before_they_are_decided() {
        let clock = ManualClock::new(T0);
        let mut t = Tally::new(clock.now());
        for _ in 0..3 {
            RULE.admit([&mut t], clock.now()).unwrap();
            t.begin();
        }
        assert_eq!(RULE.admit([&mut t], clock.now()), Err(Refused::Pending));
        t.end();
        assert_eq!(RULE.admit([&mut t], clock.now()), Ok(()), "one abandoned");
    }

    #[test]
    fn a_lock_outweighs_a_full_count_and_the_longer_lock_is_told() {
        let clock = ManualClock::new(T0);
        let (mut user, mut address) = (Tally::new(T0), Tally::new(T0));
        for _ in 0..3 {
            fail(&mut user, &clock);
        }
        clock.advance(10);
        for _ in 0..3 {
            fail(&mut address, &clock);
        }
        let mut busy = Tally::new(clock.now());
        for _ in 0..3 {
            busy.begin();
        }
        assert_eq!(
            RULE.admit([&mut user, &mut address, &mut busy], clock.now()),
            Err(Refused::Locked(100))
        );
        clock.advance(95);
        assert_eq!(
            RULE.admit([&mut user, &mut address], clock.now()),
            Err(Refused::Locked(5))
        );
    }

    #[test]
    fn forgiving_clears_the_failures_only() {
        let clock = ManualClock::new(T0);
        let mut t = Tally::new(clock.now());
        fail(&mut t, &clock);
        fail(&mut t, &clock);
        t.forgive();
        assert_eq!(fail(&mut t, &clock), None, "counting starts again");
    }

    #[test]
    fn a_tally_is_spent_once_its_window_and_lock_are_over() {
        let clock = ManualClock::new(T0);
        let mut t = Tally::new(clock.now());
        t.begin();
        clock.advance(60);
        assert!(
            !RULE.is_spent(&t, clock.now()),
            "an attempt is being verified"
        );
        t.end();
        assert!(RULE.is_spent(&t, clock.now()));
        let mut locked = Tally::new(clock.now());
        for _ in 0..3 {
            fail(&mut locked, &clock);
        }
        clock.advance(99);
        assert!(
            !RULE.is_spent(&locked, clock.now()),
            "one second before the lock ends"
        );
        clock.advance(1);
        assert!(RULE.is_spent(&locked, clock.now()));
    }
}
