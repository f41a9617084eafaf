//! Mounting arbitrary flash contents never panics and never yields a record
//! that was not written; a store that was damaged yields only values that
//! were once written to the tag, or `Corrupt`, or nothing.

mod common;

use common::{flash, mount, payload, PAGE};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use storage_core::{RingStore, SimFlash, StoreError};

/// What `read_latest` said for one tag.
type Read = Result<Option<Vec<u8>>, StoreError>;

fn read_all(s: &mut RingStore<SimFlash>) -> Vec<(u8, Read)> {
    let mut buf = vec![0u8; 4096];
    (0..=255u8)
        .map(|tag| {
            (
                tag,
                s.read_latest(tag, &mut buf)
                    .map(|o| o.map(|n| buf[..n].to_vec())),
            )
        })
        .collect()
}

/// Bytes that look like flash: runs of 0xFF, of zeros, and random.
fn image(pages: u32) -> impl Strategy<Value = Vec<u8>> {
    let run = prop_oneof![
        (1usize..64).prop_map(|n| vec![0xFF; n]),
        (1usize..16).prop_map(|n| vec![0; n]),
        prop::collection::vec(any::<u8>(), 1..32),
    ];
    let size = (pages * PAGE) as usize;
    prop::collection::vec(run, 1..200).prop_map(move |runs| {
        let mut v: Vec<u8> = runs.concat();
        v.resize(size, 0xFF);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Garbage mounts without a panic; then reads, writes and a remount
    /// answer without a panic, and a write that succeeds reads back.
    #[test]
    fn mount_over_garbage_never_panics((pages, img) in (2u32..6).prop_flat_map(|p| (Just(p), image(p)))) {
        let f = SimFlash::from_image(PAGE, img, 1).unwrap();
        let Ok(mut s) = RingStore::mount(f, 0, pages) else { return Ok(()); };
        let _ = read_all(&mut s);
        for n in 0..20u32 {
            let tag = (n % 5) as u8;
            let p = payload(tag, n, (n as usize * 11) % 70);
            if s.write(tag, &p).is_ok() {
                let mut buf = [0u8; 128];
                let got = s.read_latest(tag, &mut buf).unwrap().map(|k| buf[..k].to_vec());
                prop_assert_eq!(got, Some(p));
            }
        }
        let f = s.into_flash();
        if let Ok(mut s) = RingStore::mount(f, 0, pages) {
            let _ = read_all(&mut s);
        }
    }

    /// A real store damaged at random: every value read was once written to
    /// that tag; damage shows as `Corrupt` or an older value, never garbage.
    #[test]
    fn damaged_store_returns_only_values_once_written(
        writes in prop::collection::vec((0u8..6, 0usize..80), 1..120),
        damage in prop::collection::vec((0u8..3, any::<u32>(), any::<u32>()), 1..12),
        seed in any::<u64>(),
    ) {
        // Six tags of up to 88-byte records (528 B) are within the live
        // limit of 5 pages (4 × (240 − 88) = 608 B): every write succeeds.
        let pages = 5;
        let mut s = mount(flash(pages, seed), pages);
        let mut written: HashMap<u8, HashSet<Vec<u8>>> = HashMap::new();
        for (n, &(tag, len)) in writes.iter().enumerate() {
            let p = payload(tag, n as u32, len);
            s.write(tag, &p).unwrap();
            written.entry(tag).or_default().insert(p);
        }
        let mut f = s.into_flash();
        let size = f.image().len() as u32;
        for (kind, a, b) in damage {
            let img = f.image_mut();
            match kind {
                // Flip bits of a byte.
                0 => img[(a % size) as usize] ^= (b as u8) | 1,
                // Erase a run of words.
                1 => {
                    let at = (a % size) as usize & !3;
                    let end = (at + (b % 64) as usize * 4).min(size as usize);
                    img[at..end].fill(0xFF);
                }
                // One page copied over another (duplicate sequence numbers,
                // old records where new ones were).
                _ => {
                    let from = (a % pages * PAGE) as usize;
                    let to = (b % pages * PAGE) as usize;
                    let page = img[from..from + PAGE as usize].to_vec();
                    img[to..to + PAGE as usize].copy_from_slice(&page);
                }
            }
        }
        let Ok(mut s) = RingStore::mount(f, 0, pages) else { return Ok(()); };
        for (tag, got) in read_all(&mut s) {
            match got {
                Ok(None) | Err(StoreError::Corrupt) => {}
                Ok(Some(v)) => prop_assert!(
                    written.get(&tag).is_some_and(|w| w.contains(&v)),
                    "tag {} read a value never written", tag
                ),
                Err(e) => prop_assert!(false, "tag {}: {:?}", tag, e),
            }
        }
        // Writing on goes on or is refused with a typed error; what is
        // written reads back.
        for n in 0..30u32 {
            let p = payload(7, 1000 + n, 20);
            if s.write(7, &p).is_ok() {
                let mut buf = [0u8; 32];
                prop_assert_eq!(s.read_latest(7, &mut buf), Ok(Some(20)));
                prop_assert_eq!(&buf[..20], &p[..]);
            }
        }
    }
}
