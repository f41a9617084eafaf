//! Signed programmer commands (protocol 1.1, `docs/protocol.md` §5.5).
//!
//! Every host command that changes therapy or safety state travels inside an
//! [`crate::AuthenticatedCommand`] as
//!
//! ```text
//! postcard(CommandBody) | Ed25519 signature (64 bytes)
//! ```
//!
//! The signature covers [`COMMAND_SIGNING_DOMAIN`] followed by the body, so
//! neither a prescription signature nor any other use of the key verifies as
//! a command. The body binds the command to one implant (`device_id`), one
//! signer and a counter that must rise with every command that signer sends,
//! so a recorded command cannot be replayed, re-ordered or sent to another
//! pump. The pump verifies in its safety kernel (infusion-core); the host
//! signs (pumpctl). This crate only defines the layout and who may sign what.

pub use crate::command_layout::*;
use crate::MessageKind;

/// Who signs a command. Each signer has its own key and its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signer {
    /// The clinic's programmer: a clinic key the board trusts.
    Clinic,
    /// The patient's own therapy manager (PTM): the key the installed
    /// prescription pairs.
    PatientProgrammer,
}

impl Signer {
    /// Both signers, in code order.
    pub const ALL: [Signer; 2] = [Signer::Clinic, Signer::PatientProgrammer];

    /// The wire code (`CommandBody.signer`).
    pub const fn code(self) -> u8 {
        match self {
            Signer::Clinic => 1,
            Signer::PatientProgrammer => 2,
        }
    }

    /// The signer for a wire code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Signer::Clinic),
            2 => Some(Signer::PatientProgrammer),
            _ => None,
        }
    }

    /// Position in per-signer tables (counters).
    pub const fn index(self) -> usize {
        match self {
            Signer::Clinic => 0,
            Signer::PatientProgrammer => 1,
        }
    }

    /// Whether this signer may sign a command of `kind`. The clinic signs
    /// every command that changes therapy or safety state; the patient's
    /// PTM only asks for a patient bolus and silences alarms. Reads
    /// (`GetStatus`, `ReadLog`) are never wrapped, and a prescription
    /// carries its own signature.
    pub const fn may_sign(self, kind: MessageKind) -> bool {
        match self {
            Signer::Clinic => matches!(
                kind,
                MessageKind::ClinicianBolus
                    | MessageKind::Refill
                    | MessageKind::Suspend
                    | MessageKind::Resume
                    | MessageKind::AcknowledgeAlarm
                    | MessageKind::SetClock
                    | MessageKind::ClearFault
            ),
            Signer::PatientProgrammer => matches!(
                kind,
                MessageKind::PatientBolusRequest | MessageKind::AcknowledgeAlarm
            ),
        }
    }
}
