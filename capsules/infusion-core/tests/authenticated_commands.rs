//! Signed programmer commands, verified in the core (`docs/protocol.md`
//! §5.5): who may command the pump over the link, and what a forged,
//! replayed or unsigned command can change (nothing).
mod support;

use infusion_core::command::{
    ACKNOWLEDGE_ALARM, CLEAR_FAULT, CLINICIAN_BOLUS, REFILL, RELAY_POST, RESUME, SET_CLOCK, SUSPEND,
};
use infusion_core::relay::RELAY_PAYLOAD_MAX_LEN;
use infusion_core::CommandResult;
use pump_protocol::command_auth::Signer;
use pump_protocol::prescription::{ClinicianBolusLimits, Pairing};
use pump_protocol::{
    AcknowledgeAlarm, AlarmCode, ClinicianBolus, ErrorCode, Message, MessageKind,
    PatientBolusRequest, PumpState, Refill, Resume, SetClock, Suspend,
};
use support::*;

fn suspend() -> Message {
    Message::Suspend(Suspend {})
}

fn clinician_bolus(dose_ug: u32, duration_ms: u32) -> Message {
    Message::ClinicianBolus(ClinicianBolus {
        dose_ug,
        duration_ms,
    })
}

fn refused_reasons(core: &mut Core, now: u64) -> Vec<ErrorCode> {
    drain(core, now)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::CommandRefused(r) => Some(r.reason),
            _ => None,
        })
        .collect()
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut buf = [0u8; 64];
    postcard::to_slice(value, &mut buf).unwrap().to_vec()
}

fn state(core: &Core) -> impl PartialEq + std::fmt::Debug {
    core.safety_state()
}

/// The dosing app's side of a relayed clinician bolus: take it, convert
/// the dose as dosing-core does, and ask for it through the syscall table.
fn dosing_starts_clinician_bolus(core: &mut Core, now: u64) -> CommandResult {
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let taken = core.relay_take(DOSING, &mut buf, now).unwrap();
    assert_eq!(taken.kind, MessageKind::ClinicianBolus);
    let bolus: ClinicianBolus = postcard::from_bytes(&buf[..taken.len]).unwrap();
    let volume_nl = u64::from(bolus.dose_ug) * 1_000_000 / u64::from(CONCENTRATION_UG_PER_ML);
    let result = core.command(
        DOSING,
        u32::from(CLINICIAN_BOLUS),
        volume_nl as u32,
        bolus.duration_ms,
        &[],
        &mut [],
        now,
    );
    finish_request(core, taken.ticket, now);
    result
}

/// The dosing app answers a request it took and the telemetry app reads
/// the verdict, which frees the relay for the next request.
fn finish_request(core: &mut Core, ticket: u32, now: u64) {
    core.relay_answer(DOSING, ticket, 0, now).unwrap();
    let (answered, _) = core.relay_result(TELEMETRY, now).unwrap();
    assert_eq!(answered, ticket);
}

#[test]
fn sr_auth_001_a_clinic_signed_command_is_carried_out_and_audited() {
    let mut core = running(0);
    drain(&mut core, 0);
    assert_eq!(
        send_signed(&mut core, &clinic_command(&suspend(), 1_000), 10),
        CommandResult::SuccessU32U32(u32::from(MessageKind::Suspend.code()), 0)
    );
    assert_eq!(core.pump_state(), PumpState::Suspended);
    let events = drain(&mut core, 10);
    assert!(events.iter().any(|(_, m)| matches!(
        m,
        Message::CommandAuthenticated(a)
            if a.signer == Signer::Clinic.code()
                && a.counter == 1_000
                && a.command_kind == MessageKind::Suspend.code()
    )));
    // The dosing app hears of it from the capsule, not from the app that
    // carried the bytes.
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let install = core.relay_take(DOSING, &mut buf, 11).unwrap();
    assert_eq!(install.kind, MessageKind::InstallPrescription);
    let notice = core.relay_take(DOSING, &mut buf, 11).unwrap();
    assert_eq!(notice.kind, MessageKind::Suspend);
    // Each command of the clinic's table, signed, is carried out.
    let resume = Message::Resume(Resume {});
    let set_clock = Message::SetClock(SetClock {
        utc_time_ms: 1_800_000_000_000,
    });
    let refill = Message::Refill(Refill {
        withdrawn_volume_nl: 1_000_000,
        added_volume_nl: 2_000_000,
        concentration_ug_per_ml: CONCENTRATION_UG_PER_ML,
    });
    for (counter, message) in [(1_001, resume), (1_002, set_clock), (1_003, refill)] {
        let kind = u32::from(message.kind_code());
        assert_eq!(
            send_signed(&mut core, &clinic_command(&message, counter), 12),
            CommandResult::SuccessU32U32(kind, 0),
            "{message:?}"
        );
    }
    assert_eq!(core.pump_state(), PumpState::Running);
    assert_eq!(core.reservoir_nl(), 11_000_000);
    assert_eq!(core.utc_ms(12), 1_800_000_000_000);
}

