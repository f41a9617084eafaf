//! Envelope enforcement on delivery requests and at every step.
mod support;

use infusion_core::ledger::WINDOW_MS;
use pump_protocol::{AlarmCode, AlarmPriority, DeliveryKind, ErrorCode, Message};
use support::*;

#[test]
fn sr_env_001_basal_above_envelope_is_refused_not_clamped() {
    let mut core = running(0);
    core.set_basal(DOSING, 20_000, 0).unwrap();
    assert_eq!(
        core.set_basal(DOSING, 50_001, 0),
        Err(ErrorCode::RateAboveEnvelope)
    );
    // The running basal is untouched, not clamped to the maximum.
    assert_eq!(core.basal_rate_nl_per_h(), 20_000);
    // The maximum itself is allowed.
    assert_eq!(core.set_basal(DOSING, 50_000, 0), Ok(()));
}

#[test]
fn sr_env_002_basal_that_would_exceed_the_daily_maximum_is_refused() {
    let mut core = running(0);
    // 1 500 000 nL per 24 h allows at most 62 500 nL/h; the envelope caps basal
    // at 50 000, so lower the daily limit to make the daily check the binding one.
    let mut rx = prescription(2);
    rx.envelope.max_volume_per_24h_nl = 480_000;
    core.install_prescription(TELEMETRY, &sign_with(&rx, &clinic_key()), 0)
        .unwrap();
    assert_eq!(
        core.set_basal(DOSING, 20_001, 0),
        Err(ErrorCode::DailyLimitReached)
    );
    assert_eq!(core.set_basal(DOSING, 20_000, 0), Ok(()));
}

#[test]
fn sr_env_003_oversized_or_degenerate_bolus_is_refused_whole() {
    let mut core = running(0);
    for kind in [
        DeliveryKind::ClinicianBolus,
        DeliveryKind::PatientBolus,
        DeliveryKind::Priming,
        DeliveryKind::Bridge,
    ] {
        assert_eq!(
            core.start_bolus(DOSING, kind, 100_001, 60_000, 0),
            Err(ErrorCode::BolusAboveEnvelope)
        );
    }
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 0, 60_000, 0),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 10_000, 0, 0),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(core.bolus_remaining_nl(), 0);
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 100_000, 60_000, 0),
        Ok(())
    );
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 1_000, 60_000, 0),
        Err(ErrorCode::Busy)
    );
}

