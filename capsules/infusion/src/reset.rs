//! Why the board started, and how many watchdog resets came in a row.
//!
//! A board keeps a [`ResetRecord`] where a reset does not lose it
//! ([`ResetMemory`]: RAM that survives a reset, or on QEMU a host file).
//! Its watchdog writes [`WATCHDOG_MARK`] into [`ResetRecord::mark`] (the
//! first four bytes, little endian) just before it resets the machine;
//! nothing else of the record has to be written then, so a watchdog in
//! assembly can do it. At the next boot the capsule reads the record and,
//! once the stored records are restored (core time known), counts the reset,
//! marks the record booted, and tells the core
//! (`InfusionCore::on_kernel_start`), which logs `KernelStarted` and raises
//! `RepeatedResets` from the second watchdog reset in a row. A boot that
//! finds no mark (power lost, QEMU killed, RAM never written) is a
//! power-on.
//!
//! "In a row": each within [`REPEAT_WINDOW_MS`] of core time of the one
//! before.

use infusion_core::ResetReason;

/// Written by the board's watchdog into [`ResetRecord::mark`] just before
/// it resets the machine: `"WDOG"`.
pub const WATCHDOG_MARK: u32 = 0x574F_4447;
/// Written at every boot once the reset has been counted: `"BOOT"`.
pub const BOOTED_MARK: u32 = 0x544F_4F42;

/// Watchdog resets further apart than this (core time) start a new count.
pub const REPEAT_WINDOW_MS: u64 = 24 * 3_600_000;

const CHECK_SEED: u32 = 0x5245_5345; // "RESE"

/// The record a board keeps across resets. Its stored form
/// ([`Self::to_bytes`]) starts with `mark`, which the board's watchdog
/// writes alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResetRecord {
    /// [`WATCHDOG_MARK`] after a watchdog reset, [`BOOTED_MARK`] while the
    /// kernel runs; anything else after a power-on.
    pub mark: u32,
    /// Watchdog resets in a row, up to the last boot.
    pub watchdog_resets: u32,
    /// Core time of the boot after the last watchdog reset (low, high).
    pub last_watchdog_ms: [u32; 2],
    /// Check word over the three fields above (not over `mark`): RAM that
    /// was never written by a boot fails it.
    pub check: u32,
}

/// Where a board keeps its [`ResetRecord`].
pub trait ResetMemory {
    /// The record as the last boot or the watchdog left it (all zero if
    /// there is none).
    fn read(&self) -> ResetRecord;
    /// Replaces the record.
    fn write(&self, record: &ResetRecord);
}

/// A record in plain RAM, for a board whose RAM does not survive its
/// watchdog's reset but whose hardware names the reason (the nRF52840's
/// `RESETREAS`): it reports the reason, and counts at most one watchdog
/// reset in a row (so `RepeatedResets` is never raised on such a board).
pub struct RamResetMemory {
    record: core::cell::Cell<ResetRecord>,
}

impl RamResetMemory {
    /// A record saying whether the hardware reports a watchdog reset.
    pub fn new(by_watchdog: bool) -> Self {
        let mark = if by_watchdog { WATCHDOG_MARK } else { 0 };
        Self {
            record: core::cell::Cell::new(ResetRecord {
                mark,
                ..ResetRecord::default()
            }),
        }
    }
}

impl ResetMemory for RamResetMemory {
    fn read(&self) -> ResetRecord {
        self.record.get()
    }

    fn write(&self, record: &ResetRecord) {
        self.record.set(*record);
    }
}

/// Bytes of a [`ResetRecord`] in its little-endian form.
pub const RESET_RECORD_LEN: usize = 20;

