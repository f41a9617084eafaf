//! The dosing app's watchdog: check-ins, and what happens when they stop.

use pump_protocol::prescription::SilencePolicy;
use pump_protocol::{AlarmCode, DeliveryKind, DeliveryOutcome, ErrorCode};

use super::infusion::InfusionCore;
use crate::command;
use crate::config::{AppId, Role};
use crate::ledger::Channel;
use crate::platform::Platform;

impl<P: Platform> InfusionCore<P> {
    /// The dosing app's watchdog check-in (SR-WDG-001). Returns the timeout.
    pub fn check_in(&mut self, caller: AppId, now_ms: u64) -> Result<u32, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::CHECK_IN, now)?;
        // The dosing app woke to check in.
        self.draw_wakeup();
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
