//! libtock-rs API for the infusion capsule (`capsules/infusion`).
//!
//! A thin typed wrapper over the capsule's commands, upcalls and allows, in
//! the style of libtock-rs' `apis/interface/buzzer`: one associated function
//! per command, synchronous (no call here blocks except through the caller's
//! own `yield_wait`). Whether a call is allowed is the capsule's decision;
//! a refusal comes back as [`Refused`], carrying the Tock error code and the
//! capsule's exact reason (a `pump_protocol::ErrorCode` wire code).
//!
//! ```ignore
//! type Infusion = libtock_infusion::Infusion<libtock::runtime::TockSyscalls>;
//! let status = Infusion::status()?;
//! Infusion::set_basal(25_000)?;
//! let listener = InfusionListener(|event| { /* Event::DeliveryDone { .. } … */ });
//! share::scope(|handle| {
//!     Infusion::subscribe_all(&listener, handle)?;
//!     loop { TockSyscalls::yield_wait(); }
//! })
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod link;
pub mod log_region;
pub mod rt;

use libtock_platform::allow_ro::AllowRo;
use libtock_platform::allow_rw::AllowRw;
use libtock_platform::share;
use libtock_platform::subscribe::{OneId, Subscribe};
use libtock_platform::{CommandReturn, DefaultConfig, ErrorCode, Syscalls, Upcall};

/// The capsule's driver number (out of tree: top bit set).
pub const DRIVER_NUM: u32 = pump_abi::DRIVER_NUM;

/// Command numbers: [`pump_abi::command`], the capsule's own source,
/// widened to the `u32` libtock-rs takes.
pub mod command {
    use pump_abi::command as abi;

    /// Driver exists.
    pub const EXISTS: u32 = abi::EXISTS as u32;
    /// Status summary.
    pub const STATUS: u32 = abi::STATUS as u32;
    /// Set the basal rate.
    pub const SET_BASAL: u32 = abi::SET_BASAL as u32;
    /// Clinician bolus.
    pub const CLINICIAN_BOLUS: u32 = abi::CLINICIAN_BOLUS as u32;
    /// Patient bolus.
    pub const PATIENT_BOLUS: u32 = abi::PATIENT_BOLUS as u32;
    /// Priming bolus.
    pub const PRIMING_BOLUS: u32 = abi::PRIMING_BOLUS as u32;
    /// Bridge bolus.
    pub const BRIDGE_BOLUS: u32 = abi::BRIDGE_BOLUS as u32;
    /// Stop the running bolus.
    pub const STOP_BOLUS: u32 = abi::STOP_BOLUS as u32;
    /// Watchdog check-in.
    pub const CHECK_IN: u32 = abi::CHECK_IN as u32;
    /// Install a signed prescription (read-only allow 0).
    pub const INSTALL_PRESCRIPTION: u32 = abi::INSTALL_PRESCRIPTION as u32;
    /// Drain events (read-write allow 0).
    pub const DRAIN_EVENTS: u32 = abi::DRAIN_EVENTS as u32;
    /// Acknowledge an alarm.
    pub const ACKNOWLEDGE_ALARM: u32 = abi::ACKNOWLEDGE_ALARM as u32;
    /// Clear a latched fault.
    pub const CLEAR_FAULT: u32 = abi::CLEAR_FAULT as u32;
    /// Suspend therapy.
    pub const SUSPEND: u32 = abi::SUSPEND as u32;
    /// Resume therapy.
    pub const RESUME: u32 = abi::RESUME as u32;
    /// Record a refill (read-only allow 0).
    pub const REFILL: u32 = abi::REFILL as u32;
    /// Set the clock.
    pub const SET_CLOCK: u32 = abi::SET_CLOCK as u32;
    /// Read the installed prescription (read-write allow 0).
    pub const READ_PRESCRIPTION: u32 = abi::READ_PRESCRIPTION as u32;
    /// Patient bolus lockout and count.
    pub const PATIENT_BOLUS_STATE: u32 = abi::PATIENT_BOLUS_STATE as u32;
    /// Number of events waiting.
    pub const PENDING_EVENTS: u32 = abi::PENDING_EVENTS as u32;
    /// Full status snapshot (postcard `StatusSnapshot`) into read-write allow 0.
    pub const FULL_STATUS: u32 = abi::FULL_STATUS as u32;
    /// Service outlook (postcard `ServiceOutlook`) into read-write allow 0.
    pub const SERVICE_OUTLOOK: u32 = abi::SERVICE_OUTLOOK as u32;
    /// The dosing app refused a patient bolus press itself (therapy rules).
    pub const REPORT_PATIENT_DENIAL: u32 = abi::REPORT_PATIENT_DENIAL as u32;
    /// Post a programmer message to the relay (read-only allow 0).
    pub const RELAY_POST: u32 = abi::RELAY_POST as u32;
    /// Take the oldest relayed message (read-write allow 0).
    pub const RELAY_TAKE: u32 = abi::RELAY_TAKE as u32;
    /// Answer a relayed request.
    pub const RELAY_ANSWER: u32 = abi::RELAY_ANSWER as u32;
    /// Read the verdict on the relayed request.
    pub const RELAY_RESULT: u32 = abi::RELAY_RESULT as u32;
    /// Store the dosing app's own record (read-only allow 0).
    pub const SAVE_APP_RECORD: u32 = abi::SAVE_APP_RECORD as u32;
    /// Read the dosing app's own record (read-write allow 0).
    pub const LOAD_APP_RECORD: u32 = abi::LOAD_APP_RECORD as u32;
    /// A signed programmer command (read-only allow 0), verified by the capsule.
    pub const AUTHENTICATED_COMMAND: u32 = abi::AUTHENTICATED_COMMAND as u32;
}


