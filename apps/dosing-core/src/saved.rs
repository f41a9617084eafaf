//! What the dosing app alone knows and keeps across its resets: the
//! contents of the catheter path, a flush in progress and the patient-bolus
//! grants. The core ([`crate::DosingCore`]) updates it; [`crate::record`]
//! writes it into the capsule and reads it back.

use heapless::Vec;
use pump_protocol::prescription::{BasalStep, MAX_BASAL_STEPS};
use pump_protocol::DeliveryKind;
use serde::{Deserialize, Serialize};

use crate::model::Drug;

/// Most patient-bolus grants remembered: the capsule allows at most 48 per
/// rolling 24 h (`infusion_core::ledger::MAX_PATIENT_BOLUSES_PER_24H`).
pub const MAX_PATIENT_GRANTS: usize = 48;

/// What the catheter path (pump dead volume and catheter) holds.
// No allocator to box the large variant into; one value per app is cheap.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatheterContents {
    /// Not known (first start of the app on a running pump): taken to hold
    /// the drug of the first prescription seen, so neither a priming nor a
    /// bridge bolus is given on a guess.
    Unknown,
    /// A new implant's catheter, not primed yet: the first prescription
    /// starts with a priming bolus.
    Empty,
    /// A drug, delivered until now under these basal steps.
    Drug {
        /// The drug and its concentration.
        drug: Drug,
        /// The schedule it ran under (its rate is the bridge's rate).
        basal_steps: Vec<BasalStep, MAX_BASAL_STEPS>,
    },
}

/// Which flush is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlushKind {
    /// Filling an empty catheter with the prescribed drug.
    Priming,
    /// Pushing the previous drug out of the catheter path at its own rate.
    Bridge,
}

impl FlushKind {
    pub(crate) fn delivery_kind(self) -> DeliveryKind {
        match self {
            Self::Priming => DeliveryKind::Priming,
            Self::Bridge => DeliveryKind::Bridge,
        }
    }
}

/// A priming or bridge flush in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flush {
    /// Which.
    pub kind: FlushKind,
    /// Volume still to push.
    pub remaining_nl: u32,
}

/// What the shell persists across resets of the app (postcard-serialisable,
/// bounded). The capsule keeps its own state; this is only what the app
/// alone knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedState {
    /// What the catheter path holds.
    pub catheter: CatheterContents,
    /// A flush in progress.
    pub flush: Option<Flush>,
    /// Monotonic start times of the patient boluses granted in the last 24 h.
    pub patient_grants_ms: Vec<u64, MAX_PATIENT_GRANTS>,
}

impl SavedState {
    /// State for a pump whose catheter path is in `catheter`.
    pub fn new(catheter: CatheterContents) -> Self {
        Self {
            catheter,
            flush: None,
            patient_grants_ms: Vec::new(),
        }
    }
}
