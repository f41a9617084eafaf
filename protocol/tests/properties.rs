//! Property tests of the frame and stream codecs over arbitrary messages
//! and arbitrary bytes.

mod common;

use common::arb;
use common::{encode, fix_crc, raw_frame, RawHeader};
use proptest::collection::vec;
use proptest::prelude::*;
use pump_protocol::*;

fn stream_encode(frame: &Frame) -> Vec<u8> {
    let mut buf = [0u8; MAX_STREAM_FRAME_LEN];
    let len = encode_stream_frame(frame, &mut buf).expect("any message encodes");
    buf[..len].to_vec()
}

/// Feeds `stream` in the given chunk sizes (cycled), then finishes.
fn feed_chunked(stream: &[u8], chunks: &[usize]) -> Vec<StreamItem> {
    let mut decoder = StreamDecoder::new();
    let mut items = Vec::new();
    let mut rest = stream;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        decoder.feed(chunk, |item| items.push(item));
        rest = tail;
    }
    assert_eq!(decoder.offset(), stream.len() as u64);
    items.extend(decoder.finish());
    items
}

/// Pushes `stream` one byte at a time, then finishes.
fn push_bytes(stream: &[u8]) -> Vec<StreamItem> {
    let mut decoder = StreamDecoder::new();
    let mut items: Vec<_> = stream.iter().filter_map(|&b| decoder.push(b)).collect();
    items.extend(decoder.finish());
    items
}

fn frames_of(items: &[StreamItem]) -> Vec<(u64, &DecodedFrame)> {
    items
        .iter()
        .filter_map(|item| match item {
            StreamItem::Frame { frame, offset } => Some((*offset, frame)),
            StreamItem::Invalid { .. } => None,
        })
        .collect()
}

