//! The infusion core's state machine.

use heapless::Vec;
use pump_protocol::prescription::{Prescription, SilencePolicy, MAX_SIGNED_PRESCRIPTION_LEN};
use pump_protocol::{
    AccessDenied, AlarmAcknowledged, AlarmCleared, AlarmCode, AlarmRaised, AppFault, AppRestarted,
    BatteryState, ClockSet, DeliveryDenied, DeliveryKind, DeliveryOutcome, DeliveryRecord,
    ErrorCode, PatientBolusDenied, PatientBolusGranted, PatientBolusRequested,
    PrescriptionInstalled, PrescriptionRejected, PumpState, PumpStateChanged, ReservoirLevel,
    ReservoirRefilled, StatusSnapshot, CRC32C,
};
use serde::{Deserialize, Serialize};

use crate::alarms::{priority_of, AlarmSet, AlarmSignal};
use crate::config::{AppId, BoardConfig, Role};
use crate::events::{Event, EventQueue};
use crate::ledger::{Channel, Ledger, Run, MS_PER_HOUR, WINDOW_MS};
use crate::platform::{Notification, Platform};
use crate::relay::{self as relay_box, Relay};
use crate::rx::{self, VerifiedPrescription};

/// Bytes the persisted state can take (postcard body plus CRC-32C).
pub const SAVED_STATE_LEN: usize = 4096;

/// Most steps one timer callback makes; more due steps get an immediate
/// wake-up, so a late timer can never turn into an unbounded burst of work.
pub const MAX_STEPS_PER_WAKEUP: u32 = 64;

/// Format 2 added the dosing app's record. Format 1 was never released; a
/// format-1 record is not migrated and fails safe like a corrupt one.
const SAVED_FORMAT: u8 = 2;

/// Largest record the dosing app may keep in the capsule's saved state
/// (commands 26 and 27).
pub const APP_RECORD_MAX_LEN: usize = 1024;

/// Everything that survives a reset. Written after every change and before
/// every motor step, so a step is accounted before it moves (SR-PER-002).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Persistent {
    format: u8,
    signed_rx: Option<Vec<u8, MAX_SIGNED_PRESCRIPTION_LEN>>,
    serial_floor: u32,
    suspended: bool,
    ledger: Ledger,
    basal_carry_nl_ms_per_h: u64,
    bolus_carry_nl_ms_per_h: u64,
    reservoir_nl: u32,
    alarms: AlarmSet,
    utc_offset_ms: i64,
    last_time_ms: u64,
    next_event_sequence: u32,
    /// What the dosing app alone knows (its own postcard record, opaque
    /// here), kept so it survives resets with the same atomic, CRC-checked
    /// writes as the capsule's state.
    app_record: Vec<u8, APP_RECORD_MAX_LEN>,
}

/// The outcome of a syscall-level command, before the Tock glue maps it to a
/// `CommandReturn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandResult {
    /// `SUCCESS`.
    Success,
    /// `SUCCESS_U32`.
    SuccessU32(u32),
    /// `SUCCESS_U32_U32`.
    SuccessU32U32(u32, u32),
    /// `SUCCESS_U32_U32_U32`.
    SuccessU32U32U32(u32, u32, u32),
    /// `FAILURE` with a typed reason (see [`tock_error_name`](crate::tock_error_name)).
    Failure(ErrorCode),
}

impl From<Result<(), ErrorCode>> for CommandResult {
    fn from(result: Result<(), ErrorCode>) -> Self {
        match result {
            Ok(()) => Self::Success,
            Err(e) => Self::Failure(e),
        }
    }
}