#[test]
fn sr_auth_002_plain_syscalls_of_signed_commands_change_nothing() {
    let mut core = running(0);
    drain(&mut core, 0);
    let before = state(&core);
    let refill = encode(&Refill {
        withdrawn_volume_nl: 0,
        added_volume_nl: 1_000_000,
        concentration_ug_per_ml: CONCENTRATION_UG_PER_ML,
    });
    let plain = [
        ACKNOWLEDGE_ALARM,
        CLEAR_FAULT,
        SUSPEND,
        RESUME,
        REFILL,
        SET_CLOCK,
        RELAY_POST,
    ];
    for num in plain {
        assert_eq!(
            core.command(
                TELEMETRY,
                u32::from(num),
                refill.len() as u32,
                refill.len() as u32,
                &refill,
                &mut [],
                1
            ),
            CommandResult::Failure(ErrorCode::Unauthenticated),
            "command {num}"
        );
        // An app without the telemetry role is refused for its role first.
        assert_eq!(
            core.command(ROGUE, u32::from(num), 0, 0, &[], &mut [], 1),
            CommandResult::Failure(ErrorCode::NotPermitted)
        );
    }
    assert_eq!(state(&core), before);
    assert_eq!(
        refused_reasons(&mut core, 1),
        vec![ErrorCode::Unauthenticated; plain.len()]
    );
    // Signed by a key the board does not trust: refused, nothing changes.
    let forged = command_signed_for(&suspend(), Signer::Clinic, &other_key(), DEVICE_ID, 5);
    assert_eq!(
        send_signed(&mut core, &forged, 2),
        CommandResult::Failure(ErrorCode::Unauthenticated)
    );
    let mut audited = refused_reasons(&mut core, 2).len();
    // One flipped bit anywhere in a good command breaks it.
    let good = clinic_command(&suspend(), 6);
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert!(
            matches!(send_signed(&mut core, &bad, 3), CommandResult::Failure(_)),
            "bit flip at byte {i} accepted"
        );
        audited += refused_reasons(&mut core, 3).len();
    }
    // Bytes that are no command at all.
    for junk in [&[][..], &[0u8; 64][..], &[0xFF; 101][..]] {
        assert_eq!(
            send_signed(&mut core, junk, 4),
            CommandResult::Failure(ErrorCode::BadPayload)
        );
    }
    assert_eq!(state(&core), before);
    assert_eq!(core.command_counters(), [0, 0]);
    audited += refused_reasons(&mut core, 4).len();
    assert_eq!(audited, 1 + good.len() + 3, "every refusal is audited");
}

#[test]
fn sr_auth_003_a_replayed_or_reordered_command_is_refused_even_after_a_reset() {
    let mut core = running(0);
    let first = clinic_command(&suspend(), 2_000);
    assert!(matches!(
        send_signed(&mut core, &first, 1),
        CommandResult::SuccessU32U32(..)
    ));
    let resume = clinic_command(&Message::Resume(Resume {}), 2_001);
    assert!(matches!(
        send_signed(&mut core, &resume, 2),
        CommandResult::SuccessU32U32(..)
    ));
    drain(&mut core, 2);
    let before = state(&core);
    // The recorded suspend, sent again, and an older command sent late.
    assert_eq!(
        send_signed(&mut core, &first, 3),
        CommandResult::Failure(ErrorCode::Replayed)
    );
    let older = clinic_command(&suspend(), 1_999);
    assert_eq!(
        send_signed(&mut core, &older, 3),
        CommandResult::Failure(ErrorCode::Replayed)
    );
    assert_eq!(state(&core), before);
    assert_eq!(
        refused_reasons(&mut core, 3),
        vec![ErrorCode::Replayed, ErrorCode::Replayed]
    );
    // The counter survives a reset.
    let mut core = reset(core, 10);
    assert_eq!(core.command_counters(), [2_001, 0]);
    assert_eq!(
        send_signed(&mut core, &resume, 11),
        CommandResult::Failure(ErrorCode::Replayed)
    );
    assert_eq!(core.pump_state(), PumpState::Running);
}

