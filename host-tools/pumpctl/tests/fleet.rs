#![cfg(feature = "fleet")]
//! `pumpctl fleet`: the output depends on the fleet seed and the patients
//! only — not on the thread count, not on the sharding — and bad input gets
//! a clear error.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type, Int64Type};
use arrow_array::Array;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pumpctl::fleet::{self, parquet::TABLES, profile::Profile, run::Options, Shard};

fn options(out: &Path, shard: Shard, threads: usize) -> Options {
    let mut profile = Profile::parse(fleet::profile::DEFAULT_PROFILE).expect("profile");
    // Faults often enough that a short run has some.
    profile.faults.stall.per_1000_patient_years = 20_000;
    profile.faults.occlusion.per_1000_patient_years = 20_000;
    profile.faults.power_loss.per_1000_patient_years = 20_000;
    profile.faults.dosing_hang.per_1000_patient_years = 20_000;
    profile.faults.forged_command.per_1000_patient_years = 20_000;
    profile.refill.interval_days = 8;
    Options {
        patients: 5,
        years: 1,
        days: Some(12),
        seed: 11,
        shard,
        profile,
        profile_name: "test".into(),
        prescriptions: fleet::load_prescriptions(&[]).expect("demo rx"),
        out: out.to_path_buf(),
        threads: Some(threads),
        progress: false,
        command: "test".into(),
        write: true,
    }
}

/// Every row of a Parquet file, each cell rendered as text.
fn rows(path: &Path) -> Vec<Vec<String>> {
    let file = std::fs::File::open(path).expect("open parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        for r in 0..batch.num_rows() {
            let mut row = Vec::new();
            for c in batch.columns() {
                if c.is_null(r) {
                    row.push("null".to_string());
                    continue;
                }
                row.push(match c.data_type() {
                    DataType::Int32 => c.as_primitive::<Int32Type>().value(r).to_string(),
                    DataType::Int64 => c.as_primitive::<Int64Type>().value(r).to_string(),
                    DataType::Date32 => c.as_primitive::<Date32Type>().value(r).to_string(),
                    DataType::Utf8 => c.as_string::<i32>().value(r).to_string(),
                    other => panic!("unexpected column type {other:?}"),
                });
            }
            out.push(row);
        }
    }
    out
}

#[test]
fn shards_and_threads_do_not_change_a_single_row() {
    // Verifies: SR-HOST-020
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = dir.path().join("whole");
    let one_thread = dir.path().join("one");
    let sharded = dir.path().join("sharded");
    let a = fleet::run::run(&options(&whole, Shard::ALL, 2)).expect("fleet");
    fleet::run::run(&options(&one_thread, Shard::ALL, 1)).expect("fleet");
    for index in 0..2 {
        fleet::run::run(&options(&sharded, Shard { index, count: 2 }, 2)).expect("shard");
    }
    // The faults happened (the comparison is not between empty runs).
    assert!(a.summary.patients == 5);
    let injected = rows(&fleet::parquet::part_path(&whole, "patient", 0));
    assert!(injected.iter().any(|r| r[5] != "0"), "no stall injected");
    for table in TABLES {
        let w = fleet::parquet::part_path(&whole, table, 0);
        let o = fleet::parquet::part_path(&one_thread, table, 0);
        assert_eq!(
            std::fs::read(&w).expect("read"),
            std::fs::read(&o).expect("read"),
            "{table}: 1 and 2 threads differ"
        );
        let whole_rows = rows(&w);
        assert!(!whole_rows.is_empty(), "{table} is empty");
        let mut union: Vec<Vec<String>> = (0..2)
            .flat_map(|i| rows(&fleet::parquet::part_path(&sharded, table, i)))
            .collect();
        // Patient order (stable: each patient's rows keep their order).
        union.sort_by_key(|r| r[0].parse::<i64>().expect("patient_id"));
        assert_eq!(union, whole_rows, "{table}: the shards' union differs");
    }
    // The shards' patients are i mod 2.
    let shard1 = rows(&fleet::parquet::part_path(&sharded, "patient", 1));
    let ids: Vec<&str> = shard1.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
}

#[test]
fn the_tables_agree_with_the_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = fleet::run::run(&options(dir.path(), Shard::ALL, 2)).expect("fleet");
    let days = rows(&fleet::parquet::part_path(dir.path(), "patient_day", 0));
    for p in &out.summary.per_patient {
        let total: u64 = days
            .iter()
            .filter(|r| r[0] == p.patient_id.to_string())
            .map(|r| r[6].parse::<u64>().expect("total_nl"))
            .sum();
        assert_eq!(total, p.delivered_nl, "patient {}", p.patient_id);
        assert!(p.delivered_nl > 0);
    }
}

#[test]
fn bad_fleet_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("bad.toml");
    std::fs::write(
        &profile,
        fleet::profile::DEFAULT_PROFILE.replace("late_percent = 10", "late_percent = 150"),
    )
    .expect("write");
    let err = Profile::load(&profile).expect_err("refused");
    assert!(err.0.contains("refill.late_percent"), "{err}");
    let out = assert_cmd::Command::cargo_bin("pumpctl")
        .expect("bin")
        .args(["fleet", "--patients", "2", "--days", "2", "--profile"])
        .arg(&profile)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refill.late_percent: expected 0 to 100"),
        "{stderr}"
    );
    let out = assert_cmd::Command::cargo_bin("pumpctl")
        .expect("bin")
        .args(["fleet", "--shard", "2/2"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "clap refuses a bad shard");
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected I/N"));
}

#[test]
fn export_writes_a_log_into_the_same_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet_out = dir.path().join("fleet");
    fleet::run::run(&options(&fleet_out, Shard::ALL, 2)).expect("fleet");
    // A simulated log, exported like a field log.
    let sim_dir = dir.path().join("sim");
    let out = assert_cmd::Command::cargo_bin("pumpctl")
        .expect("bin")
        .args(["demo", "--out"])
        .arg(&sim_dir)
        .output()
        .expect("demo");
    assert!(out.status.success());
    let export_out = dir.path().join("export");
    let out = assert_cmd::Command::cargo_bin("pumpctl")
        .expect("bin")
        .args(["export", "--parquet", "--out"])
        .arg(&export_out)
        .arg(sim_dir.join("telemetry.log"))
        .output()
        .expect("export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for table in TABLES {
        let path = fleet::parquet::part_path(&export_out, table, 0);
        let file = std::fs::File::open(&path).expect("open");
        let exported = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
        let file =
            std::fs::File::open(fleet::parquet::part_path(&fleet_out, table, 0)).expect("open");
        let simulated = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
        assert_eq!(
            exported.schema(),
            simulated.schema(),
            "{table}: schemas differ"
        );
    }
    let days = rows(&fleet::parquet::part_path(&export_out, "patient_day", 0));
    // The demo runs 90 days (and the clinic's last read-out on day 90).
    assert!((90..=91).contains(&days.len()), "{} days", days.len());
    let out = assert_cmd::Command::cargo_bin("pumpctl")
        .expect("bin")
        .args(["export", "--parquet", "--out"])
        .arg(&export_out)
        .arg(dir.path().join("missing.log"))
        .output()
        .expect("export");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.log: cannot read"));
}
