//! Persistence: what survives a reset, when it is written, and what a reset
//! restores. This is the one seam through which the core's state reaches
//! storage; the rules in the sibling modules change `self.p` and call
//! [`save`](InfusionCore::save), and only this module knows the record's
//! layout.

use heapless::Vec;
use pump_protocol::{AlarmCode, DeliveryKind, DeliveryOutcome, ErrorCode, CRC32C};

use super::infusion::InfusionCore;
use super::state::{Persistent, RESERVATION_STEPS, SAVED_FORMAT, SAVED_STATE_LEN};
use crate::command;
use crate::config::{AppId, Role};
use crate::events::EventQueue;
use crate::ledger::Channel;
use crate::platform::Platform;
use crate::platform::RecordKind;
use crate::rx;

impl<P: Platform> InfusionCore<P> {
    /// Restores saved state in place.
    ///
    /// The motor is disabled before anything is read and stays so: deliveries
    /// active at the reset are closed as `Interrupted` with exactly what they
    /// delivered, and only a new request starts the motor (SR-PER-001). Saved
    /// state that fails its CRC or whose prescription no longer verifies
    /// raises `EnvelopeIntegrity` and leaves no prescription (SR-PER-003).
    pub fn restore_from(&mut self, saved: Option<&[u8]>, now_ms: u64) {
        self.platform.set_motor_enabled(false);
        let Some(saved) = saved else {
            self.p.last_time_ms = now_ms;
            self.start_battery_count(now_ms);
            self.save();
            return;
        };
        if decode_saved(saved, &mut self.p) {
            self.events = EventQueue::starting_at(self.p.next_event_sequence);
            let now = self.clock(now_ms);
            self.reverify_prescription(now);
            self.close_interrupted_runs(now);
            if let Some(rx) = &self.rx {
                self.watchdog
                    .arm(now, rx.envelope.dosing_checkin_timeout_ms);
            }
        } else {
            // Lost state is never a new pump (SR-PER-007): the one record
            // held the 24 h window and the signers' counters too. Count the
            // hardware's daily maximum as delivered in the 24 h before this
            // restore, and refuse every command counter up to the pump's
            // clock (SR-AUTH-003), as the records-apart restore does.
            self.p.last_time_ms = now_ms;
            let now = self.clock(now_ms);
            self.raise(AlarmCode::EnvelopeIntegrity, now);
            // Whether the clinic had suspended went with the image: come
            // back suspended until the clinic resumes.
            self.p.suspended = true;
            let s = self.config.nl_per_step;
            let worst_steps = u64::from(self.config.limits.max_volume_per_24h_nl / s.max(1));
            self.count_unconfirmed(worst_steps, DeliveryKind::Basal, now, now);
            let utc = self.utc_ms(now);
            for counter in &mut self.p.command_counters {
                *counter = (*counter).max(utc);
            }
        }
        self.save();
        self.suspended_since_ms = self.p.suspended.then_some(self.p.last_time_ms);
        self.sync_outputs(self.p.last_time_ms);
    }

    pub(super) fn reverify_prescription(&mut self, now: u64) {
        let Some(signed) = self.p.signed_rx.clone() else {
            return;
        };
        let floor = self.p.serial_floor.saturating_sub(1);
        match rx::verify(&self.config, &signed, floor) {
            Ok(v) if v.prescription.serial == self.p.serial_floor => {
                self.rx = Some(v.prescription);
                self.pairing = v.pairing;
            }
            _ => {
                self.p.signed_rx = None;
                self.raise(AlarmCode::EnvelopeIntegrity, now);
            }
        }
    }

    pub(super) fn close_interrupted_runs(&mut self, now: u64) {
        for channel in [Channel::Basal, Channel::Bolus] {
            self.end_run(channel, DeliveryOutcome::Interrupted, now);
        }
    }

    /// Writes the therapy state: on a platform that keeps records apart, the
    /// [`RecordKind::Therapy`] record; otherwise the whole image. Every rule
    /// that changes safety state (other than a step) calls this.
    pub(super) fn save(&mut self) {
        self.p.next_event_sequence = self.events.next_sequence();
        if P::KEEPS_RECORDS_APART {
            self.write_therapy_record();
        } else {
            self.write_image();
        }
    }

