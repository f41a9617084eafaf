//! Signed programmer commands, verified here in the safety kernel
//! (`docs/protocol.md` §5.5, SR-AUTH-001..007).
//!
//! Anyone can send bytes to the telemetry radio, and the telemetry app that
//! receives them is not trusted either: it may be compromised. So the app
//! only carries a command's signed bytes to this module, which checks the
//! signature (a clinic key, or the patient programmer the prescription
//! pairs), the device, and the signer's counter, stores the counter before
//! it acts, and only then carries the command out. The plain, unsigned
//! syscalls of the same commands are refused (see [`super::commands`]).
//!
//! | command | who may sign | what the core does |
//! |---|---|---|
//! | `Suspend`, `Resume`, `Refill`, `SetClock`, `ClearFault` | clinic | carries it out, then tells the dosing app through the relay |
//! | `AcknowledgeAlarm` | clinic, patient programmer | carries it out |
//! | `ClinicianBolus` | clinic | posts the request to the dosing app and holds a [`ClinicianGrant`](super::state::ClinicianGrant): the dosing app's clinician-bolus syscall is refused without one |
//! | `PatientBolusRequest` | patient programmer | posts the request to the dosing app; the envelope's lockout and count bound it as any press |
//!
//! Cost: one Ed25519 verification per command (the prescription verifier's
//! code, already in the capsule), one floor-record write (a few bytes
//! appended to the floor region, no erase until the region's page fills),
//! and two events.

use pump_protocol::command_auth::{
    decode_command_body, signed_command_message, split_signed_command, CommandBody, Signer,
    MAX_SIGNED_COMMAND_MESSAGE_LEN,
};
use pump_protocol::{
    AcknowledgeAlarm, ClearFault, ClinicianBolus, CommandAuthenticated, CommandRefused, ErrorCode,
    MessageKind, Refill, SetClock,
};
use serde::de::DeserializeOwned;

use super::infusion::InfusionCore;
use super::state::ClinicianGrant;
use crate::command;
use crate::config::{AppId, Role};
use crate::events::Event;
use crate::platform::{Notification, Platform};
use crate::relay::RELAY_ANSWER_TIMEOUT_MS;

/// What an accepted signed command led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authenticated {
    /// The command was carried out.
    Done {
        /// Its kind.
        kind: MessageKind,
    },
    /// A bolus request was posted to the dosing app; its verdict comes
    /// through the relay under this ticket.
    Posted {
        /// Its kind.
        kind: MessageKind,
        /// The relay ticket (never 0).
        ticket: u32,
    },
}

fn exact<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ErrorCode> {
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Ok(value),
        _ => Err(ErrorCode::BadPayload),
    }
}

