use pump_protocol::{
    DeliveryKind, DeliveryOutcome, ErrorCode, Message, PumpState, Refill, Resume, Suspend,
};
use pump_test_support::{
    RxBuilder, CHECKIN_TIMEOUT_MS, DAY_MS, HOUR_MS, MINUTE_MS, UTC_2025_01_01_MS,
};

use super::fake::{at, core_with, Call, FakeCapsule, Sim};
use crate::{
    CatheterContents, Decider, ModelError, Phase, Request, ScheduleError, WakeReason,
    RETRY_INTERVAL_MS,
};

/// 00:00 200 µg/day, 06:00 300 µg/day, 22:00 150 µg/day, at 500 µg/mL.
fn flex() -> RxBuilder {
    RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)])
}
const NIGHT: u32 = 16_666;
const DAY: u32 = 25_000;
const EVENING: u32 = 12_500;

#[test]
fn sr_dos_002_first_wake_sets_the_step_in_force() {
    let sim = Sim::start(&flex(), 7 * HOUR_MS);
    assert_eq!(sim.core.phase(), Phase::Running);
    assert_eq!(sim.capsule.basal_sets(), [DAY]);
    assert_eq!(sim.capsule.count(Call::CheckIn), 1);
}

#[test]
fn sr_dos_003_edges_set_each_step_once_over_two_days() {
    let mut sim = Sim::start(&flex(), 0);
    sim.run_until(2 * DAY_MS);
    assert_eq!(
        sim.capsule.basal_sets(),
        [NIGHT, DAY, EVENING, NIGHT, DAY, EVENING, NIGHT]
    );
    // Each set happened at a wake-up for that edge, on the edge.
    let edges: std::vec::Vec<u64> = sim
        .wakes
        .iter()
        .filter(|(_, r)| *r == WakeReason::ScheduleEdge)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        edges,
        [
            6 * HOUR_MS,
            22 * HOUR_MS,
            DAY_MS,
            DAY_MS + 6 * HOUR_MS,
            DAY_MS + 22 * HOUR_MS,
            2 * DAY_MS
        ]
    );
}

#[test]
fn sr_dos_003_twenty_four_hourly_steps_each_set_once_a_day() {
    let steps: std::vec::Vec<(u16, u32)> = (0..24u16)
        .map(|h| (h * 60, 240 + u32::from(h) * 24))
        .collect();
    let mut sim = Sim::start(&RxBuilder::new(1).steps(&steps), 0);
    sim.run_until(DAY_MS - 1);
    let sets = sim.capsule.basal_sets();
    assert_eq!(sets.len(), 24);
    for (h, rate) in sets.iter().enumerate() {
        let ug_per_day = 240 + h as u32 * 24;
        assert_eq!(
            *rate,
            crate::units::basal_rate_nl_per_h(ug_per_day, 500).unwrap()
        );
    }
}

#[test]
fn sr_dos_003_forward_jump_over_two_edges_sets_the_landing_step_once() {
    let mut sim = Sim::start(&flex(), 5 * HOUR_MS);
    sim.run_until(5 * HOUR_MS + 10 * MINUTE_MS);
    sim.capsule.clear_calls();
    // 05:10 → 23:00: the 06:00 step is jumped over, not replayed.
    sim.set_clock(UTC_2025_01_01_MS + 23 * HOUR_MS);
    assert_eq!(sim.capsule.basal_sets(), [EVENING]);
    // The next edge is midnight, one wall-clock hour later.
    let jumped_at = sim.monotonic_ms;
    sim.run_until(jumped_at + 2 * HOUR_MS);
    assert!(sim
        .wakes
        .contains(&(jumped_at + HOUR_MS, WakeReason::ScheduleEdge)));
    assert_eq!(sim.capsule.basal_sets(), [EVENING, NIGHT]);
}

#[test]
fn sr_dos_003_backward_jump_applies_the_landing_step_once() {
    let mut sim = Sim::start(&flex(), 7 * HOUR_MS);
    sim.capsule.clear_calls();
    // 07:00 → 05:00: back into the night step, which is set once.
    sim.set_clock(UTC_2025_01_01_MS + 5 * HOUR_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT]);
    // The 06:00 edge comes again one hour later and is set once more: the
    // rate follows the clock, delivered volume stays the capsule's.
    sim.run_until(sim.monotonic_ms + 90 * MINUTE_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, DAY]);
    // A backward jump inside one step changes nothing.
    sim.set_clock(UTC_2025_01_01_MS + 6 * HOUR_MS + MINUTE_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, DAY]);
}

