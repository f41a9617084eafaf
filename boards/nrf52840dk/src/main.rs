//! Infusion pump on Tock for the nRF52840-DK.
//!
//! The same capsule, apps, signing keys and role table as the QEMU board, on
//! real pins:
//!
//! | function | pin | notes |
//! |---|---|---|
//! | DRV8834 STEP | P1.01 | one rising edge per step |
//! | DRV8834 DIR | P1.02 | high = infusing |
//! | DRV8834 nENBL | P1.03 | active low |
//! | stall / occlusion detector | P1.04 | input, active low, pull-up |
//! | buzzer | P1.05 | PWM0 |
//! | alarm priority LEDs | LED1 / LED2 / LED3 (P0.13/14/15) | low / medium / high, active low |
//! | patient bolus request | Button 1 (P0.11) | active low; to apps as button 0 |
//! | telemetry link | UARTE0 (TX P0.06, RX P0.08; the DK's USB VCOM) | only the telemetry app (`infusion::policy`) |
//! | console and kernel debug | Segger RTT | apps' text, `debug!` |
//!
//! The pump's records live in the last 392 KiB of the flash, kept apart in
//! two rings (`infusion::storage::FlashRecords`, the same as on QEMU) over
//! the NVMC (`flash`, synchronous: the CPU waits out each program and
//! erase), followed by the telemetry log's region (256 KiB), lent to the
//! telemetry app alone (`infusion::logflash`). Apps load only
//! with a valid ECDSA P-256 signature by one of the three app keys, which
//! also fixes their ShortId (`infusion::appid::RoleKeyShortIds`).
//!
//! The hardware watchdog (`wdt`, 2 s of CPU time, paused in sleep and debug
//! halt) resets the chip when the kernel loop stops iterating; a boot after
//! a watchdog reset says so on RTT.
//!
//! This board has been built, never flashed (no hardware here).

#![no_std]
#![no_main]

use core::num::NonZeroU32;
use core::ptr::{addr_of, addr_of_mut};

use capsules_core::virtualizers::virtual_alarm::VirtualMuxAlarm;
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
use kernel::hil::led::{Led, LedLow};
use kernel::hil::time::{Alarm, Counter};
use kernel::platform::{KernelResources, SyscallDriverLookup};
use kernel::process::ProcessArray;
use kernel::scheduler::round_robin::RoundRobinSched;
use kernel::{create_capability, debug, static_init};
use nrf52840::gpio::Pin;
use nrf52840::interrupt_service::Nrf52840DefaultPeripherals;

mod flash;
mod io;
mod wdt;

#[allow(dead_code)]
mod app_keys {
    include!("../../test-keys/app_keys.rs");
}

/// Dosing, telemetry, one more app, and one spare.
pub const NUM_PROCS: usize = 4;

const STEP_PIN: Pin = Pin::P1_01;
const DIR_PIN: Pin = Pin::P1_02;
const ENABLE_PIN: Pin = Pin::P1_03;
const FAULT_PIN: Pin = Pin::P1_04;
const BUZZER_PIN: Pin = Pin::P1_05;
const LED1_PIN: Pin = Pin::P0_13;
const LED2_PIN: Pin = Pin::P0_14;
const LED3_PIN: Pin = Pin::P0_15;
const BUTTON1_PIN: Pin = Pin::P0_11;
const BUTTON_RST_PIN: Pin = Pin::P0_18;
const LINK_TXD: Pin = Pin::P0_06;
const LINK_RXD: Pin = Pin::P0_08;

type Chip = nrf52840::chip::NRF52<'static, Nrf52840DefaultPeripherals<'static>>;
type Rtc = nrf52840::rtc::Rtc<'static>;
type VAlarm = VirtualMuxAlarm<'static, Rtc>;
type Gpio = nrf52840::gpio::GPIOPin<'static>;
type Motor = StepperMotor<'static, VAlarm, Gpio, Gpio>;
type PwmPin = capsules_core::virtualizers::virtual_pwm::PwmPinUser<'static, nrf52840::pwm::Pwm>;
type BuzzerHw = capsules_extra::buzzer_pwm::PwmBuzzer<'static, VAlarm, PwmPin>;
type AlarmOut = Annunciator<'static, VAlarm, BuzzerHw>;
type Store = FlashRecords<'static, &'static flash::NvmcFlash>;
type LogFlash = infusion::logflash::LogFlash<'static, &'static flash::NvmcFlash>;
type Pump = infusion::Infusion<'static, VAlarm>;
type Verifier = ecdsa_sw::p256_verifier::EcdsaP256SignatureVerifier<'static>;