#[test]
fn sr_auth_004_the_device_the_signer_and_the_pairing_must_match() {
    // A format-1 prescription pairs no patient programmer.
    let mut core = running(0);
    let press = Message::PatientBolusRequest(PatientBolusRequest {});
    assert_eq!(
        send_signed(&mut core, &ptm_command(&press, 1), 1),
        CommandResult::Failure(ErrorCode::NotPaired)
    );
    // Another implant's command.
    let elsewhere = command_signed_for(&suspend(), Signer::Clinic, &clinic_key(), DEVICE_ID + 1, 1);
    assert_eq!(
        send_signed(&mut core, &elsewhere, 1),
        CommandResult::Failure(ErrorCode::WrongDevice)
    );
    // Format 2 pairs the patient's programmer.
    core.install_prescription(TELEMETRY, &signed_v2(2, &paired(4, 3_600_000)), 2)
        .unwrap();
    let CommandResult::SuccessU32U32(kind, ticket) =
        send_signed(&mut core, &ptm_command(&press, 1), 3)
    else {
        panic!("a paired PTM's request is posted");
    };
    assert_eq!(kind, u32::from(MessageKind::PatientBolusRequest.code()));
    assert_ne!(ticket, 0);
    // The PTM may silence an alarm but not suspend therapy, and a clinic
    // key cannot speak as the PTM, nor the PTM as the clinic.
    assert_eq!(
        send_signed(&mut core, &ptm_command(&suspend(), 2), 4),
        CommandResult::Failure(ErrorCode::Unauthenticated)
    );
    let clinic_as_ptm = command_signed_for(
        &press,
        Signer::PatientProgrammer,
        &clinic_key(),
        DEVICE_ID,
        3,
    );
    assert_eq!(
        send_signed(&mut core, &clinic_as_ptm, 4),
        CommandResult::Failure(ErrorCode::Unauthenticated)
    );
    let ptm_as_clinic = command_signed_for(&suspend(), Signer::Clinic, &ptm_key(), DEVICE_ID, 3);
    assert_eq!(
        send_signed(&mut core, &ptm_as_clinic, 4),
        CommandResult::Failure(ErrorCode::Unauthenticated)
    );
    assert_eq!(core.pump_state(), PumpState::Running);
    // Each signer keeps its own counter.
    assert_eq!(core.command_counters(), [0, 1]);
    let ack = Message::AcknowledgeAlarm(AcknowledgeAlarm {
        code: AlarmCode::ReservoirLow,
    });
    // Nothing to acknowledge: authenticated, then refused by the command.
    assert_eq!(
        send_signed(&mut core, &ptm_command(&ack, 2), 5),
        CommandResult::Failure(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        core.command_counters(),
        [0, 2],
        "an authenticated counter is used"
    );
}

#[test]
fn sr_auth_005_the_dosing_app_starts_a_clinician_bolus_only_as_signed() {
    let mut core = running(0);
    core.install_prescription(TELEMETRY, &signed_v2(2, &paired(4, 0)), 0)
        .unwrap();
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    core.relay_take(DOSING, &mut buf, 0).unwrap(); // install notice
                                                   // No signed request: a dosing app asking on its own is refused.
    assert_eq!(
        core.command(
            DOSING,
            u32::from(CLINICIAN_BOLUS),
            50_000,
            600_000,
            &[],
            &mut [],
            1
        ),
        CommandResult::Failure(ErrorCode::Unauthenticated)
    );
    // Signed 25 µg over 10 min: 50 000 nL at 500 µg/mL.
    let signed = clinic_command(&clinician_bolus(25, 600_000), 10);
    assert!(matches!(
        send_signed(&mut core, &signed, 2),
        CommandResult::SuccessU32U32(_, t) if t != 0
    ));
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    let taken = core.relay_take(DOSING, &mut buf, 2).unwrap();
    // More volume than signed, or faster, is refused and uses the grant.
    assert_eq!(
        core.command(
            DOSING,
            u32::from(CLINICIAN_BOLUS),
            50_001,
            600_000,
            &[],
            &mut [],
            3
        ),
        CommandResult::Failure(ErrorCode::Unauthenticated)
    );
    assert_eq!(
        core.command(
            DOSING,
            u32::from(CLINICIAN_BOLUS),
            50_000,
            600_000,
            &[],
            &mut [],
            3
        ),
        CommandResult::Failure(ErrorCode::Unauthenticated),
        "a grant is used once"
    );
    finish_request(&mut core, taken.ticket, 3);
    // Signed again, and started as signed.
    let signed = clinic_command(&clinician_bolus(25, 600_000), 11);
    send_signed(&mut core, &signed, 4);
    assert_eq!(
        dosing_starts_clinician_bolus(&mut core, 5),
        CommandResult::Success
    );
    // A grant not used within the relay's answer time lapses.
    core.command(
        DOSING,
        u32::from(infusion_core::command::STOP_BOLUS),
        0,
        0,
        &[],
        &mut [],
        6,
    );
    let signed = clinic_command(&clinician_bolus(25, 600_000), 12);
    send_signed(&mut core, &signed, 7);
    let taken = core.relay_take(DOSING, &mut buf, 7).unwrap();
    assert_eq!(taken.kind, MessageKind::ClinicianBolus);
    assert_eq!(
        core.command(
            DOSING,
            u32::from(CLINICIAN_BOLUS),
            50_000,
            600_000,
            &[],
            &mut [],
            7 + infusion_core::relay::RELAY_ANSWER_TIMEOUT_MS + 1
        ),
        CommandResult::Failure(ErrorCode::Unauthenticated)
    );
}

#[test]
fn sr_auth_006_signed_clinician_boluses_keep_the_prescribed_count_and_spacing() {
    let mut core = running(0);
    let limits = Pairing {
        ptm_public_key: None,
        clinician_bolus: ClinicianBolusLimits {
            max_per_24h: 2,
            min_interval_ms: HOUR_MS as u32,
        },
    };
    core.install_prescription(TELEMETRY, &signed_v2(2, &limits), 0)
        .unwrap();
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    core.relay_take(DOSING, &mut buf, 0).unwrap();
    let mut verdicts = Vec::new();
    let mut counter = 100;
    for t in [MINUTE_MS, 30 * MINUTE_MS, 2 * HOUR_MS, 4 * HOUR_MS] {
        advance(&mut core, t, true);
        counter += 1;
        send_signed(
            &mut core,
            &clinic_command(&clinician_bolus(5, 60_000), counter),
            t,
        );
        verdicts.push(dosing_starts_clinician_bolus(&mut core, t));
        advance(&mut core, t + 2 * MINUTE_MS, true);
    }
    assert_eq!(
        verdicts,
        vec![
            CommandResult::Success,
            CommandResult::Failure(ErrorCode::ClinicianBolusLimit), // 29 min after
            CommandResult::Success,
            CommandResult::Failure(ErrorCode::ClinicianBolusLimit), // third in 24 h
        ]
    );
    // A format-1 prescription allows four a day, an hour apart.
    assert_eq!(Pairing::FORMAT_1.clinician_bolus.max_per_24h, 4);
    assert_eq!(
        Pairing::FORMAT_1.clinician_bolus.min_interval_ms,
        HOUR_MS as u32
    );
}

/// The ledger remembers a clinician bolus for the 24 h window only, so a
/// signed minimum interval longer than that could not be kept: such a
/// pairing is refused at install, and changes nothing, while one of exactly
/// 24 h installs (found by review, 2026-12-07).
#[test]
fn sr_auth_006_a_pairing_whose_interval_outlasts_the_window_is_refused() {
    let mut core = running(0);
    let day_ms = infusion_core::ledger::WINDOW_MS as u32;
    let before = state(&core);
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed_v2(2, &paired(1, day_ms + 1)), 0),
        Err(ErrorCode::OutsideHardwareLimits)
    );
    assert_eq!(state(&core), before);
    assert_eq!(core.prescription().map(|rx| rx.serial), Some(1));
    core.install_prescription(TELEMETRY, &signed_v2(2, &paired(1, day_ms)), 0)
        .unwrap();
    assert_eq!(core.prescription().map(|rx| rx.serial), Some(2));
}

