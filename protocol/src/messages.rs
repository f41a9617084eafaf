//! Message catalogue, protocol version 1.1 (1.0 and what 1.1 adds).
//!
//! Every field is an integer whose name carries its unit. Times are
//! milliseconds since the Unix epoch on the pump's real-time clock
//! (`time_ms`), volumes are nanolitres (`_nl`), doses micrograms (`_ug`).

use heapless::Vec;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::command_layout::MAX_SIGNED_COMMAND_LEN;
use crate::prescription::MAX_SIGNED_PRESCRIPTION_LEN;
use crate::PayloadError;

/// Largest payload an [`Unknown`] message can carry: the largest any frame can.
pub const MAX_UNKNOWN_PAYLOAD_LEN: usize = 512;

/// The version that added a code value or a kind: `(1, 0)` unless its line
/// in `code_enum!` or `catalogue!` says `@ (major, minor)`.
macro_rules! since {
    () => {
        (1, 0)
    };
    ($since:expr) => {
        $since
    };
}

/// Defines a closed-set code that still decodes values added by later minor
/// versions: they become `Other(code)` instead of failing the whole frame.
/// On the wire a code is a postcard `u16` varint.
///
/// A value added after 1.0 names its version: `Name = 5 @ (1, 1),`
/// (`docs/protocol.md` §6.3).
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal $(@ $since:expr)?, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code this decoder does not know (added by a later minor version).
            Other(u16),
        }

        impl $name {
            /// Every code this version defines, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire code.
            pub const fn code(self) -> u16 {
                match self {
                    $( $name::$variant => $code, )*
                    $name::Other(code) => code,
                }
            }

            /// The value for a wire code; unknown codes become `Other`.
            pub const fn from_code(code: u16) -> Self {
                match code {
                    $( $code => $name::$variant, )*
                    other => $name::Other(other),
                }
            }

            /// The variant's name, or `"Other"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => stringify!($variant), )*
                    $name::Other(_) => "Other",
                }
            }

            /// The protocol version `(major, minor)` that added this code;
            /// `None` for a code this version does not know.
            pub const fn since(self) -> Option<(u8, u8)> {
                match self {
                    $( $name::$variant => Some(since!($($since)?)), )*
                    $name::Other(_) => None,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u16(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                u16::deserialize(deserializer).map(Self::from_code)
            }
        }

        impl MaxSize for $name {
            const POSTCARD_MAX_SIZE: usize = u16::POSTCARD_MAX_SIZE;
        }
    };
}

code_enum! {
    /// Overall state of the pump as the infusion capsule sees it.
    pub enum PumpState {
        /// No valid prescription is installed; the motor cannot move.
        NoPrescription = 0,
        /// Therapy is running.
        Running = 1,
        /// Therapy was suspended by the clinician's programmer.
        Suspended = 2,
        /// Delivery was stopped by a fault and stays stopped until cleared.
        FaultStopped = 3,
        /// Saved state is being restored after a reset; the motor is stopped.
        Restoring = 4,
    }
}

code_enum! {
    /// What a delivery was for.
    pub enum DeliveryKind {
        /// Continuous basal infusion.
        Basal = 0,
        /// Bolus ordered by the clinician.
        ClinicianBolus = 1,
        /// Patient-requested bolus (PTM).
        PatientBolus = 2,
        /// Priming of the catheter.
        Priming = 3,
        /// Bridge bolus after a refill with a new concentration or drug.
        Bridge = 4,
        /// Delivery at the envelope's safe basal after the dosing app went silent.
        SilenceFallback = 5,
    }
}

code_enum! {
    /// How a delivery ended.
    pub enum DeliveryOutcome {
        /// Delivered in full.
        Completed = 0,
        /// Stopped or replaced by the dosing app.
        Stopped = 1,
        /// Stopped by a fault (stall, occlusion, empty reservoir, watchdog).
        Aborted = 2,
        /// Cut short by a reset; the record carries what was delivered.
        Interrupted = 3,
        /// A basal segment closed so the log stays fine-grained; delivery goes on.
        Checkpoint = 4,
        /// Steps reserved before a reset that the pump cannot confirm were
        /// made: counted as delivered for the 24 h limit and the reservoir
        /// (the safe side) and reported so that the log accounts for every
        /// step the motor may have made; `volume_nl` is the upper bound.
        Unconfirmed = 5 @ (1, 1),
    }
}

