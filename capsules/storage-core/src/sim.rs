//! `SimFlash`: an in-memory NOR flash with wear counters and power cuts,
//! for the host simulator and the tests (feature `std`).
//!
//! The model:
//!
//! - Bytes erase to `0xFF`; `program` needs word-aligned address and length
//!   and refuses ([`FlashError::NotErased`]) a word that does not read as
//!   erased (the nRF52840 allows two writes per word; this allows one).
//! - Every page counts its erases. A page may be erased `endurance_cycles`
//!   times (default [`DEFAULT_ENDURANCE_CYCLES`], the nRF52840's rating);
//!   after that it is worn: `erase_page` returns [`FlashError::Worn`] and
//!   leaves the page as it is, so a worn page keeps its data but can never be
//!   reused. Reads and programs of erased words still work. Real parts wear
//!   gradually; the hard wall makes the store's behaviour at the end of life
//!   testable.
//! - Power cuts: [`SimFlash::cut_power_after`]`(n)` lets `n` more operations
//!   (programs of at least one word, and erases) complete; the next one is
//!   torn and returns [`FlashError::PowerLost`]. A torn program writes a
//!   prefix of its words (possibly all, possibly none) and, when it stopped
//!   short, possibly one more word only partly programmed (some of the bits
//!   it should have cleared are still set). A torn erase counts as an erase
//!   and leaves each word of the page erased, unchanged, or partly erased
//!   (some cleared bits set again). After the cut every operation, reads
//!   included, returns `PowerLost` until [`SimFlash::power_on`]. Operations
//!   refused for their arguments (bounds, alignment, not erased, worn) never
//!   reach the cells and are not counted.
//! - Everything random comes from a SplitMix64 generator seeded at
//!   construction, so a run is a function of its seed.

use crate::flash::{Flash, FlashError, Geometry, ERASED_WORD, WORD_BYTES};
use std::vec;
use std::vec::Vec;

/// The nRF52840's rated erase endurance per page (10 000 cycles).
pub const DEFAULT_ENDURANCE_CYCLES: u32 = 10_000;

/// Operation counters of a [`SimFlash`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Program operations that reached the cells (torn ones included).
    pub program_ops: u64,
    /// Words actually programmed (in torn programs: those written).
    pub words_programmed: u64,
    /// Bytes actually programmed (`words_programmed` × 4).
    pub bytes_programmed: u64,
    /// Erase operations that reached the cells (torn ones included).
    pub erase_ops: u64,
    /// Operations torn by a power cut.
    pub torn_ops: u64,
    /// Erases refused because the page was worn.
    pub worn_refusals: u64,
}

/// Erase counts over a range of pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WearStats {
    /// Sum of the erase counts.
    pub total_erases: u64,
    /// The most-erased page's count.
    pub max_erases_per_page: u32,
    /// The least-erased page's count.
    pub min_erases_per_page: u32,
    /// Mean erases per page, × 100 (integer).
    pub mean_erases_per_page_x100: u64,
}

