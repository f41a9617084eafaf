//! The syscall driver: `infusion_core`'s command table on a Tock kernel.

use core::cell::Cell;
use core::mem::MaybeUninit;
use infusion_core::selftest::periodic::SelfTestHardware;
use infusion_core::{
    command, AppId, BoardConfig, CommandResult, InfusionCore, Notification, ResetReason, Role,
    StoredRecords,
};
use kernel::grant::{AllowRoCount, AllowRwCount, Grant, GrantKernelData, UpcallCount};
use kernel::hil::time::{Alarm, AlarmClient, Frequency, Ticks};
use kernel::process::ShortId;
use kernel::processbuffer::{ReadableProcessBuffer, WriteableProcessBuffer};
use kernel::syscall::{CommandReturn, SyscallDriver};
use kernel::utilities::cells::{MapCell, OptionalCell, TakeCell};
use kernel::{ErrorCode, ProcessId};
use pump_protocol::{AlarmCode, AlarmPriority, DeliveryKind};

use crate::clock::{ms_to_ticks, Clock};
use crate::platform::{FaultClient, Note, Notes, StoreClient, TockPlatform};
use crate::reset::ResetMemory;
use crate::{allow, upcall};

/// Longest the capsule's alarm sleeps, so the tick counter cannot wrap
/// unseen (a 24-bit counter at 32 kHz wraps every 512 s; 2^32 ticks of a
/// 64-bit counter at 10 MHz take 429 s).
pub const MAX_SLEEP_MS: u64 = 60_000;

/// Bytes of the read-only allow the capsule looks at: the largest signed
/// prescription or dosing-app record, whichever is longer.
pub const RO_SCRATCH_LEN: usize = {
    let prescription = pump_protocol::prescription::MAX_SIGNED_PRESCRIPTION_LEN;
    let app_record = infusion_core::APP_RECORD_MAX_LEN;
    if prescription > app_record {
        prescription
    } else {
        app_record
    }
};

/// Bytes of the read-write allow the capsule fills per command: at least one
/// stream-encoded frame, and the largest signed prescription.
pub const RW_SCRATCH_LEN: usize = 1024;

const _: () = assert!(RW_SCRATCH_LEN >= pump_protocol::MAX_STREAM_FRAME_LEN);
const _: () = assert!(RW_SCRATCH_LEN >= RO_SCRATCH_LEN);

/// Per-process state: only the upcalls and allows the kernel keeps for us.
#[derive(Default)]
pub struct App;

type Apps = Grant<
    App,
    UpcallCount<{ upcall::COUNT }>,
    AllowRoCount<{ allow::RO_COUNT }>,
    AllowRwCount<{ allow::RW_COUNT }>,
>;

/// One syscall command, as the core takes it.
#[derive(Clone, Copy)]
struct Call {
    caller: AppId,
    command_num: u32,
    arg1: u32,
    arg2: u32,
    now_ms: u64,
}

struct Scratch {
    ro: [u8; RO_SCRATCH_LEN],
    rw: [u8; RW_SCRATCH_LEN],
}

/// Static memory for the core (about 11 KiB): the board allocates it, and
/// the core is built and restored in place there
/// (`InfusionCore::new` + `restore_records`), never moved around the stack.
pub type CoreSlot<'a> = MaybeUninit<InfusionCore<TockPlatform<'a>>>;

/// The infusion capsule. See the crate documentation.
pub struct Infusion<'a, A: Alarm<'a>> {
    alarm: &'a A,
    apps: Apps,
    /// The core, built in its static slot and restored there once the saved
    /// record has been read.
    core: TakeCell<'a, InfusionCore<TockPlatform<'a>>>,
    /// What the board lends the hourly self-tests (SR-STS-005); without
    /// it only the power-on test runs.
    self_test_hw: TakeCell<'a, dyn SelfTestHardware<Ram = [u32]> + 'a>,
    restored: Cell<bool>,
    clock: Clock<A::Ticks>,
    scratch: MapCell<Scratch>,
    /// Where the board keeps its record of why it started ([`crate::reset`]).
    reset_memory: OptionalCell<&'a dyn ResetMemory>,
    /// The board's power-on RAM test, reported once the core is restored.
    power_on_ram_test: OptionalCell<Result<(), u32>>,
}

