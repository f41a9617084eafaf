//! The telemetry app's logic, independent of Tock.
//!
//! The telemetry app is the pump's only link to the clinician's programmer
//! and the keeper of its event history:
//!
//! - it drains the infusion capsule's event queue into a persistent log,
//!   a bounded ring of protocol frames with their sequence numbers over a
//!   flash region ([`LogStorage`], `storage_core`'s NOR flash model) that
//!   survives resets, and records every sequence hole it sees as a
//!   `LogGap` ([`log`]);
//! - it serves the host link with the protocol crate: status, log reads in
//!   bounded, resumable chunks, and the programmer's commands, relayed to
//!   the capsule with its verdict as `Ack` or `Nack`; bolus requests go to
//!   the dosing app through the capsule's relay and are answered when its
//!   verdict comes back ([`TelemetryCore::service_relay`]), and the
//!   commands the capsule accepted are posted there as notices;
//! - every bad frame gets a typed `Nack` and changes nothing, and each call
//!   does bounded work, so a flood on the link cannot starve dosing.
//!
//! Like the dosing core it is `no_std`, allocation-free and float-free; time
//! comes in as an argument and the capsule behind [`TelemetryCapsule`].
//!
//! ```ignore
//! let mut core = TelemetryCore::new(flash_log);
//! loop {
//!     match event {
//!         Upcall::EventsAvailable => { core.drain_capsule(&mut capsule, utc_ms)?; }
//!         Upcall::RelayAnswered => { core.service_relay(&mut capsule, &mut tx, utc_ms); }
//!         LinkRx(bytes) => {
//!             let progress = core.service_link(&rx[..], &mut capsule, &mut tx, utc_ms);
//!             rx.drain(..progress.consumed); // the rest waits for the next wake-up
//!         }
//!     }
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod capsule;
mod core;
pub mod log;
pub mod output;

pub use crate::capsule::TelemetryCapsule;
pub use crate::core::{
    DrainReport, LinkProgress, TelemetryCore, TelemetryStats, DRAIN_BUF_LEN,
    MAX_LINK_BYTES_PER_CALL, MAX_LINK_ITEMS_PER_CALL, MAX_LOG_CHUNK_FRAMES, SIMPLE_RESPONSE_ROOM,
};
pub use crate::log::{
    FlashError, Geometry, LogStats, LogStorage, PersistentLog, StorageError, RECORD_LEN,
};
pub use crate::output::{LinkOutput, SliceOutput};

#[cfg(test)]
mod tests;
