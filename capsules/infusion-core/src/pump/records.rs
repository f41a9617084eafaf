//! The records kept apart (`docs/persistence.md`), and what a reset
//! restores from them.
//!
//! | record | written when | holds |
//! |---|---|---|
//! | `Prescription` | a prescription is installed | the signed bytes (which carry the serial) |
//! | `SerialFloor` | a prescription is installed; a signed command is accepted; first boot | the serial floor and the signed-command counters, in a region of its own |
//! | `Therapy` | any change of safety state but a step | ledger, carries, reservoir, alarms, suspension, clock offset, event sequence, steps accounted |
//! | `AppRecord` | the dosing app's record changes | its bytes |
//! | `Reservation` | before the first step of each batch of [`RESERVATION_STEPS`](super::RESERVATION_STEPS); after a drain | steps reserved, event sequence |
//!
//! A reset restores the therapy record and then counts every reserved step
//! the therapy record does not hold as delivered, and logs them as
//! `Unconfirmed` (SR-PER-006). Storage that a provisioned pump cannot read
//! never looks like a new pump: it stops under the latched
//! `EnvelopeIntegrity` alarm, keeps its serial floor, and assumes the
//! hardware's daily maximum was delivered in the last 24 h (SR-PER-007).

use heapless::Vec;
use pump_protocol::{AlarmCode, DeliveryKind, DeliveryOutcome, DeliveryRecord};
use serde::{Deserialize, Serialize};

use super::infusion::InfusionCore;
use crate::alarms::AlarmSet;
use crate::events::{Event, EventQueue};
use crate::ledger::{Channel, Ledger, Run};
use crate::platform::{Platform, RecordKind};

/// The therapy record's format. Format 1 is the first with records apart;
/// format 2 adds each run's lateness (`Run::late_ms`) to the ledger, format
/// 3 the battery's charge count. Earlier formats were never released: they
/// read as a lost therapy record (SR-PER-007).
const THERAPY_FORMAT: u8 = 3;

/// How a storage region read at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionState {
    /// Never written (erased): nothing was ever stored there.
    Blank,
    /// Read; the records given are the latest intact ones.
    Readable,
    /// Written, but not readable as a whole, or a record other than the
    /// last write failed its check: what it gives cannot be trusted to be
    /// the latest.
    Damaged,
}

/// What a platform that keeps records apart hands back at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredRecords<'a> {
    /// The region of every record but the serial floor.
    pub state_region: RegionState,
    /// The serial floor's own region.
    pub floor_region: RegionState,
    /// The latest record of each kind, if any.
    pub prescription: Option<&'a [u8]>,
    /// See [`RecordKind::Therapy`].
    pub therapy: Option<&'a [u8]>,
    /// See [`RecordKind::AppRecord`].
    pub app_record: Option<&'a [u8]>,
    /// See [`RecordKind::Reservation`].
    pub reservation: Option<&'a [u8]>,
    /// See [`RecordKind::SerialFloor`].
    pub serial_floor: Option<&'a [u8]>,
}

impl StoredRecords<'_> {
    /// A device that never stored anything: factory new, the one state in
    /// which the pump starts without a latched alarm and with no floor.
    pub const BLANK: StoredRecords<'static> = StoredRecords {
        state_region: RegionState::Blank,
        floor_region: RegionState::Blank,
        prescription: None,
        therapy: None,
        app_record: None,
        reservation: None,
        serial_floor: None,
    };

    fn factory_new(&self) -> bool {
        *self == Self::BLANK
    }
}

/// The therapy record as written (borrows the core's state).
#[derive(Serialize)]
struct TherapyOut<'a> {
    format: u8,
    suspended: bool,
    ledger: &'a Ledger,
    basal_carry_nl_ms_per_h: u64,
    bolus_carry_nl_ms_per_h: u64,
    reservoir_nl: u32,
    alarms: &'a AlarmSet,
    utc_offset_ms: i64,
    last_time_ms: u64,
    next_event_sequence: u32,
    steps_accounted: u64,
    battery: super::state::ChargeCount,
}

