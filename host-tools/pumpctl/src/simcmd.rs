//! `pumpctl simulate` and `pumpctl demo`: run the simulator on a
//! prescription file and write the log, step log, JSON summary and charts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::analysis::History;
use crate::error::{Error, Result};
use crate::script::Timed;
use crate::sim::{self, SimConfig, SimResult};
use crate::units::{self, NL_PER_UL};

/// The demo's prescription (`examples/baclofen-flex.toml`).
pub const DEMO_RX: &str = include_str!("../../../examples/baclofen-flex.toml");
/// The demo's event script (`examples/demo-events.txt`).
pub const DEMO_EVENTS: &str = include_str!("../../../examples/demo-events.txt");
/// The demo's length.
pub const DEMO_DAYS: u32 = 90;

/// What to run.
pub struct Run {
    /// Prescription TOML text.
    pub rx_text: String,
    /// Its name in messages.
    pub rx_name: PathBuf,
    /// Events.
    pub events: Vec<Timed>,
    /// Days.
    pub days: u32,
    /// Seed.
    pub seed: u64,
    /// Initial fill.
    pub fill_ul: u32,
    /// Extra trusted keys.
    pub extra_keys: Vec<[u8; 32]>,
    /// Output folder.
    pub out: PathBuf,
    /// Write the charts too.
    pub charts: bool,
    /// Progress bar.
    pub progress: bool,
    /// Usable battery capacity, mAh (`None`: the board profile's).
    pub battery_mah: Option<u32>,
}

