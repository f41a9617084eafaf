//! The delivery ledger: every step the motor has made in the last 24 h, held
//! exactly as a bounded list of runs.
//!
//! A run delivers steps on a fixed ideal curve. Step `k` (1-based) of a run
//! happens at
//!
//! ```text
//! start_ms + ceil((k * nl_per_step * H - carry) * ms_num / (nl_den * H))
//! ```
//!
//! where `H` = 3 600 000 ms per hour, `ms_num / nl_den` is the time per
//! nanolitre (basal: `H` ms per `rate_nl_per_h` nL; bolus: `duration_ms` per
//! `volume_nl` nL) and `carry` is progress toward a step left over from the
//! previous run on the same channel, in nL·ms/h (1 nL = `H` nL·ms/h). In
//! those units a basal's progress, `elapsed_ms * rate_nl_per_h`, is exact, so
//! rate changes lose nothing however often they happen. Because step times come from one formula anchored at the run's
//! start, delivered steps stay within one step of the ideal curve at every
//! instant and never drift, and the number of steps of a run at or before any
//! time is computed exactly in integer arithmetic. That is how the rolling
//! 24 h total is tracked exactly, never estimated (SR-ENV-005).
//!
//! **Late steps.** The anchor is `start_ms + late_ms`: `late_ms` is how much
//! later than its curve the run's steps are made. The delivery machine
//! (`pump/delivery.rs`, whose module doc says why) makes a late step at the
//! instant it is called and adds the lateness to `late_ms`, so the step is
//! on the run's curve again at the time it was actually made and the steps
//! that follow keep the run's own rate from there. Every step the ledger
//! holds is therefore counted at a time that is never before the time it
//! was made and never after the latest time the core has seen: exactly at
//! it while the timer is on time; a step made before a later lateness is
//! counted as made that much later, which keeps it in the 24 h window
//! longer (the safe side), by at most the lateness accrued since it was
//! made. Two numbers per run, whatever the timer does (SR-ENV-010).

use heapless::Vec;
use pump_protocol::DeliveryKind;
use serde::{Deserialize, Serialize};

/// The rolling window of the daily limit.
pub const WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// Milliseconds per hour, the time unit of basal rates.
pub const MS_PER_HOUR: u64 = 60 * 60 * 1000;

/// Most runs the ledger holds. A run is added per accepted delivery request;
/// runs whose last step left the window are pruned.
pub const MAX_RUNS: usize = 64;

/// Most patient boluses a prescription may allow per 24 h; every one is a run.
pub const MAX_PATIENT_BOLUSES_PER_24H: usize = 48;

/// Which motor channel a run drives. One basal and one bolus run may be
/// active at once; their steps interleave on the one motor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    /// Continuous basal (including the silence fallback).
    Basal,
    /// A bolus of any kind.
    Bolus,
}

/// One delivery run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Which channel.
    pub channel: Channel,
    /// What for (wire code of [`DeliveryKind`]).
    pub kind_code: u16,
    /// When the run started (core time).
    pub start_ms: u64,
    /// Time numerator of the curve (see module docs).
    pub ms_num: u64,
    /// Volume denominator of the curve (see module docs).
    pub nl_den: u64,
    /// Progress toward the first step carried in from the previous run, in
    /// nL·ms/h.
    pub carry_nl_ms_per_h: u64,
    /// Steps the run will make in total (`None`: until stopped).
    pub steps_planned: Option<u32>,
    /// Steps made so far.
    pub steps_done: u32,
    /// Still delivering.
    pub active: bool,
    /// Steps already reported in a `DeliveryRecord` checkpoint.
    pub steps_reported: u32,
    /// When the last checkpoint was reported (the start if none).
    pub reported_at_ms: u64,
    /// How much later than `start_ms`'s curve the run's steps are made: the
    /// lateness of the timer, accrued (see module docs, SR-ENV-010).
    pub late_ms: u64,
}

impl Run {
    /// A basal run at `rate_nl_per_h` (must be > 0).
    pub fn basal(
        kind: DeliveryKind,
        start_ms: u64,
        rate_nl_per_h: u32,
        carry_nl_ms_per_h: u64,
    ) -> Self {
        Self {
            channel: Channel::Basal,
            kind_code: kind.code(),
            start_ms,
            ms_num: MS_PER_HOUR,
            nl_den: u64::from(rate_nl_per_h),
            carry_nl_ms_per_h,
            steps_planned: None,
            steps_done: 0,
            active: true,
            steps_reported: 0,
            reported_at_ms: start_ms,
            late_ms: 0,
        }
    }

