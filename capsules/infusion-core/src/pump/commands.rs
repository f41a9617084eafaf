//! The command table: a pure translation of syscalls into calls on the
//! concerns above. It decides nothing itself.

use pump_protocol::{AlarmCode, DeliveryKind, ErrorCode};

use super::auth::Authenticated;
use super::infusion::InfusionCore;
use crate::config::{AppId, Role};
use crate::platform::Platform;
use crate::relay as relay_box;

/// The outcome of a syscall-level command, before the Tock glue maps it to a
/// `CommandReturn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandResult {
    /// `SUCCESS`.
    Success,
    /// `SUCCESS_U32`.
    SuccessU32(u32),
    /// `SUCCESS_U32_U32`.
    SuccessU32U32(u32, u32),
    /// `SUCCESS_U32_U32_U32`.
    SuccessU32U32U32(u32, u32, u32),
    /// `FAILURE` with a typed reason (see [`tock_error_name`](crate::tock_error_name)).
    Failure(ErrorCode),
}

impl From<Result<(), ErrorCode>> for CommandResult {
    fn from(result: Result<(), ErrorCode>) -> Self {
        match result {
            Ok(()) => Self::Success,
            Err(e) => Self::Failure(e),
        }
    }
}

impl CommandResult {
    /// The answer of a read command that writes a postcard value into the
    /// read-write allow and returns its length (`FULL_STATUS`,
    /// `SERVICE_OUTLOOK`): the value decoded from `rw`, the command's own
    /// refusal, or `InvalidArgument` for any other answer or bytes that do
    /// not decode. One reader for every host that drives the core.
    pub fn read_postcard<T: serde::de::DeserializeOwned>(self, rw: &[u8]) -> Result<T, ErrorCode> {
        match self {
            Self::SuccessU32(len) => usize::try_from(len)
                .ok()
                .and_then(|len| rw.get(..len))
                .and_then(|bytes| postcard::from_bytes(bytes).ok())
                .ok_or(ErrorCode::InvalidArgument),
            Self::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }
}

impl<P: Platform> InfusionCore<P> {
    /// The syscall interface: a direct translation target for the Tock glue.
    /// See the crate docs for the table. `ro` is the read-only allow buffer,
    /// `rw` the read-write one (empty slices if none).
    #[allow(clippy::too_many_arguments)]
    pub fn command(
        &mut self,
        caller: AppId,
        command_num: u32,
        arg1: u32,
        arg2: u32,
        ro: &[u8],
        rw: &mut [u8],
        now_ms: u64,
    ) -> CommandResult {
        use crate::command::*;
        let Ok(num) = u16::try_from(command_num) else {
            return CommandResult::Failure(ErrorCode::NoSupport);
        };
        match num {
            EXISTS => CommandResult::Success,
            STATUS => {
                let now = self.clock(now_ms);
                let status = self.status(now);
                let top = status.top_alarm.map_or(0, AlarmCode::code);
                CommandResult::SuccessU32U32U32(
                    u32::from(status.pump_state.code()) | (u32::from(top) << 16),
                    status.reservoir_nl,
                    status.delivered_24h_nl,
                )
            }
            SET_BASAL => self.set_basal(caller, arg1, now_ms).into(),
            CLINICIAN_BOLUS => self
                .start_granted_clinician_bolus(caller, arg1, arg2, now_ms)
                .into(),
            PATIENT_BOLUS => self
                .start_bolus(caller, DeliveryKind::PatientBolus, arg1, arg2, now_ms)
                .into(),
            PRIMING_BOLUS => self
                .start_bolus(caller, DeliveryKind::Priming, arg1, arg2, now_ms)
                .into(),
            BRIDGE_BOLUS => self
                .start_bolus(caller, DeliveryKind::Bridge, arg1, arg2, now_ms)
                .into(),
            STOP_BOLUS => self.stop_bolus(caller, now_ms).into(),
            CHECK_IN => match self.check_in(caller, now_ms) {
                Ok(timeout) => CommandResult::SuccessU32(timeout),
                Err(e) => CommandResult::Failure(e),
            },
            INSTALL_PRESCRIPTION => match ro.get(..arg1 as usize) {
                Some(bytes) => self.install_prescription(caller, bytes, now_ms).into(),
                None => self.refuse_after_authorize(caller, num, now_ms, &[Role::Telemetry]),
            },
            DRAIN_EVENTS => match self.drain_events(caller, rw, now_ms) {
                Ok((bytes, frames)) => CommandResult::SuccessU32U32(
                    u32::try_from(bytes).unwrap_or(u32::MAX),
                    u32::try_from(frames).unwrap_or(u32::MAX),
                ),
                Err(e) => CommandResult::Failure(e),
            },
            // Since protocol 1.1 these change therapy or safety state only
            // when signed (command 28): the plain syscalls are refused, so a
            // compromised telemetry app cannot issue them (SR-AUTH-002).
            ACKNOWLEDGE_ALARM | CLEAR_FAULT | SUSPEND | RESUME | REFILL | SET_CLOCK
            | RELAY_POST => CommandResult::Failure(self.refuse_unsigned(caller, num, now_ms)),
            AUTHENTICATED_COMMAND => match ro.get(..arg1 as usize) {
                Some(signed) => match self.authenticated_command(caller, signed, now_ms) {
                    Ok(Authenticated::Done { kind }) => {
                        CommandResult::SuccessU32U32(u32::from(kind.code()), 0)
                    }
                    Ok(Authenticated::Posted { kind, ticket }) => {
                        CommandResult::SuccessU32U32(u32::from(kind.code()), ticket)
                    }
                    Err(e) => CommandResult::Failure(e),
                },
                None => self.refuse_after_authorize(caller, num, now_ms, &[Role::Telemetry]),
            },
            READ_PRESCRIPTION => match self.read_prescription(caller, rw, now_ms) {
                Ok(len) => CommandResult::SuccessU32(u32::try_from(len).unwrap_or(u32::MAX)),
                Err(e) => CommandResult::Failure(e),
            },
            PATIENT_BOLUS_STATE => {
                let now = self.clock(now_ms);
                let (lockout_ms, left) = self.patient_bolus_availability(now);
                CommandResult::SuccessU32U32(lockout_ms, left)
            }
            PENDING_EVENTS => {
                let now = self.clock(now_ms);
                match self.authorize(caller, &[Role::Telemetry], num, now) {
                    Ok(()) => CommandResult::SuccessU32(
                        u32::try_from(self.pending_events()).unwrap_or(u32::MAX),
                    ),
                    Err(e) => CommandResult::Failure(e),
                }
            }
            FULL_STATUS => {
                let now = self.clock(now_ms);
                let status = self.status(now);
                match postcard::to_slice(&status, rw) {
                    Ok(written) => {
                        CommandResult::SuccessU32(u32::try_from(written.len()).unwrap_or(u32::MAX))
                    }
                    Err(_) => CommandResult::Failure(ErrorCode::InvalidArgument),
                }
            }
            SERVICE_OUTLOOK => {
                let now = self.clock(now_ms);
                let outlook = self.service_outlook(now);
                match postcard::to_slice(&outlook, rw) {
                    Ok(written) => {
                        CommandResult::SuccessU32(u32::try_from(written.len()).unwrap_or(u32::MAX))
                    }
                    Err(_) => CommandResult::Failure(ErrorCode::InvalidArgument),
                }
            }
            REPORT_PATIENT_DENIAL => {
                let reason = ErrorCode::from_code(u16::try_from(arg1).unwrap_or(u16::MAX));
                self.report_patient_denial(caller, reason, arg2, now_ms)
                    .into()
            }
            RELAY_TAKE => match self.relay_take(caller, rw, now_ms) {
                Ok(taken) => CommandResult::SuccessU32U32(
                    taken.ticket,
                    u32::from(taken.kind.code()) | ((taken.len as u32) << 16),
                ),
                Err(e) => CommandResult::Failure(e),
            },
            RELAY_ANSWER => self.relay_answer(caller, arg1, arg2, now_ms).into(),
            SAVE_APP_RECORD => match ro.get(..arg1 as usize) {
                Some(record) => self.save_app_record(caller, record, now_ms).into(),
                None => self.refuse_after_authorize(caller, num, now_ms, &[Role::Dosing]),
            },
            LOAD_APP_RECORD => match self.load_app_record(caller, rw, now_ms) {
                Ok(len) => CommandResult::SuccessU32(u32::try_from(len).unwrap_or(u32::MAX)),
                Err(e) => CommandResult::Failure(e),
            },
            RELAY_RESULT => match self.relay_result(caller, now_ms) {
                Ok((ticket, verdict)) => {
                    CommandResult::SuccessU32U32(ticket, relay_box::verdict_code(verdict))
                }
                Err(e) => CommandResult::Failure(e),
            },
            _ => CommandResult::Failure(ErrorCode::NoSupport),
        }
    }
}
