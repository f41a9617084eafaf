//! The fleet's speed in `pumpctl bench`: simulated days per second per core
//! of `pumpctl fleet` (demo prescription, the default fault profile, no
//! Parquet), on one worker thread and on all, against the single-pump
//! `simulate` of the same days measured in the same run.

use std::time::Instant;

use crate::error::Result;
use crate::fleet::{self, profile::Profile, run::Options, Shard};

/// Results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FleetFigures {
    /// Patients.
    pub patients: u32,
    /// Days each.
    pub days: u32,
    /// Baseline: one `sim::run` of the demo prescription for `days`
    /// (recording its steps, as `simulate` does), days per second.
    pub simulate_days_per_s: u64,
    /// The fleet on one worker thread, days per second.
    pub one_thread_days_per_s: u64,
    /// Worker threads of the parallel run (the machine's cores).
    pub threads: usize,
    /// The fleet on all of them, days per second.
    pub all_threads_days_per_s: u64,
    /// `all / one`, × 100.
    pub speedup_x100: u64,
}

fn per_s(days: u64, started: Instant) -> u64 {
    let us = started.elapsed().as_micros().max(1);
    u64::try_from(u128::from(days) * 1_000_000 / us).unwrap_or(u64::MAX)
}

/// Measures a fleet of `patients` × `days`.
pub fn run(patients: u32, days: u32) -> Result<FleetFigures> {
    let prescriptions = fleet::load_prescriptions(&[])?;
    let profile = Profile::parse(fleet::profile::DEFAULT_PROFILE)
        .map_err(|e| crate::err!("fleet profile: {e}"))?;
    // Baseline: the single-pump simulator on the same prescription and days.
    let mut cfg = prescriptions[0].config.clone();
    cfg.days = days;
    cfg.seed = 1;
    cfg.initial_fill_nl = profile.initial_fill_ul.saturating_mul(1000);
    let started = Instant::now();
    crate::sim::run(&cfg)?;
    let simulate_days_per_s = per_s(u64::from(days), started);
    let options = |threads: Option<usize>| Options {
        patients,
        years: 1,
        days: Some(days),
        seed: 1,
        shard: Shard::ALL,
        profile: profile.clone(),
        profile_name: fleet::profile::DEFAULT_PROFILE_NAME.to_string(),
        prescriptions: prescriptions.clone(),
        out: std::path::PathBuf::new(),
        threads,
        progress: false,
        command: "pumpctl bench".to_string(),
        write: false,
    };
    let total = u64::from(patients) * u64::from(days);
    let started = Instant::now();
    fleet::run::run(&options(Some(1)))?;
    let one = per_s(total, started);
    let started = Instant::now();
    let all = fleet::run::run(&options(None))?;
    let all_days = per_s(total, started);
    Ok(FleetFigures {
        patients,
        days,
        simulate_days_per_s,
        one_thread_days_per_s: one,
        threads: all.threads,
        all_threads_days_per_s: all_days,
        speedup_x100: all_days * 100 / one.max(1),
    })
}

/// The table's rows.
pub fn rows(f: &FleetFigures) -> String {
    format!(
        "| fleet, {} patients × {} days, 1 worker thread (demo prescription, default fault profile, no Parquet) | {} simulated days/s per core | simulate, same days: {} days/s |\n\
         | fleet on {} worker threads | {} simulated days/s: {}.{:02}x one thread | one thread: {} days/s |\n",
        f.patients,
        f.days,
        f.one_thread_days_per_s,
        f.simulate_days_per_s,
        f.threads,
        f.all_threads_days_per_s,
        f.speedup_x100 / 100,
        f.speedup_x100 % 100,
        f.one_thread_days_per_s,
    )
}
