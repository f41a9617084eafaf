//! Faults, restarts and upcalls: the app neither busy-waits, nor stays
//! stopped once the capsule can deliver again, nor loops on upcalls, and
//! every press it refuses itself reaches the capsule's log. Each test is a
//! defect the pumpctl simulator found.

use pump_protocol::{DeliveryKind, DeliveryOutcome, ErrorCode, Message, Refill};
use pump_test_support::{RxBuilder, CHECKIN_TIMEOUT_MS, DAY_MS, HOUR_MS, MINUTE_MS};

use super::fake::{at, config, Call, FakeCapsule, Sim};
use crate::{
    CatheterContents, Decider, DosingCore, PatientBolusVerdict, Phase, SavedState, WakeReason,
    RETRY_INTERVAL_MS,
};

/// 00:00 200 µg/day, 06:00 300 µg/day, 22:00 150 µg/day, at 500 µg/mL.
fn flex() -> RxBuilder {
    RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)])
}
const NIGHT: u32 = 16_666;
const DAY: u32 = 25_000;

/// Wake-ups a day may take at most: the watchdog's half interval, the
/// schedule's edges, a retry per retry interval.
fn max_wakes_per_day() -> usize {
    let half = u64::from(CHECKIN_TIMEOUT_MS) / 2;
    (DAY_MS / half + 24 + DAY_MS / RETRY_INTERVAL_MS + 4) as usize
}

/// Runs a day from the sim's time; fails on more wake-ups than a day may take.
fn run_a_day_bounded(sim: &mut Sim) {
    let start = sim.wakes.len();
    let until = sim.monotonic_ms + DAY_MS;
    assert!(
        sim.run_until_at_most(until, max_wakes_per_day()),
        "busy-waiting: more than {} wake-ups in a day, the last ones {:?}",
        max_wakes_per_day(),
        &sim.wakes[sim.wakes.len() - 3..]
    );
    let wakes = &sim.wakes[start..];
    for pair in wakes.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= 1_000 || pair[1].1 != WakeReason::Retry,
            "{pair:?}"
        );
    }
}

#[test]
fn sr_dos_006_a_fault_stopped_app_sleeps_past_its_retry_time() {
    // Verifies: SR-DOS-006
    // Without a status, the app learns the fault from a refusal, which it
    // holds for the retry interval; once that passed it used to ask to be
    // woken 1 ms later, again and again.
    let mut sim = Sim::start(&flex(), 0);
    sim.capsule.status_supported = false;
    sim.fault_stop();
    assert_eq!(sim.core.phase(), Phase::FaultStopped);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, NIGHT]);
    run_a_day_bounded(&mut sim);
    // Nothing is commanded while fault-stopped. Verifies: SR-DOS-005
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, NIGHT]);

    // With a status: a refusal held for a retry, then a fault.
    let mut sim = Sim::start(&flex(), 7 * HOUR_MS);
    sim.capsule
        .basal_answers
        .push_back(Err(ErrorCode::DailyLimitReached));
    sim.capsule.basal_rate_nl_per_h = 0;
    sim.monotonic_ms += MINUTE_MS;
    let now = sim.now();
    sim.core.wake(&mut sim.capsule, now);
    assert_eq!(sim.core.next_wakeup().reason, WakeReason::Watchdog);
    sim.capsule.fault = Some(ErrorCode::FaultActive);
    let now = sim.now();
    sim.core.on_alarm_changed(&mut sim.capsule, now);
    assert_eq!(sim.core.phase(), Phase::FaultStopped);
    run_a_day_bounded(&mut sim);
}

#[test]
fn sr_dos_013_basal_resumes_when_the_capsule_can_deliver_again() {
    // Verifies: SR-DOS-013
    // The reservoir runs empty; the capsule stops delivery.
    let mut sim = Sim::start(&flex(), 0);
    sim.fault_stop();
    assert_eq!(sim.core.phase(), Phase::FaultStopped);
    sim.run_until(HOUR_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT]);
    // A refill ends the fault, and nobody tells the app: its next wake-up
    // reads the status and restarts the schedule.
    sim.capsule.fault = None;
    sim.run_until(HOUR_MS + u64::from(CHECKIN_TIMEOUT_MS) / 2);
    assert_eq!(sim.core.phase(), Phase::Running);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, NIGHT]);
    sim.run_until(7 * HOUR_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, NIGHT, DAY]);
}

