//! Step scheduling, motor supervision and reservoir accounting.
mod support;

use infusion_core::ledger::Channel;
use pump_protocol::{AlarmCode, AlarmPriority, DeliveryKind, ErrorCode, Message, PumpState};
use support::*;

/// The ideal volume of a basal at `rate` for `elapsed_ms`, in nL, as a
/// rational compared without division: returns `ideal * 3_600_000`.
fn ideal_scaled(rate_nl_per_h: u64, elapsed_ms: u64) -> u128 {
    u128::from(rate_nl_per_h) * u128::from(elapsed_ms)
}

#[test]
fn sr_mot_001_steps_track_the_ideal_curve_within_one_step() {
    let mut core = running(0);
    // 7 nL/h-odd rate so step periods are not whole milliseconds.
    let rate = 33_333u64;
    core.set_basal(DOSING, rate as u32, 0).unwrap();
    let mut t = 0;
    for probe in [
        1,
        999,
        22_500,
        27_001,
        HOUR_MS,
        7 * HOUR_MS + 13,
        3 * DAY_MS,
    ] {
        t = probe.max(t);
        advance(&mut core, t, true);
        let delivered = u128::from(core.platform().steps) * u128::from(NL_PER_STEP) * 3_600_000;
        let ideal = ideal_scaled(rate, t);
        assert!(delivered <= ideal, "ahead of the curve at {t}");
        assert!(
            ideal - delivered < u128::from(NL_PER_STEP) * 3_600_000,
            "more than a step behind at {t}"
        );
    }
}

#[test]
fn sr_mot_001_rate_changes_carry_partial_steps_without_drift() {
    let mut core = running(0);
    // 24 flex-like rate changes a day for 20 days; each change lands mid-step.
    let rates = [10_000u64, 17_777, 23_456, 5_001];
    let mut ideal: u128 = 0;
    let mut t = 0u64;
    for i in 0..(24 * 20) {
        let rate = rates[i % rates.len()];
        core.set_basal(DOSING, rate as u32, t).unwrap();
        let next = t + HOUR_MS - 7_331;
        advance(&mut core, next, true);
        ideal += ideal_scaled(rate, next - t);
        t = next;
    }
    let delivered = u128::from(core.platform().steps) * u128::from(NL_PER_STEP) * 3_600_000;
    assert!(delivered <= ideal);
    assert!(ideal - delivered < u128::from(NL_PER_STEP) * 3_600_000);
}

#[test]
fn sr_mot_002_tickless_wakeups_track_steps_not_seconds() {
    let mut core = running(0);
    // 0.5 mL/day.
    core.set_basal(DOSING, 20_833, 0).unwrap();
    let wakeups = advance(&mut core, DAY_MS, true);
    let steps = core.platform().steps;
    assert_eq!(
        steps,
        500_000 / 250 - 1,
        "20 833 nL/h is just under 0.5 mL/day"
    );
    // Wake-ups are the steps plus the hourly checkpoints and watchdog deadline.
    assert!(
        wakeups <= steps + 24 + 2,
        "{wakeups} wake-ups for {steps} steps"
    );
    assert!(wakeups < 86_400 / 40);
}

#[test]
fn sr_mot_003_stall_input_stops_delivery_with_a_high_alarm() {
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
    core.on_fault_input(AlarmCode::Occlusion, true, 10 * MINUTE_MS);
    let steps = core.platform().steps;
    assert!(!core.platform().motor_enabled);
    assert_eq!(core.alarm_signal().priority, Some(AlarmPriority::High));
    assert_eq!(
        core.set_basal(DOSING, 10_000, 10 * MINUTE_MS),
        Err(ErrorCode::FaultActive)
    );
    advance(&mut core, 2 * HOUR_MS, true);
    assert_eq!(core.platform().steps, steps);
    // Clearing needs the input released first.
    assert_eq!(
        core.clear_fault(TELEMETRY, AlarmCode::Occlusion, 2 * HOUR_MS),
        Err(ErrorCode::InvalidArgument)
    );
    core.on_fault_input(AlarmCode::Occlusion, false, 2 * HOUR_MS);
    assert_eq!(
        core.set_basal(DOSING, 10_000, 2 * HOUR_MS),
        Err(ErrorCode::FaultActive)
    );
    core.clear_fault(TELEMETRY, AlarmCode::Occlusion, 2 * HOUR_MS)
        .unwrap();
    core.set_basal(DOSING, 10_000, 2 * HOUR_MS).unwrap();
    let events = drain(&mut core, 2 * HOUR_MS);
    assert!(events.iter().any(|(_, m)| matches!(m,
        Message::DeliveryRecord(r) if r.delivery_kind == DeliveryKind::ClinicianBolus
            && r.outcome == pump_protocol::DeliveryOutcome::Aborted)));
}

