//! The syscall ABI between the infusion capsule and its apps: one source.
//!
//! The kernel capsule (`capsules/infusion` over `infusion-core`) and the
//! libtock-rs API crate (`apps/libtock-infusion`) both take every number
//! here from this crate, so a renumbering changes both sides at once. The
//! tables in `infusion-core`'s crate docs and in `docs/protocol.md` §8 are
//! checked against [`COMMANDS`] by tests (`infusion-core/tests/abi.rs`),
//! and so are the roles each command is granted to.
//!
//! Numbers are `u16` where they also travel on the wire: an
//! `AccessDenied` event carries the refused command number in 16 bits.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The capsule's syscall driver number: out of tree, so the top bit is set
/// and it cannot collide with an upstream allocation (all below `0xA0000`).
pub const DRIVER_NUM: u32 = 0x8000_0100;

/// The telemetry link's driver number (the UART granted to the telemetry app
/// alone by the boards' syscall filter).
pub const LINK_DRIVER_NUM: u32 = 0x8000_0101;

/// The telemetry log region's driver number: a dedicated flash region the
/// boards' syscall filter gives to the telemetry app alone (see
/// [`log_region`]).
pub const LOG_DRIVER_NUM: u32 = 0x8000_0102;

/// The telemetry log region: its geometry on both boards and the commands
/// of its driver (`capsules/infusion/src/logflash.rs`, served by
/// `storage_core::LogRegion`). The telemetry app's log
/// (`telemetry_core::PersistentLog`) runs over it; pumpctl's simulated
/// pump gives its log the same geometry.
///
/// | # | command | r2, r3 | success |
/// |---|---------|--------|---------|
/// | 0 | driver exists | – | `SUCCESS` |
/// | 1 | geometry | – | `SUCCESS_U32_U32(page bytes, pages)` |
/// | 2 | read into read-write allow 0 | offset, length | `SUCCESS` |
/// | 3 | program from read-only allow 0 | offset, length | `SUCCESS` |
/// | 4 | erase a page | page | `SUCCESS` |
///
/// Failures: `INVAL` (out of the region, misaligned, a length past the
/// allow), `ALREADY` (a program over a word that is not erased), `BUSY` (an
/// erase past the region's erase budget), `FAIL` (the device failed),
/// `RESERVE` (no buffer allowed).
pub mod log_region {
    /// Bytes in a page of the region (the nRF52840's erase unit).
    pub const PAGE_BYTES: u32 = 4096;
    /// Pages in the region: 256 KiB. Sized in `docs/persistence.md` §9:
    /// 90 days of the demo's events take a fraction of it, and the ring
    /// wears each page a few times a year.
    pub const PAGES: u32 = 64;
    /// Command: the geometry.
    pub const GEOMETRY: u32 = 1;
    /// Command: read.
    pub const READ: u32 = 2;
    /// Command: program.
    pub const PROGRAM: u32 = 3;
    /// Command: erase a page.
    pub const ERASE: u32 = 4;
    /// Allow number of the read buffer (read-write) and of the program
    /// buffer (read-only).
    pub const BUFFER: u32 = 0;
}

/// Who may call a command (the role a board's role table gives an app by its
/// credential-checked `ShortId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callers {
    /// Any process, including one without a role.
    Any,
    /// The dosing app alone.
    Dosing,
    /// The telemetry app alone.
    Telemetry,
    /// The dosing and the telemetry app.
    DosingOrTelemetry,
}

impl Callers {
    /// How the crate docs and `docs/protocol.md` spell it.
    pub const fn doc_name(self) -> &'static str {
        match self {
            Callers::Any => "any",
            Callers::Dosing => "Dosing",
            Callers::Telemetry => "Telemetry",
            Callers::DosingOrTelemetry => "Dosing, Telemetry",
        }
    }
}

/// One command of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// The command number.
    pub num: u16,
    /// Its name in the docs' tables.
    pub name: &'static str,
    /// Who may call it.
    pub callers: Callers,
}

