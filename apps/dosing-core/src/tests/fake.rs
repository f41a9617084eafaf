//! A recording fake of the capsule: every call is recorded, answers are
//! scripted, and it keeps just enough state (basal rate, running bolus) for
//! its status snapshot to tell the truth about what the app asked.

use std::collections::VecDeque;
use std::vec::Vec;

use pump_protocol::{AlarmCode, DeliveryKind, ErrorCode, PumpState, StatusSnapshot};
use pump_test_support::{RxBuilder, CHECKIN_TIMEOUT_MS, DAY_MS, UTC_2025_01_01_MS};

use crate::{
    CatheterContents, DosingCapsule, DosingConfig, DosingCore, Now, PatientBolusState, SavedState,
};

/// One capsule command the app issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    SetBasal(u32),
    StartBolus {
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
    },
    StopBolus,
    CheckIn,
    ReadPrescription,
    PatientBolusState,
    Status,
    ReportPatientDenial {
        reason: ErrorCode,
        lockout_remaining_ms: u32,
    },
    RelayTake,
    RelayAnswer(u32, Result<(), ErrorCode>),
}

pub struct FakeCapsule {
    pub calls: Vec<Call>,
    pub prescription: Option<Vec<u8>>,
    pub checkin_timeout_ms: u32,
    /// Scripted answers to `set_basal`, then `Ok`.
    pub basal_answers: VecDeque<Result<(), ErrorCode>>,
    /// Scripted answers to `start_bolus`, then `Ok`.
    pub bolus_answers: VecDeque<Result<(), ErrorCode>>,
    pub status_supported: bool,
    /// A condition that refuses every delivery (`FaultActive`,
    /// `Suspended`) and shows in the status's pump state.
    pub fault: Option<ErrorCode>,
    /// Kind of the running basal run (`Basal`, or the watchdog's `SilenceFallback`).
    pub basal_kind: DeliveryKind,
    /// Behave like a capsule that replaces the basal run on every accepted
    /// rate, the running one included, and reports the replaced run's end
    /// as a `Stopped` upcall (queued in `upcalls`).
    pub report_replaced_runs: bool,
    /// Upcalls not yet delivered: `(kind, outcome)`.
    pub upcalls: VecDeque<(DeliveryKind, pump_protocol::DeliveryOutcome)>,
    pub pump_state: PumpState,
    pub basal_rate_nl_per_h: u32,
    pub bolus: Option<(DeliveryKind, u32)>,
    pub reservoir_nl: u32,
    pub refill_by_time_ms: Option<u64>,
    pub top_alarm: Option<AlarmCode>,
    pub envelope_ptm: PatientBolusState,
    /// Relay entries waiting to be taken: `(ticket, kind code, payload)`.
    pub relay: VecDeque<(u32, u16, Vec<u8>)>,
    /// Scripted answers to `relay_answer`, then `Ok`.
    pub relay_answer_results: VecDeque<Result<(), ErrorCode>>,
    /// The app's record (commands 26/27), as the capsule keeps it.
    pub record: Vec<u8>,
    /// Records the capsule accepted, in order (not in `calls`, so that
    /// tests of the command sequence do not depend on saves).
    pub record_saves: Vec<Vec<u8>>,
    /// While set, command 26 is refused with this.
    pub refuse_record: Option<ErrorCode>,
}

impl FakeCapsule {
    pub fn new(prescription: Option<Vec<u8>>) -> Self {
        Self {
            calls: Vec::new(),
            prescription,
            checkin_timeout_ms: CHECKIN_TIMEOUT_MS,
            basal_answers: VecDeque::new(),
            bolus_answers: VecDeque::new(),
            status_supported: true,
            fault: None,
            basal_kind: DeliveryKind::Basal,
            report_replaced_runs: false,
            upcalls: VecDeque::new(),
            pump_state: PumpState::Running,
            basal_rate_nl_per_h: 0,
            bolus: None,
            reservoir_nl: 10_000_000,
            refill_by_time_ms: Some(UTC_2025_01_01_MS + 30 * DAY_MS),
            top_alarm: None,
            envelope_ptm: PatientBolusState {
                lockout_remaining_ms: 0,
                boluses_left_24h: 6,
            },
            relay: VecDeque::new(),
            relay_answer_results: VecDeque::new(),
            record: Vec::new(),
            record_saves: Vec::new(),
            refuse_record: None,
        }
    }

