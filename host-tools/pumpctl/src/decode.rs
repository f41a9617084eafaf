//! Decoding a telemetry byte stream: frames (`0x00 COBS(frame) 0x00`, see
//! `pump_protocol`), bad frames with their offsets, and console text that
//! shares the link.
//!
//! [`Decoder`] wraps the protocol crate's [`StreamDecoder`] (which does the
//! COBS, CRC and version checks) and only adds one thing: an item the
//! protocol decoder rejects is looked at again, and if it is printable text
//! (console output between frames never contains `0x00`) it is reported as
//! text instead of a bad frame.

use std::io::Write;

use pump_protocol::{
    AlarmCode, AlarmPriority, DecodedFrame, DeliveryKind, DeliveryOutcome, ErrorCode, FrameError,
    Message, PumpState, StreamDecoder, StreamItem,
};
use serde_json::{json, Map, Value};

use crate::units;

/// Longest console text item kept for classification.
const MAX_TEXT_ITEM: usize = 64 * 1024;

/// One thing found in the stream.
#[derive(Debug)]
// Boxing the frame costs an allocation per frame (half the decode speed);
// items are consumed one at a time, never stored in bulk on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// A valid frame.
    Frame {
        /// Stream offset of its first encoded byte.
        offset: u64,
        /// The frame.
        frame: DecodedFrame,
    },
    /// Bytes between delimiters that are neither a frame nor text.
    Bad {
        /// Stream offset of the first byte.
        offset: u64,
        /// Length in bytes.
        len: u64,
        /// Why the protocol decoder rejected them.
        error: FrameError,
    },
    /// Console text between frames.
    Text {
        /// Stream offset.
        offset: u64,
        /// The text, one line (without the line break).
        text: String,
    },
}

/// Counts of what a stream held.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Valid frames.
    pub frames: u64,
    /// Bad frames.
    pub bad: u64,
    /// Offsets of the first bad frames (at most [`Counts::MAX_OFFSETS`]).
    pub bad_offsets: Vec<u64>,
    /// Console text lines.
    pub text_lines: u64,
    /// Bytes read.
    pub bytes: u64,
}

impl Counts {
    /// Bad-frame offsets listed in summaries.
    pub const MAX_OFFSETS: usize = 20;

    /// Records an item.
    pub fn count(&mut self, item: &Item) {
        match item {
            Item::Frame { .. } => self.frames += 1,
            Item::Bad { offset, .. } => {
                self.bad += 1;
                if self.bad_offsets.len() < Self::MAX_OFFSETS {
                    self.bad_offsets.push(*offset);
                }
            }
            Item::Text { .. } => self.text_lines += 1,
        }
    }

    /// One-line summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} frames, {} bad frames, {} console text lines, {} bytes",
            self.frames, self.bad, self.text_lines, self.bytes
        );
        if self.bad > 0 {
            let offsets: Vec<String> = self.bad_offsets.iter().map(u64::to_string).collect();
            s.push_str(&format!(
                "; bad frames at offsets {}{}",
                offsets.join(", "),
                if self.bad > self.bad_offsets.len() as u64 {
                    ", ..."
                } else {
                    ""
                }
            ));
        }
        if self.text_lines > 0 {
            s.push_str(" (console text is not counted as bad frames)");
        }
        s
    }
}

/// A streaming decoder of frames, bad frames and console text.
pub struct Decoder {
    inner: StreamDecoder,
    /// Bytes of the item in progress (since the last `0x00`), capped.
    tail: Vec<u8>,
    tail_start: u64,
    tail_capped: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder at offset 0.
    pub fn new() -> Self {
        Self {
            inner: StreamDecoder::new(),
            tail: Vec::new(),
            tail_start: 0,
            tail_capped: false,
        }
    }

    /// Feeds a chunk, calling `on_item` for every completed item.
    pub fn feed(&mut self, chunk: &[u8], mut on_item: impl FnMut(Item)) {
        let chunk_start = self.inner.offset();
        let tail = &self.tail;
        let tail_start = self.tail_start;
        let tail_capped = self.tail_capped;
        self.inner.feed(chunk, |item| match item {
            StreamItem::Frame { frame, offset } => on_item(Item::Frame { offset, frame }),
            StreamItem::Invalid { error, offset, len } => {
                let bytes = item_bytes(
                    chunk,
                    chunk_start,
                    tail,
                    tail_start,
                    tail_capped,
                    offset,
                    len,
                );
                classify(bytes.as_deref(), error, offset, len, &mut on_item);
            }
        });
        match chunk.iter().rposition(|b| *b == 0) {
            Some(i) => {
                self.tail.clear();
                self.tail_capped = false;
                self.tail_start = chunk_start + i as u64 + 1;
                self.push_tail(&chunk[i + 1..]);
            }
            None => self.push_tail(chunk),
        }
    }

