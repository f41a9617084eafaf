//! What an app gone wrong can do to the capsule's state ring by repeating a
//! command that writes (`docs/persistence.md` §8): each flood runs on the
//! flash model of the boards (the 32-page state ring of 4 KiB pages rated
//! 10 000 cycles) until the most-worn page has been erased
//! [`FLOOD_ERASES`] times, and is priced at the nRF52840 NVMC's own times
//! (PS: page erase 85 ms max, a 32-bit word in 41 µs). The hours to the
//! rating are an estimate, not a bound: CPU and syscall time would slow an
//! attacker down, a part that erases faster than the PS's maximum would
//! speed one up (the charge, on the other hand, needs the maximum times to
//! be on the safe side). The baseline in the same run is
//! the legitimate load, `pumpctl bench`'s maximum-rate wear row.
//!
//! Trust: every flood here needs a compromised dosing or telemetry app;
//! nobody on the link can cause one.

// The NVMC's times: one source with the energy model's flash charge.
use energy_core::{
    NRF52840_NVMC_PAGE_ERASE_US as NVMC_PAGE_ERASE_US,
    NRF52840_NVMC_WORD_WRITE_US as NVMC_WORD_WRITE_US,
};
use infusion_core::{InfusionCore, StoredRecords, APP_RECORD_MAX_LEN};

use crate::board::{self, DOSING_APP, TELEMETRY_APP};
use crate::error::{Error, Result};
use crate::flashstore::PumpFlash;
use crate::sim::SimPlatform;

/// A flood stops once the most-worn page of the state ring has been erased
/// this often (enough passes for the rate to be steady).
pub const FLOOD_ERASES: u32 = 20;

/// A flood that has not worn the ring this much after this many calls is
/// reported as it stands (a write the core skips never wears anything).
pub const FLOOD_MAX_CALLS: u64 = 2_000_000;

/// The floods measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Flood {
    /// The dosing app alternates two 1 KiB records (command 26).
    AppRecordAlternating,
    /// The dosing app stops a basal that does not run (command 2, rate 0).
    StopWithNothingRunning,
    /// The telemetry app drains an empty queue (command 10).
    DrainOfNothing,
    /// The telemetry app is refused a command, then drains (commands 2, 10).
    RefusalThenDrain,
}

impl Flood {
    /// All of them, in table order.
    pub const ALL: [Flood; 4] = [
        Flood::AppRecordAlternating,
        Flood::StopWithNothingRunning,
        Flood::DrainOfNothing,
        Flood::RefusalThenDrain,
    ];

    /// What the table calls it.
    pub fn describe(self) -> &'static str {
        match self {
            Flood::AppRecordAlternating => "dosing app alternates two 1 KiB records (command 26)",
            Flood::StopWithNothingRunning => {
                "dosing app stops a basal that does not run (command 2, rate 0)"
            }
            Flood::DrainOfNothing => "telemetry app drains an empty queue (command 10)",
            Flood::RefusalThenDrain => {
                "telemetry app is refused a command, then drains (commands 2 and 10)"
            }
        }
    }
}

/// One flood's figures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FloodFigures {
    pub flood: Flood,
    /// Calls made (a refusal and its drain count as one).
    pub calls: u64,
    /// Records the store wrote, all kinds.
    pub records_written: u64,
    /// Flash bytes programmed (headers, padding and copies forward).
    pub flash_bytes: u64,
    /// Page erases, all regions.
    pub page_erases: u64,
    /// Erases of the most-worn page of the state ring.
    pub max_erases_per_page: u32,
    /// NVMC time of the whole flood, µs.
    pub flash_time_us: u64,
    /// Hours of such calls, back to back, until the most-worn page reaches
    /// its rating, × 10 (`None`: the flood wore nothing).
    pub hours_to_rating_x10: Option<u64>,
    /// Charge of one call's flash work, pAh.
    pub charge_pah_per_call: u64,
    /// Charge of the flash work of the whole flood to the rating, µAh
    /// (`None`: the flood wore nothing).
    pub charge_to_rating_uah: Option<u64>,
}

/// A pump on the boards' flash model with nothing running. None of the
/// floods needs a prescription: each command here is one the core accepts,
/// or refuses and audits, without one.
pub(crate) fn pump() -> InfusionCore<SimPlatform> {
    let mut platform = SimPlatform::default();
    platform.flash = Some(PumpFlash::new(1));
    let mut core = InfusionCore::new(board::board_config(&[]), platform);
    core.restore_records(&StoredRecords::BLANK, 0);
    core
}

fn call(core: &mut InfusionCore<SimPlatform>, flood: Flood, i: u64, now: u64, buf: &mut [u8]) {
    // Results are ignored on purpose: a flood repeats whatever the core says.
    match flood {
        Flood::AppRecordAlternating => {
            let record = [if i % 2 == 0 { 0xA5 } else { 0x5A }; APP_RECORD_MAX_LEN];
            let _ = core.save_app_record(DOSING_APP, &record, now);
        }
        Flood::StopWithNothingRunning => {
            let _ = core.set_basal(DOSING_APP, 0, now);
        }
        Flood::DrainOfNothing => {
            let _ = core.drain_events(TELEMETRY_APP, buf, now);
        }
        Flood::RefusalThenDrain => {
            let _ = core.set_basal(TELEMETRY_APP, 1, now);
            let _ = core.drain_events(TELEMETRY_APP, buf, now);
        }
    }
}

