//! Every decision the infusion kernel capsule makes.
//!
//! This crate is the safety kernel of the pump: the only code that moves the
//! motor or sounds the alarm. It enforces the physician's envelope (from a
//! signed prescription) whatever the apps ask, and fails safe — motor
//! stopped, alarm raised — on any fault. It has no Tock dependency: time,
//! motor, alarm output, storage and the caller's identity come in through
//! [`Platform`] and plain arguments, so the Tock capsule
//! (`capsules/infusion`), the host simulator and the tests all drive this
//! same code. It is `no_std`, needs no allocator, and all its memory is
//! static and bounded.
//!
//! Usage
//! -----
//!
//! ```ignore
//! // At boot, once storage has been read (None on a new device):
//! let mut core = InfusionCore::restore(board_config, platform, saved_record, now_ms);
//! // For every syscall command, with the caller's credential-checked id:
//! let result = core.command(AppId(short_id), command_num, arg1, arg2, ro_allow, rw_allow, now_ms);
//! // Arm the one timer for the instant the core asks for:
//! if let Some(t) = core.next_wakeup() { alarm.set(t) }
//! // When it fires:
//! core.on_timer(now_ms);
//! // Hardware inputs:
//! core.on_fault_input(AlarmCode::MotorStall, asserted, now_ms);
//! core.on_encoder_pulse(now_ms);
//! ```
//!
//! Times are core milliseconds from a monotonic counter that survives
//! resets (the board's RTC); setting the wall clock only changes the UTC
//! offset used in events.
//!
//! Syscall Interface
//! -----------------
//!
//! Roles come from the board's role table keyed by the app's credential-checked
//! `ShortId`. A refused command changes no safety state; a role violation
//! also queues an `AccessDenied` audit event. Errors are [`ErrorCode`]s; the
//! Tock glue maps them with [`tock_error_name`].
//!
//! | # | command | role | arguments | success | typical failures |
//! |---|---------|------|-----------|---------|------------------|
//! | 0 | exists | any | – | `Success` | – |
//! | 1 | status | any | – | `U32U32U32(state \| top_alarm << 16, reservoir_nl, delivered_24h_nl)` | – |
//! | 2 | set basal rate | Dosing | `rate_nl_per_h` (0 stops basal) | `Success` | `NotPermitted`, `NoPrescription`, `RateAboveEnvelope`, `DailyLimitReached`, `ReservoirInsufficient`, `Suspended`, `FaultActive` |
//! | 3 | clinician bolus | Dosing | `volume_nl`, `duration_ms` | `Success` | as 2, `Unauthenticated` (no signed request waiting, or more or faster than signed), `ClinicianBolusLimit`, `BolusAboveEnvelope`, `Busy`, `InvalidArgument` |
//! | 4 | patient bolus | Dosing | `volume_nl`, `duration_ms` | `Success` | as 3, `LockoutActive`, `BolusCountReached` |
//! | 5 | priming bolus | Dosing | `volume_nl`, `duration_ms` | `Success` | as 3 |
//! | 6 | bridge bolus | Dosing | `volume_nl`, `duration_ms` | `Success` | as 3 |
//! | 7 | stop bolus | Dosing | – | `Success` | `NotPermitted` |
//! | 8 | watchdog check-in | Dosing | – | `U32(timeout_ms)` | `NotPermitted` |
//! | 9 | install prescription | Telemetry | `len` of read-only allow 0 | `Success` | `NotPermitted`, `InvalidSignature`, `WrongDevice`, `ReplayedSerial`, `OutsideHardwareLimits`, `MalformedPrescription` |
//! | 10 | drain events | Telemetry | – (read-write allow 0) | `U32U32(bytes, frames)` | `NotPermitted` |
//! | 11 | acknowledge alarm | Telemetry | – | – | `Unauthenticated` always (protocol 1.1: signed, command 28), `NotPermitted` |
//! | 12 | clear fault | Telemetry | – | – | `Unauthenticated` always (command 28), `NotPermitted` |
//! | 13 | suspend | Telemetry | – | – | `Unauthenticated` always (command 28), `NotPermitted` |
//! | 14 | resume | Telemetry | – | – | `Unauthenticated` always (command 28), `NotPermitted` |
//! | 15 | refill | Telemetry | – | – | `Unauthenticated` always (command 28), `NotPermitted` |
//! | 16 | set clock | Telemetry | – | – | `Unauthenticated` always (command 28), `NotPermitted` |
//! | 17 | read prescription | Dosing, Telemetry | – (read-write allow 0) | `U32(len)` | `NotPermitted`, `NoPrescription`, `InvalidArgument` |
//! | 18 | patient bolus state | any | – | `U32U32(lockout_remaining_ms, boluses_left_24h)` | – |
//! | 19 | pending events | Telemetry | – | `U32(count)` | `NotPermitted` |
//! | 20 | full status | any | – (read-write allow 0 gets a postcard `StatusSnapshot`) | `U32(len)` | `InvalidArgument` (buffer too small) |
//! | 21 | report patient-bolus denial | Dosing | `ErrorCode` of the reason, `lockout_remaining_ms` | `Success` | `NotPermitted` |
//! | 22 | relay post | Telemetry | – | – | `Unauthenticated` always: the capsule posts what it authenticated (command 28), `NotPermitted` |
//! | 23 | relay take | Dosing | – (read-write allow 0 gets the payload) | `U32U32(ticket, kind \| len << 16)` | `NotPermitted`, `NotReady` (nothing waiting), `InvalidArgument` (buffer too small) |
//! | 24 | relay answer | Dosing | ticket, verdict (`0` accepted, else an `ErrorCode`) | `Success` | `NotPermitted`, `InvalidArgument` (no such taken request) |
//! | 25 | relay result | Telemetry | – | `U32U32(ticket, verdict)` | `NotPermitted`, `NotReady` (no verdict yet) |
//! | 26 | save app record | Dosing | `len` of read-only allow 0 (≤ [`APP_RECORD_MAX_LEN`]) | `Success` | `NotPermitted`, `InvalidArgument` |
//! | 27 | load app record | Dosing | – (read-write allow 0 gets the record) | `U32(len)`, 0 if none | `NotPermitted`, `InvalidArgument` (buffer too small) |
//! | 28 | authenticated command | Telemetry | `len` of read-only allow 0 (signed command, `docs/protocol.md` §5.5) | `U32U32(kind, ticket)`: ticket 0 when carried out, else the relay ticket of a posted bolus request | `NotPermitted`, `BadPayload`, `Unauthenticated`, `NotPaired`, `WrongDevice`, `Replayed`, then the wrapped command's own |
//! | 29 | service outlook | any | – (read-write allow 0 gets a postcard `ServiceOutlook`: charge, ERI and EOS dates, refill-by date) | `U32(len)` | `InvalidArgument` (buffer too small) |
//! | other | – | – | – | – | `NoSupport` |
//!
//! Drained events are protocol frames, each written as `0x00 COBS(frame) 0x00`
//! (see `docs/protocol.md`), whole frames only.
//!
//! Commands 22–25 are the [`relay`]: the apps have no IPC, so programmer
//! requests and notices for the dosing app pass through the capsule, where
//! the role table decides who may post, take and answer.
//!
//! Upcalls (Tock glue): 0 delivery done, 1 bolus verdict, 2 events available,
//! 3 alarm changed, 4 relay posted, 5 relay answered — from [`Notification`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alarms;
pub mod config;
pub mod events;
pub mod ledger;
pub mod platform;
mod pump;
pub mod relay;
pub mod rx;
pub mod selftest;

