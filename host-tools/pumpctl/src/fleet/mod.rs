//! `pumpctl fleet`: many virtual patients over years, in parallel, and
//! their tables as Parquet (docs/fleet.md); `pumpctl export --parquet`
//! writes real telemetry logs into the same tables.
//!
//! * [`profile`]: the fault profile file.
//! * [`patient`]: a patient's seed, prescription, PTM use and script.
//! * [`run`]: simulating a shard's patients (rayon) and writing them.
//! * [`tables`]: rows from a telemetry log.
//! * [`parquet`]: the Parquet files and their layout.
//! * [`summary`]: rates per patient-year with confidence intervals.

pub mod cli;
pub mod export;
pub mod parquet;
pub mod patient;
pub mod profile;
pub mod run;
pub mod summary;
pub mod tables;

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// A slice of the fleet: patient `i` belongs to shard `i mod count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// The whole fleet.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether patient `id` is in this shard.
    pub fn holds(self, id: u32) -> bool {
        id % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("`{s}`: expected I/N with 0 <= I < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// A prescription of the fleet's set, checked and ready to simulate.
#[derive(Clone, Debug)]
pub struct Rx {
    /// Its file name (as given).
    pub name: String,
    /// The simulator's configuration for it (days, seed and events are set
    /// per patient).
    pub config: crate::sim::SimConfig,
    /// The most a day can take from the reservoir under this prescription
    /// (basal schedule plus every patient bolus it allows), nL: the clinic
    /// plans refills so that a fill lasts (see [`patient::refill_interval_days`]).
    pub max_daily_nl: u64,
}

/// The prescription's largest daily use, nL (integer, rounded up).
fn max_daily_nl(rx: &pump_protocol::prescription::Prescription) -> u64 {
    let steps = &rx.therapy.basal_steps;
    let mut basal_ug_min = 0u64;
    for (i, step) in steps.iter().enumerate() {
        let end = steps
            .get(i + 1)
            .map_or(24 * 60, |s| u64::from(s.start_minute_of_day));
        let minutes = end.saturating_sub(u64::from(step.start_minute_of_day));
        basal_ug_min += u64::from(step.rate_ug_per_day) * minutes;
    }
    let bolus_ug = rx.therapy.patient_bolus.map_or(0, |b| {
        u64::from(b.dose_ug) * u64::from(b.max_per_24h) * 24 * 60
    });
    let ug_min = basal_ug_min + bolus_ug;
    let conc = u64::from(rx.concentration_ug_per_ml.max(1));
    // µg·min/day over 1440 min, then µg -> nL at the concentration.
    (ug_min * crate::units::NL_PER_ML).div_ceil(24 * 60 * conc)
}

fn rx_of(name: &str, text: &str) -> Result<Rx> {
    let run = crate::simcmd::Run {
        rx_text: text.to_string(),
        rx_name: PathBuf::from(name),
        events: Vec::new(),
        days: 1,
        seed: 0,
        fill_ul: 0,
        extra_keys: Vec::new(),
        out: PathBuf::new(),
        charts: false,
        progress: false,
        battery_mah: None,
    };
    let config = crate::simcmd::config(&run)?;
    Ok(Rx {
        name: name.to_string(),
        max_daily_nl: max_daily_nl(&config.prescription),
        config,
    })
}

/// The prescription set: each path is a `.toml` file or a folder of them
/// (sorted by name); none gives the demo's prescription.
pub fn load_prescriptions(paths: &[PathBuf]) -> Result<Vec<Rx>> {
    if paths.is_empty() {
        return Ok(vec![rx_of(
            "examples/baclofen-flex.toml",
            crate::simcmd::DEMO_RX,
        )?]);
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| crate::error::io_error(path, "list", &e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    let mut set = Vec::new();
    for file in &files {
        let text = crate::error::read_text(file)?;
        // A folder may hold other TOML (a fleet profile): only prescriptions
        // that parse as one join the set; a named file must be one.
        match rx_of(&file.display().to_string(), &text) {
            Ok(rx) => set.push(rx),
            Err(e) if paths.iter().any(|p| p == file) => return Err(e),
            Err(_) => {}
        }
    }
    if set.is_empty() {
        return Err(Error(format!(
            "no prescription in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition() {
        let s: Shard = "1/3".parse().expect("shard");
        assert_eq!(s, Shard { index: 1, count: 3 });
        assert!(s.holds(4) && !s.holds(3));
        for bad in ["3/3", "0/0", "1", "a/2", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
