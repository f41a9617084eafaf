//! Example-based tests of the wire-protocol safety requirements (SR-PRO-…
//! in `docs/safety/requirements.md`). The property tests in
//! `properties.rs` cover the same requirements over arbitrary input.

mod common;

use common::{encode, example, example_prescription, examples, fix_crc, raw_frame, RawHeader};
use pump_protocol::prescription::{
    decode_body, encode_body, signed_message, split_signed, MAX_PRESCRIPTION_BODY_LEN,
    MAX_SIGNED_MESSAGE_LEN, MAX_SIGNED_PRESCRIPTION_LEN, SIGNATURE_LEN, SIGNING_DOMAIN,
};
use pump_protocol::*;

fn decode_stream(stream: &[u8]) -> Vec<StreamItem> {
    let mut items = Vec::new();
    let mut decoder = StreamDecoder::new();
    decoder.feed(stream, |item| items.push(item));
    items.extend(decoder.finish());
    items
}

fn stream_encode(frame: &Frame) -> Vec<u8> {
    encode_stream_frame_vec(frame).expect("encodes")
}

// ------------------------------------------------------------ SR-PRO-001 --

/// The trailer is CRC-32C (`CRC_32_ISCSI`) over header and payload, little
/// endian, for every example.
#[test]
fn sr_pro_001_trailer_is_crc32c_of_header_and_payload() {
    // Verifies: SR-PRO-001
    for frame in examples() {
        let bytes = encode(&frame);
        let (covered, trailer) = bytes.split_at(bytes.len() - CRC_LEN);
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(covered);
        assert_eq!(trailer, crc.to_le_bytes(), "{:?}", frame.message.kind());
    }
}

/// The CRC is checked over the bytes as received, not over a re-encoding of
/// what they decoded to. postcard accepts over-long varints, so two byte
/// strings can decode to the same message; only the received bytes say
/// which one was sent.
#[test]
fn sr_pro_001_crc_is_checked_over_received_bytes_not_a_reencoding() {
    // Verifies: SR-PRO-001
    let record = DeliveryRecord {
        time_ms: common::T0_MS,
        delivery_kind: DeliveryKind::Basal,
        outcome: DeliveryOutcome::Completed,
        volume_nl: 90,
        duration_ms: 60_000,
    };
    let message = Message::DeliveryRecord(record);
    let mut canonical = [0u8; MAX_PAYLOAD_LEN];
    let n = message.encode_payload(&mut canonical).expect("fits");
    let canonical = &canonical[..n];
    // `delivery_kind` (Basal = 0) and `outcome` (Completed = 0) are the two
    // single 0x00 bytes after the 6-byte time; re-encode the first as the
    // over-long varint 0x80 0x00.
    let kind_at = 6;
    assert_eq!(&canonical[kind_at..kind_at + 2], &[0x00, 0x00]);
    let mut overlong = canonical[..kind_at].to_vec();
    overlong.extend([0x80, 0x00]);
    overlong.extend(&canonical[kind_at + 1..]);
    let kind = MessageKind::DeliveryRecord.code();
    assert_eq!(
        Message::decode_payload(kind, &overlong),
        Ok(message.clone()),
        "postcard accepts the over-long varint"
    );

    // CRC over the received bytes: accepted.
    let header = RawHeader {
        sequence: 9,
        ..RawHeader::v1_0(kind)
    };
    let received = raw_frame(header, &overlong);
    assert_eq!(
        decode_frame(&received).map(|d| d.message),
        Ok(message.clone())
    );

    // A trailer that is the CRC of the canonical re-encoding: rejected.
    let reencoded = encode(&Frame {
        sequence: 9,
        flags: 0,
        message,
    });
    let mut forged = received.clone();
    let at = forged.len() - CRC_LEN;
    forged[at..].copy_from_slice(&reencoded[reencoded.len() - CRC_LEN..]);
    assert!(matches!(
        decode_frame(&forged),
        Err(FrameError::BadCrc { .. })
    ));
}

