//! The battery: the core's coulomb count, the elective replacement
//! indicator and end of service (`pump/battery.rs`, docs/energy.md).
mod support;

use energy_core::{charge_pah, EnergyProfile, MS_PER_DAY, NRF52840_DK};
use infusion_core::CommandResult;
use infusion_core::InfusionCore;
use pump_protocol::{AlarmCode, AlarmPriority, ErrorCode, Message, PumpState, ServiceOutlook};
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

/// Command 29 as an app reads it: the postcard `ServiceOutlook`.
fn outlook_of(core: &mut Core, caller: infusion_core::AppId, now: u64) -> ServiceOutlook {
    let mut buf = [0u8; 64];
    match core.command(
        caller,
        u32::from(infusion_core::command::SERVICE_OUTLOOK),
        0,
        0,
        &[],
        &mut buf,
        now,
    ) {
        CommandResult::SuccessU32(len) => postcard::from_bytes(&buf[..len as usize]).unwrap(),
        other => panic!("command 29: {other:?}"),
    }
}

#[test]
fn sr_bat_004_the_outlook_dates_eri_and_end_of_service_before_they_come() {
    let mut core = running_counted(test_profile());
    core.set_basal(DOSING, 10_000, 0).unwrap();
    drain(&mut core, 0);
    // Any app may read it; it is the same outlook the core computes.
    let first = outlook_of(&mut core, TELEMETRY, 0);
    assert_eq!(outlook_of(&mut core, DOSING, 0), first);
    assert_eq!(outlook_of(&mut core, ROGUE, 0), first);
    assert_eq!(core.service_outlook(0), first);
    assert_eq!(first.charge_percent, 100);
    assert_eq!(first.average_current_na, 1_000_000);
    assert!(!first.replacement_recommended && !first.end_of_service);
    // 200 days of charge at 1 mA: ERI when 101 days are left (90 + the
    // 10-day reserve + the day between checks), EOS when 10 are.
    let eri_day = (first.eri_time_ms.unwrap() - first.time_ms) / MS_PER_DAY;
    let eos_day = (first.eos_time_ms.unwrap() - first.time_ms) / MS_PER_DAY;
    assert_eq!((eri_day, eos_day), (99, 190));
    // The refill-by date is the status snapshot's.
    assert_eq!(first.refill_by_time_ms, core.status(0).refill_by_time_ms);
    assert!(first.refill_by_time_ms.is_some());

    // Half-way the dates have not moved and the charge has halved.
    advance(&mut core, 50 * MS_PER_DAY, true);
    drain(&mut core, 50 * MS_PER_DAY);
    let half = outlook_of(&mut core, TELEMETRY, 50 * MS_PER_DAY);
    assert!(
        (74..=75).contains(&half.charge_percent),
        "{}",
        half.charge_percent
    );
    let shift = half
        .eri_time_ms
        .unwrap()
        .abs_diff(first.eri_time_ms.unwrap());
    assert!(shift < MS_PER_DAY, "ERI date moved by {shift} ms");

    // The alarm comes on the day the outlook named.
    let mut day = 50;
    while !core.alarms().is_active(AlarmCode::BatteryReplacement) {
        day += 1;
        advance(&mut core, day * MS_PER_DAY, true);
        drain(&mut core, day * MS_PER_DAY);
    }
    assert!(
        day.abs_diff(eri_day) <= 1,
        "ERI on day {day}, named {eri_day}"
    );
    let at_eri = outlook_of(&mut core, TELEMETRY, day * MS_PER_DAY);
    assert!(at_eri.replacement_recommended && !at_eri.end_of_service);
    assert_eq!(at_eri.eri_time_ms, Some(at_eri.time_ms));
    while !core.alarms().is_active(AlarmCode::EndOfService) {
        day += 1;
        advance(&mut core, day * MS_PER_DAY, true);
        drain(&mut core, day * MS_PER_DAY);
    }
    assert!(
        day.abs_diff(eos_day) <= 1,
        "EOS on day {day}, named {eos_day}"
    );
    let at_eos = outlook_of(&mut core, TELEMETRY, day * MS_PER_DAY);
    assert!(at_eos.end_of_service && at_eos.replacement_recommended);
    assert!(at_eos.charge_percent <= 5);
}

#[test]
fn sr_bat_004_without_a_profile_the_outlook_has_no_dates() {
    let mut core = running(0);
    let outlook = outlook_of(&mut core, TELEMETRY, HOUR_MS);
    assert_eq!(outlook.eri_time_ms, None);
    assert_eq!(outlook.eos_time_ms, None);
    assert_eq!(outlook.charge_percent, 0);
    assert!(!outlook.replacement_recommended);
    // A gauge's ERI still shows.
    core.on_battery(2_900, 12, true, HOUR_MS);
    assert!(core.service_outlook(HOUR_MS).replacement_recommended);
    // A buffer too small for it is refused.
    let mut small = [0xAAu8; 8];
    let result = core.command(
        TELEMETRY,
        u32::from(infusion_core::command::SERVICE_OUTLOOK),
        0,
        0,
        &[],
        &mut small,
        HOUR_MS,
    );
    assert_eq!(result, CommandResult::Failure(ErrorCode::InvalidArgument));
}
