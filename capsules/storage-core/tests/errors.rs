//! Every refusal is a typed error, and nothing panics on bad input.

mod common;

use common::{flash, latest, mount, payload, PAGE};
use proptest::prelude::*;
use storage_core::format::{encode_page_header, encode_record_header};
use storage_core::{
    Flash, FlashError, Geometry, RingStore, SimFlash, StoreError, MAX_PAYLOAD_BYTES,
};

/// A flash that only reports a geometry (for geometries `SimFlash` refuses).
struct Shape(Geometry);

impl Flash for Shape {
    fn geometry(&self) -> Geometry {
        self.0
    }
    fn read(&mut self, _: u32, _: &mut [u8]) -> Result<(), FlashError> {
        Err(FlashError::OutOfBounds)
    }
    fn program(&mut self, _: u32, _: &[u8]) -> Result<(), FlashError> {
        Err(FlashError::OutOfBounds)
    }
    fn erase_page(&mut self, _: u32) -> Result<(), FlashError> {
        Err(FlashError::OutOfBounds)
    }
}

fn shape(page_size_bytes: u32, page_count: u32, word_size_bytes: u32) -> Shape {
    Shape(Geometry {
        page_size_bytes,
        page_count,
        word_size_bytes,
    })
}

#[test]
fn unusable_geometries_are_refused() {
    let bad = |r: Result<RingStore<Shape>, StoreError>| {
        assert_eq!(r.err(), Some(StoreError::BadGeometry))
    };
    bad(RingStore::mount(shape(4096, 8, 8), 0, 8)); // 8-byte words
    bad(RingStore::mount(shape(4094, 8, 4), 0, 8)); // pages not whole words
    bad(RingStore::mount(shape(60, 8, 4), 0, 8)); // pages under 64 B
    bad(RingStore::mount(shape(4096, 8, 4), 0, 1)); // one page
    bad(RingStore::mount(shape(4096, 8, 4), 7, 2)); // past the device
    bad(RingStore::mount(shape(4096, 8, 4), u32::MAX, 2)); // index overflow
    bad(RingStore::mount(shape(4096, 70_000, 4), 0, 65_536)); // too many pages
    bad(RingStore::mount(shape(1 << 20, 8192, 4), 0, 8192)); // past 4 GiB
                                                             // The smallest accepted ring.
    let f = SimFlash::new(64, 2, 1).unwrap();
    let mut s = RingStore::mount(f, 0, 2).unwrap();
    s.write(0, &[1; 20]).unwrap();
    assert_eq!(latest(&mut s, 0), Some(vec![1; 20]));
}

