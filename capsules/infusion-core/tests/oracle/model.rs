//! An oracle for the whole capsule, written from `docs/safety/requirements.md`
//! and not from the core's code (issue 20 §1).
//!
//! It drives [`InfusionCore`] only as the board and the apps do: the syscall
//! table ([`InfusionCore::command`]) from any app id, timer firings early, on
//! time and late ([`InfusionCore::on_timer`]), fault inputs and encoder
//! pulses, storage faults (a failed write, then the board's report,
//! [`InfusionCore::on_storage_fault`]) and resets that restore from the last
//! bytes the board saved, cleanly, torn (the writes of the last action that
//! wrote are lost, so that action never happened) or corrupted.
//!
//! Its model holds only what the requirements let an outside observer know:
//! which prescription the clinic installed (serial, envelope, pairing), the
//! signers' counters, whether the clinic suspended, which faults were raised
//! and not cleared, the reservoir volume a refill set less every step the
//! motor made, and the times of the boluses it saw accepted. After every
//! action it checks:
//!
//! - no step without a valid prescription, nor while suspended or faulted,
//!   nor from an empty reservoir (SR-RX-005, SR-ENV-008, SR-ALM-004,
//!   SR-PER-004, SR-RES-001), and never with the motor disabled (SR-MOT-005);
//! - no rolling 24 h window of the motor's actual step times holds more than
//!   the daily maximum in force, nor the hardware's (SR-ENV-005, SR-ENV-010);
//! - an accepted bolus is within the envelope, a patient bolus keeps the
//!   lockout and the count, a clinician bolus only as signed, once, with the
//!   signed count and spacing, and no bolus record exceeds its request
//!   (SR-ENV-003, SR-ENV-004, SR-AUTH-005, SR-AUTH-006), and lasts at
//!   most the 24 h window (SR-ENV-012);
//! - a refused command changed no safety state (SR-ROLE-003, SR-AUTH-002,
//!   SR-RX-006); a forged, unsigned, replayed or misaddressed signed command
//!   is refused (SR-AUTH-002..004); unentitled callers get `NotPermitted`;
//! - the log (drained through command 10) plus the volume in flight equals
//!   the motor's steps, across clean and torn resets (SR-PER-001, SR-EVT-001).
//!
//! The one value it reads from the core is the volume in flight: the steps
//! of each active run not yet in a `DeliveryRecord` checkpoint.
#![allow(dead_code)]

use std::collections::VecDeque;

use infusion_core::ledger::WINDOW_MS;
use infusion_core::relay::RELAY_ANSWER_TIMEOUT_MS;
use infusion_core::{
    AlarmOutput, AlarmSignal, AppId, CommandResult, InfusionCore, Motor, Notification, Notifier,
    RecordKind, Storage,
};
use pump_protocol::command_auth::Signer;
use pump_protocol::prescription::Prescription;
use pump_protocol::{
    AcknowledgeAlarm, AlarmCode, ClearFault, ClinicianBolus, DeliveryKind, ErrorCode, Message,
    PatientBolusRequest, Refill, Resume, SetClock, StreamDecoder, StreamItem, Suspend,
};

use crate::support::{
    board, clinic_key, command_signed_for, envelope, other_key, paired, prescription, ptm_key,
    sign_with, signed_v2, CONCENTRATION_UG_PER_ML, DEVICE_ID, DOSING, NL_PER_STEP, TELEMETRY,
};

/// The requirement IDs this oracle checks.
pub const VERIFIES: &[&str] = &[
    "SR-RX-005",
    "SR-ENV-003",
    "SR-ENV-012",
    "SR-ENV-004",
    "SR-ENV-005",
    "SR-ENV-008",
    "SR-ENV-010",
    "SR-ALM-004",
    "SR-MOT-005",
    "SR-RES-001",
    "SR-ROLE-003",
    "SR-AUTH-002",
    "SR-AUTH-003",
    "SR-AUTH-004",
    "SR-AUTH-005",
    "SR-AUTH-006",
    "SR-PER-001",
    "SR-PER-003",
    "SR-PER-004",
    "SR-PER-007",
];

/// Bytes one action is decoded from.
pub const ACTION_BYTES: usize = 16;

const ROGUE: AppId = AppId(3);
const UTC_BASE_MS: u64 = 1_700_000_000_000;

/// The board as the oracle sees it: records every step with the time the
/// oracle says it is, keeps the last saved image, and fails writes on demand.
#[derive(Debug, Default)]
pub struct OracleRig {
    pub now_ms: u64,
    pub motor_enabled: bool,
    pub stepped_while_disabled: bool,
    pub step_times: Vec<u64>,
    pub saved: Option<Vec<u8>>,
    pub writes: u64,
    /// Writes fail (the saved image is kept) while set.
    pub fail_writes: bool,
    /// A write failed since the board last reported it.
    pub write_failed: bool,
    /// Volumes of `DeliveryDone` notifications for boluses.
    pub bolus_done: Vec<(DeliveryKind, u32)>,
}

impl Motor for OracleRig {
    fn set_enabled(&mut self, enabled: bool) {
        self.motor_enabled = enabled;
    }
    fn step(&mut self) {
        if !self.motor_enabled {
            self.stepped_while_disabled = true;
        }
        self.step_times.push(self.now_ms);
    }
}

impl AlarmOutput for OracleRig {
    fn show(&mut self, _signal: AlarmSignal) {}
}

impl Storage for OracleRig {
    fn write_record(&mut self, _kind: RecordKind, record: &[u8]) {
        if self.fail_writes {
            self.write_failed = true;
            return;
        }
        self.saved = Some(record.to_vec());
        self.writes += 1;
    }
}

impl Notifier for OracleRig {
    fn notify(&mut self, n: Notification) {
        if let Notification::DeliveryDone {
            kind, volume_nl, ..
        } = n
        {
            if kind != DeliveryKind::Basal && self.bolus_done.len() < 1_000 {
                self.bolus_done.push((kind, volume_nl));
            }
        }
    }
}

pub type Core = InfusionCore<OracleRig>;

/// Which app calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Dosing,
    Telemetry,
    Rogue,
    Unknown(u32),
}

