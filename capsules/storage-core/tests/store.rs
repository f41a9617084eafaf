//! RingStore behaviour: writes, reads, remounts, page moves, copy-forward.

mod common;

use common::{flash, latest, mount, payload, PAGE};
use storage_core::{RingStore, StoreError, MAX_TAGS};

#[test]
fn empty_region_mounts_empty_and_reads_none() {
    let mut s = mount(flash(4, 1), 4);
    assert_eq!(latest(&mut s, 0), None);
    assert_eq!(s.tags().count(), 0);
    assert_eq!(s.live_bytes(), 0);
    // Mounting reads only.
    assert_eq!(s.flash().ops(), 0);
}

#[test]
fn latest_write_wins_and_survives_remount() {
    let mut s = mount(flash(4, 1), 4);
    s.write(1, b"one").unwrap();
    s.write(2, b"two").unwrap();
    s.write(1, b"uno").unwrap();
    s.write(3, b"").unwrap();
    assert_eq!(latest(&mut s, 1).as_deref(), Some(&b"uno"[..]));
    assert_eq!(latest(&mut s, 3).as_deref(), Some(&b""[..]));
    let mut s = mount(s.into_flash(), 4);
    assert_eq!(latest(&mut s, 1).as_deref(), Some(&b"uno"[..]));
    assert_eq!(latest(&mut s, 2).as_deref(), Some(&b"two"[..]));
    assert_eq!(latest(&mut s, 3).as_deref(), Some(&b""[..]));
    assert_eq!(latest(&mut s, 4), None);
    assert_eq!(s.latest_len(2), Some(3));
    let mut tags: Vec<u8> = s.tags().collect();
    tags.sort();
    assert_eq!(tags, [1, 2, 3]);
}

#[test]
fn many_cycles_keep_every_tag_latest_through_copy_forward() {
    let pages = 4;
    let mut s = mount(flash(pages, 7), pages);
    // Tag 0 is written once and must be carried forward forever.
    s.write(0, &payload(0, 0, 40)).unwrap();
    for n in 1..2000u32 {
        let tag = 1 + (n % 3) as u8;
        s.write(tag, &payload(tag, n, (n % 50) as usize)).unwrap();
        if n % 97 == 0 {
            s = mount(s.into_flash(), pages);
        }
    }
    assert_eq!(latest(&mut s, 0), Some(payload(0, 0, 40)));
    for n in 1997..2000u32 {
        let tag = 1 + (n % 3) as u8;
        assert_eq!(
            latest(&mut s, tag),
            Some(payload(tag, n, (n % 50) as usize))
        );
    }
    assert!(s.stats().records_copied > 0);
    let w = s.flash().wear();
    assert!(w.min_erases_per_page > 10, "{w:?}");
    assert!(w.max_erases_per_page - w.min_erases_per_page <= 1, "{w:?}");
}

#[test]
fn two_page_ring_works() {
    let mut s = mount(flash(2, 3), 2);
    for n in 0..300u32 {
        s.write((n % 2) as u8, &payload(0, n, 30)).unwrap();
    }
    let mut s = mount(s.into_flash(), 2);
    assert_eq!(latest(&mut s, 0), Some(payload(0, 298, 30)));
    assert_eq!(latest(&mut s, 1), Some(payload(0, 299, 30)));
}

#[test]
fn region_inside_a_larger_flash_leaves_other_pages_alone() {
    let f = flash(10, 1);
    let mut s = RingStore::mount(f, 3, 4).unwrap();
    for n in 0..500u32 {
        s.write(1, &payload(1, n, 20)).unwrap();
    }
    let f = s.into_flash();
    for page in (0..3).chain(7..10) {
        assert_eq!(f.erase_count(page), Some(0));
        let p = (page * PAGE) as usize;
        assert!(f.image()[p..p + PAGE as usize].iter().all(|&b| b == 0xFF));
    }
    assert!(f.erase_count(3).unwrap() > 0);
}

#[test]
fn read_errors_buffer_too_small_and_corrupt() {
    let mut s = mount(flash(4, 1), 4);
    s.write(5, &[7u8; 10]).unwrap();
    let mut small = [0u8; 9];
    assert_eq!(
        s.read_latest(5, &mut small),
        Err(StoreError::BufferTooSmall { needed_bytes: 10 })
    );
    // Damage the payload behind the store's back: the read says so.
    s.flash_mut().image_mut()[16 + 8 + 3] ^= 0x10;
    let mut buf = [0u8; 10];
    assert_eq!(s.read_latest(5, &mut buf), Err(StoreError::Corrupt));
    // Damage the header's tag: also refused.
    s.flash_mut().image_mut()[16 + 8 + 3] ^= 0x10;
    assert_eq!(s.read_latest(5, &mut buf), Ok(Some(10)));
    s.flash_mut().image_mut()[16 + 1] = 6;
    assert_eq!(s.read_latest(5, &mut buf), Err(StoreError::Corrupt));
}

#[test]
fn too_many_tags_is_refused_and_existing_tags_still_write() {
    let mut s = mount(flash(8, 1), 8);
    for tag in 0..MAX_TAGS as u8 {
        s.write(tag * 10, &[tag]).unwrap();
    }
    assert_eq!(s.write(255, b"x"), Err(StoreError::TooManyTags));
    s.write(0, b"again").unwrap();
    assert_eq!(latest(&mut s, 0).as_deref(), Some(&b"again"[..]));
    assert_eq!(latest(&mut s, 255), None);
}
