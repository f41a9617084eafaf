use pump_protocol::{DeliveryKind, DeliveryOutcome, ErrorCode};
use pump_test_support::{RxBuilder, DAY_MS, HOUR_MS, MINUTE_MS};

use super::fake::{at, Sim};
use crate::{Decider, PatientBolusState, PatientBolusVerdict};

fn grant_ok(verdict: PatientBolusVerdict) -> u32 {
    match verdict {
        PatientBolusVerdict::Granted {
            volume_nl,
            duration_ms,
            boluses_left_24h,
        } => {
            // 25 µg at 500 µg/mL over one minute.
            assert_eq!(volume_nl, 50_000);
            assert_eq!(duration_ms, 60_000);
            boluses_left_24h
        }
        denied => panic!("expected a grant, got {denied:?}"),
    }
}

fn finish_bolus(sim: &mut Sim) {
    sim.delivery_done(
        DeliveryKind::PatientBolus,
        DeliveryOutcome::Completed,
        50_000,
    );
}

#[test]
fn sr_dos_004_lockout_and_daily_count_of_the_therapy() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let mut left = std::vec::Vec::new();
    // The therapy allows 4 a day, 2 h apart (the envelope: 6, 1 h apart).
    for k in 0..4u64 {
        sim.monotonic_ms = k * 2 * HOUR_MS;
        let now = sim.now();
        left.push(grant_ok(
            sim.core.request_patient_bolus(&mut sim.capsule, now),
        ));
        sim.monotonic_ms += MINUTE_MS;
        finish_bolus(&mut sim);
        // Inside the lockout: denied by the app, with the time left.
        sim.monotonic_ms = k * 2 * HOUR_MS + 90 * MINUTE_MS;
        let now = sim.now();
        assert_eq!(
            sim.core.request_patient_bolus(&mut sim.capsule, now),
            PatientBolusVerdict::Denied {
                reason: ErrorCode::LockoutActive,
                decided_by: Decider::Dosing,
                lockout_remaining_ms: 30 * 60_000,
                boluses_left_24h: 3 - k as u32,
            }
        );
    }
    assert_eq!(left, [3, 2, 1, 0]);
    sim.monotonic_ms = 12 * HOUR_MS;
    let now = sim.now();
    assert_eq!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::BolusCountReached,
            decided_by: Decider::Dosing,
            lockout_remaining_ms: 0,
            boluses_left_24h: 0,
        }
    );
    // Only the four grants reached the capsule.
    assert_eq!(sim.capsule.boluses().len(), 4);
    // 24 h after the first, one is available again (rolling window).
    sim.monotonic_ms = DAY_MS + 1;
    let now = sim.now();
    assert_eq!(
        grant_ok(sim.core.request_patient_bolus(&mut sim.capsule, now)),
        0
    );
}

#[test]
fn sr_dos_004_the_capsule_verdict_is_reported() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    sim.capsule
        .bolus_answers
        .push_back(Err(ErrorCode::LockoutActive));
    sim.capsule.envelope_ptm = PatientBolusState {
        lockout_remaining_ms: 1_234,
        boluses_left_24h: 5,
    };
    let now = sim.now();
    assert_eq!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::LockoutActive,
            decided_by: Decider::Capsule,
            lockout_remaining_ms: 1_234,
            boluses_left_24h: 4,
        }
    );
    sim.capsule
        .bolus_answers
        .push_back(Err(ErrorCode::ReservoirInsufficient));
    let verdict = sim.core.request_patient_bolus(&mut sim.capsule, now);
    assert!(matches!(
        verdict,
        PatientBolusVerdict::Denied {
            reason: ErrorCode::ReservoirInsufficient,
            decided_by: Decider::Capsule,
            lockout_remaining_ms: 0,
            ..
        }
    ));
    // A refusal is not a grant: the therapy's count is untouched.
    assert_eq!(sim.core.own_patient_bolus_status(now).boluses_left_24h, 4);
    assert_eq!(
        sim.core.last_refusal().unwrap().reason,
        ErrorCode::ReservoirInsufficient
    );
}

#[test]
fn sr_dos_004_status_shows_the_stricter_of_therapy_and_envelope() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let now = sim.now();
    grant_ok(sim.core.request_patient_bolus(&mut sim.capsule, now));
    sim.capsule.envelope_ptm = PatientBolusState {
        lockout_remaining_ms: 3 * HOUR_MS as u32,
        boluses_left_24h: 5,
    };
    let status = sim.core.patient_bolus_status(&mut sim.capsule, now);
    assert!(status.prescribed);
    assert_eq!(status.lockout_remaining_ms, 3 * HOUR_MS as u32);
    assert_eq!(status.boluses_left_24h, 3);
    sim.capsule.envelope_ptm = PatientBolusState {
        lockout_remaining_ms: 0,
        boluses_left_24h: 1,
    };
    let status = sim.core.patient_bolus_status(&mut sim.capsule, now);
    assert_eq!(status.lockout_remaining_ms, 2 * HOUR_MS as u32);
    assert_eq!(status.boluses_left_24h, 1);
}

