//! The simulator's host link as protocol 1.1 has it: the programmer signs
//! every command that changes therapy or safety state, and an attacker who
//! can reach the link sends what it can without the clinic's key.
//!
//! The simulated programmer signs with the simulator's TEST-ONLY clinic key
//! (`board::simulator_test_key`), the key the simulated board trusts, and
//! the patient's PTM with `board::simulator_ptm_key`, which the examples'
//! prescriptions pair; both through [`crate::cmdsign`]. Its
//! counter is the pump's UTC at sending, raised past the last one it used,
//! so a clock set backwards never makes the programmer repeat a counter.

use ed25519_dalek::SigningKey;
use pump_protocol::command_auth::Signer;
use pump_protocol::{AuthenticatedCommand, Message};

/// What an attacker on the link sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackMode {
    /// The plain 1.0 frame of the command, as before protocol 1.1.
    Unsigned,
    /// The command signed with a key of the attacker's own.
    Forged,
    /// The last command the programmer signed, recorded and sent again.
    Replay,
}

impl AttackMode {
    /// The script's name for the mode.
    pub fn name(self) -> &'static str {
        match self {
            AttackMode::Unsigned => "unsigned",
            AttackMode::Forged => "forged",
            AttackMode::Replay => "replay",
        }
    }

    /// The mode for a script name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Unsigned, Self::Forged, Self::Replay]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// The programmer's signing state and what an attacker has recorded.
pub struct LinkSigner {
    clinic_key: SigningKey,
    ptm_key: SigningKey,
    device_id: u32,
    last_counter: u64,
    last_ptm_counter: u64,
    last_signed: Option<Message>,
}

/// The attacker's own key: any key the board does not trust.
fn attacker_key() -> SigningKey {
    SigningKey::from_bytes(&[0xA5; 32])
}

/// Whether a 1.1 host must sign `message`.
pub fn needs_signature(message: &Message) -> bool {
    message
        .kind()
        .is_some_and(|kind| Signer::ALL.iter().any(|signer| signer.may_sign(kind)))
}

fn signed_frame(
    message: &Message,
    signer: Signer,
    key: &SigningKey,
    device_id: u32,
    counter: u64,
) -> Option<Message> {
    let signed = crate::cmdsign::sign_command(message, signer, device_id, counter, key).ok()?;
    Some(Message::AuthenticatedCommand(AuthenticatedCommand {
        signed_command: heapless::Vec::from_slice(&signed).ok()?,
    }))
}

impl LinkSigner {
    /// A programmer holding `clinic_key` for the implant `device_id`.
    pub fn new(clinic_key: SigningKey, device_id: u32) -> Self {
        Self {
            clinic_key,
            ptm_key: crate::board::simulator_ptm_key(),
            device_id,
            last_counter: 0,
            last_ptm_counter: 0,
            last_signed: None,
        }
    }

    /// What the patient's own programmer (PTM) sends for a patient bolus
    /// request at pump UTC `utc_ms`: signed with the simulator's TEST-ONLY
    /// PTM key, which the examples' prescriptions pair.
    pub fn ptm(&mut self, message: Message, utc_ms: u64) -> Message {
        self.last_ptm_counter = utc_ms.max(self.last_ptm_counter.saturating_add(1));
        signed_frame(
            &message,
            Signer::PatientProgrammer,
            &self.ptm_key,
            self.device_id,
            self.last_ptm_counter,
        )
        .unwrap_or(message)
    }

    /// What the programmer sends for `message` at pump UTC `utc_ms`: signed
    /// by the clinic if it must be, else as it is.
    pub fn programmer(&mut self, message: Message, utc_ms: u64) -> Message {
        if !needs_signature(&message) {
            return message;
        }
        self.last_counter = utc_ms.max(self.last_counter.saturating_add(1));
        match signed_frame(
            &message,
            Signer::Clinic,
            &self.clinic_key,
            self.device_id,
            self.last_counter,
        ) {
            Some(signed) => {
                self.last_signed = Some(signed.clone());
                signed
            }
            // A payload too large to sign is sent plain; the pump refuses it.
            None => message,
        }
    }

    /// What an attacker sends for `message` in `mode` (a replay ignores
    /// `message` and sends the last signed command, or `message` plain if
    /// there was none).
    pub fn attack(&self, mode: AttackMode, message: Message, utc_ms: u64) -> Message {
        match mode {
            AttackMode::Unsigned => message,
            AttackMode::Forged => signed_frame(
                &message,
                Signer::Clinic,
                &attacker_key(),
                self.device_id,
                utc_ms.max(self.last_counter.saturating_add(1)),
            )
            .unwrap_or(message),
            AttackMode::Replay => self.last_signed.clone().unwrap_or(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_protocol::command_auth::{decode_command_body, split_signed_command};
    use pump_protocol::{Resume, Suspend};

    fn counter_of(message: &Message) -> u64 {
        let Message::AuthenticatedCommand(a) = message else {
            panic!("not signed: {message:?}");
        };
        let parts = split_signed_command(&a.signed_command).unwrap();
        decode_command_body(parts.body).unwrap().counter
    }

    #[test]
    fn the_programmers_counter_rises_even_when_the_clock_goes_back() {
        let mut link = LinkSigner::new(SigningKey::from_bytes(&[1; 32]), 7);
        let first = link.programmer(Message::Suspend(Suspend {}), 1_000);
        let second = link.programmer(Message::Resume(Resume {}), 500);
        assert_eq!(counter_of(&first), 1_000);
        assert_eq!(counter_of(&second), 1_001);
        // Reads are not signed.
        let status = Message::GetStatus(pump_protocol::GetStatus {});
        assert_eq!(link.programmer(status.clone(), 2_000), status);
        // A replay is the last signed command, byte for byte.
        assert_eq!(
            link.attack(AttackMode::Replay, Message::Suspend(Suspend {}), 3_000),
            second
        );
    }
}
