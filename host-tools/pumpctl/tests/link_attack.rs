//! The security review's attack, replayed through the simulator: anyone who
//! can speak on the telemetry link sends clinician boluses. Before protocol
//! 1.1, seven of twelve were acknowledged (1.4 mg of intrathecal morphine in
//! 21 minutes). Now every unsigned, forged or replayed command is refused
//! in the capsule, and therapy is exactly what it is without the attacker.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn simulate(dir: &Path, script: &str) -> Value {
    std::fs::create_dir_all(dir).unwrap();
    let events = dir.join("events.txt");
    std::fs::write(&events, script).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_pumpctl"))
        .arg("simulate")
        .arg(example("morphine.toml"))
        .args(["--days", "1", "--no-charts", "--out"])
        .arg(dir.join("out"))
        .arg("--events")
        .arg(&events)
        .status()
        .unwrap();
    assert!(status.success());
    serde_json::from_slice(&std::fs::read(dir.join("out/summary.json")).unwrap()).unwrap()
}

/// The programmer's genuine commands, the same in both runs.
const PROGRAMMER: &str = "d0 06:00 suspend\nd0 06:30 resume\n";

#[test]
fn sr_auth_007_the_twelve_bolus_attack_through_the_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = simulate(&dir.path().join("baseline"), PROGRAMMER);
    // Twelve clinician boluses of 200 µg over 2 min, three minutes apart,
    // as unsigned 1.0 frames, signed with another key, and replays of the
    // programmer's last signed command.
    let mut script = PROGRAMMER.to_string();
    for i in 0..12 {
        let mode = ["unsigned", "forged", "replay"][i % 3];
        let minute = 7 * 60 + 3 * i;
        script.push_str(&format!(
            "d0 {:02}:{:02} attack mode={mode} dose_ug=200 duration_min=2\n",
            minute / 60,
            minute % 60
        ));
    }
    let attacked = simulate(&dir.path().join("attacked"), &script);
    let truth = &attacked["truth"];
    assert_eq!(truth["attacks_sent"], 12);
    assert_eq!(truth["attacks_accepted"], 0);
    let verdicts: Vec<&str> = attacked["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .filter(|c| c.contains(" attack ("))
        .collect();
    assert_eq!(verdicts.len(), 12);
    for (i, verdict) in verdicts.iter().enumerate() {
        let expected = [
            "refused: Unauthenticated",
            "refused: Unauthenticated",
            "refused: Replayed",
        ][i % 3];
        assert!(verdict.ends_with(expected), "{verdict}");
    }
    // Therapy unchanged: the same volume, the same boluses (none).
    assert_eq!(
        attacked["delivered"]["by_log_nl"],
        baseline["delivered"]["by_log_nl"]
    );
    assert_eq!(
        attacked["delivered"]["motor_commanded_nl"],
        baseline["delivered"]["motor_commanded_nl"]
    );
    // The genuine suspend and resume were acknowledged, both runs.
    assert_eq!(
        baseline["truth"]["commands_acknowledged"],
        attacked["truth"]["commands_acknowledged"]
    );
}

/// The patient's own programmer, paired by the prescription (format 2),
/// asks for boluses over the link; the envelope still bounds them.
#[test]
fn sr_auth_004_the_paired_ptm_asks_for_boluses_over_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(
        dir.path(),
        "d0 08:00 ptm-bolus\nd0 08:30 ptm-bolus\nd0 12:00 ptm-bolus\n",
    );
    let verdicts: Vec<&str> = summary["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .filter(|c| c.contains("PatientBolusRequest"))
        .collect();
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    assert!(verdicts[0].ends_with("accepted"), "{verdicts:?}");
    // Inside the prescription's lockout: refused by the pump, not the link.
    assert!(
        verdicts[1].ends_with("refused: LockoutActive"),
        "{verdicts:?}"
    );
    assert!(verdicts[2].ends_with("accepted"), "{verdicts:?}");
    assert_eq!(summary["patient_boluses"]["granted"], 2);
}
