//! proptest strategies for every message of the catalogue.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use pump_protocol::prescription::MAX_SIGNED_PRESCRIPTION_LEN;
use pump_protocol::*;

/// A code-enum value: mostly codes this version defines, sometimes an
/// `Other(code)` with a code it does not define (as a later minor version
/// may send).
macro_rules! code_enum_strategy {
    ($name:ident, $ty:ident) => {
        pub fn $name() -> BoxedStrategy<$ty> {
            prop_oneof![
                3 => select($ty::ALL),
                1 => any::<u16>()
                    .prop_map($ty::from_code)
                    .prop_filter("a code this version defines", |v| v.name() == "Other"),
            ]
            .boxed()
        }
    };
}

code_enum_strategy!(pump_state, PumpState);
code_enum_strategy!(delivery_kind, DeliveryKind);
code_enum_strategy!(delivery_outcome, DeliveryOutcome);
code_enum_strategy!(alarm_priority, AlarmPriority);
code_enum_strategy!(alarm_code, AlarmCode);
code_enum_strategy!(error_code, ErrorCode);

/// A kind code outside the catalogue.
pub fn unknown_kind() -> impl Strategy<Value = u16> {
    any::<u16>().prop_filter("a kind this version defines", |k| {
        MessageKind::from_code(*k).is_none()
    })
}

/// A [`Message::Unknown`] with a kind outside the catalogue and any payload
/// a frame can carry.
pub fn unknown() -> BoxedStrategy<Message> {
    (
        unknown_kind(),
        vec(any::<u8>(), 0..=MAX_UNKNOWN_PAYLOAD_LEN),
    )
        .prop_map(|(kind, payload)| {
            Message::Unknown(Unknown {
                kind,
                payload: heapless::Vec::from_slice(&payload).expect("bounded by the strategy"),
            })
        })
        .boxed()
}