#[test]
fn a_region_formatted_for_another_ring_is_refused() {
    let mut s = mount(flash(5, 1), 5);
    s.write(1, b"x").unwrap();
    let f = s.into_flash();
    assert_eq!(
        RingStore::mount(f.clone(), 0, 4).err(),
        Some(StoreError::ForeignFormat)
    );
    // Another format version, CRC right.
    let mut f = f;
    let mut h = encode_page_header(1, 5);
    h[8] = 2;
    let crc = storage_core::format::CRC32C.checksum(&h[0..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    f.image_mut()[..16].copy_from_slice(&h);
    assert_eq!(
        RingStore::mount(f, 0, 5).err(),
        Some(StoreError::ForeignFormat)
    );
}

#[test]
fn oversized_payloads_and_records_larger_than_a_page_are_refused() {
    let f = SimFlash::nrf52840(4, 1).unwrap();
    let mut s = RingStore::mount(f, 0, 4).unwrap();
    assert_eq!(
        s.write(0, &[0; MAX_PAYLOAD_BYTES + 1]),
        Err(StoreError::PayloadTooLarge {
            len_bytes: 2049,
            max_bytes: 2048
        })
    );
    s.write(0, &[0xAB; MAX_PAYLOAD_BYTES]).unwrap();
    assert_eq!(latest(&mut s, 0), Some(vec![0xAB; MAX_PAYLOAD_BYTES]));
    // 256-byte pages hold 240 bytes of records: a 236-byte payload is the
    // most (8-byte header), and only beside no other live data.
    let mut s = mount(flash(3, 1), 3);
    assert!(matches!(
        s.write(0, &[0; 233]),
        Err(StoreError::NoSpace { .. })
    ));
    s.write(0, &[0; 232]).unwrap();
    assert_eq!(s.flash().ops(), 3, "header, then the payload's words");
    assert_eq!(s.stats().records_written, 1);
}

#[test]
fn live_data_over_the_limit_is_refused_before_touching_flash() {
    let mut s = mount(flash(3, 1), 3);
    // Limit for 100-byte payloads (108-byte records): 2 × (240 − 108).
    assert_eq!(s.live_limit_bytes(100), 264);
    assert_eq!(s.live_limit_bytes(104), 256);
    s.write(0, &[0; 100]).unwrap();
    s.write(1, &[1; 100]).unwrap();
    s.write(2, &[2; 40]).unwrap();
    assert_eq!(s.live_bytes(), 264);
    let ops = s.flash().ops();
    assert_eq!(
        s.write(3, &[3; 104]),
        Err(StoreError::NoSpace {
            live_bytes: 264,
            limit_bytes: 256
        })
    );
    assert_eq!(s.flash().ops(), ops, "refused before any flash operation");
    // Exactly at the limit is accepted.
    s.write(3, &[3; 100]).unwrap();
    assert_eq!(s.live_bytes(), 372);
    // The tag's own current record counts: rewriting it is refused too.
    assert_eq!(
        s.write(0, &[9; 100]),
        Err(StoreError::NoSpace {
            live_bytes: 372,
            limit_bytes: 264
        })
    );
    // Small records still fit (limit 2 × 232), and cycle the ring.
    for n in 0..100 {
        s.write(2, &payload(2, n, n as usize % 5)).unwrap();
    }
    assert!(s.stats().records_copied > 20);
    let mut s = mount(s.into_flash(), 3);
    assert_eq!(latest(&mut s, 0), Some(vec![0; 100]));
    assert_eq!(latest(&mut s, 1), Some(vec![1; 100]));
    assert_eq!(latest(&mut s, 2), Some(payload(2, 99, 4)));
    assert_eq!(latest(&mut s, 3), Some(vec![3; 100]));
}

/// Builds a 2-page ring by hand: page 0 (older, seq 1) holds tag 1; page 1
/// (the head, seq 2) holds tag 2 then garbage, so nothing can be appended.
fn stranded_image() -> SimFlash {
    let mut f = flash(2, 1);
    let img = f.image_mut();
    img[..16].copy_from_slice(&encode_page_header(1, 2));
    let rec1 = encode_record_header(1, b"keep").unwrap();
    img[16..24].copy_from_slice(&rec1);
    img[24..28].copy_from_slice(b"keep");
    let p1 = PAGE as usize;
    img[p1..p1 + 16].copy_from_slice(&encode_page_header(2, 2));
    let rec2 = encode_record_header(2, b"head").unwrap();
    img[p1 + 16..p1 + 24].copy_from_slice(&rec2);
    img[p1 + 24..p1 + 28].copy_from_slice(b"head");
    img[p1 + 100] = 0;
    f
}

#[test]
fn a_state_no_power_cut_produces_refuses_writes_but_still_reads() {
    let mut s = mount(stranded_image(), 2);
    assert_eq!(latest(&mut s, 1).as_deref(), Some(&b"keep"[..]));
    assert_eq!(latest(&mut s, 2).as_deref(), Some(&b"head"[..]));
    assert_eq!(s.write(3, b"new"), Err(StoreError::Inconsistent));
    assert_eq!(s.flash().ops(), 0, "nothing erased");
    assert_eq!(latest(&mut s, 1).as_deref(), Some(&b"keep"[..]));
}

#[test]
fn records_left_behind_the_head_are_moved_before_their_page_is_erased() {
    // The stranded image without its garbage: the head has room.
    let mut f = stranded_image();
    f.image_mut()[PAGE as usize + 100] = 0xFF;
    let mut s = mount(f.clone(), 2);
    s.write(3, b"new").unwrap();
    assert_eq!(s.stats().records_copied, 1);
    assert_eq!(s.flash().erase_count(0), Some(1));
    let mut s = mount(s.into_flash(), 2);
    assert_eq!(latest(&mut s, 1).as_deref(), Some(&b"keep"[..]));
    assert_eq!(latest(&mut s, 2).as_deref(), Some(&b"head"[..]));
    assert_eq!(latest(&mut s, 3).as_deref(), Some(&b"new"[..]));
    // A cut during that move: the head is sealed, writes are refused, and
    // every record still reads.
    let mut s = mount(f, 2);
    s.flash_mut().cut_power_after(0);
    assert_eq!(
        s.write(3, b"new"),
        Err(StoreError::Flash(FlashError::PowerLost))
    );
    s.flash_mut().power_on();
    assert_eq!(s.write(3, b"new"), Err(StoreError::Inconsistent));
    let mut s = mount(s.into_flash(), 2);
    assert_eq!(s.write(3, b"new"), Err(StoreError::Inconsistent));
    assert_eq!(latest(&mut s, 1).as_deref(), Some(&b"keep"[..]));
    assert_eq!(latest(&mut s, 2).as_deref(), Some(&b"head"[..]));
    assert_eq!(latest(&mut s, 3), None);
}

#[test]
fn sequence_numbers_running_out_is_refused() {
    let mut f = flash(3, 1);
    f.image_mut()[..16].copy_from_slice(&encode_page_header(u32::MAX, 3));
    f.image_mut()[40] = 0; // garbage after the header: the head is sealed
    let mut s = mount(f, 3);
    assert_eq!(s.write(0, b"x"), Err(StoreError::SequenceExhausted));
    assert_eq!(latest(&mut s, 0), None);
}

#[test]
fn flash_errors_pass_through_and_leave_the_store_usable() {
    let mut s = mount(flash(3, 1), 3);
    s.write(0, b"first").unwrap();
    s.flash_mut().cut_power_after(0);
    assert_eq!(
        s.write(0, b"second"),
        Err(StoreError::Flash(FlashError::PowerLost))
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        s.read_latest(0, &mut buf),
        Err(StoreError::Flash(FlashError::PowerLost))
    );
    // Power back without a remount: the store had sealed the torn page.
    s.flash_mut().power_on();
    s.write(0, b"third").unwrap();
    assert_eq!(latest(&mut s, 0).as_deref(), Some(&b"third"[..]));
    let mut s = mount(s.into_flash(), 3);
    assert_eq!(latest(&mut s, 0).as_deref(), Some(&b"third"[..]));
}

#[test]
fn sim_flash_refuses_bad_operations_with_typed_errors() {
    let mut f = flash(2, 1);
    let mut buf = [0u8; 8];
    assert_eq!(f.read(2 * PAGE - 4, &mut buf), Err(FlashError::OutOfBounds));
    assert_eq!(f.read(u32::MAX, &mut buf), Err(FlashError::OutOfBounds));
    assert_eq!(f.program(2, &[0; 4]), Err(FlashError::Misaligned));
    assert_eq!(f.program(4, &[0; 3]), Err(FlashError::Misaligned));
    assert_eq!(f.program(2 * PAGE, &[0; 4]), Err(FlashError::OutOfBounds));
    assert_eq!(f.erase_page(2), Err(FlashError::OutOfBounds));
    assert_eq!(f.ops(), 0, "refused operations are not counted");
    f.program(4, &[0x12, 0x34, 0xFF, 0xFF]).unwrap();
    assert_eq!(
        f.program(4, &[0x12, 0x34, 0x56, 0x78]),
        Err(FlashError::NotErased)
    );
    // A word that still reads as erased may be programmed.
    f.program(8, &[0xFF; 4]).unwrap();
    f.program(8, &[0; 4]).unwrap();
    f.program(12, &[]).unwrap();
    assert_eq!(f.ops(), 3);
    assert_eq!(f.stats().words_programmed, 3);
    f.read(4, &mut buf).unwrap();
    assert_eq!(buf, [0x12, 0x34, 0xFF, 0xFF, 0, 0, 0, 0]);
    f.erase_page(0).unwrap();
    assert_eq!(f.erase_count(0), Some(1));
    assert_eq!(f.erase_count(2), None);
    assert!(f.image()[..PAGE as usize].iter().all(|&b| b == 0xFF));
}

#[test]
fn power_loss_stops_everything_until_power_on() {
    let mut f = flash(2, 5);
    f.cut_power_after(1);
    f.program(0, &[0; 8]).unwrap();
    assert_eq!(f.program(8, &[0; 8]), Err(FlashError::PowerLost));
    assert!(f.power_lost());
    let mut b = [0u8; 4];
    assert_eq!(f.read(0, &mut b), Err(FlashError::PowerLost));
    assert_eq!(f.program(64, &[0; 4]), Err(FlashError::PowerLost));
    assert_eq!(f.erase_page(1), Err(FlashError::PowerLost));
    f.cut_power_after(5); // ignored while power is lost
    assert!(f.power_lost());
    f.power_on();
    f.read(0, &mut b).unwrap();
    assert_eq!(b, [0; 4]);
    assert_eq!(f.stats().torn_ops, 1);
}

#[test]
fn power_cuts_are_a_function_of_the_seed() {
    let tear = |seed: u64| {
        let mut f = flash(2, seed);
        f.program(0, &[0; 64]).unwrap();
        f.cut_power_after(0);
        let _ = f.erase_page(0);
        f.power_on();
        f.cut_power_after(0);
        let _ = f.program(PAGE, &[0x5A; 200]);
        (f.image().to_vec(), f.last_torn())
    };
    assert_eq!(tear(3), tear(3));
    assert_ne!(tear(3).0, tear(4).0);
}

proptest! {
    /// Any tag, any payload length, any buffer: a typed answer, no panic.
    #[test]
    fn store_api_never_panics(
        calls in prop::collection::vec((any::<u8>(), 0usize..2200, 0usize..2200), 1..40),
        pages in 2u32..5,
    ) {
        let mut s = mount(flash(pages, 1), pages);
        for (n, (tag, len, buf_len)) in calls.into_iter().enumerate() {
            let p = payload(tag, n as u32, len);
            let w = s.write(tag, &p);
            let mut buf = vec![0u8; buf_len];
            let r = s.read_latest(tag, &mut buf);
            if w.is_ok() {
                if buf_len >= len {
                    prop_assert_eq!(r, Ok(Some(len)));
                    prop_assert_eq!(&buf[..len], &p[..]);
                } else {
                    prop_assert_eq!(r, Err(StoreError::BufferTooSmall { needed_bytes: len }));
                }
            } else {
                let small = s.latest_len(tag).map(|n| StoreError::BufferTooSmall { needed_bytes: n });
                prop_assert!(r.is_ok() || r.err() == small, "{:?}", r);
            }
        }
    }

    /// Any address, length, page and geometry: a typed answer, no panic.
    #[test]
    fn sim_flash_never_panics(
        page_size in 0u32..600,
        pages in 0u32..6,
        calls in prop::collection::vec((0u8..3, any::<u32>(), 0usize..700), 1..30),
        first in 0u32..8,
        count in 0u32..8,
    ) {
        let Ok(mut f) = SimFlash::new(page_size, pages, 2) else { return Ok(()); };
        for (kind, addr, len) in calls {
            let addr = addr % (page_size * pages + 8).max(1);
            match kind {
                0 => { let _ = f.read(addr, &mut vec![0; len]); }
                1 => { let _ = f.program(addr, &vec![0x11; len]); }
                _ => { let _ = f.erase_page(addr % 8); }
            }
        }
        let _ = f.wear_in(first, count);
        let _ = RingStore::mount(f, first, count);
    }
}