    /// The last record the capsule accepted, decoded.
    pub fn saved_record(&self) -> crate::Restored {
        crate::decode_record(&self.record).expect("a record the app can read")
    }

    pub fn basal_sets(&self) -> Vec<u32> {
        self.calls
            .iter()
            .filter_map(|c| match c {
                Call::SetBasal(rate) => Some(*rate),
                _ => None,
            })
            .collect()
    }

    pub fn boluses(&self) -> Vec<(DeliveryKind, u32, u32)> {
        self.calls
            .iter()
            .filter_map(|c| match c {
                Call::StartBolus {
                    kind,
                    volume_nl,
                    duration_ms,
                } => Some((*kind, *volume_nl, *duration_ms)),
                _ => None,
            })
            .collect()
    }

    /// Queues a relay entry with the next ticket.
    pub fn post(&mut self, kind: pump_protocol::MessageKind, payload: &[u8]) -> u32 {
        let ticket = self.relay.back().map_or(1, |e| e.0 + 1);
        self.relay
            .push_back((ticket, kind.code(), payload.to_vec()));
        ticket
    }

    /// Queues `message` as the telemetry app posts it.
    pub fn post_message(&mut self, message: &pump_protocol::Message) -> u32 {
        let mut buf = [0u8; 64];
        let len = match message {
            pump_protocol::Message::InstallPrescription(_) => 0,
            _ => message.encode_payload(&mut buf).unwrap(),
        };
        self.post(message.kind().unwrap(), &buf[..len])
    }

