//! The fleet's fault profile: how often each fault happens to a patient, how
//! patients use their PTM, and how late refills come (a TOML file, checked
//! here; `examples/fleet-profile.toml` is the default). Rates are integers:
//! events per 1000 patient-years. The numbers a fleet run estimates are only
//! as good as this file.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// The built-in profile (`examples/fleet-profile.toml`).
pub const DEFAULT_PROFILE: &str = include_str!("../../../../examples/fleet-profile.toml");
/// Its name in outputs.
pub const DEFAULT_PROFILE_NAME: &str = "examples/fleet-profile.toml";

/// At most one event of a kind per day per patient (the generator draws a
/// day at a time).
pub const MAX_RATE_PER_1000_PATIENT_YEARS: u32 = 365_000;
/// The longest fault episode (7 days).
pub const MAX_EPISODE_MIN: u32 = 7 * 24 * 60;

/// Why a profile is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    /// Not valid TOML for the profile's keys.
    Syntax(String),
    /// A value out of range: the key and what is expected.
    Invalid {
        /// The key (`faults.stall.per_1000_patient_years`).
        key: String,
        /// What is expected.
        expected: String,
    },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Syntax(m) => f.write_str(m),
            ProfileError::Invalid { key, expected } => write!(f, "{key}: expected {expected}"),
        }
    }
}

/// One kind of fault: its rate and how long an episode lasts.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRate {
    /// Episodes per 1000 patient-years.
    pub per_1000_patient_years: u32,
    /// Episode length in minutes, `[min, max]` (uniform): until the stall or
    /// occlusion is cleared, the power is back, the app is restarted.
    #[serde(default)]
    pub duration_min: [u32; 2],
}

/// The faults.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Motor stalls (cleared by the clinic after `duration_min`).
    #[serde(default)]
    pub stall: FaultRate,
    /// Catheter occlusions.
    #[serde(default)]
    pub occlusion: FaultRate,
    /// Power losses (down for `duration_min`).
    #[serde(default)]
    pub power_loss: FaultRate,
    /// Dosing-app hangs (restarted by the kernel after `duration_min`).
    #[serde(default)]
    pub dosing_hang: FaultRate,
    /// Forged signed commands on the link (a clinician bolus).
    #[serde(default)]
    pub forged_command: FaultRate,
    /// Replayed signed commands (the programmer's last command, recorded).
    #[serde(default)]
    pub replayed_command: FaultRate,
}

/// Clinic refills.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Refills {
    /// Days between planned refills.
    pub interval_days: u32,
    /// Volume filled, µL (the residual is withdrawn).
    pub volume_ul: u32,
    /// Share of refills that come late, percent.
    #[serde(default)]
    pub late_percent: u32,
    /// A late refill comes 1..=this many days after its plan.
    #[serde(default)]
    pub late_days_max: u32,
}

/// A way of using the PTM, drawn per patient by weight.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PtmUse {
    /// Name in the patient table.
    pub name: String,
    /// Relative weight.
    pub weight: u32,
    /// Presses per day (random times in the window).
    pub presses_per_day: u32,
    /// Window start, `HH:MM` UTC.
    #[serde(default = "default_from")]
    pub from: String,
    /// Window end, `HH:MM` UTC.
    #[serde(default = "default_to")]
    pub to: String,
}

fn default_from() -> String {
    "08:00".to_string()
}
fn default_to() -> String {
    "21:00".to_string()
}

/// A whole profile.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Initial fill, µL.
    pub initial_fill_ul: u32,
    /// Refills.
    pub refill: Refills,
    /// PTM use.
    pub ptm: Vec<PtmUse>,
    /// Faults.
    #[serde(default)]
    pub faults: Faults,
}

/// `HH:MM` as minutes of the day.
pub fn minute_of_day(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && h * 60 + m < 24 * 60).then_some(h * 60 + m)
}

fn invalid(key: &str, expected: &str) -> ProfileError {
    ProfileError::Invalid {
        key: key.to_string(),
        expected: expected.to_string(),
    }
}