#[test]
fn sr_dos_013_without_a_status_a_refill_ends_a_fault_stop() {
    // Verifies: SR-DOS-013
    let mut sim = Sim::start(&flex(), 0);
    sim.capsule.status_supported = false;
    sim.fault_stop();
    // The capsule's refusal told the app of the fault.
    assert_eq!(sim.core.phase(), Phase::FaultStopped);
    sim.run_until(HOUR_MS);
    // The refill (not a resume, not a fault clearing) ends it.
    sim.capsule.fault = None;
    sim.command(Message::Refill(Refill {
        withdrawn_volume_nl: 0,
        added_volume_nl: 10_000_000,
        concentration_ug_per_ml: 500,
    }));
    assert_eq!(sim.core.phase(), Phase::Running);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, NIGHT, NIGHT]);
    assert_eq!(sim.capsule.basal_rate_nl_per_h, NIGHT);
}

/// Delivers the fake's queued upcalls until none are left, at most `max`;
/// returns how many were delivered, or `None` if they never settled.
fn deliver_upcalls(core: &mut DosingCore, capsule: &mut FakeCapsule, t: u64) -> Option<usize> {
    for n in 0..100 {
        let Some((kind, outcome)) = capsule.upcalls.pop_front() else {
            return Some(n);
        };
        core.on_delivery_done(kind, outcome, 0, capsule, at(t));
    }
    None
}

/// A restarted app on a capsule running the watchdog's fallback basal at
/// `fallback` nL/h, at 07:00 (day step).
fn restarted_over_fallback(fallback: u32, status_supported: bool) -> (DosingCore, FakeCapsule) {
    let mut capsule = FakeCapsule::new(Some(flex().signed()));
    capsule.status_supported = status_supported;
    capsule.report_replaced_runs = true;
    capsule.basal_kind = DeliveryKind::SilenceFallback;
    capsule.basal_rate_nl_per_h = fallback;
    let saved = SavedState::new(CatheterContents::Unknown);
    (DosingCore::new(config(), saved), capsule)
}

#[test]
fn sr_dos_012_upcalls_about_replaced_runs_do_not_loop() {
    // Verifies: SR-DOS-012
    // A capsule that reports the end of every run a request replaces, even
    // one at the same rate (as the capsule did before re-asking for the
    // running rate became a no-op).
    for status_supported in [false, true] {
        for fallback in [NIGHT, DAY, 40_000] {
            let (mut core, mut capsule) = restarted_over_fallback(fallback, status_supported);
            let t = 7 * HOUR_MS;
            core.wake(&mut capsule, at(t));
            // Upcalls at the same instant and, as on the device, a few ms later.
            let settled = deliver_upcalls(&mut core, &mut capsule, t)
                .and_then(|_| {
                    capsule
                        .upcalls
                        .push_back((DeliveryKind::SilenceFallback, DeliveryOutcome::Stopped));
                    deliver_upcalls(&mut core, &mut capsule, t + 3)
                })
                .and_then(|_| {
                    capsule
                        .upcalls
                        .push_back((DeliveryKind::Basal, DeliveryOutcome::Stopped));
                    deliver_upcalls(&mut core, &mut capsule, t + 7)
                });
            assert!(
                settled.is_some(),
                "status {status_supported}, fallback {fallback}: upcalls never settled; sets {:?}",
                capsule.basal_sets().len()
            );
            // The app took the basal over from the fallback, once.
            assert_eq!(capsule.basal_sets(), [DAY], "fallback {fallback}");
            assert_eq!(capsule.basal_kind, DeliveryKind::Basal);
            assert_eq!(core.basal_running_nl_per_h(), Some(DAY));
            // Idempotent: the same upcall again changes nothing.
            capsule.clear_calls();
            for _ in 0..3 {
                core.on_delivery_done(
                    DeliveryKind::SilenceFallback,
                    DeliveryOutcome::Stopped,
                    0,
                    &mut capsule,
                    at(t + 8),
                );
            }
            assert!(capsule.basal_sets().is_empty());
            // Later the schedule goes on as usual.
            let mut wakes = 0;
            let mut now = t + 8;
            while now < t + DAY_MS {
                now = core.next_wakeup().at_monotonic_ms;
                core.wake(&mut capsule, at(now));
                deliver_upcalls(&mut core, &mut capsule, now).expect("settles");
                wakes += 1;
                assert!(wakes < max_wakes_per_day());
            }
            assert_eq!(capsule.basal_sets().len(), 3, "{:?}", capsule.basal_sets());
        }
    }
}