#[test]
fn sr_env_004_patient_bolus_lockout_and_daily_count() {
    let mut core = running(0);
    let bolus = |core: &mut Core, t| {
        core.start_bolus(DOSING, DeliveryKind::PatientBolus, 10_000, 60_000, t)
    };
    assert_eq!(bolus(&mut core, 0), Ok(()));
    advance(&mut core, 30 * MINUTE_MS, true);
    assert_eq!(
        bolus(&mut core, 30 * MINUTE_MS),
        Err(ErrorCode::LockoutActive)
    );
    assert_eq!(
        core.patient_bolus_availability(30 * MINUTE_MS),
        (30 * 60_000, 3)
    );
    for i in 1..4 {
        let t = i * HOUR_MS;
        advance(&mut core, t, true);
        assert_eq!(bolus(&mut core, t), Ok(()), "bolus {i}");
    }
    advance(&mut core, 5 * HOUR_MS, true);
    assert_eq!(
        bolus(&mut core, 5 * HOUR_MS),
        Err(ErrorCode::BolusCountReached)
    );
    // 24 h after the first one, one becomes available again.
    advance(&mut core, DAY_MS + 1, true);
    assert_eq!(bolus(&mut core, DAY_MS + 1), Ok(()));

    let events = drain(&mut core, DAY_MS + 1);
    let denied: Vec<_> = events
        .iter()
        .filter_map(|(_, m)| match m {
            Message::PatientBolusDenied(d) => Some((d.reason, d.lockout_remaining_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        denied,
        [
            (ErrorCode::LockoutActive, 30 * 60_000),
            (ErrorCode::BolusCountReached, 0)
        ]
    );
}

#[test]
fn sr_env_005_rolling_window_is_exact_and_enforced_at_every_step() {
    let mut core = running(0);
    // 40 000 nL/h for 24 h is 960 000 nL; add boluses up to the 1.5 mL limit.
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, WINDOW_MS, true);
    assert_eq!(core.delivered_24h_nl(WINDOW_MS), 960_000);
    // Exactly one step per 22.5 s leaves the window as one enters.
    advance(&mut core, WINDOW_MS + HOUR_MS, true);
    assert_eq!(core.delivered_24h_nl(WINDOW_MS + HOUR_MS), 960_000);
    // Every 24 h window of the step record stays under the limit.
    let steps = core.platform().steps;
    assert_eq!(steps, (WINDOW_MS + HOUR_MS) / 22_500);
}

#[test]
fn sr_env_005_step_gate_stops_delivery_at_the_daily_limit() {
    let mut core = running(0);
    let mut rx = prescription(2);
    // Limit below what basal plus boluses would reach.
    rx.envelope.max_volume_per_24h_nl = 1_000_000;
    core.install_prescription(TELEMETRY, &sign_with(&rx, &clinic_key()), 0)
        .unwrap();
    core.set_basal(DOSING, 40_000, 0).unwrap();
    for i in 0..3u64 {
        let t = i * HOUR_MS;
        advance(&mut core, t, true);
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 20_000, 60_000, t)
            .unwrap();
    }
    // 960 000 nL of basal plus 60 000 nL of boluses would be 1 020 000 nL.
    advance(&mut core, WINDOW_MS - 1, true);
    let delivered = core.delivered_24h_nl(WINDOW_MS - 1);
    assert!(delivered <= 1_000_000, "{delivered}");
    // The basal ran into the limit and was stopped with a reason.
    assert_eq!(core.basal_rate_nl_per_h(), 0);
    let events = drain(&mut core, WINDOW_MS);
    assert!(events.iter().any(|(_, m)| matches!(m,
        Message::DeliveryDenied(d) if d.reason == ErrorCode::DailyLimitReached
    )));
}

#[test]
fn sr_env_006_bolus_checked_against_projected_daily_total() {
    let mut core = running(0);
    core.set_basal(DOSING, 50_000, 0).unwrap();
    advance(&mut core, 20 * HOUR_MS, true);
    // 1 000 000 nL delivered; 1 500 000 allowed; a 100 000 nL bolus over 10 h
    // would add 500 000 nL of basal during it as well.
    assert_eq!(core.delivered_24h_nl(20 * HOUR_MS), 1_000_000);
    assert_eq!(
        core.start_bolus(
            DOSING,
            DeliveryKind::ClinicianBolus,
            100_000,
            10 * HOUR_MS as u32,
            20 * HOUR_MS
        ),
        Err(ErrorCode::DailyLimitReached)
    );
    assert_eq!(
        core.start_bolus(
            DOSING,
            DeliveryKind::ClinicianBolus,
            100_000,
            60_000,
            20 * HOUR_MS
        ),
        Ok(())
    );
}

#[test]
fn sr_env_007_clock_changes_do_not_move_safety_windows() {
    let mut core = running(0);
    core.start_bolus(DOSING, DeliveryKind::PatientBolus, 10_000, 60_000, 0)
        .unwrap();
    advance(&mut core, 10 * MINUTE_MS, true);
    // Set the wall clock two days ahead: the lockout still runs.
    core.set_clock(TELEMETRY, 1_800_000_000_000, 10 * MINUTE_MS)
        .unwrap();
    assert_eq!(
        core.start_bolus(
            DOSING,
            DeliveryKind::PatientBolus,
            10_000,
            60_000,
            10 * MINUTE_MS
        ),
        Err(ErrorCode::LockoutActive)
    );
    assert_eq!(core.status(10 * MINUTE_MS).time_ms, 1_800_000_000_000);
    // A clock source that runs backwards freezes core time instead: asking
    // at an earlier instant cannot make the lockout look longer ago.
    advance(&mut core, 2 * HOUR_MS, true);
    core.start_bolus(
        DOSING,
        DeliveryKind::PatientBolus,
        10_000,
        60_000,
        2 * HOUR_MS,
    )
    .unwrap();
    advance(&mut core, 3 * HOUR_MS + 1, true);
    assert_eq!(
        core.start_bolus(
            DOSING,
            DeliveryKind::PatientBolus,
            10_000,
            60_000,
            2 * HOUR_MS + 1
        ),
        Ok(()),
        "core time is 3 h + 1 ms, so the 1 h lockout from 2 h has elapsed"
    );
    assert_eq!(core.status(0).time_ms, core.status(3 * HOUR_MS + 1).time_ms);
}

#[test]
fn sr_env_008_suspend_stops_everything() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    core.start_bolus(
        DOSING,
        DeliveryKind::ClinicianBolus,
        50_000,
        HOUR_MS as u32,
        0,
    )
    .unwrap();
    advance(&mut core, 10 * MINUTE_MS, true);
    core.suspend(TELEMETRY, 10 * MINUTE_MS).unwrap();
    let steps = core.platform().steps;
    assert!(!core.platform().motor_enabled);
    assert_eq!(
        core.set_basal(DOSING, 10_000, 10 * MINUTE_MS),
        Err(ErrorCode::Suspended)
    );
    advance(&mut core, 2 * HOUR_MS, true);
    assert_eq!(core.platform().steps, steps);
    core.resume(TELEMETRY, 2 * HOUR_MS).unwrap();
    assert_eq!(
        core.basal_rate_nl_per_h(),
        0,
        "resume starts nothing by itself"
    );
    core.set_basal(DOSING, 10_000, 2 * HOUR_MS).unwrap();
    advance(&mut core, 3 * HOUR_MS, true);
    assert!(core.platform().steps > steps);
}