/// The Tock error code for a core error, by `infusion_core::tock_error_name`
/// (the single source of the mapping).
pub fn to_tock_error(error: pump_protocol::ErrorCode) -> ErrorCode {
    match infusion_core::tock_error_name(error) {
        "BUSY" => ErrorCode::BUSY,
        "ALREADY" => ErrorCode::ALREADY,
        "OFF" => ErrorCode::OFF,
        "RESERVE" => ErrorCode::RESERVE,
        "INVAL" => ErrorCode::INVAL,
        "SIZE" => ErrorCode::SIZE,
        "CANCEL" => ErrorCode::CANCEL,
        "NOMEM" => ErrorCode::NOMEM,
        "NOSUPPORT" => ErrorCode::NOSUPPORT,
        "NODEVICE" => ErrorCode::NODEVICE,
        "UNINSTALLED" => ErrorCode::UNINSTALLED,
        "NOACK" => ErrorCode::NOACK,
        _ => ErrorCode::FAIL,
    }
}

fn to_command_return(result: CommandResult) -> CommandReturn {
    match result {
        CommandResult::Success => CommandReturn::success(),
        CommandResult::SuccessU32(a) => CommandReturn::success_u32(a),
        CommandResult::SuccessU32U32(a, b) => CommandReturn::success_u32_u32(a, b),
        CommandResult::SuccessU32U32U32(a, b, c) => CommandReturn::success_u32_u32_u32(a, b, c),
        CommandResult::Failure(e) => CommandReturn::failure_u32(to_tock_error(e), e.code().into()),
    }
}

/// The credential-checked identity of a process. Processes without a fixed
/// `ShortId` are `AppId(0)`, which no role table lists.
fn app_id(process_id: ProcessId) -> AppId {
    match process_id.short_app_id() {
        ShortId::Fixed(id) => AppId(id.get()),
        ShortId::LocallyUnique => AppId(0),
    }
}

fn bolus_kind(command_num: u16) -> Option<DeliveryKind> {
    match command_num {
        command::CLINICIAN_BOLUS => Some(DeliveryKind::ClinicianBolus),
        command::PATIENT_BOLUS => Some(DeliveryKind::PatientBolus),
        command::PRIMING_BOLUS => Some(DeliveryKind::Priming),
        command::BRIDGE_BOLUS => Some(DeliveryKind::Bridge),
        _ => None,
    }
}

fn priority_arg(priority: Option<AlarmPriority>) -> usize {
    match priority {
        None => 0,
        Some(AlarmPriority::Low) => 1,
        Some(AlarmPriority::Medium) => 2,
        Some(AlarmPriority::High) | Some(AlarmPriority::Other(_)) => 3,
    }
}

