//! A watchdog for the kernel loop on QEMU's `virt` machine, which has no
//! watchdog device: a supervisor built from the machine's Goldfish RTC
//! alarm and a trap-entry check.
//!
//! - **Feeding.** The kernel calls [`KernelLoopWatchdog::tickle`] at the top
//!   of every loop iteration (`KernelResources::WatchDog`); each call moves
//!   the RTC alarm (`0x0010_1000`, PLIC source 11, QEMU's wall clock) to
//!   [`TIMEOUT_MS`] from now. Before the kernel sleeps it disarms the alarm
//!   (`suspend`) and re-arms it when it wakes (`resume`), as the nRF52840's
//!   WDT pauses in sleep: a kernel asleep with no wake-up pending is not
//!   caught (as on the nRF, RR-45).
//! - **Biting.** If the loop stops iterating for [`TIMEOUT_MS`], the alarm
//!   raises its interrupt line. The kernel's own trap handler only masks
//!   interrupts and leaves them to the (hung) loop, so the board installs a
//!   first-level trap vector, `_pump_watchdog_trap`, in front of Tock's
//!   `_start_trap`: on a machine external interrupt whose PLIC pending bits
//!   include the RTC's, it writes [`WATCHDOG_MARK`] at the start of the
//!   reset record (a host file, through semihosting calls whose parameter
//!   blocks [`arm_reset_record`] prepared at boot), says so on the
//!   semihosting console, and stops the machine through the `virt` test
//!   device (`0x0010_0000`) with exit status [`EXIT_STATUS`]. The host's
//!   power supervisor (the end to end, `boards/pump-e2e`) starts QEMU again
//!   on the same flash: that is the reset. Any other trap goes to
//!   `_start_trap` with every register as it was (the check borrows only
//!   `t0`, saved in `sscratch`, which Tock does not use).
//!
//!   Why not reset the machine in place (test device value `0x7777`): QEMU
//!   10's CPU reset clears the PMP entries but not `mseccfg.MML`, which
//!   the kernel's ePMP sets, so after such a reset machine mode may execute
//!   nothing and the hart faults forever at its trap vector (seen here).
//! - **What it catches.** A kernel loop that stops iterating with interrupts
//!   enabled: an endless loop in a capsule, a deferred call or an interrupt
//!   bottom half (the F10 key hangs the loop in one). Not: a hang with
//!   interrupts disabled (no trap can be taken; the nRF's hardware WDT
//!   catches that), or a panic (the QEMU panic handler exits QEMU).
//! - **Next boot.** The capsule reads the record
//!   ([`infusion::reset::ResetRecord`], kept by [`ResetFile`]), logs
//!   `KernelStarted` with reason watchdog and the resets in a row, and the
//!   core raises `RepeatedResets` from the second in a row. A boot that
//!   finds the record without the mark (QEMU killed: a power cut) counts as
//!   a power-on.

use core::cell::Cell;

use infusion::reset::{ResetMemory, ResetRecord, WATCHDOG_MARK};
use kernel::platform::watchdog::WatchDog;
use kernel::utilities::registers::interfaces::{Readable, Writeable};
use kernel::utilities::registers::{register_structs, ReadOnly, ReadWrite, WriteOnly};
use kernel::utilities::StaticRef;

/// The kernel loop must come round within this (wall-clock) time. The
/// longest legitimate gap measured between two feeds on this machine is
/// printed with F8 (`[wdt] longest gap between feeds`).
pub const TIMEOUT_MS: u64 = 3_000;

register_structs! {
    GoldfishRtcRegisters {
        (0x00 => time_low: ReadOnly<u32>),
        (0x04 => time_high: ReadOnly<u32>),
        (0x08 => alarm_low: ReadWrite<u32>),
        (0x0C => alarm_high: ReadWrite<u32>),
        (0x10 => irq_enabled: ReadWrite<u32>),
        (0x14 => clear_alarm: WriteOnly<u32>),
        (0x18 => alarm_status: ReadOnly<u32>),
        (0x1C => clear_interrupt: WriteOnly<u32>),
        (0x20 => @END),
    }
}

