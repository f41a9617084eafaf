//! Infusion pump capsule: the pump's safety kernel behind a syscall driver.
//!
//! This capsule is the only code in the pump that moves the motor or sounds
//! the alarm. Every decision (the physician's envelope from a signed
//! prescription, roles, the exact 24 h ledger, the watchdog, alarms,
//! persistence) is made by the portable `infusion-core` crate; this crate is
//! the glue that puts it on a Tock kernel:
//!
//! - [`Infusion`] implements [`SyscallDriver`] as a direct translation of
//!   `infusion_core::InfusionCore::command` (same command numbers and
//!   arguments), with a grant per process for six upcalls, one read-only
//!   allow (signed prescription or refill bytes) and one read-write allow
//!   (drained events or the installed prescription).
//! - The caller's identity is the credential-checked `ShortId` the kernel
//!   assigned to the process ([`appid::RoleKeyShortIds`] gives the dosing and
//!   telemetry apps fixed ones); the board's role table in the
//!   [`BoardConfig`] maps it to a role.
//! - Core time is 64-bit milliseconds extended from the ticks of one
//!   [`hil::time::Alarm`], which is armed at `next_wakeup()` (and at least
//!   every [`MAX_SLEEP_MS`], so no tick wrap is missed).
//! - [`policy::PumpSyscallFilter`] gives the telemetry link driver to the
//!   telemetry app alone; [`faults::AuditedRestartPolicy`] reports app
//!   faults to the core before restarting the app.
//! - HIL adapters: [`motor::StepperMotor`] (STEP/DIR/ENABLE GPIO pins and a
//!   fault input, pulses timed by an alarm), [`annunciator::Annunciator`]
//!   (alarm tones on a [`hil::buzzer::Buzzer`], priority on LEDs) and
//!   [`storage::FlashRecords`] (the core's records kept apart, in two
//!   `storage_core::RingStore`s over the board's `storage_core::Flash`). A
//!   record that cannot be written is reported to the core, which stops
//!   delivery under a high alarm.
//!
//! A motor step is released to the motor only once the reservation that
//! accounts for it has been written (the core reserves steps in batches of
//! `RESERVATION_STEPS` before the first of them), so a reset can never
//! forget a step that moved; it counts at most one batch too many
//! (`docs/persistence.md` §4).
//!
//! Usage
//! -----
//!
//! ```rust,ignore
//! # use kernel::static_init;
//! let store = static_init!(AbStore<'static, RamStore>, AbStore::new(ram_store, buf_a, buf_b, 0, 8192));
//! ram_store.set_client(store);
//! let platform = infusion::TockPlatform::new(motor, annunciator, store);
//! let infusion = static_init!(
//!     infusion::Infusion<'static, VirtualMuxAlarm<'static, Clint<'static>>>,
//!     infusion::Infusion::new(
//!         core_alarm,
//!         board_kernel.create_grant(infusion::DRIVER_NUM, &memory_allocation_cap),
//!         board_config,
//!         platform,
//!         static_init!(infusion::CoreSlot<'static>, core::mem::MaybeUninit::uninit()),
//!     )
//! );
//! core_alarm.set_alarm_client(infusion);
//! motor.set_fault_client(infusion);
//! store.set_client(infusion);
//! // The hourly self-tests (SR-STS-005): the board lends its program
//! // memory, a RAM region and a second clock (`selftest::periodic`).
//! infusion.set_self_test_hardware(static_init!(BoardSelfTestHw, BoardSelfTestHw::new()));
//! store.load(); // the capsule restores the core once the records are read
//! ```
//!
//! Syscall Interface
//! -----------------
//!
//! - Stability: 0 - Draft
//! - Driver number: [`DRIVER_NUM`] (`0x8000_0100`, out of tree: top bit set)
//!
//! ### Command
//!
//! Failures are `FAILURE_U32(tock_error, protocol_error)`: the Tock error
//! code from `infusion_core::tock_error_name` and the exact
//! `pump_protocol::ErrorCode` as data, so apps can tell e.g. a lockout
//! (`BUSY`, 16) from a busy bolus channel (`BUSY`, 22). A role violation is
//! `NODEVICE` (6) and is audited as an `AccessDenied` event. Before the stored
//! records have been restored every command but 0 fails with `OFF`
//! (`NotReady`).
//!
//! | # | command | role | r2, r3 | success |
//! |---|---------|------|--------|---------|
//! | 0 | driver exists | any | – | `SUCCESS` |
//! | 1 | status | any | – | `SUCCESS_U32_U32_U32(state \| top_alarm << 16, reservoir_nl, delivered_24h_nl)` |
//! | 2 | set basal rate | Dosing | rate nL/h | `SUCCESS` |
//! | 3 | clinician bolus | Dosing | volume nL, duration ms | `SUCCESS` |
//! | 4 | patient bolus | Dosing | volume nL, duration ms | `SUCCESS` |
//! | 5 | priming bolus | Dosing | volume nL, duration ms | `SUCCESS` |
//! | 6 | bridge bolus | Dosing | volume nL, duration ms | `SUCCESS` |
//! | 7 | stop bolus | Dosing | – | `SUCCESS` |
//! | 8 | watchdog check-in | Dosing | – | `SUCCESS_U32(timeout_ms)` |
//! | 9 | install prescription | Telemetry | length in read-only allow 0 | `SUCCESS` |
//! | 10 | drain events | Telemetry | – (read-write allow 0) | `SUCCESS_U32_U32(bytes, frames)` |
//! | 11 | acknowledge alarm | Telemetry | alarm code | `SUCCESS` |
//! | 12 | clear fault | Telemetry | alarm code | `SUCCESS` |
//! | 13 | suspend | Telemetry | – | `SUCCESS` |
//! | 14 | resume | Telemetry | – | `SUCCESS` |
//! | 15 | refill | Telemetry | length in read-only allow 0 (postcard `Refill`) | `SUCCESS` |
//! | 16 | set clock | Telemetry | UTC ms low, high 32 bits | `SUCCESS` |
//! | 17 | read prescription | Dosing, Telemetry | – (read-write allow 0) | `SUCCESS_U32(len)` |
//! | 18 | patient bolus state | any | – | `SUCCESS_U32_U32(lockout_remaining_ms, boluses_left_24h)` |
//! | 19 | pending events | Telemetry | – | `SUCCESS_U32(count)` |
//! | 20 | full status | any | – (read-write allow 0 gets a postcard `StatusSnapshot`) | `SUCCESS_U32(len)` |
//! | 21 | report patient-bolus denial | Dosing | protocol `ErrorCode` of the reason, lockout remaining ms | `SUCCESS` |
//! | 22 | relay post | Telemetry | message kind code, payload length in read-only allow 0 | `SUCCESS_U32(ticket)` |
//! | 23 | relay take | Dosing | – (read-write allow 0 gets the payload) | `SUCCESS_U32_U32(ticket, kind \| len << 16)` |
//! | 24 | relay answer | Dosing | ticket, 0 or protocol `ErrorCode` | `SUCCESS` |
//! | 25 | relay result | Telemetry | – | `SUCCESS_U32_U32(ticket, 0 or protocol error)` |
//! | 26 | save app record | Dosing | length in read-only allow 0 (at most 1024) | `SUCCESS` |
//! | 27 | load app record | Dosing | – (read-write allow 0) | `SUCCESS_U32(len)`, 0 if none |
//! | 28 | authenticated command | Telemetry | length in read-only allow 0 (signed command, protocol 1.1) | `SUCCESS_U32_U32(kind, ticket)` |
//! | 29 | service outlook | any | – (read-write allow 0 gets a postcard `ServiceOutlook`) | `SUCCESS_U32(len)` |
//!
//! Commands 22–25 are the relay that carries programmer requests and
//! notices from the telemetry app to the dosing app (the apps have no IPC);
//! see `infusion_core::relay`. Commands 26 and 27 keep the dosing app's own
//! record in the capsule's flash (its own record kind), so it survives resets.
//!
//! Commands the core adds later pass through unchanged: the glue keeps no
//! list of commands or of which allow each one uses.
//!
//! Drained events are protocol frames, each `0x00 COBS(frame) 0x00`, whole
//! frames only; at most [`RW_SCRATCH_LEN`] bytes per call.
//!
//! ### Subscribe
//!
//! | # | upcall | to | arguments |
//! |---|--------|----|-----------|
//! | 0 | delivery done | every process | delivery kind, outcome, volume nL since its last checkpoint |
//! | 1 | bolus verdict (commands 3–6 of the dosing app) | every process | delivery kind, 0 if started else protocol error code, requested volume nL |
//! | 2 | events available | processes with the Telemetry role | number of queued events, 0, 0 |
//! | 3 | alarm changed | every process | 0 none / 1 low / 2 medium / 3 high, 1 if audible, 0 |
//! | 4 | relay posted | processes with the Dosing role | 0, 0, 0 |
//! | 5 | relay answered | processes with the Telemetry role | 0, 0, 0 |
//!
//! ### Allow
//!
//! | kind | # | contents |
//! |------|---|----------|
//! | read-only | 0 | signed prescription (command 9), postcard `Refill` (command 15), relayed payload (command 22) or the dosing app's record (command 26), at most [`RO_SCRATCH_LEN`] bytes |
//! | read-write | 0 | receives drained events (command 10), the installed prescription (command 17), a relayed payload (command 23) or the dosing app's record (command 27); the capsule rewrites the whole buffer (up to [`RW_SCRATCH_LEN`] bytes), zeros after what the command wrote |
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod annunciator;
pub mod appid;
mod clock;
mod driver;
pub mod faults;
pub mod logflash;
pub mod motor;
mod platform;
pub mod policy;
pub mod reset;
pub mod storage;

