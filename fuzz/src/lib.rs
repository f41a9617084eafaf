//! The fuzz targets of issue 20, as plain functions of a byte string so that
//! libFuzzer (`fuzz_targets/*.rs`) and the stable smoke test
//! (`tests/smoke.rs`) run the same code.
//!
//! Each target feeds outside bytes to one decoder the way the pump or the
//! host does, then checks what the requirements say must hold whatever the
//! bytes were. A panic is a finding. No target may loop or allocate without
//! bound: every input is cut to [`MAX_INPUT`] bytes first.
#![forbid(unsafe_code)]

use std::path::Path;

use arbitrary::Unstructured;
use infusion_core::{CommandResult, InfusionCore, RegionState, StoredRecords};
use pump_protocol::command_auth::{
    encode_command_body, signed_command_message, CommandBody, Signer, COMMAND_FORMAT,
    MAX_COMMAND_BODY_LEN, MAX_COMMAND_PAYLOAD_LEN, MAX_SIGNED_COMMAND_MESSAGE_LEN,
};
use pump_protocol::prescription::{
    decode_body, decode_body_with_pairing, signed_message, split_signed, MAX_SIGNED_MESSAGE_LEN,
};
use pump_protocol::{
    decode_frame, AuthenticatedCommand, ErrorCode, Message, MessageKind, StreamDecoder, StreamItem,
};

// The capsule tests' fixture (board, keys, recording rig) and the oracle of
// `capsules/infusion-core/tests/oracle.rs`, shared as source.
#[path = "../../capsules/infusion-core/tests/oracle/model.rs"]
pub mod oracle_model;
#[path = "../../capsules/infusion-core/tests/support/mod.rs"]
pub mod support;

use support::{board, clinic_key, ptm_key, Core, Rig, DEVICE_ID, DOSING, TELEMETRY};

/// Inputs are cut to this many bytes.
pub const MAX_INPUT: usize = 4096;

/// A fuzz target.
pub type Target = fn(&[u8]);

/// Every target by name, for the smoke test and the campaign script.
pub const TARGETS: &[(&str, Target)] = &[
    ("stream", stream),
    ("prescription", prescription),
    ("refill", refill),
    ("relay", relay),
    ("signed_command", signed_command),
    ("dosing_record", dosing_record),
    ("saved_state", saved_state),
    ("telemetry_link", telemetry_link),
    ("rx_check", rx_check),
    ("oracle", oracle),
];

fn cut(data: &[u8]) -> &[u8] {
    &data[..data.len().min(MAX_INPUT)]
}

fn state(core: &Core) -> String {
    format!("{:?}", core.safety_state())
}

/// A running core: prescription `rx` (format 2, paired with the test PTM)
/// and 10 mL, basal running for an hour.
fn running_paired() -> Core {
    let mut core = InfusionCore::restore(board(), Rig::default(), None, 0);
    let rx = support::signed_v2(1, &support::paired(6, 0));
    core.install_prescription(TELEMETRY, &rx, 0)
        .expect("the test prescription installs");
    core.refill(
        TELEMETRY,
        0,
        10_000_000,
        support::CONCENTRATION_UG_PER_ML,
        0,
    )
    .expect("the refill is recorded");
    core.set_basal(DOSING, 40_000, 0).expect("basal starts");
    support::advance(&mut core, 3_600_000, true);
    core
}

/// `payload` signed as command `kind` by `signer` with `key`.
fn sign_raw(
    kind: u16,
    payload: &[u8],
    signer: u8,
    key: &ed25519_dalek::SigningKey,
    counter: u64,
) -> Vec<u8> {
    use ed25519_dalek::Signer as _;
    let body = CommandBody {
        format: COMMAND_FORMAT,
        device_id: DEVICE_ID,
        signer,
        counter,
        kind,
        payload: heapless::Vec::from_slice(&payload[..payload.len().min(MAX_COMMAND_PAYLOAD_LEN)])
            .expect("cut to fit"),
    };
    let mut buf = [0u8; MAX_COMMAND_BODY_LEN];
    let body = encode_command_body(&body, &mut buf)
        .expect("a body fits")
        .to_vec();
    let mut msg = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
    let msg = signed_command_message(&body, &mut msg).expect("fits");
    let mut signed = body;
    signed.extend_from_slice(&key.sign(msg).to_bytes());
    signed
}

