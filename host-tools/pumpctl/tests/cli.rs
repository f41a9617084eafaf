//! End-to-end tests of the `pumpctl` binary (assert_cmd runs the real
//! executable). Tests that verify a host-tool requirement name its ID.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use pump_protocol::{encode_stream_frame_vec, Frame, Message};
use serde_json::Value;

fn pumpctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pumpctl"))
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example(name: &str) -> PathBuf {
    examples().join(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Decodes a log with `pumpctl decode --json` and returns every object.
fn decode_json(log: &Path) -> Vec<Value> {
    let out = pumpctl()
        .args(["decode", "--json"])
        .arg(log)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

fn simulate(dir: &Path, rx: &Path, days: u32, script: Option<&str>, extra: &[&str]) -> Value {
    let mut cmd = pumpctl();
    cmd.arg("simulate")
        .arg(rx)
        .args(["--days", &days.to_string(), "--no-charts", "--out"])
        .arg(dir.join("out"));
    if let Some(script) = script {
        let path = dir.join("events.txt");
        std::fs::write(&path, script).unwrap();
        cmd.arg("--events").arg(path);
    }
    cmd.args(extra).assert().success();
    read_json(&dir.join("out/summary.json"))
}

/// Asserts the one-line, non-zero, no-panic error contract.
fn assert_user_error(cmd: &mut Command, needle: &str) {
    let out = cmd.assert().failure().code(1).get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr:?}");
}

// ------------------------------------------------------------------ demo --

#[test]
fn sr_host_005_demo_runs_end_to_end_and_writes_a_valid_svg_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    pumpctl()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("patient boluses:"))
        .stdout(predicate::str::contains("reservoir at refill"))
        .stdout(predicate::str::contains("Occlusion"));
    for f in [
        "telemetry.log",
        "steps.csv",
        "summary.json",
        "report.svg",
        "battery.svg",
        "daily.csv",
        "report.md",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // The battery chart draws the capsule's daily estimate.
    let battery = std::fs::read_to_string(out.join("battery.svg")).unwrap();
    let battery = roxmltree::Document::parse(&battery).unwrap();
    assert!(battery
        .descendants()
        .any(|n| n.tag_name().name() == "polyline"));
    // The chart parses as XML, its root is <svg>, and it has plotted lines.
    let svg = std::fs::read_to_string(out.join("report.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let plotted = doc
        .descendants()
        .filter(|n| matches!(n.tag_name().name(), "polyline" | "path" | "polygon"))
        .count();
    assert!(plotted >= 4, "only {plotted} plotted shapes");

    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["days"], 90);
    assert!(summary["patient_boluses"]["granted"].as_u64().unwrap() > 100);
    assert!(summary["patient_boluses"]["denied"].as_u64().unwrap() > 0);
    // Initial fill plus one refill.
    assert_eq!(summary["refills"].as_array().unwrap().len(), 2);
    let refill = &summary["refills"][1];
    assert!(refill["withdrawn_nl"].as_u64().unwrap() > 1_000_000);
    let alarms = summary["alarms"].as_array().unwrap();
    assert!(alarms
        .iter()
        .any(|a| a["code"] == "Occlusion" && a["priority"] == "High"));
    // Every nanolitre is accounted for, and no step without an enabled motor.
    let d = &summary["delivered"];
    let by_log = d["by_log_nl"].as_u64().unwrap() + d["in_flight_at_end_nl"].as_u64().unwrap();
    assert_eq!(by_log, d["motor_commanded_nl"].as_u64().unwrap());
    assert_eq!(by_log, d["reservoir_accounted_nl"].as_u64().unwrap());
    assert_eq!(summary["truth"]["steps_while_disabled"], 0);
    // Flex dosing: the daily dose sits between the night and day rates.
    for day in &summary["daily"].as_array().unwrap()[1..89] {
        let dose = day["dose_ug"].as_u64().unwrap();
        assert!((480..=800).contains(&dose), "{day}");
    }
}

/// The telemetry log's flash region (the boards' 64 pages of 4 KiB) holds
/// the demo's 90 days of events with room to spare, loses none, and wears
/// its pages about twice a year, far inside the 10 000-cycle rating
/// (`docs/persistence.md` §9).
///
/// Verifies: SR-TEL-010
#[test]
fn the_demo_log_fits_its_flash_region_and_wears_it_slowly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    pumpctl()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("telemetry log flash: "));
    let summary = read_json(&out.join("summary.json"));
    let log = &summary["log_storage"];
    assert_eq!(log["pages"], 64);
    assert_eq!(log["page_bytes"], 4096);
    let records = log["records_written"].as_u64().unwrap();
    assert!((2_500..=3_500).contains(&records), "{log}");
    assert_eq!(log["pages_erased"], 0);
    assert_eq!(log["records_erased"], 0);
    assert_eq!(summary["log"]["lost_events"], 0);
    // Well over the 90 days required (with one page lost to each erase).
    assert!(log["days_held_x100"].as_u64().unwrap() >= 15_000, "{log}");
    // A handful of erase cycles a year: 10 000 cycles last centuries.
    let cycles = log["erase_cycles_per_page_per_year_x100"].as_u64().unwrap();
    assert!(cycles > 0 && cycles <= 500, "{log}");
}

#[test]
fn simulation_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let script = "d0 00:00 patient-presses per_day=5\n";
    let a = simulate(
        dir.path(),
        &example("morphine.toml"),
        3,
        Some(script),
        &["--seed", "9"],
    );
    let log_a = std::fs::read(dir.path().join("out/telemetry.log")).unwrap();
    let b = simulate(
        dir.path(),
        &example("morphine.toml"),
        3,
        Some(script),
        &["--seed", "9"],
    );
    let log_b = std::fs::read(dir.path().join("out/telemetry.log")).unwrap();
    assert_eq!(log_a, log_b);
    assert_eq!(a["daily"], b["daily"]);
    let c = simulate(
        dir.path(),
        &example("morphine.toml"),
        3,
        Some(script),
        &["--seed", "10"],
    );
    assert_ne!(a["daily"], c["daily"]);
}

// ------------------------------------------- simulate -> decode -> report --

#[test]
fn sr_host_006_simulate_decode_report_round_trip_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(
        dir.path(),
        &example("baclofen-flex.toml"),
        3,
        Some("d0 00:00 patient-presses per_day=4\n"),
        &[],
    );
    let log = dir.path().join("out/telemetry.log");
    let items = decode_json(&log);
    assert!(items.iter().all(|v| v.get("bad_frame").is_none()));
    let delivered: u64 = items
        .iter()
        .filter(|v| kind(v) == "DeliveryRecord")
        .map(|v| v["fields"]["volume_nl"].as_u64().unwrap())
        .sum();
    assert_eq!(
        delivered,
        summary["delivered"]["by_log_nl"].as_u64().unwrap()
    );
    let granted = items
        .iter()
        .filter(|v| kind(v) == "PatientBolusGranted")
        .count() as u64;
    assert_eq!(
        granted,
        summary["patient_boluses"]["granted"].as_u64().unwrap()
    );

    // CSV decoding has the same frames.
    let csv_out = pumpctl()
        .args(["decode", "--csv"])
        .arg(&log)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut reader = csv::Reader::from_reader(csv_out.as_slice());
    let frames = reader
        .records()
        .filter(|r| r.as_ref().unwrap().get(1).is_some_and(|s| !s.is_empty()))
        .count();
    assert_eq!(
        frames,
        items.iter().filter(|v| v.get("sequence").is_some()).count()
    );

    // The report's daily table adds up to the same volume.
    let report_dir = dir.path().join("report");
    pumpctl()
        .arg("report")
        .arg(&log)
        .arg("--out")
        .arg(&report_dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("dose_ug"))
        .stdout(predicate::str::contains("2025-01-02"));
    let mut reader = csv::Reader::from_path(report_dir.join("daily.csv")).unwrap();
    let total: u64 = reader
        .records()
        .map(|r| r.unwrap().get(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, delivered);
    let svg = std::fs::read_to_string(report_dir.join("report.svg")).unwrap();
    assert_eq!(
        roxmltree::Document::parse(&svg)
            .unwrap()
            .root_element()
            .tag_name()
            .name(),
        "svg"
    );
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(md.contains("| date | delivered | dose (µg)"));
}

// --------------------------------------------- rx sign -> install in sim --

struct Signed {
    dir: tempfile::TempDir,
    key_pub: PathBuf,
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    pumpctl()
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .assert()
        .success()
        .stdout(predicate::str::contains("public key (hex):"))
        .stdout(predicate::str::contains("0x"));
    let mut public = key.clone().into_os_string();
    public.push(".pub");
    (key, PathBuf::from(public))
}

fn sign(key: &Path, serial: u32, out: &Path) {
    pumpctl()
        .args(["rx", "sign"])
        .arg(example("baclofen-flex.toml"))
        .arg("--key")
        .arg(key)
        .args([
            "--device",
            "0x00C0FFEE",
            "--serial",
            &serial.to_string(),
            "--out",
        ])
        .arg(out)
        .assert()
        .success()
        .stdout(predicate::str::contains("signed baclofen serial"));
}

fn setup_signed() -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let (key, key_pub) = keygen(dir.path(), "clinic.key");
    sign(&key, 2, &dir.path().join("rx2.bin"));
    Signed { dir, key_pub }
}