#[test]
fn sr_env_009_every_refusal_is_reported_with_its_reason() {
    let mut core = running(0);
    drain(&mut core, 0);
    let result = core.set_basal(DOSING, 60_000, 0);
    assert_eq!(result, Err(ErrorCode::RateAboveEnvelope));
    let result = core.start_bolus(DOSING, DeliveryKind::Bridge, 200_000, 60_000, 0);
    assert_eq!(result, Err(ErrorCode::BolusAboveEnvelope));
    let events = drain(&mut core, 0);
    let reasons: Vec<_> = events
        .iter()
        .filter_map(|(_, m)| match m {
            Message::DeliveryDenied(d) => {
                Some((d.delivery_kind, d.reason, d.requested_rate_nl_per_h))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (DeliveryKind::Basal, ErrorCode::RateAboveEnvelope, 60_000),
            (
                DeliveryKind::Bridge,
                ErrorCode::BolusAboveEnvelope,
                12_000_000
            ),
        ]
    );
}

#[test]
fn repeated_or_instantly_replaced_basal_requests_do_not_fill_the_ledger() {
    // Found by the pumpctl simulator: an app re-setting its basal in a loop
    // made a run per request until every request was refused as Busy.
    let mut core = running(0);
    for i in 0..500u32 {
        core.set_basal(DOSING, 20_000, 0).unwrap();
        core.set_basal(DOSING, 20_000 + i % 3, 0).unwrap();
    }
    assert!(
        core.ledger().runs().len() <= 2,
        "{}",
        core.ledger().runs().len()
    );
    advance(&mut core, HOUR_MS, true);
    assert_eq!(core.set_basal(DOSING, 30_000, HOUR_MS), Ok(()));
}

#[test]
fn sr_env_011_basal_plus_bolus_stays_within_the_pumps_maximum_rate() {
    // The board's motor reaches 10 mL/h: 100 µL over 36 s is exactly that.
    let mut core = running(0);
    core.set_basal(DOSING, 0, 0).unwrap();
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::Priming, 100_000, 35_999, 0),
        Err(ErrorCode::OutsideHardwareLimits)
    );
    let mut with_basal = running(0);
    with_basal.set_basal(DOSING, 1_000, 0).unwrap();
    // The same bolus on top of a basal would ask the motor for more.
    assert_eq!(
        with_basal.start_bolus(DOSING, DeliveryKind::Priming, 100_000, 36_000, 0),
        Err(ErrorCode::OutsideHardwareLimits)
    );
    assert_eq!(with_basal.bolus_remaining_nl(), 0);
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::Priming, 100_000, 36_000, 0),
        Ok(())
    );
}

#[test]
fn sr_env_012_no_bolus_lasts_longer_than_the_24_h_window() {
    let max = infusion_core::MAX_BOLUS_DURATION_MS;
    assert_eq!(max, 24 * 3_600_000);
    for kind in [
        DeliveryKind::ClinicianBolus,
        DeliveryKind::PatientBolus,
        DeliveryKind::Priming,
        DeliveryKind::Bridge,
    ] {
        let mut core = running(0);
        let before = core.safety_state();
        // 49 days, what any u32 of milliseconds used to allow.
        for duration_ms in [max + 1, u32::MAX] {
            assert_eq!(
                core.start_bolus(DOSING, kind, 10_000, duration_ms, 0),
                Err(ErrorCode::BolusTooLong),
                "{kind:?}"
            );
        }
        assert_eq!(core.safety_state(), before);
        assert_eq!(core.bolus_remaining_nl(), 0);
    }
    let mut core = running(0);
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::Priming, 10_000, max, 0),
        Ok(())
    );
}