/// Subscribe numbers: [`pump_abi::upcall`].
pub use pump_abi::upcall as subscribe;


const ALLOW_RO_INPUT: u32 = pump_abi::allow::RO_INPUT;
const ALLOW_RW_OUTPUT: u32 = pump_abi::allow::RW_OUTPUT;

/// A command the capsule refused (or a syscall that failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The Tock error code (`NoDevice` for a role violation).
    pub code: ErrorCode,
    /// The capsule's reason: a `pump_protocol::ErrorCode` wire code, or 0
    /// when the failure did not come from the capsule's core.
    pub reason: u16,
}

impl From<ErrorCode> for Refused {
    fn from(code: ErrorCode) -> Self {
        Self { code, reason: 0 }
    }
}

/// The capsule's status summary (command 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// `pump_protocol::PumpState` wire code.
    pub state: u16,
    /// `pump_protocol::AlarmCode` of the highest active alarm, 0 if none.
    pub top_alarm: u16,
    /// Reservoir volume.
    pub reservoir_nl: u32,
    /// Volume delivered in the rolling 24 h.
    pub delivered_24h_nl: u32,
}

/// The bolus commands (3–6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BolusKind {
    /// Ordered by the clinician.
    Clinician,
    /// Requested by the patient.
    Patient,
    /// Catheter priming.
    Priming,
    /// Bridge after a refill.
    Bridge,
}

impl BolusKind {
    /// The command number.
    pub const fn command(self) -> u32 {
        match self {
            BolusKind::Clinician => command::CLINICIAN_BOLUS,
            BolusKind::Patient => command::PATIENT_BOLUS,
            BolusKind::Priming => command::PRIMING_BOLUS,
            BolusKind::Bridge => command::BRIDGE_BOLUS,
        }
    }
}

/// A relayed message taken with [`Infusion::relay_take`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayItem {
    /// The ticket to answer a request with ([`Infusion::relay_answer`]).
    pub ticket: u32,
    /// `pump_protocol::MessageKind` code.
    pub kind: u16,
    /// Bytes of the message's postcard payload now in the buffer.
    pub len: usize,
}

/// An upcall from the capsule. Codes are `pump_protocol` wire codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A delivery ended.
    DeliveryDone {
        /// `DeliveryKind` code.
        kind: u16,
        /// `DeliveryOutcome` code.
        outcome: u16,
        /// Volume since the delivery's last checkpoint.
        volume_nl: u32,
    },
    /// The capsule's verdict on a bolus request of the dosing app.
    BolusVerdict {
        /// `DeliveryKind` code.
        kind: u16,
        /// `ErrorCode` code of the refusal, 0 if the bolus started.
        error: u16,
        /// Requested volume.
        volume_nl: u32,
    },
    /// Events are waiting to be drained.
    EventsAvailable {
        /// How many.
        count: u32,
    },
    /// The alarm output changed.
    AlarmChanged {
        /// 0 none, 1 low, 2 medium, 3 high.
        priority: u8,
        /// The tone sounds.
        audible: bool,
    },
    /// The relay has something for the dosing app ([`Infusion::relay_take`]).
    RelayPosted,
    /// The verdict on the telemetry app's relayed request is ready
    /// ([`Infusion::relay_result`]).
    RelayAnswered,
}

