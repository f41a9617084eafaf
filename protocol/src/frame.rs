use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, IntoBytes};

use crate::{
    FrameError, FrameHeader, Message, MessageKind, CRC32C, CRC_LEN, HEADER_LEN, MAGIC,
    MAX_KNOWN_PAYLOAD_LEN, MAX_UNKNOWN_PAYLOAD_LEN, VERSION_MAJOR, VERSION_MINOR,
};

/// Largest payload any major-1 frame may carry (spec §2).
pub const MAX_PAYLOAD_LEN: usize = MAX_UNKNOWN_PAYLOAD_LEN;
const _: () = assert!(MAX_KNOWN_PAYLOAD_LEN <= MAX_PAYLOAD_LEN);

/// Largest frame: header, payload and CRC.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN + CRC_LEN;

/// Largest COBS encoding of a frame, without delimiters.
pub const MAX_ENCODED_FRAME_LEN: usize = cobs::max_encoding_length(MAX_FRAME_LEN);

/// Largest stream item: a leading `0x00`, the COBS encoding and a trailing `0x00`.
pub const MAX_STREAM_FRAME_LEN: usize = MAX_ENCODED_FRAME_LEN + 2;

/// A message with the header fields a sender chooses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Event or request sequence number.
    pub sequence: u32,
    /// Header flags (see [`crate::flags`]).
    pub flags: u8,
    /// The message.
    pub message: Message,
}

/// A decoded frame and the header it arrived with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedFrame {
    /// The header exactly as received (it carries the sender's minor version).
    pub header: FrameHeader,
    /// The message.
    pub message: Message,
}

impl DecodedFrame {
    /// The header's sequence number.
    pub fn sequence(&self) -> u32 {
        self.header.sequence.get()
    }

    /// The message kind, if this decoder knows it.
    pub fn kind(&self) -> Option<MessageKind> {
        self.message.kind()
    }
}

/// Encodes a frame (header, payload, CRC; no COBS) into `buf` and returns its
/// length.
pub fn encode_frame(frame: &Frame, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut payload = [0u8; MAX_PAYLOAD_LEN];
    let payload_len = frame
        .message
        .encode_payload(&mut payload)
        .map_err(|error| FrameError::Payload {
            kind: frame.message.kind_code(),
            error,
        })?;
    let total = HEADER_LEN + payload_len + CRC_LEN;
    let out = buf
        .get_mut(..total)
        .ok_or(FrameError::BufferTooSmall { needed: total })?;
    let header = FrameHeader {
        magic: MAGIC,
        version_major: VERSION_MAJOR,
        version_minor: VERSION_MINOR,
        kind: U16::new(frame.message.kind_code()),
        flags: frame.flags,
        reserved: 0,
        sequence: U32::new(frame.sequence),
        // payload_len <= MAX_PAYLOAD_LEN (512), so it always fits in u16.
        payload_len: U16::new(payload_len as u16),
    };
    out[..HEADER_LEN].copy_from_slice(header.as_bytes());
    out[HEADER_LEN..HEADER_LEN + payload_len].copy_from_slice(&payload[..payload_len]);
    let crc = CRC32C.checksum(&out[..HEADER_LEN + payload_len]);
    out[HEADER_LEN + payload_len..].copy_from_slice(&crc.to_le_bytes());
    Ok(total)
}

/// Encodes a frame as a stream item: `0x00`, COBS(frame), `0x00`.
pub fn encode_stream_frame(frame: &Frame, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut raw = [0u8; MAX_FRAME_LEN];
    let raw_len = encode_frame(frame, &mut raw)?;
    let needed = cobs::max_encoding_length(raw_len) + 2;
    if buf.len() < needed {
        return Err(FrameError::BufferTooSmall { needed });
    }
    buf[0] = 0;
    let encoded_len = cobs::try_encode(&raw[..raw_len], &mut buf[1..needed - 1])
        .map_err(|_| FrameError::BufferTooSmall { needed })?;
    buf[1 + encoded_len] = 0;
    Ok(encoded_len + 2)
}

/// Decodes one frame (header, payload, CRC; no COBS).
///
/// Checks run in this order, so each error names the first thing wrong:
/// length, magic, major version, payload length, CRC (over the received
/// bytes), payload. Never panics.
pub fn decode_frame(bytes: &[u8]) -> Result<DecodedFrame, FrameError> {
    if bytes.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLong { len: bytes.len() });
    }
    let (header, rest) =
        FrameHeader::read_from_prefix(bytes).map_err(|_| FrameError::Truncated {
            needed: HEADER_LEN + CRC_LEN,
            available: bytes.len(),
        })?;
    if header.magic != MAGIC {
        return Err(FrameError::BadMagic {
            found: header.magic,
        });
    }
    if header.version_major != VERSION_MAJOR {
        return Err(FrameError::UnsupportedVersion {
            major: header.version_major,
            minor: header.version_minor,
        });
    }
    let declared = usize::from(header.payload_len.get());
    let actual = rest.len().checked_sub(CRC_LEN).ok_or(FrameError::Truncated {
        needed: HEADER_LEN + CRC_LEN,
        available: bytes.len(),
    })?;
    if declared > actual {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN + declared + CRC_LEN,
            available: bytes.len(),
        });
    }
    if declared != actual {
        return Err(FrameError::LengthMismatch { declared, actual });
    }
    let (covered, trailer) = bytes.split_at(HEADER_LEN + declared);
    let found = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let expected = CRC32C.checksum(covered);
    if expected != found {
        return Err(FrameError::BadCrc { expected, found });
    }
    let kind = header.kind.get();
    let message = Message::decode_payload(kind, &covered[HEADER_LEN..])
        .map_err(|error| FrameError::Payload { kind, error })?;
    Ok(DecodedFrame { header, message })
}