/// Frame and stream decoders (SR-PRO-002, SR-PRO-005): arbitrary bytes in
/// arbitrary chunks never panic, and chunking changes nothing.
pub fn stream(data: &[u8]) {
    let data = cut(data);
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut whole = Vec::new();
    let mut decoder = StreamDecoder::new();
    decoder.feed(bytes, |item| whole.push(item));
    whole.extend(decoder.finish());
    let mut chunked = Vec::new();
    let mut decoder = StreamDecoder::new();
    for part in bytes.chunks(chunk) {
        decoder.feed(part, |item| chunked.push(item));
    }
    chunked.extend(decoder.finish());
    let mut pushed = Vec::new();
    let mut decoder = StreamDecoder::new();
    for &b in bytes {
        pushed.extend(decoder.push(b));
    }
    pushed.extend(decoder.finish());
    assert_eq!(whole, chunked);
    assert_eq!(whole, pushed);
    for item in &whole {
        if let StreamItem::Frame { frame, .. } = item {
            let _ = frame.message.kind_code();
        }
    }
    let _ = decode_frame(bytes);
}

/// Prescription verify and install (SR-RX-001..006): random bytes, a valid
/// prescription with bytes flipped, and any body the clinic key signs.
/// Whatever installs verifies and lies inside the hardware limits; whatever
/// is refused changes nothing.
pub fn prescription(data: &[u8]) {
    let mut u = Unstructured::new(cut(data));
    let config = board();
    let mode: u8 = u.arbitrary().unwrap_or(0);
    let bytes: Vec<u8> = match mode % 3 {
        0 => u.take_rest().to_vec(),
        1 => {
            let mut b = support::signed_v2(2, &support::paired(4, 0));
            while !u.is_empty() {
                let (Ok(at), Ok(x)) = (u.arbitrary::<u16>(), u.arbitrary::<u8>()) else {
                    break;
                };
                let i = usize::from(at) % b.len();
                b[i] ^= x;
            }
            b
        }
        _ => {
            use ed25519_dalek::Signer as _;
            let body = u.take_rest();
            let mut msg = [0u8; MAX_SIGNED_MESSAGE_LEN];
            let Ok(msg) = signed_message(body, &mut msg) else {
                return;
            };
            let mut signed = body.to_vec();
            signed.extend_from_slice(&clinic_key().sign(msg).to_bytes());
            signed
        }
    };
    if let Ok(parts) = split_signed(&bytes) {
        let _ = decode_body(parts.body);
        let _ = decode_body_with_pairing(parts.body);
    }
    let verified = infusion_core::rx::verify(&config, &bytes, 1);
    let mut core = InfusionCore::restore(config.clone(), Rig::default(), None, 0);
    let before = state(&core);
    let result = core.command(
        TELEMETRY,
        u32::from(infusion_core::command::INSTALL_PRESCRIPTION),
        bytes.len() as u32,
        0,
        &bytes,
        &mut [],
        0,
    );
    match result {
        CommandResult::Success => {
            let rx = core.prescription().expect("installed");
            let limits = &config.limits;
            let e = &rx.envelope;
            assert!(e.max_basal_rate_nl_per_h <= limits.max_rate_nl_per_h);
            assert!(e.max_bolus_nl <= limits.max_bolus_nl);
            assert!(e.max_volume_per_24h_nl <= limits.max_volume_per_24h_nl);
            assert_eq!(rx.device_id, DEVICE_ID);
            assert!(infusion_core::rx::verify(&config, &bytes, 0).is_ok());
        }
        CommandResult::Failure(_) => assert_eq!(before, state(&core), "a refusal changed state"),
        other => panic!("install answered {other:?}"),
    }
    if verified.is_ok() {
        assert_eq!(result, CommandResult::Success);
    }
}