impl<P: Platform> InfusionCore<P> {
    /// Command 28: a signed programmer command from the telemetry app
    /// (SR-AUTH-001..004). Every refusal is audited as `CommandRefused`
    /// with its reason only, and changes nothing else.
    pub fn authenticated_command(
        &mut self,
        caller: AppId,
        signed: &[u8],
        now_ms: u64,
    ) -> Result<Authenticated, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(
            caller,
            &[Role::Telemetry],
            command::AUTHENTICATED_COMMAND,
            now,
        )?;
        self.draw_signature();
        let (body, signer, kind) = match self.verify_command(signed) {
            Ok(verified) => verified,
            Err(reason) => return Err(self.refuse_command(reason, now)),
        };
        // The counter is stored before anything acts on the command: a reset
        // at any instant after this line can never accept it again.
        self.p.command_counters[signer.index()] = body.counter;
        self.save_command_counters();
        let utc = self.utc_ms(now);
        self.emit(
            Event::CommandAuthenticated(CommandAuthenticated {
                time_ms: utc,
                signer: signer.code(),
                counter: body.counter,
                command_kind: kind.code(),
            }),
            now,
        );
        self.carry_out(caller, kind, &body.payload, now_ms)
    }

    /// Checks a signed command in the order of `docs/protocol.md` §5.5.
    /// Changes nothing.
    fn verify_command(
        &self,
        signed: &[u8],
    ) -> Result<(CommandBody, Signer, MessageKind), ErrorCode> {
        let parts = split_signed_command(signed).map_err(|_| ErrorCode::BadPayload)?;
        // Decoded only to choose the key; nothing acts on it unverified.
        let body = decode_command_body(parts.body).map_err(|_| ErrorCode::BadPayload)?;
        let signer = Signer::from_code(body.signer).ok_or(ErrorCode::Unauthenticated)?;
        let mut message_buf = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
        let message = signed_command_message(parts.body, &mut message_buf)
            .map_err(|_| ErrorCode::BadPayload)?;
        let verifies =
            |key: &[u8; 32]| crate::rx::signature_verifies(key, message, parts.signature);
        let authentic = match signer {
            Signer::Clinic => self.config.clinic_keys.iter().any(verifies),
            Signer::PatientProgrammer => {
                let paired = self
                    .rx
                    .as_ref()
                    .and(self.pairing.ptm_public_key.as_ref())
                    .ok_or(ErrorCode::NotPaired)?;
                verifies(paired)
            }
        };
        if !authentic {
            return Err(ErrorCode::Unauthenticated);
        }
        let kind = MessageKind::from_code(body.kind)
            .filter(|kind| signer.may_sign(*kind))
            .ok_or(ErrorCode::Unauthenticated)?;
        if body.device_id != self.config.device_id {
            return Err(ErrorCode::WrongDevice);
        }
        if body.counter <= self.p.command_counters[signer.index()] {
            return Err(ErrorCode::Replayed);
        }
        Ok((body, signer, kind))
    }

    /// Carries out an authenticated command as its plain syscall did.
    fn carry_out(
        &mut self,
        caller: AppId,
        kind: MessageKind,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Authenticated, ErrorCode> {
        let done = Authenticated::Done { kind };
        match kind {
            MessageKind::Suspend => self.suspend(caller, now_ms),
            MessageKind::Resume => self.resume(caller, now_ms),
            MessageKind::Refill => {
                let refill: Refill = exact(payload)?;
                self.refill(
                    caller,
                    refill.withdrawn_volume_nl,
                    refill.added_volume_nl,
                    refill.concentration_ug_per_ml,
                    now_ms,
                )
            }
            MessageKind::SetClock => {
                let set: SetClock = exact(payload)?;
                self.set_clock(caller, set.utc_time_ms, now_ms)
            }
            MessageKind::ClearFault => {
                let clear: ClearFault = exact(payload)?;
                self.clear_fault(caller, clear.code, now_ms)
            }
            MessageKind::AcknowledgeAlarm => {
                let ack: AcknowledgeAlarm = exact(payload)?;
                return self
                    .acknowledge_alarm(caller, ack.code, now_ms)
                    .map(|()| done);
            }
            MessageKind::ClinicianBolus => return self.post_clinician_bolus(payload, now_ms),
            MessageKind::PatientBolusRequest => {
                let now = self.clock(now_ms);
                let ticket = self.relay.post(kind.code(), payload, now)?;
                self.platform.notify(Notification::RelayPosted);
                return Ok(Authenticated::Posted { kind, ticket });
            }
            // `Signer::may_sign` admits no other kind.
            _ => Err(ErrorCode::Unauthenticated),
        }?;
        self.post_notice(kind, payload, now_ms);
        Ok(done)
    }

    fn post_clinician_bolus(
        &mut self,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Authenticated, ErrorCode> {
        let now = self.clock(now_ms);
        let bolus: ClinicianBolus = exact(payload)?;
        let concentration = self
            .rx
            .as_ref()
            .map(|rx| rx.concentration_ug_per_ml)
            .filter(|c| *c > 0)
            .ok_or(ErrorCode::NoPrescription)?;
        let volume_nl = u64::from(bolus.dose_ug) * 1_000_000 / u64::from(concentration);
        let volume_nl = u32::try_from(volume_nl).map_err(|_| ErrorCode::InvalidArgument)?;
        let kind = MessageKind::ClinicianBolus;
        let ticket = self.relay.post(kind.code(), payload, now)?;
        self.clinician_grant = Some(ClinicianGrant {
            ticket,
            volume_nl,
            duration_ms: bolus.duration_ms,
            expires_at_ms: now.saturating_add(RELAY_ANSWER_TIMEOUT_MS),
        });
        self.platform.notify(Notification::RelayPosted);
        Ok(Authenticated::Posted { kind, ticket })
    }

    /// Tells the dosing app, through the relay, of a command carried out.
    /// A notice the relay cannot take changes nothing: the dosing app still
    /// learns the new state from the capsule's status at its next wake-up.
    pub(super) fn post_notice(&mut self, kind: MessageKind, payload: &[u8], now_ms: u64) {
        if matches!(kind, MessageKind::AcknowledgeAlarm) {
            return;
        }
        let now = self.clock(now_ms);
        if self.relay.post(kind.code(), payload, now).is_ok() {
            self.platform.notify(Notification::RelayPosted);
        }
    }

    /// Command 3: the dosing app starts the clinician bolus the clinic
    /// signed (SR-AUTH-005). Without a live grant, or asking for more
    /// volume or a faster run than was signed, it is refused
    /// `Unauthenticated` and audited; the grant is used up either way.
    pub fn start_granted_clinician_bolus(
        &mut self,
        caller: AppId,
        volume_nl: u32,
        duration_ms: u32,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::CLINICIAN_BOLUS, now)?;
        let grant = self.clinician_grant.take();
        let granted = grant.is_some_and(|g| {
            now <= g.expires_at_ms && volume_nl <= g.volume_nl && duration_ms >= g.duration_ms
        });
        if !granted {
            return Err(self.refuse_command(ErrorCode::Unauthenticated, now));
        }
        self.start_bolus(
            caller,
            pump_protocol::DeliveryKind::ClinicianBolus,
            volume_nl,
            duration_ms,
            now_ms,
        )
    }

    /// A plain syscall of a command that must be signed (SR-AUTH-002): the
    /// caller's role is checked first (so an unentitled app is audited as
    /// `AccessDenied`), then it is refused `Unauthenticated`.
    pub(super) fn refuse_unsigned(&mut self, caller: AppId, num: u16, now_ms: u64) -> ErrorCode {
        let now = self.clock(now_ms);
        match self.authorize(caller, &[Role::Telemetry], num, now) {
            Ok(()) => self.refuse_command(ErrorCode::Unauthenticated, now),
            Err(e) => e,
        }
    }

    fn refuse_command(&mut self, reason: ErrorCode, now: u64) -> ErrorCode {
        let utc = self.utc_ms(now);
        self.emit(
            Event::CommandRefused(CommandRefused {
                time_ms: utc,
                reason,
            }),
            now,
        );
        reason
    }

    /// The last counter accepted from each signer (clinic, then patient
    /// programmer).
    pub fn command_counters(&self) -> [u64; 2] {
        self.p.command_counters
    }
}
