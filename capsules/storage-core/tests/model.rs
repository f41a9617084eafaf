//! The store against a model (a map of the latest payload per tag), with
//! remounts at random points, and the live-limit guarantee: a write is
//! refused for space exactly when the documented limit says so, and a write
//! under the limit always succeeds.

mod common;

use common::{flash, mount, payload, PAGE};
use proptest::prelude::*;
use std::collections::HashMap;
use storage_core::{footprint_bytes, StoreError, PAGE_HEADER_BYTES};

#[derive(Clone, Debug)]
enum Step {
    Write(u8, usize),
    Remount,
}

fn step(tags: u8) -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (0..tags, 0usize..240).prop_map(|(t, l)| Step::Write(t, l)),
        1 => Just(Step::Remount),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn store_follows_the_model((pages, steps) in (2u32..6).prop_flat_map(|p| (Just(p), prop::collection::vec(step(10), 1..150)))) {
        let mut s = mount(flash(pages, u64::from(pages)), pages);
        let mut model: HashMap<u8, Vec<u8>> = HashMap::new();
        let usable = PAGE - PAGE_HEADER_BYTES;
        for (n, st) in steps.into_iter().enumerate() {
            match st {
                Step::Remount => s = mount(s.into_flash(), pages),
                Step::Write(tag, len) => {
                    let p = payload(tag, n as u32, len);
                    let live: u32 = model.values().map(|v| footprint_bytes(v.len())).sum();
                    let size = footprint_bytes(len);
                    let limit = (pages - 1) * usable.saturating_sub(size);
                    let refused = size > usable || live > limit;
                    let r = s.write(tag, &p);
                    if refused {
                        prop_assert_eq!(r, Err(StoreError::NoSpace { live_bytes: live, limit_bytes: limit }));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.insert(tag, p);
                    }
                }
            }
            let mut buf = [0u8; 256];
            for tag in 0..10u8 {
                let got = s.read_latest(tag, &mut buf).unwrap().map(|k| buf[..k].to_vec());
                prop_assert_eq!(got.as_ref(), model.get(&tag));
            }
        }
        let w = s.flash().wear();
        prop_assert!(w.max_erases_per_page - w.min_erases_per_page <= 1);
    }
}