#[test]
fn sr_dos_003_backward_jump_across_midnight() {
    let mut sim = Sim::start(&flex(), DAY_MS + 30 * MINUTE_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT]);
    sim.set_clock(UTC_2025_01_01_MS + DAY_MS - 30 * MINUTE_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, EVENING]);
    sim.run_until(sim.monotonic_ms + HOUR_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, EVENING, NIGHT]);
}

#[test]
fn sr_dos_003_unannounced_jump_is_caught_within_half_the_checkin_timeout() {
    let mut sim = Sim::start(&flex(), 12 * HOUR_MS);
    sim.capsule.clear_calls();
    sim.jump_clock_silently(UTC_2025_01_01_MS + 23 * HOUR_MS);
    sim.run_until(sim.monotonic_ms + u64::from(CHECKIN_TIMEOUT_MS) / 2);
    assert_eq!(sim.capsule.basal_sets(), [EVENING]);
}

#[test]
fn sr_dos_005_refused_basal_is_recorded_and_held_until_a_natural_wakeup() {
    let mut capsule = FakeCapsule::new(Some(flex().signed()));
    capsule
        .basal_answers
        .push_back(Err(ErrorCode::DailyLimitReached));
    let mut core = core_with(CatheterContents::Unknown);
    let t0 = 7 * HOUR_MS;
    core.wake(&mut capsule, at(t0));
    let refusal = *core.last_refusal().unwrap();
    assert_eq!(refusal.reason, ErrorCode::DailyLimitReached);
    assert_eq!(refusal.decided_by, Decider::Capsule);
    assert_eq!(refusal.request, Request::Basal { rate_nl_per_h: DAY });
    // Watchdog wake-ups and upcalls before the retry time do not repeat it.
    for k in 1..=3 {
        core.wake(&mut capsule, at(t0 + k * MINUTE_MS));
        core.on_alarm_changed(&mut capsule, at(t0 + k * MINUTE_MS + 1));
    }
    assert_eq!(capsule.basal_sets(), [DAY]);
    let wake = core.next_wakeup();
    assert!(wake.at_monotonic_ms <= t0 + RETRY_INTERVAL_MS);
    core.wake(&mut capsule, at(t0 + RETRY_INTERVAL_MS));
    assert_eq!(capsule.basal_sets(), [DAY, DAY]);
    assert_eq!(core.basal_running_nl_per_h(), Some(DAY));
}

#[test]
fn sr_dos_005_a_schedule_edge_or_a_programmer_command_may_retry_early() {
    let mut capsule = FakeCapsule::new(Some(flex().signed()));
    capsule.basal_answers.push_back(Err(ErrorCode::Busy));
    capsule.basal_answers.push_back(Err(ErrorCode::Busy));
    let mut core = core_with(CatheterContents::Unknown);
    core.wake(&mut capsule, at(6 * HOUR_MS - 5 * MINUTE_MS));
    assert_eq!(capsule.basal_sets(), [NIGHT]);
    // The 06:00 edge asks for another rate: a new request, not a retry.
    core.wake(&mut capsule, at(6 * HOUR_MS));
    assert_eq!(capsule.basal_sets(), [NIGHT, DAY]);
    core.wake(&mut capsule, at(6 * HOUR_MS + MINUTE_MS));
    assert_eq!(capsule.basal_sets(), [NIGHT, DAY]);
    // A refill may have removed the cause.
    core.on_programmer_command(
        &Message::Refill(Refill {
            withdrawn_volume_nl: 0,
            added_volume_nl: 1_000_000,
            concentration_ug_per_ml: 500,
        }),
        &mut capsule,
        at(6 * HOUR_MS + 2 * MINUTE_MS),
    );
    assert_eq!(capsule.basal_sets(), [NIGHT, DAY, DAY]);
    assert_eq!(core.refusals().count(), 2);
}

