//! Programmer operations on therapy: prescriptions (verify, install, serial
//! floor), suspend and resume, the clock.

use pump_protocol::{
    AlarmCode, ClockSet, DeliveryOutcome, ErrorCode, PrescriptionInstalled, PrescriptionRejected,
    PumpStateChanged,
};

use super::infusion::InfusionCore;
use crate::command;
use crate::config::{AppId, Role};
use crate::events::Event;
use crate::platform::Platform;
use crate::rx::{self, VerifiedPrescription};

impl<P: Platform> InfusionCore<P> {
    /// Installs a signed prescription (SR-RX-001..005). On success every
    /// delivery stops, so the dosing app restarts therapy under the new
    /// envelope; on failure nothing changes but the rejection event.
    pub fn install_prescription(
        &mut self,
        caller: AppId,
        signed: &[u8],
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(
            caller,
            &[Role::Telemetry],
            command::INSTALL_PRESCRIPTION,
            now,
        )?;
        let utc = self.utc_ms(now);
        self.draw_signature();
        let verified: VerifiedPrescription =
            match rx::verify(&self.config, signed, self.p.serial_floor) {
                Ok(v) => v,
                Err(reason) => {
                    self.emit(
                        Event::PrescriptionRejected(PrescriptionRejected {
                            time_ms: utc,
                            serial: verified_serial(signed, reason),
                            reason,
                        }),
                        now,
                    );
                    return Err(reason);
                }
            };
        self.stop_all(DeliveryOutcome::Stopped, now);
        let rx = verified.prescription;
        self.pairing = verified.pairing;
        // A grant signed under the old prescription is not this one's.
        self.clinician_grant = None;
        self.p.serial_floor = rx.serial;
        self.p.signed_rx = Some(verified.signed);
        self.watchdog
            .arm(now, rx.envelope.dosing_checkin_timeout_ms);
        self.emit(
            Event::PrescriptionInstalled(PrescriptionInstalled {
                time_ms: utc,
                serial: rx.serial,
                concentration_ug_per_ml: rx.concentration_ug_per_ml,
            }),
            now,
        );
        self.rx = Some(rx);
        self.clear(AlarmCode::EnvelopeIntegrity, now);
        self.update_reservoir_alarms(now);
        self.emit_state(now);
        self.save_prescription();
        self.sync_outputs(now);
        // The dosing app reads the new prescription from the capsule.
        self.post_notice(pump_protocol::MessageKind::InstallPrescription, &[], now_ms);
        Ok(())
    }

    /// Copies the installed signed prescription into `buf`; returns its length.
    pub fn read_prescription(
        &mut self,
        caller: AppId,
        buf: &mut [u8],
        now_ms: u64,
    ) -> Result<usize, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(
            caller,
            &[Role::Dosing, Role::Telemetry],
            command::READ_PRESCRIPTION,
            now,
        )?;
        let signed = self.p.signed_rx.as_ref().ok_or(ErrorCode::NoPrescription)?;
        let dst = buf
            .get_mut(..signed.len())
            .ok_or(ErrorCode::InvalidArgument)?;
        dst.copy_from_slice(signed);
        Ok(signed.len())
    }

    /// Suspends therapy: every delivery stops (SR-ENV-008).
    pub fn suspend(&mut self, caller: AppId, now_ms: u64) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::SUSPEND, now)?;
        self.stop_all(DeliveryOutcome::Stopped, now);
        if !self.p.suspended {
            self.suspended_since_ms = Some(now);
        }
        self.p.suspended = true;
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Lifts a suspension. Nothing is delivered until the dosing app asks.
    pub fn resume(&mut self, caller: AppId, now_ms: u64) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::RESUME, now)?;
        self.p.suspended = false;
        self.check_suspension(now);
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Sets the real-time clock. Only the UTC offset changes: every safety
    /// window runs on core time, so a clock change can neither shorten a
    /// lockout nor reopen the 24 h limit (SR-ENV-007).
    pub fn set_clock(
        &mut self,
        caller: AppId,
        utc_time_ms: u64,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::SET_CLOCK, now)?;
        let previous = self.utc_ms(now);
        let offset = i128::from(utc_time_ms) - i128::from(now);
        self.p.utc_offset_ms = i64::try_from(offset).map_err(|_| ErrorCode::InvalidArgument)?;
        self.emit(
            Event::ClockSet(ClockSet {
                time_ms: utc_time_ms,
                previous_time_ms: previous,
            }),
            now,
        );
        self.save();
        Ok(())
    }

    pub(super) fn emit_state(&mut self, now: u64) {
        let utc = self.utc_ms(now);
        let pump_state = self.pump_state();
        self.emit(
            Event::PumpStateChanged(PumpStateChanged {
                time_ms: utc,
                pump_state,
            }),
            now,
        );
    }
}

/// The serial to log for a refused prescription: its own only when the
/// clinic's signature verified (refused for its device, serial or limits),
/// else 0. Unverified bytes are never decoded into the log (SR-RX-006).
fn verified_serial(signed: &[u8], reason: ErrorCode) -> u32 {
    match reason {
        ErrorCode::WrongDevice | ErrorCode::ReplayedSerial | ErrorCode::OutsideHardwareLimits => {
            pump_protocol::prescription::split_signed(signed)
                .ok()
                .and_then(|parts| pump_protocol::prescription::decode_body(parts.body).ok())
                .map_or(0, |rx| rx.serial)
        }
        _ => 0,
    }
}