pub use crate::alarms::AlarmSignal;
pub use crate::config::{AppId, BoardConfig, HardwareLimits, Role};
pub use crate::platform::{
    AlarmOutput, Motor, Notification, Notifier, Platform, RecordKind, Storage,
};
pub use crate::pump::{
    mean_rate_nl_per_h, Authenticated, BatteryEstimate, CommandResult, InfusionCore, RegionState,
    ResetReason, StoredRecords, APP_RECORD_MAX_LEN, BATTERY_CHECK_INTERVAL_MS,
    MAX_ALARM_SILENCE_MS, MAX_BOLUS_DURATION_MS, MAX_STEPS_PER_WAKEUP, REPEATED_RESETS_ALARM_AT,
    RESERVATION_STEPS, SAVED_STATE_LEN, SUSPEND_REMINDER_MS,
};
/// Board energy profiles and the charge arithmetic (the boards pass one to
/// [`InfusionCore::set_energy_profile`]).
pub use energy_core as energy;
/// The syscall ABI (driver, command, upcall and allow numbers): one source,
/// shared with the libtock-rs API crate.
pub use pump_abi as abi;
/// Command numbers of the syscall interface.
pub use pump_abi::command;
pub use pump_protocol::ErrorCode;

/// The Tock `ErrorCode` the capsule returns for a core error.
///
/// Role violations are `NODEVICE` (to an unentitled app the driver behaves as
/// absent), state conflicts `BUSY`/`OFF`, limit violations `INVAL`/`SIZE`,
/// verification failures `RESERVE`, and unknown commands `NOSUPPORT`.
pub fn tock_error_name(error: ErrorCode) -> &'static str {
    match error {
        ErrorCode::NotPermitted => "NODEVICE",
        ErrorCode::NoSupport | ErrorCode::UnknownKind => "NOSUPPORT",
        ErrorCode::Busy | ErrorCode::LockoutActive => "BUSY",
        ErrorCode::Suspended | ErrorCode::FaultActive | ErrorCode::NotReady => "OFF",
        ErrorCode::NoPrescription => "RESERVE",
        ErrorCode::InvalidSignature
        | ErrorCode::WrongDevice
        | ErrorCode::ReplayedSerial
        | ErrorCode::MalformedPrescription => "RESERVE",
        ErrorCode::ReservoirInsufficient
        | ErrorCode::DailyLimitReached
        | ErrorCode::BolusCountReached => "SIZE",
        _ => "INVAL",
    }
}