code_enum! {
    /// IEC 60601-1-8 alarm priority.
    pub enum AlarmPriority {
        /// Low priority: operator awareness.
        Low = 0,
        /// Medium priority: prompt response.
        Medium = 1,
        /// High priority: immediate response.
        High = 2,
    }
}

code_enum! {
    /// Alarm conditions.
    pub enum AlarmCode {
        /// The motor stalled.
        MotorStall = 1,
        /// The catheter or pump path is occluded.
        Occlusion = 2,
        /// The reservoir is empty.
        ReservoirEmpty = 3,
        /// The stored safety envelope or delivery state failed its integrity check.
        EnvelopeIntegrity = 4,
        /// The dosing app missed its watchdog check-in.
        DosingWatchdog = 5,
        /// The reservoir is below the prescription's low threshold.
        ReservoirLow = 6,
        /// The battery needs replacement.
        BatteryReplacement = 7,
        /// A userspace app faulted.
        AppFault = 8,
        /// A refill is due soon.
        RefillDue = 9,
        /// A refill withdrew more drug than the pump's record held: the
        /// reservoir record and the drug in it disagree.
        RefillDiscrepancy = 10 @ (1, 1),
        /// The battery reached end of service: delivery has stopped.
        EndOfService = 11 @ (1, 1),
        /// The board's watchdog reset the pump's kernel again within 24 h
        /// of the last time it did.
        RepeatedResets = 12 @ (1, 1),
        /// A self-test of the pump's own hardware failed (RAM, program
        /// memory, clock, images or watchdog): delivery has stopped.
        SelfTestFailed = 13 @ (1, 1),
        /// The encoder saw the mechanism move when no step was commanded:
        /// drug may be flowing that nobody ordered. Delivery has stopped.
        UncommandedMotion = 14 @ (1, 1),
        /// The pump has been suspended for longer than its reminder time:
        /// therapy is still off.
        SuspendedTooLong = 15 @ (1, 1),
        /// The mechanism faulted (stall or occlusion) for the third time
        /// within 24 h: the clinic should examine the pump and catheter.
        RepeatedFaults = 16 @ (1, 1),
    }
}

code_enum! {
    /// Typed reasons for refusals, shared by denial events and nacks.
    pub enum ErrorCode {
        /// The frame could not be parsed.
        MalformedFrame = 1,
        /// The frame's CRC did not match.
        BadCrc = 2,
        /// The frame's major version is not supported.
        UnsupportedVersion = 3,
        /// The receiver does not implement this message kind.
        UnknownKind = 4,
        /// The payload did not decode as its kind.
        BadPayload = 5,
        /// The caller's role does not permit this command.
        NotPermitted = 6,
        /// The prescription's signature did not verify.
        InvalidSignature = 7,
        /// The prescription is for another device.
        WrongDevice = 8,
        /// The prescription's serial is not above the installed one.
        ReplayedSerial = 9,
        /// A prescription limit exceeds the board's hardware limits.
        OutsideHardwareLimits = 10,
        /// No valid prescription is installed.
        NoPrescription = 11,
        /// The requested rate exceeds the envelope's maximum basal rate.
        RateAboveEnvelope = 12,
        /// The requested bolus exceeds the envelope's maximum single bolus.
        BolusAboveEnvelope = 13,
        /// The request would exceed the rolling 24 h maximum volume.
        DailyLimitReached = 14,
        /// The reservoir does not hold enough drug for the request.
        ReservoirInsufficient = 15,
        /// The patient-bolus lockout has not elapsed.
        LockoutActive = 16,
        /// The patient-bolus count for the rolling 24 h is used up.
        BolusCountReached = 17,
        /// Therapy is suspended.
        Suspended = 18,
        /// Delivery is stopped by an uncleared fault alarm.
        FaultActive = 19,
        /// The prescription bytes are not a valid prescription.
        MalformedPrescription = 20,
        /// An argument is out of range (zero duration, zero volume, overflow).
        InvalidArgument = 21,
        /// Another bolus is already running.
        Busy = 22,
        /// The request is not prescribed (e.g. no patient bolus in the therapy).
        NotPrescribed = 23,
        /// Saved state is not valid yet; the pump is restoring.
        NotReady = 24,
        /// The command number is not implemented.
        NoSupport = 25,
        /// A refill's drug concentration differs from the prescription's.
        ConcentrationMismatch = 26,
        /// The command is not signed, or its signature does not verify with
        /// a key allowed to sign it.
        Unauthenticated = 27 @ (1, 1),
        /// The signed command's counter is not above the last one accepted
        /// from its signer.
        Replayed = 28 @ (1, 1),
        /// The patient programmer signed it, but the installed prescription
        /// pairs no patient programmer.
        NotPaired = 29 @ (1, 1),
        /// The prescription's clinician-bolus count or interval is used up.
        ClinicianBolusLimit = 30 @ (1, 1),
        /// A refill withdrew more than the reservoir record holds.
        RefillDiscrepancy = 31 @ (1, 1),
        /// A bolus asked to last longer than the longest bolus the pump
        /// runs (24 h): that is a basal change, which only a prescription
        /// makes.
        BolusTooLong = 32 @ (1, 1),
    }
}