impl Caller {
    fn id(self) -> AppId {
        match self {
            Caller::Dosing => DOSING,
            Caller::Telemetry => TELEMETRY,
            Caller::Rogue => ROGUE,
            Caller::Unknown(id) => AppId(id),
        }
    }
}

/// A prescription the oracle sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxVariant {
    /// Serial above the floor, format 1.
    Next,
    /// Serial above the floor, format 2 paired with the test PTM, and
    /// clinician bolus limits `(count, interval)`.
    NextPaired(u8, u32),
    /// Serial above the floor with a tight daily limit.
    Tight,
    /// The serial in force again.
    Replay,
    /// A byte of a valid one flipped.
    Tampered(u8),
    /// Signed by a key the board does not trust.
    OtherKey,
    /// For another device.
    WrongDevice,
    /// Random bytes.
    Garbage(u8),
}

/// What a signed command says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Suspend,
    Resume,
    /// `(withdrawn, added, concentration right)`.
    Refill(u32, u32, bool),
    ClearFault(AlarmCode),
    Acknowledge(AlarmCode),
    SetClock(u64),
    /// `(dose_ug, duration_ms)`.
    ClinicianBolus(u32, u32),
    PatientBolus,
}

/// How a signed command is signed and sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seal {
    /// As it should be: the right signer, a fresh counter.
    Genuine,
    /// The counter of the last accepted command of its signer, or lower.
    Replayed(u8),
    /// Signed by a key the board does not trust.
    Forged,
    /// A byte flipped after signing.
    Tampered(u8),
    /// For another device.
    WrongDevice,
    /// Signed by the other signer (which may not sign every kind).
    WrongSigner,
    /// Sent by another app than the telemetry app.
    WrongCaller(Caller),
    /// Cut short.
    Truncated(u8),
}

/// How the board comes back up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetKind {
    Clean,
    /// The writes of the last action that wrote were lost.
    Torn,
    /// One byte of the saved image flipped `(index, xor)`.
    Corrupt(u16, u8),
}

/// One thing that happens to the pump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Time passes to `ms` later; timers fire at each wake-up, `late_ms`
    /// after it; the dosing app checks in at each when `alive`.
    Wait {
        ms: u64,
        late_ms: u64,
        alive: bool,
    },
    /// The timer fires `ms` from now whatever the core asked for.
    TimerAt(u64),
    /// The dosing app sets a basal rate (command 2).
    Basal(u32),
    /// The dosing app starts a bolus: command 3..=6, volume, duration.
    Bolus(u16, u32, u32),
    /// The dosing app stops the bolus (command 7).
    StopBolus,
    /// The dosing app checks in (command 8).
    CheckIn,
    /// The telemetry app installs a prescription (command 9).
    Install(RxVariant),
    /// A signed programmer command through command 28.
    Signed(Order, Seal),
    /// The dosing app takes the relay's request and answers it: command 23
    /// then 24 with `verdict`.
    ServeRelay(u32),
    /// Any command from any app, with a small allow buffer.
    Raw(Caller, u32, u32, u32, u8),
    /// The stall or occlusion input changes.
    FaultInput(AlarmCode, bool),
    EncoderPulse,
    /// The writes of the next action fail; the board reports it after.
    StorageFault,
    Reset(ResetKind),
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn caller_from(b: u8, id: u32) -> Caller {
    // An unknown id that is a real app's id is that app.
    match id {
        1 => return Caller::Dosing,
        2 => return Caller::Telemetry,
        _ => {}
    }
    match b % 8 {
        0..=2 => Caller::Dosing,
        3..=5 => Caller::Telemetry,
        6 => Caller::Rogue,
        _ => Caller::Unknown(id),
    }
}

fn alarm_from(b: u8) -> AlarmCode {
    AlarmCode::ALL[usize::from(b) % AlarmCode::ALL.len()]
}

impl Action {
    /// Decodes one action from [`ACTION_BYTES`] bytes (shorter input is
    /// padded with zeros), so that any byte string is a valid scenario for
    /// proptest and for the fuzzer alike.
    pub fn decode(chunk: &[u8]) -> Action {
        let mut b = [0u8; ACTION_BYTES];
        b[..chunk.len().min(ACTION_BYTES)].copy_from_slice(&chunk[..chunk.len().min(ACTION_BYTES)]);
        let x = u32_at(&b, 4);
        let y = u32_at(&b, 8);
        let z = u32_at(&b, 12);
        match b[0] % 64 {
            0..=11 => Action::Wait {
                ms: match b[1] % 4 {
                    0 => u64::from(x % 60_000),
                    1 | 2 => u64::from(x % (2 * 3_600_000)),
                    _ => u64::from(x % (30 * 3_600_000)),
                },
                late_ms: match b[2] % 4 {
                    0 | 1 => 0,
                    2 => u64::from(y % 60_000),
                    _ => u64::from(y % (2 * 86_400_000)),
                },
                alive: b[3] % 4 != 0,
            },
            12..=13 => Action::TimerAt(match b[1] % 3 {
                0 => 0,
                1 => u64::from(x % 600_000),
                _ => u64::from(x % (3 * 86_400_000)),
            }),
            14..=19 => Action::Basal(match b[1] % 4 {
                0 => 0,
                1 => x % 80_000,
                2 => x % 2_000_000,
                _ => x,
            }),
            20..=25 => Action::Bolus(
                3 + u16::from(b[1] % 4),
                match b[2] % 4 {
                    0 => x % 1_000,
                    1 | 2 => x % 150_000,
                    _ => x,
                },
                match b[3] % 4 {
                    0 => 0,
                    1 | 2 => y % (3 * 3_600_000),
                    _ => y,
                },
            ),
            26 => Action::StopBolus,
            27..=29 => Action::CheckIn,
            30..=33 => Action::Install(match b[1] % 10 {
                0..=2 => RxVariant::Next,
                3 | 4 => RxVariant::NextPaired(b[2] % 14, y % (3 * 3_600_000)),
                5 => RxVariant::Tight,
                6 => RxVariant::Replay,
                7 => RxVariant::Tampered(b[2]),
                8 => match b[2] % 2 {
                    0 => RxVariant::OtherKey,
                    _ => RxVariant::WrongDevice,
                },
                _ => RxVariant::Garbage(b[2]),
            }),
            34..=45 => {
                let order = match b[1] % 10 {
                    0 => Order::Suspend,
                    1 => Order::Resume,
                    2 => Order::Refill(
                        match b[2] % 3 {
                            0 => 0,
                            1 => x % 3_000_000,
                            _ => x,
                        },
                        y % 24_000_000,
                        b[3] % 8 != 0,
                    ),
                    3 => Order::ClearFault(alarm_from(b[2])),
                    4 => Order::Acknowledge(alarm_from(b[2])),
                    5 => Order::SetClock(u64::from(x) << (b[2] % 12)),
                    6 | 7 => Order::ClinicianBolus(x % 120, y % (3 * 3_600_000)),
                    _ => Order::PatientBolus,
                };
                let seal = match b[3] % 16 {
                    0..=8 => Seal::Genuine,
                    9 => Seal::Replayed(b[14]),
                    10 => Seal::Forged,
                    11 => Seal::Tampered(b[14]),
                    12 => Seal::WrongDevice,
                    13 => Seal::WrongSigner,
                    14 => Seal::WrongCaller(caller_from(b[14], z)),
                    _ => Seal::Truncated(b[14]),
                };
                Action::Signed(order, seal)
            }
            46..=48 => Action::ServeRelay(if b[1] % 4 == 0 { x % 0x200 } else { 0 }),
            49..=54 => Action::Raw(
                caller_from(b[1], z),
                if b[2] % 8 == 0 {
                    x
                } else {
                    u32::from(b[3] % 32)
                },
                x,
                y,
                b[14],
            ),
            55..=56 => Action::FaultInput(
                if b[1] % 2 == 0 {
                    AlarmCode::MotorStall
                } else {
                    AlarmCode::Occlusion
                },
                b[2] % 2 == 0,
            ),
            57 => Action::EncoderPulse,
            58 => Action::StorageFault,
            _ => Action::Reset(match b[1] % 4 {
                0 | 1 => ResetKind::Clean,
                2 => ResetKind::Torn,
                _ => ResetKind::Corrupt(u16_at(&b, 2), b[14] | 1),
            }),
        }
    }

