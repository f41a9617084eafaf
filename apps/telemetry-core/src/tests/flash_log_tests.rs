//! The log's flash format: power cuts at every flash operation, the ring's
//! wrap and the records its erases lose, wear levelling, and regions the log
//! cannot use.

use std::vec::Vec;

use storage_core::{FlashError, SimFlash};

use super::fake::{MemStorage, TEST_PAGE_BYTES};
use crate::log::{
    erases_per_page_per_year_x100, span, PersistentLog, MAX_PAGES, MIN_PAGE_BYTES,
    RECORD_HEADER_LEN,
};
use crate::{StorageError, RECORD_LEN};

/// A frame of varying length whose bytes say which sequence it is.
fn frame(sequence: u32) -> Vec<u8> {
    let len = 20 + (sequence as usize * 13) % 90;
    (0..len)
        .map(|i| (sequence as u8).wrapping_add(i as u8))
        .collect()
}

/// Every stored frame, oldest first, checked against [`frame`].
fn contents(log: &mut PersistentLog<MemStorage>) -> Vec<u32> {
    let mut record = [0u8; RECORD_LEN];
    let mut got = Vec::new();
    let mut cursor = log.first_valid_from(0, &mut record);
    while let Some(found) = cursor {
        assert_eq!(
            &record[RECORD_HEADER_LEN..RECORD_HEADER_LEN + found.len],
            &frame(found.sequence)[..],
            "frame {} damaged",
            found.sequence
        );
        got.push(found.sequence);
        cursor = log.first_valid_from(found.next_position, &mut record);
    }
    got
}

fn append_all(log: &mut PersistentLog<MemStorage>, sequences: impl IntoIterator<Item = u32>) {
    for s in sequences {
        log.append(s, &frame(s)).unwrap();
    }
}

const PAGES: usize = 3;
const FRAMES: u32 = 90;

/// Verifies: SR-TEL-001
///
/// A power cut at each flash operation of a run that wraps the ring twice:
/// after the reset every frame whose append returned `Ok` and that the
/// ring has not erased since is read back intact, nothing is read that was
/// never written, the log goes on from there, and the erased frames are
/// exactly those before the oldest one left (what a `LogGap` names).
/// Verifies: SR-TEL-002
#[test]
fn sr_tel_001_a_power_cut_at_any_flash_operation_loses_at_most_the_write_in_flight() {
    let clean = MemStorage::new(PAGES);
    let mut log = PersistentLog::open(clean.clone());
    append_all(&mut log, 0..FRAMES);
    assert!(log.stats().pages_erased >= 2, "{:?}", log.stats());
    let total_ops = clean.flash.with(|f| f.ops());
    // Every operation, torn in several ways (the seed picks which words a
    // torn program or erase leaves as they were).
    for (seed, cut) in (1..=24).flat_map(|seed| (0..=total_ops).map(move |cut| (seed, cut))) {
        let storage = MemStorage::with_seed(PAGES, seed);
        storage.flash.with(|f| f.cut_power_after(cut));
        let mut log = PersistentLog::open(storage.clone());
        let mut acked = Vec::new();
        let mut in_flight = None;
        for s in 0..FRAMES {
            match log.append(s, &frame(s)) {
                Ok(()) => acked.push(s),
                Err(e) => {
                    assert_eq!(e, StorageError::Flash(FlashError::PowerLost));
                    in_flight = Some(s);
                    break;
                }
            }
        }
        storage.flash.with(|f| f.power_on());
        let mut log = PersistentLog::open(storage.clone());
        let got = contents(&mut log);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "cut {cut}: {got:?}");
        let oldest = log.oldest_sequence();
        assert_eq!(oldest, got.first().copied(), "cut {cut}");
        for a in &acked {
            if oldest.is_some_and(|o| *a >= o) {
                assert!(got.contains(a), "cut {cut}: acked {a} lost: {got:?}");
            }
        }
        for g in &got {
            assert!(acked.contains(g) || in_flight == Some(*g), "cut {cut}: {g}");
        }
        assert_eq!(log.newest_sequence(), got.last().copied(), "cut {cut}");
        // The log goes on after the reset.
        let next = in_flight.map_or(FRAMES, |s| s + 1);
        append_all(&mut log, next..next + 12);
        let mut log = PersistentLog::open(storage.clone());
        let after = contents(&mut log);
        assert!(
            after.ends_with(&(next..next + 12).collect::<Vec<_>>()),
            "cut {cut}: {after:?} {:?} {:?}",
            log.stats(),
            storage.flash.with(|f| f.last_torn())
        );
        assert!(after.windows(2).all(|w| w[0] < w[1]), "cut {cut}");
    }
}

