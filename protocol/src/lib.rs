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

mod crc32c;
mod error;
mod frame;
mod header;
mod messages;
pub mod prescription;
mod stream;
mod stuffing;

pub use error::{FrameError, PayloadError};
pub use frame::{
    decode_frame, encode_frame, encode_stream_frame, DecodedFrame, Frame, MAX_ENCODED_FRAME_LEN,
    MAX_FRAME_LEN, MAX_PAYLOAD_LEN, MAX_STREAM_FRAME_LEN,
};
#[cfg(feature = "std")]
pub use frame::{encode_frame_vec, encode_stream_frame_vec};
pub use header::{flags, FrameHeader, HEADER_LEN, MAGIC};
pub use messages::*;
pub use stream::{StreamDecoder, StreamItem};

/// Protocol major version this crate encodes. Decoders reject any other major.
pub const VERSION_MAJOR: u8 = 1;
/// Protocol minor version this crate encodes. Minor bumps only add kinds,
/// code values and flag bits (rule C1 in `docs/protocol.md`); what each
/// added is listed in `docs/protocol.md` §6.4, and each kind and code value
/// says which version added it (`since()`).
pub const VERSION_MINOR: u8 = 1;

/// Every `(major, minor)` version that has been released, that is, that a
/// pump has encoded. Host decoders keep decoding all of them (see
/// "Compatibility" in `docs/protocol.md`).
pub const RELEASED_VERSIONS: &[(u8, u8)] = &[(1, 0), (1, 1)];

/// Size of the CRC-32C trailer.
pub const CRC_LEN: usize = 4;

/// CRC-32C (Castagnoli, `CRC_32_ISCSI`), computed over header and payload.
pub const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// [`CRC32C`] of `bytes`, computed with this crate's own tables (see
/// [`crc32c`](mod@crc32c)); always equal to `CRC32C.checksum(bytes)`.
fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc32c_check_value() {
        // The catalogue's check value for CRC-32C over "123456789".
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }

    proptest! {
        #[test]
        fn crc32c_impl_agrees_with_public_constant(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            prop_assert_eq!(crc32c(&bytes), CRC32C.checksum(&bytes));
        }
    }
}