/// Installs `frame` on day 1 in a 2-day simulation; returns the log items.
fn install(s: &Signed, frame: &str) -> (Value, Vec<Value>) {
    let trust = s.key_pub.to_str().unwrap().to_string();
    let summary = simulate(
        s.dir.path(),
        &example("baclofen-flex.toml"),
        2,
        Some(&format!("d1 12:00 install file={frame}\n")),
        &["--trust", &trust],
    );
    let items = decode_json(&s.dir.path().join("out/telemetry.log"));
    (summary, items)
}

fn rejection_reason(items: &[Value]) -> Option<String> {
    items
        .iter()
        .find(|v| kind(v) == "PrescriptionRejected")
        .map(|v| v["fields"]["reason"].as_str().unwrap().to_string())
}

#[test]
fn sr_host_003_signed_prescription_installs_in_the_simulator() {
    let s = setup_signed();
    // Verifies: SR-HOST-003
    let (summary, items) = install(&s, "rx2.bin");
    assert_eq!(rejection_reason(&items), None);
    let installed: Vec<u64> = items
        .iter()
        .filter(|v| kind(v) == "PrescriptionInstalled")
        .map(|v| v["fields"]["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(installed, vec![1, 2]);
    assert!(summary["commands"].as_array().unwrap().iter().any(|c| c
        .as_str()
        .unwrap()
        .contains("InstallPrescription: accepted")));
    // Therapy goes on under the new prescription.
    assert!(summary["daily"][1]["total_nl"].as_u64().unwrap() > 200_000);
}

/// Re-encodes the install frame of `src` with one byte of the signed
/// prescription changed (a valid frame: the CRC is recomputed).
fn tamper(src: &Path, dst: &Path) {
    let bytes = std::fs::read(src).unwrap();
    let mut decoder = pump_protocol::StreamDecoder::new();
    let mut frame = None;
    decoder.feed(&bytes, |item| {
        if let pump_protocol::StreamItem::Frame { frame: f, .. } = item {
            frame = Some(f);
        }
    });
    let frame = frame.unwrap();
    let Message::InstallPrescription(mut m) = frame.message else {
        panic!("not an install frame");
    };
    // A byte of the body (the concentration region), not the signature.
    m.signed_prescription[20] ^= 0x01;
    let out = encode_stream_frame_vec(&Frame {
        sequence: frame.header.sequence.get(),
        flags: 0,
        message: Message::InstallPrescription(m),
    })
    .unwrap();
    std::fs::write(dst, out).unwrap();
}

#[test]
fn sr_host_003_tampered_wrong_key_and_replayed_prescriptions_are_refused_with_reason() {
    let s = setup_signed();
    // Tampered byte.
    tamper(
        &s.dir.path().join("rx2.bin"),
        &s.dir.path().join("tampered.bin"),
    );
    let (_, items) = install(&s, "tampered.bin");
    assert_eq!(
        rejection_reason(&items).as_deref(),
        Some("InvalidSignature")
    );

    // Signed with a key the board does not trust.
    let (other, _) = keygen(s.dir.path(), "other.key");
    sign(&other, 3, &s.dir.path().join("other.bin"));
    let (_, items) = install(&s, "other.bin");
    assert_eq!(
        rejection_reason(&items).as_deref(),
        Some("InvalidSignature")
    );

    // A trusted key but a replayed serial (the simulator installed serial 1).
    let key = s.dir.path().join("clinic.key");
    sign(&key, 1, &s.dir.path().join("replay.bin"));
    let (summary, items) = install(&s, "replay.bin");
    assert_eq!(rejection_reason(&items).as_deref(), Some("ReplayedSerial"));
    assert!(summary["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str().unwrap().contains("refused: ReplayedSerial")));
    // The refused prescription changed nothing: therapy continued.
    assert!(summary["daily"][1]["total_nl"].as_u64().unwrap() > 200_000);
}

#[test]
fn sr_host_003_signed_bytes_verify_with_the_capsules_own_check() {
    let s = setup_signed();
    let bytes = std::fs::read(s.dir.path().join("rx2.bin")).unwrap();
    let signed = pumpctl::sign::signed_from_install_stream(&bytes).unwrap();
    let key = pumpctl::keys::load_public(&s.key_pub).unwrap();
    let mut board = pumpctl::board::board_config(&[key]);
    board.clinic_keys.retain(|k| *k == key);
    let verified = infusion_core::rx::verify(&board, &signed, 1).unwrap();
    assert_eq!(verified.prescription.serial, 2);
    assert_eq!(verified.prescription.concentration_ug_per_ml, 2000);
    // Format 2, carrying the example's pairing: the simulator's PTM key and
    // (no [clinician_bolus_limits]) the format-1 clinician limits.
    assert_eq!(
        verified.prescription.format,
        pump_protocol::prescription::PRESCRIPTION_FORMAT_V2
    );
    assert_eq!(
        verified.pairing,
        pump_protocol::prescription::Pairing {
            ptm_public_key: Some(
                pumpctl::board::simulator_ptm_key()
                    .verifying_key()
                    .to_bytes()
            ),
            clinician_bolus: pump_protocol::prescription::ClinicianBolusLimits::FORMAT_1,
        }
    );
}

// ---------------------------------------------------------- decode garbage --

#[test]
fn sr_host_004_decode_reports_garbage_and_keeps_every_valid_frame() {
    let dir = tempfile::tempdir().unwrap();
    simulate(dir.path(), &example("baclofen.toml"), 1, None, &[]);
    let clean = std::fs::read(dir.path().join("out/telemetry.log")).unwrap();
    let frames_clean = decode_json(&dir.path().join("out/telemetry.log"))
        .iter()
        .filter(|v| v.get("sequence").is_some())
        .count();
    // Inject garbage (non-text bytes, one with a stray delimiter) after every
    // 5th frame delimiter pair, and note where it lands.
    let mut dirty = Vec::new();
    let mut offsets = Vec::new();
    let mut frames_seen = 0;
    let mut i = 0;
    while i < clean.len() {
        dirty.push(clean[i]);
        // A frame ends at a 0x00 that follows non-zero bytes.
        if clean[i] == 0 && i > 0 && clean[i - 1] != 0 {
            frames_seen += 1;
            if frames_seen % 5 == 0 {
                offsets.push(dirty.len() as u64);
                dirty.extend_from_slice(&[0x01, 0xfe, 0x80, 0x13, 0x00, 0x42, 0x99]);
            }
        }
        i += 1;
    }
    let dirty_path = dir.path().join("dirty.log");
    std::fs::write(&dirty_path, &dirty).unwrap();
    let out = pumpctl()
        .args(["decode", "--json"])
        .arg(&dirty_path)
        .assert()
        .success()
        .get_output()
        .clone();
    let items: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let frames = items.iter().filter(|v| v.get("sequence").is_some()).count();
    assert_eq!(frames, frames_clean, "a valid frame was lost");
    let bad: Vec<u64> = items
        .iter()
        .filter(|v| v["bad_frame"] == true)
        .map(|v| v["offset"].as_u64().unwrap())
        .collect();
    assert!(!offsets.is_empty());
    for off in &offsets {
        assert!(
            bad.contains(off),
            "garbage at {off} not reported (bad: {bad:?})"
        );
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{} bad frames", bad.len())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("offsets {}", offsets[0])),
        "{stderr}"
    );

    // The human table says the same, and console text stays text.
    pumpctl()
        .arg("decode")
        .arg(&dirty_path)
        .assert()
        .success()
        .stdout(predicate::str::contains("BAD FRAME"))
        .stdout(predicate::str::contains("console text"))
        .stdout(predicate::str::contains("boot: simulated pump"));
}

#[test]
fn decode_reads_stdin_and_console_text_is_not_an_error() {
    let frame = encode_stream_frame_vec(&Frame {
        sequence: 7,
        flags: 0,
        message: Message::PatientBolusRequested(pump_protocol::PatientBolusRequested {
            time_ms: 1_735_689_600_000,
        }),
    })
    .unwrap();
    let mut stream = b"U-Boot style console line\r\n".to_vec();
    stream.extend(&frame);
    stream.extend(b"another line\n");
    stream.extend(&frame);
    pumpctl()
        .arg("decode")
        .arg("-")
        .write_stdin(stream)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2 frames, 0 bad frames, 2 console text lines",
        ))
        .stdout(predicate::str::contains("PatientBolusRequested"));
}

// ------------------------------------------------------------ fault scripts --

#[test]
fn sr_host_005_motor_stall_raises_a_high_alarm_and_stops_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(
        dir.path(),
        &example("baclofen.toml"),
        2,
        Some("d0 06:00 stall\nd0 06:15 stall-cleared\n"),
        &[],
    );
    let items = decode_json(&dir.path().join("out/telemetry.log"));
    let alarm = items
        .iter()
        .find(|v| kind(v) == "AlarmRaised" && v["fields"]["code"] == "MotorStall")
        .expect("no MotorStall alarm");
    assert_eq!(alarm["fields"]["priority"], "High");
    let stall_ms = alarm["fields"]["time_ms"].as_u64().unwrap();
    assert!(items
        .iter()
        .any(|v| kind(v) == "DeliveryRecord" && v["fields"]["outcome"] == "Aborted"));
    // No drug moved between the jam and the clearing (a jammed motor moves
    // none; the capsule stops stepping within the encoder limit).
    let mut reader = csv::Reader::from_path(dir.path().join("out/steps.csv")).unwrap();
    let utc: Vec<u64> = reader
        .records()
        .map(|r| r.unwrap().get(1).unwrap().parse().unwrap())
        .collect();
    let start = 1_735_689_600_000 + 6 * 3_600_000;
    let cleared = start + 15 * 60_000;
    assert!(utc.iter().any(|t| *t < start));
    assert!(!utc.iter().any(|t| *t >= start && *t < cleared));
    // Delivery resumes after the clinician clears the fault.
    assert!(utc.iter().any(|t| *t > cleared));
    assert!(stall_ms < start + 3_600_000);
    // The capsule commanded at most its encoder limit of steps into the jam.
    let t = &summary["truth"];
    let jammed = t["commanded_steps"].as_u64().unwrap() - t["moved_steps"].as_u64().unwrap();
    assert!((1..=5).contains(&jammed), "{jammed} steps into the jam");
}

#[test]
fn sr_host_005_power_loss_mid_bolus_neither_repeats_nor_loses_volume() {
    let dir = tempfile::tempdir().unwrap();
    // Morphine PTM bolus: 100 µg = 10 000 nL over 5 min; power fails 2 min in.
    let summary = simulate(
        dir.path(),
        &example("morphine.toml"),
        1,
        Some("d0 10:00 bolus\nd0 10:02 power-loss down_min=3\n"),
        &[],
    );
    let items = decode_json(&dir.path().join("out/telemetry.log"));
    let granted = items
        .iter()
        .filter(|v| kind(v) == "PatientBolusGranted")
        .count();
    assert_eq!(
        granted, 1,
        "the bolus must not be restarted after the reset"
    );
    let bolus: Vec<&Value> = items
        .iter()
        .filter(|v| kind(v) == "DeliveryRecord" && v["fields"]["delivery_kind"] == "PatientBolus")
        .collect();
    // Interrupted with what the therapy record confirms, then the steps
    // reserved after it, logged as Unconfirmed at their upper bound.
    let outcome = |v: &Value| v["fields"]["outcome"].as_str().unwrap().to_string();
    assert_eq!(
        bolus.iter().map(|v| outcome(v)).collect::<Vec<_>>(),
        ["Interrupted", "Unconfirmed"],
        "{bolus:?}"
    );
    let partial: u64 = bolus
        .iter()
        .map(|v| v["fields"]["volume_nl"].as_u64().unwrap())
        .sum();
    assert!(partial > 0 && partial < 10_000, "{partial}");
    // Nothing lost: the log accounts for every motor step, over by at most
    // its stated uncertainty, and the reservoir agrees with it.
    // Verifies: SR-PER-006
    let d = &summary["delivered"];
    let by_log = d["by_log_nl"].as_u64().unwrap() + d["in_flight_at_end_nl"].as_u64().unwrap();
    let motor = d["motor_commanded_nl"].as_u64().unwrap();
    let unconfirmed = d["unconfirmed_in_log_nl"].as_u64().unwrap();
    assert!(unconfirmed > 0);
    assert!(
        by_log >= motor && by_log - motor <= unconfirmed.min(8_000),
        "{by_log} {motor}"
    );
    assert_eq!(motor, d["motor_moved_nl"].as_u64().unwrap());
    assert_eq!(by_log, d["reservoir_accounted_nl"].as_u64().unwrap());
    assert_eq!(summary["truth"]["resets"], 1);
    // The bolus delivered exactly the motor steps made during it.
    let mut reader = csv::Reader::from_path(dir.path().join("out/steps.csv")).unwrap();
    let bolus_start = 10 * 3_600_000u64;
    let in_bolus: u64 = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| {
            let t: u64 = r.get(0).unwrap().parse().unwrap();
            (bolus_start..bolus_start + 2 * 60_000).contains(&t)
        })
        .map(|r| r.get(2).unwrap().parse::<u64>().unwrap())
        .sum();
    // Basal steps also fall in the window; the bolus's records may exceed
    // the motor's steps by the unconfirmed batch, never by more.
    assert!(
        partial <= in_bolus + 8_000,
        "{partial} > {in_bolus} + 8 000"
    );
}

