//! The watchdog's state, apart from the rules of [`super::watchdog`] that
//! drive it.

/// The watchdog's state: when the next check-in is due, and whether one
/// was missed (the `DosingWatchdog` alarm is then active).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Watchdog {
    deadline_ms: Option<u64>,
    expired: bool,
}

impl Watchdog {
    /// The next check-in is due `timeout_ms` after `now`.
    pub fn arm(&mut self, now: u64, timeout_ms: u32) {
        self.deadline_ms = Some(now.saturating_add(u64::from(timeout_ms)));
    }

    /// The deadline has passed and was not yet reported.
    pub fn is_due(&self, now: u64) -> bool {
        !self.expired && self.deadline_ms.is_some_and(|d| d <= now)
    }

    /// When the core must wake for it (`None` once it has expired).
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadline_ms.filter(|_| !self.expired)
    }

    pub fn expire(&mut self) {
        self.expired = true;
    }

    /// A check-in came: returns whether it ends an expiry.
    pub fn recover(&mut self) -> bool {
        core::mem::take(&mut self.expired)
    }
}

#[cfg(test)]
mod tests {
    use super::Watchdog;

    #[test]
    fn sr_wdg_002_a_missed_check_in_is_due_once_until_the_next_check_in() {
        let mut w = Watchdog::default();
        assert!(!w.is_due(u64::MAX), "unarmed: never due");
        w.arm(1_000, 500);
        assert_eq!(w.next_deadline(), Some(1_500));
        assert!(!w.is_due(1_499));
        assert!(w.is_due(1_500));
        w.expire();
        assert!(!w.is_due(2_000), "reported once");
        assert_eq!(w.next_deadline(), None);
        assert!(w.recover());
        assert!(!w.recover());
        w.arm(2_000, 500);
        assert!(w.is_due(2_500));
    }
}
