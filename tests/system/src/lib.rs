//! The pump in simulated time: a real `InfusionCore`, the dosing core and
//! the telemetry core, connected as the firmware connects them.
//!
//! - [`CapsuleAdapter`] implements both apps' capsule traits over the real
//!   core's syscall command table (`InfusionCore::command`), for one app id
//!   and a shared clock, exactly as the libtock-rs binaries will over
//!   syscalls.
//! - [`Pump`] runs everything event-driven: time jumps to the next instant
//!   the capsule or the dosing app asked to be woken at; there is no
//!   periodic tick. Capsule notifications are delivered as upcalls after
//!   each call, like Tock delivers them when an app yields.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use dosing_core::{
    CatheterContents, DosingCapsule, DosingConfig, DosingCore, Now, PatientBolusState, RelayItem,
    SavedState,
};
use infusion_core::{
    command, AlarmOutput, AlarmSignal, AppId, CommandResult, InfusionCore, Motor, Notification,
    Notifier, RecordKind, Storage,
};
use pump_protocol::{
    AlarmCode, DeliveryKind, ErrorCode, Frame, Message, Refill, StatusSnapshot, StreamDecoder,
    StreamItem,
};
use pump_test_support::{board, DOSING, NL_PER_STEP, TELEMETRY};
use telemetry_core::{LinkOutput, TelemetryCapsule, TelemetryCore};

/// The capsule's hardware, recorded.
#[derive(Debug, Default)]
pub struct Rig {
    /// Motor steps made.
    pub steps: u64,
    /// Motor enable line.
    pub motor_enabled: bool,
    /// A step was commanded with the motor disabled.
    pub stepped_while_disabled: bool,
    /// Last saved record.
    pub saved: Option<Vec<u8>>,
    /// Notifications not yet delivered to the apps.
    pub notifications: VecDeque<Notification>,
}

impl Motor for Rig {
    fn set_enabled(&mut self, enabled: bool) {
        self.motor_enabled = enabled;
    }
    fn step(&mut self) {
        self.stepped_while_disabled |= !self.motor_enabled;
        self.steps += 1;
    }
}

impl AlarmOutput for Rig {
    fn show(&mut self, _signal: AlarmSignal) {}
}

impl Storage for Rig {
    fn write_record(&mut self, _kind: RecordKind, record: &[u8]) {
        self.saved = Some(record.to_vec());
    }
}

impl Notifier for Rig {
    fn notify(&mut self, notification: Notification) {
        self.notifications.push_back(notification);
    }
}

/// The kernel side: the infusion core and the clock, shared by both apps.
pub struct Kernel {
    /// The capsule's core.
    pub core: InfusionCore<Rig>,
    /// Core (monotonic) time.
    pub now_ms: u64,
}

/// One app's handle on the capsule.
#[derive(Clone)]
pub struct CapsuleAdapter {
    kernel: Rc<RefCell<Kernel>>,
    app: AppId,
}

impl CapsuleAdapter {
    /// The capsule as app `app` sees it.
    pub fn new(kernel: Rc<RefCell<Kernel>>, app: AppId) -> Self {
        Self { kernel, app }
    }

    fn command(
        &mut self,
        num: u16,
        arg1: u32,
        arg2: u32,
        ro: &[u8],
        rw: &mut [u8],
    ) -> CommandResult {
        let mut kernel = self.kernel.borrow_mut();
        let now = kernel.now_ms;
        kernel
            .core
            .command(self.app, u32::from(num), arg1, arg2, ro, rw, now)
    }

