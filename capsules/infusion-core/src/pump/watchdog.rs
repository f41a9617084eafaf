//! The dosing app's watchdog: check-ins, and what happens when they stop.

use pump_protocol::prescription::SilencePolicy;
use pump_protocol::{AlarmCode, DeliveryKind, DeliveryOutcome, ErrorCode};

use super::InfusionCore;
use crate::command;
use crate::config::{AppId, Role};
use crate::ledger::Channel;
use crate::platform::Platform;

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

    fn expire(&mut self) {
        self.expired = true;
    }

    /// A check-in came: returns whether it ends an expiry.
    fn recover(&mut self) -> bool {
        core::mem::take(&mut self.expired)
    }
}

impl<P: Platform> InfusionCore<P> {
    /// The dosing app's watchdog check-in (SR-WDG-001). Returns the timeout.
    pub fn check_in(&mut self, caller: AppId, now_ms: u64) -> Result<u32, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::CHECK_IN, now)?;
        let timeout = self
            .rx
            .as_ref()
            .map_or(0, |rx| rx.envelope.dosing_checkin_timeout_ms);
        if self.rx.is_some() {
            self.watchdog.arm(now, timeout);
        }
        if self.watchdog.recover() {
            self.clear(AlarmCode::DosingWatchdog, now);
            self.save();
            self.sync_outputs(now);
        }
        Ok(timeout)
    }

    pub(super) fn expire_watchdog(&mut self, now: u64) {
        self.watchdog.expire();
        self.raise(AlarmCode::DosingWatchdog, now);
        let policy = self.rx.as_ref().map(|rx| rx.envelope.silence_policy);
        self.end_run(Channel::Bolus, DeliveryOutcome::Aborted, now);
        match policy {
            Some(SilencePolicy::ContinueBasal { rate_nl_per_h }) if rate_nl_per_h > 0 => {
                if self.check_basal(rate_nl_per_h, now).is_ok() {
                    self.start_basal(DeliveryKind::SilenceFallback, rate_nl_per_h, now);
                } else {
                    self.end_run(Channel::Basal, DeliveryOutcome::Aborted, now);
                }
            }
            _ => self.end_run(Channel::Basal, DeliveryOutcome::Aborted, now),
        }
        self.save();
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
