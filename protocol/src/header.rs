use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

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

/// The two magic bytes that open every frame: ASCII `"IP"` (infusion pump).
pub const MAGIC: [u8; 2] = *b"IP";

/// Length of [`FrameHeader`] on the wire.
pub const HEADER_LEN: usize = core::mem::size_of::<FrameHeader>();

/// Bits of [`FrameHeader::flags`].
///
/// Receivers ignore flag bits they do not know (compatibility rule C5).
pub mod flags {
    /// The frame is a stored log record being replayed to the host, not a
    /// live event.
    pub const FROM_LOG: u8 = 0b0000_0001;
}

/// The fixed 14-byte frame header. All multi-byte fields are little endian.
///
/// | offset | size | field           |
/// |--------|------|-----------------|
/// | 0      | 2    | `magic` = "IP"  |
/// | 2      | 1    | `version_major` |
/// | 3      | 1    | `version_minor` |
/// | 4      | 2    | `kind`          |
/// | 6      | 1    | `flags`         |
/// | 7      | 1    | `reserved` (0)  |
/// | 8      | 4    | `sequence`      |
/// | 12     | 2    | `payload_len`   |
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq,
)]
#[repr(C)]
pub struct FrameHeader {
    /// Always [`MAGIC`].
    pub magic: [u8; 2],
    /// Protocol major version.
    pub version_major: u8,
    /// Protocol minor version.
    pub version_minor: u8,
    /// Message kind (see the catalogue).
    pub kind: U16,
    /// See [`flags`].
    pub flags: u8,
    /// Sent as zero, ignored on receipt.
    pub reserved: u8,
    /// Event sequence number (events) or request sequence number (commands
    /// and their responses).
    pub sequence: U32,
    /// Length of the postcard payload in bytes.
    pub payload_len: U16,
}

const _: () = assert!(HEADER_LEN == 14);
