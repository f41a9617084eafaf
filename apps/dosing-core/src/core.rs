//! The dosing core: what the dosing app decides, as a state machine driven
//! by its shell (the libtock-rs binary, or a test).
//!
//! The shell calls one entry point per thing that happens — its timer fired
//! ([`DosingCore::wake`]), a capsule upcall ([`DosingCore::on_delivery_done`],
//! [`DosingCore::on_alarm_changed`], [`DosingCore::on_relay_posted`] for the
//! programmer requests and notices the telemetry app posts to the capsule's
//! relay), a bolus button press —
//! and then sleeps until [`DosingCore::next_wakeup`] or the next event. Every
//! entry point is a wake-up: it checks in with the capsule's watchdog,
//! re-reads the installed prescription, sets the basal rate the schedule asks
//! for if it is not already running, and advances a priming or bridge flush.
//! Each does a bounded amount of work: a handful of capsule commands, no
//! loop that waits or retries.

use heapless::{Deque, Vec};
use pump_protocol::prescription::MAX_SIGNED_PRESCRIPTION_LEN;
use pump_protocol::{
    AlarmCode, ClearFault, ClinicianBolus, DeliveryKind, DeliveryOutcome, ErrorCode, Message,
    MessageKind, PatientBolusRequest, PumpState, Refill, Resume, SetClock, StatusSnapshot, Suspend,
};

use crate::capsule::{DosingCapsule, Now, PatientBolusState, RelayItem};
use crate::model::{BolusPlan, ModelError, Therapy};
use crate::record::{
    encode_record, load_record, RecordError, RECORD_REFRESH_MS, SAVED_RECORD_MAX_LEN,
};
use crate::saved::{CatheterContents, Flush, FlushKind, SavedState};
use crate::schedule::BasalSchedule;
use crate::units::{dose_volume_nl, duration_at_rate_ms, volume_at_rate_nl, MS_PER_DAY};

/// Refusals kept for the programmer and the patient's display.
pub const REFUSAL_LOG_LEN: usize = 8;

/// A request the capsule refused is not repeated before this long has
/// passed, unless a schedule edge or a programmer command comes first: at
/// most four denials an hour in the log, and basal is retried at least that
/// often after a transient refusal (daily limit, busy ledger).
pub const RETRY_INTERVAL_MS: u64 = 15 * 60_000;

/// A bolus whose completion upcall has not arrived this long after its
/// planned end is taken as finished (a capsule bolus never outlasts its
/// duration).
pub const BOLUS_END_GRACE_MS: u64 = 1_000;

/// Shortest check-in period, whatever the capsule's timeout.
pub const MIN_CHECKIN_PERIOD_MS: u64 = 1_000;

/// Most relay entries [`DosingCore::on_relay_posted`] takes per call (the
/// capsule's relay holds at most eight); the rest wait for the next call.
pub const RELAY_MAX_ITEMS_PER_CALL: usize = 8;

/// Payload buffer for one relay entry (the capsule's
/// `RELAY_PAYLOAD_MAX_LEN`).
pub const RELAY_PAYLOAD_BUF_LEN: usize = 16;

/// A programmer command the capsule accepted, as far as the dosing app
/// cares (what `on_programmer_command` and relayed notices have in common).
#[derive(Clone, Copy)]
enum Applied<'a> {
    Suspend,
    /// Resume, fault clearing or a new prescription.
    Restart,
    Refill(&'a Refill),
    Other,
}

/// Board facts the dosing app needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DosingConfig {
    /// Volume of one motor step. Flush chunks are never smaller, so that no
    /// chunk completes without moving the motor.
    pub motor_step_nl: u32,
    /// Drug volume inside the pump between the reservoir and the catheter
    /// port; flushed with the catheter by a bridge or priming bolus.
    pub pump_dead_volume_nl: u32,
    /// How often to wake while no prescription gives a watchdog timeout.
    pub idle_wake_interval_ms: u32,
}

/// What the dosing app is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No prescription is installed.
    NoPrescription,
    /// The installed prescription's therapy cannot be run; check-ins are
    /// withheld so that the capsule applies the physician's silence policy
    /// and raises its high-priority watchdog alarm.
    InvalidTherapy(ModelError),
    /// Therapy is suspended by the programmer.
    Suspended,
    /// The capsule stopped delivery for a fault.
    FaultStopped,
    /// Priming an empty catheter.
    Priming,
    /// A prescription for another drug or concentration is installed, but
    /// the reservoir has not been refilled yet: the drug in the pump still
    /// runs at its own schedule's volume rate.
    DrugChangePending,
    /// Bridge bolus: the old drug in the catheter path runs out at its own
    /// rate before the new schedule starts.
    Bridging,
    /// The schedule runs.
    Running,
}

/// Why the core will wake next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeReason {
    /// Watchdog check-in (half the capsule's timeout after the last one).
    Watchdog,
    /// No prescription: periodic look for one.
    Idle,
    /// A basal schedule step starts.
    ScheduleEdge,
    /// A bolus should have ended.
    BolusEnd,
    /// The patient-bolus lockout ends.
    LockoutEnd,
    /// A refused request may be retried.
    Retry,
}

/// When to call [`DosingCore::wake`] next, on the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wakeup {
    /// The instant.
    pub at_monotonic_ms: u64,
    /// The earliest reason.
    pub reason: WakeReason,
}

/// Who refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decider {
    /// The dosing app, from the therapy (before asking the capsule).
    Dosing,
    /// The capsule, from the envelope.
    Capsule,
}

/// A request to the capsule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Set the basal rate.
    Basal {
        /// Rate asked for.
        rate_nl_per_h: u32,
    },
    /// Start a bolus.
    Bolus {
        /// Kind.
        kind: DeliveryKind,
        /// Volume.
        volume_nl: u32,
        /// Duration.
        duration_ms: u32,
    },
    /// Check in.
    CheckIn,
}

/// A refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// When (monotonic).
    pub at_monotonic_ms: u64,
    /// What was asked.
    pub request: Request,
    /// Why.
    pub reason: ErrorCode,
    /// Who said no.
    pub decided_by: Decider,
}