#[test]
fn dosing_app_that_stops_checking_in_triggers_the_watchdog_and_silence_policy() {
    let dir = tempfile::tempdir().unwrap();
    simulate(
        dir.path(),
        &example("baclofen.toml"),
        1,
        Some("d0 06:00 dosing-hang\nd0 12:00 dosing-restart\n"),
        &[],
    );
    let items = decode_json(&dir.path().join("out/telemetry.log"));
    let alarm = items
        .iter()
        .find(|v| kind(v) == "AlarmRaised" && v["fields"]["code"] == "DosingWatchdog")
        .expect("no watchdog alarm");
    assert_eq!(alarm["fields"]["priority"], "High");
    // baclofen.toml continues basal at the safe rate while the app is silent.
    assert!(items
        .iter()
        .any(|v| kind(v) == "DeliveryRecord" && v["fields"]["delivery_kind"] == "SilenceFallback"));
}

// ---------------------------------------------- defects the simulator found --

/// `(utc_ms)` of every step in `steps.csv`.
fn step_times_utc(dir: &Path) -> Vec<u64> {
    let mut reader = csv::Reader::from_path(dir.join("out/steps.csv")).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().get(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn sr_host_005_empty_reservoir_then_refill_neither_busy_waits_nor_stays_stopped() {
    // Verifies: SR-DOS-006
    // Verifies: SR-DOS-013
    // 100 µL of baclofen-flex last about nine hours; the refill comes the
    // next day at noon, after a night fault-stopped.
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(
        dir.path(),
        &example("baclofen-flex.toml"),
        3,
        Some("d1 12:00 refill volume_ul=10000\n"),
        &["--fill-ul", "100"],
    );
    let t = &summary["truth"];
    assert_eq!(t["dosing_busy_wakeups"], 0);
    // Watchdog half-interval (7.5 min), schedule edges, a few retries.
    let wakes = t["dosing_wakeups"].as_u64().unwrap();
    assert!(
        wakes < 3 * (24 * 8 + 24),
        "{wakes} dosing wake-ups in 3 days"
    );
    let alarms = summary["alarms"].as_array().unwrap();
    assert!(alarms.iter().any(|a| a["code"] == "ReservoirEmpty"
        && a["time_ms"].as_u64().unwrap() > 1_735_689_600_000 + 3_600_000));
    // Delivery starts again after the refill and keeps to the schedule.
    let refill = 1_735_689_600_000 + 36 * 3_600_000;
    let steps = step_times_utc(dir.path());
    let after = steps.iter().filter(|t| **t > refill).count() as u64;
    // 1.5 days at 400..700 µg/day at 2000 µg/mL: at least 300 µL, 1200 steps.
    assert!(after >= 1_200, "{after} steps after the refill");
}

#[test]
fn sr_host_005_fault_script_keeps_therapy_going_after_the_dosing_app_restarts() {
    // Verifies: SR-DOS-012
    // The shipped fault script: a stall, a power loss mid-bolus, a dosing
    // app hang and restart (the capsule runs the watchdog's fallback basal
    // meanwhile), a clock change.
    let dir = tempfile::tempdir().unwrap();
    let script = std::fs::read_to_string(example("faults.txt")).unwrap();
    let summary = simulate(
        dir.path(),
        &example("baclofen-flex.toml"),
        5,
        Some(&script),
        &[],
    );
    assert_eq!(summary["truth"]["dosing_busy_wakeups"], 0);
    let items = decode_json(&dir.path().join("out/telemetry.log"));
    // After the restart (d3 08:40) the app takes basal over from the
    // fallback once: one run ends, not a burst of them.
    let restart = 1_735_689_600_000 + 3 * 86_400_000 + (8 * 60 + 40) * 60_000;
    let ended_at_restart = items
        .iter()
        .filter(|v| {
            kind(v) == "DeliveryRecord"
                && v["fields"]["outcome"] != "Checkpoint"
                && v["fields"]["time_ms"].as_u64() == Some(restart)
        })
        .count();
    assert_eq!(ended_at_restart, 1, "runs ended at the restart");
    assert!(items.iter().any(|v| kind(v) == "DeliveryRecord"
        && v["fields"]["delivery_kind"] == "Basal"
        && v["fields"]["time_ms"].as_u64().unwrap() > restart + 3_600_000));
    // Therapy goes on: every full day delivers the flex schedule.
    for day in &summary["daily"].as_array().unwrap()[1..5] {
        let dose = day["dose_ug"].as_u64().unwrap();
        assert!((480..=800).contains(&dose), "{day}");
    }
}

#[test]
fn sr_evt_003_every_press_reaches_the_log_through_the_capsule() {
    // Verifies: SR-EVT-003
    // Three presses: the second while the first bolus still runs, the third
    // after it inside the therapy's 2 h lockout (the envelope's is 1 h).
    // The dosing app refuses both itself and reports them to the capsule.
    let dir = tempfile::tempdir().unwrap();
    simulate(
        dir.path(),
        &example("baclofen-flex.toml"),
        1,
        Some("d0 15:00 bolus\nd0 15:02 bolus\nd0 16:30 bolus\n"),
        &[],
    );
    let items = decode_json(&dir.path().join("out/telemetry.log"));
    let of = |k: &str| items.iter().filter(|v| kind(v) == k).collect::<Vec<_>>();
    assert_eq!(of("PatientBolusRequested").len(), 3);
    assert_eq!(of("PatientBolusGranted").len(), 1);
    let denied = of("PatientBolusDenied");
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[0]["fields"]["reason"], "Busy");
    assert_eq!(denied[1]["fields"]["reason"], "LockoutActive");
    assert_eq!(denied[1]["fields"]["lockout_remaining_ms"], 30 * 60_000);
    // All numbered by the capsule, in one sequence: no app-made numbers.
    let mut sequences: Vec<u64> = items
        .iter()
        .filter(|v| v["fields"].get("time_ms").is_some())
        .filter_map(|v| v["sequence"].as_u64())
        .collect();
    assert!(sequences.iter().all(|s| *s < 0x8000_0000), "{sequences:?}");
    sequences.sort_unstable();
    sequences.dedup();
    assert!(denied
        .iter()
        .all(|v| sequences.contains(&v["sequence"].as_u64().unwrap())));
}

// ------------------------------------------- telemetry app and host link --

const FROM_LOG: u64 = 1;

/// Frames of a decoded log that are stored events (read back from the
/// telemetry app's log), in the order the host received them.
fn logged_events(items: &[Value]) -> Vec<&Value> {
    items
        .iter()
        .filter(|v| v["flags"].as_u64().is_some_and(|f| f & FROM_LOG != 0))
        .collect()
}

#[test]
fn sr_host_008_telemetry_log_is_what_the_host_read_over_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(
        dir.path(),
        &example("baclofen-flex.toml"),
        3,
        Some("d0 00:00 patient-presses per_day=4\nd1 10:00 refill volume_ul=20000\n"),
        &[],
    );
    let items = decode_json(&dir.path().join("out/telemetry.log"));
    // Every frame is either a stored event read back with `ReadLog`
    // (FROM_LOG) or the telemetry app's answer to a host request.
    for v in items.iter().filter(|v| v.get("kind").is_some()) {
        let from_log = v["flags"].as_u64().unwrap() & FROM_LOG != 0;
        let answer = matches!(kind(v), "Ack" | "Nack" | "StatusSnapshot" | "LogChunkEnd");
        assert!(from_log != answer, "{v}");
    }
    // The stored events arrive once each, in sequence, with no gap.
    let events = logged_events(&items);
    let sequences: Vec<u64> = events
        .iter()
        .map(|v| v["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (0..sequences.len() as u64).collect::<Vec<_>>());
    assert!(!events.iter().any(|v| kind(v) == "LogGap"));
    // The host read daily: a status and the log, up to the end.
    let statuses = items.iter().filter(|v| kind(v) == "StatusSnapshot").count();
    assert_eq!(statuses, 4);
    let last_end = items
        .iter()
        .rev()
        .find(|v| kind(v) == "LogChunkEnd")
        .unwrap();
    assert_eq!(last_end["fields"]["more"], false);
    assert_eq!(
        last_end["fields"]["next_sequence"].as_u64().unwrap(),
        sequences.len() as u64
    );
    // Programmer commands went over the link and were acknowledged.
    let acks: Vec<&str> = items
        .iter()
        .filter(|v| kind(v) == "Ack")
        .map(|v| v["fields"]["request_kind"].as_str().unwrap())
        .collect();
    // Since protocol 1.1 the programmer signs what changes therapy: the
    // answers name the wrapper, and the pump's log names what it carried.
    assert_eq!(
        acks,
        [
            "AuthenticatedCommand",
            "InstallPrescription",
            "AuthenticatedCommand",
            "AuthenticatedCommand"
        ]
    );
    let authenticated: Vec<&str> = events
        .iter()
        .filter(|v| kind(v) == "CommandAuthenticated")
        .map(|v| v["fields"]["command_kind"].as_str().unwrap())
        .collect();
    assert_eq!(authenticated, ["SetClock", "Refill", "Refill"]);
    assert_eq!(summary["log"]["lost_events"], 0);
    let t = &summary["truth"];
    assert_eq!(t["events_read"].as_u64().unwrap(), sequences.len() as u64);
    assert_eq!(t["commands_acknowledged"], 4);
}

#[test]
fn sr_host_008_refused_programmer_commands_get_the_capsules_nack() {
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(
        dir.path(),
        &example("baclofen-flex.toml"),
        1,
        Some(
            "d0 08:00 clear-fault code=motor-stall\n\
             d0 09:00 dosing-hang\n\
             d0 09:05 clinician-bolus dose_ug=20 duration_min=10\n\
             d0 10:00 dosing-restart\n\
             d0 11:00 refill volume_ul=30000\n",
        ),
        &[],
    );
    let commands: Vec<&str> = summary["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // No stall to clear; the hung dosing app cannot take a bolus; 30 mL do
    // not fit the 20 mL reservoir.
    assert!(
        commands[3].ends_with("ClearFault: refused: InvalidArgument"),
        "{commands:?}"
    );
    assert!(
        commands[4].ends_with("ClinicianBolus 20 ug: refused: NotReady"),
        "{commands:?}"
    );
    assert!(
        commands[5].ends_with("Refill: refused: InvalidArgument"),
        "{commands:?}"
    );
    let items = decode_json(&dir.path().join("out/telemetry.log"));
    let nacks: Vec<(&str, &str)> = items
        .iter()
        .filter(|v| kind(v) == "Nack")
        .map(|v| {
            (
                v["fields"]["request_kind"].as_str().unwrap(),
                v["fields"]["error"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nacks,
        [
            ("AuthenticatedCommand", "InvalidArgument"),
            ("AuthenticatedCommand", "NotReady"),
            ("AuthenticatedCommand", "InvalidArgument")
        ]
    );
}

#[test]
fn sr_host_008_the_telemetry_log_survives_a_power_loss() {
    // The host reads at midnight; the power fails at noon. What the
    // telemetry app had stored in the morning is still read the next
    // midnight, from its flash, with nothing lost or repeated.
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(
        dir.path(),
        &example("baclofen-flex.toml"),
        2,
        Some("d0 12:00 power-loss down_min=10\n"),
        &[],
    );
    assert_eq!(summary["truth"]["resets"], 1);
    let items = decode_json(&dir.path().join("out/telemetry.log"));
    let events = logged_events(&items);
    let noon = 1_735_689_600_000u64 + 12 * 3_600_000;
    let morning = events
        .iter()
        .filter(|v| kind(v) == "DeliveryRecord" && v["fields"]["time_ms"].as_u64().unwrap() < noon)
        .count();
    assert!(morning >= 11, "{morning} morning records");
    assert!(!events.iter().any(|v| kind(v) == "LogGap"));
    let mut sequences: Vec<u64> = events
        .iter()
        .map(|v| v["sequence"].as_u64().unwrap())
        .collect();
    let n = sequences.len();
    sequences.dedup();
    assert_eq!(sequences.len(), n, "a stored event was read twice");
    // The interrupted basal run is in the log, and the log accounts for
    // every step the motor made.
    assert!(events
        .iter()
        .any(|v| kind(v) == "DeliveryRecord" && v["fields"]["outcome"] == "Interrupted"));
    let d = &summary["delivered"];
    let by_log = d["by_log_nl"].as_u64().unwrap() + d["in_flight_at_end_nl"].as_u64().unwrap();
    let motor = d["motor_commanded_nl"].as_u64().unwrap();
    let unconfirmed = d["unconfirmed_in_log_nl"].as_u64().unwrap();
    assert!(
        by_log >= motor && by_log - motor <= unconfirmed.min(8_000),
        "{by_log} {motor}"
    );
}

// --------------------------------------------------------------- rx check --

#[test]
fn sr_host_001_rx_check_passes_the_examples_and_names_fields_of_problems() {
    for f in ["baclofen-flex.toml", "baclofen.toml", "morphine.toml"] {
        pumpctl()
            .args(["rx", "check"])
            .arg(example(f))
            .assert()
            .success()
            .stdout(predicate::str::contains("OK: 0 error(s)"));
    }
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("baclofen-flex.toml"))
        .unwrap()
        .replace("rate_ug_per_day = 450", "rate_ug_per_day = 750")
        .replace("max_per_24h = 4", "max_per_24h = 9")
        .replace(
            "concentration_ug_per_ml = 2000",
            "concentration_ug_per_ml = 2",
        );
    let rx = dir.path().join("bad.toml");
    std::fs::write(&rx, text).unwrap();
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: basal.steps[2].rate_ug_per_day",
        ))
        .stdout(predicate::str::contains("error: patient_bolus.max_per_24h"))
        .stdout(predicate::str::contains(
            "error: drug.concentration_ug_per_ml: 2 µg/mL is below the library's range",
        ))
        .stdout(predicate::str::contains("mg/mL"))
        .stdout(predicate::str::contains("REFUSED"));
}

#[test]
fn sr_host_001_a_drug_not_in_the_library_is_refused_and_nothing_is_signed() {
    // Verifies: SR-HOST-001 (Open PCA R6.9.0(4): an unknown drug is reported)
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let unknown = edited(
        "morphine.toml",
        &[("name = \"morphine\"", "name = \"morphin\"")],
    );
    let rx = write_rx(d, "unknown.toml", &unknown);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: drug.name: `morphin` is not in the drug library (known: ",
        ));
    rx_sign(d, &rx, 7, &[]).assert().code(1);
    assert!(!d.join("rx-7.bin").exists(), "a prescription was signed");
    // The same file with the library's name signs.
    let known = write_rx(d, "known.toml", &edited("morphine.toml", &[]));
    rx_sign(d, &known, 8, &[]).assert().success();
    assert!(d.join("rx-8.bin").exists());
}

#[test]
fn sr_host_019_rx_sign_records_the_drug_library_it_checked_against() {
    // Verifies: SR-HOST-019
    use sha2::{Digest, Sha256};
    let hex = |bytes: &[u8]| -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let library =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/drug-library.toml"))
            .unwrap();
    let identity = format!(
        "checked against drug library 2026.1 (effective 2026-12-01, sha-256 {})",
        hex(&library)
    );
    pumpctl()
        .args(["rx", "check"])
        .arg(example("morphine.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains(identity.as_str()));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rx_sign(d, &example("morphine.toml"), 9, &[])
        .assert()
        .success()
        .stdout(predicate::str::contains(identity.as_str()));
    let frame = std::fs::read(d.join("rx-9.bin")).unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("rx-9.bin.record.json")).unwrap()).unwrap();
    assert_eq!(record["drug_library"]["version"], "2026.1");
    assert_eq!(record["drug_library"]["effective_date"], "2026-12-01");
    assert_eq!(record["drug_library"]["sha256"], hex(&library));
    assert_eq!(record["install_frame_sha256"], hex(&frame));
    assert_eq!(record["serial"], 9);
    assert_eq!(record["device_id"], 0x00C0_FFEE);
    assert_eq!(record["drug"], "morphine");
    // A refused prescription leaves no record.
    let unknown = edited(
        "morphine.toml",
        &[("name = \"morphine\"", "name = \"morphin\"")],
    );
    let rx = write_rx(d, "unknown.toml", &unknown);
    rx_sign(d, &rx, 10, &[]).assert().code(1);
    assert!(!d.join("rx-10.bin.record.json").exists());
}

#[test]
fn sr_host_001_daily_total_counts_every_allotted_bolus() {
    let dir = tempfile::tempdir().unwrap();
    // 493.75 µg basal + 6 × 50 µg = 793.75 µg; the envelope allows 700 µg.
    let text = std::fs::read_to_string(example("baclofen-flex.toml"))
        .unwrap()
        .replace("dose_ug = 25", "dose_ug = 50")
        .replace("max_per_24h = 4", "max_per_24h = 6")
        .replace("max_daily_dose_ug = 800", "max_daily_dose_ug = 700");
    let rx = dir.path().join("total.toml");
    std::fs::write(&rx, text).unwrap();
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: envelope.max_daily_dose_ug: the therapy can reach 793 µg per 24 h",
        ));
}

