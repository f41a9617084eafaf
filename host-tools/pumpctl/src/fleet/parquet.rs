//! Writing the tables as Parquet (Arrow arrays, Snappy), in a
//! hive-partitioned layout: `OUT/<table>/shard=<I>/part-0.parquet`
//! (docs/fleet.md). Signed column types only, so Spark reads every column.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Date32Builder, Int32Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::tables::{DayRow, EventRow, PatientRow};
use crate::error::{Error, Result};

/// The tables, by folder name.
pub const TABLES: [&str; 3] = ["patient", "patient_day", "event"];

fn i32_of(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}
fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn field(name: &str, t: DataType, nullable: bool) -> Field {
    Field::new(name, t, nullable)
}

/// `patient`'s schema.
pub fn patient_schema() -> SchemaRef {
    use DataType::{Int32, Int64, Utf8};
    let mut fields = vec![
        field("patient_id", Int32, false),
        field("source", Utf8, false),
        field("seed", Int64, true),
        field("ptm_use", Utf8, true),
        field("days", Int32, false),
    ];
    for name in INJECTED {
        fields.push(field(name, Int32, true));
    }
    fields.extend([
        field("delivered_nl", Int64, false),
        field("boluses_granted", Int64, false),
        field("boluses_denied", Int64, false),
        field("alarms_raised", Int64, false),
        field("therapy_lost_ms", Int64, false),
        field("envelope_refusals", Int64, false),
        field("empty_reservoir_cuts", Int64, false),
        field("lost_events", Int64, false),
        field("resets", Int32, true),
        field("attacks_accepted", Int64, true),
    ]);
    Arc::new(Schema::new(fields))
}

const INJECTED: [&str; 8] = [
    "injected_stalls",
    "injected_occlusions",
    "injected_power_losses",
    "injected_dosing_hangs",
    "injected_forged_commands",
    "injected_replayed_commands",
    "refills_planned",
    "refills_late",
];

/// `patient_day`'s schema.
pub fn day_schema() -> SchemaRef {
    use DataType::{Date32, Int32, Int64, Utf8};
    Arc::new(Schema::new(vec![
        field("patient_id", Int32, false),
        field("date", Date32, false),
        field("basal_nl", Int64, false),
        field("patient_bolus_nl", Int64, false),
        field("clinician_bolus_nl", Int64, false),
        field("flush_nl", Int64, false),
        field("total_nl", Int64, false),
        field("dose_ug", Int64, false),
        field("boluses_requested", Int32, false),
        field("boluses_granted", Int32, false),
        field("boluses_denied", Int32, false),
        field("alarms_raised", Int32, false),
        field("worst_alarm", Utf8, true),
        field("reservoir_end_nl", Int64, true),
    ]))
}

/// `event`'s schema.
pub fn event_schema() -> SchemaRef {
    use DataType::{Int32, Int64, Utf8};
    Arc::new(Schema::new(vec![
        field("patient_id", Int32, false),
        field("seq", Int32, false),
        field("time_utc_ms", Int64, true),
        field("kind", Utf8, false),
        field("alarm_code", Utf8, true),
        field("priority", Utf8, true),
        field("reason", Utf8, true),
        field("delivery_kind", Utf8, true),
        field("outcome", Utf8, true),
        field("volume_nl", Int64, true),
        field("duration_ms", Int64, true),
    ]))
}

fn ints<T>(rows: &[T], f: impl Fn(&T) -> Option<u64>) -> ArrayRef {
    let mut b = Int64Builder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r).map(i64_of));
    }
    Arc::new(b.finish())
}
fn ints32<T>(rows: &[T], f: impl Fn(&T) -> Option<u64>) -> ArrayRef {
    let mut b = Int32Builder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r).map(i32_of));
    }
    Arc::new(b.finish())
}
fn strs<'a, T: 'a>(rows: &'a [T], f: impl Fn(&'a T) -> Option<&'a str>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error(format!("cannot build a record batch: {e}")))
}

/// A batch of `patient` rows.
pub fn patient_batch(rows: &[PatientRow]) -> Result<RecordBatch> {
    let inj = |f: fn(&super::patient::Injected) -> u32| {
        ints32(rows, move |r| r.injected.as_ref().map(|i| u64::from(f(i))))
    };
    let mut columns = vec![
        ints32(rows, |r| Some(u64::from(r.patient_id))),
        strs(rows, |r| Some(r.source.as_str())),
        {
            let mut b = Int64Builder::with_capacity(rows.len());
            for r in rows {
                // The seed's 64 bits as a signed integer (Spark has no u64).
                b.append_option(r.seed.map(|s| i64::from_ne_bytes(s.to_ne_bytes())));
            }
            Arc::new(b.finish())
        },
        strs(rows, |r| r.ptm_use.as_deref()),
        ints32(rows, |r| Some(u64::from(r.days))),
        inj(|i| i.stalls),
        inj(|i| i.occlusions),
        inj(|i| i.power_losses),
        inj(|i| i.dosing_hangs),
        inj(|i| i.forged_commands),
        inj(|i| i.replayed_commands),
        inj(|i| i.refills),
        inj(|i| i.late_refills),
    ];
    columns.extend([
        ints(rows, |r| Some(r.figures.delivered_nl)),
        ints(rows, |r| Some(r.figures.boluses_granted)),
        ints(rows, |r| Some(r.figures.boluses_denied)),
        ints(rows, |r| Some(r.figures.alarms_by_code.values().sum())),
        ints(rows, |r| Some(r.figures.therapy_lost_ms)),
        ints(rows, |r| Some(r.figures.envelope_refusals)),
        ints(rows, |r| Some(r.figures.empty_reservoir_cuts)),
        ints(rows, |r| Some(r.figures.lost_events)),
        ints32(rows, |r| r.resets.map(u64::from)),
        ints(rows, |r| r.attacks_accepted),
    ]);
    batch(&patient_schema(), columns)
}