/// The attack the security review measured: twelve clinician boluses of
/// 200 µg over 2 min, three minutes apart, from whoever can reach the link.
/// Unsigned, forged, replayed or re-ordered, none is carried out.
#[test]
fn sr_auth_007_the_twelve_bolus_attack_delivers_nothing() {
    let mut core = running(0);
    core.set_basal(DOSING, 20_000, 0).unwrap();
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    core.relay_take(DOSING, &mut buf, 0).unwrap();
    // One genuine clinic command the attacker recorded earlier.
    let recorded = clinic_command(&clinician_bolus(200, 120_000), 50);
    send_signed(&mut core, &recorded, 1);
    assert_eq!(
        dosing_starts_clinician_bolus(&mut core, 1),
        CommandResult::Failure(ErrorCode::BolusAboveEnvelope),
        "the envelope refuses 400 000 nL even when it is signed"
    );
    let counters = core.command_counters();
    let bolus_payload = encode(&ClinicianBolus {
        dose_ug: 200,
        duration_ms: 120_000,
    });
    let mut t = MINUTE_MS;
    let mut refusals = Vec::new();
    for i in 0..12u64 {
        advance(&mut core, t, true);
        let before_bolus = core.ledger().runs().len();
        let attempt = match i % 4 {
            // A plain relay post, as the unauthenticated 1.0 link allowed.
            0 => core.command(
                TELEMETRY,
                u32::from(RELAY_POST),
                u32::from(MessageKind::ClinicianBolus.code()),
                bolus_payload.len() as u32,
                &bolus_payload,
                &mut [],
                t,
            ),
            // The recorded command, replayed.
            1 => send_signed(&mut core, &recorded, t),
            // Signed with the attacker's own key.
            2 => send_signed(
                &mut core,
                &command_signed_for(
                    &clinician_bolus(200, 120_000),
                    Signer::Clinic,
                    &other_key(),
                    DEVICE_ID,
                    1_000 + i,
                ),
                t,
            ),
            // A compromised dosing app asking on its own.
            _ => core.command(
                DOSING,
                u32::from(CLINICIAN_BOLUS),
                100_000,
                120_000,
                &[],
                &mut [],
                t,
            ),
        };
        let CommandResult::Failure(reason) = attempt else {
            panic!("attempt {i} accepted: {attempt:?}");
        };
        refusals.push(reason);
        assert_eq!(core.ledger().runs().len(), before_bolus, "attempt {i}");
        t += 3 * MINUTE_MS;
    }
    assert_eq!(
        refusals,
        [
            ErrorCode::Unauthenticated,
            ErrorCode::Replayed,
            ErrorCode::Unauthenticated,
            ErrorCode::Unauthenticated
        ]
        .repeat(3)
    );
    assert!(core
        .ledger()
        .runs()
        .iter()
        .all(|r| r.kind() != pump_protocol::DeliveryKind::ClinicianBolus));
    assert_eq!(core.command_counters(), counters);
    // Therapy unchanged: the basal alone, 20 000 nL/h for 34 min.
    let delivered = core.delivered_24h_nl(t);
    assert!(delivered <= 20_000 * 34 / 60 + 250, "{delivered}");
}

