//! Alarms and faults: raising and clearing alarms, acknowledging them, and
//! the kernel's fault inputs (motor, storage, battery, app faults).

use pump_protocol::{
    AlarmAcknowledged, AlarmCleared, AlarmCode, AlarmRaised, AppFault, AppRestarted, BatteryState,
    DeliveryOutcome, ErrorCode, KernelStarted,
};

use super::infusion::InfusionCore;
use crate::alarms::priority_of;
use crate::command;
use crate::config::{AppId, Role};
use crate::events::Event;
use crate::platform::Platform;

/// The longest an acknowledged alarm stays silent, whatever the board's
/// `alarm_silence_ms`: an implant's patient may be asleep, alone or unable
/// to act, and a tone paused for hours is an alarm nobody hears (GIP 3.2.1,
/// SR-ALM-005). The boards use 10 minutes.
pub const MAX_ALARM_SILENCE_MS: u32 = 15 * 60_000;

/// The bit of a fault input in `InfusionCore::fault_inputs`.
fn fault_input_bit(code: AlarmCode) -> u8 {
    match code {
        AlarmCode::MotorStall => 1,
        AlarmCode::Occlusion => 2,
        _ => 4,
    }
}

impl<P: Platform> InfusionCore<P> {
    pub(super) fn raise(&mut self, code: AlarmCode, now: u64) {
        if self.p.alarms.raise(code) {
            let utc = self.utc_ms(now);
            self.emit(
                Event::AlarmRaised(AlarmRaised {
                    time_ms: utc,
                    code,
                    priority: priority_of(code),
                }),
                now,
            );
            if crate::alarms::stops_delivery(code) {
                self.stop_all(DeliveryOutcome::Aborted, now);
            }
        }
    }

    pub(super) fn clear(&mut self, code: AlarmCode, now: u64) {
        if self.p.alarms.clear(code) {
            let utc = self.utc_ms(now);
            self.emit(
                Event::AlarmCleared(AlarmCleared { time_ms: utc, code }),
                now,
            );
        }
    }

    /// Silences an active alarm for the board's silence time; the cause
    /// stays active (SR-ALM-003).
    pub fn acknowledge_alarm(
        &mut self,
        caller: AppId,
        code: AlarmCode,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::ACKNOWLEDGE_ALARM, now)?;
        // SR-ALM-005: whatever the board says, the tone comes back.
        let silence_ms = self.config.alarm_silence_ms.min(MAX_ALARM_SILENCE_MS);
        if !self
            .p
            .alarms
            .silence(code, now.saturating_add(u64::from(silence_ms)))
        {
            return Err(ErrorCode::InvalidArgument);
        }
        let utc = self.utc_ms(now);
        self.emit(
            Event::AlarmAcknowledged(AlarmAcknowledged {
                time_ms: utc,
                code,
                silence_duration_ms: silence_ms,
            }),
            now,
        );
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Clears a latched fault once its cause is gone (SR-ALM-004): motor
    /// stall or occlusion once the fault input is released, an app fault at
    /// once. Empty reservoir, watchdog and integrity faults clear only by
    /// refill, check-in and a new prescription respectively.
    pub fn clear_fault(
        &mut self,
        caller: AppId,
        code: AlarmCode,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::CLEAR_FAULT, now)?;
        let clearable = match code {
            AlarmCode::MotorStall | AlarmCode::Occlusion => {
                self.fault_inputs & fault_input_bit(code) == 0
            }
            AlarmCode::AppFault
            | AlarmCode::RefillDiscrepancy
            | AlarmCode::RepeatedResets
            | AlarmCode::RepeatedFaults => true,
            // SR-STS-001: only once every test that failed has passed again.
            AlarmCode::SelfTestFailed => self.self_tests_failed == 0,
            // SR-MOT-006: once the clinic has examined the mechanism.
            AlarmCode::UncommandedMotion => true,
            _ => false,
        };
        if !clearable || !self.p.alarms.is_active(code) {
            return Err(ErrorCode::InvalidArgument);
        }
        self.steps_since_encoder = 0;
        self.pulses_since_step = 0;
        self.clear(code, now);
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// The motor's stall or occlusion input changed (SR-MOT-003).
    pub fn on_fault_input(&mut self, code: AlarmCode, asserted: bool, now_ms: u64) {
        let now = self.clock(now_ms);
        if asserted {
            self.fault_inputs |= fault_input_bit(code);
        } else {
            self.fault_inputs &= !fault_input_bit(code);
        }
        if asserted {
            self.stop_all(DeliveryOutcome::Aborted, now);
            let newly = !self.p.alarms.is_active(code);
            self.raise(code, now);
            // SR-ALM-006: the third mechanism fault in 24 h is a pattern.
            if newly && self.mechanism_faults.record(now) >= super::state::REPEATED_FAULTS_ALARM_AT
            {
                self.raise(AlarmCode::RepeatedFaults, now);
            }
            self.save();
        }
        self.sync_outputs(now);
    }