/// Receives every upcall of the capsule as an [`Event`].
pub struct InfusionListener<F: Fn(Event)>(pub F);

impl<F: Fn(Event)> Upcall<OneId<DRIVER_NUM, { subscribe::DELIVERY_DONE }>> for InfusionListener<F> {
    fn upcall(&self, kind: u32, outcome: u32, volume_nl: u32) {
        (self.0)(Event::DeliveryDone {
            kind: kind as u16,
            outcome: outcome as u16,
            volume_nl,
        });
    }
}

impl<F: Fn(Event)> Upcall<OneId<DRIVER_NUM, { subscribe::BOLUS_VERDICT }>> for InfusionListener<F> {
    fn upcall(&self, kind: u32, error: u32, volume_nl: u32) {
        (self.0)(Event::BolusVerdict {
            kind: kind as u16,
            error: error as u16,
            volume_nl,
        });
    }
}

impl<F: Fn(Event)> Upcall<OneId<DRIVER_NUM, { subscribe::EVENTS_AVAILABLE }>>
    for InfusionListener<F>
{
    fn upcall(&self, count: u32, _: u32, _: u32) {
        (self.0)(Event::EventsAvailable { count });
    }
}

impl<F: Fn(Event)> Upcall<OneId<DRIVER_NUM, { subscribe::ALARM_CHANGED }>> for InfusionListener<F> {
    fn upcall(&self, priority: u32, audible: u32, _: u32) {
        (self.0)(Event::AlarmChanged {
            priority: priority.min(3) as u8,
            audible: audible != 0,
        });
    }
}

impl<F: Fn(Event)> Upcall<OneId<DRIVER_NUM, { subscribe::RELAY_POSTED }>> for InfusionListener<F> {
    fn upcall(&self, _: u32, _: u32, _: u32) {
        (self.0)(Event::RelayPosted);
    }
}

impl<F: Fn(Event)> Upcall<OneId<DRIVER_NUM, { subscribe::RELAY_ANSWERED }>>
    for InfusionListener<F>
{
    fn upcall(&self, _: u32, _: u32, _: u32) {
        (self.0)(Event::RelayAnswered);
    }
}

/// The six subscriptions, for [`Infusion::subscribe_all`].
pub type Subscriptions<'share, S> = (
    Subscribe<'share, S, DRIVER_NUM, { subscribe::DELIVERY_DONE }>,
    Subscribe<'share, S, DRIVER_NUM, { subscribe::BOLUS_VERDICT }>,
    Subscribe<'share, S, DRIVER_NUM, { subscribe::EVENTS_AVAILABLE }>,
    Subscribe<'share, S, DRIVER_NUM, { subscribe::ALARM_CHANGED }>,
    Subscribe<'share, S, DRIVER_NUM, { subscribe::RELAY_POSTED }>,
    Subscribe<'share, S, DRIVER_NUM, { subscribe::RELAY_ANSWERED }>,
);

/// Turns a command's return into a result: success variants through `ok`,
/// failures (with or without the capsule's reason) into [`Refused`].
fn outcome<T>(
    ret: CommandReturn,
    ok: impl FnOnce(&CommandReturn) -> Option<T>,
) -> Result<T, Refused> {
    if let Some((code, reason)) = ret.get_failure_u32() {
        return Err(Refused {
            code,
            reason: reason as u16,
        });
    }
    if let Some(code) = ret.get_failure() {
        return Err(code.into());
    }
    ok(&ret).ok_or(Refused {
        code: ErrorCode::BadRVal,
        reason: 0,
    })
}

fn unit(ret: &CommandReturn) -> Option<()> {
    ret.is_success().then_some(())
}

/// The infusion capsule's API. See the crate documentation.
pub struct Infusion<S: Syscalls>(S);

impl<S: Syscalls> Infusion<S> {
    fn call(num: u32, arg1: u32, arg2: u32) -> Result<(), Refused> {
        outcome(S::command(DRIVER_NUM, num, arg1, arg2), unit)
    }