#[test]
fn sr_host_002_unit_mixups_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    // 3 "µg/day" of morphine was meant as 3 mg/day; 0.15 mL catheter typed as 150 000 µL.
    let text = std::fs::read_to_string(example("morphine.toml"))
        .unwrap()
        .replace("rate_ug_per_day = 1000", "rate_ug_per_day = 3")
        .replace("volume_ul = 200", "volume_ul = 200000");
    let rx = dir.path().join("units.toml");
    std::fs::write(&rx, text).unwrap();
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: basal.steps[0].rate_ug_per_day: 3 µg/day of morphine",
        ))
        .stdout(predicate::str::contains("was it entered in mg?"))
        .stdout(predicate::str::contains("error: catheter.volume_ul"))
        .stdout(predicate::str::contains("nL"));
    // A float where an integer unit is expected is a parse error at its line.
    let text = std::fs::read_to_string(example("morphine.toml"))
        .unwrap()
        .replace("rate_ug_per_day = 1000", "rate_ug_per_day = 0.5");
    std::fs::write(&rx, text).unwrap();
    assert_user_error(pumpctl().args(["rx", "check"]).arg(&rx), "units.toml:");
}

#[test]
fn sr_host_002_conversion_rounds_down_and_matches_the_dosing_app() {
    for (rate, conc) in [
        (400u32, 2000u32),
        (550, 2000),
        (1000, 10_000),
        (7, 3),
        (u32::MAX, 1),
    ] {
        let ours = pumpctl::units::rate_ug_per_day_to_nl_per_h(rate, conc);
        let app = dosing_core::units::basal_rate_nl_per_h(rate, conc);
        assert_eq!(ours.ok(), app.ok(), "{rate} µg/day at {conc} µg/mL");
    }
    for (dose, conc) in [(25u32, 2000u32), (1, 3), (100, 10_000)] {
        let ours = pumpctl::units::dose_ug_to_nl(dose, conc).unwrap();
        assert_eq!(Ok(ours), dosing_core::units::dose_volume_nl(dose, conc));
        // Rounded down: the volume never carries more than the dose.
        assert!(u64::from(ours) * u64::from(conc) <= u64::from(dose) * 1_000_000);
    }
}