/// The infusion core: owns the motor and the alarm output through `P`.
pub struct InfusionCore<P: Platform> {
    config: BoardConfig,
    platform: P,
    p: Persistent,
    rx: Option<Prescription>,
    events: EventQueue,
    watchdog_deadline_ms: Option<u64>,
    watchdog_expired: bool,
    steps_since_encoder: u32,
    fault_input_asserted: bool,
    signal: AlarmSignal,
    relay: Relay,
    save_buf: [u8; SAVED_STATE_LEN],
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
            events: EventQueue::starting_at(0),
            watchdog_deadline_ms: None,
            watchdog_expired: false,
            steps_since_encoder: 0,
            fault_input_asserted: false,
            signal: AlarmSignal::OFF,
            relay: Relay::new(),
            save_buf: [0; SAVED_STATE_LEN],
        }
    }

    /// Restores saved state in place.
    ///
    /// The motor is disabled before anything is read and stays so: deliveries
    /// active at the reset are closed as `Interrupted` with exactly what they
    /// delivered, and only a new request starts the motor (SR-PER-001). Saved
    /// state that fails its CRC or whose prescription no longer verifies
    /// raises `EnvelopeIntegrity` and leaves no prescription (SR-PER-003).
    pub fn restore_from(&mut self, saved: Option<&[u8]>, now_ms: u64) {
        self.platform.set_motor_enabled(false);
        let Some(saved) = saved else {
            self.p.last_time_ms = now_ms;
            self.save();
            return;
        };
        if decode_saved(saved, &mut self.p) {
            self.events = EventQueue::starting_at(self.p.next_event_sequence);
            let now = self.clock(now_ms);
            self.reverify_prescription(now);
            self.close_interrupted_runs(now);
            if let Some(rx) = &self.rx {
                self.watchdog_deadline_ms =
                    Some(now.saturating_add(u64::from(rx.envelope.dosing_checkin_timeout_ms)));
            }
        } else {
            self.p.last_time_ms = now_ms;
            let now = self.clock(now_ms);
            self.raise(AlarmCode::EnvelopeIntegrity, now);
        }
        self.save();
        self.sync_outputs(self.p.last_time_ms);
    }

    fn reverify_prescription(&mut self, now: u64) {
        let Some(signed) = self.p.signed_rx.clone() else {
            return;
        };
        let floor = self.p.serial_floor.saturating_sub(1);
        match rx::verify(&self.config, &signed, floor) {
            Ok(v) if v.prescription.serial == self.p.serial_floor => {
                self.rx = Some(v.prescription);
            }
            _ => {
                self.p.signed_rx = None;
                self.raise(AlarmCode::EnvelopeIntegrity, now);
            }
        }
    }

    fn close_interrupted_runs(&mut self, now: u64) {
        for channel in [Channel::Basal, Channel::Bolus] {
            self.end_run(channel, DeliveryOutcome::Interrupted, now);
        }
    }

    // ------------------------------------------------------------ queries --

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
        self.events.len()
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

    /// Projected time by which the reservoir must be refilled, assuming the
    /// current basal continues and every allotted patient bolus is used at
    /// the envelope's largest size (SR-RES-004).
    pub fn refill_by_ms(&self, now_ms: u64) -> Option<u64> {
        let rx = self.rx.as_ref()?;
        let basal_per_day = u64::from(self.basal_rate_nl_per_h()) * 24;
        let boluses_per_day = u64::from(rx.envelope.max_patient_boluses_per_24h)
            * u64::from(rx.envelope.max_bolus_nl);
        let per_day = basal_per_day.saturating_add(boluses_per_day);
        if per_day == 0 {
            return None;
        }
        let ms_left = u128::from(self.p.reservoir_nl) * u128::from(WINDOW_MS) / u128::from(per_day);
        Some(now_ms.saturating_add(u64::try_from(ms_left).unwrap_or(u64::MAX)))
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
    /// watchdog deadline, end of an alarm silence or refill-due instant. `None` means it sleeps until a command or input.
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
        if !self.watchdog_expired {
            consider(self.watchdog_deadline_ms);
        }
        consider(self.p.alarms.next_silence_end(self.p.last_time_ms));
        consider(self.relay.answer_deadline_ms());
        if !self.p.alarms.is_active(AlarmCode::RefillDue) {
            consider(
                self.refill_by_ms(self.p.last_time_ms)
                    .map(|t| t.saturating_sub(self.config.refill_due_warning_ms)),
            );
        }
        next
    }

    // ------------------------------------------------------ time and save --

    /// Core time never runs backwards, even if the clock source does: a
    /// backwards jump freezes time, which keeps past deliveries in the 24 h
    /// window longer (the safe direction).
    fn clock(&mut self, now_ms: u64) -> u64 {
        self.p.last_time_ms = self.p.last_time_ms.max(now_ms);
        self.p.last_time_ms
    }

    fn save(&mut self) {
        self.p.next_event_sequence = self.events.next_sequence();
        let len = match postcard::to_slice(&self.p, &mut self.save_buf[..SAVED_STATE_LEN - 4]) {
            Ok(body) => body.len(),
            // The state is bounded below SAVED_STATE_LEN (tested); if it ever
            // were not, writing nothing keeps the last good record.
            Err(_) => return,
        };
        let crc = CRC32C.checksum(&self.save_buf[..len]);
        self.save_buf[len..len + 4].copy_from_slice(&crc.to_le_bytes());
        self.platform.save(&self.save_buf[..len + 4]);
    }

    fn emit(&mut self, event: Event, now: u64) {
        // The queue stamps gap reports with this time: wall-clock, like every event.
        let utc = self.utc_ms(now);
        self.events.push(event, utc);
        self.platform.notify(Notification::EventsAvailable {
            count: self.events.len(),
        });
    }

    fn sync_outputs(&mut self, now: u64) {
        let delivering = self.p.ledger.runs().iter().any(|r| r.active) && self.delivery_possible();
        self.platform.set_motor_enabled(delivering);
        let signal = self.p.alarms.signal(now);
        if signal != self.signal {
            self.signal = signal;
            self.platform.show_alarm(signal);
            self.platform.notify(Notification::AlarmChanged(signal));
        }
    }

    fn delivery_possible(&self) -> bool {
        self.rx.is_some()
            && !self.p.suspended
            && !self.p.alarms.delivery_blocked()
            && !self.fault_input_asserted
    }

    // ------------------------------------------------------------- alarms --

    fn raise(&mut self, code: AlarmCode, now: u64) {
        if self.p.alarms.raise(code) {
            let utc = self.utc_ms(now);
            self.emit(
                Event::AlarmRaised(AlarmRaised {
                    time_ms: utc,
                    code,
                    priority: priority_of(code),
                }),
                now,
            );
            if crate::alarms::stops_delivery(code) {
                self.stop_all(DeliveryOutcome::Aborted, now);
            }
        }
    }

    fn clear(&mut self, code: AlarmCode, now: u64) {
        if self.p.alarms.clear(code) {
            let utc = self.utc_ms(now);
            self.emit(
                Event::AlarmCleared(AlarmCleared { time_ms: utc, code }),
                now,
            );
        }
    }

    // ---------------------------------------------------------- deliveries --

    fn stop_all(&mut self, outcome: DeliveryOutcome, now: u64) {
        self.end_run(Channel::Basal, outcome, now);
        self.end_run(Channel::Bolus, outcome, now);
        self.platform.set_motor_enabled(false);
    }

    /// Ends the active run on a channel, reporting what it delivered since
    /// its last checkpoint and carrying its partial step into the next run.
    fn end_run(&mut self, channel: Channel, outcome: DeliveryOutcome, now: u64) {
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

    fn deny_delivery(
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

    /// Checks that an app has one of `allowed` roles; otherwise records an
    /// audit event and refuses (SR-ROLE-001..003).
    fn authorize(
        &mut self,
        caller: AppId,
        allowed: &[Role],
        command: u16,
        now: u64,
    ) -> Result<(), ErrorCode> {
        if allowed.contains(&self.config.role_of(caller)) {
            return Ok(());
        }
        let utc = self.utc_ms(now);
        self.emit(
            Event::AccessDenied(AccessDenied {
                time_ms: utc,
                app_id: caller.0,
                command,
            }),
            now,
        );
        Err(ErrorCode::NotPermitted)
    }

    fn common_delivery_checks(&self) -> Result<&Prescription, ErrorCode> {
        let rx = self.rx.as_ref().ok_or(ErrorCode::NoPrescription)?;
        if self.p.alarms.delivery_blocked() || self.fault_input_asserted {
            return Err(ErrorCode::FaultActive);
        }
        if self.p.suspended {
            return Err(ErrorCode::Suspended);
        }
        Ok(rx)
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

    fn check_basal(&self, rate_nl_per_h: u32, now: u64) -> Result<(), ErrorCode> {
        let s = self.config.nl_per_step;
        let rx = self.common_delivery_checks()?;
        let env = &rx.envelope;
        if rate_nl_per_h > env.max_basal_rate_nl_per_h {
            return Err(ErrorCode::RateAboveEnvelope);
        }
        let bolus_rate = self
            .p
            .ledger
            .active(Channel::Bolus)
            .map_or(0, bolus_rate_nl_per_h);
        if u64::from(rate_nl_per_h) + bolus_rate > u64::from(self.config.limits.max_rate_nl_per_h) {
            return Err(ErrorCode::OutsideHardwareLimits);
        }
        if u64::from(rate_nl_per_h) * 24 > u64::from(env.max_volume_per_24h_nl)
            || self.delivered_24h_nl(now) + u64::from(s) > u64::from(env.max_volume_per_24h_nl)
        {
            return Err(ErrorCode::DailyLimitReached);
        }
        if self.p.reservoir_nl < s {
            return Err(ErrorCode::ReservoirInsufficient);
        }
        if !self.p.ledger.has_room(now, s) {
            return Err(ErrorCode::Busy);
        }
        Ok(())
    }

    fn start_basal(&mut self, kind: DeliveryKind, rate_nl_per_h: u32, now: u64) {
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

    fn check_bolus(
        &self,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
        now: u64,
    ) -> Result<(), ErrorCode> {
        let s = self.config.nl_per_step;
        let rx = self.common_delivery_checks()?;
        let env = &rx.envelope;
        if volume_nl == 0 || duration_ms == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        if self.p.ledger.active(Channel::Bolus).is_some() {
            return Err(ErrorCode::Busy);
        }
        if volume_nl > env.max_bolus_nl {
            return Err(ErrorCode::BolusAboveEnvelope);
        }
        let bolus_rate = u64::from(mean_rate_nl_per_h(volume_nl, duration_ms));
        let basal_rate = u64::from(self.basal_rate_nl_per_h());
        if bolus_rate + basal_rate > u64::from(self.config.limits.max_rate_nl_per_h) {
            return Err(ErrorCode::OutsideHardwareLimits);
        }
        if kind == DeliveryKind::PatientBolus {
            let (count, latest) = self.p.ledger.patient_boluses_in_window(now);
            if latest.is_some_and(|t| {
                now < t.saturating_add(u64::from(env.min_patient_bolus_lockout_ms))
            }) {
                return Err(ErrorCode::LockoutActive);
            }
            if count >= u32::from(env.max_patient_boluses_per_24h) {
                return Err(ErrorCode::BolusCountReached);
            }
        }
        let basal_during = basal_rate * u64::from(duration_ms) / MS_PER_HOUR;
        let projected = self
            .delivered_24h_nl(now)
            .saturating_add(u64::from(volume_nl))
            .saturating_add(basal_during);
        if projected > u64::from(env.max_volume_per_24h_nl) {
            return Err(ErrorCode::DailyLimitReached);
        }
        if u64::from(self.p.reservoir_nl) < u64::from(volume_nl) + basal_during {
            return Err(ErrorCode::ReservoirInsufficient);
        }
        if !self.p.ledger.has_room(now, s) {
            return Err(ErrorCode::Busy);
        }
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

    /// The dosing app's watchdog check-in (SR-WDG-001). Returns the timeout.
    pub fn check_in(&mut self, caller: AppId, now_ms: u64) -> Result<u32, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::CHECK_IN, now)?;
        let timeout = self
            .rx
            .as_ref()
            .map_or(0, |rx| rx.envelope.dosing_checkin_timeout_ms);
        if self.rx.is_some() {
            self.watchdog_deadline_ms = Some(now.saturating_add(u64::from(timeout)));
        }
        if self.watchdog_expired {
            self.watchdog_expired = false;
            self.clear(AlarmCode::DosingWatchdog, now);
            self.save();
            self.sync_outputs(now);
        }
        Ok(timeout)
    }

    // ------------------------------------------------------ programmer ops --

    /// Installs a signed prescription (SR-RX-001..005). On success every
    /// delivery stops, so the dosing app restarts therapy under the new
    /// envelope; on failure nothing changes but the rejection event.
    pub fn install_prescription(
        &mut self,
        caller: AppId,
        signed: &[u8],
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(
            caller,
            &[Role::Telemetry],
            command::INSTALL_PRESCRIPTION,
            now,
        )?;
        let utc = self.utc_ms(now);
        let verified: VerifiedPrescription =
            match rx::verify(&self.config, signed, self.p.serial_floor) {
                Ok(v) => v,
                Err(reason) => {
                    self.emit(
                        Event::PrescriptionRejected(PrescriptionRejected {
                            time_ms: utc,
                            serial: claimed_serial(signed),
                            reason,
                        }),
                        now,
                    );
                    return Err(reason);
                }
            };
        self.stop_all(DeliveryOutcome::Stopped, now);
        let rx = verified.prescription;
        self.p.serial_floor = rx.serial;
        self.p.signed_rx = Some(verified.signed);
        self.watchdog_deadline_ms =
            Some(now.saturating_add(u64::from(rx.envelope.dosing_checkin_timeout_ms)));
        self.emit(
            Event::PrescriptionInstalled(PrescriptionInstalled {
                time_ms: utc,
                serial: rx.serial,
                concentration_ug_per_ml: rx.concentration_ug_per_ml,
            }),
            now,
        );
        self.rx = Some(rx);
        self.clear(AlarmCode::EnvelopeIntegrity, now);
        self.update_reservoir_alarms(now);
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Records a refill (SR-RES-003). The drug's concentration must be the
    /// installed prescription's: the envelope is in volume at that
    /// concentration, so any other would scale every dose (SR-RES-005).
    pub fn refill(
        &mut self,
        caller: AppId,
        withdrawn_volume_nl: u32,
        added_volume_nl: u32,
        concentration_ug_per_ml: u32,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::REFILL, now)?;
        let rx = self.rx.as_ref().ok_or(ErrorCode::NoPrescription)?;
        if concentration_ug_per_ml != rx.concentration_ug_per_ml {
            return Err(ErrorCode::ConcentrationMismatch);
        }
        let volume = self
            .p
            .reservoir_nl
            .saturating_sub(withdrawn_volume_nl)
            .checked_add(added_volume_nl)
            .filter(|v| *v <= self.config.limits.reservoir_capacity_nl)
            .ok_or(ErrorCode::InvalidArgument)?;
        self.p.reservoir_nl = volume;
        let utc = self.utc_ms(now);
        self.emit(
            Event::ReservoirRefilled(ReservoirRefilled {
                time_ms: utc,
                withdrawn_volume_nl,
                added_volume_nl,
                volume_nl: volume,
                concentration_ug_per_ml,
            }),
            now,
        );
        self.update_reservoir_alarms(now);
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Suspends therapy: every delivery stops (SR-ENV-008).
    pub fn suspend(&mut self, caller: AppId, now_ms: u64) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::SUSPEND, now)?;
        self.stop_all(DeliveryOutcome::Stopped, now);
        self.p.suspended = true;
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Lifts a suspension. Nothing is delivered until the dosing app asks.
    pub fn resume(&mut self, caller: AppId, now_ms: u64) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::RESUME, now)?;
        self.p.suspended = false;
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Silences an active alarm for the board's silence time; the cause
    /// stays active (SR-ALM-003).
    pub fn acknowledge_alarm(
        &mut self,
        caller: AppId,
        code: AlarmCode,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::ACKNOWLEDGE_ALARM, now)?;
        let silence_ms = self.config.alarm_silence_ms;
        if !self
            .p
            .alarms
            .silence(code, now.saturating_add(u64::from(silence_ms)))
        {
            return Err(ErrorCode::InvalidArgument);
        }
        let utc = self.utc_ms(now);
        self.emit(
            Event::AlarmAcknowledged(AlarmAcknowledged {
                time_ms: utc,
                code,
                silence_duration_ms: silence_ms,
            }),
            now,
        );
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Clears a latched fault once its cause is gone (SR-ALM-004): motor
    /// stall or occlusion once the fault input is released, an app fault at
    /// once. Empty reservoir, watchdog and integrity faults clear only by
    /// refill, check-in and a new prescription respectively.
    pub fn clear_fault(
        &mut self,
        caller: AppId,
        code: AlarmCode,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::CLEAR_FAULT, now)?;
        let clearable = match code {
            AlarmCode::MotorStall | AlarmCode::Occlusion => !self.fault_input_asserted,
            AlarmCode::AppFault => true,
            _ => false,
        };
        if !clearable || !self.p.alarms.is_active(code) {
            return Err(ErrorCode::InvalidArgument);
        }
        self.steps_since_encoder = 0;
        self.clear(code, now);
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    /// Sets the real-time clock. Only the UTC offset changes: every safety
    /// window runs on core time, so a clock change can neither shorten a
    /// lockout nor reopen the 24 h limit (SR-ENV-007).
    pub fn set_clock(
        &mut self,
        caller: AppId,
        utc_time_ms: u64,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::SET_CLOCK, now)?;
        let previous = self.utc_ms(now);
        let offset = i128::from(utc_time_ms) - i128::from(now);
        self.p.utc_offset_ms = i64::try_from(offset).map_err(|_| ErrorCode::InvalidArgument)?;
        self.emit(
            Event::ClockSet(ClockSet {
                time_ms: utc_time_ms,
                previous_time_ms: previous,
            }),
            now,
        );
        self.save();
        Ok(())
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
        let drained = self.events.drain_into(buf);
        // The next sequence number must survive a reset, or numbers repeat.
        self.save();
        Ok(drained)
    }

    /// Copies the installed signed prescription into `buf`; returns its length.
    pub fn read_prescription(
        &mut self,
        caller: AppId,
        buf: &mut [u8],
        now_ms: u64,
    ) -> Result<usize, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(
            caller,
            &[Role::Dosing, Role::Telemetry],
            command::READ_PRESCRIPTION,
            now,
        )?;
        let signed = self.p.signed_rx.as_ref().ok_or(ErrorCode::NoPrescription)?;
        let dst = buf
            .get_mut(..signed.len())
            .ok_or(ErrorCode::InvalidArgument)?;
        dst.copy_from_slice(signed);
        Ok(signed.len())
    }

    /// Relay, command 22: the telemetry app posts a programmer request or
    /// notice for the dosing app (see [`relay`](crate::relay)). Returns the
    /// ticket (SR-REL-001).
    pub fn relay_post(
        &mut self,
        caller: AppId,
        kind_code: u32,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<u32, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::RELAY_POST, now)?;
        let kind_code = u16::try_from(kind_code).map_err(|_| ErrorCode::UnknownKind)?;
        let ticket = self.relay.post(kind_code, payload, now)?;
        self.platform.notify(Notification::RelayPosted);
        Ok(ticket)
    }

    /// Relay, command 23: the dosing app takes the oldest waiting message.
    pub fn relay_take(
        &mut self,
        caller: AppId,
        buf: &mut [u8],
        now_ms: u64,
    ) -> Result<relay_box::TakenEntry, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::RELAY_TAKE, now)?;
        self.relay.take(buf)
    }

    /// Relay, command 24: the dosing app's verdict on a request it took
    /// (`0` accepted, else an [`ErrorCode`] code).
    pub fn relay_answer(
        &mut self,
        caller: AppId,
        ticket: u32,
        verdict_code: u32,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::RELAY_ANSWER, now)?;
        let verdict =
            relay_box::verdict_from_code(verdict_code).ok_or(ErrorCode::InvalidArgument)?;
        self.relay.answer(ticket, verdict)?;
        self.platform.notify(Notification::RelayAnswered);
        Ok(())
    }

    /// Relay, command 25: the telemetry app reads the verdict on its request.
    pub fn relay_result(
        &mut self,
        caller: AppId,
        now_ms: u64,
    ) -> Result<(u32, Result<(), ErrorCode>), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::RELAY_RESULT, now)?;
        // A request past its deadline is answered now, even if the timer
        // that would have expired it has not fired yet.
        self.relay.expire(now);
        self.relay.take_result()
    }

    /// Command 26: the dosing app stores its own record (SR-PER-005). It
    /// replaces the previous one and is written with the capsule's state.
    pub fn save_app_record(
        &mut self,
        caller: AppId,
        record: &[u8],
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::SAVE_APP_RECORD, now)?;
        let record = Vec::from_slice(record).map_err(|()| ErrorCode::InvalidArgument)?;
        if record != self.p.app_record {
            self.p.app_record = record;
            self.save();
        }
        Ok(())
    }

    /// Command 27: the dosing app reads its record back into `buf`; returns
    /// its length (0 if it never saved one).
    pub fn load_app_record(
        &mut self,
        caller: AppId,
        buf: &mut [u8],
        now_ms: u64,
    ) -> Result<usize, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::LOAD_APP_RECORD, now)?;
        let record = &self.p.app_record;
        buf.get_mut(..record.len())
            .ok_or(ErrorCode::InvalidArgument)?
            .copy_from_slice(record);
        Ok(record.len())
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

    fn emit_state(&mut self, now: u64) {
        let utc = self.utc_ms(now);
        let pump_state = self.pump_state();
        self.emit(
            Event::PumpStateChanged(PumpStateChanged {
                time_ms: utc,
                pump_state,
            }),
            now,
        );
    }

    // ------------------------------------------------------ kernel inputs --

    /// The motor's stall or occlusion input changed (SR-MOT-003).
    pub fn on_fault_input(&mut self, code: AlarmCode, asserted: bool, now_ms: u64) {
        let now = self.clock(now_ms);
        self.fault_input_asserted = asserted;
        if asserted {
            self.stop_all(DeliveryOutcome::Aborted, now);
            self.raise(code, now);
            self.save();
        }
        self.sync_outputs(now);
    }

    /// The board could not write the state record (SR-PER-004). Steps
    /// made from here on could not survive a reset, so delivery stops under
    /// the high `EnvelopeIntegrity` alarm, which only a newly installed
    /// prescription (whose own save must then succeed) clears. The board
    /// reports each failure once: this calls `save` again, and a failure of
    /// that write must not be reported back into this call.
    pub fn on_storage_fault(&mut self, now_ms: u64) {
        let now = self.clock(now_ms);
        self.raise(AlarmCode::EnvelopeIntegrity, now);
        self.save();
        self.sync_outputs(now);
    }

    /// An encoder pulse confirms the motor moved.
    pub fn on_encoder_pulse(&mut self) {
        self.steps_since_encoder = 0;
    }

    /// A battery reading.
    pub fn on_battery(
        &mut self,
        voltage_mv: u16,
        charge_percent: u8,
        replacement: bool,
        now_ms: u64,
    ) {
        let now = self.clock(now_ms);
        let utc = self.utc_ms(now);
        self.emit(
            Event::BatteryState(BatteryState {
                time_ms: utc,
                voltage_mv,
                charge_percent,
                replacement_recommended: replacement,
            }),
            now,
        );
        if replacement {
            self.raise(AlarmCode::BatteryReplacement, now);
        } else {
            self.clear(AlarmCode::BatteryReplacement, now);
        }
        self.save();
        self.sync_outputs(now);
    }

    /// The kernel reports that an app faulted.
    pub fn on_app_fault(&mut self, app: AppId, fault_code: u16, now_ms: u64) {
        let now = self.clock(now_ms);
        let utc = self.utc_ms(now);
        self.emit(
            Event::AppFault(AppFault {
                time_ms: utc,
                app_id: app.0,
                fault_code,
            }),
            now,
        );
        self.raise(AlarmCode::AppFault, now);
        self.save();
        self.sync_outputs(now);
    }

    /// The kernel restarted an app.
    pub fn on_app_restart(&mut self, app: AppId, restart_count: u16, now_ms: u64) {
        let now = self.clock(now_ms);
        let utc = self.utc_ms(now);
        self.emit(
            Event::AppRestarted(AppRestarted {
                time_ms: utc,
                app_id: app.0,
                restart_count,
            }),
            now,
        );
    }

    /// The timer fired: make due steps, enforce the watchdog, re-annunciate
    /// silenced alarms, write basal checkpoints (SR-MOT-001, SR-WDG-002).
    pub fn on_timer(&mut self, now_ms: u64) {
        let now = self.clock(now_ms);
        if !self.watchdog_expired && self.watchdog_deadline_ms.is_some_and(|d| d <= now) {
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

    fn expire_watchdog(&mut self, now: u64) {
        self.watchdog_expired = true;
        self.raise(AlarmCode::DosingWatchdog, now);
        let policy = self.rx.as_ref().map(|rx| rx.envelope.silence_policy);
        self.end_run(Channel::Bolus, DeliveryOutcome::Aborted, now);
        match policy {
            Some(SilencePolicy::ContinueBasal { rate_nl_per_h }) if rate_nl_per_h > 0 => {
                if self.check_basal(rate_nl_per_h, now).is_ok() {
                    self.start_basal(DeliveryKind::SilenceFallback, rate_nl_per_h, now);
                } else {
                    self.end_run(Channel::Basal, DeliveryOutcome::Aborted, now);
                }
            }
            _ => self.end_run(Channel::Basal, DeliveryOutcome::Aborted, now),
        }
        self.save();
    }

    fn next_due_channel(&self, now: u64) -> Option<Channel> {
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
    fn step(&mut self, channel: Channel, now: u64) {
        let s = self.config.nl_per_step;
        let kind = self
            .p
            .ledger
            .active(channel)
            .map_or(DeliveryKind::Basal, Run::kind);
        let gate = if !self.delivery_possible() {
            Err(ErrorCode::FaultActive)
        } else if self.p.reservoir_nl < s {
            Err(ErrorCode::ReservoirInsufficient)
        } else if self.delivered_24h_nl(now) + u64::from(s)
            > self
                .rx
                .as_ref()
                .map_or(0, |rx| u64::from(rx.envelope.max_volume_per_24h_nl))
        {
            Err(ErrorCode::DailyLimitReached)
        } else {
            Ok(())
        };
        if let Err(reason) = gate {
            self.end_run(channel, DeliveryOutcome::Aborted, now);
            self.deny_delivery(kind, 0, 0, reason, now);
            self.save();
            return;
        }
        if let Some(run) = self.p.ledger.active_mut(channel) {
            run.steps_done = run.steps_done.saturating_add(1);
        }
        self.p.reservoir_nl -= s;
        self.save();
        self.platform.step_motor();
        self.steps_since_encoder = self.steps_since_encoder.saturating_add(1);
        let limit = self.config.max_steps_without_encoder;
        if limit > 0 && self.steps_since_encoder > limit {
            self.raise(AlarmCode::MotorStall, now);
        }
        self.update_reservoir_alarms(now);
    }

    fn finish_completed_runs(&mut self, now: u64) {
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

    fn write_checkpoints(&mut self, now: u64) {
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

    fn update_reservoir_alarms(&mut self, now: u64) {
        let s = self.config.nl_per_step;
        let threshold = self
            .rx
            .as_ref()
            .map_or(0, |rx| rx.envelope.reservoir_low_threshold_nl);
        let volume = self.p.reservoir_nl;
        let was_low = self.p.alarms.is_active(AlarmCode::ReservoirLow);
        if volume < s {
            self.raise(AlarmCode::ReservoirEmpty, now);
        } else {
            self.clear(AlarmCode::ReservoirEmpty, now);
        }
        if volume < threshold {
            self.raise(AlarmCode::ReservoirLow, now);
        } else {
            self.clear(AlarmCode::ReservoirLow, now);
        }
        // "Refill due" ends only when the projection moves out of the warning
        // window (a refill, a lower rate), never merely because a step was made.
        if self
            .refill_by_ms(now)
            .is_none_or(|t| t.saturating_sub(self.config.refill_due_warning_ms) > now)
        {
            self.clear(AlarmCode::RefillDue, now);
        }
        if was_low != self.p.alarms.is_active(AlarmCode::ReservoirLow) {
            let utc = self.utc_ms(now);
            self.emit(
                Event::ReservoirLevel(ReservoirLevel {
                    time_ms: utc,
                    volume_nl: volume,
                    low_threshold_nl: threshold,
                }),
                now,
            );
        }
    }

    // ------------------------------------------------------ command table --

    /// The syscall interface: a direct translation target for the Tock glue.
    /// See the crate docs for the table. `ro` is the read-only allow buffer,
    /// `rw` the read-write one (empty slices if none).
    #[allow(clippy::too_many_arguments)]
    pub fn command(
        &mut self,
        caller: AppId,
        command_num: u32,
        arg1: u32,
        arg2: u32,
        ro: &[u8],
        rw: &mut [u8],
        now_ms: u64,
    ) -> CommandResult {
        use command::*;
        let Ok(num) = u16::try_from(command_num) else {
            return CommandResult::Failure(ErrorCode::NoSupport);
        };
        match num {
            EXISTS => CommandResult::Success,
            STATUS => {
                let now = self.clock(now_ms);
                let status = self.status(now);
                let top = status.top_alarm.map_or(0, AlarmCode::code);
                CommandResult::SuccessU32U32U32(
                    u32::from(status.pump_state.code()) | (u32::from(top) << 16),
                    status.reservoir_nl,
                    status.delivered_24h_nl,
                )
            }
            SET_BASAL => self.set_basal(caller, arg1, now_ms).into(),
            CLINICIAN_BOLUS => self
                .start_bolus(caller, DeliveryKind::ClinicianBolus, arg1, arg2, now_ms)
                .into(),
            PATIENT_BOLUS => self
                .start_bolus(caller, DeliveryKind::PatientBolus, arg1, arg2, now_ms)
                .into(),
            PRIMING_BOLUS => self
                .start_bolus(caller, DeliveryKind::Priming, arg1, arg2, now_ms)
                .into(),
            BRIDGE_BOLUS => self
                .start_bolus(caller, DeliveryKind::Bridge, arg1, arg2, now_ms)
                .into(),
            STOP_BOLUS => self.stop_bolus(caller, now_ms).into(),
            CHECK_IN => match self.check_in(caller, now_ms) {
                Ok(timeout) => CommandResult::SuccessU32(timeout),
                Err(e) => CommandResult::Failure(e),
            },
            INSTALL_PRESCRIPTION => match ro.get(..arg1 as usize) {
                Some(bytes) => self.install_prescription(caller, bytes, now_ms).into(),
                None => self.refuse_after_authorize(caller, num, now_ms, &[Role::Telemetry]),
            },
            DRAIN_EVENTS => match self.drain_events(caller, rw, now_ms) {
                Ok((bytes, frames)) => CommandResult::SuccessU32U32(
                    u32::try_from(bytes).unwrap_or(u32::MAX),
                    u32::try_from(frames).unwrap_or(u32::MAX),
                ),
                Err(e) => CommandResult::Failure(e),
            },
            ACKNOWLEDGE_ALARM => self
                .acknowledge_alarm(caller, alarm_code_arg(arg1), now_ms)
                .into(),
            CLEAR_FAULT => self
                .clear_fault(caller, alarm_code_arg(arg1), now_ms)
                .into(),
            SUSPEND => self.suspend(caller, now_ms).into(),
            RESUME => self.resume(caller, now_ms).into(),
            REFILL => {
                let refill = ro
                    .get(..arg1 as usize)
                    .and_then(|b| postcard::from_bytes::<pump_protocol::Refill>(b).ok());
                match refill {
                    Some(r) => self
                        .refill(
                            caller,
                            r.withdrawn_volume_nl,
                            r.added_volume_nl,
                            r.concentration_ug_per_ml,
                            now_ms,
                        )
                        .into(),
                    None => self.refuse_after_authorize(caller, num, now_ms, &[Role::Telemetry]),
                }
            }
            SET_CLOCK => {
                let utc = u64::from(arg1) | (u64::from(arg2) << 32);
                self.set_clock(caller, utc, now_ms).into()
            }
            READ_PRESCRIPTION => match self.read_prescription(caller, rw, now_ms) {
                Ok(len) => CommandResult::SuccessU32(u32::try_from(len).unwrap_or(u32::MAX)),
                Err(e) => CommandResult::Failure(e),
            },
            PATIENT_BOLUS_STATE => {
                let now = self.clock(now_ms);
                let (lockout_ms, left) = self.patient_bolus_availability(now);
                CommandResult::SuccessU32U32(lockout_ms, left)
            }
            PENDING_EVENTS => {
                let now = self.clock(now_ms);
                match self.authorize(caller, &[Role::Telemetry], num, now) {
                    Ok(()) => CommandResult::SuccessU32(
                        u32::try_from(self.events.len()).unwrap_or(u32::MAX),
                    ),
                    Err(e) => CommandResult::Failure(e),
                }
            }
            FULL_STATUS => {
                let now = self.clock(now_ms);
                let status = self.status(now);
                match postcard::to_slice(&status, rw) {
                    Ok(written) => {
                        CommandResult::SuccessU32(u32::try_from(written.len()).unwrap_or(u32::MAX))
                    }
                    Err(_) => CommandResult::Failure(ErrorCode::InvalidArgument),
                }
            }
            REPORT_PATIENT_DENIAL => {
                let reason = ErrorCode::from_code(u16::try_from(arg1).unwrap_or(u16::MAX));
                self.report_patient_denial(caller, reason, arg2, now_ms)
                    .into()
            }
            RELAY_POST => match ro.get(..arg2 as usize) {
                Some(payload) => match self.relay_post(caller, arg1, payload, now_ms) {
                    Ok(ticket) => CommandResult::SuccessU32(ticket),
                    Err(e) => CommandResult::Failure(e),
                },
                None => self.refuse_after_authorize(caller, num, now_ms, &[Role::Telemetry]),
            },
            RELAY_TAKE => match self.relay_take(caller, rw, now_ms) {
                Ok(taken) => CommandResult::SuccessU32U32(
                    taken.ticket,
                    u32::from(taken.kind.code()) | ((taken.len as u32) << 16),
                ),
                Err(e) => CommandResult::Failure(e),
            },
            RELAY_ANSWER => self.relay_answer(caller, arg1, arg2, now_ms).into(),
            SAVE_APP_RECORD => match ro.get(..arg1 as usize) {
                Some(record) => self.save_app_record(caller, record, now_ms).into(),
                None => self.refuse_after_authorize(caller, num, now_ms, &[Role::Dosing]),
            },
            LOAD_APP_RECORD => match self.load_app_record(caller, rw, now_ms) {
                Ok(len) => CommandResult::SuccessU32(u32::try_from(len).unwrap_or(u32::MAX)),
                Err(e) => CommandResult::Failure(e),
            },
            RELAY_RESULT => match self.relay_result(caller, now_ms) {
                Ok((ticket, verdict)) => {
                    CommandResult::SuccessU32U32(ticket, relay_box::verdict_code(verdict))
                }
                Err(e) => CommandResult::Failure(e),
            },
            _ => CommandResult::Failure(ErrorCode::NoSupport),
        }
    }

    /// A malformed buffer still gets the role check first, so an unentitled
    /// app learns nothing from the argument checks and is audited.
    fn refuse_after_authorize(
        &mut self,
        caller: AppId,
        num: u16,
        now_ms: u64,
        roles: &[Role],
    ) -> CommandResult {
        let now = self.clock(now_ms);
        match self.authorize(caller, roles, num, now) {
            Ok(()) => CommandResult::Failure(ErrorCode::InvalidArgument),
            Err(e) => CommandResult::Failure(e),
        }
    }

    /// A digest of every safety-relevant piece of state, for tests that
    /// check a refusal changed nothing.
    #[doc(hidden)]
    pub fn safety_state(&self) -> impl PartialEq + core::fmt::Debug + '_ {
        (
            &self.p.signed_rx,
            self.p.serial_floor,
            self.p.suspended,
            &self.p.ledger,
            self.p.basal_carry_nl_ms_per_h,
            self.p.bolus_carry_nl_ms_per_h,
            self.p.reservoir_nl,
            &self.p.alarms,
            self.p.utc_offset_ms,
            self.watchdog_deadline_ms,
            self.watchdog_expired,
        )
    }
}

fn alarm_code_arg(arg: u32) -> AlarmCode {
    AlarmCode::from_code(u16::try_from(arg).unwrap_or(u16::MAX))
}

fn bolus_rate_nl_per_h(run: &Run) -> u64 {
    u64::from(mean_rate_nl_per_h(
        u32::try_from(run.nl_den).unwrap_or(u32::MAX),
        u32::try_from(run.ms_num).unwrap_or(u32::MAX),
    ))
}

/// Mean rate of `volume_nl` over `duration_ms`, rounded up (the safe side
/// for rate limits), saturating.
pub fn mean_rate_nl_per_h(volume_nl: u32, duration_ms: u32) -> u32 {
    if duration_ms == 0 {
        return u32::MAX;
    }
    let rate = (u64::from(volume_nl) * MS_PER_HOUR).div_ceil(u64::from(duration_ms));
    u32::try_from(rate).unwrap_or(u32::MAX)
}

fn claimed_serial(signed: &[u8]) -> u32 {
    pump_protocol::prescription::split_signed(signed)
        .ok()
        .and_then(|parts| pump_protocol::prescription::decode_body(parts.body).ok())
        .map_or(0, |rx| rx.serial)
}

/// Decodes a saved record into `p`; on any failure `p` is left as it was.
fn decode_saved(saved: &[u8], p: &mut Persistent) -> bool {
    let Some(body_len) = saved.len().checked_sub(4) else {
        return false;
    };
    let (body, crc) = saved.split_at(body_len);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if CRC32C.checksum(body) != crc {
        return false;
    }
    match postcard::from_bytes::<Persistent>(body) {
        Ok(decoded) if decoded.format == SAVED_FORMAT => {
            *p = decoded;
            true
        }
        _ => false,
    }
}

/// Command numbers of the syscall interface.
pub mod command {
    /// Driver exists.
    pub const EXISTS: u16 = 0;
    /// Status summary.
    pub const STATUS: u16 = 1;
    /// Set basal rate.
    pub const SET_BASAL: u16 = 2;
    /// Clinician bolus.
    pub const CLINICIAN_BOLUS: u16 = 3;
    /// Patient bolus.
    pub const PATIENT_BOLUS: u16 = 4;
    /// Priming bolus.
    pub const PRIMING_BOLUS: u16 = 5;
    /// Bridge bolus.
    pub const BRIDGE_BOLUS: u16 = 6;
    /// Stop the running bolus.
    pub const STOP_BOLUS: u16 = 7;
    /// Watchdog check-in.
    pub const CHECK_IN: u16 = 8;
    /// Install a signed prescription.
    pub const INSTALL_PRESCRIPTION: u16 = 9;
    /// Drain events.
    pub const DRAIN_EVENTS: u16 = 10;
    /// Acknowledge an alarm.
    pub const ACKNOWLEDGE_ALARM: u16 = 11;
    /// Clear a latched fault.
    pub const CLEAR_FAULT: u16 = 12;
    /// Suspend therapy.
    pub const SUSPEND: u16 = 13;
    /// Resume therapy.
    pub const RESUME: u16 = 14;
    /// Record a refill.
    pub const REFILL: u16 = 15;
    /// Set the clock.
    pub const SET_CLOCK: u16 = 16;
    /// Read the installed prescription.
    pub const READ_PRESCRIPTION: u16 = 17;
    /// Patient bolus lockout and count.
    pub const PATIENT_BOLUS_STATE: u16 = 18;
    /// Number of events waiting.
    pub const PENDING_EVENTS: u16 = 19;
    /// Full status snapshot (postcard `StatusSnapshot`) into read-write allow 0.
    pub const FULL_STATUS: u16 = 20;
    /// The dosing app refused a patient bolus press itself (therapy rules).
    pub const REPORT_PATIENT_DENIAL: u16 = 21;
    /// Post a programmer message to the relay.
    pub const RELAY_POST: u16 = 22;
    /// Take the oldest relayed message.
    pub const RELAY_TAKE: u16 = 23;
    /// Answer a relayed request.
    pub const RELAY_ANSWER: u16 = 24;
    /// Read the verdict on the relayed request.
    pub const RELAY_RESULT: u16 = 25;
    /// Store the dosing app's own record.
    pub const SAVE_APP_RECORD: u16 = 26;
    /// Read the dosing app's own record.
    pub const LOAD_APP_RECORD: u16 = 27;
}
