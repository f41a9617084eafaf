//! The periodic self-tests (SR-STS-005): what runs every hour, in what
//! slices, and against what. The core keeps this schedule
//! ([`InfusionCore::run_self_tests`](crate::InfusionCore::run_self_tests));
//! the board gives it its memory and its second clock through
//! [`SelfTestHardware`].
//!
//! Every [`SELF_TEST_INTERVAL_MS`] (1 h, GIP 3.3.3):
//!
//! - the CPU check ([`super::cpu::cpu_check`]);
//! - a March C− over the next [`RAM_SLICE_WORDS`] words of the RAM region
//!   the board names, their contents saved before and written back after,
//!   so the region may hold live data (the board must keep anything else
//!   from touching the slice meanwhile: the kernel runs this from its own
//!   deferred call, with nothing else running); a failure is reported at
//!   once, a pass only at the end of a whole clean pass over the region;
//! - the next 1/[`PROGRAM_PASS_RUNS`] of program memory into the running
//!   CRC-32C ([`super::ProgramCrc`]): a whole pass a day, compared with the
//!   first pass since boot, so a bit that flips is found within two days
//!   (by the end of the pass after the one it flipped in);
//! - the system timer against the board's second clock over the hour
//!   since the last run ([`super::clock_drift_ppm`]); a second clock that
//!   ran backwards counts as the largest drift.

use super::{clock_drift_ppm, march_c_minus, ProgramCrc, RamWords, SelfTest};
use super::{cpu::cpu_check, CLOCK_DRIFT_LIMIT_PPM};

/// How often the periodic tests run.
pub const SELF_TEST_INTERVAL_MS: u64 = 60 * 60 * 1000;

/// Runs over which one pass of program memory is spread: one a day.
pub const PROGRAM_PASS_RUNS: u32 = 24;

/// Words of RAM tested at each run (512 bytes; their contents are kept on
/// the stack meanwhile).
pub const RAM_SLICE_WORDS: usize = 128;

/// Bytes read from program memory at a time.
const READ_CHUNK_BYTES: usize = 256;

/// What the board lends the periodic tests.
pub trait SelfTestHardware {
    /// The RAM region the test walks, a slice at a time.
    type Ram: RamWords + ?Sized;
    /// Bytes of program memory to check (the kernel's and the apps' code;
    /// no data that changes). `0` skips the test.
    fn program_len(&self) -> u32;
    /// Copies program memory from `offset` into `buf` (the whole of `buf`
    /// lies inside [`program_len`](Self::program_len)).
    fn read_program(&mut self, offset: u32, buf: &mut [u8]);
    /// The RAM region.
    fn ram(&mut self) -> &mut Self::Ram;
    /// The second clock (an RTC on its own crystal), in ms, never wrapping.
    fn reference_clock_ms(&mut self) -> u64;
}

/// What one run found: each test's outcome (a program-memory result only
/// when a pass completed, a clock result only from the second run on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeriodicRun {
    /// `(test, outcome)` in the order run.
    pub results: heapless::Vec<(SelfTest, Result<(), u32>), 4>,
    /// Program-memory bytes read (what the CRC cost).
    pub program_bytes: u32,
}

/// The schedule and the state the tests carry from run to run. In RAM
/// only: after a reset the power-on tests run, and the first pass of
/// program memory is the reference again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeriodicSelfTests {
    next_due_ms: Option<u64>,
    ram_cursor: usize,
    /// A slice of this pass over the RAM region failed.
    ram_pass_failed: bool,
    program_cursor: u32,
    program: ProgramCrc,
    /// `(system timer, second clock)` at the last run.
    clock_base: Option<(u64, u64)>,
}

