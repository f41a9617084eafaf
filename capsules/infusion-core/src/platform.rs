//! The hardware and kernel the core drives, as small traits. The Tock
//! capsule implements them over HILs; the simulator and tests implement them
//! in memory.

use pump_protocol::{DeliveryKind, DeliveryOutcome};

use crate::alarms::AlarmSignal;

/// The pump motor (a stepper with an enable line).
pub trait Motor {
    /// Powers the driver; disabled means no step can happen.
    fn set_enabled(&mut self, enabled: bool);
    /// Moves one step (one `nl_per_step` of drug).
    fn step(&mut self);
}

/// The alarm output: a tone and LED pattern per priority.
pub trait AlarmOutput {
    /// Shows `signal` until the next call.
    fn show(&mut self, signal: AlarmSignal);
}

/// What a stored record is (see `docs/persistence.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// The whole state in one record, on platforms that do not keep records
    /// apart ([`Storage::KEEPS_RECORDS_APART`] `false`).
    Image,
    /// The installed signed prescription, as verified.
    Prescription,
    /// The therapy state: ledger, reservoir, alarms, suspension, clock
    /// offset, event sequence, steps accounted.
    Therapy,
    /// The dosing app's own record (commands 26/27), opaque here.
    AppRecord,
    /// Steps reserved before the motor moves them, and the event sequence.
    Reservation,
    /// The serial floor. It must be kept in a region apart from every
    /// other record, so that no single corruption loses it together with
    /// the prescription that also carries it.
    SerialFloor,
}

/// Persistent storage. Each write of a record must be atomic: after a reset
/// the board hands back either the old record of that kind or the new one.
pub trait Storage {
    /// `false`: the board keeps one record, [`RecordKind::Image`], holding
    /// the whole state, rewritten at every change and before every step
    /// (the firmware's two-slot store). `true`: it keeps each kind apart,
    /// and only the small [`RecordKind::Reservation`] is written while the
    /// motor runs (the design of `docs/persistence.md`).
    const KEEPS_RECORDS_APART: bool = false;
    /// Replaces the stored record of `kind`.
    fn write_record(&mut self, kind: RecordKind, record: &[u8]);
}

/// Something apps should hear about (the Tock glue turns these into upcalls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notification {
    /// A delivery ended.
    DeliveryDone {
        /// What it was.
        kind: DeliveryKind,
        /// How it ended.
        outcome: DeliveryOutcome,
        /// Volume delivered since its last checkpoint.
        volume_nl: u32,
    },
    /// Events are waiting to be drained.
    EventsAvailable {
        /// How many.
        count: usize,
    },
    /// The alarm output changed.
    AlarmChanged(AlarmSignal),
    /// The telemetry app posted to the relay: the dosing app should take it.
    RelayPosted,
    /// A relayed request has a verdict: the telemetry app should read it.
    RelayAnswered,
}

/// Receives notifications.
pub trait Notifier {
    /// Called when something happens; must not call back into the core.
    fn notify(&mut self, notification: Notification);
}

/// Everything the core drives.
pub trait Platform {
    /// See [`Motor::set_enabled`].
    fn set_motor_enabled(&mut self, enabled: bool);
    /// See [`Motor::step`].
    fn step_motor(&mut self);
    /// See [`AlarmOutput::show`].
    fn show_alarm(&mut self, signal: AlarmSignal);
    /// See [`Storage::KEEPS_RECORDS_APART`].
    const KEEPS_RECORDS_APART: bool;
    /// See [`Storage::write_record`].
    fn write_record(&mut self, kind: RecordKind, record: &[u8]);
    /// See [`Notifier::notify`].
    fn notify(&mut self, notification: Notification);
}

impl<T: Motor + AlarmOutput + Storage + Notifier> Platform for T {
    const KEEPS_RECORDS_APART: bool = <T as Storage>::KEEPS_RECORDS_APART;
    fn set_motor_enabled(&mut self, enabled: bool) {
        Motor::set_enabled(self, enabled);
    }
    fn step_motor(&mut self) {
        Motor::step(self);
    }
    fn show_alarm(&mut self, signal: AlarmSignal) {
        AlarmOutput::show(self, signal);
    }
    fn write_record(&mut self, kind: RecordKind, record: &[u8]) {
        Storage::write_record(self, kind, record);
    }
    fn notify(&mut self, notification: Notification) {
        Notifier::notify(self, notification);
    }
}
