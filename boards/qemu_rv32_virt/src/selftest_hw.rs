//! What this board lends the capsule's hourly self-tests (SR-STS-005):
//! the kernel's code and read-only data in flash (`_stext`..`_etext`) for
//! the program-memory CRC, a RAM region of its own for the March C− slices,
//! and the host's monotonic clock over semihosting (`SYS_ELAPSED`) as the
//! second clock the system timer is checked against.
//!
//! QEMU's `mtime` follows the host's virtual clock and `SYS_ELAPSED` the
//! host's real one: the two agree while QEMU runs, as an RTC on its own
//! crystal and the system timer do on a sound board.

use core::cell::Cell;

use infusion::selftest::periodic::SelfTestHardware;

/// Words of RAM the periodic test walks, a slice an hour (two slices).
pub const RAM_WORDS: usize = 256;

/// What the runs have done since boot, for the F8 report.
#[derive(Default)]
pub struct SelfTestStats {
    runs: Cell<u32>,
    program_bytes: Cell<u64>,
}

impl SelfTestStats {
    /// `(runs, program bytes read)` since boot.
    pub fn counts(&self) -> (u32, u64) {
        (self.runs.get(), self.program_bytes.get())
    }
}

/// The board's side of the periodic self-tests.
pub struct QemuSelfTestHardware {
    program: &'static [u8],
    ram: &'static mut [u32; RAM_WORDS],
    last_reference_ms: u64,
    stats: &'static SelfTestStats,
}

impl QemuSelfTestHardware {
    pub fn new(ram: &'static mut [u32; RAM_WORDS], stats: &'static SelfTestStats) -> Self {
        extern "C" {
            static _stext: u8;
            static _etext: u8;
        }
        // SAFETY: the linker script places the kernel's code and read-only
        // data between these two symbols; nothing writes there after boot
        // (the ePMP keeps it read-only and executable).
        let program = unsafe {
            let start = core::ptr::addr_of!(_stext);
            let end = core::ptr::addr_of!(_etext);
            core::slice::from_raw_parts(start, (end as usize).saturating_sub(start as usize))
        };
        Self {
            program,
            ram,
            last_reference_ms: 0,
            stats,
        }
    }
}

impl SelfTestHardware for QemuSelfTestHardware {
    type Ram = [u32];

    fn program_len(&self) -> u32 {
        u32::try_from(self.program.len()).unwrap_or(u32::MAX)
    }

    fn read_program(&mut self, offset: u32, buf: &mut [u8]) {
        let start = offset as usize;
        if let Some(src) = self.program.get(start..start + buf.len()) {
            buf.copy_from_slice(src);
            self.stats
                .program_bytes
                .set(self.stats.program_bytes.get() + buf.len() as u64);
        }
    }

    fn ram(&mut self) -> &mut [u32] {
        &mut self.ram[..]
    }

    fn reference_clock_ms(&mut self) -> u64 {
        // Called once per run.
        self.stats.runs.set(self.stats.runs.get().saturating_add(1));
        // A clock that cannot be read reads as standing still: the drift
        // test then fails rather than passing on no evidence.
        let now = crate::semihost::elapsed_ms().unwrap_or(self.last_reference_ms);
        self.last_reference_ms = self.last_reference_ms.max(now);
        self.last_reference_ms
    }
}
