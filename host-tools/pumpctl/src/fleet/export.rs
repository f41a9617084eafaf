//! `pumpctl export --parquet LOG…`: real telemetry logs into the fleet's
//! tables (patient `i` is the `i`-th log given), so fleet and field data are
//! queried the same way. Written as shard 0 of the layout.

use std::path::{Path, PathBuf};

use super::parquet::ShardWriter;
use super::tables::{self, PatientRow};
use crate::error::Result;

/// Exports `logs` into `out`; returns the files written and the summary.
pub fn export(
    logs: &[PathBuf],
    out: &Path,
    command: &str,
) -> Result<(Vec<PathBuf>, super::summary::Summary)> {
    let mut writer = ShardWriter::create(out, 0)?;
    let mut patients = Vec::new();
    for (i, path) in logs.iter().enumerate() {
        let bytes = crate::error::read_file(path)?;
        let patient_id = u32::try_from(i).unwrap_or(u32::MAX);
        let rows = tables::rows_of_log(patient_id, &bytes, None);
        let days = u32::try_from(rows.days.len()).unwrap_or(u32::MAX);
        let patient = PatientRow {
            patient_id,
            source: path.display().to_string(),
            seed: None,
            ptm_use: None,
            days,
            injected: None,
            figures: rows.figures,
            resets: None,
            attacks_accepted: None,
        };
        writer.write(std::slice::from_ref(&patient), &rows.days, &rows.events)?;
        patients.push(patient);
    }
    let mut files = writer.finish()?;
    let summary = super::summary::summarize(command, "(field data: none)", "0/1", &patients);
    files.push(super::summary::write_summary(out, 0, &summary)?);
    Ok((files, summary))
}