#[test]
fn sr_env_004_the_daily_count_is_a_rolling_window_on_any_day() {
    // The same count three days in, where the window's start is a real
    // time and not the pump's first day.
    let t0 = 3 * DAY_MS;
    let mut core = running(0);
    advance(&mut core, t0, true);
    let bolus = |core: &mut Core, t| {
        core.start_bolus(DOSING, DeliveryKind::PatientBolus, 10_000, 60_000, t)
    };
    for i in 0..4 {
        let t = t0 + i * HOUR_MS;
        advance(&mut core, t, true);
        assert_eq!(bolus(&mut core, t), Ok(()), "bolus {i}");
    }
    let t = t0 + 5 * HOUR_MS;
    advance(&mut core, t, true);
    assert_eq!(bolus(&mut core, t), Err(ErrorCode::BolusCountReached));
    // One millisecond before the first leaves the window, still four.
    advance(&mut core, t0 + DAY_MS - 1, true);
    assert_eq!(
        bolus(&mut core, t0 + DAY_MS - 1),
        Err(ErrorCode::BolusCountReached)
    );
    // The window is (now - 24 h, now]: at exactly 24 h the first is out.
    advance(&mut core, t0 + DAY_MS, true);
    assert_eq!(bolus(&mut core, t0 + DAY_MS), Ok(()));
}