#[test]
fn sr_rx_007_a_refused_prescription_logs_no_unverified_claim() {
    let mut core = running(0);
    drain(&mut core, 0);
    // A forged prescription claiming serial 0xDEADBEEF.
    let forged = sign_with(&prescription(0xDEAD_BEEF), &other_key());
    assert_eq!(
        core.install_prescription(TELEMETRY, &forged, 1),
        Err(ErrorCode::InvalidSignature)
    );
    // A genuine one refused for its serial keeps its (verified) serial.
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(1), 2),
        Err(ErrorCode::ReplayedSerial)
    );
    let rejected: Vec<(u32, ErrorCode)> = drain(&mut core, 2)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::PrescriptionRejected(r) => Some((r.serial, r.reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (0, ErrorCode::InvalidSignature),
            (1, ErrorCode::ReplayedSerial)
        ]
    );
}

/// A prescription signed before protocol 1.1 (format 1) still installs; it
/// pairs no PTM and allows clinician boluses under the format-1 limits.
#[test]
fn sr_auth_006_a_format_1_prescription_installs_with_the_format_1_limits() {
    let mut core = running(0);
    assert!(core.prescription().is_some());
    let mut buf = [0u8; RELAY_PAYLOAD_MAX_LEN];
    core.relay_take(DOSING, &mut buf, 0).unwrap();
    let mut verdicts = Vec::new();
    let mut counter = 10;
    for t in [MINUTE_MS, 30 * MINUTE_MS, 62 * MINUTE_MS] {
        advance(&mut core, t, true);
        counter += 1;
        send_signed(
            &mut core,
            &clinic_command(&clinician_bolus(5, 60_000), counter),
            t,
        );
        verdicts.push(dosing_starts_clinician_bolus(&mut core, t));
        advance(&mut core, t + 2 * MINUTE_MS, true);
    }
    assert_eq!(
        verdicts,
        vec![
            CommandResult::Success,
            CommandResult::Failure(ErrorCode::ClinicianBolusLimit), // 29 min after
            CommandResult::Success,                                 // 61 min after
        ]
    );
}