    /// Whether the capsule is present.
    pub fn exists() -> Result<(), Refused> {
        Self::call(command::EXISTS, 0, 0)
    }

    /// Any command by number, as the capsule answers it (for tests and the
    /// rogue app); success of any variant is `Ok`.
    pub fn raw_command(num: u32, arg1: u32, arg2: u32) -> Result<(), Refused> {
        outcome(S::command(DRIVER_NUM, num, arg1, arg2), |ret| {
            (!ret.is_failure()
                && !ret.is_failure_u32()
                && !ret.is_failure_2_u32()
                && !ret.is_failure_u64())
            .then_some(())
        })
    }

    /// Command 1: status summary.
    pub fn status() -> Result<Status, Refused> {
        outcome(S::command(DRIVER_NUM, command::STATUS, 0, 0), |ret| {
            ret.get_success_3_u32()
                .map(|(state, reservoir_nl, delivered_24h_nl)| Status {
                    state: state as u16,
                    top_alarm: (state >> 16) as u16,
                    reservoir_nl,
                    delivered_24h_nl,
                })
        })
    }

    /// Command 2: set the basal rate (0 stops basal).
    pub fn set_basal(rate_nl_per_h: u32) -> Result<(), Refused> {
        Self::call(command::SET_BASAL, rate_nl_per_h, 0)
    }

    /// Commands 3–6: start a bolus.
    pub fn bolus(kind: BolusKind, volume_nl: u32, duration_ms: u32) -> Result<(), Refused> {
        Self::call(kind.command(), volume_nl, duration_ms)
    }

    /// Command 7: stop the running bolus.
    pub fn stop_bolus() -> Result<(), Refused> {
        Self::call(command::STOP_BOLUS, 0, 0)
    }

    /// Command 8: watchdog check-in; returns the check-in timeout.
    pub fn check_in() -> Result<u32, Refused> {
        outcome(S::command(DRIVER_NUM, command::CHECK_IN, 0, 0), |ret| {
            ret.get_success_u32()
        })
    }

    /// Shares `bytes` as read-only allow 0 for command `num`.
    fn with_input(num: u32, bytes: &[u8]) -> Result<(), Refused> {
        Self::with_input_args(num, bytes.len() as u32, 0, bytes, unit)
    }

    /// Shares `bytes` as read-only allow 0 for command `num` with `arg1`,
    /// `arg2`.
    fn with_input_args<T>(
        num: u32,
        arg1: u32,
        arg2: u32,
        bytes: &[u8],
        ok: impl FnOnce(&CommandReturn) -> Option<T>,
    ) -> Result<T, Refused> {
        share::scope::<AllowRo<_, DRIVER_NUM, ALLOW_RO_INPUT>, _, _>(|handle| {
            S::allow_ro::<DefaultConfig, DRIVER_NUM, ALLOW_RO_INPUT>(handle, bytes)?;
            outcome(S::command(DRIVER_NUM, num, arg1, arg2), ok)
        })
    }

    /// Shares `buf` as read-write allow 0 for command `num`.
    fn with_output<T>(
        num: u32,
        buf: &mut [u8],
        ok: impl FnOnce(&CommandReturn) -> Option<T>,
    ) -> Result<T, Refused> {
        share::scope::<AllowRw<_, DRIVER_NUM, ALLOW_RW_OUTPUT>, _, _>(|handle| {
            S::allow_rw::<DefaultConfig, DRIVER_NUM, ALLOW_RW_OUTPUT>(handle, buf)?;
            outcome(S::command(DRIVER_NUM, num, 0, 0), ok)
        })
    }

    /// Command 9: install a signed prescription.
    pub fn install_prescription(signed: &[u8]) -> Result<(), Refused> {
        Self::with_input(command::INSTALL_PRESCRIPTION, signed)
    }

    /// Command 10: drain whole stream-encoded event frames into `buf`;
    /// returns `(bytes, frames)`.
    pub fn drain_events(buf: &mut [u8]) -> Result<(usize, usize), Refused> {
        Self::with_output(command::DRAIN_EVENTS, buf, |ret| {
            ret.get_success_2_u32()
                .map(|(bytes, frames)| (bytes as usize, frames as usize))
        })
    }

