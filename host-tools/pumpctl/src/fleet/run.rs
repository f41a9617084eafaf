//! Simulating a shard's patients in parallel (rayon) and writing their rows
//! in patient order, a chunk at a time: the output depends on the fleet
//! seed and the patients only, never on the thread count or the sharding.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

use super::parquet::ShardWriter;
use super::patient::{self, Plan, DAYS_PER_YEAR};
use super::profile::Profile;
use super::summary::{self, Summary};
use super::tables::{self, DayRow, EventRow, PatientRow};
use super::{Rx, Shard};
use crate::board::SIM_EPOCH_UTC_MS;
use crate::error::{Error, Result};
use crate::units::{MS_PER_DAY, NL_PER_UL};

/// Patients simulated between two writes (bounds memory).
const CHUNK_PATIENTS: usize = 64;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Patients in the whole fleet.
    pub patients: u32,
    /// Years per patient.
    pub years: u32,
    /// Days per patient (overrides `years` when set; for tests and CI).
    pub days: Option<u32>,
    /// The fleet seed.
    pub seed: u64,
    /// This run's slice.
    pub shard: Shard,
    /// The fault profile.
    pub profile: Profile,
    /// Its file name (cited by the summary).
    pub profile_name: String,
    /// The prescription set.
    pub prescriptions: Vec<Rx>,
    /// Output folder.
    pub out: PathBuf,
    /// Worker threads (`None`: all cores).
    pub threads: Option<usize>,
    /// Show the progress bar (on a terminal).
    pub progress: bool,
    /// The command line, for the summary.
    pub command: String,
    /// Write Parquet (off: simulate and summarise only, for the benchmark).
    pub write: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The summary.
    pub summary: Summary,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Wall time, ms.
    pub wall_ms: u64,
    /// Days simulated (all patients of the shard).
    pub simulated_days: u64,
    /// Threads used.
    pub threads: usize,
}

/// One patient's rows.
struct PatientOut {
    patient: PatientRow,
    days: Vec<DayRow>,
    events: Vec<EventRow>,
}

/// Simulates one patient.
fn simulate(opts: &Options, plan: Plan) -> Result<PatientOut> {
    let rx = opts
        .prescriptions
        .get(plan.rx_index)
        .ok_or_else(|| Error("empty prescription set".to_string()))?;
    let mut cfg = rx.config.clone();
    cfg.days = plan.days;
    cfg.seed = plan.seed;
    cfg.events = plan.events;
    cfg.initial_fill_nl =
        u32::try_from(u64::from(opts.profile.initial_fill_ul) * NL_PER_UL).unwrap_or(u32::MAX);
    cfg.record_steps = false;
    cfg.progress = false;
    let result =
        crate::sim::run(&cfg).map_err(|e| Error(format!("patient {}: {e}", plan.patient_id)))?;
    let end_utc_ms = SIM_EPOCH_UTC_MS + u64::from(plan.days) * MS_PER_DAY;
    let rows = tables::rows_of_log(plan.patient_id, &result.log, Some(end_utc_ms));
    let ptm_use = opts.profile.ptm.get(plan.ptm_index).map(|p| p.name.clone());
    Ok(PatientOut {
        patient: PatientRow {
            patient_id: plan.patient_id,
            source: rx.name.clone(),
            seed: Some(plan.seed),
            ptm_use,
            days: plan.days,
            injected: Some(plan.injected),
            figures: rows.figures,
            resets: Some(result.truth.resets),
            attacks_accepted: Some(result.truth.attacks_accepted),
        },
        days: rows.days,
        events: rows.events,
    })
}

/// Runs the shard.
pub fn run(opts: &Options) -> Result<Outcome> {
    let days = opts
        .days
        .unwrap_or(opts.years.saturating_mul(DAYS_PER_YEAR));
    if days == 0 {
        return Err(Error("--years (or --days) must be at least 1".to_string()));
    }
    if opts.prescriptions.is_empty() {
        return Err(Error("the prescription set is empty".to_string()));
    }
    let max_daily: Vec<u64> = opts.prescriptions.iter().map(|r| r.max_daily_nl).collect();
    let ids: Vec<u32> = (0..opts.patients)
        .filter(|i| opts.shard.holds(*i))
        .collect();
    let pool = {
        let mut b = rayon::ThreadPoolBuilder::new();
        if let Some(n) = opts.threads {
            b = b.num_threads(n.max(1));
        }
        b.build()
            .map_err(|e| Error(format!("cannot start the worker threads: {e}")))?
    };
    let threads = pool.current_num_threads();
    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(ids.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "fleet {bar:40} {pos}/{len} patients ({elapsed}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut writer = if opts.write {
        Some(ShardWriter::create(&opts.out, opts.shard.index)?)
    } else {
        None
    };
    let started = Instant::now();
    let mut patients: Vec<PatientRow> = Vec::with_capacity(ids.len());
    let mut done_days = 0u64;
    for chunk in ids.chunks(CHUNK_PATIENTS) {
        let outs: Vec<Result<PatientOut>> = pool.install(|| {
            chunk
                .par_iter()
                .map(|&id| {
                    let plan = patient::plan(&opts.profile, &max_daily, opts.seed, id, days);
                    let out = simulate(opts, plan);
                    bar.inc(1);
                    out
                })
                .collect()
        });
        let mut chunk_patients = Vec::with_capacity(outs.len());
        let mut chunk_days = Vec::new();
        let mut chunk_events = Vec::new();
        for out in outs {
            let out = out?;
            chunk_patients.push(out.patient);
            chunk_days.extend(out.days);
            chunk_events.extend(out.events);
        }
        if let Some(w) = writer.as_mut() {
            w.write(&chunk_patients, &chunk_days, &chunk_events)?;
        }
        done_days += chunk.len() as u64 * u64::from(days);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{:.1} simulated years/s",
            done_days as f64 / f64::from(DAYS_PER_YEAR) / secs
        ));
        patients.extend(chunk_patients);
    }
    bar.finish_and_clear();
    let mut files = match writer {
        Some(w) => w.finish()?,
        None => Vec::new(),
    };
    let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let summary = summary::summarize(
        &opts.command,
        &opts.profile_name,
        &opts.shard.to_string(),
        &patients,
    );
    if opts.write {
        files.push(super::summary::write_summary(
            &opts.out,
            opts.shard.index,
            &summary,
        )?);
    }
    Ok(Outcome {
        summary,
        files,
        wall_ms,
        simulated_days: ids.len() as u64 * u64::from(days),
        threads,
    })
}