// SAFETY: the Goldfish RTC's fixed MMIO address on QEMU's `virt` machine.
const RTC: StaticRef<GoldfishRtcRegisters> =
    unsafe { StaticRef::new(0x0010_1000 as *const GoldfishRtcRegisters) };

/// QEMU's exit status when the watchdog stops the machine: `W`.
pub const EXIT_STATUS: u32 = 0x57;

/// Semihosting parameter blocks the watchdog's trap path uses, prepared at
/// boot ([`arm_reset_record`]): `[0..2]` SYS_SEEK (handle, 0), `[2..5]`
/// SYS_WRITE (handle, address of `[5]`, 4), `[5]` the mark, `[6]` 1 when
/// armed.
#[no_mangle]
static mut PUMP_WATCHDOG_BLOCKS: [usize; 7] = [0; 7];

/// The RTC's source number on the `virt` machine's PLIC (QEMU's
/// `VIRT_RTC_IRQ`; the chip crate's private `interrupts::RTC`).
const RTC_IRQ: u32 = 11;

core::arch::global_asm!(
    "
    .pushsection .rodata.pump_watchdog_message, \"a\", @progbits
.Lpump_watchdog_message:
    .asciz \"[wdt] the kernel loop was not fed for {timeout} ms: stopping the machine\\n\"
    .popsection

    .pushsection .text.pump_watchdog_trap, \"ax\", @progbits
    .balign 4
    .global _pump_watchdog_trap
_pump_watchdog_trap:
    csrw sscratch, t0
    csrr t0, mcause
    bgez t0, 1f                 // an exception: not ours
    andi t0, t0, 0x3ff          // the interrupt's cause number
    addi t0, t0, -11            // a machine external interrupt?
    bnez t0, 1f
    li   t0, 0x0C001000         // PLIC pending bits, sources 0-31
    lw   t0, 0(t0)
    srli t0, t0, {irq}
    andi t0, t0, 1
    bnez t0, 2f                 // the RTC's line: the watchdog bit
1:
    csrr t0, sscratch
    j    {start_trap}

2:
    la   t1, {blocks}
    lw   t0, 24(t1)             // armed?
    beqz t0, 4f
    li   a0, 0x0A               // SYS_SEEK to the record's start
    mv   a1, t1
    .balign 16
    .option push
    .option norelax
    .option norvc
    slli x0, x0, 0x1f
    ebreak
    srai x0, x0, 7
    .option pop
    la   a1, {blocks}
    addi a1, a1, 8
    li   a0, 0x05               // SYS_WRITE the mark
    .balign 16
    .option push
    .option norelax
    .option norvc
    slli x0, x0, 0x1f
    ebreak
    srai x0, x0, 7
    .option pop
4:
    li   a0, 0x04               // SYS_WRITE0: say why
    la   a1, .Lpump_watchdog_message
    .balign 16
    .option push
    .option norelax
    .option norvc
    slli x0, x0, 0x1f
    ebreak
    srai x0, x0, 7
    .option pop
    li   t0, 0x00100000         // the virt test device:
    li   t1, {exit}             // stop QEMU with EXIT_STATUS
    sw   t1, 0(t0)
3:
    j    3b
    .popsection
    ",
    timeout = const TIMEOUT_MS,
    irq = const RTC_IRQ,
    exit = const (EXIT_STATUS << 16) | 0x3333,
    blocks = sym PUMP_WATCHDOG_BLOCKS,
    start_trap = sym rv32i::_start_trap,
);

extern "C" {
    fn _pump_watchdog_trap();
}

/// Puts the watchdog's check in front of Tock's trap handler. Call after
/// `rv32i::configure_trap_handler`.
///
/// # Safety
///
/// Changes the machine trap vector; call once, during board setup.
pub unsafe fn install_trap_check() {
    use kernel::utilities::registers::interfaces::Writeable as _;
    use rv32i::csr;
    csr::CSR.mtvec.write(
        csr::mtvec::mtvec::trap_addr.val(_pump_watchdog_trap as usize >> 2)
            + csr::mtvec::mtvec::mode::CLEAR,
    );
}