/// Declares a payload struct with the derives every message needs.
macro_rules! payload {
    ($(#[$meta:meta])* pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }
    };
}

// ---------------------------------------------------------------- events --

payload! {
    /// Periodic or on-request summary of the pump's state.
    pub struct StatusSnapshot {
        /// When the snapshot was taken.
        pub time_ms: u64,
        /// Overall state.
        pub pump_state: PumpState,
        /// Serial of the installed prescription (0 = none).
        pub prescription_serial: u32,
        /// Basal rate being delivered now.
        pub basal_rate_nl_per_h: u32,
        /// Volume still to deliver of the running bolus (0 = none).
        pub bolus_remaining_nl: u32,
        /// Reservoir volume.
        pub reservoir_nl: u32,
        /// Volume delivered in the last 24 h.
        pub delivered_24h_nl: u32,
        /// Patient boluses granted in the last 24 h.
        pub patient_boluses_24h: u8,
        /// The highest-priority active alarm, if any.
        pub top_alarm: Option<AlarmCode>,
        /// Projected time by which the reservoir must be refilled, if known.
        pub refill_by_time_ms: Option<u64>,
    }
}

payload! {
    /// A completed (or cut short) delivery.
    pub struct DeliveryRecord {
        /// When the delivery ended.
        pub time_ms: u64,
        /// What it was for.
        pub delivery_kind: DeliveryKind,
        /// How it ended.
        pub outcome: DeliveryOutcome,
        /// Volume actually delivered (for [`DeliveryOutcome::Unconfirmed`],
        /// the most that may have been).
        pub volume_nl: u32,
        /// How long it ran.
        pub duration_ms: u32,
    }
}

payload! {
    /// The patient pressed the bolus button (or the patient programmer asked).
    pub struct PatientBolusRequested {
        /// When.
        pub time_ms: u64,
    }
}

payload! {
    /// A patient bolus was granted and started.
    pub struct PatientBolusGranted {
        /// When.
        pub time_ms: u64,
        /// Volume granted.
        pub volume_nl: u32,
        /// Duration it is delivered over.
        pub duration_ms: u32,
        /// Patient boluses still allowed in the rolling 24 h.
        pub remaining_24h: u8,
    }
}

payload! {
    /// A patient bolus was denied.
    pub struct PatientBolusDenied {
        /// When.
        pub time_ms: u64,
        /// Why.
        pub reason: ErrorCode,
        /// Time until the lockout ends (0 when not the reason).
        pub lockout_remaining_ms: u32,
    }
}

payload! {
    /// An alarm condition became active.
    pub struct AlarmRaised {
        /// When.
        pub time_ms: u64,
        /// Which condition.
        pub code: AlarmCode,
        /// Its priority.
        pub priority: AlarmPriority,
    }
}

payload! {
    /// An alarm was acknowledged: silenced for a while, cause not cleared.
    pub struct AlarmAcknowledged {
        /// When.
        pub time_ms: u64,
        /// Which condition.
        pub code: AlarmCode,
        /// How long the audible signal stays silenced.
        pub silence_duration_ms: u32,
    }
}

payload! {
    /// An alarm condition ended.
    pub struct AlarmCleared {
        /// When.
        pub time_ms: u64,
        /// Which condition.
        pub code: AlarmCode,
    }
}

payload! {
    /// The reservoir level.
    pub struct ReservoirLevel {
        /// When.
        pub time_ms: u64,
        /// Volume in the reservoir.
        pub volume_nl: u32,
        /// Low-reservoir alarm threshold.
        pub low_threshold_nl: u32,
    }
}

payload! {
    /// The reservoir was refilled.
    pub struct ReservoirRefilled {
        /// When.
        pub time_ms: u64,
        /// Volume withdrawn before the fill.
        pub withdrawn_volume_nl: u32,
        /// Volume added.
        pub added_volume_nl: u32,
        /// Reservoir volume after the refill.
        pub volume_nl: u32,
        /// Concentration of the drug added.
        pub concentration_ug_per_ml: u32,
    }
}

payload! {
    /// The battery's state.
    pub struct BatteryState {
        /// When.
        pub time_ms: u64,
        /// Terminal voltage.
        pub voltage_mv: u16,
        /// Estimated remaining charge.
        pub charge_percent: u8,
        /// The elective replacement indicator is set.
        pub replacement_recommended: bool,
    }
}

payload! {
    /// A userspace app faulted.
    pub struct AppFault {
        /// When.
        pub time_ms: u64,
        /// The app's short id.
        pub app_id: u32,
        /// Kernel fault code.
        pub fault_code: u16,
    }
}

payload! {
    /// A userspace app was restarted.
    pub struct AppRestarted {
        /// When.
        pub time_ms: u64,
        /// The app's short id.
        pub app_id: u32,
        /// Restarts since boot.
        pub restart_count: u16,
    }
}

payload! {
    /// Events were lost (queue or log overflow); says exactly which.
    pub struct LogGap {
        /// When the loss was noticed.
        pub time_ms: u64,
        /// First sequence number lost.
        pub first_missing_sequence: u32,
        /// How many consecutive sequence numbers were lost.
        pub missing_count: u32,
    }
}

payload! {
    /// The capsule refused a delivery request from the dosing app.
    pub struct DeliveryDenied {
        /// When.
        pub time_ms: u64,
        /// What was asked for.
        pub delivery_kind: DeliveryKind,
        /// Volume asked for (boluses) or 0.
        pub requested_volume_nl: u32,
        /// Rate asked for (basal) or the bolus's mean rate.
        pub requested_rate_nl_per_h: u32,
        /// Why.
        pub reason: ErrorCode,
    }
}

payload! {
    /// Audit record: an app asked for something its role does not permit.
    pub struct AccessDenied {
        /// When.
        pub time_ms: u64,
        /// The app's short id.
        pub app_id: u32,
        /// The capsule command number it issued.
        pub command: u16,
    }
}

payload! {
    /// A prescription was verified and installed.
    pub struct PrescriptionInstalled {
        /// When.
        pub time_ms: u64,
        /// Its serial.
        pub serial: u32,
        /// Drug concentration it prescribes.
        pub concentration_ug_per_ml: u32,
    }
}

payload! {
    /// A prescription was refused; the installed one (if any) stays.
    pub struct PrescriptionRejected {
        /// When.
        pub time_ms: u64,
        /// The serial of the signed body. Since 1.1 it is 0 unless the
        /// signature verified: a claim in unverified bytes is never logged.
        pub serial: u32,
        /// Why.
        pub reason: ErrorCode,
    }
}

payload! {
    /// The real-time clock was set.
    pub struct ClockSet {
        /// The new time.
        pub time_ms: u64,
        /// The time just before it was set.
        pub previous_time_ms: u64,
    }
}

payload! {
    /// The pump's state changed.
    pub struct PumpStateChanged {
        /// When.
        pub time_ms: u64,
        /// The new state.
        pub pump_state: PumpState,
    }
}

// -------------------------------------------------------------- commands --

payload! {
    /// Ask for a [`StatusSnapshot`].
    pub struct GetStatus {}
}

payload! {
    /// Ask for a [`ServiceOutlook`] (protocol 1.1). A read, like
    /// [`GetStatus`]: it changes nothing and needs no signature.
    pub struct GetServiceOutlook {}
}

payload! {
    /// Install a signed prescription. The pump verifies the signature and
    /// every limit; the metadata only lets the host and the log name it.
    pub struct InstallPrescription {
        /// Device the prescription is for (repeated inside the signed bytes).
        pub device_id: u32,
        /// Prescription serial (repeated inside the signed bytes).
        pub prescription_serial: u32,
        /// The signed prescription (see `prescription` module).
        pub signed_prescription: Vec<u8, MAX_SIGNED_PRESCRIPTION_LEN>,
    }
}

payload! {
    /// Deliver a clinician bolus.
    pub struct ClinicianBolus {
        /// Dose of drug.
        pub dose_ug: u32,
        /// Duration to deliver it over.
        pub duration_ms: u32,
    }
}

payload! {
    /// Request a patient bolus from the patient's programmer.
    pub struct PatientBolusRequest {}
}

payload! {
    /// Record a refill.
    pub struct Refill {
        /// Volume withdrawn from the reservoir before filling.
        pub withdrawn_volume_nl: u32,
        /// Volume added.
        pub added_volume_nl: u32,
        /// Concentration of the drug added.
        pub concentration_ug_per_ml: u32,
    }
}

payload! {
    /// Suspend therapy.
    pub struct Suspend {}
}

payload! {
    /// Resume therapy.
    pub struct Resume {}
}

payload! {
    /// Acknowledge (silence) an alarm.
    pub struct AcknowledgeAlarm {
        /// Which condition.
        pub code: AlarmCode,
    }
}

payload! {
    /// Clear a latched fault whose cause is gone (motor stall, occlusion,
    /// app fault).
    pub struct ClearFault {
        /// Which condition.
        pub code: AlarmCode,
    }
}

payload! {
    /// The pump accepted a signed programmer command (protocol 1.1). Every
    /// field was verified: it is the signer's own statement.
    pub struct CommandAuthenticated {
        /// When.
        pub time_ms: u64,
        /// Who signed it (`Signer` code: 1 clinic, 2 patient programmer).
        pub signer: u8,
        /// The signer's counter it carried.
        pub counter: u64,
        /// The command's kind.
        pub command_kind: u16,
    }
}

payload! {
    /// The pump refused a programmer command that did not authenticate
    /// (protocol 1.1). Nothing it claimed is logged: its bytes were not
    /// verified.
    pub struct CommandRefused {
        /// When.
        pub time_ms: u64,
        /// Why (`Unauthenticated`, `Replayed`, `NotPaired`, `WrongDevice`,
        /// `BadPayload`).
        pub reason: ErrorCode,
    }
}

payload! {
    /// Audit record (protocol 1.1): further refusals of one app's commands
    /// after the `AccessDenied` that opened them, folded into one record so
    /// that a flood cannot push other events out of the log.
    pub struct AccessDeniedRepeated {
        /// When the last of them happened.
        pub time_ms: u64,
        /// When the first of them happened.
        pub first_time_ms: u64,
        /// The app's short id.
        pub app_id: u32,
        /// How many refusals this record stands for.
        pub count: u32,
        /// The capsule command number of the last of them.
        pub last_command: u16,
    }
}

payload! {
    /// The pump's kernel started (protocol 1.1): logged at every boot, once
    /// the stored state is restored, with what the board knows of the reset
    /// before it.
    pub struct KernelStarted {
        /// When (pump clock, continued from the stored records).
        pub time_ms: u64,
        /// Why the kernel started: 1 power-on (or any reset the board cannot
        /// name), 2 the board's watchdog.
        pub reset_reason: u8,
        /// Watchdog resets in a row, each within 24 h of the one before
        /// (0 when this start was not one).
        pub watchdog_resets: u16,
    }
}

payload! {
    /// What the pump tells the patient and the clinic about its future
    /// (protocol 1.1): the battery's charge and the dates of its elective
    /// replacement indicator and end of service, beside the refill-by date
    /// of the [`StatusSnapshot`]. The answer to [`GetServiceOutlook`].
    pub struct ServiceOutlook {
        /// When the outlook was taken (pump clock).
        pub time_ms: u64,
        /// Estimated remaining charge, percent of the new battery's.
        pub charge_percent: u8,
        /// Estimated remaining charge, µAh (self-discharge counted).
        pub remaining_charge_uah: u32,
        /// Average current since the battery was new, nA.
        pub average_current_na: u32,
        /// When the elective replacement indicator comes at this average
        /// current (the past when it is set); `None` if the pump does not
        /// count its battery.
        pub eri_time_ms: Option<u64>,
        /// When end of service comes at this average current (the past when
        /// it has come); `None` if the pump does not count its battery.
        pub eos_time_ms: Option<u64>,
        /// The elective replacement indicator is set.
        pub replacement_recommended: bool,
        /// End of service has come: delivery has stopped.
        pub end_of_service: bool,
        /// Projected time by which the reservoir must be refilled, if known
        /// (as in [`StatusSnapshot`]).
        pub refill_by_time_ms: Option<u64>,
    }
}

payload! {
    /// A self-test of the pump's own hardware failed (protocol 1.1):
    /// delivery stopped under the high `SelfTestFailed` alarm.
    pub struct SelfTestFailed {
        /// When (pump clock).
        pub time_ms: u64,
        /// Which test: 1 RAM, 2 program memory, 3 clock against a second
        /// source, 4 app images, 5 watchdog, 6 CPU.
        pub test: u8,
        /// What it found: the failing word's index (RAM), the CRC-32C found
        /// (program memory, images), the drift in ppm (clock), the failing
        /// check's index (CPU), 0 otherwise.
        pub detail: u32,
    }
}

payload! {
    /// A refill withdrew more than the reservoir record held (protocol
    /// 1.1). The record is not clamped silently: the refill is refused and
    /// the `RefillDiscrepancy` alarm raised.
    pub struct RefillDiscrepancy {
        /// When.
        pub time_ms: u64,
        /// What the pump's record held.
        pub recorded_nl: u32,
        /// What the refill said was withdrawn.
        pub withdrawn_volume_nl: u32,
    }
}

payload! {
    /// Read stored log frames starting at a sequence number.
    pub struct ReadLog {
        /// First sequence number wanted.
        pub from_sequence: u32,
        /// At most this many frames in this chunk.
        pub max_frames: u16,
    }
}

payload! {
    /// Set the real-time clock.
    pub struct SetClock {
        /// The new UTC time.
        pub utc_time_ms: u64,
    }
}

payload! {
    /// A programmer command wrapped with its signer, counter and device
    /// (protocol 1.1, `docs/protocol.md` §5.5). Every command that changes
    /// therapy or safety state must come this way; the plain 1.0 frame of
    /// such a command is refused with `Unauthenticated`.
    pub struct AuthenticatedCommand {
        /// `postcard(CommandBody) || Ed25519 signature` (see
        /// [`crate::command_auth`]).
        pub signed_command: Vec<u8, MAX_SIGNED_COMMAND_LEN>,
    }
}

// ------------------------------------------------------------- responses --

payload! {
    /// The request was carried out.
    pub struct Ack {
        /// Kind of the request.
        pub request_kind: u16,
    }
}

payload! {
    /// The request was refused; nothing changed.
    pub struct Nack {
        /// Kind of the request (0 when the request was unreadable).
        pub request_kind: u16,
        /// Why.
        pub error: ErrorCode,
    }
}

payload! {
    /// Ends one chunk of a log read.
    pub struct LogChunkEnd {
        /// Sequence number to ask for next to resume.
        pub next_sequence: u32,
        /// Oldest sequence number still stored.
        pub oldest_sequence: u32,
        /// More frames are stored after this chunk.
        pub more: bool,
    }
}

/// A message of a kind this decoder does not know (added by a later minor
/// version). Its payload is kept byte for byte so it can be stored and
/// forwarded unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    /// The frame's kind.
    pub kind: u16,
    /// The raw payload.
    pub payload: Vec<u8, MAX_UNKNOWN_PAYLOAD_LEN>,
}