/// A corrupted frame inside a stream is reported, and costs nothing else.
#[test]
fn sr_pro_001_corrupted_frame_in_a_stream_is_reported_not_decoded() {
    // Verifies: SR-PRO-001
    let frames: Vec<Frame> = examples().into_iter().take(3).collect();
    let encoded: Vec<Vec<u8>> = frames.iter().map(stream_encode).collect();
    let mut stream = encoded[0].clone();
    let mut middle = encoded[1].clone();
    let at = middle.len() / 2;
    middle[at] ^= 0x10;
    assert_ne!(middle[at], 0, "the flip must not make a delimiter here");
    stream.extend(&middle);
    stream.extend(&encoded[2]);
    let items = decode_stream(&stream);
    assert_eq!(items.len(), 3);
    assert!(
        matches!(&items[0], StreamItem::Frame { frame, .. } if frame.message == frames[0].message)
    );
    assert!(matches!(
        &items[1],
        StreamItem::Invalid {
            error: FrameError::BadCrc { .. },
            ..
        }
    ));
    assert!(
        matches!(&items[2], StreamItem::Frame { frame, .. } if frame.message == frames[2].message)
    );
}

// ------------------------------------------------------------ SR-PRO-002 --

/// Each malformation gets its own typed error, in the documented check
/// order.
#[test]
fn sr_pro_002_each_malformation_has_a_typed_error() {
    // Verifies: SR-PRO-002
    let good = encode(&example(MessageKind::AlarmRaised).expect("example"));
    let payload_len = good.len() - HEADER_LEN - CRC_LEN;

    assert_eq!(
        decode_frame(&good[..10]),
        Err(FrameError::Truncated {
            needed: HEADER_LEN + CRC_LEN,
            available: 10
        })
    );
    assert_eq!(
        decode_frame(&good[..HEADER_LEN + 2]),
        Err(FrameError::Truncated {
            needed: HEADER_LEN + CRC_LEN,
            available: HEADER_LEN + 2
        })
    );
    assert_eq!(
        decode_frame(&good[..good.len() - 1]),
        Err(FrameError::Truncated {
            needed: good.len(),
            available: good.len() - 1
        })
    );
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert_eq!(
        decode_frame(&bad_magic),
        Err(FrameError::BadMagic { found: *b"XP" })
    );
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(
        decode_frame(&longer),
        Err(FrameError::LengthMismatch {
            declared: payload_len,
            actual: payload_len + 1
        })
    );
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xFF;
    assert!(matches!(
        decode_frame(&bad_crc),
        Err(FrameError::BadCrc { expected, found }) if expected != found
    ));
    let kind = MessageKind::AlarmRaised.code();
    let bad_bool = raw_frame(RawHeader::v1_0(MessageKind::LogChunkEnd.code()), &[1, 2, 7]);
    assert_eq!(
        decode_frame(&bad_bool),
        Err(FrameError::Payload {
            kind: MessageKind::LogChunkEnd.code(),
            error: PayloadError::Malformed
        })
    );
    let short = raw_frame(RawHeader::v1_0(kind), &[0x80]);
    assert_eq!(
        decode_frame(&short),
        Err(FrameError::Payload {
            kind,
            error: PayloadError::Truncated
        })
    );
    assert_eq!(
        decode_frame(&vec![0x49; MAX_FRAME_LEN + 1]),
        Err(FrameError::TooLong {
            len: MAX_FRAME_LEN + 1
        })
    );
    // A stream item that is not valid COBS (a block runs past its end).
    let items = decode_stream(&[0, 0x05, 0x49, 0x50, 0]);
    assert_eq!(
        items,
        vec![StreamItem::Invalid {
            error: FrameError::Cobs,
            offset: 1,
            len: 3
        }]
    );
    // A partial item at the end of the stream.
    let items = decode_stream(&[0, 0x03, 0x49]);
    assert_eq!(
        items,
        vec![StreamItem::Invalid {
            error: FrameError::Truncated {
                needed: 3,
                available: 2
            },
            offset: 1,
            len: 2
        }]
    );
}

/// The signed-prescription parsers never panic and answer with typed errors.
#[test]
fn sr_pro_002_prescription_parsers_reject_malformed_input() {
    // Verifies: SR-PRO-002
    for len in 0..=SIGNATURE_LEN {
        assert_eq!(split_signed(&vec![0xAB; len]), Err(PayloadError::Truncated));
    }
    let mut buf = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body(&example_prescription(), &mut buf)
        .expect("fits")
        .to_vec();
    for cut in 0..body.len() {
        assert!(decode_body(&body[..cut]).is_err(), "prefix of {cut} bytes");
    }
    let mut wrong_format = body.clone();
    wrong_format[0] = 3;
    assert_eq!(decode_body(&wrong_format), Err(PayloadError::Malformed));
    // Format 2 without its pairing is cut short, never read as format 1.
    let mut no_pairing = body.clone();
    no_pairing[0] = 2;
    assert!(decode_body(&no_pairing).is_err());
    // Bytes that are not a prescription at all, of every length.
    for len in 0..400 {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let _ = decode_body(&junk);
        let _ = split_signed(&junk);
        let mut out = [0u8; 8];
        assert_eq!(
            signed_message(&junk, &mut out).is_ok(),
            SIGNING_DOMAIN.len() + len <= out.len()
        );
    }
}

