//! Refill with a concentration change (bridge bolus) and clock changes,
//! through the real capsule.

use dosing_core::Phase;
use pump_protocol::{
    DeliveryKind, ErrorCode, InstallPrescription, Message, MessageKind, Nack, PatientBolusRequest,
    Refill, SetClock,
};
use pump_system_tests::Pump;
use pump_test_support::{RxBuilder, HOUR_MS, MINUTE_MS, NL_PER_STEP, UTC_2025_01_01_MS};

fn install(rx: &RxBuilder) -> Message {
    let signed = rx.signed();
    Message::InstallPrescription(InstallPrescription {
        device_id: rx.build().device_id,
        prescription_serial: rx.build().serial,
        signed_prescription: heapless::Vec::from_slice(&signed).unwrap(),
    })
}

fn refill(withdrawn_volume_nl: u32, added_volume_nl: u32, concentration_ug_per_ml: u32) -> Message {
    Message::Refill(Refill {
        withdrawn_volume_nl,
        added_volume_nl,
        concentration_ug_per_ml,
    })
}

fn basal_rate(pump: &Pump) -> u32 {
    pump.kernel.borrow().core.basal_rate_nl_per_h()
}

fn started(rx: &RxBuilder, utc_ms: u64) -> Pump {
    let mut pump = Pump::new(64);
    pump.host_ok(Message::SetClock(SetClock {
        utc_time_ms: utc_ms,
    }));
    pump.host_ok(install(rx));
    pump.host_ok(refill(0, 10_000_000, rx.build().concentration_ug_per_ml));
    pump
}

#[test]
fn sr_dos_007_bridge_bolus_through_the_capsule_after_a_concentration_change() {
    // 300 µg/day at 500 µg/mL: 25 000 nL/h.
    let mut pump = started(&RxBuilder::new(1), UTC_2025_01_01_MS);
    pump.run_until(HOUR_MS);
    assert_eq!(basal_rate(&pump), 25_000);
    // The clinic doubles the concentration, same dose: 12 500 nL/h.
    pump.host_ok(install(&RxBuilder::new(2).drug("baclofen", 1_000)));
    assert_eq!(pump.dosing.phase(), Phase::DrugChangePending);
    // Installing stopped delivery; the drug still in the pump runs on at its rate.
    assert_eq!(basal_rate(&pump), 25_000);
    pump.run_until(2 * HOUR_MS);
    // The refill empties the reservoir and fills the new concentration.
    // The whole record is withdrawn (more would be a discrepancy, SR-RES-006).
    let residual = pump.kernel.borrow().core.reservoir_nl();
    pump.host_ok(refill(residual, 10_000_000, 1_000));
    let refill_at = pump.now_ms();
    assert_eq!(pump.dosing.phase(), Phase::Bridging);
    assert_eq!(basal_rate(&pump), 0);
    let before = pump.steps();
    // No bolus of the new drug while the old one is in the catheter.
    assert_eq!(
        pump.host(Message::PatientBolusRequest(PatientBolusRequest {})),
        [Message::Nack(Nack {
            request_kind: MessageKind::AuthenticatedCommand.code(),
            error: ErrorCode::NotReady,
        })]
    );
    // Catheter 150 µL + dead volume 20 µL at 25 000 nL/h: 6.8 h.
    pump.run_until(refill_at + 6 * HOUR_MS + 45 * MINUTE_MS);
    assert_eq!(pump.dosing.phase(), Phase::Bridging);
    assert_eq!(basal_rate(&pump), 0);
    pump.run_until(refill_at + 6 * HOUR_MS + 50 * MINUTE_MS);
    assert_eq!(pump.dosing.phase(), Phase::Running);
    assert_eq!(basal_rate(&pump), 12_500);
    let bridged_nl = (pump.steps() - before) * u64::from(NL_PER_STEP);
    assert!(
        bridged_nl.abs_diff(170_000) <= u64::from(NL_PER_STEP) + 12_500 * 5 / 60,
        "{bridged_nl}"
    );
    // The log records the bridge as Bridge deliveries of exactly that volume.
    let log = pump.read_log(0);
    let bridge: u32 = log
        .iter()
        .filter_map(|(_, m)| match m {
            Message::DeliveryRecord(r) if r.delivery_kind == DeliveryKind::Bridge => {
                Some(r.volume_nl)
            }
            _ => None,
        })
        .sum();
    assert!(bridge.abs_diff(170_000) < NL_PER_STEP, "{bridge}");
    // A patient bolus is now the new concentration's volume.
    pump.host_ok(Message::PatientBolusRequest(PatientBolusRequest {}));
    assert_eq!(pump.kernel.borrow().core.bolus_remaining_nl(), 25_000);
}

