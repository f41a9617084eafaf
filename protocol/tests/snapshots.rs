//! Snapshot tests: the exact bytes and the decoded form of one realistic
//! frame per message kind, and of a stream encoding.
//!
//! A change to any snapshot is a change to the wire format: review it against
//! the compatibility rules in `docs/protocol.md` before accepting it.
//! Snapshots are created with `INSTA_UPDATE=always` (or `cargo insta`); CI
//! runs with `INSTA_UPDATE=no`, where a missing or changed snapshot fails.

mod common;

use common::{annotate, encode, example, examples, hex, hex_rows};
use pump_protocol::*;

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
        let frame = example(kind).unwrap_or_else(|| panic!("no example for {}", kind.name()));
        let bytes = encode(&frame);
        insta::assert_snapshot!(format!("frame_{}", kind.name()), annotate(&bytes));
    }
}

#[test]
fn decoded_form_of_every_kind() {
    for &kind in MessageKind::ALL {
        let frame = example(kind).unwrap_or_else(|| panic!("no example for {}", kind.name()));
        let decoded = decode_frame(&encode(&frame)).expect("example decodes");
        assert_eq!(decoded.message, frame.message);
        assert_eq!(decoded.kind(), Some(kind));
        insta::assert_debug_snapshot!(format!("decoded_{}", kind.name()), decoded);
    }
}

/// The stream encoding of two frames back to back, and what a decoder makes
/// of it.
#[test]
fn stream_encoding() {
    let frames = [
        example(MessageKind::DeliveryRecord).expect("example"),
        example(MessageKind::AlarmRaised).expect("example"),
    ];
    let mut stream = Vec::new();
    for frame in &frames {
        stream.extend(encode_stream_frame_vec(frame).expect("encodes"));
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
