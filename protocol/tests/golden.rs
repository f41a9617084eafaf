//! Golden frames: the raw bytes of one frame per message kind, as released,
//! under `tests/golden/v<major>.<minor>/<KindName>.bin`, and of one frame
//! carrying each code value a version after 1.0 added, under
//! `<KindName>.<Enum>.<Name>.bin` in that version's directory.
//!
//! Every released version's files must still decode to their kind and
//! re-encode to the same bytes (compatibility rule C6 in `docs/protocol.md`),
//! every kind this crate knows must have a golden file in some released
//! version, and every code value added after 1.0 one in its own version.
//!
//! Files are only ever written by `PUMP_BLESS_GOLDEN=1 cargo test -p
//! pump-protocol --test golden`, which creates the *missing* files of the
//! current version from the examples in `tests/common/mod.rs` (every kind's,
//! and the current version's added codes'). It never rewrites an existing
//! file: a released frame that no longer round-trips is a compatibility
//! break to fix in the code, not in the golden file. So a version still open
//! for additions (§6.2) only ever gains files.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{added_code_example, added_code_examples, code_values, encode, example, fix_crc};
use pump_protocol::*;

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn version_dir(major: u8, minor: u8) -> PathBuf {
    golden_root().join(format!("v{major}.{minor}"))
}

/// The kind name a golden file's stem starts with (`DeliveryRecord` of
/// `DeliveryRecord.DeliveryOutcome.Unconfirmed`).
fn kind_of_stem(stem: &str) -> &str {
    stem.split('.').next().unwrap_or(stem)
}

fn blessing() -> bool {
    std::env::var_os("PUMP_BLESS_GOLDEN").is_some_and(|v| v == "1")
}

/// The golden files of one version, by file stem.
fn read_version(major: u8, minor: u8) -> BTreeMap<String, Vec<u8>> {
    let dir = version_dir(major, minor);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!("released version {major}.{minor} has no golden directory {dir:?}: {e}")
    });
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry.expect("readable directory").path();
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("bin"),
            "stray file {path:?} in a golden directory"
        );
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name")
            .to_owned();
        files.insert(stem, fs::read(&path).expect("readable golden file"));
    }
    files
}

/// Writes the current version's missing golden files when blessing (once
/// per run, before any test reads them).
fn bless_missing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(write_missing);
}

fn write_missing() {
    if !blessing() {
        return;
    }
    let dir = version_dir(VERSION_MAJOR, VERSION_MINOR);
    fs::create_dir_all(&dir).expect("create golden directory");
    let kinds = MessageKind::ALL.iter().map(|&kind| {
        let frame = example(kind).unwrap_or_else(|| panic!("no example for {}", kind.name()));
        (kind.name().to_owned(), frame)
    });
    for (stem, frame) in kinds.chain(added_code_examples((VERSION_MAJOR, VERSION_MINOR))) {
        let path = dir.join(format!("{stem}.bin"));
        if path.exists() {
            continue;
        }
        fs::write(&path, encode(&frame)).expect("write golden file");
        eprintln!("blessed {path:?}");
    }
}

/// Re-encodes a decoded golden frame as the version that wrote it would:
/// this crate's encoder, with the frame's own minor version (only the minor
/// may differ within a major).
fn reencode(decoded: &DecodedFrame) -> Vec<u8> {
    let mut bytes = encode(&Frame {
        sequence: decoded.sequence(),
        flags: decoded.header.flags,
        message: decoded.message.clone(),
    });
    if bytes[3] != decoded.header.version_minor {
        bytes[3] = decoded.header.version_minor;
        fix_crc(&mut bytes);
    }
    bytes
}

/// Verifies: SR-PRO-009
#[test]
fn sr_pro_009_every_released_golden_frame_decodes_and_reencodes_identically() {
    // Verifies: SR-PRO-009
    bless_missing();
    assert!(
        RELEASED_VERSIONS.contains(&(VERSION_MAJOR, VERSION_MINOR)),
        "the current version must be listed as released"
    );
    for &(major, minor) in RELEASED_VERSIONS {
        let files = read_version(major, minor);
        assert!(!files.is_empty(), "no golden frames for {major}.{minor}");
        for (name, bytes) in &files {
            let decoded = decode_frame(bytes)
                .unwrap_or_else(|e| panic!("golden v{major}.{minor}/{name}.bin: {e}"));
            let kind = decoded
                .kind()
                .unwrap_or_else(|| panic!("v{major}.{minor}/{name}.bin has an unknown kind"));
            assert_eq!(
                kind.name(),
                kind_of_stem(name),
                "v{major}.{minor}/{name}.bin"
            );
            assert_eq!(
                (decoded.header.version_major, decoded.header.version_minor),
                (major, minor),
                "v{major}.{minor}/{name}.bin carries another version"
            );
            assert_eq!(
                &reencode(&decoded),
                bytes,
                "v{major}.{minor}/{name}.bin does not re-encode to the same bytes"
            );
        }
    }
}

