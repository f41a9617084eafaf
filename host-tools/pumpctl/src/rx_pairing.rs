//! The format-2 tables of a prescription file (`[pairing]`,
//! `[clinician_bolus_limits]`) as parsed, apart from their rules
//! ([`crate::pairing`]) so that the file's reader ([`crate::rx`]) and the
//! rules can both use them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// `[pairing]`: the patient's own therapy manager (PTM), exactly one of
/// the two keys.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingToml {
    /// The PTM's Ed25519 public key, 64 hex digits.
    pub ptm_public_key: Option<String>,
    /// A file holding it (`KEY.pub` from `pumpctl keygen`), relative to the
    /// prescription file.
    pub ptm_public_key_file: Option<PathBuf>,
    /// The key read from `ptm_public_key_file` when the file was parsed.
    #[serde(skip)]
    pub key_from_file: Option<[u8; 32]>,
}

/// `[clinician_bolus_limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicianBolusLimitsToml {
    /// Most clinician boluses started in any rolling 24 h.
    pub max_per_24h: u8,
    /// Shortest time between the starts of two clinician boluses.
    pub min_interval_min: u32,
}

/// Reads `ptm_public_key_file` (relative to the prescription file at
/// `rx_path`) into the parsed file, so that checking stays free of I/O.
pub fn read_key_file(pairing: &mut Option<PairingToml>, rx_path: &Path) -> Result<()> {
    let Some(pairing) = pairing.as_mut() else {
        return Ok(());
    };
    let Some(file) = &pairing.ptm_public_key_file else {
        return Ok(());
    };
    let path = rx_path.parent().unwrap_or(Path::new("")).join(file);
    let key = crate::keys::load_public(&path).map_err(|e| {
        Error(format!(
            "{}: pairing.ptm_public_key_file: {e}",
            rx_path.display()
        ))
    })?;
    pairing.key_from_file = Some(key);
    Ok(())
}
