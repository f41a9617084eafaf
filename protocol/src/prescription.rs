//! The signed prescription: the only source of the pump's safety envelope.
//!
//! On the wire (inside [`crate::InstallPrescription`]) a signed prescription
//! is
//!
//! ```text
//! postcard(Prescription) | Ed25519 signature (64 bytes)
//! ```
//!
//! The signature covers [`SIGNING_DOMAIN`] followed by the postcard body, so a
//! signature made for any other purpose never verifies as a prescription.
//!
//! Format 2 (protocol 1.1) appends a [`Pairing`] to the same fields and is
//! signed under [`SIGNING_DOMAIN_V2`]: the key of the patient's own PTM and
//! the clinician-bolus limits. A format-1 prescription still installs, with
//! no PTM paired and [`ClinicianBolusLimits::FORMAT_1`].
//! This crate only defines the layout; the pump verifies (infusion-core) and
//! the host signs (pumpctl).

use heapless::{String, Vec};
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::PayloadError;

/// Domain-separation prefix of the signed message.
pub const SIGNING_DOMAIN: &[u8] = b"infusion-pump/prescription/v1\0";

/// Ed25519 signature length.
pub const SIGNATURE_LEN: usize = 64;

/// Domain-separation prefix of a format-2 body (protocol 1.1).
pub const SIGNING_DOMAIN_V2: &[u8] = b"infusion-pump/prescription/v2\0";

/// Prescription body format 1 (protocol 1.0).
pub const PRESCRIPTION_FORMAT: u8 = 1;

/// Prescription body format 2 (protocol 1.1): format 1 and a [`Pairing`].
pub const PRESCRIPTION_FORMAT_V2: u8 = 2;

/// Most basal steps a day can have.
pub const MAX_BASAL_STEPS: usize = 24;

/// Longest drug name, in UTF-8 bytes.
pub const MAX_DRUG_NAME_LEN: usize = 16;

/// Largest postcard body of a prescription of either format.
pub const MAX_PRESCRIPTION_BODY_LEN: usize =
    Prescription::POSTCARD_MAX_SIZE + Pairing::POSTCARD_MAX_SIZE;

/// Largest signed prescription.
pub const MAX_SIGNED_PRESCRIPTION_LEN: usize = MAX_PRESCRIPTION_BODY_LEN + SIGNATURE_LEN;

/// A complete prescription: who it is for, the envelope the capsule enforces,
/// and the therapy the dosing app runs inside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Prescription {
    /// Body format; [`PRESCRIPTION_FORMAT`].
    pub format: u8,
    /// The implant it is for.
    pub device_id: u32,
    /// Strictly increasing per device; replays and rollbacks are refused.
    pub serial: u32,
    /// When the clinic issued it.
    pub issued_time_ms: u64,
    /// Drug name, for display and the drug library.
    pub drug_name: String<MAX_DRUG_NAME_LEN>,
    /// Drug concentration in the reservoir.
    pub concentration_ug_per_ml: u32,
    /// Hard limits the capsule enforces.
    pub envelope: Envelope,
    /// What the dosing app runs.
    pub therapy: Therapy,
}

/// The physician's safety envelope. Volumes, not doses: the capsule moves
/// volume, and the programmer converted doses at the prescription's
/// concentration in exactly one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Envelope {
    /// Highest basal rate.
    pub max_basal_rate_nl_per_h: u32,
    /// Largest single bolus of any kind.
    pub max_bolus_nl: u32,
    /// Shortest time between the starts of two patient boluses.
    pub min_patient_bolus_lockout_ms: u32,
    /// Most patient boluses in any rolling 24 h.
    pub max_patient_boluses_per_24h: u8,
    /// Most volume, basal plus every bolus, in any rolling 24 h.
    pub max_volume_per_24h_nl: u32,
    /// Below this reservoir volume the low-reservoir alarm sounds.
    pub reservoir_low_threshold_nl: u32,
    /// The dosing app must check in at least this often.
    pub dosing_checkin_timeout_ms: u32,
    /// What the capsule does when the dosing app goes silent.
    pub silence_policy: SilencePolicy,
}

/// What to do when the dosing app misses its watchdog check-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum SilencePolicy {
    /// Stop all delivery.
    StopDelivery,
    /// Stop boluses and continue basal at this prescribed safe rate.
    ContinueBasal {
        /// The safe basal rate.
        rate_nl_per_h: u32,
    },
}

/// The therapy program the dosing app runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Therapy {
    /// Time-of-day basal steps, sorted by start, the first at minute 0.
    /// A simple continuous schedule is a single step.
    pub basal_steps: Vec<BasalStep, MAX_BASAL_STEPS>,
    /// The clinician bolus preset, if any.
    pub clinician_bolus: Option<BolusProgram>,
    /// Patient-therapy-manager bolus, if prescribed.
    pub patient_bolus: Option<PatientBolusProgram>,
    /// Volume of the catheter (priming and bridge boluses).
    pub catheter_volume_nl: u32,
}

/// One step of a flex basal schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct BasalStep {
    /// Minute of the UTC day the step starts, 0..1440.
    pub start_minute_of_day: u16,
    /// Dose rate during the step.
    pub rate_ug_per_day: u32,
}

/// A bolus preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct BolusProgram {
    /// Dose.
    pub dose_ug: u32,
    /// Duration.
    pub duration_ms: u32,
}

/// The patient bolus (PTM) program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct PatientBolusProgram {
    /// Dose per bolus.
    pub dose_ug: u32,
    /// Duration of each bolus.
    pub duration_ms: u32,
    /// Lockout after each bolus's start.
    pub lockout_ms: u32,
    /// Most boluses in any rolling 24 h.
    pub max_per_24h: u8,
}

