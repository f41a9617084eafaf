//! The store's typed errors.

use crate::flash::FlashError;
use core::fmt;

/// Why a store operation was refused or failed. Nothing panics on any input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The flash failed; the store's RAM state still matches what is known
    /// to be on flash, so a later call may succeed (or, after
    /// [`FlashError::PowerLost`], a remount).
    Flash(FlashError),
    /// The region or device cannot hold a ring: word size other than 4,
    /// pages too small, fewer than 2 or more than 65 535 pages, or a region
    /// outside the device or past the 32-bit address space.
    BadGeometry,
    /// A page in the region has a valid header of another format version or
    /// ring size: the region was formatted for something else. Refused
    /// rather than overwritten.
    ForeignFormat,
    /// The payload is longer than the store's maximum.
    PayloadTooLarge {
        /// Bytes offered.
        len_bytes: usize,
        /// The limit ([`crate::MAX_PAYLOAD_BYTES`]).
        max_bytes: usize,
    },
    /// A new tag, and the index already holds [`crate::MAX_TAGS`] tags.
    TooManyTags,
    /// The live data plus this record could not be guaranteed to fit the
    /// ring (see [`crate::RingStore::live_limit_bytes`]); nothing was written.
    NoSpace {
        /// Live record bytes now (the tag's current record included).
        live_bytes: u32,
        /// The most live bytes a record of this size may be written beside.
        limit_bytes: u32,
    },
    /// The caller's buffer is shorter than the record's payload.
    BufferTooSmall {
        /// The payload's length.
        needed_bytes: usize,
    },
    /// The latest record of the tag no longer passes its CRC (damaged since
    /// it was written).
    Corrupt,
    /// The ring is in a state no sequence of writes and power cuts produces
    /// (the page after the head still holds live records that do not fit the
    /// head). Writes are refused; reads still work.
    Inconsistent,
    /// Page sequence numbers are used up (after 2^32 - 1 page openings).
    SequenceExhausted,
}

impl From<FlashError> for StoreError {
    fn from(e: FlashError) -> Self {
        StoreError::Flash(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Flash(e) => write!(f, "flash: {e}"),
            StoreError::BadGeometry => f.write_str("region cannot hold a ring store"),
            StoreError::ForeignFormat => f.write_str("region holds another format"),
            StoreError::PayloadTooLarge {
                len_bytes,
                max_bytes,
            } => {
                write!(
                    f,
                    "payload of {len_bytes} bytes over the {max_bytes}-byte limit"
                )
            }
            StoreError::TooManyTags => f.write_str("too many distinct tags"),
            StoreError::NoSpace {
                live_bytes,
                limit_bytes,
            } => write!(
                f,
                "{live_bytes} live bytes over the {limit_bytes}-byte limit for this record"
            ),
            StoreError::BufferTooSmall { needed_bytes } => {
                write!(f, "buffer too small: {needed_bytes} bytes needed")
            }
            StoreError::Corrupt => f.write_str("record fails its CRC"),
            StoreError::Inconsistent => f.write_str("ring state not produced by power loss"),
            StoreError::SequenceExhausted => f.write_str("page sequence numbers used up"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StoreError {}