/// The refill payload (SR-RES-003, SR-RES-005, SR-RES-006): any payload the
/// clinic signs as a refill, and any bytes on the plain refill syscall.
pub fn refill(data: &[u8]) {
    let data = cut(data);
    let mut core = running_paired();
    let reservoir = core.reservoir_nl();
    let before = state(&core);
    let plain = core.command(
        TELEMETRY,
        u32::from(infusion_core::command::REFILL),
        data.len() as u32,
        0,
        data,
        &mut [],
        3_600_000,
    );
    assert!(matches!(plain, CommandResult::Failure(_)), "{plain:?}");
    assert_eq!(before, state(&core));
    let signed = sign_raw(
        MessageKind::Refill.code(),
        data,
        Signer::Clinic.code(),
        &clinic_key(),
        100,
    );
    let result = support::send_signed(&mut core, &signed, 3_600_000);
    let capacity = board().limits.reservoir_capacity_nl;
    assert!(core.reservoir_nl() <= capacity);
    match result {
        CommandResult::Failure(ErrorCode::RefillDiscrepancy) => {
            assert_eq!(core.reservoir_nl(), reservoir, "SR-RES-006");
        }
        CommandResult::Failure(_) => assert_eq!(before, state(&core)),
        _ => {
            let payload = &data[..data.len().min(MAX_COMMAND_PAYLOAD_LEN)];
            let (refill, rest) = postcard::take_from_bytes::<pump_protocol::Refill>(payload)
                .expect("an accepted refill decodes");
            assert!(rest.is_empty(), "trailing bytes accepted");
            assert_eq!(
                refill.concentration_ug_per_ml,
                support::CONCENTRATION_UG_PER_ML
            );
            assert_eq!(
                u64::from(core.reservoir_nl()),
                u64::from(reservoir) - u64::from(refill.withdrawn_volume_nl)
                    + u64::from(refill.added_volume_nl),
                "SR-RES-003"
            );
        }
    }
}

/// Relay payloads, both directions (SR-REL-002..006, SR-TEL-008): a signed
/// command of any kind and payload from the host through the whole system
/// (telemetry app, capsule, relay, dosing app and back); and on the capsule
/// alone, the dosing app's take with any buffer and any answer, and the
/// telemetry app's read of the verdict. The relay never moves the motor.
pub fn relay(data: &[u8]) {
    let mut u = Unstructured::new(cut(data));
    if u.arbitrary::<bool>().unwrap_or(false) {
        let mut pump = started_system();
        let mut counter = 1_000;
        while !u.is_empty() {
            let (Ok(kind), Ok(ptm), Ok(len)) = (
                u.arbitrary::<u16>(),
                u.arbitrary::<bool>(),
                u.int_in_range(0..=MAX_COMMAND_PAYLOAD_LEN),
            ) else {
                break;
            };
            let payload = u.bytes(len).unwrap_or(&[]);
            let kind = match kind % 4 {
                0 => MessageKind::ClinicianBolus.code(),
                1 => MessageKind::PatientBolusRequest.code(),
                2 => MessageKind::Refill.code(),
                _ => kind,
            };
            let (signer, key) = if ptm {
                (Signer::PatientProgrammer, ptm_key())
            } else {
                (Signer::Clinic, clinic_key())
            };
            counter += 1;
            let signed = sign_raw(kind, payload, signer.code(), &key, counter);
            let message = Message::AuthenticatedCommand(AuthenticatedCommand {
                signed_command: heapless::Vec::from_slice(&signed).expect("fits"),
            });
            let bytes = pump_protocol::encode_stream_frame_vec(&pump_protocol::Frame {
                sequence: counter as u32,
                flags: 0,
                message,
            })
            .expect("encodes");
            let _ = pump.host_bytes(&bytes);
            let now = pump.now_ms();
            pump.run_until(now + 10_000);
            let _ = pump.host_receive();
        }
        return;
    }
    let mut core = running_paired();
    let now = 3_600_000;
    let steps = core.platform().steps;
    let posted = sign_raw(
        MessageKind::ClinicianBolus.code(),
        &[10, 0x80, 0x8d, 0x5b],
        Signer::Clinic.code(),
        &clinic_key(),
        50,
    );
    let _ = support::send_signed(&mut core, &posted, now);
    while !u.is_empty() {
        let (Ok(len), Ok(ticket), Ok(code), Ok(num)) = (
            u.int_in_range(0..=64usize),
            u.arbitrary::<u32>(),
            u.arbitrary::<u32>(),
            u.int_in_range(22..=25u32),
        ) else {
            break;
        };
        let mut rw = vec![0u8; len];
        let ro = u.bytes(len.min(24)).unwrap_or(&[]).to_vec();
        let caller = if num == 22 || num == 25 {
            TELEMETRY
        } else {
            DOSING
        };
        let before = state(&core);
        let taken = core.command(caller, num, ticket, code, &ro, &mut rw, now);
        assert_eq!(
            before,
            state(&core),
            "SR-REL-006: the relay changed safety state"
        );
        assert_eq!(
            core.platform().steps,
            steps,
            "SR-REL-006: the relay moved the motor"
        );
        if let CommandResult::SuccessU32U32(_, verdict) = taken {
            if num == 25 {
                let _ = infusion_core::relay::verdict_from_code(verdict);
            }
        }
        if let (CommandResult::SuccessU32U32(t, _), 23) = (taken, num) {
            let _ = core.command(DOSING, 24, t, code, &[], &mut [], now);
        }
    }
}

