//! The battery: the core's coulomb count, the elective replacement
//! indicator and end of service (`pump/battery.rs`, docs/energy.md).
mod support;

use energy_core::{charge_pah, EnergyProfile, MS_PER_DAY, NRF52840_DK};
use infusion_core::InfusionCore;
use pump_protocol::{AlarmCode, AlarmPriority, ErrorCode, Message, PumpState};
use support::*;

/// A pump whose only cost is 1 mA, with a battery for 200 days of it: ERI
/// when 100 days are left (90 of therapy plus the 10-day reserve), end of
/// service when 10 are.
fn test_profile() -> EnergyProfile {
    EnergyProfile {
        name: "test",
        battery_capacity_pah: charge_pah(1_000_000, 200 * MS_PER_DAY),
        self_discharge_ppm_per_year: 0,
        sleep_current_na: 1_000_000,
        wakeup_charge_pah: 0,
        motor_step_charge_pah: 0,
        flash_erase_charge_pah: 0,
        flash_byte_charge_pah: 0,
        link_session_charge_pah: 0,
        link_byte_charge_pah: 0,
        alarm_tone_current_na: 0,
        signature_verify_charge_pah: 0,
        eri_lead_days: 90,
        eos_reserve_days: 10,
    }
}

fn counted(profile: EnergyProfile, saved: Option<&[u8]>, now: u64) -> Core {
    let mut core = InfusionCore::new(board(), Rig::default());
    core.set_energy_profile(profile);
    core.restore_from(saved, now);
    core
}

fn running_counted(profile: EnergyProfile) -> Core {
    let mut core = counted(profile, None, 0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    core
}

#[test]
fn sr_bat_001_the_count_follows_the_pumps_work_and_survives_a_reset() {
    let mut core = running_counted(NRF52840_DK);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, 6 * HOUR_MS, true);
    let estimate = core.battery_estimate(6 * HOUR_MS).unwrap();
    // 960 steps at 111 nAh and 6 h asleep at 5.2 µA, at least.
    let floor = 960 * NRF52840_DK.motor_step_charge_pah + charge_pah(5_200, 6 * HOUR_MS);
    let used = NRF52840_DK.battery_capacity_pah - estimate.remaining_pah;
    assert!(used >= floor, "{used} < {floor}");
    // An idle pump draws less: the steps are what the count adds.
    let mut idle = running_counted(NRF52840_DK);
    advance(&mut idle, 6 * HOUR_MS, true);
    let idle_used = NRF52840_DK.battery_capacity_pah
        - idle.battery_estimate(6 * HOUR_MS).unwrap().remaining_pah;
    assert!(idle_used + 960 * NRF52840_DK.motor_step_charge_pah <= used);
    // A reset keeps the count, less what was drawn since the last save
    // (its own write and the wake-ups after it): about a nanoampere-hour.
    let saved = core.platform().saved.clone();
    let back = counted(NRF52840_DK, saved.as_deref(), 6 * HOUR_MS);
    let restored = back.battery_estimate(6 * HOUR_MS).unwrap().remaining_pah;
    assert!(restored >= estimate.remaining_pah);
    assert!(restored - estimate.remaining_pah < 10_000, "{restored}");
    // Without a profile nothing is counted or projected.
    assert_eq!(running(0).battery_estimate(HOUR_MS), None);
}

#[test]
fn sr_bat_002_and_003_eri_comes_90_days_before_end_of_service_which_stops_delivery() {
    // Verifies: SR-BAT-002
    // Verifies: SR-BAT-003
    let mut core = running_counted(test_profile());
    drain(&mut core, 0);
    let mut eri_day = None;
    let mut eos_day = None;
    for day in 1..=200u64 {
        advance(&mut core, day * MS_PER_DAY, true);
        let alarms = core.alarms();
        if eri_day.is_none() && alarms.is_active(AlarmCode::BatteryReplacement) {
            eri_day = Some(day);
        }
        if eos_day.is_none() && alarms.is_active(AlarmCode::EndOfService) {
            eos_day = Some(day);
        }
        if eos_day.is_some() {
            break;
        }
        drain(&mut core, day * MS_PER_DAY);
    }
    let (eri, eos) = (eri_day.unwrap(), eos_day.unwrap());
    assert!((98..=100).contains(&eri), "ERI on day {eri}");
    assert!((189..=191).contains(&eos), "EOS on day {eos}");
    assert!(eos - eri >= 90, "ERI {eri}, EOS {eos}");
    let now = eos * MS_PER_DAY;
    // End of service: delivery stopped under a high alarm that stays.
    assert_eq!(core.pump_state(), PumpState::FaultStopped);
    assert_eq!(
        core.set_basal(DOSING, 10_000, now),
        Err(ErrorCode::FaultActive)
    );
    assert!(!core.platform().motor_enabled);
    assert_eq!(
        infusion_core::alarms::priority_of(AlarmCode::EndOfService),
        AlarmPriority::High
    );
    assert_eq!(
        core.clear_fault(TELEMETRY, AlarmCode::EndOfService, now),
        Err(ErrorCode::InvalidArgument)
    );
    let events: Vec<Message> = drain(&mut core, now).into_iter().map(|(_, m)| m).collect();
    assert!(events.iter().any(|m| matches!(m,
        Message::AlarmRaised(a) if a.code == AlarmCode::EndOfService)));
    assert!(events.iter().any(|m| matches!(m,
        Message::BatteryState(b) if b.replacement_recommended && b.charge_percent <= 5)));
}

#[test]
fn sr_bat_002_an_idle_pump_still_looks_at_its_battery_every_day() {
    let mut core = counted(test_profile(), None, 0);
    // No prescription, nothing to deliver: the battery check alone wakes it.
    assert_eq!(core.next_wakeup(), Some(MS_PER_DAY));
    core.on_timer(MS_PER_DAY);
    assert_eq!(core.next_wakeup(), Some(2 * MS_PER_DAY));
    // And a pump that does not count never wakes for it.
    assert_eq!(fresh(0).next_wakeup(), None);
}
