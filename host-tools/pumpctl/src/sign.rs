//! Signing: `postcard(Prescription) || Ed25519(SIGNING_DOMAIN || body)`,
//! exactly as `pump_protocol::prescription` lays it out and
//! `infusion-core`'s `rx::verify` checks it, wrapped in an
//! `InstallPrescription` frame for the link.

use ed25519_dalek::{Signer, SigningKey};
use pump_protocol::prescription::{
    encode_body, signed_message, Prescription, MAX_PRESCRIPTION_BODY_LEN, MAX_SIGNED_MESSAGE_LEN,
};
use pump_protocol::{encode_stream_frame_vec, Frame, InstallPrescription, Message};

use crate::error::{Error, Result};

/// The signed prescription bytes.
pub fn sign(rx: &Prescription, key: &SigningKey) -> Result<Vec<u8>> {
    let mut body_buf = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body(rx, &mut body_buf)
        .map_err(|e| Error(format!("cannot encode the prescription: {e:?}")))?
        .to_vec();
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
