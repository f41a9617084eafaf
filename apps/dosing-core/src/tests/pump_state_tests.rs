//! What the app believes of the pump: from the capsule's status, from
//! refusals, from programmer commands and from delivery-end upcalls, and
//! what it then asks of the capsule.

use pump_protocol::{
    AlarmCode, ClearFault, DeliveryKind, DeliveryOutcome, ErrorCode, InstallPrescription, Message,
    PumpState, Resume, Suspend,
};
use pump_test_support::{RxBuilder, DAY_MS, HOUR_MS, MINUTE_MS};

use super::fake::{at, core_with, Call, FakeCapsule, Sim};
use crate::{CatheterContents, Decider, PatientBolusVerdict, Phase};

/// 00:00 200 µg/day, 06:00 300 µg/day, 22:00 150 µg/day, at 500 µg/mL.
fn flex() -> RxBuilder {
    RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)])
}
const NIGHT: u32 = 16_666;
const DAY: u32 = 25_000;

/// A sim started at `start_ms` whose capsule then stops giving a status:
/// the app learns the pump's state from refusals and commands only.
fn without_status(rx: &RxBuilder, start_ms: u64) -> Sim {
    let mut sim = Sim::start(rx, start_ms);
    sim.capsule.status_supported = false;
    sim
}

fn press(sim: &mut Sim) -> PatientBolusVerdict {
    let now = sim.now();
    sim.core.request_patient_bolus(&mut sim.capsule, now)
}

#[test]
fn nothing_is_commanded_while_the_capsule_restores_or_reports_no_prescription() {
    // The motor is stopped while the capsule restores its state after a
    // reset; a request then could only be refused and held.
    for state in [PumpState::Restoring, PumpState::NoPrescription] {
        let mut capsule = FakeCapsule::new(Some(RxBuilder::new(1).signed()));
        capsule.pump_state = state;
        let mut core = core_with(CatheterContents::Unknown);
        core.wake(&mut capsule, at(0));
        assert_eq!(core.phase(), Phase::NoPrescription, "{state:?}");
        assert!(capsule.basal_sets().is_empty(), "{state:?}");
        assert!(matches!(
            core.request_patient_bolus(&mut capsule, at(1_000)),
            PatientBolusVerdict::Denied {
                reason: ErrorCode::NoPrescription,
                decided_by: Decider::Dosing,
                ..
            }
        ));
        assert!(capsule.boluses().is_empty(), "{state:?}");
        // The first wake-up after the capsule is running starts the schedule.
        capsule.pump_state = PumpState::Running;
        let next = core.next_wakeup().at_monotonic_ms;
        core.wake(&mut capsule, at(next));
        assert_eq!(core.phase(), Phase::Running, "{state:?}");
        assert_eq!(capsule.basal_sets(), [DAY], "{state:?}");
    }
}

#[test]
fn the_latest_status_snapshot_is_kept_for_the_display() {
    let mut capsule = FakeCapsule::new(Some(RxBuilder::new(1).signed()));
    capsule.reservoir_nl = 1_500_000;
    capsule.top_alarm = Some(AlarmCode::ReservoirLow);
    let mut core = core_with(CatheterContents::Unknown);
    core.wake(&mut capsule, at(0));
    let status = core.last_status().expect("the capsule gave a status");
    assert_eq!(status.reservoir_nl, 1_500_000);
    assert_eq!(status.top_alarm, Some(AlarmCode::ReservoirLow));
    assert_eq!(status.pump_state, PumpState::Running);
    // Each wake-up takes a new one: this one shows the rate the first set.
    capsule.reservoir_nl = 1_400_000;
    core.wake(&mut capsule, at(MINUTE_MS));
    let status = core.last_status().unwrap();
    assert_eq!(status.reservoir_nl, 1_400_000);
    assert_eq!(status.basal_rate_nl_per_h, DAY);

    // A capsule without status: none to show.
    let mut capsule = FakeCapsule::new(Some(RxBuilder::new(1).signed()));
    capsule.status_supported = false;
    let mut core = core_with(CatheterContents::Unknown);
    core.wake(&mut capsule, at(0));
    assert!(core.last_status().is_none());
}

#[test]
fn sr_dos_005_without_a_status_a_suspend_command_stops_the_app_at_once() {
    // Verifies: SR-DOS-005
    let mut sim = without_status(&RxBuilder::new(1), 0);
    sim.capsule.fault = Some(ErrorCode::Suspended);
    sim.monotonic_ms = HOUR_MS;
    sim.command(Message::Suspend(Suspend {}));
    assert_eq!(sim.core.phase(), Phase::Suspended);
    assert_eq!(sim.core.basal_running_nl_per_h(), Some(0));
    // A press is refused by the app itself, for the suspension; nothing
    // reaches the capsule but the report of the press.
    sim.capsule.clear_calls();
    assert!(matches!(
        press(&mut sim),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::Suspended,
            decided_by: Decider::Dosing,
            ..
        }
    ));
    assert!(sim.capsule.boluses().is_empty());
    assert!(sim.capsule.basal_sets().is_empty());
}