/// Defines [`Message`], [`MessageKind`] and the kind ↔ payload dispatch from
/// one table, so the three cannot disagree.
///
/// A kind added after 1.0 names its version after its class:
/// `Name = 0x0115, Event @ (1, 1);` (`docs/protocol.md` §6.3).
macro_rules! catalogue {
    ($( $(#[$meta:meta])* $variant:ident = $code:literal, $class:ident $(@ $since:expr)?; )*) => {
        /// Every message of the catalogue (protocol version 1.1).
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Message {
            $( $(#[$meta])* $variant($variant), )*
            /// A kind this decoder does not know.
            Unknown(Unknown),
        }

        /// Message kinds of the catalogue (protocol version 1.1), with their
        /// wire codes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum MessageKind {
            $( $(#[$meta])* $variant = $code, )*
        }

        impl MessageKind {
            /// Every kind, in code order.
            pub const ALL: &'static [MessageKind] = &[$(MessageKind::$variant),*];

            /// The kind for a wire code, if this version defines it.
            pub const fn from_code(code: u16) -> Option<Self> {
                match code {
                    $( $code => Some(MessageKind::$variant), )*
                    _ => None,
                }
            }

            /// The wire code.
            pub const fn code(self) -> u16 {
                self as u16
            }

            /// Whether this kind is an event, a command or a response.
            pub const fn class(self) -> MessageClass {
                match self {
                    $( MessageKind::$variant => MessageClass::$class, )*
                }
            }

            /// The kind's name.
            pub const fn name(self) -> &'static str {
                match self {
                    $( MessageKind::$variant => stringify!($variant), )*
                }
            }

            /// The protocol version `(major, minor)` that added this kind.
            pub const fn since(self) -> (u8, u8) {
                match self {
                    $( MessageKind::$variant => since!($($since)?), )*
                }
            }
        }

        impl Message {
            /// The wire kind code.
            pub fn kind_code(&self) -> u16 {
                match self {
                    $( Message::$variant(_) => $code, )*
                    Message::Unknown(u) => u.kind,
                }
            }

            /// The kind, or `None` for [`Message::Unknown`].
            pub fn kind(&self) -> Option<MessageKind> {
                MessageKind::from_code(self.kind_code())
            }

            /// Writes the postcard payload into `buf`, returning its length.
            pub fn encode_payload(&self, buf: &mut [u8]) -> Result<usize, PayloadError> {
                let used = match self {
                    $( Message::$variant(m) => postcard::to_slice(m, buf)?.len(), )*
                    Message::Unknown(u) => {
                        let dst = buf.get_mut(..u.payload.len()).ok_or(PayloadError::TooLarge)?;
                        dst.copy_from_slice(&u.payload);
                        u.payload.len()
                    }
                };
                Ok(used)
            }

            /// Decodes a payload of the given kind. Unknown kinds become
            /// [`Message::Unknown`]; trailing bytes are an error.
            pub fn decode_payload(kind: u16, payload: &[u8]) -> Result<Message, PayloadError> {
                Self::decode_payload_with(kind, payload, |result| result)
            }

            /// [`Message::decode_payload`], handing the result to `then`.
            /// Inlined, so that each kind's message is built straight
            /// into the caller's result instead of being moved there: a
            /// `Message` is over 500 bytes, and moving it would cost more
            /// than decoding a typical payload.
            #[inline(always)]
            pub(crate) fn decode_payload_with<R>(
                kind: u16,
                payload: &[u8],
                then: impl FnOnce(Result<Message, PayloadError>) -> R,
            ) -> R {
                match kind {
                    $( $code => match exact(payload) {
                        Ok(m) => then(Ok(Message::$variant(m))),
                        Err(e) => then(Err(e)),
                    }, )*
                    _ => match Vec::from_slice(payload) {
                        Ok(payload) => then(Ok(Message::Unknown(Unknown { kind, payload }))),
                        Err(()) => then(Err(PayloadError::TooLarge)),
                    },
                }
            }
        }

        /// Largest postcard payload of any known message.
        pub const MAX_KNOWN_PAYLOAD_LEN: usize = {
            let sizes = [$( <$variant as MaxSize>::POSTCARD_MAX_SIZE, )*];
            let mut max = 0;
            let mut i = 0;
            while i < sizes.len() {
                if sizes[i] > max {
                    max = sizes[i];
                }
                i += 1;
            }
            max
        };
    };
}

/// Whether a message is an event, a host command or a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageClass {
    /// Pump → host telemetry event (also stored in the log).
    Event,
    /// Host → pump command.
    Command,
    /// Pump → host response to a command.
    Response,
}

fn exact<'de, T: Deserialize<'de>>(payload: &'de [u8]) -> Result<T, PayloadError> {
    let (value, rest) = postcard::take_from_bytes(payload)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(PayloadError::TrailingBytes)
    }
}

catalogue! {
    /// Event 0x0101.
    StatusSnapshot = 0x0101, Event;
    /// Event 0x0102.
    DeliveryRecord = 0x0102, Event;
    /// Event 0x0103.
    PatientBolusRequested = 0x0103, Event;
    /// Event 0x0104.
    PatientBolusGranted = 0x0104, Event;
    /// Event 0x0105.
    PatientBolusDenied = 0x0105, Event;
    /// Event 0x0106.
    AlarmRaised = 0x0106, Event;
    /// Event 0x0107.
    AlarmAcknowledged = 0x0107, Event;
    /// Event 0x0108.
    AlarmCleared = 0x0108, Event;
    /// Event 0x0109.
    ReservoirLevel = 0x0109, Event;
    /// Event 0x010A.
    ReservoirRefilled = 0x010A, Event;
    /// Event 0x010B.
    BatteryState = 0x010B, Event;
    /// Event 0x010C.
    AppFault = 0x010C, Event;
    /// Event 0x010D.
    AppRestarted = 0x010D, Event;
    /// Event 0x010E.
    LogGap = 0x010E, Event;
    /// Event 0x010F.
    DeliveryDenied = 0x010F, Event;
    /// Event 0x0110.
    AccessDenied = 0x0110, Event;
    /// Event 0x0111.
    PrescriptionInstalled = 0x0111, Event;
    /// Event 0x0112.
    PrescriptionRejected = 0x0112, Event;
    /// Event 0x0113.
    ClockSet = 0x0113, Event;
    /// Event 0x0114.
    PumpStateChanged = 0x0114, Event;
    /// Event 0x0115.
    CommandAuthenticated = 0x0115, Event @ (1, 1);
    /// Event 0x0116.
    CommandRefused = 0x0116, Event @ (1, 1);
    /// Event 0x0117.
    RefillDiscrepancy = 0x0117, Event @ (1, 1);
    /// Event 0x0118.
    AccessDeniedRepeated = 0x0118, Event @ (1, 1);
    /// Event 0x0119.
    KernelStarted = 0x0119, Event @ (1, 1);
    /// Event 0x011A.
    ServiceOutlook = 0x011A, Event @ (1, 1);
    /// Event 0x011B.
    SelfTestFailed = 0x011B, Event @ (1, 1);
    /// Command 0x0201.
    GetStatus = 0x0201, Command;
    /// Command 0x0202.
    InstallPrescription = 0x0202, Command;
    /// Command 0x0203.
    ClinicianBolus = 0x0203, Command;
    /// Command 0x0204.
    PatientBolusRequest = 0x0204, Command;
    /// Command 0x0205.
    Refill = 0x0205, Command;
    /// Command 0x0206.
    Suspend = 0x0206, Command;
    /// Command 0x0207.
    Resume = 0x0207, Command;
    /// Command 0x0208.
    AcknowledgeAlarm = 0x0208, Command;
    /// Command 0x0209.
    ReadLog = 0x0209, Command;
    /// Command 0x020A.
    SetClock = 0x020A, Command;
    /// Command 0x020B.
    ClearFault = 0x020B, Command;
    /// Command 0x020C.
    AuthenticatedCommand = 0x020C, Command @ (1, 1);
    /// Command 0x020D.
    GetServiceOutlook = 0x020D, Command @ (1, 1);
    /// Response 0x0301.
    Ack = 0x0301, Response;
    /// Response 0x0302.
    Nack = 0x0302, Response;
    /// Response 0x0303.
    LogChunkEnd = 0x0303, Response;
}
