//! Infusion pump on Tock for qemu-system-riscv32's `virt` machine.
//!
//! The board sets the machine up itself (rather than through upstream's
//! `qemu_rv32_virt` board library) because the pump must control what that
//! library fixes: a preemptive round-robin scheduler, a process fault policy,
//! which drivers exist, and which apps may run at all.
//!
//! - Apps are loaded by the sequential loader only if an ECDSA P-256
//!   signature by one of the three app-signing keys verifies
//!   (`boards/test-keys`); unsigned and wrongly signed apps do not run.
//! - The verifying key fixes the app's ShortId
//!   ([`infusion::appid::RoleKeyShortIds`]): dosing key → 1, telemetry key →
//!   2, others → an id from the name. The board's role table maps 1 to the
//!   Dosing role and 2 to Telemetry.
//! - The infusion capsule drives simulated hardware (`sim`): a stepper
//!   behind STEP/DIR/ENABLE lines with a stall detector on a fault input, a
//!   buzzer, three priority LEDs. The host reaches
//!   that hardware through a VirtIO keyboard (QEMU monitor `sendkey`): F1 is
//!   Button 1, F5 jams the motor, F6 frees it.
//! - The capsule's records live in flash that survives a QEMU restart: a
//!   host file through semihosting (`flash`), 4 KiB pages with the NVMC's
//!   rules, under the same two rings as on the nRF52840
//!   (`infusion::storage`). The file is the first semihosting argument
//!   (`-semihosting-config …,arg=FILE`), `pump-flash.bin` in QEMU's working
//!   directory without one; the mechanism's position is kept in the second
//!   (`pump-mechanism.bin`), the reset record in the third
//!   (`pump-reset.bin`).
//! - A watchdog (`watchdog`) stops the machine when the kernel loop stops
//!   iterating for 3 s (QEMU exit status `0x57`) after marking the reset
//!   record; the host starts QEMU again on the same files, and the capsule
//!   logs the watchdog reset at the next boot. F10 hangs the kernel loop,
//!   F11 reports a failed self-test (the power-on RAM test runs at every
//!   boot).
//! - The one UART carries the apps' text (console, driver 1) and the
//!   telemetry link (a second console at `infusion::policy::LINK_DRIVER_NUM`
//!   that only the telemetry app may use; text never contains `0x00`, frames
//!   are `0x00 COBS 0x00`; each app write goes out whole). No app may read
//!   the console, so the link's input is the telemetry app's alone (unless
//!   the `process-console` feature starts Tock's process console). Kernel
//!   `debug!` text goes to QEMU's semihosting console instead (`semihost`).

#![no_std]
#![no_main]

use core::num::NonZeroU32;
use core::ptr::{addr_of, addr_of_mut};

use capsules_core::virtualizers::virtual_alarm::{MuxAlarm, VirtualMuxAlarm};
use infusion::annunciator::Annunciator;
use infusion::appid::RoleKeyShortIds;
use infusion::motor::{StepperConfig, StepperMotor};
use infusion::storage::FlashRecords;
use infusion::{AppId, BoardConfig, HardwareLimits, Role};
use kernel::capabilities;
use kernel::component::Component;
use kernel::deferred_call::DeferredCallClient;
use kernel::hil;
use kernel::hil::gpio::{ActivationMode, ActivationState, FloatingState};
use kernel::hil::led::Led;
use kernel::hil::time::Alarm;
use kernel::platform::scheduler_timer::VirtualSchedulerTimer;
use kernel::platform::{KernelResources, SyscallDriverLookup};
use kernel::process::ProcessArray;
use kernel::scheduler::round_robin::RoundRobinSched;
use kernel::utilities::registers::interfaces::ReadWriteable;
use kernel::{create_capability, debug, static_init};
use qemu_rv32_virt_chip::chip::{
    QemuRv32VirtChip, QemuRv32VirtClint, QemuRv32VirtDefaultPeripherals,
};
use rv32i::csr;

mod flash;
mod io;
mod selftest_hw;
mod semihost;
mod sim;
mod watchdog;

#[allow(dead_code)]
mod app_keys {
    include!("../../test-keys/app_keys.rs");
}

use sim::{Line, SimBuzzer, SimInputPin, SimKeys, SimLed, SimMechanism, SimOutputPin};

/// Dosing, telemetry, rogue, and one spare.
pub const NUM_PROCS: usize = 4;