#[test]
fn sr_dos_004_lockout_is_monotonic_and_ignores_the_wall_clock() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let now = sim.now();
    grant_ok(sim.core.request_patient_bolus(&mut sim.capsule, now));
    sim.monotonic_ms = MINUTE_MS;
    finish_bolus(&mut sim);
    // The wall clock jumps a day ahead: the lockout still runs.
    sim.set_clock(pump_test_support::UTC_2025_01_01_MS + 2 * DAY_MS);
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::LockoutActive,
            ..
        }
    ));
    // The app wakes when the lockout ends, to refresh the display.
    let wake = sim.core.next_wakeup();
    assert!(wake.at_monotonic_ms <= 2 * HOUR_MS);
}

#[test]
fn sr_dos_004_not_prescribed_and_busy_are_denied_by_the_app() {
    let mut sim = Sim::start(&RxBuilder::new(1).patient_bolus(None), 0);
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::NotPrescribed,
            decided_by: Decider::Dosing,
            ..
        }
    ));
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let now = sim.now();
    sim.core
        .request_clinician_bolus(50, 600_000, &mut sim.capsule, now)
        .unwrap();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::Busy,
            ..
        }
    ));
    assert_eq!(sim.capsule.boluses().len(), 1);
}

#[test]
fn sr_dos_001_clinician_bolus_converts_at_the_prescription_concentration() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let now = sim.now();
    let plan = sim
        .core
        .request_clinician_bolus(50, 600_000, &mut sim.capsule, now)
        .unwrap();
    assert_eq!(plan.volume_nl, 100_000);
    assert_eq!(
        sim.capsule.boluses(),
        [(DeliveryKind::ClinicianBolus, 100_000, 600_000)]
    );
    sim.delivery_done(
        DeliveryKind::ClinicianBolus,
        DeliveryOutcome::Completed,
        100_000,
    );
    assert_eq!(
        sim.core
            .request_clinician_bolus(0, 600_000, &mut sim.capsule, now),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        sim.core
            .request_clinician_bolus(u32::MAX, 600_000, &mut sim.capsule, now),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(sim.capsule.boluses().len(), 1);
}

#[test]
fn sr_dos_006_a_lost_completion_upcall_does_not_block_boluses_for_ever() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let now = sim.now();
    grant_ok(sim.core.request_patient_bolus(&mut sim.capsule, now));
    let wake = sim.core.next_wakeup();
    assert_eq!(wake.reason, crate::WakeReason::BolusEnd);
    assert_eq!(wake.at_monotonic_ms, MINUTE_MS + crate::BOLUS_END_GRACE_MS);
    sim.capsule.bolus = None;
    sim.monotonic_ms = 3 * HOUR_MS;
    let now = sim.now();
    grant_ok(sim.core.request_patient_bolus(&mut sim.capsule, now));
    let _ = at(0);
}

#[test]
fn sr_dos_004_a_grant_leaves_the_rolling_day_exactly_24_h_later_as_the_capsule_counts_it() {
    // Verifies: SR-DOS-004
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    for k in 0..4u64 {
        sim.monotonic_ms = k * 2 * HOUR_MS;
        let now = sim.now();
        grant_ok(sim.core.request_patient_bolus(&mut sim.capsule, now));
        sim.monotonic_ms += MINUTE_MS;
        finish_bolus(&mut sim);
    }
    // The envelope counts a bolus for the 24 h after its start, not at
    // 24 h: the therapy's count uses the same window.
    assert_eq!(
        sim.core
            .own_patient_bolus_status(at(DAY_MS - 1))
            .boluses_left_24h,
        0
    );
    assert_eq!(
        sim.core
            .own_patient_bolus_status(at(DAY_MS))
            .boluses_left_24h,
        1
    );
    sim.monotonic_ms = DAY_MS;
    let now = sim.now();
    assert_eq!(
        grant_ok(sim.core.request_patient_bolus(&mut sim.capsule, now)),
        0
    );
}

#[test]
fn sr_dos_006_the_app_wakes_when_the_patient_bolus_lockout_ends() {
    // Verifies: SR-DOS-006
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let now = sim.now();
    grant_ok(sim.core.request_patient_bolus(&mut sim.capsule, now));
    // The therapy's lockout is 2 h; the watchdog's wake-ups do not fall on
    // its end, so only a wake-up for it refreshes the display on time.
    sim.run_until(3 * HOUR_MS);
    assert!(
        sim.wakes
            .contains(&(2 * HOUR_MS, crate::WakeReason::LockoutEnd)),
        "{:?}",
        sim.wakes
    );
    assert_eq!(
        sim.core
            .own_patient_bolus_status(at(2 * HOUR_MS))
            .lockout_remaining_ms,
        0
    );
}