impl<'a, A: Alarm<'a>> Infusion<'a, A> {
    /// The capsule, idle until [`StoreClient::loaded`] hands it the saved
    /// record. `alarm` is used by this capsule alone.
    pub fn new(
        alarm: &'a A,
        apps: Apps,
        config: BoardConfig,
        platform: TockPlatform<'a>,
        core_slot: &'a mut CoreSlot<'a>,
    ) -> Self {
        let core = build_core(core_slot, config, platform);
        Self {
            alarm,
            apps,
            core: TakeCell::new(core),
            self_test_hw: TakeCell::empty(),
            restored: Cell::new(false),
            clock: Clock::new(alarm.now()),
            scratch: MapCell::new(Scratch {
                ro: [0; RO_SCRATCH_LEN],
                rw: [0; RW_SCRATCH_LEN],
            }),
            reset_memory: OptionalCell::empty(),
            power_on_ram_test: OptionalCell::empty(),
        }
    }

    /// Counts the battery from the pump's own work at `profile`'s prices
    /// (SR-BAT-001). Call it before the records are loaded: the restore
    /// then continues the saved count, or starts a new battery.
    pub fn set_energy_profile(&self, profile: infusion_core::energy::EnergyProfile) {
        self.core.map(|core| core.set_energy_profile(profile));
    }

    /// The board's power-on RAM test (`selftest::march_c_minus` over a
    /// scratch region), taken before the stored records load and reported
    /// to the core once they are restored (SR-STS-001).
    pub fn set_power_on_ram_test(&self, outcome: Result<(), u32>) {
        self.power_on_ram_test.set(outcome);
    }

    /// Lends the hourly self-tests (SR-STS-005) the board's program memory,
    /// a RAM region and its second clock. They run once the records are
    /// restored and then whenever the core's next wake-up says so, from the
    /// alarm callback, with nothing else running.
    pub fn set_self_test_hardware(&self, hw: &'a mut (dyn SelfTestHardware<Ram = [u32]> + 'a)) {
        self.self_test_hw.replace(hw);
    }

    /// Runs the hourly self-tests if they are due (the core keeps the
    /// schedule); a no-op on a board that lent no hardware.
    fn run_self_tests(&self, now_ms: u64) {
        self.self_test_hw.map(|hw| {
            self.with_core(|core| core.run_self_tests(hw, now_ms));
        });
    }

    /// A self-test the board ran after boot (SR-STS-001); before the core is
    /// restored it is dropped, as the board runs its tests again later.
    pub fn report_self_test(&self, test: infusion_core::selftest::SelfTest, outcome: Result<(), u32>) {
        let (now_ms, _) = self.now();
        self.with_core(|core| core.on_self_test(test, outcome, now_ms));
        self.settle();
    }

    /// Where the board keeps its record of why it started (see
    /// [`crate::reset`]); read and counted when the stored records have
    /// been restored. Without one, every start is a power-on.
    pub fn set_reset_memory(&self, memory: &'a dyn ResetMemory) {
        self.reset_memory.set(memory);
    }

    /// Core time now, and the tick reading it was taken at.
    fn now(&self) -> (u64, A::Ticks) {
        let ticks = self.alarm.now();
        let ms = self
            .clock
            .now_ms(ticks, <A::Frequency as Frequency>::frequency());
        (ms, ticks)
    }

    /// Runs `f` on the core; `None` before the core is restored.
    fn with_core<R>(&self, f: impl FnOnce(&mut InfusionCore<TockPlatform<'a>>) -> R) -> Option<R> {
        if !self.restored.get() {
            return None;
        }
        self.core.map(f)
    }

    /// After every core call: deliver queued notifications as upcalls and
    /// re-arm the alarm for the core's next wake-up.
    fn settle(&self) {
        // A record that could not be written stops delivery under an alarm
        // (SR-PER-004). The core's own save in that call cannot report back
        // here: the store reports each failure once.
        let storage_fault = self
            .core
            .map(|core| core.platform_mut().take_storage_fault())
            .unwrap_or(false);
        if storage_fault {
            let (now_ms, _) = self.now();
            self.with_core(|core| core.on_storage_fault(now_ms));
        }
        let mut notes = self
            .core
            .map(|core| {
                let platform = core.platform_mut();
                platform.release_held_steps();
                platform.notes.take()
            })
            .unwrap_or(Notes::new());
        self.deliver(&mut notes);
        self.rearm();
    }

    fn deliver(&self, notes: &mut Notes) {
        if notes.iter().next().is_none() {
            return;
        }
        self.apps.each(|process_id, _, kernel_data| {
            let role = self
                .core
                .map_or(Role::None, |core| core.config().role_of(app_id(process_id)));
            for note in notes.iter() {
                schedule(kernel_data, note, role);
            }
        });
    }

    fn rearm(&self) {
        let (now_ms, now_ticks) = self.now();
        let wake = self.core.map(|core| core.next_wakeup()).flatten();
        let until = wake.map_or(MAX_SLEEP_MS, |t| t.saturating_sub(now_ms).min(MAX_SLEEP_MS));
        let frequency = <A::Frequency as Frequency>::frequency();
        let dt = A::Ticks::from_or_max(ms_to_ticks(until, frequency));
        let dt = dt.max(self.alarm.minimum_dt());
        self.alarm.set_alarm(now_ticks, dt);
    }

    /// The syscall command, with the allow buffers copied through the
    /// capsule's scratch buffers (the core works on plain slices). Whatever
    /// the command, the core sees the read-only allow's bytes (up to
    /// [`RO_SCRATCH_LEN`]) and a zeroed buffer as long as the read-write
    /// allow (up to [`RW_SCRATCH_LEN`]), which is copied back whole: so the
    /// glue needs no list of which command uses which allow, and nothing of
    /// an earlier caller can leak into it.
    fn dispatch(
        &self,
        core: &mut InfusionCore<TockPlatform<'a>>,
        kernel_data: &GrantKernelData,
        call: Call,
    ) -> CommandResult {
        let Call {
            caller,
            command_num,
            arg1,
            arg2,
            now_ms,
        } = call;
        self.scratch
            .map(|scratch| {
                let ro_len = kernel_data
                    .get_readonly_processbuffer(allow::RO_INPUT)
                    .and_then(|buffer| {
                        buffer.enter(|slice| {
                            let len = slice.len().min(RO_SCRATCH_LEN);
                            slice[..len].copy_to_slice(&mut scratch.ro[..len]);
                            len
                        })
                    })
                    .unwrap_or(0);
                let output = kernel_data.get_readwrite_processbuffer(allow::RW_OUTPUT);
                let rw_len = output
                    .as_ref()
                    .map_or(0, |buffer| buffer.len().min(RW_SCRATCH_LEN));
                let rw = &mut scratch.rw[..rw_len];
                rw.fill(0);
                let result = core.command(
                    caller,
                    command_num,
                    arg1,
                    arg2,
                    &scratch.ro[..ro_len],
                    rw,
                    now_ms,
                );
                if rw_len > 0 {
                    if let Ok(buffer) = output {
                        let _ = buffer.mut_enter(|slice| {
                            slice[..rw_len].copy_from_slice(&scratch.rw[..rw_len]);
                        });
                    }
                }
                result
            })
            .unwrap_or(CommandResult::Failure(pump_protocol::ErrorCode::Busy))
    }
}

