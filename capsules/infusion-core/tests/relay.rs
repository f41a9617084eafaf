//! The relay between the telemetry and dosing apps (commands 22–25).
mod support;

use infusion_core::command::{RELAY_ANSWER, RELAY_POST, RELAY_RESULT, RELAY_TAKE};
use infusion_core::relay::{RELAY_ANSWER_TIMEOUT_MS, RELAY_PAYLOAD_MAX_LEN};
use infusion_core::{CommandResult, Notification};
use pump_protocol::{
    ClinicianBolus, ErrorCode, Message, MessageKind, PatientBolusRequest, Refill, Suspend,
};
use support::*;

fn payload(message: &Message) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let len = message.encode_payload(&mut buf).unwrap();
    buf[..len].to_vec()
}

fn clinician_bolus() -> (u16, Vec<u8>) {
    let m = Message::ClinicianBolus(ClinicianBolus {
        dose_ug: 25,
        duration_ms: 60_000,
    });
    (m.kind_code(), payload(&m))
}

fn refill() -> (u16, Vec<u8>) {
    let m = Message::Refill(Refill {
        withdrawn_volume_nl: 1_000,
        added_volume_nl: 4_000_000,
        concentration_ug_per_ml: 1_000,
    });
    (m.kind_code(), payload(&m))
}

fn suspend() -> (u16, Vec<u8>) {
    let m = Message::Suspend(Suspend {});
    (m.kind_code(), payload(&m))
}

fn post(core: &mut Core, (kind, bytes): &(u16, Vec<u8>), now: u64) -> Result<u32, ErrorCode> {
    core.relay_post(TELEMETRY, u32::from(*kind), bytes, now)
}

/// A running core whose install notice the dosing app has taken.
fn ready() -> Core {
    let mut core = running(0);
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let install = core.relay_take(DOSING, &mut buf, 0).unwrap();
    assert_eq!(install.kind, MessageKind::InstallPrescription);
    assert_eq!(install.len, 0);
    core.platform_mut().notifications.clear();
    core
}

fn relay_notifications(core: &Core) -> (usize, usize) {
    let n = &core.platform().notifications;
    (
        n.iter()
            .filter(|n| matches!(n, Notification::RelayPosted))
            .count(),
        n.iter()
            .filter(|n| matches!(n, Notification::RelayAnswered))
            .count(),
    )
}

#[test]
fn sr_rel_001_request_reaches_the_dosing_app_and_its_verdict_comes_back() {
    let mut core = ready();
    let sent = clinician_bolus();
    let ticket = post(&mut core, &sent, 10).unwrap();
    assert_eq!(relay_notifications(&core), (1, 0));

    // No verdict before the dosing app answers.
    assert_eq!(core.relay_result(TELEMETRY, 11), Err(ErrorCode::NotReady));

    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let taken = core.relay_take(DOSING, &mut buf, 12).unwrap();
    assert_eq!(taken.ticket, ticket);
    assert_eq!(taken.kind, MessageKind::ClinicianBolus);
    assert_eq!(&buf[..taken.len], &sent.1[..]);
    // Taken once only.
    assert_eq!(
        core.relay_take(DOSING, &mut buf, 13),
        Err(ErrorCode::NotReady)
    );

    core.relay_answer(
        DOSING,
        ticket,
        u32::from(ErrorCode::LockoutActive.code()),
        14,
    )
    .unwrap();
    assert_eq!(relay_notifications(&core), (1, 1));
    assert_eq!(
        core.relay_result(TELEMETRY, 15),
        Ok((ticket, Err(ErrorCode::LockoutActive)))
    );
    // Read once only.
    assert_eq!(core.relay_result(TELEMETRY, 16), Err(ErrorCode::NotReady));
}

/// A refusal comes back through the command table as the error's own wire
/// code (not 0, which would read as accepted).
#[test]
fn sr_rel_001_a_refused_request_reaches_telemetry_with_its_error_code() {
    let mut core = ready();
    let message = Message::ClinicianBolus(ClinicianBolus {
        dose_ug: 25,
        duration_ms: 60_000,
    });
    let CommandResult::SuccessU32U32(_, ticket) =
        send_signed(&mut core, &clinic_command(&message, 1), 1)
    else {
        panic!("post refused")
    };
    let mut rw = [0u8; 32];
    core.command(DOSING, u32::from(RELAY_TAKE), 0, 0, &[], &mut rw, 2);
    let refusal = u32::from(ErrorCode::Busy.code());
    assert_ne!(refusal, 0);
    assert_eq!(
        core.command(
            DOSING,
            u32::from(RELAY_ANSWER),
            ticket,
            refusal,
            &[],
            &mut rw,
            3
        ),
        CommandResult::Success
    );
    assert_eq!(
        core.command(TELEMETRY, u32::from(RELAY_RESULT), 0, 0, &[], &mut rw, 4),
        CommandResult::SuccessU32U32(ticket, refusal)
    );
}