/// The answer to a patient bolus request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatientBolusVerdict {
    /// Started.
    Granted {
        /// Volume.
        volume_nl: u32,
        /// Over this long.
        duration_ms: u32,
        /// Boluses still allowed in the rolling 24 h after this one.
        boluses_left_24h: u32,
    },
    /// Refused; nothing started.
    Denied {
        /// Why.
        reason: ErrorCode,
        /// Who said no.
        decided_by: Decider,
        /// Time until a bolus may be requested again (0 unless the lockout
        /// is why).
        lockout_remaining_ms: u32,
        /// Boluses still allowed in the rolling 24 h.
        boluses_left_24h: u32,
    },
}

/// What the patient's programmer shows (myPTM): the stricter of the
/// therapy's and the envelope's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatientBolusStatus {
    /// Patient bolus prescribed at all.
    pub prescribed: bool,
    /// Time until the lockout ends.
    pub lockout_remaining_ms: u32,
    /// Boluses still allowed in the rolling 24 h.
    pub boluses_left_24h: u32,
}

/// What the refill workflow shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefillStatus {
    /// Reservoir volume, from the capsule.
    pub reservoir_nl: u32,
    /// Projected refill-by time (UTC), from the capsule.
    pub refill_by_utc_ms: Option<u64>,
    /// The capsule's highest active alarm (low reservoir, refill due, empty…).
    pub top_alarm: Option<AlarmCode>,
    /// Volume of a bridge or priming flush still to run.
    pub flush_remaining_nl: u32,
}

/// A running bolus the app started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ActiveBolus {
    kind: DeliveryKind,
    volume_nl: u32,
    ends_at_ms: u64,
}

/// The dosing app's logic. See the module docs.
pub struct DosingCore {
    config: DosingConfig,
    saved: SavedState,
    saved_dirty: bool,
    /// When this life of the app last saved its record (monotonic).
    record_saved_at_ms: Option<u64>,
    signed_rx: Option<Vec<u8, MAX_SIGNED_PRESCRIPTION_LEN>>,
    therapy: Option<Therapy>,
    invalid_therapy: Option<ModelError>,
    /// Schedule of the drug in the catheter path, at its own concentration.
    catheter_schedule: Option<BasalSchedule>,
    /// Last pump state seen in a status snapshot, refusal or programmer command.
    pump_state: Option<PumpState>,
    /// The basal rate the capsule runs, as far as the app knows (`None`: unknown).
    basal_running_nl_per_h: Option<u32>,
    /// Whether the basal run the capsule reports is one the app started
    /// itself (not the watchdog's silence fallback, not a run of an earlier
    /// life of the app, not one that ended since).
    basal_owned: bool,
    /// `Stopped` basal upcalls still to come for runs the app replaced itself.
    expected_basal_stops: u8,
    /// The last basal rate the capsule accepted and when (monotonic): the
    /// same rate is not asked for again within [`MIN_CHECKIN_PERIOD_MS`]
    /// (unless a programmer command or a new prescription comes between),
    /// so upcalls about replaced runs cannot turn into a loop of requests.
    basal_set_at: Option<(u32, u64)>,
    bolus: Option<ActiveBolus>,
    refusals: Deque<Refusal, REFUSAL_LOG_LEN>,
    /// A refused request and the instant from which it may be repeated.
    held: Option<(Request, u64)>,
    checkin_timeout_ms: u32,
    last_checkin_ms: Option<u64>,
    last_status: Option<StatusSnapshot>,
    wakeup: Wakeup,
}

impl DosingCore {
    /// A core starting from `saved`: the state [`load_record`] read back
    /// from the capsule, or `SavedState::new(..)` when there is none. The
    /// core saves its record itself (command 26) whenever the state
    /// changes, and while it holds patient grants again at its first
    /// wake-up [`RECORD_REFRESH_MS`] after the last save (see
    /// [`crate::record`]).
    ///
    /// [`load_record`]: crate::load_record
    pub fn new(config: DosingConfig, saved: SavedState) -> Self {
        let mut core = Self {
            config,
            saved,
            saved_dirty: false,
            record_saved_at_ms: None,
            signed_rx: None,
            therapy: None,
            invalid_therapy: None,
            catheter_schedule: None,
            pump_state: None,
            basal_running_nl_per_h: None,
            basal_owned: false,
            expected_basal_stops: 0,
            basal_set_at: None,
            bolus: None,
            refusals: Deque::new(),
            held: None,
            checkin_timeout_ms: 0,
            last_checkin_ms: None,
            last_status: None,
            wakeup: Wakeup {
                at_monotonic_ms: 0,
                reason: WakeReason::Idle,
            },
        };
        core.rebuild_catheter_schedule();
        core
    }

    /// Takes the state from the app's record in the capsule (command 27),
    /// for a core just built with `SavedState::new(..)`, before its first
    /// wake-up; returns what to add to the shell's clock, which reads
    /// `raw_now_ms`, so that the app's monotonic time resumes from the
    /// record's ([`Restored::monotonic_offset_ms`]). On an error the state
    /// is left as it was.
    ///
    /// Not inlined: the record is decoded in this call's own frame, which
    /// is gone before the app's loop runs.
    ///
    /// [`Restored::monotonic_offset_ms`]: crate::Restored::monotonic_offset_ms
    #[inline(never)]
    pub fn restore_record(
        &mut self,
        capsule: &mut impl DosingCapsule,
        raw_now_ms: u64,
    ) -> Result<u64, RecordError> {
        let restored = load_record(capsule)?;
        let offset_ms = restored.monotonic_offset_ms(raw_now_ms);
        self.saved = restored.state;
        self.saved_dirty = false;
        self.rebuild_catheter_schedule();
        Ok(offset_ms)
    }

    // ------------------------------------------------------------ queries --

    /// What the app is doing.
    pub fn phase(&self) -> Phase {
        let Some(therapy) = &self.therapy else {
            return match self.invalid_therapy {
                Some(e) => Phase::InvalidTherapy(e),
                None => Phase::NoPrescription,
            };
        };
        match self.pump_state {
            Some(PumpState::Suspended) => return Phase::Suspended,
            Some(PumpState::FaultStopped) => return Phase::FaultStopped,
            Some(PumpState::NoPrescription) | Some(PumpState::Restoring) => {
                return Phase::NoPrescription
            }
            _ => {}
        }
        if let Some(flush) = &self.saved.flush {
            return match flush.kind {
                FlushKind::Priming => Phase::Priming,
                FlushKind::Bridge => Phase::Bridging,
            };
        }
        match &self.saved.catheter {
            CatheterContents::Drug { drug, .. } if *drug != therapy.drug => {
                Phase::DrugChangePending
            }
            _ => Phase::Running,
        }
    }

