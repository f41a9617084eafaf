//! A flash region lent to one app: the telemetry log's pages, served by the
//! boards' log-region driver (`capsules/infusion/src/logflash.rs`).
//!
//! The app sees pages `0..pages` of its own; every address is checked
//! against the region, so it can reach nothing else on the device. What it
//! can do there follows NOR rules: read anything, program only words that
//! read as erased (a record once written cannot be changed, only erased
//! with its page), erase a page. Erasing is the one operation that wears
//! the flash, so erases are rationed: a budget of [`ERASE_BURST`] that
//! refills by one every [`ERASE_REFILL_MS`]. An app gone wrong can then
//! erase at most [`max_erases_per_year`] pages a year, spread by nothing
//! (it may pick the same page): the region's design figures are in
//! `docs/persistence.md` §9.

use crate::flash::{Flash, FlashError, Geometry, WORD_BYTES};

/// Erases allowed at once (after boot, or after a quiet spell).
pub const ERASE_BURST: u32 = 4;

/// One more erase is allowed every this many milliseconds: 10 minutes.
pub const ERASE_REFILL_MS: u64 = 10 * 60 * 1000;

/// The most erases the budget allows in a year (365.25 days) after a boot.
pub const fn max_erases_per_year() -> u64 {
    ERASE_BURST as u64 + 1461 * 86_400_000 / 4 / ERASE_REFILL_MS
}

/// Why a region operation was refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// The range or page is outside the region (or the region outside the
    /// device).
    OutOfRange,
    /// A program's offset or length is not a whole number of words.
    Misaligned,
    /// A program over a word that does not read as erased.
    NotErased,
    /// The erase budget is spent: try again later.
    EraseBudget,
    /// The device failed the operation.
    Device(FlashError),
}

impl From<FlashError> for RegionError {
    fn from(error: FlashError) -> Self {
        match error {
            FlashError::OutOfBounds => RegionError::OutOfRange,
            FlashError::Misaligned => RegionError::Misaligned,
            FlashError::NotErased => RegionError::NotErased,
            other => RegionError::Device(other),
        }
    }
}

/// Pages `first_page .. first_page + pages` of a [`Flash`], with the erase
/// budget. See the module documentation.
pub struct LogRegion<F: Flash> {
    flash: F,
    first_page: u32,
    pages: u32,
    page_bytes: u32,
    tokens: u32,
    /// Time the budget was last refilled up to.
    refilled_ms: u64,
    erases: u32,
    refused_erases: u32,
}

impl<F: Flash> LogRegion<F> {
    /// The region of `pages` pages from `first_page` of `flash`; refused
    /// (`OutOfRange`) if empty or past the device, `Misaligned` if the
    /// device's words are not [`WORD_BYTES`].
    pub fn new(flash: F, first_page: u32, pages: u32) -> Result<Self, RegionError> {
        let geometry = flash.geometry();
        if geometry.word_size_bytes != WORD_BYTES || geometry.page_size_bytes % WORD_BYTES != 0 {
            return Err(RegionError::Misaligned);
        }
        let end = first_page
            .checked_add(pages)
            .ok_or(RegionError::OutOfRange)?;
        if pages == 0 || end > geometry.page_count || geometry.total_bytes().is_none() {
            return Err(RegionError::OutOfRange);
        }
        Ok(Self {
            flash,
            first_page,
            pages,
            page_bytes: geometry.page_size_bytes,
            tokens: ERASE_BURST,
            refilled_ms: 0,
            erases: 0,
            refused_erases: 0,
        })
    }

    /// The region as the app sees it.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            page_size_bytes: self.page_bytes,
            page_count: self.pages,
            word_size_bytes: WORD_BYTES,
        }
    }

    /// Erases done and erases refused for the budget, since boot.
    pub fn erase_counts(&self) -> (u32, u32) {
        (self.erases, self.refused_erases)
    }

    fn device_addr(&self, offset: u32, len: usize) -> Result<u32, RegionError> {
        let len = u32::try_from(len).map_err(|_| RegionError::OutOfRange)?;
        let end = offset.checked_add(len).ok_or(RegionError::OutOfRange)?;
        if end > self.pages * self.page_bytes {
            return Err(RegionError::OutOfRange);
        }
        Ok(self.first_page * self.page_bytes + offset)
    }

    /// Reads `buf.len()` bytes at `offset` of the region.
    pub fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), RegionError> {
        let addr = self.device_addr(offset, buf.len())?;
        Ok(self.flash.read(addr, buf)?)
    }

    /// Programs `data` at `offset` (whole words, over erased words only).
    pub fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), RegionError> {
        if offset % WORD_BYTES != 0 || data.len() % WORD_BYTES as usize != 0 {
            return Err(RegionError::Misaligned);
        }
        let addr = self.device_addr(offset, data.len())?;
        Ok(self.flash.program(addr, data)?)
    }

    /// Erases page `page` of the region if the budget allows at `now_ms`
    /// (a monotonic clock).
    pub fn erase_page(&mut self, page: u32, now_ms: u64) -> Result<(), RegionError> {
        if page >= self.pages {
            return Err(RegionError::OutOfRange);
        }
        self.refill(now_ms);
        if self.tokens == 0 {
            self.refused_erases = self.refused_erases.saturating_add(1);
            return Err(RegionError::EraseBudget);
        }
        self.tokens -= 1;
        self.erases = self.erases.saturating_add(1);
        Ok(self.flash.erase_page(self.first_page + page)?)
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.refilled_ms);
        let earned = elapsed / ERASE_REFILL_MS;
        let tokens = u64::from(self.tokens).saturating_add(earned);
        if tokens >= u64::from(ERASE_BURST) {
            self.tokens = ERASE_BURST;
            self.refilled_ms = self.refilled_ms.max(now_ms);
        } else {
            self.tokens = tokens as u32;
            self.refilled_ms += earned * ERASE_REFILL_MS;
        }
    }
}
