//! Thirty days of therapy with all three cores together.

use dosing_core::{BasalSchedule, Phase};
use pump_protocol::prescription::BasalStep;
use pump_protocol::{
    ClinicianBolus, DeliveryKind, InstallPrescription, Message, PatientBolusRequest, Refill,
    SetClock, Suspend,
};
use pump_system_tests::Pump;
use pump_test_support::{
    RxBuilder, CONCENTRATION_UG_PER_ML, DAY_MS, HOUR_MS, MINUTE_MS, NL_PER_STEP, UTC_2025_01_01_MS,
};

fn install(rx: &RxBuilder) -> Message {
    let signed = rx.signed();
    Message::InstallPrescription(InstallPrescription {
        device_id: rx.build().device_id,
        prescription_serial: rx.build().serial,
        signed_prescription: heapless::Vec::from_slice(&signed).unwrap(),
    })
}

fn refill(added_volume_nl: u32, concentration_ug_per_ml: u32) -> Message {
    Message::Refill(Refill {
        withdrawn_volume_nl: 0,
        added_volume_nl,
        concentration_ug_per_ml,
    })
}

/// 00:00 200 µg/day, 06:00 300, 11:30 350, 22:00 150 (baclofen 500 µg/mL).
const STEPS: [(u16, u32); 4] = [(0, 200), (360, 300), (690, 350), (1320, 150)];

#[test]
fn sr_dos_011_thirty_days_deliver_the_prescriptions_integral() {
    let mut pump = Pump::new(64);
    pump.run_until(MINUTE_MS);
    // The programmer sets the clock, installs a prescription signed by the
    // clinic test key and records the first fill, all over the host link.
    let start_utc = UTC_2025_01_01_MS + 3 * HOUR_MS;
    pump.host_ok(Message::SetClock(SetClock {
        utc_time_ms: start_utc,
    }));
    let rx = RxBuilder::new(1).steps(&STEPS);
    pump.host_ok(install(&rx));
    pump.host_ok(refill(20_000_000, CONCENTRATION_UG_PER_ML));
    assert_eq!(pump.dosing.phase(), Phase::Running);
    let t0 = pump.now_ms();
    let utc0 = pump.now().utc_ms;
    let steps0 = pump.steps();

    let mut bolus_nl: u64 = 0;
    for day in 0..30u64 {
        // Core time of `hour`:00 UTC on this day (the run starts at 03:00 UTC).
        let at = |hour: u64| t0 + day * DAY_MS + (hour - 3) * HOUR_MS;
        // The patient asks for a bolus at 12:00 each day, from the programmer…
        pump.run_until(at(12));
        let responses = pump.host(Message::PatientBolusRequest(PatientBolusRequest {}));
        assert!(
            matches!(responses[..], [Message::Ack(_)]),
            "day {day}: {responses:?}"
        );
        bolus_nl += 50_000;
        // …and with the button at 19:00.
        pump.run_until(at(19));
        assert!(matches!(
            pump.press_bolus_button(),
            dosing_core::PatientBolusVerdict::Granted {
                volume_nl: 50_000,
                ..
            }
        ));
        bolus_nl += 50_000;
        // A second press within the 2 h lockout is refused.
        pump.run_until(at(20));
        assert!(matches!(
            pump.press_bolus_button(),
            dosing_core::PatientBolusVerdict::Denied { .. }
        ));
        if day == 3 {
            pump.host_ok(Message::ClinicianBolus(ClinicianBolus {
                dose_ug: 50,
                duration_ms: 10 * MINUTE_MS as u32,
            }));
            bolus_nl += 100_000;
        }
        if day == 10 {
            pump.restart_telemetry();
        }
        if day == 15 {
            // A refill mid-day with the same drug: therapy goes on unchanged.
            pump.host_ok(refill(10_000_000, CONCENTRATION_UG_PER_ML));
            assert_eq!(pump.dosing.phase(), Phase::Running);
        }
    }
    let end = t0 + 30 * DAY_MS;
    pump.run_until(end);
    pump.host_ok(Message::Suspend(Suspend {}));

    // The prescription's integral over the 30 days, from the one conversion.
    let steps: Vec<BasalStep> = STEPS
        .iter()
        .map(|&(start_minute_of_day, rate_ug_per_day)| BasalStep {
            start_minute_of_day,
            rate_ug_per_day,
        })
        .collect();
    let schedule = BasalSchedule::new(&steps, CONCENTRATION_UG_PER_ML).unwrap();
    let basal_nl = schedule.integral_nl_ms_per_h(utc0, utc0 + 30 * DAY_MS) / u128::from(HOUR_MS);
    let expected_nl = basal_nl + u128::from(bolus_nl);
    let delivered_nl = u128::from(pump.steps() - steps0) * u128::from(NL_PER_STEP);
    let diff = delivered_nl.abs_diff(expected_nl);
    println!(
        "30 days: expected {expected_nl} nL (basal {basal_nl} nL + boluses {bolus_nl} nL), \
         delivered {delivered_nl} nL, difference {diff} nL; {} dosing wake-ups, {} capsule wake-ups",
        pump.dosing_wakes, pump.capsule_wakes
    );
    // Within one motor step per day.
    assert!(diff <= 30 * u128::from(NL_PER_STEP), "off by {diff} nL");
    // The second presses were refused by the app, from the therapy's lockout.
    assert!(pump
        .dosing
        .refusals()
        .all(|r| r.reason == pump_protocol::ErrorCode::LockoutActive
            && r.decided_by == dosing_core::Decider::Dosing));
    // Tickless: about one dosing wake-up per check-in half-period.
    assert!(
        pump.dosing_wakes < 30 * 24 * 9,
        "{} wake-ups",
        pump.dosing_wakes
    );

    // The log, read over the host link, is complete and accounts for every step.
    let log = pump.read_log(0);
    let mut logged_nl: u64 = 0;
    let mut bridge = 0;
    for (expected_sequence, (sequence, message)) in (log[0].0..).zip(&log) {
        assert_eq!(*sequence, expected_sequence, "sequence hole in the log");
        assert!(!matches!(message, Message::LogGap(_)), "unexpected gap");
        if let Message::DeliveryRecord(record) = message {
            logged_nl += u64::from(record.volume_nl);
            if record.delivery_kind == DeliveryKind::Bridge {
                bridge += 1;
            }
        }
    }
    assert_eq!(bridge, 0);
    // The capsule refused nothing in 30 days: before the first fill the
    // app saw the empty-reservoir fault and asked for nothing.
    let denied: Vec<_> = log
        .iter()
        .filter(|(_, m)| matches!(m, Message::DeliveryDenied(_)))
        .collect();
    assert!(denied.is_empty(), "{denied:?}");
    // Every press is in the log (Verifies: SR-EVT-003): the 60 granted, and the 30
    // the app refused from the therapy's lockout, with the time left.
    let count = |f: fn(&Message) -> bool| log.iter().filter(|(_, m)| f(m)).count();
    assert_eq!(count(|m| matches!(m, Message::PatientBolusGranted(_))), 60);
    assert_eq!(
        count(|m| matches!(m, Message::PatientBolusRequested(_))),
        90
    );
    assert_eq!(
        count(|m| matches!(m, Message::PatientBolusDenied(d)
            if d.reason == pump_protocol::ErrorCode::LockoutActive
                && u64::from(d.lockout_remaining_ms) == HOUR_MS)),
        30
    );
    assert_eq!(u128::from(logged_nl), delivered_nl);
    assert!(!pump.kernel.borrow().core.platform().stepped_while_disabled);
}
