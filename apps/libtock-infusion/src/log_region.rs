//! The telemetry log region: a dedicated flash region the boards lend the
//! telemetry app alone (driver [`LOG_DRIVER_NUM`], numbers and errors in
//! `pump_abi::log_region`). Every call is synchronous: the kernel has read,
//! programmed or erased the flash when it returns.

use libtock_platform::allow_ro::AllowRo;
use libtock_platform::allow_rw::AllowRw;
use libtock_platform::share;
use libtock_platform::{DefaultConfig, ErrorCode, Syscalls};
use pump_abi::log_region as abi;

/// The driver number (out of tree: top bit set).
pub const LOG_DRIVER_NUM: u32 = pump_abi::LOG_DRIVER_NUM;
const BUFFER: u32 = abi::BUFFER;

/// The log region's syscalls.
pub struct LogRegion<S: Syscalls>(S);

impl<S: Syscalls> LogRegion<S> {
    /// `(page bytes, pages)` of the region.
    pub fn geometry() -> Result<(u32, u32), ErrorCode> {
        S::command(LOG_DRIVER_NUM, abi::GEOMETRY, 0, 0).to_result::<(u32, u32), _>()
    }

    /// Reads `buf.len()` bytes at `offset` of the region.
    pub fn read(offset: u32, buf: &mut [u8]) -> Result<(), ErrorCode> {
        let len = buf.len() as u32;
        share::scope::<AllowRw<_, LOG_DRIVER_NUM, BUFFER>, _, _>(|handle| {
            S::allow_rw::<DefaultConfig, LOG_DRIVER_NUM, BUFFER>(handle, buf)?;
            S::command(LOG_DRIVER_NUM, abi::READ, offset, len).to_result::<(), _>()
        })
    }

    /// Programs `data` at `offset` (whole words, over erased words only).
    pub fn program(offset: u32, data: &[u8]) -> Result<(), ErrorCode> {
        share::scope::<AllowRo<_, LOG_DRIVER_NUM, BUFFER>, _, _>(|handle| {
            S::allow_ro::<DefaultConfig, LOG_DRIVER_NUM, BUFFER>(handle, data)?;
            S::command(LOG_DRIVER_NUM, abi::PROGRAM, offset, data.len() as u32).to_result::<(), _>()
        })
    }

    /// Erases page `page` of the region (`BUSY`: the erase budget is spent).
    pub fn erase_page(page: u32) -> Result<(), ErrorCode> {
        S::command(LOG_DRIVER_NUM, abi::ERASE, page, 0).to_result::<(), _>()
    }
}