#[test]
fn sr_rel_001_the_command_table_carries_the_relay() {
    let mut core = ready();
    let (kind, bytes) = clinician_bolus();
    let mut rw = [0u8; 32];
    let message = Message::ClinicianBolus(ClinicianBolus {
        dose_ug: 25,
        duration_ms: 60_000,
    });
    let CommandResult::SuccessU32U32(posted_kind, ticket) =
        send_signed(&mut core, &clinic_command(&message, 1), 1)
    else {
        panic!("post refused")
    };
    assert_eq!(posted_kind, u32::from(kind));
    let taken = core.command(DOSING, u32::from(RELAY_TAKE), 0, 0, &[], &mut rw, 2);
    assert_eq!(
        taken,
        CommandResult::SuccessU32U32(ticket, u32::from(kind) | ((bytes.len() as u32) << 16))
    );
    assert_eq!(&rw[..bytes.len()], &bytes[..]);
    assert_eq!(
        core.command(DOSING, u32::from(RELAY_ANSWER), ticket, 0, &[], &mut rw, 3),
        CommandResult::Success
    );
    assert_eq!(
        core.command(TELEMETRY, u32::from(RELAY_RESULT), 0, 0, &[], &mut rw, 4),
        CommandResult::SuccessU32U32(ticket, 0)
    );
    // The plain post is refused whatever it carries: only what the
    // capsule authenticated reaches the dosing app.
    // Verifies: SR-AUTH-002
    assert_eq!(
        core.command(
            TELEMETRY,
            u32::from(RELAY_POST),
            u32::from(kind),
            bytes.len() as u32,
            &bytes,
            &mut rw,
            5
        ),
        CommandResult::Failure(ErrorCode::Unauthenticated)
    );
}

#[test]
fn sr_rel_002_only_telemetry_posts_and_reads_only_dosing_takes_and_answers() {
    let mut core = ready();
    let before = core.safety_state();
    let request = clinician_bolus();
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    for caller in [DOSING, ROGUE] {
        assert_eq!(
            core.relay_post(caller, u32::from(request.0), &request.1, 1),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(core.relay_result(caller, 1), Err(ErrorCode::NotPermitted));
    }
    let ticket = post(&mut core, &request, 2).unwrap();
    for caller in [TELEMETRY, ROGUE] {
        assert_eq!(
            core.relay_take(caller, &mut buf, 3),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(
            core.relay_answer(caller, ticket, 0, 3),
            Err(ErrorCode::NotPermitted)
        );
    }
    // The refused calls took nothing: the dosing app still gets the request.
    assert_eq!(core.relay_take(DOSING, &mut buf, 4).unwrap().ticket, ticket);
    assert_eq!(core.safety_state(), before);
    // Every violation was audited: each app's first as AccessDenied, the
    // one right after it from the same app folded with a count (SR-ROLE-005).
    let denied: Vec<_> = drain(&mut core, 5)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::AccessDenied(a) => Some((a.app_id, a.command, 1)),
            Message::AccessDeniedRepeated(r) => Some((r.app_id, r.last_command, r.count)),
            _ => None,
        })
        .collect();
    assert_eq!(
        denied,
        vec![
            (DOSING.0, RELAY_POST, 1),
            (DOSING.0, RELAY_RESULT, 1),
            (ROGUE.0, RELAY_POST, 1),
            (ROGUE.0, RELAY_RESULT, 1),
            (TELEMETRY.0, RELAY_TAKE, 1),
            (TELEMETRY.0, RELAY_ANSWER, 1),
            (ROGUE.0, RELAY_TAKE, 1),
            (ROGUE.0, RELAY_ANSWER, 1),
        ]
    );
}

