//! The delivery machine: basal and bolus runs, the timer that steps the
//! motor, checkpoints, and the record of every run that ends.
//!
//! # A late timer: missed steps are neither made at once nor made up
//!
//! The glue arms its alarm for [`next_wakeup`](InfusionCore::next_wakeup),
//! but the alarm may fire late: by a tick, after a long flash operation, or
//! hours late after a stalled kernel. When [`on_timer`](InfusionCore::on_timer)
//! finds a run's next step overdue, it makes **that one step now** and moves
//! the run's curve by the lateness ([`Run::catch_up_to`]): the run goes on at
//! its own rate from the late step, and the ledger counts the step at the
//! instant it was made (SR-ENV-010). The steps the curve passed while the
//! timer was late are not made in a burst, and not made up later:
//!
//! - **No burst.** Intrathecal drug goes straight into the CSF, a small
//!   volume with no first-pass buffer: the missed steps made at once are an
//!   unprescribed bolus (morphine, hydromorphone: respiratory depression;
//!   a concentrated bolus at the catheter tip). Nothing is ever released
//!   faster than the run's own rate, which the envelope (basal) or the
//!   bolus check (mean rate, hardware limit) allowed.
//! - **Skip, not spread, for basal.** Spreading the missed basal over the
//!   hours that follow would raise the rate above the one prescribed for
//!   those hours (the schedule's rates differ by time of day, and the
//!   envelope's maximum basal rate is not a rate to aim for), for a volume
//!   that is small for any lateness a working pump has and that, after a
//!   long stall, should be a clinician's decision, not the pump's. A basal
//!   interrupted by a late timer is like one interrupted by a reset or a
//!   suspend, which are not made up either; the `DeliveryRecord`s show the
//!   volume actually delivered over their duration, so the shortfall is
//!   visible. Baclofen withdrawal is the risk of skipping: it needs hours
//!   without drug, which is a failed pump, raised as such (watchdog, the
//!   records' volume), not hidden by a catch-up.
//! - **A bolus is delayed whole.** A bolus is a dose the clinician or the
//!   patient asked for and the envelope admitted whole; its remaining steps
//!   follow at its own rate from the late step, and each is still gated at
//!   its own instant on the 24 h limit and the reservoir (SR-ENV-005).
//!
//! A run is late by less than a millisecond at most wake-ups on the boards
//! (the alarm fires on a tick after the millisecond asked for), which costs
//! it a few milliseconds a day: well inside one step (SR-MOT-001 holds on
//! the moved curve).

use pump_protocol::{
    AlarmCode, DeliveryDenied, DeliveryKind, DeliveryOutcome, DeliveryRecord, ErrorCode,
    PatientBolusDenied, PatientBolusGranted, PatientBolusRequested,
};

use super::envelope::mean_rate_nl_per_h;
use super::infusion::InfusionCore;

/// Most steps one timer callback makes; more due steps get an immediate
/// wake-up, so a late timer can never turn into an unbounded burst of work.
pub const MAX_STEPS_PER_WAKEUP: u32 = 64;
use crate::command;
use crate::config::{AppId, Role};
use crate::events::Event;
use crate::ledger::{Channel, Run};
use crate::platform::{Notification, Platform};

/// Encoder pulses accepted after the last commanded step before the core
/// calls it uncommanded motion (SR-MOT-006): the step's own pulse and one
/// of slack.
pub const UNCOMMANDED_PULSES_ALLOWED: u32 = 2;

impl<P: Platform> InfusionCore<P> {
    pub(super) fn stop_all(&mut self, outcome: DeliveryOutcome, now: u64) {
        self.end_run(Channel::Basal, outcome, now);
        self.end_run(Channel::Bolus, outcome, now);
        self.platform.set_motor_enabled(false);
    }