    /// Every action of a byte string.
    pub fn decode_all(data: &[u8]) -> Vec<Action> {
        data.chunks(ACTION_BYTES).map(Action::decode).collect()
    }
}

/// What the clinic installed, as the oracle knows it.
#[derive(Clone, Debug)]
struct RxModel {
    serial: u32,
    max_24h_nl: u64,
    max_bolus_nl: u32,
    lockout_ms: u64,
    max_patient_per_24h: u32,
    /// Clinician boluses: count per 24 h and minimum interval.
    clinician: (u32, u64),
    ptm_paired: bool,
    concentration: u32,
}

#[derive(Clone, Debug)]
struct Grant {
    volume_nl: u32,
    duration_ms: u32,
    expires_at_ms: u64,
}

/// The oracle's model: what the requirements let an observer know.
#[derive(Clone, Debug, Default)]
struct Model {
    rx: Option<RxModel>,
    serial_floor: u32,
    counters: [u64; 2],
    /// UTC less monotonic time, as the last accepted set-clock made it.
    utc_offset: i128,
    suspended: bool,
    /// Stall / occlusion raised and not cleared by an accepted clear-fault.
    latched: Vec<AlarmCode>,
    /// Inputs as the core last heard them.
    asserted: Vec<AlarmCode>,
    /// A storage fault (or lost state) until a new prescription is installed.
    integrity: bool,
    /// Reservoir volume: the last refill less every step since.
    reservoir_nl: u64,
    /// When the image was last lost: the hardware's daily maximum counts as
    /// delivered at that instant, for the 24 h window (SR-PER-007).
    lost_at_ms: Option<u64>,
    /// Accepted patient and clinician bolus starts (monotonic time).
    patient_starts: Vec<u64>,
    clinician_starts: Vec<u64>,
    grant: Option<Grant>,
    /// Bolus requests accepted and not yet closed by a record.
    open_boluses: VecDeque<u32>,
    /// Bolus volume asked for (closed boluses) and recorded, in total.
    bolus_asked_nl: u64,
    bolus_recorded_nl: u64,
    /// Volume in `DeliveryRecord`s drained, and what corrupted restores
    /// made the core forget (so that the equation restarts from there).
    logged_nl: u64,
    forgotten_nl: i128,
    /// Daily limit in force at each step (the step index is the rig's).
    step_limits: Vec<u64>,
}

/// What to do with a finding.
pub type Finding = String;

/// The oracle: the core, its board and the model.
pub struct Oracle {
    pub core: Core,
    now: u64,
    model: Model,
    /// Model, image and step count before the last action that wrote.
    torn_point: Option<(Model, Option<Vec<u8>>, usize)>,
    fail_next: bool,
    /// Actions run (for the report).
    pub actions: u64,
}

fn volume_nl(dose_ug: u32, conc: u32) -> u32 {
    if conc == 0 {
        return 0;
    }
    u32::try_from(u64::from(dose_ug) * 1_000_000 / u64::from(conc)).unwrap_or(u32::MAX)
}