    /// The board could not write the state record (SR-PER-004). Steps
    /// made from here on could not survive a reset, so delivery stops under
    /// the high `EnvelopeIntegrity` alarm, which only a newly installed
    /// prescription (whose own save must then succeed) clears. The board
    /// reports each failure once: this calls `save` again, and a failure of
    /// that write must not be reported back into this call.
    pub fn on_storage_fault(&mut self, now_ms: u64) {
        let now = self.clock(now_ms);
        self.raise(AlarmCode::EnvelopeIntegrity, now);
        self.save();
        self.sync_outputs(now);
    }

    /// A battery reading.
    pub fn on_battery(
        &mut self,
        voltage_mv: u16,
        charge_percent: u8,
        replacement: bool,
        now_ms: u64,
    ) {
        let now = self.clock(now_ms);
        let utc = self.utc_ms(now);
        self.emit(
            Event::BatteryState(BatteryState {
                time_ms: utc,
                voltage_mv,
                charge_percent,
                replacement_recommended: replacement,
            }),
            now,
        );
        if replacement {
            self.raise(AlarmCode::BatteryReplacement, now);
        } else {
            self.clear(AlarmCode::BatteryReplacement, now);
        }
        self.save();
        self.sync_outputs(now);
    }

    /// The kernel reports that an app faulted.
    pub fn on_app_fault(&mut self, app: AppId, fault_code: u16, now_ms: u64) {
        let now = self.clock(now_ms);
        let utc = self.utc_ms(now);
        self.emit(
            Event::AppFault(AppFault {
                time_ms: utc,
                app_id: app.0,
                fault_code,
            }),
            now,
        );
        self.raise(AlarmCode::AppFault, now);
        self.save();
        self.sync_outputs(now);
    }

    /// The kernel restarted an app.
    pub fn on_app_restart(&mut self, app: AppId, restart_count: u16, now_ms: u64) {
        let now = self.clock(now_ms);
        let utc = self.utc_ms(now);
        self.emit(
            Event::AppRestarted(AppRestarted {
                time_ms: utc,
                app_id: app.0,
                restart_count,
            }),
            now,
        );
    }

    /// The kernel started (SR-WDG-005): called once at boot, after the
    /// stored records are restored, with the reason the board gives for the
    /// reset before it and how many watchdog resets came in a row (each
    /// within 24 h of the one before). Logs `KernelStarted`; from the
    /// second watchdog reset in a row on, raises the medium
    /// `RepeatedResets` alarm, which a clinician clears once the cause is
    /// known. Therapy is not touched: the restore has already closed what
    /// was running.
    pub fn on_kernel_start(&mut self, reason: ResetReason, watchdog_resets: u16, now_ms: u64) {
        let now = self.clock(now_ms);
        let utc = self.utc_ms(now);
        self.emit(
            Event::KernelStarted(KernelStarted {
                time_ms: utc,
                reset_reason: reason.code(),
                watchdog_resets,
            }),
            now,
        );
        if reason == ResetReason::Watchdog && watchdog_resets >= REPEATED_RESETS_ALARM_AT {
            self.raise(AlarmCode::RepeatedResets, now);
            self.save();
        }
        self.sync_outputs(now);
    }
}

/// Watchdog resets in a row from which `RepeatedResets` is raised.
pub const REPEATED_RESETS_ALARM_AT: u16 = 2;

/// Why the kernel started, as the board knows it (`KernelStarted.reset_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// Power-on, or a reset the board cannot name.
    PowerOn,
    /// The board's watchdog reset the kernel, which had stopped feeding it.
    Watchdog,
}

impl ResetReason {
    /// The wire code of `KernelStarted.reset_reason`.
    pub const fn code(self) -> u8 {
        match self {
            ResetReason::PowerOn => 1,
            ResetReason::Watchdog => 2,
        }
    }

    /// The reason for a wire code, if this build knows it.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ResetReason::PowerOn),
            2 => Some(ResetReason::Watchdog),
            _ => None,
        }
    }

    /// The reason's name.
    pub const fn name(self) -> &'static str {
        match self {
            ResetReason::PowerOn => "PowerOn",
            ResetReason::Watchdog => "Watchdog",
        }
    }
}
