//! Programmer requests and notices taken from the capsule's relay.

use pump_protocol::{
    ClearFault, ClinicianBolus, DeliveryKind, DeliveryOutcome, ErrorCode, Message, MessageKind,
    PatientBolusRequest, Refill, Resume, SetClock, Suspend,
};
use pump_test_support::{RxBuilder, CATHETER_VOLUME_NL, HOUR_MS};

use super::fake::{Call, Sim, DEAD_VOLUME_NL};
use crate::{Phase, RELAY_MAX_ITEMS_PER_CALL};

fn relay(sim: &mut Sim) {
    let now = sim.now();
    sim.core.on_relay_posted(&mut sim.capsule, now);
}

fn clinician(dose_ug: u32, duration_ms: u32) -> Message {
    Message::ClinicianBolus(ClinicianBolus {
        dose_ug,
        duration_ms,
    })
}

#[test]
fn sr_dos_014_clinician_bolus_from_the_relay_is_granted_and_answered_ok() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let ticket = sim.capsule.post_message(&clinician(50, 600_000));
    relay(&mut sim);
    // 50 µg at 500 µg/mL, as `request_clinician_bolus` converts it.
    assert_eq!(
        sim.capsule.boluses(),
        [(DeliveryKind::ClinicianBolus, 100_000, 600_000)]
    );
    assert_eq!(sim.capsule.relay_answers(), [(ticket, Ok(()))]);
    assert!(sim.capsule.relay.is_empty());
}

#[test]
fn sr_dos_014_refused_clinician_bolus_is_answered_with_the_reason() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    // Refused by the app itself (a zero dose) ...
    let first = sim.capsule.post_message(&clinician(0, 600_000));
    relay(&mut sim);
    // ... and by the capsule's envelope.
    sim.capsule
        .bolus_answers
        .push_back(Err(ErrorCode::DailyLimitReached));
    let second = sim.capsule.post_message(&clinician(50, 600_000));
    relay(&mut sim);
    assert_eq!(
        sim.capsule.relay_answers(),
        [
            (first, Err(ErrorCode::InvalidArgument)),
            (second, Err(ErrorCode::DailyLimitReached))
        ]
    );
    assert!(sim.capsule.bolus.is_none());
}

#[test]
fn sr_dos_014_patient_bolus_via_the_programmer_answers_the_verdict() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let request = Message::PatientBolusRequest(PatientBolusRequest {});
    let first = sim.capsule.post_message(&request);
    relay(&mut sim);
    assert_eq!(
        sim.capsule.boluses(),
        [(DeliveryKind::PatientBolus, 50_000, 60_000)]
    );
    // A second press within the lockout: the app's own refusal.
    sim.monotonic_ms += 120_000;
    sim.delivery_done(
        DeliveryKind::PatientBolus,
        DeliveryOutcome::Completed,
        50_000,
    );
    let second = sim.capsule.post_message(&request);
    relay(&mut sim);
    let answers = sim.capsule.relay_answers();
    assert_eq!(answers[0], (first, Ok(())));
    assert_eq!(answers[1], (second, Err(ErrorCode::LockoutActive)));
    assert_eq!(sim.capsule.boluses().len(), 1);
}

#[test]
fn sr_dos_014_refill_notice_with_a_new_concentration_starts_the_bridge() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let new_rx = RxBuilder::new(2).drug("baclofen", 2_000);
    sim.monotonic_ms = HOUR_MS;
    sim.capsule.prescription = Some(new_rx.signed());
    // The notice of a new prescription comes without its payload.
    sim.capsule.post(MessageKind::InstallPrescription, &[]);
    relay(&mut sim);
    assert_eq!(sim.core.phase(), Phase::DrugChangePending);
    sim.monotonic_ms = 2 * HOUR_MS;
    sim.capsule.post_message(&Message::Refill(Refill {
        withdrawn_volume_nl: 1_000_000,
        added_volume_nl: 18_000_000,
        concentration_ug_per_ml: 2_000,
    }));
    relay(&mut sim);
    // As after `on_programmer_command(Refill)`: basal stops and the old drug
    // leaves the catheter as a bridge bolus at its old rate.
    assert_eq!(sim.core.phase(), Phase::Bridging);
    assert_eq!(
        sim.core.refill_status().flush_remaining_nl,
        CATHETER_VOLUME_NL + DEAD_VOLUME_NL
    );
    assert!(sim
        .capsule
        .boluses()
        .iter()
        .any(|(kind, _, _)| *kind == DeliveryKind::Bridge));
    // Notices are never answered.
    assert!(sim.capsule.relay_answers().is_empty());
}

