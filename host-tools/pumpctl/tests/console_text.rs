//! `docs/protocol.md` §3.5 and `pumpctl::decode` agree on how a reader tells
//! console text from bad frames: the section's example stream decodes, item
//! by item, to the section's table, however it is fed, and each clause of
//! the rule is pinned on its own.

use std::path::Path;

use pump_protocol::{encode_stream_frame_vec, Frame, Message, PatientBolusRequested};
use pumpctl::decode::{decode_all, Decoder, Item};

const HEADING: &str = "### 3.5 Console text between frames";

fn section() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    let spec = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let start = spec
        .find(HEADING)
        .unwrap_or_else(|| panic!("docs/protocol.md has no `{HEADING}`"));
    let body = &spec[start + HEADING.len()..];
    let end = body.find("\n#").unwrap_or(body.len());
    body[..end].to_string()
}

/// The bytes of the section's hex dump.
fn example_stream(section: &str) -> Vec<u8> {
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```text hex dump");
    block
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("not a hex byte: {b}")))
        .collect()
}

/// (offset, item) of every row of the section's table.
fn example_items(section: &str) -> Vec<(u64, String)> {
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.strip_prefix("| ")?.split(" | ").collect();
            let offset = cells.first()?.parse().ok()?;
            Some((offset, cells.get(1)?.to_string()))
        })
        .collect()
}

/// An item as the table writes it.
fn describe(item: &Item) -> (u64, String) {
    match item {
        Item::Text { offset, text } => (*offset, format!("text `{text}`")),
        Item::Frame { offset, frame } => (
            *offset,
            format!(
                "frame `{}`, sequence {}",
                frame.kind().expect("a known kind").name(),
                frame.sequence()
            ),
        ),
        Item::Bad { offset, len, .. } => (*offset, format!("bad frame, {len} bytes")),
    }
}

fn decoded(stream: &[u8]) -> Vec<(u64, String)> {
    decode_all(stream).0.iter().map(describe).collect()
}

#[test]
fn the_specs_console_text_example_decodes_to_its_table() {
    let section = section();
    let stream = example_stream(&section);
    assert!(
        section.contains(&format!("({} bytes)", stream.len())),
        "the section states the example's length"
    );
    let expected = example_items(&section);
    assert_eq!(expected.len(), 7, "the table has a row per item");
    assert_eq!(decoded(&stream), expected);

    let (_, counts) = decode_all(&stream);
    assert_eq!((counts.frames, counts.text_lines, counts.bad), (2, 3, 2));
}

#[test]
fn the_example_decodes_the_same_however_it_is_fed() {
    let section = section();
    let stream = example_stream(&section);
    let expected = example_items(&section);
    for chunk_size in [1, 2, 3, 5, 16, 64] {
        let mut decoder = Decoder::new();
        let mut items = Vec::new();
        for chunk in stream.chunks(chunk_size) {
            decoder.feed(chunk, |item| items.push(describe(&item)));
        }
        decoder.finish(|item| items.push(describe(&item)));
        assert_eq!(items, expected, "fed in chunks of {chunk_size}");
    }
}

fn frame() -> Vec<u8> {
    encode_stream_frame_vec(&Frame {
        sequence: 1,
        flags: 0,
        message: Message::PatientBolusRequested(PatientBolusRequested { time_ms: 5 }),
    })
    .unwrap()
}

/// `text` between two frames, decoded.
fn between_frames(text: &[u8]) -> Vec<(u64, String)> {
    let mut stream = frame();
    stream.extend_from_slice(text);
    stream.extend(frame());
    let mut items = decoded(&stream);
    assert_eq!(
        items.remove(0).1,
        "frame `PatientBolusRequested`, sequence 1"
    );
    assert_eq!(
        items.pop().map(|(_, i)| i),
        Some("frame `PatientBolusRequested`, sequence 1".to_string())
    );
    items
}

#[test]
fn text_is_utf8_without_control_characters_but_tab_cr_and_lf() {
    let at = frame().len() as u64;
    // Tab, non-ASCII text and CR LF line ends are text; each line has its offset.
    assert_eq!(
        between_frames("dose\t25 µg\r\nnext\n".as_bytes()),
        [
            (at, "text `dose\t25 µg`".to_string()),
            (at + 13, "text `next`".to_string())
        ]
    );
    // One control character (here ESC, U+001B; U+0085 is one too) makes the
    // whole item a bad frame.
    for bad in ["ok \u{1b}[1m\n", "ok \u{85}\n"] {
        assert_eq!(
            between_frames(bad.as_bytes()),
            [(at, format!("bad frame, {} bytes", bad.len()))]
        );
    }
    // So does a byte that is not UTF-8.
    assert_eq!(
        between_frames(b"ok \xff\n"),
        [(at, "bad frame, 5 bytes".to_string())]
    );
}

#[test]
fn blank_lines_are_dropped_and_an_item_of_blank_lines_only_is_a_bad_frame() {
    let at = frame().len() as u64;
    assert_eq!(
        between_frames(b" \r\n\nline\r\r\n \t\n"),
        [(at + 4, "text `line`".to_string())]
    );
    assert_eq!(
        between_frames(b" \r\n\t\n"),
        [(at, "bad frame, 5 bytes".to_string())]
    );
}

#[test]
fn text_longer_than_any_frame_is_text_up_to_64_kib() {
    let at = frame().len() as u64;
    let line = |len: usize| {
        let mut text = vec![b'x'; len - 1];
        text.push(b'\n');
        text
    };
    // Longer than MAX_ENCODED_FRAME_LEN: rejected as TooLong by §3.2, still text.
    let long = line(4_096);
    assert_eq!(
        between_frames(&long),
        [(at, format!("text `{}`", "x".repeat(4_095)))]
    );
    assert_eq!(between_frames(&line(65_536)).len(), 1);
    assert!(between_frames(&line(65_536))[0].1.starts_with("text "));
    assert_eq!(
        between_frames(&line(65_537)),
        [(at, "bad frame, 65537 bytes".to_string())]
    );
}