#[test]
fn sr_dos_013_without_a_status_resume_fault_clearing_or_a_new_prescription_ends_a_fault_stop() {
    // Verifies: SR-DOS-013
    let new_rx = RxBuilder::new(2).steps(&[(0, 600)]);
    let signed = new_rx.signed();
    let install = Message::InstallPrescription(InstallPrescription {
        device_id: new_rx.build().device_id,
        prescription_serial: new_rx.build().serial,
        signed_prescription: heapless::Vec::from_slice(&signed).unwrap(),
    });
    let commands = [
        (Message::Resume(Resume {}), DAY),
        (
            Message::ClearFault(ClearFault {
                code: AlarmCode::Occlusion,
            }),
            DAY,
        ),
        (install, 50_000),
    ];
    for (command, rate) in commands {
        let mut sim = without_status(&RxBuilder::new(1), 0);
        sim.fault_stop();
        assert_eq!(sim.core.phase(), Phase::FaultStopped);
        sim.run_until(HOUR_MS);
        sim.capsule.fault = None;
        if matches!(command, Message::InstallPrescription(_)) {
            sim.capsule.prescription = Some(signed.clone());
        }
        sim.capsule.clear_calls();
        sim.command(command.clone());
        assert_eq!(sim.core.phase(), Phase::Running, "{command:?}");
        assert_eq!(sim.capsule.basal_sets(), [rate], "{command:?}");
    }
}

#[test]
fn sr_dos_005_a_suspended_refusal_stops_requests_until_a_command() {
    // Verifies: SR-DOS-005
    // The capsule was suspended and the app was not told: the refusal tells
    // it, and it asks for nothing more (not once per retry interval).
    let mut sim = without_status(&RxBuilder::new(1), 0);
    sim.capsule.fault = Some(ErrorCode::Suspended);
    sim.monotonic_ms = HOUR_MS;
    sim.delivery_done(DeliveryKind::Basal, DeliveryOutcome::Stopped, 0);
    assert_eq!(sim.capsule.basal_sets(), [DAY, DAY]);
    assert_eq!(sim.core.phase(), Phase::Suspended);
    sim.run_until(DAY_MS);
    assert_eq!(sim.capsule.basal_sets(), [DAY, DAY]);
    assert_eq!(sim.core.refusals().count(), 1);
    sim.capsule.fault = None;
    sim.command(Message::Resume(Resume {}));
    assert_eq!(sim.capsule.basal_sets(), [DAY, DAY, DAY]);
}

#[test]
fn sr_dos_012_the_end_of_a_run_the_app_replaced_is_no_news_even_when_reported_late() {
    // Verifies: SR-DOS-012
    let mut sim = without_status(&flex(), 5 * HOUR_MS);
    sim.run_until(6 * HOUR_MS);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, DAY]);
    // The night run's end, reported two seconds after the day rate replaced it.
    let late = 6 * HOUR_MS + 2_000;
    sim.core.on_delivery_done(
        DeliveryKind::Basal,
        DeliveryOutcome::Stopped,
        1_000,
        &mut sim.capsule,
        at(late),
    );
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, DAY]);
    assert_eq!(sim.core.basal_running_nl_per_h(), Some(DAY));
    // That end was accounted for: the next end report is of the day run
    // itself, which the app did not replace, and it asks again, once.
    sim.monotonic_ms = 6 * HOUR_MS + MINUTE_MS;
    sim.delivery_done(DeliveryKind::Basal, DeliveryOutcome::Stopped, 0);
    assert_eq!(sim.capsule.basal_sets(), [NIGHT, DAY, DAY]);
    assert_eq!(sim.capsule.basal_rate_nl_per_h, DAY);
}

#[test]
fn a_rate_set_over_a_stopped_basal_replaced_no_run_so_its_end_is_acted_on() {
    let mut sim = without_status(&flex(), 7 * HOUR_MS);
    sim.capsule.fault = Some(ErrorCode::Suspended);
    sim.command(Message::Suspend(Suspend {}));
    sim.capsule.fault = None;
    sim.capsule.basal_rate_nl_per_h = 0;
    sim.monotonic_ms += MINUTE_MS;
    sim.command(Message::Resume(Resume {}));
    assert_eq!(sim.capsule.basal_sets(), [DAY, DAY]);
    // Nothing ran when the resume set the rate, so no end report is owed:
    // the first one is of the new run, and the app asks again.
    sim.monotonic_ms += MINUTE_MS;
    sim.delivery_done(DeliveryKind::Basal, DeliveryOutcome::Stopped, 0);
    assert_eq!(sim.capsule.basal_sets(), [DAY, DAY, DAY]);
    assert_eq!(sim.capsule.basal_rate_nl_per_h, DAY);
}

#[test]
fn cancelling_a_bolus_asks_the_capsule_to_stop_it() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let now = sim.now();
    sim.core
        .request_clinician_bolus(50, 600_000, &mut sim.capsule, now)
        .unwrap();
    sim.monotonic_ms = MINUTE_MS;
    let now = sim.now();
    assert_eq!(sim.core.cancel_bolus(&mut sim.capsule, now), Ok(()));
    assert_eq!(sim.capsule.count(Call::StopBolus), 1);
    assert!(sim.capsule.bolus.is_none());
    // The capsule's Stopped upcall ends the app's bolus: another may start.
    sim.delivery_done(
        DeliveryKind::ClinicianBolus,
        DeliveryOutcome::Stopped,
        10_000,
    );
    let now = sim.now();
    assert!(sim
        .core
        .request_clinician_bolus(50, 600_000, &mut sim.capsule, now)
        .is_ok());
}
