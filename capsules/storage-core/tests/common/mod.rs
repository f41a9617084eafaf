//! Shared helpers of the integration tests.
#![allow(dead_code)]

use storage_core::{RingStore, SimFlash};

/// Small pages so a few dozen writes cycle the ring several times.
pub const PAGE: u32 = 256;

pub fn flash(pages: u32, seed: u64) -> SimFlash {
    SimFlash::new(PAGE, pages, seed).unwrap()
}

pub fn mount(flash: SimFlash, pages: u32) -> RingStore<SimFlash> {
    RingStore::mount(flash, 0, pages).unwrap()
}

/// A payload that says which write it is: `len` bytes from `(tag, n)`.
pub fn payload(tag: u8, n: u32, len: usize) -> Vec<u8> {
    let mut x = u64::from(n) << 8 | u64::from(tag);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// The latest payload of `tag`, or `None`.
pub fn latest(store: &mut RingStore<SimFlash>, tag: u8) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; storage_core::MAX_PAYLOAD_BYTES];
    store
        .read_latest(tag, &mut buf)
        .unwrap()
        .map(|n| buf[..n].to_vec())
}
