//! The core's records kept apart in flash (`docs/persistence.md`): two
//! [`storage_core::RingStore`]s over the board's [`storage_core::Flash`],
//! one for the serial floor and one for every other record, laid out as
//! pumpctl's simulated pump keeps them (`host-tools/pumpctl/src/flashstore.rs`),
//! so the wear figures the simulator measures are the board's.
//!
//! | region | pages (4 KiB) | records |
//! |---|---:|---|
//! | state | [`STATE_PAGES`] = 32, from page 0 | `Prescription`, `Therapy`, `AppRecord`, `Reservation` |
//! | floor | [`FLOOR_PAGES`] = 2, after the state region | `SerialFloor` |
//! | telemetry log | [`LOG_PAGES`] = 64, after the floor | the telemetry app's event log ([`crate::logflash`]) |
//!
//! Writes are synchronous: [`Flash`] models a NOR controller that blocks
//! while it programs or erases (the nRF52840's NVMC; the QEMU board's
//! file-backed flash). A write returns once its record is on flash, or
//! failed; a failed write is reported once ([`RecordStore::take_fault`]),
//! and while the latest `Reservation` or `Therapy` record failed, the motor
//! makes no step ([`RecordStore::is_committed`]).
//!
//! At boot, [`FlashRecords::load`] reads the latest record of each kind in
//! a deferred call and hands them to the capsule as
//! [`StoredRecords`] (`InfusionCore::restore_records`).

use core::cell::Cell;
use infusion_core::{RecordKind, RegionState, StoredRecords, APP_RECORD_MAX_LEN};
use kernel::deferred_call::{DeferredCall, DeferredCallClient};
use kernel::utilities::cells::{MapCell, OptionalCell, TakeCell};
use pump_protocol::prescription::MAX_SIGNED_PRESCRIPTION_LEN;
use storage_core::{Flash, RingStore, StoreStats, MAX_PAYLOAD_BYTES};

use crate::platform::{RecordStore, StoreClient};

/// Bytes in a flash page (the nRF52840's erase unit).
pub const PAGE_BYTES: u32 = 4096;
/// Pages of the state region: 128 KiB.
pub const STATE_PAGES: u32 = 32;
/// Pages of the serial floor's region: 8 KiB.
pub const FLOOR_PAGES: u32 = 2;
/// First page of the state region on the device.
pub const STATE_FIRST_PAGE: u32 = 0;
/// First page of the floor region on the device.
pub const FLOOR_FIRST_PAGE: u32 = STATE_FIRST_PAGE + STATE_PAGES;
/// Pages the store needs on the device.
pub const PAGES: u32 = STATE_PAGES + FLOOR_PAGES;
/// Bytes the store needs on the device: 136 KiB.
pub const FLASH_BYTES: usize = (PAGES * PAGE_BYTES) as usize;
/// Pages of the telemetry log region ([`crate::logflash`]), after the
/// store's: `pump_abi::log_region::PAGES`, 256 KiB.
pub const LOG_PAGES: u32 = infusion_core::abi::log_region::PAGES;
/// First page of the telemetry log region on the device.
pub const LOG_FIRST_PAGE: u32 = PAGES;
/// Pages of the board's flash device: the store's and the log region's.
pub const DEVICE_PAGES: u32 = PAGES + LOG_PAGES;
/// Bytes of the board's flash device: 392 KiB.
pub const DEVICE_BYTES: usize = (DEVICE_PAGES * PAGE_BYTES) as usize;
const _: () = assert!(infusion_core::abi::log_region::PAGE_BYTES == PAGE_BYTES);

/// The largest `Reservation` or `SerialFloor` record the core writes (both
/// are encoded into 32-byte buffers).
const SMALL_RECORD_MAX_LEN: usize = 32;

/// Length of the buffer the board gives [`FlashRecords`] to read the
/// records into at boot: the largest record of every kind.
pub const LOAD_BUFFER_LEN: usize =
    MAX_SIGNED_PRESCRIPTION_LEN + MAX_PAYLOAD_BYTES + APP_RECORD_MAX_LEN + 2 * SMALL_RECORD_MAX_LEN;

/// The record kinds kept, in the order they are read at boot: the state
/// region's first, then the floor's.
const KINDS: [RecordKind; 5] = [
    RecordKind::Prescription,
    RecordKind::Therapy,
    RecordKind::AppRecord,
    RecordKind::Reservation,
    RecordKind::SerialFloor,
];