#[test]
fn every_kind_has_a_golden_frame() {
    bless_missing();
    let mut have = Vec::new();
    for &(major, minor) in RELEASED_VERSIONS {
        have.extend(read_version(major, minor).into_keys());
    }
    let missing: Vec<_> = MessageKind::ALL
        .iter()
        .map(|k| k.name())
        .filter(|name| !have.iter().any(|h| h == name))
        .collect();
    assert!(
        missing.is_empty(),
        "kinds without a golden frame (create with PUMP_BLESS_GOLDEN=1): {missing:?}"
    );
}

/// Every code value a version after 1.0 added has an example carrying it
/// (`added_code_example` in `tests/common/mod.rs`) and, in the directory of
/// that version, its golden frame: a pump of that version may send it, so it
/// must decode to that code forever (rule C6).
#[test]
fn every_code_added_after_1_0_has_a_golden_frame_in_its_version() {
    bless_missing();
    let mut missing = Vec::new();
    for value in code_values() {
        if value.since == (1, 0) {
            continue;
        }
        let what = format!("{}::{}", value.enum_name, value.name);
        assert!(
            RELEASED_VERSIONS.contains(&value.since),
            "{what} is since {:?}, which is not released",
            value.since
        );
        let Some(frame) = added_code_example(value.enum_name, value.name) else {
            missing.push(format!("{what}: no example in tests/common/mod.rs"));
            continue;
        };
        let stem = common::added_code_stem(&value, &frame);
        let (major, minor) = value.since;
        let Some(bytes) = read_version(major, minor).remove(&stem) else {
            missing.push(format!(
                "{what}: no v{major}.{minor}/{stem}.bin (create with PUMP_BLESS_GOLDEN=1)"
            ));
            continue;
        };
        let decoded = decode_frame(&bytes).expect("checked by sr_pro_009");
        assert_eq!(
            decoded.message, frame.message,
            "v{major}.{minor}/{stem}.bin"
        );
        // The example carries the code it stands for.
        let debug = format!("{:?}", decoded.message);
        assert!(
            debug.contains(&format!(": {},", value.name))
                || debug.contains(&format!(": {} ", value.name))
                || debug.contains(&format!("({})", value.name)),
            "v{major}.{minor}/{stem}.bin does not carry {what}: {debug}"
        );
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// Every kind and code value was added by a released version.
#[test]
fn every_kind_and_code_is_since_a_released_version() {
    for kind in MessageKind::ALL {
        assert!(
            RELEASED_VERSIONS.contains(&kind.since()),
            "{} is since {:?}",
            kind.name(),
            kind.since()
        );
    }
    for value in code_values() {
        assert!(RELEASED_VERSIONS.contains(&value.since), "{value:?}");
    }
}

/// The golden frames of the current version are the current examples: a
/// change to an example that no longer matches its golden frame is caught
/// here and in the snapshots, not silently accepted.
#[test]
fn current_golden_frames_match_the_examples() {
    bless_missing();
    let files = read_version(VERSION_MAJOR, VERSION_MINOR);
    let kinds = MessageKind::ALL
        .iter()
        .filter_map(|&kind| Some((kind.name().to_owned(), example(kind)?)));
    for (stem, frame) in kinds.chain(added_code_examples((VERSION_MAJOR, VERSION_MINOR))) {
        let Some(bytes) = files.get(&stem) else {
            continue; // reported by the tests above
        };
        assert_eq!(
            &encode(&frame),
            bytes,
            "example {stem} differs from its golden frame"
        );
    }
}

/// Each released version's golden frames were written by the examples
/// encoded as that version: the examples of the kinds it had, and of the
/// codes it added. (Together with the snapshots of the 1.0 frames, this
/// pins the examples to every released version, not only the current one.)
#[test]
fn every_golden_frame_is_its_example_encoded_as_its_version() {
    bless_missing();
    for &version in RELEASED_VERSIONS {
        let (major, minor) = version;
        for (stem, bytes) in read_version(major, minor) {
            let frame = if stem.contains('.') {
                added_code_examples(version)
                    .into_iter()
                    .find(|(s, _)| *s == stem)
                    .map(|(_, f)| f)
            } else {
                MessageKind::ALL
                    .iter()
                    .find(|k| k.name() == stem)
                    .and_then(|&k| example(k))
            };
            let frame =
                frame.unwrap_or_else(|| panic!("v{major}.{minor}/{stem}.bin matches no example"));
            assert_eq!(
                common::encode_as(&frame, version),
                bytes,
                "v{major}.{minor}/{stem}.bin"
            );
        }
    }
}