/// The therapy record as read: the same fields in the same order.
#[derive(Deserialize)]
struct TherapyIn {
    format: u8,
    suspended: bool,
    ledger: Ledger,
    basal_carry_nl_ms_per_h: u64,
    bolus_carry_nl_ms_per_h: u64,
    reservoir_nl: u32,
    alarms: AlarmSet,
    utc_offset_ms: i64,
    last_time_ms: u64,
    next_event_sequence: u32,
    steps_accounted: u64,
    battery: super::state::ChargeCount,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Reservation {
    steps_reserved: u64,
    reserved_at_ms: u64,
    next_event_sequence: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SerialFloor {
    serial_floor: u32,
}

/// What follows the floor in its record since the signed commands: a floor
/// record from before them has nothing after the floor, and reads as
/// counters never used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct CommandCounters {
    last: [u64; 2],
}

/// The floor record: the floor, then the counters if present.
fn decode_floor(bytes: &[u8]) -> Option<(SerialFloor, CommandCounters)> {
    let (floor, rest) = postcard::take_from_bytes::<SerialFloor>(bytes).ok()?;
    if rest.is_empty() {
        return Some((floor, CommandCounters::default()));
    }
    let counters = postcard::from_bytes::<CommandCounters>(rest).ok()?;
    Some((floor, counters))
}

impl<P: Platform> InfusionCore<P> {
    /// Restores from records kept apart ([`Storage::KEEPS_RECORDS_APART`]).
    ///
    /// [`Storage::KEEPS_RECORDS_APART`]: crate::Storage::KEEPS_RECORDS_APART
    pub fn restore_records(&mut self, stored: &StoredRecords<'_>, now_ms: u64) {
        self.platform.set_motor_enabled(false);
        if stored.factory_new() {
            self.p.last_time_ms = now_ms;
            self.start_battery_count(now_ms);
            // Therapy first: a cut between the two leaves a readable pump
            // (floor 0 written back), never a floor without state.
            self.save();
            self.write_serial_floor();
            return;
        }
        let floor_record = stored
            .serial_floor
            .and_then(decode_floor)
            .filter(|_| stored.floor_region == RegionState::Readable);
        let floor = floor_record.map_or(0, |(f, _)| f.serial_floor);
        self.p.command_counters = floor_record.map_or([0; 2], |(_, c)| c.last);
        let therapy = decode::<TherapyIn>(stored.therapy)
            .filter(|t| t.format == THERAPY_FORMAT && stored.state_region == RegionState::Readable);
        match therapy {
            Some(t) => self.restore_therapy(t, stored, floor, now_ms),
            None => self.restore_after_loss(stored, floor, now_ms),
        }
        if floor_record.is_none() {
            // The counters are lost with their record. Hosts count in
            // signing time (docs/protocol.md §5.5), so refusing every
            // counter up to the pump's clock refuses every command signed
            // before this boot: a recording cannot be replayed after a loss
            // (SR-AUTH-003).
            let utc = self.utc_ms(self.p.last_time_ms);
            for counter in &mut self.p.command_counters {
                *counter = (*counter).max(utc);
            }
            self.write_serial_floor();
        }
        self.save();
        // The stored reservation now agrees with what was counted, so a
        // second reset counts nothing twice.
        self.steps_reserved = self.steps_accounted;
        self.write_reservation();
        self.suspended_since_ms = self.p.suspended.then_some(self.p.last_time_ms);
        self.sync_outputs(self.p.last_time_ms);
    }

    fn restore_therapy(
        &mut self,
        t: TherapyIn,
        stored: &StoredRecords<'_>,
        floor: u32,
        now_ms: u64,
    ) {
        self.p.suspended = t.suspended;
        self.p.ledger = t.ledger;
        self.p.basal_carry_nl_ms_per_h = t.basal_carry_nl_ms_per_h;
        self.p.bolus_carry_nl_ms_per_h = t.bolus_carry_nl_ms_per_h;
        self.p.reservoir_nl = t.reservoir_nl;
        self.p.alarms = t.alarms;
        self.p.utc_offset_ms = t.utc_offset_ms;
        self.p.last_time_ms = t.last_time_ms;
        self.steps_accounted = t.steps_accounted;
        self.p.battery = t.battery;
        let reservation = decode::<Reservation>(stored.reservation).unwrap_or_default();
        let sequence = t.next_event_sequence.max(reservation.next_event_sequence);
        self.p.next_event_sequence = sequence;
        self.events = EventQueue::starting_at(sequence);
        self.p.app_record = stored
            .app_record
            .and_then(|r| Vec::from_slice(r).ok())
            .unwrap_or_default();
        // Unconfirmed steps count from the latest time the records know of.
        let now = self.clock(now_ms.max(reservation.reserved_at_ms));
        self.adopt_stored_prescription(stored.prescription, floor, now);
        let unconfirmed = reservation.steps_reserved.saturating_sub(t.steps_accounted);
        let kind = self.interrupted_kind();
        self.close_interrupted_runs(now);
        if unconfirmed > 0 {
            self.count_unconfirmed(unconfirmed, kind, reservation.reserved_at_ms, now);
        }
        if self.p.serial_floor != floor || stored.floor_region != RegionState::Readable {
            // One copy of the floor was lost or is behind the other (an
            // install cut off between its two writes): write it back so two
            // copies hold the higher one again.
            self.write_serial_floor();
        }
        if let Some(rx) = &self.rx {
            self.watchdog
                .arm(now, rx.envelope.dosing_checkin_timeout_ms);
        }
    }

