//! What the simulated pump's behaviour costs its battery (`docs/energy.md`):
//! the `energy` section of `summary.json` and `pumpctl energy`.

use std::collections::BTreeMap;

use energy_core::{EnergyProfile, Usage, MS_PER_DAY};

/// The energy section of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EnergyReport {
    /// The board profile priced with.
    pub profile: &'static str,
    /// What the pump did.
    pub usage: Usage,
    /// Charge by consumer, µAh, largest first.
    pub by_consumer_uah: BTreeMap<String, u64>,
    /// The three largest consumers, largest first.
    pub largest: Vec<String>,
    /// Charge in all, µAh.
    pub total_uah: u64,
    /// Average current, nA.
    pub average_current_na: u64,
    /// A new battery's service life at this use (to end of service), years × 100.
    pub projected_life_years_x100: Option<u64>,
    /// Days from the ERI to end of service × 100.
    pub eri_to_eos_days_x100: Option<u64>,
    /// When the ERI would come for a pump implanted at the run's start.
    pub projected_eri_utc: Option<String>,
    /// When the pump would stop.
    pub projected_eos_utc: Option<String>,
}

/// Prices `usage` with `profile`, for a pump implanted at `start_utc_ms`.
pub fn report(profile: &EnergyProfile, usage: Usage, start_utc_ms: u64) -> EnergyReport {
    let breakdown = profile.charge(&usage);
    let ranked = breakdown.ranked();
    let life = profile.service_life_days_x100(&usage);
    let lead = profile.eri_to_eos_days_x100(&usage);
    let at = |days_x100: u64| {
        let ms = u128::from(days_x100) * u128::from(MS_PER_DAY) / 100;
        crate::units::fmt_utc(start_utc_ms.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX)))
    };
    EnergyReport {
        profile: profile.name,
        usage,
        by_consumer_uah: ranked
            .iter()
            .map(|(name, pah)| ((*name).to_string(), pah / 1_000_000))
            .collect(),
        largest: ranked
            .iter()
            .take(3)
            .map(|(n, _)| (*n).to_string())
            .collect(),
        total_uah: breakdown.total_pah() / 1_000_000,
        average_current_na: profile.average_current_na(&usage),
        projected_life_years_x100: life.map(|d| d * 100 / energy_core::DAYS_PER_YEAR_X100),
        eri_to_eos_days_x100: lead,
        projected_eri_utc: life.zip(lead).map(|(l, d)| at(l.saturating_sub(d))),
        projected_eos_utc: life.map(at),
    }
}

/// The energy section of a simulation priced with `profile`.
pub fn of_run(result: &crate::sim::SimResult, profile: &EnergyProfile) -> EnergyReport {
    report(
        profile,
        result.truth.usage(result.storage.as_ref()),
        crate::board::SIM_EPOCH_UTC_MS,
    )
}

/// `x100` as a decimal with two places.
pub fn fmt_x100(x100: Option<u64>) -> String {
    x100.map_or("–".into(), |v| format!("{}.{:02}", v / 100, v % 100))
}

/// One line of the simulation's text summary.
pub fn summary_line(e: &EnergyReport) -> String {
    format!(
        "battery ({}): {} µA on average, largest {}; a new battery lasts {} years at this use, ERI {} days before the end\n",
        e.profile,
        fmt_x100(Some(e.average_current_na / 10)),
        e.largest.join(", "),
        fmt_x100(e.projected_life_years_x100),
        fmt_x100(e.eri_to_eos_days_x100),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use energy_core::NRF52840_DK;

    #[test]
    fn the_report_ranks_consumers_and_dates_eri_before_eos() {
        let usage = Usage {
            elapsed_ms: 30 * MS_PER_DAY,
            motor_steps: 40_000,
            wakeups: 100_000,
            ..Usage::default()
        };
        let e = report(&NRF52840_DK, usage, crate::board::SIM_EPOCH_UTC_MS);
        // 40 000 steps × 111 nAh = 4 444 µAh beats 720 h × 5.2 µA = 3 744 µAh.
        assert_eq!(e.largest[0..2], ["motor", "sleep"]);
        assert_eq!(e.largest.len(), 3);
        assert_eq!(e.eri_to_eos_days_x100, Some(9_000));
        let (eri, eos) = (e.projected_eri_utc.unwrap(), e.projected_eos_utc.unwrap());
        assert!(eri < eos, "{eri} {eos}");
        assert!(
            e.by_consumer_uah
                .values()
                .sum::<u64>()
                .abs_diff(e.total_uah)
                <= 8
        );
    }
}