    /// Command 11: acknowledge (silence) an alarm.
    pub fn acknowledge_alarm(alarm_code: u16) -> Result<(), Refused> {
        Self::call(command::ACKNOWLEDGE_ALARM, alarm_code.into(), 0)
    }

    /// Command 12: clear a latched fault.
    pub fn clear_fault(alarm_code: u16) -> Result<(), Refused> {
        Self::call(command::CLEAR_FAULT, alarm_code.into(), 0)
    }

    /// Command 13: suspend therapy.
    pub fn suspend() -> Result<(), Refused> {
        Self::call(command::SUSPEND, 0, 0)
    }

    /// Command 14: resume therapy.
    pub fn resume() -> Result<(), Refused> {
        Self::call(command::RESUME, 0, 0)
    }

    /// Command 15: record a refill (postcard `pump_protocol::Refill`).
    pub fn refill(refill: &[u8]) -> Result<(), Refused> {
        Self::with_input(command::REFILL, refill)
    }

    /// Command 16: set the wall clock.
    pub fn set_clock(utc_ms: u64) -> Result<(), Refused> {
        Self::call(command::SET_CLOCK, utc_ms as u32, (utc_ms >> 32) as u32)
    }

    /// Command 17: copy the installed signed prescription into `buf`;
    /// returns its length.
    pub fn read_prescription(buf: &mut [u8]) -> Result<usize, Refused> {
        Self::with_output(command::READ_PRESCRIPTION, buf, |ret| {
            ret.get_success_u32().map(|len| len as usize)
        })
    }

    /// Command 18: `(lockout_remaining_ms, boluses_left_24h)`.
    pub fn patient_bolus_state() -> Result<(u32, u32), Refused> {
        outcome(
            S::command(DRIVER_NUM, command::PATIENT_BOLUS_STATE, 0, 0),
            |ret| ret.get_success_2_u32(),
        )
    }

    /// Command 19: number of queued events.
    pub fn pending_events() -> Result<u32, Refused> {
        outcome(
            S::command(DRIVER_NUM, command::PENDING_EVENTS, 0, 0),
            |ret| ret.get_success_u32(),
        )
    }

    /// Command 20: the full status snapshot, a postcard
    /// `pump_protocol::StatusSnapshot`, into `buf`; returns its length.
    pub fn full_status(buf: &mut [u8]) -> Result<usize, Refused> {
        Self::with_output(command::FULL_STATUS, buf, |ret| {
            ret.get_success_u32().map(|len| len as usize)
        })
    }

    /// Command 29: the service outlook (battery, ERI and end-of-service
    /// dates, refill-by date), a postcard `pump_protocol::ServiceOutlook`,
    /// into `buf`; returns its length.
    pub fn service_outlook(buf: &mut [u8]) -> Result<usize, Refused> {
        Self::with_output(command::SERVICE_OUTLOOK, buf, |ret| {
            ret.get_success_u32().map(|len| len as usize)
        })
    }

    /// Command 21: log a patient-bolus press the dosing app refused under
    /// the therapy's own rules (`reason`: a `pump_protocol::ErrorCode` code).
    pub fn report_patient_denial(reason: u16, lockout_remaining_ms: u32) -> Result<(), Refused> {
        Self::call(
            command::REPORT_PATIENT_DENIAL,
            reason.into(),
            lockout_remaining_ms,
        )
    }

    /// Command 28 (Telemetry role): a signed programmer command, the bytes
    /// of a `pump_protocol::AuthenticatedCommand`, which the capsule
    /// verifies and carries out. Returns `(kind, ticket)`: ticket 0 when it
    /// was carried out, else the relay ticket of the bolus request it
    /// posted (its verdict comes as [`relay_result`](Self::relay_result)).
    pub fn authenticated_command(signed: &[u8]) -> Result<(u16, u32), Refused> {
        Self::with_input_args(
            command::AUTHENTICATED_COMMAND,
            signed.len() as u32,
            0,
            signed,
            |ret| {
                ret.get_success_2_u32()
                    .map(|(kind, ticket)| ((kind & 0xFFFF) as u16, ticket))
            },
        )
    }