#[test]
fn sr_dos_007_a_tighter_new_envelope_caps_the_old_drug_until_the_refill_instead_of_stopping_it() {
    // 300 µg/day at 500 µg/mL: 25 000 nL/h.
    let mut pump = started(&RxBuilder::new(1), UTC_2025_01_01_MS);
    pump.run_until(HOUR_MS);
    assert_eq!(basal_rate(&pump), 25_000);
    // Twice the concentration, and an envelope of 400 µg/day at the new
    // concentration: 16 666 nL/h, below the old drug's 25 000 nL/h.
    let new_rx = RxBuilder::new(2)
        .drug("baclofen", 1_000)
        .envelope(|e| e.max_basal_rate_nl_per_h = 16_666);
    pump.host_ok(install(&new_rx));
    assert_eq!(pump.dosing.phase(), Phase::DrugChangePending);
    // The capsule runs the old drug at the most the envelope in force allows,
    // rather than refusing it and leaving the patient without therapy.
    assert_eq!(basal_rate(&pump), 16_666);
    let before = pump.steps();
    pump.run_until(2 * HOUR_MS);
    let moved_nl = (pump.steps() - before) * u64::from(NL_PER_STEP);
    assert!(
        moved_nl.abs_diff(16_666) <= u64::from(NL_PER_STEP),
        "{moved_nl}"
    );
    // The whole record is withdrawn (more would be a discrepancy, SR-RES-006).
    let residual = pump.kernel.borrow().core.reservoir_nl();
    pump.host_ok(refill(residual, 10_000_000, 1_000));
    assert_eq!(pump.dosing.phase(), Phase::Bridging);
    let log = pump.read_log(0);
    let denied: Vec<_> = log
        .iter()
        .filter(|(_, m)| matches!(m, Message::DeliveryDenied(_)))
        .collect();
    assert!(denied.is_empty(), "{denied:?}");
}

#[test]
fn sr_dos_003_clock_jumps_through_the_host_link_set_the_landing_step_once() {
    // 00:00 200 µg/day, 06:00 300, 22:00 150 at 500 µg/mL.
    let rx = RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)]);
    let mut pump = started(&rx, UTC_2025_01_01_MS + 5 * HOUR_MS);
    assert_eq!(basal_rate(&pump), 16_666);
    pump.run_until(30 * MINUTE_MS);
    // Forward over two edges to 23:00: the evening step, once.
    pump.host_ok(Message::SetClock(SetClock {
        utc_time_ms: UTC_2025_01_01_MS + 23 * HOUR_MS,
    }));
    assert_eq!(basal_rate(&pump), 12_500);
    // Back to 05:30 the next day is the night step.
    pump.run_until(HOUR_MS);
    pump.host_ok(Message::SetClock(SetClock {
        utc_time_ms: UTC_2025_01_01_MS + 29 * HOUR_MS + 30 * MINUTE_MS,
    }));
    assert_eq!(basal_rate(&pump), 16_666);
    pump.run_until(HOUR_MS + 31 * MINUTE_MS);
    assert_eq!(basal_rate(&pump), 25_000);
    // Every rate change is one basal run in the capsule's log: start 16 666,
    // 12 500 after the forward jump, 16 666 after the backward one, 25 000
    // at 06:00. The log shows each ended run once.
    let log = pump.read_log(0);
    let ended_basal_runs = log
        .iter()
        .filter(|(_, m)| {
            matches!(m, Message::DeliveryRecord(r)
            if r.delivery_kind == DeliveryKind::Basal
            && r.outcome == pump_protocol::DeliveryOutcome::Stopped)
        })
        .count();
    assert_eq!(ended_basal_runs, 3);
    let clock_sets = log
        .iter()
        .filter(|(_, m)| matches!(m, Message::ClockSet(_)))
        .count();
    assert_eq!(clock_sets, 3);
}
