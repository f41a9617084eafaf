//! The persistent event log: a ring of protocol frames in fixed-size
//! records over a small storage trait.
//!
//! Each record carries the frame, its sequence number and a write index
//! that grows by one per record ever written, all under a CRC-32C. Opening
//! the log scans every record once and finds the ring's head from the
//! largest write index, so the log survives resets with no separate
//! metadata to keep consistent; a record torn by a reset mid-write fails its
//! CRC and reads as a hole. Sequence numbers strictly increase with the
//! write index, which lets a read find its start by binary search.

use pump_protocol::{CRC32C, MAX_FRAME_LEN};

/// Bytes of a record before the frame.
pub const RECORD_HEADER_LEN: usize = 16;

/// Size of one record slot: header and the largest frame.
pub const RECORD_LEN: usize = RECORD_HEADER_LEN + MAX_FRAME_LEN;

/// Most record slots a log may have (bounds the scan at open).
pub const MAX_SLOTS: u32 = 1 << 16;

const RECORD_MAGIC: [u8; 2] = *b"LR";

/// A storage failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The slot does not exist.
    OutOfRange,
    /// The device reported an error.
    Device,
}

/// Persistent storage of fixed-size records (a flash region split into
/// record slots, for instance). Writing a record must not disturb the others.
pub trait LogStorage {
    /// Number of record slots.
    fn slot_count(&self) -> u32;
    /// Reads slot `slot` (an erased slot may read as anything: its CRC fails).
    fn read(&mut self, slot: u32, record: &mut [u8; RECORD_LEN]) -> Result<(), StorageError>;
    /// Replaces slot `slot`.
    fn write(&mut self, slot: u32, record: &[u8; RECORD_LEN]) -> Result<(), StorageError>;
}

/// One stored frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredFrame {
    /// Its sequence number.
    pub sequence: u32,
    /// Its write index.
    pub write_index: u32,
    /// Frame length in the record buffer (after [`RECORD_HEADER_LEN`]).
    pub len: usize,
}

/// The log over `S`.
pub struct PersistentLog<S: LogStorage> {
    storage: S,
    slots: u32,
    /// Write index of the next record.
    next_write: u32,
    /// Write index of the oldest record still in the ring.
    oldest_write: u32,
    newest_sequence: Option<u32>,
}

impl<S: LogStorage> PersistentLog<S> {
    /// Opens the log over `storage`, recovering what it holds. Slots past
    /// [`MAX_SLOTS`] are not used.
    pub fn open(mut storage: S) -> Self {
        let slots = storage.slot_count().min(MAX_SLOTS);
        let mut record = [0u8; RECORD_LEN];
        let mut newest: Option<(u32, u32)> = None;
        for slot in 0..slots {
            if let Some(found) = decode_record(&mut storage, slot, slots, &mut record) {
                if newest.is_none_or(|(w, _)| found.write_index > w) {
                    newest = Some((found.write_index, found.sequence));
                }
            }
        }
        let next_write = newest.map_or(0, |(w, _)| w.saturating_add(1));
        Self {
            storage,
            slots,
            next_write,
            oldest_write: next_write.saturating_sub(slots),
            newest_sequence: newest.map(|(_, s)| s),
        }
    }

    /// The storage (for tests and the shell).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Sequence number of the newest stored frame.
    pub fn newest_sequence(&self) -> Option<u32> {
        self.newest_sequence
    }

    /// Whether older records were overwritten.
    pub fn has_wrapped(&self) -> bool {
        self.oldest_write > 0
    }

    /// Sequence number of the oldest stored frame.
    pub fn oldest_sequence(&mut self) -> Option<u32> {
        let mut record = [0u8; RECORD_LEN];
        self.first_valid_from(self.oldest_write, &mut record)
            .map(|f| f.sequence)
    }

