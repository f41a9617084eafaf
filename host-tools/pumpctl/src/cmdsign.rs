//! Signed programmer commands (`docs/protocol.md` §5.5), the host half of
//! what infusion-core's `pump::auth` verifies:
//!
//! ```text
//! signed = postcard(CommandBody) || Ed25519(COMMAND_SIGNING_DOMAIN || body)
//! ```
//!
//! wrapped in an `AuthenticatedCommand` frame for the link. The layout and
//! who may sign what come from `pump_protocol::command_auth`, so that this
//! signer and the pump's verifier cannot disagree (SR-HOST-015).
//!
//! **The counter.** The pump accepts a command only if its counter is above
//! the last one it accepted from the same signer. [`counter_now`] uses the
//! host's UTC time in milliseconds: it needs no state on the host (no
//! counter file to lose, copy or roll back with a backup) and rises
//! strictly as long as the host clock does not go back and no two commands
//! are signed in the same millisecond ([`counter_now`] waits that
//! millisecond out). Every programmer signing as the same signer shares the
//! pump's one counter for that signer, so their clocks must agree too. If a
//! host clock went back (or another programmer's clock ran ahead), the pump
//! refuses the command `Replayed`: set the clock right, or give an explicit
//! counter above the last one accepted, which the pump's log names in its
//! last `CommandAuthenticated` event of that signer.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use pump_protocol::command_auth::{
    encode_command_body, signed_command_message, CommandBody, Signer, COMMAND_FORMAT,
    MAX_COMMAND_BODY_LEN, MAX_COMMAND_PAYLOAD_LEN, MAX_SIGNED_COMMAND_MESSAGE_LEN,
};
use pump_protocol::{
    encode_stream_frame_vec, AuthenticatedCommand, Frame, FrameError, Message, MessageKind,
};

/// Why a command was not signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandSignError {
    /// No signer signs this kind: reads (`GetStatus`, `ReadLog`) change
    /// nothing, a prescription carries its own signature, and events and
    /// responses are the pump's.
    NotASignedCommand {
        /// The message's wire kind.
        kind_code: u16,
    },
    /// The signer may not sign this kind (`Signer::may_sign`): the pump
    /// would refuse it `Unauthenticated`.
    SignerMayNotSign {
        /// Who tried.
        signer: Signer,
        /// What.
        kind: MessageKind,
    },
    /// The command's payload is longer than a command body holds.
    PayloadTooLarge {
        /// What.
        kind: MessageKind,
    },
    /// Counter 0: the pump's floor for each signer starts at 0 and it takes
    /// only a counter above it, so a command with counter 0 never runs.
    CounterZero,
    /// The host clock reads before 1970: no counter from it would be
    /// above the pump's floor.
    ClockBeforeEpoch,
    /// The frame could not be encoded.
    Frame(FrameError),
}

/// A signer's name as the command line and the messages write it.
pub fn signer_name(signer: Signer) -> &'static str {
    match signer {
        Signer::Clinic => "clinic",
        Signer::PatientProgrammer => "ptm",
    }
}

/// The kinds `signer` may sign, by name.
fn signable_by(signer: Signer) -> Vec<&'static str> {
    MessageKind::ALL
        .iter()
        .filter(|k| signer.may_sign(**k))
        .map(|k| k.name())
        .collect()
}

impl fmt::Display for CommandSignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotASignedCommand { kind_code } => {
                let name = MessageKind::from_code(*kind_code)
                    .map_or_else(|| format!("kind {kind_code:#06x}"), |k| k.name().to_string());
                write!(
                    f,
                    "{name} is not a command anyone signs (reads go unsigned, a prescription carries its own signature)"
                )
            }
            Self::SignerMayNotSign { signer, kind } => {
                let other = Signer::ALL
                    .iter()
                    .find(|s| s.may_sign(*kind))
                    .map_or_else(String::new, |s| {
                        format!("; sign it as {}", signer_name(*s))
                    });
                write!(
                    f,
                    "the {} signer may not sign {}: the pump would refuse it Unauthenticated (it signs only {}){other}",
                    signer_name(*signer),
                    kind.name(),
                    signable_by(*signer).join(", ")
                )
            }
            Self::PayloadTooLarge { kind } => write!(
                f,
                "the {} payload is longer than the {MAX_COMMAND_PAYLOAD_LEN} bytes a signed command holds",
                kind.name()
            ),
            Self::CounterZero => f.write_str(
                "counter 0: the pump takes only a counter above the last one it accepted from this signer (its floor starts at 0), so counter 0 never runs",
            ),
            Self::ClockBeforeEpoch => f.write_str(
                "the host clock reads before 1970-01-01: set it, or give the counter explicitly",
            ),
            Self::Frame(e) => write!(f, "cannot encode the frame: {e}"),
        }
    }
}

