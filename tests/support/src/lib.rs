//! Test-only fixture shared by the app cores' unit tests and the system
//! tests: a board configuration, a clinic test key, a prescription builder
//! and a signer. Never a dependency of a firmware build: the app cores list
//! it under `[dev-dependencies]` only.
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use ed25519_dalek::{Signer, SigningKey};
use infusion_core::{AppId, BoardConfig, HardwareLimits, Role};
use pump_protocol::command_auth::{
    encode_command_body, signed_command_message, CommandBody, Signer as CommandSigner,
    COMMAND_FORMAT, MAX_COMMAND_BODY_LEN, MAX_COMMAND_PAYLOAD_LEN, MAX_SIGNED_COMMAND_MESSAGE_LEN,
};
use pump_protocol::prescription::{
    encode_body, encode_body_v2, signed_message, BasalStep, BolusProgram, ClinicianBolusLimits,
    Envelope, Pairing, PatientBolusProgram, Prescription, SilencePolicy, Therapy,
    MAX_PRESCRIPTION_BODY_LEN, MAX_SIGNED_MESSAGE_LEN, PRESCRIPTION_FORMAT_V2,
};
use pump_protocol::{AuthenticatedCommand, Message};

/// Volume one motor step moves on the test board.
pub const NL_PER_STEP: u32 = 250;
/// The test implant's id.
pub const DEVICE_ID: u32 = 0x00C0_FFEE;
/// App id the role table maps to `Dosing`.
pub const DOSING: AppId = AppId(1);
/// App id the role table maps to `Telemetry`.
pub const TELEMETRY: AppId = AppId(2);
/// One minute.
pub const MINUTE_MS: u64 = 60_000;
/// One hour.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// One day.
pub const DAY_MS: u64 = 24 * HOUR_MS;
/// 2025-01-01T00:00:00Z, a UTC midnight for schedule tests.
pub const UTC_2025_01_01_MS: u64 = 1_735_689_600_000;
/// Baclofen 500 µg/mL, a common intrathecal concentration.
pub const CONCENTRATION_UG_PER_ML: u32 = 500;
/// The test catheter's volume.
pub const CATHETER_VOLUME_NL: u32 = 150_000;
/// Watchdog check-in timeout of the test envelope.
pub const CHECKIN_TIMEOUT_MS: u32 = 15 * 60_000;

/// A test key from its seed byte, derived once per process: deriving the
/// public half is a scalar multiplication, and the system tests and fuzz
/// targets sign many commands.
fn cached_key(cell: &'static OnceLock<SigningKey>, seed: u8) -> SigningKey {
    cell.get_or_init(|| SigningKey::from_bytes(&[seed; 32]))
        .clone()
}

/// The clinic's test signing key. Test material only: the seed is public.
pub fn clinic_key() -> SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    cached_key(&KEY, 7)
}

/// A key the board does not trust.
pub fn untrusted_key() -> SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    cached_key(&KEY, 9)
}