#[test]
fn sr_rel_003_bad_posts_get_typed_errors_and_leave_the_relay_unchanged() {
    let mut core = ready();
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let (bolus_kind, bolus) = clinician_bolus();
    let cases: Vec<(u32, Vec<u8>, ErrorCode)> = vec![
        // Not a relayed kind: events, responses, unknown codes.
        (
            u32::from(MessageKind::StatusSnapshot.code()),
            vec![],
            ErrorCode::UnknownKind,
        ),
        (
            u32::from(MessageKind::GetStatus.code()),
            vec![],
            ErrorCode::UnknownKind,
        ),
        (0x7777, vec![], ErrorCode::UnknownKind),
        (0x1_0203, bolus.clone(), ErrorCode::UnknownKind),
        // Truncated, trailing bytes, too long.
        (
            u32::from(bolus_kind),
            bolus[..1].to_vec(),
            ErrorCode::BadPayload,
        ),
        (
            u32::from(bolus_kind),
            [bolus.clone(), vec![0]].concat(),
            ErrorCode::BadPayload,
        ),
        (
            u32::from(bolus_kind),
            vec![1; RELAY_PAYLOAD_MAX_LEN + 1],
            ErrorCode::BadPayload,
        ),
        // An install notice carries no bytes.
        (
            u32::from(MessageKind::InstallPrescription.code()),
            vec![1],
            ErrorCode::BadPayload,
        ),
    ];
    for (kind, bytes, expected) in cases {
        assert_eq!(
            core.relay_post(TELEMETRY, kind, &bytes, 1),
            Err(expected),
            "kind {kind:#x} bytes {bytes:?}"
        );
    }
    assert_eq!(
        core.relay_take(DOSING, &mut buf, 2),
        Err(ErrorCode::NotReady)
    );
    assert_eq!(relay_notifications(&core), (0, 0));

    // Answers for tickets that are not a taken request are refused.
    let notice = post(&mut core, &suspend(), 3).unwrap();
    assert_eq!(
        core.relay_answer(DOSING, notice, 0, 3),
        Err(ErrorCode::InvalidArgument)
    );
    let request = post(&mut core, &clinician_bolus(), 3).unwrap();
    assert_eq!(
        core.relay_answer(DOSING, request, 0, 4),
        Err(ErrorCode::InvalidArgument),
        "not taken yet"
    );
    assert_eq!(
        core.relay_answer(DOSING, 999, 0, 4),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        core.relay_answer(DOSING, request, u32::MAX, 4),
        Err(ErrorCode::InvalidArgument),
        "not a verdict code"
    );

    // A buffer too small for the payload leaves the entry in place.
    assert_eq!(
        core.relay_take(DOSING, &mut [], 5),
        Ok(infusion_core::relay::TakenEntry {
            ticket: notice,
            kind: MessageKind::Suspend,
            len: 0
        })
    );
    assert_eq!(
        core.relay_take(DOSING, &mut buf[..1], 5),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        core.relay_take(DOSING, &mut buf, 5).unwrap().ticket,
        request
    );
}

/// Every relayed kind with a payload that decodes exactly as that kind is
/// accepted and reaches the dosing app byte for byte; the same payload one
/// byte longer is `BadPayload` (the other half of SR-REL-003: the check
/// must not refuse what is well formed).
#[test]
fn sr_rel_003_every_relayed_kind_with_a_well_formed_payload_is_carried() {
    use infusion_core::relay::Relay;
    use pump_protocol::{AlarmCode, ClearFault, Resume, SetClock};
    let well_formed = [
        Message::ClinicianBolus(ClinicianBolus {
            dose_ug: 25,
            duration_ms: 60_000,
        }),
        Message::PatientBolusRequest(PatientBolusRequest {}),
        Message::Suspend(Suspend {}),
        Message::Resume(Resume {}),
        Message::Refill(Refill {
            withdrawn_volume_nl: 1_000,
            added_volume_nl: 4_000_000,
            concentration_ug_per_ml: 1_000,
        }),
        Message::ClearFault(ClearFault {
            code: AlarmCode::Occlusion,
        }),
        Message::SetClock(SetClock {
            utc_time_ms: 1_700_000_000_000,
        }),
    ];
    for message in &well_formed {
        let kind = message.kind_code();
        let bytes = payload(message);
        let mut relay = Relay::new();
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            relay.post(kind, &longer, 0),
            Err(ErrorCode::BadPayload),
            "{kind:#06x}"
        );
        relay
            .post(kind, &bytes, 0)
            .unwrap_or_else(|e| panic!("{kind:#06x}: {e:?}"));
        let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
        let taken = relay.take(&mut buf).expect("waiting");
        assert_eq!(taken.kind.code(), kind);
        assert_eq!(&buf[..taken.len], &bytes[..], "{kind:#06x}");
    }
    // The install notice carries nothing: the app reads the prescription.
    let mut relay = Relay::new();
    let install = MessageKind::InstallPrescription.code();
    assert_eq!(relay.post(install, &[0], 0), Err(ErrorCode::BadPayload));
    assert!(relay.post(install, &[], 0).is_ok());
}