type Chip = QemuRv32VirtChip<'static, QemuRv32VirtDefaultPeripherals<'static>>;
type Clint = QemuRv32VirtClint<'static>;
type VAlarm = VirtualMuxAlarm<'static, Clint>;
type Motor = StepperMotor<'static, VAlarm, SimOutputPin<'static>, SimInputPin<'static>>;
type Pump = infusion::Infusion<'static, VAlarm>;
type Store = FlashRecords<'static, &'static flash::FileFlash>;
type LogFlash = infusion::logflash::LogFlash<'static, &'static flash::FileFlash>;
type AlarmOut = Annunciator<'static, VAlarm, SimBuzzer<'static, VAlarm>>;
type Verifier = ecdsa_sw::p256_verifier::EcdsaP256SignatureVerifier<'static>;

/// Processes, chip and process printer, for the panic handler.
static mut PROCESSES: Option<&'static ProcessArray<NUM_PROCS>> = None;
static mut CHIP: Option<&'static Chip> = None;
static mut PROCESS_PRINTER: Option<&'static capsules_system::process_printer::ProcessPrinterText> =
    None;

// The deepest kernel frame is the capsule's restore at boot (about 23 KiB:
// `InfusionCore::restore_from` decodes and re-verifies the saved state);
// prescription verification on a command needs about 12 KiB.
kernel::stack_size! {0x8000}

/// A faulting app is reported to the capsule (an `AppFault` event and
/// alarm) and restarted; after this many restarts it stays stopped.
const APP_RESTART_LIMIT: usize = 4;

// ---------------------------------------------------------------- identity --

/// ShortIds of the privileged apps (also the keys of the role table).
const DOSING_ID: u32 = infusion::abi::app_id::DOSING;
const TELEMETRY_ID: u32 = infusion::abi::app_id::TELEMETRY;

/// Accepted app-signing key index → ShortId.
static FIXED_SHORT_IDS: [Option<NonZeroU32>; 3] = [
    NonZeroU32::new(DOSING_ID),
    NonZeroU32::new(TELEMETRY_ID),
    None,
];

const NUM_KEYS: usize = 3;
const KEY_LEN: usize = 64;
const HASH_LEN: usize = 32;
const SIG_LEN: usize = 64;

type InMemoryKeys =
    components::signature_verify_in_memory_keys::SignatureVerifyInMemoryKeysComponentType<
        Verifier,
        NUM_KEYS,
        KEY_LEN,
        HASH_LEN,
        SIG_LEN,
    >;

// ----------------------------------------------------------- configuration --

/// This implant's id (the one pumpctl's simulated board uses).
const DEVICE_ID: u32 = 0x00C0_FFEE;
/// Volume of one motor step.
const NL_PER_STEP: u32 = 250;
/// Host files of the flash and of the mechanism's position, when QEMU is
/// given no semihosting arguments (relative to its working directory).
const DEFAULT_FLASH_FILE: &[u8] = b"pump-flash.bin";
const DEFAULT_MECHANISM_FILE: &[u8] = b"pump-mechanism.bin";
const DEFAULT_RESET_FILE: &[u8] = b"pump-reset.bin";

fn board_config() -> BoardConfig {
    let mut roles = heapless::Vec::new();
    let _ = roles.push((AppId(DOSING_ID), Role::Dosing));
    let _ = roles.push((AppId(TELEMETRY_ID), Role::Telemetry));
    let mut clinic_keys = heapless::Vec::new();
    let _ = clinic_keys.push(app_keys::CLINIC_TEST_KEY);
    BoardConfig {
        device_id: DEVICE_ID,
        nl_per_step: NL_PER_STEP,
        limits: HardwareLimits {
            max_rate_nl_per_h: 1_000_000,
            max_bolus_nl: 1_000_000,
            reservoir_capacity_nl: 20_000_000,
            max_volume_per_24h_nl: 10_000_000,
            min_checkin_timeout_ms: 1_000,
            max_checkin_timeout_ms: 3_600_000,
        },
        roles,
        clinic_keys,
        // The simulated mechanism has no encoder; the stall detector is the
        // fault input.
        max_steps_without_encoder: 0,
        alarm_silence_ms: 10 * 60_000,
        refill_due_warning_ms: 7 * 86_400_000,
        basal_record_interval_ms: 3_600_000,
    }
}

// ---------------------------------------------------------------- platform --

