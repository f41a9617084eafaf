//! Shared by the integration tests: one realistic example frame per message
//! kind, and helpers to build and print raw frames.
#![allow(dead_code)] // Each test binary uses a different subset.

pub mod arb;

use std::fmt::Write as _;

use pump_protocol::prescription::{
    encode_body, BasalStep, BolusProgram, Envelope, PatientBolusProgram, Prescription,
    SilencePolicy, Therapy, MAX_PRESCRIPTION_BODY_LEN, PRESCRIPTION_FORMAT, SIGNATURE_LEN,
};
use pump_protocol::*;

/// 2026-03-14T09:26:53.589Z, the pump's clock in every example.
pub const T0_MS: u64 = 1_773_480_413_589;

/// Device id of the example implant.
pub const DEVICE_ID: u32 = 0x00C0_FFEE;

/// The example prescription: intrathecal morphine, 10 mg/mL, 1.2 mg/day
/// basal in two steps, a patient bolus of 0.1 mg with a 2 h lockout.
pub fn example_prescription() -> Prescription {
    let mut basal_steps = heapless::Vec::new();
    for step in [
        BasalStep {
            start_minute_of_day: 0,
            rate_ug_per_day: 1_100,
        },
        BasalStep {
            start_minute_of_day: 8 * 60,
            rate_ug_per_day: 1_300,
        },
    ] {
        basal_steps.push(step).expect("two steps fit");
    }
    let mut drug_name = heapless::String::new();
    drug_name.push_str("morphine").expect("short name");
    Prescription {
        format: PRESCRIPTION_FORMAT,
        device_id: DEVICE_ID,
        serial: 7,
        issued_time_ms: T0_MS - 86_400_000,
        drug_name,
        concentration_ug_per_ml: 10_000,
        envelope: Envelope {
            max_basal_rate_nl_per_h: 8_000,
            max_bolus_nl: 20_000,
            min_patient_bolus_lockout_ms: 7_200_000,
            max_patient_boluses_per_24h: 6,
            max_volume_per_24h_nl: 300_000,
            reservoir_low_threshold_nl: 2_000_000,
            dosing_checkin_timeout_ms: 60_000,
            silence_policy: SilencePolicy::ContinueBasal {
                rate_nl_per_h: 4_583,
            },
        },
        therapy: Therapy {
            basal_steps,
            clinician_bolus: Some(BolusProgram {
                dose_ug: 200,
                duration_ms: 1_800_000,
            }),
            patient_bolus: Some(PatientBolusProgram {
                dose_ug: 100,
                duration_ms: 600_000,
                lockout_ms: 7_200_000,
                max_per_24h: 6,
            }),
            catheter_volume_nl: 250_000,
        },
    }
}

/// The example prescription's body followed by a placeholder signature
/// (bytes `0xA0..0xE0`; the protocol layer does not verify signatures).
pub fn example_signed_prescription() -> Vec<u8> {
    let mut buf = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body(&example_prescription(), &mut buf).expect("body fits");
    let mut signed = body.to_vec();
    signed.extend((0..SIGNATURE_LEN).map(|i| 0xA0 + i as u8));
    signed
}

/// A signed `Suspend` from the clinic, with a placeholder signature (the
/// layout is what is pinned here; verification is the capsule's).
pub fn example_signed_command() -> Vec<u8> {
    let body = pump_protocol::command_auth::CommandBody {
        format: pump_protocol::command_auth::COMMAND_FORMAT,
        device_id: DEVICE_ID,
        signer: pump_protocol::command_auth::Signer::Clinic.code(),
        counter: T0_MS + 1_599_000,
        kind: MessageKind::Suspend.code(),
        payload: heapless::Vec::new(),
    };
    let mut buf = [0u8; pump_protocol::command_auth::MAX_COMMAND_BODY_LEN];
    let body =
        pump_protocol::command_auth::encode_command_body(&body, &mut buf).expect("body fits");
    let mut signed = body.to_vec();
    signed.extend((0..SIGNATURE_LEN).map(|i| 0xC0 + i as u8));
    signed
}

