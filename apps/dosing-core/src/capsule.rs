//! What the dosing app asks of the infusion capsule: the `Dosing` role's
//! rows of the capsule's command table (see `infusion-core`'s crate docs),
//! one method per command. The libtock-rs binary implements it over
//! syscalls; tests implement it with a recording fake or over a real
//! `InfusionCore`.

use pump_protocol::{DeliveryKind, ErrorCode, StatusSnapshot};

/// The capsule commands the dosing app uses.
pub trait DosingCapsule {
    /// Command 2: set the basal rate (`0` stops basal).
    fn set_basal(&mut self, rate_nl_per_h: u32) -> Result<(), ErrorCode>;

    /// Commands 3–6: start a bolus of `kind` (`ClinicianBolus`,
    /// `PatientBolus`, `Priming` or `Bridge`).
    fn start_bolus(
        &mut self,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
    ) -> Result<(), ErrorCode>;

    /// Command 7: stop the running bolus.
    fn stop_bolus(&mut self) -> Result<(), ErrorCode>;

    /// Command 8: watchdog check-in; returns the check-in timeout (0 while no
    /// prescription is installed).
    fn check_in(&mut self) -> Result<u32, ErrorCode>;

    /// Command 17: copy the installed signed prescription into `buf`;
    /// returns its length.
    fn read_prescription(&mut self, buf: &mut [u8]) -> Result<usize, ErrorCode>;

    /// Command 18: the envelope's patient-bolus lockout and count.
    fn patient_bolus_state(&mut self) -> Result<PatientBolusState, ErrorCode>;

    /// Command 20: the capsule's full status snapshot (a postcard
    /// `StatusSnapshot` written into read-write allow 0): pump state, basal
    /// rate, running bolus, reservoir, alarms, refill-by time. The core reads
    /// it at every wake-up and takes the pump state and basal rate from it;
    /// if it fails, the core works from what it knows itself and never
    /// commands delivery on a guess (see `DosingCore`).
    fn status(&mut self) -> Result<StatusSnapshot, ErrorCode>;

    /// Command 21: log a patient-bolus press the app refused under the
    /// therapy's own rules, as a `PatientBolusRequested` and
    /// `PatientBolusDenied` event pair with `reason` (its `ErrorCode` code
    /// in argument 1) and `lockout_remaining_ms` (argument 2), so that every
    /// press reaches the log (SR-EVT-003). Changes nothing else.
    fn report_patient_denial(
        &mut self,
        reason: ErrorCode,
        lockout_remaining_ms: u32,
    ) -> Result<(), ErrorCode>;

    /// Command 23: take the oldest entry of the capsule's relay (a
    /// programmer request or notice the telemetry app posted); its payload
    /// (the message's postcard payload) is written into `buf` (read-write
    /// allow 0). `NotReady` when nothing waits, `InvalidArgument` when `buf`
    /// is too small (the entry stays).
    fn relay_take(&mut self, buf: &mut [u8]) -> Result<RelayItem, ErrorCode>;

    /// Command 24: answer the taken request `ticket` with the app's verdict
    /// (argument 2: 0 for `Ok`, else the `ErrorCode`'s code).
    /// `InvalidArgument` if the capsule holds no taken, unanswered request
    /// with that ticket (unknown, a notice, or already timed out).
    fn relay_answer(
        &mut self,
        ticket: u32,
        verdict: Result<(), ErrorCode>,
    ) -> Result<(), ErrorCode>;

    /// Command 26: store the app's record (see [`crate::record`]),
    /// replacing the previous one, with the capsule's own atomic,
    /// CRC-checked writes (SR-PER-005).
    fn save_record(&mut self, record: &[u8]) -> Result<(), ErrorCode>;

    /// Command 27: copy the app's record into `buf`; returns its length, 0
    /// if none was ever saved. `InvalidArgument` if `buf` is too small.
    fn load_record(&mut self, buf: &mut [u8]) -> Result<usize, ErrorCode>;
}

/// One relay entry taken with [`DosingCapsule::relay_take`] (command 23:
/// `U32U32(ticket, kind_code | payload_len << 16)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayItem {
    /// The capsule's ticket (answer requests with it).
    pub ticket: u32,
    /// The message kind code (`pump_protocol::MessageKind`).
    pub kind: u16,
    /// Payload bytes written into the buffer.
    pub len: usize,
}

/// The capsule's view of the patient bolus, from the envelope's limits
/// (command 18: `U32U32(lockout_remaining_ms, boluses_left_24h)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PatientBolusState {
    /// Time until the envelope's lockout ends.
    pub lockout_remaining_ms: u32,
    /// Patient boluses the envelope still allows in the rolling 24 h.
    pub boluses_left_24h: u32,
}

/// The time at a call: a monotonic clock for durations (watchdog, lockout,
/// bolus ends) and the settable UTC wall clock for the time-of-day schedule.
/// Keeping them apart is what makes a clock change unable to shorten a
/// lockout or starve the watchdog (HAZ-020).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds on a clock that never goes backwards.
    pub monotonic_ms: u64,
    /// Milliseconds since the Unix epoch on the pump's wall clock.
    pub utc_ms: u64,
}