// ------------------------------------- rx check / rx sign: inputs (issue 17) --

/// Writes `text` as `name` in `dir` and returns its path.
fn write_rx(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `example` with every `(from, to)` replaced (each must be present).
fn edited(example_name: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(example(example_name)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{example_name}: no {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// `rx sign` of `rx` with a fresh key in `dir`, serial `serial`, `extra` args.
fn rx_sign(dir: &Path, rx: &Path, serial: u32, extra: &[&str]) -> Command {
    let key = dir.join("clinic.key");
    if !key.exists() {
        keygen(dir, "clinic.key");
    }
    let mut cmd = pumpctl();
    cmd.args(["rx", "sign"])
        .arg(rx)
        .arg("--key")
        .arg(&key)
        .args(["--device", "0x00C0FFEE", "--serial", &serial.to_string()])
        .arg("--out")
        .arg(dir.join(format!("rx-{serial}.bin")))
        .args(extra);
    cmd
}

#[test]
fn sr_host_009_zero_basal_of_baclofen_is_an_error_unless_stated_on_purpose() {
    // Verifies: SR-HOST-009
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The prescription: baclofen, basal 0 all day, silence basal 0.
    let zero = edited(
        "baclofen.toml",
        &[
            ("rate_ug_per_day = 300", "rate_ug_per_day = 0"),
            (
                "silence_basal_rate_ug_per_day = 200",
                "silence_basal_rate_ug_per_day = 0",
            ),
        ],
    );
    let rx = write_rx(d, "zero.toml", &zero);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: basal.steps: a basal of 0 all day stops baclofen abruptly",
        ))
        .stdout(predicate::str::contains(
            "error: envelope.silence_basal_rate_ug_per_day: 0 µg/day stops baclofen abruptly",
        ))
        .stdout(predicate::str::contains("zero_delivery_on_purpose = true"));
    assert_user_error(
        &mut rx_sign(d, &rx, 2, &["--accept-warnings"]),
        "not signed",
    );
    assert!(!d.join("rx-2.bin").exists());

    // "stop-delivery" for baclofen stops it just the same when the app is silent.
    let stop = edited(
        "baclofen.toml",
        &[(
            "silence_policy = \"continue-basal\"\nsilence_basal_rate_ug_per_day = 200",
            "silence_policy = \"stop-delivery\"",
        )],
    );
    let rx = write_rx(d, "stop.toml", &stop);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: envelope.silence_policy: \"stop-delivery\" stops baclofen abruptly",
        ));

    // Stated on purpose: warnings, signed only with --accept-warnings.
    let on_purpose = zero.replace(
        "[[basal.steps]]",
        "[basal]\nzero_delivery_on_purpose = true\n\n[[basal.steps]]",
    );
    let rx = write_rx(d, "on-purpose.toml", &on_purpose);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "warning: basal.steps: a basal of 0 all day stops baclofen abruptly",
        ))
        .stdout(predicate::str::contains("OK: 0 error(s), 2 warning(s)"));
    assert_user_error(&mut rx_sign(d, &rx, 3, &[]), "--accept-warnings");
    rx_sign(d, &rx, 3, &["--accept-warnings"])
        .assert()
        .success();

    // Morphine's withdrawal is not in the library as dangerous: a zero
    // basal there is not this check's business.
    let morphine = edited(
        "morphine.toml",
        &[("rate_ug_per_day = 1000", "rate_ug_per_day = 0")],
    );
    let rx = write_rx(d, "morphine-zero.toml", &morphine);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains("abruptly").not());
}

#[test]
fn sr_host_010_a_bolus_faster_than_the_boards_motor_is_an_error() {
    // Verifies: SR-HOST-010
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The bolus: 200 µg of morphine at 10 mg/mL over 1 min is
    // 20 µL in 1 min = 1 200 000 nL/h; the board moves at most 1 000 000.
    let fast = edited(
        "morphine.toml",
        &[(
            "dose_ug = 100\nduration_min = 5",
            "dose_ug = 200\nduration_min = 1",
        )],
    );
    let rx = write_rx(d, "fast.toml", &fast);
    let limit = pumpctl::board::hardware_limits().max_rate_nl_per_h;
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "error: patient_bolus.duration_min: 200 µg over 1 min is 1200000 nL/h at 10000 µg/mL, above the board's maximum motor rate of {limit} nL/h"
        )))
        .stdout(predicate::str::contains("give it at least 2 min"));
    assert_user_error(
        &mut rx_sign(d, &rx, 2, &["--accept-warnings"]),
        "not signed",
    );
    // The clinician preset is held to the same limit.
    let fast = edited(
        "morphine.toml",
        &[(
            "dose_ug = 150\nduration_min = 10",
            "dose_ug = 200\nduration_min = 1",
        )],
    );
    let rx = write_rx(d, "fast-clinician.toml", &fast);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: clinician_bolus.duration_min: 200 µg over 1 min",
        ));
    // Under the limit alone, over it beside the basal: refused while the
    // step runs, as the capsule's check_bolus would. Baclofen at 50 µg/mL,
    // basal 300 µg/day = 250 000 nL/h; 5 µg = 100 µL over 7 min ≈ 857 143 nL/h.
    let beside = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../boards/qemu_rv32_virt/scripts/rx-e2e.toml"),
    )
    .unwrap()
    .replace(
        "dose_ug = 1\nduration_min = 2",
        "dose_ug = 5\nduration_min = 7",
    );
    let rx = write_rx(d, "beside.toml", &beside);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: patient_bolus.duration_min: 5 µg over 7 min is 857143 nL/h at 50 µg/mL; with basal.steps[0] (250000 nL/h) beside it",
        ))
        .stdout(predicate::str::contains("give it at least 8 min"));
    // At the suggested duration it passes.
    let rx = write_rx(
        d,
        "beside-ok.toml",
        &beside.replace("duration_min = 7", "duration_min = 8"),
    );
    pumpctl().args(["rx", "check"]).arg(&rx).assert().success();
}