/// One realistic frame per message kind (sequence numbers as a pump session
/// would have them: events count up, a response echoes its request's).
pub fn examples() -> Vec<Frame> {
    let t = T0_MS;
    let event = |sequence: u32, message: Message| Frame {
        sequence,
        flags: 0,
        message,
    };
    vec![
        event(
            41_873,
            Message::StatusSnapshot(StatusSnapshot {
                time_ms: t,
                pump_state: PumpState::Running,
                prescription_serial: 7,
                basal_rate_nl_per_h: 5_417,
                bolus_remaining_nl: 0,
                reservoir_nl: 14_250_000,
                delivered_24h_nl: 121_500,
                patient_boluses_24h: 2,
                top_alarm: Some(AlarmCode::ReservoirLow),
                refill_by_time_ms: Some(t + 21 * 86_400_000),
            }),
        ),
        Frame {
            sequence: 41_874,
            // A stored record replayed by a log read.
            flags: flags::FROM_LOG,
            message: Message::DeliveryRecord(DeliveryRecord {
                time_ms: t + 60_000,
                delivery_kind: DeliveryKind::Basal,
                outcome: DeliveryOutcome::Checkpoint,
                volume_nl: 90,
                duration_ms: 60_000,
            }),
        },
        event(
            41_875,
            Message::PatientBolusRequested(PatientBolusRequested {
                time_ms: t + 61_250,
            }),
        ),
        event(
            41_876,
            Message::PatientBolusGranted(PatientBolusGranted {
                time_ms: t + 61_260,
                volume_nl: 10_000,
                duration_ms: 600_000,
                remaining_24h: 3,
            }),
        ),
        event(
            41_877,
            Message::PatientBolusDenied(PatientBolusDenied {
                time_ms: t + 1_800_000,
                reason: ErrorCode::LockoutActive,
                lockout_remaining_ms: 5_461_260,
            }),
        ),
        event(
            41_878,
            Message::AlarmRaised(AlarmRaised {
                time_ms: t + 3_600_000,
                code: AlarmCode::ReservoirLow,
                priority: AlarmPriority::Medium,
            }),
        ),
        event(
            41_879,
            Message::AlarmAcknowledged(AlarmAcknowledged {
                time_ms: t + 3_612_000,
                code: AlarmCode::ReservoirLow,
                silence_duration_ms: 900_000,
            }),
        ),
        event(
            41_880,
            Message::AlarmCleared(AlarmCleared {
                time_ms: t + 7_200_000,
                code: AlarmCode::ReservoirLow,
            }),
        ),
        event(
            41_881,
            Message::ReservoirLevel(ReservoirLevel {
                time_ms: t + 600_000,
                volume_nl: 14_249_100,
                low_threshold_nl: 2_000_000,
            }),
        ),
        event(
            41_882,
            Message::ReservoirRefilled(ReservoirRefilled {
                time_ms: t + 7_180_000,
                withdrawn_volume_nl: 1_850_000,
                added_volume_nl: 18_000_000,
                volume_nl: 18_000_000,
                concentration_ug_per_ml: 10_000,
            }),
        ),
        event(
            41_883,
            Message::BatteryState(BatteryState {
                time_ms: t + 900_000,
                voltage_mv: 3_012,
                charge_percent: 71,
                replacement_recommended: false,
            }),
        ),
        event(
            41_884,
            Message::AppFault(AppFault {
                time_ms: t + 1_000_000,
                app_id: 2,
                fault_code: 3,
            }),
        ),
        event(
            41_885,
            Message::AppRestarted(AppRestarted {
                time_ms: t + 1_000_150,
                app_id: 2,
                restart_count: 1,
            }),
        ),
        event(
            41_886,
            Message::LogGap(LogGap {
                time_ms: t + 1_000_200,
                first_missing_sequence: 41_790,
                missing_count: 12,
            }),
        ),
        event(
            41_887,
            Message::DeliveryDenied(DeliveryDenied {
                time_ms: t + 1_100_000,
                delivery_kind: DeliveryKind::ClinicianBolus,
                requested_volume_nl: 25_000,
                requested_rate_nl_per_h: 50_000,
                reason: ErrorCode::BolusAboveEnvelope,
            }),
        ),
        event(
            41_888,
            Message::AccessDenied(AccessDenied {
                time_ms: t + 1_200_000,
                app_id: 4,
                command: 7,
            }),
        ),
        event(
            41_889,
            Message::PrescriptionInstalled(PrescriptionInstalled {
                time_ms: t + 1_300_000,
                serial: 7,
                concentration_ug_per_ml: 10_000,
            }),
        ),
        event(
            41_890,
            Message::PrescriptionRejected(PrescriptionRejected {
                time_ms: t + 1_310_000,
                serial: 6,
                reason: ErrorCode::ReplayedSerial,
            }),
        ),
        event(
            41_891,
            Message::ClockSet(ClockSet {
                time_ms: t + 1_400_000,
                previous_time_ms: t + 1_399_212,
            }),
        ),
        event(
            41_892,
            Message::PumpStateChanged(PumpStateChanged {
                time_ms: t + 1_500_000,
                pump_state: PumpState::Suspended,
            }),
        ),
        event(
            41_894,
            Message::CommandAuthenticated(CommandAuthenticated {
                time_ms: t + 1_600_000,
                signer: 1,
                counter: t + 1_599_000,
                command_kind: MessageKind::Suspend.code(),
            }),
        ),
        event(
            41_895,
            Message::CommandRefused(CommandRefused {
                time_ms: t + 1_610_000,
                reason: ErrorCode::Replayed,
            }),
        ),
        event(
            41_896,
            Message::RefillDiscrepancy(RefillDiscrepancy {
                time_ms: t + 1_620_000,
                recorded_nl: 10_000_000,
                withdrawn_volume_nl: 15_000_000,
            }),
        ),
        event(
            41_897,
            Message::AccessDeniedRepeated(AccessDeniedRepeated {
                time_ms: t + 1_630_000,
                first_time_ms: t + 1_629_000,
                app_id: 0xF000_0003,
                count: 22,
                last_command: 27,
            }),
        ),
        event(
            41_898,
            Message::KernelStarted(KernelStarted {
                time_ms: t + 1_640_000,
                reset_reason: 2,
                watchdog_resets: 2,
            }),
        ),
        event(
            41_899,
            Message::ServiceOutlook(ServiceOutlook {
                time_ms: t + 1_650_000,
                charge_percent: 83,
                remaining_charge_uah: 1_012_345_678,
                average_current_na: 6_480,
                eri_time_ms: Some(t + 5_100 * 86_400_000),
                eos_time_ms: Some(t + 5_200 * 86_400_000),
                replacement_recommended: false,
                end_of_service: false,
                refill_by_time_ms: Some(t + 58 * 86_400_000),
            }),
        ),
        event(
            41_900,
            Message::SelfTestFailed(SelfTestFailed {
                time_ms: t + 1_660_000,
                test: 2,
                detail: 0x1234_5678,
            }),
        ),
        event(301, Message::GetStatus(GetStatus {})),
        event(312, Message::GetServiceOutlook(GetServiceOutlook {})),
        event(
            302,
            Message::InstallPrescription(InstallPrescription {
                device_id: DEVICE_ID,
                prescription_serial: 7,
                signed_prescription: heapless::Vec::from_slice(&example_signed_prescription())
                    .expect("fits"),
            }),
        ),
        event(
            303,
            Message::ClinicianBolus(ClinicianBolus {
                dose_ug: 200,
                duration_ms: 1_800_000,
            }),
        ),
        event(304, Message::PatientBolusRequest(PatientBolusRequest {})),
        event(
            305,
            Message::Refill(Refill {
                withdrawn_volume_nl: 1_850_000,
                added_volume_nl: 18_000_000,
                concentration_ug_per_ml: 10_000,
            }),
        ),
        event(306, Message::Suspend(Suspend {})),
        event(307, Message::Resume(Resume {})),
        event(
            308,
            Message::AcknowledgeAlarm(AcknowledgeAlarm {
                code: AlarmCode::ReservoirLow,
            }),
        ),
        event(
            309,
            Message::ReadLog(ReadLog {
                from_sequence: 41_000,
                max_frames: 64,
            }),
        ),
        event(
            310,
            Message::SetClock(SetClock {
                utc_time_ms: t + 1_400_000,
            }),
        ),
        event(
            311,
            Message::ClearFault(ClearFault {
                code: AlarmCode::MotorStall,
            }),
        ),
        event(
            312,
            Message::AuthenticatedCommand(AuthenticatedCommand {
                signed_command: heapless::Vec::from_slice(&example_signed_command()).expect("fits"),
            }),
        ),
        event(
            305,
            Message::Ack(Ack {
                request_kind: MessageKind::Refill.code(),
            }),
        ),
        event(
            303,
            Message::Nack(Nack {
                request_kind: MessageKind::ClinicianBolus.code(),
                error: ErrorCode::DailyLimitReached,
            }),
        ),
        event(
            309,
            Message::LogChunkEnd(LogChunkEnd {
                next_sequence: 41_064,
                oldest_sequence: 12_001,
                more: true,
            }),
        ),
    ]
}

