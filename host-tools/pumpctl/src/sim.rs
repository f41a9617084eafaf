//! The whole-pump simulator.
//!
//! It wires the three portable cores together exactly as the firmware does:
//!
//! * `infusion-core` (the kernel capsule's logic) drives a simulated motor,
//!   encoder, alarm output and storage through its `Platform` trait;
//! * `dosing-core` (the dosing app) talks to the capsule only through the
//!   `DosingCapsule` trait, which [`DosingPort`] implements by calling the
//!   capsule's syscall command table (`InfusionCore::command`) with the
//!   dosing app's id, the same rows the libtock-rs binary calls;
//! * `telemetry-core` (the telemetry app) reaches the capsule the same way
//!   with the telemetry app's id ([`TelemetryPort`]): it drains the
//!   capsule's events into its persistent log on simulated flash
//!   ([`SimFlash`], which survives power loss), serves the host link, and
//!   relays the programmer's commands to the capsule and to the dosing app;
//! * the host (the clinician's programmer, a home monitor) only has the
//!   link: every programmer command of the event script goes to the
//!   telemetry app as a protocol frame and gets its `Ack` or `Nack`, and
//!   every day (and at the end) the host asks for a status and reads the
//!   telemetry app's log in `ReadLog` chunks from where it left off. What
//!   the host received is the run's `telemetry.log`.
//!
//! Time is event-driven: the loop jumps to the earliest instant any
//! component asked to be woken at (the capsule's next step or deadline, the
//! dosing app's wake-up, the next scripted event, a patient press, the
//! host's daily read), never ticking. Upcalls (`Notification`s) are
//! delivered after each core call returns, as the kernel does.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::PathBuf;

use dosing_core::{CatheterContents, DosingCapsule, DosingConfig, DosingCore, Now, SavedState};
use infusion_core::command as cmd;
use infusion_core::{
    AlarmOutput, AlarmSignal, CommandResult, InfusionCore, Motor, Notification, Notifier,
    RecordKind, Storage, StoredRecords,
};
use pump_protocol::prescription::{Prescription, MAX_SIGNED_PRESCRIPTION_LEN};
use pump_protocol::{
    encode_stream_frame_vec, AlarmCode, ClearFault, ClinicianBolus, DeliveryKind, ErrorCode, Frame,
    GetStatus, Message, ReadLog, Refill, Resume, SetClock, StatusSnapshot, StreamDecoder,
    StreamItem, Suspend,
};
use rand::{RngExt, SeedableRng};
use telemetry_core::{LinkOutput, TelemetryCapsule, TelemetryCore};

use crate::board::{self, DOSING_APP, NL_PER_STEP, SIM_EPOCH_UTC_MS, TELEMETRY_APP};
use crate::error::{Error, Result};
use crate::script::{Event, Timed};
use crate::units::{MS_PER_DAY, MS_PER_MIN};

/// The simulated hardware: motor with encoder, alarm output, storage.
#[derive(Debug)]
pub struct SimPlatform {
    /// Current simulated monotonic time (set by the loop before each call).
    pub now_ms: u64,
    /// Current UTC offset (for the step log).
    pub utc_offset_ms: i64,
    /// Motor driver enabled.
    pub motor_enabled: bool,
    /// The mechanism is jammed: steps move nothing and give no pulse.
    pub jammed: bool,
    /// Steps the core commanded.
    pub commanded_steps: u64,
    /// Steps that moved drug.
    pub moved_steps: u64,
    /// Steps commanded while the driver was disabled (must stay 0).
    pub steps_while_disabled: u64,
    /// An encoder pulse is owed to the core.
    pulse_owed: bool,
    /// `(monotonic_ms, utc_ms)` of every step that moved drug, if recorded.
    pub step_log: Option<Vec<(u64, u64)>>,
    /// What the alarm output shows.
    pub signal: AlarmSignal,
    /// The capsule's records on the flash model (`None` only in the
    /// placeholder a reset swaps out).
    pub flash: Option<crate::flashstore::PumpFlash>,
    /// Records written so far.
    pub saves: u64,
    /// Time the alarm tone has sounded, up to `audible_since`.
    pub alarm_tone_ms: u64,
    /// When the tone last started, while it sounds.
    pub audible_since: Option<u64>,
    /// Upcalls waiting for delivery.
    pending: Vec<Notification>,
}

impl Default for SimPlatform {
    fn default() -> Self {
        Self {
            now_ms: 0,
            utc_offset_ms: 0,
            motor_enabled: false,
            jammed: false,
            commanded_steps: 0,
            moved_steps: 0,
            steps_while_disabled: 0,
            pulse_owed: false,
            alarm_tone_ms: 0,
            audible_since: None,
            step_log: None,
            signal: AlarmSignal::OFF,
            flash: None,
            saves: 0,
            pending: Vec::new(),
        }
    }
}

impl SimPlatform {
    /// Whether the mechanism's encoder has pulsed since the last call.
    pub fn take_pulse(&mut self) -> bool {
        std::mem::take(&mut self.pulse_owed)
    }
}

impl Motor for SimPlatform {
    fn set_enabled(&mut self, enabled: bool) {
        self.motor_enabled = enabled;
    }
    fn step(&mut self) {
        // Power lost (a cut armed on the flash model): the CPU is dead.
        if self.flash.as_ref().is_some_and(|f| f.power_lost()) {
            return;
        }
        self.commanded_steps += 1;
        if !self.motor_enabled {
            self.steps_while_disabled += 1;
        }
        if self.jammed {
            return;
        }
        self.moved_steps += 1;
        self.pulse_owed = true;
        if let Some(log) = self.step_log.as_mut() {
            log.push((
                self.now_ms,
                self.now_ms.saturating_add_signed(self.utc_offset_ms),
            ));
        }
    }
}

impl AlarmOutput for SimPlatform {
    fn show(&mut self, signal: AlarmSignal) {
        self.signal = signal;
        match (signal.audible, self.audible_since) {
            (true, None) => self.audible_since = Some(self.now_ms),
            (false, Some(since)) => {
                self.alarm_tone_ms += self.now_ms.saturating_sub(since);
                self.audible_since = None;
            }
            _ => {}
        }
    }
}

impl SimPlatform {
    /// The time the tone has sounded up to `now_ms`.
    pub fn alarm_tone_ms_at(&self, now_ms: u64) -> u64 {
        self.alarm_tone_ms + self.audible_since.map_or(0, |s| now_ms.saturating_sub(s))
    }
}

impl Storage for SimPlatform {
    const KEEPS_RECORDS_APART: bool = true;
    fn write_record(&mut self, kind: RecordKind, record: &[u8]) {
        if let Some(flash) = self.flash.as_mut() {
            flash.write(kind, record);
        }
        self.saves += 1;
    }
}

impl Notifier for SimPlatform {
    fn notify(&mut self, n: Notification) {
        if !matches!(n, Notification::EventsAvailable { .. }) && self.pending.len() < 10_000 {
            self.pending.push(n);
        }
    }
}

/// The capsule as the dosing app sees it: every call goes through the
/// capsule's syscall command table with the dosing app's id.
pub struct DosingPort<'a> {
    core: &'a mut InfusionCore<SimPlatform>,
    now_ms: u64,
}

fn unit(r: CommandResult) -> std::result::Result<(), ErrorCode> {
    match r {
        CommandResult::Failure(e) => Err(e),
        _ => Ok(()),
    }
}

impl DosingPort<'_> {
    fn call(&mut self, num: u16, a1: u32, a2: u32, rw: &mut [u8]) -> CommandResult {
        self.core
            .command(DOSING_APP, u32::from(num), a1, a2, &[], rw, self.now_ms)
    }
}

