//! `pumpctl report`: dose history of a telemetry log as a table (stdout,
//! `daily.csv`, `report.md`) and an SVG dashboard (`report.svg`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::analysis::{self, History};
use crate::decode;
use crate::error::{Error, Result};
use crate::units;

/// What a report wrote.
#[derive(Debug)]
pub struct Written {
    /// The history.
    pub history: History,
    /// The table as text.
    pub table: String,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Reads and analyses a telemetry log; errors name the file.
pub fn load_history(path: &Path) -> Result<History> {
    let bytes = crate::error::read_file(path)?;
    history_of(path, &bytes)
}

/// Analyses log bytes.
pub fn history_of(path: &Path, bytes: &[u8]) -> Result<History> {
    if bytes.is_empty() {
        return Err(Error(format!(
            "{}: empty file: expected a telemetry log (frame stream)",
            path.display()
        )));
    }
    let (items, counts) = decode::decode_all(bytes);
    if counts.frames == 0 {
        return Err(Error(format!(
            "{}: no valid frame in {} bytes: not a telemetry log (expected 0x00 COBS 0x00 frames, e.g. telemetry.log from `pumpctl simulate`)",
            path.display(),
            bytes.len()
        )));
    }
    Ok(analysis::analyse(&items, &counts))
}

/// The daily table as aligned text.
pub fn table(h: &History) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10}  {:>10}  {:>9}  {:>9}  {:>9}  {:>7}  {:>6}  {:>6}  {:>6}  {:<8}  {:>10}",
        "date",
        "delivered",
        "dose_ug",
        "basal_ul",
        "bolus_ul",
        "presses",
        "grant",
        "deny",
        "alarms",
        "worst",
        "reservoir"
    );
    for d in &h.days {
        let _ = writeln!(
            s,
            "{:<10}  {:>10}  {:>9}  {:>9}  {:>9}  {:>7}  {:>6}  {:>6}  {:>6}  {:<8}  {:>10}",
            d.date,
            units::fmt_ml(d.total_nl),
            d.dose_ug,
            d.basal_nl / 1000,
            (d.patient_bolus_nl + d.clinician_bolus_nl + d.flush_nl) / 1000,
            d.boluses_requested,
            d.boluses_granted,
            d.boluses_denied,
            d.alarms_raised,
            d.worst_alarm.as_deref().unwrap_or("-"),
            d.reservoir_end_nl
                .map_or_else(|| "-".to_string(), units::fmt_ml),
        );
    }
    s
}

fn markdown(h: &History, source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Dose history: {source}\n");
    let _ = writeln!(
        s,
        "{} frames decoded, {} bad frames, {} events lost (log gaps). Volumes in mL/µL, doses in µg at the installed concentration.\n",
        h.counts.frames, h.counts.bad, h.lost_events
    );
    let _ = writeln!(s, "![dose history](report.svg)\n");
    let _ = writeln!(
        s,
        "| date | delivered | dose (µg) | basal (µL) | boluses (µL) | presses | granted | denied | alarms | worst | reservoir |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for d in &h.days {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            d.date,
            units::fmt_ml(d.total_nl),
            d.dose_ug,
            d.basal_nl / 1000,
            (d.patient_bolus_nl + d.clinician_bolus_nl + d.flush_nl) / 1000,
            d.boluses_requested,
            d.boluses_granted,
            d.boluses_denied,
            d.alarms_raised,
            d.worst_alarm.as_deref().unwrap_or("-"),
            d.reservoir_end_nl
                .map_or_else(|| "-".to_string(), units::fmt_ml),
        );
    }
    if !h.alarms.is_empty() {
        let _ = writeln!(
            s,
            "\n## Alarms\n\n| raised | alarm | priority | cleared |\n|---|---|---|---|"
        );
        for a in &h.alarms {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                units::fmt_utc(a.time_ms),
                a.code,
                a.priority,
                a.cleared_ms
                    .map_or_else(|| "not cleared".into(), units::fmt_utc)
            );
        }
    }
    if !h.refills.is_empty() {
        let _ = writeln!(s, "\n## Refills\n\n| time | reservoir before (withdrawn) | added | after | concentration |\n|---|---:|---:|---:|---:|");
        for r in &h.refills {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} µg/mL |",
                units::fmt_utc(r.time_ms),
                units::fmt_ml(r.withdrawn_nl),
                units::fmt_ml(r.added_nl),
                units::fmt_ml(r.volume_nl),
                r.concentration_ug_per_ml
            );
        }
    }
    s
}

/// Writes `daily.csv`.
fn write_csv(path: &Path, h: &History) -> Result<()> {
    let mut w = csv::Writer::from_path(path)
        .map_err(|e| Error(format!("{}: cannot write: {e}", path.display())))?;
    let io = |e: csv::Error| Error(format!("{}: cannot write: {e}", path.display()));
    w.write_record([
        "date",
        "total_nl",
        "dose_ug",
        "basal_nl",
        "patient_bolus_nl",
        "clinician_bolus_nl",
        "flush_nl",
        "boluses_requested",
        "boluses_granted",
        "boluses_denied",
        "alarms_raised",
        "worst_alarm",
        "reservoir_end_nl",
    ])
    .map_err(io)?;
    for d in &h.days {
        w.write_record([
            d.date.clone(),
            d.total_nl.to_string(),
            d.dose_ug.to_string(),
            d.basal_nl.to_string(),
            d.patient_bolus_nl.to_string(),
            d.clinician_bolus_nl.to_string(),
            d.flush_nl.to_string(),
            d.boluses_requested.to_string(),
            d.boluses_granted.to_string(),
            d.boluses_denied.to_string(),
            d.alarms_raised.to_string(),
            d.worst_alarm.clone().unwrap_or_default(),
            d.reservoir_end_nl
                .map_or_else(String::new, |v| v.to_string()),
        ])
        .map_err(io)?;
    }
    w.flush()
        .map_err(|e| crate::error::io_error(path, "write", &e))
}

/// Writes the report files into `out_dir`.
pub fn write(h: History, source: &str, out_dir: &Path) -> Result<Written> {
    crate::error::create_dir(out_dir)?;
    let svg = out_dir.join("report.svg");
    crate::chart::history_svg(&svg, &h, &format!("Dose history — {source}"))?;
    let csv_path = out_dir.join("daily.csv");
    write_csv(&csv_path, &h)?;
    let md = out_dir.join("report.md");
    crate::error::write_file(&md, markdown(&h, source).as_bytes())?;
    let table = table(&h);
    Ok(Written {
        history: h,
        table,
        files: vec![svg, csv_path, md],
    })
}