#[test]
fn sr_rel_004_one_request_at_a_time_until_its_result_is_read() {
    let mut core = ready();
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let first = post(&mut core, &clinician_bolus(), 1).unwrap();
    let patient = Message::PatientBolusRequest(PatientBolusRequest {});
    let second = (patient.kind_code(), payload(&patient));
    assert_eq!(post(&mut core, &second, 2), Err(ErrorCode::Busy));
    core.relay_take(DOSING, &mut buf, 3).unwrap();
    core.relay_answer(DOSING, first, 0, 4).unwrap();
    // Answered but not read: still outstanding.
    assert_eq!(post(&mut core, &second, 5), Err(ErrorCode::Busy));
    assert_eq!(core.relay_result(TELEMETRY, 6), Ok((first, Ok(()))));
    let next = post(&mut core, &second, 7).unwrap();
    assert!(next > first);
    // Notices are never refused for a request outstanding.
    post(&mut core, &suspend(), 8).unwrap();
}

#[test]
fn sr_rel_004_notices_coalesce_by_kind_and_keep_their_order() {
    let mut core = ready();
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    post(&mut core, &refill(), 1).unwrap();
    post(&mut core, &suspend(), 2).unwrap();
    // A second refill replaces the first and goes behind the suspend.
    let newer = Message::Refill(Refill {
        withdrawn_volume_nl: 0,
        added_volume_nl: 2_000_000,
        concentration_ug_per_ml: 500,
    });
    let newer_ticket = post(&mut core, &(newer.kind_code(), payload(&newer)), 3).unwrap();
    // Many more notices never fill the relay.
    for t in 0..100 {
        post(&mut core, &suspend(), 4 + t).unwrap();
    }
    let first = core.relay_take(DOSING, &mut buf, 200).unwrap();
    assert_eq!(first.kind, MessageKind::Refill);
    assert_eq!(first.ticket, newer_ticket);
    assert_eq!(
        Message::decode_payload(first.kind.code(), &buf[..first.len]).unwrap(),
        newer
    );
    assert_eq!(
        core.relay_take(DOSING, &mut buf, 200).unwrap().kind,
        MessageKind::Suspend
    );
    assert_eq!(
        core.relay_take(DOSING, &mut buf, 200),
        Err(ErrorCode::NotReady)
    );
}

#[test]
fn sr_rel_005_an_unanswered_request_times_out_with_not_ready() {
    let mut core = ready();
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let ticket = post(&mut core, &clinician_bolus(), 1_000).unwrap();
    core.relay_take(DOSING, &mut buf, 1_001).unwrap();
    // The core asks to wake at the deadline (or earlier for other work).
    let deadline = 1_000 + RELAY_ANSWER_TIMEOUT_MS;
    assert!(core.next_wakeup().is_some_and(|t| t <= deadline));
    advance(&mut core, deadline - 1, true);
    assert_eq!(
        core.relay_result(TELEMETRY, deadline - 1),
        Err(ErrorCode::NotReady)
    );
    advance(&mut core, deadline, true);
    assert_eq!(relay_notifications(&core).1, 1);
    // A late answer finds nothing to answer.
    assert_eq!(
        core.relay_answer(DOSING, ticket, 0, deadline + 1),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        core.relay_result(TELEMETRY, deadline + 1),
        Ok((ticket, Err(ErrorCode::NotReady)))
    );
    // The relay is free again.
    post(&mut core, &clinician_bolus(), deadline + 2).unwrap();
}

#[test]
fn sr_rel_005_result_read_after_the_deadline_expires_even_without_the_timer() {
    let mut core = ready();
    let ticket = post(&mut core, &clinician_bolus(), 0).unwrap();
    assert_eq!(
        core.relay_result(TELEMETRY, RELAY_ANSWER_TIMEOUT_MS),
        Ok((ticket, Err(ErrorCode::NotReady)))
    );
}

#[test]
fn sr_rel_006_the_relay_moves_nothing_and_changes_no_safety_state() {
    let mut core = ready();
    let before = core.safety_state();
    let steps = core.platform().steps;
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let ticket = post(&mut core, &clinician_bolus(), 1).unwrap();
    post(&mut core, &refill(), 1).unwrap();
    core.relay_take(DOSING, &mut buf, 2).unwrap();
    core.relay_take(DOSING, &mut buf, 2).unwrap();
    core.relay_answer(DOSING, ticket, 0, 3).unwrap();
    assert_eq!(core.relay_result(TELEMETRY, 4), Ok((ticket, Ok(()))));
    assert_eq!(core.platform().steps, steps);
    assert_eq!(core.safety_state(), before);
}
