//! Golden frames: the raw bytes of one frame per message kind, as released,
//! under `tests/golden/v<major>.<minor>/<KindName>.bin`.
//!
//! Every released version's files must still decode to their kind and
//! re-encode to the same bytes (compatibility rule C6 in `docs/protocol.md`),
//! and every kind this crate knows must have a golden file in some released
//! version.
//!
//! Files are only ever written by `PUMP_BLESS_GOLDEN=1 cargo test -p
//! pump-protocol --test golden`, which creates the *missing* files of the
//! current version from the examples in `tests/common/mod.rs`. It never
//! rewrites an existing file: a released frame that no longer round-trips is
//! a compatibility break to fix in the code, not in the golden file.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{encode, example, fix_crc};
use pump_protocol::*;

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn version_dir(major: u8, minor: u8) -> PathBuf {
    golden_root().join(format!("v{major}.{minor}"))
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
    for &kind in MessageKind::ALL {
        let path = dir.join(format!("{}.bin", kind.name()));
        if path.exists() {
            continue;
        }
        let frame = example(kind).unwrap_or_else(|| panic!("no example for {}", kind.name()));
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
            assert_eq!(kind.name(), name, "v{major}.{minor}/{name}.bin");
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

/// The golden frames of the current version are the current examples: a
/// change to an example that no longer matches its golden frame is caught
/// here and in the snapshots, not silently accepted.
#[test]
fn current_golden_frames_match_the_examples() {
    bless_missing();
    let files = read_version(VERSION_MAJOR, VERSION_MINOR);
    for &kind in MessageKind::ALL {
        let (Some(bytes), Some(frame)) = (files.get(kind.name()), example(kind)) else {
            continue; // reported by the two tests above
        };
        assert_eq!(
            &encode(&frame),
            bytes,
            "example {} differs from its golden frame",
            kind.name()
        );
    }
}