    /// `steps` a reset could not confirm, counted as made at `at_ms`: a
    /// finished run that stays in the 24 h window as long as any step made
    /// before the reset could. Its kind is `Basal`, so it is never mistaken
    /// for a patient bolus.
    pub fn unconfirmed(at_ms: u64, steps: u32, nl_per_step: u32) -> Self {
        // The whole volume is carried in and the curve has no slope, so every
        // step is due at `at_ms` itself, also at 0, where a curve started
        // 1 ms early would have to begin before the clock's origin and
        // would leave the steps out of the window at the restore's own
        // instant (found by the oracle, 2026-12-07). The one caller passes
        // at most a u32 of nanolitres (`count_unconfirmed` caps it), so the
        // carry stays below 2^54 and never saturates into an undercount.
        let volume_nl = u64::from(steps) * u64::from(nl_per_step);
        Self {
            channel: Channel::Basal,
            kind_code: DeliveryKind::Basal.code(),
            start_ms: at_ms,
            ms_num: 1,
            nl_den: 0,
            carry_nl_ms_per_h: volume_nl.saturating_mul(MS_PER_HOUR),
            steps_planned: Some(steps),
            steps_done: steps,
            active: false,
            steps_reported: steps,
            reported_at_ms: at_ms,
            late_ms: 0,
        }
    }

    /// A bolus run of `volume_nl` over `duration_ms` (both must be > 0).
    pub fn bolus(
        kind: DeliveryKind,
        start_ms: u64,
        volume_nl: u32,
        duration_ms: u32,
        carry_nl_ms_per_h: u64,
        nl_per_step: u32,
    ) -> Self {
        let total = u128::from(volume_nl) * u128::from(MS_PER_HOUR) + u128::from(carry_nl_ms_per_h);
        let steps = total / step_size(nl_per_step);
        Self {
            channel: Channel::Bolus,
            kind_code: kind.code(),
            start_ms,
            ms_num: u64::from(duration_ms),
            nl_den: u64::from(volume_nl),
            carry_nl_ms_per_h,
            steps_planned: Some(u32::try_from(steps).unwrap_or(u32::MAX)),
            steps_done: 0,
            active: true,
            steps_reported: 0,
            reported_at_ms: start_ms,
            late_ms: 0,
        }
    }

    /// What the run delivers.
    pub fn kind(&self) -> DeliveryKind {
        DeliveryKind::from_code(self.kind_code)
    }

    /// Where the curve starts: the run's start, moved by its lateness.
    pub fn anchor_ms(&self) -> u64 {
        self.start_ms.saturating_add(self.late_ms)
    }

    /// Ideal progress at `at_ms` in nL·ms/h (floored), including the carry.
    pub fn progress(&self, at_ms: u64) -> u128 {
        let elapsed = u128::from(at_ms.saturating_sub(self.anchor_ms()));
        elapsed * u128::from(self.nl_den) * u128::from(MS_PER_HOUR) / u128::from(self.ms_num.max(1))
            + u128::from(self.carry_nl_ms_per_h)
    }

    /// Steps the curve has reached by `at_ms`, capped at the plan.
    pub fn steps_due(&self, at_ms: u64, nl_per_step: u32) -> u32 {
        if at_ms < self.anchor_ms() {
            return 0;
        }
        let due = u32::try_from(self.progress(at_ms) / step_size(nl_per_step)).unwrap_or(u32::MAX);
        match self.steps_planned {
            Some(planned) => due.min(planned),
            None => due,
        }
    }

    /// Steps actually made at or before `at_ms`.
    pub fn steps_made_by(&self, at_ms: u64, nl_per_step: u32) -> u32 {
        self.steps_due(at_ms, nl_per_step).min(self.steps_done)
    }

    /// When step `k` (1-based) is due, or `None` if it would not fit in u64.
    pub fn step_time(&self, k: u32, nl_per_step: u32) -> Option<u64> {
        let needed = (u128::from(k) * step_size(nl_per_step))
            .saturating_sub(u128::from(self.carry_nl_ms_per_h));
        let den = u128::from(self.nl_den.max(1)) * u128::from(MS_PER_HOUR);
        let offset = (needed * u128::from(self.ms_num)).div_ceil(den);
        self.anchor_ms().checked_add(u64::try_from(offset).ok()?)
    }

    /// The next step is made at `now_ms`: if that is later than its curve
    /// says, the curve moves by the difference, so the step is counted when
    /// it is made and the run's rate holds from it (SR-ENV-010).
    pub fn catch_up_to(&mut self, now_ms: u64, nl_per_step: u32) {
        if let Some(due) = self.next_step_time(nl_per_step) {
            self.late_ms = self.late_ms.saturating_add(now_ms.saturating_sub(due));
        }
    }

    /// When the next step is due, if the run still has one.
    pub fn next_step_time(&self, nl_per_step: u32) -> Option<u64> {
        if !self.active || self.steps_planned.is_some_and(|p| self.steps_done >= p) {
            return None;
        }
        self.step_time(self.steps_done.checked_add(1)?, nl_per_step)
    }

    /// When the last step made happened (the start if none).
    pub fn last_step_time(&self, nl_per_step: u32) -> u64 {
        if self.steps_done == 0 {
            return self.anchor_ms();
        }
        self.step_time(self.steps_done, nl_per_step)
            .unwrap_or(u64::MAX)
    }