/// Verifies: SR-TEL-002
///
/// Erasing a page for reuse loses exactly the oldest records: what is left
/// is a contiguous run up to the newest, the count the log keeps is the
/// number before it, and a reopen finds the same.
#[test]
fn sr_tel_002_the_wrap_erases_only_the_oldest_page_and_counts_what_it_lost() {
    let storage = MemStorage::new(4);
    let mut log = PersistentLog::open(storage.clone());
    append_all(&mut log, 0..500);
    let stats = log.stats();
    let got = contents(&mut log);
    let oldest = got[0];
    assert_eq!(got, (oldest..500).collect::<Vec<_>>());
    assert_eq!(stats.records_erased, oldest);
    assert_eq!(stats.records_written, 500);
    assert!(log.has_wrapped());
    // At least three of the four pages are full of records.
    let bytes: u32 = got.iter().map(|&s| span(frame(s).len())).sum();
    assert!(bytes > 3 * (TEST_PAGE_BYTES - MIN_PAGE_BYTES), "{bytes}");
    let mut reopened = PersistentLog::open(storage.clone());
    assert_eq!(contents(&mut reopened), got);
    assert_eq!(reopened.newest_sequence(), Some(499));
    let mut record = [0u8; RECORD_LEN];
    for before in [0, 250, oldest - 1] {
        assert_eq!(
            reopened
                .first_at_or_after(before, &mut record)
                .map(|f| f.sequence),
            Some(oldest)
        );
    }
    assert!(oldest > 400, "{oldest}");
    for s in [oldest, oldest + 1, oldest + 20, 498, 499] {
        assert_eq!(
            reopened
                .first_at_or_after(s, &mut record)
                .map(|f| f.sequence),
            Some(s)
        );
    }
    assert_eq!(reopened.first_at_or_after(500, &mut record), None);
}

/// The ring erases its pages in turn: after many passes no page has been
/// erased more than once more than any other.
///
/// Verifies: SR-TEL-010
#[test]
fn the_ring_wears_its_pages_evenly() {
    let storage = MemStorage::new(5);
    let mut log = PersistentLog::open(storage.clone());
    append_all(&mut log, 0..3_000);
    // Resets on the way change nothing.
    let mut log = PersistentLog::open(storage.clone());
    append_all(&mut log, 3_000..6_000);
    let wear = storage.flash.with(|f| f.wear());
    assert!(wear.min_erases_per_page >= 10, "{wear:?}");
    assert!(
        wear.max_erases_per_page - wear.min_erases_per_page <= 1,
        "{wear:?}"
    );
}

/// A damaged page header takes the page out of the log; the log still opens,
/// reads the rest and goes on.
#[test]
fn a_damaged_page_header_costs_that_page_only() {
    let storage = MemStorage::new(4);
    let mut log = PersistentLog::open(storage.clone());
    append_all(&mut log, 0..100);
    let before = contents(&mut log);
    // Damage the second page's header (page index 1 is the second page
    // opened on a fresh region).
    storage
        .flash
        .with(|f| f.image_mut()[TEST_PAGE_BYTES as usize + 5] ^= 0x40);
    let mut log = PersistentLog::open(storage.clone());
    let after = contents(&mut log);
    assert!(!after.is_empty() && after.len() < before.len());
    assert_eq!(after.last(), before.last());
    assert!(after.windows(2).all(|w| w[0] < w[1]));
    append_all(&mut log, 100..400);
    let mut log = PersistentLog::open(storage.clone());
    assert!(contents(&mut log).ends_with(&[398, 399]));
}

/// Regions the log cannot use are refused with a typed error, and never
/// written.
#[test]
fn an_unusable_region_is_refused_with_a_typed_error() {
    for (page_bytes, pages) in [
        (TEST_PAGE_BYTES, 1),
        (MIN_PAGE_BYTES - 4, 8),
        (TEST_PAGE_BYTES, MAX_PAGES + 1),
    ] {
        let flash = SimFlash::new(page_bytes, pages, 1).unwrap();
        let storage = MemStorage {
            flash: storage_core::SharedSimFlash::new(flash),
            writes: Default::default(),
        };
        let mut log = PersistentLog::open(storage.clone());
        assert!(!log.is_usable());
        assert_eq!(log.append(0, b"frame"), Err(StorageError::BadGeometry));
        assert_eq!(log.oldest_sequence(), None);
        assert_eq!(*storage.writes.borrow(), 0);
    }
    let mut log = PersistentLog::open(MemStorage::new(2));
    assert_eq!(log.append(0, &[]), Err(StorageError::OutOfRange));
    assert_eq!(
        log.append(0, &[0u8; pump_protocol::MAX_FRAME_LEN + 1]),
        Err(StorageError::OutOfRange)
    );
    // The largest frame fits a page of the smallest size.
    let flash = SimFlash::new(MIN_PAGE_BYTES, 2, 1).unwrap();
    let mut log = PersistentLog::open(MemStorage {
        flash: storage_core::SharedSimFlash::new(flash),
        writes: Default::default(),
    });
    for s in 0..5 {
        log.append(s, &[7u8; pump_protocol::MAX_FRAME_LEN]).unwrap();
    }
    assert_eq!(log.newest_sequence(), Some(4));
}

