//! A code value this version of the catalogue does not know (added by a
//! later minor version) is kept, not reduced to a bare `Other`
//! (`docs/protocol.md` §4.2): `pumpctl decode` shows it as `Other(<value>)`
//! in JSON, in the table and in CSV, and `pumpctl report` keeps two unknown
//! alarm codes apart.

use assert_cmd::Command;
use pump_protocol::{
    encode_stream_frame_vec, AlarmCleared, AlarmCode, AlarmPriority, AlarmRaised, DeliveryKind,
    DeliveryOutcome, DeliveryRecord, ErrorCode, Frame, Message, PrescriptionRejected,
};
use pumpctl::analysis::analyse;
use pumpctl::decode::decode_all;
use serde_json::{json, Value};

const T0_MS: u64 = 1_767_225_600_000;

fn stream(messages: Vec<Message>) -> Vec<u8> {
    let mut out = Vec::new();
    for (sequence, message) in (1..).zip(messages) {
        out.extend(
            encode_stream_frame_vec(&Frame {
                sequence,
                flags: 0,
                message,
            })
            .unwrap(),
        );
    }
    out
}

/// Known and unknown codes side by side.
fn log() -> Vec<u8> {
    stream(vec![
        Message::AlarmRaised(AlarmRaised {
            time_ms: T0_MS,
            code: AlarmCode::Other(1234),
            priority: AlarmPriority::Other(7),
        }),
        Message::AlarmRaised(AlarmRaised {
            time_ms: T0_MS + 1_000,
            code: AlarmCode::Other(4321),
            priority: AlarmPriority::High,
        }),
        Message::AlarmCleared(AlarmCleared {
            time_ms: T0_MS + 2_000,
            code: AlarmCode::Other(1234),
        }),
        Message::DeliveryRecord(DeliveryRecord {
            time_ms: T0_MS + 3_000,
            delivery_kind: DeliveryKind::Other(40),
            outcome: DeliveryOutcome::Completed,
            volume_nl: 250,
            duration_ms: 1_000,
        }),
        Message::PrescriptionRejected(PrescriptionRejected {
            time_ms: T0_MS + 4_000,
            serial: 9,
            reason: ErrorCode::Other(999),
        }),
    ])
}

fn decode(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pumpctl"))
        .arg("decode")
        .args(args)
        .arg("-")
        .write_stdin(log())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn decode_json_keeps_the_value_of_an_unknown_code() {
    let fields: Vec<Value> = decode(&["--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["fields"].clone())
        .collect();
    assert_eq!(fields.len(), 5);
    assert_eq!(fields[0]["code"], json!("Other(1234)"));
    assert_eq!(fields[0]["priority"], json!("Other(7)"));
    assert_eq!(fields[1]["code"], json!("Other(4321)"));
    // A known code next to an unknown one is still its name.
    assert_eq!(fields[1]["priority"], json!("High"));
    assert_eq!(fields[2]["code"], json!("Other(1234)"));
    assert_eq!(fields[3]["delivery_kind"], json!("Other(40)"));
    assert_eq!(fields[3]["outcome"], json!("Completed"));
    assert_eq!(fields[4]["reason"], json!("Other(999)"));
}

#[test]
fn decode_table_and_csv_keep_the_value_of_an_unknown_code() {
    for out in [decode(&[]), decode(&["--csv"])] {
        for shown in [
            "code=Other(1234) priority=Other(7)",
            "code=Other(4321) priority=High",
            "delivery_kind=Other(40)",
            "reason=Other(999)",
        ] {
            assert!(out.contains(shown), "{shown:?} missing from:\n{out}");
        }
        assert!(!out.contains("=Other "), "{out}");
    }
}

#[test]
fn report_keeps_unknown_alarm_codes_apart() {
    let (items, counts) = decode_all(&log());
    let history = analyse(&items, &counts);
    let alarms: Vec<(&str, &str, Option<u64>)> = history
        .alarms
        .iter()
        .map(|a| (a.code.as_str(), a.priority.as_str(), a.cleared_ms))
        .collect();
    // The clearing of 1234 clears 1234, not the later, other unknown alarm.
    assert_eq!(
        alarms,
        [
            ("Other(1234)", "Other(7)", Some(T0_MS + 2_000)),
            ("Other(4321)", "High", None),
        ]
    );
    assert_eq!(
        history.rejected,
        [(T0_MS + 4_000, 9, "Other(999)".to_string())]
    );
}