impl ResetRecord {
    /// The record in its stored form: the five words, little endian.
    pub fn to_bytes(&self) -> [u8; RESET_RECORD_LEN] {
        let mut out = [0u8; RESET_RECORD_LEN];
        let words = [
            self.mark,
            self.watchdog_resets,
            self.last_watchdog_ms[0],
            self.last_watchdog_ms[1],
            self.check,
        ];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// The record from its stored form.
    pub fn from_bytes(bytes: &[u8; RESET_RECORD_LEN]) -> Self {
        let word = |i: usize| {
            u32::from_le_bytes([
                bytes[4 * i],
                bytes[4 * i + 1],
                bytes[4 * i + 2],
                bytes[4 * i + 3],
            ])
        };
        Self {
            mark: word(0),
            watchdog_resets: word(1),
            last_watchdog_ms: [word(2), word(3)],
            check: word(4),
        }
    }

    fn checksum(&self) -> u32 {
        CHECK_SEED
            ^ self.watchdog_resets.rotate_left(7)
            ^ self.last_watchdog_ms[0].rotate_left(13)
            ^ self.last_watchdog_ms[1].rotate_left(21)
    }

    fn valid(&self) -> bool {
        self.check == self.checksum()
    }

    /// Why the machine started, as the record says before it is counted.
    pub fn reason(&self) -> ResetReason {
        if self.mark == WATCHDOG_MARK {
            ResetReason::Watchdog
        } else {
            ResetReason::PowerOn
        }
    }

    /// Counts this boot at core time `now_ms` (after the restore) and marks
    /// the record booted. Returns the reason and the watchdog resets in a
    /// row (0 unless this boot follows a watchdog reset).
    pub fn count_boot(&mut self, now_ms: u64) -> (ResetReason, u16) {
        let reason = self.reason();
        let (before, last) = if self.valid() {
            let last =
                u64::from(self.last_watchdog_ms[0]) | (u64::from(self.last_watchdog_ms[1]) << 32);
            (self.watchdog_resets, last)
        } else {
            (0, 0)
        };
        let in_a_row = match reason {
            ResetReason::Watchdog => {
                let recent = before > 0 && now_ms.saturating_sub(last) <= REPEAT_WINDOW_MS;
                if recent {
                    before.saturating_add(1)
                } else {
                    1
                }
            }
            ResetReason::PowerOn => 0,
        };
        if reason == ResetReason::Watchdog {
            self.last_watchdog_ms = [now_ms as u32, (now_ms >> 32) as u32];
        } else if !self.valid() {
            self.last_watchdog_ms = [0, 0];
        }
        self.watchdog_resets = in_a_row;
        self.check = self.checksum();
        self.mark = BOOTED_MARK;
        (reason, u16::try_from(in_a_row).unwrap_or(u16::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SR-WDG-003: the board's record tells a watchdog reset from a
    /// power-on, and counts watchdog resets in a row within 24 h.
    #[test]
    fn sr_wdg_003_watchdog_resets_are_counted_in_a_row() {
        // Power-on: RAM zeroed.
        let mut r = ResetRecord::default();
        assert_eq!(r.count_boot(1_000), (ResetReason::PowerOn, 0));
        assert_eq!(r.mark, BOOTED_MARK);
        // The watchdog fires (it writes the mark only).
        r.mark = WATCHDOG_MARK;
        assert_eq!(r.count_boot(60_000), (ResetReason::Watchdog, 1));
        r.mark = WATCHDOG_MARK;
        assert_eq!(r.count_boot(120_000), (ResetReason::Watchdog, 2));
        // A boot that was not a watchdog reset (a soft reset that kept RAM)
        // ends the run.
        assert_eq!(r.count_boot(130_000), (ResetReason::PowerOn, 0));
        r.mark = WATCHDOG_MARK;
        assert_eq!(r.count_boot(140_000), (ResetReason::Watchdog, 1));
        // More than 24 h later: a new count.
        r.mark = WATCHDOG_MARK;
        let later = 140_000 + REPEAT_WINDOW_MS + 1;
        assert_eq!(r.count_boot(later), (ResetReason::Watchdog, 1));
        r.mark = WATCHDOG_MARK;
        assert_eq!(r.count_boot(later + 5), (ResetReason::Watchdog, 2));
        // Garbage RAM with the mark: a watchdog reset, but no count before it.
        let mut g = ResetRecord {
            mark: WATCHDOG_MARK,
            watchdog_resets: 40,
            last_watchdog_ms: [1, 2],
            check: 3,
        };
        assert_eq!(g.count_boot(10), (ResetReason::Watchdog, 1));
        // Garbage RAM without it: a power-on.
        let mut g = ResetRecord {
            mark: 0xDEAD_BEEF,
            watchdog_resets: 40,
            last_watchdog_ms: [1, 2],
            check: 3,
        };
        assert_eq!(g.count_boot(10), (ResetReason::PowerOn, 0));
        // The stored form round-trips, the mark first.
        let bytes = r.to_bytes();
        assert_eq!(ResetRecord::from_bytes(&bytes), r);
        assert_eq!(bytes[..4], BOOTED_MARK.to_le_bytes());
        assert_eq!(RESET_RECORD_LEN, core::mem::size_of::<ResetRecord>());
    }
}
