//! The board pumpctl checks prescriptions against and the simulator builds:
//! hardware limits, motor calibration, app roles and the simulator's
//! test-only clinic and patient-programmer keys.

use ed25519_dalek::SigningKey;
use infusion_core::{AppId, BoardConfig, HardwareLimits, Role};

/// Device id of the simulated implant.
pub const SIM_DEVICE_ID: u32 = 0x00C0_FFEE;
/// Volume one motor step moves (the simulated board's calibration).
pub const NL_PER_STEP: u32 = 250;
/// The dosing app's credential-checked short id.
pub const DOSING_APP: AppId = AppId(1);
/// The telemetry app's credential-checked short id.
pub const TELEMETRY_APP: AppId = AppId(2);
/// 2025-01-01T00:00:00Z: where simulated wall clocks start.
pub const SIM_EPOCH_UTC_MS: u64 = 1_735_689_600_000;

/// Seed of the simulator's clinic key. **TEST-ONLY**: it is public (it is
/// right here), so anything it signs is forgeable by anyone. The simulated
/// board trusts it so that `pumpctl simulate` and `pumpctl demo` can sign
/// the example prescriptions without setup; no real board may ever be built
/// with its public key.
pub const SIMULATOR_TEST_KEY_SEED: [u8; 32] = *b"pumpctl simulator TEST-ONLY key!";

/// The simulator's test-only clinic signing key.
pub fn simulator_test_key() -> SigningKey {
    SigningKey::from_bytes(&SIMULATOR_TEST_KEY_SEED)
}

/// Seed of the simulator's patient-programmer (PTM) key. **TEST-ONLY**, for
/// the same reason as [`SIMULATOR_TEST_KEY_SEED`]: it is public, so a pump
/// paired with its public key takes patient bolus requests from anyone. The
/// examples and the QEMU end-to-end prescription pair it so that signed
/// patient bolus requests can be exercised without setup; a real
/// prescription pairs the key of the patient's own PTM. A different seed
/// from the clinic key, so that a PTM signature never passes as the
/// clinic's.
pub const SIMULATOR_PTM_KEY_SEED: [u8; 32] = *b"pumpctl simulator TEST-ONLY PTM!";

/// The simulator's test-only patient-programmer signing key.
pub fn simulator_ptm_key() -> SigningKey {
    SigningKey::from_bytes(&SIMULATOR_PTM_KEY_SEED)
}

/// Hardware limits of the simulated board (an implantable pump with a
/// 20 mL reservoir), also the limits `rx check` applies.
pub fn hardware_limits() -> HardwareLimits {
    HardwareLimits {
        max_rate_nl_per_h: 1_000_000,
        max_bolus_nl: 1_000_000,
        reservoir_capacity_nl: 20_000_000,
        max_volume_per_24h_nl: 10_000_000,
        min_checkin_timeout_ms: 1_000,
        max_checkin_timeout_ms: 3_600_000,
    }
}

/// The simulated board, trusting the simulator's test key and `extra_keys`.
pub fn board_config(extra_keys: &[[u8; 32]]) -> BoardConfig {
    let mut roles = heapless::Vec::new();
    // Two entries always fit the role table.
    let _ = roles.push((DOSING_APP, Role::Dosing));
    let _ = roles.push((TELEMETRY_APP, Role::Telemetry));
    let mut clinic_keys = heapless::Vec::new();
    let _ = clinic_keys.push(simulator_test_key().verifying_key().to_bytes());
    for key in extra_keys {
        // The table holds a few keys; extra ones beyond it are ignored
        // (the caller checks the count first).
        let _ = clinic_keys.push(*key);
    }
    BoardConfig {
        device_id: SIM_DEVICE_ID,
        nl_per_step: NL_PER_STEP,
        limits: hardware_limits(),
        roles,
        clinic_keys,
        max_steps_without_encoder: 4,
        alarm_silence_ms: 10 * 60_000,
        refill_due_warning_ms: 7 * 86_400_000,
        basal_record_interval_ms: 3_600_000,
    }
}
