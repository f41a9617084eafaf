//! The pump's records in the nRF52840's own flash, through the NVMC, as the
//! [`storage_core::Flash`] the capsule's ring store is written against.
//!
//! The region is the last [`DEVICE_PAGES`] 4 KiB pages of the 1 MiB flash (from
//! [`REGION_START`], outside the kernel and the apps: `layout.ld` ends the
//! app region there). The NVMC is synchronous: the CPU stalls while it
//! programs a word (41 µs at most) or erases a page (85 ms at most,
//! nRF52840 PS §4.3.9.4), so an operation is complete when the call
//! returns. A relocation that erases a page therefore holds the kernel for
//! up to 85 ms, inside the watchdog's 2 s.
//!
//! Programs are refused over a word that does not read as erased (the
//! store's model; the NVMC would allow a second write). Reads are plain
//! loads from the memory-mapped flash.
//!
//! Register map (nRF52840 PS, NVMC chapter, as the upstream `nrf52::nvmc`
//! driver of the pinned Tock uses it): base `0x4001_E000`; `READY` 0x400
//! (bit 0: ready), `CONFIG` 0x504 (`WEN`: 0 read only, 1 write, 2 erase),
//! `ERASEPAGE` 0x508 (write a page's address to erase it). Built, never run
//! on hardware (no board here).

use infusion::storage::{DEVICE_BYTES, DEVICE_PAGES, PAGE_BYTES};
use kernel::utilities::registers::interfaces::{Readable, Writeable};
use kernel::utilities::registers::{register_bitfields, register_structs, ReadOnly, ReadWrite};
use kernel::utilities::StaticRef;
use storage_core::{Flash, FlashError, Geometry, ERASED_WORD, WORD_BYTES};

/// First byte of the region: the last 392 KiB of the flash (the core's
/// records, 136 KiB, then the telemetry log's region, 256 KiB).
pub const REGION_START: usize = 0x10_0000 - DEVICE_BYTES;
// layout.ld ends the app region (`prog`) here.
const _: () = assert!(REGION_START == 0x9E000);

register_structs! {
    NvmcRegisters {
        (0x000 => _reserved0),
        (0x400 => ready: ReadOnly<u32, Ready::Register>),
        (0x404 => _reserved1),
        (0x504 => config: ReadWrite<u32, Config::Register>),
        (0x508 => erasepage: ReadWrite<u32>),
        (0x50C => @END),
    }
}

register_bitfields![u32,
    Ready [
        READY OFFSET(0) NUMBITS(1) []
    ],
    Config [
        WEN OFFSET(0) NUMBITS(2) [
            Ren = 0,
            Wen = 1,
            Een = 2
        ]
    ]
];

// SAFETY: the NVMC's fixed MMIO address on the nRF52840.
const NVMC: StaticRef<NvmcRegisters> =
    unsafe { StaticRef::new(0x4001_E000 as *const NvmcRegisters) };

/// The flash region. Both of the store's rings hold a `&NvmcFlash`.
pub struct NvmcFlash;

impl NvmcFlash {
    fn wait_ready(&self) {
        while !NVMC.ready.is_set(Ready::READY) {}
    }

    fn word_at(&self, at: usize) -> u32 {
        // SAFETY: `at` is a word-aligned address inside the region, which is
        // memory-mapped flash (checked by the callers).
        unsafe { core::ptr::read_volatile((REGION_START + at) as *const u32) }
    }
}

fn range(addr: u32, len: usize) -> Result<usize, FlashError> {
    let end = (addr as usize)
        .checked_add(len)
        .ok_or(FlashError::OutOfBounds)?;
    if end > DEVICE_BYTES {
        return Err(FlashError::OutOfBounds);
    }
    Ok(addr as usize)
}

impl Flash for &NvmcFlash {
    fn geometry(&self) -> Geometry {
        Geometry {
            page_size_bytes: PAGE_BYTES,
            page_count: DEVICE_PAGES,
            word_size_bytes: WORD_BYTES,
        }
    }

    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        let at = range(addr, buf.len())?;
        for (i, byte) in buf.iter_mut().enumerate() {
            // SAFETY: inside the region (checked above), memory-mapped flash.
            *byte = unsafe { core::ptr::read_volatile((REGION_START + at + i) as *const u8) };
        }
        Ok(())
    }

    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        let word = WORD_BYTES as usize;
        if addr as usize % word != 0 || data.len() % word != 0 {
            return Err(FlashError::Misaligned);
        }
        let at = range(addr, data.len())?;
        if (0..data.len() / word).any(|i| self.word_at(at + i * word) != ERASED_WORD) {
            return Err(FlashError::NotErased);
        }
        NVMC.config.write(Config::WEN::Wen);
        self.wait_ready();
        for (i, chunk) in data.chunks_exact(word).enumerate() {
            let value = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            // SAFETY: a word-aligned address inside the region, with
            // writes enabled; the NVMC programs it.
            unsafe {
                core::ptr::write_volatile((REGION_START + at + i * word) as *mut u32, value);
            }
            self.wait_ready();
        }
        NVMC.config.write(Config::WEN::Ren);
        self.wait_ready();
        Ok(())
    }

    fn erase_page(&mut self, page: u32) -> Result<(), FlashError> {
        if page >= DEVICE_PAGES {
            return Err(FlashError::OutOfBounds);
        }
        NVMC.config.write(Config::WEN::Een);
        self.wait_ready();
        NVMC.erasepage
            .set((REGION_START + (page * PAGE_BYTES) as usize) as u32);
        self.wait_ready();
        NVMC.config.write(Config::WEN::Ren);
        self.wait_ready();
        Ok(())
    }
}
