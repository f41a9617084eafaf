//! Faults the pump recovers from and restarts of the dosing app, through
//! the real capsule: the dosing app reads the capsule's status with
//! command 20, never busy-waits while delivery is stopped, restarts its
//! schedule once the capsule can deliver again, and takes basal over from
//! the watchdog's fallback without looping on the upcalls that causes.

use dosing_core::Phase;
use pump_protocol::prescription::SilencePolicy;
use pump_protocol::{
    AlarmCode, DeliveryKind, DeliveryOutcome, InstallPrescription, Message, PumpState, Refill,
    SetClock,
};
use pump_system_tests::Pump;
use pump_test_support::{RxBuilder, CHECKIN_TIMEOUT_MS, DAY_MS, HOUR_MS, MINUTE_MS};

fn install(rx: &RxBuilder) -> Message {
    Message::InstallPrescription(InstallPrescription {
        device_id: rx.build().device_id,
        prescription_serial: rx.build().serial,
        signed_prescription: heapless::Vec::from_slice(&rx.signed()).unwrap(),
    })
}

fn refill(withdrawn_volume_nl: u32, added_volume_nl: u32) -> Message {
    Message::Refill(Refill {
        withdrawn_volume_nl,
        added_volume_nl,
        concentration_ug_per_ml: 500,
    })
}

fn started(rx: &RxBuilder, fill_nl: u32) -> Pump {
    let mut pump = Pump::new(64);
    pump.host_ok(Message::SetClock(SetClock {
        utc_time_ms: pump_test_support::UTC_2025_01_01_MS,
    }));
    pump.host_ok(install(rx));
    pump.host_ok(refill(0, fill_nl));
    pump
}

/// Runs to `until_ms` a minute at a time, failing as soon as the dosing app
/// wakes more often than its watchdog, schedule and retries can explain.
fn run_bounded(pump: &mut Pump, until_ms: u64) {
    let half = u64::from(CHECKIN_TIMEOUT_MS) / 2;
    let (t0, wakes0) = (pump.now_ms(), pump.dosing_wakes);
    while pump.now_ms() < until_ms {
        let next = (pump.now_ms() + MINUTE_MS).min(until_ms);
        pump.run_until(next);
        let elapsed = pump.now_ms() - t0;
        let allowed = 8 + elapsed / half + 2 * elapsed / (15 * MINUTE_MS) + 2 * elapsed / HOUR_MS;
        assert!(
            pump.dosing_wakes - wakes0 <= allowed,
            "busy-waiting: {} dosing wake-ups in {elapsed} ms",
            pump.dosing_wakes - wakes0
        );
    }
}

fn basal_rate(pump: &Pump) -> u32 {
    pump.kernel.borrow().core.basal_rate_nl_per_h()
}

#[test]
fn sr_dos_013_basal_restarts_after_an_empty_reservoir_is_refilled() {
    // Verifies: SR-DOS-013
    // Verifies: SR-DOS-006
    // 300 µg/day at 500 µg/mL: 25 000 nL/h; 100 µL last four hours.
    let mut pump = started(&RxBuilder::new(1), 100_000);
    run_bounded(&mut pump, 5 * HOUR_MS);
    assert_eq!(pump.dosing.phase(), Phase::FaultStopped);
    assert_eq!(
        pump.kernel.borrow().core.status(pump.now_ms()).top_alarm,
        Some(AlarmCode::ReservoirEmpty)
    );
    // Stopped for most of a day: the app sleeps, checking in.
    run_bounded(&mut pump, DAY_MS);
    assert_eq!(basal_rate(&pump), 0);
    let steps = pump.steps();
    // The refill ends the fault; no resume or fault clearing is needed.
    pump.host_ok(refill(0, 10_000_000));
    assert_eq!(pump.dosing.phase(), Phase::Running);
    assert_eq!(basal_rate(&pump), 25_000);
    run_bounded(&mut pump, DAY_MS + 4 * HOUR_MS);
    assert_eq!(pump.steps() - steps, 4 * 25_000 / 250);
}