fn schedule(kernel_data: &GrantKernelData, note: Note, role: Role) {
    let (num, args) = match note {
        Note::Core(Notification::DeliveryDone {
            kind,
            outcome,
            volume_nl,
        }) => (
            upcall::DELIVERY_DONE,
            (
                usize::from(kind.code()),
                usize::from(outcome.code()),
                volume_nl as usize,
            ),
        ),
        Note::BolusVerdict {
            kind,
            error,
            volume_nl,
        } => (
            upcall::BOLUS_VERDICT,
            (
                usize::from(kind.code()),
                usize::from(error),
                volume_nl as usize,
            ),
        ),
        Note::Core(Notification::EventsAvailable { count }) => {
            if role != Role::Telemetry {
                return;
            }
            (upcall::EVENTS_AVAILABLE, (count, 0, 0))
        }
        Note::Core(Notification::RelayPosted) => {
            if role != Role::Dosing {
                return;
            }
            (upcall::RELAY_POSTED, (0, 0, 0))
        }
        Note::Core(Notification::RelayAnswered) => {
            if role != Role::Telemetry {
                return;
            }
            (upcall::RELAY_ANSWERED, (0, 0, 0))
        }
        Note::Core(Notification::AlarmChanged(signal)) => (
            upcall::ALARM_CHANGED,
            (
                priority_arg(signal.priority),
                usize::from(signal.audible),
                0,
            ),
        ),
    };
    // A process that has not subscribed simply gets nothing.
    let _ = kernel_data.schedule_upcall(num, args);
}