/// The example frame of `kind`, if there is exactly one.
pub fn example(kind: MessageKind) -> Option<Frame> {
    let mut matching = examples()
        .into_iter()
        .filter(|f| f.message.kind() == Some(kind));
    let first = matching.next()?;
    matching.next().is_none().then_some(first)
}

/// One example frame carrying each code value added after 1.0, by the
/// code's enum and name (`Unconfirmed` of `DeliveryOutcome`). Its golden
/// file, in the directory of the version that added the code, is
/// [`added_code_stem`]`.bin`. A code added to a later version needs an arm
/// here; `tests/golden.rs` says which are missing.
pub fn added_code_example(enum_name: &str, name: &str) -> Option<Frame> {
    let t = T0_MS;
    let message = match (enum_name, name) {
        ("DeliveryOutcome", "Unconfirmed") => Message::DeliveryRecord(DeliveryRecord {
            time_ms: t + 2_000_000,
            delivery_kind: DeliveryKind::PatientBolus,
            outcome: DeliveryOutcome::Unconfirmed,
            // Steps reserved for the bolus running at a reset, 3 s before it.
            volume_nl: 250,
            duration_ms: 3_000,
        }),
        ("AlarmCode", "RefillDiscrepancy") => Message::AlarmRaised(AlarmRaised {
            time_ms: t + 1_620_000,
            code: AlarmCode::RefillDiscrepancy,
            priority: AlarmPriority::High,
        }),
        ("AlarmCode", "EndOfService") => Message::AlarmRaised(AlarmRaised {
            time_ms: t + 1_640_000,
            code: AlarmCode::EndOfService,
            priority: AlarmPriority::High,
        }),
        ("AlarmCode", "RepeatedResets") => Message::AlarmRaised(AlarmRaised {
            time_ms: t + 1_640_000,
            code: AlarmCode::RepeatedResets,
            priority: AlarmPriority::Medium,
        }),
        ("AlarmCode", "UncommandedMotion") => Message::AlarmRaised(AlarmRaised {
            time_ms: t + 1_670_000,
            code: AlarmCode::UncommandedMotion,
            priority: AlarmPriority::High,
        }),
        ("AlarmCode", "SuspendedTooLong") => Message::AlarmRaised(AlarmRaised {
            time_ms: t + 1_680_000,
            code: AlarmCode::SuspendedTooLong,
            priority: AlarmPriority::Medium,
        }),
        ("AlarmCode", "RepeatedFaults") => Message::AlarmRaised(AlarmRaised {
            time_ms: t + 1_690_000,
            code: AlarmCode::RepeatedFaults,
            priority: AlarmPriority::Medium,
        }),
        ("AlarmCode", "SelfTestFailed") => Message::AlarmRaised(AlarmRaised {
            time_ms: t + 1_660_000,
            code: AlarmCode::SelfTestFailed,
            priority: AlarmPriority::High,
        }),
        ("ErrorCode", name) => {
            let error = ErrorCode::ALL.iter().copied().find(|e| e.name() == name)?;
            if error.since() == Some((1, 0)) {
                return None;
            }
            Message::Nack(Nack {
                request_kind: MessageKind::AuthenticatedCommand.code(),
                error,
            })
        }
        _ => return None,
    };
    Some(Frame {
        sequence: 41_893,
        flags: 0,
        message,
    })
}