#[test]
fn sr_dos_014_suspend_and_other_notices_act_like_programmer_commands() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    // The capsule suspended therapy and tells the app through the relay.
    sim.capsule.fault = Some(ErrorCode::Suspended);
    sim.capsule.basal_rate_nl_per_h = 0;
    sim.capsule.clear_calls();
    sim.capsule.post_message(&Message::Suspend(Suspend {}));
    relay(&mut sim);
    assert_eq!(sim.core.basal_running_nl_per_h(), Some(0));
    assert!(sim.capsule.basal_sets().is_empty());
    sim.capsule.fault = None;
    sim.capsule.clear_calls();
    sim.capsule.post_message(&Message::Resume(Resume {}));
    sim.capsule.post_message(&Message::ClearFault(ClearFault {
        code: pump_protocol::AlarmCode::Occlusion,
    }));
    sim.capsule.post_message(&Message::SetClock(SetClock {
        utc_time_ms: pump_test_support::UTC_2025_01_01_MS,
    }));
    relay(&mut sim);
    assert_eq!(sim.capsule.basal_sets(), [25_000]);
    assert!(sim.capsule.relay.is_empty());
    assert!(sim.capsule.relay_answers().is_empty());
}

#[test]
fn sr_dos_014_undecodable_requests_are_answered_bad_payload_and_notices_skipped() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let bolus = sim.capsule.post(MessageKind::ClinicianBolus, &[0xFF]);
    let press = sim.capsule.post(MessageKind::PatientBolusRequest, &[1]);
    sim.capsule.post(MessageKind::Refill, &[0xFF, 0xFF]);
    sim.capsule
        .post(MessageKind::InstallPrescription, &[1, 2, 3]);
    // Kinds the relay does not carry, and a code no version defines.
    sim.capsule.post(MessageKind::GetStatus, &[]);
    sim.capsule.prescription = Some(RxBuilder::new(2).drug("baclofen", 2_000).signed());
    sim.capsule.post(MessageKind::InstallPrescription, &[]);
    relay(&mut sim);
    assert_eq!(
        sim.capsule.relay_answers(),
        [
            (bolus, Err(ErrorCode::BadPayload)),
            (press, Err(ErrorCode::BadPayload))
        ]
    );
    assert!(sim.capsule.boluses().is_empty());
    assert!(sim.capsule.relay.is_empty());
    // The good notice behind the bad entries still took effect.
    assert_eq!(sim.core.phase(), Phase::DrugChangePending);
    // An unknown kind code is skipped too.
    sim.capsule.relay.push_back((99, 0xEEEE, std::vec![]));
    relay(&mut sim);
    assert!(sim.capsule.relay.is_empty());
    assert_eq!(sim.capsule.relay_answers().len(), 2);
}

#[test]
fn sr_dos_014_each_call_takes_a_bounded_number_of_entries() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    for _ in 0..RELAY_MAX_ITEMS_PER_CALL + 3 {
        sim.capsule.post_message(&Message::SetClock(SetClock {
            utc_time_ms: pump_test_support::UTC_2025_01_01_MS,
        }));
    }
    sim.capsule.clear_calls();
    relay(&mut sim);
    assert_eq!(sim.capsule.count(Call::RelayTake), RELAY_MAX_ITEMS_PER_CALL);
    assert_eq!(sim.capsule.relay.len(), 3);
    sim.capsule.clear_calls();
    relay(&mut sim);
    // The rest, then the empty relay's NotReady.
    assert_eq!(sim.capsule.count(Call::RelayTake), 4);
    assert!(sim.capsule.relay.is_empty());
}

#[test]
fn sr_dos_014_a_refused_answer_changes_nothing_and_an_empty_relay_is_a_wakeup() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    // The capsule already timed the request out.
    sim.capsule
        .relay_answer_results
        .push_back(Err(ErrorCode::InvalidArgument));
    let ticket = sim.capsule.post_message(&clinician(50, 600_000));
    relay(&mut sim);
    assert_eq!(sim.capsule.relay_answers(), [(ticket, Ok(()))]);
    assert_eq!(sim.capsule.boluses().len(), 1);
    sim.capsule.clear_calls();
    relay(&mut sim);
    assert_eq!(sim.capsule.count(Call::CheckIn), 1);
    assert!(sim.capsule.relay_answers().is_empty());
}

#[test]
fn sr_dos_006_a_relay_upcall_checks_in_once_whether_its_request_decodes_or_not() {
    // Verifies: SR-DOS-006
    // One request per upcall: the upcall is one wake-up, with one check-in
    // (not none because the entry did not decode, nor a second one after
    // the wake-up the request itself ran).
    let payload = |message: &Message| {
        let mut buf = [0u8; 16];
        let len = message.encode_payload(&mut buf).unwrap();
        buf[..len].to_vec()
    };
    let entries = [
        (
            MessageKind::ClinicianBolus,
            payload(&clinician(50, 600_000)),
        ),
        (MessageKind::ClinicianBolus, std::vec![0xFF]),
        (
            MessageKind::PatientBolusRequest,
            payload(&Message::PatientBolusRequest(PatientBolusRequest {})),
        ),
        (MessageKind::PatientBolusRequest, std::vec![1]),
    ];
    for (kind, payload) in entries {
        let mut sim = Sim::start(&RxBuilder::new(1), 0);
        sim.capsule.post(kind, &payload);
        sim.capsule.clear_calls();
        sim.monotonic_ms = HOUR_MS;
        relay(&mut sim);
        assert_eq!(sim.capsule.relay_answers().len(), 1, "{kind:?} {payload:?}");
        assert_eq!(
            sim.capsule.count(Call::CheckIn),
            1,
            "{kind:?} {payload:?}: {:?}",
            sim.capsule.calls
        );
    }
}

