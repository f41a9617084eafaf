//! 64-bit milliseconds from the wrapping ticks of a hardware alarm.

use core::cell::Cell;
use kernel::hil::time::Ticks;

/// Extends a wrapping tick counter to 64-bit milliseconds.
///
/// `now` must be called at least once per half wrap of the counter and per
/// 2^32 ticks; the capsule guarantees that by never sleeping longer than
/// [`MAX_SLEEP_MS`](crate::MAX_SLEEP_MS).
pub(crate) struct Clock<T: Ticks> {
    last: Cell<T>,
    ticks: Cell<u64>,
    base_ms: Cell<u64>,
}

impl<T: Ticks> Clock<T> {
    pub(crate) fn new(start: T) -> Self {
        Self {
            last: Cell::new(start),
            ticks: Cell::new(0),
            base_ms: Cell::new(0),
        }
    }

    /// Milliseconds at tick reading `now` (monotonic).
    pub(crate) fn now_ms(&self, now: T, frequency_hz: u32) -> u64 {
        let elapsed = now.wrapping_sub(self.last.get()).into_u32();
        self.last.set(now);
        let ticks = self.ticks.get().saturating_add(u64::from(elapsed));
        self.ticks.set(ticks);
        self.base_ms
            .get()
            .saturating_add(ticks_to_ms(ticks, frequency_hz))
    }

    /// Continues the time line from `ms` (the time of the last saved record):
    /// the board's tick counter restarts at every reset, core time must not.
    pub(crate) fn continue_from(&self, ms: u64) {
        if ms > self.base_ms.get() {
            self.base_ms.set(ms);
        }
    }
}

/// Whole milliseconds in `ticks` (rounded down), without overflow.
pub(crate) fn ticks_to_ms(ticks: u64, frequency_hz: u32) -> u64 {
    let f = u64::from(frequency_hz.max(1));
    (ticks / f) * 1000 + (ticks % f) * 1000 / f
}

/// Ticks in `ms` milliseconds, rounded up (an alarm must never fire before
/// the instant the core asked for).
pub(crate) fn ms_to_ticks(ms: u64, frequency_hz: u32) -> u64 {
    let f = u64::from(frequency_hz);
    (ms / 1000)
        .saturating_mul(f)
        .saturating_add(((ms % 1000) * f).div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::hil::time::{Ticks24, Ticks32};

    #[test]
    fn conversions_round_the_safe_way() {
        assert_eq!(ticks_to_ms(32_767, 32_768), 999);
        assert_eq!(ticks_to_ms(32_768, 32_768), 1000);
        assert_eq!(ms_to_ticks(1, 32_768), 33);
        assert_eq!(ms_to_ticks(1000, 32_768), 32_768);
        assert_eq!(ms_to_ticks(1, 10_000_000), 10_000);
        for ms in [0u64, 1, 7, 999, 1000, 86_400_000, 365 * 86_400_000] {
            for f in [32_768u32, 1_000_000, 10_000_000] {
                assert!(ticks_to_ms(ms_to_ticks(ms, f), f) >= ms);
            }
        }
    }

    #[test]
    fn extends_across_wraps() {
        // A 24-bit counter at 32 kHz wraps every 512 s.
        let clock = Clock::new(Ticks24::from(0x00FF_0000));
        let mut reading = 0x00FF_0000u32;
        let mut expected_ticks = 0u64;
        for _ in 0..100 {
            reading = (reading + 0x0040_0000) & 0x00FF_FFFF; // 128 s
            expected_ticks += 0x0040_0000;
            let ms = clock.now_ms(Ticks24::from(reading), 32_768);
            assert_eq!(ms, ticks_to_ms(expected_ticks, 32_768));
        }
        assert_eq!(clock.now_ms(Ticks24::from(reading), 32_768), 12_800_000);
    }

    #[test]
    fn continues_from_saved_time_and_stays_monotonic() {
        let clock = Clock::new(Ticks32::from(5u32));
        assert_eq!(clock.now_ms(Ticks32::from(1005u32), 1000), 1000);
        clock.continue_from(50_000);
        assert_eq!(clock.now_ms(Ticks32::from(2005u32), 1000), 52_000);
        clock.continue_from(10); // never backwards
        assert_eq!(clock.now_ms(Ticks32::from(2005u32), 1000), 52_000);
    }
}
