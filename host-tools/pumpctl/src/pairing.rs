//! Prescription format 2 (`docs/protocol.md` §5.4): the `[pairing]` and
//! `[clinician_bolus_limits]` tables of a prescription file, their
//! `rx check` rules, and the checked prescription `rx sign` signs.
//!
//! ```toml
//! [pairing]
//! ptm_public_key = "<64 hex digits>"      # or ptm_public_key_file = "ptm.key.pub"
//!
//! [clinician_bolus_limits]
//! max_per_24h = 2
//! min_interval_min = 120
//! ```
//!
//! The rules (SR-HOST-016, SR-HOST-017): a patient bolus without a paired
//! PTM is an error, since the pump refuses every PTM request over the link
//! `NotPaired`; a clinician preset without written limits is a warning
//! naming the format-1 defaults the pump then applies; a clinician preset
//! with a count of 0 is an error; a count whose boluses of the envelope's
//! largest size exceed the daily maximum is a warning.

use ed25519_dalek::VerifyingKey;
use infusion_core::HardwareLimits;
use pump_protocol::prescription::{
    ClinicianBolusLimits, Pairing, Prescription, PRESCRIPTION_FORMAT_V2,
};

use crate::druglib::DrugLibrary;

use crate::rx::{CheckReport, RxFile};
pub use crate::rx_pairing::{ClinicianBolusLimitsToml, PairingToml};
use crate::units::MS_PER_MIN;

/// A prescription that passed every check, ready to sign as format 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signable {
    /// The prescription fields, `format` = 2.
    pub prescription: Prescription,
    /// What format 2 adds.
    pub pairing: Pairing,
}

/// [`crate::rx::check`] and the format-2 rules: the report of both, and
/// the format-2 prescription with its pairing when nothing is an error.
pub fn check_v2(
    rx: &RxFile,
    limits: &HardwareLimits,
    library: &DrugLibrary,
    device_id: u32,
    serial: u32,
    issued_time_ms: u64,
) -> (CheckReport, Option<Signable>) {
    let (mut r, prescription) =
        crate::rx::check(rx, limits, library, device_id, serial, issued_time_ms);
    let pairing = check_pairing(&mut r, rx);
    // Stable: the format-1 findings keep their order, errors first.
    r.problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    if r.has_errors() {
        return (r, None);
    }
    let signable = prescription
        .zip(pairing)
        .map(|(prescription, pairing)| Signable {
            prescription: Prescription {
                format: PRESCRIPTION_FORMAT_V2,
                ..prescription
            },
            pairing,
        });
    (r, signable)
}

/// The PTM key the file pairs: `Ok(None)` when it pairs none, `Err` (already
/// reported) when it is unusable.
fn ptm_key(r: &mut CheckReport, p: &PairingToml) -> std::result::Result<Option<[u8; 32]>, ()> {
    let (field, bytes) = match (&p.ptm_public_key, &p.ptm_public_key_file) {
        (Some(_), Some(_)) | (None, None) => {
            r.error(
                "pairing",
                "give exactly one of ptm_public_key (64 hex digits) or ptm_public_key_file",
            );
            return Err(());
        }
        (Some(hex), None) => (
            "pairing.ptm_public_key",
            parse_hex_key(hex).ok_or_else(|| {
                r.error(
                    "pairing.ptm_public_key",
                    format!("`{hex}`: expected an Ed25519 public key, 64 hex digits"),
                );
            })?,
        ),
        (None, Some(_)) => (
            "pairing.ptm_public_key_file",
            p.key_from_file.ok_or_else(|| {
                r.error("pairing.ptm_public_key_file", "the key file was not read");
            })?,
        ),
    };
    if VerifyingKey::from_bytes(&bytes).is_err() {
        r.error(field, "not a valid Ed25519 public key");
        return Err(());
    }
    Ok(Some(bytes))
}

