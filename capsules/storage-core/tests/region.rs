//! The log region lent to the telemetry app: bounds, NOR rules, erase budget.

use storage_core::region::{max_erases_per_year, ERASE_BURST, ERASE_REFILL_MS};
use storage_core::{Flash, LogRegion, RegionError, SimFlash};

fn region() -> LogRegion<SimFlash> {
    // A 10-page device; the region is pages 4..8.
    LogRegion::new(SimFlash::nrf52840(10, 1).unwrap(), 4, 4).unwrap()
}

/// Verifies: SR-TEL-010
#[test]
fn the_app_reaches_its_pages_and_nothing_else() {
    let mut r = region();
    assert_eq!(r.geometry().page_count, 4);
    assert_eq!(r.geometry().page_size_bytes, 4096);
    r.program(0, b"abcd").unwrap();
    let mut buf = [0u8; 4];
    r.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"abcd");
    // Past the region, even by a byte; offsets that overflow.
    assert_eq!(r.read(4 * 4096 - 2, &mut buf), Err(RegionError::OutOfRange));
    assert_eq!(r.program(4 * 4096, b"abcd"), Err(RegionError::OutOfRange));
    assert_eq!(r.read(u32::MAX, &mut buf), Err(RegionError::OutOfRange));
    assert_eq!(r.erase_page(4, 0), Err(RegionError::OutOfRange));
    // NOR rules: a written word stays until its page is erased.
    assert_eq!(r.program(0, b"wxyz"), Err(RegionError::NotErased));
    assert_eq!(r.program(2, b"wxyz"), Err(RegionError::Misaligned));
    assert_eq!(r.program(8, b"wxy"), Err(RegionError::Misaligned));
    r.erase_page(0, 0).unwrap();
    r.program(0, b"wxyz").unwrap();
    // Nothing outside the region moved: device page 4 holds it.
    let mut flash_buf = [0u8; 4];
    let mut device = region_device_after(|r| r.program(0, b"qrst").unwrap());
    device.read(4 * 4096, &mut flash_buf).unwrap();
    assert_eq!(&flash_buf, b"qrst");
    let mut rest = vec![0u8; 4 * 4096];
    device.read(0, &mut rest).unwrap();
    assert!(rest.iter().all(|&b| b == 0xFF));
}

fn region_device_after(f: impl FnOnce(&mut LogRegion<&mut SimFlash>)) -> SimFlash {
    let mut flash = SimFlash::nrf52840(10, 1).unwrap();
    let mut r = LogRegion::new(&mut flash, 4, 4).unwrap();
    f(&mut r);
    flash
}

#[test]
fn a_region_past_the_device_is_refused() {
    let flash = || SimFlash::nrf52840(10, 1).unwrap();
    assert!(matches!(
        LogRegion::new(flash(), 8, 4),
        Err(RegionError::OutOfRange)
    ));
    assert!(matches!(
        LogRegion::new(flash(), 0, 0),
        Err(RegionError::OutOfRange)
    ));
    assert!(matches!(
        LogRegion::new(flash(), u32::MAX, 2),
        Err(RegionError::OutOfRange)
    ));
}

/// Verifies: SR-TEL-010
#[test]
fn erases_are_rationed() {
    let mut r = region();
    for _ in 0..ERASE_BURST {
        r.erase_page(1, 1_000).unwrap();
    }
    assert_eq!(r.erase_page(1, 1_000), Err(RegionError::EraseBudget));
    assert_eq!(
        r.erase_page(1, 1_000 + ERASE_REFILL_MS - 1),
        Err(RegionError::EraseBudget)
    );
    r.erase_page(1, 1_000 + ERASE_REFILL_MS).unwrap();
    assert_eq!(
        r.erase_page(1, 1_000 + ERASE_REFILL_MS),
        Err(RegionError::EraseBudget)
    );
    assert_eq!(r.erase_counts(), (ERASE_BURST + 1, 3));
    // A long quiet spell refills to the burst, no more.
    let later = 100 * ERASE_REFILL_MS;
    for _ in 0..ERASE_BURST {
        r.erase_page(2, later).unwrap();
    }
    assert_eq!(r.erase_page(2, later), Err(RegionError::EraseBudget));
    // A clock that goes back earns nothing.
    assert_eq!(r.erase_page(2, 0), Err(RegionError::EraseBudget));
}

/// An app erasing as fast as the budget lets it, for a simulated year:
/// the count matches `max_erases_per_year`, which over the board's 64
/// pages is 822 a page even if spread evenly.
///
/// Verifies: SR-TEL-010
#[test]
fn the_budget_bounds_a_years_erases() {
    let mut r = LogRegion::new(
        SimFlash::nrf52840(64, 1).unwrap().with_endurance(u32::MAX),
        0,
        64,
    )
    .unwrap();
    let year_ms = 1461 * 86_400_000 / 4;
    let mut done = 0u64;
    let mut page = 0;
    let mut now = 0;
    while now <= year_ms {
        while r.erase_page(page, now).is_ok() {
            done += 1;
            page = (page + 1) % 64;
        }
        now += 60_000;
    }
    assert_eq!(done, max_erases_per_year());
    assert_eq!(max_erases_per_year(), 52_600);
    assert_eq!(max_erases_per_year().div_ceil(64), 822);
}
