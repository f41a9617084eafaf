//! Shared fixture: a board, a clinic key, prescriptions and a recording
//! platform.
#![allow(dead_code)]

use ed25519_dalek::{Signer, SigningKey};
use infusion_core::CommandResult;
use infusion_core::{
    AlarmOutput, AlarmSignal, AppId, BoardConfig, HardwareLimits, InfusionCore, Motor,
    Notification, Notifier, RecordKind, Role, Storage,
};
use pump_protocol::command_auth::{
    encode_command_body, signed_command_message, CommandBody, Signer as CommandSigner,
    COMMAND_FORMAT, MAX_COMMAND_BODY_LEN, MAX_COMMAND_PAYLOAD_LEN, MAX_SIGNED_COMMAND_MESSAGE_LEN,
};
use pump_protocol::prescription::{
    encode_body, encode_body_v2, signed_message, BasalStep, ClinicianBolusLimits, Envelope,
    Pairing, PatientBolusProgram, Prescription, SilencePolicy, Therapy, MAX_PRESCRIPTION_BODY_LEN,
    MAX_SIGNED_MESSAGE_LEN, PRESCRIPTION_FORMAT, PRESCRIPTION_FORMAT_V2,
};
use pump_protocol::{Message, StreamDecoder, StreamItem};

pub const NL_PER_STEP: u32 = 250;
pub const DEVICE_ID: u32 = 0x00C0_FFEE;
pub const DOSING: AppId = AppId(1);
pub const TELEMETRY: AppId = AppId(2);
pub const ROGUE: AppId = AppId(3);
pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
pub const DAY_MS: u64 = 24 * HOUR_MS;
pub const CONCENTRATION_UG_PER_ML: u32 = 500;
pub const STALL_STEPS: u32 = 8;

/// A test key from its seed byte, derived once per process: deriving the
/// public half is a scalar multiplication, and the oracle and the fuzz
/// targets ask for keys after every action.
fn cached_key(cell: &'static std::sync::OnceLock<SigningKey>, seed: u8) -> SigningKey {
    cell.get_or_init(|| SigningKey::from_bytes(&[seed; 32]))
        .clone()
}

pub fn clinic_key() -> SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    cached_key(&KEY, 7)
}

pub fn other_key() -> SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    cached_key(&KEY, 9)
}

pub fn board() -> BoardConfig {
    let mut roles = heapless::Vec::new();
    roles.push((DOSING, Role::Dosing)).unwrap();
    roles.push((TELEMETRY, Role::Telemetry)).unwrap();
    let mut clinic_keys = heapless::Vec::new();
    clinic_keys
        .push(clinic_key().verifying_key().to_bytes())
        .unwrap();
    BoardConfig {
        device_id: DEVICE_ID,
        nl_per_step: NL_PER_STEP,
        limits: HardwareLimits {
            max_rate_nl_per_h: 10_000_000,
            max_bolus_nl: 500_000,
            reservoir_capacity_nl: 20_000_000,
            max_volume_per_24h_nl: 10_000_000,
            min_checkin_timeout_ms: 1_000,
            max_checkin_timeout_ms: 3_600_000,
        },
        roles,
        clinic_keys,
        max_steps_without_encoder: 0,
        alarm_silence_ms: 2 * 60_000,
        refill_due_warning_ms: 7 * DAY_MS,
        basal_record_interval_ms: HOUR_MS,
    }
}

pub fn envelope() -> Envelope {
    Envelope {
        max_basal_rate_nl_per_h: 50_000,
        max_bolus_nl: 100_000,
        min_patient_bolus_lockout_ms: HOUR_MS as u32,
        max_patient_boluses_per_24h: 4,
        max_volume_per_24h_nl: 1_500_000,
        reservoir_low_threshold_nl: 2_000_000,
        dosing_checkin_timeout_ms: 15 * 60_000,
        silence_policy: SilencePolicy::ContinueBasal {
            rate_nl_per_h: 10_000,
        },
    }
}

