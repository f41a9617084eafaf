//! `infusion_core::Platform` over the HIL adapters.

use infusion_core::{AlarmSignal, Notification, Platform, RecordKind, StoredRecords};
use pump_protocol::{AlarmCode, DeliveryKind};

/// The pump motor as the capsule drives it (implemented by
/// [`StepperMotor`](crate::motor::StepperMotor)).
pub trait PumpMotor {
    /// Powers the motor driver; disabling also drops steps not yet made.
    fn set_enabled(&self, enabled: bool);
    /// Queues one step. Ignored while disabled.
    fn step(&self);
}

/// The alarm output (implemented by
/// [`Annunciator`](crate::annunciator::Annunciator)).
pub trait AlarmAnnunciator {
    /// Shows `signal` until the next call.
    fn show(&self, signal: AlarmSignal);
}

/// The core's records, kept apart and each written atomically (implemented
/// by [`FlashRecords`](crate::storage::FlashRecords)).
pub trait RecordStore {
    /// Replaces the stored record of `kind`; returns once it is on flash or
    /// the write failed (a failure is reported by [`Self::take_fault`] and,
    /// for the records that account steps, by [`Self::is_committed`]).
    fn write(&self, kind: RecordKind, record: &[u8]);
    /// Whether the latest write of every record that accounts motor steps
    /// (`Reservation`, `Therapy`) reached storage: steps wait until it did.
    fn is_committed(&self) -> bool;
    /// Whether a record failed to reach storage since the last call; each
    /// failure is reported once, so the capsule can raise its alarm without
    /// a save inside that alarm reporting back into it.
    fn take_fault(&self) -> bool;
}

/// Receives the stored records at boot.
pub trait StoreClient {
    /// The latest record of each kind, and how each region read. Called
    /// once, after `load`.
    fn loaded(&self, stored: &StoredRecords<'_>);
}

/// Receives changes of the motor's fault input (stall or occlusion).
pub trait FaultClient {
    /// The input for `code` changed to `asserted`.
    fn fault_input_changed(&self, code: AlarmCode, asserted: bool);
}

/// What the capsule tells processes about, queued while the core runs and
/// delivered as upcalls once it has returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Note {
    Core(Notification),
    BolusVerdict {
        kind: DeliveryKind,
        error: u16,
        volume_nl: u32,
    },
}

const NOTE_QUEUE_LEN: usize = 12;

/// A small queue of notes. When full, an `EventsAvailable` or
/// `AlarmChanged` replaces the previous one of its kind (only the latest
/// matters); anything else overwrites the oldest entry.
pub(crate) struct Notes {
    items: [Option<Note>; NOTE_QUEUE_LEN],
    len: usize,
}

impl Notes {
    pub(crate) const fn new() -> Self {
        Self {
            items: [None; NOTE_QUEUE_LEN],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, note: Note) {
        let replaces = |old: &Note| {
            matches!(
                (old, &note),
                (
                    Note::Core(Notification::EventsAvailable { .. }),
                    Note::Core(Notification::EventsAvailable { .. })
                ) | (
                    Note::Core(Notification::AlarmChanged(_)),
                    Note::Core(Notification::AlarmChanged(_))
                )
            )
        };
        if let Some(slot) = self.items[..self.len]
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(replaces))
        {
            *slot = Some(note);
            return;
        }
        if self.len == NOTE_QUEUE_LEN {
            self.items.rotate_left(1);
            self.len -= 1;
        }
        self.items[self.len] = Some(note);
        self.len += 1;
    }

    pub(crate) fn take(&mut self) -> Self {
        core::mem::replace(self, Self::new())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Note> + '_ {
        self.items[..self.len].iter().flatten().copied()
    }
}

/// The core's [`Platform`]: motor, alarm output and storage adapters, plus
/// the notification queue and the steps held until their record is written.
pub struct TockPlatform<'a> {
    motor: &'a dyn PumpMotor,
    output: &'a dyn AlarmAnnunciator,
    store: &'a dyn RecordStore,
    held_steps: u32,
    pub(crate) notes: Notes,
}

impl<'a> TockPlatform<'a> {
    /// Bundles the adapters.
    pub fn new(
        motor: &'a dyn PumpMotor,
        output: &'a dyn AlarmAnnunciator,
        store: &'a dyn RecordStore,
    ) -> Self {
        Self {
            motor,
            output,
            store,
            held_steps: 0,
            notes: Notes::new(),
        }
    }

