//! The data the core keeps across resets, and its bounds. Data only: the
//! rules that change it are in the sibling modules, and [`super::persist`]
//! decides when it is written.

use heapless::Vec;
use pump_protocol::prescription::MAX_SIGNED_PRESCRIPTION_LEN;
use serde::{Deserialize, Serialize};

use crate::alarms::AlarmSet;
use crate::ledger::Ledger;

/// Bytes the persisted state can take (postcard body plus CRC-32C).
pub const SAVED_STATE_LEN: usize = 4096;

/// Format 2 added the dosing app's record; format 3 each run's lateness
/// (`Run::late_ms`); format 4 the signed-command counters; format 5 the
/// battery's charge count. Earlier formats were never released; such a record is
/// not migrated and fails safe like a corrupt one.
pub(super) const SAVED_FORMAT: u8 = 5;

/// Steps one [`RecordKind::Reservation`] covers: the most a reset can leave
/// unconfirmed, so the bound of the log's uncertainty is
/// `RESERVATION_STEPS × nl_per_step` (8 000 nL at 250 nL a step). See
/// `docs/persistence.md` for the wear it buys.
pub const RESERVATION_STEPS: u64 = 32;

/// Largest record the dosing app may keep in the capsule's saved state
/// (commands 26 and 27).
pub const APP_RECORD_MAX_LEN: usize = 1024;

/// Everything that survives a reset. Written after every change and before
/// every motor step, so a step is accounted before it moves (SR-PER-002).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Persistent {
    pub(super) format: u8,
    pub(super) signed_rx: Option<Vec<u8, MAX_SIGNED_PRESCRIPTION_LEN>>,
    pub(super) serial_floor: u32,
    pub(super) suspended: bool,
    pub(super) ledger: Ledger,
    pub(super) basal_carry_nl_ms_per_h: u64,
    pub(super) bolus_carry_nl_ms_per_h: u64,
    pub(super) reservoir_nl: u32,
    pub(super) alarms: AlarmSet,
    pub(super) utc_offset_ms: i64,
    pub(super) last_time_ms: u64,
    pub(super) next_event_sequence: u32,
    /// What the dosing app alone knows (its own postcard record, opaque
    /// here), kept so it survives resets with the same atomic, CRC-checked
    /// writes as the capsule's state.
    pub(super) app_record: Vec<u8, APP_RECORD_MAX_LEN>,
    /// The last counter accepted from each signer (`Signer::index`): a
    /// signed command at or below it is a replay (SR-AUTH-003).
    pub(super) command_counters: [u64; 2],
    /// The battery's coulomb count (see [`super::battery`]).
    pub(super) battery: ChargeCount,
}

/// Charge the pump has drawn from its battery, counted from its own work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChargeCount {
    /// Drawn since the count started, self-discharge excluded.
    pub used_pah: u64,
    /// Core time the count started (the battery was new).
    pub since_ms: u64,
    /// Core time up to which sleep and tone are counted.
    pub counted_until_ms: u64,
}

/// A clinician bolus the clinic signed, waiting for the dosing app to start
/// it. It is used once, and only within the relay's answer time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClinicianGrant {
    /// The relay ticket the request was posted under.
    pub ticket: u32,
    /// The signed dose, as volume at the prescription's concentration
    /// (rounded down, as the dosing app converts it).
    pub volume_nl: u32,
    /// The signed duration: the bolus may not run faster.
    pub duration_ms: u32,
    /// The grant lapses here.
    pub expires_at_ms: u64,
}

/// Refusals of one app counted since its `AccessDenied`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeniedFold {
    pub app_id: u32,
    /// Refusals after the `AccessDenied` (0: none yet).
    pub count: u32,
    pub first_time_ms: u64,
    pub last_time_ms: u64,
    pub last_command: u16,
}

/// When the last few mechanism faults (stall, occlusion) were raised, this
/// boot: the third within 24 h calls for the clinic (SR-ALM-006).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FaultHistory {
    /// Raise times, newest last; 0 is an empty slot.
    pub times_ms: [u64; REPEATED_FAULTS_ALARM_AT],
}

/// Mechanism faults within 24 h from which `RepeatedFaults` is raised.
pub const REPEATED_FAULTS_ALARM_AT: usize = 3;

impl FaultHistory {
    /// Records a fault at `now` and returns how many of the kept ones fall
    /// in the 24 h before it (itself included).
    pub fn record(&mut self, now: u64) -> usize {
        self.times_ms.rotate_left(1);
        if let Some(last) = self.times_ms.last_mut() {
            *last = now.max(1);
        }
        self.times_ms
            .iter()
            .filter(|&&t| t != 0 && t.saturating_add(crate::ledger::WINDOW_MS) > now)
            .count()
    }
}