static mut PROCESSES: Option<&'static ProcessArray<NUM_PROCS>> = None;
static mut CHIP: Option<&'static Chip> = None;
static mut PROCESS_PRINTER: Option<&'static capsules_system::process_printer::ProcessPrinterText> =
    None;

// The capsule's restore at boot needs about 23 KiB of stack (see the QEMU
// board); 32 KiB of the 256 KiB RAM.
kernel::stack_size! {0x8000}

const APP_RESTART_LIMIT: usize = 4;

const DOSING_ID: u32 = infusion::abi::app_id::DOSING;
const TELEMETRY_ID: u32 = infusion::abi::app_id::TELEMETRY;
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

/// This implant's id. A real device reads it from its own identity (FICR or
/// a provisioning record); the development board uses the simulator's.
const DEVICE_ID: u32 = 0x00C0_FFEE;
/// Volume one DRV8834 step moves (calibration of the mechanism).
const NL_PER_STEP: u32 = 250;

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
        // No encoder on this mechanism: the stall detector is the fault input.
        max_steps_without_encoder: 0,
        alarm_silence_ms: 10 * 60_000,
        refill_due_warning_ms: 7 * 86_400_000,
        basal_record_interval_ms: 3_600_000,
    }
}

struct Platform {
    console: &'static capsules_core::console::Console<'static>,
    link: &'static capsules_core::console::Console<'static>,
    alarm: &'static capsules_core::alarm::AlarmDriver<'static, VAlarm>,
    buttons: &'static capsules_core::button::Button<'static, Gpio>,
    ipc: kernel::ipc::IPC<{ NUM_PROCS as u8 }>,
    pump: &'static Pump,
    log_flash: &'static LogFlash,
    filter: infusion::policy::PumpSyscallFilter,
    scheduler: &'static RoundRobinSched<'static>,
    systick: cortexm4::systick::SysTick,
    watchdog: wdt::Wdt,
}

