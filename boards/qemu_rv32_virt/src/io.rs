//! Panic output: straight to the 16550 UART, then exit QEMU with status 1.

use core::fmt::Write;
use core::panic::PanicInfo;
use core::ptr::{addr_of, addr_of_mut};

use kernel::debug::{self, IoWrite};

use crate::{CHIP, PROCESSES, PROCESS_PRINTER};

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
        // A fresh handle on the same registers: the kernel's UART state may
        // be anything by now.
        qemu_rv32_virt_chip::uart::Uart16550::new(qemu_rv32_virt_chip::uart::UART0_BASE)
            .transmit_sync(buf);
        buf.len()
    }
}

/// Prints the panic, the kernel and process state, and stops the machine.
#[cfg(not(test))]
#[panic_handler]
pub unsafe fn panic_fmt(info: &PanicInfo) -> ! {
    let writer = &mut *addr_of_mut!(PANIC_WRITER);
    let processes = (*addr_of!(PROCESSES)).map_or(&[][..], |p| p.as_slice());
    debug::panic_print(
        writer,
        info,
        &rv32i::support::nop,
        processes,
        &*addr_of!(CHIP),
        &*addr_of!(PROCESS_PRINTER),
    );
    // Semihosting SYS_EXIT with a failure status.
    rv32i::semihost_command(0x18, 1, 0);
    loop {
        rv32i::support::nop();
    }
}