/// Any message of `kind`. The match has no wildcard, so a kind added to the
/// catalogue without a strategy here does not compile.
pub fn message_of(kind: MessageKind) -> BoxedStrategy<Message> {
    use MessageKind as K;
    let t = any::<u64>;
    match kind {
        K::StatusSnapshot => (
            t(),
            pump_state(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            option::of(alarm_code()),
            option::of(any::<u64>()),
        )
            .prop_map(|(a, b, c, d, e, f, g, h, i, j)| {
                Message::StatusSnapshot(StatusSnapshot {
                    time_ms: a,
                    pump_state: b,
                    prescription_serial: c,
                    basal_rate_nl_per_h: d,
                    bolus_remaining_nl: e,
                    reservoir_nl: f,
                    delivered_24h_nl: g,
                    patient_boluses_24h: h,
                    top_alarm: i,
                    refill_by_time_ms: j,
                })
            })
            .boxed(),
        K::DeliveryRecord => (
            t(),
            delivery_kind(),
            delivery_outcome(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(a, b, c, d, e)| {
                Message::DeliveryRecord(DeliveryRecord {
                    time_ms: a,
                    delivery_kind: b,
                    outcome: c,
                    volume_nl: d,
                    duration_ms: e,
                })
            })
            .boxed(),
        K::PatientBolusRequested => t()
            .prop_map(|a| Message::PatientBolusRequested(PatientBolusRequested { time_ms: a }))
            .boxed(),
        K::PatientBolusGranted => (t(), any::<u32>(), any::<u32>(), any::<u8>())
            .prop_map(|(a, b, c, d)| {
                Message::PatientBolusGranted(PatientBolusGranted {
                    time_ms: a,
                    volume_nl: b,
                    duration_ms: c,
                    remaining_24h: d,
                })
            })
            .boxed(),
        K::PatientBolusDenied => (t(), error_code(), any::<u32>())
            .prop_map(|(a, b, c)| {
                Message::PatientBolusDenied(PatientBolusDenied {
                    time_ms: a,
                    reason: b,
                    lockout_remaining_ms: c,
                })
            })
            .boxed(),
        K::AlarmRaised => (t(), alarm_code(), alarm_priority())
            .prop_map(|(a, b, c)| {
                Message::AlarmRaised(AlarmRaised {
                    time_ms: a,
                    code: b,
                    priority: c,
                })
            })
            .boxed(),
        K::AlarmAcknowledged => (t(), alarm_code(), any::<u32>())
            .prop_map(|(a, b, c)| {
                Message::AlarmAcknowledged(AlarmAcknowledged {
                    time_ms: a,
                    code: b,
                    silence_duration_ms: c,
                })
            })
            .boxed(),
        K::AlarmCleared => (t(), alarm_code())
            .prop_map(|(a, b)| {
                Message::AlarmCleared(AlarmCleared {
                    time_ms: a,
                    code: b,
                })
            })
            .boxed(),
        K::ReservoirLevel => (t(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c)| {
                Message::ReservoirLevel(ReservoirLevel {
                    time_ms: a,
                    volume_nl: b,
                    low_threshold_nl: c,
                })
            })
            .boxed(),
        K::ReservoirRefilled => (t(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c, d, e)| {
                Message::ReservoirRefilled(ReservoirRefilled {
                    time_ms: a,
                    withdrawn_volume_nl: b,
                    added_volume_nl: c,
                    volume_nl: d,
                    concentration_ug_per_ml: e,
                })
            })
            .boxed(),
        K::BatteryState => (t(), any::<u16>(), any::<u8>(), any::<bool>())
            .prop_map(|(a, b, c, d)| {
                Message::BatteryState(BatteryState {
                    time_ms: a,
                    voltage_mv: b,
                    charge_percent: c,
                    replacement_recommended: d,
                })
            })
            .boxed(),
        K::AppFault => (t(), any::<u32>(), any::<u16>())
            .prop_map(|(a, b, c)| {
                Message::AppFault(AppFault {
                    time_ms: a,
                    app_id: b,
                    fault_code: c,
                })
            })
            .boxed(),
        K::AppRestarted => (t(), any::<u32>(), any::<u16>())
            .prop_map(|(a, b, c)| {
                Message::AppRestarted(AppRestarted {
                    time_ms: a,
                    app_id: b,
                    restart_count: c,
                })
            })
            .boxed(),
        K::LogGap => (t(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c)| {
                Message::LogGap(LogGap {
                    time_ms: a,
                    first_missing_sequence: b,
                    missing_count: c,
                })
            })
            .boxed(),
        K::DeliveryDenied => (
            t(),
            delivery_kind(),
            any::<u32>(),
            any::<u32>(),
            error_code(),
        )
            .prop_map(|(a, b, c, d, e)| {
                Message::DeliveryDenied(DeliveryDenied {
                    time_ms: a,
                    delivery_kind: b,
                    requested_volume_nl: c,
                    requested_rate_nl_per_h: d,
                    reason: e,
                })
            })
            .boxed(),
        K::AccessDenied => (t(), any::<u32>(), any::<u16>())
            .prop_map(|(a, b, c)| {
                Message::AccessDenied(AccessDenied {
                    time_ms: a,
                    app_id: b,
                    command: c,
                })
            })
            .boxed(),
        K::PrescriptionInstalled => (t(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c)| {
                Message::PrescriptionInstalled(PrescriptionInstalled {
                    time_ms: a,
                    serial: b,
                    concentration_ug_per_ml: c,
                })
            })
            .boxed(),
        K::PrescriptionRejected => (t(), any::<u32>(), error_code())
            .prop_map(|(a, b, c)| {
                Message::PrescriptionRejected(PrescriptionRejected {
                    time_ms: a,
                    serial: b,
                    reason: c,
                })
            })
            .boxed(),
        K::ClockSet => (t(), t())
            .prop_map(|(a, b)| {
                Message::ClockSet(ClockSet {
                    time_ms: a,
                    previous_time_ms: b,
                })
            })
            .boxed(),
        K::PumpStateChanged => (t(), pump_state())
            .prop_map(|(a, b)| {
                Message::PumpStateChanged(PumpStateChanged {
                    time_ms: a,
                    pump_state: b,
                })
            })
            .boxed(),
        K::CommandAuthenticated => (t(), any::<u8>(), any::<u64>(), any::<u16>())
            .prop_map(|(a, b, c, d)| {
                Message::CommandAuthenticated(CommandAuthenticated {
                    time_ms: a,
                    signer: b,
                    counter: c,
                    command_kind: d,
                })
            })
            .boxed(),
        K::CommandRefused => (t(), error_code())
            .prop_map(|(a, b)| {
                Message::CommandRefused(CommandRefused {
                    time_ms: a,
                    reason: b,
                })
            })
            .boxed(),
        K::RefillDiscrepancy => (t(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c)| {
                Message::RefillDiscrepancy(RefillDiscrepancy {
                    time_ms: a,
                    recorded_nl: b,
                    withdrawn_volume_nl: c,
                })
            })
            .boxed(),
        K::AccessDeniedRepeated => (t(), t(), any::<u32>(), any::<u32>(), any::<u16>())
            .prop_map(|(a, b, c, d, e)| {
                Message::AccessDeniedRepeated(AccessDeniedRepeated {
                    time_ms: a,
                    first_time_ms: b,
                    app_id: c,
                    count: d,
                    last_command: e,
                })
            })
            .boxed(),
        K::KernelStarted => (t(), any::<u8>(), any::<u16>())
            .prop_map(|(a, b, c)| {
                Message::KernelStarted(KernelStarted {
                    time_ms: a,
                    reset_reason: b,
                    watchdog_resets: c,
                })
            })
            .boxed(),
        K::ServiceOutlook => (
            (t(), any::<u8>(), any::<u32>(), any::<u32>()),
            (
                option::of(t()),
                option::of(t()),
                any::<bool>(),
                any::<bool>(),
                option::of(t()),
            ),
        )
            .prop_map(|((a, b, c, d), (e, f, g, h, i))| {
                Message::ServiceOutlook(ServiceOutlook {
                    time_ms: a,
                    charge_percent: b,
                    remaining_charge_uah: c,
                    average_current_na: d,
                    eri_time_ms: e,
                    eos_time_ms: f,
                    replacement_recommended: g,
                    end_of_service: h,
                    refill_by_time_ms: i,
                })
            })
            .boxed(),
        K::SelfTestFailed => (t(), any::<u8>(), any::<u32>())
            .prop_map(|(a, b, c)| {
                Message::SelfTestFailed(SelfTestFailed {
                    time_ms: a,
                    test: b,
                    detail: c,
                })
            })
            .boxed(),
        K::GetServiceOutlook => Just(Message::GetServiceOutlook(GetServiceOutlook {})).boxed(),
        K::AuthenticatedCommand => vec(
            any::<u8>(),
            0..=pump_protocol::command_auth::MAX_SIGNED_COMMAND_LEN,
        )
        .prop_map(|a| {
            Message::AuthenticatedCommand(AuthenticatedCommand {
                signed_command: heapless::Vec::from_slice(&a).expect("bounded"),
            })
        })
        .boxed(),
        K::GetStatus => Just(Message::GetStatus(GetStatus {})).boxed(),
        K::InstallPrescription => (
            any::<u32>(),
            any::<u32>(),
            vec(any::<u8>(), 0..=MAX_SIGNED_PRESCRIPTION_LEN),
        )
            .prop_map(|(a, b, c)| {
                Message::InstallPrescription(InstallPrescription {
                    device_id: a,
                    prescription_serial: b,
                    signed_prescription: heapless::Vec::from_slice(&c)
                        .expect("bounded by the strategy"),
                })
            })
            .boxed(),
        K::ClinicianBolus => (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| {
                Message::ClinicianBolus(ClinicianBolus {
                    dose_ug: a,
                    duration_ms: b,
                })
            })
            .boxed(),
        K::PatientBolusRequest => {
            Just(Message::PatientBolusRequest(PatientBolusRequest {})).boxed()
        }
        K::Refill => (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c)| {
                Message::Refill(Refill {
                    withdrawn_volume_nl: a,
                    added_volume_nl: b,
                    concentration_ug_per_ml: c,
                })
            })
            .boxed(),
        K::Suspend => Just(Message::Suspend(Suspend {})).boxed(),
        K::Resume => Just(Message::Resume(Resume {})).boxed(),
        K::AcknowledgeAlarm => alarm_code()
            .prop_map(|code| Message::AcknowledgeAlarm(AcknowledgeAlarm { code }))
            .boxed(),
        K::ReadLog => (any::<u32>(), any::<u16>())
            .prop_map(|(a, b)| {
                Message::ReadLog(ReadLog {
                    from_sequence: a,
                    max_frames: b,
                })
            })
            .boxed(),
        K::SetClock => t()
            .prop_map(|a| Message::SetClock(SetClock { utc_time_ms: a }))
            .boxed(),
        K::ClearFault => alarm_code()
            .prop_map(|code| Message::ClearFault(ClearFault { code }))
            .boxed(),
        K::Ack => any::<u16>()
            .prop_map(|a| Message::Ack(Ack { request_kind: a }))
            .boxed(),
        K::Nack => (any::<u16>(), error_code())
            .prop_map(|(a, b)| {
                Message::Nack(Nack {
                    request_kind: a,
                    error: b,
                })
            })
            .boxed(),
        K::LogChunkEnd => (any::<u32>(), any::<u32>(), any::<bool>())
            .prop_map(|(a, b, c)| {
                Message::LogChunkEnd(LogChunkEnd {
                    next_sequence: a,
                    oldest_sequence: b,
                    more: c,
                })
            })
            .boxed(),
    }
}

/// Any message of a known kind.
pub fn known_message() -> BoxedStrategy<Message> {
    select(MessageKind::ALL).prop_flat_map(message_of).boxed()
}

/// Any message, [`Message::Unknown`] included.
pub fn message() -> BoxedStrategy<Message> {
    prop_oneof![9 => known_message(), 1 => unknown()].boxed()
}

/// Any frame: any sequence number, any flags, any message.
pub fn frame() -> BoxedStrategy<Frame> {
    (any::<u32>(), any::<u8>(), message())
        .prop_map(|(sequence, flags, message)| Frame {
            sequence,
            flags,
            message,
        })
        .boxed()
}

/// Any frame of a known kind.
pub fn known_frame() -> BoxedStrategy<Frame> {
    (any::<u32>(), any::<u8>(), known_message())
        .prop_map(|(sequence, flags, message)| Frame {
            sequence,
            flags,
            message,
        })
        .boxed()
}

/// Line noise: arbitrary bytes, or arbitrary bytes with no `0x00`.
pub fn garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..64),
        vec(1u8..=255, 0..64),
        vec(prop_oneof![Just(0u8), any::<u8>()], 0..64),
        // Longer than any stream item may be.
        vec(1u8..=255, MAX_ENCODED_FRAME_LEN..MAX_ENCODED_FRAME_LEN + 40),
    ]
    .boxed()
}
