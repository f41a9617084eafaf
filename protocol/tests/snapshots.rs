//! Snapshot tests: the exact bytes and the decoded form of one realistic
//! frame per message kind, and of a stream encoding.
//!
//! A change to any snapshot is a change to the wire format: review it against
//! the compatibility rules in `docs/protocol.md` before accepting it.
//! Snapshots are created with `INSTA_UPDATE=always` (or `cargo insta`); CI
//! runs with `INSTA_UPDATE=no`, where a missing or changed snapshot fails.
//!
//! Each snapshot pins a frame of one protocol version, named in the header
//! bytes it shows, so that a minor-version bump (which changes the header's
//! minor byte and the CRC of everything the pump encodes) changes no
//! existing snapshot:
//!
//! - `frame_<Kind>`, `decoded_<Kind>`, `stream_two_frames`: the 1.0 test
//!   vectors of `docs/protocol.md` §8 and §3.4, each example encoded with a
//!   1.0 header, equal to the released `tests/golden/v1.0/` frame. (A kind
//!   added after 1.0 is snapshotted as `frame_v<major>_<minor>_<Kind>`,
//!   encoded as the version that added it.)
//! - `frame_v<major>_<minor>_<Kind>.<Enum>.<Name>` and `decoded_…`: the
//!   example of each code value a later version added, as that version.
//! - `golden_v<major>_<minor>`: every golden frame of a released version,
//!   in hex and decoded, for review of the binary files.

mod common;

use common::{
    added_code_examples, annotate, encode, encode_as, example, examples, golden, golden_dir, hex,
    hex_rows, stream_item,
};
use pump_protocol::*;

/// The snapshot name of a frame first encoded by `version`: plain for 1.0
/// (the names the 1.0 test vectors always had), prefixed by the version
/// otherwise.
fn versioned(prefix: &str, version: (u8, u8), name: &str) -> String {
    match version {
        (1, 0) => format!("{prefix}_{name}"),
        (major, minor) => format!("{prefix}_v{major}_{minor}_{name}"),
    }
}

/// The example of `kind`, encoded as the version that added the kind; for
/// 1.0 kinds, checked against the released golden frame.
fn example_bytes(kind: MessageKind) -> (Frame, Vec<u8>) {
    let frame = example(kind).unwrap_or_else(|| panic!("no example for {}", kind.name()));
    let bytes = encode_as(&frame, kind.since());
    if kind.since() == (1, 0) {
        assert_eq!(
            golden((1, 0), kind.name()).as_deref(),
            Some(&bytes[..]),
            "the 1.0 encoding of the example {} is its released golden frame",
            kind.name()
        );
    }
    (frame, bytes)
}

/// Every kind has exactly one example, and it is of that kind.
#[test]
fn every_kind_has_exactly_one_example() {
    let all = examples();
    let mut missing = Vec::new();
    for &kind in MessageKind::ALL {
        let count = all
            .iter()
            .filter(|f| f.message.kind() == Some(kind))
            .count();
        if count != 1 {
            missing.push(format!("{} ({count} examples)", kind.name()));
        }
    }
    assert!(
        missing.is_empty(),
        "kinds without exactly one example in tests/common/mod.rs: {missing:?}"
    );
    assert_eq!(all.len(), MessageKind::ALL.len(), "an example of no kind");
}

#[test]
fn frame_bytes_of_every_kind() {
    for &kind in MessageKind::ALL {
        let (_, bytes) = example_bytes(kind);
        insta::assert_snapshot!(
            versioned("frame", kind.since(), kind.name()),
            annotate(&bytes)
        );
    }
}

#[test]
fn decoded_form_of_every_kind() {
    for &kind in MessageKind::ALL {
        let (frame, bytes) = example_bytes(kind);
        let decoded = decode_frame(&bytes).expect("example decodes");
        assert_eq!(decoded.message, frame.message);
        assert_eq!(decoded.kind(), Some(kind));
        insta::assert_debug_snapshot!(versioned("decoded", kind.since(), kind.name()), decoded);
    }
}

