//! The simulated pump's nonvolatile memory: the capsule's records on a model
//! of the nRF52840's flash (4 KiB pages, 10 000 erase cycles), through the
//! same ring store the firmware is to use (`storage-core`). See
//! `docs/persistence.md` for the records and `docs/persistence-store.md` for
//! the format.

use infusion_core::{RecordKind, RegionState, StoredRecords};
use serde::Serialize;
use storage_core::wear::WearInput;
use storage_core::{RingStore, SimFlash, StoreStats, DEFAULT_ENDURANCE_CYCLES};

/// Pages of the state region (every record but the serial floor): 128 KiB.
pub const STATE_PAGES: u32 = 32;
/// Pages of the serial floor's own region: 8 KiB.
pub const FLOOR_PAGES: u32 = 2;

const KINDS: [RecordKind; 5] = [
    RecordKind::Prescription,
    RecordKind::Therapy,
    RecordKind::AppRecord,
    RecordKind::Reservation,
    RecordKind::SerialFloor,
];

fn tag(kind: RecordKind) -> u8 {
    match kind {
        RecordKind::Image => 0,
        RecordKind::Prescription => 1,
        RecordKind::Therapy => 2,
        RecordKind::AppRecord => 3,
        RecordKind::Reservation => 4,
        RecordKind::SerialFloor => 5,
    }
}

/// The two regions, and what was written to them since the pump was made.
pub struct PumpFlash {
    state: Region,
    floor: Region,
    /// Records written, by kind (in [`KINDS`] order).
    pub records_written: [u64; 5],
    /// Payload bytes handed to the store.
    pub payload_bytes: u64,
    /// Writes the store refused (each would be a storage fault on a board).
    pub write_errors: u64,
}

struct Region {
    ring: Option<RingStore<SimFlash>>,
    /// Stats of earlier mounts (a mount starts its own).
    earlier: StoreStats,
    pages: u32,
    damaged: bool,
}

impl Region {
    fn new(pages: u32, seed: u64) -> Self {
        let flash = SimFlash::nrf52840(pages, seed).expect("a valid geometry");
        Self::mounted(flash, pages, StoreStats::default())
    }

    fn mounted(flash: SimFlash, pages: u32, earlier: StoreStats) -> Self {
        match RingStore::mount(flash, 0, pages) {
            Ok(ring) => Self {
                ring: Some(ring),
                earlier,
                pages,
                damaged: false,
            },
            Err(_) => Self {
                ring: None,
                earlier,
                pages,
                damaged: true,
            },
        }
    }

    fn remount(self) -> Self {
        let Some(ring) = self.ring else {
            return self;
        };
        let earlier = add(self.earlier, ring.stats());
        let mut flash = ring.into_flash();
        flash.power_on();
        Self::mounted(flash, self.pages, earlier)
    }

    fn stats(&self) -> StoreStats {
        self.ring
            .as_ref()
            .map_or(self.earlier, |r| add(self.earlier, r.stats()))
    }
}

fn add(a: StoreStats, b: StoreStats) -> StoreStats {
    StoreStats {
        records_written: a.records_written + b.records_written,
        records_copied: a.records_copied + b.records_copied,
        bytes_written: a.bytes_written + b.bytes_written,
        bytes_copied: a.bytes_copied + b.bytes_copied,
        bytes_abandoned: a.bytes_abandoned + b.bytes_abandoned,
        pages_opened: a.pages_opened + b.pages_opened,
        pages_erased: a.pages_erased + b.pages_erased,
        records_lost: a.records_lost + b.records_lost,
    }
}

/// Records read back at boot, owned.
#[derive(Default)]
pub struct ReadBack {
    records: [Option<Vec<u8>>; 5],
    state_region: Option<RegionState>,
    floor_region: Option<RegionState>,
}

impl ReadBack {
    /// What the core restores from.
    pub fn stored(&self) -> StoredRecords<'_> {
        let get = |kind: RecordKind| {
            let i = KINDS.iter().position(|k| *k == kind)?;
            self.records[i].as_deref()
        };
        StoredRecords {
            state_region: self.state_region.unwrap_or(RegionState::Blank),
            floor_region: self.floor_region.unwrap_or(RegionState::Blank),
            prescription: get(RecordKind::Prescription),
            therapy: get(RecordKind::Therapy),
            app_record: get(RecordKind::AppRecord),
            reservation: get(RecordKind::Reservation),
            serial_floor: get(RecordKind::SerialFloor),
        }
    }
}

/// The `storage` section of `summary.json`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StorageSummary {
    /// Records written, by kind.
    pub records_written: std::collections::BTreeMap<String, u64>,
    /// Payload bytes handed to the store.
    pub payload_bytes: u64,
    /// Flash bytes programmed (headers, padding and copies forward included).
    pub flash_bytes_programmed: u64,
    /// Page erases, all regions.
    pub page_erases: u64,
    /// Erases of the most-erased page of the state region.
    pub max_erases_per_page: u32,
    /// Mean erases per page of the state region, × 100.
    pub mean_erases_per_page_x100: u64,
    /// Rated cycles per page.
    pub endurance_cycles: u32,
    /// Pages of the state region.
    pub state_region_pages: u32,
    /// Years until the state region's most-worn page reaches its endurance
    /// at this run's rate, × 100 (`null`: nothing written).
    pub projected_years_to_wear_out_x100: Option<u64>,
    /// Writes the store refused.
    pub write_errors: u64,
}

