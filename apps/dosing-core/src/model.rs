//! The therapy the dosing app runs, built from the signed prescription the
//! capsule holds. Doses are converted to volumes here, once, at the
//! prescription's concentration (see [`crate::units`]).

use heapless::{String, Vec};
use pump_protocol::prescription::{
    split_signed, BasalStep, Envelope, Prescription, MAX_BASAL_STEPS, MAX_DRUG_NAME_LEN,
};
use serde::{Deserialize, Serialize};

use crate::schedule::{BasalSchedule, ScheduleError};
use crate::units::dose_volume_nl;

/// Why a prescription's therapy cannot be run by this app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// The bytes are not a signed prescription body.
    Malformed,
    /// The basal schedule is invalid.
    Schedule(ScheduleError),
    /// A bolus dose does not convert to a volume.
    BolusConversion,
}

/// A drug and its concentration: what fills the reservoir and the catheter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drug {
    /// Drug name as prescribed.
    pub name: String<MAX_DRUG_NAME_LEN>,
    /// Concentration.
    pub concentration_ug_per_ml: u32,
}

/// A bolus as the capsule takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BolusPlan {
    /// Prescribed dose.
    pub dose_ug: u32,
    /// The dose's volume at the prescription's concentration.
    pub volume_nl: u32,
    /// Delivery duration.
    pub duration_ms: u32,
}

/// The patient bolus (PTM) program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatientBolusPlan {
    /// Each bolus.
    pub bolus: BolusPlan,
    /// Lockout after each bolus's start (the therapy's, which may be longer
    /// than the envelope's minimum).
    pub lockout_ms: u32,
    /// Most boluses in any rolling 24 h (the therapy's).
    pub max_per_24h: u8,
}

/// The therapy of one prescription, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Therapy {
    /// Prescription serial.
    pub serial: u32,
    /// The drug.
    pub drug: Drug,
    /// The prescribed steps, as signed (kept to rebuild the schedule after a
    /// reset while the drug is still in the catheter).
    pub basal_steps: Vec<BasalStep, MAX_BASAL_STEPS>,
    /// The basal schedule in nL/h.
    pub schedule: BasalSchedule,
    /// The clinician bolus preset.
    pub clinician_bolus: Option<BolusPlan>,
    /// The PTM program.
    pub patient_bolus: Option<PatientBolusPlan>,
    /// Catheter volume (priming and bridge boluses).
    pub catheter_volume_nl: u32,
    /// The envelope the capsule enforces (the app only uses it to size
    /// requests so that they are not refused for a known reason).
    pub envelope: Envelope,
}

impl Therapy {
    /// Builds the therapy of a decoded prescription.
    pub fn from_prescription(rx: &Prescription) -> Result<Self, ModelError> {
        let concentration = rx.concentration_ug_per_ml;
        let schedule = BasalSchedule::new(&rx.therapy.basal_steps, concentration)
            .map_err(ModelError::Schedule)?;
        let plan = |dose_ug: u32, duration_ms: u32| -> Result<BolusPlan, ModelError> {
            let volume_nl =
                dose_volume_nl(dose_ug, concentration).map_err(|_| ModelError::BolusConversion)?;
            Ok(BolusPlan {
                dose_ug,
                volume_nl,
                duration_ms,
            })
        };
        let clinician_bolus = match rx.therapy.clinician_bolus {
            Some(b) => Some(plan(b.dose_ug, b.duration_ms)?),
            None => None,
        };
        let patient_bolus = match rx.therapy.patient_bolus {
            Some(p) => Some(PatientBolusPlan {
                bolus: plan(p.dose_ug, p.duration_ms)?,
                lockout_ms: p.lockout_ms,
                max_per_24h: p.max_per_24h,
            }),
            None => None,
        };
        Ok(Self {
            serial: rx.serial,
            drug: Drug {
                name: rx.drug_name.clone(),
                concentration_ug_per_ml: concentration,
            },
            basal_steps: rx.therapy.basal_steps.clone(),
            schedule,
            clinician_bolus,
            patient_bolus,
            catheter_volume_nl: rx.therapy.catheter_volume_nl,
            envelope: rx.envelope,
        })
    }

    /// Builds the therapy of signed prescription bytes (the signature is the
    /// capsule's business: it verified them before installing).
    pub fn from_signed(signed: &[u8]) -> Result<Self, ModelError> {
        let parts = split_signed(signed).map_err(|_| ModelError::Malformed)?;
        let rx = pump_protocol::prescription::decode_body(parts.body)
            .map_err(|_| ModelError::Malformed)?;
        Self::from_prescription(&rx)
    }
}