fn parse_hex_key(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The format-2 rules; the pairing when its own fields are usable.
fn check_pairing(r: &mut CheckReport, rx: &RxFile) -> Option<Pairing> {
    let ptm = match &rx.pairing {
        Some(p) => ptm_key(r, p).ok()?,
        None => None,
    };
    if ptm.is_none() && rx.patient_bolus.is_some() {
        r.error(
            "pairing.ptm_public_key",
            "the therapy prescribes patient boluses but pairs no patient programmer (PTM): the pump would refuse every request over the link NotPaired — give the PTM's public key under [pairing]",
        );
    }
    let default = ClinicianBolusLimits::FORMAT_1;
    let preset = rx.clinician_bolus.is_some();
    let clinician = match &rx.clinician_bolus_limits {
        None => {
            if preset {
                r.warn(
                    "clinician_bolus_limits",
                    format!(
                        "missing: the pump allows clinician boluses under the format-1 defaults, at most {} per 24 h, starts at least {} min apart — write [clinician_bolus_limits] with max_per_24h and min_interval_min",
                        default.max_per_24h,
                        u64::from(default.min_interval_ms) / MS_PER_MIN
                    ),
                );
            }
            default
        }
        Some(l) => {
            if l.max_per_24h == 0 && preset {
                r.error(
                    "clinician_bolus_limits.max_per_24h",
                    "0 clinician boluses per 24 h: the pump would refuse the [clinician_bolus] preset every time (ClinicianBolusLimit) — remove the preset, or allow at least 1",
                );
            }
            let min_interval_ms = u32::try_from(u64::from(l.min_interval_min) * MS_PER_MIN)
                .ok()
                .or_else(|| {
                    r.error(
                        "clinician_bolus_limits.min_interval_min",
                        format!(
                            "{} min does not fit the pump's 32-bit milliseconds (at most {} min)",
                            l.min_interval_min,
                            u64::from(u32::MAX) / MS_PER_MIN
                        ),
                    );
                    None
                })?;
            ClinicianBolusLimits {
                max_per_24h: l.max_per_24h,
                min_interval_ms,
            }
        }
    };
    let env = &rx.envelope;
    let worst = u64::from(clinician.max_per_24h) * u64::from(env.max_bolus_ug);
    if worst > u64::from(env.max_daily_dose_ug) {
        r.warn(
            "clinician_bolus_limits.max_per_24h",
            format!(
                "{} clinician boluses of up to envelope.max_bolus_ug ({} µg) are {worst} µg, above envelope.max_daily_dose_ug ({} µg){}: once they use up the day's maximum the pump refuses basal delivery too",
                clinician.max_per_24h,
                env.max_bolus_ug,
                env.max_daily_dose_ug,
                if rx.clinician_bolus_limits.is_none() {
                    " (the format-1 default count)"
                } else {
                    ""
                }
            ),
        );
    }
    let pairing = Pairing {
        ptm_public_key: ptm,
        clinician_bolus: clinician,
    };
    // The capsule's own check, so that what passes here installs.
    if crate::board::board_config(&[])
        .check_pairing(&pairing)
        .is_err()
    {
        r.error(
            "clinician_bolus_limits.min_interval_min",
            format!(
                "{} min is longer than the pump's 24 h window ({} min): the pump remembers a clinician bolus for 24 h only, so it refuses this pairing (OutsideHardwareLimits)",
                u64::from(pairing.clinician_bolus.min_interval_ms) / MS_PER_MIN,
                infusion_core::ledger::WINDOW_MS / MS_PER_MIN
            ),
        );
    }
    r.summary
        .extend(pairing_lines(&pairing, rx.clinician_bolus_limits.is_none()));
    Some(pairing)
}

/// Summary lines of a pairing, as `rx check`, `rx sign` and `decode` show
/// it; `defaulted` says the limits are the format-1 defaults.
pub fn pairing_lines(pairing: &Pairing, defaulted: bool) -> Vec<String> {
    let ptm = match pairing.ptm_public_key {
        Some(key) => format!(
            "  pairing: PTM {} may ask for patient boluses and silence alarms",
            crate::keys::hex(&key)
        ),
        None => "  pairing: no PTM: patient bolus requests over the link are refused NotPaired"
            .to_string(),
    };
    let c = pairing.clinician_bolus;
    let limits = format!(
        "  clinician boluses: at most {} per 24 h, starts at least {} min apart{}",
        c.max_per_24h,
        u64::from(c.min_interval_ms) / MS_PER_MIN,
        if defaulted {
            " (format-1 defaults: no [clinician_bolus_limits])"
        } else {
            ""
        }
    );
    vec![ptm, limits]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_parse_exactly() {
        let key = crate::board::simulator_ptm_key().verifying_key().to_bytes();
        assert_eq!(parse_hex_key(&crate::keys::hex(&key)), Some(key));
        assert_eq!(parse_hex_key("abcd"), None);
        assert_eq!(parse_hex_key(&"g".repeat(64)), None);
        assert_eq!(parse_hex_key(&"é".repeat(32)), None);
    }

    #[test]
    fn pairing_lines_name_the_defaults() {
        let lines = pairing_lines(&Pairing::FORMAT_1, true);
        assert!(lines[0].contains("no PTM"));
        assert!(lines[1]
            .contains("at most 4 per 24 h, starts at least 60 min apart (format-1 defaults"));
    }
}