// ------------------------------------------------------------ SR-PRO-003 --

#[test]
fn sr_pro_003_unknown_major_is_rejected_before_anything_else_is_trusted() {
    // Verifies: SR-PRO-003
    for major in [0u8, 2, 3, 0x7F, 0xFF] {
        let mut header = RawHeader::v1_0(MessageKind::StatusSnapshot.code());
        header.major = major;
        header.minor = 4;
        let frame = raw_frame(header, &[0xFF; 20]);
        assert_eq!(
            decode_frame(&frame),
            Err(FrameError::UnsupportedVersion { major, minor: 4 })
        );
        // Before the length and CRC checks: a v2 frame may frame its payload
        // differently, so nothing after the version is interpreted.
        let mut cut = frame.clone();
        cut.truncate(HEADER_LEN);
        assert_eq!(
            decode_frame(&cut),
            Err(FrameError::UnsupportedVersion { major, minor: 4 })
        );
    }
    assert_eq!(RELEASED_VERSIONS.iter().filter(|(m, _)| *m != 1).count(), 0);
}

// ------------------------------------------------------------ SR-PRO-004 --

#[test]
fn sr_pro_004_unknown_kind_survives_a_stream_and_is_forwarded_unchanged() {
    // Verifies: SR-PRO-004
    let header = RawHeader {
        major: 1,
        minor: 3,
        kind: 0x017F,
        flags: 0x80,
        reserved: 0,
        sequence: 77,
    };
    let payload = [0x2A, 0x00, 0xFF, 0x01];
    let frame = raw_frame(header, &payload);
    let mut stream = vec![0u8; 1];
    let mut cobs = vec![0u8; cobs::max_encoding_length(frame.len())];
    let n = cobs::encode(&frame, &mut cobs);
    stream.extend(&cobs[..n]);
    stream.push(0);
    let items = decode_stream(&stream);
    let [StreamItem::Frame { frame: decoded, .. }] = &items[..] else {
        panic!("expected one frame, got {items:?}");
    };
    assert_eq!(decoded.kind(), None);
    assert_eq!(decoded.header.version_minor, 3);
    assert_eq!(decoded.header.flags, 0x80);
    let Message::Unknown(unknown) = &decoded.message else {
        panic!("decoded as {:?}", decoded.message);
    };
    assert_eq!(unknown.kind, 0x017F);
    assert_eq!(&unknown.payload[..], &payload);
    let mut out = [0u8; MAX_PAYLOAD_LEN];
    let n = decoded.message.encode_payload(&mut out).expect("fits");
    assert_eq!(&out[..n], &payload);
}

// ------------------------------------------------------------ SR-PRO-005 --

#[test]
fn sr_pro_005_resynchronises_after_garbage_and_overlong_items() {
    // Verifies: SR-PRO-005
    let frames = examples();
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        // Between frames: nothing, a run of zeros, noise without a zero
        // (which glues onto the next frame's leading delimiter), noise with
        // zeros, a half frame, or an item longer than any frame may be.
        match i % 6 {
            0 => {}
            1 => stream.extend([0u8; 5]),
            2 => stream.extend([0x49, 0x50, 0x01, 0x13]),
            3 => stream.extend([0xFF, 0x00, 0x17, 0x00, 0x00, 0x42]),
            4 => {
                let half = stream_encode(&frames[0]);
                stream.extend(&half[..half.len() / 2]);
            }
            _ => stream.extend(vec![0x5A; MAX_ENCODED_FRAME_LEN + 100]),
        }
        expected.push(frame.message.clone());
        stream.extend(stream_encode(frame));
    }
    let decoded: Vec<Message> = decode_stream(&stream)
        .into_iter()
        .filter_map(|item| match item {
            StreamItem::Frame { frame, .. } => Some(frame.message),
            StreamItem::Invalid { .. } => None,
        })
        .collect();
    assert_eq!(decoded, expected);
}