#[test]
fn sr_env_001_and_002_basal_limits_hold_at_their_exact_boundaries() {
    // Verifies: SR-ENV-002
    // Verifies: SR-ENV-006
    // Basal plus a running bolus exactly at the motor's 10 mL/h: allowed;
    // one nL/h more: not (SR-ENV-011 from the basal's side).
    let mut core = running(0);
    core.start_bolus(DOSING, DeliveryKind::Priming, 99_900, 36_000, 0)
        .unwrap();
    assert_eq!(
        core.set_basal(DOSING, 10_001, 0),
        Err(ErrorCode::OutsideHardwareLimits)
    );
    assert_eq!(core.set_basal(DOSING, 10_000, 0), Ok(()));
    // A basal whose 24 h is exactly the daily maximum is allowed (the test
    // envelope's 1.5 mL is 62.5 µL/h, above its 50 µL/h basal maximum, so
    // a board-size envelope shows it).
    let mut rx = prescription(2);
    rx.envelope.max_volume_per_24h_nl = 1_200_000;
    rx.envelope.silence_policy = pump_protocol::prescription::SilencePolicy::StopDelivery;
    let mut core = running(0);
    core.install_prescription(TELEMETRY, &sign_with(&rx, &clinic_key()), 0)
        .unwrap();
    assert_eq!(
        core.set_basal(DOSING, 50_001, 0),
        Err(ErrorCode::RateAboveEnvelope)
    );
    assert_eq!(core.set_basal(DOSING, 50_000, 0), Ok(()));
    rx.serial = 3;
    rx.envelope.max_volume_per_24h_nl = 1_199_999;
    core.install_prescription(TELEMETRY, &sign_with(&rx, &clinic_key()), 0)
        .unwrap();
    assert_eq!(
        core.set_basal(DOSING, 50_000, 0),
        Err(ErrorCode::DailyLimitReached)
    );
    // A bolus that brings the 24 h total exactly to the daily maximum is
    // allowed; one step more is not (SR-ENV-006).
    let mut rx = prescription(4);
    rx.envelope.max_volume_per_24h_nl = 100_000;
    rx.envelope.max_basal_rate_nl_per_h = 4_000;
    rx.envelope.silence_policy = pump_protocol::prescription::SilencePolicy::StopDelivery;
    let mut core = running(0);
    core.install_prescription(TELEMETRY, &sign_with(&rx, &clinic_key()), 0)
        .unwrap();
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::Priming, 100_250, 3_600_000, 0),
        Err(ErrorCode::BolusAboveEnvelope)
    );
    rx.serial = 5;
    rx.envelope.max_bolus_nl = 100_250;
    rx.envelope.max_volume_per_24h_nl = 100_000;
    core.install_prescription(TELEMETRY, &sign_with(&rx, &clinic_key()), 0)
        .unwrap();
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::Priming, 100_250, 3_600_000, 0),
        Err(ErrorCode::DailyLimitReached)
    );
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::Priming, 100_000, 3_600_000, 0),
        Ok(())
    );
    // A reservoir of exactly one step still starts a basal.
    let mut core = fresh(0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    core.refill(TELEMETRY, 0, NL_PER_STEP, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    assert_eq!(core.set_basal(DOSING, 10_000, 0), Ok(()));
}

#[test]
fn sr_env_009_a_full_ledger_refuses_a_basal_change_and_keeps_the_running_one() {
    let mut core = running(0);
    let mut t = 0;
    let mut accepted = 0;
    let refused = loop {
        let rate = if accepted % 2 == 0 { 40_000 } else { 50_000 };
        match core.set_basal(DOSING, rate, t) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        // Each run makes a step, so it stays in the 24 h window.
        t += MINUTE_MS;
        advance(&mut core, t, true);
        assert!(accepted <= 100, "the ledger never filled");
    };
    assert_eq!(refused, ErrorCode::Busy);
    assert_eq!(accepted, infusion_core::ledger::MAX_RUNS);
    // The refused change left the running basal running.
    let steps = core.platform().steps;
    advance(&mut core, t + 10 * MINUTE_MS, true);
    assert!(core.platform().steps > steps);
}

#[test]
fn sr_env_013_a_suspension_left_on_for_4_hours_sounds_a_reminder() {
    let reminder = infusion_core::SUSPEND_REMINDER_MS;
    assert_eq!(reminder, 4 * HOUR_MS);
    let mut core = running(0);
    core.set_basal(DOSING, 10_000, 0).unwrap();
    core.suspend(TELEMETRY, HOUR_MS).unwrap();
    // The core wakes for it, and not before.
    assert!(core.next_wakeup().is_some_and(|t| t <= HOUR_MS + reminder));
    advance(&mut core, HOUR_MS + reminder - 1, true);
    assert!(!core.alarms().is_active(AlarmCode::SuspendedTooLong));
    advance(&mut core, HOUR_MS + reminder, true);
    assert!(core.alarms().is_active(AlarmCode::SuspendedTooLong));
    assert_eq!(
        infusion_core::alarms::priority_of(AlarmCode::SuspendedTooLong),
        AlarmPriority::Medium
    );
    assert!(core.platform().signal.unwrap().audible);
    // Resuming ends it.
    let t = HOUR_MS + reminder + MINUTE_MS;
    core.resume(TELEMETRY, t).unwrap();
    assert!(!core.alarms().is_active(AlarmCode::SuspendedTooLong));
    // A reset while suspended counts again from the restore: at most 4 h.
    core.suspend(TELEMETRY, t).unwrap();
    let mut core = reset(core, t + HOUR_MS);
    advance(&mut core, t + HOUR_MS + reminder - 1, true);
    assert!(!core.alarms().is_active(AlarmCode::SuspendedTooLong));
    advance(&mut core, t + HOUR_MS + reminder, true);
    assert!(core.alarms().is_active(AlarmCode::SuspendedTooLong));
}

#[test]
fn sr_env_009_asking_again_for_the_running_basal_changes_nothing() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, 30 * MINUTE_MS, true);
    drain(&mut core, 30 * MINUTE_MS);
    let steps = core.platform().steps;
    // The dosing app re-asserts its rate: no run ends, no record, the
    // curve goes on (the next step comes when it was due anyway).
    core.set_basal(DOSING, 40_000, 30 * MINUTE_MS).unwrap();
    let records: Vec<Message> = drain(&mut core, 30 * MINUTE_MS)
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| matches!(m, Message::DeliveryRecord(_)))
        .collect();
    assert!(records.is_empty(), "{records:?}");
    advance(&mut core, 60 * MINUTE_MS, true);
    // 40 µL/h is 160 steps an hour: 80 more in the next half hour.
    assert_eq!(core.platform().steps - steps, 80);
}

