//! The telemetry link: a console-style driver (write: command 1 with
//! read-only allow 1 and upcall 1; read: command 2 with read-write allow 1
//! and upcall 2) that the boards give to the telemetry app alone.

use core::cell::Cell;
use libtock_platform::allow_ro::AllowRo;
use libtock_platform::share;
use libtock_platform::subscribe::Subscribe;
use libtock_platform::{DefaultConfig, ErrorCode, Syscalls};

/// The link's driver number (out of tree: top bit set).
pub const LINK_DRIVER_NUM: u32 = 0x8000_0101;
/// Command: write the read-only allow's first `len` bytes.
pub const WRITE: u32 = 1;
/// Command: read `len` bytes into the read-write allow.
pub const READ: u32 = 2;
/// Read-only allow of [`WRITE`], read-write allow of [`READ`].
pub const BUFFER: u32 = 1;
/// Upcall when a write is done.
pub const WRITE_DONE: u32 = 1;
/// Upcall when a read is done: `(status, bytes)`.
pub const READ_DONE: u32 = 2;

/// Writing to the link.
pub struct Link<S: Syscalls>(S);

impl<S: Syscalls> Link<S> {
    /// Writes `bytes` and waits until they are out (other upcalls still run
    /// while it waits).
    pub fn write(bytes: &[u8]) -> Result<(), ErrorCode> {
        let done: Cell<Option<(u32,)>> = Cell::new(None);
        share::scope::<
            (
                AllowRo<_, LINK_DRIVER_NUM, BUFFER>,
                Subscribe<_, LINK_DRIVER_NUM, WRITE_DONE>,
            ),
            _,
            _,
        >(|handle| {
            let (allow, subscribe) = handle.split();
            S::allow_ro::<DefaultConfig, LINK_DRIVER_NUM, BUFFER>(allow, bytes)?;
            S::subscribe::<_, _, DefaultConfig, LINK_DRIVER_NUM, WRITE_DONE>(subscribe, &done)?;
            S::command(LINK_DRIVER_NUM, WRITE, bytes.len() as u32, 0).to_result::<(), _>()?;
            while done.get().is_none() {
                S::yield_wait();
            }
            Ok(())
        })
    }
}
