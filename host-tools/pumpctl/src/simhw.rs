//! The simulated board's memory and second clock, lent to the core's hourly
//! self-tests (SR-STS-005), with the faults a script can inject
//! (`hardware-fault part=flash|ram|rtc`).

use infusion_core::selftest::periodic::SelfTestHardware;
use infusion_core::selftest::RamWords;

/// Bytes of the simulated program image (about the size of the kernel and
/// the apps on the boards).
pub const PROGRAM_BYTES: usize = 256 * 1024;

/// Words of the RAM region the hourly test walks.
pub const RAM_WORDS: usize = 2 * 1024;

/// A part of the board that can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardwarePart {
    /// A bit of program memory flips.
    Flash,
    /// A bit of a RAM word sticks at 1.
    Ram,
    /// The system timer runs 0.5 % fast of the RTC from now on.
    Rtc,
}

impl HardwarePart {
    /// The script's name of each part.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "flash" => Some(Self::Flash),
            "ram" => Some(Self::Ram),
            "rtc" => Some(Self::Rtc),
            _ => None,
        }
    }
}

/// The simulated RAM region, with an optional stuck bit.
#[derive(Clone, Debug)]
pub struct SimRam {
    words: Vec<u32>,
    /// Word and the bits stuck at 1.
    stuck_high: Option<(usize, u32)>,
}

impl RamWords for SimRam {
    fn word_count(&self) -> usize {
        self.words.len()
    }
    fn read(&self, i: usize) -> u32 {
        let v = self.words.get(i).copied().unwrap_or(0);
        match self.stuck_high {
            Some((w, bits)) if w == i => v | bits,
            _ => v,
        }
    }
    fn write(&mut self, i: usize, value: u32) {
        if let Some(w) = self.words.get_mut(i) {
            *w = value;
        }
    }
}

/// The board's memory and clocks as the self-tests see them.
#[derive(Clone, Debug)]
pub struct SimHardware {
    program: Vec<u8>,
    ram: SimRam,
    /// The system timer (set by the loop before each call).
    pub now_ms: u64,
    /// Since when the timer runs 0.5 % fast, if it does: `(timer, rtc)` then.
    fast_since: Option<(u64, u64)>,
}

impl Default for SimHardware {
    fn default() -> Self {
        Self {
            program: (0..PROGRAM_BYTES)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            ram: SimRam {
                words: vec![0; RAM_WORDS],
                stuck_high: None,
            },
            now_ms: 0,
            fast_since: None,
        }
    }
}

impl SimHardware {
    /// Injects a fault in `part` at `now_ms`.
    pub fn inject(&mut self, part: HardwarePart, now_ms: u64) {
        match part {
            HardwarePart::Flash => {
                if let Some(b) = self.program.get_mut(PROGRAM_BYTES / 3) {
                    *b ^= 0x04;
                }
            }
            HardwarePart::Ram => self.ram.stuck_high = Some((RAM_WORDS / 2 + 7, 1 << 20)),
            HardwarePart::Rtc => {
                let rtc = self.rtc_at(now_ms);
                self.fast_since = Some((now_ms, rtc));
            }
        }
    }

    /// The RTC when the timer reads `timer_ms`.
    fn rtc_at(&self, timer_ms: u64) -> u64 {
        match self.fast_since {
            // The timer runs 1.005 times as fast: the RTC advances by
            // 1000/1005 of the timer's ms.
            Some((t0, r0)) => r0 + timer_ms.saturating_sub(t0) * 1000 / 1005,
            None => timer_ms,
        }
    }
}

impl SelfTestHardware for SimHardware {
    type Ram = SimRam;
    fn program_len(&self) -> u32 {
        self.program.len() as u32
    }
    fn read_program(&mut self, offset: u32, buf: &mut [u8]) {
        let at = offset as usize;
        if let Some(src) = self.program.get(at..at + buf.len()) {
            buf.copy_from_slice(src);
        }
    }
    fn ram(&mut self) -> &mut SimRam {
        &mut self.ram
    }
    fn reference_clock_ms(&mut self) -> u64 {
        self.rtc_at(self.now_ms)
    }
}
