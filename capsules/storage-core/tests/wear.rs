//! Wear levelling, end of life, and the wear projection against the
//! simulator's own erase counters.

mod common;

use common::{flash, latest, mount, payload};
use storage_core::wear::{WearInput, MS_PER_DAY};
use storage_core::{FlashError, RingStore, SimFlash, StoreError};

#[test]
fn every_page_is_erased_once_per_pass() {
    let pages = 8;
    let mut s = mount(flash(pages, 3), pages);
    // A cold tag written once, hot tags of every size.
    s.write(200, b"written once, carried forward forever")
        .unwrap();
    for n in 0..30_000u32 {
        let tag = (n % 7) as u8;
        s.write(tag, &payload(tag, n, (n as usize * 13) % 90))
            .unwrap();
        let w = s.flash().wear();
        assert!(
            w.max_erases_per_page - w.min_erases_per_page <= 1,
            "after write {n}: {w:?}"
        );
    }
    let w = s.flash().wear();
    assert!(w.min_erases_per_page >= 400, "{w:?}");
    // Erases only of victims in ring order: total = pages erased by the store.
    assert_eq!(w.total_erases, s.stats().pages_erased);
    assert_eq!(
        latest(&mut s, 200).as_deref(),
        Some(&b"written once, carried forward forever"[..])
    );
}

#[test]
fn wear_stays_level_across_remounts() {
    let pages = 5;
    let mut s = mount(flash(pages, 4), pages);
    for n in 0..5_000u32 {
        s.write((n % 3) as u8, &payload(1, n, 60)).unwrap();
        if n % 41 == 0 {
            s = mount(s.into_flash(), pages);
        }
    }
    let w = s.flash().wear();
    assert!(w.max_erases_per_page - w.min_erases_per_page <= 1, "{w:?}");
    assert!(w.min_erases_per_page > 100, "{w:?}");
}

#[test]
fn at_the_end_of_endurance_writes_are_refused_and_data_stays_readable() {
    let pages = 3;
    let f = flash(pages, 9).with_endurance(5);
    let mut s = mount(f, pages);
    let mut last_ok = None;
    let mut err = None;
    for n in 0..10_000u32 {
        let p = payload(1, n, 50);
        match s.write(1, &p) {
            Ok(()) => last_ok = Some(p),
            Err(e) => {
                err = Some((n, e));
                break;
            }
        }
    }
    let (n, e) = err.expect("the flash wears out");
    assert_eq!(e, StoreError::Flash(FlashError::Worn));
    assert!(n > 20, "{n}");
    assert_eq!(latest(&mut s, 1), last_ok);
    // No page was erased past its rating.
    let w = s.flash().wear();
    assert_eq!(w.max_erases_per_page, 5);
    assert!(w.min_erases_per_page >= 4, "{w:?}");
    // Every later write is refused the same way, reads keep working, and
    // so does a remount.
    for k in 0..5 {
        assert_eq!(
            s.write(1, &payload(1, k, 50)),
            Err(StoreError::Flash(FlashError::Worn))
        );
    }
    assert!(s.flash().stats().worn_refusals >= 6);
    let mut s = mount(s.into_flash(), pages);
    assert_eq!(latest(&mut s, 1), last_ok);
}

/// The pump's expected load on the nRF52840 geometry: a 256-byte therapy
/// state every 10 minutes and a 32-byte counter record every minute, for a
/// simulated week. The projection from the store's byte counters must
/// agree with the erase counts the simulator measured.
#[test]
fn projection_matches_measured_wear() {
    let pages = 8;
    let f = SimFlash::nrf52840(pages, 1).unwrap();
    let mut s = RingStore::mount(f, 0, pages).unwrap();
    let minutes = 7 * 24 * 60u32;
    for m in 0..minutes {
        s.write(1, &payload(1, m, 32)).unwrap();
        if m % 10 == 0 {
            s.write(0, &payload(0, m, 256)).unwrap();
        }
    }
    let elapsed_ms = u64::from(minutes) * 60_000;
    let w = s.flash().wear();
    let input = WearInput {
        page_size_bytes: 4096,
        ring_pages: pages,
        endurance_cycles: 10_000,
        max_erases_so_far: w.max_erases_per_page,
        ring_bytes_consumed: s.stats().ring_bytes_consumed(),
        elapsed_ms,
    };
    let days = input.projected_days().unwrap();
    // The simulator: passes so far (first pass needs no erase) per week.
    let passes = s.stats().pages_opened / u64::from(pages);
    assert!(passes >= 15, "{passes}");
    let measured_days =
        (10_000 - u64::from(w.max_erases_per_page)) * elapsed_ms / (passes * MS_PER_DAY);
    let diff = days.abs_diff(measured_days);
    assert!(
        diff * 20 <= measured_days,
        "projected {days} d, measured {measured_days} d"
    );
    // The point of the helper: 8 pages do not last ten years at this load.
    let years_x100 = input.projected_years_x100().unwrap();
    assert!(years_x100 < 1000, "{years_x100}");
    // Three times the pages: three times the life.
    let bigger = WearInput {
        ring_pages: 3 * pages,
        ..input
    };
    assert!(bigger.projected_years_x100().unwrap() >= 3 * years_x100);
}