    fn push_tail(&mut self, bytes: &[u8]) {
        let room = MAX_TEXT_ITEM.saturating_sub(self.tail.len());
        if bytes.len() > room {
            self.tail_capped = true;
        }
        self.tail.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Ends the stream: a partial item left over is reported (as text if it
    /// is text, else as a truncated frame).
    pub fn finish(&mut self, mut on_item: impl FnMut(Item)) {
        if let Some(StreamItem::Invalid { error, offset, len }) = self.inner.finish() {
            let bytes = (!self.tail_capped).then(|| self.tail.clone());
            classify(bytes.as_deref(), error, offset, len, &mut on_item);
        }
        self.tail.clear();
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.inner.offset()
    }
}

#[allow(clippy::too_many_arguments)]
fn item_bytes(
    chunk: &[u8],
    chunk_start: u64,
    tail: &[u8],
    tail_start: u64,
    tail_capped: bool,
    offset: u64,
    len: u64,
) -> Option<Vec<u8>> {
    if len as usize > MAX_TEXT_ITEM {
        return None;
    }
    let end = offset + len;
    if offset >= chunk_start {
        let s = usize::try_from(offset - chunk_start).ok()?;
        let e = usize::try_from(end - chunk_start).ok()?;
        return chunk.get(s..e).map(<[u8]>::to_vec);
    }
    // The item began in an earlier chunk: its start is in `tail`.
    if tail_capped || offset < tail_start {
        return None;
    }
    let s = usize::try_from(offset - tail_start).ok()?;
    let mut out = tail.get(s..)?.to_vec();
    let e = usize::try_from(end.saturating_sub(chunk_start)).ok()?;
    out.extend_from_slice(chunk.get(..e)?);
    Some(out)
}

/// Printable text: valid UTF-8, no control characters but tab and line breaks.
fn as_text(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    s.chars()
        .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
        .then_some(s)
}

fn classify(
    bytes: Option<&[u8]>,
    error: FrameError,
    offset: u64,
    len: u64,
    on_item: &mut impl FnMut(Item),
) {
    if let Some(text) = bytes.and_then(as_text) {
        let mut line_offset = offset;
        let mut any = false;
        for line in text.split('\n') {
            let shown = line.trim_end_matches('\r');
            if !shown.trim().is_empty() {
                any = true;
                on_item(Item::Text {
                    offset: line_offset,
                    text: shown.to_string(),
                });
            }
            line_offset += line.len() as u64 + 1;
        }
        if any {
            return;
        }
    }
    on_item(Item::Bad { offset, len, error });
}

// ------------------------------------------------------------ rendering --

/// Output format of `pumpctl decode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned human table.
    Table,
    /// One JSON object per line.
    Json,
    /// CSV with a header row.
    Csv,
}

/// A code's name (`name()` of a code enumeration), or `Other(<value>)` for
/// a value this version of the catalogue does not know: the value is kept,
/// never shown as a bare `Other` (`docs/protocol.md` §4.2).
pub fn code_name(name: &'static str, code: u16) -> String {
    if name == "Other" {
        format!("Other({code})")
    } else {
        name.to_string()
    }
}

/// The enum fields of messages, rendered by name.
fn enum_name(field: &str, code: u16) -> Option<String> {
    let name = match field {
        "pump_state" => PumpState::from_code(code).name(),
        "delivery_kind" => DeliveryKind::from_code(code).name(),
        "outcome" => DeliveryOutcome::from_code(code).name(),
        "code" | "top_alarm" => AlarmCode::from_code(code).name(),
        "priority" => AlarmPriority::from_code(code).name(),
        "reason" | "error" => ErrorCode::from_code(code).name(),
        "reset_reason" => infusion_core::ResetReason::from_code(u8::try_from(code).ok()?)
            .map_or("Other", infusion_core::ResetReason::name),
        _ => return None,
    };
    Some(code_name(name, code))
}

/// A message's name and fields as JSON (enums by name, an unknown code as
/// `Other(<value>)`, bytes as hex).
pub fn message_fields(message: &Message) -> (String, Map<String, Value>) {
    macro_rules! known {
        ($($variant:ident),* $(,)?) => {
            match message {
                $( Message::$variant(m) => (stringify!($variant).to_string(), serde_json::to_value(m).ok()), )*
                Message::InstallPrescription(m) => {
                    let mut map = Map::new();
                    map.insert("device_id".into(), json!(m.device_id));
                    map.insert("prescription_serial".into(), json!(m.prescription_serial));
                    map.insert("signed_prescription_len".into(), json!(m.signed_prescription.len()));
                    map.insert("signed_prescription".into(), json!(crate::keys::hex(&m.signed_prescription)));
                    crate::decode_signed::install_fields(m, &mut map);
                    ("InstallPrescription".to_string(), Some(Value::Object(map)))
                }
                Message::AuthenticatedCommand(m) => {
                    let mut map = Map::new();
                    map.insert("signed_command_len".into(), json!(m.signed_command.len()));
                    map.insert("signed_command".into(), json!(crate::keys::hex(&m.signed_command)));
                    crate::decode_signed::command_fields(m, &mut map, message_fields);
                    ("AuthenticatedCommand".to_string(), Some(Value::Object(map)))
                }
                Message::Unknown(u) => {
                    let mut map = Map::new();
                    map.insert("kind_code".into(), json!(format!("{:#06x}", u.kind)));
                    map.insert("payload".into(), json!(crate::keys::hex(&u.payload)));
                    ("Unknown".to_string(), Some(Value::Object(map)))
                }
            }
        };
    }
    let (name, value) = known!(
        StatusSnapshot,
        DeliveryRecord,
        PatientBolusRequested,
        PatientBolusGranted,
        PatientBolusDenied,
        AlarmRaised,
        AlarmAcknowledged,
        AlarmCleared,
        ReservoirLevel,
        ReservoirRefilled,
        BatteryState,
        AppFault,
        AppRestarted,
        LogGap,
        DeliveryDenied,
        AccessDenied,
        PrescriptionInstalled,
        PrescriptionRejected,
        ClockSet,
        PumpStateChanged,
        CommandAuthenticated,
        CommandRefused,
        RefillDiscrepancy,
        AccessDeniedRepeated,
        KernelStarted,
        ServiceOutlook,
        SelfTestFailed,
        GetStatus,
        GetServiceOutlook,
        ClinicianBolus,
        PatientBolusRequest,
        Refill,
        Suspend,
        Resume,
        AcknowledgeAlarm,
        ReadLog,
        SetClock,
        ClearFault,
        Ack,
        Nack,
        LogChunkEnd,
    );
    let mut map = match value {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (key, value) in map.iter_mut() {
        if let Some(code) = value.as_u64().and_then(|c| u16::try_from(c).ok()) {
            if let Some(name) = enum_name(key, code) {
                *value = json!(name);
            }
        }
        if key == "request_kind" || key == "command_kind" {
            if let Some(code) = value.as_u64().and_then(|c| u16::try_from(c).ok()) {
                let name = pump_protocol::MessageKind::from_code(code)
                    .map_or_else(|| format!("{code:#06x}"), |k| k.name().to_string());
                *value = json!(name);
            }
        }
    }
    (name, map)
}

/// The `time_ms` of a message, if it has one.
pub fn message_time_ms(message: &Message) -> Option<u64> {
    let (_, map) = message_fields(message);
    map.get("time_ms").and_then(Value::as_u64)
}

/// A JSON object for one item.
pub fn item_json(item: &Item) -> Value {
    match item {
        Item::Frame { offset, frame } => {
            let (name, fields) = message_fields(&frame.message);
            let mut obj = Map::new();
            obj.insert("offset".into(), json!(offset));
            obj.insert("sequence".into(), json!(frame.sequence()));
            obj.insert(
                "version".into(),
                json!(format!(
                    "{}.{}",
                    frame.header.version_major, frame.header.version_minor
                )),
            );
            obj.insert("flags".into(), json!(frame.header.flags));
            obj.insert("kind".into(), json!(name));
            if let Some(t) = fields.get("time_ms").and_then(Value::as_u64) {
                obj.insert("time_utc".into(), json!(units::fmt_utc(t)));
            }
            obj.insert("fields".into(), Value::Object(fields));
            Value::Object(obj)
        }
        Item::Bad { offset, len, error } => json!({
            "offset": offset,
            "bad_frame": true,
            "len": len,
            "error": error.to_string(),
        }),
        Item::Text { offset, text } => json!({ "offset": offset, "text": text }),
    }
}

fn details(fields: &Map<String, Value>) -> String {
    fields
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "time_ms" | "signed_prescription" | "signed_command"
            )
        })
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            Value::Null => format!("{k}=-"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes items in one format.
pub struct Renderer<W: Write> {
    sink: Sink<W>,
    header_done: bool,
}

enum Sink<W: Write> {
    Table(W),
    Json(W),
    Csv(Box<csv::Writer<W>>),
}

impl<W: Write> Renderer<W> {
    /// A renderer to `out`.
    pub fn new(out: W, format: Format) -> Self {
        let sink = match format {
            Format::Table => Sink::Table(out),
            Format::Json => Sink::Json(out),
            Format::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
        };
        Self {
            sink,
            header_done: false,
        }
    }

    /// Writes one item.
    pub fn write(&mut self, item: &Item) -> std::io::Result<()> {
        let first = !self.header_done;
        self.header_done = true;
        match &mut self.sink {
            Sink::Json(out) => {
                serde_json::to_writer(&mut *out, &item_json(item))?;
                out.write_all(b"\n")
            }
            Sink::Table(out) => write_table_row(out, item, first),
            Sink::Csv(csv) => {
                if first {
                    csv.write_record([
                        "offset", "sequence", "version", "kind", "time_ms", "time_utc", "details",
                        "error", "text",
                    ])?;
                }
                csv.write_record(csv_row(item))?;
                Ok(())
            }
        }
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Table(out) | Sink::Json(out) => out.flush(),
            Sink::Csv(csv) => csv.flush(),
        }
    }
}