impl std::error::Error for CommandSignError {}

/// The command body for `message`, checked against who may sign it.
pub fn command_body(
    message: &Message,
    signer: Signer,
    device_id: u32,
    counter: u64,
) -> Result<CommandBody, CommandSignError> {
    let kind_code = message.kind_code();
    let kind = message
        .kind()
        .filter(|k| Signer::ALL.iter().any(|s| s.may_sign(*k)))
        .ok_or(CommandSignError::NotASignedCommand { kind_code })?;
    if !signer.may_sign(kind) {
        return Err(CommandSignError::SignerMayNotSign { signer, kind });
    }
    if counter == 0 {
        return Err(CommandSignError::CounterZero);
    }
    let mut buf = [0u8; MAX_COMMAND_PAYLOAD_LEN];
    let len = message
        .encode_payload(&mut buf)
        .map_err(|_| CommandSignError::PayloadTooLarge { kind })?;
    let payload = buf
        .get(..len)
        .and_then(|p| heapless::Vec::from_slice(p).ok())
        .ok_or(CommandSignError::PayloadTooLarge { kind })?;
    Ok(CommandBody {
        format: COMMAND_FORMAT,
        device_id,
        signer: signer.code(),
        counter,
        kind: kind_code,
        payload,
    })
}

/// The signed command bytes: `postcard(CommandBody) || signature`.
pub fn sign_command(
    message: &Message,
    signer: Signer,
    device_id: u32,
    counter: u64,
    key: &SigningKey,
) -> Result<Vec<u8>, CommandSignError> {
    let body = command_body(message, signer, device_id, counter)?;
    let kind = MessageKind::from_code(body.kind);
    let too_large = || CommandSignError::PayloadTooLarge {
        kind: kind.unwrap_or(MessageKind::AuthenticatedCommand),
    };
    let mut body_buf = [0u8; MAX_COMMAND_BODY_LEN];
    let body = encode_command_body(&body, &mut body_buf).map_err(|_| too_large())?;
    let mut message_buf = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
    let signed_message = signed_command_message(body, &mut message_buf).map_err(|_| too_large())?;
    let signature = key.sign(signed_message);
    let mut signed = body.to_vec();
    signed.extend_from_slice(&signature.to_bytes());
    Ok(signed)
}

/// The stream-encoded `AuthenticatedCommand` frame (`0x00 COBS(frame)
/// 0x00`) carrying the signed command; the pump echoes `sequence` in its
/// `Ack` or `Nack`.
pub fn authenticated_command_frame(
    message: &Message,
    signer: Signer,
    device_id: u32,
    counter: u64,
    key: &SigningKey,
    sequence: u32,
) -> Result<Vec<u8>, CommandSignError> {
    let signed = sign_command(message, signer, device_id, counter, key)?;
    let signed_command =
        heapless::Vec::from_slice(&signed).map_err(|()| CommandSignError::PayloadTooLarge {
            kind: MessageKind::AuthenticatedCommand,
        })?;
    let frame = Frame {
        sequence,
        flags: 0,
        message: Message::AuthenticatedCommand(AuthenticatedCommand { signed_command }),
    };
    encode_stream_frame_vec(&frame).map_err(CommandSignError::Frame)
}