    /// A provisioned pump whose therapy state is gone: stopped, latched,
    /// and as if the hardware's daily maximum had just been delivered.
    fn restore_after_loss(&mut self, stored: &StoredRecords<'_>, floor: u32, now_ms: u64) {
        // A readable reservation still tells how far the motor may have
        // gone and which event numbers were used: never count or number
        // below it.
        let reservation = decode::<Reservation>(stored.reservation).unwrap_or_default();
        self.steps_accounted = reservation.steps_reserved;
        self.p.next_event_sequence = reservation.next_event_sequence;
        self.events = EventQueue::starting_at(reservation.next_event_sequence);
        self.p.last_time_ms = now_ms.max(reservation.reserved_at_ms);
        let now = self.clock(now_ms);
        // The prescription record (if readable) still proves its serial.
        self.adopt_stored_prescription(stored.prescription, floor, now);
        self.rx = None;
        self.p.signed_rx = None;
        self.p.reservoir_nl = 0;
        // Whether the clinic had suspended went with the record: come back
        // suspended, so a reinstall alone does not restart a therapy the
        // clinic had stopped; the clinic resumes (SR-PER-007).
        self.p.suspended = true;
        let s = self.config.nl_per_step;
        let worst_steps = u64::from(self.config.limits.max_volume_per_24h_nl / s.max(1));
        self.raise(AlarmCode::EnvelopeIntegrity, now);
        if self.energy.is_some() {
            // The battery's count went with the therapy record: nothing
            // says how much is left, so plan the replacement now
            // (SR-BAT-002).
            self.start_battery_count(now);
            self.raise(AlarmCode::BatteryReplacement, now);
        }
        self.count_unconfirmed(worst_steps, DeliveryKind::Basal, now, now);
        self.write_serial_floor();
    }

    /// Takes the stored prescription if it verifies at a serial no lower
    /// than the floor; the floor becomes the higher of the two copies.
    fn adopt_stored_prescription(&mut self, signed: Option<&[u8]>, floor: u32, now: u64) {
        self.p.serial_floor = floor;
        let Some(signed) = signed else {
            if floor > 0 {
                self.raise(AlarmCode::EnvelopeIntegrity, now);
            }
            return;
        };
        match crate::rx::verify(&self.config, signed, floor.saturating_sub(1)) {
            Ok(v) => {
                self.p.serial_floor = v.prescription.serial;
                self.p.signed_rx = Some(v.signed);
                self.rx = Some(v.prescription);
                self.pairing = v.pairing;
            }
            Err(_) => {
                self.p.signed_rx = None;
                self.rx = None;
                self.raise(AlarmCode::EnvelopeIntegrity, now);
            }
        }
    }

    fn interrupted_kind(&self) -> DeliveryKind {
        self.p
            .ledger
            .active(Channel::Bolus)
            .or_else(|| self.p.ledger.active(Channel::Basal))
            .map_or(DeliveryKind::Basal, Run::kind)
    }

    /// Counts `steps` that may have been made as made at `now`: in the 24 h
    /// window from now (the longest they can weigh) and out of the
    /// reservoir, and logs them with their own outcome.
    pub(super) fn count_unconfirmed(
        &mut self,
        steps: u64,
        kind: DeliveryKind,
        since_ms: u64,
        now: u64,
    ) {
        let s = self.config.nl_per_step;
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        let volume_nl = steps.saturating_mul(s);
        self.p.reservoir_nl = self.p.reservoir_nl.saturating_sub(volume_nl);
        self.steps_accounted = self.steps_accounted.saturating_add(u64::from(steps));
        // More steps than a u32 of nanolitres already fill any daily limit;
        // holding at most that many keeps the run's arithmetic exact.
        let held_steps = steps.min(u32::MAX / s.max(1));
        if self
            .p
            .ledger
            .push(Run::unconfirmed(now, held_steps, s), now, s)
            .is_err()
        {
            // No room to hold them: stopping is the one safe answer.
            self.raise(AlarmCode::EnvelopeIntegrity, now);
        }
        let utc = self.utc_ms(now);
        self.emit(
            Event::DeliveryRecord(DeliveryRecord {
                time_ms: utc,
                delivery_kind: kind,
                outcome: DeliveryOutcome::Unconfirmed,
                volume_nl,
                duration_ms: u32::try_from(now.saturating_sub(since_ms)).unwrap_or(u32::MAX),
            }),
            now,
        );
        self.update_reservoir_alarms(now);
    }