fn write_table_row(out: &mut impl Write, item: &Item, header: bool) -> std::io::Result<()> {
    if header {
        writeln!(
            out,
            "{:>10}  {:>8}  {:<24}  {:<22}  details",
            "offset", "seq", "time (UTC)", "kind"
        )?;
    }
    match item {
        Item::Frame { offset, frame } => {
            let (name, fields) = message_fields(&frame.message);
            let time = fields
                .get("time_ms")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".to_string(), units::fmt_utc);
            writeln!(
                out,
                "{offset:>10}  {:>8}  {time:<24}  {name:<22}  {}",
                frame.sequence(),
                details(&fields)
            )
        }
        Item::Bad { offset, len, error } => writeln!(
            out,
            "{offset:>10}  {:>8}  {:<24}  {:<22}  {len} bytes: {error}",
            "-", "-", "BAD FRAME"
        ),
        Item::Text { offset, text } => writeln!(
            out,
            "{offset:>10}  {:>8}  {:<24}  {:<22}  {text}",
            "-", "-", "console text"
        ),
    }
}

fn csv_row(item: &Item) -> [String; 9] {
    match item {
        Item::Frame { offset, frame } => {
            let (name, fields) = message_fields(&frame.message);
            let t = fields.get("time_ms").and_then(Value::as_u64);
            [
                offset.to_string(),
                frame.sequence().to_string(),
                format!(
                    "{}.{}",
                    frame.header.version_major, frame.header.version_minor
                ),
                name,
                t.map_or_else(String::new, |t| t.to_string()),
                t.map_or_else(String::new, units::fmt_utc),
                details(&fields),
                String::new(),
                String::new(),
            ]
        }
        Item::Bad { offset, len, error } => [
            offset.to_string(),
            String::new(),
            String::new(),
            "BAD FRAME".into(),
            String::new(),
            String::new(),
            format!("len={len}"),
            error.to_string(),
            String::new(),
        ],
        Item::Text { offset, text } => [
            offset.to_string(),
            String::new(),
            String::new(),
            "console text".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            text.clone(),
        ],
    }
}