    /// The therapy being run.
    pub fn therapy(&self) -> Option<&Therapy> {
        self.therapy.as_ref()
    }

    /// When to wake next (also returned by every entry point).
    pub fn next_wakeup(&self) -> Wakeup {
        self.wakeup
    }

    /// The basal rate the app wants running at `now` (`None`: it commands
    /// none, e.g. while suspended).
    pub fn basal_target_nl_per_h(&self, now: Now) -> Option<u32> {
        match self.phase() {
            Phase::Running => self
                .therapy
                .as_ref()
                .map(|t| t.schedule.rate_nl_per_h_at(now.utc_ms)),
            // The pump still holds the old drug, but the capsule already
            // enforces the new envelope, whose volume limits follow the new
            // concentration: above its maximum rate the old schedule would be
            // refused outright (no therapy at all until the refill), so it
            // runs as close to its own rate as the envelope in force allows.
            Phase::DrugChangePending => {
                let cap_nl_per_h = self
                    .therapy
                    .as_ref()
                    .map_or(0, |t| t.envelope.max_basal_rate_nl_per_h);
                self.catheter_schedule
                    .as_ref()
                    .map(|s| s.rate_nl_per_h_at(now.utc_ms).min(cap_nl_per_h))
            }
            Phase::Priming | Phase::Bridging => Some(0),
            Phase::NoPrescription
            | Phase::InvalidTherapy(_)
            | Phase::Suspended
            | Phase::FaultStopped => None,
        }
    }

    /// The basal rate the capsule runs, as far as the app knows.
    pub fn basal_running_nl_per_h(&self) -> Option<u32> {
        self.basal_running_nl_per_h
    }

    /// The most recent refusals, oldest first.
    pub fn refusals(&self) -> impl Iterator<Item = &Refusal> {
        self.refusals.iter()
    }

    /// The most recent refusal.
    pub fn last_refusal(&self) -> Option<&Refusal> {
        self.refusals.back()
    }

    /// What the app keeps across resets.
    pub fn saved_state(&self) -> &SavedState {
        &self.saved
    }

    /// Whether the state changed since the capsule last accepted the
    /// record (a refused save is tried again at the next wake-up).
    pub fn record_unsaved(&self) -> bool {
        self.saved_dirty
    }

    /// The latest capsule status snapshot, if the capsule provides one.
    pub fn last_status(&self) -> Option<&StatusSnapshot> {
        self.last_status.as_ref()
    }

    /// The refill workflow's figures: reservoir and refill date from the
    /// capsule, and what flush is left.
    pub fn refill_status(&self) -> RefillStatus {
        RefillStatus {
            reservoir_nl: self.last_status.as_ref().map_or(0, |s| s.reservoir_nl),
            refill_by_utc_ms: self.last_status.as_ref().and_then(|s| s.refill_by_time_ms),
            top_alarm: self.last_status.as_ref().and_then(|s| s.top_alarm),
            flush_remaining_nl: self.saved.flush.map_or(0, |f| f.remaining_nl),
        }
    }

    /// The patient bolus as the therapy limits it (without asking the capsule).
    pub fn own_patient_bolus_status(&self, now: Now) -> PatientBolusStatus {
        let Some(program) = self.therapy.as_ref().and_then(|t| t.patient_bolus) else {
            return PatientBolusStatus {
                prescribed: false,
                lockout_remaining_ms: 0,
                boluses_left_24h: 0,
            };
        };
        let in_window = self
            .saved
            .patient_grants_ms
            .iter()
            .filter(|t| in_rolling_day(**t, now))
            .count();
        let latest = self.saved.patient_grants_ms.iter().copied().max();
        let lockout_end = latest.map_or(0, |t| t.saturating_add(u64::from(program.lockout_ms)));
        PatientBolusStatus {
            prescribed: true,
            lockout_remaining_ms: u32::try_from(lockout_end.saturating_sub(now.monotonic_ms))
                .unwrap_or(u32::MAX),
            boluses_left_24h: u32::from(program.max_per_24h)
                .saturating_sub(u32::try_from(in_window).unwrap_or(u32::MAX)),
        }
    }