/// A batch of `patient_day` rows.
pub fn day_batch(rows: &[DayRow]) -> Result<RecordBatch> {
    let mut dates = Date32Builder::with_capacity(rows.len());
    for r in rows {
        dates.append_value(i32_of(r.day.utc_day));
    }
    let columns = vec![
        ints32(rows, |r| Some(u64::from(r.patient_id))),
        Arc::new(dates.finish()) as ArrayRef,
        ints(rows, |r| Some(r.day.basal_nl)),
        ints(rows, |r| Some(r.day.patient_bolus_nl)),
        ints(rows, |r| Some(r.day.clinician_bolus_nl)),
        ints(rows, |r| Some(r.day.flush_nl)),
        ints(rows, |r| Some(r.day.total_nl)),
        ints(rows, |r| Some(r.day.dose_ug)),
        ints32(rows, |r| Some(u64::from(r.day.boluses_requested))),
        ints32(rows, |r| Some(u64::from(r.day.boluses_granted))),
        ints32(rows, |r| Some(u64::from(r.day.boluses_denied))),
        ints32(rows, |r| Some(u64::from(r.day.alarms_raised))),
        strs(rows, |r| r.day.worst_alarm.as_deref()),
        ints(rows, |r| r.day.reservoir_end_nl),
    ];
    batch(&day_schema(), columns)
}

/// A batch of `event` rows.
pub fn event_batch(rows: &[EventRow]) -> Result<RecordBatch> {
    let columns = vec![
        ints32(rows, |r| Some(u64::from(r.patient_id))),
        ints32(rows, |r| Some(u64::from(r.seq))),
        ints(rows, |r| r.time_utc_ms),
        strs(rows, |r| Some(r.kind)),
        strs(rows, |r| r.alarm_code.as_deref()),
        strs(rows, |r| r.priority.as_deref()),
        strs(rows, |r| r.reason.as_deref()),
        strs(rows, |r| r.delivery_kind.as_deref()),
        strs(rows, |r| r.outcome.as_deref()),
        ints(rows, |r| r.volume_nl),
        ints(rows, |r| r.duration_ms),
    ];
    batch(&event_schema(), columns)
}

/// The part file of `table` in shard `shard`.
pub fn part_path(out: &Path, table: &str, shard: u32) -> PathBuf {
    out.join(table)
        .join(format!("shard={shard}"))
        .join("part-0.parquet")
}

/// The three open Parquet files of one shard.
pub struct ShardWriter {
    patient: ArrowWriter<File>,
    day: ArrowWriter<File>,
    event: ArrowWriter<File>,
    paths: Vec<PathBuf>,
}

fn open(path: &Path, schema: SchemaRef) -> Result<ArrowWriter<File>> {
    if let Some(dir) = path.parent() {
        crate::error::create_dir(dir)?;
    }
    let file = File::create(path).map_err(|e| crate::error::io_error(path, "create", &e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("pumpctl fleet (parquet-rs)".to_string())
        .build();
    ArrowWriter::try_new(file, schema, Some(props))
        .map_err(|e| Error(format!("{}: cannot start Parquet: {e}", path.display())))
}

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error(format!("{}: cannot write Parquet: {e}", path.display()))
}

impl ShardWriter {
    /// Creates the shard's files under `out`.
    pub fn create(out: &Path, shard: u32) -> Result<Self> {
        let paths: Vec<PathBuf> = TABLES.iter().map(|t| part_path(out, t, shard)).collect();
        Ok(ShardWriter {
            patient: open(&paths[0], patient_schema())?,
            day: open(&paths[1], day_schema())?,
            event: open(&paths[2], event_schema())?,
            paths,
        })
    }

    /// Appends rows (in patient order).
    pub fn write(
        &mut self,
        patients: &[PatientRow],
        days: &[DayRow],
        events: &[EventRow],
    ) -> Result<()> {
        let p = patient_batch(patients)?;
        self.patient
            .write(&p)
            .map_err(|e| parquet_error(&self.paths[0], e))?;
        let d = day_batch(days)?;
        self.day
            .write(&d)
            .map_err(|e| parquet_error(&self.paths[1], e))?;
        let e = event_batch(events)?;
        self.event
            .write(&e)
            .map_err(|e| parquet_error(&self.paths[2], e))?;
        Ok(())
    }

    /// Closes the files; returns their paths.
    pub fn finish(self) -> Result<Vec<PathBuf>> {
        let ShardWriter {
            patient,
            day,
            event,
            paths,
        } = self;
        patient.close().map_err(|e| parquet_error(&paths[0], e))?;
        day.close().map_err(|e| parquet_error(&paths[1], e))?;
        event.close().map_err(|e| parquet_error(&paths[2], e))?;
        Ok(paths)
    }
}