#[test]
fn sr_mot_004_missing_encoder_pulses_declare_a_stall() {
    let mut board = board();
    board.max_steps_without_encoder = STALL_STEPS;
    let mut core = infusion_core::InfusionCore::restore(board, Rig::default(), None, 0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    core.set_basal(DOSING, 40_000, 0).unwrap();
    // Pulses keep it running.
    for _ in 0..20 {
        let t = core.next_wakeup().unwrap();
        core.on_timer(t);
        core.on_encoder_pulse(t);
    }
    assert!(!core.alarms().is_active(AlarmCode::MotorStall));
    let before = core.platform().steps;
    advance(&mut core, DAY_MS, true);
    assert_eq!(core.platform().steps - before, u64::from(STALL_STEPS) + 1);
    assert!(core.alarms().is_active(AlarmCode::MotorStall));
    assert!(!core.platform().motor_enabled);
}

#[test]
fn sr_mot_006_encoder_pulses_nobody_commanded_stop_delivery() {
    let mut board = board();
    board.max_steps_without_encoder = STALL_STEPS;
    let mut core = infusion_core::InfusionCore::restore(board, Rig::default(), None, 0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    core.set_basal(DOSING, 40_000, 0).unwrap();
    // One pulse a step, and one of slack, is the mechanism doing as told.
    let mut t = 0;
    for _ in 0..5 {
        t = core.next_wakeup().unwrap();
        core.on_timer(t);
        core.on_encoder_pulse(t);
    }
    core.on_encoder_pulse(t);
    assert!(!core.alarms().is_active(AlarmCode::UncommandedMotion));
    // A third pulse before the next step: it moved on its own.
    core.on_encoder_pulse(t + 1);
    assert!(core.alarms().is_active(AlarmCode::UncommandedMotion));
    assert_eq!(
        infusion_core::alarms::priority_of(AlarmCode::UncommandedMotion),
        AlarmPriority::High
    );
    assert_eq!(core.pump_state(), PumpState::FaultStopped);
    assert!(!core.platform().motor_enabled);
    let steps = core.platform().steps;
    advance(&mut core, t + HOUR_MS, true);
    assert_eq!(core.platform().steps, steps);
    assert_eq!(
        core.set_basal(DOSING, 10_000, t + HOUR_MS),
        Err(ErrorCode::FaultActive)
    );
    // The clinic clears it after examining the mechanism; delivery resumes.
    core.clear_fault(TELEMETRY, AlarmCode::UncommandedMotion, t + HOUR_MS)
        .unwrap();
    assert_eq!(core.set_basal(DOSING, 10_000, t + HOUR_MS), Ok(()));
    // Pulses while idle on a board without an encoder mean nothing.
    let mut bare = running(0);
    for i in 0..10 {
        bare.on_encoder_pulse(i);
    }
    assert!(!bare.alarms().is_active(AlarmCode::UncommandedMotion));
}

#[test]
fn sr_mot_005_motor_is_disabled_when_idle() {
    let mut core = running(0);
    assert!(!core.platform().motor_enabled);
    core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 10_000, 60_000, 0)
        .unwrap();
    assert!(core.platform().motor_enabled);
    advance(&mut core, 2 * MINUTE_MS, true);
    assert_eq!(core.platform().steps, 40);
    assert!(
        !core.platform().motor_enabled,
        "bolus done, nothing running"
    );
    assert!(!core.platform().stepped_while_disabled);
}

#[test]
fn bolus_volume_is_exact_and_remainders_carry_to_the_next_bolus() {
    let mut core = running(0);
    // 1 100 nL is 4.4 steps: 4 now, the 0.4 carried.
    for (i, expected_total) in [(0u64, 4u64), (1, 8), (2, 13)] {
        let t = i * HOUR_MS;
        advance(&mut core, t, true);
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 1_100, 60_000, t)
            .unwrap();
        advance(&mut core, t + 2 * MINUTE_MS, true);
        assert_eq!(core.platform().steps, expected_total, "after bolus {i}");
    }
    assert!(core.ledger().active(Channel::Bolus).is_none());
}

