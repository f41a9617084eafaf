//! The pump's flash on QEMU: a host file (semihosting file I/O) that keeps
//! the capsule's records across QEMU restarts, with the nRF52840 NVMC's
//! rules, so the ring store runs here as it will on the chip.
//!
//! - [`DEVICE_PAGES`](infusion::storage::DEVICE_PAGES) pages of 4 KiB (the
//!   core's records, then the telemetry log's region); erasing a page
//!   writes 4 096 bytes of `0xFF`.
//! - Programs are word-aligned and refused (`NotErased`) over any word that
//!   does not read as erased, the store's model of the NVMC (which allows
//!   two writes per word; the store never needs the second).
//! - A write reaches the host file before the call returns (QEMU writes
//!   through to the host's file descriptor), so killing QEMU loses no
//!   completed write, and at most tears the one in flight, as a power cut
//!   would.
//!
//! Why not QEMU's `pflash`: the `virt` machine's CFI flash erases in
//! 256 KiB sectors behind a command protocol and must be a 32 MiB file;
//! 4 KiB pages are what the store's wear figures assume, and a plain file
//! is what the end to end can inspect.

use core::cell::Cell;

use infusion::storage::{DEVICE_BYTES, DEVICE_PAGES, PAGE_BYTES};
use storage_core::{Flash, FlashError, Geometry, WORD_BYTES};

use crate::semihost::HostFile;

/// Bytes checked per read before a program (and the erase chunk).
const CHUNK: usize = 64;

/// The flash device. Both of the store's rings hold a `&FileFlash`.
pub struct FileFlash {
    /// `None`: the file could not be opened, and every operation fails (the
    /// store then reads both regions as damaged: the pump stays stopped
    /// under its integrity alarm rather than start as a new one).
    file: Option<HostFile>,
    erases: Cell<u32>,
    programs: Cell<u32>,
    errors: Cell<u32>,
}

impl FileFlash {
    /// The device in host file `name`, made blank (all `0xFF`) where the
    /// file is missing or short.
    pub fn open(name: &[u8]) -> Self {
        Self {
            file: HostFile::open(name, DEVICE_BYTES, 0xFF),
            erases: Cell::new(0),
            programs: Cell::new(0),
            errors: Cell::new(0),
        }
    }

    /// Whether the host file opened.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Pages erased, programs made and host I/O errors since boot.
    pub fn counts(&self) -> (u32, u32, u32) {
        (self.erases.get(), self.programs.get(), self.errors.get())
    }

    fn range(&self, addr: u32, len: usize) -> Result<usize, FlashError> {
        let end = (addr as usize)
            .checked_add(len)
            .ok_or(FlashError::OutOfBounds)?;
        if end > DEVICE_BYTES {
            return Err(FlashError::OutOfBounds);
        }
        Ok(addr as usize)
    }

    fn io(&self, ok: bool) -> Result<(), FlashError> {
        if ok {
            Ok(())
        } else {
            self.errors.set(self.errors.get().saturating_add(1));
            Err(FlashError::Device)
        }
    }
}

impl Flash for &FileFlash {
    fn geometry(&self) -> Geometry {
        Geometry {
            page_size_bytes: PAGE_BYTES,
            page_count: DEVICE_PAGES,
            word_size_bytes: WORD_BYTES,
        }
    }

    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        let at = self.range(addr, buf.len())?;
        self.io(self.file.as_ref().is_some_and(|f| f.read_at(at, buf)))
    }

    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        let word = WORD_BYTES as usize;
        if addr as usize % word != 0 || data.len() % word != 0 {
            return Err(FlashError::Misaligned);
        }
        let at = self.range(addr, data.len())?;
        // Every word must read as erased first: nothing is programmed twice.
        let mut old = [0u8; CHUNK];
        for (i, _) in data.chunks(CHUNK).enumerate() {
            let from = i * CHUNK;
            let n = (data.len() - from).min(CHUNK);
            let read = self
                .file
                .as_ref()
                .is_some_and(|f| f.read_at(at + from, &mut old[..n]));
            self.io(read)?;
            if old[..n].iter().any(|&b| b != 0xFF) {
                return Err(FlashError::NotErased);
            }
        }
        self.programs.set(self.programs.get().saturating_add(1));
        self.io(self.file.as_ref().is_some_and(|f| f.write_at(at, data)))
    }

    fn erase_page(&mut self, page: u32) -> Result<(), FlashError> {
        if page >= DEVICE_PAGES {
            return Err(FlashError::OutOfBounds);
        }
        let at = (page * PAGE_BYTES) as usize;
        let erased = [0xFFu8; 256];
        for chunk in 0..PAGE_BYTES as usize / erased.len() {
            let at = at + chunk * erased.len();
            self.io(self.file.as_ref().is_some_and(|f| f.write_at(at, &erased)))?;
        }
        self.erases.set(self.erases.get().saturating_add(1));
        Ok(())
    }
}
