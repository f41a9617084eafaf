//! The telemetry log region: a syscall driver that lends the telemetry app
//! a dedicated flash region for its event log (`telemetry_core::log`).
//!
//! The region is pages [`LOG_FIRST_PAGE`](crate::storage::LOG_FIRST_PAGE)
//! on of the board's [`Flash`], after the core's records; the checks are
//! `storage_core::LogRegion`'s (every address inside the region, NOR rules,
//! erases rationed), this driver only moves bytes between the app's allows
//! and the flash. The boards' syscall filter ([`crate::policy`]) gives the
//! driver to the telemetry app alone. Operations are synchronous, as the
//! boards' flash is.
//!
//! Syscall interface: driver number [`LOG_DRIVER_NUM`], commands and errors
//! in `pump_abi::log_region` (0 exists, 1 geometry, 2 read into read-write
//! allow 0, 3 program from read-only allow 0, 4 erase a page).

use kernel::grant::{AllowRoCount, AllowRwCount, Grant, UpcallCount};
use kernel::processbuffer::{ReadableProcessBuffer, WriteableProcessBuffer};
use kernel::syscall::{CommandReturn, SyscallDriver};
use kernel::utilities::cells::MapCell;
use kernel::{ErrorCode, ProcessId};
use storage_core::{Flash, LogRegion, RegionError};

use infusion_core::abi::log_region as abi;

/// The driver number (out of tree: top bit set).
pub const LOG_DRIVER_NUM: usize = infusion_core::abi::LOG_DRIVER_NUM as usize;

/// Bytes moved per flash call: programs and reads of a record go through
/// the kernel stack in chunks of this size.
const CHUNK: usize = 128;

/// Per-process state: only the two allows.
type Apps = Grant<(), UpcallCount<0>, AllowRoCount<1>, AllowRwCount<1>>;

/// A monotonic clock in milliseconds (the erase budget's time line).
pub trait MsClock {
    /// Milliseconds now.
    fn now_ms(&self) -> u64;
}

/// Counts since boot, for the board's diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogFlashCounts {
    /// Pages erased.
    pub erases: u32,
    /// Erases refused for the budget.
    pub refused_erases: u32,
}

/// The driver. See the module documentation.
pub struct LogFlash<'a, F: Flash> {
    region: MapCell<LogRegion<F>>,
    apps: Apps,
    clock: &'a dyn MsClock,
}

impl<'a, F: Flash> LogFlash<'a, F> {
    /// The driver over `region` (`None`: the region did not fit the device,
    /// and every command but 0 fails with `NODEVICE`).
    pub fn new(region: Option<LogRegion<F>>, apps: Apps, clock: &'a dyn MsClock) -> Self {
        Self {
            region: region.map_or_else(MapCell::empty, MapCell::new),
            apps,
            clock,
        }
    }

    /// Erases done and refused since boot.
    pub fn counts(&self) -> LogFlashCounts {
        self.region
            .map(|r| {
                let (erases, refused_erases) = r.erase_counts();
                LogFlashCounts {
                    erases,
                    refused_erases,
                }
            })
            .unwrap_or_default()
    }
}

fn region_error(error: RegionError) -> ErrorCode {
    match error {
        RegionError::OutOfRange | RegionError::Misaligned => ErrorCode::INVAL,
        RegionError::NotErased => ErrorCode::ALREADY,
        RegionError::EraseBudget => ErrorCode::BUSY,
        RegionError::Device(_) => ErrorCode::FAIL,
    }
}

fn done(result: Result<(), ErrorCode>) -> CommandReturn {
    match result {
        Ok(()) => CommandReturn::success(),
        Err(e) => CommandReturn::failure(e),
    }
}

impl<F: Flash> SyscallDriver for LogFlash<'_, F> {
    fn command(
        &self,
        command_num: usize,
        r2: usize,
        r3: usize,
        process_id: ProcessId,
    ) -> CommandReturn {
        if command_num == 0 {
            return CommandReturn::success();
        }
        let Some(result) = self.region.map(|region| {
            let offset = u32::try_from(r2).map_err(|_| ErrorCode::INVAL);
            match u32::try_from(command_num).unwrap_or(u32::MAX) {
                abi::GEOMETRY => {
                    let g = region.geometry();
                    CommandReturn::success_u32_u32(g.page_size_bytes, g.page_count)
                }
                abi::READ => {
                    done(offset.and_then(|offset| self.read(region, process_id, offset, r3)))
                }
                abi::PROGRAM => {
                    done(offset.and_then(|offset| self.program(region, process_id, offset, r3)))
                }
                abi::ERASE => done(offset.and_then(|page| {
                    region
                        .erase_page(page, self.clock.now_ms())
                        .map_err(region_error)
                })),
                _ => CommandReturn::failure(ErrorCode::NOSUPPORT),
            }
        }) else {
            return CommandReturn::failure(ErrorCode::NODEVICE);
        };
        result
    }

    fn allocate_grant(&self, process_id: ProcessId) -> Result<(), kernel::process::Error> {
        self.apps.enter(process_id, |_, _| {})
    }
}

impl<F: Flash> LogFlash<'_, F> {
    /// Reads `len` bytes at `offset` into the app's read-write allow.
    fn read(
        &self,
        region: &mut LogRegion<F>,
        process_id: ProcessId,
        offset: u32,
        len: usize,
    ) -> Result<(), ErrorCode> {
        self.apps
            .enter(process_id, |_, kernel_data| {
                let buffer = kernel_data
                    .get_readwrite_processbuffer(abi::BUFFER as usize)
                    .map_err(|_| ErrorCode::RESERVE)?;
                buffer
                    .mut_enter(|slice| {
                        let slice = slice.get(..len).ok_or(ErrorCode::INVAL)?;
                        let mut chunk = [0u8; CHUNK];
                        for (i, part) in slice.chunks(CHUNK).enumerate() {
                            let bytes = &mut chunk[..part.len()];
                            let at = u32::try_from(i * CHUNK).map_err(|_| ErrorCode::INVAL)?;
                            region
                                .read(offset.checked_add(at).ok_or(ErrorCode::INVAL)?, bytes)
                                .map_err(region_error)?;
                            part.copy_from_slice(bytes);
                        }
                        Ok(())
                    })
                    .map_err(|_| ErrorCode::RESERVE)?
            })
            .map_err(ErrorCode::from)?
    }

    /// Programs `len` bytes of the app's read-only allow at `offset`.
    fn program(
        &self,
        region: &mut LogRegion<F>,
        process_id: ProcessId,
        offset: u32,
        len: usize,
    ) -> Result<(), ErrorCode> {
        self.apps
            .enter(process_id, |_, kernel_data| {
                let buffer = kernel_data
                    .get_readonly_processbuffer(abi::BUFFER as usize)
                    .map_err(|_| ErrorCode::RESERVE)?;
                buffer
                    .enter(|slice| {
                        let slice = slice.get(..len).ok_or(ErrorCode::INVAL)?;
                        let mut chunk = [0u8; CHUNK];
                        for (i, part) in slice.chunks(CHUNK).enumerate() {
                            let bytes = &mut chunk[..part.len()];
                            part.copy_to_slice(bytes);
                            let at = u32::try_from(i * CHUNK).map_err(|_| ErrorCode::INVAL)?;
                            region
                                .program(offset.checked_add(at).ok_or(ErrorCode::INVAL)?, bytes)
                                .map_err(region_error)?;
                        }
                        Ok(())
                    })
                    .map_err(|_| ErrorCode::RESERVE)?
            })
            .map_err(ErrorCode::from)?
    }
}