/// The store's tag for a record kind (the same as pumpctl's simulated pump).
pub fn tag(kind: RecordKind) -> u8 {
    match kind {
        RecordKind::Image => 0,
        RecordKind::Prescription => 1,
        RecordKind::Therapy => 2,
        RecordKind::AppRecord => 3,
        RecordKind::Reservation => 4,
        RecordKind::SerialFloor => 5,
    }
}

/// Kinds whose failed write holds the motor: the ones that account steps.
const STEP_RECORDS: u8 = (1 << 0) | (1 << 2) | (1 << 4);

/// What the store has done since boot, per region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlashRecordsStats {
    /// The state region's store (`None`: it did not mount).
    pub state: Option<StoreStats>,
    /// The floor region's store (`None`: it did not mount).
    pub floor: Option<StoreStats>,
    /// Writes the store refused or the flash failed.
    pub write_errors: u32,
}

/// The two rings. See the module documentation.
pub struct FlashRecords<'a, F: Flash> {
    state: MapCell<RingStore<F>>,
    floor: MapCell<RingStore<F>>,
    load_buf: TakeCell<'static, [u8]>,
    /// Bit `tag` set: the latest write of that kind failed.
    failed: Cell<u8>,
    /// A write failed since the capsule last asked.
    fault: Cell<bool>,
    write_errors: Cell<u32>,
    client: OptionalCell<&'a dyn StoreClient>,
    deferred_call: DeferredCall,
}

impl<'a, F: Flash> FlashRecords<'a, F> {
    /// Mounts both regions of the device: `state_flash` and `floor_flash`
    /// are handles on the same device (pages [`STATE_FIRST_PAGE`] and
    /// [`FLOOR_FIRST_PAGE`] on), which must have at least [`PAGES`] pages of
    /// [`PAGE_BYTES`]. A region that does not mount reads as damaged, and
    /// every write to it fails. `load_buf` is at least [`LOAD_BUFFER_LEN`]
    /// long.
    pub fn new(state_flash: F, floor_flash: F, load_buf: &'static mut [u8]) -> Self {
        let mount = |flash, first, pages| match RingStore::mount(flash, first, pages) {
            Ok(ring) => MapCell::new(ring),
            Err(_) => MapCell::empty(),
        };
        Self {
            state: mount(state_flash, STATE_FIRST_PAGE, STATE_PAGES),
            floor: mount(floor_flash, FLOOR_FIRST_PAGE, FLOOR_PAGES),
            load_buf: TakeCell::new(load_buf),
            failed: Cell::new(0),
            fault: Cell::new(false),
            write_errors: Cell::new(0),
            client: OptionalCell::empty(),
            deferred_call: DeferredCall::new(),
        }
    }

    /// Where the records read at boot go (the capsule).
    pub fn set_client(&self, client: &'a dyn StoreClient) {
        self.client.set(client);
    }

    /// Reads every record, in a deferred call, then calls
    /// [`StoreClient::loaded`].
    pub fn load(&self) {
        self.deferred_call.set();
    }

    /// What the store has done since boot.
    pub fn stats(&self) -> FlashRecordsStats {
        FlashRecordsStats {
            state: self.state.map(|ring| ring.stats()),
            floor: self.floor.map(|ring| ring.stats()),
            write_errors: self.write_errors.get(),
        }
    }