    /// The answers the app gave, in order.
    pub fn relay_answers(&self) -> Vec<(u32, Result<(), ErrorCode>)> {
        self.calls
            .iter()
            .filter_map(|c| match c {
                Call::RelayAnswer(ticket, verdict) => Some((*ticket, *verdict)),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, call: Call) -> usize {
        self.calls.iter().filter(|c| **c == call).count()
    }

    pub fn clear_calls(&mut self) {
        self.calls.clear();
    }
}

impl DosingCapsule for FakeCapsule {
    fn set_basal(&mut self, rate_nl_per_h: u32) -> Result<(), ErrorCode> {
        self.calls.push(Call::SetBasal(rate_nl_per_h));
        if let Some(fault) = self.fault {
            return Err(fault);
        }
        let answer = self.basal_answers.pop_front().unwrap_or(Ok(()));
        if answer.is_ok() {
            if self.report_replaced_runs && self.basal_rate_nl_per_h > 0 {
                self.upcalls
                    .push_back((self.basal_kind, pump_protocol::DeliveryOutcome::Stopped));
            }
            self.basal_rate_nl_per_h = rate_nl_per_h;
            self.basal_kind = DeliveryKind::Basal;
        }
        answer
    }

    fn start_bolus(
        &mut self,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
    ) -> Result<(), ErrorCode> {
        self.calls.push(Call::StartBolus {
            kind,
            volume_nl,
            duration_ms,
        });
        if let Some(fault) = self.fault {
            return Err(fault);
        }
        let answer = self.bolus_answers.pop_front().unwrap_or(Ok(()));
        if answer.is_ok() {
            self.bolus = Some((kind, volume_nl));
        }
        answer
    }

    fn stop_bolus(&mut self) -> Result<(), ErrorCode> {
        self.calls.push(Call::StopBolus);
        self.bolus = None;
        Ok(())
    }

    fn check_in(&mut self) -> Result<u32, ErrorCode> {
        self.calls.push(Call::CheckIn);
        Ok(if self.prescription.is_some() {
            self.checkin_timeout_ms
        } else {
            0
        })
    }

    fn read_prescription(&mut self, buf: &mut [u8]) -> Result<usize, ErrorCode> {
        self.calls.push(Call::ReadPrescription);
        let rx = self
            .prescription
            .as_ref()
            .ok_or(ErrorCode::NoPrescription)?;
        let dst = buf.get_mut(..rx.len()).ok_or(ErrorCode::InvalidArgument)?;
        dst.copy_from_slice(rx);
        Ok(rx.len())
    }

    fn patient_bolus_state(&mut self) -> Result<PatientBolusState, ErrorCode> {
        self.calls.push(Call::PatientBolusState);
        Ok(self.envelope_ptm)
    }

    fn status(&mut self) -> Result<StatusSnapshot, ErrorCode> {
        self.calls.push(Call::Status);
        if !self.status_supported {
            return Err(ErrorCode::NoSupport);
        }
        let pump_state = match self.fault {
            Some(ErrorCode::FaultActive) => PumpState::FaultStopped,
            Some(ErrorCode::Suspended) => PumpState::Suspended,
            _ => self.pump_state,
        };
        Ok(StatusSnapshot {
            time_ms: 0,
            pump_state,
            prescription_serial: 0,
            basal_rate_nl_per_h: self.basal_rate_nl_per_h,
            bolus_remaining_nl: self.bolus.map_or(0, |(_, v)| v),
            reservoir_nl: self.reservoir_nl,
            delivered_24h_nl: 0,
            patient_boluses_24h: 0,
            top_alarm: self.top_alarm,
            refill_by_time_ms: self.refill_by_time_ms,
        })
    }

    fn report_patient_denial(
        &mut self,
        reason: ErrorCode,
        lockout_remaining_ms: u32,
    ) -> Result<(), ErrorCode> {
        self.calls.push(Call::ReportPatientDenial {
            reason,
            lockout_remaining_ms,
        });
        Ok(())
    }

    fn relay_take(&mut self, buf: &mut [u8]) -> Result<crate::RelayItem, ErrorCode> {
        self.calls.push(Call::RelayTake);
        let (ticket, kind, payload) = self.relay.front().ok_or(ErrorCode::NotReady)?;
        let dst = buf
            .get_mut(..payload.len())
            .ok_or(ErrorCode::InvalidArgument)?;
        dst.copy_from_slice(payload);
        let item = crate::RelayItem {
            ticket: *ticket,
            kind: *kind,
            len: payload.len(),
        };
        self.relay.pop_front();
        Ok(item)
    }

    fn relay_answer(
        &mut self,
        ticket: u32,
        verdict: Result<(), ErrorCode>,
    ) -> Result<(), ErrorCode> {
        self.calls.push(Call::RelayAnswer(ticket, verdict));
        self.relay_answer_results.pop_front().unwrap_or(Ok(()))
    }

    fn save_record(&mut self, record: &[u8]) -> Result<(), ErrorCode> {
        if let Some(e) = self.refuse_record {
            return Err(e);
        }
        // The capsule's limit (infusion_core::APP_RECORD_MAX_LEN).
        if record.len() > 1024 {
            return Err(ErrorCode::InvalidArgument);
        }
        self.record = record.to_vec();
        self.record_saves.push(record.to_vec());
        Ok(())
    }

    fn load_record(&mut self, buf: &mut [u8]) -> Result<usize, ErrorCode> {
        buf.get_mut(..self.record.len())
            .ok_or(ErrorCode::InvalidArgument)?
            .copy_from_slice(&self.record);
        Ok(self.record.len())
    }
}

/// One motor step of the test board.
pub const STEP_NL: u32 = 250;
/// Dead volume modelled for the test pump.
pub const DEAD_VOLUME_NL: u32 = 20_000;

pub fn config() -> DosingConfig {
    DosingConfig {
        motor_step_nl: STEP_NL,
        pump_dead_volume_nl: DEAD_VOLUME_NL,
        idle_wake_interval_ms: 60_000,
    }
}

pub fn core_with(catheter: CatheterContents) -> DosingCore {
    DosingCore::new(config(), SavedState::new(catheter))
}

/// A time: monotonic 0 is 2025-01-01T00:00Z plus `offset_ms`; UTC equals
/// monotonic plus the epoch, unless a test moves the wall clock.
pub fn at(offset_ms: u64) -> Now {
    Now {
        monotonic_ms: offset_ms,
        utc_ms: UTC_2025_01_01_MS + offset_ms,
    }
}

/// A fake holding `rx`, and a core (catheter unknown) that has woken once at `now`.
pub fn started(rx: &RxBuilder, now: Now) -> (DosingCore, FakeCapsule) {
    let mut capsule = FakeCapsule::new(Some(rx.signed()));
    let mut core = core_with(CatheterContents::Unknown);
    core.wake(&mut capsule, now);
    (core, capsule)
}

/// A core, a fake capsule and a clock, stepped from wake-up to wake-up.
pub struct Sim {
    pub core: DosingCore,
    pub capsule: FakeCapsule,
    pub monotonic_ms: u64,
    /// UTC minus (epoch + monotonic): moved by clock jumps.
    pub utc_offset_ms: i64,
    pub wakes: Vec<(u64, crate::WakeReason)>,
}

impl Sim {
    /// Started at monotonic `start_ms` (UTC 2025-01-01 + `start_ms`).
    pub fn start(rx: &RxBuilder, start_ms: u64) -> Self {
        let (core, capsule) = started(rx, at(start_ms));
        Self {
            core,
            capsule,
            monotonic_ms: start_ms,
            utc_offset_ms: 0,
            wakes: Vec::new(),
        }
    }

    pub fn now(&self) -> Now {
        let utc = i128::from(UTC_2025_01_01_MS)
            + i128::from(self.monotonic_ms)
            + i128::from(self.utc_offset_ms);
        Now {
            monotonic_ms: self.monotonic_ms,
            utc_ms: u64::try_from(utc).unwrap(),
        }
    }

    /// Runs every wake-up the core asks for up to `until_ms` (monotonic).
    pub fn run_until(&mut self, until_ms: u64) {
        assert!(
            self.run_until_at_most(until_ms, 100_000),
            "more than 100 000 wake-ups: busy-waiting"
        );
    }

    /// As `run_until`, but gives up (and returns `false`) after
    /// `max_wakes` wake-ups, so a busy-waiting core fails a test quickly.
    pub fn run_until_at_most(&mut self, until_ms: u64, max_wakes: usize) -> bool {
        for _ in 0..max_wakes {
            let wake = self.core.next_wakeup();
            assert!(
                wake.at_monotonic_ms > self.monotonic_ms,
                "wake-up in the past"
            );
            if wake.at_monotonic_ms > until_ms {
                self.monotonic_ms = until_ms;
                return true;
            }
            self.monotonic_ms = wake.at_monotonic_ms;
            self.wakes.push((wake.at_monotonic_ms, wake.reason));
            let now = self.now();
            self.core.wake(&mut self.capsule, now);
        }
        false
    }

    /// The capsule stops every delivery for a fault (an empty reservoir, a
    /// stall): the runs end `Aborted` and the app is told.
    pub fn fault_stop(&mut self) {
        self.capsule.fault = Some(ErrorCode::FaultActive);
        self.capsule.bolus = None;
        self.delivery_done(
            DeliveryKind::Basal,
            pump_protocol::DeliveryOutcome::Aborted,
            0,
        );
    }

    /// The wall clock is moved to `utc_ms` without the app being told.
    pub fn jump_clock_silently(&mut self, utc_ms: u64) {
        self.utc_offset_ms = i64::try_from(
            i128::from(utc_ms) - i128::from(UTC_2025_01_01_MS) - i128::from(self.monotonic_ms),
        )
        .unwrap();
    }

    /// The programmer sets the clock; the telemetry app relays it.
    pub fn set_clock(&mut self, utc_ms: u64) {
        self.jump_clock_silently(utc_ms);
        let now = self.now();
        self.core.on_programmer_command(
            &pump_protocol::Message::SetClock(pump_protocol::SetClock {
                utc_time_ms: utc_ms,
            }),
            &mut self.capsule,
            now,
        );
    }

    pub fn command(&mut self, message: pump_protocol::Message) {
        let now = self.now();
        self.core
            .on_programmer_command(&message, &mut self.capsule, now);
    }

    /// The capsule reports a delivery's end.
    pub fn delivery_done(
        &mut self,
        kind: DeliveryKind,
        outcome: pump_protocol::DeliveryOutcome,
        volume_nl: u32,
    ) {
        if matches!(kind, DeliveryKind::Basal | DeliveryKind::SilenceFallback) {
            if outcome != pump_protocol::DeliveryOutcome::Checkpoint {
                self.capsule.basal_rate_nl_per_h = 0;
            }
        } else {
            self.capsule.bolus = None;
        }
        let now = self.now();
        self.core
            .on_delivery_done(kind, outcome, volume_nl, &mut self.capsule, now);
    }
}