    fn simple(&mut self, num: u16, arg1: u32, arg2: u32) -> Result<(), ErrorCode> {
        match self.command(num, arg1, arg2, &[], &mut []) {
            CommandResult::Failure(e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Command 20: the full status snapshot, postcard-encoded into the
    /// read-write allow, decoded as the libtock-rs binaries decode it.
    fn full_status(&mut self) -> Result<StatusSnapshot, ErrorCode> {
        let mut buf = [0u8; 128];
        self.command(command::FULL_STATUS, 0, 0, &[], &mut buf)
            .read_postcard(&buf)
    }
}

impl DosingCapsule for CapsuleAdapter {
    fn set_basal(&mut self, rate_nl_per_h: u32) -> Result<(), ErrorCode> {
        self.simple(command::SET_BASAL, rate_nl_per_h, 0)
    }

    fn start_bolus(
        &mut self,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
    ) -> Result<(), ErrorCode> {
        let num = match kind {
            DeliveryKind::ClinicianBolus => command::CLINICIAN_BOLUS,
            DeliveryKind::PatientBolus => command::PATIENT_BOLUS,
            DeliveryKind::Priming => command::PRIMING_BOLUS,
            DeliveryKind::Bridge => command::BRIDGE_BOLUS,
            _ => return Err(ErrorCode::InvalidArgument),
        };
        self.simple(num, volume_nl, duration_ms)
    }

    fn stop_bolus(&mut self) -> Result<(), ErrorCode> {
        self.simple(command::STOP_BOLUS, 0, 0)
    }

    fn check_in(&mut self) -> Result<u32, ErrorCode> {
        match self.command(command::CHECK_IN, 0, 0, &[], &mut []) {
            CommandResult::SuccessU32(timeout) => Ok(timeout),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn read_prescription(&mut self, buf: &mut [u8]) -> Result<usize, ErrorCode> {
        match self.command(command::READ_PRESCRIPTION, 0, 0, &[], buf) {
            CommandResult::SuccessU32(len) => Ok(len as usize),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn patient_bolus_state(&mut self) -> Result<PatientBolusState, ErrorCode> {
        match self.command(command::PATIENT_BOLUS_STATE, 0, 0, &[], &mut []) {
            CommandResult::SuccessU32U32(lockout_remaining_ms, boluses_left_24h) => {
                Ok(PatientBolusState {
                    lockout_remaining_ms,
                    boluses_left_24h,
                })
            }
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn status(&mut self) -> Result<StatusSnapshot, ErrorCode> {
        self.full_status()
    }

    fn report_patient_denial(
        &mut self,
        reason: ErrorCode,
        lockout_remaining_ms: u32,
    ) -> Result<(), ErrorCode> {
        self.simple(
            command::REPORT_PATIENT_DENIAL,
            u32::from(reason.code()),
            lockout_remaining_ms,
        )
    }

    fn relay_take(&mut self, buf: &mut [u8]) -> Result<RelayItem, ErrorCode> {
        match self.command(command::RELAY_TAKE, 0, 0, &[], buf) {
            CommandResult::SuccessU32U32(ticket, kind_len) => Ok(RelayItem {
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
        verdict: Result<(), ErrorCode>,
    ) -> Result<(), ErrorCode> {
        let code = verdict.err().map_or(0, |e| u32::from(e.code()));
        self.simple(command::RELAY_ANSWER, ticket, code)
    }

    fn save_record(&mut self, record: &[u8]) -> Result<(), ErrorCode> {
        let len = u32::try_from(record.len()).map_err(|_| ErrorCode::InvalidArgument)?;
        match self.command(command::SAVE_APP_RECORD, len, 0, record, &mut []) {
            CommandResult::Failure(e) => Err(e),
            _ => Ok(()),
        }
    }

    fn load_record(&mut self, buf: &mut [u8]) -> Result<usize, ErrorCode> {
        match self.command(command::LOAD_APP_RECORD, 0, 0, &[], buf) {
            CommandResult::SuccessU32(len) => Ok(len as usize),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }
}

impl TelemetryCapsule for CapsuleAdapter {
    fn install_prescription(&mut self, signed: &[u8]) -> Result<(), ErrorCode> {
        let len = u32::try_from(signed.len()).map_err(|_| ErrorCode::InvalidArgument)?;
        match self.command(command::INSTALL_PRESCRIPTION, len, 0, signed, &mut []) {
            CommandResult::Failure(e) => Err(e),
            _ => Ok(()),
        }
    }

    fn drain_events(&mut self, buf: &mut [u8]) -> Result<(usize, usize), ErrorCode> {
        match self.command(command::DRAIN_EVENTS, 0, 0, &[], buf) {
            CommandResult::SuccessU32U32(bytes, frames) => Ok((bytes as usize, frames as usize)),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn acknowledge_alarm(&mut self, code: AlarmCode) -> Result<(), ErrorCode> {
        self.simple(command::ACKNOWLEDGE_ALARM, u32::from(code.code()), 0)
    }

    fn clear_fault(&mut self, code: AlarmCode) -> Result<(), ErrorCode> {
        self.simple(command::CLEAR_FAULT, u32::from(code.code()), 0)
    }

    fn suspend(&mut self) -> Result<(), ErrorCode> {
        self.simple(command::SUSPEND, 0, 0)
    }

    fn resume(&mut self) -> Result<(), ErrorCode> {
        self.simple(command::RESUME, 0, 0)
    }

    fn refill(&mut self, refill: &Refill) -> Result<(), ErrorCode> {
        let mut buf = [0u8; 32];
        let encoded =
            postcard::to_slice(refill, &mut buf).map_err(|_| ErrorCode::InvalidArgument)?;
        let len = encoded.len() as u32;
        match self.command(command::REFILL, len, 0, encoded, &mut []) {
            CommandResult::Failure(e) => Err(e),
            _ => Ok(()),
        }
    }

    fn set_clock(&mut self, utc_time_ms: u64) -> Result<(), ErrorCode> {
        self.simple(
            command::SET_CLOCK,
            utc_time_ms as u32,
            (utc_time_ms >> 32) as u32,
        )
    }

    fn pending_events(&mut self) -> Result<u32, ErrorCode> {
        match self.command(command::PENDING_EVENTS, 0, 0, &[], &mut []) {
            CommandResult::SuccessU32(count) => Ok(count),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn service_outlook(&mut self) -> Result<pump_protocol::ServiceOutlook, ErrorCode> {
        let mut buf = [0u8; 64];
        self.command(command::SERVICE_OUTLOOK, 0, 0, &[], &mut buf)
            .read_postcard(&buf)
    }

    fn status(&mut self) -> Result<StatusSnapshot, ErrorCode> {
        self.full_status()
    }

    fn authenticated_command(&mut self, signed: &[u8]) -> Result<(u16, u32), ErrorCode> {
        let len = u32::try_from(signed.len()).map_err(|_| ErrorCode::InvalidArgument)?;
        match self.command(command::AUTHENTICATED_COMMAND, len, 0, signed, &mut []) {
            CommandResult::SuccessU32U32(kind, ticket) => Ok((kind as u16, ticket)),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn relay_post(&mut self, kind: u16, payload: &[u8]) -> Result<u32, ErrorCode> {
        let len = u32::try_from(payload.len()).map_err(|_| ErrorCode::InvalidArgument)?;
        match self.command(command::RELAY_POST, u32::from(kind), len, payload, &mut []) {
            CommandResult::SuccessU32(ticket) => Ok(ticket),
            CommandResult::Failure(e) => Err(e),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    fn relay_result(&mut self) -> Result<(u32, Result<(), ErrorCode>), ErrorCode> {
        match self.command(command::RELAY_RESULT, 0, 0, &[], &mut []) {
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

/// The telemetry app's log flash in memory (NOR rules), shared so the
/// telemetry app can be "reset".
pub type MemLog = storage_core::SharedSimFlash;

/// `pages` erased pages of 4 KiB (the boards' log region has
/// `pump_abi::log_region::PAGES`).
fn mem_log(pages: usize) -> MemLog {
    storage_core::SharedSimFlash::new(
        storage_core::SimFlash::nrf52840(pages as u32, 1).expect("a valid geometry"),
    )
}

/// Host-side output buffer.
struct HostRx(Vec<u8>);

impl LinkOutput for HostRx {
    fn room(&self) -> usize {
        64 * 1024 - self.0.len()
    }
    fn write(&mut self, item: &[u8]) {
        self.0.extend_from_slice(item);
    }
}

/// The dosing app's board facts on the test board.
pub fn dosing_config() -> DosingConfig {
    DosingConfig {
        motor_step_nl: NL_PER_STEP,
        pump_dead_volume_nl: 20_000,
        idle_wake_interval_ms: 60_000,
    }
}

/// The whole pump.
pub struct Pump {
    /// Kernel and clock.
    pub kernel: Rc<RefCell<Kernel>>,
    /// The dosing app.
    pub dosing: DosingCore,
    dosing_capsule: CapsuleAdapter,
    /// The telemetry app.
    pub telemetry: TelemetryCore<MemLog>,
    telemetry_capsule: CapsuleAdapter,
    /// The telemetry app's log storage.
    pub log: MemLog,
    /// Wake-ups of the dosing app, for checks.
    pub dosing_wakes: u64,
    /// Capsule timer callbacks.
    pub capsule_wakes: u64,
    /// The dosing app is hung: it is neither woken nor told of upcalls.
    pub dosing_hung: bool,
    /// What the telemetry app sent the host on its own (answers to relayed
    /// requests, upcall 5) and the host has not read yet.
    relay_out: HostRx,
    next_host_sequence: u32,
    /// The host's signed-command counter (protocol 1.1).
    next_command_counter: u64,
}

impl Pump {
    /// A new pump at core time 0 with `log_pages` pages of log flash.
    pub fn new(log_pages: usize) -> Self {
        let core = InfusionCore::restore(board(), Rig::default(), None, 0);
        let kernel = Rc::new(RefCell::new(Kernel { core, now_ms: 0 }));
        let log = mem_log(log_pages);
        let mut pump = Self {
            dosing: DosingCore::new(dosing_config(), SavedState::new(CatheterContents::Unknown)),
            dosing_capsule: CapsuleAdapter::new(kernel.clone(), DOSING),
            telemetry: TelemetryCore::new(log.clone()),
            telemetry_capsule: CapsuleAdapter::new(kernel.clone(), TELEMETRY),
            kernel,
            log,
            dosing_wakes: 0,
            capsule_wakes: 0,
            dosing_hung: false,
            relay_out: HostRx(Vec::new()),
            next_host_sequence: 1,
            next_command_counter: 1,
        };
        let now = pump.now();
        pump.dosing.wake(&mut pump.dosing_capsule, now);
        pump.deliver_upcalls();
        pump
    }

    /// Core time.
    pub fn now_ms(&self) -> u64 {
        self.kernel.borrow().now_ms
    }

    /// The time as the apps see it.
    pub fn now(&self) -> Now {
        let kernel = self.kernel.borrow();
        Now {
            monotonic_ms: kernel.now_ms,
            utc_ms: kernel.core.utc_ms(kernel.now_ms),
        }
    }

    /// Motor steps so far.
    pub fn steps(&self) -> u64 {
        self.kernel.borrow().core.platform().steps
    }

    /// Delivers queued capsule notifications as upcalls until none are
    /// left. Bounded: an app that answered every upcall with a request that
    /// causes another would loop, and this panics instead.
    pub fn deliver_upcalls(&mut self) {
        for _ in 0..10_000 {
            let next = self
                .kernel
                .borrow_mut()
                .core
                .platform_mut()
                .notifications
                .pop_front();
            let Some(notification) = next else {
                return;
            };
            let now = self.now();
            // A hung dosing app hears nothing; the telemetry app still does.
            if self.dosing_hung
                && !matches!(
                    notification,
                    Notification::EventsAvailable { .. } | Notification::RelayAnswered
                )
            {
                continue;
            }
            match notification {
                Notification::DeliveryDone {
                    kind,
                    outcome,
                    volume_nl,
                } => {
                    self.dosing.on_delivery_done(
                        kind,
                        outcome,
                        volume_nl,
                        &mut self.dosing_capsule,
                        now,
                    );
                }
                Notification::AlarmChanged(_) => {
                    self.dosing.on_alarm_changed(&mut self.dosing_capsule, now);
                }
                Notification::EventsAvailable { .. } => self.drain_events(),
                Notification::RelayPosted => {
                    self.dosing.on_relay_posted(&mut self.dosing_capsule, now);
                }
                Notification::RelayAnswered => {
                    self.telemetry.service_relay(
                        &mut self.telemetry_capsule,
                        &mut self.relay_out,
                        now.utc_ms,
                    );
                }
            }
        }
        panic!("upcalls never settled: an app loops on the capsule");
    }

    fn drain_events(&mut self) {
        let utc = self.now().utc_ms;
        for _ in 0..64 {
            let report = self
                .telemetry
                .drain_capsule(&mut self.telemetry_capsule, utc)
                .expect("the telemetry app may drain");
            if report.pending == 0 {
                return;
            }
        }
    }

    /// Runs every wake-up of the capsule and the dosing app up to `until_ms`.
    pub fn run_until(&mut self, until_ms: u64) {
        loop {
            let capsule_at = self.kernel.borrow().core.next_wakeup();
            let dosing_at = if self.dosing_hung {
                u64::MAX
            } else {
                self.dosing.next_wakeup().at_monotonic_ms
            };
            let at = capsule_at.map_or(dosing_at, |c| c.min(dosing_at));
            if at > until_ms {
                break;
            }
            let now_ms = self.now_ms();
            assert!(at >= now_ms, "a core asked to be woken in the past");
            self.kernel.borrow_mut().now_ms = at;
            if capsule_at.is_some_and(|c| c <= at) {
                self.kernel.borrow_mut().core.on_timer(at);
                self.capsule_wakes += 1;
                self.deliver_upcalls();
            }
            if !self.dosing_hung && self.dosing.next_wakeup().at_monotonic_ms <= at {
                let now = self.now();
                self.dosing.wake(&mut self.dosing_capsule, now);
                self.dosing_wakes += 1;
                self.deliver_upcalls();
            }
        }
        let now_ms = self.now_ms().max(until_ms);
        self.kernel.borrow_mut().now_ms = now_ms;
    }

    /// The patient presses the bolus button on the pump's own input.
    pub fn press_bolus_button(&mut self) -> dosing_core::PatientBolusVerdict {
        let now = self.now();
        let verdict = self
            .dosing
            .request_patient_bolus(&mut self.dosing_capsule, now);
        self.deliver_upcalls();
        verdict
    }

    /// Sends raw bytes on the host link; returns the decoded responses.
    pub fn host_bytes(&mut self, bytes: &[u8]) -> Vec<(u32, u8, Message)> {
        let mut out = HostRx(Vec::new());
        let mut rest = bytes;
        while !rest.is_empty() {
            let now = self.now();
            let progress = self.telemetry.service_link(
                rest,
                &mut self.telemetry_capsule,
                &mut out,
                now.utc_ms,
            );
            assert!(progress.consumed > 0);
            rest = &rest[progress.consumed..];
            self.deliver_upcalls();
        }
        // Answers to relayed requests, sent when the dosing app's verdict
        // came in (during the upcalls above).
        out.0.append(&mut self.relay_out.0);
        decode_host_rx(&out.0)
    }

    /// What the telemetry app sent the host since the last exchange on its
    /// own: the answer to a relayed request that came later (the relay's
    /// timeout when the dosing app does not answer).
    pub fn host_receive(&mut self) -> Vec<(u32, u8, Message)> {
        let bytes = std::mem::take(&mut self.relay_out.0);
        decode_host_rx(&bytes)
    }

    /// Sends one command from the host as a 1.1 programmer does: a command
    /// that changes therapy or safety state is signed (the clinic's test
    /// key, or the test PTM's for a patient bolus request). Returns the
    /// responses.
    pub fn host(&mut self, message: Message) -> Vec<Message> {
        if pump_test_support::needs_signature(&message) {
            let counter = self.next_command_counter;
            self.next_command_counter += 1;
            return self.host_plain(pump_test_support::authenticated(&message, counter));
        }
        self.host_plain(message)
    }

    /// Sends one frame as it is (unsigned); returns the responses.
    pub fn host_plain(&mut self, message: Message) -> Vec<Message> {
        let sequence = self.next_host_sequence;
        self.next_host_sequence += 1;
        let bytes = pump_protocol::encode_stream_frame_vec(&Frame {
            sequence,
            flags: 0,
            message,
        })
        .expect("host frames encode");
        self.host_bytes(&bytes)
            .into_iter()
            .map(|(s, _, m)| {
                assert_eq!(s, sequence, "responses carry the request's sequence");
                m
            })
            .collect()
    }

    /// Sends one command that must be acknowledged.
    pub fn host_ok(&mut self, message: Message) {
        let kind = if pump_test_support::needs_signature(&message) {
            pump_protocol::MessageKind::AuthenticatedCommand.code()
        } else {
            message.kind_code()
        };
        let responses = self.host(message);
        assert_eq!(
            responses,
            [Message::Ack(pump_protocol::Ack { request_kind: kind })],
            "command {kind:#06x} refused"
        );
    }

    /// Reads the whole log through the host link in chunks.
    pub fn read_log(&mut self, from_sequence: u32) -> Vec<(u32, Message)> {
        let mut frames = Vec::new();
        let mut next = from_sequence;
        loop {
            let sequence = self.next_host_sequence;
            self.next_host_sequence += 1;
            let bytes = pump_protocol::encode_stream_frame_vec(&Frame {
                sequence,
                flags: 0,
                message: Message::ReadLog(pump_protocol::ReadLog {
                    from_sequence: next,
                    max_frames: 16,
                }),
            })
            .expect("encodes");
            let mut chunk = self.host_bytes(&bytes);
            let Some((_, _, Message::LogChunkEnd(end))) = chunk.pop() else {
                panic!("a log chunk ends with LogChunkEnd");
            };
            for (s, flags, m) in chunk {
                assert_eq!(
                    flags & pump_protocol::flags::FROM_LOG,
                    pump_protocol::flags::FROM_LOG
                );
                frames.push((s, m));
            }
            next = end.next_sequence;
            if !end.more {
                return frames;
            }
        }
    }

    /// The kernel restarts the dosing app: a new core from the record the
    /// app had saved in the capsule (command 27), woken at once.
    pub fn restart_dosing(&mut self) {
        // The rig's clock keeps running over the restart, so the record's
        // time is never ahead of it and no clock offset applies.
        let saved = dosing_core::load_record(&mut self.dosing_capsule).map_or_else(
            |_| SavedState::new(CatheterContents::Unknown),
            |restored| restored.state,
        );
        self.dosing = DosingCore::new(dosing_config(), saved);
        self.dosing_hung = false;
        let now = self.now();
        self.dosing.wake(&mut self.dosing_capsule, now);
        self.dosing_wakes += 1;
        self.deliver_upcalls();
    }

    /// The telemetry app restarts over its log storage.
    pub fn restart_telemetry(&mut self) {
        self.telemetry = TelemetryCore::new(self.log.clone());
    }
}

/// The frames in what the host received.
fn decode_host_rx(bytes: &[u8]) -> Vec<(u32, u8, Message)> {
    let mut frames = Vec::new();
    StreamDecoder::new().feed(bytes, |item| match item {
        StreamItem::Frame { frame, .. } => {
            frames.push((frame.sequence(), frame.header.flags, frame.message))
        }
        StreamItem::Invalid { error, .. } => panic!("the pump sent an invalid frame: {error}"),
    });
    frames
}
