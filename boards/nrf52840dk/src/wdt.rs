//! The nRF52840's hardware watchdog (WDT) as the kernel loop's
//! [`WatchDog`](kernel::platform::watchdog::WatchDog).
//!
//! The pinned Tock revision has no nRF52 WDT driver, so the board carries
//! this one. The kernel calls `setup()` once when its main loop starts and
//! `tickle()` at the top of every loop iteration; a kernel that stops
//! iterating (an endless loop in a capsule, an interrupt handler or a
//! deferred call, or a panic — the panic loop never tickles) is reset by the
//! hardware after [`TIMEOUT_MS`] of CPU time.
//!
//! Behaviour chosen here:
//!
//! - **Timeout 2 s** of running CPU time (`CRV` = 2 × 32 768 − 1 ticks of
//!   the 32.768 kHz LFCLK; the peripheral starts the LFRC itself if no other
//!   low-frequency source runs).
//! - **Paused while the CPU sleeps** (`CONFIG.SLEEP = Pause`). The WDT cannot
//!   be stopped once started, so the kernel's `suspend()` before sleeping
//!   cannot stop it; pausing in sleep is the hardware's equivalent. The
//!   consequence: a kernel that sleeps and is never woken again (a lost
//!   interrupt, an alarm that is never set) is *not* detected by this
//!   watchdog. See docs/safety/residual-risks.md.
//! - **Paused while the debugger halts the CPU** (`CONFIG.HALT = Pause`).
//! - Only reload register `RR[0]` is enabled; it is reloaded with the
//!   product specification's reload value.
//! - Work the kernel does in one go must finish within the timeout: an
//!   app's ECDSA P-256 signature check at load (a deferred call), the
//!   capsule's Ed25519 prescription check, a flash page erase. Their
//!   durations on this chip have not been measured (no hardware here).
//! - A panic ends in a loop that never tickles, so a kernel panic now
//!   resets the chip about 2 s after the panic output instead of blinking
//!   forever.
//!
//! Register map (nRF52840 Product Specification, WDT chapter): base
//! `0x4001_0000`; `TASKS_START` 0x000, `RUNSTATUS` 0x400, `CRV` 0x504,
//! `RREN` 0x508, `CONFIG` 0x50C (`SLEEP` bit 0, `HALT` bit 3; 0 = pause,
//! 1 = run), `RR[0]` 0x600, reload value `0x6E52_4635`; `CRV` at least 0xF;
//! timeout = (`CRV` + 1) / 32 768 s. `CRV`, `RREN` and `CONFIG` are only
//! writable while the watchdog is not running. These values were checked
//! against Nordic's device header definitions as quoted by several public
//! projects, not against the PDF itself, and the driver has never run on
//! hardware (the board has not been flashed here).
//!
//! NOT established: which resets stop the WDT. A power-on, brown-out or
//! watchdog reset certainly does; whether a soft reset (`SYSRESETREQ`), a
//! CPU lockup or the reset pin does is not confirmed here. So `setup()`
//! checks `RUNSTATUS` and, when a watchdog already runs (with whatever
//! configuration it was started with), only reloads it.
//!
//! The only `unsafe` in this module is the creation of the two
//! [`StaticRef`]s to the peripherals' fixed MMIO addresses.

use kernel::utilities::registers::interfaces::{Readable, Writeable};
use kernel::utilities::registers::{
    register_bitfields, register_structs, ReadOnly, ReadWrite, WriteOnly,
};
use kernel::utilities::StaticRef;

/// Watchdog timeout in running CPU time.
pub const TIMEOUT_MS: u32 = 2_000;
/// The WDT's clock: LFCLK, 32 768 Hz.
const LFCLK_HZ: u32 = 32_768;
/// Counter reload value for [`TIMEOUT_MS`]: the WDT times out after
/// `CRV + 1` LFCLK ticks.
const CRV: u32 = TIMEOUT_MS / 1_000 * LFCLK_HZ - 1;
// The product specification's minimum CRV, and a whole number of seconds.
const _: () = assert!(CRV >= 0xF && TIMEOUT_MS % 1_000 == 0);

/// Writing this to an enabled `RR[n]` reloads the counter; any other value
/// does nothing.
const RELOAD_VALUE: u32 = 0x6E52_4635;