    /// Progress toward the next step left at `at_ms`, to carry into the
    /// channel's next run, in nL·ms/h. Always below one step.
    pub fn carry_out(&self, at_ms: u64, nl_per_step: u32) -> u64 {
        let made = u128::from(self.steps_done) * step_size(nl_per_step);
        let reached = match self.steps_planned {
            // A finished bolus hands on exactly what its last step left.
            Some(planned) if self.steps_done >= planned => {
                u128::from(self.nl_den) * u128::from(MS_PER_HOUR)
                    + u128::from(self.carry_nl_ms_per_h)
            }
            _ => self.progress(at_ms),
        };
        let left = reached.saturating_sub(made).min(step_size(nl_per_step) - 1);
        u64::try_from(left).unwrap_or(0)
    }
}

/// One motor step in nL·ms/h.
fn step_size(nl_per_step: u32) -> u128 {
    u128::from(nl_per_step.max(1)) * u128::from(MS_PER_HOUR)
}

/// Why the ledger could not take a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerFull;

/// Every run with a step in the last 24 h (and every active run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    runs: Vec<Run, MAX_RUNS>,
}

impl Ledger {
    /// An empty ledger.
    pub const fn new() -> Self {
        Self { runs: Vec::new() }
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// The active run on a channel, if any.
    pub fn active(&self, channel: Channel) -> Option<&Run> {
        self.runs.iter().find(|r| r.active && r.channel == channel)
    }

    /// The active run on a channel, mutably.
    pub fn active_mut(&mut self, channel: Channel) -> Option<&mut Run> {
        self.runs
            .iter_mut()
            .find(|r| r.active && r.channel == channel)
    }

    /// Adds a run after pruning runs that left the window.
    pub fn push(&mut self, run: Run, now_ms: u64, nl_per_step: u32) -> Result<(), LedgerFull> {
        self.prune(now_ms, nl_per_step);
        self.runs.push(run).map_err(|_| LedgerFull)
    }

    /// Whether a run could be added at `now_ms`.
    pub fn has_room(&self, now_ms: u64, nl_per_step: u32) -> bool {
        self.runs.len() < MAX_RUNS
            || self
                .runs
                .iter()
                .any(|r| Self::expired(r, now_ms, nl_per_step))
    }

    /// An ended run no longer needed: all its steps left the window, or it
    /// made none and is not a bolus. A patient or clinician bolus counts for
    /// its lockout or interval and its daily count even when it made no step:
    /// one ended by a reset before its first step must not free the next
    /// (SR-ENV-004, SR-AUTH-006).
    fn expired(run: &Run, now_ms: u64, nl_per_step: u32) -> bool {
        let left_window = run.last_step_time(nl_per_step).saturating_add(WINDOW_MS) <= now_ms;
        let counted = matches!(
            run.kind(),
            DeliveryKind::PatientBolus | DeliveryKind::ClinicianBolus
        );
        let empty = run.steps_done == 0 && !counted;
        !run.active && (left_window || empty)
    }

    /// Drops ended runs that no longer count (see `expired`).
    pub fn prune(&mut self, now_ms: u64, nl_per_step: u32) {
        self.runs.retain(|r| !Self::expired(r, now_ms, nl_per_step));
    }

    /// Steps made in the window `(now_ms - 24 h, now_ms]`, exactly.
    pub fn steps_in_window(&self, now_ms: u64, nl_per_step: u32) -> u64 {
        let from = now_ms.checked_sub(WINDOW_MS);
        self.runs
            .iter()
            .map(|r| {
                let to = r.steps_made_by(now_ms, nl_per_step);
                let before = from.map_or(0, |from| r.steps_made_by(from, nl_per_step));
                u64::from(to.saturating_sub(before))
            })
            .sum()
    }

    /// Volume delivered in the window ending at `now_ms`, exactly.
    pub fn volume_in_window_nl(&self, now_ms: u64, nl_per_step: u32) -> u64 {
        self.steps_in_window(now_ms, nl_per_step)
            .saturating_mul(u64::from(nl_per_step))
    }

    /// Patient boluses started in the window, and the start of the latest.
    pub fn patient_boluses_in_window(&self, now_ms: u64) -> (u32, Option<u64>) {
        self.boluses_in_window(DeliveryKind::PatientBolus, now_ms)
    }

    /// Runs of `kind` started in the 24 h window ending at `now_ms`, and the
    /// start of the latest one the ledger holds.
    pub fn boluses_in_window(&self, kind: DeliveryKind, now_ms: u64) -> (u32, Option<u64>) {
        let from = now_ms.checked_sub(WINDOW_MS);
        let mut count = 0;
        let mut latest = None;
        for run in self.runs.iter().filter(|r| r.kind() == kind) {
            if from.is_none_or(|from| run.start_ms > from) {
                count += 1;
            }
            latest = latest.max(Some(run.start_ms));
        }
        (count, latest)
    }
}