/// The default counter: the host's UTC time in milliseconds (see the
/// module documentation for why, and for what to do when the host clock
/// went back).
pub fn counter_now() -> Result<u64, CommandSignError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .filter(|ms| *ms > 0)
        .ok_or(CommandSignError::ClockBeforeEpoch)?;
    // Two commands signed within one millisecond would share a counter and
    // the second be refused `Replayed`: let this millisecond pass before
    // anyone (this process or the next) reads the clock again.
    std::thread::sleep(std::time::Duration::from_millis(1));
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signature;
    use pump_protocol::command_auth::{decode_command_body, split_signed_command};
    use pump_protocol::{AlarmCode, ClinicianBolus, GetStatus, Refill, SetClock, Suspend};

    const DEVICE: u32 = 0x00C0_FFEE;

    fn clinic() -> SigningKey {
        crate::board::simulator_test_key()
    }

    fn refill() -> Message {
        // The largest payload a signer signs.
        Message::Refill(Refill {
            withdrawn_volume_nl: u32::MAX,
            added_volume_nl: u32::MAX,
            concentration_ug_per_ml: u32::MAX,
        })
    }

    #[test]
    fn sr_host_015_the_signature_verifies_strictly_over_domain_and_body() {
        // Verifies: SR-HOST-015
        let key = clinic();
        let signed = sign_command(&refill(), Signer::Clinic, DEVICE, 7, &key).unwrap();
        let parts = split_signed_command(&signed).unwrap();
        let mut buf = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
        let message = signed_command_message(parts.body, &mut buf).unwrap();
        let signature = Signature::from_bytes(parts.signature);
        assert!(key
            .verifying_key()
            .verify_strict(message, &signature)
            .is_ok());
        // The body alone, or under the prescription domain, does not verify:
        // a command signature is good for nothing else.
        assert!(key
            .verifying_key()
            .verify_strict(parts.body, &signature)
            .is_err());
        let mut rx_domain = pump_protocol::prescription::SIGNING_DOMAIN_V2.to_vec();
        rx_domain.extend_from_slice(parts.body);
        assert!(key
            .verifying_key()
            .verify_strict(&rx_domain, &signature)
            .is_err());
    }

    #[test]
    fn sr_host_015_the_body_round_trips_through_the_pumps_decoder() {
        // Verifies: SR-HOST-015
        for (message, signer) in [
            (refill(), Signer::Clinic),
            (
                Message::ClinicianBolus(ClinicianBolus {
                    dose_ug: 150,
                    duration_ms: 600_000,
                }),
                Signer::Clinic,
            ),
            (
                Message::SetClock(SetClock {
                    utc_time_ms: u64::MAX,
                }),
                Signer::Clinic,
            ),
            (
                Message::PatientBolusRequest(pump_protocol::PatientBolusRequest {}),
                Signer::PatientProgrammer,
            ),
            (
                Message::AcknowledgeAlarm(pump_protocol::AcknowledgeAlarm {
                    code: AlarmCode::ReservoirLow,
                }),
                Signer::PatientProgrammer,
            ),
        ] {
            let signed = sign_command(&message, signer, DEVICE, u64::MAX, &clinic()).unwrap();
            let body = decode_command_body(split_signed_command(&signed).unwrap().body).unwrap();
            assert_eq!(body.format, COMMAND_FORMAT);
            assert_eq!(body.device_id, DEVICE);
            assert_eq!(Signer::from_code(body.signer), Some(signer));
            assert_eq!(body.counter, u64::MAX);
            assert_eq!(body.kind, message.kind_code());
            assert_eq!(
                Message::decode_payload(body.kind, &body.payload).unwrap(),
                message
            );
        }
    }

    #[test]
    fn sr_host_015_a_command_the_signer_may_not_sign_is_refused() {
        // Verifies: SR-HOST-015
        let suspend = Message::Suspend(Suspend {});
        let err =
            sign_command(&suspend, Signer::PatientProgrammer, DEVICE, 1, &clinic()).unwrap_err();
        assert_eq!(
            err,
            CommandSignError::SignerMayNotSign {
                signer: Signer::PatientProgrammer,
                kind: MessageKind::Suspend
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("the ptm signer may not sign Suspend"),
            "{text}"
        );
        assert!(text.contains("sign it as clinic"), "{text}");
        let bolus = Message::PatientBolusRequest(pump_protocol::PatientBolusRequest {});
        assert_eq!(
            sign_command(&bolus, Signer::Clinic, DEVICE, 1, &clinic()),
            Err(CommandSignError::SignerMayNotSign {
                signer: Signer::Clinic,
                kind: MessageKind::PatientBolusRequest
            })
        );
        assert_eq!(
            sign_command(
                &Message::GetStatus(GetStatus {}),
                Signer::Clinic,
                DEVICE,
                1,
                &clinic()
            ),
            Err(CommandSignError::NotASignedCommand {
                kind_code: MessageKind::GetStatus.code()
            })
        );
        assert_eq!(
            sign_command(&suspend, Signer::Clinic, DEVICE, 0, &clinic()),
            Err(CommandSignError::CounterZero)
        );
    }

    #[test]
    fn sr_host_015_the_frame_carries_the_signed_command() {
        // Verifies: SR-HOST-015
        let suspend = Message::Suspend(Suspend {});
        let bytes = authenticated_command_frame(&suspend, Signer::Clinic, DEVICE, 42, &clinic(), 9)
            .unwrap();
        let signed = sign_command(&suspend, Signer::Clinic, DEVICE, 42, &clinic()).unwrap();
        let mut frames = Vec::new();
        pump_protocol::StreamDecoder::new().feed(&bytes, |item| {
            if let pump_protocol::StreamItem::Frame { frame, .. } = item {
                frames.push(frame);
            }
        });
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].sequence(), 9);
        let Message::AuthenticatedCommand(m) = &frames[0].message else {
            panic!("not an AuthenticatedCommand: {:?}", frames[0].message);
        };
        // Ed25519 is deterministic: the same command signs to the same bytes.
        assert_eq!(m.signed_command.as_slice(), signed.as_slice());
    }

    #[test]
    fn the_counter_of_two_commands_rises() {
        let a = counter_now().unwrap();
        let b = counter_now().unwrap();
        assert!(b > a, "{a} {b}");
        // After 2001-09-09: a clock this far wrong would be a broken host.
        assert!(a > 1_000_000_000_000);
    }
}
