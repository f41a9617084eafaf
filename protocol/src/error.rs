use core::fmt;

/// Why a payload could not be decoded as the message its kind names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PayloadError {
    /// The payload ended before the message did.
    Truncated,
    /// The payload decoded, but bytes were left over. Messages never grow in
    /// place (rule C2), so this is an error, not an extension.
    TrailingBytes,
    /// A varint, enum discriminant, bool, UTF-8 string or similar was not
    /// valid.
    Malformed,
    /// The payload does not fit the buffer it must be encoded into.
    TooLarge,
}

/// Why a frame (or an encoded stream item) was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The frame is shorter than a header plus CRC, or shorter than its
    /// header says.
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// The first two bytes are not [`crate::MAGIC`].
    BadMagic {
        /// The bytes found instead.
        found: [u8; 2],
    },
    /// A major version this decoder does not implement.
    UnsupportedVersion {
        /// Major version in the frame.
        major: u8,
        /// Minor version in the frame.
        minor: u8,
    },
    /// The header's payload length disagrees with the frame's size.
    LengthMismatch {
        /// Payload length the header declares.
        declared: usize,
        /// Payload length the frame actually has.
        actual: usize,
    },
    /// The CRC-32C over header and payload does not match the trailer.
    BadCrc {
        /// CRC computed over the received bytes.
        expected: u32,
        /// CRC found in the trailer.
        found: u32,
    },
    /// The header is valid but the payload is not the message its kind names.
    Payload {
        /// The frame's kind.
        kind: u16,
        /// What was wrong.
        error: PayloadError,
    },
    /// The frame is longer than [`crate::MAX_FRAME_LEN`].
    TooLong {
        /// Length seen (may be a lower bound for stream items).
        len: usize,
    },
    /// A stream item is not valid COBS.
    Cobs,
    /// The output buffer is too small for the encoded frame.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated frame: need {needed} bytes, have {available}")
            }
            Self::BadMagic { found } => {
                write!(
                    f,
                    "bad magic {:02x}{:02x}, expected 4950",
                    found[0], found[1]
                )
            }
            Self::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported protocol version {major}.{minor}")
            }
            Self::LengthMismatch { declared, actual } => write!(
                f,
                "payload length mismatch: header says {declared}, frame has {actual}"
            ),
            Self::BadCrc { expected, found } => {
                write!(
                    f,
                    "bad CRC: computed {expected:#010x}, frame carries {found:#010x}"
                )
            }
            Self::Payload { kind, error } => {
                write!(f, "bad payload for kind {kind:#06x}: {error:?}")
            }
            Self::TooLong { len } => write!(f, "frame too long ({len} bytes)"),
            Self::Cobs => write!(f, "invalid COBS encoding"),
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: need {needed} bytes")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

impl From<postcard::Error> for PayloadError {
    fn from(e: postcard::Error) -> Self {
        match e {
            postcard::Error::DeserializeUnexpectedEnd => Self::Truncated,
            postcard::Error::SerializeBufferFull => Self::TooLarge,
            _ => Self::Malformed,
        }
    }
}