/// Command numbers.
pub mod command {
    /// Driver exists.
    pub const EXISTS: u16 = 0;
    /// Status summary.
    pub const STATUS: u16 = 1;
    /// Set the basal rate.
    pub const SET_BASAL: u16 = 2;
    /// Clinician bolus.
    pub const CLINICIAN_BOLUS: u16 = 3;
    /// Patient bolus.
    pub const PATIENT_BOLUS: u16 = 4;
    /// Priming bolus.
    pub const PRIMING_BOLUS: u16 = 5;
    /// Bridge bolus.
    pub const BRIDGE_BOLUS: u16 = 6;
    /// Stop the running bolus.
    pub const STOP_BOLUS: u16 = 7;
    /// Watchdog check-in.
    pub const CHECK_IN: u16 = 8;
    /// Install a signed prescription (read-only allow 0).
    pub const INSTALL_PRESCRIPTION: u16 = 9;
    /// Drain events (read-write allow 0).
    pub const DRAIN_EVENTS: u16 = 10;
    /// Acknowledge an alarm.
    pub const ACKNOWLEDGE_ALARM: u16 = 11;
    /// Clear a latched fault.
    pub const CLEAR_FAULT: u16 = 12;
    /// Suspend therapy.
    pub const SUSPEND: u16 = 13;
    /// Resume therapy.
    pub const RESUME: u16 = 14;
    /// Record a refill (read-only allow 0).
    pub const REFILL: u16 = 15;
    /// Set the clock.
    pub const SET_CLOCK: u16 = 16;
    /// Read the installed prescription (read-write allow 0).
    pub const READ_PRESCRIPTION: u16 = 17;
    /// Patient bolus lockout and count.
    pub const PATIENT_BOLUS_STATE: u16 = 18;
    /// Number of events waiting.
    pub const PENDING_EVENTS: u16 = 19;
    /// Full status snapshot (postcard `StatusSnapshot`) into read-write allow 0.
    pub const FULL_STATUS: u16 = 20;
    /// The dosing app refused a patient bolus press itself (therapy rules).
    pub const REPORT_PATIENT_DENIAL: u16 = 21;
    /// Post a programmer message to the relay (read-only allow 0).
    pub const RELAY_POST: u16 = 22;
    /// Take the oldest relayed message (read-write allow 0).
    pub const RELAY_TAKE: u16 = 23;
    /// Answer a relayed request.
    pub const RELAY_ANSWER: u16 = 24;
    /// Read the verdict on the relayed request.
    pub const RELAY_RESULT: u16 = 25;
    /// Store the dosing app's own record (read-only allow 0).
    pub const SAVE_APP_RECORD: u16 = 26;
    /// Read the dosing app's own record (read-write allow 0).
    pub const LOAD_APP_RECORD: u16 = 27;
    /// A signed programmer command (read-only allow 0, length in argument
    /// 1), verified by the capsule (protocol 1.1).
    pub const AUTHENTICATED_COMMAND: u16 = 28;
    /// The service outlook (postcard `ServiceOutlook`: battery, ERI and EOS
    /// dates, refill-by date) into read-write allow 0 (protocol 1.1).
    pub const SERVICE_OUTLOOK: u16 = 29;
}

const fn spec(num: u16, name: &'static str, callers: Callers) -> CommandSpec {
    CommandSpec { num, name, callers }
}

/// Every command, in number order. Any other number is `NoSupport`.
pub const COMMANDS: &[CommandSpec] = {
    use command::*;
    use Callers::*;
    &[
        spec(EXISTS, "exists", Any),
        spec(STATUS, "status", Any),
        spec(SET_BASAL, "set basal rate", Dosing),
        spec(CLINICIAN_BOLUS, "clinician bolus", Dosing),
        spec(PATIENT_BOLUS, "patient bolus", Dosing),
        spec(PRIMING_BOLUS, "priming bolus", Dosing),
        spec(BRIDGE_BOLUS, "bridge bolus", Dosing),
        spec(STOP_BOLUS, "stop bolus", Dosing),
        spec(CHECK_IN, "watchdog check-in", Dosing),
        spec(INSTALL_PRESCRIPTION, "install prescription", Telemetry),
        spec(DRAIN_EVENTS, "drain events", Telemetry),
        spec(ACKNOWLEDGE_ALARM, "acknowledge alarm", Telemetry),
        spec(CLEAR_FAULT, "clear fault", Telemetry),
        spec(SUSPEND, "suspend", Telemetry),
        spec(RESUME, "resume", Telemetry),
        spec(REFILL, "refill", Telemetry),
        spec(SET_CLOCK, "set clock", Telemetry),
        spec(READ_PRESCRIPTION, "read prescription", DosingOrTelemetry),
        spec(PATIENT_BOLUS_STATE, "patient bolus state", Any),
        spec(PENDING_EVENTS, "pending events", Telemetry),
        spec(FULL_STATUS, "full status", Any),
        spec(REPORT_PATIENT_DENIAL, "report patient-bolus denial", Dosing),
        spec(RELAY_POST, "relay post", Telemetry),
        spec(RELAY_TAKE, "relay take", Dosing),
        spec(RELAY_ANSWER, "relay answer", Dosing),
        spec(RELAY_RESULT, "relay result", Telemetry),
        spec(SAVE_APP_RECORD, "save app record", Dosing),
        spec(LOAD_APP_RECORD, "load app record", Dosing),
        spec(AUTHENTICATED_COMMAND, "authenticated command", Telemetry),
        spec(SERVICE_OUTLOOK, "service outlook", Any),
    ]
};