/// The operation a power cut tore, for tests to see what they covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornOp {
    /// A program of `words` words at `addr`, of which `words_written` were
    /// fully written (plus one partly written if `garbled`).
    Program {
        /// Address of the program.
        addr: u32,
        /// Words it was to write.
        words: u32,
        /// Words written in full.
        words_written: u32,
        /// Whether the next word was left partly programmed.
        garbled: bool,
    },
    /// An erase of `page`.
    Erase {
        /// The page.
        page: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Power {
    On,
    /// This many more operations complete; the one after is torn.
    CutAfter(u64),
    Lost,
}

/// An in-memory NOR flash (see the module documentation for the model).
#[derive(Clone, Debug)]
pub struct SimFlash {
    mem: Vec<u8>,
    geometry: Geometry,
    erase_counts: Vec<u32>,
    endurance_cycles: u32,
    rng: u64,
    power: Power,
    ops: u64,
    stats: SimStats,
    last_torn: Option<TornOp>,
}

impl SimFlash {
    /// A fully erased flash of `page_count` pages of `page_size_bytes`.
    /// Refused: a page size that is zero ([`FlashError::OutOfBounds`]) or not
    /// a whole number of words ([`FlashError::Misaligned`]), or a total size
    /// past the 32-bit address space (`OutOfBounds`).
    pub fn new(page_size_bytes: u32, page_count: u32, seed: u64) -> Result<Self, FlashError> {
        let total = Self::check_geometry(page_size_bytes, page_count)?;
        Self::build(vec![0xFF; total], page_size_bytes, page_count, seed)
    }

    /// The nRF52840's geometry (4 KiB pages), `page_count` pages, erased.
    pub fn nrf52840(page_count: u32, seed: u64) -> Result<Self, FlashError> {
        Self::new(4096, page_count, seed)
    }

    /// A flash holding `image` (any bytes), e.g. to mount over garbage.
    /// Its length must be a whole number of pages.
    pub fn from_image(page_size_bytes: u32, image: Vec<u8>, seed: u64) -> Result<Self, FlashError> {
        let page = usize::try_from(page_size_bytes).map_err(|_| FlashError::OutOfBounds)?;
        if page == 0 || image.len() % page != 0 {
            return Err(FlashError::OutOfBounds);
        }
        let count = u32::try_from(image.len() / page).map_err(|_| FlashError::OutOfBounds)?;
        Self::check_geometry(page_size_bytes, count)?;
        Self::build(image, page_size_bytes, count, seed)
    }

    fn check_geometry(page_size_bytes: u32, page_count: u32) -> Result<usize, FlashError> {
        if page_size_bytes == 0 {
            return Err(FlashError::OutOfBounds);
        }
        if page_size_bytes % WORD_BYTES != 0 {
            return Err(FlashError::Misaligned);
        }
        let total = page_size_bytes
            .checked_mul(page_count)
            .ok_or(FlashError::OutOfBounds)?;
        usize::try_from(total).map_err(|_| FlashError::OutOfBounds)
    }

    fn build(
        mem: Vec<u8>,
        page_size_bytes: u32,
        page_count: u32,
        seed: u64,
    ) -> Result<Self, FlashError> {
        let pages = usize::try_from(page_count).map_err(|_| FlashError::OutOfBounds)?;
        Ok(SimFlash {
            mem,
            geometry: Geometry {
                page_size_bytes,
                page_count,
                word_size_bytes: WORD_BYTES,
            },
            erase_counts: vec![0; pages],
            endurance_cycles: DEFAULT_ENDURANCE_CYCLES,
            rng: seed,
            power: Power::On,
            ops: 0,
            stats: SimStats::default(),
            last_torn: None,
        })
    }

    /// Sets the rated erase endurance per page (default 10 000).
    pub fn with_endurance(mut self, cycles: u32) -> Self {
        self.endurance_cycles = cycles;
        self
    }

    /// The rated erase endurance per page.
    pub fn endurance_cycles(&self) -> u32 {
        self.endurance_cycles
    }

    /// Arms a power cut: `ops` more operations complete, the next is torn.
    /// Does nothing while power is already lost (call [`Self::power_on`]).
    pub fn cut_power_after(&mut self, ops: u64) {
        if self.power != Power::Lost {
            self.power = Power::CutAfter(ops);
        }
    }

    /// Restores power (a reboot) and disarms any pending cut.
    pub fn power_on(&mut self) {
        self.power = Power::On;
    }

    /// Whether power is lost (a cut has happened and no `power_on` since).
    pub fn power_lost(&self) -> bool {
        self.power == Power::Lost
    }

    /// Operations (programs and erases) that reached the cells so far; a
    /// test runs a scenario once to count them, then cuts at each.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// The operation the last power cut tore, if any.
    pub fn last_torn(&self) -> Option<TornOp> {
        self.last_torn
    }

    /// Operation counters.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// Erase count of `page`, or `None` past the end.
    pub fn erase_count(&self, page: u32) -> Option<u32> {
        self.erase_counts.get(usize::try_from(page).ok()?).copied()
    }

    /// Erase statistics of the whole device.
    pub fn wear(&self) -> WearStats {
        self.wear_in(0, self.geometry.page_count)
    }

    /// Erase statistics of pages `first_page .. first_page + page_count`
    /// (clipped to the device; all zero if empty).
    pub fn wear_in(&self, first_page: u32, page_count: u32) -> WearStats {
        let start = usize::try_from(first_page)
            .unwrap_or(usize::MAX)
            .min(self.erase_counts.len());
        let len = usize::try_from(page_count).unwrap_or(usize::MAX);
        let end = start.saturating_add(len).min(self.erase_counts.len());
        let pages = &self.erase_counts[start..end];
        let total: u64 = pages.iter().map(|&c| u64::from(c)).sum();
        let n = pages.len() as u64;
        WearStats {
            total_erases: total,
            max_erases_per_page: pages.iter().copied().max().unwrap_or(0),
            min_erases_per_page: pages.iter().copied().min().unwrap_or(0),
            mean_erases_per_page_x100: total.saturating_mul(100).checked_div(n).unwrap_or(0),
        }
    }

    /// The raw contents.
    pub fn image(&self) -> &[u8] {
        &self.mem
    }

    /// The raw contents, writable (to inject corruption in tests).
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Counts an operation reaching the cells; `true` if it is the torn one.
    fn op_is_torn(&mut self) -> bool {
        self.ops = self.ops.saturating_add(1);
        match self.power {
            Power::CutAfter(0) => {
                self.power = Power::Lost;
                self.stats.torn_ops += 1;
                true
            }
            Power::CutAfter(n) => {
                self.power = Power::CutAfter(n - 1);
                false
            }
            Power::On | Power::Lost => false,
        }
    }

    fn range(&self, addr: u32, len: usize) -> Result<core::ops::Range<usize>, FlashError> {
        let start = usize::try_from(addr).map_err(|_| FlashError::OutOfBounds)?;
        let end = start.checked_add(len).ok_or(FlashError::OutOfBounds)?;
        if end > self.mem.len() {
            return Err(FlashError::OutOfBounds);
        }
        Ok(start..end)
    }

    fn word_at(&self, i: usize) -> u32 {
        u32::from_le_bytes([
            self.mem[i],
            self.mem[i + 1],
            self.mem[i + 2],
            self.mem[i + 3],
        ])
    }

    fn set_word(&mut self, i: usize, w: u32) {
        self.mem[i..i + 4].copy_from_slice(&w.to_le_bytes());
    }
}

impl Flash for SimFlash {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        if self.power == Power::Lost {
            return Err(FlashError::PowerLost);
        }
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.mem[r]);
        Ok(())
    }

    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        if self.power == Power::Lost {
            return Err(FlashError::PowerLost);
        }
        if addr % WORD_BYTES != 0 || data.len() % 4 != 0 {
            return Err(FlashError::Misaligned);
        }
        let r = self.range(addr, data.len())?;
        if (r.start..r.end)
            .step_by(4)
            .any(|i| self.word_at(i) != ERASED_WORD)
        {
            return Err(FlashError::NotErased);
        }
        if data.is_empty() {
            return Ok(());
        }
        let words = data.len() / 4;
        let torn = self.op_is_torn();
        self.stats.program_ops += 1;
        let (full, garbled) = if torn {
            let k = self.below(words as u64 + 1) as usize;
            (k, k < words && self.next_u64() & 1 == 1)
        } else {
            (words, false)
        };
        self.mem[r.start..r.start + full * 4].copy_from_slice(&data[..full * 4]);
        let mut written = full as u64;
        if garbled {
            let i = full * 4;
            let target = u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            let stuck = self.next_u64() as u32;
            self.set_word(r.start + i, target | stuck);
            written += 1;
        }
        self.stats.words_programmed += written;
        self.stats.bytes_programmed += written * 4;
        if torn {
            self.last_torn = Some(TornOp::Program {
                addr,
                words: words as u32,
                words_written: full as u32,
                garbled,
            });
            Err(FlashError::PowerLost)
        } else {
            Ok(())
        }
    }

    fn erase_page(&mut self, page: u32) -> Result<(), FlashError> {
        if self.power == Power::Lost {
            return Err(FlashError::PowerLost);
        }
        let p = usize::try_from(page).map_err(|_| FlashError::OutOfBounds)?;
        let count = *self.erase_counts.get(p).ok_or(FlashError::OutOfBounds)?;
        if count >= self.endurance_cycles {
            self.stats.worn_refusals += 1;
            return Err(FlashError::Worn);
        }
        let size = self.geometry.page_size_bytes as usize;
        let start = p * size;
        let torn = self.op_is_torn();
        self.stats.erase_ops += 1;
        self.erase_counts[p] = count + 1;
        if !torn {
            self.mem[start..start + size].fill(0xFF);
            return Ok(());
        }
        for i in (start..start + size).step_by(4) {
            match self.below(3) {
                0 => self.set_word(i, ERASED_WORD),
                1 => {}
                _ => {
                    let lifted = self.next_u64() as u32;
                    let w = self.word_at(i);
                    self.set_word(i, w | lifted);
                }
            }
        }
        self.last_torn = Some(TornOp::Erase { page });
        Err(FlashError::PowerLost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_is_checked() {
        assert_eq!(SimFlash::new(0, 4, 1).err(), Some(FlashError::OutOfBounds));
        assert_eq!(SimFlash::new(6, 4, 1).err(), Some(FlashError::Misaligned));
        assert_eq!(
            SimFlash::new(4096, u32::MAX, 1).err(),
            Some(FlashError::OutOfBounds)
        );
        assert_eq!(
            SimFlash::from_image(256, vec![0; 300], 1).err(),
            Some(FlashError::OutOfBounds)
        );
        let f = SimFlash::nrf52840(3, 1).unwrap();
        assert_eq!(
            f.geometry(),
            Geometry {
                page_size_bytes: 4096,
                page_count: 3,
                word_size_bytes: 4
            }
        );
        assert!(f.image().iter().all(|&b| b == 0xFF));
    }
}

/// A [`SimFlash`] shared by handles: a test (or the simulator) keeps one
/// handle and gives another to the code under test, so it can cut power,
/// look at the wear, or open the code again over the same contents (a
/// reset).
#[derive(Clone, Debug)]
pub struct SharedSimFlash(std::rc::Rc<core::cell::RefCell<SimFlash>>);

impl SharedSimFlash {
    /// A handle on `flash`.
    pub fn new(flash: SimFlash) -> Self {
        Self(std::rc::Rc::new(core::cell::RefCell::new(flash)))
    }

    /// Runs `f` on the flash.
    pub fn with<R>(&self, f: impl FnOnce(&mut SimFlash) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

impl Flash for SharedSimFlash {
    fn geometry(&self) -> Geometry {
        self.0.borrow().geometry
    }

    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.0.borrow_mut().read(addr, buf)
    }

    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        self.0.borrow_mut().program(addr, data)
    }

    fn erase_page(&mut self, page: u32) -> Result<(), FlashError> {
        self.0.borrow_mut().erase_page(page)
    }
}
