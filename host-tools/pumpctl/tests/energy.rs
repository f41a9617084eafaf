//! The energy section of a simulation and `pumpctl energy` (docs/energy.md).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn pumpctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pumpctl"))
}

#[test]
fn a_simulation_prices_what_the_pump_did() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let status = pumpctl()
        .arg("simulate")
        .arg(examples.join("morphine.toml"))
        .args(["--days", "10", "--no-charts", "--out"])
        .arg(&out)
        .arg("--events")
        .arg(examples.join("faults.txt"))
        .status()
        .unwrap();
    assert!(status.success());
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let e = &summary["energy"];
    let usage = &e["usage"];
    // Every count comes from what the run did.
    assert_eq!(usage["motor_steps"], summary["truth"]["commanded_steps"]);
    assert_eq!(usage["flash_erases"], summary["storage"]["page_erases"]);
    assert_eq!(usage["elapsed_ms"].as_u64(), Some(10 * 86_400_000));
    for count in [
        "wakeups",
        "link_sessions",
        "link_bytes",
        "signature_verifies",
    ] {
        assert!(usage[count].as_u64().unwrap() > 0, "{count}: {usage}");
    }
    // The faults script stalls the motor: the alarm sounded for a while.
    assert!(usage["alarm_tone_ms"].as_u64().unwrap() > 0);
    // The consumers add up to the total, within rounding to µAh.
    let sum: u64 = e["by_consumer_uah"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(sum.abs_diff(e["total_uah"].as_u64().unwrap()) <= 8);
    assert_eq!(e["largest"].as_array().unwrap().len(), 3);
    // The ERI comes 90 days before the end, or at once if the battery, at
    // this use, lasts less (a tone sounding for days drains it: 3 mA).
    let life_days_x100 = e["projected_life_years_x100"].as_u64().unwrap() * 36_525 / 100;
    let lead = e["eri_to_eos_days_x100"].as_u64().unwrap();
    assert!(
        lead == 9_000 || lead.abs_diff(life_days_x100) < 400,
        "{lead} {life_days_x100}"
    );
    assert!(e["projected_eri_utc"].as_str().unwrap() < e["projected_eos_utc"].as_str().unwrap());
}

#[test]
fn energy_prints_the_life_at_the_demo_and_the_maximum_rate() {
    let out = pumpctl().args(["energy", "--days", "30"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| the ")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    // The motor dominates at the maximum rate, and the life is shorter.
    let years = |row: &str| -> f64 {
        row.split("**")
            .nth(1)
            .unwrap()
            .trim_end_matches(" years")
            .parse()
            .unwrap()
    };
    assert!(years(rows[1]) < years(rows[0]), "{text}");
    assert!(rows[1].contains("motor 9"), "{}", rows[1]);
}

/// Seven years in one run (a refill every 45 days), with a battery small
/// enough to end inside them: the replacement indicator comes at least 90
/// days before end of service, and the motor never moves after it.
#[test]
fn sr_bat_002_seven_years_run_through_eri_and_end_of_service() {
    // Verifies: SR-BAT-003
    // Verifies: SR-BAT-004
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let events = dir.path().join("refills.txt");
    let mut script: String = (1..=2555 / 45)
        .map(|n| format!("d{} 10:00 refill volume_ul=20000\n", n * 45))
        .collect();
    // The patient's programmer reads the outlook a month in, and after the
    // ERI should have come.
    script.push_str("d30 12:00 outlook\nd2554 12:00 outlook\n");
    std::fs::write(&events, script).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let status = pumpctl()
        .arg("simulate")
        .arg(examples.join("baclofen-flex.toml"))
        .args([
            "--days",
            "2555",
            "--battery-mah",
            "500",
            "--no-charts",
            "--out",
        ])
        .arg(&out)
        .arg("--events")
        .arg(&events)
        .status()
        .unwrap();
    assert!(status.success());
    let decoded = pumpctl()
        .arg("decode")
        .arg(out.join("telemetry.log"))
        .arg("--json")
        .output()
        .unwrap();
    let raised = |code: &str| -> Vec<u64> {
        String::from_utf8_lossy(&decoded.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == "AlarmRaised" && v["fields"]["code"] == code)
            .map(|v| v["fields"]["time_ms"].as_u64().unwrap())
            .collect()
    };
    let eri = raised("BatteryReplacement");
    let eos = raised("EndOfService");
    assert!(
        !eri.is_empty() && !eos.is_empty(),
        "ERI {eri:?}, EOS {eos:?}"
    );
    let day_ms = 86_400_000;
    assert!(
        eos[0] - eri[0] >= 90 * day_ms,
        "{} days",
        (eos[0] - eri[0]) / day_ms
    );
    // SR-BAT-004: a month in, the pump named the day of its ERI and end of
    // service; the average current of the first month is the whole life's
    // within a few percent (the same prescription, refills alike), so the
    // named dates are within 5 % of the life that followed.
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let outlooks = summary["outlooks"].as_array().unwrap();
    assert_eq!(outlooks.len(), 2, "{outlooks:?}");
    let early = &outlooks[0];
    let named = |key: &str| early[key].as_u64().unwrap();
    let asked = named("time_ms");
    for (key, actual) in [("eri_time_ms", eri[0]), ("eos_time_ms", eos[0])] {
        let (named, life) = (named(key) - asked, actual - asked);
        assert!(
            named.abs_diff(life) * 20 <= life,
            "{key}: named {} days ahead, came after {}",
            named / day_ms,
            life / day_ms
        );
    }
    assert_eq!(early["replacement_recommended"], false);
    assert!(early["refill_by_time_ms"].as_u64().unwrap() > asked);
    let late = &outlooks[1];
    assert_eq!(late["end_of_service"], true);
    assert_eq!(late["replacement_recommended"], true);
    assert!(late["eos_time_ms"].as_u64().unwrap() <= late["time_ms"].as_u64().unwrap());
    // No step after end of service (steps.csv: monotonic ms, UTC ms).
    let steps = std::fs::read_to_string(out.join("steps.csv")).unwrap();
    let last_utc: u64 = steps
        .lines()
        .filter_map(|l| l.split(',').nth(1)?.parse().ok())
        .max()
        .unwrap();
    assert!(
        last_utc <= eos[0],
        "a step {} ms after EOS",
        last_utc - eos[0]
    );
}