#[test]
fn sr_host_011_a_lockout_below_the_librarys_minimum_is_an_error() {
    // Verifies: SR-HOST-011
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let library = pumpctl::druglib::DrugLibrary::builtin().unwrap();
    let min = library
        .find("morphine")
        .unwrap()
        .min_patient_bolus_lockout_min;
    // The lockout of 0 min, in the therapy and in the envelope.
    let zero = edited(
        "morphine.toml",
        &[
            ("lockout_min = 180", "lockout_min = 0"),
            (
                "min_patient_bolus_lockout_min = 120",
                "min_patient_bolus_lockout_min = 0",
            ),
        ],
    );
    let rx = write_rx(d, "lockout0.toml", &zero);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "error: patient_bolus.lockout_min: 0 min is below the library's minimum lockout for morphine ({min} min)"
        )))
        .stdout(predicate::str::contains(format!(
            "error: envelope.min_patient_bolus_lockout_min: 0 min is below the library's minimum lockout for morphine ({min} min)"
        )));
    assert_user_error(
        &mut rx_sign(d, &rx, 2, &["--accept-warnings"]),
        "not signed",
    );
    // One minute under the minimum is refused, the minimum itself passes.
    for (lockout, ok) in [(min - 1, false), (min, true)] {
        let text = edited(
            "morphine.toml",
            &[
                ("lockout_min = 180", &format!("lockout_min = {lockout}")),
                (
                    "min_patient_bolus_lockout_min = 120",
                    &format!("min_patient_bolus_lockout_min = {lockout}"),
                ),
            ],
        );
        let rx = write_rx(d, "lockout.toml", &text);
        let assert = pumpctl().args(["rx", "check"]).arg(&rx).assert();
        if ok {
            assert.success();
        } else {
            assert.code(1);
        }
    }
}

#[test]
fn sr_host_012_hydromorphone_at_morphine_doses_is_an_error() {
    // Verifies: SR-HOST-012
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 3 mg/day of morphine: inside morphine's usual range...
    let morphine = edited(
        "morphine.toml",
        &[
            ("rate_ug_per_day = 1000", "rate_ug_per_day = 3000"),
            (
                "max_basal_rate_ug_per_day = 1500",
                "max_basal_rate_ug_per_day = 4000",
            ),
            ("max_daily_dose_ug = 2000", "max_daily_dose_ug = 5000"),
        ],
    );
    let rx = write_rx(d, "morphine.toml", &morphine);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains("OK: 0 error(s), 0 warning(s)"));
    // ...is about 15 mg/day of morphine as hydromorphone: refused.
    let hydro = morphine.replace("name = \"morphine\"", "name = \"hydromorphone\"");
    let rx = write_rx(d, "hydromorphone.toml", &hydro);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: envelope.max_daily_dose_ug: 5000 µg per 24 h is outside the library's usual range for hydromorphone (20..2000 µg/day) — hydromorphone is about 5 times as potent as morphine",
        ));
    assert_user_error(
        &mut rx_sign(d, &rx, 2, &["--accept-warnings"]),
        "not signed",
    );
    // The therapy itself is held to the range too, even under an envelope
    // inside it: basal 1 900 µg/day plus the allotted boluses.
    let hydro_therapy = edited(
        "morphine.toml",
        &[
            ("name = \"morphine\"", "name = \"hydromorphone\""),
            ("rate_ug_per_day = 1000", "rate_ug_per_day = 1900"),
            (
                "max_basal_rate_ug_per_day = 1500",
                "max_basal_rate_ug_per_day = 1900",
            ),
        ],
    );
    let rx = write_rx(d, "hydro-therapy.toml", &hydro_therapy);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: basal.steps: the therapy can reach 2350 µg per 24 h, outside the library's usual range for hydromorphone",
        ));
    // Above the usual maximum of morphine itself: an error, no longer a
    // warning that signs unasked.
    let high = edited(
        "morphine.toml",
        &[("max_daily_dose_ug = 2000", "max_daily_dose_ug = 12000")],
    );
    let rx = write_rx(d, "high.toml", &high);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: envelope.max_daily_dose_ug: 12000 µg per 24 h is outside the library's usual range for morphine (100..10000 µg/day)",
        ));
    // Below the usual minimum: baclofen at 10 µg/day, no boluses.
    let low = edited(
        "baclofen.toml",
        &[("rate_ug_per_day = 300", "rate_ug_per_day = 10")],
    );
    let rx = write_rx(d, "low.toml", &low);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: basal.steps: the therapy can reach at most 10 µg per 24 h, below the library's usual range for baclofen (20..1000 µg/day)",
        ));
}

#[test]
fn sr_host_013_rx_sign_refuses_serial_zero_and_warns_near_the_end() {
    // Verifies: SR-HOST-013
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rx = example("baclofen-flex.toml");
    assert_user_error(
        &mut rx_sign(d, &rx, 0, &[]),
        "--serial 0: the pump installs only a serial above the last one",
    );
    assert!(!d.join("rx-0.bin").exists());
    // u32::MAX: nothing left after it; a warning, signed only when accepted.
    assert_user_error(
        &mut rx_sign(d, &rx, u32::MAX, &[]),
        "the pump can never take another prescription after it",
    );
    assert!(!d.join(format!("rx-{}.bin", u32::MAX)).exists());
    rx_sign(d, &rx, u32::MAX, &["--accept-warnings"])
        .assert()
        .success()
        .stdout(predicate::str::contains("warning: --serial"));
    // Within 1 000 of the end: warned; just below: signed as usual.
    assert_user_error(
        &mut rx_sign(d, &rx, u32::MAX - 1_000, &[]),
        "warning: --serial: 4294966295 leaves only 1000 serial(s) above it",
    );
    rx_sign(d, &rx, u32::MAX - 1_001, &[])
        .assert()
        .success()
        .stdout(predicate::str::contains("warning").not());
}

#[test]
fn sr_host_014_a_prescription_with_warnings_is_signed_only_when_accepted() {
    // Verifies: SR-HOST-014
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A reservoir alarm of 50 µL: a warning (meant in mL?), not an error.
    let text = edited(
        "baclofen-flex.toml",
        &[(
            "reservoir_low_threshold_ul = 3000",
            "reservoir_low_threshold_ul = 50",
        )],
    );
    let rx = write_rx(d, "warned.toml", &text);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "warning: envelope.reservoir_low_threshold_ul",
        ))
        .stdout(predicate::str::contains(
            "OK: 0 error(s), 1 warning(s) (rx sign needs --accept-warnings)",
        ));
    assert_user_error(
        &mut rx_sign(d, &rx, 2, &[]),
        "not signed: 1 warning(s) need --accept-warnings after reading them, the first: warning: envelope.reservoir_low_threshold_ul",
    );
    assert!(!d.join("rx-2.bin").exists());
    rx_sign(d, &rx, 2, &["--accept-warnings"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "warning: envelope.reservoir_low_threshold_ul",
        ))
        .stdout(predicate::str::contains("signed baclofen serial 2"));
    // Every shipped example signs without it: none has a warning.
    for (i, f) in ["baclofen-flex.toml", "baclofen.toml", "morphine.toml"]
        .iter()
        .enumerate()
    {
        let serial = u32::try_from(i).unwrap() + 10;
        rx_sign(d, &example(f), serial, &[])
            .assert()
            .success()
            .stdout(predicate::str::contains("warning").not());
    }
}

// ------------------------------------------------ format 2 (issue 17 §4) --

/// The simulator's TEST-ONLY PTM public key, as the examples pair it.
fn simulator_ptm_hex() -> String {
    pumpctl::keys::hex(
        pumpctl::board::simulator_ptm_key()
            .verifying_key()
            .as_bytes(),
    )
}

#[test]
fn sr_host_016_a_patient_bolus_without_a_paired_ptm_is_an_error() {
    // Verifies: SR-HOST-016
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ptm_line = format!("ptm_public_key = \"{}\"\n", simulator_ptm_hex());
    // The example without its [pairing]: every press would be NotPaired.
    let unpaired = edited(
        "baclofen-flex.toml",
        &[("[pairing]\n", ""), (ptm_line.as_str(), "")],
    );
    let rx = write_rx(d, "unpaired.toml", &unpaired);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: pairing.ptm_public_key: the therapy prescribes patient boluses but pairs no patient programmer (PTM): the pump would refuse every request over the link NotPaired",
        ))
        .stdout(predicate::str::contains("pairing: no PTM"));
    assert_user_error(
        &mut rx_sign(d, &rx, 2, &["--accept-warnings"]),
        "not signed: error: pairing.ptm_public_key",
    );
    assert!(!d.join("rx-2.bin").exists());
    // Without a patient bolus, pairing no PTM is fine (baclofen.toml).
    pumpctl()
        .args(["rx", "check"])
        .arg(example("baclofen.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("OK: 0 error(s), 0 warning(s)"));
    // A key that is not 64 hex digits, or both ways of giving it.
    let bad = edited(
        "baclofen-flex.toml",
        &[(ptm_line.as_str(), "ptm_public_key = \"abc\"\n")],
    );
    let rx = write_rx(d, "bad-key.toml", &bad);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: pairing.ptm_public_key: `abc`: expected an Ed25519 public key, 64 hex digits",
        ));
    // The key from a file next to the prescription (KEY.pub of keygen).
    let (_, ptm_pub) = keygen(d, "ptm.key");
    let from_file = edited(
        "baclofen-flex.toml",
        &[(ptm_line.as_str(), "ptm_public_key_file = \"ptm.key.pub\"\n")],
    );
    let rx = write_rx(d, "from-file.toml", &from_file);
    let ptm_hex = std::fs::read_to_string(&ptm_pub).unwrap();
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "pairing: PTM {} may ask for patient boluses",
            ptm_hex.trim()
        )));
    let both = from_file.replace("[pairing]\n", &format!("[pairing]\n{ptm_line}"));
    let rx = write_rx(d, "both.toml", &both);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: pairing: give exactly one of ptm_public_key",
        ));
    let missing = from_file.replace("ptm.key.pub", "nope.pub");
    let rx = write_rx(d, "missing.toml", &missing);
    assert_user_error(
        pumpctl().args(["rx", "check"]).arg(&rx),
        "missing.toml: pairing.ptm_public_key_file: ",
    );
}