/// A core (flat 300 µg/day, 25 000 nL/h) on a capsule that gives no status:
/// what the app knows of the pump's state comes from refusals and from the
/// programmer's commands, here relayed as notices.
fn without_status() -> Sim {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    sim.capsule.status_supported = false;
    sim
}

#[test]
fn sr_dos_014_a_relayed_suspend_notice_stops_the_app_without_a_status() {
    // Verifies: SR-DOS-014, SR-DOS-005
    let mut sim = without_status();
    sim.capsule.fault = Some(ErrorCode::Suspended);
    sim.monotonic_ms = HOUR_MS;
    sim.capsule.post_message(&Message::Suspend(Suspend {}));
    relay(&mut sim);
    assert_eq!(sim.core.phase(), Phase::Suspended);
    assert_eq!(sim.core.basal_running_nl_per_h(), Some(0));
    // A press is the app's own refusal: nothing reaches the capsule.
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        crate::PatientBolusVerdict::Denied {
            reason: ErrorCode::Suspended,
            decided_by: crate::Decider::Dosing,
            ..
        }
    ));
    assert!(sim.capsule.boluses().is_empty());
    assert_eq!(sim.capsule.basal_sets(), [25_000]);
}

#[test]
fn sr_dos_013_relayed_resume_clear_fault_and_prescription_notices_restart_basal_without_a_status() {
    // Verifies: SR-DOS-013, SR-DOS-014
    let notices = [
        Message::Resume(Resume {}),
        Message::ClearFault(ClearFault {
            code: pump_protocol::AlarmCode::Occlusion,
        }),
    ];
    for notice in notices {
        // Suspended, as a relayed suspend notice told the app.
        let mut sim = without_status();
        sim.capsule.fault = Some(ErrorCode::Suspended);
        sim.capsule.post_message(&Message::Suspend(Suspend {}));
        relay(&mut sim);
        assert_eq!(sim.core.phase(), Phase::Suspended);
        sim.capsule.fault = None;
        sim.monotonic_ms = HOUR_MS;
        sim.capsule.post_message(&notice);
        relay(&mut sim);
        assert_eq!(sim.core.phase(), Phase::Running, "{notice:?}");
        assert_eq!(sim.capsule.basal_sets(), [25_000, 25_000], "{notice:?}");
    }

    // Fault-stopped, as a refusal told the app; a new prescription ends it.
    let mut sim = without_status();
    sim.fault_stop();
    assert_eq!(sim.core.phase(), Phase::FaultStopped);
    sim.capsule.fault = None;
    sim.monotonic_ms = HOUR_MS;
    sim.capsule.prescription = Some(RxBuilder::new(2).steps(&[(0, 600)]).signed());
    sim.capsule.post(MessageKind::InstallPrescription, &[]);
    relay(&mut sim);
    assert_eq!(sim.core.phase(), Phase::Running);
    assert_eq!(sim.capsule.basal_sets().last(), Some(&50_000));
}

#[test]
fn sr_dos_005_a_relayed_clock_notice_lifts_the_hold_on_a_refused_basal() {
    // Verifies: SR-DOS-005, SR-DOS-014
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    sim.capsule
        .basal_answers
        .push_back(Err(ErrorCode::DailyLimitReached));
    // A new rate is asked for and refused: held for the retry interval.
    sim.capsule.prescription = Some(RxBuilder::new(2).steps(&[(0, 600)]).signed());
    sim.monotonic_ms = HOUR_MS;
    let now = sim.now();
    sim.core.wake(&mut sim.capsule, now);
    assert_eq!(sim.capsule.basal_sets(), [25_000, 50_000]);
    sim.monotonic_ms += 60_000;
    let now = sim.now();
    sim.core.wake(&mut sim.capsule, now);
    assert_eq!(sim.capsule.basal_sets(), [25_000, 50_000]);
    // The programmer set the clock (to the time it was): a programmer
    // command, so the refused rate may be asked for again at once.
    sim.capsule.post_message(&Message::SetClock(SetClock {
        utc_time_ms: now.utc_ms,
    }));
    relay(&mut sim);
    assert_eq!(sim.capsule.basal_sets(), [25_000, 50_000, 50_000]);
}
