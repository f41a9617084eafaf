//! Wire protocol shared by the infusion-pump firmware and its host tools.
//!
//! The format is specified in `docs/protocol.md`; this crate follows that
//! document. In short, a frame is
//!
//! ```text
//! header (14 bytes, little endian) | postcard payload | CRC-32C (4 bytes, LE)
//! ```
//!
//! and a byte stream carries frames COBS-encoded, each preceded and followed
//! by a `0x00` delimiter.
//!
//! The crate is `no_std` and needs no allocator: every buffer is bounded by
//! [`MAX_FRAME_LEN`] and [`MAX_ENCODED_FRAME_LEN`], which are compile-time
//! constants derived from the message catalogue. Nothing in this crate panics
//! on input.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod command_auth;
mod command_layout;
mod crc32c;
mod error;
mod frame;
mod header;
mod messages;
mod nack;
pub mod prescription;
mod stream;
mod stuffing;

pub use crc32c::{CRC32C, CRC_LEN};
pub use error::{FrameError, PayloadError};
pub use frame::{
    decode_frame, encode_frame, encode_stream_frame, DecodedFrame, Frame, MAX_ENCODED_FRAME_LEN,
    MAX_FRAME_LEN, MAX_PAYLOAD_LEN, MAX_STREAM_FRAME_LEN,
};
#[cfg(feature = "std")]
pub use frame::{encode_frame_vec, encode_stream_frame_vec};
pub use header::{
    flags, FrameHeader, HEADER_LEN, MAGIC, RELEASED_VERSIONS, VERSION_MAJOR, VERSION_MINOR,
};
pub use messages::*;
pub use stream::{StreamDecoder, StreamItem};
