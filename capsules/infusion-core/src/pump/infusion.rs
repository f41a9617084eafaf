//! The infusion core's state and its queries; every rule that changes the
//! state is in a sibling module (see [`super`]).

use pump_protocol::prescription::{Pairing, Prescription};
use pump_protocol::{AlarmCode, ErrorCode, PumpState, StatusSnapshot};

use crate::alarms::{AlarmSet, AlarmSignal};
use crate::command;
use crate::config::{AppId, BoardConfig, Role};
use crate::events::{Event, EventQueue};
use crate::ledger::{Channel, Ledger};
use crate::platform::{Notification, Platform};
use crate::relay::Relay;

use super::state::{Persistent, SAVED_FORMAT, SAVED_STATE_LEN};
use super::watchdog_state::Watchdog;

/// The infusion core: owns the motor and the alarm output through `P`.
pub struct InfusionCore<P: Platform> {
    pub(super) config: BoardConfig,
    pub(super) platform: P,
    pub(super) p: Persistent,
    pub(super) rx: Option<Prescription>,
    /// The installed prescription's pairing: who may sign patient bolus
    /// requests, and the clinician-bolus limits. Set with `rx`.
    pub(super) pairing: Pairing,
    /// A clinician bolus the clinic signed, waiting for the dosing app to
    /// start it (see [`super::auth`]).
    pub(super) clinician_grant: Option<super::state::ClinicianGrant>,
    /// One app's refusals counted since its `AccessDenied` (see [`super::authz`]).
    pub(super) denied_fold: Option<super::state::DeniedFold>,
    /// What the pump's work costs its battery, if the board counts it.
    pub(super) energy: Option<energy_core::EnergyProfile>,
    pub(super) events: EventQueue,
    pub(super) watchdog: Watchdog,
    pub(super) steps_since_encoder: u32,
    /// Encoder pulses since the last commanded step (SR-MOT-006).
    pub(super) pulses_since_step: u32,
    /// Since when therapy has been suspended, as this boot knows it (a
    /// restore counts from itself: SR-ENV-013).
    pub(super) suspended_since_ms: Option<u64>,
    /// Recent stalls and occlusions (SR-ALM-006).
    pub(super) mechanism_faults: super::state::FaultHistory,
    /// The fault inputs now asserted, a bit each (stall, occlusion): one
    /// released input must not clear another's (SR-ALM-004).
    pub(super) fault_inputs: u8,
    /// Self-tests (bits of `SelfTest::bit`) that failed since boot and have
    /// not passed since: the `SelfTestFailed` alarm clears only when none.
    pub(super) self_tests_failed: u8,
    /// The hourly self-tests' schedule and state (SR-STS-005).
    pub(super) periodic: crate::selftest::periodic::PeriodicSelfTests,
    pub(super) signal: AlarmSignal,
    pub(super) relay: Relay,
    /// Steps the motor has been asked for since the device was provisioned
    /// (in the therapy record; see [`super::persist`]).
    pub(super) steps_accounted: u64,
    /// Steps covered by the last [`RecordKind::Reservation`](crate::RecordKind).
    pub(super) steps_reserved: u64,
    pub(super) save_buf: [u8; SAVED_STATE_LEN],
}

impl<P: Platform> InfusionCore<P> {
    /// Starts the core from saved state (`None` on a device never started).
    /// Same as [`new`](Self::new) followed by [`restore_from`](Self::restore_from).
    pub fn restore(config: BoardConfig, platform: P, saved: Option<&[u8]>, now_ms: u64) -> Self {
        let mut core = Self::new(config, platform);
        core.restore_from(saved, now_ms);
        core
    }

    /// A core with no state, motor disabled. Nothing may be asked of it
    /// before [`restore_from`](Self::restore_from); the split lets firmware
    /// build the (large) core in its static slot and restore it there, so no
    /// second copy of it ever sits on the kernel stack.
    pub fn new(config: BoardConfig, mut platform: P) -> Self {
        platform.set_motor_enabled(false);
        Self {
            config,
            platform,
            p: Persistent {
                format: SAVED_FORMAT,
                ..Persistent::default()
            },
            rx: None,
            pairing: Pairing::FORMAT_1,
            clinician_grant: None,
            denied_fold: None,
            energy: None,
            events: EventQueue::starting_at(0),
            watchdog: Watchdog::default(),
            steps_since_encoder: 0,
            pulses_since_step: 0,
            suspended_since_ms: None,
            mechanism_faults: super::state::FaultHistory::default(),
            fault_inputs: 0,
            self_tests_failed: 0,
            periodic: crate::selftest::periodic::PeriodicSelfTests::default(),
            signal: AlarmSignal::OFF,
            relay: Relay::new(),
            steps_accounted: 0,
            steps_reserved: 0,
            save_buf: [0; SAVED_STATE_LEN],
        }
    }