    /// Reads the latest record of every kind and hands them to `f`.
    pub fn read_all<R>(&self, f: impl FnOnce(&StoredRecords<'_>) -> R) -> Option<R> {
        let buf = self.load_buf.take()?;
        let mut spans = [None; KINDS.len()];
        let (state_kinds, floor_kinds) = KINDS.split_at(4);
        let (state_spans, floor_spans) = spans.split_at_mut(4);
        let mut used = 0;
        let state_region = read_region(&self.state, state_kinds, state_spans, buf, &mut used);
        let floor_region = read_region(&self.floor, floor_kinds, floor_spans, buf, &mut used);
        let view: &[u8] = buf;
        let get = |i: usize| {
            spans[i].and_then(|(at, len): (usize, usize)| view.get(at..at.checked_add(len)?))
        };
        let stored = StoredRecords {
            state_region,
            floor_region,
            prescription: get(0),
            therapy: get(1),
            app_record: get(2),
            reservation: get(3),
            serial_floor: get(4),
        };
        let result = f(&stored);
        self.load_buf.replace(buf);
        Some(result)
    }
}

/// Reads `kinds` from `ring` into `buf` from `*used` on; each found record's
/// `(offset, len)` goes into its span.
fn read_region<F: Flash>(
    ring: &MapCell<RingStore<F>>,
    kinds: &[RecordKind],
    spans: &mut [Option<(usize, usize)>],
    buf: &mut [u8],
    used: &mut usize,
) -> RegionState {
    ring.map(|ring| {
        let mut any = false;
        for (kind, span) in kinds.iter().zip(spans.iter_mut()) {
            let Some(free) = buf.get_mut(*used..) else {
                return RegionState::Damaged;
            };
            match ring.read_latest(tag(*kind), free) {
                Ok(Some(len)) => {
                    *span = Some((*used, len));
                    *used += len;
                    any = true;
                }
                Ok(None) => {}
                Err(_) => return RegionState::Damaged,
            }
        }
        if any {
            RegionState::Readable
        } else {
            RegionState::Blank
        }
    })
    .unwrap_or(RegionState::Damaged)
}

impl<F: Flash> RecordStore for FlashRecords<'_, F> {
    fn write(&self, kind: RecordKind, record: &[u8]) {
        let ring = if kind == RecordKind::SerialFloor {
            &self.floor
        } else {
            &self.state
        };
        let written = ring
            .map(|ring| ring.write(tag(kind), record).is_ok())
            .unwrap_or(false);
        let bit = 1u8 << tag(kind);
        if written {
            self.failed.set(self.failed.get() & !bit);
        } else {
            self.failed.set(self.failed.get() | bit);
            self.fault.set(true);
            self.write_errors
                .set(self.write_errors.get().saturating_add(1));
        }
    }

    fn is_committed(&self) -> bool {
        self.failed.get() & STEP_RECORDS == 0
    }

    fn take_fault(&self) -> bool {
        self.fault.replace(false)
    }
}