pub fn prescription(serial: u32) -> Prescription {
    let mut basal_steps = heapless::Vec::new();
    basal_steps
        .push(BasalStep {
            start_minute_of_day: 0,
            rate_ug_per_day: 300,
        })
        .unwrap();
    Prescription {
        format: PRESCRIPTION_FORMAT,
        device_id: DEVICE_ID,
        serial,
        issued_time_ms: 1_700_000_000_000,
        drug_name: heapless::String::from("baclofen"),
        concentration_ug_per_ml: CONCENTRATION_UG_PER_ML,
        envelope: envelope(),
        therapy: Therapy {
            basal_steps,
            clinician_bolus: None,
            patient_bolus: Some(PatientBolusProgram {
                dose_ug: 25,
                duration_ms: 60_000,
                lockout_ms: HOUR_MS as u32,
                max_per_24h: 4,
            }),
            catheter_volume_nl: 150_000,
        },
    }
}

pub fn sign_with(rx: &Prescription, key: &SigningKey) -> Vec<u8> {
    let mut body = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body(rx, &mut body).unwrap().to_vec();
    let mut msg = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let msg = signed_message(&body, &mut msg).unwrap();
    let signature = key.sign(msg);
    let mut signed = body;
    signed.extend_from_slice(&signature.to_bytes());
    signed
}

pub fn signed(serial: u32) -> Vec<u8> {
    sign_with(&prescription(serial), &clinic_key())
}

/// The patient's own programmer (PTM) in the tests.
pub fn ptm_key() -> SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    cached_key(&KEY, 5)
}

/// Format 2 of [`prescription`], pairing `pairing`.
pub fn signed_v2(serial: u32, pairing: &Pairing) -> Vec<u8> {
    let mut rx = prescription(serial);
    rx.format = PRESCRIPTION_FORMAT_V2;
    let mut body = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body_v2(&rx, pairing, &mut body).unwrap().to_vec();
    let mut msg = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let msg = signed_message(&body, &mut msg).unwrap();
    let mut signed = body;
    signed.extend_from_slice(&clinic_key().sign(msg).to_bytes());
    signed
}

/// A pairing with the test PTM and room for `per_day` clinician boluses
/// `interval_ms` apart.
pub fn paired(per_day: u8, interval_ms: u32) -> Pairing {
    Pairing {
        ptm_public_key: Some(ptm_key().verifying_key().to_bytes()),
        clinician_bolus: ClinicianBolusLimits {
            max_per_24h: per_day,
            min_interval_ms: interval_ms,
        },
    }
}

/// `message` signed as a programmer command by `key` as `signer`, for
/// `device_id`, with `counter`.
pub fn command_signed_for(
    message: &Message,
    signer: CommandSigner,
    key: &SigningKey,
    device_id: u32,
    counter: u64,
) -> Vec<u8> {
    let mut payload = [0u8; MAX_COMMAND_PAYLOAD_LEN];
    let len = message.encode_payload(&mut payload).unwrap();
    let body = CommandBody {
        format: COMMAND_FORMAT,
        device_id,
        signer: signer.code(),
        counter,
        kind: message.kind_code(),
        payload: heapless::Vec::from_slice(&payload[..len]).unwrap(),
    };
    let mut buf = [0u8; MAX_COMMAND_BODY_LEN];
    let body = encode_command_body(&body, &mut buf).unwrap().to_vec();
    let mut msg = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
    let msg = signed_command_message(&body, &mut msg).unwrap();
    let mut signed = body;
    signed.extend_from_slice(&key.sign(msg).to_bytes());
    signed
}

/// `message` signed by the clinic for the test device.
pub fn clinic_command(message: &Message, counter: u64) -> Vec<u8> {
    command_signed_for(
        message,
        CommandSigner::Clinic,
        &clinic_key(),
        DEVICE_ID,
        counter,
    )
}

/// `message` signed by the test PTM for the test device.
pub fn ptm_command(message: &Message, counter: u64) -> Vec<u8> {
    command_signed_for(
        message,
        CommandSigner::PatientProgrammer,
        &ptm_key(),
        DEVICE_ID,
        counter,
    )
}

