//! The dosing app's own record refresh on the capsule's state ring: the
//! legitimate load that a ration of app-caused writes (`docs/persistence.md`
//! §8) must leave room for, measured before any ration is chosen.
//!
//! While the app holds patient-bolus grants it saves its record at least
//! every [`RECORD_REFRESH_MS`], so that a reset loses at most that much of
//! its clock; the record changes every time (it carries the time it was
//! saved), so the capsule writes it every time. A grant is held for 24 h,
//! so a patient who presses once a day holds grants all day, every day.
//!
//! Each row saves one realistic record, re-encoded each refresh with the
//! time and the grants of that moment, for [`REFRESH_DAYS`] simulated days
//! on the boards' flash model (the state ring alone: no therapy runs, and
//! only the periodic refreshes, not the saves when a grant is given or
//! leaves the 24 h window), and projects the life of the most-worn page
//! from them. The baseline in the same run is the same record at the first
//! design's refresh, every minute. `docs/persistence.md` §8 has the whole
//! pump's figures from the simulator.
//!
//! Trust: nobody causes this; it is the app working as designed.

use dosing_core::{
    encode_record, CatheterContents, Drug, Flush, FlushKind, SavedState, MAX_PATIENT_GRANTS,
    RECORD_REFRESH_MS, SAVED_RECORD_MAX_LEN,
};
use pump_protocol::prescription::{BasalStep, MAX_BASAL_STEPS, MAX_DRUG_NAME_LEN};

use crate::bench_flood::{flash_summary, pump};
use crate::board::DOSING_APP;
use crate::error::{Error, Result};
use crate::units::MS_PER_DAY;

/// Simulated days of refreshes per row.
pub const REFRESH_DAYS: u64 = 30;

/// The app's clock when the rows start: five years after its last start
/// (a pump that never reset), so grant times take the varint length they
/// have in the field.
const CLOCK_START_MS: u64 = 5 * 365 * MS_PER_DAY;

/// The patients measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RefreshCase {
    /// One drug at one rate, three presses a day.
    ThreePressesOneRate,
    /// A drug under a six-step day schedule, six presses a day.
    SixPressesSixSteps,
    /// The largest record the app can legitimately write: the longest drug
    /// name, a 24-step schedule, a bridge flush running and 48 grants (the
    /// capsule's most patient boluses in 24 h).
    Largest,
}

impl RefreshCase {
    /// All of them, in table order.
    pub const ALL: [RefreshCase; 3] = [
        RefreshCase::ThreePressesOneRate,
        RefreshCase::SixPressesSixSteps,
        RefreshCase::Largest,
    ];

    /// What the table calls it.
    pub fn describe(self) -> &'static str {
        match self {
            RefreshCase::ThreePressesOneRate => "one rate, 3 presses a day",
            RefreshCase::SixPressesSixSteps => "a 6-step day schedule, 6 presses a day",
            RefreshCase::Largest => {
                "the largest: 16-letter drug name, 24-step schedule, a flush running, 48 grants"
            }
        }
    }

    fn presses_per_day(self) -> u64 {
        match self {
            RefreshCase::ThreePressesOneRate => 3,
            RefreshCase::SixPressesSixSteps => 6,
            RefreshCase::Largest => MAX_PATIENT_GRANTS as u64,
        }
    }

    /// The app's state at `clock_ms`: grants at even intervals over the
    /// last 24 h.
    fn state(self, clock_ms: u64) -> SavedState {
        let (name_len, steps, flush) = match self {
            RefreshCase::ThreePressesOneRate => (8, 1, None),
            RefreshCase::SixPressesSixSteps => (8, 6, None),
            RefreshCase::Largest => (
                MAX_DRUG_NAME_LEN,
                MAX_BASAL_STEPS,
                Some(Flush {
                    kind: FlushKind::Bridge,
                    remaining_nl: 150_000,
                }),
            ),
        };
        // Every length below is within its bound (MAX_DRUG_NAME_LEN,
        // MAX_BASAL_STEPS, MAX_PATIENT_GRANTS), so no push can fail.
        let mut name = heapless::String::<MAX_DRUG_NAME_LEN>::new();
        for _ in 0..name_len {
            name.push('b').expect("within MAX_DRUG_NAME_LEN");
        }
        let mut basal_steps = heapless::Vec::<BasalStep, MAX_BASAL_STEPS>::new();
        for k in 0..steps {
            basal_steps
                .push(BasalStep {
                    start_minute_of_day: u16::try_from(k * 1440 / steps).unwrap_or(0),
                    rate_ug_per_day: 400 + 25 * u32::try_from(k).unwrap_or(0),
                })
                .expect("within MAX_BASAL_STEPS");
        }
        let mut state = SavedState::new(CatheterContents::Drug {
            drug: Drug {
                name,
                concentration_ug_per_ml: 2_000,
            },
            basal_steps,
        });
        state.flush = flush;
        let n = self.presses_per_day();
        let every_ms = MS_PER_DAY / n;
        // The newest grant is the last whole interval before now.
        let newest = clock_ms - clock_ms % every_ms;
        for k in (0..n).rev() {
            state
                .patient_grants_ms
                .push(newest - k * every_ms)
                .expect("within MAX_PATIENT_GRANTS");
        }
        state
    }
}

