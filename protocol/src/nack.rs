//! The `Nack` a pump answers a rejected frame with: the link between the
//! frame codec's errors and the catalogue's [`ErrorCode`]s, kept here so that
//! neither of the two needs the other.

use crate::error::FrameError;
use crate::messages::ErrorCode;

impl FrameError {
    /// The [`ErrorCode`] a pump puts in the `Nack` it answers a rejected
    /// frame with (`docs/protocol.md` §7.3).
    pub const fn error_code(&self) -> ErrorCode {
        match self {
            Self::BadCrc { .. } => ErrorCode::BadCrc,
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Self::Payload { .. } => ErrorCode::BadPayload,
            Self::TooLong { .. }
            | Self::Truncated { .. }
            | Self::BadMagic { .. }
            | Self::LengthMismatch { .. }
            | Self::Cobs
            | Self::BufferTooSmall { .. } => ErrorCode::MalformedFrame,
        }
    }
}