/// The signed-command path, command 28 (SR-AUTH-001..004): any bytes, and
/// any body signed with a real key. A command that does not verify changes
/// nothing; one that does never takes the pump outside its envelope.
pub fn signed_command(data: &[u8]) {
    let mut u = Unstructured::new(cut(data));
    let mut core = running_paired();
    let mut now = 3_600_000;
    let mut counter = 10;
    for _ in 0..64 {
        if u.is_empty() {
            break;
        }
        let Ok(mode) = u.arbitrary::<u8>() else {
            break;
        };
        let before = state(&core);
        let (bytes, genuine) = match mode % 4 {
            0 => {
                let len = u.int_in_range(0..=200).unwrap_or(0);
                (u.bytes(len).unwrap_or(&[]).to_vec(), false)
            }
            1 => {
                let kind = u.arbitrary::<u16>().unwrap_or(0);
                let len = u.int_in_range(0..=MAX_COMMAND_PAYLOAD_LEN).unwrap_or(0);
                let payload = u.bytes(len).unwrap_or(&[]).to_vec();
                counter += u64::from(u.arbitrary::<u8>().unwrap_or(1));
                let ptm = u.arbitrary::<bool>().unwrap_or(false);
                let (signer, key) = if ptm {
                    (Signer::PatientProgrammer, ptm_key())
                } else {
                    (Signer::Clinic, clinic_key())
                };
                (sign_raw(kind, &payload, signer.code(), &key, counter), true)
            }
            2 => {
                // A genuine command with one byte changed.
                counter += 1;
                let mut b = sign_raw(
                    MessageKind::Suspend.code(),
                    &[],
                    Signer::Clinic.code(),
                    &clinic_key(),
                    counter,
                );
                let i = usize::from(u.arbitrary::<u8>().unwrap_or(0)) % b.len();
                b[i] ^= u.arbitrary::<u8>().unwrap_or(1).max(1);
                (b, false)
            }
            _ => {
                now += u64::from(u.arbitrary::<u16>().unwrap_or(0) % 3_600) * 1_000;
                support::advance(&mut core, now, true);
                continue;
            }
        };
        let len = if u.arbitrary::<bool>().unwrap_or(true) {
            bytes.len() as u32
        } else {
            u.arbitrary::<u32>().unwrap_or(0)
        };
        let result = core.command(TELEMETRY, 28, len, 0, &bytes, &mut [], now);
        if !genuine {
            assert!(matches!(result, CommandResult::Failure(_)), "{result:?}");
            assert_eq!(before, state(&core), "SR-AUTH-002");
        }
        assert!(!core.platform().stepped_while_disabled);
    }
}