/// A code value of one of the code enumerations, with the version that
/// added it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeValue {
    pub enum_name: &'static str,
    pub name: &'static str,
    pub code: u16,
    pub since: (u8, u8),
}

/// Every code value of every code enumeration (§4.2), in table order.
pub fn code_values() -> Vec<CodeValue> {
    macro_rules! values {
        ($($ty:ident),* $(,)?) => {{
            let mut all = Vec::new();
            $(
                for v in $ty::ALL {
                    all.push(CodeValue {
                        enum_name: stringify!($ty),
                        name: v.name(),
                        code: v.code(),
                        since: v.since().expect("a known code has a version"),
                    });
                }
            )*
            all
        }};
    }
    values!(
        PumpState,
        DeliveryKind,
        DeliveryOutcome,
        AlarmPriority,
        AlarmCode,
        ErrorCode
    )
}

/// The golden file stem of the example of an added code value:
/// `<Kind>.<Enum>.<Name>`, such as `DeliveryRecord.DeliveryOutcome.Unconfirmed`.
pub fn added_code_stem(value: &CodeValue, frame: &Frame) -> String {
    let kind = frame.message.kind().expect("examples are of known kinds");
    format!("{}.{}.{}", kind.name(), value.enum_name, value.name)
}

/// The examples of the code values `version` added, with their golden file
/// stems.
pub fn added_code_examples(version: (u8, u8)) -> Vec<(String, Frame)> {
    code_values()
        .into_iter()
        .filter(|v| v.since == version && version != (1, 0))
        .filter_map(|v| {
            let frame = added_code_example(v.enum_name, v.name)?;
            Some((added_code_stem(&v, &frame), frame))
        })
        .collect()
}