/// The current version encodes every example exactly as the 1.0 test
/// vectors, but for the header's minor byte and the CRC (rule C1: a minor
/// version changes no message).
#[test]
fn the_current_version_differs_from_1_0_only_in_the_minor_byte_and_crc() {
    for &kind in MessageKind::ALL {
        let (frame, bytes) = example_bytes(kind);
        let current = encode(&frame);
        assert_eq!(current[3], VERSION_MINOR);
        assert_eq!(current.len(), bytes.len(), "{}", kind.name());
        let payload_end = current.len() - CRC_LEN;
        assert_eq!(current[..3], bytes[..3], "{}", kind.name());
        assert_eq!(
            current[4..payload_end],
            bytes[4..payload_end],
            "{}",
            kind.name()
        );
    }
}

/// The example of every code value added after 1.0, as the version that
/// added it.
#[test]
fn frames_of_the_codes_added_after_1_0() {
    for &version in RELEASED_VERSIONS {
        for (stem, frame) in added_code_examples(version) {
            let bytes = encode_as(&frame, version);
            insta::assert_snapshot!(versioned("frame", version, &stem), annotate(&bytes));
            let decoded = decode_frame(&bytes).expect("example decodes");
            assert_eq!(decoded.message, frame.message);
            insta::assert_debug_snapshot!(versioned("decoded", version, &stem), decoded);
        }
    }
}

/// Every golden frame of every released version after 1.0, in hex and
/// decoded, so that a review sees what the binary files hold. (1.0's are
/// the `frame_`/`decoded_` snapshots.)
#[test]
fn golden_frames_of_each_version() {
    for &(major, minor) in RELEASED_VERSIONS.iter().filter(|&&v| v != (1, 0)) {
        let mut stems: Vec<String> = std::fs::read_dir(golden_dir((major, minor)))
            .expect("golden directory")
            .map(|e| {
                let path = e.expect("entry").path();
                let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8");
                stem.to_owned()
            })
            .collect();
        stems.sort();
        let mut out = String::new();
        for stem in stems {
            let bytes = golden((major, minor), &stem).expect("readable");
            let decoded = decode_frame(&bytes).expect("golden frames decode");
            out.push_str(&format!(
                "{stem}.bin ({} bytes)\n  hex {}\n  {:?}\n",
                bytes.len(),
                hex(&bytes),
                decoded.message
            ));
        }
        insta::assert_snapshot!(format!("golden_v{major}_{minor}"), out);
    }
}

/// The stream encoding of two frames back to back, and what a decoder makes
/// of it: the 1.0 example of `docs/protocol.md` §3.4.
#[test]
fn stream_encoding() {
    let frames = [
        example(MessageKind::DeliveryRecord).expect("example"),
        example(MessageKind::AlarmRaised).expect("example"),
    ];
    let mut stream = Vec::new();
    for frame in &frames {
        // `stream_item` is the crate's stream encoding of given bytes.
        assert_eq!(
            stream_item(&encode(frame)),
            encode_stream_frame_vec(frame).expect("encodes")
        );
        stream.extend(stream_item(&encode_as(frame, (1, 0))));
    }
    let mut items = Vec::new();
    StreamDecoder::new().feed(&stream, |item| items.push(item));
    let decoded: Vec<_> = items
        .iter()
        .map(|item| match item {
            StreamItem::Frame { frame, offset } => {
                format!("offset {offset}: frame {:?}", frame.message)
            }
            StreamItem::Invalid { error, offset, len } => {
                format!("offset {offset}: {len} invalid bytes: {error}")
            }
        })
        .collect();
    insta::assert_snapshot!(
        "stream_two_frames",
        format!(
            "{} bytes\n{}\nhex {}\n\n{}",
            stream.len(),
            hex_rows(&stream),
            hex(&stream),
            decoded.join("\n")
        )
    );
}