    /// Ends the active run on a channel, reporting what it delivered since
    /// its last checkpoint and carrying its partial step into the next run.
    pub(super) fn end_run(&mut self, channel: Channel, outcome: DeliveryOutcome, now: u64) {
        let s = self.config.nl_per_step;
        let Some(run) = self.p.ledger.active_mut(channel) else {
            return;
        };
        run.active = false;
        let carry = run.carry_out(now, s);
        let run = *run;
        match channel {
            Channel::Basal => self.p.basal_carry_nl_ms_per_h = carry,
            Channel::Bolus => self.p.bolus_carry_nl_ms_per_h = carry,
        }
        self.p.ledger.prune(now, s);
        let volume_nl = run
            .steps_done
            .saturating_sub(run.steps_reported)
            .saturating_mul(s);
        let duration_ms = u32::try_from(now.saturating_sub(run.reported_at_ms)).unwrap_or(u32::MAX);
        let utc = self.utc_ms(now);
        self.emit(
            Event::DeliveryRecord(DeliveryRecord {
                time_ms: utc,
                delivery_kind: run.kind(),
                outcome,
                volume_nl,
                duration_ms,
            }),
            now,
        );
        self.platform.notify(Notification::DeliveryDone {
            kind: run.kind(),
            outcome,
            volume_nl,
        });
    }

    pub(super) fn deny_delivery(
        &mut self,
        kind: DeliveryKind,
        volume_nl: u32,
        rate_nl_per_h: u32,
        reason: ErrorCode,
        now: u64,
    ) -> ErrorCode {
        let utc = self.utc_ms(now);
        self.emit(
            Event::DeliveryDenied(DeliveryDenied {
                time_ms: utc,
                delivery_kind: kind,
                requested_volume_nl: volume_nl,
                requested_rate_nl_per_h: rate_nl_per_h,
                reason,
            }),
            now,
        );
        reason
    }