impl Profile {
    /// Parses and checks a profile.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', " ");
            match e.span() {
                Some(span) => {
                    let before = text.get(..span.start).unwrap_or(text);
                    let line = before.matches('\n').count() + 1;
                    ProfileError::Syntax(format!("line {line}: {message}"))
                }
                None => ProfileError::Syntax(message),
            }
        })?;
        profile.check()?;
        Ok(profile)
    }

    /// Reads a profile file.
    pub fn load(path: &Path) -> crate::error::Result<Self> {
        let text = crate::error::read_text(path)?;
        Self::parse(&text).map_err(|e| crate::err!("{}: {e}", path.display()))
    }

    fn check(&self) -> Result<(), ProfileError> {
        if self.initial_fill_ul == 0 {
            return Err(invalid("initial_fill_ul", "a volume above 0 µL"));
        }
        if self.refill.interval_days == 0 {
            return Err(invalid("refill.interval_days", "at least 1 day"));
        }
        if self.refill.late_percent > 100 {
            return Err(invalid("refill.late_percent", "0 to 100"));
        }
        if self.refill.late_days_max > 365 {
            return Err(invalid("refill.late_days_max", "at most 365 days"));
        }
        if self.ptm.is_empty() {
            return Err(invalid("ptm", "at least one [[ptm]] entry"));
        }
        if self.ptm.iter().map(|p| u64::from(p.weight)).sum::<u64>() == 0 {
            return Err(invalid("ptm.weight", "a weight above 0 somewhere"));
        }
        for p in &self.ptm {
            let (Some(from), Some(to)) = (minute_of_day(&p.from), minute_of_day(&p.to)) else {
                return Err(invalid(&format!("ptm.{}.from/to", p.name), "HH:MM"));
            };
            if to <= from {
                return Err(invalid(
                    &format!("ptm.{}.to", p.name),
                    "a time after `from`",
                ));
            }
            if p.presses_per_day > 48 {
                return Err(invalid(
                    &format!("ptm.{}.presses_per_day", p.name),
                    "at most 48",
                ));
            }
        }
        let f = &self.faults;
        for (name, rate, needs_duration) in [
            ("stall", f.stall, true),
            ("occlusion", f.occlusion, true),
            ("power_loss", f.power_loss, true),
            ("dosing_hang", f.dosing_hang, true),
            ("forged_command", f.forged_command, false),
            ("replayed_command", f.replayed_command, false),
        ] {
            if rate.per_1000_patient_years > MAX_RATE_PER_1000_PATIENT_YEARS {
                return Err(invalid(
                    &format!("faults.{name}.per_1000_patient_years"),
                    "at most 365000 (one a day)",
                ));
            }
            let [lo, hi] = rate.duration_min;
            if needs_duration && rate.per_1000_patient_years > 0 && (lo == 0 || hi < lo) {
                return Err(invalid(
                    &format!("faults.{name}.duration_min"),
                    "[min, max] minutes with 1 <= min <= max",
                ));
            }
            if hi > MAX_EPISODE_MIN {
                return Err(invalid(
                    &format!("faults.{name}.duration_min"),
                    "at most 10080 minutes (7 days)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_parses() {
        let p = Profile::parse(DEFAULT_PROFILE).expect("default profile");
        assert!(p.faults.stall.per_1000_patient_years > 0);
        assert!(!p.ptm.is_empty());
    }

    #[test]
    fn bad_profiles_get_typed_errors() {
        let base = DEFAULT_PROFILE;
        let bad = base.replace("[refill]", "[refil]");
        assert!(matches!(Profile::parse(&bad), Err(ProfileError::Syntax(_))));
        let bad = format!(
            "{base}\n[faults.stall]\nper_1000_patient_years = 400000\nduration_min = [1, 2]\n"
        );
        // A second [faults.stall] table is a syntax error; build one instead.
        assert!(Profile::parse(&bad).is_err());
        let mut p = Profile::parse(base).expect("default");
        p.faults.stall.per_1000_patient_years = 400_000;
        assert!(
            matches!(p.check(), Err(ProfileError::Invalid { key, .. }) if key == "faults.stall.per_1000_patient_years")
        );
        let mut p = Profile::parse(base).expect("default");
        p.faults.occlusion.duration_min = [10, 5];
        assert!(
            matches!(p.check(), Err(ProfileError::Invalid { key, .. }) if key == "faults.occlusion.duration_min")
        );
        let mut p = Profile::parse(base).expect("default");
        p.ptm[0].to = "25:00".into();
        assert!(p.check().is_err());
        let mut p = Profile::parse(base).expect("default");
        p.refill.interval_days = 0;
        assert!(p.check().is_err());
    }
}
