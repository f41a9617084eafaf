//! The battery count at the price of each kind of work, and the figures
//! projected from it (`pump/battery.rs`, SR-BAT-001, SR-BAT-004). Each
//! profile here prices one thing only, so the count can be compared with
//! that one price exactly.
mod support;

use energy_core::{charge_pah, EnergyProfile, MS_PER_DAY};
use infusion_core::InfusionCore;
use support::*;

/// Nothing costs anything: each test prices the one thing it looks at.
fn free() -> EnergyProfile {
    EnergyProfile {
        name: "free",
        battery_capacity_pah: charge_pah(1_000_000, 200 * MS_PER_DAY),
        self_discharge_ppm_per_year: 0,
        sleep_current_na: 0,
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

fn counted(profile: EnergyProfile, now: u64) -> Core {
    let mut core = InfusionCore::new(board(), Rig::default());
    core.set_energy_profile(profile);
    core.restore_from(None, now);
    core
}

/// Installs, refills and runs a basal for six hours; the charge used.
fn used_by_a_day_of_work(profile: EnergyProfile) -> u64 {
    let mut core = counted(profile, 0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, 6 * HOUR_MS, true);
    let left = core.battery_estimate(6 * HOUR_MS).unwrap().remaining_pah;
    profile.battery_capacity_pah - left
}

#[test]
fn sr_bat_001_wake_ups_signatures_and_flash_writes_each_draw_their_price() {
    // Verifies: SR-BAT-001
    // Prices that no other sum of this scenario's work could add up to.
    let wakeup = 7_919;
    let used = used_by_a_day_of_work(EnergyProfile {
        wakeup_charge_pah: wakeup,
        ..free()
    });
    assert!(used >= 100 * wakeup, "{used}");
    assert_eq!(used % wakeup, 0, "{used}");

    // One prescription, one signature.
    let signature = 1_000_003;
    let used = used_by_a_day_of_work(EnergyProfile {
        signature_verify_charge_pah: signature,
        ..free()
    });
    assert_eq!(used, signature);

    // A written byte priced directly, or as its 4 KiB page's share of one
    // erase, costs the same: 1 000 pAh per byte either way.
    let by_byte = used_by_a_day_of_work(EnergyProfile {
        flash_byte_charge_pah: 1_000,
        ..free()
    });
    let by_erase_share = used_by_a_day_of_work(EnergyProfile {
        flash_erase_charge_pah: 4_096 * 1_000,
        ..free()
    });
    assert!(by_byte >= 100 * 1_000, "{by_byte}");
    assert_eq!(by_byte % 1_000, 0);
    assert_eq!(by_erase_share, by_byte);
}

#[test]
fn sr_bat_001_a_new_battery_is_counted_from_the_first_boot_not_from_time_zero() {
    // Verifies: SR-BAT-001
    let booted = 30 * MS_PER_DAY;
    let mut core = counted(
        EnergyProfile {
            sleep_current_na: 1_000_000,
            ..free()
        },
        booted,
    );
    advance(&mut core, booted + HOUR_MS, false);
    let estimate = core.battery_estimate(booted + HOUR_MS).unwrap();
    assert_eq!(
        free().battery_capacity_pah - estimate.remaining_pah,
        charge_pah(1_000_000, HOUR_MS)
    );
}

/// A pump that has drawn exactly 1 mA for a day of its 200-day battery.
fn one_day_at_one_milliamp() -> Core {
    let mut core = counted(
        EnergyProfile {
            sleep_current_na: 1_000_000,
            ..free()
        },
        0,
    );
    advance(&mut core, MS_PER_DAY, false);
    core
}

#[test]
fn sr_bat_001_the_projection_divides_the_charge_left_by_the_average_current() {
    // Verifies: SR-BAT-001
    let estimate = one_day_at_one_milliamp()
        .battery_estimate(MS_PER_DAY)
        .unwrap();
    assert_eq!(estimate.average_current_na, 1_000_000);
    assert_eq!(
        estimate.remaining_pah,
        charge_pah(1_000_000, 199 * MS_PER_DAY)
    );
    // 199 days of charge, less the 10-day reserve at end of service.
    assert_eq!(estimate.days_to_eos_x100, 189 * 100);
}

#[test]
fn sr_bat_004_the_outlook_reports_the_charge_left_in_microampere_hours() {
    // Verifies: SR-BAT-004
    let outlook = one_day_at_one_milliamp().service_outlook(MS_PER_DAY);
    // 199 days at 1 mA: 4 776 mAh.
    assert_eq!(outlook.remaining_charge_uah, 4_776_000);
    assert_eq!(outlook.average_current_na, 1_000_000);
    assert!(!outlook.replacement_recommended);
}

#[test]
fn sr_bat_004_the_outlook_recommends_replacement_once_the_count_says_so_before_the_alarm() {
    // Verifies: SR-BAT-004
    // The cell loses all its charge in a year by itself, and nothing wakes
    // the core: the ERI alarm, raised only at a wake-up, is not active yet,
    // but the charge the outlook reads is already inside the ERI margin.
    let core = counted(
        EnergyProfile {
            self_discharge_ppm_per_year: 1_000_000,
            ..free()
        },
        0,
    );
    let early = core.service_outlook(30 * MS_PER_DAY);
    assert!(!early.replacement_recommended, "{early:?}");
    let late = core.service_outlook(300 * MS_PER_DAY);
    assert!(!core
        .alarms()
        .is_active(pump_protocol::AlarmCode::BatteryReplacement));
    assert!(late.replacement_recommended, "{late:?}");
    assert!(!late.end_of_service);
}

#[test]
fn sr_bat_002_the_eri_is_logged_with_the_charge_left_in_percent() {
    // Verifies: SR-BAT-002
    // 1 mA for 200 days: the ERI comes with 101 days (90 + 10 + 1) of
    // charge left, a little over half of the battery.
    let mut core = counted(
        EnergyProfile {
            sleep_current_na: 1_000_000,
            ..free()
        },
        0,
    );
    drain(&mut core, 0);
    for day in 1..=120u64 {
        let now = day * MS_PER_DAY;
        advance(&mut core, now, false);
        let logged: Vec<pump_protocol::BatteryState> = drain(&mut core, now)
            .into_iter()
            .filter_map(|(_, m)| match m {
                pump_protocol::Message::BatteryState(b) => Some(b),
                _ => None,
            })
            .collect();
        if let Some(state) = logged.first() {
            assert_eq!(logged.len(), 1);
            assert!(state.replacement_recommended);
            let left = core.battery_estimate(now).unwrap().remaining_pah;
            assert_eq!(
                u64::from(state.charge_percent),
                left * 100 / free().battery_capacity_pah
            );
            assert!((50..=51).contains(&state.charge_percent), "{state:?}");
            return;
        }
    }
    panic!("no ERI in 120 days");
}

#[test]
fn sr_bat_001_a_saved_image_is_charged_for_every_byte_written_crc_included() {
    // Verifies: SR-BAT-001
    let mut core = counted(
        EnergyProfile {
            flash_byte_charge_pah: 1_000,
            ..free()
        },
        0,
    );
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    let before = core.battery_estimate(0).unwrap().remaining_pah;
    core.platform_mut().saved = None;
    core.set_clock(TELEMETRY, 1_800_000_000_000, 0).unwrap();
    let written = core
        .platform()
        .saved
        .as_ref()
        .expect("a clock change is saved")
        .len() as u64;
    let after = core.battery_estimate(0).unwrap().remaining_pah;
    assert_eq!(before - after, 1_000 * written);
}

/// Found by the test above: a profile that prices sleep at nothing made the
/// projection divide by a zero average current at the first boot's instant.
#[test]
fn sr_bat_001_a_profile_with_no_sleep_current_projects_without_dividing_by_zero() {
    // Verifies: SR-BAT-001
    let core = counted(free(), 0);
    let estimate = core.battery_estimate(0).unwrap();
    assert_eq!(estimate.remaining_pah, free().battery_capacity_pah);
    assert_eq!(estimate.average_current_na, 1);
    let outlook = core.service_outlook(0);
    assert_eq!(outlook.charge_percent, 100);
}