#[test]
fn sr_dos_013_without_being_told_the_app_resumes_within_half_its_timeout() {
    // Verifies: SR-DOS-013
    let mut pump = started(&RxBuilder::new(1), 100_000);
    run_bounded(&mut pump, 5 * HOUR_MS);
    assert_eq!(pump.dosing.phase(), Phase::FaultStopped);
    // The refill reaches the capsule, but the dosing app is not told (the
    // telemetry app restarted before it could).
    let now = pump.now_ms();
    pump.kernel
        .borrow_mut()
        .core
        .refill(pump_test_support::TELEMETRY, 0, 10_000_000, 500, now)
        .unwrap();
    pump.run_until(now + u64::from(CHECKIN_TIMEOUT_MS) / 2);
    assert_eq!(pump.dosing.phase(), Phase::Running);
    assert_eq!(basal_rate(&pump), 25_000);
}

#[test]
fn sr_dos_012_restart_over_the_watchdog_fallback_takes_basal_over_once() {
    // Verifies: SR-DOS-012
    // The fallback runs at the schedule's own rate: only the run's owner
    // changes when the app comes back.
    for fallback_nl_per_h in [10_000, 25_000] {
        let rx = RxBuilder::new(1).envelope(|e| {
            e.silence_policy = SilencePolicy::ContinueBasal {
                rate_nl_per_h: fallback_nl_per_h,
            }
        });
        let mut pump = started(&rx, 10_000_000);
        pump.run_until(HOUR_MS);
        pump.dosing_hung = true;
        pump.run_until(2 * HOUR_MS);
        let kind_of_basal = |pump: &Pump| {
            pump.kernel
                .borrow()
                .core
                .ledger()
                .active(infusion_core::ledger::Channel::Basal)
                .map(|r| r.kind())
        };
        assert_eq!(kind_of_basal(&pump), Some(DeliveryKind::SilenceFallback));
        assert_eq!(basal_rate(&pump), fallback_nl_per_h);
        let log_before = pump.read_log(0).len();
        // The kernel restarts the app; its upcalls settle (`deliver_upcalls`
        // panics on a loop) and it owns basal again, at the schedule's rate.
        pump.restart_dosing();
        assert_eq!(kind_of_basal(&pump), Some(DeliveryKind::Basal));
        assert_eq!(basal_rate(&pump), 25_000);
        assert_eq!(pump.dosing.phase(), Phase::Running);
        // One run ended (the fallback's), one started: no burst of runs.
        let log = pump.read_log(0);
        let ended: Vec<_> = log[log_before..]
            .iter()
            .filter(|(_, m)| {
                matches!(m, Message::DeliveryRecord(r) if r.outcome != DeliveryOutcome::Checkpoint)
            })
            .collect();
        assert_eq!(ended.len(), 1, "{ended:?}");
        pump.run_until(DAY_MS);
        assert_eq!(
            pump.kernel.borrow().core.status(pump.now_ms()).pump_state,
            PumpState::Running
        );
        assert!(pump.dosing_wakes < 24 * 9 + 8, "{}", pump.dosing_wakes);
    }
}

/// The therapy allows a patient bolus every 2 h, the envelope every 1 h.
/// The app's record in the capsule (commands 26/27) is what keeps the
/// stricter rule when the kernel restarts the app.
#[test]
fn sr_dos_015_a_restarted_dosing_app_keeps_its_grants_through_the_capsules_record() {
    const { assert!(dosing_core::SAVED_RECORD_MAX_LEN <= infusion_core::APP_RECORD_MAX_LEN) };
    let rx = RxBuilder::new(1);
    let mut pump = started(&rx, 10_000_000);
    pump.run_until(HOUR_MS);
    assert!(matches!(
        pump.press_bolus_button(),
        dosing_core::PatientBolusVerdict::Granted { .. }
    ));
    pump.run_until(HOUR_MS + 90 * MINUTE_MS);
    // The envelope's own lockout is over.
    let now_ms = pump.now_ms();
    let envelope_lockout_ms = pump
        .kernel
        .borrow_mut()
        .core
        .patient_bolus_availability(now_ms)
        .0;
    assert_eq!(envelope_lockout_ms, 0);
    pump.restart_dosing();
    match pump.press_bolus_button() {
        dosing_core::PatientBolusVerdict::Denied {
            reason: pump_protocol::ErrorCode::LockoutActive,
            decided_by: dosing_core::Decider::Dosing,
            lockout_remaining_ms,
            ..
        } => assert_eq!(u64::from(lockout_remaining_ms), 30 * MINUTE_MS),
        other => panic!("the restarted app forgot the grant: {other:?}"),
    }
    pump.run_until(3 * HOUR_MS);
    assert!(matches!(
        pump.press_bolus_button(),
        dosing_core::PatientBolusVerdict::Granted { .. }
    ));
}