/// The refresh of the first design, the baseline: every minute.
pub const FIRST_DESIGN_REFRESH_MS: u64 = 60_000;

/// One row's figures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RefreshFigures {
    pub case: RefreshCase,
    /// How often the record was refreshed, ms.
    pub refresh_ms: u64,
    /// The record's length (its largest over the run), bytes.
    pub record_bytes: usize,
    /// Records the capsule wrote.
    pub records_written: u64,
    /// Flash bytes programmed per hour (headers, padding and copies forward).
    pub flash_bytes_per_hour: u64,
    /// Erases of the most-worn page of the state ring.
    pub max_erases_per_page: u32,
    /// Projected life of the most-worn page, years × 100.
    pub years_to_rating_x100: Option<u64>,
}

/// Runs one row: the record saved every `refresh_ms`, as the app does when
/// it wakes at least that often (a check-in timeout of 2 min wakes it every
/// minute).
pub fn measure(case: RefreshCase, refresh_ms: u64) -> Result<RefreshFigures> {
    let mut core = pump();
    let mut buf = [0u8; SAVED_RECORD_MAX_LEN];
    let mut record_bytes = 0;
    let end_ms = REFRESH_DAYS * MS_PER_DAY;
    let mut now = 0;
    while now < end_ms {
        let clock_ms = CLOCK_START_MS + now;
        let len = encode_record(&case.state(clock_ms), clock_ms, &mut buf)
            .map_err(|e| Error(format!("{case:?}: the record did not encode: {e:?}")))?;
        record_bytes = record_bytes.max(len);
        core.save_app_record(DOSING_APP, &buf[..len], now)
            .map_err(|e| Error(format!("{case:?}: the capsule refused the record: {e:?}")))?;
        now += refresh_ms.max(1);
    }
    let summary = flash_summary(&core, end_ms)?;
    Ok(RefreshFigures {
        case,
        refresh_ms,
        record_bytes,
        records_written: summary.records_written.values().sum(),
        flash_bytes_per_hour: summary.flash_bytes_programmed * 3_600_000 / end_ms,
        max_erases_per_page: summary.max_erases_per_page,
        years_to_rating_x100: summary.projected_years_to_wear_out_x100,
    })
}

/// Every row: each case at the refresh of the first design (the baseline)
/// and at [`RECORD_REFRESH_MS`].
pub fn run() -> Result<Vec<RefreshFigures>> {
    let mut rows = Vec::new();
    for case in RefreshCase::ALL {
        for refresh_ms in [FIRST_DESIGN_REFRESH_MS, RECORD_REFRESH_MS] {
            rows.push(measure(case, refresh_ms)?);
        }
    }
    Ok(rows)
}

/// The table rows (after the floods').
pub fn table(rows: &[RefreshFigures]) -> String {
    let mut out = String::from(
        "\n| the dosing app's record refreshed while it holds grants (flash model, the refreshes alone) | record | refreshed every | programmed | state ring to its 10 000-cycle rating |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} B | {} min{} | {} B/h | {} |\n",
            r.case.describe(),
            r.record_bytes,
            r.refresh_ms / 60_000,
            if r.refresh_ms == FIRST_DESIGN_REFRESH_MS {
                " (first design, baseline)"
            } else {
                ""
            },
            r.flash_bytes_per_hour,
            crate::flashstore::years(r.years_to_rating_x100),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_records_grow_with_the_patients_state_within_the_apps_limit() {
        let sizes: Vec<usize> = RefreshCase::ALL
            .iter()
            .map(|c| {
                let mut buf = [0u8; SAVED_RECORD_MAX_LEN];
                encode_record(&c.state(CLOCK_START_MS), CLOCK_START_MS, &mut buf).unwrap()
            })
            .collect();
        assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
        assert!(
            sizes.iter().all(|s| *s <= SAVED_RECORD_MAX_LEN),
            "{sizes:?}"
        );
        // Grants at five years take 6 varint bytes each; docs/persistence.md
        // quotes the largest's length.
        assert!(sizes[2] > MAX_PATIENT_GRANTS * 6, "{sizes:?}");
        assert_eq!(sizes[2], 415);
    }

    #[test]
    fn the_largest_records_refresh_alone_outlasts_an_implant_at_the_refresh_interval() {
        // A design check of RECORD_REFRESH_MS against the flash model (the
        // app's own cadence is tested in dosing-core, SR-DOS-015): the
        // first design's one-minute refresh wore the ring out within an
        // implant's life on its own; the interval now leaves it ≥ 20 years.
        let before = measure(RefreshCase::Largest, FIRST_DESIGN_REFRESH_MS).unwrap();
        let now = measure(RefreshCase::Largest, RECORD_REFRESH_MS).unwrap();
        let years_x100 = |f: &RefreshFigures| f.years_to_rating_x100.unwrap();
        assert!(years_x100(&before) < 10 * 100, "{before:?}");
        assert!(years_x100(&now) >= 20 * 100, "{now:?}");
        // Wear follows the writes: 15 times fewer, about 15 times longer.
        let ratio_x10 = years_x100(&now) * 10 / years_x100(&before);
        assert!((130..=170).contains(&ratio_x10), "{ratio_x10}");
    }
}