impl PeriodicSelfTests {
    /// When the next run is due; `None` before the board's first call.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.next_due_ms
    }

    /// Whether a run is due at `now_ms` (always, before the first run).
    pub fn is_due(&self, now_ms: u64) -> bool {
        self.next_due_ms.is_none_or(|due| now_ms >= due)
    }

    /// Runs every test's share for this hour at `now_ms` (the system
    /// timer, as read: not the core's monotonic clock, so a timer that
    /// jumped back shows in the clock test) and schedules the next run.
    pub fn run<H: SelfTestHardware + ?Sized>(&mut self, hw: &mut H, now_ms: u64) -> PeriodicRun {
        let mut out = PeriodicRun::default();
        // Four slots for four tests: pushes cannot fail.
        let _ = out.results.push((SelfTest::Cpu, cpu_check()));
        if let Some(result) = self.ram_slice(hw.ram()) {
            let _ = out.results.push((SelfTest::Ram, result));
        }
        let (bytes, pass) = self.program_slice(hw);
        out.program_bytes = bytes;
        if let Some(result) = pass {
            let _ = out.results.push((SelfTest::ProgramMemory, result));
        }
        let reference_ms = hw.reference_clock_ms();
        if let Some((t0, r0)) = self.clock_base {
            let drift = match reference_ms.checked_sub(r0) {
                Some(reference) => clock_drift_ppm(now_ms.saturating_sub(t0), reference),
                None => u32::MAX,
            };
            let result = if drift > CLOCK_DRIFT_LIMIT_PPM {
                Err(drift)
            } else {
                Ok(())
            };
            let _ = out.results.push((SelfTest::Clock, result));
        }
        self.clock_base = Some((now_ms, reference_ms));
        self.next_due_ms = Some(now_ms.saturating_add(SELF_TEST_INTERVAL_MS));
        out
    }

    /// March C− over the next slice, its contents restored: `Err(word)`
    /// names the failing word's index in the region. A pass is reported
    /// only when a whole pass over the region found nothing: one sound
    /// slice says nothing about the word that failed in another.
    fn ram_slice<R: RamWords + ?Sized>(&mut self, ram: &mut R) -> Option<Result<(), u32>> {
        let n = ram.word_count();
        if n == 0 {
            return None;
        }
        let start = if self.ram_cursor >= n {
            0
        } else {
            self.ram_cursor
        };
        let len = RAM_SLICE_WORDS.min(n - start);
        let mut saved = [0u32; RAM_SLICE_WORDS];
        for (k, word) in saved.iter_mut().take(len).enumerate() {
            *word = ram.read(start + k);
        }
        let result = march_c_minus(&mut Window { ram, start, len });
        for (k, word) in saved.iter().take(len).enumerate() {
            ram.write(start + k, *word);
        }
        self.ram_cursor = start + len;
        if let Err(k) = result {
            self.ram_pass_failed = true;
            return Some(Err(u32::try_from(start + k).unwrap_or(u32::MAX)));
        }
        if self.ram_cursor < n {
            return None;
        }
        self.ram_cursor = 0;
        if core::mem::take(&mut self.ram_pass_failed) {
            None
        } else {
            Some(Ok(()))
        }
    }

    /// Feeds the next slice of program memory: the bytes read, and the
    /// pass's verdict if this slice ended it.
    fn program_slice<H: SelfTestHardware + ?Sized>(
        &mut self,
        hw: &mut H,
    ) -> (u32, Option<Result<(), u32>>) {
        let len = hw.program_len();
        if len == 0 {
            return (0, None);
        }
        let start = self.program_cursor.min(len);
        let end = start
            .saturating_add(len.div_ceil(PROGRAM_PASS_RUNS))
            .min(len);
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        let mut at = start;
        while at < end {
            let n = (end - at).min(READ_CHUNK_BYTES as u32) as usize;
            hw.read_program(at, &mut chunk[..n]);
            self.program.feed(&chunk[..n]);
            at += n as u32;
        }
        self.program_cursor = end;
        let pass = if end >= len {
            self.program_cursor = 0;
            Some(self.program.finish_pass())
        } else {
            None
        };
        (end - start, pass)
    }
}

/// Words `start..start + len` of a region, as a region of their own.
struct Window<'a, R: RamWords + ?Sized> {
    ram: &'a mut R,
    start: usize,
    len: usize,
}

impl<R: RamWords + ?Sized> RamWords for Window<'_, R> {
    fn word_count(&self) -> usize {
        self.len
    }
    fn read(&self, i: usize) -> u32 {
        self.ram.read(self.start + i)
    }
    fn write(&mut self, i: usize, value: u32) {
        self.ram.write(self.start + i, value);
    }
}
