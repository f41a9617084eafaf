//! Atomic record storage over a nonvolatile-storage HIL: two slots, each
//! with a sequence number and CRC.
//!
//! A save writes the slot *not* holding the newest record, so a write torn
//! by a reset leaves the previous record intact; at boot the valid slot with
//! the higher sequence number wins. Saves that arrive while a write is in
//! flight are coalesced: only the latest record is written next.
//!
//! Slot layout (little endian): magic `"IPS1"`, sequence `u32`, record
//! length `u32`, time saved `u64` (core ms), CRC-32C `u32` over sequence,
//! length, time and record; then the record.

use core::cell::Cell;
use kernel::hil::nonvolatile_storage::{NonvolatileStorage, NonvolatileStorageClient};
use kernel::utilities::cells::{OptionalCell, TakeCell};
use pump_protocol::CRC32C;

use crate::platform::{RecordStore, StoreClient};

const MAGIC: [u8; 4] = *b"IPS1";

/// Slot header length.
pub const HEADER_LEN: usize = 24;

/// Largest record (the core's saved state).
pub const MAX_RECORD_LEN: usize = infusion_core::SAVED_STATE_LEN;

/// Length of each of the two buffers the board gives the store, and the
/// least slot stride.
pub const BUFFER_LEN: usize = HEADER_LEN + MAX_RECORD_LEN;

/// A slot's contents, if its header and CRC are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    /// Sequence number (newer is higher).
    pub sequence: u32,
    /// Record length.
    pub len: usize,
    /// Core time of the save.
    pub saved_at_ms: u64,
}

