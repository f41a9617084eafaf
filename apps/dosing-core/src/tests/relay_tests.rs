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
