//! Prescription verification: signature, device, serial, hardware limits.

use ed25519_dalek::{Signature, VerifyingKey};
use heapless::Vec;
use pump_protocol::prescription::{
    decode_body_with_pairing, signed_message, split_signed, Pairing, Prescription,
    MAX_SIGNED_MESSAGE_LEN, MAX_SIGNED_PRESCRIPTION_LEN,
};
use pump_protocol::ErrorCode;

use crate::config::BoardConfig;

/// A verified prescription and the exact bytes it arrived as (kept so that
/// its signature can be re-verified after a reset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPrescription {
    /// The decoded prescription.
    pub prescription: Prescription,
    /// Its pairing (format 2), or [`Pairing::FORMAT_1`].
    pub pairing: Pairing,
    /// The signed bytes.
    pub signed: Vec<u8, MAX_SIGNED_PRESCRIPTION_LEN>,
}

/// Whether `signature` is `key`'s Ed25519 signature of `message` (strict
/// verification). The one place the capsule verifies a signature, for
/// prescriptions and signed commands alike: kept out of line so the
/// verifier's code is linked once.
#[inline(never)]
pub(crate) fn signature_verifies(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let signature = Signature::from_bytes(signature);
    VerifyingKey::from_bytes(key)
        .map(|key| key.verify_strict(message, &signature).is_ok())
        .unwrap_or(false)
}

/// Verifies signed prescription bytes against the board: signature by a
/// clinic key (SR-RX-001), device id (SR-RX-002), serial above `serial_floor`
/// (SR-RX-003) and hardware limits (SR-RX-004). Nothing is changed; the
/// caller installs the result.
pub fn verify(
    config: &BoardConfig,
    signed: &[u8],
    serial_floor: u32,
) -> Result<VerifiedPrescription, ErrorCode> {
    let parts = split_signed(signed).map_err(|_| ErrorCode::MalformedPrescription)?;
    let mut message_buf = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let message = signed_message(parts.body, &mut message_buf)
        .map_err(|_| ErrorCode::MalformedPrescription)?;
    let signed_by_clinic = config
        .clinic_keys
        .iter()
        .any(|key| signature_verifies(key, message, parts.signature));
    if !signed_by_clinic {
        return Err(ErrorCode::InvalidSignature);
    }
    // Only signed bytes are parsed: an attacker cannot reach the decoder.
    let (prescription, pairing) =
        decode_body_with_pairing(parts.body).map_err(|_| ErrorCode::MalformedPrescription)?;
    if prescription.device_id != config.device_id {
        return Err(ErrorCode::WrongDevice);
    }
    if prescription.serial <= serial_floor {
        return Err(ErrorCode::ReplayedSerial);
    }
    config.check_limits(&prescription)?;
    config.check_pairing(&pairing)?;
    let signed = Vec::from_slice(signed).map_err(|()| ErrorCode::MalformedPrescription)?;
    Ok(VerifiedPrescription {
        prescription,
        pairing,
        signed,
    })
}