/// Writes header and `record` into `buf`; returns the bytes to write.
pub fn encode_slot(buf: &mut [u8], sequence: u32, record: &[u8], saved_at_ms: u64) -> usize {
    let len = record.len().min(MAX_RECORD_LEN).min(buf.len() - HEADER_LEN);
    buf[0..4].copy_from_slice(&MAGIC);
    buf[4..8].copy_from_slice(&sequence.to_le_bytes());
    buf[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    buf[12..20].copy_from_slice(&saved_at_ms.to_le_bytes());
    buf[HEADER_LEN..HEADER_LEN + len].copy_from_slice(&record[..len]);
    let crc = slot_crc(buf, len);
    buf[20..24].copy_from_slice(&crc.to_le_bytes());
    HEADER_LEN + len
}

fn slot_crc(buf: &[u8], len: usize) -> u32 {
    let mut digest = CRC32C.digest();
    digest.update(&buf[4..20]);
    digest.update(&buf[HEADER_LEN..HEADER_LEN + len]);
    digest.finalize()
}

/// Checks a slot read back from storage.
pub fn decode_slot(buf: &[u8]) -> Option<SlotInfo> {
    let word = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    if buf.len() < HEADER_LEN || buf[0..4] != MAGIC {
        return None;
    }
    let len = word(8) as usize;
    if len > MAX_RECORD_LEN || HEADER_LEN + len > buf.len() {
        return None;
    }
    if slot_crc(buf, len) != word(20) {
        return None;
    }
    let mut time = [0u8; 8];
    time.copy_from_slice(&buf[12..20]);
    Some(SlotInfo {
        sequence: word(4),
        len,
        saved_at_ms: u64::from_le_bytes(time),
    })
}

/// Of two slots, the one to restore: valid, and newest by sequence number
/// (compared with wrap-around).
pub fn newest(a: Option<SlotInfo>, b: Option<SlotInfo>) -> Option<(usize, SlotInfo)> {
    match (a, b) {
        (Some(a), Some(b)) => {
            if b.sequence.wrapping_sub(a.sequence) as i32 > 0 {
                Some((1, b))
            } else {
                Some((0, a))
            }
        }
        (Some(a), None) => Some((0, a)),
        (None, Some(b)) => Some((1, b)),
        (None, None) => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    LoadingSlot(usize),
    Writing,
}

/// The two-slot store. See the module documentation.
pub struct AbStore<'a, S: NonvolatileStorage<'a>> {
    storage: &'a S,
    base: usize,
    stride: usize,
    /// Buffer free for (or lent to) the next HIL operation.
    io_buf: TakeCell<'static, [u8]>,
    /// Holds the latest record not yet handed to the HIL.
    staged_buf: TakeCell<'static, [u8]>,
    staged_len: Cell<usize>,
    staged: Cell<bool>,
    state: Cell<State>,
    loading: Cell<bool>,
    /// A record could not be staged or written; cleared by the next
    /// completed write (which carries the whole latest state).
    lost: Cell<bool>,
    /// A save or write failed since the capsule last asked
    /// ([`RecordStore::take_fault`]).
    fault: Cell<bool>,
    next_sequence: Cell<u32>,
    slot0: Cell<Option<SlotInfo>>,
    client: OptionalCell<&'a dyn StoreClient>,
}

impl<'a, S: NonvolatileStorage<'a>> AbStore<'a, S> {
    /// Slots at `base` and `base + stride` of `storage`; `stride` at least
    /// [`BUFFER_LEN`] (and a multiple of the flash page, so the slots never
    /// share a page). Both buffers at least [`BUFFER_LEN`] long.
    pub fn new(
        storage: &'a S,
        buf_a: &'static mut [u8],
        buf_b: &'static mut [u8],
        base: usize,
        stride: usize,
    ) -> Self {
        Self {
            storage,
            base,
            stride: stride.max(BUFFER_LEN),
            io_buf: TakeCell::new(buf_a),
            staged_buf: TakeCell::new(buf_b),
            staged_len: Cell::new(0),
            staged: Cell::new(false),
            state: Cell::new(State::Idle),
            loading: Cell::new(true),
            lost: Cell::new(false),
            fault: Cell::new(false),
            next_sequence: Cell::new(1),
            slot0: Cell::new(None),
            client: OptionalCell::empty(),
        }
    }

    /// Where the loaded record and write completions go (the capsule).
    pub fn set_client(&self, client: &'a dyn StoreClient) {
        self.client.set(client);
    }

    fn mark_lost(&self) {
        self.lost.set(true);
        self.fault.set(true);
    }

    /// Reads both slots, then calls [`StoreClient::loaded`].
    pub fn load(&self) {
        self.read_slot(0);
    }

    fn slot_address(&self, slot: usize) -> usize {
        self.base + slot * self.stride
    }

    fn read_slot(&self, slot: usize) {
        let Some(buf) = self.io_buf.take() else {
            return;
        };
        let len = BUFFER_LEN.min(buf.len());
        self.state.set(State::LoadingSlot(slot));
        if let Err(_e) = self.storage.read(buf, self.slot_address(slot), len) {
            // The HIL does not hand the buffer back on error: with one buffer
            // left no write can start, so steps stay held (motor stopped).
            self.state.set(State::Idle);
            self.mark_lost();
            let slot0 = if slot == 1 { self.slot0.get() } else { None };
            self.finish_load(slot0, None);
        }
    }

    fn finish_load(&self, slot0: Option<SlotInfo>, slot1: Option<(&'static mut [u8], SlotInfo)>) {
        // Decide which buffer holds the winner.
        let slot1_info = slot1.as_ref().map(|(_, info)| *info);
        let winner = newest(slot0, slot1_info);
        if let Some((_, info)) = winner {
            self.next_sequence.set(info.sequence.wrapping_add(1));
        }
        self.loading.set(true);
        match (winner, slot1) {
            (Some((1, info)), Some((buf, _))) => {
                // Slot 1's bytes are in `buf`; slot 0's buffer is staged_buf.
                self.client.map(|client| {
                    client.loaded(
                        Some(&buf[HEADER_LEN..HEADER_LEN + info.len]),
                        info.saved_at_ms,
                    )
                });
                self.io_buf.replace(buf);
            }
            (Some((_, info)), slot1) => {
                // Slot 0's bytes are in staged_buf: move them out of the way.
                if let Some((buf, _)) = slot1 {
                    self.io_buf.replace(buf);
                }
                let held = self.staged_buf.take();
                if let Some(held) = held {
                    // Let saves made during restore stage into the other buffer.
                    if let Some(other) = self.io_buf.take() {
                        self.staged_buf.replace(other);
                    }
                    self.client.map(|client| {
                        client.loaded(
                            Some(&held[HEADER_LEN..HEADER_LEN + info.len]),
                            info.saved_at_ms,
                        )
                    });
                    self.io_buf.replace(held);
                }
            }
            (None, slot1) => {
                if let Some((buf, _)) = slot1 {
                    self.io_buf.replace(buf);
                }
                self.client.map(|client| client.loaded(None, 0));
            }
        }
        self.loading.set(false);
        self.start_write();
    }

    fn start_write(&self) {
        if self.loading.get() || self.state.get() != State::Idle || !self.staged.get() {
            return;
        }
        let (Some(staged), Some(spare)) = (self.staged_buf.take(), self.io_buf.take()) else {
            return;
        };
        self.staged.set(false);
        self.staged_buf.replace(spare);
        let sequence = self.next_sequence.get();
        self.next_sequence.set(sequence.wrapping_add(1));
        let address = self.slot_address((sequence & 1) as usize);
        let len = self.staged_len.get();
        self.state.set(State::Writing);
        if self.storage.write(staged, address, len).is_err() {
            // Nothing was written (and the HIL kept the buffer): steps stay
            // held, so the motor stops, rather than move unaccounted.
            self.state.set(State::Idle);
            self.mark_lost();
        }
    }
}

impl<'a, S: NonvolatileStorage<'a>> RecordStore for AbStore<'a, S> {
    fn save(&self, record: &[u8], now_ms: u64) {
        let sequence = self.next_sequence.get();
        let staged = self.staged_buf.map(|buf| {
            self.staged_len
                .set(encode_slot(buf, sequence, record, now_ms));
        });
        if staged.is_some() {
            self.staged.set(true);
            self.start_write();
            if self.lost.get() && self.state.get() != State::Writing {
                // No write is under way and the last one failed: this
                // record cannot reach storage either.
                self.fault.set(true);
            }
        } else {
            self.mark_lost();
        }
    }

    fn take_fault(&self) -> bool {
        self.fault.replace(false)
    }

    fn is_committed(&self) -> bool {
        !self.loading.get()
            && !self.lost.get()
            && !self.staged.get()
            && self.state.get() == State::Idle
    }
}

impl<'a, S: NonvolatileStorage<'a>> NonvolatileStorageClient for AbStore<'a, S> {
    fn read_done(&self, buffer: &'static mut [u8], _length: usize) {
        match self.state.get() {
            State::LoadingSlot(0) => {
                self.slot0.set(decode_slot(buffer));
                // Keep slot 0's bytes in the staged buffer; read slot 1 into the other.
                if let Some(other) = self.staged_buf.take() {
                    self.io_buf.replace(other);
                }
                self.staged_buf.replace(buffer);
                self.read_slot(1);
            }
            State::LoadingSlot(_) => {
                self.state.set(State::Idle);
                let slot1 = decode_slot(buffer);
                match slot1 {
                    Some(info) => self.finish_load(self.slot0.get(), Some((buffer, info))),
                    None => {
                        self.io_buf.replace(buffer);
                        self.finish_load(self.slot0.get(), None);
                    }
                }
            }
            _ => {
                self.io_buf.replace(buffer);
            }
        }
    }

    fn write_done(&self, buffer: &'static mut [u8], _length: usize) {
        self.io_buf.replace(buffer);
        self.state.set(State::Idle);
        if self.staged.get() {
            self.start_write();
        } else {
            self.lost.set(false);
            self.client.map(|client| client.committed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;

    #[test]
    fn slot_round_trip_and_corruption() {
        let mut buf = vec![0u8; BUFFER_LEN];
        let n = encode_slot(&mut buf, 7, b"hello", 123_456);
        assert_eq!(n, HEADER_LEN + 5);
        let info = decode_slot(&buf).unwrap();
        assert_eq!(
            info,
            SlotInfo {
                sequence: 7,
                len: 5,
                saved_at_ms: 123_456
            }
        );
        for i in 0..n {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert_eq!(decode_slot(&bad), None, "flip at {i}");
        }
        assert_eq!(decode_slot(&[0xFF; BUFFER_LEN]), None);
    }

    /// Flash whose every operation fails.
    struct BrokenFlash;

    impl<'a> NonvolatileStorage<'a> for BrokenFlash {
        fn set_client(&self, _client: &'a dyn NonvolatileStorageClient) {}
        fn read(
            &self,
            _buffer: &'static mut [u8],
            _address: usize,
            _length: usize,
        ) -> Result<(), kernel::ErrorCode> {
            Err(kernel::ErrorCode::FAIL)
        }
        fn write(
            &self,
            _buffer: &'static mut [u8],
            _address: usize,
            _length: usize,
        ) -> Result<(), kernel::ErrorCode> {
            Err(kernel::ErrorCode::FAIL)
        }
    }

    fn leaked_buffer() -> &'static mut [u8] {
        std::boxed::Box::leak(vec![0u8; BUFFER_LEN].into_boxed_slice())
    }

    /// SR-PER-004: every record that cannot reach storage is reported,
    /// each failure once.
    #[test]
    fn sr_per_004_failed_reads_and_writes_are_reported_once_each() {
        static FLASH: BrokenFlash = BrokenFlash;
        let store = AbStore::new(&FLASH, leaked_buffer(), leaked_buffer(), 0, BUFFER_LEN);
        assert!(!store.take_fault());
        store.load();
        assert!(store.take_fault(), "the failed read");
        assert!(!store.take_fault(), "reported once");
        store.save(b"state", 1);
        assert!(!store.is_committed());
        assert!(store.take_fault(), "the record that cannot be written");
        assert!(!store.take_fault());
        store.save(b"state 2", 2);
        assert!(store.take_fault());
    }

    #[test]
    fn newest_valid_slot_wins() {
        let at = |sequence| {
            Some(SlotInfo {
                sequence,
                len: 0,
                saved_at_ms: 0,
            })
        };
        assert_eq!(newest(at(3), at(4)).map(|w| w.0), Some(1));
        assert_eq!(newest(at(5), at(4)).map(|w| w.0), Some(0));
        assert_eq!(newest(at(u32::MAX), at(0)).map(|w| w.0), Some(1));
        assert_eq!(newest(None, at(4)).map(|w| w.0), Some(1));
        assert_eq!(newest(at(9), None).map(|w| w.0), Some(0));
        assert_eq!(newest(None, None), None);
    }
}