/// The reset record in a host file (QEMU keeps no RAM across the
/// watchdog's restart): read and written by the capsule at boot, its mark
/// written by the watchdog's trap path.
pub struct ResetFile {
    file: Option<crate::semihost::HostFile>,
}

const RECORD_LEN: usize = core::mem::size_of::<ResetRecord>();

impl ResetFile {
    /// Opens (or creates, zeroed) the record's file.
    pub fn open(name: &[u8]) -> Self {
        Self {
            file: crate::semihost::HostFile::open(name, RECORD_LEN, 0),
        }
    }
}

impl ResetMemory for ResetFile {
    fn read(&self) -> ResetRecord {
        let mut bytes = [0u8; RECORD_LEN];
        if !self.file.as_ref().is_some_and(|f| f.read_at(0, &mut bytes)) {
            return ResetRecord::default();
        }
        ResetRecord::from_bytes(&bytes)
    }

    fn write(&self, record: &ResetRecord) {
        if let Some(file) = &self.file {
            let _ = file.write_at(0, &record.to_bytes());
        }
    }
}

/// Prepares the trap path's semihosting calls on the record's file.
///
/// # Safety
///
/// Call once, during board setup, before the kernel loop starts the
/// watchdog.
pub unsafe fn arm_reset_record(record: &'static ResetFile) {
    let Some(handle) = record.file.as_ref().map(|f| f.handle()) else {
        return;
    };
    let blocks = &mut *core::ptr::addr_of_mut!(PUMP_WATCHDOG_BLOCKS);
    blocks[0] = handle;
    blocks[1] = 0;
    blocks[2] = handle;
    blocks[3] = core::ptr::addr_of!(blocks[5]) as usize;
    blocks[4] = 4;
    blocks[5] = WATCHDOG_MARK as usize;
    blocks[6] = 1;
}

fn now_ns() -> u64 {
    // Reading the low word latches the high one.
    let low = RTC.time_low.get();
    let high = RTC.time_high.get();
    (u64::from(high) << 32) | u64::from(low)
}

/// The kernel loop's watchdog. See the module documentation.
pub struct KernelLoopWatchdog {
    /// When the loop last fed it while awake (`None`: since a sleep).
    fed_at_ns: Cell<Option<u64>>,
    longest_gap_ns: Cell<u64>,
}

impl KernelLoopWatchdog {
    pub const fn new() -> Self {
        Self {
            fed_at_ns: Cell::new(None),
            longest_gap_ns: Cell::new(0),
        }
    }

    /// The longest time between two feeds while awake, in ms.
    pub fn longest_gap_ms(&self) -> u64 {
        self.longest_gap_ns.get() / 1_000_000
    }

    fn arm(&self) {
        let now = now_ns();
        if let Some(fed) = self.fed_at_ns.get() {
            let gap = now.saturating_sub(fed);
            if gap > self.longest_gap_ns.get() {
                self.longest_gap_ns.set(gap);
            }
        }
        self.fed_at_ns.set(Some(now));
        let at = now.saturating_add(TIMEOUT_MS * 1_000_000);
        RTC.alarm_high.set((at >> 32) as u32);
        // Writing the low word arms the alarm.
        RTC.alarm_low.set(at as u32);
    }
}

impl WatchDog for KernelLoopWatchdog {
    fn setup(&self) {
        RTC.clear_alarm.set(1);
        RTC.clear_interrupt.set(1);
        RTC.irq_enabled.set(1);
        self.arm();
    }

    fn tickle(&self) {
        self.arm();
    }

    fn suspend(&self) {
        RTC.clear_alarm.set(1);
        self.fed_at_ns.set(None);
    }

    fn resume(&self) {
        self.arm();
    }
}
