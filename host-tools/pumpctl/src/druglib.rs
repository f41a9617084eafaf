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
    /// Lowest dose in routine use (for mg/µg mix-up hints).
    pub typical_min_daily_dose_ug: u32,
    /// Above this: warning.
    pub soft_max_daily_dose_ug: u32,
    /// Above this: error.
    pub hard_max_daily_dose_ug: u32,
    /// Where the figures come from.
    pub source: String,
}

/// The drug library.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrugLibrary {
    /// Every drug.
    pub drug: Vec<DrugEntry>,
}

impl DrugLibrary {
    /// The built-in library.
    pub fn builtin() -> Result<Self> {
        Self::parse(std::path::Path::new("<built-in drug library>"), BUILTIN)
    }

    /// Parses a library file.
    pub fn parse(path: &std::path::Path, text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| toml_error(path, text, &e))
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
            assert!(d.typical_min_daily_dose_ug <= d.soft_max_daily_dose_ug);
            assert!(d.soft_max_daily_dose_ug <= d.hard_max_daily_dose_ug);
            assert!(!d.source.is_empty());
        }
    }
}