#[test]
fn sr_res_001_deliveries_need_drug_in_the_reservoir() {
    let mut core = fresh(0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    // A new pump is empty: that is the empty-reservoir fault, not just a refusal.
    assert!(core.alarms().is_active(AlarmCode::ReservoirEmpty));
    assert_eq!(
        core.set_basal(DOSING, 10_000, 0),
        Err(ErrorCode::FaultActive)
    );
    core.refill(TELEMETRY, 0, 50_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 60_000, 60_000, 0),
        Err(ErrorCode::ReservoirInsufficient)
    );
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 50_000, 60_000, 0),
        Ok(())
    );
}

#[test]
fn sr_res_002_low_then_empty_reservoir_alarms() {
    let mut core = fresh(0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    core.refill(TELEMETRY, 0, 2_010_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::ReservoirLow));
    core.set_basal(DOSING, 50_000, 0).unwrap();
    advance(&mut core, HOUR_MS, true);
    assert!(core.alarms().is_active(AlarmCode::ReservoirLow));
    assert_eq!(core.alarm_signal().priority, Some(AlarmPriority::Medium));
    advance(&mut core, 60 * DAY_MS, true);
    assert!(core.alarms().is_active(AlarmCode::ReservoirEmpty));
    assert_eq!(core.alarm_signal().priority, Some(AlarmPriority::High));
    assert_eq!(core.reservoir_nl(), 0);
    assert_eq!(core.platform().steps, 2_010_000 / 250);
    assert!(!core.platform().motor_enabled);
    // A refill clears both, and delivery may be requested again.
    core.refill(
        TELEMETRY,
        0,
        5_000_000,
        CONCENTRATION_UG_PER_ML,
        60 * DAY_MS,
    )
    .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::ReservoirEmpty));
    assert!(!core.alarms().is_active(AlarmCode::ReservoirLow));
    assert_eq!(core.set_basal(DOSING, 10_000, 60 * DAY_MS), Ok(()));
}

#[test]
fn sr_res_003_refill_sets_volume_within_capacity() {
    let mut core = running(0);
    core.refill(TELEMETRY, 4_000_000, 1_000_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    assert_eq!(core.reservoir_nl(), 7_000_000);
    let before = core.safety_state();
    assert_eq!(
        core.refill(TELEMETRY, 0, 13_000_001, CONCENTRATION_UG_PER_ML, 0),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        core.refill(TELEMETRY, 0, u32::MAX, CONCENTRATION_UG_PER_ML, 0),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(core.safety_state(), before);
    // Withdrawing exactly what the record holds empties it first.
    core.refill(TELEMETRY, 7_000_000, 3_000_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    assert_eq!(core.reservoir_nl(), 3_000_000);
}

#[test]
fn sr_res_006_withdrawing_more_than_recorded_is_a_discrepancy_not_a_clamp() {
    let mut core = running(0);
    drain(&mut core, 0);
    // The case: 15 mL withdrawn from a 10 mL record.
    assert_eq!(core.reservoir_nl(), 10_000_000);
    assert_eq!(
        core.refill(
            TELEMETRY,
            15_000_000,
            12_000_000,
            CONCENTRATION_UG_PER_ML,
            1_000
        ),
        Err(ErrorCode::RefillDiscrepancy)
    );
    // The record is not clamped or changed: the clinician must reconcile.
    assert_eq!(core.reservoir_nl(), 10_000_000);
    assert!(core.alarms().is_active(AlarmCode::RefillDiscrepancy));
    assert_eq!(
        infusion_core::alarms::priority_of(AlarmCode::RefillDiscrepancy),
        AlarmPriority::High
    );
    let events: Vec<Message> = drain(&mut core, 1_000)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert!(events.iter().any(|m| matches!(
        m,
        Message::RefillDiscrepancy(d)
            if d.recorded_nl == 10_000_000 && d.withdrawn_volume_nl == 15_000_000
    )));
    assert!(events.iter().any(|m| matches!(
        m,
        Message::AlarmRaised(a) if a.code == AlarmCode::RefillDiscrepancy
    )));
    // Delivery goes on: stopping an intrathecal drug is its own hazard.
    assert_eq!(core.set_basal(DOSING, 20_000, 2_000), Ok(()));
    // A refill that reconciles clears the alarm.
    core.refill(
        TELEMETRY,
        10_000_000,
        12_000_000,
        CONCENTRATION_UG_PER_ML,
        3_000,
    )
    .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::RefillDiscrepancy));
}

#[test]
fn sr_res_004_refill_date_assumes_every_allotted_bolus() {
    let mut core = running(0);
    core.set_basal(DOSING, 20_000, 0).unwrap();
    // 480 000 nL/day basal + 4 × 100 000 nL boluses = 880 000 nL/day.
    let by = core.refill_by_ms(0).unwrap();
    assert_eq!(by, 10_000_000u64 * DAY_MS / 880_000);
    // The projection is redone as the reservoir drains; the low-priority
    // warning comes when fewer than 7 projected days are left: at 7.5 days
    // 6.4 mL is left (7.3 projected days), at 8.5 days 5.92 mL (6.7 days).
    advance(&mut core, 7 * DAY_MS + 12 * HOUR_MS, true);
    assert!(!core.alarms().is_active(AlarmCode::RefillDue));
    advance(&mut core, 8 * DAY_MS + 12 * HOUR_MS, true);
    assert!(core.alarms().is_active(AlarmCode::RefillDue));
    assert_eq!(core.alarm_signal().priority, Some(AlarmPriority::Low));
    // It stays raised while steps go on (found on the QEMU board: it used to
    // clear and re-raise on every step), and a refill ends it.
    drain(&mut core, 8 * DAY_MS + 12 * HOUR_MS);
    advance(&mut core, 9 * DAY_MS, true);
    let events = drain(&mut core, 9 * DAY_MS);
    assert!(
        !events
            .iter()
            .any(|(_, m)| matches!(m, Message::AlarmRaised(_) | Message::AlarmCleared(_))),
        "{events:?}"
    );
    core.refill(TELEMETRY, 0, 5_000_000, CONCENTRATION_UG_PER_ML, 9 * DAY_MS)
        .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::RefillDue));
}