/// What a run produced.
pub struct Outcome {
    /// The simulation.
    pub result: SimResult,
    /// The log's history.
    pub history: History,
    /// Wall time.
    pub wall_ms: u128,
    /// Human summary.
    pub summary: String,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Builds the simulator config of a run.
pub fn config(run: &Run) -> Result<SimConfig> {
    let file = crate::rx::parse(&run.rx_name, &run.rx_text)?;
    let library = crate::druglib::DrugLibrary::builtin()?;
    let (report, signable) = crate::pairing::check_v2(
        &file,
        &crate::board::hardware_limits(),
        &library,
        crate::board::SIM_DEVICE_ID,
        1,
        crate::board::SIM_EPOCH_UTC_MS,
    );
    let Some(crate::pairing::Signable {
        prescription,
        pairing,
    }) = signable
    else {
        let first = report
            .problems
            .iter()
            .find(|p| p.severity == crate::rx::Severity::Error)
            .map_or_else(String::new, ToString::to_string);
        return Err(Error(format!(
            "{}: refused by rx check: {first} (run `pumpctl rx check {}`)",
            run.rx_name.display(),
            run.rx_name.display()
        )));
    };
    Ok(SimConfig {
        prescription,
        pairing,
        days: run.days,
        seed: run.seed,
        events: run.events.clone(),
        initial_fill_nl: run.fill_ul.saturating_mul(NL_PER_UL as u32),
        record_steps: true,
        extra_keys: run.extra_keys.clone(),
        progress: run.progress,
        energy: energy_core::EnergyProfile {
            battery_capacity_pah: run
                .battery_mah
                .map_or(energy_core::NRF52840_DK.battery_capacity_pah, |mah| {
                    u64::from(mah) * 1_000_000_000
                }),
            ..energy_core::NRF52840_DK
        },
    })
}

/// Runs and writes everything.
pub fn execute(run: &Run) -> Result<Outcome> {
    let cfg = config(run)?;
    let started = Instant::now();
    let result = sim::run(&cfg)?;
    let wall_ms = started.elapsed().as_millis();
    crate::error::create_dir(&run.out)?;
    let log_path = run.out.join("telemetry.log");
    crate::error::write_file(&log_path, &result.log)?;
    let steps_path = run.out.join("steps.csv");
    sim::write_steps_csv(&steps_path, &result.steps)?;
    let history = crate::report::history_of(&log_path, &result.log)?;
    let mut files = vec![log_path, steps_path];
    if run.charts {
        let written = crate::report::write(
            history.clone(),
            &format!("{} (simulated)", run.rx_name.display()),
            &run.out,
        )?;
        files.extend(written.files);
        let battery_svg = run.out.join("battery.svg");
        crate::chart::battery_svg(
            &battery_svg,
            &result.battery,
            cfg.energy.battery_capacity_pah,
            &format!(
                "Battery — {} (simulated, {})",
                run.rx_name.display(),
                cfg.energy.name
            ),
        )?;
        files.push(battery_svg);
    }
    let summary_json = summary_json(run, &cfg, &result, &history, wall_ms);
    let json_path = run.out.join("summary.json");
    let text = serde_json::to_string_pretty(&summary_json)
        .map_err(|e| Error(format!("cannot encode the summary: {e}")))?;
    crate::error::write_file(&json_path, text.as_bytes())?;
    files.push(json_path);
    let summary = summary_text(run, &cfg, &result, &history, wall_ms, &files);
    Ok(Outcome {
        result,
        history,
        wall_ms,
        summary,
        files,
    })
}

fn summary_json(
    run: &Run,
    cfg: &SimConfig,
    r: &SimResult,
    h: &History,
    wall_ms: u128,
) -> serde_json::Value {
    let t = &r.truth;
    let requested: u32 = h.days.iter().map(|d| d.boluses_requested).sum();
    let granted: u32 = h.days.iter().map(|d| d.boluses_granted).sum();
    let denied: u32 = h.days.iter().map(|d| d.boluses_denied).sum();
    json!({
        "prescription": {
            "file": run.rx_name.display().to_string(),
            "drug": cfg.prescription.drug_name.as_str(),
            "concentration_ug_per_ml": cfg.prescription.concentration_ug_per_ml,
            "device_id": cfg.prescription.device_id,
            "serial": cfg.prescription.serial,
        },
        "days": run.days,
        "seed": run.seed,
        "wall_ms": u64::try_from(wall_ms).unwrap_or(u64::MAX),
        "delivered": {
            "by_log_nl": h.delivered_nl,
            "unconfirmed_in_log_nl": h.unconfirmed_nl,
            "in_flight_at_end_nl": t.unreported_volume_nl,
            "motor_commanded_nl": t.commanded_steps * u64::from(crate::board::NL_PER_STEP),
            "motor_moved_nl": t.moved_volume_nl,
            "reservoir_accounted_nl": t.filled_nl.saturating_sub(t.withdrawn_nl).saturating_sub(u64::from(t.final_reservoir_nl)),
        },
        "patient_boluses": { "requested": requested, "granted": granted, "denied": denied },
        "alarms": h.alarms,
        "refills": h.refills,
        "prescriptions_installed": h.installed,
        "prescriptions_rejected": h.rejected,
        "commands": r.commands,
        "daily": h.days,
        "truth": t,
        "log": { "frames": h.counts.frames, "bad_frames": h.counts.bad, "console_lines": h.counts.text_lines, "lost_events": h.lost_events },
        "storage": r.storage,
        "log_storage": r.log_storage,
        "energy": crate::energy::of_run(r, &cfg.energy),
        "outlooks": r.outlooks.iter().map(outlook_json).collect::<Vec<_>>(),
    })
}

/// One `ServiceOutlook` answer, its dates also as UTC text.
fn outlook_json(o: &pump_protocol::ServiceOutlook) -> serde_json::Value {
    let utc = |t: Option<u64>| t.map(crate::units::fmt_utc);
    json!({
        "time_ms": o.time_ms,
        "time_utc": crate::units::fmt_utc(o.time_ms),
        "charge_percent": o.charge_percent,
        "remaining_charge_uah": o.remaining_charge_uah,
        "average_current_na": o.average_current_na,
        "eri_time_ms": o.eri_time_ms,
        "eri_utc": utc(o.eri_time_ms),
        "eos_time_ms": o.eos_time_ms,
        "eos_utc": utc(o.eos_time_ms),
        "replacement_recommended": o.replacement_recommended,
        "end_of_service": o.end_of_service,
        "refill_by_time_ms": o.refill_by_time_ms,
        "refill_by_utc": utc(o.refill_by_time_ms),
    })
}

fn summary_text(
    run: &Run,
    cfg: &SimConfig,
    r: &SimResult,
    h: &History,
    wall_ms: u128,
    files: &[PathBuf],
) -> String {
    let conc = cfg.prescription.concentration_ug_per_ml;
    let t = &r.truth;
    let mut s = format!(
        "simulated {} days of {} {} µg/mL ({}, seed {}) in {}.{:03} s\n",
        run.days,
        cfg.prescription.drug_name,
        conc,
        run.rx_name.display(),
        run.seed,
        wall_ms / 1000,
        wall_ms % 1000
    );
    if let Some(st) = &r.storage {
        s.push_str(&format!(
            "flash: {} records ({} B) written, {} page erases, most-worn page {} of {} cycles: wears out in {} at this rate\n",
            st.records_written.values().sum::<u64>(),
            st.payload_bytes,
            st.page_erases,
            st.max_erases_per_page,
            st.endurance_cycles,
            crate::flashstore::years(st.projected_years_to_wear_out_x100)
        ));
    }
    let ls = &r.log_storage;
    let x100 = |v: Option<u64>| {
        v.map_or_else(
            || "-".to_string(),
            |v| format!("{}.{:02}", v / 100, v % 100),
        )
    };
    s.push_str(&format!(
        "telemetry log flash: {} records ({} B) in {} of {} pages of {} B, {} erased ({} records lost); holds {} days at this rate; {} erase cycles per page a year of {}\n",
        ls.records_written,
        ls.bytes_programmed,
        ls.pages_opened,
        ls.pages,
        ls.page_bytes,
        ls.pages_erased,
        ls.records_erased,
        x100(ls.days_held_x100),
        x100(ls.erase_cycles_per_page_per_year_x100),
        ls.endurance_cycles
    ));
    let doses: Vec<u64> = h.days.iter().map(|d| d.dose_ug).collect();
    let full_days: Vec<u64> = if doses.len() > 2 {
        doses[1..doses.len() - 1].to_vec()
    } else {
        doses.clone()
    };
    let total_dose = units::nl_to_dose_ug(h.delivered_nl, conc);
    s.push_str(&format!(
        "delivered: {} = {} µg; per day {} µg mean, {}..{} µg (full days)\n",
        units::fmt_ml(h.delivered_nl),
        total_dose,
        full_days.iter().sum::<u64>() / (full_days.len().max(1) as u64),
        full_days.iter().min().copied().unwrap_or(0),
        full_days.iter().max().copied().unwrap_or(0)
    ));
    let requested: u32 = h.days.iter().map(|d| d.boluses_requested).sum();
    let granted: u32 = h.days.iter().map(|d| d.boluses_granted).sum();
    let denied: u32 = h.days.iter().map(|d| d.boluses_denied).sum();
    s.push_str(&format!(
        "patient boluses: {requested} requested, {granted} granted, {denied} denied\n"
    ));
    if h.alarms.is_empty() {
        s.push_str("alarms: none\n");
    } else {
        let list: Vec<String> = h
            .alarms
            .iter()
            .map(|a| {
                format!(
                    "{} ({}) {} -> {}",
                    a.code,
                    a.priority,
                    units::fmt_utc(a.time_ms),
                    a.cleared_ms
                        .map_or_else(|| "not cleared".to_string(), units::fmt_utc)
                )
            })
            .collect();
        s.push_str(&format!(
            "alarms: {}:\n  {}\n",
            h.alarms.len(),
            list.join("\n  ")
        ));
    }
    for refill in h
        .refills
        .iter()
        .filter(|r| r.withdrawn_nl > 0 || r.time_ms > h.refills[0].time_ms)
    {
        s.push_str(&format!(
            "refill {}: reservoir at refill {}, added {}, now {}\n",
            units::fmt_utc(refill.time_ms),
            units::fmt_ml(refill.withdrawn_nl),
            units::fmt_ml(refill.added_nl),
            units::fmt_ml(refill.volume_nl)
        ));
    }
    for (time, serial, reason) in &h.rejected {
        s.push_str(&format!(
            "prescription serial {serial} REFUSED at {}: {reason}\n",
            units::fmt_utc(*time)
        ));
    }
    s.push_str(&format!(
        "reconciliation: log {} (of which {} unconfirmed after resets, an upper bound) + in flight {} vs motor {}; reservoir accounting {}\n",
        units::fmt_ml(h.delivered_nl),
        units::fmt_ml(h.unconfirmed_nl),
        units::fmt_ml(t.unreported_volume_nl),
        units::fmt_ml(t.commanded_steps * u64::from(crate::board::NL_PER_STEP)),
        units::fmt_ml(
            t.filled_nl
                .saturating_sub(t.withdrawn_nl)
                .saturating_sub(u64::from(t.final_reservoir_nl))
        ),
    ));
    s.push_str(&format!(
        "host link: {} logged events read back from the telemetry app in {} ReadLog chunks ({} lost); {} programmer commands, {} acknowledged\n",
        t.events_read,
        t.log_chunks,
        h.lost_events,
        r.commands.len(),
        t.commands_acknowledged,
    ));
    if t.dosing_busy_wakeups > 0 {
        s.push_str(&format!(
            "warning: the dosing app busy-waited: {} wake-ups asked to retry within {} ms ({} wake-ups in all)\n",
            t.dosing_busy_wakeups,
            dosing_core::MIN_CHECKIN_PERIOD_MS,
            t.dosing_wakeups
        ));
    }
    s.push_str(&crate::energy::summary_line(&crate::energy::of_run(
        r,
        &cfg.energy,
    )));
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    s.push_str(&format!("wrote {}\n", names.join(", ")));
    s
}

/// The demo run.
pub fn demo_run(out: &Path) -> Result<Run> {
    let events = crate::script::parse("examples/demo-events.txt", DEMO_EVENTS, Path::new("."))?;
    Ok(Run {
        rx_text: DEMO_RX.to_string(),
        rx_name: PathBuf::from("examples/baclofen-flex.toml"),
        events,
        days: DEMO_DAYS,
        seed: 1,
        fill_ul: 20_000,
        extra_keys: Vec::new(),
        out: out.to_path_buf(),
        charts: true,
        progress: true,
        battery_mah: None,
    })
}
