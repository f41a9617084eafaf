//! Panic output: over Segger RTT (UARTE0 is the telemetry link), then the
//! kernel's panic loop blinking LED 4.

use core::fmt::Write;
use core::panic::PanicInfo;
use core::ptr::{addr_of, addr_of_mut};

use kernel::debug::{self, IoWrite};
use kernel::hil::led;

use crate::{CHIP, PROCESSES, PROCESS_PRINTER};

/// The RTT control block, set once the board has created it.
static mut RTT: Option<&'static segger::rtt::SeggerRttMemory<'static>> = None;

/// Remembers the RTT control block for panics.
pub unsafe fn set_rtt_memory(memory: &'static segger::rtt::SeggerRttMemory<'static>) {
    RTT = Some(memory);
}

struct PanicWriter;

static mut PANIC_WRITER: PanicWriter = PanicWriter;

impl Write for PanicWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

impl IoWrite for PanicWriter {
    fn write(&mut self, buf: &[u8]) -> usize {
        // SAFETY: set once during board setup, read only here.
        if let Some(rtt) = unsafe { *addr_of!(RTT) } {
            rtt.write_sync(buf);
        }
        buf.len()
    }
}

/// Prints the panic and the kernel and process state, then blinks LED 4.
#[cfg(not(test))]
#[panic_handler]
pub unsafe fn panic_fmt(info: &PanicInfo) -> ! {
    let pin = &nrf52840::gpio::GPIOPin::new(nrf52840::gpio::Pin::P0_16);
    let led = &mut led::LedLow::new(pin);
    let writer = &mut *addr_of_mut!(PANIC_WRITER);
    let processes = (*addr_of!(PROCESSES)).map_or(&[][..], |p| p.as_slice());
    debug::panic(
        &mut [led],
        writer,
        info,
        &cortexm4::support::nop,
        processes,
        &*addr_of!(CHIP),
        &*addr_of!(PROCESS_PRINTER),
    )
}
