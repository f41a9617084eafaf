//! RISC-V semihosting: kernel debug output instead of the UART, and host
//! files (the pump's flash, the simulated mechanism's position) that
//! survive a QEMU restart.
//!
//! The one UART of the `virt` machine is the telemetry link. The UART mux
//! interleaves its clients in chunks, so kernel `debug!` text could land in
//! the middle of a telemetry frame; apps' console writes, by contrast, go out
//! whole. Kernel text therefore goes to QEMU's semihosting console
//! (`-semihosting-config enable=on,chardev=…`), apps' text and frames to the
//! UART.

use core::cell::Cell;
use kernel::deferred_call::{DeferredCall, DeferredCallClient};
use kernel::hil::uart;
use kernel::utilities::cells::{OptionalCell, TakeCell};
use kernel::ErrorCode;

/// SYS_WRITEC: write the byte at the address in the argument.
const SYS_WRITEC: usize = 0x03;
/// SYS_OPEN: `[name, mode, name length]`; returns a handle or -1.
const SYS_OPEN: usize = 0x01;
/// SYS_WRITE: `[handle, data, length]`; returns the bytes *not* written.
const SYS_WRITE: usize = 0x05;
/// SYS_READ: `[handle, buffer, length]`; returns the bytes *not* read.
const SYS_READ: usize = 0x06;
/// SYS_SEEK: `[handle, position]`; returns 0 on success.
const SYS_SEEK: usize = 0x0A;
/// SYS_FLEN: `[handle]`; returns the file's length or -1.
const SYS_FLEN: usize = 0x0C;
/// SYS_GET_CMDLINE: `[buffer, length]`; returns 0 and the length written.
const SYS_GET_CMDLINE: usize = 0x15;

/// SYS_ELAPSED: `[low, high]` get the ticks since QEMU started; returns 0.
const SYS_ELAPSED: usize = 0x30;
/// SYS_TICKFREQ: returns the ticks per second of SYS_ELAPSED.
const SYS_TICKFREQ: usize = 0x31;
/// `fopen` modes of SYS_OPEN.
const MODE_READ_WRITE_BINARY: usize = 3; // "r+b": an existing file
const MODE_CREATE_BINARY: usize = 7; // "w+b": created (or truncated)

fn call(op: usize, block: &mut [usize]) -> usize {
    // SAFETY: every semihosting call made here passes a parameter block
    // that lives for the call, with pointers to buffers that live for the
    // call and are as long as the lengths passed with them; QEMU touches
    // nothing else.
    unsafe { rv32i::semihost_command(op, block.as_mut_ptr() as usize, 0) }
}

/// Writes `text` to the semihosting console at once (SYS_WRITEC), without
/// the debug writer's buffering: for the last words before a hang or a
/// reset.
pub fn print_now(text: &str) {
    for byte in text.as_bytes() {
        // SAFETY: as in `transmit_buffer`.
        unsafe {
            rv32i::semihost_command(SYS_WRITEC, byte as *const u8 as usize, 0);
        }
    }
}

/// The host's monotonic clock since QEMU started, in ms (SYS_ELAPSED at
/// SYS_TICKFREQ); `None` if QEMU does not give it.
pub fn elapsed_ms() -> Option<u64> {
    // SYS_TICKFREQ reads no parameter block; a zeroed word stands in.
    let mut unused = [0usize; 1];
    let freq = call(SYS_TICKFREQ, &mut unused);
    if freq as isize <= 0 {
        return None;
    }
    let mut block = [0usize; 2];
    if call(SYS_ELAPSED, &mut block) != 0 {
        return None;
    }
    let ticks = (block[0] as u64) | ((block[1] as u64) << 32);
    Some(ticks / (freq as u64 / 1000).max(1))
}

/// The semihosting command line (`-semihosting-config arg=…,arg=…`, the
/// arguments joined by spaces) in `buf`; `None` if QEMU was given none.
pub fn command_line(buf: &mut [u8]) -> Option<&[u8]> {
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    if call(SYS_GET_CMDLINE, &mut block) != 0 {
        return None;
    }
    let len = block[1].min(buf.len());
    let line = &buf[..len];
    let end = line.iter().position(|&b| b == 0).unwrap_or(len);
    Some(&line[..end])
}

/// A host file opened through semihosting, read and written at offsets.
pub struct HostFile {
    handle: usize,
    /// Where the host's file position is (`usize::MAX`: unknown), so that
    /// sequential accesses need no seek.
    position: Cell<usize>,
}

impl HostFile {
    /// Opens `name` (relative to QEMU's working directory), creating it if
    /// there is none; if it is shorter than `len`, it is extended to `len`
    /// bytes of `fill`.
    pub fn open(name: &[u8], len: usize, fill: u8) -> Option<Self> {
        let mut path = [0u8; 128];
        let path = path.get_mut(..name.len() + 1)?;
        path[..name.len()].copy_from_slice(name);
        path[name.len()] = 0;
        let open = |mode: usize| {
            let mut block = [path.as_ptr() as usize, mode, name.len()];
            let handle = call(SYS_OPEN, &mut block);
            (handle as isize >= 0).then_some(handle)
        };
        let handle = open(MODE_READ_WRITE_BINARY).or_else(|| open(MODE_CREATE_BINARY))?;
        let file = Self {
            handle,
            position: Cell::new(usize::MAX),
        };
        let mut block = [handle];
        let have = call(SYS_FLEN, &mut block);
        if (have as isize) < 0 {
            return None;
        }
        let chunk = [fill; 256];
        let mut at = have;
        while at < len {
            let n = (len - at).min(chunk.len());
            if !file.write_at(at, &chunk[..n]) {
                return None;
            }
            at += n;
        }
        Some(file)
    }

    /// The semihosting handle (for the watchdog's trap path, which writes
    /// without Rust).
    pub fn handle(&self) -> usize {
        self.handle
    }

    fn seek(&self, at: usize) -> bool {
        if self.position.get() == at {
            return true;
        }
        let mut block = [self.handle, at];
        let ok = call(SYS_SEEK, &mut block) == 0;
        self.position.set(if ok { at } else { usize::MAX });
        ok
    }

    /// Reads `buf.len()` bytes at `at`; false if the host could not.
    pub fn read_at(&self, at: usize, buf: &mut [u8]) -> bool {
        if !self.seek(at) {
            return false;
        }
        let mut block = [self.handle, buf.as_mut_ptr() as usize, buf.len()];
        let ok = call(SYS_READ, &mut block) == 0;
        self.position
            .set(if ok { at + buf.len() } else { usize::MAX });
        ok
    }

    /// Writes `data` at `at`; false if the host could not (all of it).
    pub fn write_at(&self, at: usize, data: &[u8]) -> bool {
        if !self.seek(at) {
            return false;
        }
        let mut block = [self.handle, data.as_ptr() as usize, data.len()];
        let ok = call(SYS_WRITE, &mut block) == 0;
        self.position
            .set(if ok { at + data.len() } else { usize::MAX });
        ok
    }
}

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
