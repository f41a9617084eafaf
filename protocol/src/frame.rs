use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, IntoBytes};

use crate::crc32c::checksum;
use crate::{
    stuffing, FrameError, FrameHeader, Message, MessageKind, CRC_LEN, HEADER_LEN, MAGIC,
    MAX_KNOWN_PAYLOAD_LEN, MAX_UNKNOWN_PAYLOAD_LEN, VERSION_MAJOR, VERSION_MINOR,
};

/// Largest payload any major-1 frame may carry (`docs/protocol.md` §2.4).
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
///
/// The header carries [`VERSION_MAJOR`], [`VERSION_MINOR`] and a zero
/// reserved byte. A `buf` of [`MAX_FRAME_LEN`] bytes always suffices.
pub fn encode_frame(frame: &Frame, buf: &mut [u8]) -> Result<usize, FrameError> {
    let kind = frame.message.kind_code();
    let payload_error = |error| FrameError::Payload { kind, error };
    let payload_len = match buf.get_mut(HEADER_LEN..HEADER_LEN + MAX_PAYLOAD_LEN) {
        // Room for any payload: encode it in place.
        Some(dst) => frame.message.encode_payload(dst).map_err(payload_error)?,
        // A short buffer: encode into scratch first, so that the error says
        // exactly how many bytes this frame needs.
        None => {
            let mut payload = [0u8; MAX_PAYLOAD_LEN];
            let payload_len = frame
                .message
                .encode_payload(&mut payload)
                .map_err(payload_error)?;
            let total = HEADER_LEN + payload_len + CRC_LEN;
            buf.get_mut(HEADER_LEN..total - CRC_LEN)
                .ok_or(FrameError::BufferTooSmall { needed: total })?
                .copy_from_slice(payload.get(..payload_len).unwrap_or_default());
            payload_len
        }
    };
    let total = HEADER_LEN + payload_len + CRC_LEN;
    let out = buf
        .get_mut(..total)
        .ok_or(FrameError::BufferTooSmall { needed: total })?;
    let header = FrameHeader {
        magic: MAGIC,
        version_major: VERSION_MAJOR,
        version_minor: VERSION_MINOR,
        kind: U16::new(kind),
        flags: frame.flags,
        reserved: 0,
        sequence: U32::new(frame.sequence),
        // payload_len <= MAX_PAYLOAD_LEN (512), so it always fits in u16.
        payload_len: U16::new(payload_len as u16),
    };
    let (covered, trailer) = out.split_at_mut(HEADER_LEN + payload_len);
    covered[..HEADER_LEN].copy_from_slice(header.as_bytes());
    trailer.copy_from_slice(&checksum(covered).to_le_bytes());
    Ok(total)
}

/// Encodes a frame as a stream item: `0x00`, COBS(frame), `0x00`.
///
/// `buf` must hold the worst case for this frame's length,
/// `cobs::max_encoding_length(frame_len) + 2` bytes (for any frame at most
/// [`MAX_STREAM_FRAME_LEN`]); the returned length may be smaller.
pub fn encode_stream_frame(frame: &Frame, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut raw = [0u8; MAX_FRAME_LEN];
    let raw_len = encode_frame(frame, &mut raw)?;
    let needed = cobs::max_encoding_length(raw_len) + 2;
    let out = buf
        .get_mut(..needed)
        .ok_or(FrameError::BufferTooSmall { needed })?;
    let (first, rest) = out
        .split_first_mut()
        .ok_or(FrameError::BufferTooSmall { needed })?;
    *first = 0;
    let encoded_len = stuffing::encode(raw.get(..raw_len).unwrap_or_default(), rest)
        .ok_or(FrameError::BufferTooSmall { needed })?;
    *rest
        .get_mut(encoded_len)
        .ok_or(FrameError::BufferTooSmall { needed })? = 0;
    Ok(encoded_len + 2)
}

/// Host helper: [`encode_frame`] into a new `Vec`.
#[cfg(feature = "std")]
pub fn encode_frame_vec(frame: &Frame) -> Result<std::vec::Vec<u8>, FrameError> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = encode_frame(frame, &mut buf)?;
    Ok(buf.get(..len).unwrap_or_default().to_vec())
}

/// Host helper: [`encode_stream_frame`] into a new `Vec`.
#[cfg(feature = "std")]
pub fn encode_stream_frame_vec(frame: &Frame) -> Result<std::vec::Vec<u8>, FrameError> {
    let mut buf = [0u8; MAX_STREAM_FRAME_LEN];
    let len = encode_stream_frame(frame, &mut buf)?;
    Ok(buf.get(..len).unwrap_or_default().to_vec())
}

/// Decodes one frame (header, payload, CRC; no COBS).
///
/// Checks run in this order, so each error names the first thing wrong:
/// length, magic, major version, payload length, CRC (over the received
/// bytes), payload. Never panics.
///
/// Not inlined in firmware builds (no `std`): the stream decoder calls it
/// too, so an app carries one copy of the per-kind payload decoding.
#[cfg_attr(not(feature = "std"), inline(never))]
pub fn decode_frame(bytes: &[u8]) -> Result<DecodedFrame, FrameError> {
    let (header, payload) = check_frame(bytes)?;
    let kind = header.kind.get();
    Message::decode_payload_with(kind, payload, |result| match result {
        Ok(message) => Ok(DecodedFrame { header, message }),
        Err(error) => Err(FrameError::Payload { kind, error }),
    })
}

/// Every check of [`decode_frame`] up to and including the CRC; returns the
/// header and the payload bytes.
pub(crate) fn check_frame(bytes: &[u8]) -> Result<(FrameHeader, &[u8]), FrameError> {
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
    let actual = rest
        .len()
        .checked_sub(CRC_LEN)
        .ok_or(FrameError::Truncated {
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
    let expected = checksum(covered);
    if expected != found {
        return Err(FrameError::BadCrc { expected, found });
    }
    Ok((header, covered.get(HEADER_LEN..).unwrap_or_default()))
}