#[test]
fn sr_dos_012_a_burst_of_basal_end_reports_asks_again_at_most_once() {
    // Verifies: SR-DOS-012
    let mut sim = Sim::start(&flex(), 7 * HOUR_MS);
    sim.capsule.status_supported = false;
    sim.capsule.clear_calls();
    // Ten reports of the end of a basal run the app did not replace, all
    // within a few ms: the first may have ended its run (it asks again,
    // once); the rest are no news.
    for k in 0..10 {
        sim.core.on_delivery_done(
            DeliveryKind::Basal,
            DeliveryOutcome::Stopped,
            0,
            &mut sim.capsule,
            at(7 * HOUR_MS + MINUTE_MS + k),
        );
    }
    assert_eq!(sim.capsule.basal_sets(), [DAY]);
}

#[test]
fn sr_evt_003_presses_the_therapy_refuses_are_reported_to_the_capsule() {
    // Verifies: SR-EVT-003
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Granted { .. }
    ));
    sim.monotonic_ms = MINUTE_MS + 1_000;
    sim.delivery_done(
        DeliveryKind::PatientBolus,
        DeliveryOutcome::Completed,
        50_000,
    );
    // Inside the therapy's 2 h lockout: the app refuses, the capsule logs it.
    sim.monotonic_ms = HOUR_MS;
    sim.capsule.clear_calls();
    let now = sim.now();
    let verdict = sim.core.request_patient_bolus(&mut sim.capsule, now);
    assert_eq!(
        verdict,
        PatientBolusVerdict::Denied {
            reason: ErrorCode::LockoutActive,
            decided_by: Decider::Dosing,
            lockout_remaining_ms: HOUR_MS as u32,
            boluses_left_24h: 3,
        }
    );
    assert_eq!(
        sim.capsule
            .calls
            .iter()
            .filter(|c| matches!(c, Call::ReportPatientDenial { .. }))
            .collect::<std::vec::Vec<_>>(),
        [&Call::ReportPatientDenial {
            reason: ErrorCode::LockoutActive,
            lockout_remaining_ms: HOUR_MS as u32,
        }]
    );
    // Suspended: refused by the app for that reason, reported too.
    sim.capsule.fault = Some(ErrorCode::Suspended);
    sim.monotonic_ms = 3 * HOUR_MS;
    sim.capsule.clear_calls();
    let now = sim.now();
    sim.core.request_patient_bolus(&mut sim.capsule, now);
    assert!(sim.capsule.calls.contains(&Call::ReportPatientDenial {
        reason: ErrorCode::Suspended,
        lockout_remaining_ms: 0,
    }));
    // A press the capsule refuses is logged by the capsule itself: no report.
    sim.capsule.fault = None;
    sim.capsule
        .bolus_answers
        .push_back(Err(ErrorCode::DailyLimitReached));
    sim.monotonic_ms = 4 * HOUR_MS;
    sim.capsule.clear_calls();
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            decided_by: Decider::Capsule,
            ..
        }
    ));
    assert!(!sim
        .capsule
        .calls
        .iter()
        .any(|c| matches!(c, Call::ReportPatientDenial { .. })));
}