impl SyscallDriverLookup for Platform {
    fn with_driver<F, R>(&self, driver_num: usize, f: F) -> R
    where
        F: FnOnce(Option<&dyn kernel::syscall::SyscallDriver>) -> R,
    {
        match driver_num {
            infusion::DRIVER_NUM => f(Some(self.pump)),
            infusion::policy::LINK_DRIVER_NUM => f(Some(self.link)),
            infusion::logflash::LOG_DRIVER_NUM => f(Some(self.log_flash)),
            capsules_core::console::DRIVER_NUM => f(Some(self.console)),
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
    type SchedulerTimer = cortexm4::systick::SysTick;
    type WatchDog = wdt::Wdt;
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
        &self.systick
    }
    fn watchdog(&self) -> &Self::WatchDog {
        &self.watchdog
    }
    fn context_switch_callback(&self) -> &Self::ContextSwitchCallback {
        &()
    }
}

/// A virtual alarm on the RTC, set up and ready for a client.
macro_rules! virtual_alarm {
    ($mux:expr) => {{
        let alarm: &'static VAlarm = static_init!(VAlarm, VirtualMuxAlarm::new($mux));
        alarm.setup();
        alarm
    }};
}

#[inline(never)]
unsafe fn start() -> (&'static kernel::Kernel, Platform, &'static Chip) {
    extern "C" {
        static _sapps: u8;
        static _eapps: u8;
        static mut _sappmem: u8;
        static _eappmem: u8;
    }

    // Errata, interrupts, peripherals and their circular references.
    nrf52840::init();
    let ieee802154_ack_buf = static_init!(
        [u8; nrf52840::ieee802154_radio::ACK_BUF_SIZE],
        [0; nrf52840::ieee802154_radio::ACK_BUF_SIZE]
    );
    let peripherals = static_init!(
        Nrf52840DefaultPeripherals,
        Nrf52840DefaultPeripherals::new(ieee802154_ack_buf)
    );
    peripherals.init();
    let base = &peripherals.nrf52;

    // RTT first, so a panic from here on has somewhere to go.
    let rtt = components::segger_rtt::SeggerRttMemoryComponent::new()
        .finalize(components::segger_rtt_memory_component_static!());
    io::set_rtt_memory(&*core::ptr::from_mut(rtt.rtt_memory));

    let processes = components::process_array::ProcessArrayComponent::new()
        .finalize(components::process_array_component_static!(NUM_PROCS));
    PROCESSES = Some(processes);
    let board_kernel = static_init!(kernel::Kernel, kernel::Kernel::new(processes.as_slice()));
    let chip = static_init!(Chip, nrf52840::chip::NRF52::new(peripherals));
    CHIP = Some(chip);

    nrf52_components::startup::NrfStartupComponent::new(
        false,
        BUTTON_RST_PIN,
        nrf52840::uicr::Regulator0Output::DEFAULT,
        &base.nvmc,
    )
    .finalize(());

    let memory_allocation_cap = create_capability!(capabilities::MemoryAllocationCapability);

    // ---- Time ----
    let rtc = &base.rtc;
    let _ = rtc.start();
    let mux_alarm = components::alarm::AlarmMuxComponent::new(rtc)
        .finalize(components::alarm_mux_component_static!(Rtc));
    let alarm = components::alarm::AlarmDriverComponent::new(
        board_kernel,
        capsules_core::alarm::DRIVER_NUM,
        mux_alarm,
    )
    .finalize(components::alarm_component_static!(Rtc));

    // ---- Console and kernel debug on RTT; telemetry link on UARTE0 ----
    let rtt_uart = nrf52_components::UartChannelComponent::new(
        nrf52_components::UartChannel::Rtt(rtt),
        mux_alarm,
        &base.uarte0,
    )
    .finalize(nrf52_components::uart_channel_component_static!(Rtc));
    let console_mux = components::console::UartMuxComponent::new(rtt_uart, 115200)
        .finalize(components::uart_mux_component_static!());
    components::debug_writer::DebugWriterComponent::new(
        console_mux,
        create_capability!(capabilities::SetDebugWriterCapability),
    )
    .finalize(components::debug_writer_component_static!());
    let console = components::console::ConsoleComponent::new(
        board_kernel,
        capsules_core::console::DRIVER_NUM,
        console_mux,
    )
    .finalize(components::console_component_static!());

    base.uarte0.initialize(
        nrf52840::pinmux::Pinmux::new(LINK_TXD as u32),
        nrf52840::pinmux::Pinmux::new(LINK_RXD as u32),
        None,
        None,
    );
    let link_mux = components::console::UartMuxComponent::new(&base.uarte0, 115200)
        .finalize(components::uart_mux_component_static!());
    let link = components::console::ConsoleComponent::new(
        board_kernel,
        infusion::policy::LINK_DRIVER_NUM,
        link_mux,
    )
    .finalize(components::console_component_static!());

    // ---- Motor: DRV8834 and the stall/occlusion detector ----
    let gpio = &peripherals.gpio_port;
    let motor_alarm = virtual_alarm!(mux_alarm);
    let motor = static_init!(
        Motor,
        StepperMotor::new(
            &gpio[STEP_PIN],
            &gpio[DIR_PIN],
            &gpio[ENABLE_PIN],
            &gpio[FAULT_PIN],
            motor_alarm,
            StepperConfig {
                enable_mode: ActivationMode::ActiveLow,
                forward: ActivationState::Active,
                fault_mode: ActivationMode::ActiveLow,
                fault_floating: FloatingState::PullUp,
                fault_code: pump_protocol::AlarmCode::MotorStall,
                // DRV8834: STEP high and low at least 1.9 µs; the RTC's
                // 30.5 µs tick is the real floor.
                high_us: 200,
                low_us: 800,
            },
        )
    );
    motor_alarm.set_alarm_client(motor);
    hil::gpio::Interrupt::set_client(&gpio[FAULT_PIN], motor);

    // ---- Alarm output: PWM buzzer, LEDs 1-3 ----
    let mux_pwm = components::pwm::PwmMuxComponent::new(&base.pwm0)
        .finalize(components::pwm_mux_component_static!(nrf52840::pwm::Pwm));
    let buzzer_pwm = components::pwm::PwmPinUserComponent::new(
        mux_pwm,
        nrf52840::pinmux::Pinmux::new(BUZZER_PIN as u32),
    )
    .finalize(components::pwm_pin_user_component_static!(
        nrf52840::pwm::Pwm
    ));
    let buzzer_alarm = virtual_alarm!(mux_alarm);
    let buzzer = static_init!(
        BuzzerHw,
        capsules_extra::buzzer_pwm::PwmBuzzer::new(
            buzzer_pwm,
            buzzer_alarm,
            capsules_extra::buzzer_pwm::DEFAULT_MAX_BUZZ_TIME_MS,
        )
    );
    buzzer_alarm.set_alarm_client(buzzer);
    let led_low = static_init!(LedLow<'static, Gpio>, LedLow::new(&gpio[LED1_PIN]));
    let led_medium = static_init!(LedLow<'static, Gpio>, LedLow::new(&gpio[LED2_PIN]));
    let led_high = static_init!(LedLow<'static, Gpio>, LedLow::new(&gpio[LED3_PIN]));
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

    // ---- Storage: the core's records kept apart, in two rings of NVMC pages ----
    // The NVMC region at the end of the flash (`flash::REGION_START`).
    let nvmc_flash = static_init!(flash::NvmcFlash, flash::NvmcFlash);
    let store = static_init!(
        Store,
        FlashRecords::new(
            nvmc_flash,
            nvmc_flash,
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
    // No fuel gauge on the DK: the capsule counts its own work at the
    // profile's prices (docs/energy.md), set before the records load.
    pump.set_energy_profile(infusion::energy::NRF52840_DK);
    // Power-on RAM test (SR-STS-002) over a scratch region nothing lives in
    // yet; the capsule reports it once the records are restored.
    let ram_scratch = static_init!([u32; 256], [0; 256]);
    let ram_test = infusion::selftest::march_c_minus(&mut ram_scratch[..]).map_err(|i| i as u32);
    if ram_test.is_err() {
        debug!("infusion pump (nrf52840dk): power-on RAM test FAILED");
    }
    pump.set_power_on_ram_test(ram_test);
    motor.init();
    store.load();

    // ---- The telemetry log's flash region, lent to the telemetry app ----
    let log_flash = static_init!(
        LogFlash,
        infusion::logflash::LogFlash::new(
            storage_core::LogRegion::new(
                &*nvmc_flash,
                infusion::storage::LOG_FIRST_PAGE,
                infusion::storage::LOG_PAGES
            )
            .ok(),
            board_kernel.create_grant(infusion::logflash::LOG_DRIVER_NUM, &memory_allocation_cap),
            pump,
        )
    );

    // ---- Button 1: patient bolus request ----
    let buttons = components::button::ButtonComponent::new(
        board_kernel,
        capsules_core::button::DRIVER_NUM,
        components::button_component_helper!(
            Gpio,
            (
                &gpio[BUTTON1_PIN],
                ActivationMode::ActiveLow,
                FloatingState::PullUp
            )
        ),
    )
    .finalize(components::button_component_static!(Gpio));

    nrf52_components::NrfClockComponent::new(&base.clock).finalize(());

    let process_printer = components::process_printer::ProcessPrinterTextComponent::new()
        .finalize(components::process_printer_text_component_static!());
    PROCESS_PRINTER = Some(process_printer);

    let scheduler = components::sched::round_robin::RoundRobinComponent::new(processes)
        .finalize(components::round_robin_component_static!(NUM_PROCS));

    let platform = Platform {
        console,
        link,
        alarm,
        buttons,
        ipc: kernel::ipc::IPC::new(
            board_kernel,
            kernel::ipc::DRIVER_NUM,
            &memory_allocation_cap,
        ),
        pump,
        log_flash,
        filter: infusion::policy::PumpSyscallFilter::new(TELEMETRY_ID),
        scheduler,
        systick: cortexm4::systick::SysTick::new_with_calibration(64_000_000),
        // Started by the kernel loop (`WatchDog::setup`), not here.
        watchdog: wdt::Wdt::new(),
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
    let fault_policy = static_init!(
        infusion::faults::AuditedRestartPolicy<'static>,
        infusion::faults::AuditedRestartPolicy::new(pump, APP_RESTART_LIMIT)
    );
    let app_flash = core::slice::from_raw_parts(
        addr_of!(_sapps),
        addr_of!(_eapps) as usize - addr_of!(_sapps) as usize,
    );
    let app_memory = core::slice::from_raw_parts_mut(
        addr_of_mut!(_sappmem),
        addr_of!(_eappmem) as usize - addr_of!(_sappmem) as usize,
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
        "infusion pump (nrf52840dk): capsule at {:#x}, link on UARTE0",
        infusion::DRIVER_NUM
    );
    // The reset reason for the capsule's KernelStarted event (RAM does not
    // survive here, so no count of resets in a row: see infusion::reset).
    let by_watchdog = wdt::take_watchdog_reset_flag();
    if by_watchdog {
        debug!("infusion pump (nrf52840dk): this boot follows a hardware watchdog reset");
    }
    let reset_memory = static_init!(
        infusion::reset::RamResetMemory,
        infusion::reset::RamResetMemory::new(by_watchdog)
    );
    pump.set_reset_memory(reset_memory);

    (board_kernel, platform, chip)
}

/// Entry point, called by the Cortex-M reset handler.
///
/// # Safety
///
/// Called exactly once, by the reset handler, after RAM is initialised;
/// never returns.
#[no_mangle]
pub unsafe fn main() {
    let main_loop_capability = create_capability!(capabilities::MainLoopCapability);
    let (board_kernel, platform, chip) = start();
    board_kernel.kernel_loop(&platform, chip, Some(&platform.ipc), &main_loop_capability);
}
