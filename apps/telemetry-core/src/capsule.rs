//! What the telemetry app asks of the infusion capsule (the `Telemetry`
//! role's rows of the capsule's command table) and of the dosing app.

use pump_protocol::{AlarmCode, ClinicianBolus, ErrorCode, Message, Refill, StatusSnapshot};

/// The capsule commands the telemetry app uses.
pub trait TelemetryCapsule {
    /// Command 9: install signed prescription bytes.
    fn install_prescription(&mut self, signed: &[u8]) -> Result<(), ErrorCode>;

    /// Command 10: drain queued events into `buf` as stream items
    /// (`0x00 COBS(frame) 0x00`, whole frames only); returns
    /// `(bytes written, frames written)`.
    fn drain_events(&mut self, buf: &mut [u8]) -> Result<(usize, usize), ErrorCode>;

    /// Command 11: acknowledge (silence) an alarm.
    fn acknowledge_alarm(&mut self, code: AlarmCode) -> Result<(), ErrorCode>;

    /// Command 12: clear a latched fault.
    fn clear_fault(&mut self, code: AlarmCode) -> Result<(), ErrorCode>;

    /// Command 13: suspend therapy.
    fn suspend(&mut self) -> Result<(), ErrorCode>;

    /// Command 14: resume therapy.
    fn resume(&mut self) -> Result<(), ErrorCode>;

    /// Command 15: record a refill (the syscall implementation passes it
    /// postcard-encoded in read-only allow 0).
    fn refill(&mut self, refill: &Refill) -> Result<(), ErrorCode>;

    /// Command 16: set the wall clock.
    fn set_clock(&mut self, utc_time_ms: u64) -> Result<(), ErrorCode>;

    /// Command 19: events waiting to be drained.
    fn pending_events(&mut self) -> Result<u32, ErrorCode>;

    /// The capsule's status snapshot. Command 1 gives only part of it (see
    /// `dosing_core::DosingCapsule::status`); a syscall implementation
    /// without a snapshot command fills the rest from commands 17 and 18 or
    /// returns `Err(ErrorCode::NoSupport)`.
    fn status(&mut self) -> Result<StatusSnapshot, ErrorCode>;
}

/// The telemetry app's line to the dosing app (IPC in the firmware). The
/// telemetry app cannot start deliveries (the capsule refuses it that
/// role), so bolus requests from the programmer go this way, and the dosing
/// app hears of programmer commands that change what it should do.
pub trait DosingLink {
    /// A clinician bolus; the dosing app's verdict.
    fn clinician_bolus(&mut self, request: &ClinicianBolus) -> Result<(), ErrorCode>;

    /// A patient bolus request from the patient's programmer; the verdict.
    fn patient_bolus(&mut self) -> Result<(), ErrorCode>;

    /// The capsule accepted this programmer command (prescription, refill,
    /// suspend, resume, fault clearing, clock).
    fn command_applied(&mut self, command: &Message);
}
