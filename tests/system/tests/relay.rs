//! Programmer requests through the capsule's relay (commands 22-25,
//! upcalls 4 and 5), between the real telemetry and dosing cores.

use pump_protocol::{
    Ack, ClinicianBolus, DeliveryKind, DeliveryOutcome, ErrorCode, Frame, InstallPrescription,
    Message, MessageKind, Nack, Refill, SetClock,
};
use pump_system_tests::Pump;
use pump_test_support::{RxBuilder, MINUTE_MS, NL_PER_STEP, UTC_2025_01_01_MS};

fn started() -> Pump {
    let rx = RxBuilder::new(1);
    let mut pump = Pump::new(64);
    pump.host_ok(Message::SetClock(SetClock {
        utc_time_ms: UTC_2025_01_01_MS,
    }));
    let signed = rx.signed();
    pump.host_ok(Message::InstallPrescription(InstallPrescription {
        device_id: rx.build().device_id,
        prescription_serial: rx.build().serial,
        signed_prescription: heapless::Vec::from_slice(&signed).unwrap(),
    }));
    pump.host_ok(Message::Refill(Refill {
        withdrawn_volume_nl: 0,
        added_volume_nl: 10_000_000,
        concentration_ug_per_ml: rx.build().concentration_ug_per_ml,
    }));
    pump.run_until(MINUTE_MS);
    pump
}

fn clinician_bolus() -> Message {
    Message::ClinicianBolus(ClinicianBolus {
        dose_ug: 50,
        duration_ms: 10 * MINUTE_MS as u32,
    })
}

fn frame(sequence: u32, message: Message) -> Vec<u8> {
    pump_protocol::encode_stream_frame_vec(&Frame {
        sequence,
        flags: 0,
        message,
    })
    .unwrap()
}

#[test]
fn sr_tel_008_a_clinician_bolus_from_the_host_is_delivered_through_the_relay() {
    // Verifies: SR-DOS-014
    let mut pump = started();
    let steps_before = pump.steps();
    // Acknowledged only after the dosing app took it from the relay and the
    // capsule accepted the delivery it asked for.
    pump.host_ok(clinician_bolus());
    pump.run_until(pump.now_ms() + 11 * MINUTE_MS);
    // 50 µg at 500 µg/mL = 100 000 nL, on top of basal.
    let moved_nl = (pump.steps() - steps_before) * u64::from(NL_PER_STEP);
    assert!(moved_nl >= 100_000, "{moved_nl}");
    let log = pump.read_log(0);
    assert!(log.iter().any(|(_, m)| matches!(
        m,
        Message::DeliveryRecord(r)
            if r.delivery_kind == DeliveryKind::ClinicianBolus
                && r.outcome == DeliveryOutcome::Completed
                && r.volume_nl == 100_000
    )));
}

#[test]
fn sr_tel_008_a_second_request_while_the_first_is_outstanding_is_busy() {
    // Verifies: SR-DOS-014
    let mut pump = started();
    // Both frames arrive in one read of the link: the telemetry app posts
    // the first and, before the dosing app has run, the second.
    let mut bytes = frame(
        100,
        pump_test_support::authenticated(&clinician_bolus(), 1_000),
    );
    bytes.extend(frame(
        101,
        pump_test_support::authenticated(&clinician_bolus(), 1_001),
    ));
    let responses = pump.host_bytes(&bytes);
    let kind = MessageKind::AuthenticatedCommand.code();
    assert_eq!(
        responses,
        [
            (
                101,
                0,
                Message::Nack(Nack {
                    request_kind: kind,
                    error: ErrorCode::Busy
                })
            ),
            (100, 0, Message::Ack(Ack { request_kind: kind })),
        ]
    );
    // One bolus only.
    pump.run_until(pump.now_ms() + 11 * MINUTE_MS);
    let boluses = pump
        .read_log(0)
        .into_iter()
        .filter(|(_, m)| {
            matches!(m, Message::DeliveryRecord(r)
                if r.delivery_kind == DeliveryKind::ClinicianBolus
                    && r.outcome != DeliveryOutcome::Checkpoint)
        })
        .count();
    assert_eq!(boluses, 1);
    // The relay is free again: the next bolus is the dosing app's to judge.
    assert_eq!(pump.host(clinician_bolus()).len(), 1);
}