struct Platform {
    console: &'static capsules_core::console::Console<'static>,
    link: &'static capsules_core::console::Console<'static>,
    filter: infusion::policy::PumpSyscallFilter,
    alarm: &'static capsules_core::alarm::AlarmDriver<'static, VAlarm>,
    buttons: &'static capsules_core::button::Button<'static, SimInputPin<'static>>,
    ipc: kernel::ipc::IPC<{ NUM_PROCS as u8 }>,
    pump: &'static Pump,
    log_flash: &'static LogFlash,
    scheduler: &'static RoundRobinSched<'static>,
    scheduler_timer: &'static VirtualSchedulerTimer<VAlarm>,
    watchdog: &'static watchdog::KernelLoopWatchdog,
}

impl SyscallDriverLookup for Platform {
    fn with_driver<F, R>(&self, driver_num: usize, f: F) -> R
    where
        F: FnOnce(Option<&dyn kernel::syscall::SyscallDriver>) -> R,
    {
        match driver_num {
            infusion::DRIVER_NUM => f(Some(self.pump)),
            capsules_core::console::DRIVER_NUM => f(Some(self.console)),
            infusion::policy::LINK_DRIVER_NUM => f(Some(self.link)),
            infusion::logflash::LOG_DRIVER_NUM => f(Some(self.log_flash)),
            capsules_core::alarm::DRIVER_NUM => f(Some(self.alarm)),
            capsules_core::button::DRIVER_NUM => f(Some(self.buttons)),
            kernel::ipc::DRIVER_NUM => f(Some(&self.ipc)),
            _ => f(None),
        }
    }
}

impl KernelResources<Chip> for Platform {
    type SyscallDriverLookup = Self;
    type SyscallFilter = infusion::policy::PumpSyscallFilter;
    type ProcessFault = ();
    type Scheduler = RoundRobinSched<'static>;
    type SchedulerTimer = VirtualSchedulerTimer<VAlarm>;
    type WatchDog = watchdog::KernelLoopWatchdog;
    type ContextSwitchCallback = ();

    fn syscall_driver_lookup(&self) -> &Self::SyscallDriverLookup {
        self
    }
    fn syscall_filter(&self) -> &Self::SyscallFilter {
        &self.filter
    }
    fn process_fault(&self) -> &Self::ProcessFault {
        &()
    }
    fn scheduler(&self) -> &Self::Scheduler {
        self.scheduler
    }
    fn scheduler_timer(&self) -> &Self::SchedulerTimer {
        self.scheduler_timer
    }
    fn watchdog(&self) -> &Self::WatchDog {
        self.watchdog
    }
    fn context_switch_callback(&self) -> &Self::ContextSwitchCallback {
        &()
    }
}

/// F8 on the simulated keyboard: each process's RAM and deepest stack use,
/// the watchdog's longest gap between feeds and the flash's work into the
/// kernel log; F9: a process crashes.
struct ProcessList {
    kernel: &'static kernel::Kernel,
    watchdog: &'static watchdog::KernelLoopWatchdog,
    flash: &'static flash::FileFlash,
    store: &'static Store,
    log_flash: &'static LogFlash,
    self_tests: &'static selftest_hw::SelfTestStats,
}

/// Words of the power-on RAM test's scratch region.
const POST_RAM_WORDS: usize = 256;

/// F11 on the simulated keyboard: a hardware self-test fails, as a board
/// test that found a fault would report it (the end to end's injection).
impl sim::SelfTestInjector for Pump {
    fn inject_self_test_failure(&self) {
        self.report_self_test(infusion::selftest::SelfTest::ProgramMemory, Err(0xBAD0_C0DE));
    }
}

impl sim::ProcessReport for ProcessList {
    fn report(&self) {
        let (erases, programs, errors) = self.flash.counts();
        let stats = self.store.stats();
        debug!(
            "[wdt] longest gap between feeds since boot: {} ms (timeout {} ms)",
            self.watchdog.longest_gap_ms(),
            watchdog::TIMEOUT_MS
        );
        debug!(
            "[sim] flash since boot: {} programs, {} page erases, {} I/O errors; state ring {} records written, {} copied; floor ring {} written; {} writes refused",
            programs,
            erases,
            errors,
            stats.state.map_or(0, |s| s.records_written),
            stats.state.map_or(0, |s| s.records_copied),
            stats.floor.map_or(0, |s| s.records_written),
            stats.write_errors
        );
        let log = self.log_flash.counts();
        debug!(
            "[sim] telemetry log region since boot: {} page erases, {} refused (erase budget)",
            log.erases, log.refused_erases
        );
        let (runs, program_bytes) = self.self_tests.counts();
        debug!(
            "[sts] hourly self-tests since boot: {} runs, {} bytes of program memory checked",
            runs, program_bytes
        );
        let capability = create_capability!(capabilities::ProcessManagementCapability);
        self.kernel.process_each_capability(&capability, |process| {
            let a = process.get_addresses();
            let (top, bottom) = (
                a.sram_stack_top.unwrap_or(0),
                a.sram_stack_bottom.unwrap_or(0),
            );
            // The kernel records the stack pointer only when the process
            // is switched out, so this is a lower bound on the real depth
            // (scripts/stack.sh gives the worst case).
            debug!(
                "[sim] process {}: stack seen at context switches {} of {} B, app RAM {} B, restarts {}",
                process.get_process_name(),
                top.saturating_sub(bottom),
                top.saturating_sub(a.sram_start),
                a.sram_app_brk.saturating_sub(a.sram_start),
                process.get_restart_count()
            );
        });
    }