    /// The board configuration.
    pub fn config(&self) -> &BoardConfig {
        &self.config
    }

    /// The platform (for simulators and tests to inspect).
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The platform, mutably.
    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// The installed prescription.
    pub fn prescription(&self) -> Option<&Prescription> {
        self.rx.as_ref()
    }

    /// The delivery ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.p.ledger
    }

    /// Reservoir volume.
    pub fn reservoir_nl(&self) -> u32 {
        self.p.reservoir_nl
    }

    /// Active alarms.
    pub fn alarms(&self) -> &AlarmSet {
        &self.p.alarms
    }

    /// What the alarm output shows.
    pub fn alarm_signal(&self) -> AlarmSignal {
        self.signal
    }

    /// Events waiting to be drained.
    pub fn pending_events(&self) -> usize {
        self.events.len() + usize::from(self.denied_fold.is_some_and(|f| f.count > 0))
    }

    /// The latest core time the core has seen (restored from the records
    /// at boot). A board whose tick counter restarts at every reset goes on
    /// counting core time from here, so time never runs backwards across a
    /// reset.
    pub fn core_time_ms(&self) -> u64 {
        self.p.last_time_ms
    }

    /// UTC time for a core time.
    pub fn utc_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add_signed(self.p.utc_offset_ms)
    }

    /// The pump's overall state.
    pub fn pump_state(&self) -> PumpState {
        if self.p.alarms.delivery_blocked() {
            PumpState::FaultStopped
        } else if self.rx.is_none() {
            PumpState::NoPrescription
        } else if self.p.suspended {
            PumpState::Suspended
        } else {
            PumpState::Running
        }
    }

    /// Volume delivered in the rolling 24 h ending at `now_ms`, exactly.
    pub fn delivered_24h_nl(&self, now_ms: u64) -> u64 {
        self.p
            .ledger
            .volume_in_window_nl(now_ms, self.config.nl_per_step)
    }

    /// The basal rate being delivered.
    pub fn basal_rate_nl_per_h(&self) -> u32 {
        self.p
            .ledger
            .active(Channel::Basal)
            .map_or(0, |r| u32::try_from(r.nl_den).unwrap_or(u32::MAX))
    }

    /// Volume still to deliver of the running bolus.
    pub fn bolus_remaining_nl(&self) -> u32 {
        self.p.ledger.active(Channel::Bolus).map_or(0, |r| {
            let planned = r.steps_planned.unwrap_or(0);
            planned
                .saturating_sub(r.steps_done)
                .saturating_mul(self.config.nl_per_step)
        })
    }

    /// Time until a patient bolus is allowed again, and how many are left in
    /// the rolling 24 h (what the patient's programmer shows).
    pub fn patient_bolus_availability(&self, now_ms: u64) -> (u32, u32) {
        let now_ms = now_ms.max(self.p.last_time_ms);
        let Some(rx) = &self.rx else {
            return (0, 0);
        };
        let (count, latest) = self.p.ledger.patient_boluses_in_window(now_ms);
        let lockout_end = latest.map_or(0, |t| {
            t.saturating_add(u64::from(rx.envelope.min_patient_bolus_lockout_ms))
        });
        let remaining_ms = u32::try_from(lockout_end.saturating_sub(now_ms)).unwrap_or(u32::MAX);
        let left = u32::from(rx.envelope.max_patient_boluses_per_24h).saturating_sub(count);
        (remaining_ms, left)
    }

    /// A status snapshot. Like every query it never looks back before the
    /// latest time the core has seen.
    pub fn status(&self, now_ms: u64) -> StatusSnapshot {
        let now_ms = now_ms.max(self.p.last_time_ms);
        let (_, left) = self.patient_bolus_availability(now_ms);
        let used = self.rx.as_ref().map_or(0, |rx| {
            u32::from(rx.envelope.max_patient_boluses_per_24h).saturating_sub(left)
        });
        StatusSnapshot {
            time_ms: self.utc_ms(now_ms),
            pump_state: self.pump_state(),
            prescription_serial: self.rx.as_ref().map_or(0, |rx| rx.serial),
            basal_rate_nl_per_h: self.basal_rate_nl_per_h(),
            bolus_remaining_nl: self.bolus_remaining_nl(),
            reservoir_nl: self.p.reservoir_nl,
            delivered_24h_nl: u32::try_from(self.delivered_24h_nl(now_ms)).unwrap_or(u32::MAX),
            patient_boluses_24h: u8::try_from(used).unwrap_or(u8::MAX),
            top_alarm: self.p.alarms.top(),
            refill_by_time_ms: self.refill_by_ms(now_ms).map(|t| self.utc_ms(t)),
        }
    }

    /// When the core next needs [`on_timer`](Self::on_timer): the next step,
    /// watchdog deadline, end of an alarm silence, refill-due instant or
    /// hourly self-test (once the board runs them). `None` means it sleeps until a command or input.
    pub fn next_wakeup(&self) -> Option<u64> {
        let s = self.config.nl_per_step;
        let mut next: Option<u64> = None;
        let now = self.p.last_time_ms;
        // Something already due is due now: never ask to wake in the past.
        let mut consider = |t: Option<u64>| {
            if let Some(t) = t.map(|t| t.max(now)) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for run in self.p.ledger.runs().iter().filter(|r| r.active) {
            // Basal checkpoints ride on step wake-ups; they never cost one.
            consider(run.next_step_time(s));
        }
        consider(self.watchdog.next_deadline());
        consider(self.p.alarms.next_silence_end(self.p.last_time_ms));
        consider(self.relay.answer_deadline_ms());
        consider(self.battery_check_due_ms());
        consider(self.suspension_reminder_due_ms());
        consider(self.periodic.next_due_ms());
        if !self.p.alarms.is_active(AlarmCode::RefillDue) {
            consider(
                self.refill_by_ms(self.p.last_time_ms)
                    .map(|t| t.saturating_sub(self.config.refill_due_warning_ms)),
            );
        }
        next
    }

    /// Core time never runs backwards, even if the clock source does: a
    /// backwards jump freezes time, which keeps past deliveries in the 24 h
    /// window longer (the safe direction).
    pub(super) fn clock(&mut self, now_ms: u64) -> u64 {
        self.p.last_time_ms = self.p.last_time_ms.max(now_ms);
        self.p.last_time_ms
    }

    pub(super) fn emit(&mut self, event: Event, now: u64) {
        // The queue stamps gap reports with this time: wall-clock, like every event.
        let utc = self.utc_ms(now);
        self.events.push(event, utc);
        self.platform.notify(Notification::EventsAvailable {
            count: self.events.len(),
        });
    }

    pub(super) fn sync_outputs(&mut self, now: u64) {
        let delivering = self.p.ledger.runs().iter().any(|r| r.active) && self.delivery_possible();
        self.platform.set_motor_enabled(delivering);
        let signal = self.p.alarms.signal(now);
        if signal != self.signal {
            self.signal = signal;
            self.platform.show_alarm(signal);
            self.platform.notify(Notification::AlarmChanged(signal));
        }
    }

    pub(super) fn delivery_possible(&self) -> bool {
        self.rx.is_some()
            && !self.p.suspended
            && !self.p.alarms.delivery_blocked()
            && self.fault_inputs == 0
    }

    /// Writes waiting events into `buf` as stream-encoded frames (SR-EVT-001).
    pub fn drain_events(
        &mut self,
        caller: AppId,
        buf: &mut [u8],
        now_ms: u64,
    ) -> Result<(usize, usize), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::DRAIN_EVENTS, now)?;
        // The telemetry app woke to drain.
        self.draw_wakeup();
        self.flush_denied_fold(now);
        let drained = self.events.drain_into(buf);
        // The next sequence number must survive a reset, or numbers repeat.
        self.save_event_sequence();
        Ok(drained)
    }

    /// A copy of every safety-relevant piece of state, for tests that
    /// check a refusal changed nothing. A copy, not a view, so that a test
    /// can hold it across the command and compare with `==` (the stateful
    /// fuzz target does so on every command; formatting it was 29 % of
    /// that target's time).
    #[doc(hidden)]
    pub fn safety_state(&self) -> impl PartialEq + core::fmt::Debug {
        (
            self.p.signed_rx.clone(),
            self.p.serial_floor,
            self.p.suspended,
            self.p.ledger.clone(),
            self.p.basal_carry_nl_ms_per_h,
            self.p.bolus_carry_nl_ms_per_h,
            self.p.reservoir_nl,
            self.p.alarms.clone(),
            self.p.utc_offset_ms,
            self.watchdog,
        )
    }
}