/// The dosing app's record, as it comes back from the capsule at boot
/// (a new pump, or an unreadable record, starts with the catheter unknown).
fn dosing_saved_state(port: &mut DosingPort<'_>) -> SavedState {
    // The simulator's clock keeps running through a power loss, so the
    // record's time is never ahead of it and no clock offset is needed.
    dosing_core::load_record(port).map_or_else(
        |_| SavedState::new(CatheterContents::Unknown),
        |restored| restored.state,
    )
}

impl DosingCapsule for DosingPort<'_> {
    fn set_basal(&mut self, rate_nl_per_h: u32) -> std::result::Result<(), ErrorCode> {
        unit(self.call(cmd::SET_BASAL, rate_nl_per_h, 0, &mut []))
    }

    fn start_bolus(
        &mut self,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
    ) -> std::result::Result<(), ErrorCode> {
        let num = match kind {
            DeliveryKind::ClinicianBolus => cmd::CLINICIAN_BOLUS,
            DeliveryKind::PatientBolus => cmd::PATIENT_BOLUS,
            DeliveryKind::Priming => cmd::PRIMING_BOLUS,
            DeliveryKind::Bridge => cmd::BRIDGE_BOLUS,
            _ => return Err(ErrorCode::InvalidArgument),
        };
        unit(self.call(num, volume_nl, duration_ms, &mut []))
    }

    fn stop_bolus(&mut self) -> std::result::Result<(), ErrorCode> {
        unit(self.call(cmd::STOP_BOLUS, 0, 0, &mut []))
    }

    fn check_in(&mut self) -> std::result::Result<u32, ErrorCode> {
        match self.call(cmd::CHECK_IN, 0, 0, &mut []) {
            CommandResult::SuccessU32(t) => Ok(t),
            CommandResult::Failure(e) => Err(e),
            _ => Ok(0),
        }
    }

    fn read_prescription(&mut self, buf: &mut [u8]) -> std::result::Result<usize, ErrorCode> {
        match self.call(cmd::READ_PRESCRIPTION, 0, 0, buf) {
            CommandResult::SuccessU32(len) => Ok(len as usize),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn patient_bolus_state(
        &mut self,
    ) -> std::result::Result<dosing_core::PatientBolusState, ErrorCode> {
        match self.call(cmd::PATIENT_BOLUS_STATE, 0, 0, &mut []) {
            CommandResult::SuccessU32U32(lockout_remaining_ms, boluses_left_24h) => {
                Ok(dosing_core::PatientBolusState {
                    lockout_remaining_ms,
                    boluses_left_24h,
                })
            }
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn status(&mut self) -> std::result::Result<pump_protocol::StatusSnapshot, ErrorCode> {
        // Command 20: a postcard `StatusSnapshot` in the read-write allow.
        let mut buf = [0u8; 128];
        self.call(cmd::FULL_STATUS, 0, 0, &mut buf)
            .read_postcard(&buf)
    }

    fn report_patient_denial(
        &mut self,
        reason: ErrorCode,
        lockout_remaining_ms: u32,
    ) -> std::result::Result<(), ErrorCode> {
        unit(self.call(
            cmd::REPORT_PATIENT_DENIAL,
            u32::from(reason.code()),
            lockout_remaining_ms,
            &mut [],
        ))
    }

    fn relay_take(
        &mut self,
        buf: &mut [u8],
    ) -> std::result::Result<dosing_core::RelayItem, ErrorCode> {
        match self.call(cmd::RELAY_TAKE, 0, 0, buf) {
            CommandResult::SuccessU32U32(ticket, kind_len) => Ok(dosing_core::RelayItem {
                ticket,
                kind: (kind_len & 0xFFFF) as u16,
                len: (kind_len >> 16) as usize,
            }),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn relay_answer(
        &mut self,
        ticket: u32,
        verdict: std::result::Result<(), ErrorCode>,
    ) -> std::result::Result<(), ErrorCode> {
        let code = verdict.err().map_or(0, |e| u32::from(e.code()));
        unit(self.call(cmd::RELAY_ANSWER, ticket, code, &mut []))
    }

    fn save_record(&mut self, record: &[u8]) -> std::result::Result<(), ErrorCode> {
        let len = u32::try_from(record.len()).map_err(|_| ErrorCode::InvalidArgument)?;
        unit(self.core.command(
            DOSING_APP,
            u32::from(cmd::SAVE_APP_RECORD),
            len,
            0,
            record,
            &mut [],
            self.now_ms,
        ))
    }

    fn load_record(&mut self, buf: &mut [u8]) -> std::result::Result<usize, ErrorCode> {
        match self.call(cmd::LOAD_APP_RECORD, 0, 0, buf) {
            CommandResult::SuccessU32(len) => Ok(len as usize),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }
}

/// The telemetry app's log flash: the boards' log region
/// (`pump_abi::log_region`: 64 pages of 4 KiB) on the flash model, shared so
/// the app can be rebuilt over the same flash. 90 days of the demo fill a
/// fraction of it (`docs/persistence.md` §9); a run that logs more between
/// two reads loses the oldest page, and the host sees a `LogGap`.
pub type SimFlash = storage_core::SharedSimFlash;

/// The log region, erased.
pub fn log_flash(seed: u64) -> SimFlash {
    use infusion_core::abi::log_region;
    storage_core::SharedSimFlash::new(
        storage_core::SimFlash::new(log_region::PAGE_BYTES, log_region::PAGES, seed)
            .expect("a valid geometry"),
    )
}

/// The `log_storage` section of `summary.json`: the telemetry app's log on
/// the boards' log region (`docs/persistence.md` §9).
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct LogStorageSummary {
    /// Pages of the region and bytes per page.
    pub pages: u32,
    /// Bytes per page.
    pub page_bytes: u32,
    /// Records appended (events and the app's own `LogGap`s).
    pub records_written: u64,
    /// Flash bytes programmed (records and page headers).
    pub bytes_programmed: u64,
    /// Pages opened (a page header written).
    pub pages_opened: u64,
    /// Pages erased for reuse.
    pub pages_erased: u64,
    /// Records those erases destroyed.
    pub records_erased: u64,
    /// Days of this run's events the region holds (× 100): `pages − 1`
    /// pages (one is lost to each erase) at this run's bytes a day.
    pub days_held_x100: Option<u64>,
    /// Erase cycles per page per year at this run's rate, × 100.
    pub erase_cycles_per_page_per_year_x100: Option<u64>,
    /// Rated cycles per page.
    pub endurance_cycles: u32,
}

fn add_log_stats(
    a: telemetry_core::LogStats,
    b: telemetry_core::LogStats,
) -> telemetry_core::LogStats {
    telemetry_core::LogStats {
        records_written: a.records_written.saturating_add(b.records_written),
        pages_erased: a.pages_erased.saturating_add(b.pages_erased),
        records_erased: a.records_erased.saturating_add(b.records_erased),
        pages_opened: a.pages_opened.saturating_add(b.pages_opened),
        pages_closed_early: a.pages_closed_early.saturating_add(b.pages_closed_early),
    }
}

fn log_summary(
    stats: telemetry_core::LogStats,
    flash: &SimFlash,
    elapsed_ms: u64,
) -> LogStorageSummary {
    use infusion_core::abi::log_region;
    let bytes = flash.with(|f| f.stats().bytes_programmed);
    let held = u64::from(log_region::PAGES - 1) * u64::from(log_region::PAGE_BYTES);
    let days_held_x100 = (bytes > 0).then(|| {
        let x = u128::from(held) * u128::from(elapsed_ms) * 100 / (u128::from(bytes) * 86_400_000);
        u64::try_from(x).unwrap_or(u64::MAX)
    });
    // Each page is opened (and, once the ring has come round, erased) once
    // per pass: the fill rate in pages is the erase rate.
    let erase_cycles = telemetry_core::log::erases_per_page_per_year_x100(
        u64::from(stats.pages_opened),
        elapsed_ms,
        log_region::PAGES,
    );
    LogStorageSummary {
        pages: log_region::PAGES,
        page_bytes: log_region::PAGE_BYTES,
        records_written: u64::from(stats.records_written),
        bytes_programmed: bytes,
        pages_opened: u64::from(stats.pages_opened),
        pages_erased: u64::from(stats.pages_erased),
        records_erased: u64::from(stats.records_erased),
        days_held_x100,
        erase_cycles_per_page_per_year_x100: erase_cycles,
        endurance_cycles: storage_core::DEFAULT_ENDURANCE_CYCLES,
    }
}

/// The capsule as the telemetry app sees it: every call goes through the
/// capsule's syscall command table with the telemetry app's id.
pub struct TelemetryPort<'c, 'a> {
    core: &'c RefCell<&'a mut InfusionCore<SimPlatform>>,
    now_ms: u64,
}

impl TelemetryPort<'_, '_> {
    fn call(&mut self, num: u16, a1: u32, a2: u32, ro: &[u8], rw: &mut [u8]) -> CommandResult {
        let now_ms = self.now_ms;
        let mut core = self.core.borrow_mut();
        core.platform_mut().now_ms = now_ms;
        core.command(TELEMETRY_APP, u32::from(num), a1, a2, ro, rw, now_ms)
    }

    fn len_of(bytes: &[u8]) -> std::result::Result<u32, ErrorCode> {
        u32::try_from(bytes.len()).map_err(|_| ErrorCode::InvalidArgument)
    }
}

impl TelemetryCapsule for TelemetryPort<'_, '_> {
    fn install_prescription(&mut self, signed: &[u8]) -> std::result::Result<(), ErrorCode> {
        let len = Self::len_of(signed)?;
        unit(self.call(cmd::INSTALL_PRESCRIPTION, len, 0, signed, &mut []))
    }

    fn drain_events(&mut self, buf: &mut [u8]) -> std::result::Result<(usize, usize), ErrorCode> {
        match self.call(cmd::DRAIN_EVENTS, 0, 0, &[], buf) {
            CommandResult::SuccessU32U32(bytes, frames) => Ok((bytes as usize, frames as usize)),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn acknowledge_alarm(&mut self, code: AlarmCode) -> std::result::Result<(), ErrorCode> {
        unit(self.call(
            cmd::ACKNOWLEDGE_ALARM,
            u32::from(code.code()),
            0,
            &[],
            &mut [],
        ))
    }

    fn clear_fault(&mut self, code: AlarmCode) -> std::result::Result<(), ErrorCode> {
        unit(self.call(cmd::CLEAR_FAULT, u32::from(code.code()), 0, &[], &mut []))
    }

    fn suspend(&mut self) -> std::result::Result<(), ErrorCode> {
        unit(self.call(cmd::SUSPEND, 0, 0, &[], &mut []))
    }

    fn resume(&mut self) -> std::result::Result<(), ErrorCode> {
        unit(self.call(cmd::RESUME, 0, 0, &[], &mut []))
    }

    fn refill(&mut self, refill: &Refill) -> std::result::Result<(), ErrorCode> {
        let mut buf = [0u8; 32];
        let encoded =
            postcard::to_slice(refill, &mut buf).map_err(|_| ErrorCode::InvalidArgument)?;
        let len = Self::len_of(encoded)?;
        unit(self.call(cmd::REFILL, len, 0, encoded, &mut []))
    }

    fn set_clock(&mut self, utc_time_ms: u64) -> std::result::Result<(), ErrorCode> {
        let low = (utc_time_ms & 0xFFFF_FFFF) as u32;
        let high = (utc_time_ms >> 32) as u32;
        unit(self.call(cmd::SET_CLOCK, low, high, &[], &mut []))
    }

    fn pending_events(&mut self) -> std::result::Result<u32, ErrorCode> {
        match self.call(cmd::PENDING_EVENTS, 0, 0, &[], &mut []) {
            CommandResult::SuccessU32(count) => Ok(count),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn service_outlook(&mut self) -> std::result::Result<pump_protocol::ServiceOutlook, ErrorCode> {
        let mut buf = [0u8; 64];
        self.call(cmd::SERVICE_OUTLOOK, 0, 0, &[], &mut buf)
            .read_postcard(&buf)
    }

    fn status(&mut self) -> std::result::Result<StatusSnapshot, ErrorCode> {
        let mut buf = [0u8; 128];
        self.call(cmd::FULL_STATUS, 0, 0, &[], &mut buf)
            .read_postcard(&buf)
    }

    fn authenticated_command(
        &mut self,
        signed: &[u8],
    ) -> std::result::Result<(u16, u32), ErrorCode> {
        let len = Self::len_of(signed)?;
        match self.call(cmd::AUTHENTICATED_COMMAND, len, 0, signed, &mut []) {
            CommandResult::SuccessU32U32(kind, ticket) => Ok((kind as u16, ticket)),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn relay_post(&mut self, kind: u16, payload: &[u8]) -> std::result::Result<u32, ErrorCode> {
        let len = Self::len_of(payload)?;
        match self.call(cmd::RELAY_POST, u32::from(kind), len, payload, &mut []) {
            CommandResult::SuccessU32(ticket) => Ok(ticket),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn relay_result(
        &mut self,
    ) -> std::result::Result<(u32, std::result::Result<(), ErrorCode>), ErrorCode> {
        match self.call(cmd::RELAY_RESULT, 0, 0, &[], &mut []) {
            CommandResult::SuccessU32U32(ticket, 0) => Ok((ticket, Ok(()))),
            CommandResult::SuccessU32U32(ticket, code) => Ok((
                ticket,
                Err(ErrorCode::from_code(
                    u16::try_from(code).unwrap_or(u16::MAX),
                )),
            )),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }
}

/// What the capsule's pending upcalls led to.
#[derive(Default)]
struct Upcalls {
    /// The dosing app's next wake-up, if it was told anything.
    dosing_wake: Option<u64>,
    /// The relay has an answer for the telemetry app (upcall 5).
    relay_answered: bool,
}

/// Delivers the capsule's pending upcalls to the dosing app (none while it
/// is hung) until they settle, the relay's posts included (upcall 4: the
/// dosing app takes and answers them); notes an answer for the telemetry
/// app (upcall 5).
fn deliver_upcalls(
    core: &mut InfusionCore<SimPlatform>,
    mut dosing: Option<&mut DosingCore>,
    t: u64,
) -> Upcalls {
    let mut wake = None;
    let mut relay_answered = false;
    for _ in 0..10_000 {
        if core.platform_mut().take_pulse() {
            core.on_encoder_pulse(t);
        }
        let pending = std::mem::take(&mut core.platform_mut().pending);
        if pending.is_empty() {
            break;
        }
        relay_answered |= pending.contains(&Notification::RelayAnswered);
        let Some(dosing) = dosing.as_deref_mut() else {
            continue;
        };
        let now = Now {
            monotonic_ms: t,
            utc_ms: core.utc_ms(t),
        };
        for n in pending {
            let mut port = DosingPort {
                core: &mut *core,
                now_ms: t,
            };
            let next = match n {
                Notification::DeliveryDone {
                    kind,
                    outcome,
                    volume_nl,
                } => Some(dosing.on_delivery_done(kind, outcome, volume_nl, &mut port, now)),
                Notification::AlarmChanged(_) => Some(dosing.on_alarm_changed(&mut port, now)),
                Notification::RelayPosted => Some(dosing.on_relay_posted(&mut port, now)),
                Notification::EventsAvailable { .. } | Notification::RelayAnswered => None,
            };
            if let Some(w) = next {
                wake = Some(w.at_monotonic_ms.max(t));
            }
        }
    }
    Upcalls {
        dosing_wake: wake,
        relay_answered,
    }
}

/// The host's receive buffer on the link.
struct HostRx(Vec<u8>);

impl LinkOutput for HostRx {
    fn room(&self) -> usize {
        (64 * 1024usize).saturating_sub(self.0.len())
    }
    fn write(&mut self, item: &[u8]) {
        self.0.extend_from_slice(item);
    }
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The prescription (device id and serial are set by the simulator).
    pub prescription: Prescription,
    /// Its pairing: the simulator signs format 2 (protocol 1.1).
    pub pairing: pump_protocol::prescription::Pairing,
    /// Simulated days.
    pub days: u32,
    /// PRNG seed (random patient presses).
    pub seed: u64,
    /// Scripted events.
    pub events: Vec<Timed>,
    /// Initial reservoir fill.
    pub initial_fill_nl: u32,
    /// Record every motor step (for `steps.csv` and `trumpet`).
    pub record_steps: bool,
    /// Extra clinic public keys the simulated board trusts.
    pub extra_keys: Vec<[u8; 32]>,
    /// Show a progress bar on a terminal.
    pub progress: bool,
    /// The board's energy profile, given to the capsule (docs/energy.md).
    pub energy: energy_core::EnergyProfile,
}

/// A line of the simulation's own narrative (written as console text into
/// the telemetry stream, like a debug UART sharing the link).
#[derive(Clone, Debug)]
pub struct Note {
    /// Monotonic time.
    pub at_ms: u64,
    /// Text.
    pub text: String,
}

/// What a simulation produced.
#[derive(Debug)]
pub struct SimResult {
    /// The telemetry log: the capsule's events as drained by the telemetry
    /// app, daily status snapshots, and console text lines.
    pub log: Vec<u8>,
    /// `(monotonic_ms, utc_ms)` of every step that moved drug.
    pub steps: Vec<(u64, u64)>,
    /// Ground truth at the end.
    pub truth: Truth,
    /// Commands the programmer sent and how the pump answered.
    pub commands: Vec<String>,
    /// The capsule's records on the flash model: writes, erases, wear.
    pub storage: Option<crate::flashstore::StorageSummary>,
    /// The telemetry app's log on its flash region: use and wear.
    pub log_storage: LogStorageSummary,
    /// The capsule's battery estimate at each daily read-out:
    /// `(monotonic_ms, remaining_pah)`.
    pub battery: Vec<(u64, u64)>,
    /// The pump's answers to the script's `outlook` events.
    pub outlooks: Vec<pump_protocol::ServiceOutlook>,
}

/// Ground truth the simulator knows (for reconciliation).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Truth {
    /// Steps the capsule commanded.
    pub commanded_steps: u64,
    /// Steps that moved drug.
    pub moved_steps: u64,
    /// Volume that reached the catheter.
    pub moved_volume_nl: u64,
    /// Volume commanded but not yet reported in a `DeliveryRecord` at the end.
    pub unreported_volume_nl: u64,
    /// Reservoir at the end (capsule accounting).
    pub final_reservoir_nl: u32,
    /// Every fill, initial included.
    pub filled_nl: u64,
    /// Every withdrawal.
    pub withdrawn_nl: u64,
    /// Steps made while the motor was disabled (must be 0).
    pub steps_while_disabled: u64,
    /// Resets (power losses).
    pub resets: u32,
    /// Core wake-ups handled.
    pub wakeups: u64,
    /// Dosing app wake-ups handled.
    pub dosing_wakeups: u64,
    /// Dosing app wake-ups that asked for a retry less than its shortest
    /// check-in period later (busy-waiting).
    pub dosing_busy_wakeups: u64,
    /// Simulated milliseconds.
    pub simulated_ms: u64,
    /// Requests the host sent over the link.
    pub host_requests: u64,
    /// `ReadLog` chunks the host read.
    pub log_chunks: u64,
    /// Stored events the host read back from the telemetry app's log.
    pub events_read: u64,
    /// Programmer commands the telemetry app acknowledged.
    pub commands_acknowledged: u64,
    /// Commands an attacker on the link sent (`attack` events).
    pub attacks_sent: u64,
    /// Attacker commands the pump acknowledged (must be 0).
    pub attacks_accepted: u64,
    /// Telemetry sessions (host requests at distinct instants).
    pub link_sessions: u64,
    /// Bytes over the telemetry link, both ways.
    pub link_bytes: u64,
    /// Time the alarm tone sounded.
    pub alarm_tone_ms: u64,
    /// Signatures the pump verified (prescriptions, signed commands).
    pub signature_verifies: u64,
}

impl Truth {
    /// What the pump did, for the energy model.
    pub fn usage(&self, storage: Option<&crate::flashstore::StorageSummary>) -> energy_core::Usage {
        energy_core::Usage {
            elapsed_ms: self.simulated_ms,
            wakeups: self
                .wakeups
                .saturating_add(self.dosing_wakeups)
                .saturating_add(self.link_sessions),
            motor_steps: self.commanded_steps,
            flash_erases: storage.map_or(0, |s| s.page_erases),
            flash_bytes: storage.map_or(0, |s| s.flash_bytes_programmed),
            link_sessions: self.link_sessions,
            link_bytes: self.link_bytes,
            alarm_tone_ms: self.alarm_tone_ms,
            signature_verifies: self.signature_verifies,
        }
    }
}

struct Sim {
    /// The telemetry log's counts in the app's earlier lives.
    log_stats_earlier: telemetry_core::LogStats,
    config: infusion_core::BoardConfig,
    core: InfusionCore<SimPlatform>,
    dosing: Option<DosingCore>,
    dosing_wake: Option<u64>,
    dosing_config: DosingConfig,
    /// The telemetry app, over `flash`.
    telemetry: TelemetryCore<SimFlash>,
    /// The telemetry app's log flash (survives power loss).
    flash: SimFlash,
    /// What the host received over the link, and the simulator's console
    /// text: `telemetry.log`.
    log: Vec<u8>,
    commands: Vec<String>,
    /// Answers the telemetry app sent after the relay's verdict (upcall
    /// 5), not yet handed to the host.
    relay_answers: Vec<u8>,
    /// A bolus request whose answer the host still waits for (the dosing
    /// app is hung and the capsule's relay times it out): the UTC it was
    /// sent at and what it was.
    awaiting: Option<(u64, String)>,
    /// Sequence number of the host's next request.
    host_sequence: u32,
    /// The log sequence the host reads from next.
    read_from: u32,
    truth: Truth,
    prescription: Prescription,
    /// The programmer's signing state and what an attacker recorded.
    link: crate::simlink::LinkSigner,
    /// When the last telemetry session was (requests at one instant are one).
    last_session_ms: Option<u64>,
    /// The board's energy profile (kept for the resets).
    energy: energy_core::EnergyProfile,
    /// See [`SimResult::battery`].
    battery: Vec<(u64, u64)>,
    outlooks: Vec<pump_protocol::ServiceOutlook>,
    /// The board's memory and second clock, for the hourly self-tests.
    hw: crate::simhw::SimHardware,
}

impl Sim {
    fn now(&self, t: u64) -> Now {
        Now {
            monotonic_ms: t,
            utc_ms: self.core.utc_ms(t),
        }
    }

    /// Console text in the stream: `\n`-terminated, never containing 0x00.
    fn note(&mut self, t: u64, text: &str) {
        let line = format!(
            "[sim {}] {}\n",
            crate::units::fmt_duration(t),
            text.replace('\0', " ")
        );
        self.log.extend_from_slice(line.as_bytes());
    }

    /// Delivers pending upcalls to the apps (the telemetry app drains the
    /// capsule's events as they arrive, so a burst cannot overflow the
    /// capsule's queue unseen). The dosing app saves its own record in the
    /// capsule (command 26) as its state changes.
    fn settle(&mut self, t: u64) {
        for _ in 0..10_000 {
            self.drain(t);
            let upcalls = deliver_upcalls(&mut self.core, self.dosing.as_mut(), t);
            if upcalls.dosing_wake.is_some() {
                self.dosing_wake = upcalls.dosing_wake;
            }
            if upcalls.relay_answered {
                self.service_relay(t);
            }
            if self.core.pending_events() == 0 && self.core.platform().pending.is_empty() {
                break;
            }
        }
    }

    /// Upcall 5: the telemetry app sends the host the answer to its
    /// relayed request. If the host had given up waiting for it (a hung
    /// dosing app), the late answer is recorded as the command's verdict.
    fn service_relay(&mut self, t: u64) {
        let utc = self.core.utc_ms(t);
        let mut out = HostRx(std::mem::take(&mut self.relay_answers));
        {
            let core = RefCell::new(&mut self.core);
            let mut port = TelemetryPort {
                core: &core,
                now_ms: t,
            };
            self.telemetry.service_relay(&mut port, &mut out, utc);
        }
        self.relay_answers = out.0;
        if self.relay_answers.is_empty() {
            return;
        }
        if let Some((sent_utc, what)) = self.awaiting.take() {
            let bytes = std::mem::take(&mut self.relay_answers);
            self.log.extend_from_slice(&bytes);
            let answers = decode_answers(&bytes).0;
            self.record_verdict(sent_utc, &what, &answers);
        }
    }

    /// The telemetry app drains the capsule's events into its log
    /// (command 10), a bounded buffer per call, until none are left.
    fn drain(&mut self, t: u64) {
        let utc = self.core.utc_ms(t);
        for _ in 0..1_000 {
            if self.core.pending_events() == 0 {
                return;
            }
            let core = RefCell::new(&mut self.core);
            let mut port = TelemetryPort {
                core: &core,
                now_ms: t,
            };
            match self.telemetry.drain_capsule(&mut port, utc) {
                Ok(report) if report.frames_stored > 0 || report.pending > 0 => {}
                _ => return,
            }
        }
    }

    fn dosing_call(&mut self, t: u64, f: impl FnOnce(&mut DosingCore, &mut DosingPort<'_>, Now)) {
        let now = self.now(t);
        self.core.platform_mut().now_ms = t;
        if let Some(dosing) = self.dosing.as_mut() {
            let mut port = DosingPort {
                core: &mut self.core,
                now_ms: t,
            };
            f(dosing, &mut port, now);
            self.dosing_wake = Some(dosing.next_wakeup().at_monotonic_ms.max(t));
        }
        self.settle(t);
    }

    /// The host sends `message` over the link; the telemetry app serves it
    /// (bounded work per call, so the host feeds the rest on the next).
    /// Everything the host receives goes into `telemetry.log`; the decoded
    /// answers are returned.
    fn host_request(&mut self, t: u64, message: Message) -> Vec<Message> {
        if matches!(
            message,
            Message::InstallPrescription(_) | Message::AuthenticatedCommand(_)
        ) {
            self.truth.signature_verifies += 1;
        }
        if self.last_session_ms != Some(t) {
            self.last_session_ms = Some(t);
            self.truth.link_sessions += 1;
        }
        let sequence = self.host_sequence;
        self.host_sequence = self.host_sequence.wrapping_add(1);
        let Ok(bytes) = encode_stream_frame_vec(&Frame {
            sequence,
            flags: 0,
            message,
        }) else {
            return Vec::new();
        };
        let utc = self.core.utc_ms(t);
        // Answers sent meanwhile that no one waited for go to the log.
        let late = std::mem::take(&mut self.relay_answers);
        self.log.extend_from_slice(&late);
        let mut out = HostRx(Vec::new());
        let mut input = &bytes[..];
        while !input.is_empty() {
            let progress = {
                let core = RefCell::new(&mut self.core);
                let mut capsule = TelemetryPort {
                    core: &core,
                    now_ms: t,
                };
                self.telemetry
                    .service_link(input, &mut capsule, &mut out, utc)
            };
            self.settle(t);
            if progress.consumed == 0 {
                // No room for an answer: the host reads what it has.
                break;
            }
            input = input.get(progress.consumed..).unwrap_or_default();
        }
        // A relayed request's answer, sent when the dosing app's verdict
        // came in (during the settling above).
        out.0.append(&mut self.relay_answers);
        self.log.extend_from_slice(&out.0);
        self.truth.host_requests += 1;
        self.truth.link_bytes += (bytes.len() + out.0.len()) as u64;
        let (answers, events_read) = decode_answers(&out.0);
        self.truth.events_read += events_read;
        answers
    }

    /// A programmer command, sent over the link to the telemetry app, which
    /// relays it to the capsule and, if accepted, tells the dosing app.
    /// Returns whether it was acknowledged.
    fn programmer(&mut self, t: u64, message: Message) -> bool {
        let (name, _) = crate::decode::message_fields(&message);
        let what = match &message {
            Message::ClinicianBolus(b) => format!("{name} {} ug", b.dose_ug),
            _ => name.to_string(),
        };
        let sent_utc = self.core.utc_ms(t);
        let sent = match message {
            // The patient's own programmer, not the clinic's.
            Message::PatientBolusRequest(_) => self.link.ptm(message.clone(), sent_utc),
            _ => self.link.programmer(message.clone(), sent_utc),
        };
        let answers = self.host_request(t, sent);
        let relayed = matches!(
            message,
            Message::ClinicianBolus(_) | Message::PatientBolusRequest(_)
        );
        if answers.is_empty() && relayed {
            // The dosing app has not answered (hung): the capsule's relay
            // answers for it when the request times out.
            self.awaiting = Some((sent_utc, what));
            return false;
        }
        let accepted = self.record_verdict(sent_utc, &what, &answers);
        if let (Message::Refill(m), true) = (&message, accepted) {
            self.truth.filled_nl += u64::from(m.added_volume_nl);
            self.truth.withdrawn_nl += u64::from(m.withdrawn_volume_nl);
        }
        accepted
    }

    /// An attacker on the link sends `message` in `mode`; the pump's answer
    /// is recorded beside the programmer's commands.
    fn attack(&mut self, t: u64, mode: crate::simlink::AttackMode, message: Message) {
        let (name, _) = crate::decode::message_fields(&message);
        let sent_utc = self.core.utc_ms(t);
        let sent = self.link.attack(mode, message, sent_utc);
        let answers = self.host_request(t, sent);
        self.truth.attacks_sent += 1;
        let accepted = matches!(answers[..], [Message::Ack(_)]);
        self.truth.attacks_accepted += u64::from(accepted);
        let verdict = match &answers[..] {
            [Message::Ack(_)] => "ACCEPTED".to_string(),
            [Message::Nack(n)] => format!("refused: {}", n.error.name()),
            _ => "no answer".to_string(),
        };
        self.commands.push(format!(
            "{} attack ({}) {name}: {verdict}",
            crate::units::fmt_utc(sent_utc),
            mode.name()
        ));
    }

    /// Records how the pump answered a programmer command; returns whether
    /// it was acknowledged.
    fn record_verdict(&mut self, sent_utc: u64, what: &str, answers: &[Message]) -> bool {
        let accepted = matches!(answers, [Message::Ack(_)]);
        self.truth.commands_acknowledged += u64::from(accepted);
        let verdict = match answers {
            [Message::Ack(_)] => "accepted".to_string(),
            [Message::Nack(n)] => format!("refused: {}", n.error.name()),
            _ => "no answer".to_string(),
        };
        self.commands.push(format!(
            "{} {what}: {verdict}",
            crate::units::fmt_utc(sent_utc)
        ));
        accepted
    }

    /// The host's read-out (a home monitor's daily session, and the
    /// clinic's at the end): a status, then the telemetry app's log from
    /// where the last read-out stopped, in bounded chunks.
    fn host_readout(&mut self, t: u64) {
        if let Some(estimate) = self.core.battery_estimate(t) {
            self.battery.push((t, estimate.remaining_pah));
        }
        self.host_request(t, Message::GetStatus(GetStatus {}));
        for _ in 0..100_000 {
            let answers = self.host_request(
                t,
                Message::ReadLog(ReadLog {
                    from_sequence: self.read_from,
                    max_frames: telemetry_core::MAX_LOG_CHUNK_FRAMES,
                }),
            );
            self.truth.log_chunks += 1;
            let Some(Message::LogChunkEnd(end)) = answers.last() else {
                return;
            };
            let progressed = end.next_sequence > self.read_from;
            self.read_from = end.next_sequence;
            if !end.more || !progressed {
                return;
            }
        }
    }

    /// A PTM press. The dosing app decides: what the therapy refuses it
    /// reports to the capsule (command 21), which logs it like the presses
    /// it judges itself (SR-EVT-003).
    fn patient_press(&mut self, t: u64) {
        self.dosing_call(t, |d, port, now| {
            d.request_patient_bolus(port, now);
        });
    }

    fn boot_dosing(&mut self, t: u64) {
        self.core.platform_mut().now_ms = t;
        let saved = dosing_saved_state(&mut DosingPort {
            core: &mut self.core,
            now_ms: t,
        });
        self.dosing = Some(DosingCore::new(self.dosing_config, saved));
        self.dosing_call(t, |d, port, now| {
            d.wake(port, now);
        });
    }

    fn power_loss(&mut self, t: u64, down_ms: u64) {
        self.note(
            t,
            &format!("power lost; down for {} min", down_ms / MS_PER_MIN),
        );
        let back = t.saturating_add(down_ms);
        let old = std::mem::replace(
            &mut self.core,
            InfusionCore::restore(self.config.clone(), SimPlatform::default(), None, 0),
        );
        let mut old = old;
        let (flash, read_back) = old
            .platform_mut()
            .flash
            .take()
            .expect("the running core has the flash")
            .reboot();
        let old_platform = old.platform();
        let mut platform = SimPlatform {
            flash: Some(flash),
            now_ms: back,
            utc_offset_ms: old_platform.utc_offset_ms,
            jammed: old_platform.jammed,
            commanded_steps: old_platform.commanded_steps,
            moved_steps: old_platform.moved_steps,
            steps_while_disabled: old_platform.steps_while_disabled,
            saves: old_platform.saves,
            // The tone stops with the power.
            alarm_tone_ms: old_platform.alarm_tone_ms_at(t),
            ..SimPlatform::default()
        };
        platform.step_log = old.platform().step_log.clone();
        drop(old);
        // Everything in RAM is gone: the capsule and the dosing app are
        // rebuilt from what each had saved.
        self.core = InfusionCore::new(self.config.clone(), platform);
        self.core.set_energy_profile(self.energy);
        self.core.restore_records(&read_back.stored(), back);
        power_on_self_test(&mut self.core, back);
        // The hourly tests' first run is part of the boot (SR-STS-005).
        self.run_self_tests(back);
        self.truth.resets += 1;
        self.dosing = None;
        // The telemetry app starts again over its flash log.
        self.log_stats_earlier =
            add_log_stats(self.log_stats_earlier, self.telemetry.log().stats());
        self.telemetry = TelemetryCore::new(self.flash.clone());
        self.note(back, "power restored; cores rebuilt from saved state");
        self.settle(back);
        self.boot_dosing(back);
    }
}

impl Sim {
    /// The board's part of the hourly self-tests: after every timer call,
    /// and once at boot (SR-STS-005).
    fn run_self_tests(&mut self, t: u64) {
        self.hw.now_ms = t;
        self.core.run_self_tests(&mut self.hw, t);
    }
}

/// The messages in what the host received, and how many came from the log.
fn decode_answers(bytes: &[u8]) -> (Vec<Message>, u64) {
    let mut answers = Vec::new();
    let mut events_read = 0;
    StreamDecoder::new().feed(bytes, |item| {
        if let StreamItem::Frame { frame, .. } = item {
            if frame.header.flags & pump_protocol::flags::FROM_LOG != 0 {
                events_read += 1;
            }
            answers.push(frame.message);
        }
    });
    (answers, events_read)
}

/// Random press times (monotonic ms), from the seeded PRNG.
fn press_times(events: &[Timed], days: u32, seed: u64) -> Vec<u64> {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut plan: Option<(u32, u32, u32)> = None;
    let mut directives = events
        .iter()
        .filter_map(|e| match e.event {
            Event::PatientPresses {
                per_day,
                from_min,
                to_min,
            } => Some((e.at_ms, per_day, from_min, to_min)),
            _ => None,
        })
        .peekable();
    for day in 0..u64::from(days) {
        let day_start = day * MS_PER_DAY;
        while let Some(&(at, per_day, from, to)) = directives.peek() {
            if at > day_start + MS_PER_DAY - 1 {
                break;
            }
            plan = Some((per_day, from, to.max(from + 1)));
            directives.next();
        }
        if let Some((per_day, from, to)) = plan {
            for _ in 0..per_day {
                let minute = rng.random_range(u64::from(from)..u64::from(to));
                let second = rng.random_range(0..60u64);
                out.push(day_start + minute * MS_PER_MIN + second * 1000);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Runs a simulation.
pub fn run(cfg: &SimConfig) -> Result<SimResult> {
    let board_config = board::board_config(&cfg.extra_keys);
    if cfg.extra_keys.len() + 1 > infusion_core::config::MAX_CLINIC_KEYS {
        return Err(Error(format!(
            "the simulated board trusts at most {} keys besides the simulator's",
            infusion_core::config::MAX_CLINIC_KEYS - 1
        )));
    }
    let end_ms = u64::from(cfg.days) * MS_PER_DAY;
    let platform = SimPlatform {
        step_log: cfg.record_steps.then(Vec::new),
        flash: Some(crate::flashstore::PumpFlash::new(cfg.seed)),
        ..SimPlatform::default()
    };
    let mut core = InfusionCore::new(board_config.clone(), platform);
    core.set_energy_profile(cfg.energy);
    core.restore_records(&StoredRecords::BLANK, 0);
    power_on_self_test(&mut core, 0);
    let mut prescription = cfg.prescription.clone();
    prescription.device_id = board::SIM_DEVICE_ID;
    prescription.serial = 1;
    prescription.issued_time_ms = SIM_EPOCH_UTC_MS;
    let flash = log_flash(cfg.seed);
    let mut sim = Sim {
        log_stats_earlier: telemetry_core::LogStats::default(),
        config: board_config,
        core,
        telemetry: TelemetryCore::new(flash.clone()),
        flash,
        dosing: None,
        dosing_wake: None,
        dosing_config: DosingConfig {
            motor_step_nl: NL_PER_STEP,
            pump_dead_volume_nl: 0,
            idle_wake_interval_ms: 60_000,
        },
        log: Vec::new(),
        commands: Vec::new(),
        relay_answers: Vec::new(),
        awaiting: None,
        host_sequence: 1,
        read_from: 0,
        truth: Truth::default(),
        prescription: prescription.clone(),
        link: crate::simlink::LinkSigner::new(board::simulator_test_key(), board::SIM_DEVICE_ID),
        last_session_ms: None,
        energy: cfg.energy,
        battery: Vec::new(),
        outlooks: Vec::new(),
        hw: crate::simhw::SimHardware::default(),
    };
    sim.run_self_tests(0);

    // Boot: the apps start; over the link the clinic sets the clock,
    // installs the prescription (signed with the simulator's test-only
    // key) and fills the reservoir.
    sim.note(0, "boot: simulated pump (pumpctl simulate)");
    sim.boot_dosing(0);
    sim.programmer(
        0,
        Message::SetClock(SetClock {
            utc_time_ms: SIM_EPOCH_UTC_MS,
        }),
    );
    sim.core.platform_mut().utc_offset_ms = SIM_EPOCH_UTC_MS as i64;
    let signed = crate::sign::sign_v2(&prescription, &cfg.pairing, &board::simulator_test_key())?;
    sim.programmer(0, crate::sign::install_message(&prescription, &signed)?);
    sim.programmer(
        0,
        Message::Refill(Refill {
            withdrawn_volume_nl: 0,
            added_volume_nl: cfg.initial_fill_nl,
            concentration_ug_per_ml: prescription.concentration_ug_per_ml,
        }),
    );
    sim.host_readout(0);

    let presses = press_times(&cfg.events, cfg.days, cfg.seed);
    let mut press_i = 0;
    let mut event_i = 0;
    let mut next_status = MS_PER_DAY;
    let mut dosing_hung = false;

    let bar = if cfg.progress && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(u64::from(cfg.days));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "simulating {bar:40} day {pos}/{len} ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let mut last_t = 0u64;
    let mut same_t = 0u32;
    loop {
        let core_wake = sim.core.next_wakeup();
        let candidates = [
            core_wake,
            if dosing_hung { None } else { sim.dosing_wake },
            cfg.events.get(event_i).map(|e| e.at_ms),
            presses.get(press_i).copied(),
            Some(next_status),
        ];
        let Some(t) = candidates.iter().flatten().copied().min() else {
            break;
        };
        if t > end_ms {
            break;
        }
        let t = t.max(last_t);
        if t == last_t {
            same_t += 1;
            if same_t > 100_000 {
                return Err(Error(format!(
                    "simulation stuck at {} (a component keeps asking for the same instant)",
                    crate::units::fmt_duration(t)
                )));
            }
        } else {
            same_t = 0;
            // Only when the day changes: the bar's bookkeeping is per call.
            if t / MS_PER_DAY != last_t / MS_PER_DAY {
                bar.set_position(t / MS_PER_DAY);
            }
        }
        last_t = t;
        sim.core.platform_mut().now_ms = t;

        // Scripted events first (the outside world), then the capsule's
        // timer, then the apps.
        let mut events_ran = false;
        while let Some(e) = cfg.events.get(event_i).filter(|e| e.at_ms <= t) {
            event_i += 1;
            events_ran = true;
            match &e.event {
                Event::Bolus => {
                    if !dosing_hung {
                        sim.patient_press(t);
                    }
                }
                Event::PatientPresses { .. } => {}
                Event::PtmBolus => {
                    sim.programmer(
                        t,
                        Message::PatientBolusRequest(pump_protocol::PatientBolusRequest {}),
                    );
                }
                Event::ClinicianBolus(given) => {
                    let preset = sim
                        .prescription
                        .therapy
                        .clinician_bolus
                        .map(|b| (b.dose_ug, b.duration_ms));
                    let bolus = given
                        .map(|(dose, min)| (dose, (u64::from(min) * MS_PER_MIN) as u32))
                        .or(preset);
                    match bolus {
                        // Over the link, through the capsule's relay; a hung
                        // dosing app answers nothing, and the relay's
                        // timeout answers NotReady for it.
                        Some((dose_ug, duration_ms)) => {
                            sim.programmer(
                                t,
                                Message::ClinicianBolus(ClinicianBolus {
                                    dose_ug,
                                    duration_ms,
                                }),
                            );
                        }
                        None => sim.commands.push(format!(
                            "{} ClinicianBolus: no preset in the prescription and none given",
                            crate::units::fmt_utc(sim.core.utc_ms(t))
                        )),
                    }
                }
                Event::Refill {
                    volume_nl,
                    concentration_ug_per_ml,
                } => {
                    let residual = sim.core.reservoir_nl();
                    sim.programmer(
                        t,
                        Message::Refill(Refill {
                            withdrawn_volume_nl: residual,
                            added_volume_nl: *volume_nl,
                            concentration_ug_per_ml: concentration_ug_per_ml
                                .unwrap_or(sim.prescription.concentration_ug_per_ml),
                        }),
                    );
                }
                Event::Suspend => {
                    sim.programmer(t, Message::Suspend(Suspend {}));
                }
                Event::Resume => {
                    sim.programmer(t, Message::Resume(Resume {}));
                }
                Event::SetClock { shift_min } => {
                    let utc = sim.core.utc_ms(t);
                    let new = utc.saturating_add_signed(shift_min.saturating_mul(60_000));
                    sim.programmer(t, Message::SetClock(SetClock { utc_time_ms: new }));
                    let offset = sim.core.utc_ms(t) as i64 - t as i64;
                    sim.core.platform_mut().utc_offset_ms = offset;
                }
                Event::Stall => {
                    sim.note(t, "motor jammed");
                    sim.core.platform_mut().jammed = true;
                }
                Event::StallCleared => {
                    sim.note(t, "motor jam freed");
                    sim.core.platform_mut().jammed = false;
                    sim.programmer(
                        t,
                        Message::ClearFault(ClearFault {
                            code: AlarmCode::MotorStall,
                        }),
                    );
                }
                Event::Occlusion => {
                    sim.core.on_fault_input(AlarmCode::Occlusion, true, t);
                    sim.settle(t);
                }
                Event::OcclusionCleared => {
                    sim.core.on_fault_input(AlarmCode::Occlusion, false, t);
                    sim.settle(t);
                    sim.programmer(
                        t,
                        Message::ClearFault(ClearFault {
                            code: AlarmCode::Occlusion,
                        }),
                    );
                }
                Event::Ack(code) => {
                    sim.programmer(
                        t,
                        Message::AcknowledgeAlarm(pump_protocol::AcknowledgeAlarm { code: *code }),
                    );
                }
                Event::ClearFault(code) => {
                    sim.programmer(t, Message::ClearFault(ClearFault { code: *code }));
                }
                Event::Attack { mode, command } => {
                    let message = match command {
                        crate::script::AttackCommand::ClinicianBolus(dose_ug, duration_min) => {
                            Message::ClinicianBolus(ClinicianBolus {
                                dose_ug: *dose_ug,
                                duration_ms: (u64::from(*duration_min) * MS_PER_MIN) as u32,
                            })
                        }
                        crate::script::AttackCommand::Suspend => Message::Suspend(Suspend {}),
                        crate::script::AttackCommand::Resume => Message::Resume(Resume {}),
                    };
                    sim.attack(t, *mode, message);
                }
                Event::PowerLoss { down_ms } => {
                    sim.power_loss(t, *down_ms);
                    last_t = t + down_ms;
                    // Whatever was due while the power was off is skipped:
                    // scripted events and presses in the gap are lost.
                    while cfg.events.get(event_i).is_some_and(|e| e.at_ms < last_t) {
                        event_i += 1;
                    }
                    while presses.get(press_i).is_some_and(|p| *p < last_t) {
                        press_i += 1;
                    }
                    if dosing_hung {
                        // A reset restarts every app.
                        dosing_hung = false;
                    }
                }
                Event::SelfTest(test, outcome) => {
                    let what = match outcome {
                        Ok(()) => "passed".to_string(),
                        Err(detail) => format!("FAILED (detail {detail})"),
                    };
                    sim.note(t, &format!("self-test {test:?} {what}"));
                    sim.core.on_self_test(*test, *outcome, t);
                }
                Event::HardwareFault(part) => {
                    sim.note(t, &format!("hardware fault injected: {part:?}"));
                    sim.hw.inject(*part, t);
                }
                Event::Outlook => {
                    let ask = Message::GetServiceOutlook(pump_protocol::GetServiceOutlook {});
                    for answer in sim.host_request(t, ask) {
                        if let Message::ServiceOutlook(outlook) = answer {
                            sim.outlooks.push(outlook);
                        }
                    }
                }
                Event::DosingHang => {
                    sim.note(t, "dosing app hung (no more check-ins)");
                    dosing_hung = true;
                    sim.dosing = None;
                }
                Event::DosingRestart => {
                    sim.note(t, "kernel restarts the dosing app");
                    dosing_hung = false;
                    sim.core.on_app_restart(DOSING_APP, 1, t);
                    sim.settle(t);
                    sim.boot_dosing(t);
                }
                Event::Install(path) => {
                    let bytes = crate::error::read_file(path)?;
                    let message = install_message_from_stream(path, &bytes)?;
                    sim.programmer(t, message);
                    if let Some(rx) = sim.core.prescription() {
                        sim.prescription = rx.clone();
                    }
                }
            }
        }
        if last_t > t {
            // A power loss moved time on; start the loop again from there.
            continue;
        }
        // The capsule's wake-up time changes only through what reached it:
        // without a scripted event at this instant, the one asked above
        // still holds (asking costs a walk over the ledger).
        let core_due = if events_ran {
            sim.core.next_wakeup()
        } else {
            core_wake
        };
        if core_due.is_some_and(|w| w <= t) {
            sim.core.on_timer(t);
            sim.truth.wakeups += 1;
            sim.run_self_tests(t);
            sim.settle(t);
        }
        if !dosing_hung && sim.dosing_wake.is_some_and(|w| w <= t) {
            sim.truth.dosing_wakeups += 1;
            sim.dosing_call(t, |d, port, now| {
                d.wake(port, now);
            });
            // A tickless app never asks to be woken again within its own
            // shortest check-in period; count it when it does (busy-waiting
            // drains an implant's battery).
            if sim
                .dosing_wake
                .is_some_and(|w| w < t + dosing_core::MIN_CHECKIN_PERIOD_MS)
                && sim.dosing.as_ref().is_some_and(|d| {
                    // Only a schedule edge, a bolus end or a lockout end may
                    // lie that close; anything else is busy-waiting.
                    matches!(
                        d.next_wakeup().reason,
                        dosing_core::WakeReason::Retry
                            | dosing_core::WakeReason::Watchdog
                            | dosing_core::WakeReason::Idle
                    )
                })
            {
                sim.truth.dosing_busy_wakeups += 1;
            }
        }
        while presses.get(press_i).is_some_and(|p| *p <= t) {
            press_i += 1;
            if !dosing_hung {
                sim.patient_press(t);
            }
        }
        if next_status <= t {
            sim.host_readout(t);
            next_status += MS_PER_DAY;
        }
    }
    bar.finish_and_clear();
    sim.core.platform_mut().now_ms = end_ms;
    sim.settle(end_ms);
    // The clinic reads out whatever the last daily read did not fetch.
    if next_status - MS_PER_DAY < end_ms {
        sim.host_readout(end_ms);
    }

    let platform = sim.core.platform();
    let nl_per_step = u64::from(NL_PER_STEP);
    sim.truth.commanded_steps = platform.commanded_steps;
    sim.truth.moved_steps = platform.moved_steps;
    sim.truth.moved_volume_nl = platform.moved_steps * nl_per_step;
    sim.truth.steps_while_disabled = platform.steps_while_disabled;
    sim.truth.final_reservoir_nl = sim.core.reservoir_nl();
    sim.truth.unreported_volume_nl = sim
        .core
        .ledger()
        .runs()
        .iter()
        .filter(|r| r.active)
        .map(|r| u64::from(r.steps_done.saturating_sub(r.steps_reported)) * nl_per_step)
        .sum();
    sim.truth.simulated_ms = end_ms;
    sim.truth.alarm_tone_ms = sim.core.platform().alarm_tone_ms_at(end_ms);
    let steps = sim.core.platform_mut().step_log.take().unwrap_or_default();
    let storage = sim
        .core
        .platform()
        .flash
        .as_ref()
        .map(|f| f.summary(end_ms));
    let log_storage = log_summary(
        add_log_stats(sim.log_stats_earlier, sim.telemetry.log().stats()),
        &sim.flash,
        end_ms,
    );
    Ok(SimResult {
        log_storage,
        log: sim.log,
        steps,
        truth: sim.truth,
        commands: sim.commands,
        storage,
        battery: sim.battery,
        outlooks: sim.outlooks,
    })
}

/// The first `InstallPrescription` in a frame file.
pub fn install_message_from_stream(path: &std::path::Path, bytes: &[u8]) -> Result<Message> {
    let signed = crate::sign::signed_from_install_stream(bytes).ok_or_else(|| {
        Error(format!(
            "{}: no InstallPrescription frame found (expected a file written by `pumpctl rx sign`)",
            path.display()
        ))
    })?;
    if signed.len() > MAX_SIGNED_PRESCRIPTION_LEN {
        return Err(Error(format!(
            "{}: signed prescription too long",
            path.display()
        )));
    }
    let parts = pump_protocol::prescription::split_signed(&signed).ok();
    let rx = parts.and_then(|p| pump_protocol::prescription::decode_body(p.body).ok());
    Ok(Message::InstallPrescription(
        pump_protocol::InstallPrescription {
            device_id: rx.as_ref().map_or(0, |r| r.device_id),
            prescription_serial: rx.as_ref().map_or(0, |r| r.serial),
            signed_prescription: heapless::Vec::from_slice(&signed).unwrap_or_default(),
        },
    ))
}

/// Writes `steps.csv`: one row per motor step that moved drug.
pub fn write_steps_csv(path: &std::path::Path, steps: &[(u64, u64)]) -> Result<()> {
    let file =
        std::fs::File::create(path).map_err(|e| crate::error::io_error(path, "create", &e))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let io = |e: csv::Error| Error(format!("{}: cannot write: {e}", path.display()));
    w.write_record(["monotonic_ms", "utc_ms", "volume_nl"])
        .map_err(io)?;
    let step = NL_PER_STEP.to_string();
    for (mono, utc) in steps {
        w.write_record([mono.to_string(), utc.to_string(), step.clone()])
            .map_err(io)?;
    }
    w.flush()
        .map_err(|e| crate::error::io_error(path, "write", &e))
}

/// Where simulation output goes.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from("pumpctl-sim")
}

/// The board's power-on RAM test (SR-STS-002) over a scratch region, as the
/// boards run it before anything lives there: the simulated RAM is sound,
/// so it passes; a failure is injected with the script's `self-test-fail`.
fn power_on_self_test(core: &mut InfusionCore<SimPlatform>, now_ms: u64) {
    let mut scratch = [0u32; 256];
    let outcome = infusion_core::selftest::march_c_minus(&mut scratch[..]).map_err(|i| i as u32);
    core.on_self_test(infusion_core::selftest::SelfTest::Ram, outcome, now_ms);
}