    fn write_image(&mut self) {
        let len = match postcard::to_slice(&self.p, &mut self.save_buf[..SAVED_STATE_LEN - 4]) {
            Ok(body) => body.len(),
            // The state is bounded below SAVED_STATE_LEN (tested); if it ever
            // were not, writing nothing keeps the last good record.
            Err(_) => return,
        };
        let crc = CRC32C.checksum(&self.save_buf[..len]);
        self.draw_flash(len + 4);
        self.save_buf[len..len + 4].copy_from_slice(&crc.to_le_bytes());
        self.platform
            .write_record(RecordKind::Image, &self.save_buf[..len + 4]);
    }

    /// A new prescription: the prescription record, then the serial floor in
    /// its own region, then the therapy state.
    pub(super) fn save_prescription(&mut self) {
        if P::KEEPS_RECORDS_APART {
            self.draw_flash(self.p.signed_rx.as_ref().map_or(0, |s| s.len()));
            if let Some(signed) = &self.p.signed_rx {
                self.platform.write_record(RecordKind::Prescription, signed);
            }
            self.write_serial_floor();
        }
        self.save();
    }

    /// A signed command was accepted: its counter must survive any reset
    /// before the command acts (SR-AUTH-003).
    pub(super) fn save_command_counters(&mut self) {
        if P::KEEPS_RECORDS_APART {
            self.write_serial_floor();
        } else {
            self.save();
        }
    }

    /// The dosing app's record changed.
    pub(super) fn save_app_record_bytes(&mut self) {
        if P::KEEPS_RECORDS_APART {
            self.draw_flash(self.p.app_record.len());
            self.platform
                .write_record(RecordKind::AppRecord, &self.p.app_record);
        } else {
            self.save();
        }
    }

    /// Events were drained: their sequence numbers must never be reused.
    pub(super) fn save_event_sequence(&mut self) {
        self.p.next_event_sequence = self.events.next_sequence();
        if P::KEEPS_RECORDS_APART {
            self.write_reservation();
        } else {
            self.write_image();
        }
    }

    /// Accounts one step before the motor moves it (SR-PER-002). With
    /// records kept apart, steps are reserved in batches of
    /// [`RESERVATION_STEPS`]: one small record covers the next batch, and a
    /// reset counts every reserved step not yet in the therapy record as
    /// delivered (SR-PER-006).
    pub(super) fn account_step(&mut self) {
        self.steps_accounted = self.steps_accounted.saturating_add(1);
        self.draw_step();
        if !P::KEEPS_RECORDS_APART {
            self.save();
        } else if self.steps_accounted > self.steps_reserved {
            self.steps_reserved = self.steps_accounted.saturating_add(RESERVATION_STEPS - 1);
            self.p.next_event_sequence = self.events.next_sequence();
            self.write_reservation();
        }
    }

    /// Command 26: the dosing app stores its own record (SR-PER-005). It
    /// replaces the previous one and is written with the capsule's state.
    pub fn save_app_record(
        &mut self,
        caller: AppId,
        record: &[u8],
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::SAVE_APP_RECORD, now)?;
        let record = Vec::from_slice(record).map_err(|()| ErrorCode::InvalidArgument)?;
        if record != self.p.app_record {
            self.p.app_record = record;
            self.save_app_record_bytes();
        }
        Ok(())
    }

    /// Command 27: the dosing app reads its record back into `buf`; returns
    /// its length (0 if it never saved one).
    pub fn load_app_record(
        &mut self,
        caller: AppId,
        buf: &mut [u8],
        now_ms: u64,
    ) -> Result<usize, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::LOAD_APP_RECORD, now)?;
        let record = &self.p.app_record;
        buf.get_mut(..record.len())
            .ok_or(ErrorCode::InvalidArgument)?
            .copy_from_slice(record);
        Ok(record.len())
    }
}

/// Decodes a saved record into `p`; on any failure `p` is left as it was.
pub(super) fn decode_saved(saved: &[u8], p: &mut Persistent) -> bool {
    let Some(body_len) = saved.len().checked_sub(4) else {
        return false;
    };
    let (body, crc) = saved.split_at(body_len);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if CRC32C.checksum(body) != crc {
        return false;
    }
    match postcard::from_bytes::<Persistent>(body) {
        Ok(decoded) if decoded.format == SAVED_FORMAT => {
            *p = decoded;
            true
        }
        _ => false,
    }
}