// ------------------------------------------------------------ SR-PRO-006 --

/// A buffer shorter than the largest frame but as long as this one takes
/// it, byte for byte as a full-size buffer does, and one byte less is
/// refused with the size needed (the short-buffer path of `encode_frame`,
/// a mutation survivor).
#[test]
fn sr_pro_006_a_buffer_of_exactly_the_frames_length_is_enough() {
    for frame in examples() {
        let name = frame.message.kind_code();
        let bytes = encode(&frame);
        let mut exact = vec![0u8; bytes.len()];
        assert_eq!(
            encode_frame(&frame, &mut exact),
            Ok(bytes.len()),
            "kind {name:#06x}"
        );
        assert_eq!(exact, bytes, "kind {name:#06x}");
        let mut short = vec![0u8; bytes.len() - 1];
        assert_eq!(
            encode_frame(&frame, &mut short),
            Err(FrameError::BufferTooSmall {
                needed: bytes.len()
            }),
            "kind {name:#06x}"
        );
    }
}

/// A stream item as long as the longest encoding of the largest frame
/// (`MAX_ENCODED_FRAME_LEN`: `MAX_FRAME_LEN` bytes none of which is zero,
/// which COBS cannot shorten) is decoded, not refused as too long: whether
/// it arrives whole in one `feed` or byte by byte, it gets exactly the
/// verdict `decode_frame` gives the same bytes. One byte more is too long.
/// (The whole-item path's bound was a surviving mutant: no test built an
/// item of exactly that length, because every real frame has a zero in its
/// header.)
#[test]
fn sr_pro_006_an_item_of_the_largest_encoded_length_is_decoded_not_refused() {
    let frame: Vec<u8> = (0..MAX_FRAME_LEN).map(|i| (i % 255) as u8 + 1).collect();
    let mut item = vec![0u8; cobs::max_encoding_length(frame.len())];
    let n = cobs::encode(&frame, &mut item);
    assert_eq!(n, MAX_ENCODED_FRAME_LEN);
    let expected = decode_frame(&frame).expect_err("magic 01 02 is not a frame");
    assert_ne!(expected, FrameError::TooLong { len: MAX_FRAME_LEN });

    let mut stream = vec![0u8];
    stream.extend_from_slice(&item);
    stream.push(0);
    let want = StreamItem::Invalid {
        error: expected,
        offset: 1,
        len: MAX_ENCODED_FRAME_LEN as u64,
    };
    assert_eq!(decode_stream(&stream), vec![want.clone()], "whole");
    let mut bytewise = StreamDecoder::new();
    let items: Vec<StreamItem> = stream.iter().filter_map(|&b| bytewise.push(b)).collect();
    assert_eq!(items, vec![want], "byte by byte");

    let mut longer = vec![0u8];
    longer.extend_from_slice(&item);
    longer.push(0x01);
    longer.push(0);
    assert!(matches!(
        decode_stream(&longer).as_slice(),
        [StreamItem::Invalid {
            error: FrameError::TooLong { .. },
            ..
        }]
    ));
}

/// The size limits are compile-time constants with the documented values,
/// and the catalogue fits them.
#[test]
fn sr_pro_006_frame_sizes_are_bounded_at_compile_time() {
    // Verifies: SR-PRO-006
    assert_eq!(HEADER_LEN, 14);
    assert_eq!(CRC_LEN, 4);
    assert_eq!(MAX_PAYLOAD_LEN, 512);
    assert_eq!(MAX_FRAME_LEN, 530);
    assert_eq!(MAX_ENCODED_FRAME_LEN, 533);
    assert_eq!(MAX_STREAM_FRAME_LEN, 535);
    assert_eq!(MAX_UNKNOWN_PAYLOAD_LEN, MAX_PAYLOAD_LEN);
    const { assert!(MAX_KNOWN_PAYLOAD_LEN <= MAX_PAYLOAD_LEN) };
    assert_eq!(
        MAX_ENCODED_FRAME_LEN,
        cobs::max_encoding_length(MAX_FRAME_LEN)
    );
    // The decoder's memory is one encoded frame plus bookkeeping.
    assert!(std::mem::size_of::<StreamDecoder>() <= MAX_ENCODED_FRAME_LEN + 64);
}