pub use crate::driver::{
    to_tock_error, CoreSlot, Infusion, MAX_SLEEP_MS, RO_SCRATCH_LEN, RW_SCRATCH_LEN,
};
pub use crate::platform::{
    AlarmAnnunciator, FaultClient, PumpMotor, RecordStore, StoreClient, TockPlatform,
};
pub use infusion_core::{
    abi, energy, selftest, AppId, BoardConfig, HardwareLimits, ResetReason, Role,
};

#[allow(unused_imports)] // for the links in the docs above
use kernel::{hil, syscall::SyscallDriver};

/// Syscall driver number ([`infusion_core::abi::DRIVER_NUM`]): out of tree,
/// so the top bit is set and it cannot collide with an upstream allocation.
pub const DRIVER_NUM: usize = abi::DRIVER_NUM as usize;

/// Upcall (subscribe) numbers: [`infusion_core::abi::upcall`], as `usize`.
pub mod upcall {
    use infusion_core::abi::upcall as abi;

    /// A delivery ended: `(kind, outcome, volume_nl)`.
    pub const DELIVERY_DONE: usize = abi::DELIVERY_DONE as usize;
    /// The verdict on a bolus request: `(kind, 0 or protocol error, volume_nl)`.
    pub const BOLUS_VERDICT: usize = abi::BOLUS_VERDICT as usize;
    /// Events are queued: `(count, 0, 0)`; Telemetry role only.
    pub const EVENTS_AVAILABLE: usize = abi::EVENTS_AVAILABLE as usize;
    /// The alarm output changed: `(priority + 1 or 0, audible, 0)`.
    pub const ALARM_CHANGED: usize = abi::ALARM_CHANGED as usize;
    /// Something was posted to the relay: `(0, 0, 0)`; Dosing role only.
    pub const RELAY_POSTED: usize = abi::RELAY_POSTED as usize;
    /// A relayed request has its verdict: `(0, 0, 0)`; Telemetry role only.
    pub const RELAY_ANSWERED: usize = abi::RELAY_ANSWERED as usize;
    /// Number of upcalls.
    pub const COUNT: u8 = abi::COUNT;
}

/// Allow buffer numbers: [`infusion_core::abi::allow`], as `usize`.
pub mod allow {
    use infusion_core::abi::allow as abi;

    /// Read-only: signed prescription or refill record.
    pub const RO_INPUT: usize = abi::RO_INPUT as usize;
    /// Read-write: drained events or the installed prescription.
    pub const RW_OUTPUT: usize = abi::RW_OUTPUT as usize;
    /// Number of read-only allows.
    pub const RO_COUNT: u8 = abi::RO_COUNT;
    /// Number of read-write allows.
    pub const RW_COUNT: u8 = abi::RW_COUNT;
}