/// What `rx check` passes, the pump installs: a clinician interval longer
/// than the pump's 24 h window is an error here as it is in the capsule.
#[test]
fn sr_host_017_a_clinician_interval_longer_than_the_day_is_an_error() {
    // Verifies: SR-HOST-017
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let day = edited(
        "morphine.toml",
        &[("min_interval_min = 120\n", "min_interval_min = 1440\n")],
    );
    pumpctl()
        .args(["rx", "check"])
        .arg(write_rx(d, "day.toml", &day))
        .assert()
        .success();
    let longer = edited(
        "morphine.toml",
        &[("min_interval_min = 120\n", "min_interval_min = 1441\n")],
    );
    let rx = write_rx(d, "longer.toml", &longer);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: clinician_bolus_limits.min_interval_min: 1441 min is longer than the pump's 24 h window (1440 min)",
        ));
    assert_user_error(
        &mut rx_sign(d, &rx, 2, &["--accept-warnings"]),
        "not signed",
    );
}

#[test]
fn sr_host_017_clinician_bolus_limits_are_written_down_and_fit_the_day() {
    // Verifies: SR-HOST-017
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let limits = "[clinician_bolus_limits]\nmax_per_24h = 2\nmin_interval_min = 120\n";
    // A clinician preset with no limits: the format-1 defaults, named.
    let defaulted = edited("morphine.toml", &[(limits, "")]);
    let rx = write_rx(d, "defaulted.toml", &defaulted);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "warning: clinician_bolus_limits: missing: the pump allows clinician boluses under the format-1 defaults, at most 4 per 24 h, starts at least 60 min apart",
        ))
        .stdout(predicate::str::contains("OK: 0 error(s), 1 warning(s)"));
    assert_user_error(&mut rx_sign(d, &rx, 2, &[]), "--accept-warnings");
    // No preset, no limits: nothing to warn about (baclofen-flex.toml).
    pumpctl()
        .args(["rx", "check"])
        .arg(example("baclofen-flex.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("OK: 0 error(s), 0 warning(s)"));
    // A count of 0 beside a preset: the preset could never be given.
    let zero = edited(
        "morphine.toml",
        &[("max_per_24h = 2\n", "max_per_24h = 0\n")],
    );
    let rx = write_rx(d, "zero.toml", &zero);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error: clinician_bolus_limits.max_per_24h: 0 clinician boluses per 24 h: the pump would refuse the [clinician_bolus] preset every time",
        ));
    assert_user_error(
        &mut rx_sign(d, &rx, 2, &["--accept-warnings"]),
        "not signed",
    );
    // ...and without the preset a count of 0 just forbids clinician boluses.
    let no_preset = edited(
        "morphine.toml",
        &[
            ("max_per_24h = 2\n", "max_per_24h = 0\n"),
            ("[clinician_bolus]\ndose_ug = 150\nduration_min = 10\n", ""),
        ],
    );
    let rx = write_rx(d, "no-preset.toml", &no_preset);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains("OK: 0 error(s), 0 warning(s)"));
    // 11 boluses of up to 200 µg are 2 200 µg: above the 2 000 µg a day.
    let many = edited(
        "morphine.toml",
        &[("max_per_24h = 2\n", "max_per_24h = 11\n")],
    );
    let rx = write_rx(d, "many.toml", &many);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "warning: clinician_bolus_limits.max_per_24h: 11 clinician boluses of up to envelope.max_bolus_ug (200 µg) are 2200 µg, above envelope.max_daily_dose_ug (2000 µg)",
        ))
        .stdout(predicate::str::contains("OK: 0 error(s), 1 warning(s)"));
    // 10 fit exactly.
    let ten = edited(
        "morphine.toml",
        &[("max_per_24h = 2\n", "max_per_24h = 10\n")],
    );
    let rx = write_rx(d, "ten.toml", &ten);
    pumpctl()
        .args(["rx", "check"])
        .arg(&rx)
        .assert()
        .success()
        .stdout(predicate::str::contains("OK: 0 error(s), 0 warning(s)"));
}

#[test]
fn sr_host_018_the_pairing_is_shown_before_and_after_signing() {
    // Verifies: SR-HOST-018
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ptm = simulator_ptm_hex();
    pumpctl()
        .args(["rx", "check"])
        .arg(example("morphine.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "pairing: PTM {ptm} may ask for patient boluses and silence alarms"
        )))
        .stdout(predicate::str::contains(
            "clinician boluses: at most 2 per 24 h, starts at least 120 min apart",
        ));
    rx_sign(d, &example("morphine.toml"), 2, &[])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("pairing: PTM {ptm}")));
    // decode shows the format and pairing inside the install frame.
    let items = decode_json(&d.join("rx-2.bin"));
    let install = items
        .iter()
        .find(|v| kind(v) == "InstallPrescription")
        .unwrap();
    assert_eq!(install["fields"]["format"], 2);
    assert_eq!(install["fields"]["ptm_public_key"], ptm.as_str());
    assert_eq!(install["fields"]["clinician_bolus_max_per_24h"], 2);
    assert_eq!(
        install["fields"]["clinician_bolus_min_interval_ms"],
        120 * 60_000
    );
}

// ------------------------------------------- signed commands (issue 17) --

/// `cmd sign` with `args` (before the command) and `command`.
fn cmd_sign(args: &[&str], command: &[&str]) -> Command {
    let mut cmd = pumpctl();
    cmd.args(["cmd", "sign"]).args(args).args(command);
    cmd
}

/// The single AuthenticatedCommand frame of a stream.
fn signed_command_of(bytes: &[u8]) -> (u32, Vec<u8>) {
    let mut found = Vec::new();
    pump_protocol::StreamDecoder::new().feed(bytes, |item| {
        if let pump_protocol::StreamItem::Frame { frame, .. } = item {
            if let Message::AuthenticatedCommand(m) = frame.message {
                found.push((frame.header.sequence.get(), m.signed_command.to_vec()));
            }
        }
    });
    assert_eq!(found.len(), 1, "{bytes:?}");
    found.remove(0)
}

/// Verifies `signed` as the capsule does; returns the body.
fn verify_command(signed: &[u8], public: &[u8; 32]) -> pump_protocol::command_auth::CommandBody {
    use pump_protocol::command_auth::*;
    let parts = split_signed_command(signed).unwrap();
    let mut buf = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
    let message = signed_command_message(parts.body, &mut buf).unwrap();
    let signature = ed25519_dalek::Signature::from_bytes(parts.signature);
    ed25519_dalek::VerifyingKey::from_bytes(public)
        .unwrap()
        .verify_strict(message, &signature)
        .unwrap();
    decode_command_body(parts.body).unwrap()
}