#[test]
fn sr_res_005_refill_concentration_must_match() {
    let mut core = running(0);
    let before = core.safety_state();
    // 2 000 µg/mL instead of 500: four times every dose.
    assert_eq!(
        core.refill(TELEMETRY, 0, 1_000_000, 2_000, 0),
        Err(ErrorCode::ConcentrationMismatch)
    );
    assert_eq!(core.safety_state(), before);
}

#[test]
fn sr_mot_001_basal_checkpoints_say_what_each_interval_delivered() {
    // Verifies: SR-EVT-004
    let interval = board().basal_record_interval_ms;
    let mut core = running(0);
    core.set_basal(DOSING, 36_000, 0).unwrap();
    drain(&mut core, 0);
    advance(&mut core, 3 * interval + 1, true);
    let checkpoints: Vec<(u32, u32)> = drain(&mut core, 3 * interval + 1)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::DeliveryRecord(r)
                if r.outcome == pump_protocol::DeliveryOutcome::Checkpoint =>
            {
                Some((r.duration_ms, r.volume_nl))
            }
            _ => None,
        })
        .collect();
    assert!(checkpoints.len() >= 2, "{checkpoints:?}");
    let total: u64 = checkpoints.iter().map(|c| u64::from(c.1)).sum();
    let span: u64 = checkpoints.iter().map(|c| u64::from(c.0)).sum();
    for (duration_ms, volume_nl) in &checkpoints {
        // Each covers about one interval, at 36 µL/h (10 nL/s).
        assert!(
            u64::from(*duration_ms).abs_diff(interval) <= 100,
            "{duration_ms} ms for an interval of {interval}"
        );
        let ideal = u64::from(*duration_ms) / 100;
        assert!(
            u64::from(*volume_nl).abs_diff(ideal) <= 250,
            "{volume_nl} nL in {duration_ms} ms"
        );
    }
    assert!(span <= 3 * interval + 1);
    assert!(total <= core.platform().steps * 250);
}

#[test]
fn sr_res_002_the_low_reservoir_alarm_starts_below_its_threshold_exactly() {
    // The test envelope's threshold is 2 mL.
    let threshold = envelope().reservoir_low_threshold_nl;
    let mut core = fresh(0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    core.refill(TELEMETRY, 0, threshold, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::ReservoirLow));
    assert!(!core.alarms().is_active(AlarmCode::ReservoirEmpty));
    core.refill(
        TELEMETRY,
        threshold,
        threshold - 1,
        CONCENTRATION_UG_PER_ML,
        0,
    )
    .unwrap();
    assert!(core.alarms().is_active(AlarmCode::ReservoirLow));
    // One step left is not empty; less than one is.
    core.refill(
        TELEMETRY,
        threshold - 1,
        NL_PER_STEP,
        CONCENTRATION_UG_PER_ML,
        0,
    )
    .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::ReservoirEmpty));
    core.refill(
        TELEMETRY,
        NL_PER_STEP,
        NL_PER_STEP - 1,
        CONCENTRATION_UG_PER_ML,
        0,
    )
    .unwrap();
    assert!(core.alarms().is_active(AlarmCode::ReservoirEmpty));
}
