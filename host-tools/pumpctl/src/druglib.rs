//! The built-in drug library (`data/drug-library.toml`). Illustrative, not
//! clinical guidance: see the sources in the file.

use serde::Deserialize;

use crate::error::{toml_error, Result};

/// The library text compiled into pumpctl.
pub const BUILTIN: &str = include_str!("../data/drug-library.toml");

/// One drug's limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrugEntry {
    /// Name as written in prescriptions.
    pub name: String,
    /// Lowest accepted concentration.
    pub concentration_min_ug_per_ml: u32,
    /// Highest accepted concentration.
    pub concentration_max_ug_per_ml: u32,
    /// Lowest daily dose in routine use: a 24 h dose below it is an error
    /// (and one far below it that is plausible in mg gets the mix-up hint).
    pub usual_min_daily_dose_ug: u32,
    /// Highest daily dose in routine use: a 24 h dose above it is an error
    /// (SR-HOST-012).
    pub usual_max_daily_dose_ug: u32,
    /// The source's absolute maximum: above this, error.
    pub hard_max_daily_dose_ug: u32,
    /// For opioids, about how many times as potent as intrathecal morphine
    /// (named when a dose is outside the usual range).
    #[serde(default)]
    pub potency_vs_morphine: Option<u32>,
    /// Shortest patient bolus lockout the library accepts (SR-HOST-011).
    pub min_patient_bolus_lockout_min: u32,
    /// Stopping this drug abruptly is dangerous: a basal of 0 needs the
    /// prescription to say so on purpose (SR-HOST-009).
    pub abrupt_withdrawal_dangerous: bool,
    /// Where the figures come from.
    pub source: String,
    /// Which figures are design values of this library (not from the
    /// source), and why.
    pub design_values: String,
}

/// Which library this is, as its file says.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LibraryVersion {
    /// The library's version name.
    pub version: String,
    /// The date from which the clinic uses it (ISO 8601).
    pub effective_date: String,
}

/// The drug library.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrugLibrary {
    /// Which library this is.
    pub library: LibraryVersion,
    /// Every drug.
    pub drug: Vec<DrugEntry>,
    /// SHA-256 of the file's bytes, lower-case hex (set by [`parse`](Self::parse)).
    #[serde(skip)]
    pub sha256_hex: String,
}

impl DrugLibrary {
    /// The built-in library.
    pub fn builtin() -> Result<Self> {
        Self::parse(std::path::Path::new("<built-in drug library>"), BUILTIN)
    }

    /// Parses a library file.
    pub fn parse(path: &std::path::Path, text: &str) -> Result<Self> {
        use sha2::{Digest, Sha256};
        let mut library: Self = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        library.sha256_hex = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(library)
    }

    /// One line naming this library: version, effective date and digest
    /// (SR-HOST-019).
    pub fn identity(&self) -> String {
        format!(
            "drug library {} (effective {}, sha-256 {})",
            self.library.version, self.library.effective_date, self.sha256_hex
        )
    }

    /// The entry for a drug name (case-insensitive).
    pub fn find(&self, name: &str) -> Option<&DrugEntry> {
        self.drug.iter().find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// Every name.
    pub fn names(&self) -> Vec<&str> {
        self.drug.iter().map(|d| d.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_library_parses_and_is_consistent() {
        let lib = DrugLibrary::builtin().unwrap();
        assert!(lib.find("Baclofen").is_some());
        assert!(lib.find("morphine").is_some());
        for d in &lib.drug {
            assert!(d.concentration_min_ug_per_ml <= d.concentration_max_ug_per_ml);
            assert!(0 < d.usual_min_daily_dose_ug);
            assert!(d.usual_min_daily_dose_ug <= d.usual_max_daily_dose_ug);
            assert!(d.usual_max_daily_dose_ug <= d.hard_max_daily_dose_ug);
            assert!(d.min_patient_bolus_lockout_min > 0);
            assert!(d.min_patient_bolus_lockout_min <= 1440);
            assert!(!d.source.is_empty());
            assert!(!d.design_values.is_empty());
        }
    }

    #[test]
    fn sr_host_019_the_library_is_named_by_its_version_and_the_digest_of_its_bytes() {
        // Verifies: SR-HOST-019
        let lib = DrugLibrary::builtin().unwrap();
        assert_eq!(lib.sha256_hex.len(), 64);
        assert!(lib.identity().contains(&lib.sha256_hex));
        assert!(lib.identity().contains(&lib.library.version));
        // Any change of the bytes changes the digest, even with the same
        // version: the record tells an edited file from the released one.
        let edited = BUILTIN.replace(
            "min_patient_bolus_lockout_min = ",
            "min_patient_bolus_lockout_min =  ",
        );
        let other = DrugLibrary::parse(std::path::Path::new("x"), &edited).unwrap();
        assert_eq!(other.library, lib.library);
        assert_ne!(other.sha256_hex, lib.sha256_hex);
        // A library without its version is refused.
        let bare = BUILTIN.replace("[library]", "[unnamed]");
        assert!(DrugLibrary::parse(std::path::Path::new("x"), &bare).is_err());
    }

    #[test]
    fn sr_host_012_hydromorphone_usual_range_follows_its_potency() {
        // Verifies: SR-HOST-012
        let lib = DrugLibrary::builtin().unwrap();
        let m = lib.find("morphine").unwrap();
        let h = lib.find("hydromorphone").unwrap();
        let ratio = h.potency_vs_morphine.unwrap();
        assert_eq!(ratio, 5);
        assert_eq!(m.potency_vs_morphine, Some(1));
        // The usual range is morphine's divided by the potency, so a morphine
        // dose in the upper part of its range is outside hydromorphone's.
        assert_eq!(h.usual_min_daily_dose_ug * ratio, m.usual_min_daily_dose_ug);
        assert_eq!(h.usual_max_daily_dose_ug * ratio, m.usual_max_daily_dose_ug);
    }

    #[test]
    fn sr_host_009_only_baclofen_is_marked_dangerous_to_withdraw() {
        // Verifies: SR-HOST-009
        let lib = DrugLibrary::builtin().unwrap();
        for d in &lib.drug {
            assert_eq!(
                d.abrupt_withdrawal_dangerous,
                d.name == "baclofen",
                "{}",
                d.name
            );
        }
    }
}