impl PumpFlash {
    /// A blank (erased) device.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Region::new(STATE_PAGES, seed),
            floor: Region::new(FLOOR_PAGES, seed ^ 0x5EED),
            records_written: [0; 5],
            payload_bytes: 0,
            write_errors: 0,
        }
    }

    /// Writes a record to its region.
    pub fn write(&mut self, kind: RecordKind, record: &[u8]) {
        let region = if kind == RecordKind::SerialFloor {
            &mut self.floor
        } else {
            &mut self.state
        };
        let written = region
            .ring
            .as_mut()
            .is_some_and(|ring| ring.write(tag(kind), record).is_ok());
        if written {
            if let Some(i) = KINDS.iter().position(|k| *k == kind) {
                self.records_written[i] += 1;
            }
            self.payload_bytes += record.len() as u64;
        } else {
            self.write_errors += 1;
        }
    }

    /// Arms a power cut in the state region: `ops` more flash operations
    /// complete, the next is torn, and the pump is dead until [`Self::reboot`].
    pub fn cut_power_after(&mut self, ops: u64) {
        if let Some(ring) = self.state.ring.as_mut() {
            ring.flash_mut().cut_power_after(ops);
        }
    }

    /// Flash operations the state region has seen.
    pub fn state_ops(&self) -> u64 {
        self.state.ring.as_ref().map_or(0, |r| r.flash().ops())
    }

    /// Power is lost: nothing runs until a reboot.
    pub fn power_lost(&self) -> bool {
        self.state
            .ring
            .as_ref()
            .is_some_and(|r| r.flash().power_lost())
    }

    /// A power cycle: both regions are mounted again from their flash, and
    /// every record is read back as the core will see it.
    pub fn reboot(self) -> (Self, ReadBack) {
        let mut flash = Self {
            state: self.state.remount(),
            floor: self.floor.remount(),
            ..self
        };
        let mut back = ReadBack::default();
        back.state_region = Some(read_region(&mut flash.state, &mut back, false));
        back.floor_region = Some(read_region(&mut flash.floor, &mut back, true));
        (flash, back)
    }

    /// The storage figures after `elapsed_ms` of simulated time.
    pub fn summary(&self, elapsed_ms: u64) -> StorageSummary {
        let state = self.state.stats();
        let floor = self.floor.stats();
        let wear = self.state.ring.as_ref().map(|r| r.flash().wear());
        let max = wear.map_or(0, |w| w.max_erases_per_page);
        let projection = WearInput {
            page_size_bytes: 4096,
            ring_pages: STATE_PAGES,
            endurance_cycles: DEFAULT_ENDURANCE_CYCLES,
            max_erases_so_far: max,
            ring_bytes_consumed: state.ring_bytes_consumed(),
            elapsed_ms,
        };
        StorageSummary {
            records_written: KINDS
                .iter()
                .zip(self.records_written)
                .map(|(k, n)| (format!("{k:?}"), n))
                .collect(),
            payload_bytes: self.payload_bytes,
            flash_bytes_programmed: state.bytes_written
                + state.bytes_copied
                + floor.bytes_written
                + floor.bytes_copied,
            page_erases: state.pages_erased + floor.pages_erased,
            max_erases_per_page: max,
            mean_erases_per_page_x100: wear.map_or(0, |w| w.mean_erases_per_page_x100),
            endurance_cycles: DEFAULT_ENDURANCE_CYCLES,
            state_region_pages: STATE_PAGES,
            projected_years_to_wear_out_x100: projection.projected_years_x100(),
            write_errors: self.write_errors,
        }
    }
}

impl std::fmt::Debug for PumpFlash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PumpFlash")
            .field("records_written", &self.records_written)
            .field("payload_bytes", &self.payload_bytes)
            .field("write_errors", &self.write_errors)
            .finish_non_exhaustive()
    }
}

fn read_region(region: &mut Region, back: &mut ReadBack, floor: bool) -> RegionState {
    if region.damaged {
        return RegionState::Damaged;
    }
    let Some(ring) = region.ring.as_mut() else {
        return RegionState::Damaged;
    };
    let mut any = false;
    for (i, kind) in KINDS.iter().enumerate() {
        if (*kind == RecordKind::SerialFloor) != floor {
            continue;
        }
        let mut buf = vec![0u8; storage_core::MAX_PAYLOAD_BYTES];
        match ring.read_latest(tag(*kind), &mut buf) {
            Ok(Some(len)) => {
                buf.truncate(len);
                back.records[i] = Some(buf);
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
}

/// Shows a projection `x100` as years with two decimals.
pub fn years(x100: Option<u64>) -> String {
    x100.map_or_else(
        || "no wear".to_string(),
        |y| format!("{}.{:02} years", y / 100, y % 100),
    )
}
