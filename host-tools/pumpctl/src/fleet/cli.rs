//! The `fleet` and `export` command lines.

use std::path::PathBuf;

use clap::Args;

use super::profile::{Profile, DEFAULT_PROFILE, DEFAULT_PROFILE_NAME};
use super::Shard;
use crate::error::{Error, Result};

/// `pumpctl fleet`'s help.
pub const FLEET_HELP: &str = "Examples:
  pumpctl fleet --patients 1000 --years 5 --out fleet/
  pumpctl fleet --patients 200 --years 2 --profile examples/fleet-profile.toml --rx examples/
  pumpctl fleet --patients 1000 --years 5 --shard 0/4 --out s3-staging/   # one of 4 processes

Each patient gets a seed derived from --seed and its index, a prescription drawn from
the --rx set (default: the demo's), a PTM use and faults drawn from the --profile
(default: examples/fleet-profile.toml). Patient i belongs to shard i mod N; the shards'
outputs together equal the unsharded run, row for row.

Writes OUT/patient/shard=I/part-0.parquet, OUT/patient_day/..., OUT/event/... and
OUT/summary/shard=I/summary.json; prints rates per patient-year with 95 % intervals.
Schema, layout and DuckDB/Spark SQL: docs/fleet.md.";

/// `pumpctl fleet`.
#[derive(Args, Debug)]
pub struct FleetArgs {
    /// Patients in the whole fleet.
    #[arg(long, default_value_t = 100)]
    pub patients: u32,
    /// Years per patient.
    #[arg(long, default_value_t = 1)]
    pub years: u32,
    /// Days per patient (instead of --years; for small test fleets).
    #[arg(long)]
    pub days: Option<u32>,
    /// Fleet seed (patient seeds derive from it and the patient index).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fault profile TOML (default: the built-in examples/fleet-profile.toml).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Prescription files or folders of them (default: the demo's).
    #[arg(long = "rx")]
    pub rx: Vec<PathBuf>,
    /// This process's slice, I/N (patient i belongs to shard i mod N).
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output folder.
    #[arg(long, default_value = "pumpctl-fleet")]
    pub out: PathBuf,
    /// No progress bar (it is off anyway when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// `pumpctl export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write Parquet tables (the fleet's schema, docs/fleet.md).
    #[arg(long, required = true)]
    pub parquet: bool,
    /// Output folder.
    #[arg(long, default_value = "pumpctl-export")]
    pub out: PathBuf,
    /// Telemetry logs (patient i is the i-th).
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("pumpctl {}", args.join(" "))
}

/// The run's options from the command line.
pub fn fleet_options(args: &FleetArgs) -> Result<super::run::Options> {
    let (profile, profile_name) = match &args.profile {
        Some(p) => (Profile::load(p)?, p.display().to_string()),
        None => (
            Profile::parse(DEFAULT_PROFILE)
                .map_err(|e| Error(format!("{DEFAULT_PROFILE_NAME}: {e}")))?,
            DEFAULT_PROFILE_NAME.to_string(),
        ),
    };
    if args.patients == 0 {
        return Err(Error("--patients must be at least 1".to_string()));
    }
    Ok(super::run::Options {
        patients: args.patients,
        years: args.years,
        days: args.days,
        seed: args.seed,
        shard: args.shard,
        profile,
        profile_name,
        prescriptions: super::load_prescriptions(&args.rx)?,
        out: args.out.clone(),
        threads: args.threads,
        progress: !args.quiet,
        command: command_line(),
        write: true,
    })
}

/// Runs `pumpctl fleet`; returns what to print.
pub fn fleet(args: &FleetArgs) -> Result<String> {
    let opts = fleet_options(args)?;
    let outcome = super::run::run(&opts)?;
    let secs = outcome.wall_ms.max(1) as f64 / 1000.0;
    let mut text = super::summary::table(&outcome.summary);
    text.push_str(&format!(
        "\n{} simulated days in {:.1} s on {} threads: {:.0} days/s ({:.0} days/s per thread)\n",
        outcome.simulated_days,
        secs,
        outcome.threads,
        outcome.simulated_days as f64 / secs,
        outcome.simulated_days as f64 / secs / outcome.threads.max(1) as f64
    ));
    let names: Vec<String> = outcome
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    text.push_str(&format!("wrote {}\n", names.join(", ")));
    Ok(text)
}

/// Runs `pumpctl export`; returns what to print.
pub fn export(args: &ExportArgs) -> Result<String> {
    let (files, summary) = super::export::export(&args.logs, &args.out, &command_line())?;
    let mut text = super::summary::table(&summary);
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    text.push_str(&format!("wrote {}\n", names.join(", ")));
    Ok(text)
}
