//! What the board decides at build time: hardware limits, the motor's
//! calibration, the role table and the clinic's public keys.

use pump_protocol::prescription::{Pairing, Prescription};
use pump_protocol::ErrorCode;

/// Most entries in the board's role table.
pub const MAX_ROLE_ENTRIES: usize = 8;

/// Most clinic public keys a board trusts at once (for key rotation).
pub const MAX_CLINIC_KEYS: usize = 4;

/// What an app may ask of the capsule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The dosing app: starts and stops deliveries, checks in.
    Dosing,
    /// The telemetry app: installs prescriptions, drains events, relays
    /// programmer commands.
    Telemetry,
    /// Any other app: may read status only.
    None,
}

/// Identity of the calling app, as the kernel's credential checker
/// established it (Tock's `ShortId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(pub u32);

/// Limits the pump hardware can honour. A prescription outside them is
/// refused, however well signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HardwareLimits {
    /// Fastest sustained flow the mechanism delivers accurately.
    pub max_rate_nl_per_h: u32,
    /// Largest single bolus the mechanism is rated for.
    pub max_bolus_nl: u32,
    /// Reservoir capacity.
    pub reservoir_capacity_nl: u32,
    /// Largest 24 h volume the mechanism is rated for.
    pub max_volume_per_24h_nl: u32,
    /// Shortest watchdog interval the scheduler supports.
    pub min_checkin_timeout_ms: u32,
    /// Longest watchdog interval allowed.
    pub max_checkin_timeout_ms: u32,
}

/// Board configuration of the infusion core.
#[derive(Clone, Debug)]
pub struct BoardConfig {
    /// This implant's id; prescriptions for other ids are refused.
    pub device_id: u32,
    /// Volume one motor step moves (calibration).
    pub nl_per_step: u32,
    /// Hardware limits.
    pub limits: HardwareLimits,
    /// App id → role. Apps not listed have [`Role::None`].
    pub roles: heapless::Vec<(AppId, Role), MAX_ROLE_ENTRIES>,
    /// Ed25519 public keys of the clinic, newest first.
    pub clinic_keys: heapless::Vec<[u8; 32], MAX_CLINIC_KEYS>,
    /// Steps the motor may take without an encoder pulse before the core
    /// declares a stall. `0` disables encoder supervision (boards without one).
    pub max_steps_without_encoder: u32,
    /// How long an acknowledged alarm stays silent.
    pub alarm_silence_ms: u32,
    /// Low-priority "refill due" alarm this long before the projected empty time.
    pub refill_due_warning_ms: u64,
    /// A running basal is reported in a `DeliveryRecord` checkpoint this often.
    pub basal_record_interval_ms: u64,
}

impl BoardConfig {
    /// The role of an app.
    pub fn role_of(&self, app: AppId) -> Role {
        self.roles
            .iter()
            .find(|(id, _)| *id == app)
            .map_or(Role::None, |(_, role)| *role)
    }

    /// Checks that a prescription's limits sit inside the hardware limits and
    /// are internally consistent.
    pub fn check_limits(&self, rx: &Prescription) -> Result<(), ErrorCode> {
        let env = &rx.envelope;
        let hw = &self.limits;
        let silence_rate = match env.silence_policy {
            pump_protocol::prescription::SilencePolicy::StopDelivery => 0,
            pump_protocol::prescription::SilencePolicy::ContinueBasal { rate_nl_per_h } => {
                rate_nl_per_h
            }
        };
        let inside = env.max_basal_rate_nl_per_h <= hw.max_rate_nl_per_h
            && env.max_bolus_nl <= hw.max_bolus_nl
            && env.max_volume_per_24h_nl <= hw.max_volume_per_24h_nl
            && env.reservoir_low_threshold_nl <= hw.reservoir_capacity_nl
            && env.dosing_checkin_timeout_ms >= hw.min_checkin_timeout_ms
            && env.dosing_checkin_timeout_ms <= hw.max_checkin_timeout_ms
            && silence_rate <= env.max_basal_rate_nl_per_h
            && u64::from(silence_rate) * 24 <= u64::from(env.max_volume_per_24h_nl)
            && env.min_patient_bolus_lockout_ms <= crate::ledger::WINDOW_MS as u32
            && usize::from(env.max_patient_boluses_per_24h)
                <= crate::ledger::MAX_PATIENT_BOLUSES_PER_24H
            && rx.concentration_ug_per_ml > 0
            && env.max_volume_per_24h_nl > 0;
        if inside {
            Ok(())
        } else {
            Err(ErrorCode::OutsideHardwareLimits)
        }
    }

    /// Checks that a prescription's pairing asks only what the pump can
    /// keep: the ledger remembers a clinician bolus for the 24 h window, so
    /// a longer minimum interval would be forgotten after a day and not kept
    /// (SR-AUTH-006; found by review, 2026-12-07).
    pub fn check_pairing(&self, pairing: &Pairing) -> Result<(), ErrorCode> {
        if u64::from(pairing.clinician_bolus.min_interval_ms) <= crate::ledger::WINDOW_MS {
            Ok(())
        } else {
            Err(ErrorCode::OutsideHardwareLimits)
        }
    }
}
