//! Signing: `body || Ed25519(domain || body)`, exactly as
//! `pump_protocol::prescription` lays it out and `infusion-core`'s
//! `rx::verify` checks it, wrapped in an `InstallPrescription` frame for the
//! link. `rx sign` signs format 2 ([`sign_v2`]: `postcard(Prescription) ||
//! postcard(Pairing)` under `SIGNING_DOMAIN_V2`); [`sign`] signs format 1,
//! which the simulator still installs (no PTM, format-1 clinician limits).

use ed25519_dalek::{Signer, SigningKey};
use pump_protocol::prescription::{
    encode_body, encode_body_v2, signed_message, Pairing, Prescription, MAX_PRESCRIPTION_BODY_LEN,
    MAX_SIGNED_MESSAGE_LEN,
};
use pump_protocol::{encode_stream_frame_vec, Frame, InstallPrescription, Message};

use crate::error::{Error, Result};

/// How close to `u32::MAX` a serial draws a warning: within this many
/// serials of the end, the implant has that few prescriptions left for the
/// rest of its life (the capsule accepts only a serial above the last).
pub const SERIAL_NEAR_END: u32 = 1_000;

/// A serial `rx sign` refuses (SR-HOST-013).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialError {
    /// Serial 0: the pump accepts only a serial above its floor, which
    /// starts at 0, so a prescription with serial 0 can never be installed.
    Zero,
}

impl std::fmt::Display for SerialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Zero => f.write_str(
                "--serial 0: the pump installs only a serial above the last one (its floor starts at 0), so serial 0 can never be installed; use the installed serial + 1",
            ),
        }
    }
}

/// A serial `rx sign` signs only with `--accept-warnings` (SR-HOST-013).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SerialNearEnd {
    /// Serials still above this one.
    pub left: u32,
}

impl std::fmt::Display for SerialNearEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.left == 0 {
            write!(
                f,
                "{} is the last serial there is: the pump can never take another prescription after it",
                u32::MAX
            )
        } else {
            write!(
                f,
                "{} leaves only {} serial(s) above it for every later prescription of this implant (within {SERIAL_NEAR_END} of the end)",
                u32::MAX - self.left,
                self.left
            )
        }
    }
}

/// Checks a prescription serial before signing: 0 is refused, a serial
/// within [`SERIAL_NEAR_END`] of `u32::MAX` is a warning.
pub fn check_serial(serial: u32) -> std::result::Result<Option<SerialNearEnd>, SerialError> {
    if serial == 0 {
        return Err(SerialError::Zero);
    }
    let left = u32::MAX - serial;
    Ok((left <= SERIAL_NEAR_END).then_some(SerialNearEnd { left }))
}

/// The signed format-1 prescription bytes (`rx.format` must be 1).
pub fn sign(rx: &Prescription, key: &SigningKey) -> Result<Vec<u8>> {
    let mut body_buf = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body(rx, &mut body_buf)
        .map_err(|e| Error(format!("cannot encode the prescription: {e:?}")))?
        .to_vec();
    sign_body(body, key)
}

/// The signed format-2 prescription bytes (`rx.format` must be 2): the
/// prescription, then its pairing.
pub fn sign_v2(rx: &Prescription, pairing: &Pairing, key: &SigningKey) -> Result<Vec<u8>> {
    let mut body_buf = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body_v2(rx, pairing, &mut body_buf)
        .map_err(|e| Error(format!("cannot encode the prescription: {e:?}")))?
        .to_vec();
    sign_body(body, key)
}

/// Appends the signature over the domain of the body's format.
fn sign_body(body: Vec<u8>, key: &SigningKey) -> Result<Vec<u8>> {
    let mut msg_buf = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let message = signed_message(&body, &mut msg_buf)
        .map_err(|e| Error(format!("cannot build the signed message: {e:?}")))?;
    let signature = key.sign(message);
    let mut signed = body;
    signed.extend_from_slice(&signature.to_bytes());
    Ok(signed)
}

/// The `InstallPrescription` message for signed bytes.
pub fn install_message(rx: &Prescription, signed: &[u8]) -> Result<Message> {
    let signed_prescription = heapless::Vec::from_slice(signed)
        .map_err(|()| Error("the signed prescription is too long for one frame".into()))?;
    Ok(Message::InstallPrescription(InstallPrescription {
        device_id: rx.device_id,
        prescription_serial: rx.serial,
        signed_prescription,
    }))
}

/// The stream-encoded install frame (`0x00 COBS(frame) 0x00`).
pub fn install_frame(rx: &Prescription, key: &SigningKey, sequence: u32) -> Result<Vec<u8>> {
    let signed = sign(rx, key)?;
    let frame = Frame {
        sequence,
        flags: 0,
        message: install_message(rx, &signed)?,
    };
    encode_stream_frame_vec(&frame).map_err(|e| Error(format!("cannot encode the frame: {e}")))
}

/// The stream-encoded install frame of a format-2 prescription.
pub fn install_frame_v2(
    rx: &Prescription,
    pairing: &Pairing,
    key: &SigningKey,
    sequence: u32,
) -> Result<Vec<u8>> {
    let signed = sign_v2(rx, pairing, key)?;
    let frame = Frame {
        sequence,
        flags: 0,
        message: install_message(rx, &signed)?,
    };
    encode_stream_frame_vec(&frame).map_err(|e| Error(format!("cannot encode the frame: {e}")))
}

/// The signed prescription bytes inside an install frame file (the first
/// `InstallPrescription` frame in the stream).
pub fn signed_from_install_stream(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    let mut decoder = pump_protocol::StreamDecoder::new();
    decoder.feed(bytes, |item| {
        if let pump_protocol::StreamItem::Frame { frame, .. } = item {
            if let Message::InstallPrescription(m) = frame.message {
                if found.is_none() {
                    found = Some(m.signed_prescription.to_vec());
                }
            }
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_host_013_serial_zero_is_refused_and_the_end_of_the_range_warned() {
        // Verifies: SR-HOST-013
        assert_eq!(check_serial(0), Err(SerialError::Zero));
        assert_eq!(check_serial(1), Ok(None));
        assert_eq!(check_serial(u32::MAX - SERIAL_NEAR_END - 1), Ok(None));
        assert_eq!(
            check_serial(u32::MAX - SERIAL_NEAR_END),
            Ok(Some(SerialNearEnd {
                left: SERIAL_NEAR_END
            }))
        );
        assert_eq!(check_serial(u32::MAX), Ok(Some(SerialNearEnd { left: 0 })));
        assert!(SerialNearEnd { left: 0 }
            .to_string()
            .contains("never take another prescription"));
    }
}
