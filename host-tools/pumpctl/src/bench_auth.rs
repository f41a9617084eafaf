//! What verifying a signed programmer command costs, against the keyed MAC
//! it was chosen over (`docs/safety/isolation.md`, "Why Ed25519"), measured
//! in the same run: the capsule's Ed25519 `verify_strict` over exactly what a
//! command signature covers, and an HMAC-SHA-256 over the same bytes.

use std::time::Instant;

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use pump_protocol::command_auth::{
    encode_command_body, signed_command_message, CommandBody, Signer, COMMAND_FORMAT,
    MAX_COMMAND_BODY_LEN, MAX_SIGNED_COMMAND_MESSAGE_LEN,
};
use sha2::{Digest, Sha256};

/// Verifications timed per method.
pub const ROUNDS: u32 = 2_000;

/// Nanoseconds per verification of each method.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct VerifyCost {
    /// Ed25519 `verify_strict` of a signed `ClinicianBolus`.
    pub ed25519_ns: u64,
    /// HMAC-SHA-256 of the same message (the alternative).
    pub hmac_sha256_ns: u64,
}

fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner_key = [0x36u8; 64];
    let mut outer_key = [0x5Cu8; 64];
    for (i, k) in key.iter().enumerate() {
        inner_key[i] ^= k;
        outer_key[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(inner_key)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(outer_key)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Times both methods over a realistic command.
pub fn measure() -> VerifyCost {
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let body = CommandBody {
        format: COMMAND_FORMAT,
        device_id: crate::board::SIM_DEVICE_ID,
        signer: Signer::Clinic.code(),
        counter: crate::board::SIM_EPOCH_UTC_MS,
        kind: pump_protocol::MessageKind::ClinicianBolus.code(),
        payload: heapless::Vec::from_slice(&[0xC8, 0x01, 0xC0, 0xA9, 0x07]).unwrap_or_default(),
    };
    let mut body_buf = [0u8; MAX_COMMAND_BODY_LEN];
    let body = encode_command_body(&body, &mut body_buf)
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let mut message_buf = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
    let message = signed_command_message(&body, &mut message_buf)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let signature: Signature = key.sign(&message);
    let public = key.verifying_key();

    let started = Instant::now();
    let mut valid = 0u32;
    for _ in 0..ROUNDS {
        valid += u32::from(public.verify_strict(&message, &signature).is_ok());
    }
    let ed25519 = started.elapsed();
    let mac_key = [0x24u8; 32];
    let expected = hmac_sha256(&mac_key, &message);
    let started = Instant::now();
    for _ in 0..ROUNDS {
        valid += u32::from(hmac_sha256(&mac_key, std::hint::black_box(&message)) == expected);
    }
    let mac = started.elapsed();
    debug_assert_eq!(valid, 2 * ROUNDS);
    let per = |d: std::time::Duration| {
        u64::try_from(d.as_nanos() / u128::from(ROUNDS)).unwrap_or(u64::MAX)
    };
    VerifyCost {
        ed25519_ns: per(ed25519),
        hmac_sha256_ns: per(mac),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key; padded to 32 with zeros it
        // is the same HMAC key block.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, b"what do ya want for nothing?");
        assert_eq!(
            crate::keys::hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