    /// Appends a frame under `sequence`, overwriting the oldest when full.
    /// `sequence` must be above every stored one (the caller ensures it).
    pub fn append(&mut self, sequence: u32, frame: &[u8]) -> Result<(), StorageError> {
        if self.slots == 0 {
            return Err(StorageError::OutOfRange);
        }
        let len = u16::try_from(frame.len()).map_err(|_| StorageError::OutOfRange)?;
        let mut record = [0u8; RECORD_LEN];
        let body = record
            .get_mut(RECORD_HEADER_LEN..RECORD_HEADER_LEN + frame.len())
            .ok_or(StorageError::OutOfRange)?;
        body.copy_from_slice(frame);
        record[0..2].copy_from_slice(&RECORD_MAGIC);
        record[2..4].copy_from_slice(&len.to_le_bytes());
        record[4..8].copy_from_slice(&self.next_write.to_le_bytes());
        record[8..12].copy_from_slice(&sequence.to_le_bytes());
        let crc = record_crc(&record, frame.len());
        record[12..16].copy_from_slice(&crc.to_le_bytes());
        self.storage.write(self.next_write % self.slots, &record)?;
        self.next_write = self.next_write.saturating_add(1);
        self.oldest_write = self.next_write.saturating_sub(self.slots);
        self.newest_sequence = Some(sequence);
        Ok(())
    }

    /// The first stored frame whose sequence is at least `sequence`, read
    /// into `record` (frame at `RECORD_HEADER_LEN..`). Binary search: a
    /// bounded number of reads however large the log.
    pub fn first_at_or_after(
        &mut self,
        sequence: u32,
        record: &mut [u8; RECORD_LEN],
    ) -> Option<StoredFrame> {
        let (mut lo, mut hi) = (self.oldest_write, self.next_write);
        // Invariant: every valid record before `lo` has a smaller sequence;
        // every valid record from `hi` on has a sequence >= `sequence`.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.first_valid_in(mid, hi, record) {
                Some(found) if found.sequence < sequence => lo = found.write_index + 1,
                Some(_) => hi = mid,
                // Only holes between mid and hi: nothing there.
                None => hi = mid,
            }
        }
        self.first_valid_from(lo, record)
            .filter(|f| f.sequence >= sequence)
    }

    /// The first valid record at write index `from` or later.
    pub fn first_valid_from(
        &mut self,
        from: u32,
        record: &mut [u8; RECORD_LEN],
    ) -> Option<StoredFrame> {
        self.first_valid_in(from, self.next_write, record)
    }

    fn first_valid_in(
        &mut self,
        from: u32,
        to: u32,
        record: &mut [u8; RECORD_LEN],
    ) -> Option<StoredFrame> {
        let from = from.max(self.oldest_write);
        (from..to.min(self.next_write)).find_map(|w| {
            decode_record(&mut self.storage, w % self.slots, self.slots, record)
                .filter(|f| f.write_index == w)
        })
    }
}

fn record_crc(record: &[u8; RECORD_LEN], frame_len: usize) -> u32 {
    let mut digest = CRC32C.digest();
    digest.update(&record[..12]);
    digest.update(
        record
            .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + frame_len)
            .unwrap_or_default(),
    );
    digest.finalize()
}

/// Reads and checks slot `slot`; `None` for an erased, torn or foreign record.
fn decode_record<S: LogStorage>(
    storage: &mut S,
    slot: u32,
    slots: u32,
    record: &mut [u8; RECORD_LEN],
) -> Option<StoredFrame> {
    storage.read(slot, record).ok()?;
    if record[0..2] != RECORD_MAGIC {
        return None;
    }
    let len = usize::from(u16::from_le_bytes([record[2], record[3]]));
    if len > MAX_FRAME_LEN {
        return None;
    }
    let write_index = u32::from_le_bytes([record[4], record[5], record[6], record[7]]);
    let sequence = u32::from_le_bytes([record[8], record[9], record[10], record[11]]);
    let crc = u32::from_le_bytes([record[12], record[13], record[14], record[15]]);
    if crc != record_crc(record, len) || write_index % slots != slot {
        return None;
    }
    Some(StoredFrame {
        sequence,
        write_index,
        len,
    })
}