#[test]
fn sr_env_013_the_core_asks_to_wake_for_the_reminder_itself() {
    // The dosing app stops checking in, so after its watchdog fires
    // nothing else wakes the core: the reminder must ask for its own time.
    let reminder = infusion_core::SUSPEND_REMINDER_MS;
    let since = HOUR_MS + 7;
    let mut core = running(0);
    core.suspend(TELEMETRY, since).unwrap();
    let mut asked = Vec::new();
    let mut t = since;
    while t < since + reminder + HOUR_MS {
        let Some(next) = core.next_wakeup() else {
            break;
        };
        t = next;
        asked.push(t);
        core.on_timer(t);
    }
    assert!(asked.contains(&(since + reminder)), "{asked:?}");
    assert!(core.alarms().is_active(AlarmCode::SuspendedTooLong));
}

/// The patient's programmer reads the lockout and the boluses left through
/// command 18, open to every app: the numbers the envelope enforces.
#[test]
fn sr_env_004_the_command_table_reports_the_lockout_and_the_boluses_left() {
    use infusion_core::command::PATIENT_BOLUS_STATE;
    let mut core = running(0);
    let read = |core: &mut Core, caller, now| {
        core.command(
            caller,
            u32::from(PATIENT_BOLUS_STATE),
            0,
            0,
            &[],
            &mut [],
            now,
        )
    };
    assert_eq!(
        read(&mut core, TELEMETRY, 0),
        infusion_core::CommandResult::SuccessU32U32(0, 4)
    );
    core.start_bolus(DOSING, DeliveryKind::PatientBolus, 10_000, 60_000, 0)
        .unwrap();
    advance(&mut core, 10 * MINUTE_MS, true);
    let expected = infusion_core::CommandResult::SuccessU32U32((50 * MINUTE_MS) as u32, 3);
    assert_eq!(read(&mut core, DOSING, 10 * MINUTE_MS), expected);
    assert_eq!(read(&mut core, ROGUE, 10 * MINUTE_MS), expected);
}

/// Suspending a pump that is already suspended does not restart the
/// reminder's clock: 4 h after the first suspend, whatever came between.
#[test]
fn sr_env_013_a_second_suspend_does_not_postpone_the_reminder() {
    let reminder = infusion_core::SUSPEND_REMINDER_MS;
    let mut core = running(0);
    core.suspend(TELEMETRY, HOUR_MS).unwrap();
    advance(&mut core, 3 * HOUR_MS, true);
    core.suspend(TELEMETRY, 3 * HOUR_MS).unwrap();
    advance(&mut core, HOUR_MS + reminder, true);
    assert!(core.alarms().is_active(AlarmCode::SuspendedTooLong));
}

/// With exactly one step of the daily maximum left, a basal still starts
/// (that step is allowed); once it is made, none does.
#[test]
fn sr_env_005_a_basal_starts_while_one_step_of_the_daily_maximum_is_left() {
    // Verifies: SR-ENV-005
    let mut rx = prescription(2);
    rx.envelope.max_volume_per_24h_nl = 100_000;
    rx.envelope.max_basal_rate_nl_per_h = 4_000;
    rx.envelope.silence_policy = pump_protocol::prescription::SilencePolicy::StopDelivery;
    let mut core = running(0);
    core.install_prescription(TELEMETRY, &sign_with(&rx, &clinic_key()), 0)
        .unwrap();
    core.start_bolus(DOSING, DeliveryKind::Priming, 99_750, HOUR_MS as u32, 0)
        .unwrap();
    advance(&mut core, 2 * HOUR_MS, true);
    assert_eq!(core.status(2 * HOUR_MS).delivered_24h_nl, 99_750);
    assert_eq!(core.set_basal(DOSING, 4_000, 2 * HOUR_MS), Ok(()));
    advance(&mut core, 3 * HOUR_MS, true);
    assert_eq!(core.status(3 * HOUR_MS).delivered_24h_nl, 100_000);
    assert_eq!(
        core.set_basal(DOSING, 3_000, 3 * HOUR_MS),
        Err(ErrorCode::DailyLimitReached)
    );
}

/// What is left of a running bolus, in nanolitres, as the programmer shows
/// it: the whole volume before its first step, less a step for each made.
#[test]
fn sr_env_003_the_running_bolus_reports_what_is_left_of_it() {
    let mut core = running(0);
    core.start_bolus(DOSING, DeliveryKind::Priming, 20_000, HOUR_MS as u32, 0)
        .unwrap();
    assert_eq!(core.bolus_remaining_nl(), 20_000);
    advance(&mut core, 30 * MINUTE_MS, true);
    let made = core.platform().steps as u32;
    assert!(made > 0 && made < 80, "{made}");
    assert_eq!(core.bolus_remaining_nl(), 20_000 - made * NL_PER_STEP);
}