/// The largest messages encode within the bounds, and nothing larger is
/// accepted.
#[test]
fn sr_pro_006_largest_frames_fit_and_larger_ones_are_refused() {
    // Verifies: SR-PRO-006
    let largest_known = Message::InstallPrescription(InstallPrescription {
        device_id: u32::MAX,
        prescription_serial: u32::MAX,
        signed_prescription: heapless::Vec::from_slice(&[0xEE; MAX_SIGNED_PRESCRIPTION_LEN])
            .expect("fits"),
    });
    let largest_unknown = Message::Unknown(Unknown {
        kind: 0x7FFF,
        payload: heapless::Vec::from_slice(&[0xEE; MAX_UNKNOWN_PAYLOAD_LEN]).expect("fits"),
    });
    for message in [largest_known, largest_unknown] {
        let frame = Frame {
            sequence: u32::MAX,
            flags: 0xFF,
            message,
        };
        let bytes = encode(&frame);
        assert!(bytes.len() <= MAX_FRAME_LEN);
        let stream = stream_encode(&frame);
        assert!(stream.len() <= MAX_STREAM_FRAME_LEN);
        assert_eq!(decode_stream(&stream).len(), 1);
        // A buffer one byte short is refused with the size needed.
        let mut short = vec![0u8; bytes.len() - 1];
        assert_eq!(
            encode_frame(&frame, &mut short),
            Err(FrameError::BufferTooSmall {
                needed: bytes.len()
            })
        );
    }
    assert_eq!(
        encode(&Frame {
            sequence: 0,
            flags: 0,
            message: Message::Unknown(Unknown {
                kind: 0x7FFF,
                payload: heapless::Vec::from_slice(&[0xEE; MAX_UNKNOWN_PAYLOAD_LEN]).expect("fits"),
            }),
        })
        .len(),
        MAX_FRAME_LEN
    );
    // Larger payloads cannot be decoded into a message...
    assert_eq!(
        Message::decode_payload(0x7FFF, &[0; MAX_UNKNOWN_PAYLOAD_LEN + 1]),
        Err(PayloadError::TooLarge)
    );
    // ...larger frames are refused before they are looked at...
    assert_eq!(
        decode_frame(&[0; MAX_FRAME_LEN + 1]),
        Err(FrameError::TooLong {
            len: MAX_FRAME_LEN + 1
        })
    );
    // ...and larger stream items are skipped without being buffered.
    let mut stream = vec![0u8];
    stream.extend(vec![0x11; 10 * MAX_ENCODED_FRAME_LEN]);
    let after = example(MessageKind::GetStatus).expect("example");
    stream.extend(stream_encode(&after));
    let items = decode_stream(&stream);
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0],
        StreamItem::Invalid {
            error: FrameError::TooLong {
                len: 10 * MAX_ENCODED_FRAME_LEN
            },
            offset: 1,
            len: 10 * MAX_ENCODED_FRAME_LEN as u64
        }
    );
    assert!(matches!(&items[1], StreamItem::Frame { frame, .. } if frame.message == after.message));
}

// ------------------------------------------------------------ SR-PRO-007 --

#[test]
fn sr_pro_007_trailing_bytes_after_every_example_payload_are_rejected() {
    // Verifies: SR-PRO-007
    for frame in examples() {
        let kind = frame.message.kind_code();
        let mut payload = [0u8; MAX_PAYLOAD_LEN];
        let n = frame.message.encode_payload(&mut payload).expect("fits");
        let mut long = payload[..n].to_vec();
        long.push(0);
        let bytes = raw_frame(RawHeader::v1_0(kind), &long);
        assert_eq!(
            decode_frame(&bytes),
            Err(FrameError::Payload {
                kind,
                error: PayloadError::TrailingBytes
            }),
            "{:?}",
            frame.message.kind()
        );
    }
    // Also inside the signed prescription's body.
    let mut buf = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let mut body = encode_body(&example_prescription(), &mut buf)
        .expect("fits")
        .to_vec();
    body.push(0);
    assert_eq!(decode_body(&body), Err(PayloadError::TrailingBytes));
}

// ------------------------------------------------------------ SR-PRO-008 --

