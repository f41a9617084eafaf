//! The store's central promise: after a power cut at ANY flash operation and
//! a remount, `read_latest(tag)` returns the last write of `tag` that
//! returned `Ok`, or the write that was in flight, and nothing else: never
//! an older value, never garbage, never an error (`Ok(None)` only for tags
//! never written). Checked by cutting at every operation index of random
//! write sequences, then again during the recovery that follows.

mod common;

use common::{flash, mount, payload, PAGE};
use proptest::prelude::*;
use std::collections::HashMap;
use storage_core::{FlashError, RingStore, SimFlash, StoreError, TornOp};

/// One write: a tag and a payload length.
type Op = (u8, usize);

/// Geometries under which every write of the scenario is within the live
/// limit: (pages, tags, longest payload).
const SHAPES: [(u32, u8, usize); 3] = [(2, 3, 40), (3, 4, 60), (5, 4, 100)];

#[derive(Default, Clone, Debug)]
struct Model {
    acked: HashMap<u8, Vec<u8>>,
}

/// Runs `ops` (numbered from `first`) until one fails; returns the failed
/// write, which must be a power loss.
fn run(
    store: &mut RingStore<SimFlash>,
    model: &mut Model,
    ops: &[Op],
    first: u32,
) -> Option<(u8, Vec<u8>)> {
    for (i, &(tag, len)) in ops.iter().enumerate() {
        let p = payload(tag, first + i as u32, len);
        match store.write(tag, &p) {
            Ok(()) => {
                model.acked.insert(tag, p);
            }
            Err(StoreError::Flash(FlashError::PowerLost)) => return Some((tag, p)),
            Err(e) => panic!("write {} of tag {tag} ({len} B): {e:?}", first + i as u32),
        }
    }
    None
}

/// Reboots and checks every tag; folds the in-flight write into the model
/// if it is what the store now holds.
fn reboot_and_check(
    store: RingStore<SimFlash>,
    pages: u32,
    tags: u8,
    model: &mut Model,
    in_flight: Option<(u8, Vec<u8>)>,
) -> RingStore<SimFlash> {
    let mut f = store.into_flash();
    f.power_on();
    let mut store = RingStore::mount(f, 0, pages).expect("mount after a power cut");
    let mut buf = vec![0u8; 4096];
    for tag in 0..tags {
        let got = store
            .read_latest(tag, &mut buf)
            .unwrap_or_else(|e| panic!("tag {tag}: {e:?}"))
            .map(|n| buf[..n].to_vec());
        let old = model.acked.get(&tag).cloned();
        match &in_flight {
            Some((t, new)) if *t == tag => {
                assert!(
                    got == old || got.as_ref() == Some(new),
                    "tag {tag}: neither the acknowledged nor the in-flight value"
                );
                if let Some(g) = got {
                    model.acked.insert(tag, g);
                }
            }
            _ => assert_eq!(got, old, "tag {tag}"),
        }
    }
    store
}

/// Number of flash operations the scenario takes without a cut.
fn ops_without_cut(pages: u32, ops: &[Op], seed: u64) -> u64 {
    let mut s = mount(flash(pages, seed), pages);
    assert!(run(&mut s, &mut Model::default(), ops, 0).is_none());
    s.flash().ops()
}

/// Cuts at `cut`, checks, then runs `more` with a second cut at `cut2`,
/// checks, then finishes `more` with power on and checks once more.
fn scenario(
    pages: u32,
    tags: u8,
    ops: &[Op],
    more: &[Op],
    seed: u64,
    cut: u64,
    cut2: u64,
) -> Option<TornOp> {
    let mut model = Model::default();
    let mut s = mount(flash(pages, seed), pages);
    s.flash_mut().cut_power_after(cut);
    let in_flight = run(&mut s, &mut model, ops, 0);
    let torn = s.flash().last_torn();
    let mut s = reboot_and_check(s, pages, tags, &mut model, in_flight);
    // Recovery is itself cut.
    s.flash_mut().cut_power_after(cut2);
    let base = ops.len() as u32;
    let in_flight = run(&mut s, &mut model, more, base);
    let mut s = reboot_and_check(s, pages, tags, &mut model, in_flight);
    // And the store goes on working.
    assert!(run(&mut s, &mut model, more, 2 * base).is_none());
    reboot_and_check(s, pages, tags, &mut model, None);
    torn
}

/// A shape index, the writes, the writes after the first cut, a seed and
/// the second cut.
type Case = (usize, Vec<Op>, Vec<Op>, u64, u64);

fn ops_strategy() -> impl Strategy<Value = Case> {
    (0..SHAPES.len()).prop_flat_map(|shape| {
        let (_, tags, max) = SHAPES[shape];
        let op = (0..tags, 0..=max);
        (
            Just(shape),
            prop::collection::vec(op.clone(), 1..80),
            prop::collection::vec(op, 1..20),
            any::<u64>(),
            0u64..80,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A cut at every operation index of a random sequence of writes of
    /// random tags and sizes, then a second cut during recovery.
    #[test]
    fn a_cut_at_any_operation_loses_nothing_acknowledged((shape, ops, more, seed, cut2) in ops_strategy()) {
        let (pages, tags, _) = SHAPES[shape];
        let total = ops_without_cut(pages, &ops, seed);
        for cut in 0..total {
            scenario(pages, tags, &ops, &more, seed ^ cut, cut, cut2);
        }
    }
}

/// A fixed scenario swept cut by cut, with proof that the sweep tore every
/// kind of operation: record programs (whole, partial, garbled), page
/// headers, copy-forward programs and erases.
#[test]
fn sweep_tears_every_kind_of_operation() {
    let pages = 3;
    let ops: Vec<Op> = (0..60u32)
        .map(|n| ((n % 4) as u8, (n as usize * 7) % 61))
        .collect();
    let more: Vec<Op> = (0..10u32).map(|n| ((n % 4) as u8, 33)).collect();
    let total = ops_without_cut(pages, &ops, 11);
    assert!(total > 150, "{total}");
    let (mut erases, mut headers, mut partial, mut garbled, mut whole) = (0, 0, 0, 0, 0);
    for cut in 0..total {
        match scenario(pages, 4, &ops, &more, 11 + cut, cut, cut % 37) {
            Some(TornOp::Erase { .. }) => erases += 1,
            Some(TornOp::Program {
                addr,
                words,
                words_written,
                garbled: g,
            }) => {
                if addr % PAGE == 0 {
                    headers += 1;
                }
                if g {
                    garbled += 1;
                } else if words_written == words {
                    whole += 1;
                } else {
                    partial += 1;
                }
            }
            None => panic!("cut {cut} of {total} tore nothing"),
        }
    }
    assert!(erases >= 10, "{erases} erases torn");
    assert!(headers >= 10, "{headers} page headers torn");
    assert!(
        partial > 0 && garbled > 0 && whole > 0,
        "{partial} {garbled} {whole}"
    );
}