/// The test board: roles for [`DOSING`] and [`TELEMETRY`], the clinic test key.
pub fn board() -> BoardConfig {
    let mut roles = heapless::Vec::new();
    roles
        .push((DOSING, Role::Dosing))
        .expect("room for two roles");
    roles
        .push((TELEMETRY, Role::Telemetry))
        .expect("room for two roles");
    let mut clinic_keys = heapless::Vec::new();
    clinic_keys
        .push(clinic_key().verifying_key().to_bytes())
        .expect("room for one key");
    BoardConfig {
        device_id: DEVICE_ID,
        nl_per_step: NL_PER_STEP,
        limits: HardwareLimits {
            max_rate_nl_per_h: 10_000_000,
            max_bolus_nl: 500_000,
            reservoir_capacity_nl: 40_000_000,
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

/// The test envelope.
pub fn envelope() -> Envelope {
    Envelope {
        max_basal_rate_nl_per_h: 100_000,
        max_bolus_nl: 100_000,
        min_patient_bolus_lockout_ms: HOUR_MS as u32,
        max_patient_boluses_per_24h: 6,
        max_volume_per_24h_nl: 2_500_000,
        reservoir_low_threshold_nl: 2_000_000,
        dosing_checkin_timeout_ms: CHECKIN_TIMEOUT_MS,
        silence_policy: SilencePolicy::ContinueBasal {
            rate_nl_per_h: 10_000,
        },
    }
}

/// Builds test prescriptions.
#[derive(Clone, Debug)]
pub struct RxBuilder {
    rx: Prescription,
    pairing: Pairing,
}

/// The patient's own programmer (PTM) in the tests. Test material only.
pub fn ptm_key() -> SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    cached_key(&KEY, 5)
}

/// What [`RxBuilder`] pairs by default: the test PTM, and clinician boluses
/// limited only by the envelope's size and 24 h volume (twelve a day, any
/// spacing), so that tests about other rules are not stopped by these.
pub fn test_pairing() -> Pairing {
    Pairing {
        ptm_public_key: Some(ptm_key().verifying_key().to_bytes()),
        clinician_bolus: ClinicianBolusLimits {
            max_per_24h: 12,
            min_interval_ms: 0,
        },
    }
}

/// `message`'s bytes signed as a programmer command by `key` as `signer`.
pub fn sign_command(
    message: &Message,
    signer: CommandSigner,
    key: &SigningKey,
    device_id: u32,
    counter: u64,
) -> Vec<u8> {
    let mut payload = [0u8; MAX_COMMAND_PAYLOAD_LEN];
    let len = message
        .encode_payload(&mut payload)
        .expect("a command payload fits");
    let body = CommandBody {
        format: COMMAND_FORMAT,
        device_id,
        signer: signer.code(),
        counter,
        kind: message.kind_code(),
        payload: heapless::Vec::from_slice(&payload[..len]).expect("fits"),
    };
    let mut buf = [0u8; MAX_COMMAND_BODY_LEN];
    let body = encode_command_body(&body, &mut buf)
        .expect("a command body fits")
        .to_vec();
    let mut signed_message_buf = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
    let to_sign = signed_command_message(&body, &mut signed_message_buf).expect("fits its buffer");
    let mut signed = body;
    signed.extend_from_slice(&key.sign(to_sign).to_bytes());
    signed
}

/// `message` wrapped as the host sends it since protocol 1.1: signed by the
/// test PTM if it is a patient bolus request, else by the clinic, for the
/// test device, with `counter`.
pub fn authenticated(message: &Message, counter: u64) -> Message {
    let (signer, key) = match message {
        Message::PatientBolusRequest(_) => (CommandSigner::PatientProgrammer, ptm_key()),
        _ => (CommandSigner::Clinic, clinic_key()),
    };
    let signed = sign_command(message, signer, &key, DEVICE_ID, counter);
    Message::AuthenticatedCommand(AuthenticatedCommand {
        signed_command: heapless::Vec::from_slice(&signed).expect("fits"),
    })
}

/// Whether the host must sign `message` (protocol 1.1).
pub fn needs_signature(message: &Message) -> bool {
    message.kind().is_some_and(|kind| {
        CommandSigner::ALL
            .iter()
            .any(|signer| signer.may_sign(kind))
    })
}

impl RxBuilder {
    /// Serial `serial`: baclofen 500 µg/mL, 300 µg/day continuous, a patient
    /// bolus of 25 µg over 1 min with a 2 h lockout and 4 a day, a clinician
    /// bolus preset of 50 µg over 10 min, and a 150 µL catheter.
    pub fn new(serial: u32) -> Self {
        let mut basal_steps = heapless::Vec::new();
        basal_steps
            .push(BasalStep {
                start_minute_of_day: 0,
                rate_ug_per_day: 300,
            })
            .expect("one step fits");
        Self {
            pairing: test_pairing(),
            rx: Prescription {
                format: PRESCRIPTION_FORMAT_V2,
                device_id: DEVICE_ID,
                serial,
                issued_time_ms: UTC_2025_01_01_MS,
                drug_name: drug_name("baclofen"),
                concentration_ug_per_ml: CONCENTRATION_UG_PER_ML,
                envelope: envelope(),
                therapy: Therapy {
                    basal_steps,
                    clinician_bolus: Some(BolusProgram {
                        dose_ug: 50,
                        duration_ms: 10 * MINUTE_MS as u32,
                    }),
                    patient_bolus: Some(PatientBolusProgram {
                        dose_ug: 25,
                        duration_ms: MINUTE_MS as u32,
                        lockout_ms: 2 * HOUR_MS as u32,
                        max_per_24h: 4,
                    }),
                    catheter_volume_nl: CATHETER_VOLUME_NL,
                },
            },
        }
    }

    /// Replaces the basal schedule with `(start_minute_of_day, rate_ug_per_day)` steps.
    pub fn steps(mut self, steps: &[(u16, u32)]) -> Self {
        self.rx.therapy.basal_steps.clear();
        for &(start_minute_of_day, rate_ug_per_day) in steps {
            self.rx
                .therapy
                .basal_steps
                .push(BasalStep {
                    start_minute_of_day,
                    rate_ug_per_day,
                })
                .expect("at most 24 steps");
        }
        self
    }

    /// Sets the drug and its concentration.
    pub fn drug(mut self, name: &str, concentration_ug_per_ml: u32) -> Self {
        self.rx.drug_name = drug_name(name);
        self.rx.concentration_ug_per_ml = concentration_ug_per_ml;
        self
    }

    /// Sets the patient bolus program (`None`: not prescribed).
    pub fn patient_bolus(mut self, program: Option<PatientBolusProgram>) -> Self {
        self.rx.therapy.patient_bolus = program;
        self
    }

    /// Sets the catheter volume.
    pub fn catheter_volume_nl(mut self, volume_nl: u32) -> Self {
        self.rx.therapy.catheter_volume_nl = volume_nl;
        self
    }

    /// Edits the envelope.
    pub fn envelope(mut self, edit: impl FnOnce(&mut Envelope)) -> Self {
        edit(&mut self.rx.envelope);
        self
    }

    /// The prescription.
    pub fn build(&self) -> Prescription {
        self.rx.clone()
    }

    /// Sets the pairing (format 2).
    pub fn pairing(mut self, pairing: Pairing) -> Self {
        self.pairing = pairing;
        self
    }

    /// The prescription (format 2) signed by the clinic test key.
    pub fn signed(&self) -> Vec<u8> {
        let mut body = [0u8; MAX_PRESCRIPTION_BODY_LEN];
        let body = encode_body_v2(&self.rx, &self.pairing, &mut body)
            .expect("a prescription fits its maximum body")
            .to_vec();
        let mut message = [0u8; MAX_SIGNED_MESSAGE_LEN];
        let message = signed_message(&body, &mut message).expect("body fits the message buffer");
        let mut signed = body;
        signed.extend_from_slice(&clinic_key().sign(message).to_bytes());
        signed
    }
}

/// A drug name (at most `MAX_DRUG_NAME_LEN` bytes).
pub fn drug_name(
    name: &str,
) -> heapless::String<{ pump_protocol::prescription::MAX_DRUG_NAME_LEN }> {
    let mut s = heapless::String::new();
    s.push_str(name).expect("drug name fits");
    s
}

/// Signs `rx` with `key`: postcard body (format 2 with [`test_pairing`]
/// when `rx.format` says so) followed by the Ed25519 signature over the
/// format's domain and the body.
pub fn sign_with(rx: &Prescription, key: &SigningKey) -> Vec<u8> {
    let mut body = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = if rx.format == PRESCRIPTION_FORMAT_V2 {
        encode_body_v2(rx, &test_pairing(), &mut body)
    } else {
        encode_body(rx, &mut body)
    }
    .expect("a prescription fits its maximum body")
    .to_vec();
    let mut message = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let message = signed_message(&body, &mut message).expect("body fits the message buffer");
    let signature = key.sign(message);
    let mut signed = body;
    signed.extend_from_slice(&signature.to_bytes());
    signed
}