/// What format 2 adds: who may ask for patient boluses over the link, and
/// how often the clinic may give a clinician bolus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Pairing {
    /// Ed25519 public key of the patient's own therapy manager (PTM). Patient
    /// bolus requests over the link must be signed by it; `None` pairs none,
    /// and such requests are refused (`NotPaired`).
    pub ptm_public_key: Option<[u8; 32]>,
    /// Limits on clinician boluses, on top of the envelope's bolus size and
    /// 24 h volume.
    pub clinician_bolus: ClinicianBolusLimits,
}

/// How often the clinic may give a clinician bolus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct ClinicianBolusLimits {
    /// Most clinician boluses started in any rolling 24 h.
    pub max_per_24h: u8,
    /// Shortest time between the starts of two clinician boluses.
    pub min_interval_ms: u32,
}

impl ClinicianBolusLimits {
    /// What a format-1 prescription, which predates these limits, allows:
    /// four clinician boluses a day, an hour apart. A design value: a
    /// clinic titrating a dose gives a few boluses a visit, and the
    /// envelope's bolus size and 24 h volume still bound each one.
    pub const FORMAT_1: Self = Self {
        max_per_24h: 4,
        min_interval_ms: 60 * 60 * 1000,
    };
}

impl Pairing {
    /// The pairing of a format-1 prescription: no PTM, format-1 limits.
    pub const FORMAT_1: Self = Self {
        ptm_public_key: None,
        clinician_bolus: ClinicianBolusLimits::FORMAT_1,
    };
}

/// A signed prescription split into its parts, borrowing the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedParts<'a> {
    /// The postcard body.
    pub body: &'a [u8],
    /// The Ed25519 signature.
    pub signature: &'a [u8; SIGNATURE_LEN],
}

/// Splits signed bytes into body and signature without interpreting them.
pub fn split_signed(signed: &[u8]) -> Result<SignedParts<'_>, PayloadError> {
    let body_len = signed
        .len()
        .checked_sub(SIGNATURE_LEN)
        .filter(|len| *len > 0)
        .ok_or(PayloadError::Truncated)?;
    let (body, signature) = signed.split_at(body_len);
    let signature = signature.try_into().map_err(|_| PayloadError::Truncated)?;
    Ok(SignedParts { body, signature })
}

/// Decodes a prescription body of either format, refusing trailing bytes
/// and unknown formats. A format-1 body has [`Pairing::FORMAT_1`].
pub fn decode_body_with_pairing(body: &[u8]) -> Result<(Prescription, Pairing), PayloadError> {
    let (prescription, rest): (Prescription, _) = postcard::take_from_bytes(body)?;
    let (pairing, rest) = match prescription.format {
        PRESCRIPTION_FORMAT => (Pairing::FORMAT_1, rest),
        PRESCRIPTION_FORMAT_V2 => postcard::take_from_bytes::<Pairing>(rest)?,
        _ => return Err(PayloadError::Malformed),
    };
    if !rest.is_empty() {
        return Err(PayloadError::TrailingBytes);
    }
    Ok((prescription, pairing))
}

/// Decodes a prescription body of either format (see
/// [`decode_body_with_pairing`]), keeping the format-1 fields.
pub fn decode_body(body: &[u8]) -> Result<Prescription, PayloadError> {
    decode_body_with_pairing(body).map(|(prescription, _)| prescription)
}

/// Encodes a format-1 prescription body into `buf`.
pub fn encode_body<'b>(
    prescription: &Prescription,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], PayloadError> {
    Ok(postcard::to_slice(prescription, buf)?)
}

/// Encodes a format-2 body: `prescription` (whose `format` must be
/// [`PRESCRIPTION_FORMAT_V2`]) followed by `pairing`.
pub fn encode_body_v2<'b>(
    prescription: &Prescription,
    pairing: &Pairing,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], PayloadError> {
    if prescription.format != PRESCRIPTION_FORMAT_V2 {
        return Err(PayloadError::Malformed);
    }
    let head = postcard::to_slice(prescription, &mut *buf)?.len();
    let tail =
        postcard::to_slice(pairing, buf.get_mut(head..).ok_or(PayloadError::TooLarge)?)?.len();
    let total = head + tail;
    buf.get_mut(..total).ok_or(PayloadError::TooLarge)
}

/// The domain a body's signature covers, chosen by its first byte (the
/// format, a one-byte postcard `u8`); `None` for an unknown format.
pub fn signing_domain(body: &[u8]) -> Option<&'static [u8]> {
    match body.first() {
        Some(&PRESCRIPTION_FORMAT) => Some(SIGNING_DOMAIN),
        Some(&PRESCRIPTION_FORMAT_V2) => Some(SIGNING_DOMAIN_V2),
        _ => None,
    }
}

/// Length of the largest message a prescription signature covers.
pub const MAX_SIGNED_MESSAGE_LEN: usize = SIGNING_DOMAIN.len() + MAX_PRESCRIPTION_BODY_LEN;

/// Writes the exact message a signature covers (the domain prefix of the
/// body's format, then the body) into `buf`, so signer and verifier cannot
/// disagree on what was signed. An unknown format is `Malformed`.
pub fn signed_message<'b>(body: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], PayloadError> {
    let domain_bytes = signing_domain(body).ok_or(PayloadError::Malformed)?;
    let len = domain_bytes.len() + body.len();
    let out = buf.get_mut(..len).ok_or(PayloadError::TooLarge)?;
    let (domain, rest) = out.split_at_mut(domain_bytes.len());
    domain.copy_from_slice(domain_bytes);
    rest.copy_from_slice(body);
    Ok(out)
}
