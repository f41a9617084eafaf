use std::vec;
use std::vec::Vec;

use proptest::prelude::*;
use pump_protocol::{
    encode_frame_vec, AcknowledgeAlarm, AlarmCode, AuthenticatedCommand, ClearFault,
    ClinicianBolus, ErrorCode, Frame, GetServiceOutlook, GetStatus, InstallPrescription, Message,
    MessageKind, Nack, PatientBolusRequest, Refill, Resume, SetClock, Suspend, Unknown, HEADER_LEN,
};

use super::fake::{host_frame, posted, CapsuleCall, VecOutput};
use super::log_tests::{Rig, UTC_MS};
use crate::{MAX_LINK_BYTES_PER_CALL, MAX_LINK_ITEMS_PER_CALL};

/// `0x00 COBS(raw) 0x00`, for hand-made (broken) frames.
fn stream(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    for block in raw.split(|b| *b == 0) {
        for run in block.chunks(254) {
            out.push(run.len() as u8 + 1);
            out.extend_from_slice(run);
        }
        if block.is_empty() {
            out.push(1);
        }
    }
    // `split` yields one block more than there are zeros; COBS encodes the
    // last block without the implied zero, so this is exact for frames
    // whose blocks are shorter than 254 bytes (all of these).
    out.push(0);
    out
}

fn raw(sequence: u32, message: Message) -> Vec<u8> {
    encode_frame_vec(&Frame {
        sequence,
        flags: 0,
        message,
    })
    .unwrap()
}

fn nack(kind: u16, error: ErrorCode) -> Message {
    Message::Nack(Nack {
        request_kind: kind,
        error,
    })
}

fn ack(kind: MessageKind) -> Message {
    Message::Ack(pump_protocol::Ack {
        request_kind: kind.code(),
    })
}

fn one_response(rig: &mut Rig, input: &[u8]) -> (u32, Message) {
    let out = rig.exchange(input, 4096);
    let frames = out.frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    let (sequence, flags, message) = frames.into_iter().next().unwrap();
    assert_eq!(flags, 0);
    (sequence, message)
}

fn install(serial: u32) -> Message {
    Message::InstallPrescription(InstallPrescription {
        device_id: 1,
        prescription_serial: serial,
        signed_prescription: heapless::Vec::from_slice(&[0xAB; 100]).unwrap(),
    })
}

#[test]
fn sr_tel_004_each_bad_frame_kind_gets_its_nack_and_changes_nothing() {
    let mut rig = Rig::new(16);
    rig.capsule.queue_records(0..3);
    rig.drain_all();
    let writes_before = *rig.storage.writes.borrow();
    let good = raw(9, Message::GetStatus(GetStatus {}));

    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    assert_eq!(
        one_response(&mut rig, &stream(&bad_crc)),
        (0, nack(0, ErrorCode::BadCrc))
    );

    let mut bad_version = good.clone();
    bad_version[2] = 2;
    assert_eq!(
        one_response(&mut rig, &stream(&bad_version)),
        (0, nack(0, ErrorCode::UnsupportedVersion))
    );

    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert_eq!(
        one_response(&mut rig, &stream(&bad_magic)),
        (0, nack(0, ErrorCode::MalformedFrame))
    );
    assert_eq!(
        one_response(&mut rig, &stream(&good[..HEADER_LEN])),
        (0, nack(0, ErrorCode::MalformedFrame))
    );
    // Not COBS at all: a code byte pointing past the item.
    assert_eq!(
        one_response(&mut rig, &[0, 0x40, 1, 2, 0]),
        (0, nack(0, ErrorCode::MalformedFrame))
    );

    let unknown = raw(
        10,
        Message::Unknown(Unknown {
            kind: 0x02FF,
            payload: heapless::Vec::new(),
        }),
    );
    assert_eq!(
        one_response(&mut rig, &stream(&unknown)),
        (10, nack(0x02FF, ErrorCode::UnknownKind))
    );

    // A GetStatus with a trailing payload byte (and a fixed-up CRC).
    let mut bad_payload = good[..good.len() - 4].to_vec();
    bad_payload.push(0x55);
    bad_payload[12] = 1;
    let crc = pump_protocol::CRC32C.checksum(&bad_payload);
    bad_payload.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(
        one_response(&mut rig, &stream(&bad_payload)),
        (
            0,
            nack(MessageKind::GetStatus.code(), ErrorCode::BadPayload)
        )
    );

    // An event sent as a command.
    let event = raw(11, super::fake::record(1));
    assert_eq!(
        one_response(&mut rig, &stream(&event)),
        (
            11,
            nack(MessageKind::DeliveryRecord.code(), ErrorCode::NoSupport)
        )
    );

    assert!(rig.capsule.commands().is_empty());
    assert!(rig.capsule.posted.is_empty());
    assert_eq!(*rig.storage.writes.borrow(), writes_before);
    assert_eq!(rig.core.stats().link_items_refused, 8);
    // The link still works.
    assert_eq!(
        one_response(&mut rig, &stream(&good)),
        (9, Message::StatusSnapshot(rig.capsule.status.clone()))
    );
}

