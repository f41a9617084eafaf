//! Kernel debug output over RISC-V semihosting instead of the UART.
//!
//! The one UART of the `virt` machine is the telemetry link. The UART mux
//! interleaves its clients in chunks, so kernel `debug!` text could land in
//! the middle of a telemetry frame; apps' console writes, by contrast, go out
//! whole. Kernel text therefore goes to QEMU's semihosting console
//! (`-semihosting-config enable=on,chardev=…`), apps' text and frames to the
//! UART.

use kernel::deferred_call::{DeferredCall, DeferredCallClient};
use kernel::hil::uart;
use kernel::utilities::cells::{OptionalCell, TakeCell};
use kernel::ErrorCode;

/// SYS_WRITEC: write the byte at the address in the argument.
const SYS_WRITEC: usize = 0x03;

/// A transmit-only "UART" that writes through semihosting.
pub struct SemihostUart<'a> {
    client: OptionalCell<&'a dyn uart::TransmitClient>,
    buffer: TakeCell<'static, [u8]>,
    len: core::cell::Cell<usize>,
    deferred_call: DeferredCall,
}

impl SemihostUart<'_> {
    pub fn new() -> Self {
        Self {
            client: OptionalCell::empty(),
            buffer: TakeCell::empty(),
            len: core::cell::Cell::new(0),
            deferred_call: DeferredCall::new(),
        }
    }
}

impl uart::Configure for SemihostUart<'_> {
    fn configure(&self, _params: uart::Parameters) -> Result<(), ErrorCode> {
        Ok(())
    }
}

impl<'a> uart::Transmit<'a> for SemihostUart<'a> {
    fn set_transmit_client(&self, client: &'a dyn uart::TransmitClient) {
        self.client.set(client);
    }

    fn transmit_buffer(
        &self,
        buffer: &'static mut [u8],
        len: usize,
    ) -> Result<(), (ErrorCode, &'static mut [u8])> {
        if self.buffer.is_some() {
            return Err((ErrorCode::BUSY, buffer));
        }
        let len = len.min(buffer.len());
        for byte in &buffer[..len] {
            // SAFETY: SYS_WRITEC only reads the one byte at the address,
            // which is live for the call; QEMU implements it without
            // touching anything else.
            unsafe {
                rv32i::semihost_command(SYS_WRITEC, byte as *const u8 as usize, 0);
            }
        }
        self.buffer.replace(buffer);
        self.len.set(len);
        self.deferred_call.set();
        Ok(())
    }

    fn transmit_word(&self, _word: u32) -> Result<(), ErrorCode> {
        Err(ErrorCode::NOSUPPORT)
    }

    fn transmit_abort(&self) -> Result<(), ErrorCode> {
        Ok(())
    }
}

impl<'a> uart::Receive<'a> for SemihostUart<'a> {
    fn set_receive_client(&self, _client: &'a dyn uart::ReceiveClient) {}

    fn receive_buffer(
        &self,
        buffer: &'static mut [u8],
        _len: usize,
    ) -> Result<(), (ErrorCode, &'static mut [u8])> {
        Err((ErrorCode::NOSUPPORT, buffer))
    }

    fn receive_word(&self) -> Result<(), ErrorCode> {
        Err(ErrorCode::NOSUPPORT)
    }

    fn receive_abort(&self) -> Result<(), ErrorCode> {
        Ok(())
    }
}

impl DeferredCallClient for SemihostUart<'_> {
    fn handle_deferred_call(&self) {
        if let Some(buffer) = self.buffer.take() {
            let len = self.len.get();
            self.client
                .map(move |client| client.transmitted_buffer(buffer, len, Ok(())));
        }
    }

    fn register(&'static self) {
        self.deferred_call.register(self);
    }
}