    /// See [`RecordStore::take_fault`].
    pub(crate) fn take_storage_fault(&self) -> bool {
        self.store.take_fault()
    }

    /// The records accounting for the held steps are written: make them.
    pub(crate) fn release_held_steps(&mut self) {
        while self.held_steps > 0 && self.store.is_committed() {
            self.held_steps -= 1;
            self.motor.step();
        }
    }
}

impl Platform for TockPlatform<'_> {
    // Records kept apart in two flash rings (`storage`): a step costs a
    // share of one small reservation, not a rewrite of the whole state.
    const KEEPS_RECORDS_APART: bool = true;

    fn set_motor_enabled(&mut self, enabled: bool) {
        if !enabled {
            self.held_steps = 0;
        }
        self.motor.set_enabled(enabled);
    }

    fn step_motor(&mut self) {
        // The core wrote the reservation that accounts for this step before
        // asking for it; the motor moves only if that write succeeded.
        if self.held_steps == 0 && self.store.is_committed() {
            self.motor.step();
        } else {
            self.held_steps = self.held_steps.saturating_add(1);
        }
    }

    fn show_alarm(&mut self, signal: AlarmSignal) {
        self.output.show(signal);
    }

    fn write_record(&mut self, kind: RecordKind, record: &[u8]) {
        self.store.write(kind, record);
    }

    fn notify(&mut self, notification: Notification) {
        self.notes.push(Note::Core(notification));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use pump_protocol::DeliveryOutcome;

    #[derive(Default)]
    struct Fake {
        steps: Cell<u32>,
        enabled: Cell<bool>,
        committed: Cell<bool>,
    }
    impl PumpMotor for Fake {
        fn set_enabled(&self, enabled: bool) {
            self.enabled.set(enabled);
        }
        fn step(&self) {
            self.steps.set(self.steps.get() + 1);
        }
    }
    impl AlarmAnnunciator for Fake {
        fn show(&self, _: AlarmSignal) {}
    }
    impl RecordStore for Fake {
        fn write(&self, _: RecordKind, record: &[u8]) {
            // The fake fails every write of an odd first byte.
            self.committed
                .set(record.first().is_some_and(|b| b % 2 == 0));
        }
        fn is_committed(&self) -> bool {
            self.committed.get()
        }
        fn take_fault(&self) -> bool {
            false
        }
    }

    #[test]
    fn steps_wait_for_their_record() {
        let fake = Fake::default();
        let mut p = TockPlatform::new(&fake, &fake, &fake);
        p.set_motor_enabled(true);
        p.write_record(RecordKind::Reservation, &[2]);
        p.step_motor();
        assert_eq!(fake.steps.get(), 1, "written: the step is made");
        p.write_record(RecordKind::Reservation, &[1]);
        p.step_motor();
        p.step_motor();
        assert_eq!(fake.steps.get(), 1, "failed: steps wait");
        p.write_record(RecordKind::Reservation, &[4]);
        p.release_held_steps();
        assert_eq!(
            fake.steps.get(),
            3,
            "written again: the held steps are made"
        );
        // Disabling the motor drops held steps.
        p.write_record(RecordKind::Reservation, &[3]);
        p.step_motor();
        p.set_motor_enabled(false);
        p.write_record(RecordKind::Reservation, &[6]);
        p.release_held_steps();
        assert_eq!(fake.steps.get(), 3);
    }

    #[test]
    fn notes_keep_only_the_latest_counts_and_never_overflow() {
        let mut notes = Notes::new();
        for count in 0..100 {
            notes.push(Note::Core(Notification::EventsAvailable { count }));
            notes.push(Note::Core(Notification::AlarmChanged(AlarmSignal::OFF)));
        }
        assert_eq!(notes.iter().count(), 2);
        for volume_nl in 0..20 {
            notes.push(Note::Core(Notification::DeliveryDone {
                kind: DeliveryKind::Basal,
                outcome: DeliveryOutcome::Completed,
                volume_nl,
            }));
        }
        assert_eq!(notes.iter().count(), NOTE_QUEUE_LEN);
        let last = notes.take().iter().last();
        assert!(matches!(
            last,
            Some(Note::Core(Notification::DeliveryDone { volume_nl: 19, .. }))
        ));
        assert_eq!(notes.iter().count(), 0);
    }
}
