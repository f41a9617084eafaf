//! Wear projection: how long until the most-worn page of a ring reaches its
//! rated endurance, from measured use. Integer arithmetic only.
//!
//! The ring is erased page by page in order, one erase per page per pass,
//! and a pass consumes `page_count × (page_size − 16)` ring bytes (records
//! written, records copied forward, and page tails left unused; see
//! [`crate::StoreStats::ring_bytes_consumed`]). So over a measurement of
//! `consumed` ring bytes in `elapsed_ms`:
//!
//! ```text
//! erases per page per ms  = consumed / (page_count × usable × elapsed_ms)
//! days left               = (endurance − max_erases) × page_count × usable × elapsed_ms
//!                           / (consumed × 86 400 000)
//! years left × 100        = days left × 400 / 1461        (a year is 1461/4 days)
//! ```
//!
//! `max_erases` is the most-worn page's count now, so the projection is for
//! the page that wears out first. Copy-forward overhead is inside `consumed`
//! because it is measured, not modelled.

use crate::format::PAGE_HEADER_BYTES;

/// Milliseconds in a day.
pub const MS_PER_DAY: u64 = 86_400_000;

/// What the projection needs: the ring's geometry, the flash's rating, and a
/// measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WearInput {
    /// Bytes per flash page.
    pub page_size_bytes: u32,
    /// Pages in the ring.
    pub ring_pages: u32,
    /// Rated erases per page (nRF52840: 10 000).
    pub endurance_cycles: u32,
    /// Erases of the most-worn page of the ring so far.
    pub max_erases_so_far: u32,
    /// Ring bytes consumed during the measurement
    /// ([`crate::StoreStats::ring_bytes_consumed`]).
    pub ring_bytes_consumed: u64,
    /// Length of the measurement (simulated or real time).
    pub elapsed_ms: u64,
}

impl WearInput {
    /// Ring bytes consumed by one pass (every page erased once).
    pub fn bytes_per_pass(&self) -> u64 {
        u64::from(self.ring_pages).saturating_mul(u64::from(
            self.page_size_bytes.saturating_sub(PAGE_HEADER_BYTES),
        ))
    }

    /// Whole days until the most-worn page reaches its endurance at the
    /// measured rate (saturating at `u64::MAX`); `Some(0)` if it already has;
    /// `None` if nothing was consumed, the measurement has no length, or the
    /// geometry holds no bytes (no rate to project from).
    pub fn projected_days(&self) -> Option<u64> {
        if self.ring_bytes_consumed == 0 || self.elapsed_ms == 0 || self.bytes_per_pass() == 0 {
            return None;
        }
        let left = u128::from(self.endurance_cycles.saturating_sub(self.max_erases_so_far));
        // Past 2^128 the answer is over 2^37 days (the denominator is under
        // 2^91): saturate.
        let Some(num) =
            (left * u128::from(self.bytes_per_pass())).checked_mul(u128::from(self.elapsed_ms))
        else {
            return Some(u64::MAX);
        };
        let den = u128::from(self.ring_bytes_consumed) * u128::from(MS_PER_DAY);
        Some(u64::try_from(num / den).unwrap_or(u64::MAX))
    }

    /// [`Self::projected_days`] in years × 100 (e.g. 1234 = 12.34 years).
    pub fn projected_years_x100(&self) -> Option<u64> {
        self.projected_days()
            .map(|d| u64::try_from(u128::from(d) * 400 / 1461).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> WearInput {
        WearInput {
            page_size_bytes: 4096,
            ring_pages: 8,
            endurance_cycles: 10_000,
            max_erases_so_far: 0,
            // One pass per day.
            ring_bytes_consumed: 8 * 4080,
            elapsed_ms: MS_PER_DAY,
        }
    }

    #[test]
    fn one_pass_a_day_lasts_endurance_days() {
        let w = input();
        assert_eq!(w.bytes_per_pass(), 32_640);
        assert_eq!(w.projected_days(), Some(10_000));
        // 10 000 days = 27.38 years.
        assert_eq!(w.projected_years_x100(), Some(2737));
    }

    #[test]
    fn wear_already_done_and_rates_scale() {
        let w = WearInput {
            max_erases_so_far: 9_000,
            ..input()
        };
        assert_eq!(w.projected_days(), Some(1_000));
        let w = WearInput {
            max_erases_so_far: 20_000,
            ..input()
        };
        assert_eq!(w.projected_days(), Some(0));
        // Half the bytes in the same time: twice as long.
        let w = WearInput {
            ring_bytes_consumed: 4 * 4080,
            ..input()
        };
        assert_eq!(w.projected_days(), Some(20_000));
        // Twice the pages: twice as long.
        let w = WearInput {
            ring_pages: 16,
            ..input()
        };
        assert_eq!(w.projected_days(), Some(20_000));
    }

    #[test]
    fn no_rate_no_projection_and_extremes_saturate() {
        assert_eq!(
            WearInput {
                ring_bytes_consumed: 0,
                ..input()
            }
            .projected_days(),
            None
        );
        assert_eq!(
            WearInput {
                elapsed_ms: 0,
                ..input()
            }
            .projected_days(),
            None
        );
        assert_eq!(
            WearInput {
                page_size_bytes: 16,
                ..input()
            }
            .projected_days(),
            None
        );
        let w = WearInput {
            endurance_cycles: u32::MAX,
            ring_pages: u32::MAX,
            ring_bytes_consumed: 1,
            elapsed_ms: u64::MAX,
            page_size_bytes: u32::MAX,
            ..input()
        };
        assert_eq!(w.projected_days(), Some(u64::MAX));
        let years = u128::from(u64::MAX) * 400 / 1461;
        assert_eq!(w.projected_years_x100(), Some(years as u64));
    }
}