impl<'a, A: Alarm<'a>> SyscallDriver for Infusion<'a, A> {
    fn command(
        &self,
        command_num: usize,
        r2: usize,
        r3: usize,
        process_id: ProcessId,
    ) -> CommandReturn {
        if command_num == usize::from(command::EXISTS) {
            return CommandReturn::success();
        }
        let Ok(command_num) = u32::try_from(command_num) else {
            return CommandReturn::failure(ErrorCode::NOSUPPORT);
        };
        // Arguments wider than 32 bits (only on 64-bit hosts) saturate, so
        // they fail the core's checks rather than wrap into valid values.
        let arg1 = u32::try_from(r2).unwrap_or(u32::MAX);
        let arg2 = u32::try_from(r3).unwrap_or(u32::MAX);
        let caller = app_id(process_id);
        let (now_ms, _) = self.now();
        let entered = self.apps.enter(process_id, |_, kernel_data| {
            self.with_core(|core| {
                let call = Call {
                    caller,
                    command_num,
                    arg1,
                    arg2,
                    now_ms,
                };
                let result = self.dispatch(core, kernel_data, call);
                let kind = u16::try_from(command_num).ok().and_then(bolus_kind);
                if let Some(kind) = kind {
                    if core.config().role_of(caller) == Role::Dosing {
                        let error = match result {
                            CommandResult::Failure(e) => e.code(),
                            _ => 0,
                        };
                        core.platform_mut().notes.push(Note::BolusVerdict {
                            kind,
                            error,
                            volume_nl: arg1,
                        });
                    }
                }
                result
            })
        });
        let result = match entered {
            Ok(Some(result)) => result,
            Ok(None) => CommandResult::Failure(pump_protocol::ErrorCode::NotReady),
            Err(e) => return CommandReturn::failure(e.into()),
        };
        self.settle();
        to_command_return(result)
    }

    fn allocate_grant(&self, process_id: ProcessId) -> Result<(), kernel::process::Error> {
        self.apps.enter(process_id, |_, _| {})
    }
}

impl<'a, A: Alarm<'a>> crate::logflash::MsClock for Infusion<'a, A> {
    /// Core time: monotonic, and continued across resets once the records
    /// are restored.
    fn now_ms(&self) -> u64 {
        self.now().0
    }
}

impl<'a, A: Alarm<'a>> AlarmClient for Infusion<'a, A> {
    fn alarm(&self) {
        let (now_ms, _) = self.now();
        self.with_core(|core| core.on_timer(now_ms));
        self.run_self_tests(now_ms);
        self.settle();
    }
}

impl<'a, A: Alarm<'a>> FaultClient for Infusion<'a, A> {
    fn fault_input_changed(&self, code: AlarmCode, asserted: bool) {
        let (now_ms, _) = self.now();
        self.with_core(|core| core.on_fault_input(code, asserted, now_ms));
        self.settle();
    }
}

/// Builds the (empty, motor disabled) core in its static slot. Not inlined,
/// so that its frame is only on the stack while it runs.
#[inline(never)]
fn build_core<'a>(
    slot: &'a mut CoreSlot<'a>,
    config: BoardConfig,
    platform: TockPlatform<'a>,
) -> &'a mut InfusionCore<TockPlatform<'a>> {
    slot.write(InfusionCore::new(config, platform))
}

impl<'a, A: Alarm<'a>> crate::faults::AppFaultObserver for Infusion<'a, A> {
    fn app_faulted(&self, app: AppId, restarts: usize, restarting: bool) {
        let (now_ms, _) = self.now();
        self.with_core(|core| {
            // The fault code is not exposed by the kernel; the restart count
            // tells the faults of one app apart.
            core.on_app_fault(app, 0, now_ms);
            if restarting {
                let count = u16::try_from(restarts + 1).unwrap_or(u16::MAX);
                core.on_app_restart(app, count, now_ms);
            }
        });
        self.settle();
    }
}

impl<'a, A: Alarm<'a>> StoreClient for Infusion<'a, A> {
    fn loaded(&self, stored: &StoredRecords<'_>) {
        let (now_ms, _) = self.now();
        if !self.restored.get() {
            self.core.map(|core| {
                core.restore_records(stored, now_ms);
                // The tick counter restarted with the board; core time goes
                // on from the latest time the records know of.
                self.clock.continue_from(core.core_time_ms());
                let (now_ms, _) = self.now();
                let (reason, watchdog_resets) = self
                    .reset_memory
                    .map(|memory| {
                        let mut record = memory.read();
                        let counted = record.count_boot(now_ms);
                        memory.write(&record);
                        counted
                    })
                    .unwrap_or((ResetReason::PowerOn, 0));
                core.on_kernel_start(reason, watchdog_resets, now_ms);
                if let Some(outcome) = self.power_on_ram_test.take() {
                    core.on_self_test(infusion_core::selftest::SelfTest::Ram, outcome, now_ms);
                }
            });
            self.restored.set(true);
            self.run_self_tests(self.now().0);
        }
        self.settle();
    }
}