/// The dosing app's record (SR-PER-005, SR-DOS-015): any bytes decode or are
/// refused; a record that decodes re-encodes to the same state; and the
/// whole app restarted from it through commands 26/27 keeps running.
pub fn dosing_record(data: &[u8]) {
    let data = cut(data);
    if let Ok(restored) = dosing_core::decode_record(data) {
        let mut buf = [0u8; dosing_core::SAVED_RECORD_MAX_LEN];
        if let Ok(n) =
            dosing_core::encode_record(&restored.state, restored.saved_at_monotonic_ms, &mut buf)
        {
            let again = dosing_core::decode_record(&buf[..n]).expect("re-encoded record decodes");
            assert_eq!(again, restored, "a record does not survive re-encoding");
        }
    }
    if data.len() > 1024 {
        return;
    }
    let mut pump = started_system();
    let mut dosing = pump_system_tests::CapsuleAdapter::new(pump.kernel.clone(), DOSING);
    let now = pump.now_ms();
    let saved = pump.kernel.borrow_mut().core.command(
        DOSING,
        u32::from(infusion_core::command::SAVE_APP_RECORD),
        data.len() as u32,
        0,
        data,
        &mut [],
        now,
    );
    assert!(!matches!(saved, CommandResult::Failure(_)), "{saved:?}");
    let _ = pump.dosing.restore_record(&mut dosing, now);
    pump.run_until(now + 2 * 3_600_000);
    let _ = pump.press_bolus_button();
    pump.run_until(now + 3 * 3_600_000);
}

/// The capsule's saved state (SR-PER-001, SR-PER-003, SR-PER-007): any
/// image, a valid image with bytes flipped, and any set of records kept
/// apart. The motor is off after every restore, a restored prescription
/// still verifies, and the core runs on without panicking.
pub fn saved_state(data: &[u8]) {
    let mut u = Unstructured::new(cut(data));
    let mode: u8 = u.arbitrary().unwrap_or(0);
    let now = 7_200_000;
    let mut core = match mode % 3 {
        0 => InfusionCore::restore(board(), Rig::default(), Some(u.take_rest()), now),
        1 => {
            let mut image = running_paired().platform().saved.clone().expect("saved");
            while !u.is_empty() {
                let (Ok(at), Ok(x)) = (u.arbitrary::<u16>(), u.arbitrary::<u8>()) else {
                    break;
                };
                let i = usize::from(at) % image.len();
                image[i] ^= x;
            }
            InfusionCore::restore(board(), Rig::default(), Some(&image), now)
        }
        _ => {
            let region = |b: u8| match b % 3 {
                0 => RegionState::Blank,
                1 => RegionState::Readable,
                _ => RegionState::Damaged,
            };
            let state_region = region(u.arbitrary().unwrap_or(1));
            let floor_region = region(u.arbitrary().unwrap_or(1));
            let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
            for _ in 0..5 {
                let some = u.arbitrary::<bool>().unwrap_or(false);
                let len = u.int_in_range(0..=300usize).unwrap_or(0);
                let bytes = u.bytes(len).unwrap_or(&[]).to_vec();
                parts.push(some.then_some(bytes));
            }
            let stored = StoredRecords {
                state_region,
                floor_region,
                prescription: parts[0].as_deref(),
                therapy: parts[1].as_deref(),
                app_record: parts[2].as_deref(),
                reservation: parts[3].as_deref(),
                serial_floor: parts[4].as_deref(),
            };
            let mut core = InfusionCore::new(board(), Rig::default());
            core.restore_records(&stored, now);
            core
        }
    };
    assert!(
        !core.platform().motor_enabled,
        "SR-PER-001: motor on after a restore"
    );
    if let Some(rx) = core.prescription() {
        assert_eq!(rx.device_id, DEVICE_ID, "SR-PER-003");
    }
    let steps = core.platform().steps;
    let _ = core.set_basal(DOSING, 40_000, now);
    support::advance(&mut core, now + 6 * 3_600_000, true);
    let made = core.platform().steps - steps;
    assert!(
        made == 0 || core.prescription().is_some(),
        "SR-RX-005: steps without a prescription after a restore"
    );
    let _ = support::drain_with(&mut core, now + 6 * 3_600_000);
}