fn rx_model(rx: &Prescription, clinician: (u32, u64), ptm: bool) -> RxModel {
    let e = &rx.envelope;
    RxModel {
        serial: rx.serial,
        max_24h_nl: u64::from(e.max_volume_per_24h_nl),
        max_bolus_nl: e.max_bolus_nl,
        lockout_ms: u64::from(e.min_patient_bolus_lockout_ms),
        max_patient_per_24h: u32::from(e.max_patient_boluses_per_24h),
        clinician,
        ptm_paired: ptm,
        concentration: rx.concentration_ug_per_ml,
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

impl Default for Oracle {
    fn default() -> Self {
        Self::new()
    }
}

impl Oracle {
    /// A factory-new pump: no prescription, empty reservoir.
    pub fn new() -> Self {
        let core = InfusionCore::restore(board(), OracleRig::default(), None, 0);
        Oracle {
            core,
            now: 0,
            model: Model::default(),
            torn_point: None,
            fail_next: false,
            actions: 0,
        }
    }

    /// A pump the clinic set up: prescription 1 and a refill, as a start
    /// that reaches therapy sooner.
    pub fn running() -> Result<Self, Finding> {
        let mut o = Oracle::new();
        o.step(&Action::Install(RxVariant::Next))?;
        o.step(&Action::Signed(
            Order::Refill(0, 10_000_000, true),
            Seal::Genuine,
        ))?;
        Ok(o)
    }

    /// Runs a scenario; the first finding stops it.
    pub fn run(&mut self, actions: &[Action]) -> Result<(), Finding> {
        for (i, a) in actions.iter().enumerate() {
            self.step(a).map_err(|f| format!("action {i} {a:?}: {f}"))?;
        }
        Ok(())
    }

    /// The steps the motor has made.
    pub fn motor_steps(&self) -> usize {
        self.steps()
    }

    fn steps(&self) -> usize {
        self.core.platform().step_times.len()
    }

    fn command(&mut self, caller: Caller, num: u32, a1: u32, a2: u32, ro: &[u8]) -> CommandResult {
        let mut rw = [0u8; 512];
        self.command_rw(caller, num, a1, a2, ro, &mut rw)
    }

    fn command_rw(
        &mut self,
        caller: Caller,
        num: u32,
        a1: u32,
        a2: u32,
        ro: &[u8],
        rw: &mut [u8],
    ) -> CommandResult {
        let now = self.now;
        self.core.platform_mut().now_ms = now;
        self.core.command(caller.id(), num, a1, a2, ro, rw, now)
    }

    /// A command whose refusal must leave every safety state as it was.
    fn checked(
        &mut self,
        caller: Caller,
        num: u32,
        a1: u32,
        a2: u32,
        ro: &[u8],
    ) -> Result<CommandResult, Finding> {
        let before = self.core.safety_state();
        let result = self.command(caller, num, a1, a2, ro);
        if let CommandResult::Failure(e) = result {
            let after = self.core.safety_state();
            // SR-RES-006: withdrawing more than recorded is refused and
            // raises its alarm: the one refusal that changes alarms.
            ensure!(
                before == after || e == ErrorCode::RefillDiscrepancy,
                "SR-ROLE-003/SR-AUTH-002: command {num} from {caller:?} was refused ({e:?}) but changed the safety state"
            );
        }
        // Who may call what (docs/protocol.md's table, pump-abi COMMANDS).
        let (dosing, telemetry) = (caller.id() == DOSING, caller.id() == TELEMETRY);
        let entitled = match num {
            0 | 1 | 18 | 20 | 29 => true,
            2..=8 | 21 | 23 | 24 | 26 | 27 => dosing,
            9..=16 | 19 | 22 | 25 | 28 => telemetry,
            17 => dosing || telemetry,
            _ => false,
        };
        if !entitled {
            let expected = if num > 29 {
                ErrorCode::NoSupport
            } else {
                ErrorCode::NotPermitted
            };
            ensure!(
                result == CommandResult::Failure(expected),
                "SR-ROLE-003/SR-ROLE-004: command {num} from {caller:?} gave {result:?}, not {expected:?}"
            );
        }
        Ok(result)
    }

    fn timer(&mut self, t: u64) {
        self.now = self.now.max(t);
        self.core.platform_mut().now_ms = t;
        self.core.on_timer(t);
    }

    fn blocked(&self) -> Option<&'static str> {
        let m = &self.model;
        if m.rx.is_none() {
            Some("without a valid prescription (SR-RX-005)")
        } else if m.suspended {
            Some("while suspended (SR-ENV-008)")
        } else if !m.latched.is_empty() {
            Some("while a stall or occlusion is latched (SR-ALM-004)")
        } else if m.integrity {
            Some("after a storage fault or lost state, before a new prescription (SR-PER-004)")
        } else {
            None
        }
    }

    /// Runs one action and checks every invariant.
    pub fn step(&mut self, action: &Action) -> Result<(), Finding> {
        self.actions += 1;
        let snapshot = (
            self.model.clone(),
            self.core.platform().saved.clone(),
            self.steps(),
        );
        let writes_before = self.core.platform().writes;
        let fail = std::mem::take(&mut self.fail_next);
        self.core.platform_mut().fail_writes = fail;
        let mut reset = false;
        self.act(action, &mut reset)?;
        self.core.platform_mut().fail_writes = false;
        // Steps made before the board reports a failed write are allowed.
        self.check_steps()?;
        if std::mem::take(&mut self.core.platform_mut().write_failed) {
            // The board reports the failure once, after the call.
            self.model.integrity = true;
            let now = self.now;
            self.core.platform_mut().now_ms = now;
            self.core.on_storage_fault(now);
            self.check_steps()?;
        }
        self.drain()?;
        if !reset && self.core.platform().writes != writes_before {
            self.torn_point = Some(snapshot);
        }
        self.check_log()
    }

    fn act(&mut self, action: &Action, reset: &mut bool) -> Result<(), Finding> {
        let now = self.now;
        match *action {
            Action::Wait { ms, late_ms, alive } => {
                let until = now.saturating_add(ms);
                let mut guard = 0;
                while let Some(t) = self.core.next_wakeup() {
                    let t = t.max(self.now).saturating_add(late_ms);
                    if t > until || guard > 20_000 {
                        break;
                    }
                    guard += 1;
                    self.now = t;
                    if alive {
                        self.checked(Caller::Dosing, 8, 0, 0, &[])?;
                    }
                    self.timer(t);
                    self.check_steps()?;
                    // The telemetry app drains when the core says events
                    // wait; a long wait must not outrun the queue here
                    // either (one silent day logs more than it holds).
                    if self.core.pending_events() >= infusion_core::events::EVENT_QUEUE_LEN / 2 {
                        self.drain()?;
                    }
                }
                self.now = until;
                if alive {
                    self.checked(Caller::Dosing, 8, 0, 0, &[])?;
                }
                self.timer(until);
            }
            Action::TimerAt(ms) => self.timer(now.saturating_add(ms)),
            Action::Basal(rate) => {
                self.checked(Caller::Dosing, 2, rate, 0, &[])?;
            }
            Action::Bolus(num, volume, duration) => self.bolus(num, volume, duration)?,
            Action::StopBolus => {
                self.checked(Caller::Dosing, 7, 0, 0, &[])?;
            }
            Action::CheckIn => {
                self.checked(Caller::Dosing, 8, 0, 0, &[])?;
            }
            Action::Install(v) => self.install(v)?,
            Action::Signed(order, seal) => self.signed(order, seal)?,
            Action::ServeRelay(verdict) => {
                let mut rw = [0u8; 64];
                if let CommandResult::SuccessU32U32(ticket, _) =
                    self.command_rw(Caller::Dosing, 23, 0, 0, &[], &mut rw)
                {
                    self.checked(Caller::Dosing, 24, ticket, verdict, &[])?;
                }
            }
            Action::Raw(caller, num, a1, a2, fill) => self.raw(caller, num, a1, a2, fill)?,
            Action::FaultInput(code, on) => {
                self.core.platform_mut().now_ms = now;
                self.core.on_fault_input(code, on, now);
                self.model.asserted.retain(|c| *c != code);
                if on {
                    self.model.asserted.push(code);
                    if !self.model.latched.contains(&code) {
                        self.model.latched.push(code);
                    }
                }
            }
            Action::EncoderPulse => self.core.on_encoder_pulse(self.now),
            Action::StorageFault => self.fail_next = true,
            Action::Reset(kind) => {
                *reset = true;
                self.reset(kind)?;
            }
        }
        Ok(())
    }

    fn bolus(&mut self, num: u16, volume: u32, duration: u32) -> Result<(), Finding> {
        let now = self.now;
        let grant = if num == 3 {
            self.model.grant.take()
        } else {
            None
        };
        let result = self.checked(Caller::Dosing, u32::from(num), volume, duration, &[])?;
        if result != CommandResult::Success {
            return Ok(());
        }
        let Some(rx) = self.model.rx.clone() else {
            return Err(format!(
                "SR-RX-005: bolus command {num} accepted without a prescription"
            ));
        };
        ensure!(
            volume > 0 && duration > 0 && volume <= rx.max_bolus_nl,
            "SR-ENV-003: bolus {num} of {volume} nL over {duration} ms accepted, envelope {} nL",
            rx.max_bolus_nl
        );
        ensure!(
            u64::from(duration) <= WINDOW_MS,
            "SR-ENV-012: bolus {num} over {duration} ms accepted, longer than the 24 h window"
        );
        ensure!(
            self.blocked().is_none(),
            "SR-ENV-008/SR-ALM-004: bolus {num} accepted {}",
            self.blocked().unwrap_or("")
        );
        if let Some(lost) = self.model.lost_at_ms {
            ensure!(
                now >= lost + WINDOW_MS,
                "SR-PER-007: bolus {num} accepted {} ms after a lost image, whose assumed day fills the window",
                now - lost
            );
        }
        let in_day = |starts: &[u64]| starts.iter().filter(|t| **t + WINDOW_MS > now).count();
        match num {
            3 => {
                let ok = grant.is_some_and(|g| {
                    now <= g.expires_at_ms && volume <= g.volume_nl && duration >= g.duration_ms
                });
                ensure!(
                    ok,
                    "SR-AUTH-005: clinician bolus {volume} nL / {duration} ms started without a matching signed grant"
                );
                let (count, interval) = rx.clinician;
                ensure!(
                    in_day(&self.model.clinician_starts) < count as usize,
                    "SR-AUTH-006: clinician bolus beyond {count} in 24 h"
                );
                if let Some(last) = self.model.clinician_starts.last() {
                    ensure!(
                        now >= last + interval,
                        "SR-AUTH-006: clinician bolus {} ms after the last, interval {interval}",
                        now - last
                    );
                }
                self.model.clinician_starts.push(now);
            }
            4 => {
                ensure!(
                    in_day(&self.model.patient_starts) < rx.max_patient_per_24h as usize,
                    "SR-ENV-004: patient bolus beyond {} in 24 h",
                    rx.max_patient_per_24h
                );
                if let Some(last) = self.model.patient_starts.last() {
                    ensure!(
                        now >= last + rx.lockout_ms,
                        "SR-ENV-004: patient bolus {} ms after the last, lockout {}",
                        now - last,
                        rx.lockout_ms
                    );
                }
                self.model.patient_starts.push(now);
            }
            _ => {}
        }
        self.model.open_boluses.push_back(volume);
        Ok(())
    }

    fn rx_bytes(&self, v: RxVariant) -> (Vec<u8>, Option<RxModel>) {
        let next = self.model.serial_floor + 1;
        let clinic = clinic_key();
        match v {
            RxVariant::Next => {
                let rx = prescription(next);
                (
                    sign_with(&rx, &clinic),
                    Some(rx_model(&rx, (4, 3_600_000), false)),
                )
            }
            RxVariant::NextPaired(count, interval) => {
                let rx = prescription(next);
                let pairing = paired(count, interval);
                (
                    signed_v2(next, &pairing),
                    Some(rx_model(&rx, (u32::from(count), u64::from(interval)), true)),
                )
            }
            RxVariant::Tight => {
                let mut rx = prescription(next);
                rx.envelope.max_volume_per_24h_nl = 600_000;
                rx.envelope.max_basal_rate_nl_per_h = 25_000;
                rx.envelope.max_patient_boluses_per_24h = 2;
                rx.envelope.min_patient_bolus_lockout_ms = 3 * 3_600_000;
                if let Some(p) = rx.therapy.patient_bolus.as_mut() {
                    p.max_per_24h = 2;
                    p.lockout_ms = 3 * 3_600_000;
                }
                rx.envelope.silence_policy =
                    pump_protocol::prescription::SilencePolicy::StopDelivery;
                (
                    sign_with(&rx, &clinic),
                    Some(rx_model(&rx, (4, 3_600_000), false)),
                )
            }
            RxVariant::Replay => (
                sign_with(&prescription(self.model.serial_floor), &clinic),
                None,
            ),
            RxVariant::Tampered(at) => {
                let mut b = sign_with(&prescription(next), &clinic);
                let i = usize::from(at) % b.len();
                b[i] ^= 0x10;
                (b, None)
            }
            RxVariant::OtherKey => (sign_with(&prescription(next), &other_key()), None),
            RxVariant::WrongDevice => {
                let mut rx = prescription(next);
                rx.device_id ^= 1;
                (sign_with(&rx, &clinic), None)
            }
            RxVariant::Garbage(n) => ((0..n).map(|i| i.wrapping_mul(37)).collect(), None),
        }
    }

    fn install(&mut self, v: RxVariant) -> Result<(), Finding> {
        let (bytes, valid) = self.rx_bytes(v);
        let len = bytes.len() as u32;
        let result = self.checked(Caller::Telemetry, 9, len, 0, &bytes)?;
        match (&result, valid) {
            (CommandResult::Success, Some(rx)) => {
                // A new prescription clears the integrity alarm (SR-PER-004);
                // the lockout, count and 24 h window go on (SR-ENV-004/005).
                self.model.serial_floor = rx.serial;
                self.model.rx = Some(rx);
                self.model.integrity = false;
                self.model.grant = None;
            }
            (CommandResult::Success, None) => {
                return Err(format!(
                    "SR-RX-001..003: prescription {v:?} was installed but does not verify"
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn signed(&mut self, order: Order, seal: Seal) -> Result<(), Finding> {
        let message = match order {
            Order::Suspend => Message::Suspend(Suspend {}),
            Order::Resume => Message::Resume(Resume {}),
            Order::Refill(withdrawn, added, conc_ok) => Message::Refill(Refill {
                withdrawn_volume_nl: withdrawn,
                added_volume_nl: added,
                concentration_ug_per_ml: if conc_ok {
                    CONCENTRATION_UG_PER_ML
                } else {
                    CONCENTRATION_UG_PER_ML * 2
                },
            }),
            Order::ClearFault(code) => Message::ClearFault(ClearFault { code }),
            Order::Acknowledge(code) => Message::AcknowledgeAlarm(AcknowledgeAlarm { code }),
            Order::SetClock(utc) => Message::SetClock(SetClock { utc_time_ms: utc }),
            Order::ClinicianBolus(dose_ug, duration_ms) => {
                Message::ClinicianBolus(ClinicianBolus {
                    dose_ug,
                    duration_ms,
                })
            }
            Order::PatientBolus => Message::PatientBolusRequest(PatientBolusRequest {}),
        };
        let (signer, key) = match order {
            Order::PatientBolus => (Signer::PatientProgrammer, ptm_key()),
            _ => (Signer::Clinic, clinic_key()),
        };
        let index = match signer {
            Signer::Clinic => 0,
            Signer::PatientProgrammer => 1,
        };
        let last = self.model.counters[index];
        let fresh = last.max(UTC_BASE_MS + self.now) + 1;
        let (counter, caller, device, key, signer, valid) = match seal {
            Seal::Genuine => (fresh, Caller::Telemetry, DEVICE_ID, key, signer, true),
            Seal::Replayed(back) => (
                last.saturating_sub(u64::from(back % 3)),
                Caller::Telemetry,
                DEVICE_ID,
                key,
                signer,
                false,
            ),
            Seal::Forged => (
                fresh,
                Caller::Telemetry,
                DEVICE_ID,
                other_key(),
                signer,
                false,
            ),
            Seal::Tampered(_) | Seal::Truncated(_) => {
                (fresh, Caller::Telemetry, DEVICE_ID, key, signer, false)
            }
            Seal::WrongDevice => (fresh, Caller::Telemetry, DEVICE_ID ^ 4, key, signer, false),
            Seal::WrongSigner => {
                let (other, other_k) = match signer {
                    Signer::Clinic => (Signer::PatientProgrammer, ptm_key()),
                    Signer::PatientProgrammer => (Signer::Clinic, clinic_key()),
                };
                // Acknowledge may be signed by both; the others not.
                let allowed = other.may_sign(message.kind().expect("a known kind"));
                (fresh, Caller::Telemetry, DEVICE_ID, other_k, other, allowed)
            }
            Seal::WrongCaller(c) => (fresh, c, DEVICE_ID, key, signer, c == Caller::Telemetry),
        };
        let mut bytes = command_signed_for(&message, signer, &key, device, counter);
        match seal {
            Seal::Tampered(at) => {
                let i = usize::from(at) % bytes.len();
                bytes[i] ^= 0x01;
            }
            Seal::Truncated(n) => bytes.truncate(usize::from(n) % bytes.len()),
            _ => {}
        }
        // A patient programmer's command needs a prescription pairing it.
        let signer_known = match signer {
            Signer::Clinic => true,
            Signer::PatientProgrammer => self.model.rx.as_ref().is_some_and(|r| r.ptm_paired),
        };
        // The counter must be above the last accepted (SR-AUTH-003); a
        // replay with `last` 0 is counter 0, never accepted either.
        let valid = valid && signer_known && counter > self.model.counters[signer_index(signer)];
        let before = self.core.safety_state();
        let result = self.checked(caller, 28, bytes.len() as u32, 0, &bytes)?;
        let ok = !matches!(result, CommandResult::Failure(_));
        if !valid {
            ensure!(
                !ok,
                "SR-AUTH-002..004: {order:?} sealed {seal:?} (counter {counter}, last {}) was accepted: {result:?}",
                self.model.counters[signer_index(signer)]
            );
            ensure!(
                before == self.core.safety_state(),
                "SR-AUTH-002: {order:?} sealed {seal:?} changed the safety state"
            );
            return Ok(());
        }
        if !ok {
            return Ok(());
        }
        self.model.counters[signer_index(signer)] = counter;
        match order {
            Order::Suspend => self.model.suspended = true,
            Order::Resume => self.model.suspended = false,
            Order::Refill(withdrawn, added, conc_ok) => {
                ensure!(
                    conc_ok,
                    "SR-RES-005: a refill of another concentration was accepted"
                );
                ensure!(
                    u64::from(withdrawn) <= self.model.reservoir_nl,
                    "SR-RES-006: a refill withdrawing {withdrawn} nL of {} recorded was accepted",
                    self.model.reservoir_nl
                );
                self.model.reservoir_nl =
                    self.model.reservoir_nl - u64::from(withdrawn) + u64::from(added);
            }
            Order::ClearFault(code) => {
                if matches!(code, AlarmCode::MotorStall | AlarmCode::Occlusion) {
                    ensure!(
                        !self.model.asserted.contains(&code),
                        "SR-ALM-004: {code:?} cleared while its input is asserted"
                    );
                    self.model.latched.retain(|c| *c != code);
                }
            }
            Order::SetClock(utc) => {
                self.model.utc_offset = i128::from(utc) - i128::from(self.now);
            }
            Order::ClinicianBolus(dose_ug, duration_ms) => {
                if let Some(rx) = &self.model.rx {
                    self.model.grant = Some(Grant {
                        volume_nl: volume_nl(dose_ug, rx.concentration),
                        duration_ms,
                        expires_at_ms: self.now + RELAY_ANSWER_TIMEOUT_MS,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn raw(&mut self, caller: Caller, num: u32, a1: u32, a2: u32, fill: u8) -> Result<(), Finding> {
        // Raw commands never carry a valid signature or prescription: the
        // allow buffer is a few bytes of `fill`.
        let ro = vec![fill; usize::from(fill % 24)];
        let before = self.core.safety_state();
        let result = if num == 3 || num == 4 || num == 5 || num == 6 {
            if caller == Caller::Dosing {
                // A bolus from the dosing app: the same checks as `Bolus`.
                return self.bolus(num as u16, a1, a2);
            }
            self.checked(caller, num, a1, a2, &ro)?
        } else if num == 10 {
            // Draining is the oracle's job (the log must stay whole).
            return Ok(());
        } else {
            self.checked(caller, num, a1, a2, &ro)?
        };
        if matches!(num, 9 | 11..=16 | 22 | 28) {
            // SR-AUTH-002, SR-RX-006: no unsigned command and no unverified
            // prescription changes anything.
            ensure!(
                matches!(result, CommandResult::Failure(_)),
                "SR-AUTH-002: plain command {num} from {caller:?} succeeded: {result:?}"
            );
            ensure!(
                before == self.core.safety_state(),
                "SR-AUTH-002: plain command {num} changed the safety state"
            );
        }
        // A rate of 0 stops basal delivery, which is never a step: it may be
        // accepted without a prescription (the step checks after every
        // action still hold it to SR-RX-005).
        if num == 2 && a1 != 0 && result == CommandResult::Success {
            ensure!(
                self.model.rx.is_some(),
                "SR-RX-005: a basal rate was accepted without a prescription"
            );
        }
        Ok(())
    }

    fn reset(&mut self, kind: ResetKind) -> Result<(), Finding> {
        let now = self.now;
        let mut image = self.core.platform().saved.clone();
        match kind {
            ResetKind::Clean => {}
            ResetKind::Torn => {
                // The last action that wrote never happened: its writes are
                // lost (each write is atomic: the old record comes back),
                // and nothing after its first write happened either.
                if let Some((model, saved, steps)) = self.torn_point.take() {
                    self.model = model;
                    image = saved;
                    let rig = self.core.platform_mut();
                    rig.step_times.truncate(steps);
                    self.model.step_limits.truncate(steps);
                }
            }
            ResetKind::Corrupt(at, xor) => {
                if let Some(img) = image.as_mut().filter(|i| !i.is_empty()) {
                    let i = usize::from(at) % img.len();
                    img[i] ^= xor;
                }
            }
        }
        let mut rig = std::mem::take(self.core.platform_mut());
        rig.saved = image.clone();
        rig.motor_enabled = false;
        rig.now_ms = now;
        self.core = InfusionCore::restore(board(), rig, image.as_deref(), now);
        ensure!(
            !self.core.platform().motor_enabled,
            "SR-PER-001: the motor is enabled right after a reset"
        );
        // Inputs read as released after a boot, until they change.
        self.model.asserted.clear();
        // Nothing is waiting for the dosing app across a reset.
        self.model.grant = None;
        let restored_rx = self.core.prescription().map(|r| r.serial);
        if let ResetKind::Corrupt(..) = kind {
            let expected = self.model.rx.as_ref().map(|r| r.serial);
            if restored_rx.is_none() {
                self.lose_image(now);
            } else {
                ensure!(
                    restored_rx == expected,
                    "SR-PER-003: a corrupted image restored prescription {restored_rx:?}, the clinic installed {expected:?}"
                );
            }
        } else {
            let expected = self.model.rx.as_ref().map(|r| r.serial);
            ensure!(
                restored_rx == expected || (self.model.integrity && restored_rx.is_none()),
                "SR-PER-001: prescription {restored_rx:?} after a reset, the clinic installed {expected:?}"
            );
        }
        Ok(())
    }

    /// What a restore that found the image lost leaves (SR-PER-003,
    /// SR-PER-007), at `now`. A lost image cannot stay on this board's
    /// flash to be lost again at the next reset: a failed write is
    /// reported, and the report saves the restored state anew.
    fn lose_image(&mut self, now: u64) {
        // SR-PER-003: lost state leaves no prescription and latches
        // integrity; the log of what was in flight is lost with it.
        self.model.rx = None;
        self.model.integrity = true;
        // SR-PER-007: whether the clinic had suspended is lost with
        // the record, so the pump comes back suspended.
        self.model.suspended = true;
        // The stall and occlusion latches go with the record too:
        // nothing moves until the clinic's recovery (a new
        // prescription, a refill and a signed resume), and a fault
        // still there latches again at its input's next edge.
        self.model.latched.clear();
        self.model.open_boluses.clear();
        // The bolus times go with the record; what stands for them
        // is the hardware's daily maximum counted as delivered now,
        // which refuses every step and bolus for the next 24 h, as
        // long as any lockout, count or clinician interval could last
        // (each at most the 24 h window: SR-ENV-004, SR-AUTH-006).
        self.model.lost_at_ms = Some(now);
        self.model.patient_starts.clear();
        self.model.clinician_starts.clear();
        let motor = self.steps() as u64 * u64::from(NL_PER_STEP);
        self.model.forgotten_nl = i128::from(motor) - i128::from(self.model.logged_nl);
        // The board keeps one record (the whole image): the serial
        // floor goes with it. SR-PER-008 keeps the floor apart only
        // on boards that keep records apart (known limit of the
        // image store, residual-risks.md RR-42).
        self.model.serial_floor = 0;
        // The counters go too; SR-AUTH-003 then refuses every
        // counter up to the pump's clock, which restarts unset.
        self.model.utc_offset = 0;
        self.model.counters = [now; 2];
    }

    /// Steps since `from`: the blocked conditions and the rolling window.
    fn check_steps(&mut self) -> Result<(), Finding> {
        let rig = self.core.platform();
        ensure!(
            !rig.stepped_while_disabled,
            "SR-MOT-005: a step with the motor disabled"
        );
        let times = rig.step_times.clone();
        let hw_limit = u64::from(board().limits.max_volume_per_24h_nl);
        let step = u64::from(NL_PER_STEP);
        for i in self.model.step_limits.len()..times.len() {
            if let Some(why) = self.blocked() {
                return Err(format!("a motor step at {} {why}", times[i]));
            }
            ensure!(
                self.model.reservoir_nl >= step,
                "SR-RES-001: a motor step at {} with {} nL in the reservoir",
                times[i],
                self.model.reservoir_nl
            );
            self.model.reservoir_nl -= step;
            if let Some(lost) = self.model.lost_at_ms {
                ensure!(
                    times[i] >= lost + WINDOW_MS,
                    "SR-PER-007: a motor step at {}, {} ms after a lost image, whose assumed day fills the window",
                    times[i],
                    times[i] - lost
                );
            }
            let limit = self
                .model
                .rx
                .as_ref()
                .map_or(0, |r| r.max_24h_nl)
                .min(hw_limit);
            self.model.step_limits.push(limit);
            // The window (t − 24 h, t] of actual step times.
            let t = times[i];
            let first = times.partition_point(|s| s + WINDOW_MS <= t);
            let in_window = (i + 1 - first) as u64 * step;
            ensure!(
                in_window <= limit,
                "SR-ENV-005: {in_window} nL in the 24 h up to the step at {t}, limit {limit}"
            );
        }
        Ok(())
    }

    /// Drains the events through command 10 as the telemetry app does.
    fn drain(&mut self) -> Result<(), Finding> {
        let mut buf = vec![0u8; 16 * 1024];
        for _ in 0..64 {
            let result = self.command_rw(Caller::Telemetry, 10, 0, 0, &[], &mut buf);
            let CommandResult::SuccessU32U32(len, frames) = result else {
                return Err(format!("draining events failed: {result:?}"));
            };
            let mut messages = Vec::new();
            let mut invalid = None;
            StreamDecoder::new().feed(&buf[..len as usize], |item| match item {
                StreamItem::Frame { frame, .. } => messages.push(frame.message),
                StreamItem::Invalid { error, .. } => invalid = Some(error.to_string()),
            });
            if let Some(e) = invalid {
                return Err(format!(
                    "SR-EVT-001: the capsule wrote an invalid frame: {e}"
                ));
            }
            for m in messages {
                match m {
                    Message::DeliveryRecord(r)
                        if r.outcome == pump_protocol::DeliveryOutcome::Unconfirmed =>
                    {
                        // What lost state counts as delivered, an upper
                        // bound the motor did not make (SR-PER-006/007).
                        self.model.forgotten_nl -= i128::from(r.volume_nl);
                        self.model.logged_nl += u64::from(r.volume_nl);
                    }
                    Message::DeliveryRecord(r) => {
                        self.model.logged_nl += u64::from(r.volume_nl);
                        if r.delivery_kind != DeliveryKind::Basal
                            && r.delivery_kind != DeliveryKind::SilenceFallback
                        {
                            // A bolus carries the unmade fraction of a step
                            // from the one before (SR-MOT-001): one may make
                            // its request rounded up to a step, and all of
                            // them together never more than was asked.
                            let step = NL_PER_STEP;
                            let requested = self.model.open_boluses.pop_front();
                            ensure!(
                                requested.is_some_and(|v| r.volume_nl <= v.div_ceil(step) * step),
                                "SR-ENV-003: a {:?} record of {} nL, the bolus asked for {requested:?}",
                                r.delivery_kind,
                                r.volume_nl
                            );
                            self.model.bolus_asked_nl += u64::from(requested.unwrap_or(0));
                            self.model.bolus_recorded_nl += u64::from(r.volume_nl);
                            ensure!(
                                self.model.bolus_recorded_nl <= self.model.bolus_asked_nl,
                                "SR-ENV-003: boluses recorded {} nL in all, asked for {} nL",
                                self.model.bolus_recorded_nl,
                                self.model.bolus_asked_nl
                            );
                        }
                    }
                    Message::LogGap(g) => {
                        return Err(format!(
                            "SR-EVT-002: the oracle drains after every action, yet {g:?}"
                        ));
                    }
                    _ => {}
                }
            }
            if frames == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The log plus the volume in flight equals the motor's steps.
    fn check_log(&mut self) -> Result<(), Finding> {
        let step = u64::from(NL_PER_STEP);
        let in_flight: u64 = self
            .core
            .ledger()
            .runs()
            .iter()
            .filter(|r| r.active)
            .map(|r| u64::from(r.steps_done.saturating_sub(r.steps_reported)) * step)
            .sum();
        let motor = self.steps() as u64 * step;
        let accounted =
            i128::from(self.model.logged_nl) + i128::from(in_flight) + self.model.forgotten_nl;
        ensure!(
            accounted == i128::from(motor),
            "SR-PER-001: log {} nL + in flight {in_flight} nL (+ {} lost to corruption) != motor {motor} nL",
            self.model.logged_nl,
            self.model.forgotten_nl
        );
        Ok(())
    }
}

fn signer_index(s: Signer) -> usize {
    match s {
        Signer::Clinic => 0,
        Signer::PatientProgrammer => 1,
    }
}

/// The envelope of the default prescription, for front ends.
pub fn default_envelope_24h_nl() -> u32 {
    envelope().max_volume_per_24h_nl
}
