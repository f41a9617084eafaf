//! Persistence substrate for the pump's safety kernel: a power-loss-safe,
//! wear-levelling, log-structured record store over NOR flash.
//!
//! - [`Flash`]: the NOR flash model (nRF52840 NVMC: 4 KiB pages, 32-bit
//!   words programmed once per erase).
//! - [`RingStore`]: records `(tag, payload ≤ 2 KiB)` appended to a ring of
//!   pages; [`RingStore::read_latest`] returns the latest record of a tag.
//!   Before the oldest page is erased, its records that are still the latest
//!   of their tag are copied forward, so every page is erased once per pass
//!   of the ring. After a power cut at any flash operation, a remount
//!   returns for every tag the last write that returned `Ok`, or the one
//!   that was in flight: never an older value, never garbage.
//! - [`LogRegion`]: pages of a flash lent to one app (the telemetry log),
//!   every address checked, NOR rules kept, erases rationed.
//! - [`wear`]: years until the most-worn page reaches its endurance, from
//!   measured use.
//! - `SimFlash` (feature `std`): an in-memory flash with erase counters,
//!   endurance and deterministic power-cut injection.
//!
//! The on-flash format, the power-loss argument and the wear arithmetic are
//! in `docs/persistence-store.md`. `no_std`, no allocator, no `unsafe`;
//! RAM is the struct (an index of [`MAX_TAGS`] entries) plus a 64-byte
//! buffer on the stack.
//!
//! ```
//! use storage_core::{RingStore, SimFlash};
//!
//! let flash = SimFlash::nrf52840(8, 1).unwrap();
//! let mut store = RingStore::mount(flash, 0, 8).unwrap();
//! store.write(3, b"therapy state").unwrap();
//! let mut buf = [0u8; 64];
//! assert_eq!(store.read_latest(3, &mut buf), Ok(Some(13)));
//! assert_eq!(&buf[..13], b"therapy state");
//! assert_eq!(store.read_latest(4, &mut buf), Ok(None));
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod error;
mod flash;
pub mod format;
pub mod region;
mod ring;
#[cfg(feature = "std")]
mod sim;
pub mod wear;
mod write;

pub use error::StoreError;
pub use flash::{Flash, FlashError, Geometry, ERASED_WORD, WORD_BYTES};
pub use format::{
    footprint_bytes, MAX_PAYLOAD_BYTES, MAX_TAGS, PAGE_HEADER_BYTES, RECORD_HEADER_BYTES,
};
pub use region::{LogRegion, RegionError};
pub use ring::{RingStore, StoreStats, MIN_PAGE_BYTES};
#[cfg(feature = "std")]
pub use sim::{SharedSimFlash, SimFlash, SimStats, TornOp, WearStats, DEFAULT_ENDURANCE_CYCLES};