/// Runs one flood.
pub fn measure(flood: Flood) -> Result<FloodFigures> {
    let mut core = pump();
    let mut buf = vec![0u8; 16 * 1024];
    while core.pending_events() > 0 {
        let _ = core.drain_events(TELEMETRY_APP, &mut buf, 0);
    }
    let before = summary(&core)?;
    let mut calls = 0;
    // One call a millisecond of core time: the refusals' audit fold and
    // every timestamp move as they would.
    while calls < FLOOD_MAX_CALLS {
        call(&mut core, flood, calls, 1 + calls, &mut buf);
        calls += 1;
        if calls % 1_000 == 0 && summary(&core)?.max_erases_per_page >= FLOOD_ERASES {
            break;
        }
    }
    let after = summary(&core)?;
    let records_written =
        after.records_written.values().sum::<u64>() - before.records_written.values().sum::<u64>();
    let flash_bytes = after.flash_bytes_programmed - before.flash_bytes_programmed;
    let page_erases = after.page_erases - before.page_erases;
    let max_erases_per_page = after.max_erases_per_page;
    let flash_time_us =
        flash_bytes.div_ceil(4) * NVMC_WORD_WRITE_US + page_erases * NVMC_PAGE_ERASE_US;
    let to_rating = |whole_flood: u64, unit: u128| {
        scale_to_rating(
            whole_flood,
            after.endurance_cycles,
            max_erases_per_page,
            unit,
        )
    };
    let hours_to_rating_x10 = to_rating(flash_time_us * 10, 3_600_000_000);
    let p = energy_core::NRF52840_DK;
    let charge = flash_bytes * p.flash_byte_charge_pah + page_erases * p.flash_erase_charge_pah;
    let charge_to_rating_uah = to_rating(charge, 1_000_000);
    Ok(FloodFigures {
        charge_to_rating_uah,
        flood,
        calls,
        records_written,
        flash_bytes,
        page_erases,
        max_erases_per_page,
        flash_time_us,
        hours_to_rating_x10,
        charge_pah_per_call: charge / calls.max(1),
    })
}

/// What the whole flood cost, scaled to the calls that bring the most-worn
/// page to its rating, in units of `unit` (`None`: the flood wore nothing).
fn scale_to_rating(whole_flood: u64, endurance: u32, max_erases: u32, unit: u128) -> Option<u64> {
    (max_erases > 0).then(|| {
        let scaled =
            u128::from(whole_flood) * u128::from(endurance) / u128::from(max_erases) / unit;
        u64::try_from(scaled).unwrap_or(u64::MAX)
    })
}

/// The flash's figures, its wear projected over `elapsed_ms` (the floods
/// use none of the projection: they scale by erases).
pub(crate) fn flash_summary(
    core: &InfusionCore<SimPlatform>,
    elapsed_ms: u64,
) -> Result<crate::flashstore::StorageSummary> {
    core.platform()
        .flash
        .as_ref()
        .map(|f| f.summary(elapsed_ms))
        .ok_or_else(|| Error("the flash was lost".into()))
}

fn summary(core: &InfusionCore<SimPlatform>) -> Result<crate::flashstore::StorageSummary> {
    flash_summary(core, 1)
}

/// Every flood.
pub fn run() -> Result<Vec<FloodFigures>> {
    Flood::ALL.iter().map(|f| measure(*f)).collect()
}

fn hours(x10: Option<u64>) -> String {
    match x10 {
        None => "never (nothing worn)".into(),
        Some(h) => format!("{}.{} h", h / 10, h % 10),
    }
}

/// The table rows (after `pumpctl bench`'s own table).
pub fn table(floods: &[FloodFigures], legitimate_years: &str) -> String {
    let mut out = String::from(
        "\n| an app gone wrong, repeating one command (flash model, NVMC times) | per call | state ring to its 10 000-cycle rating | flash charge to the rating | baseline: the legitimate maximum rate |\n|---|---|---|---|---|\n",
    );
    for f in floods {
        out.push_str(&format!(
            "| {} | {} B programmed, {} pAh ({} calls, {} records) | {} of back-to-back calls | {} | {} |\n",
            f.flood.describe(),
            f.flash_bytes / f.calls.max(1),
            f.charge_pah_per_call,
            f.calls,
            f.records_written,
            hours(f.hours_to_rating_x10),
            f.charge_to_rating_uah
                .map_or("none".into(), |u| format!("{} mAh", u / 1_000)),
            legitimate_years,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_written_again_unchanged_wears_nothing() {
        // The core writes the dosing app's record only when it changes, so
        // the flood must alternate; the same record over and over costs no
        // flash at all.
        let mut core = pump();
        let record = [0x11u8; 1024];
        core.save_app_record(DOSING_APP, &record, 1).unwrap();
        let before = summary(&core).unwrap().flash_bytes_programmed;
        for t in 2..200 {
            core.save_app_record(DOSING_APP, &record, t).unwrap();
        }
        assert_eq!(summary(&core).unwrap().flash_bytes_programmed, before);
    }

    #[test]
    fn known_limit_an_alternating_app_record_wears_the_ring_out_within_a_day() {
        // docs/persistence.md §8, open: the core does not ration the
        // writes an app causes. When it does, this test must turn around.
        let f = measure(Flood::AppRecordAlternating).unwrap();
        assert!(f.max_erases_per_page >= FLOOD_ERASES);
        assert_eq!(
            f.flash_time_us,
            f.flash_bytes.div_ceil(4) * NVMC_WORD_WRITE_US + f.page_erases * NVMC_PAGE_ERASE_US
        );
        let hours_x10 = f.hours_to_rating_x10.unwrap();
        assert!(hours_x10 > 0 && hours_x10 < 240, "{hours_x10}");
    }
}