#[test]
fn sr_tel_005_a_garbage_flood_costs_bounded_work_per_call() {
    let mut rig = Rig::new(16);
    // 64 KiB of noise with a delimiter now and then, then a real request.
    let mut input: Vec<u8> = (0..65_536u32)
        .map(|i| {
            if i % 97 == 0 {
                0
            } else {
                (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 1
            }
        })
        .collect();
    input.extend(host_frame(5, Message::GetStatus(GetStatus {})));
    let mut out = super::fake::VecOutput::with_room(1 << 20);
    let mut rest = &input[..];
    let mut calls = 0;
    let mut answered = false;
    while !rest.is_empty() {
        let progress = rig
            .core
            .service_link(rest, &mut rig.capsule, &mut out, UTC_MS);
        assert!(progress.consumed <= MAX_LINK_BYTES_PER_CALL);
        assert!(progress.items <= MAX_LINK_ITEMS_PER_CALL);
        assert!(progress.consumed > 0);
        rest = &rest[progress.consumed..];
        calls += 1;
        // Between link calls the app drains the capsule as usual.
        rig.capsule.queue_records([calls]);
        rig.drain_all();
    }
    for (sequence, _, message) in out.frames() {
        match message {
            Message::StatusSnapshot(_) => {
                assert_eq!(sequence, 5);
                answered = true;
            }
            Message::Nack(n) => assert!(matches!(
                n.error,
                ErrorCode::MalformedFrame | ErrorCode::BadCrc | ErrorCode::UnsupportedVersion
            )),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(answered);
    assert!(calls as usize >= input.len() / MAX_LINK_BYTES_PER_CALL);
    assert!(rig
        .capsule
        .commands()
        .iter()
        .all(|c| *c == CapsuleCall::Status));
    assert_eq!(rig.core.stats().frames_stored, calls);
}

#[test]
fn sr_tel_005_no_room_to_answer_means_the_bytes_wait() {
    let mut rig = Rig::new(16);
    let input = host_frame(5, Message::GetStatus(GetStatus {}));
    let mut out = super::fake::VecOutput::with_room(10);
    let progress = rig
        .core
        .service_link(&input, &mut rig.capsule, &mut out, UTC_MS);
    assert_eq!(progress.items, 0);
    assert!(progress.consumed < input.len());
    // Only the start's read of a stale relay result.
    assert_eq!(rig.capsule.calls, [CapsuleCall::RelayResult]);
    // With room, the rest goes through and is answered.
    let out = rig.exchange(&input[progress.consumed..], 4096);
    assert_eq!(out.frames().len(), 1);
}

#[test]
fn sr_tel_006_install_prescription_relays_the_capsules_verdict() {
    let mut rig = Rig::new(16);
    rig.capsule
        .answers
        .push_back(Err(ErrorCode::InvalidSignature));
    let request = host_frame(21, install(2));
    assert_eq!(
        one_response(&mut rig, &request),
        (
            21,
            nack(
                MessageKind::InstallPrescription.code(),
                ErrorCode::InvalidSignature
            )
        )
    );
    assert!(rig.capsule.posted.is_empty());
    assert_eq!(
        one_response(&mut rig, &host_frame(22, install(3))),
        (22, ack(MessageKind::InstallPrescription))
    );
    assert_eq!(
        rig.capsule.commands(),
        [
            CapsuleCall::Install(vec![0xAB; 100]),
            CapsuleCall::Install(vec![0xAB; 100])
        ]
    );
    // The capsule tells the dosing app of what it accepted; this app posts
    // nothing of its own.
    assert!(rig.capsule.posted.is_empty());
}

#[test]
fn sr_tel_006_programmer_commands_reach_the_capsule_and_the_dosing_app() {
    let mut rig = Rig::new(16);
    let refill = Refill {
        withdrawn_volume_nl: 1_000_000,
        added_volume_nl: 18_000_000,
        concentration_ug_per_ml: 500,
    };
    let cases = [
        (
            Message::Refill(refill.clone()),
            CapsuleCall::Refill(refill),
            true,
        ),
        (Message::Suspend(Suspend {}), CapsuleCall::Suspend, true),
        (Message::Resume(Resume {}), CapsuleCall::Resume, true),
        (
            Message::AcknowledgeAlarm(AcknowledgeAlarm {
                code: AlarmCode::ReservoirLow,
            }),
            CapsuleCall::Acknowledge(AlarmCode::ReservoirLow),
            false,
        ),
        (
            Message::ClearFault(ClearFault {
                code: AlarmCode::MotorStall,
            }),
            CapsuleCall::ClearFault(AlarmCode::MotorStall),
            true,
        ),
        (
            Message::SetClock(SetClock {
                utc_time_ms: UTC_MS + 5,
            }),
            CapsuleCall::SetClock(UTC_MS + 5),
            true,
        ),
    ];
    // The plain frames still reach the capsule, which refuses them since
    // protocol 1.1 (and logs it); whatever it answers goes back to the host.
    for (i, (message, call, _)) in cases.into_iter().enumerate() {
        rig.capsule.calls.clear();
        rig.capsule.posted.clear();
        let kind = message.kind().unwrap();
        assert_eq!(
            one_response(&mut rig, &host_frame(i as u32, message.clone())),
            (i as u32, ack(kind))
        );
        assert_eq!(rig.capsule.commands(), core::slice::from_ref(&call));
        assert!(rig.capsule.posted.is_empty());
        // Refused by the capsule: the reason comes back, the dosing app hears nothing.
        rig.capsule.answers.push_back(Err(ErrorCode::NotPermitted));
        rig.capsule.posted.clear();
        assert_eq!(
            one_response(&mut rig, &host_frame(100 + i as u32, message)),
            (100 + i as u32, nack(kind.code(), ErrorCode::NotPermitted))
        );
        assert!(rig.capsule.posted.is_empty());
    }
    rig.capsule.answers.push_back(Err(ErrorCode::NoSupport));
    assert_eq!(
        one_response(&mut rig, &host_frame(7, Message::GetStatus(GetStatus {}))),
        (7, nack(MessageKind::GetStatus.code(), ErrorCode::NoSupport))
    );
}

fn clinician() -> Message {
    Message::ClinicianBolus(ClinicianBolus {
        dose_ug: 50,
        duration_ms: 600_000,
    })
}

fn patient() -> Message {
    Message::PatientBolusRequest(PatientBolusRequest {})
}

#[test]
fn sr_tel_007_bolus_requests_go_to_the_dosing_app_with_its_verdict() {
    // Verifies: SR-TEL-008
    let mut rig = Rig::new(16);
    // Posted to the relay; no answer until the dosing app's verdict.
    assert!(rig
        .exchange(&host_frame(1, clinician()), 4096)
        .frames()
        .is_empty());
    assert_eq!(rig.capsule.posted, [posted(&clinician())]);
    rig.capsule.answer_relay(Ok(()));
    assert_eq!(
        one_response(&mut rig, &[]),
        (1, ack(MessageKind::ClinicianBolus))
    );
    assert!(rig
        .exchange(&host_frame(2, patient()), 4096)
        .frames()
        .is_empty());
    rig.capsule.answer_relay(Err(ErrorCode::LockoutActive));
    assert_eq!(
        one_response(&mut rig, &[]),
        (
            2,
            nack(
                MessageKind::PatientBolusRequest.code(),
                ErrorCode::LockoutActive
            )
        )
    );
    assert_eq!(
        rig.capsule.posted,
        [posted(&clinician()), posted(&patient())]
    );
    // The telemetry app asked the capsule for no delivery.
    assert!(rig.capsule.commands().is_empty());
}

#[test]
fn sr_tel_008_the_ack_waits_for_the_verdict() {
    let mut rig = Rig::new(16);
    let mut out = VecOutput::with_room(4096);
    rig.core.service_link(
        &host_frame(5, clinician()),
        &mut rig.capsule,
        &mut out,
        UTC_MS,
    );
    // Wake-ups before the verdict answer nothing.
    for _ in 0..3 {
        assert!(!rig.core.service_relay(&mut rig.capsule, &mut out, UTC_MS));
    }
    assert!(out.frames().is_empty());
    rig.capsule.answer_relay(Ok(()));
    // No room for the answer: the result waits in the capsule.
    let mut full = VecOutput::with_room(10);
    assert!(!rig.core.service_relay(&mut rig.capsule, &mut full, UTC_MS));
    assert_eq!(rig.capsule.results.len(), 1);
    assert!(rig.core.service_relay(&mut rig.capsule, &mut out, UTC_MS));
    assert_eq!(out.frames(), [(5, 0, ack(MessageKind::ClinicianBolus))]);
    // Answered once only.
    assert!(!rig.core.service_relay(&mut rig.capsule, &mut out, UTC_MS));
    assert_eq!(out.frames().len(), 1);
}

#[test]
fn sr_tel_008_a_refused_verdict_is_nacked_with_its_error() {
    let mut rig = Rig::new(16);
    rig.exchange(&host_frame(6, clinician()), 4096);
    rig.capsule.answer_relay(Err(ErrorCode::DailyLimitReached));
    assert_eq!(
        one_response(&mut rig, &[]),
        (
            6,
            nack(
                MessageKind::ClinicianBolus.code(),
                ErrorCode::DailyLimitReached
            )
        )
    );
    assert_eq!(rig.core.stats().link_items_refused, 1);
}

#[test]
fn sr_tel_008_the_capsules_timeout_is_forwarded_as_a_nack() {
    let mut rig = Rig::new(16);
    rig.exchange(&host_frame(7, patient()), 4096);
    // The dosing app never answered: the capsule answers NotReady itself.
    rig.capsule.answer_relay(Err(ErrorCode::NotReady));
    assert_eq!(
        one_response(&mut rig, &[]),
        (
            7,
            nack(MessageKind::PatientBolusRequest.code(), ErrorCode::NotReady)
        )
    );
}

#[test]
fn sr_tel_008_a_second_request_while_one_is_outstanding_is_busy() {
    let mut rig = Rig::new(16);
    rig.exchange(&host_frame(1, clinician()), 4096);
    assert_eq!(
        one_response(&mut rig, &host_frame(2, patient())),
        (
            2,
            nack(MessageKind::PatientBolusRequest.code(), ErrorCode::Busy)
        )
    );
    // The first is still answered when its verdict comes.
    rig.capsule.answer_relay(Ok(()));
    assert_eq!(
        one_response(&mut rig, &[]),
        (1, ack(MessageKind::ClinicianBolus))
    );
    assert_eq!(rig.capsule.posted, [posted(&clinician())]);
}

#[test]
fn sr_tel_008_a_failed_post_is_nacked_at_once_with_its_error() {
    let mut rig = Rig::new(16);
    rig.capsule
        .post_answers
        .push_back(Err(ErrorCode::NotPermitted));
    assert_eq!(
        one_response(&mut rig, &host_frame(3, clinician())),
        (
            3,
            nack(MessageKind::ClinicianBolus.code(), ErrorCode::NotPermitted)
        )
    );
    // Nothing outstanding: a later result is not an answer to it.
    rig.capsule.results.push_back((1, Ok(())));
    assert!(one_response_or_none(&mut rig).is_none());
}

fn one_response_or_none(rig: &mut Rig) -> Option<(u32, Message)> {
    let frames = rig.exchange(&[], 4096).frames();
    assert!(frames.len() <= 1, "{frames:?}");
    frames.into_iter().next().map(|(s, _, m)| (s, m))
}

#[test]
fn sr_tel_008_a_result_for_another_ticket_is_dropped() {
    let mut rig = Rig::new(16);
    // A result left from before a restart of the app is read at start.
    rig.capsule.results.push_back((41, Ok(())));
    rig.capsule.outstanding = Some(41);
    assert!(one_response_or_none(&mut rig).is_none());
    assert!(rig.capsule.results.is_empty());
    assert_eq!(rig.capsule.outstanding, None);
    // A request; a stray result for an unknown ticket answers nothing ...
    rig.exchange(&host_frame(8, clinician()), 4096);
    rig.capsule.results.push_back((999, Ok(())));
    assert!(one_response_or_none(&mut rig).is_none());
    // ... and the real verdict still does.
    rig.capsule.answer_relay(Err(ErrorCode::LockoutActive));
    assert_eq!(
        one_response_or_none(&mut rig),
        Some((
            8,
            nack(MessageKind::ClinicianBolus.code(), ErrorCode::LockoutActive)
        ))
    );
}

#[test]
fn sr_tel_009_signed_commands_go_to_the_capsule_as_bytes_and_come_back_as_its_verdict() {
    let mut rig = Rig::new(16);
    let signed = |byte: u8| {
        Message::AuthenticatedCommand(AuthenticatedCommand {
            signed_command: heapless::Vec::from_slice(&[byte; 90]).unwrap(),
        })
    };
    // Carried out by the capsule: acknowledged at once.
    assert_eq!(
        one_response(&mut rig, &host_frame(1, signed(1))),
        (1, ack(MessageKind::AuthenticatedCommand))
    );
    assert_eq!(
        rig.capsule.commands(),
        [CapsuleCall::Authenticated(vec![1; 90])]
    );
    // Refused by the capsule: its reason goes back.
    rig.capsule.auth_answers.push_back(Err(ErrorCode::Replayed));
    assert_eq!(
        one_response(&mut rig, &host_frame(2, signed(2))),
        (
            2,
            nack(
                MessageKind::AuthenticatedCommand.code(),
                ErrorCode::Replayed
            )
        )
    );
    // A signed bolus request: the answer waits for the dosing app.
    rig.capsule
        .auth_answers
        .push_back(Ok((MessageKind::ClinicianBolus.code(), true)));
    assert!(rig
        .exchange(&host_frame(3, signed(3)), 4096)
        .frames()
        .is_empty());
    rig.capsule.answer_relay(Ok(()));
    assert_eq!(
        one_response_or_none(&mut rig),
        Some((3, ack(MessageKind::AuthenticatedCommand)))
    );
    assert!(rig.capsule.posted.is_empty());
}

proptest! {
    // Verifies: SR-TEL-004
    // Verifies: SR-TEL-005
    #[test]
    fn random_link_bytes_never_panic_and_change_nothing(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
    ) {
        let mut rig = Rig::new(8);
        let mut out = super::fake::VecOutput::with_room(1 << 20);
        for chunk in &chunks {
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let progress = rig.core.service_link(rest, &mut rig.capsule, &mut out, UTC_MS);
                prop_assert!(progress.consumed > 0 && progress.consumed <= MAX_LINK_BYTES_PER_CALL);
                rest = &rest[progress.consumed..];
            }
        }
        // Random bytes are (with overwhelming probability) never a valid,
        // CRC-checked command: only nacks come back and nothing changed.
        for (_, _, message) in out.frames() {
            prop_assert!(matches!(message, Message::Nack(_)));
        }
        prop_assert!(rig.capsule.commands().is_empty());
        prop_assert!(rig.capsule.posted.is_empty());
        prop_assert_eq!(*rig.storage.writes.borrow(), 0);
    }
}

#[test]
fn sr_bat_004_get_service_outlook_is_answered_with_the_capsules_outlook() {
    let mut rig = Rig::new(16);
    let writes_before = *rig.storage.writes.borrow();
    assert_eq!(
        one_response(
            &mut rig,
            &host_frame(12, Message::GetServiceOutlook(GetServiceOutlook {}))
        ),
        (12, Message::ServiceOutlook(rig.capsule.outlook.clone()))
    );
    // A read: nothing else was asked of the capsule, nothing was logged.
    assert_eq!(rig.capsule.commands(), [CapsuleCall::ServiceOutlook]);
    assert_eq!(*rig.storage.writes.borrow(), writes_before);
    // A capsule that refuses it is answered with its reason.
    rig.capsule.answers.push_back(Err(ErrorCode::NoSupport));
    assert_eq!(
        one_response(
            &mut rig,
            &host_frame(13, Message::GetServiceOutlook(GetServiceOutlook {}))
        ),
        (
            13,
            nack(MessageKind::GetServiceOutlook.code(), ErrorCode::NoSupport)
        )
    );
}