    /// What the patient's programmer shows: the stricter of the therapy's
    /// limits and the capsule's envelope state (command 18).
    pub fn patient_bolus_status(
        &self,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> PatientBolusStatus {
        let own = self.own_patient_bolus_status(now);
        match capsule.patient_bolus_state() {
            Ok(envelope) => combine(own, envelope),
            Err(_) => own,
        }
    }

    // -------------------------------------------------------- entry points --

    /// The app's timer fired.
    pub fn wake(&mut self, capsule: &mut impl DosingCapsule, now: Now) -> Wakeup {
        self.service(capsule, now)
    }

    /// Upcall: a delivery ended (`kind`, `outcome`, volume since its last
    /// checkpoint).
    pub fn on_delivery_done(
        &mut self,
        kind: DeliveryKind,
        outcome: DeliveryOutcome,
        volume_nl: u32,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> Wakeup {
        match kind {
            DeliveryKind::Basal | DeliveryKind::SilenceFallback => {
                if outcome == DeliveryOutcome::Checkpoint {
                    // A running run's hourly record: nothing changed.
                } else if outcome == DeliveryOutcome::Stopped && self.expected_basal_stops > 0 {
                    // The end of a run the app replaced itself.
                    self.expected_basal_stops -= 1;
                } else {
                    // A basal run ended that the app did not replace, or
                    // one it cannot tell from one it replaced (a run of an
                    // earlier life of the app, the silence fallback). What
                    // runs now is unknown until the status below says; the
                    // request that follows is bounded by `apply_basal` (at
                    // most one per entry point, never the same twice at one
                    // instant), so however many such upcalls come, they
                    // cannot loop.
                    self.basal_running_nl_per_h = None;
                    self.basal_owned = false;
                    if outcome != DeliveryOutcome::Stopped {
                        // An abort is the capsule's own doing (a fault, the
                        // watchdog), never the report of a run a request
                        // replaced, and no request makes the capsule abort:
                        // asking again at once cannot loop, and a refusal
                        // tells the app why delivery stopped.
                        self.basal_set_at = None;
                    }
                }
            }
            _ => {
                if let Some(bolus) = self.bolus.filter(|b| b.kind == kind) {
                    // A bolus that ran to its end delivered what was asked:
                    // the capsule carries any part-step into the next bolus.
                    let delivered = if outcome == DeliveryOutcome::Completed {
                        bolus.volume_nl
                    } else {
                        volume_nl
                    };
                    self.bolus = None;
                    self.account_flush(kind, delivered);
                }
            }
        }
        self.service(capsule, now)
    }

    /// Upcall: the capsule's alarm output changed.
    pub fn on_alarm_changed(&mut self, capsule: &mut impl DosingCapsule, now: Now) -> Wakeup {
        self.service(capsule, now)
    }

    /// A programmer command the telemetry app carried out on the capsule
    /// (the capsule accepted it). Refill, resume, fault clearing, a new
    /// prescription or clock can each change what the app should do, so any
    /// of them also lifts the hold on a refused request.
    pub fn on_programmer_command(
        &mut self,
        command: &Message,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> Wakeup {
        let applied = match command {
            Message::Suspend(_) => Applied::Suspend,
            Message::Resume(_) | Message::ClearFault(_) | Message::InstallPrescription(_) => {
                Applied::Restart
            }
            Message::Refill(refill) => Applied::Refill(refill),
            _ => Applied::Other,
        };
        self.apply_command(applied, capsule, now)
    }

    fn apply_command(
        &mut self,
        applied: Applied<'_>,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> Wakeup {
        match applied {
            Applied::Suspend => {
                self.pump_state = Some(PumpState::Suspended);
                self.basal_running_nl_per_h = Some(0);
                self.expected_basal_stops = 0;
            }
            // Each of these may end what stopped delivery (a refill ends an
            // empty reservoir, a new prescription an integrity fault): the
            // pump state is learnt again, from the status below or from the
            // capsule's answer to the next request.
            Applied::Restart => {
                self.pump_state = None;
            }
            Applied::Refill(refill) => {
                self.pump_state = None;
                self.on_refill(refill);
            }
            Applied::Other => {}
        }
        self.held = None;
        self.basal_set_at = None;
        self.service(capsule, now)
    }

    /// Upcall: the capsule's relay holds programmer requests or notices
    /// the telemetry app posted. Takes at most [`RELAY_MAX_ITEMS_PER_CALL`]
    /// entries, oldest first, and acts on each as the app's own logic
    /// decides: a clinician bolus goes through
    /// [`DosingCore::request_clinician_bolus`], a patient bolus request
    /// through [`DosingCore::request_patient_bolus`], a notice through the
    /// logic of [`DosingCore::on_programmer_command`]. Every request taken
    /// is answered exactly once, with the app's verdict, or `BadPayload` if
    /// its payload does not decode; notices that do not decode and kinds the
    /// app does not know are skipped. Entries left over (a full relay) are
    /// taken at the next call; the capsule notifies again on every post.
    pub fn on_relay_posted(&mut self, capsule: &mut impl DosingCapsule, now: Now) -> Wakeup {
        let mut serviced = false;
        for _ in 0..RELAY_MAX_ITEMS_PER_CALL {
            let mut buf = [0u8; RELAY_PAYLOAD_BUF_LEN];
            let Ok(item) = capsule.relay_take(&mut buf) else {
                // NotReady (empty), or an entry this buffer cannot hold (the
                // capsule keeps it; it cannot be longer than the buffer).
                break;
            };
            let payload = buf.get(..item.len).unwrap_or_default();
            serviced |= self.on_relay_item(item, payload, capsule, now);
        }
        if !serviced {
            // Nothing acted on: still a wake-up (check-in, basal).
            self.service(capsule, now);
        }
        self.wakeup = self.compute_wakeup(now);
        self.wakeup
    }

    /// Acts on one relay entry; returns whether a wake-up ran for it.
    fn on_relay_item(
        &mut self,
        item: RelayItem,
        payload: &[u8],
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> bool {
        match MessageKind::from_code(item.kind) {
            Some(MessageKind::ClinicianBolus) => {
                let verdict = match decode_exact::<ClinicianBolus>(payload) {
                    Some(request) => self
                        .request_clinician_bolus(request.dose_ug, request.duration_ms, capsule, now)
                        .map(|_| ()),
                    None => Err(ErrorCode::BadPayload),
                };
                // A refused answer (the request timed out) changes nothing here.
                let _ = capsule.relay_answer(item.ticket, verdict);
                verdict != Err(ErrorCode::BadPayload)
            }
            Some(MessageKind::PatientBolusRequest) => {
                let verdict = match decode_exact::<PatientBolusRequest>(payload) {
                    Some(_) => match self.request_patient_bolus(capsule, now) {
                        PatientBolusVerdict::Granted { .. } => Ok(()),
                        PatientBolusVerdict::Denied { reason, .. } => Err(reason),
                    },
                    None => Err(ErrorCode::BadPayload),
                };
                let _ = capsule.relay_answer(item.ticket, verdict);
                verdict != Err(ErrorCode::BadPayload)
            }
            Some(kind) => {
                let refill;
                let applied = match kind {
                    MessageKind::Suspend => {
                        decode_exact::<Suspend>(payload).map(|_| Applied::Suspend)
                    }
                    MessageKind::Resume => {
                        decode_exact::<Resume>(payload).map(|_| Applied::Restart)
                    }
                    MessageKind::ClearFault => {
                        decode_exact::<ClearFault>(payload).map(|_| Applied::Restart)
                    }
                    // Posted without its (long) payload.
                    MessageKind::InstallPrescription => {
                        payload.is_empty().then_some(Applied::Restart)
                    }
                    MessageKind::SetClock => {
                        decode_exact::<SetClock>(payload).map(|_| Applied::Other)
                    }
                    MessageKind::Refill => {
                        refill = decode_exact::<Refill>(payload);
                        refill.as_ref().map(Applied::Refill)
                    }
                    _ => None,
                };
                match applied {
                    Some(applied) => {
                        self.apply_command(applied, capsule, now);
                        true
                    }
                    None => false,
                }
            }
            None => false,
        }
    }

    /// The patient pressed the bolus button (or the patient programmer asked).
    pub fn request_patient_bolus(
        &mut self,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> PatientBolusVerdict {
        self.service(capsule, now);
        let verdict = self.decide_patient_bolus(capsule, now);
        if let PatientBolusVerdict::Denied {
            reason, decided_by, ..
        } = verdict
        {
            let request = self.therapy.as_ref().and_then(|t| t.patient_bolus).map_or(
                Request::Bolus {
                    kind: DeliveryKind::PatientBolus,
                    volume_nl: 0,
                    duration_ms: 0,
                },
                |p| Request::Bolus {
                    kind: DeliveryKind::PatientBolus,
                    volume_nl: p.bolus.volume_nl,
                    duration_ms: p.bolus.duration_ms,
                },
            );
            self.record_refusal(request, reason, decided_by, now);
        }
        if let PatientBolusVerdict::Denied {
            reason,
            decided_by: Decider::Dosing,
            lockout_remaining_ms,
            ..
        } = verdict
        {
            // The capsule never saw this press; it logs it on the app's
            // word so that every press reaches the log (SR-EVT-003). A
            // refusal of the report changes nothing here: the capsule audits
            // a role violation itself.
            let _ = capsule.report_patient_denial(reason, lockout_remaining_ms);
        }
        // A grant is saved before the app can be asked again.
        self.persist(capsule, now);
        self.wakeup = self.compute_wakeup(now);
        verdict
    }

    /// A clinician bolus of `dose_ug` over `duration_ms` from the programmer.
    pub fn request_clinician_bolus(
        &mut self,
        dose_ug: u32,
        duration_ms: u32,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> Result<BolusPlan, ErrorCode> {
        self.service(capsule, now);
        let result = self.start_clinician_bolus(dose_ug, duration_ms, capsule, now);
        self.wakeup = self.compute_wakeup(now);
        result
    }

    /// Stops the running bolus (the patient or clinician cancels it).
    pub fn cancel_bolus(
        &mut self,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> Result<(), ErrorCode> {
        capsule.stop_bolus()?;
        // The Stopped upcall reports what was delivered and clears the bolus.
        self.wakeup = self.compute_wakeup(now);
        Ok(())
    }

    // ------------------------------------------------------------- service --

    fn service(&mut self, capsule: &mut impl DosingCapsule, now: Now) -> Wakeup {
        self.sync_prescription(capsule);
        self.check_in(capsule, now);
        self.refresh_status(capsule);
        self.prune_grants(now);
        self.expire_bolus(now);
        self.expire_hold(now);
        self.settle_flush();
        if let Some(target) = self.basal_target_nl_per_h(now) {
            self.apply_basal(target, capsule, now);
        }
        self.advance_flush(capsule, now);
        self.persist(capsule, now);
        self.wakeup = self.compute_wakeup(now);
        self.wakeup
    }

    /// Saves the record (command 26) if the state changed, or if grants are
    /// held and the last save is [`RECORD_REFRESH_MS`] old: grants are on
    /// the app's clock, which a restart resumes from the record's time.
    // Not inlined: the record buffer must not add to `service`'s frame.
    #[inline(never)]
    fn persist(&mut self, capsule: &mut impl DosingCapsule, now: Now) {
        let refresh_due = !self.saved.patient_grants_ms.is_empty()
            && self
                .record_saved_at_ms
                .is_none_or(|at| now.monotonic_ms.saturating_sub(at) >= RECORD_REFRESH_MS);
        if !self.saved_dirty && !refresh_due {
            return;
        }
        let mut buf = [0u8; SAVED_RECORD_MAX_LEN];
        let Ok(len) = encode_record(&self.saved, now.monotonic_ms, &mut buf) else {
            return;
        };
        if capsule.save_record(&buf[..len]).is_ok() {
            self.saved_dirty = false;
            self.record_saved_at_ms = Some(now.monotonic_ms);
        }
    }

    /// Re-reads the installed prescription and adopts it if it changed.
    fn sync_prescription(&mut self, capsule: &mut impl DosingCapsule) {
        if self.fetch_prescription(capsule) {
            self.adopt();
        }
    }

    /// Reads the installed prescription into `signed_rx`; true if it
    /// changed there. Not inlined, and apart from [`Self::adopt`]: the read
    /// buffer must be off the stack before the prescription is decoded.
    #[inline(never)]
    fn fetch_prescription(&mut self, capsule: &mut impl DosingCapsule) -> bool {
        let mut buf = [0u8; MAX_SIGNED_PRESCRIPTION_LEN];
        match capsule.read_prescription(&mut buf) {
            Ok(len) => {
                let Some(bytes) = buf.get(..len) else {
                    return false;
                };
                if self.signed_rx.as_deref() == Some(bytes) {
                    return false;
                }
                // Copied in place: a temporary `Vec` would be a second
                // buffer on the stack. It cannot overflow (`bytes` came from
                // a buffer of the same capacity); if it did, the `Vec` stays
                // empty, which `adopt` refuses as malformed.
                let signed = self.signed_rx.get_or_insert_with(Vec::new);
                signed.clear();
                let _ = signed.extend_from_slice(bytes);
                true
            }
            Err(ErrorCode::NoPrescription) => {
                if self.signed_rx.is_some() || self.invalid_therapy.is_some() {
                    self.signed_rx = None;
                    self.therapy = None;
                    self.invalid_therapy = None;
                    self.held = None;
                }
                false
            }
            // Anything else (a role misconfiguration) leaves what the app
            // knows; the check-in's refusal is recorded below.
            Err(_) => false,
        }
    }

    /// Adopts the prescription in `signed_rx`.
    #[inline(never)]
    fn adopt(&mut self) {
        self.held = None;
        // Installing stops every delivery; what runs now is unknown until
        // the capsule says or the app sets it.
        self.basal_running_nl_per_h = None;
        self.basal_owned = false;
        self.expected_basal_stops = 0;
        self.basal_set_at = None;
        let signed = self.signed_rx.as_deref().unwrap_or_default();
        // Decoded straight into its place: a therapy is 0.6 KiB, and every
        // copy of it on the way would be on the stack.
        let therapy = match Therapy::from_signed(signed) {
            Ok(therapy) => &*self.therapy.insert(therapy),
            Err(e) => {
                self.therapy = None;
                self.invalid_therapy = Some(e);
                return;
            }
        };
        self.invalid_therapy = None;
        let flush_volume_nl = therapy
            .catheter_volume_nl
            .saturating_add(self.config.pump_dead_volume_nl);
        match &self.saved.catheter {
            CatheterContents::Unknown => {
                self.saved.catheter = drug_in_path(therapy);
            }
            CatheterContents::Empty => {
                if self.saved.flush.is_none() {
                    self.saved.flush = Some(Flush {
                        kind: FlushKind::Priming,
                        remaining_nl: flush_volume_nl,
                    });
                }
            }
            CatheterContents::Drug { drug, .. } if *drug == therapy.drug => {
                // Same drug: the path now runs under the new schedule, and a
                // bridge for a change that was reverted is moot.
                self.saved.catheter = drug_in_path(therapy);
                if self.saved.flush.map(|f| f.kind) == Some(FlushKind::Bridge) {
                    self.saved.flush = None;
                }
            }
            // Another drug or concentration: it waits for the refill.
            CatheterContents::Drug { .. } => {}
        }
        self.saved_dirty = true;
        self.rebuild_catheter_schedule();
    }

    fn on_refill(&mut self, _refill: &Refill) {
        let Some(therapy) = &self.therapy else {
            return;
        };
        let flush_volume_nl = therapy
            .catheter_volume_nl
            .saturating_add(self.config.pump_dead_volume_nl);
        match &self.saved.catheter {
            // The reservoir now holds the prescribed drug; the catheter path
            // still holds the old one, which must leave at its own rate.
            CatheterContents::Drug { drug, .. } if *drug != therapy.drug => {
                self.saved.flush = Some(Flush {
                    kind: FlushKind::Bridge,
                    remaining_nl: flush_volume_nl,
                });
                self.saved_dirty = true;
            }
            _ => {}
        }
    }

    fn check_in(&mut self, capsule: &mut impl DosingCapsule, now: Now) {
        if self.invalid_therapy.is_some() {
            // Withheld on purpose (see `Phase::InvalidTherapy`).
            return;
        }
        match capsule.check_in() {
            Ok(timeout_ms) => {
                self.checkin_timeout_ms = timeout_ms;
                self.last_checkin_ms = Some(now.monotonic_ms);
            }
            Err(reason) => self.record_refusal(Request::CheckIn, reason, Decider::Capsule, now),
        }
    }

    fn refresh_status(&mut self, capsule: &mut impl DosingCapsule) {
        if let Ok(status) = capsule.status() {
            self.pump_state = Some(status.pump_state);
            if self.basal_running_nl_per_h != Some(status.basal_rate_nl_per_h) {
                // Not the rate the app last set: not its run.
                self.basal_owned = false;
            }
            self.basal_running_nl_per_h = Some(status.basal_rate_nl_per_h);
            self.expected_basal_stops = 0;
            self.last_status = Some(status);
        }
    }

    fn prune_grants(&mut self, now: Now) {
        let before = self.saved.patient_grants_ms.len();
        self.saved
            .patient_grants_ms
            .retain(|t| in_rolling_day(*t, now));
        if self.saved.patient_grants_ms.len() != before {
            self.saved_dirty = true;
        }
    }

    /// A bolus whose upcall never came is over once its duration has passed.
    fn expire_bolus(&mut self, now: Now) {
        if let Some(bolus) = self
            .bolus
            .filter(|b| now.monotonic_ms >= b.ends_at_ms.saturating_add(BOLUS_END_GRACE_MS))
        {
            self.bolus = None;
            self.account_flush(bolus.kind, bolus.volume_nl);
        }
    }

    /// A hold whose retry time has come is over: the request may be made
    /// again, and the retry time is no longer a deadline to wake for (a
    /// past deadline would be a wake-up "now", again and again, while
    /// nothing asks for the request: busy-waiting).
    fn expire_hold(&mut self, now: Now) {
        if self
            .held
            .is_some_and(|(_, until)| until <= now.monotonic_ms)
        {
            self.held = None;
        }
    }

    fn account_flush(&mut self, kind: DeliveryKind, delivered_nl: u32) {
        let Some(flush) = self.saved.flush.as_mut() else {
            return;
        };
        if flush.kind.delivery_kind() != kind {
            return;
        }
        flush.remaining_nl = flush.remaining_nl.saturating_sub(delivered_nl);
        self.saved_dirty = true;
    }

    fn may_request(&self, request: Request, now: Now) -> bool {
        !matches!(self.held, Some((held, until)) if held == request && now.monotonic_ms < until)
    }

    fn apply_basal(&mut self, target: u32, capsule: &mut impl DosingCapsule, now: Now) {
        if self.basal_running_nl_per_h == Some(target) && (self.basal_owned || target == 0) {
            return;
        }
        let just_set = self.basal_set_at.is_some_and(|(rate, at)| {
            rate == target
                && (at..at.saturating_add(MIN_CHECKIN_PERIOD_MS)).contains(&now.monotonic_ms)
        });
        if just_set {
            // The capsule accepted this very rate moments ago: an upcall
            // since (the end of the run it replaced) is no news, and asking
            // again on it is how a loop of requests starts (SR-DOS-012).
            // Nothing but a programmer command (which lifts this) or a
            // fault (which the status or the next refusal shows) ends a
            // run that soon; the next wake-up looks again.
            self.basal_running_nl_per_h = Some(target);
            self.basal_owned = true;
            return;
        }
        let request = Request::Basal {
            rate_nl_per_h: target,
        };
        if !self.may_request(request, now) {
            return;
        }
        match capsule.set_basal(target) {
            Ok(()) => {
                if self.basal_running_nl_per_h.is_some_and(|r| r > 0) {
                    self.expected_basal_stops = self.expected_basal_stops.saturating_add(1);
                }
                self.basal_running_nl_per_h = Some(target);
                self.basal_owned = true;
                self.basal_set_at = Some((target, now.monotonic_ms));
                self.held = None;
            }
            Err(reason) => {
                self.note_refusal_state(reason);
                self.record_refusal(request, reason, Decider::Capsule, now);
                self.held = Some((request, now.monotonic_ms.saturating_add(RETRY_INTERVAL_MS)));
            }
        }
    }

    /// A refusal that names the pump's state updates what the app believes.
    fn note_refusal_state(&mut self, reason: ErrorCode) {
        match reason {
            ErrorCode::Suspended => self.pump_state = Some(PumpState::Suspended),
            ErrorCode::FaultActive => self.pump_state = Some(PumpState::FaultStopped),
            _ => {}
        }
    }

    fn advance_flush(&mut self, capsule: &mut impl DosingCapsule, now: Now) {
        let Some(flush) = self.saved.flush else {
            return;
        };
        if !matches!(self.phase(), Phase::Priming | Phase::Bridging) || self.bolus.is_some() {
            return;
        }
        let Some(therapy) = &self.therapy else {
            return;
        };
        let step_nl = self.config.motor_step_nl.max(1);
        let (rate_nl_per_h, edge) = match flush.kind {
            // The catheter holds no drug yet: fill it as fast as the
            // envelope lets basal run.
            FlushKind::Priming => (therapy.envelope.max_basal_rate_nl_per_h, None),
            FlushKind::Bridge => match &self.catheter_schedule {
                Some(s) => (
                    s.rate_nl_per_h_at(now.utc_ms),
                    s.next_edge_after(now.utc_ms),
                ),
                None => return,
            },
        };
        let mut volume_nl = flush.remaining_nl.min(therapy.envelope.max_bolus_nl);
        if let Some(edge) = edge {
            // A chunk ends at the old schedule's next edge, so the bridge
            // follows that schedule's rate step by step.
            volume_nl = volume_nl.min(volume_at_rate_nl(
                rate_nl_per_h,
                edge.saturating_sub(now.utc_ms),
            ));
        }
        if volume_nl < step_nl {
            // Zero rate, or too close to an edge: wait for the edge.
            return;
        }
        let Ok(duration_ms) = duration_at_rate_ms(volume_nl, rate_nl_per_h) else {
            return;
        };
        let kind = flush.kind.delivery_kind();
        let request = Request::Bolus {
            kind,
            volume_nl,
            duration_ms,
        };
        if !self.may_request(request, now) {
            return;
        }
        match capsule.start_bolus(kind, volume_nl, duration_ms) {
            Ok(()) => {
                self.bolus = Some(ActiveBolus {
                    kind,
                    volume_nl,
                    ends_at_ms: now.monotonic_ms.saturating_add(u64::from(duration_ms)),
                });
                self.held = None;
            }
            Err(reason) => {
                self.note_refusal_state(reason);
                self.record_refusal(request, reason, Decider::Capsule, now);
                self.held = Some((request, now.monotonic_ms.saturating_add(RETRY_INTERVAL_MS)));
            }
        }
    }

    /// Ends a flush with less than one motor step left: the capsule carries
    /// that much into the next delivery anyway.
    fn settle_flush(&mut self) {
        let done = self
            .saved
            .flush
            .is_some_and(|f| f.remaining_nl < self.config.motor_step_nl.max(1));
        if done && self.bolus.is_none() {
            self.finish_flush();
        }
    }

    fn finish_flush(&mut self) {
        self.saved.flush = None;
        if let Some(therapy) = &self.therapy {
            self.saved.catheter = drug_in_path(therapy);
        }
        self.saved_dirty = true;
        self.rebuild_catheter_schedule();
    }

    fn decide_patient_bolus(
        &mut self,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> PatientBolusVerdict {
        let own = self.own_patient_bolus_status(now);
        let deny = |reason, own: PatientBolusStatus| PatientBolusVerdict::Denied {
            reason,
            decided_by: Decider::Dosing,
            lockout_remaining_ms: if reason == ErrorCode::LockoutActive {
                own.lockout_remaining_ms
            } else {
                0
            },
            boluses_left_24h: own.boluses_left_24h,
        };
        if let Err(reason) = self.ready_for_bolus() {
            return deny(reason, own);
        }
        let Some(program) = self.therapy.as_ref().and_then(|t| t.patient_bolus) else {
            return deny(ErrorCode::NotPrescribed, own);
        };
        if own.lockout_remaining_ms > 0 {
            return deny(ErrorCode::LockoutActive, own);
        }
        if own.boluses_left_24h == 0 {
            return deny(ErrorCode::BolusCountReached, own);
        }
        let bolus = program.bolus;
        match capsule.start_bolus(
            DeliveryKind::PatientBolus,
            bolus.volume_nl,
            bolus.duration_ms,
        ) {
            Ok(()) => {
                if self.saved.patient_grants_ms.is_full() {
                    self.saved.patient_grants_ms.remove(0);
                }
                // Cannot fail: room was made above.
                let _ = self.saved.patient_grants_ms.push(now.monotonic_ms);
                self.saved_dirty = true;
                self.bolus = Some(ActiveBolus {
                    kind: DeliveryKind::PatientBolus,
                    volume_nl: bolus.volume_nl,
                    ends_at_ms: now
                        .monotonic_ms
                        .saturating_add(u64::from(bolus.duration_ms)),
                });
                let status = self.patient_bolus_status(capsule, now);
                PatientBolusVerdict::Granted {
                    volume_nl: bolus.volume_nl,
                    duration_ms: bolus.duration_ms,
                    boluses_left_24h: status.boluses_left_24h,
                }
            }
            Err(reason) => {
                self.note_refusal_state(reason);
                let status = self.patient_bolus_status(capsule, now);
                PatientBolusVerdict::Denied {
                    reason,
                    decided_by: Decider::Capsule,
                    lockout_remaining_ms: if reason == ErrorCode::LockoutActive {
                        status.lockout_remaining_ms
                    } else {
                        0
                    },
                    boluses_left_24h: status.boluses_left_24h,
                }
            }
        }
    }

    /// Whether a bolus of the therapy's drug may be asked for now.
    fn ready_for_bolus(&self) -> Result<(), ErrorCode> {
        match self.phase() {
            Phase::Running => {}
            Phase::NoPrescription => return Err(ErrorCode::NoPrescription),
            Phase::InvalidTherapy(_) => return Err(ErrorCode::MalformedPrescription),
            Phase::Suspended => return Err(ErrorCode::Suspended),
            Phase::FaultStopped => return Err(ErrorCode::FaultActive),
            // The catheter does not hold the prescribed drug: a dose
            // converted at the new concentration would be wrong.
            Phase::Priming | Phase::DrugChangePending | Phase::Bridging => {
                return Err(ErrorCode::NotReady)
            }
        }
        if self.bolus.is_some() {
            return Err(ErrorCode::Busy);
        }
        Ok(())
    }

    fn start_clinician_bolus(
        &mut self,
        dose_ug: u32,
        duration_ms: u32,
        capsule: &mut impl DosingCapsule,
        now: Now,
    ) -> Result<BolusPlan, ErrorCode> {
        let request = |volume_nl| Request::Bolus {
            kind: DeliveryKind::ClinicianBolus,
            volume_nl,
            duration_ms,
        };
        let plan = self.ready_for_bolus().and_then(|()| {
            let concentration = self
                .therapy
                .as_ref()
                .map_or(0, |t| t.drug.concentration_ug_per_ml);
            let volume_nl =
                dose_volume_nl(dose_ug, concentration).map_err(|_| ErrorCode::InvalidArgument)?;
            if volume_nl == 0 || duration_ms == 0 {
                return Err(ErrorCode::InvalidArgument);
            }
            Ok(BolusPlan {
                dose_ug,
                volume_nl,
                duration_ms,
            })
        });
        let plan = match plan {
            Ok(plan) => plan,
            Err(reason) => {
                self.record_refusal(request(0), reason, Decider::Dosing, now);
                return Err(reason);
            }
        };
        match capsule.start_bolus(DeliveryKind::ClinicianBolus, plan.volume_nl, duration_ms) {
            Ok(()) => {
                self.bolus = Some(ActiveBolus {
                    kind: DeliveryKind::ClinicianBolus,
                    volume_nl: plan.volume_nl,
                    ends_at_ms: now.monotonic_ms.saturating_add(u64::from(duration_ms)),
                });
                Ok(plan)
            }
            Err(reason) => {
                self.note_refusal_state(reason);
                self.record_refusal(request(plan.volume_nl), reason, Decider::Capsule, now);
                Err(reason)
            }
        }
    }

    fn record_refusal(
        &mut self,
        request: Request,
        reason: ErrorCode,
        decided_by: Decider,
        now: Now,
    ) {
        if self.refusals.is_full() {
            let _ = self.refusals.pop_front();
        }
        // Cannot fail: room was made above.
        let _ = self.refusals.push_back(Refusal {
            at_monotonic_ms: now.monotonic_ms,
            request,
            reason,
            decided_by,
        });
    }

    fn rebuild_catheter_schedule(&mut self) {
        // Built straight into its place, not through an `Option` temporary:
        // this runs below `adopt`, on the app's deepest stack path.
        self.catheter_schedule = None;
        if let CatheterContents::Drug { drug, basal_steps } = &self.saved.catheter {
            if let Ok(schedule) = BasalSchedule::new(basal_steps, drug.concentration_ug_per_ml) {
                self.catheter_schedule = Some(schedule);
            }
        }
    }

    /// The next wake-up: the earliest real future event. The base is the
    /// watchdog's half interval (or the idle interval), never less than
    /// [`MIN_CHECKIN_PERIOD_MS`] away and counted from the later of now and
    /// the last check-in, so a refused check-in cannot make it past; every
    /// other deadline counts only if it lies in the future. Nothing is ever
    /// "due now", so the app cannot busy-wait (SR-DOS-006).
    fn compute_wakeup(&self, now: Now) -> Wakeup {
        let watchdog = self.checkin_timeout_ms > 0 && self.invalid_therapy.is_none();
        let mut best = if watchdog {
            let period = (u64::from(self.checkin_timeout_ms) / 2).max(MIN_CHECKIN_PERIOD_MS);
            Wakeup {
                at_monotonic_ms: self
                    .last_checkin_ms
                    .map_or(now.monotonic_ms, |t| t.max(now.monotonic_ms))
                    .saturating_add(period),
                reason: WakeReason::Watchdog,
            }
        } else {
            Wakeup {
                at_monotonic_ms: now.monotonic_ms.saturating_add(
                    u64::from(self.config.idle_wake_interval_ms).max(MIN_CHECKIN_PERIOD_MS),
                ),
                reason: WakeReason::Idle,
            }
        };
        let mut consider = |at: Option<u64>, reason| {
            if let Some(at) = at.filter(|at| *at > now.monotonic_ms) {
                // On a tie the more specific reason (listed later) wins.
                if at <= best.at_monotonic_ms {
                    best = Wakeup {
                        at_monotonic_ms: at,
                        reason,
                    };
                }
            }
        };
        let schedule = match self.phase() {
            Phase::Running => self.therapy.as_ref().map(|t| &t.schedule),
            Phase::DrugChangePending | Phase::Bridging => self.catheter_schedule.as_ref(),
            _ => None,
        };
        let to_monotonic = |utc: u64| {
            now.monotonic_ms
                .saturating_add(utc.saturating_sub(now.utc_ms))
        };
        consider(
            schedule
                .and_then(|s| s.next_edge_after(now.utc_ms))
                .map(to_monotonic),
            WakeReason::ScheduleEdge,
        );
        consider(
            self.bolus
                .map(|b| b.ends_at_ms.saturating_add(BOLUS_END_GRACE_MS)),
            WakeReason::BolusEnd,
        );
        let own = self.own_patient_bolus_status(now);
        if own.lockout_remaining_ms > 0 {
            consider(
                Some(
                    now.monotonic_ms
                        .saturating_add(u64::from(own.lockout_remaining_ms)),
                ),
                WakeReason::LockoutEnd,
            );
        }
        consider(self.held.map(|(_, until)| until), WakeReason::Retry);
        // Unreachable (the base lies ahead and past deadlines were left
        // out) unless the clock saturates; even then never "now".
        if best.at_monotonic_ms <= now.monotonic_ms {
            best.at_monotonic_ms = now.monotonic_ms.saturating_add(MIN_CHECKIN_PERIOD_MS);
        }
        best
    }
}

/// Whether a grant at `t` lies in the rolling 24 h ending at `now`.
fn in_rolling_day(t: u64, now: Now) -> bool {
    now.monotonic_ms.saturating_sub(t) < MS_PER_DAY
}

fn drug_in_path(therapy: &Therapy) -> CatheterContents {
    CatheterContents::Drug {
        drug: therapy.drug.clone(),
        basal_steps: therapy.basal_steps.clone(),
    }
}

fn combine(own: PatientBolusStatus, envelope: PatientBolusState) -> PatientBolusStatus {
    PatientBolusStatus {
        prescribed: own.prescribed,
        lockout_remaining_ms: own.lockout_remaining_ms.max(envelope.lockout_remaining_ms),
        boluses_left_24h: own.boluses_left_24h.min(envelope.boluses_left_24h),
    }
}

/// `payload` decoded as a `T`, with no bytes left over (as the capsule
/// checked it with `Message::decode_payload`).
fn decode_exact<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Option<T> {
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Some(value),
        _ => None,
    }
}
