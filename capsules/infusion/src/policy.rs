//! The boards' system call filter: the telemetry link and the telemetry
//! log's flash region ([`crate::logflash`]) belong to the telemetry app
//! alone, and no app reads the console.
//!
//! The link is a console-style driver at [`LINK_DRIVER_NUM`] (on the
//! nRF52840-DK a UART of its own, on QEMU the shared UART). Only the process
//! with the telemetry app's ShortId may use it, so another app can neither
//! read the programmer's commands nor write frames that look like the pump's.
//! Reading the ordinary console (driver 1, command 2) is refused to every
//! app: on QEMU it shares the link's input, and a reader there could make the
//! link lose bytes.

use kernel::platform::SyscallFilter;
use kernel::process::{Process, ShortId};
use kernel::syscall::Syscall;
use kernel::ErrorCode;

/// Driver number of the telemetry link (out of tree: top bit set).
pub const LINK_DRIVER_NUM: usize = infusion_core::abi::LINK_DRIVER_NUM as usize;

/// Tock's console driver and its read command.
const CONSOLE_DRIVER_NUM: usize = 0x1;
const CONSOLE_READ: usize = 2;

/// The filter. See the module documentation.
pub struct PumpSyscallFilter {
    link_owner: u32,
}

impl PumpSyscallFilter {
    /// `link_owner`: the telemetry app's ShortId.
    pub const fn new(link_owner: u32) -> Self {
        Self { link_owner }
    }
}

impl SyscallFilter for PumpSyscallFilter {
    fn filter_syscall(&self, process: &dyn Process, syscall: &Syscall) -> Result<(), ErrorCode> {
        match syscall.driver_number() {
            Some(LINK_DRIVER_NUM | crate::logflash::LOG_DRIVER_NUM) => match process.short_app_id()
            {
                ShortId::Fixed(id) if id.get() == self.link_owner => Ok(()),
                _ => Err(ErrorCode::NODEVICE),
            },
            Some(CONSOLE_DRIVER_NUM)
                if matches!(
                    syscall,
                    Syscall::Command {
                        subdriver_number: CONSOLE_READ,
                        ..
                    }
                ) =>
            {
                Err(ErrorCode::NODEVICE)
            }
            _ => Ok(()),
        }
    }
}