register_structs! {
    WdtRegisters {
        /// Start the watchdog.
        (0x000 => tasks_start: WriteOnly<u32, Task::Register>),
        (0x004 => _reserved0),
        /// Whether the watchdog runs.
        (0x400 => runstatus: ReadOnly<u32, RunStatus::Register>),
        (0x404 => _reserved1),
        /// Counter reload value (writable only before start).
        (0x504 => crv: ReadWrite<u32>),
        /// Which reload registers count (writable only before start).
        (0x508 => rren: ReadWrite<u32, ReloadEnable::Register>),
        /// Behaviour in sleep and debug halt (writable only before start).
        (0x50C => config: ReadWrite<u32, Config::Register>),
        (0x510 => _reserved2),
        /// Reload request 0.
        (0x600 => rr0: WriteOnly<u32>),
        (0x604 => @END),
    }
}

register_structs! {
    PowerResetRegisters {
        (0x000 => _reserved0),
        /// Reset reason; a bit stays set until written with 1.
        (0x400 => resetreas: ReadWrite<u32, ResetReason::Register>),
        (0x404 => @END),
    }
}

register_bitfields![u32,
    Task [
        TRIGGER OFFSET(0) NUMBITS(1) []
    ],
    RunStatus [
        RUNNING OFFSET(0) NUMBITS(1) []
    ],
    ReloadEnable [
        RR0 OFFSET(0) NUMBITS(1) []
    ],
    Config [
        SLEEP OFFSET(0) NUMBITS(1) [
            Pause = 0,
            Run = 1
        ],
        HALT OFFSET(3) NUMBITS(1) [
            Pause = 0,
            Run = 1
        ]
    ],
    ResetReason [
        DOG OFFSET(1) NUMBITS(1) []
    ]
];

// SAFETY: 0x4001_0000 is the nRF52840's WDT register block (product
// specification, memory map and WDT chapter): a fixed, always-mapped MMIO
// region, aligned, at least as large as `WdtRegisters`, valid for the whole
// program. Every field is a volatile register cell, so shared references to
// it are sound; nothing else in the kernel touches the WDT.
const WDT_BASE: StaticRef<WdtRegisters> =
    unsafe { StaticRef::new(0x4001_0000 as *const WdtRegisters) };

// SAFETY: 0x4000_0000 is the nRF52840's POWER register block (the same
// address the upstream nrf52 chip crate uses); `PowerResetRegisters` covers
// only its first 0x404 bytes, of which it touches `RESETREAS` alone, a
// volatile register cell. The chip crate's `Power` does not use `RESETREAS`.
const POWER_BASE: StaticRef<PowerResetRegisters> =
    unsafe { StaticRef::new(0x4000_0000 as *const PowerResetRegisters) };

/// The nRF52840 WDT, started by the kernel's main loop.
pub struct Wdt {
    registers: StaticRef<WdtRegisters>,
}

impl Wdt {
    pub const fn new() -> Self {
        Wdt {
            registers: WDT_BASE,
        }
    }

    /// Reloads the counter through `RR[0]`.
    fn reload(&self) {
        self.registers.rr0.set(RELOAD_VALUE);
    }
}

impl kernel::platform::watchdog::WatchDog for Wdt {
    fn setup(&self) {
        let regs = &*self.registers;
        if !regs.runstatus.is_set(RunStatus::RUNNING) {
            regs.crv.set(CRV);
            regs.rren.write(ReloadEnable::RR0::SET);
            regs.config
                .write(Config::SLEEP::Pause + Config::HALT::Pause);
            regs.tasks_start.write(Task::TRIGGER::SET);
        }
        self.reload();
    }

    fn tickle(&self) {
        self.reload();
    }

    /// Called before the CPU sleeps. The WDT cannot be stopped; it pauses by
    /// itself while the CPU sleeps (`CONFIG.SLEEP = Pause`).
    fn suspend(&self) {}

    /// Called after the CPU woke: reload (the trait's default, spelled out).
    fn resume(&self) {
        self.reload();
    }
}

/// Whether the last reset was (among others) a watchdog reset; clears that
/// flag so the next boot reports only a new one.
pub fn take_watchdog_reset_flag() -> bool {
    let power = &*POWER_BASE;
    let by_watchdog = power.resetreas.is_set(ResetReason::DOG);
    if by_watchdog {
        // Write-1-to-clear: only DOG, the other reasons stay as they are.
        power.resetreas.write(ResetReason::DOG::SET);
    }
    by_watchdog
}