/// Encodes a frame; panics (fails the test) if it does not encode.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = encode_frame(frame, &mut buf).expect("example encodes");
    buf[..len].to_vec()
}

/// Encodes a frame as a sender of `major.minor` would (only the minor may
/// differ from this crate's version): the header's minor byte and the CRC
/// are the only differences.
pub fn encode_as(frame: &Frame, (major, minor): (u8, u8)) -> Vec<u8> {
    assert_eq!(major, VERSION_MAJOR, "another major has another layout");
    let mut bytes = encode(frame);
    if bytes[3] != minor {
        bytes[3] = minor;
        fix_crc(&mut bytes);
    }
    bytes
}

/// A frame's bytes as a stream item: `00 || COBS(frame) || 00`.
pub fn stream_item(frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; cobs::max_encoding_length(frame.len()) + 2];
    let n = cobs::encode(frame, &mut out[1..]);
    out.truncate(n + 2);
    out[n + 1] = 0;
    out
}

/// The golden frames directory of `major.minor`.
pub fn golden_dir((major, minor): (u8, u8)) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("v{major}.{minor}"))
}

/// The golden frame `<stem>.bin` of `version`, if there is one.
pub fn golden(version: (u8, u8), stem: &str) -> Option<Vec<u8>> {
    std::fs::read(golden_dir(version).join(format!("{stem}.bin"))).ok()
}

/// Header fields of a hand-built frame.
#[derive(Clone, Copy, Debug)]
pub struct RawHeader {
    pub major: u8,
    pub minor: u8,
    pub kind: u16,
    pub flags: u8,
    pub reserved: u8,
    pub sequence: u32,
}

impl RawHeader {
    pub fn v1_0(kind: u16) -> Self {
        Self {
            major: 1,
            minor: 0,
            kind,
            flags: 0,
            reserved: 0,
            sequence: 1,
        }
    }
}

/// Builds a frame byte by byte, independently of the crate's encoder, with a
/// correct payload length and CRC-32C.
pub fn raw_frame(header: RawHeader, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len() + CRC_LEN);
    frame.extend_from_slice(b"IP");
    frame.push(header.major);
    frame.push(header.minor);
    frame.extend_from_slice(&header.kind.to_le_bytes());
    frame.push(header.flags);
    frame.push(header.reserved);
    frame.extend_from_slice(&header.sequence.to_le_bytes());
    frame.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    frame.extend_from_slice(payload);
    let crc = CRC32C.checksum(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

/// Recomputes the CRC trailer of a frame whose covered bytes were edited.
pub fn fix_crc(frame: &mut [u8]) {
    let covered = frame.len() - CRC_LEN;
    let crc = CRC32C.checksum(&frame[..covered]);
    frame[covered..].copy_from_slice(&crc.to_le_bytes());
}

/// Lower-case hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Hex in rows of 16 bytes separated by spaces.
pub fn hex_rows(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|row| {
            row.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A frame's bytes split into header fields, payload and CRC, for review.
pub fn annotate(frame: &[u8]) -> String {
    let field = |range: std::ops::Range<usize>| {
        frame[range]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let payload_end = frame.len() - CRC_LEN;
    let payload = &frame[HEADER_LEN..payload_end];
    let mut out = String::new();
    let _ = writeln!(out, "length       {} bytes", frame.len());
    let _ = writeln!(out, "magic        {}", field(0..2));
    let _ = writeln!(out, "version      {}", field(2..4));
    let _ = writeln!(out, "kind         {}", field(4..6));
    let _ = writeln!(out, "flags        {}", field(6..7));
    let _ = writeln!(out, "reserved     {}", field(7..8));
    let _ = writeln!(out, "sequence     {}", field(8..12));
    let _ = writeln!(out, "payload_len  {}", field(12..14));
    let _ = writeln!(out, "payload      ({} bytes)", payload.len());
    for row in hex_rows(payload).lines() {
        let _ = writeln!(out, "  {row}");
    }
    let _ = writeln!(out, "crc32c       {}", field(payload_end..frame.len()));
    let _ = write!(out, "hex          {}", hex(frame));
    out
}