#[test]
fn sr_dos_005_refusal_log_is_bounded() {
    let mut capsule = FakeCapsule::new(Some(flex().signed()));
    let mut core = core_with(CatheterContents::Unknown);
    for k in 0..50u64 {
        capsule
            .basal_answers
            .push_back(Err(ErrorCode::DailyLimitReached));
        core.wake(&mut capsule, at(k * RETRY_INTERVAL_MS));
    }
    assert_eq!(core.refusals().count(), crate::REFUSAL_LOG_LEN);
    // One attempt per retry interval, never more.
    assert_eq!(capsule.basal_sets().len(), 50);
}

#[test]
fn sr_dos_006_every_entry_point_checks_in_and_sleeps_at_most_half_the_timeout() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let half = u64::from(CHECKIN_TIMEOUT_MS) / 2;
    assert!(sim.core.next_wakeup().at_monotonic_ms <= half);
    sim.capsule.clear_calls();
    sim.monotonic_ms = 1_000;
    let now = sim.now();
    sim.core.wake(&mut sim.capsule, now);
    sim.core.on_alarm_changed(&mut sim.capsule, now);
    sim.core.on_delivery_done(
        DeliveryKind::Basal,
        DeliveryOutcome::Checkpoint,
        0,
        &mut sim.capsule,
        now,
    );
    sim.core.request_patient_bolus(&mut sim.capsule, now);
    let _ = sim
        .core
        .request_clinician_bolus(10, 60_000, &mut sim.capsule, now);
    sim.command(Message::Resume(Resume {}));
    assert_eq!(sim.capsule.count(Call::CheckIn), 6);
    // Over a day of wake-ups, no gap between check-ins exceeds half the timeout.
    sim.run_until(DAY_MS);
    let mut last = 1_000;
    for (t, _) in &sim.wakes {
        assert!(t - last <= half, "check-ins {last} and {t} too far apart");
        last = *t;
    }
    assert!(sim.wakes.len() as u64 >= DAY_MS / half);
}

#[test]
fn sr_dos_006_without_a_prescription_it_wakes_at_the_idle_interval() {
    let mut capsule = FakeCapsule::new(None);
    let mut core = core_with(CatheterContents::Unknown);
    let wake = core.wake(&mut capsule, at(0));
    assert_eq!(core.phase(), Phase::NoPrescription);
    assert_eq!(wake.reason, WakeReason::Idle);
    assert_eq!(wake.at_monotonic_ms, 60_000);
    assert!(capsule.basal_sets().is_empty());
    // A prescription appears: adopted at the next wake-up.
    capsule.prescription = Some(flex().signed());
    core.wake(&mut capsule, at(60_000));
    assert_eq!(core.phase(), Phase::Running);
    assert_eq!(capsule.basal_sets(), [NIGHT]);
}

#[test]
fn sr_dos_009_invalid_therapy_withholds_checkins() {
    let rx = RxBuilder::new(1).steps(&[(30, 300)]);
    let mut capsule = FakeCapsule::new(Some(rx.signed()));
    let mut core = core_with(CatheterContents::Unknown);
    core.wake(&mut capsule, at(0));
    core.wake(&mut capsule, at(60_000));
    assert_eq!(
        core.phase(),
        Phase::InvalidTherapy(ModelError::Schedule(ScheduleError::FirstStepNotAtMidnight))
    );
    assert_eq!(capsule.count(Call::CheckIn), 0);
    assert!(capsule.basal_sets().is_empty());
    assert!(capsule.boluses().is_empty());
    // A valid prescription ends it.
    capsule.prescription = Some(RxBuilder::new(2).signed());
    core.wake(&mut capsule, at(120_000));
    assert_eq!(core.phase(), Phase::Running);
    assert_eq!(capsule.count(Call::CheckIn), 1);
}