/// Decodes a whole buffer into items.
pub fn decode_all(bytes: &[u8]) -> (Vec<Item>, Counts) {
    let mut items = Vec::new();
    let mut counts = Counts {
        bytes: bytes.len() as u64,
        ..Counts::default()
    };
    let mut decoder = Decoder::new();
    let mut push = |item: Item| {
        counts.count(&item);
        items.push(item);
    };
    decoder.feed(bytes, &mut push);
    decoder.finish(&mut push);
    (items, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_protocol::{encode_stream_frame_vec, Frame, PatientBolusRequested};

    fn frame(seq: u32) -> Vec<u8> {
        encode_stream_frame_vec(&Frame {
            sequence: seq,
            flags: 0,
            message: Message::PatientBolusRequested(PatientBolusRequested { time_ms: 5 }),
        })
        .unwrap()
    }

    #[test]
    fn text_between_frames_is_text_and_garbage_is_bad() {
        let mut stream = frame(1);
        stream.extend_from_slice(b"boot: ok\r\nsecond line\n");
        stream.extend(frame(2));
        stream.extend_from_slice(&[0x13, 0x37, 0xfe, 0x00]);
        stream.extend(frame(3));
        let (items, counts) = decode_all(&stream);
        assert_eq!(counts.frames, 3);
        assert_eq!(counts.text_lines, 2);
        assert_eq!(counts.bad, 1);
        assert!(items
            .iter()
            .any(|i| matches!(i, Item::Text { text, .. } if text == "boot: ok")));
    }

    #[test]
    fn chunked_feeding_finds_text_across_chunks() {
        let mut stream = frame(1);
        stream.extend_from_slice(b"console says hello\n");
        stream.extend(frame(2));
        for chunk_size in [1, 2, 3, 7, 64] {
            let mut decoder = Decoder::new();
            let mut counts = Counts::default();
            for chunk in stream.chunks(chunk_size) {
                decoder.feed(chunk, |i| counts.count(&i));
            }
            decoder.finish(|i| counts.count(&i));
            assert_eq!((counts.frames, counts.text_lines, counts.bad), (2, 1, 0));
        }
    }
}