    pub(super) fn write_therapy_record(&mut self) {
        let record = TherapyOut {
            format: THERAPY_FORMAT,
            suspended: self.p.suspended,
            ledger: &self.p.ledger,
            basal_carry_nl_ms_per_h: self.p.basal_carry_nl_ms_per_h,
            bolus_carry_nl_ms_per_h: self.p.bolus_carry_nl_ms_per_h,
            reservoir_nl: self.p.reservoir_nl,
            alarms: &self.p.alarms,
            utc_offset_ms: self.p.utc_offset_ms,
            last_time_ms: self.p.last_time_ms,
            next_event_sequence: self.p.next_event_sequence,
            steps_accounted: self.steps_accounted,
            battery: self.p.battery,
        };
        let mut written = 0;
        if let Ok(bytes) = postcard::to_slice(&record, &mut self.save_buf) {
            written = bytes.len();
            self.platform.write_record(RecordKind::Therapy, bytes);
        }
        // Counted in the next save: this record already holds the count.
        self.draw_flash(written);
    }

    pub(super) fn write_reservation(&mut self) {
        let record = Reservation {
            steps_reserved: self.steps_reserved.max(self.steps_accounted),
            reserved_at_ms: self.p.last_time_ms,
            next_event_sequence: self.p.next_event_sequence,
        };
        let mut buf = [0u8; 32];
        if let Ok(bytes) = postcard::to_slice(&record, &mut buf) {
            self.draw_flash(bytes.len());
            self.platform.write_record(RecordKind::Reservation, bytes);
        }
    }

    pub(super) fn write_serial_floor(&mut self) {
        let record = SerialFloor {
            serial_floor: self.p.serial_floor,
        };
        let counters = CommandCounters {
            last: self.p.command_counters,
        };
        let mut buf = [0u8; 32];
        let Ok(head) = postcard::to_slice(&record, &mut buf).map(|b| b.len()) else {
            return;
        };
        let Some(tail) = buf
            .get_mut(head..)
            .and_then(|rest| postcard::to_slice(&counters, rest).ok())
            .map(|b| b.len())
        else {
            return;
        };
        if let Some(bytes) = buf.get(..head + tail) {
            self.draw_flash(bytes.len());
            self.platform.write_record(RecordKind::SerialFloor, bytes);
        }
    }

    /// Steps accounted since the device was provisioned (every step the
    /// motor was asked for, plus those a reset could not confirm).
    pub fn steps_accounted(&self) -> u64 {
        self.steps_accounted
    }
}

fn decode<'a, T: Deserialize<'a>>(bytes: Option<&'a [u8]>) -> Option<T> {
    postcard::from_bytes(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn therapy_record_reads_back_what_was_written() {
        let ledger = Ledger::new();
        let alarms = AlarmSet::default();
        let out = TherapyOut {
            format: THERAPY_FORMAT,
            suspended: true,
            ledger: &ledger,
            basal_carry_nl_ms_per_h: 7,
            bolus_carry_nl_ms_per_h: 8,
            reservoir_nl: 9,
            alarms: &alarms,
            utc_offset_ms: -10,
            last_time_ms: 11,
            next_event_sequence: 12,
            steps_accounted: 13,
            battery: super::super::state::ChargeCount {
                used_pah: 14,
                since_ms: 15,
                counted_until_ms: 16,
            },
        };
        let mut buf = [0u8; 256];
        let bytes = postcard::to_slice(&out, &mut buf).unwrap();
        let back: TherapyIn = postcard::from_bytes(bytes).unwrap();
        assert_eq!(
            (
                back.format,
                back.suspended,
                back.basal_carry_nl_ms_per_h,
                back.bolus_carry_nl_ms_per_h,
                back.reservoir_nl,
                back.utc_offset_ms,
                back.last_time_ms,
                back.next_event_sequence,
                back.steps_accounted
            ),
            (THERAPY_FORMAT, true, 7, 8, 9, -10, 11, 12, 13)
        );
        assert_eq!(back.ledger, ledger);
        assert_eq!(
            (
                back.battery.used_pah,
                back.battery.since_ms,
                back.battery.counted_until_ms
            ),
            (14, 15, 16)
        );
    }

    #[test]
    fn only_an_all_blank_store_is_factory_new() {
        assert!(StoredRecords::BLANK.factory_new());
        let damaged = StoredRecords {
            state_region: RegionState::Damaged,
            ..StoredRecords::BLANK
        };
        assert!(!damaged.factory_new());
        let floor_only = StoredRecords {
            floor_region: RegionState::Readable,
            serial_floor: Some(&[1]),
            ..StoredRecords::BLANK
        };
        assert!(!floor_only.factory_new());
    }
}