    fn fault(&self, name: &str) {
        let capability = create_capability!(capabilities::ProcessManagementCapability);
        self.kernel.process_each_capability(&capability, |process| {
            if process.get_process_name() == name {
                debug!("[sim] process {}: faulted by the host (F9)", name);
                process.set_fault_state();
            }
        });
    }
}

/// A virtual alarm on the machine timer, set up and ready for a client (a
/// macro: every use needs its own static).
macro_rules! virtual_alarm {
    ($mux:expr) => {{
        let alarm: &'static VAlarm = static_init!(VAlarm, VirtualMuxAlarm::new($mux));
        alarm.setup();
        alarm
    }};
}

/// Finds the VirtIO input device (QEMU `-device virtio-keyboard-device`)
/// and hands its key presses to `client`.
unsafe fn setup_keyboard(
    peripherals: &'static QemuRv32VirtDefaultPeripherals<'static>,
    client: &'static dyn hil::keyboard::KeyboardClient,
) -> bool {
    use hil::keyboard::Keyboard;
    use qemu_rv32_virt_chip::virtio::devices::virtio_input::VirtIOInput;
    use qemu_rv32_virt_chip::virtio::devices::VirtIODeviceType;
    use qemu_rv32_virt_chip::virtio::queues::split_queue::{
        SplitVirtqueue, VirtqueueAvailableRing, VirtqueueDescriptors, VirtqueueUsedRing,
    };
    use qemu_rv32_virt_chip::virtio::queues::Virtqueue;
    use qemu_rv32_virt_chip::virtio::transports::VirtIOTransport;

    let Some(index) = peripherals
        .virtio_mmio
        .iter()
        .position(|device| matches!(device.query(), Ok(VirtIODeviceType::InputDevice)))
    else {
        return false;
    };
    let transport = &peripherals.virtio_mmio[index];

    // Key events arrive on one queue (three buffers), status goes out on another.
    let events = static_init!(
        SplitVirtqueue<3>,
        SplitVirtqueue::new(
            static_init!(VirtqueueDescriptors<3>, VirtqueueDescriptors::default()),
            static_init!(VirtqueueAvailableRing<3>, VirtqueueAvailableRing::default()),
            static_init!(VirtqueueUsedRing<3>, VirtqueueUsedRing::default()),
        )
    );
    events.set_transport(transport);
    let status = static_init!(
        SplitVirtqueue<1>,
        SplitVirtqueue::new(
            static_init!(VirtqueueDescriptors<1>, VirtqueueDescriptors::default()),
            static_init!(VirtqueueAvailableRing<1>, VirtqueueAvailableRing::default()),
            static_init!(VirtqueueUsedRing<1>, VirtqueueUsedRing::default()),
        )
    );
    status.set_transport(transport);

    let input = static_init!(
        VirtIOInput<'static>,
        VirtIOInput::new(events, status, static_init!([u8; 128], [0; 128]))
    );
    events.set_client(input);
    status.set_client(input);
    let queues = static_init!([&'static dyn Virtqueue; 2], [events, status]);
    if transport.initialize(input, queues).is_err() {
        return false;
    }
    input.provide_buffers(
        static_init!([u8; 8], [0; 8]),
        static_init!([u8; 8], [0; 8]),
        static_init!([u8; 8], [0; 8]),
    );
    input.set_client(client);
    true
}

/// Board setup, kept out of `main` so its stack frame is gone before the
/// kernel loop starts.
#[inline(never)]
unsafe fn start() -> (&'static kernel::Kernel, Platform, &'static Chip) {
    extern "C" {
        static _stext: u8;
        static _etext: u8;
        static _sflash: u8;
        static _eflash: u8;
        static _ssram: u8;
        static _esram: u8;
        static _sapps: u8;
        static _eapps: u8;
        static mut _sappmem: u8;
        static _eappmem: u8;
    }

    // Trap handler first, then memory protection, so that most of the setup
    // already runs under the kernel's ePMP configuration. The watchdog's
    // check goes in front of Tock's trap handler.
    rv32i::configure_trap_handler();
    watchdog::install_trap_check();
    let epmp = {
        use rv32i::pmp::kernel_protection_mml_epmp as kp;
        use rv32i::pmp::{NAPOTRegionSpec, TORRegionSpec};
        kp::KernelProtectionMMLEPMP::new(
            kp::FlashRegion(
                NAPOTRegionSpec::from_start_end(addr_of!(_sflash), addr_of!(_eflash)).unwrap(),
            ),
            kp::RAMRegion(
                NAPOTRegionSpec::from_start_end(addr_of!(_ssram), addr_of!(_esram)).unwrap(),
            ),
            // All MMIO of the virt machine lies below 0x2000_0000.
            kp::MMIORegion(
                NAPOTRegionSpec::from_start_size(core::ptr::null(), 0x2000_0000).unwrap(),
            ),
            kp::KernelTextRegion(
                TORRegionSpec::from_start_end(addr_of!(_stext), addr_of!(_etext)).unwrap(),
            ),
        )
        .unwrap()
    };

    let memory_allocation_cap = create_capability!(capabilities::MemoryAllocationCapability);

    let processes = components::process_array::ProcessArrayComponent::new()
        .finalize(components::process_array_component_static!(NUM_PROCS));
    PROCESSES = Some(processes);
    let board_kernel = static_init!(kernel::Kernel, kernel::Kernel::new(processes.as_slice()));

    let peripherals = static_init!(
        QemuRv32VirtDefaultPeripherals,
        QemuRv32VirtDefaultPeripherals::new()
    );

    // ---- UART: console, kernel debug output (and the process console) ----
    let uart_mux = components::console::UartMuxComponent::new(&peripherals.uart0, 115200)
        .finalize(components::uart_mux_component_static!());
    // Kernel debug text goes to semihosting, never into the telemetry link.
    let semihost = static_init!(
        semihost::SemihostUart<'static>,
        semihost::SemihostUart::new()
    );
    semihost.register();
    components::debug_writer::DebugWriterNoMuxComponent::<_, { 2 * 1024 }, _>::new(
        semihost,
        create_capability!(capabilities::SetDebugWriterCapability),
    )
    .finalize(components::debug_writer_no_mux_component_static!(2));

    // ---- Time: the machine timer, shared through a mux ----
    let clint = static_init!(
        Clint,
        QemuRv32VirtClint::new(&qemu_rv32_virt_chip::clint::CLINT_BASE)
    );
    let mux_alarm = static_init!(MuxAlarm<'static, Clint>, MuxAlarm::new(clint));
    hil::time::Alarm::set_alarm_client(clint, mux_alarm);

    let scheduler_alarm = virtual_alarm!(mux_alarm);
    let user_alarm = virtual_alarm!(mux_alarm);
    let alarm = static_init!(
        capsules_core::alarm::AlarmDriver<'static, VAlarm>,
        capsules_core::alarm::AlarmDriver::new(
            user_alarm,
            board_kernel.create_grant(capsules_core::alarm::DRIVER_NUM, &memory_allocation_cap)
        )
    );
    user_alarm.set_alarm_client(alarm);

    // ---- Simulated motor: STEP/DIR/ENABLE lines and the stall detector ----
    let step_pin = static_init!(SimOutputPin<'static>, SimOutputPin::new(Line::Step));
    let dir_pin = static_init!(SimOutputPin<'static>, SimOutputPin::new(Line::Dir));
    let enable_pin = static_init!(SimOutputPin<'static>, SimOutputPin::new(Line::Enable));
    let fault_pin = static_init!(SimInputPin<'static>, SimInputPin::new(false));
    // ---- Host files: the flash, and the mechanism's position ----
    let mut line = [0u8; 256];
    let mut args = semihost::command_line(&mut line)
        .unwrap_or(&[])
        .split(|&b| b == b' ')
        .filter(|a| !a.is_empty());
    let flash_file = args.next().unwrap_or(DEFAULT_FLASH_FILE);
    let mechanism_file = args.next().unwrap_or(DEFAULT_MECHANISM_FILE);
    let reset_file = args.next().unwrap_or(DEFAULT_RESET_FILE);
    let flash = static_init!(flash::FileFlash, flash::FileFlash::open(flash_file));
    let position = semihost::HostFile::open(mechanism_file, 4, 0)
        .map(|file| &*static_init!(semihost::HostFile, file));

    let mechanism_alarm = virtual_alarm!(mux_alarm);
    let mechanism = static_init!(
        SimMechanism<'static, VAlarm>,
        SimMechanism::new(mechanism_alarm, fault_pin, true, position)
    );
    mechanism_alarm.set_alarm_client(mechanism);
    step_pin.set_listener(mechanism);
    dir_pin.set_listener(mechanism);
    enable_pin.set_listener(mechanism);

    let motor_alarm = virtual_alarm!(mux_alarm);
    let motor = static_init!(
        Motor,
        StepperMotor::new(
            step_pin,
            dir_pin,
            enable_pin,
            fault_pin,
            motor_alarm,
            StepperConfig {
                // DRV8834-style nENBL.
                enable_mode: ActivationMode::ActiveLow,
                forward: ActivationState::Active,
                fault_mode: ActivationMode::ActiveHigh,
                fault_floating: FloatingState::PullNone,
                fault_code: pump_protocol::AlarmCode::MotorStall,
                high_us: 500,
                low_us: 500,
            },
        )
    );
    motor_alarm.set_alarm_client(motor);
    hil::gpio::Interrupt::set_client(fault_pin, motor);

    // ---- Simulated alarm output: buzzer and three priority LEDs ----
    let buzzer_alarm = virtual_alarm!(mux_alarm);
    let buzzer = static_init!(SimBuzzer<'static, VAlarm>, SimBuzzer::new(buzzer_alarm));
    buzzer_alarm.set_alarm_client(buzzer);
    let led_low = static_init!(SimLed, SimLed::new("low (yellow)"));
    let led_medium = static_init!(SimLed, SimLed::new("medium (yellow, flashing)"));
    let led_high = static_init!(SimLed, SimLed::new("high (red, flashing)"));
    let annunciator_alarm = virtual_alarm!(mux_alarm);
    let annunciator = static_init!(
        AlarmOut,
        Annunciator::new(
            buzzer,
            annunciator_alarm,
            [
                Some(led_low as &'static dyn Led),
                Some(led_medium as &'static dyn Led),
                Some(led_high as &'static dyn Led),
            ],
        )
    );
    annunciator_alarm.set_alarm_client(annunciator);
    hil::buzzer::Buzzer::set_client(buzzer, annunciator);
    annunciator.init();

    // ---- Flash: the core's records kept apart, in two rings ----
    let store = static_init!(
        Store,
        FlashRecords::new(
            flash,
            flash,
            static_init!(
                [u8; infusion::storage::LOAD_BUFFER_LEN],
                [0; infusion::storage::LOAD_BUFFER_LEN]
            ),
        )
    );
    store.register();

    // ---- The infusion capsule ----
    let pump_alarm = virtual_alarm!(mux_alarm);
    let pump = static_init!(
        Pump,
        infusion::Infusion::new(
            pump_alarm,
            board_kernel.create_grant(infusion::DRIVER_NUM, &memory_allocation_cap),
            board_config(),
            infusion::TockPlatform::new(motor, annunciator, store),
            static_init!(
                infusion::CoreSlot<'static>,
                core::mem::MaybeUninit::uninit()
            ),
        )
    );
    pump_alarm.set_alarm_client(pump);
    motor.set_fault_client(pump);
    store.set_client(pump);
    // Why the machine started: the record the watchdog marks before it
    // stops the machine (a host file: QEMU keeps no RAM across restarts).
    let reset_memory = static_init!(watchdog::ResetFile, watchdog::ResetFile::open(reset_file));
    watchdog::arm_reset_record(reset_memory);
    if infusion::reset::ResetMemory::read(reset_memory).reason() == infusion::ResetReason::Watchdog
    {
        debug!("[wdt] this boot follows a watchdog reset");
    }
    pump.set_reset_memory(reset_memory);
    // Power-on RAM test (SR-STS-002) over a scratch region nothing lives in
    // yet; the capsule reports it once the records are restored.
    let ram_scratch = static_init!([u32; POST_RAM_WORDS], [0; POST_RAM_WORDS]);
    let ram_test = infusion::selftest::march_c_minus(&mut ram_scratch[..]).map_err(|i| i as u32);
    debug!(
        "[post] RAM test over {} bytes: {}",
        POST_RAM_WORDS * 4,
        if ram_test.is_ok() { "passed" } else { "FAILED" }
    );
    pump.set_power_on_ram_test(ram_test);
    // The hourly self-tests (SR-STS-005): the kernel's code, a RAM region
    // of their own and the host's clock; the first run follows the restore.
    let self_test_stats = static_init!(selftest_hw::SelfTestStats, Default::default());
    let self_test_ram = static_init!([u32; selftest_hw::RAM_WORDS], [0; selftest_hw::RAM_WORDS]);
    let self_test_hw = static_init!(
        selftest_hw::QemuSelfTestHardware,
        selftest_hw::QemuSelfTestHardware::new(self_test_ram, self_test_stats)
    );
    pump.set_self_test_hardware(self_test_hw);
    // QEMU has no battery: it counts at the nRF52840-DK's prices, so the end
    // to end exercises the coulomb count, ERI dates and the outlook.
    pump.set_energy_profile(infusion::energy::NRF52840_DK);
    motor.init();
    // Reads the records (in a deferred call); the capsule restores the core
    // from them.
    store.load();

    // ---- The telemetry log's flash region, lent to the telemetry app ----
    let log_flash = static_init!(
        LogFlash,
        infusion::logflash::LogFlash::new(
            storage_core::LogRegion::new(
                &*flash,
                infusion::storage::LOG_FIRST_PAGE,
                infusion::storage::LOG_PAGES
            )
            .ok(),
            board_kernel.create_grant(infusion::logflash::LOG_DRIVER_NUM, &memory_allocation_cap),
            pump,
        )
    );

    // ---- Button 1 (patient bolus request) and the host's keys ----
    let button_pin = static_init!(SimInputPin<'static>, SimInputPin::new(true));
    let buttons = components::button::ButtonComponent::new(
        board_kernel,
        capsules_core::button::DRIVER_NUM,
        components::button_component_helper!(
            SimInputPin<'static>,
            (button_pin, ActivationMode::ActiveLow, FloatingState::PullUp)
        ),
    )
    .finalize(components::button_component_static!(SimInputPin<'static>));
    let kernel_watchdog = static_init!(
        watchdog::KernelLoopWatchdog,
        watchdog::KernelLoopWatchdog::new()
    );
    let process_report = static_init!(
        ProcessList,
        ProcessList {
            kernel: board_kernel,
            watchdog: kernel_watchdog,
            flash,
            store,
            log_flash,
            self_tests: self_test_stats,
        }
    );
    let sim_keys = static_init!(
        SimKeys<'static, VAlarm>,
        SimKeys::new(button_pin, mechanism, process_report, pump)
    );
    let keyboard = setup_keyboard(peripherals, sim_keys);

    // ---- Chip and interrupts ----
    let chip = static_init!(Chip, QemuRv32VirtChip::new(peripherals, clint, epmp));
    CHIP = Some(chip);
    chip.enable_plic_interrupts();
    csr::CSR
        .mie
        .modify(csr::mie::mie::mext::SET + csr::mie::mie::msoft::SET + csr::mie::mie::mtimer::SET);
    csr::CSR.mstatus.modify(csr::mstatus::mstatus::mie::SET);

    // ---- Console and process console ----
    let process_printer = components::process_printer::ProcessPrinterTextComponent::new()
        .finalize(components::process_printer_text_component_static!());
    PROCESS_PRINTER = Some(process_printer);
    let console = components::console::ConsoleComponent::new(
        board_kernel,
        capsules_core::console::DRIVER_NUM,
        uart_mux,
    )
    .finalize(components::console_component_static!());
    // The telemetry link: a second console on the same UART (QEMU has one),
    // usable by the telemetry app only (infusion::policy).
    let link = components::console::ConsoleComponent::new(
        board_kernel,
        infusion::policy::LINK_DRIVER_NUM,
        uart_mux,
    )
    .finalize(components::console_component_static!());
    #[cfg(feature = "process-console")]
    {
        let pconsole = components::process_console::ProcessConsoleComponent::new(
            board_kernel,
            uart_mux,
            mux_alarm,
            process_printer,
            None,
        )
        .finalize(components::process_console_component_static!(Clint));
        let _ = pconsole.start();
    }

    // ---- Scheduler: round robin, preemptive ----
    let scheduler = components::sched::round_robin::RoundRobinComponent::new(processes)
        .finalize(components::round_robin_component_static!(NUM_PROCS));
    let scheduler_timer = static_init!(
        VirtualSchedulerTimer<VAlarm>,
        VirtualSchedulerTimer::new(scheduler_alarm)
    );

    let platform = Platform {
        console,
        link,
        filter: infusion::policy::PumpSyscallFilter::new(TELEMETRY_ID),
        alarm,
        buttons,
        ipc: kernel::ipc::IPC::new(
            board_kernel,
            kernel::ipc::DRIVER_NUM,
            &memory_allocation_cap,
        ),
        pump,
        log_flash,
        scheduler,
        scheduler_timer,
        watchdog: kernel_watchdog,
    };

    // ---- App credentials: ECDSA P-256 over SHA-256, three keys ----
    let sha = components::sha::ShaSoftware256Component::new()
        .finalize(components::sha_software_256_component_static!());
    let keys = static_init!(
        [&'static mut [u8; KEY_LEN]; NUM_KEYS],
        [
            static_init!([u8; KEY_LEN], app_keys::DOSING_KEY),
            static_init!([u8; KEY_LEN], app_keys::TELEMETRY_KEY),
            static_init!([u8; KEY_LEN], app_keys::THIRD_PARTY_KEY),
        ]
    );
    let verifier = static_init!(
        Verifier,
        Verifier::new(static_init!([u8; KEY_LEN], [0; KEY_LEN]))
    );
    verifier.register();
    let in_memory_keys =
        components::signature_verify_in_memory_keys::SignatureVerifyInMemoryKeysComponent::new(
            verifier, keys,
        )
        .finalize(
            components::signature_verify_in_memory_keys_component_static!(
                Verifier, NUM_KEYS, KEY_LEN, HASH_LEN, SIG_LEN,
            ),
        );
    // Requires a credential: apps without a verifying signature never load.
    let signature_policy = components::appid::checker_signature::AppCheckerSignatureComponent::new(
        sha,
        in_memory_keys,
        tock_tbf::types::TbfFooterV2CredentialsType::EcdsaNistP256,
    )
    .finalize(components::app_checker_signature_component_static!(
        InMemoryKeys,
        capsules_extra::sha256::Sha256Software<'static>,
        HASH_LEN,
        SIG_LEN,
    ));
    let checker = components::appid::checker::ProcessCheckerMachineComponent::new(signature_policy)
        .finalize(components::process_checker_machine_component_static!());
    let short_ids = static_init!(RoleKeyShortIds, RoleKeyShortIds::new(&FIXED_SHORT_IDS));
    let storage_permissions =
        components::storage_permissions::null::StoragePermissionsNullComponent::new().finalize(
            components::storage_permissions_null_component_static!(
                Chip,
                kernel::process::ProcessStandardDebugFull,
            ),
        );

    let app_flash = core::slice::from_raw_parts(
        addr_of!(_sapps),
        addr_of!(_eapps) as usize - addr_of!(_sapps) as usize,
    );
    let app_memory = core::slice::from_raw_parts_mut(
        addr_of_mut!(_sappmem),
        addr_of!(_eappmem) as usize - addr_of!(_sappmem) as usize,
    );
    let fault_policy = static_init!(
        infusion::faults::AuditedRestartPolicy<'static>,
        infusion::faults::AuditedRestartPolicy::new(pump, APP_RESTART_LIMIT)
    );
    let _loader = components::loader::sequential::ProcessLoaderSequentialComponent::new(
        checker,
        board_kernel,
        chip,
        fault_policy,
        short_ids,
        storage_permissions,
        app_flash,
        app_memory,
    )
    .finalize(components::process_loader_sequential_component_static!(
        Chip,
        kernel::process::ProcessStandardDebugFull,
        NUM_PROCS
    ));

    debug!(
        "infusion pump (qemu_rv32_virt): capsule at {:#x}, {} app keys, keyboard {}, flash {} ({})",
        infusion::DRIVER_NUM,
        NUM_KEYS,
        if keyboard {
            "found"
        } else {
            "absent (no -device virtio-keyboard-device)"
        },
        core::str::from_utf8(flash_file).unwrap_or("?"),
        if flash.is_open() {
            "open"
        } else {
            "CANNOT BE OPENED: records unreadable, the pump stays stopped"
        }
    );

    (board_kernel, platform, chip)
}

/// Entry point, called by the RISC-V startup code.
///
/// # Safety
///
/// Called exactly once, by the startup code, after RAM is initialised;
/// never returns.
#[no_mangle]
pub unsafe fn main() {
    let main_loop_capability = create_capability!(capabilities::MainLoopCapability);
    let (board_kernel, platform, chip) = start();
    board_kernel.kernel_loop(&platform, chip, Some(&platform.ipc), &main_loop_capability);
}