/// The system tests' pump, set up by the host: clock, prescription, refill.
fn started_system() -> pump_system_tests::Pump {
    use pump_protocol::{InstallPrescription, Refill, SetClock};
    let rx = pump_test_support::RxBuilder::new(1);
    let mut pump = pump_system_tests::Pump::new(64);
    pump.host_ok(Message::SetClock(SetClock {
        utc_time_ms: pump_test_support::UTC_2025_01_01_MS,
    }));
    let signed = rx.signed();
    pump.host_ok(Message::InstallPrescription(InstallPrescription {
        device_id: rx.build().device_id,
        prescription_serial: rx.build().serial,
        signed_prescription: heapless::Vec::from_slice(&signed).expect("fits"),
    }));
    pump.host_ok(Message::Refill(Refill {
        withdrawn_volume_nl: 0,
        added_volume_nl: 10_000_000,
        concentration_ug_per_ml: rx.build().concentration_ug_per_ml,
    }));
    pump.run_until(60_000);
    pump
}

/// The telemetry app's link input (SR-TEL-004, SR-TEL-005, SR-HOST-004):
/// any bytes from the host through `service_link`, with the whole pump
/// behind it. The app always makes progress, answers only with valid
/// frames (the harness panics on an invalid one), and therapy goes on.
pub fn telemetry_link(data: &[u8]) {
    let data = cut(data);
    let mut pump = started_system();
    let steps = pump.steps();
    let _ = pump.host_bytes(data);
    pump.run_until(pump.now_ms() + 2 * 3_600_000);
    let _ = pump.host_receive();
    assert!(pump.steps() >= steps);
}

/// `pumpctl rx check` on arbitrary TOML (SR-HOST-001, SR-HOST-007): parsing
/// and checking never panic, and a prescription the check lets through
/// encodes and sits inside the board's hardware limits.
pub fn rx_check(data: &[u8]) {
    let text = String::from_utf8_lossy(cut(data));
    let path = Path::new("fuzz.toml");
    let _ = pumpctl::druglib::DrugLibrary::parse(path, &text);
    let Ok(file) = pumpctl::rx::parse(path, &text) else {
        return;
    };
    let library = pumpctl::druglib::DrugLibrary::builtin().expect("built-in library");
    let limits = pumpctl::board::hardware_limits();
    let (report, rx) = pumpctl::rx::check(
        &file,
        &limits,
        &library,
        pumpctl::board::SIM_DEVICE_ID,
        1,
        0,
    );
    if let Some(rx) = rx {
        assert!(!report.has_errors());
        let e = &rx.envelope;
        assert!(e.max_basal_rate_nl_per_h <= limits.max_rate_nl_per_h);
        assert!(e.max_bolus_nl <= limits.max_bolus_nl);
        assert!(e.max_volume_per_24h_nl <= limits.max_volume_per_24h_nl);
        let mut buf = [0u8; pump_protocol::prescription::MAX_PRESCRIPTION_BODY_LEN];
        assert!(pump_protocol::prescription::encode_body(&rx, &mut buf).is_ok());
    }
}

/// The stateful target: the oracle of `capsules/infusion-core/tests/oracle.rs`
/// over any sequence of actions, from a factory-new or a running pump.
pub fn oracle(data: &[u8]) {
    let data = cut(data);
    let Some((&start, rest)) = data.split_first() else {
        return;
    };
    let actions = oracle_model::Action::decode_all(rest);
    let mut o = if start % 4 == 0 {
        oracle_model::Oracle::new()
    } else {
        match oracle_model::Oracle::running() {
            Ok(o) => o,
            Err(f) => panic!("the oracle's start failed: {f}"),
        }
    };
    if let Err(finding) = o.run(&actions) {
        panic!("oracle finding: {finding}");
    }
}