fn same_frame(decoded: &DecodedFrame, sent: &Frame) -> bool {
    decoded.message == sent.message
        && decoded.sequence() == sent.sequence
        && decoded.header.flags == sent.flags
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frame_round_trip(frame in arb::frame()) {
        let bytes = encode(&frame);
        prop_assert!(bytes.len() <= MAX_FRAME_LEN);
        let decoded = decode_frame(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&decoded.message, &frame.message);
        prop_assert_eq!(decoded.sequence(), frame.sequence);
        prop_assert_eq!(decoded.header.flags, frame.flags);
        prop_assert_eq!(decoded.header.magic, MAGIC);
        prop_assert_eq!(
            (decoded.header.version_major, decoded.header.version_minor),
            (VERSION_MAJOR, VERSION_MINOR)
        );
        prop_assert_eq!(decoded.header.reserved, 0);
        prop_assert_eq!(
            usize::from(decoded.header.payload_len.get()),
            bytes.len() - HEADER_LEN - CRC_LEN
        );
        // The payload alone round-trips too.
        let mut payload = [0u8; MAX_PAYLOAD_LEN];
        let n = frame.message.encode_payload(&mut payload).expect("fits");
        prop_assert_eq!(&payload[..n], &bytes[HEADER_LEN..bytes.len() - CRC_LEN]);
        prop_assert_eq!(
            Message::decode_payload(frame.message.kind_code(), &payload[..n]),
            Ok(frame.message.clone())
        );
    }

    /// A stream of frames, fed in arbitrary chunks or byte by byte, decodes
    /// to the same frames at the offsets they were written at.
    #[test]
    fn stream_round_trip(
        frames in vec(arb::frame(), 0..6),
        chunks in vec(1usize..80, 1..8),
    ) {
        let mut stream = Vec::new();
        let mut offsets = Vec::new();
        for frame in &frames {
            let item = stream_encode(frame);
            prop_assert!(item.len() <= MAX_STREAM_FRAME_LEN);
            prop_assert_eq!(item.first(), Some(&0));
            prop_assert_eq!(item.last(), Some(&0));
            prop_assert!(!item[1..item.len() - 1].contains(&0));
            offsets.push(stream.len() as u64 + 1);
            stream.extend(item);
        }
        let items = feed_chunked(&stream, &chunks);
        prop_assert_eq!(items.len(), frames.len(), "only frames, nothing invalid");
        for ((offset, decoded), (frame, expected)) in
            frames_of(&items).into_iter().zip(frames.iter().zip(&offsets))
        {
            prop_assert!(same_frame(decoded, frame));
            prop_assert_eq!(offset, *expected);
        }
        prop_assert_eq!(push_bytes(&stream), items);
    }

    /// Verifies: SR-PRO-002
    #[test]
    fn sr_pro_002_arbitrary_bytes_never_panic_decode_frame(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..600),
            // Plausible headers, so that the later checks are reached too.
            (any::<u8>(), any::<u16>(), vec(any::<u8>(), 0..560)).prop_map(|(minor, kind, rest)| {
                let mut b = vec![b'I', b'P', 1, minor];
                b.extend(kind.to_le_bytes());
                b.extend(rest);
                b
            }),
        ],
    ) {
        // Verifies: SR-PRO-002
        match decode_frame(&bytes) {
            Ok(decoded) => {
                prop_assert_eq!(decoded.header.magic, MAGIC);
                prop_assert_eq!(
                    bytes.len(),
                    HEADER_LEN + usize::from(decoded.header.payload_len.get()) + CRC_LEN
                );
            }
            Err(error) => {
                // Every error renders without panicking.
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }

    /// Verifies: SR-PRO-002
    #[test]
    fn sr_pro_002_arbitrary_bytes_never_panic_the_stream_decoder(
        bytes in vec(any::<u8>(), 0..2000),
        chunks in vec(1usize..300, 1..8),
    ) {
        // Verifies: SR-PRO-002
        let items = feed_chunked(&bytes, &chunks);
        // Items are reported in stream order and never overlap.
        let mut next = 0u64;
        for item in &items {
            let (offset, len) = match item {
                StreamItem::Frame { offset, .. } => (*offset, 1),
                StreamItem::Invalid { offset, len, .. } => (*offset, *len),
            };
            prop_assert!(offset >= next);
            prop_assert!(len >= 1);
            next = offset + len;
        }
        prop_assert!(next <= bytes.len() as u64);
        prop_assert_eq!(push_bytes(&bytes), items);
    }

    /// Verifies: SR-PRO-002
    #[test]
    fn sr_pro_002_arbitrary_payloads_never_panic_decode_payload(
        kind in prop_oneof![
            proptest::sample::select(MessageKind::ALL).prop_map(MessageKind::code),
            any::<u16>(),
        ],
        payload in vec(any::<u8>(), 0..600),
    ) {
        // Verifies: SR-PRO-002
        match Message::decode_payload(kind, &payload) {
            Ok(message) => {
                prop_assert_eq!(message.kind_code(), kind);
                if let Message::Unknown(unknown) = &message {
                    prop_assert_eq!(&unknown.payload[..], &payload[..]);
                }
            }
            Err(error) => {
                if MessageKind::from_code(kind).is_none() {
                    prop_assert_eq!(error, PayloadError::TooLarge);
                    prop_assert!(payload.len() > MAX_UNKNOWN_PAYLOAD_LEN);
                }
            }
        }
    }

    /// Verifies: SR-PRO-005
    #[test]
    fn sr_pro_005_garbage_between_frames_loses_no_frame(
        frames in vec(arb::frame(), 1..6),
        garbage in vec(arb::garbage(), 7),
        chunks in vec(1usize..100, 1..8),
    ) {
        // Verifies: SR-PRO-005
        let mut stream = garbage[0].clone();
        let mut offsets = Vec::new();
        for (frame, noise) in frames.iter().zip(&garbage[1..]) {
            offsets.push(stream.len() as u64 + 1);
            stream.extend(stream_encode(frame));
            stream.extend(noise);
        }
        let items = feed_chunked(&stream, &chunks);
        let decoded = frames_of(&items);
        prop_assert_eq!(decoded.len(), frames.len());
        for ((offset, decoded), (frame, expected)) in
            decoded.into_iter().zip(frames.iter().zip(&offsets))
        {
            prop_assert!(same_frame(decoded, frame));
            prop_assert_eq!(offset, *expected);
        }
        prop_assert_eq!(push_bytes(&stream), items);
    }

    /// Verifies: SR-PRO-001
    #[test]
    fn sr_pro_001_any_single_bit_flip_is_an_error(frame in arb::frame()) {
        // Verifies: SR-PRO-001
        let bytes = encode(&frame);
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = decode_frame(&flipped);
            // Which check catches it follows from the check order.
            let ok = matches!(
                (bit / 8, &result),
                (0..=1, Err(FrameError::BadMagic { .. }))
                    | (2, Err(FrameError::UnsupportedVersion { .. }))
                    | (
                        12..=13,
                        Err(FrameError::Truncated { .. } | FrameError::LengthMismatch { .. })
                    )
                    | (3..=11 | 14.., Err(FrameError::BadCrc { .. }))
            );
            prop_assert!(ok, "bit {} flipped: {:?}", bit, result);
        }
    }

    /// Verifies: SR-PRO-003
    #[test]
    fn sr_pro_003_unknown_major_is_rejected(
        frame in arb::frame(),
        major in any::<u8>().prop_filter("major 1", |m| *m != VERSION_MAJOR),
        minor in any::<u8>(),
    ) {
        // Verifies: SR-PRO-003
        let mut bytes = encode(&frame);
        bytes[2] = major;
        bytes[3] = minor;
        fix_crc(&mut bytes);
        prop_assert_eq!(
            decode_frame(&bytes),
            Err(FrameError::UnsupportedVersion { major, minor })
        );
        // Also when the rest of the frame is not a v1 frame at all.
        let mut other = bytes[..HEADER_LEN].to_vec();
        other.extend([0xFF; 3]);
        prop_assert_eq!(
            decode_frame(&other),
            Err(FrameError::UnsupportedVersion { major, minor })
        );
    }

    /// Verifies: SR-PRO-007
    #[test]
    fn sr_pro_007_trailing_payload_bytes_are_rejected(
        frame in arb::known_frame(),
        extra in vec(any::<u8>(), 1..16),
    ) {
        // Verifies: SR-PRO-007
        let kind = frame.message.kind_code();
        let mut payload = [0u8; MAX_PAYLOAD_LEN];
        let n = frame.message.encode_payload(&mut payload).expect("fits");
        let mut long = payload[..n].to_vec();
        long.extend(&extra);
        prop_assume!(long.len() <= MAX_PAYLOAD_LEN);
        prop_assert_eq!(
            Message::decode_payload(kind, &long),
            Err(PayloadError::TrailingBytes)
        );
        let bytes = raw_frame(RawHeader::v1_0(kind), &long);
        prop_assert_eq!(
            decode_frame(&bytes),
            Err(FrameError::Payload { kind, error: PayloadError::TrailingBytes })
        );
    }

    /// Verifies: SR-PRO-004
    #[test]
    fn sr_pro_004_unknown_kind_is_preserved(
        kind in arb::unknown_kind(),
        minor in any::<u8>(),
        flags in any::<u8>(),
        sequence in any::<u32>(),
        payload in vec(any::<u8>(), 0..=MAX_UNKNOWN_PAYLOAD_LEN),
    ) {
        // Verifies: SR-PRO-004
        let header = RawHeader { major: 1, minor, kind, flags, reserved: 0, sequence };
        let bytes = raw_frame(header, &payload);
        let decoded = decode_frame(&bytes).expect("unknown kinds decode");
        prop_assert_eq!(decoded.kind(), None);
        prop_assert_eq!(decoded.header.version_minor, minor);
        match &decoded.message {
            Message::Unknown(unknown) => {
                prop_assert_eq!(unknown.kind, kind);
                prop_assert_eq!(&unknown.payload[..], &payload[..]);
            }
            other => prop_assert!(false, "decoded as {:?}", other),
        }
        // Forwarded unchanged: re-encoding gives the same payload bytes.
        let again = encode(&Frame { sequence, flags, message: decoded.message.clone() });
        // (The minor version, and with it the CRC, is the forwarder's own.)
        prop_assert_eq!(&again[4..again.len() - CRC_LEN], &bytes[4..bytes.len() - CRC_LEN]);
    }

    /// A frame from a later minor version decodes when its kind is known:
    /// minor versions only add kinds and code values (rule C1).
    #[test]
    fn higher_minor_with_known_kind_decodes(
        frame in arb::known_frame(),
        minor in (VERSION_MINOR + 1)..=u8::MAX,
    ) {
        let mut bytes = encode(&frame);
        bytes[3] = minor;
        fix_crc(&mut bytes);
        let decoded = decode_frame(&bytes).expect("a later minor decodes");
        prop_assert_eq!(decoded.header.version_minor, minor);
        prop_assert_eq!(&decoded.message, &frame.message);
    }

    /// Flag bits this version does not define and the reserved byte are
    /// ignored on receipt (rules C5 and C8); the header keeps them as sent.
    #[test]
    fn unknown_flags_and_reserved_byte_are_ignored(
        frame in arb::known_frame(),
        flags in any::<u8>(),
        reserved in any::<u8>(),
    ) {
        let mut bytes = encode(&frame);
        bytes[6] = flags;
        bytes[7] = reserved;
        fix_crc(&mut bytes);
        let decoded = decode_frame(&bytes).expect("decodes");
        prop_assert_eq!(&decoded.message, &frame.message);
        prop_assert_eq!(decoded.header.flags, flags);
        prop_assert_eq!(decoded.header.reserved, reserved);
    }

    /// Code values a later minor version adds decode as `Other(code)` and
    /// re-encode to the same code (rules C1 and C9).
    #[test]
    fn unknown_code_values_round_trip_as_other(
        time_ms in any::<u64>(),
        code in any::<u16>().prop_filter("known", |c| ErrorCode::from_code(*c).name() == "Other"),
    ) {
        let message = Message::PatientBolusDenied(PatientBolusDenied {
            time_ms,
            reason: ErrorCode::from_code(code),
            lockout_remaining_ms: 0,
        });
        let mut payload = [0u8; MAX_PAYLOAD_LEN];
        let n = message.encode_payload(&mut payload).expect("fits");
        let decoded = Message::decode_payload(MessageKind::PatientBolusDenied.code(), &payload[..n]);
        match decoded {
            Ok(Message::PatientBolusDenied(m)) => {
                prop_assert_eq!(m.reason, ErrorCode::Other(code));
                prop_assert_eq!(m.reason.code(), code);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
