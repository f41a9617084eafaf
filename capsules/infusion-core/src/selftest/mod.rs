//! Self-tests of the pump's own hardware (SR-STS-001..006): the arithmetic
//! of each test, so that the simulator, the tests and the boards run the
//! same code. The board runs the power-on tests on its memory and reports
//! their outcome to [`InfusionCore::on_self_test`](crate::InfusionCore::on_self_test);
//! the core runs the periodic ones on the hour through
//! [`InfusionCore::run_self_tests`](crate::InfusionCore::run_self_tests)
//! ([`periodic`]), over the memory and second clock the board lends it.
//!
//! | test | when | what it costs |
//! |---|---|---|
//! | RAM ([`march_c_minus`]) over the capsule's scratch region | at boot | 10 passes over the region: about 10 µs per KiB at 64 MHz |
//! | RAM, a 512-byte slice of the board's region, contents restored | every hour ([`periodic`]) | about 5 µs |
//! | CPU ([`cpu::cpu_check`]): known answers of the integer ALU | every hour | under 1 µs |
//! | program memory ([`ProgramCrc`]), CRC-32C in slices | 1/24 of it every hour; the first whole pass since boot is the reference | about 160 ms of CPU a day for 1 MiB at 64 MHz, ~0.2 µAh a day (`docs/energy.md`) |
//! | clock ([`clock_drift_ppm`]): the system timer against the RTC | every hour, over the hour since the last run | two reads |
//! | app images: the board's own checksums of what it loaded | at boot | the board's loader |
//! | watchdog | not run in the field (a deliberate deviation, `docs/safety/reference-coverage.md` GIP 3.5.5) | — |
//!
//! A failure stops delivery under the latched high `SelfTestFailed`
//! alarm and logs a `SelfTestFailed` event naming the test; a clinician
//! can clear the alarm only once every test that failed since boot has
//! passed again.

use pump_protocol::CRC32C;

pub mod cpu;
pub mod periodic;

/// The hardware self-tests, by their wire code (`SelfTestFailed.test`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// RAM over the capsule's scratch region.
    Ram = 1,
    /// Program memory against the first pass's CRC.
    ProgramMemory = 2,
    /// The system timer against a second clock.
    Clock = 3,
    /// The app images the board loaded.
    Images = 4,
    /// The watchdog itself.
    Watchdog = 5,
    /// The CPU's integer operations ([`cpu::cpu_check`]).
    Cpu = 6,
}

impl SelfTest {
    /// Every test.
    pub const ALL: [SelfTest; 6] = [
        SelfTest::Ram,
        SelfTest::ProgramMemory,
        SelfTest::Clock,
        SelfTest::Images,
        SelfTest::Watchdog,
        SelfTest::Cpu,
    ];

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Its bit in a set of tests.
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Words a RAM test reads and writes: a slice of `u32` on a board, a model
/// with stuck bits in the tests.
pub trait RamWords {
    /// Number of words.
    fn word_count(&self) -> usize;
    /// Reads word `i`.
    fn read(&self, i: usize) -> u32;
    /// Writes word `i`.
    fn write(&mut self, i: usize, value: u32);
}

impl RamWords for [u32] {
    fn word_count(&self) -> usize {
        self.len()
    }
    fn read(&self, i: usize) -> u32 {
        self.get(i).copied().unwrap_or(0)
    }
    fn write(&mut self, i: usize, value: u32) {
        if let Some(w) = self.get_mut(i) {
            *w = value;
        }
    }
}

/// March C− over `ram` with all-zero and all-one words (stuck-at,
/// transition and coupling faults between words): `Err(i)` names the first
/// word that read back wrong. Destructive: the region is left zeroed, so
/// the board runs it over a scratch region before anything lives there.
pub fn march_c_minus<R: RamWords + ?Sized>(ram: &mut R) -> Result<(), usize> {
    const ZERO: u32 = 0;
    const ONE: u32 = u32::MAX;
    let n = ram.word_count();
    // ⇕(w0)
    for i in 0..n {
        ram.write(i, ZERO);
    }
    // ⇑(r0, w1), ⇑(r1, w0), ⇓(r0, w1), ⇓(r1, w0)
    let ups: [(u32, u32, bool); 4] = [
        (ZERO, ONE, true),
        (ONE, ZERO, true),
        (ZERO, ONE, false),
        (ONE, ZERO, false),
    ];
    for (expect, write, ascending) in ups {
        for k in 0..n {
            let i = if ascending { k } else { n - 1 - k };
            if ram.read(i) != expect {
                return Err(i);
            }
            ram.write(i, write);
        }
    }
    // ⇕(r0)
    for i in 0..n {
        if ram.read(i) != ZERO {
            return Err(i);
        }
    }
    Ok(())
}

/// A CRC-32C of program memory computed a slice at a time: each slice's
/// CRC-32C is folded into a running one (the same slices give the same
/// result), the first complete pass is the reference, and every later pass
/// must match it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramCrc {
    running: u32,
    reference: Option<u32>,
}

impl ProgramCrc {
    /// Adds the next slice of the current pass.
    pub fn feed(&mut self, slice: &[u8]) {
        let slice_crc = CRC32C.checksum(slice);
        let mut pair = [0u8; 8];
        pair[..4].copy_from_slice(&self.running.to_le_bytes());
        pair[4..].copy_from_slice(&slice_crc.to_le_bytes());
        self.running = CRC32C.checksum(&pair);
    }

    /// Ends a pass: `Ok` if it matched the reference (or became it),
    /// `Err(crc)` with the CRC found if it did not.
    pub fn finish_pass(&mut self) -> Result<(), u32> {
        let crc = core::mem::take(&mut self.running);
        match self.reference {
            None => {
                self.reference = Some(crc);
                Ok(())
            }
            Some(r) if r == crc => Ok(()),
            Some(_) => Err(crc),
        }
    }

    /// The reference CRC, once a pass has completed.
    pub fn reference(&self) -> Option<u32> {
        self.reference
    }
}

/// The most the system timer may drift from the second clock: 1 000 ppm
/// (86 s a day). Crystals drift tens of ppm; a timer running 0.1 % fast or
/// slow is a broken clock, and every rate the pump runs goes wrong with it.
pub const CLOCK_DRIFT_LIMIT_PPM: u32 = 1_000;

/// How far `timer_ms` strays from `reference_ms` over the same interval,
/// in ppm of the reference, rounded up (the safe side) and saturating.
pub fn clock_drift_ppm(timer_ms: u64, reference_ms: u64) -> u32 {
    if reference_ms == 0 {
        return if timer_ms == 0 { 0 } else { u32::MAX };
    }
    let diff = u128::from(timer_ms.abs_diff(reference_ms));
    u32::try_from((diff * 1_000_000).div_ceil(u128::from(reference_ms))).unwrap_or(u32::MAX)
}
