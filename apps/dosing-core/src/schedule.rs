//! The basal schedule: time-of-day steps on the UTC wall clock.
//!
//! A schedule is a function of the wall-clock time of day only. The dosing
//! core never replays or counts edges: at every wake-up it asks which step
//! applies *now* and sets that rate if it is not already running. So a clock
//! that jumps forward over two edges sets the step it lands in once, and a
//! clock that jumps back re-applies the step it lands in — never a step
//! twice in a row and never a burst of the steps skipped over. Delivered
//! volume is the capsule's business; the schedule only says which rate holds.

use heapless::Vec;
use pump_protocol::prescription::{BasalStep, MAX_BASAL_STEPS};

use crate::units::{basal_rate_nl_per_h, MS_PER_DAY};

/// Minutes in a day.
pub const MINUTES_PER_DAY: u16 = 1440;

/// Milliseconds per minute.
pub const MS_PER_MINUTE: u64 = 60_000;

/// One step with its dose rate and the volume rate it converts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduledStep {
    /// Minute of the UTC day the step starts.
    pub start_minute_of_day: u16,
    /// Prescribed dose rate.
    pub rate_ug_per_day: u32,
    /// The dose rate at the schedule's concentration (see [`basal_rate_nl_per_h`]).
    pub rate_nl_per_h: u32,
}

/// Why a prescribed schedule cannot be run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// No steps.
    Empty,
    /// The first step does not start at minute 0.
    FirstStepNotAtMidnight,
    /// Steps are not strictly increasing, or one starts at or after minute 1440.
    StepsOutOfOrder,
    /// A step's rate does not convert (zero concentration or overflow).
    Conversion,
}

/// A validated schedule with its rates converted once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasalSchedule {
    steps: Vec<ScheduledStep, MAX_BASAL_STEPS>,
}

impl BasalSchedule {
    /// Validates the prescribed steps and converts each rate at
    /// `concentration_ug_per_ml`.
    pub fn new(steps: &[BasalStep], concentration_ug_per_ml: u32) -> Result<Self, ScheduleError> {
        let first = steps.first().ok_or(ScheduleError::Empty)?;
        if first.start_minute_of_day != 0 {
            return Err(ScheduleError::FirstStepNotAtMidnight);
        }
        let ordered = steps
            .windows(2)
            .all(|w| w[0].start_minute_of_day < w[1].start_minute_of_day);
        if !ordered
            || steps
                .iter()
                .any(|s| s.start_minute_of_day >= MINUTES_PER_DAY)
        {
            return Err(ScheduleError::StepsOutOfOrder);
        }
        let mut converted = Vec::new();
        for step in steps {
            let rate_nl_per_h = basal_rate_nl_per_h(step.rate_ug_per_day, concentration_ug_per_ml)
                .map_err(|_| ScheduleError::Conversion)?;
            converted
                .push(ScheduledStep {
                    start_minute_of_day: step.start_minute_of_day,
                    rate_ug_per_day: step.rate_ug_per_day,
                    rate_nl_per_h,
                })
                // `steps` came from a Vec of the same capacity.
                .map_err(|_| ScheduleError::StepsOutOfOrder)?;
        }
        Ok(Self { steps: converted })
    }

    /// The steps.
    pub fn steps(&self) -> &[ScheduledStep] {
        &self.steps
    }

    /// Index of the step that applies at `utc_ms`.
    pub fn step_index_at(&self, utc_ms: u64) -> usize {
        let minute = minute_of_day(utc_ms);
        self.steps
            .iter()
            .rposition(|s| s.start_minute_of_day <= minute)
            .unwrap_or(0)
    }

    /// The step that applies at `utc_ms`.
    pub fn step_at(&self, utc_ms: u64) -> ScheduledStep {
        let index = self.step_index_at(utc_ms);
        // The schedule is never empty (checked in `new`).
        self.steps.get(index).copied().unwrap_or(ScheduledStep {
            start_minute_of_day: 0,
            rate_ug_per_day: 0,
            rate_nl_per_h: 0,
        })
    }

    /// The volume rate that applies at `utc_ms`.
    pub fn rate_nl_per_h_at(&self, utc_ms: u64) -> u32 {
        self.step_at(utc_ms).rate_nl_per_h
    }

    /// The first instant after `utc_ms` at which the applicable step changes,
    /// or `None` for a single-step (continuous) schedule.
    pub fn next_edge_after(&self, utc_ms: u64) -> Option<u64> {
        if self.steps.len() < 2 {
            return None;
        }
        let day_start = utc_ms - utc_ms % MS_PER_DAY;
        let minute = minute_of_day(utc_ms);
        let next_today = self
            .steps
            .iter()
            .map(|s| s.start_minute_of_day)
            .find(|start| *start > minute);
        Some(match next_today {
            Some(start) => day_start.saturating_add(u64::from(start) * MS_PER_MINUTE),
            // The next edge is the first step's start: next midnight.
            None => day_start.saturating_add(MS_PER_DAY),
        })
    }

    /// Ideal volume of the schedule from `from_utc_ms` to `to_utc_ms`, in
    /// nL·ms/h (divide by 3 600 000 for nL): exact, for checking delivery.
    pub fn integral_nl_ms_per_h(&self, from_utc_ms: u64, to_utc_ms: u64) -> u128 {
        let mut total: u128 = 0;
        let mut t = from_utc_ms;
        while t < to_utc_ms {
            let end = self
                .next_edge_after(t)
                .map_or(to_utc_ms, |edge| edge.min(to_utc_ms));
            total += u128::from(self.rate_nl_per_h_at(t)) * u128::from(end - t);
            t = end;
        }
        total
    }
}

/// Minute of the UTC day.
pub fn minute_of_day(utc_ms: u64) -> u16 {
    // < 1440, so it fits.
    ((utc_ms % MS_PER_DAY) / MS_PER_MINUTE) as u16
}