impl<F: Flash> DeferredCallClient for FlashRecords<'_, F> {
    fn handle_deferred_call(&self) {
        let client = self.client.get();
        self.read_all(|stored| {
            if let Some(client) = client {
                client.loaded(stored);
            }
        });
    }

    fn register(&'static self) {
        self.deferred_call.register(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use core::cell::RefCell;
    use std::vec;
    use std::vec::Vec;
    use storage_core::{FlashError, Geometry, SimFlash};

    /// A handle on one simulated device, shared by the two rings as the
    /// boards share theirs. `broken` fails every operation.
    #[derive(Clone, Copy)]
    struct Shared<'a> {
        flash: &'a RefCell<SimFlash>,
        broken: &'a Cell<bool>,
    }

    impl Flash for Shared<'_> {
        fn geometry(&self) -> Geometry {
            self.flash.borrow().geometry()
        }
        fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError> {
            if self.broken.get() {
                return Err(FlashError::Device);
            }
            self.flash.borrow_mut().read(addr, buf)
        }
        fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
            if self.broken.get() {
                return Err(FlashError::Device);
            }
            self.flash.borrow_mut().program(addr, data)
        }
        fn erase_page(&mut self, page: u32) -> Result<(), FlashError> {
            if self.broken.get() {
                return Err(FlashError::Device);
            }
            self.flash.borrow_mut().erase_page(page)
        }
    }

    fn load_buffer() -> &'static mut [u8] {
        std::boxed::Box::leak(vec![0u8; LOAD_BUFFER_LEN].into_boxed_slice())
    }

    fn store<'a>(device: Shared<'a>) -> FlashRecords<'a, Shared<'a>> {
        FlashRecords::new(device, device, load_buffer())
    }

    /// What a boot reads, owned: the region states and each kind's record.
    fn boot(device: Shared<'_>) -> (RegionState, RegionState, Vec<Option<Vec<u8>>>) {
        store(device)
            .read_all(|s| {
                let own = |r: Option<&[u8]>| r.map(<[u8]>::to_vec);
                (
                    s.state_region,
                    s.floor_region,
                    vec![
                        own(s.prescription),
                        own(s.therapy),
                        own(s.app_record),
                        own(s.reservation),
                        own(s.serial_floor),
                    ],
                )
            })
            .unwrap()
    }

    #[test]
    fn records_come_back_after_a_reboot_in_their_regions() {
        let flash = RefCell::new(SimFlash::nrf52840(PAGES, 1).unwrap());
        let broken = Cell::new(false);
        let device = Shared {
            flash: &flash,
            broken: &broken,
        };
        let (state, floor, records) = boot(device);
        assert_eq!((state, floor), (RegionState::Blank, RegionState::Blank));
        assert!(records.iter().all(Option::is_none));

        let s = store(device);
        s.write(RecordKind::Therapy, b"therapy 1");
        s.write(RecordKind::SerialFloor, b"floor");
        s.write(RecordKind::Prescription, &[7; MAX_SIGNED_PRESCRIPTION_LEN]);
        s.write(RecordKind::AppRecord, &[3; APP_RECORD_MAX_LEN]);
        // Many reservations: the ring moves on, wear levelled.
        for i in 0..15_000u32 {
            s.write(RecordKind::Reservation, &i.to_le_bytes());
        }
        s.write(RecordKind::Therapy, &[9; MAX_PAYLOAD_BYTES]);
        assert!(s.is_committed() && !s.take_fault());
        let stats = s.stats();
        assert!(stats.state.unwrap().pages_erased > 0);
        assert_eq!(stats.floor.unwrap().records_written, 1);
        drop(s);

        let (state, floor, records) = boot(device);
        assert_eq!(
            (state, floor),
            (RegionState::Readable, RegionState::Readable)
        );
        assert_eq!(
            records[0].as_deref(),
            Some(&[7; MAX_SIGNED_PRESCRIPTION_LEN][..])
        );
        assert_eq!(records[1].as_deref(), Some(&[9; MAX_PAYLOAD_BYTES][..]));
        assert_eq!(records[2].as_deref(), Some(&[3; APP_RECORD_MAX_LEN][..]));
        assert_eq!(records[3].as_deref(), Some(&14_999u32.to_le_bytes()[..]));
        assert_eq!(records[4].as_deref(), Some(&b"floor"[..]));
        // The floor is in its own pages: the state region's never hold it.
        let image = flash.borrow().image().to_vec();
        let floor_at = (FLOOR_FIRST_PAGE * PAGE_BYTES) as usize;
        assert!(image[..floor_at].windows(5).all(|w| w != b"floor"));
        assert!(image[floor_at..].windows(5).any(|w| w == b"floor"));
    }

    #[test]
    fn a_region_that_does_not_mount_reads_damaged() {
        let flash = RefCell::new(SimFlash::nrf52840(PAGES, 2).unwrap());
        let broken = Cell::new(false);
        let device = Shared {
            flash: &flash,
            broken: &broken,
        };
        let s = store(device);
        s.write(RecordKind::Therapy, b"therapy");
        s.write(RecordKind::SerialFloor, b"floor");
        drop(s);
        // A valid page header from another ring size in the floor region.
        {
            let mut f = flash.borrow_mut();
            let at = (FLOOR_FIRST_PAGE * PAGE_BYTES) as usize;
            let header: Vec<u8> = f.image()[..16].to_vec();
            let image = f.image_mut();
            image[at..at + 4096].fill(0xFF);
            image[at..at + 16].copy_from_slice(&header);
        }
        let (state, floor, records) = boot(device);
        assert_eq!(
            (state, floor),
            (RegionState::Readable, RegionState::Damaged)
        );
        assert_eq!(records[1].as_deref(), Some(&b"therapy"[..]));
    }

    /// SR-PER-004: every record that cannot reach storage is reported, each
    /// failure once, and while the latest step record failed no step is
    /// released.
    #[test]
    fn sr_per_004_failed_reads_and_writes_are_reported_once_each() {
        let flash = RefCell::new(SimFlash::nrf52840(PAGES, 3).unwrap());
        let broken = Cell::new(true);
        let device = Shared {
            flash: &flash,
            broken: &broken,
        };
        // A device that cannot be read at boot: both regions damaged.
        let (state, floor, _) = boot(device);
        assert_eq!((state, floor), (RegionState::Damaged, RegionState::Damaged));
        let s = store(device);
        assert!(!s.take_fault());
        s.write(RecordKind::Reservation, b"r");
        assert!(!s.is_committed(), "steps wait for their reservation");
        assert!(s.take_fault(), "the record that cannot be written");
        assert!(!s.take_fault(), "reported once");
        s.write(RecordKind::Therapy, b"t");
        assert!(s.take_fault());
        assert_eq!(s.stats().write_errors, 2);

        // The device works again (the store was mounted while it did).
        broken.set(false);
        let s = store(device);
        broken.set(true);
        s.write(RecordKind::AppRecord, b"app");
        assert!(s.take_fault());
        assert!(s.is_committed(), "no step record failed");
        s.write(RecordKind::Therapy, b"t");
        assert!(!s.is_committed() && s.take_fault());
        broken.set(false);
        s.write(RecordKind::Reservation, b"r");
        assert!(!s.is_committed(), "the therapy record is still behind");
        s.write(RecordKind::Therapy, b"t2");
        assert!(s.is_committed() && !s.take_fault());
    }
}