    /// Command 22 (Telemetry role): post a programmer message to the relay
    /// for the dosing app: `kind` a `pump_protocol::MessageKind` code,
    /// `payload` its postcard payload (empty for `InstallPrescription`).
    /// Returns the ticket its verdict will carry (requests only).
    pub fn relay_post(kind: u16, payload: &[u8]) -> Result<u32, Refused> {
        Self::with_input_args(
            command::RELAY_POST,
            kind.into(),
            payload.len() as u32,
            payload,
            |ret| ret.get_success_u32(),
        )
    }

    /// Command 23 (Dosing role): take the oldest relayed message, its
    /// payload into `buf`.
    pub fn relay_take(buf: &mut [u8]) -> Result<RelayItem, Refused> {
        Self::with_output(command::RELAY_TAKE, buf, |ret| {
            ret.get_success_2_u32().map(|(ticket, packed)| RelayItem {
                ticket,
                kind: packed as u16,
                len: (packed >> 16) as usize,
            })
        })
    }

    /// Command 24 (Dosing role): answer relayed request `ticket`; `verdict`
    /// 0 accepts, otherwise a `pump_protocol::ErrorCode` code refuses.
    pub fn relay_answer(ticket: u32, verdict: u16) -> Result<(), Refused> {
        Self::call(command::RELAY_ANSWER, ticket, verdict.into())
    }

    /// Command 25 (Telemetry role): `(ticket, verdict)` of the answered
    /// request, verdict 0 accepted, otherwise a `pump_protocol::ErrorCode`
    /// code.
    pub fn relay_result() -> Result<(u32, u16), Refused> {
        outcome(S::command(DRIVER_NUM, command::RELAY_RESULT, 0, 0), |ret| {
            ret.get_success_2_u32()
                .map(|(ticket, verdict)| (ticket, verdict as u16))
        })
    }

    /// Command 26 (Dosing role): store `record` as the app's record in the
    /// capsule's saved state, replacing the previous one (at most 1024
    /// bytes).
    pub fn save_app_record(record: &[u8]) -> Result<(), Refused> {
        Self::with_input(command::SAVE_APP_RECORD, record)
    }

    /// Command 27 (Dosing role): copy the app's record into `buf`; returns
    /// its length, 0 if none was saved.
    pub fn load_app_record(buf: &mut [u8]) -> Result<usize, Refused> {
        Self::with_output(command::LOAD_APP_RECORD, buf, |ret| {
            ret.get_success_u32().map(|len| len as usize)
        })
    }

    /// Subscribes `listener` to all six upcalls for the life of `handle`.
    pub fn subscribe_all<'share, F: Fn(Event)>(
        listener: &'share InfusionListener<F>,
        handle: share::Handle<Subscriptions<'share, S>>,
    ) -> Result<(), ErrorCode> {
        let (delivery, verdict, events, alarm, posted, answered) = handle.split();
        S::subscribe::<
            OneId<DRIVER_NUM, { subscribe::DELIVERY_DONE }>,
            _,
            DefaultConfig,
            DRIVER_NUM,
            { subscribe::DELIVERY_DONE },
        >(delivery, listener)?;
        S::subscribe::<
            OneId<DRIVER_NUM, { subscribe::BOLUS_VERDICT }>,
            _,
            DefaultConfig,
            DRIVER_NUM,
            { subscribe::BOLUS_VERDICT },
        >(verdict, listener)?;
        S::subscribe::<
            OneId<DRIVER_NUM, { subscribe::EVENTS_AVAILABLE }>,
            _,
            DefaultConfig,
            DRIVER_NUM,
            { subscribe::EVENTS_AVAILABLE },
        >(events, listener)?;
        S::subscribe::<
            OneId<DRIVER_NUM, { subscribe::ALARM_CHANGED }>,
            _,
            DefaultConfig,
            DRIVER_NUM,
            { subscribe::ALARM_CHANGED },
        >(alarm, listener)?;
        S::subscribe::<
            OneId<DRIVER_NUM, { subscribe::RELAY_POSTED }>,
            _,
            DefaultConfig,
            DRIVER_NUM,
            { subscribe::RELAY_POSTED },
        >(posted, listener)?;
        S::subscribe::<
            OneId<DRIVER_NUM, { subscribe::RELAY_ANSWERED }>,
            _,
            DefaultConfig,
            DRIVER_NUM,
            { subscribe::RELAY_ANSWERED },
        >(answered, listener)
    }
}

#[cfg(test)]
mod tests;