#[test]
fn sr_host_015_cmd_sign_writes_an_authenticated_command_that_verifies() {
    // Verifies: SR-HOST-015
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, key_pub) = keygen(d, "clinic.key");
    let public = pumpctl::keys::load_public(&key_pub).unwrap();
    let out = d.join("suspend.bin");
    let key_arg = key.to_str().unwrap();
    let out_arg = out.to_str().unwrap();
    let common = [
        "--key",
        key_arg,
        "--signer",
        "clinic",
        "--device-id",
        "0x00C0FFEE",
    ];
    cmd_sign(
        &[
            &common[..],
            &["--counter", "7", "--sequence", "3", "--out", out_arg],
        ]
        .concat(),
        &["suspend"],
    )
    .assert()
    .success()
    .stdout(predicate::str::contains(
        "signed Suspend as clinic for device 0x00c0ffee, counter 7",
    ));
    let bytes = std::fs::read(&out).unwrap();
    let (sequence, signed) = signed_command_of(&bytes);
    assert_eq!(sequence, 3);
    let body = verify_command(&signed, &public);
    assert_eq!(body.device_id, 0x00C0_FFEE);
    assert_eq!(body.signer, 1);
    assert_eq!(body.counter, 7);
    assert_eq!(body.kind, pump_protocol::MessageKind::Suspend.code());
    // Without --out: the same bytes as hex (Ed25519 is deterministic).
    let hex = cmd_sign(
        &[&common[..], &["--counter", "7", "--sequence", "3"]].concat(),
        &["suspend"],
    )
    .assert()
    .success()
    .get_output()
    .stdout
    .clone();
    assert_eq!(
        String::from_utf8(hex).unwrap().trim(),
        pumpctl::keys::hex(&bytes)
    );
    // The default counter is the signing time in ms.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    cmd_sign(
        &[&common[..], &["--out", out_arg]].concat(),
        &[
            "refill",
            "--withdrawn-ml",
            "2.5",
            "--added-ml",
            "20",
            "--concentration-ug-per-ml",
            "2000",
        ],
    )
    .assert()
    .success();
    let body = verify_command(&signed_command_of(&std::fs::read(&out).unwrap()).1, &public);
    assert!(body.counter >= before, "{} < {before}", body.counter);
    assert_eq!(
        Message::decode_payload(body.kind, &body.payload).unwrap(),
        Message::Refill(pump_protocol::Refill {
            withdrawn_volume_nl: 2_500_000,
            added_volume_nl: 20_000_000,
            concentration_ug_per_ml: 2000,
        })
    );
    // The simulator's TEST-ONLY PTM key signs a patient bolus request.
    cmd_sign(
        &[
            "--simulator-key",
            "--signer",
            "ptm",
            "--device-id",
            "0x00C0FFEE",
            "--counter",
            "9",
            "--out",
            out_arg,
        ],
        &["patient-bolus"],
    )
    .assert()
    .success();
    let ptm = pumpctl::board::simulator_ptm_key()
        .verifying_key()
        .to_bytes();
    let body = verify_command(&signed_command_of(&std::fs::read(&out).unwrap()).1, &ptm);
    assert_eq!(body.signer, 2);
    assert_eq!(
        body.kind,
        pump_protocol::MessageKind::PatientBolusRequest.code()
    );
    // decode shows who signed what.
    let items = decode_json(&out);
    assert_eq!(items[0]["fields"]["signer"], "ptm");
    assert_eq!(items[0]["fields"]["counter"], 9);
    assert_eq!(items[0]["fields"]["command_kind"], "PatientBolusRequest");
}

#[test]
fn sr_host_015_cmd_sign_refuses_what_the_pump_would_refuse() {
    // Verifies: SR-HOST-015
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("cmd.bin");
    let out_arg = out.to_str().unwrap();
    let ptm = [
        "--simulator-key",
        "--signer",
        "ptm",
        "--device-id",
        "1",
        "--out",
        out_arg,
    ];
    let clinic = [
        "--simulator-key",
        "--signer",
        "clinic",
        "--device-id",
        "1",
        "--out",
        out_arg,
    ];
    // The patient's programmer may not suspend therapy.
    assert_user_error(
        &mut cmd_sign(&ptm, &["suspend"]),
        "Suspend not signed: the ptm signer may not sign Suspend: the pump would refuse it Unauthenticated (it signs only PatientBolusRequest, AcknowledgeAlarm); sign it as clinic",
    );
    // ...nor the clinic ask for a patient bolus.
    assert_user_error(
        &mut cmd_sign(&clinic, &["patient-bolus"]),
        "the clinic signer may not sign PatientBolusRequest",
    );
    assert!(!out.exists());
    assert_user_error(
        &mut cmd_sign(&[&clinic[..], &["--counter", "0"]].concat(), &["resume"]),
        "counter 0",
    );
    assert_user_error(
        &mut cmd_sign(
            &clinic,
            &["clinician-bolus", "--dose-ug", "0", "--duration-min", "10"],
        ),
        "--dose-ug 0",
    );
    assert_user_error(
        &mut cmd_sign(&clinic, &["ack", "--code", "fire"]),
        "--code `fire`: expected one of motor-stall",
    );
    assert_user_error(
        &mut cmd_sign(
            &clinic,
            &[
                "refill",
                "--withdrawn-ml",
                "lots",
                "--added-ml",
                "20",
                "--concentration-ug-per-ml",
                "2000",
            ],
        ),
        "--withdrawn-ml `lots`: expected a volume in mL",
    );
    assert!(!out.exists());
    // Both may acknowledge an alarm.
    for signer in [&ptm, &clinic] {
        cmd_sign(signer, &["ack", "--code", "reservoir-low"])
            .assert()
            .success();
    }
}

// --------------------------------------------------------------- trumpet --

#[test]
fn trumpet_curve_of_a_simulated_step_log() {
    let dir = tempfile::tempdir().unwrap();
    simulate(dir.path(), &example("baclofen.toml"), 1, None, &[]);
    let svg = dir.path().join("trumpet.svg");
    let out = pumpctl()
        .arg("trumpet")
        .arg(dir.path().join("out/steps.csv"))
        .args(["--rate", "25ul/h", "--out"])
        .arg(&svg)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for w in ["2", "5", "11", "19", "31"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{w} "))),
            "window {w} missing:\n{text}"
        );
    }
    // The capsule tracks the ideal curve within a step: over an hour at
    // 25 000 nL/h (100 steps) the overall error is within ±1 %.
    let overall: f64 = text
        .lines()
        .find(|l| l.starts_with("overall error A"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().trim_end_matches('%').trim().parse().ok())
        .unwrap();
    assert!(overall.abs() <= 1.0, "{overall}");
    let doc = std::fs::read_to_string(&svg).unwrap();
    assert!(roxmltree::Document::parse(&doc).is_ok());
    // A telemetry log is not a step log: one line, named.
    assert_user_error(
        pumpctl()
            .arg("trumpet")
            .arg(dir.path().join("out/telemetry.log"))
            .args(["--rate", "25000"]),
        "step log",
    );
}

// ------------------------------------------------------------ user errors --

#[test]
fn sr_host_007_user_errors_are_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Missing file.
    assert_user_error(
        pumpctl().args(["rx", "check"]).arg(d.join("nope.toml")),
        "nope.toml: cannot read: no such file or directory",
    );
    assert_user_error(
        pumpctl().arg("report").arg(d.join("missing.log")),
        "missing.log",
    );
    // Bad TOML.
    std::fs::write(d.join("bad.toml"), "[drug\nname = ").unwrap();
    assert_user_error(
        pumpctl().args(["rx", "check"]).arg(d.join("bad.toml")),
        "bad.toml:1:",
    );
    // Wrong key name in the TOML.
    let wrong = std::fs::read_to_string(example("baclofen.toml"))
        .unwrap()
        .replace("rate_ug_per_day = 300", "rate_mg_per_day = 0");
    std::fs::write(d.join("wrongkey.toml"), wrong).unwrap();
    assert_user_error(
        pumpctl().args(["rx", "check"]).arg(d.join("wrongkey.toml")),
        "unknown field `rate_mg_per_day`",
    );
    // Wrong key file.
    std::fs::write(d.join("not-a-key"), "hello\n").unwrap();
    assert_user_error(
        pumpctl()
            .args(["rx", "sign"])
            .arg(example("baclofen.toml"))
            .arg("--key")
            .arg(d.join("not-a-key"))
            .args(["--device", "1", "--serial", "2"]),
        "not-a-key: expected an Ed25519 private key",
    );
    // Truncated log: cut inside its first frame.
    simulate(d, &example("baclofen.toml"), 1, None, &[]);
    let log = std::fs::read(d.join("out/telemetry.log")).unwrap();
    let start = log.iter().position(|b| *b == 0).unwrap();
    std::fs::write(d.join("truncated.log"), &log[start..start + 12]).unwrap();
    assert_user_error(
        pumpctl().arg("report").arg(d.join("truncated.log")),
        "truncated.log: no valid frame",
    );
    assert_user_error(
        pumpctl().arg("decode").arg(d.join("truncated.log")),
        "truncated.log: no valid frame",
    );
    // Truncated mid-stream: everything before the cut still decodes.
    std::fs::write(d.join("cut.log"), &log[..log.len() - 5]).unwrap();
    pumpctl()
        .arg("decode")
        .arg(d.join("cut.log"))
        .assert()
        .success()
        .stdout(predicate::str::contains("truncated frame"));
    // Garbage stream.
    let garbage: Vec<u8> = (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(d.join("garbage.bin"), garbage).unwrap();
    assert_user_error(
        pumpctl().arg("decode").arg(d.join("garbage.bin")),
        "not a pump telemetry stream",
    );
    assert_user_error(
        pumpctl().arg("report").arg(d.join("garbage.bin")),
        "garbage.bin: no valid frame",
    );
    // Bad event script.
    std::fs::write(
        d.join("bad-events.txt"),
        "d0 08:00 bolus\nd1 09:00 explode\n",
    )
    .unwrap();
    assert_user_error(
        pumpctl()
            .arg("simulate")
            .arg(example("baclofen.toml"))
            .arg("--events")
            .arg(d.join("bad-events.txt")),
        "bad-events.txt:2: unknown event `explode`",
    );
    // Empty input.
    std::fs::write(d.join("empty.log"), b"").unwrap();
    assert_user_error(pumpctl().arg("decode").arg(d.join("empty.log")), "empty");
}

#[test]
fn every_command_help_shows_an_example() {
    for args in [
        vec!["demo"],
        vec!["simulate"],
        vec!["decode"],
        vec!["rx", "check"],
        vec!["rx", "sign"],
        vec!["cmd", "sign"],
        vec!["keygen"],
        vec!["report"],
        vec!["trumpet"],
        vec!["bench"],
    ] {
        pumpctl()
            .args(&args)
            .arg("--help")
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
}

#[cfg(unix)]
#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "k");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_to_string(public).unwrap().trim().len(), 64);
    assert_user_error(
        pumpctl().arg("keygen").arg("--out").arg(&key),
        "already exists",
    );
}
