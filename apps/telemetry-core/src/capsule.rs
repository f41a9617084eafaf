//! What the telemetry app asks of the infusion capsule (the `Telemetry`
//! role's rows of the capsule's command table), including the relay that
//! carries programmer requests and notices to the dosing app.
//!
//! Since protocol 1.1 the capsule refuses the plain commands 11–16 and 22
//! (`Unauthenticated`, audited): the app still passes a plain frame on, so
//! that the kernel, not this app, refuses and logs it. What changes therapy
//! comes as signed bytes through
//! [`authenticated_command`](TelemetryCapsule::authenticated_command).

use pump_protocol::{AlarmCode, ErrorCode, Refill, ServiceOutlook, StatusSnapshot};

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

    /// Command 29: the service outlook (battery, ERI and end-of-service
    /// dates, refill-by date), postcard `ServiceOutlook` in read-write allow
    /// 0 (protocol 1.1).
    fn service_outlook(&mut self) -> Result<ServiceOutlook, ErrorCode>;

    /// Command 22: post a programmer request or notice of message kind
    /// `kind` (its code) with `payload` (the message's postcard payload,
    /// empty for `InstallPrescription`; read-only allow 0, length in
    /// argument 2) to the dosing app through the capsule's relay. Returns
    /// the ticket. `UnknownKind`, `BadPayload`, `Busy` (a request is still
    /// outstanding).
    fn relay_post(&mut self, kind: u16, payload: &[u8]) -> Result<u32, ErrorCode>;

    /// Command 28: a signed programmer command (the bytes of an
    /// `AuthenticatedCommand`), verified and carried out by the capsule.
    /// Returns `(kind, ticket)`: ticket 0 when the command was carried out,
    /// else the relay ticket of the bolus request it posted to the dosing
    /// app, whose verdict comes as [`relay_result`](Self::relay_result).
    fn authenticated_command(&mut self, signed: &[u8]) -> Result<(u16, u32), ErrorCode>;

    /// Command 25: the answer to the outstanding request, as `(ticket,
    /// verdict)`: `Ok(())` if the dosing app accepted it, else its error
    /// (or `NotReady` if it did not answer in time). `NotReady` when no
    /// answer waits. Reading the answer ends the request.
    fn relay_result(&mut self) -> Result<(u32, Result<(), ErrorCode>), ErrorCode>;
}
