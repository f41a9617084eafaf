//! The dosing app's therapy logic, independent of Tock.
//!
//! The dosing app runs the therapy of the signed prescription the infusion
//! capsule holds: a basal schedule of time-of-day steps on the wall clock,
//! clinician and patient (PTM) boluses, the priming bolus of a new
//! catheter and the bridge bolus after a refill with another drug or
//! concentration. It decides *what to ask*; the capsule decides what is
//! allowed (the envelope) and moves the motor. Every request the capsule
//! refuses is recorded with its typed reason and retried only at a later
//! natural wake-up, never in a loop.
//!
//! The crate is a functional core: time comes in as [`Now`] (a monotonic
//! clock for durations, the UTC wall clock for the schedule), the capsule
//! behind the [`DosingCapsule`] trait, and the app's own persistent state as
//! a [`SavedState`] that the core saves in the capsule (commands 26/27, see
//! [`record`]). It is `no_std`, allocation-free and float-free; every
//! dose → volume conversion is in [`units`].
//!
//! ```ignore
//! let mut core = DosingCore::new(config, SavedState::new(CatheterContents::Unknown));
//! // The app's record from the capsule, if it has a readable one; the
//! // shell adds the offset to its clock from here on.
//! let clock_offset_ms = core.restore_record(&mut capsule, raw_now_ms).unwrap_or(0);
//! loop {
//!     let wake = match event {
//!         Timer => core.wake(&mut capsule, now),
//!         Upcall::DeliveryDone(kind, outcome, volume_nl) =>
//!             core.on_delivery_done(kind, outcome, volume_nl, &mut capsule, now),
//!         Upcall::RelayPosted => core.on_relay_posted(&mut capsule, now),
//!         Button => { core.request_patient_bolus(&mut capsule, now); core.next_wakeup() }
//!     };
//!     sleep_until(wake.at_monotonic_ms);
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod capsule;
mod core;
pub mod model;
pub mod record;
mod saved;
pub mod schedule;
pub mod units;

pub use crate::capsule::{DosingCapsule, Now, PatientBolusState, RelayItem};
pub use crate::core::{
    Decider, DosingConfig, DosingCore, PatientBolusStatus, PatientBolusVerdict, Phase,
    RefillStatus, Refusal, Request, WakeReason, Wakeup, BOLUS_END_GRACE_MS, MIN_CHECKIN_PERIOD_MS,
    REFUSAL_LOG_LEN, RELAY_MAX_ITEMS_PER_CALL, RELAY_PAYLOAD_BUF_LEN, RETRY_INTERVAL_MS,
};
pub use crate::model::{BolusPlan, Drug, ModelError, PatientBolusPlan, Therapy};
pub use crate::record::{
    decode_record, encode_record, load_record, RecordError, Restored, RECORD_FORMAT,
    RECORD_REFRESH_MS, SAVED_RECORD_MAX_LEN,
};
pub use crate::saved::{CatheterContents, Flush, FlushKind, SavedState, MAX_PATIENT_GRANTS};
pub use crate::schedule::{BasalSchedule, ScheduleError, ScheduledStep};

#[cfg(test)]
mod tests;