    /// Sets the basal rate (`0` stops basal). Refused whole, never clamped,
    /// if it breaks any limit (SR-ENV-001, SR-ENV-002).
    pub fn set_basal(
        &mut self,
        caller: AppId,
        rate_nl_per_h: u32,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::SET_BASAL, now)?;
        if rate_nl_per_h == 0 {
            self.end_run(Channel::Basal, DeliveryOutcome::Stopped, now);
            self.save();
            self.sync_outputs(now);
            return Ok(());
        }
        if let Err(reason) = self.check_basal(rate_nl_per_h, now) {
            return Err(self.deny_delivery(DeliveryKind::Basal, 0, rate_nl_per_h, reason, now));
        }
        let unchanged = self.p.ledger.active(Channel::Basal).is_some_and(|run| {
            run.kind() == DeliveryKind::Basal && run.nl_den == u64::from(rate_nl_per_h)
        });
        // Re-asking for the running rate changes nothing; a new run for it
        // would only use up ledger room.
        if !unchanged {
            self.start_basal(DeliveryKind::Basal, rate_nl_per_h, now);
        }
        Ok(())
    }

    pub(super) fn start_basal(&mut self, kind: DeliveryKind, rate_nl_per_h: u32, now: u64) {
        let s = self.config.nl_per_step;
        self.end_run(Channel::Basal, DeliveryOutcome::Stopped, now);
        let run = Run::basal(kind, now, rate_nl_per_h, self.p.basal_carry_nl_ms_per_h);
        if self.p.ledger.push(run, now, s).is_err() {
            // Only reachable from the silence fallback, which is not
            // pre-checked: without room the pump stays stopped (safe).
            return;
        }
        self.save();
        self.sync_outputs(now);
    }

    /// Starts a bolus of `volume_nl` over `duration_ms`. Refused whole if it
    /// breaks any limit (SR-ENV-003, SR-ENV-004, SR-ENV-006, SR-RES-001).
    pub fn start_bolus(
        &mut self,
        caller: AppId,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        let command = match kind {
            DeliveryKind::PatientBolus => command::PATIENT_BOLUS,
            DeliveryKind::Priming => command::PRIMING_BOLUS,
            DeliveryKind::Bridge => command::BRIDGE_BOLUS,
            _ => command::CLINICIAN_BOLUS,
        };
        self.authorize(caller, &[Role::Dosing], command, now)?;
        let patient = kind == DeliveryKind::PatientBolus;
        let utc = self.utc_ms(now);
        if patient {
            self.emit(
                Event::PatientBolusRequested(PatientBolusRequested { time_ms: utc }),
                now,
            );
        }
        let rate = mean_rate_nl_per_h(volume_nl, duration_ms);
        if let Err(reason) = self.check_bolus(kind, volume_nl, duration_ms, now) {
            if patient {
                let (lockout_remaining_ms, _) = self.patient_bolus_availability(now);
                self.emit(
                    Event::PatientBolusDenied(PatientBolusDenied {
                        time_ms: utc,
                        reason,
                        lockout_remaining_ms: if reason == ErrorCode::LockoutActive {
                            lockout_remaining_ms
                        } else {
                            0
                        },
                    }),
                    now,
                );
            }
            return Err(self.deny_delivery(kind, volume_nl, rate, reason, now));
        }
        let s = self.config.nl_per_step;
        let run = Run::bolus(
            kind,
            now,
            volume_nl,
            duration_ms,
            self.p.bolus_carry_nl_ms_per_h,
            s,
        );
        if self.p.ledger.push(run, now, s).is_err() {
            return Err(self.deny_delivery(kind, volume_nl, rate, ErrorCode::Busy, now));
        }
        if patient {
            let (_, left) = self.patient_bolus_availability(now);
            self.emit(
                Event::PatientBolusGranted(PatientBolusGranted {
                    time_ms: utc,
                    volume_nl,
                    duration_ms,
                    remaining_24h: u8::try_from(left).unwrap_or(u8::MAX),
                }),
                now,
            );
        }
        self.save();
        self.sync_outputs(now);
        // A bolus too small for one step finishes at once; its volume is
        // carried into the next bolus rather than lost.
        self.finish_completed_runs(now);
        Ok(())
    }

    /// Stops the running bolus, if any (stopping is always allowed to Dosing).
    pub fn stop_bolus(&mut self, caller: AppId, now_ms: u64) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::STOP_BOLUS, now)?;
        self.end_run(Channel::Bolus, DeliveryOutcome::Stopped, now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Logs a patient-bolus press that the dosing app refused under the
    /// therapy's own (stricter) rules, so the log shows every press and why
    /// it was refused (SR-EVT-003). Nothing else changes.
    pub fn report_patient_denial(
        &mut self,
        caller: AppId,
        reason: ErrorCode,
        lockout_remaining_ms: u32,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::REPORT_PATIENT_DENIAL, now)?;
        let utc = self.utc_ms(now);
        self.emit(
            Event::PatientBolusRequested(PatientBolusRequested { time_ms: utc }),
            now,
        );
        self.emit(
            Event::PatientBolusDenied(PatientBolusDenied {
                time_ms: utc,
                reason,
                lockout_remaining_ms,
            }),
            now,
        );
        Ok(())
    }

    /// The timer fired: make due steps, enforce the watchdog, re-annunciate
    /// silenced alarms, write basal checkpoints (SR-MOT-001, SR-WDG-002).
    pub fn on_timer(&mut self, now_ms: u64) {
        let now = self.clock(now_ms);
        self.draw_wakeup();
        self.check_battery(now);
        self.check_suspension(now);
        if self.watchdog.is_due(now) {
            self.expire_watchdog(now);
        }
        let mut steps = 0;
        while steps < MAX_STEPS_PER_WAKEUP {
            let Some(channel) = self.next_due_channel(now) else {
                break;
            };
            self.step(channel, now);
            steps += 1;
        }
        self.finish_completed_runs(now);
        self.write_checkpoints(now);
        if self.relay.expire(now) {
            self.platform.notify(Notification::RelayAnswered);
        }
        if !self.p.alarms.is_active(AlarmCode::RefillDue)
            && self
                .refill_by_ms(now)
                .is_some_and(|t| t.saturating_sub(self.config.refill_due_warning_ms) <= now)
        {
            self.raise(AlarmCode::RefillDue, now);
            self.save();
        }
        self.sync_outputs(now);
    }

    pub(super) fn next_due_channel(&self, now: u64) -> Option<Channel> {
        let s = self.config.nl_per_step;
        self.p
            .ledger
            .runs()
            .iter()
            .filter(|r| r.active)
            .filter_map(|r| {
                r.next_step_time(s)
                    .filter(|t| *t <= now)
                    .map(|t| (t, r.channel))
            })
            .min_by_key(|(t, _)| *t)
            .map(|(_, channel)| channel)
    }

    /// One motor step, gated on every limit at the instant it happens
    /// (SR-ENV-005): the step is accounted and saved before the motor moves.
    pub(super) fn step(&mut self, channel: Channel, now: u64) {
        let s = self.config.nl_per_step;
        let kind = self
            .p
            .ledger
            .active(channel)
            .map_or(DeliveryKind::Basal, Run::kind);
        // A step is checked again at its own instant, whatever held when its
        // run started; anything that forbids all delivery is a fault here.
        let gate = self.check_step(now).map_err(|e| match e {
            ErrorCode::NoPrescription | ErrorCode::Suspended => ErrorCode::FaultActive,
            e => e,
        });
        if let Err(reason) = gate {
            self.end_run(channel, DeliveryOutcome::Aborted, now);
            self.deny_delivery(kind, 0, 0, reason, now);
            self.save();
            return;
        }
        if let Some(run) = self.p.ledger.active_mut(channel) {
            // A late step is made now and counted now; its run goes on at
            // its own rate from here (module docs, SR-ENV-010).
            run.catch_up_to(now, s);
            run.steps_done = run.steps_done.saturating_add(1);
        }
        self.p.reservoir_nl -= s;
        self.account_step();
        self.platform.step_motor();
        let alarms_before = P::KEEPS_RECORDS_APART.then(|| self.p.alarms.clone());
        self.steps_since_encoder = self.steps_since_encoder.saturating_add(1);
        self.pulses_since_step = 0;
        let limit = self.config.max_steps_without_encoder;
        if limit > 0 && self.steps_since_encoder > limit {
            self.raise(AlarmCode::MotorStall, now);
        }
        self.update_reservoir_alarms(now);
        // Records kept apart are not rewritten per step, so an alarm a step
        // raised or cleared is written now; a whole image is written at the
        // next step anyway.
        if alarms_before.is_some_and(|before| before != self.p.alarms) {
            self.save();
        }
    }

    pub(super) fn finish_completed_runs(&mut self, now: u64) {
        let done = self
            .p
            .ledger
            .active(Channel::Bolus)
            .is_some_and(|r| r.steps_planned.is_some_and(|p| r.steps_done >= p));
        if done {
            self.end_run(Channel::Bolus, DeliveryOutcome::Completed, now);
            self.save();
            self.sync_outputs(now);
        }
    }

    pub(super) fn write_checkpoints(&mut self, now: u64) {
        let s = self.config.nl_per_step;
        let interval = self.config.basal_record_interval_ms;
        let Some(run) = self.p.ledger.active_mut(Channel::Basal) else {
            return;
        };
        if run.reported_at_ms.saturating_add(interval) > now {
            return;
        }
        let volume_nl = run
            .steps_done
            .saturating_sub(run.steps_reported)
            .saturating_mul(s);
        let duration_ms = u32::try_from(now - run.reported_at_ms).unwrap_or(u32::MAX);
        let kind = run.kind();
        run.steps_reported = run.steps_done;
        run.reported_at_ms = now;
        let utc = self.utc_ms(now);
        self.emit(
            Event::DeliveryRecord(DeliveryRecord {
                time_ms: utc,
                delivery_kind: kind,
                outcome: DeliveryOutcome::Checkpoint,
                volume_nl,
                duration_ms,
            }),
            now,
        );
        self.save();
    }

    /// An encoder pulse confirms the motor moved.
    pub fn on_encoder_pulse(&mut self, now_ms: u64) {
        self.steps_since_encoder = 0;
        // SR-MOT-006: the encoder pulses once a step; more pulses than
        // steps (one of slack for a pulse that straddles a step) is the
        // mechanism moving on its own: free flow or a runaway driver.
        self.pulses_since_step = self.pulses_since_step.saturating_add(1);
        let supervised = self.config.max_steps_without_encoder > 0;
        if supervised
            && self.pulses_since_step > UNCOMMANDED_PULSES_ALLOWED
            && !self.p.alarms.is_active(AlarmCode::UncommandedMotion)
        {
            let now = self.clock(now_ms);
            self.stop_all(DeliveryOutcome::Aborted, now);
            self.raise(AlarmCode::UncommandedMotion, now);
            self.emit_state(now);
            self.save();
            self.sync_outputs(now);
        }
    }
}