#[test]
fn sr_dos_009_the_app_follows_the_installed_prescription_through_removal_and_reinstall() {
    let valid = RxBuilder::new(1).signed();
    let invalid = RxBuilder::new(2).steps(&[(30, 300)]).signed();
    let mut capsule = FakeCapsule::new(Some(valid.clone()));
    let mut core = core_with(CatheterContents::Unknown);
    core.wake(&mut capsule, at(0));
    assert_eq!(core.phase(), Phase::Running);
    assert_eq!(core.therapy().map(|t| t.serial), Some(1));
    // Removed: nothing is left of it.
    capsule.prescription = None;
    core.wake(&mut capsule, at(60_000));
    assert_eq!(core.phase(), Phase::NoPrescription);
    assert!(core.therapy().is_none());
    // The same bytes again are adopted again.
    capsule.prescription = Some(valid.clone());
    core.wake(&mut capsule, at(120_000));
    assert_eq!(core.phase(), Phase::Running);
    assert_eq!(core.therapy().map(|t| t.serial), Some(1));
    // One the app cannot run replaces it whole, and keeps being refused.
    capsule.prescription = Some(invalid);
    for t in [180_000, 240_000] {
        core.wake(&mut capsule, at(t));
        assert_eq!(
            core.phase(),
            Phase::InvalidTherapy(ModelError::Schedule(ScheduleError::FirstStepNotAtMidnight))
        );
        assert!(core.therapy().is_none());
    }
    // A valid one ends it.
    capsule.prescription = Some(valid);
    core.wake(&mut capsule, at(300_000));
    assert_eq!(core.phase(), Phase::Running);
    assert_eq!(core.therapy().map(|t| t.serial), Some(1));
}

#[test]
fn sr_dos_005_nothing_is_commanded_while_suspended() {
    let mut sim = Sim::start(&flex(), 0);
    sim.capsule.pump_state = PumpState::Suspended;
    sim.capsule.basal_rate_nl_per_h = 0;
    sim.command(Message::Suspend(Suspend {}));
    assert_eq!(sim.core.phase(), Phase::Suspended);
    sim.run_until(DAY_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT]);
    sim.capsule.pump_state = PumpState::Running;
    sim.command(Message::Resume(Resume {}));
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, NIGHT]);
}

#[test]
fn sr_dos_005_without_status_support_own_replacements_are_not_mistaken_for_stops() {
    let mut capsule = FakeCapsule::new(Some(flex().signed()));
    capsule.status_supported = false;
    let mut core = core_with(CatheterContents::Unknown);
    core.wake(&mut capsule, at(5 * HOUR_MS));
    core.wake(&mut capsule, at(6 * HOUR_MS));
    assert_eq!(capsule.basal_sets(), [NIGHT, DAY]);
    // The capsule reports the end of the night run the app replaced.
    core.on_delivery_done(
        DeliveryKind::Basal,
        DeliveryOutcome::Stopped,
        1_000,
        &mut capsule,
        at(6 * HOUR_MS + 1),
    );
    assert_eq!(capsule.basal_sets(), [NIGHT, DAY]);
    // An abort is the capsule's doing: the rate is set again, once.
    core.on_delivery_done(
        DeliveryKind::Basal,
        DeliveryOutcome::Aborted,
        1_000,
        &mut capsule,
        at(6 * HOUR_MS + 2),
    );
    assert_eq!(capsule.basal_sets(), [NIGHT, DAY, DAY]);
}

#[test]
fn sr_dos_010_saved_state_round_trips_through_postcard() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    sim.core.request_patient_bolus(&mut sim.capsule, at(0));
    // The grant was saved in the capsule at once.
    assert!(!sim.core.record_unsaved());
    assert_eq!(&sim.capsule.saved_record().state, sim.core.saved_state());
    let mut buf = [0u8; 1024];
    let bytes = postcard::to_slice(sim.core.saved_state(), &mut buf).unwrap();
    let restored: crate::SavedState = postcard::from_bytes(bytes).unwrap();
    assert_eq!(&restored, sim.core.saved_state());
    // A restarted app still knows the therapy's lockout.
    let mut core = crate::DosingCore::new(super::fake::config(), restored);
    assert!(!core.own_patient_bolus_status(at(HOUR_MS)).prescribed);
    core.wake(&mut sim.capsule, at(HOUR_MS));
    let status = core.own_patient_bolus_status(at(HOUR_MS));
    assert_eq!(status.lockout_remaining_ms, HOUR_MS as u32);
    assert_eq!(status.boluses_left_24h, 3);
}