/// Sends signed command bytes through the syscall table (command 28), as
/// the telemetry app does.
pub fn send_signed<P: infusion_core::Platform>(
    core: &mut InfusionCore<P>,
    signed: &[u8],
    now: u64,
) -> CommandResult {
    core.command(
        TELEMETRY,
        u32::from(infusion_core::command::AUTHENTICATED_COMMAND),
        signed.len() as u32,
        0,
        signed,
        &mut [],
        now,
    )
}

/// Records everything the core does to the hardware.
#[derive(Debug, Default)]
pub struct Rig {
    pub steps: u64,
    pub motor_enabled: bool,
    pub stepped_while_disabled: bool,
    pub signal: Option<AlarmSignal>,
    pub saved: Option<Vec<u8>>,
    pub saves: u64,
    pub notifications: Vec<Notification>,
    /// The time the test says it is (set before calling the core).
    pub now_ms: u64,
    /// When set, `step` records `now_ms` in `step_times`.
    pub record_step_times: bool,
    /// The actual time of every step made while recording.
    pub step_times: Vec<u64>,
}

impl Motor for Rig {
    fn set_enabled(&mut self, enabled: bool) {
        self.motor_enabled = enabled;
    }
    fn step(&mut self) {
        if !self.motor_enabled {
            self.stepped_while_disabled = true;
        }
        self.steps += 1;
        if self.record_step_times {
            self.step_times.push(self.now_ms);
        }
    }
}

impl AlarmOutput for Rig {
    fn show(&mut self, signal: AlarmSignal) {
        self.signal = Some(signal);
    }
}

impl Storage for Rig {
    fn write_record(&mut self, _kind: RecordKind, record: &[u8]) {
        self.saved = Some(record.to_vec());
        self.saves += 1;
    }
}

impl Notifier for Rig {
    fn notify(&mut self, n: Notification) {
        if self.notifications.len() < 10_000 {
            self.notifications.push(n);
        }
    }
}

pub type Core = InfusionCore<Rig>;

pub fn fresh(now: u64) -> Core {
    InfusionCore::restore(board(), Rig::default(), None, now)
}

/// A core with prescription serial 1 installed and 10 mL in the reservoir.
pub fn running(now: u64) -> Core {
    let mut core = fresh(now);
    core.install_prescription(TELEMETRY, &signed(1), now)
        .unwrap();
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, now)
        .unwrap();
    core
}

/// Runs the core's timer at every wake-up up to `until`, checking in for the
/// dosing app at each one when `dosing_alive`. Returns the wake-up count.
pub fn advance(core: &mut Core, until: u64, dosing_alive: bool) -> u64 {
    let mut wakeups = 0;
    while let Some(t) = core.next_wakeup() {
        if t > until {
            break;
        }
        if dosing_alive {
            core.check_in(DOSING, t).unwrap();
        }
        core.on_timer(t);
        wakeups += 1;
    }
    if dosing_alive {
        core.check_in(DOSING, until).unwrap();
    }
    core.on_timer(until);
    wakeups
}

/// Drains and decodes every queued event.
pub fn drain(core: &mut Core, now: u64) -> Vec<(u32, Message)> {
    drain_with(core, now)
}

/// [`drain`] for a core on any platform.
pub fn drain_with<P: infusion_core::Platform>(
    core: &mut InfusionCore<P>,
    now: u64,
) -> Vec<(u32, Message)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let (len, _) = core.drain_events(TELEMETRY, &mut buf, now).unwrap();
    let mut decoder = StreamDecoder::new();
    decoder.feed(&buf[..len], |item| match item {
        StreamItem::Frame { frame, .. } => out.push((frame.sequence(), frame.message)),
        StreamItem::Invalid { error, .. } => panic!("capsule wrote an invalid frame: {error}"),
    });
    out
}

/// Resets: a new core restored from what the old one saved.
pub fn reset(core: Core, now: u64) -> Core {
    let saved = core.platform().saved.clone();
    InfusionCore::restore(board(), Rig::default(), saved.as_deref(), now)
}
