//! The NOR flash model the store is written against.
//!
//! It follows the nRF52840 NVMC: the flash is an array of equal pages; a
//! page is the unit of erase and erases to all ones (`0xFF` bytes); programs
//! clear bits a 32-bit word at a time. The NVMC allows each word to be
//! written twice between erases (n_WRITE); this model allows it once, and a
//! driver must refuse to program a word that does not read as erased. The
//! store never relies on a second write.

use core::fmt;

/// Bytes in a flash word: the unit and alignment of `program`.
pub const WORD_BYTES: u32 = 4;

/// The value an erased word reads as.
pub const ERASED_WORD: u32 = 0xFFFF_FFFF;

/// The shape of a flash device (or of the part of it a driver exposes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes in one erasable page (nRF52840: 4096).
    pub page_size_bytes: u32,
    /// Pages in the device, numbered from 0 at address 0.
    pub page_count: u32,
    /// Bytes in a programmable word; the store needs [`WORD_BYTES`] (4).
    pub word_size_bytes: u32,
}

impl Geometry {
    /// Total bytes, or `None` if that does not fit in a `u32` address.
    pub fn total_bytes(&self) -> Option<u32> {
        self.page_size_bytes.checked_mul(self.page_count)
    }
}

/// Why a flash operation failed. No operation panics on any input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashError {
    /// The address range, or the page number, is outside the device.
    OutOfBounds,
    /// A program's address or length is not a multiple of the word size.
    Misaligned,
    /// A program would write a word that does not read as erased.
    NotErased,
    /// The page has reached its rated erase endurance; the erase was refused
    /// and the page left as it was.
    Worn,
    /// Power was lost during or before this operation; nothing more happens
    /// until the device is powered on again (a reboot).
    PowerLost,
    /// The device (or the driver's backing store) failed the operation, for
    /// a reason the model has no name for; what it did to the range is not
    /// known, as with a torn operation.
    Device,
}

impl fmt::Display for FlashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlashError::OutOfBounds => "address outside the flash",
            FlashError::Misaligned => "program not word-aligned",
            FlashError::NotErased => "program over a word that is not erased",
            FlashError::Worn => "page past its rated erase endurance",
            FlashError::PowerLost => "power lost",
            FlashError::Device => "device error",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FlashError {}

/// NOR flash with page erase and once-per-erase word programming.
///
/// Addresses are byte offsets from the start of the device. Implementations
/// check bounds and alignment and return [`FlashError`]s; they never panic.
pub trait Flash {
    /// The device's shape.
    fn geometry(&self) -> Geometry;

    /// Reads `buf.len()` bytes starting at `addr` (any alignment).
    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError>;

    /// Programs `data` at `addr`. Both must be word-aligned, and every word
    /// written must read as erased ([`ERASED_WORD`]) beforehand.
    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError>;

    /// Erases page `page` to all `0xFF`.
    fn erase_page(&mut self, page: u32) -> Result<(), FlashError>;
}

impl<F: Flash + ?Sized> Flash for &mut F {
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }

    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        (**self).read(addr, buf)
    }

    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        (**self).program(addr, data)
    }

    fn erase_page(&mut self, page: u32) -> Result<(), FlashError> {
        (**self).erase_page(page)
    }
}