#[test]
fn sr_tel_008_a_hung_dosing_app_gets_the_relays_timeout_as_the_answer() {
    let mut pump = started();
    pump.dosing_hung = true;
    let steps_before = pump.steps();
    // No verdict yet: no answer.
    assert!(pump.host(clinician_bolus()).is_empty());
    pump.run_until(pump.now_ms() + 6_000);
    let late = pump.host_receive();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(
        late[0].2,
        Message::Nack(Nack {
            request_kind: MessageKind::AuthenticatedCommand.code(),
            error: ErrorCode::NotReady
        })
    );
    // The relay never moved the motor beyond the running basal.
    let moved_nl = (pump.steps() - steps_before) * u64::from(NL_PER_STEP);
    assert!(moved_nl < 100_000, "{moved_nl}");
    // Once the dosing app is back, requests are answered again.
    pump.restart_dosing();
    assert_eq!(pump.host(clinician_bolus()).len(), 1);
}

/// Over the real telemetry and dosing cores: whoever speaks on the link
/// without the clinic's key changes nothing, and a recorded command cannot
/// be sent twice.
#[test]
fn sr_auth_002_unsigned_forged_and_replayed_link_commands_change_nothing() {
    let mut pump = started();
    let steps_before = pump.steps();
    let plain = [
        clinician_bolus(),
        Message::Suspend(pump_protocol::Suspend {}),
        Message::Refill(Refill {
            withdrawn_volume_nl: 0,
            added_volume_nl: 1_000_000,
            concentration_ug_per_ml: 500,
        }),
    ];
    for message in plain {
        let kind = message.kind_code();
        assert_eq!(
            pump.host_plain(message),
            [Message::Nack(Nack {
                request_kind: kind,
                error: ErrorCode::Unauthenticated
            })]
        );
    }
    let suspend = Message::Suspend(pump_protocol::Suspend {});
    let forged = pump_test_support::sign_command(
        &suspend,
        pump_protocol::command_auth::Signer::Clinic,
        &pump_test_support::untrusted_key(),
        pump_test_support::DEVICE_ID,
        9_000,
    );
    let forged = Message::AuthenticatedCommand(pump_protocol::AuthenticatedCommand {
        signed_command: heapless::Vec::from_slice(&forged).unwrap(),
    });
    let refused = |error| {
        vec![Message::Nack(Nack {
            request_kind: MessageKind::AuthenticatedCommand.code(),
            error,
        })]
    };
    assert_eq!(pump.host_plain(forged), refused(ErrorCode::Unauthenticated));
    let genuine = pump_test_support::authenticated(&clinician_bolus(), 9_001);
    assert_eq!(
        pump.host_plain(genuine.clone()),
        [Message::Ack(Ack {
            request_kind: MessageKind::AuthenticatedCommand.code()
        })]
    );
    pump.run_until(pump.now_ms() + 11 * MINUTE_MS);
    assert_eq!(pump.host_plain(genuine), refused(ErrorCode::Replayed));
    pump.run_until(pump.now_ms() + 11 * MINUTE_MS);
    // Exactly one clinician bolus: the genuine one, once.
    let log = pump.read_log(0);
    let boluses = log
        .iter()
        .filter(|(_, m)| {
            matches!(m, Message::DeliveryRecord(r)
                if r.delivery_kind == DeliveryKind::ClinicianBolus
                    && r.outcome == DeliveryOutcome::Completed)
        })
        .count();
    assert_eq!(boluses, 1);
    let refusals = log
        .iter()
        .filter(|(_, m)| matches!(m, Message::CommandRefused(_)))
        .count();
    assert_eq!(refusals, 5, "three plain, one forged, one replayed");
    assert!(pump.steps() > steps_before, "basal ran throughout");
}
