//! Clinic signing keys: generation (`pumpctl keygen`), key files, loading.
//!
//! A private key file is text: comment lines starting with `#`, then the
//! 32-byte Ed25519 seed as 64 hex digits. A public key file (`KEY.pub`) is
//! the 32-byte verifying key as 64 hex digits.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::{Error, Result};

/// Header written above the seed.
const PRIVATE_HEADER: &str =
    "# pumpctl Ed25519 clinic signing key (private seed, hex). Keep it secret.\n";

/// A new key from the operating system's randomness.
pub fn generate() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| {
        Error(format!(
            "cannot get randomness from the operating system: {e}"
        ))
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The private key file's text.
pub fn private_key_text(key: &SigningKey) -> String {
    format!("{PRIVATE_HEADER}{}\n", hex(&key.to_bytes()))
}

/// The public key file's text.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("{}\n", hex(key.as_bytes()))
}

/// The public key as a Rust array literal for a board's `clinic_keys`.
pub fn rust_literal(key: &VerifyingKey) -> String {
    let bytes: Vec<String> = key
        .as_bytes()
        .iter()
        .map(|b| format!("0x{b:02x}"))
        .collect();
    let mut out = String::from("[\n");
    for chunk in bytes.chunks(8) {
        out.push_str("    ");
        out.push_str(&chunk.join(", "));
        out.push_str(",\n");
    }
    out.push(']');
    out
}

/// Writes a private key file readable only by its owner (0600 on Unix).
pub fn write_private(path: &Path, key: &SigningKey) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error(format!(
                "{}: already exists; refusing to overwrite a key (remove it first)",
                path.display()
            ))
        } else {
            crate::error::io_error(path, "create", &e)
        }
    })?;
    file.write_all(private_key_text(key).as_bytes())
        .map_err(|e| crate::error::io_error(path, "write", &e))
}

/// Reads a private key file.
pub fn load_private(path: &Path) -> Result<SigningKey> {
    let text = crate::error::read_text(path)?;
    let seed = parse_hex32(&text).ok_or_else(|| {
        Error(format!(
            "{}: expected an Ed25519 private key: 64 hex digits (as written by `pumpctl keygen`)",
            path.display()
        ))
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a public key: a `.pub` file, or a private key file (its public half).
pub fn load_public(path: &Path) -> Result<[u8; 32]> {
    let text = crate::error::read_text(path)?;
    let bytes = parse_hex32(&text).ok_or_else(|| {
        Error(format!(
            "{}: expected an Ed25519 key: 64 hex digits (KEY.pub or KEY from `pumpctl keygen`)",
            path.display()
        ))
    })?;
    if text.contains("private seed") {
        return Ok(SigningKey::from_bytes(&bytes).verifying_key().to_bytes());
    }
    VerifyingKey::from_bytes(&bytes)
        .map(|k| k.to_bytes())
        .map_err(|_| {
            Error(format!(
                "{}: not a valid Ed25519 public key",
                path.display()
            ))
        })
}

/// The 32 bytes of the first non-comment line, if it is 64 hex digits.
fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    if line.len() != 64 || !line.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(line.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_round_trips() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let text = private_key_text(&key);
        assert_eq!(parse_hex32(&text), Some([3; 32]));
        assert_eq!(parse_hex32("# only a comment\n"), None);
        assert_eq!(parse_hex32("zz"), None);
        assert!(rust_literal(&key.verifying_key()).starts_with("[\n    0x"));
    }
}
