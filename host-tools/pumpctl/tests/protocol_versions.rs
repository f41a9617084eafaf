//! `pumpctl decode` and `report` read every released protocol version
//! (`docs/protocol.md` §6.2, rule C6): the golden frames of 1.0 and 1.1,
//! as logs, decode to the same messages with their own version, and the
//! outcome 1.1 added (`Unconfirmed`) is shown by name and counted as
//! delivered, as §4.2.3 says.

use std::path::{Path, PathBuf};

use pump_protocol::{decode_frame, RELEASED_VERSIONS};
use pumpctl::analysis::analyse;
use pumpctl::decode::{decode_all, item_json, Format, Item, Renderer};
use serde_json::Value;

fn golden_dir((major, minor): (u8, u8)) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../protocol/tests/golden/v{major}.{minor}"))
}

/// The golden frames of a version, by file stem, in name order.
fn golden(version: (u8, u8)) -> Vec<(String, Vec<u8>)> {
    let dir = golden_dir(version);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|entry| {
            let path = entry.expect("entry").path();
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8");
            (stem.to_owned(), std::fs::read(&path).expect("readable"))
        })
        .collect();
    files.sort();
    files
}

/// COBS (`docs/protocol.md` §3.1), written out here so that a frame is
/// logged with the bytes it was released with, whatever this crate's
/// encoder writes now.
fn stream_item(frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = out.len();
    out.push(0);
    for &byte in frame {
        if byte == 0 {
            out[code_at] = (out.len() - code_at) as u8;
            code_at = out.len();
            out.push(0);
        } else {
            out.push(byte);
            if out.len() - code_at == 0xFF {
                out[code_at] = 0xFF;
                code_at = out.len();
                out.push(0);
            }
        }
    }
    out[code_at] = (out.len() - code_at) as u8;
    out.push(0);
    out
}

/// A log of the golden frames of `version`, and their stems in log order.
fn log_of(version: (u8, u8)) -> (Vec<u8>, Vec<String>) {
    let mut log = Vec::new();
    let mut stems = Vec::new();
    for (stem, bytes) in golden(version) {
        log.extend(stream_item(&bytes));
        stems.push(stem);
    }
    (log, stems)
}

fn frames_json(items: &[Item]) -> Vec<Value> {
    items
        .iter()
        .filter(|i| matches!(i, Item::Frame { .. }))
        .map(item_json)
        .collect()
}

#[test]
fn every_released_versions_golden_log_decodes_with_its_version() {
    assert!(RELEASED_VERSIONS.contains(&(1, 0)) && RELEASED_VERSIONS.contains(&(1, 1)));
    for &version in RELEASED_VERSIONS {
        let (log, stems) = log_of(version);
        let (items, counts) = decode_all(&log);
        assert_eq!(counts.bad, 0, "v{version:?}: {items:?}");
        assert_eq!(counts.frames, stems.len() as u64, "v{version:?}");
        for (json, stem) in frames_json(&items).iter().zip(&stems) {
            assert_eq!(json["version"], format!("{}.{}", version.0, version.1));
            let kind = stem.split('.').next().expect("kind");
            assert_eq!(json["kind"], kind, "{stem}");
        }
    }
}

/// A 1.0 log reads as it always did: each 1.0 golden frame gives the same
/// fields as the 1.1 frame of the same example (the version column aside).
#[test]
fn a_1_0_log_decodes_to_the_same_fields_as_1_1() {
    let (old_log, old_stems) = log_of((1, 0));
    let (new_log, new_stems) = log_of((1, 1));
    let old = frames_json(&decode_all(&old_log).0);
    let new = frames_json(&decode_all(&new_log).0);
    for (stem, json) in old_stems.iter().zip(&old) {
        let at = new_stems
            .iter()
            .position(|s| s == stem)
            .unwrap_or_else(|| panic!("no 1.1 golden frame {stem}"));
        assert_eq!(json["fields"], new[at]["fields"], "{stem}");
        assert_eq!(json["kind"], new[at]["kind"], "{stem}");
        assert_eq!(json["sequence"], new[at]["sequence"], "{stem}");
        assert_eq!(json["version"], "1.0");
        assert_eq!(new[at]["version"], "1.1");
    }
}

#[test]
fn unconfirmed_is_shown_by_name_and_counted_as_delivered() {
    let (stem, bytes) = golden((1, 1))
        .into_iter()
        .find(|(stem, _)| stem == "DeliveryRecord.DeliveryOutcome.Unconfirmed")
        .expect("the 1.1 golden frame of Unconfirmed");
    let frame = decode_frame(&bytes).expect("decodes");
    let pump_protocol::Message::DeliveryRecord(record) = &frame.message else {
        panic!("{stem} is a DeliveryRecord");
    };
    let log = stream_item(&bytes);
    let (items, counts) = decode_all(&log);

    let json = frames_json(&items);
    assert_eq!(json[0]["fields"]["outcome"], "Unconfirmed");
    assert_eq!(json[0]["fields"]["volume_nl"], record.volume_nl);

    for (format, needle) in [
        (Format::Table, "outcome=Unconfirmed"),
        (Format::Csv, "outcome=Unconfirmed"),
        (Format::Json, "\"outcome\":\"Unconfirmed\""),
    ] {
        let mut out = Vec::new();
        let mut renderer = Renderer::new(&mut out, format);
        for item in &items {
            renderer.write(item).expect("writes");
        }
        renderer.flush().expect("flushes");
        drop(renderer);
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.contains(needle), "{format:?}: {text}");
    }

    // The report counts it as delivered (its upper bound), the safe side.
    let history = analyse(&items, &counts);
    assert_eq!(history.delivered_nl, u64::from(record.volume_nl));
    let patient: u64 = history.days.iter().map(|d| d.patient_bolus_nl).sum();
    assert_eq!(patient, u64::from(record.volume_nl));
}