#[test]
fn sr_pro_008_signed_message_is_domain_then_body() {
    // Verifies: SR-PRO-008
    assert_eq!(SIGNING_DOMAIN, b"infusion-pump/prescription/v1\0");
    let mut buf = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body(&example_prescription(), &mut buf)
        .expect("fits")
        .to_vec();
    let mut out = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let message = signed_message(&body, &mut out).expect("fits");
    assert_eq!(&message[..SIGNING_DOMAIN.len()], SIGNING_DOMAIN);
    assert_eq!(&message[SIGNING_DOMAIN.len()..], &body[..]);
    assert_eq!(
        MAX_SIGNED_MESSAGE_LEN,
        SIGNING_DOMAIN.len() + MAX_PRESCRIPTION_BODY_LEN
    );
    // A buffer too small for domain and body is refused, not overrun.
    let mut small = [0u8; 40];
    assert_eq!(
        signed_message(&body, &mut small),
        Err(PayloadError::TooLarge)
    );
}

/// The domain separates prescription signatures from anything else the key
/// could sign: no frame, and no bare prescription body, starts with it, so a
/// signature over either never verifies as a prescription signature and the
/// reverse.
#[test]
fn sr_pro_008_no_frame_or_body_can_be_mistaken_for_a_signed_message() {
    // Verifies: SR-PRO-008
    assert!(!SIGNING_DOMAIN.starts_with(&MAGIC));
    assert_eq!(SIGNING_DOMAIN.last(), Some(&0), "NUL-terminated");
    assert_eq!(
        SIGNING_DOMAIN.iter().filter(|&&b| b == 0).count(),
        1,
        "exactly one NUL, so the prefix is unambiguous"
    );
    for frame in examples() {
        assert!(!encode(&frame).starts_with(SIGNING_DOMAIN));
        assert!(!stream_encode(&frame).starts_with(SIGNING_DOMAIN));
    }
    let mut buf = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body(&example_prescription(), &mut buf).expect("fits");
    // A body starts with its format byte (1), never with the domain's 'i'.
    assert_eq!(body[0], 1);
    assert_ne!(body[0], SIGNING_DOMAIN[0]);
    // Changing any body byte changes the signed message.
    let body = body.to_vec();
    let mut a = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let reference = signed_message(&body, &mut a).expect("fits").to_vec();
    for i in 0..body.len() {
        let mut changed = body.clone();
        changed[i] ^= 1;
        let mut b = [0u8; MAX_SIGNED_MESSAGE_LEN];
        // A changed format byte names an unknown format: no message at all.
        if let Ok(message) = signed_message(&changed, &mut b) {
            assert_ne!(message, &reference[..]);
        }
    }
    // Each signed purpose has its own domain, none a prefix of another, so
    // a signature for one never verifies as another.
    let domains = [
        SIGNING_DOMAIN,
        pump_protocol::prescription::SIGNING_DOMAIN_V2,
        pump_protocol::command_auth::COMMAND_SIGNING_DOMAIN,
    ];
    for (i, a) in domains.iter().enumerate() {
        assert_eq!(a.iter().filter(|&&b| b == 0).count(), 1);
        for (j, b) in domains.iter().enumerate() {
            if i != j {
                assert!(!a.starts_with(b), "domain {i} starts with domain {j}");
            }
        }
    }
}

#[test]
fn signed_prescription_splits_into_body_and_signature() {
    let signed = common::example_signed_prescription();
    let parts = split_signed(&signed).expect("splits");
    assert_eq!(parts.signature.len(), SIGNATURE_LEN);
    assert_eq!(parts.body.len() + SIGNATURE_LEN, signed.len());
    assert_eq!(decode_body(parts.body), Ok(example_prescription()));
    assert_eq!(parts.signature[0], 0xA0);
    assert!(signed.len() <= MAX_SIGNED_PRESCRIPTION_LEN);
    insta::assert_snapshot!(
        "prescription_body",
        format!(
            "{} body bytes\n{}\n\n{:#?}",
            parts.body.len(),
            common::hex_rows(parts.body),
            decode_body(parts.body).expect("decodes")
        )
    );
}

#[test]
fn frame_with_minor_and_flags_from_the_future_decodes() {
    let mut bytes = encode(&example(MessageKind::StatusSnapshot).expect("example"));
    bytes[3] = 9;
    bytes[6] = 0xFF;
    bytes[7] = 0x55;
    fix_crc(&mut bytes);
    let decoded = decode_frame(&bytes).expect("decodes");
    assert_eq!(decoded.kind(), Some(MessageKind::StatusSnapshot));
}