/// The command with number `num`, if the driver has one.
pub fn command_spec(num: u32) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| u32::from(c.num) == num)
}

/// Upcall (subscribe) numbers and their arguments.
pub mod upcall {
    /// A delivery ended: `(kind, outcome, volume_nl)`.
    pub const DELIVERY_DONE: u32 = 0;
    /// The verdict on a bolus request: `(kind, 0 or protocol error, volume_nl)`.
    pub const BOLUS_VERDICT: u32 = 1;
    /// Events are queued: `(count, 0, 0)`; Telemetry role only.
    pub const EVENTS_AVAILABLE: u32 = 2;
    /// The alarm output changed: `(priority + 1 or 0, audible, 0)`.
    pub const ALARM_CHANGED: u32 = 3;
    /// Something was posted to the relay: `(0, 0, 0)`; Dosing role only.
    pub const RELAY_POSTED: u32 = 4;
    /// A relayed request has its verdict: `(0, 0, 0)`; Telemetry role only.
    pub const RELAY_ANSWERED: u32 = 5;
    /// Number of upcalls.
    pub const COUNT: u8 = 6;
}

/// Allow buffer numbers.
pub mod allow {
    /// Read-only: signed prescription, refill record, relay payload, app record.
    pub const RO_INPUT: u32 = 0;
    /// Read-write: drained events, the installed prescription, status, relay
    /// payload taken, app record read back.
    pub const RW_OUTPUT: u32 = 0;
    /// Number of read-only allows.
    pub const RO_COUNT: u8 = 1;
    /// Number of read-write allows.
    pub const RW_COUNT: u8 = 1;
}

/// `AppFault.fault_code` values.
pub mod fault_code {
    /// The process faulted; Tock does not tell the capsule why (a memory
    /// protection fault, a panic and an illegal instruction look the same).
    /// The fault's `AppRestarted.restart_count` tells one fault from another.
    pub const UNSPECIFIED: u16 = 0;
}

/// `app_id` values in events (`AccessDenied`, `AppFault`, `AppRestarted`):
/// the app's Tock `ShortId`, which the boards fix by the key that signed it.
pub mod app_id {
    /// The dosing app (signed with the dosing key).
    pub const DOSING: u32 = 1;
    /// The telemetry app (signed with the telemetry key).
    pub const TELEMETRY: u32 = 2;
    /// A process with no `ShortId` (`ShortId::LocallyUnique`, e.g. unsigned):
    /// it has no role.
    pub const UNIDENTIFIED: u32 = 0;
    /// Ids with this top nibble belong to apps signed by a key with no fixed
    /// id: the rest of the id is derived from the app's name (CRC-32). No
    /// such app has a role.
    pub const NAMED_ID_TAG: u32 = 0xF000_0000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_numbered_in_order_without_gaps() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(usize::from(c.num), i, "{}", c.name);
        }
    }

    #[test]
    fn command_spec_finds_every_command_and_nothing_else() {
        for c in COMMANDS {
            assert_eq!(command_spec(u32::from(c.num)), Some(c));
        }
        assert_eq!(command_spec(COMMANDS.len() as u32), None);
        assert_eq!(command_spec(u32::MAX), None);
    }
}