/// Garbage in the region (a chip as it comes, a format that is not ours)
/// opens as an empty log, which erases what it reuses.
#[test]
fn garbage_opens_as_an_empty_log() {
    let storage = MemStorage::new(3);
    storage.flash.with(|f| {
        for (i, b) in f.image_mut().iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
    });
    let mut log = PersistentLog::open(storage.clone());
    assert_eq!(log.newest_sequence(), None);
    append_all(&mut log, 0..30);
    let mut log = PersistentLog::open(storage.clone());
    assert_eq!(contents(&mut log), (0..30).collect::<Vec<_>>());
}

#[test]
fn erase_cycles_per_year_from_a_measurement() {
    // 64 pages opened in a day over 64 pages: one erase per page a day.
    const DAY: u64 = 86_400_000;
    assert_eq!(erases_per_page_per_year_x100(64, DAY, 64), Some(36_525));
    // One page a day over 64 pages: each page 5.70 times a year.
    assert_eq!(erases_per_page_per_year_x100(64, 64 * DAY, 64), Some(570));
    assert_eq!(erases_per_page_per_year_x100(1, 0, 64), None);
    assert_eq!(erases_per_page_per_year_x100(1, DAY, 0), None);
    assert_eq!(erases_per_page_per_year_x100(0, DAY, 8), Some(0));
}

/// Verifies: SR-TEL-002
///
/// The worst a reset during the wrap's erase can leave: the reused page's
/// header and some of its records as they were, one record in the middle
/// erased. The head's seal keeps that page out of the log, so the frames
/// read back run without a hole from the oldest to the newest (a hole
/// there would be a loss no `LogGap` reports).
#[test]
fn a_reset_during_the_wraps_erase_leaves_that_page_out_of_the_log() {
    // How many appends before the first erase (on a run without cuts).
    let probe = MemStorage::new(3);
    let mut log = PersistentLog::open(probe.clone());
    let mut n = 0;
    while probe.flash.with(|f| f.stats().erase_ops) == 0 {
        log.append(n, &frame(n)).unwrap();
        n += 1;
    }
    let n = n - 1; // append `n` erased the page.
    let storage = MemStorage::new(3);
    let mut log = PersistentLog::open(storage.clone());
    append_all(&mut log, 0..n);
    let before = storage.flash.with(|f| f.image().to_vec());
    // The seal completes, the erase is torn.
    storage.flash.with(|f| f.cut_power_after(1));
    assert_eq!(
        log.append(n, &frame(n)),
        Err(StorageError::Flash(FlashError::PowerLost))
    );
    let torn = storage.flash.with(|f| f.last_torn());
    let Some(storage_core::TornOp::Erase { page }) = torn else {
        panic!("the erase was not the torn operation: {torn:?}");
    };
    storage.flash.with(|f| {
        f.power_on();
        // The page as it was, but its third record erased.
        let start = (page * TEST_PAGE_BYTES) as usize;
        let end = start + TEST_PAGE_BYTES as usize;
        f.image_mut()[start..end].copy_from_slice(&before[start..end]);
        let mut at = start + crate::log::PAGE_HEADER_LEN;
        for _ in 0..2 {
            let len = usize::from(u16::from_le_bytes([f.image()[at], f.image()[at + 1]]));
            at += span(len) as usize;
        }
        f.image_mut()[at..at + 4].fill(0xFF);
    });
    let mut log = PersistentLog::open(storage.clone());
    let got = contents(&mut log);
    let oldest = got[0];
    assert_eq!(got, (oldest..n).collect::<Vec<_>>());
    // The log goes on, erasing the page again.
    append_all(&mut log, n..n + 20);
    let mut log = PersistentLog::open(storage.clone());
    let got = contents(&mut log);
    assert_eq!(got, (got[0]..n + 20).collect::<Vec<_>>());
}
