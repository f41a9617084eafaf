//! The persistent event log: a ring of protocol frames, packed in
//! variable-length records over the pages of a NOR flash region
//! ([`storage_core::Flash`], which [`LogStorage`] names here).
//!
//! Layout (all little-endian; `docs/persistence.md` §9):
//!
//! - Every page starts with a 12-byte header: magic `TLG1`, the page's
//!   sequence number (one more than the page before it in the ring, so a
//!   page's place in time is known without other metadata) and a CRC-32C.
//! - After it, records back to back, each word-aligned: length of the frame
//!   (`u16`), magic `LR`, the frame's sequence number, a CRC-32C over all of
//!   it, then the frame padded to a whole word. A record never spans pages.
//! - The page's last word is its **seal**, programmed (to 0) when the log
//!   moves on from the page, before the page after it is erased.
//!
//! Rules (NOR flash: a word is programmed once, a page erased as a whole):
//!
//! - Appends go to the head page; a record that does not fit there opens
//!   the next page in ring order. That page is erased first unless it reads
//!   blank, which loses the records it held: the oldest of the log. The log
//!   counts them ([`LogStats::records_erased`]), and a read from before the
//!   oldest frame left is answered with a `LogGap` naming them (the core's
//!   `ReadLog` service).
//! - Opening the log reads every page header and scans the head page: the
//!   newest valid header is the head, and the pages before it whose
//!   sequence numbers follow on are the log. A record torn by a reset
//!   fails its CRC and reads as a hole (its length word is written first,
//!   so the next record is found after it); if even that word is torn, the
//!   rest of the page is not trusted and the next append opens a new page.
//!   A torn page header reads as a page that is not part of the log (erased
//!   before use). A torn erase may leave the page's header and some of its
//!   records as they were, with others erased or garbled in between; the
//!   seal on the head page says that the page after it was being erased,
//!   so opening leaves that page out of the log, and no hole inside the log
//!   can come from an erase.
//! - Sequence numbers strictly increase with the write order (the caller
//!   ensures it), which lets a read find its start by a binary search over
//!   the pages.
//!
//! Each page is erased once per pass of the ring, so the wear is even; the
//! figures are in `docs/persistence.md` §9 ([`erases_per_page_per_year_x100`]).

use pump_protocol::{CRC32C, MAX_FRAME_LEN};
pub use storage_core::Flash as LogStorage;
pub use storage_core::{FlashError, Geometry};
use storage_core::{ERASED_WORD, WORD_BYTES};

/// Bytes of a page header.
pub const PAGE_HEADER_LEN: usize = 12;

/// Bytes of a record before the frame.
pub const RECORD_HEADER_LEN: usize = 12;

/// A buffer that holds any record: header and the largest frame.
pub const RECORD_LEN: usize = RECORD_HEADER_LEN + MAX_FRAME_LEN;

/// Most bytes a record takes in a page (its header, the largest frame and
/// the padding to a word).
pub const MAX_RECORD_SPAN: u32 = span(MAX_FRAME_LEN);

/// Bytes at the end of every page kept for its seal (one word, programmed
/// before the page after it is erased; see the module documentation).
pub const SEAL_LEN: u32 = WORD_BYTES;

/// The smallest page the log accepts: a header, the largest record and the
/// seal.
pub const MIN_PAGE_BYTES: u32 = PAGE_HEADER_LEN as u32 + MAX_RECORD_SPAN + SEAL_LEN;

/// Most pages a log may have (bounds the scan at open).
pub const MAX_PAGES: u32 = 4096;

const PAGE_MAGIC: [u8; 4] = *b"TLG1";
const RECORD_MAGIC: [u8; 2] = *b"LR";
const WORD: usize = WORD_BYTES as usize;
/// Bytes read at a time when checking that a page is blank.
const BLANK_CHUNK: usize = 64;

/// Bytes a record of a `frame_len`-byte frame takes in a page.
pub const fn span(frame_len: usize) -> u32 {
    let bytes = RECORD_HEADER_LEN + frame_len;
    (bytes.div_ceil(WORD) * WORD) as u32
}

/// Why an append failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The frame is empty or longer than [`MAX_FRAME_LEN`].
    OutOfRange,
    /// The region is not usable as a log: fewer than 2 pages or more than
    /// [`MAX_PAGES`], pages smaller than [`MIN_PAGE_BYTES`] or not whole
    /// words, or words that are not 4 bytes. Nothing is ever written.
    BadGeometry,
    /// The flash (or the driver that serves it) refused or failed.
    Flash(FlashError),
}

impl From<FlashError> for StorageError {
    fn from(error: FlashError) -> Self {
        StorageError::Flash(error)
    }
}

/// One stored frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredFrame {
    /// Its sequence number.
    pub sequence: u32,
    /// Where it is: page sequence number × 2^32 + offset in the page.
    pub position: u64,
    /// Where the record after it would be.
    pub next_position: u64,
    /// Frame length in the record buffer (after [`RECORD_HEADER_LEN`]).
    pub len: usize,
}

/// What the log did since it was opened (all saturating).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records appended.
    pub records_written: u32,
    /// Pages erased before reuse.
    pub pages_erased: u32,
    /// Valid records those erases destroyed (the oldest of the log).
    pub records_erased: u32,
    /// Pages opened (a page header programmed).
    pub pages_opened: u32,
    /// Head pages closed early: a torn record found at open, or a failed
    /// program.
    pub pages_closed_early: u32,
}

/// The log over `S`.
pub struct PersistentLog<S: LogStorage> {
    storage: S,
    page_bytes: u32,
    /// 0 when the geometry is unusable.
    pages: u32,
    /// The head page: its index and sequence number; `None` before the
    /// first page is opened.
    head: Option<(u32, u32)>,
    /// Next free offset in the head page (`page_bytes`: closed).
    head_offset: u32,
    /// Sequence number of the oldest page still in the log.
    oldest_page: u32,
    newest_sequence: Option<u32>,
    stats: LogStats,
}

impl<S: LogStorage> PersistentLog<S> {
    /// Opens the log over `storage`, recovering what it holds. A region the
    /// log cannot use (see [`StorageError::BadGeometry`]) opens empty and
    /// refuses every append.
    pub fn open(storage: S) -> Self {
        let geometry = storage.geometry();
        let usable = geometry.word_size_bytes == WORD_BYTES
            && geometry.page_size_bytes % WORD_BYTES == 0
            && geometry.page_size_bytes >= MIN_PAGE_BYTES
            && (2..=MAX_PAGES).contains(&geometry.page_count)
            && geometry.total_bytes().is_some();
        let mut log = Self {
            storage,
            page_bytes: geometry.page_size_bytes,
            pages: if usable { geometry.page_count } else { 0 },
            head: None,
            head_offset: 0,
            oldest_page: 0,
            newest_sequence: None,
            stats: LogStats::default(),
        };
        if usable {
            log.recover();
        }
        log
    }

    fn recover(&mut self) {
        // The head: the valid page header with the largest sequence number.
        let mut head: Option<(u32, u32)> = None;
        for page in 0..self.pages {
            if let Some(seq) = self.page_sequence(page) {
                if head.is_none_or(|(_, s)| seq > s) {
                    head = Some((page, seq));
                }
            }
        }
        let Some((head_page, head_seq)) = head else {
            return;
        };
        self.head = head;
        // A sealed head: the page after it was being opened (erased), so it
        // is not part of the log whatever it holds.
        let sealed = self.is_sealed(head_page);
        let behind = if sealed {
            self.pages - 2
        } else {
            self.pages - 1
        };
        // The pages before it whose numbers follow on.
        let mut oldest = head_seq;
        for back in 1..=behind {
            let page = (head_page + self.pages - back) % self.pages;
            match self.page_sequence(page) {
                Some(seq) if head_seq >= back && seq == head_seq - back => oldest = seq,
                _ => break,
            }
        }
        self.oldest_page = oldest;
        // The end of the head page's records.
        let mut record = [0u8; RECORD_LEN];
        let mut offset = PAGE_HEADER_LEN as u32;
        self.head_offset = loop {
            match self.record_at(head_page, offset, &mut record) {
                Slot::Record(len, _) | Slot::Hole(len) => offset += span(len),
                Slot::Free if !sealed => break offset,
                Slot::Free => break self.records_end(),
                Slot::Bad => {
                    self.stats.pages_closed_early = self.stats.pages_closed_early.saturating_add(1);
                    break self.records_end();
                }
            }
        };
        // The newest sequence number: the last valid record, head first.
        for seq in (self.oldest_page..=head_seq).rev() {
            if let Some(newest) = self.last_sequence_in(seq) {
                self.newest_sequence = Some(newest);
                break;
            }
        }
    }

    /// The storage (for tests and the shell).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, mutably (for tests: power cuts).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// What the log did since it was opened.
    pub fn stats(&self) -> LogStats {
        self.stats
    }

    /// Whether the region is usable (see [`StorageError::BadGeometry`]).
    pub fn is_usable(&self) -> bool {
        self.pages > 0
    }

    /// Pages in the ring (0 if the region is not usable).
    pub fn page_count(&self) -> u32 {
        self.pages
    }

    /// Sequence number of the newest stored frame.
    pub fn newest_sequence(&self) -> Option<u32> {
        self.newest_sequence
    }

    /// Whether older records were erased to make room (the ring has come
    /// round to its first page again).
    pub fn has_wrapped(&self) -> bool {
        self.oldest_page > 0
    }

    /// Sequence number of the oldest stored frame.
    pub fn oldest_sequence(&mut self) -> Option<u32> {
        let mut record = [0u8; RECORD_LEN];
        self.first_valid_from(position(self.oldest_page, 0), &mut record)
            .map(|f| f.sequence)
    }

    /// Appends a frame under `sequence`; when the head page is full, the
    /// next page is erased for it, and the oldest records with it.
    /// `sequence` must be above every stored one (the caller ensures it).
    pub fn append(&mut self, sequence: u32, frame: &[u8]) -> Result<(), StorageError> {
        if self.pages == 0 {
            return Err(StorageError::BadGeometry);
        }
        if frame.is_empty() || frame.len() > MAX_FRAME_LEN {
            return Err(StorageError::OutOfRange);
        }
        let len = frame.len();
        let need = span(len);
        let (page, _) = match self.head {
            Some(head) if self.head_offset.saturating_add(need) <= self.records_end() => head,
            _ => self.open_next_page()?,
        };
        let mut record = [0xFFu8; RECORD_LEN + WORD];
        record[0..2].copy_from_slice(&(len as u16).to_le_bytes());
        record[2..4].copy_from_slice(&RECORD_MAGIC);
        record[4..8].copy_from_slice(&sequence.to_le_bytes());
        record[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len].copy_from_slice(frame);
        let crc = record_crc(&record, len);
        record[8..12].copy_from_slice(&crc.to_le_bytes());
        let addr = page * self.page_bytes + self.head_offset;
        let programmed = self
            .storage
            .program(addr, record.get(..need as usize).unwrap_or_default());
        if let Err(error) = programmed {
            // What the failed program left is unknown: close the page.
            self.head_offset = self.records_end();
            self.stats.pages_closed_early = self.stats.pages_closed_early.saturating_add(1);
            return Err(error.into());
        }
        self.head_offset += need;
        self.newest_sequence = Some(sequence);
        self.stats.records_written = self.stats.records_written.saturating_add(1);
        Ok(())
    }

    /// Opens the page after the head: seals the head, erases the next page
    /// unless blank (the records it held leave the log first) and programs
    /// its header.
    fn open_next_page(&mut self) -> Result<(u32, u32), StorageError> {
        if let Some((head_page, _)) = self.head {
            if !self.is_sealed(head_page) {
                let seal_at = head_page * self.page_bytes + self.records_end();
                self.storage.program(seal_at, &[0u8; SEAL_LEN as usize])?;
            }
        }
        let (page, seq) = match self.head {
            Some((page, seq)) => (
                (page + 1) % self.pages,
                seq.checked_add(1).ok_or(
                    // 2^32 pages opened: far past any flash's endurance.
                    StorageError::Flash(FlashError::Worn),
                )?,
            ),
            None => (0, 0),
        };
        // Reusing the page of `seq - pages`: its records leave the log now,
        // whatever the erase does.
        if let Some(reused) = seq.checked_sub(self.pages) {
            if self.head.is_some() && reused >= self.oldest_page {
                let lost = self.count_records_in(reused);
                self.stats.records_erased = self.stats.records_erased.saturating_add(lost);
                self.oldest_page = reused + 1;
            }
        }
        if !self.is_blank(page)? {
            self.storage.erase_page(page)?;
            self.stats.pages_erased = self.stats.pages_erased.saturating_add(1);
        }
        let mut header = [0u8; PAGE_HEADER_LEN];
        header[0..4].copy_from_slice(&PAGE_MAGIC);
        header[4..8].copy_from_slice(&seq.to_le_bytes());
        let crc = CRC32C.checksum(&header[..8]);
        header[8..12].copy_from_slice(&crc.to_le_bytes());
        self.storage.program(page * self.page_bytes, &header)?;
        if self.head.is_none() {
            self.oldest_page = seq;
        }
        self.head = Some((page, seq));
        self.head_offset = PAGE_HEADER_LEN as u32;
        self.stats.pages_opened = self.stats.pages_opened.saturating_add(1);
        Ok((page, seq))
    }

    /// The first stored frame whose sequence is at least `sequence`, read
    /// into `record` (frame at `RECORD_HEADER_LEN..`). A binary search over
    /// the pages, then a scan of at most a page or so.
    pub fn first_at_or_after(
        &mut self,
        sequence: u32,
        record: &mut [u8; RECORD_LEN],
    ) -> Option<StoredFrame> {
        let (_, head_seq) = self.head?;
        // The first page whose first valid record (or a later page's) is at
        // or after `sequence`; the frame sought is in it or the page before.
        let (mut lo, mut hi) = (self.oldest_page, head_seq.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.first_valid_from(position(mid, 0), record) {
                Some(found) if found.sequence < sequence => lo = mid + 1,
                _ => hi = mid,
            }
        }
        let start = lo.saturating_sub(1).max(self.oldest_page);
        let mut cursor = self.first_valid_from(position(start, 0), record);
        while let Some(found) = cursor {
            if found.sequence >= sequence {
                return Some(found);
            }
            cursor = self.first_valid_from(found.next_position, record);
        }
        None
    }

    /// The first valid record at `from` or later (`from` is a record's
    /// `position` or `next_position`, or a page's start).
    pub fn first_valid_from(
        &mut self,
        from: u64,
        record: &mut [u8; RECORD_LEN],
    ) -> Option<StoredFrame> {
        let (_, head_seq) = self.head?;
        let (mut seq, mut offset) = split(from);
        if seq < self.oldest_page {
            (seq, offset) = (self.oldest_page, 0);
        }
        while seq <= head_seq {
            let page = self.page_of(seq)?;
            let end = if seq == head_seq {
                self.head_offset
            } else {
                self.records_end()
            };
            let mut at = offset.max(PAGE_HEADER_LEN as u32);
            while at < end {
                match self.record_at(page, at, record) {
                    Slot::Record(len, sequence) => {
                        return Some(StoredFrame {
                            sequence,
                            position: position(seq, at),
                            next_position: position(seq, at + span(len)),
                            len,
                        })
                    }
                    Slot::Hole(len) => at += span(len),
                    Slot::Free | Slot::Bad => break,
                }
            }
            seq += 1;
            offset = 0;
        }
        None
    }

    /// Where the records of a page must end: before its seal.
    fn records_end(&self) -> u32 {
        self.page_bytes - SEAL_LEN
    }

    /// Whether page `page` is sealed (its last word programmed, even in
    /// part; a read error counts as sealed, the cautious answer).
    fn is_sealed(&mut self, page: u32) -> bool {
        let mut word = [0u8; WORD];
        let at = page * self.page_bytes + self.records_end();
        self.storage.read(at, &mut word).is_err() || u32::from_le_bytes(word) != ERASED_WORD
    }

    /// The index of the page holding page sequence `seq` (in the log).
    fn page_of(&self, seq: u32) -> Option<u32> {
        let (head_page, head_seq) = self.head?;
        let back = head_seq.checked_sub(seq)?;
        (back < self.pages).then(|| (head_page + self.pages - back % self.pages) % self.pages)
    }

    /// The page's sequence number, if its header is valid.
    fn page_sequence(&mut self, page: u32) -> Option<u32> {
        let mut header = [0u8; PAGE_HEADER_LEN];
        self.storage
            .read(page * self.page_bytes, &mut header)
            .ok()?;
        let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        (header[0..4] == PAGE_MAGIC && crc == CRC32C.checksum(&header[..8]))
            .then(|| u32::from_le_bytes([header[4], header[5], header[6], header[7]]))
    }

    fn last_sequence_in(&mut self, seq: u32) -> Option<u32> {
        let mut record = [0u8; RECORD_LEN];
        let mut last = None;
        let mut cursor = self.first_valid_from(position(seq, 0), &mut record);
        while let Some(found) = cursor.filter(|f| split(f.position).0 == seq) {
            last = Some(found.sequence);
            cursor = self.first_valid_from(found.next_position, &mut record);
        }
        last
    }

    fn count_records_in(&mut self, seq: u32) -> u32 {
        let mut record = [0u8; RECORD_LEN];
        let mut count = 0u32;
        let mut cursor = self.first_valid_from(position(seq, 0), &mut record);
        while let Some(found) = cursor.filter(|f| split(f.position).0 == seq) {
            count = count.saturating_add(1);
            cursor = self.first_valid_from(found.next_position, &mut record);
        }
        count
    }

    fn is_blank(&mut self, page: u32) -> Result<bool, StorageError> {
        let mut chunk = [0u8; BLANK_CHUNK];
        let start = page * self.page_bytes;
        for at in (0..self.page_bytes).step_by(BLANK_CHUNK) {
            let n = (self.page_bytes - at).min(BLANK_CHUNK as u32) as usize;
            let buf = &mut chunk[..n];
            self.storage.read(start + at, buf)?;
            if buf.iter().any(|&b| b != 0xFF) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads and checks the record at `offset` of page `page`.
    fn record_at(&mut self, page: u32, offset: u32, record: &mut [u8; RECORD_LEN]) -> Slot {
        if offset.saturating_add(RECORD_HEADER_LEN as u32) > self.records_end() {
            return Slot::Free;
        }
        let addr = page * self.page_bytes + offset;
        if self
            .storage
            .read(addr, &mut record[..RECORD_HEADER_LEN])
            .is_err()
        {
            return Slot::Bad;
        }
        let first = u32::from_le_bytes([record[0], record[1], record[2], record[3]]);
        if first == ERASED_WORD {
            return Slot::Free;
        }
        let len = usize::from(u16::from_le_bytes([record[0], record[1]]));
        if record[2..4] != RECORD_MAGIC
            || len == 0
            || len > MAX_FRAME_LEN
            || offset.saturating_add(span(len)) > self.records_end()
        {
            return Slot::Bad;
        }
        let body = &mut record[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len];
        if self
            .storage
            .read(addr + RECORD_HEADER_LEN as u32, body)
            .is_err()
        {
            return Slot::Bad;
        }
        let crc = u32::from_le_bytes([record[8], record[9], record[10], record[11]]);
        if crc != record_crc(record, len) {
            return Slot::Hole(len);
        }
        let sequence = u32::from_le_bytes([record[4], record[5], record[6], record[7]]);
        Slot::Record(len, sequence)
    }
}

/// What a record slot holds.
enum Slot {
    /// A valid record: frame length and sequence number.
    Record(usize, u32),
    /// Erased: the page's records end here.
    Free,
    /// A record whose first word (length and magic) is whole but whose CRC
    /// fails (torn by a reset, or damaged): skipped, the next one follows.
    Hole(usize),
    /// Torn or foreign first word: nothing after it in the page is trusted.
    Bad,
}

fn position(page_seq: u32, offset: u32) -> u64 {
    (u64::from(page_seq) << 32) | u64::from(offset)
}

fn split(position: u64) -> (u32, u32) {
    ((position >> 32) as u32, position as u32)
}

fn record_crc(record: &[u8], frame_len: usize) -> u32 {
    let mut digest = CRC32C.digest();
    digest.update(&record[..8]);
    digest.update(
        record
            .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + frame_len)
            .unwrap_or_default(),
    );
    digest.finalize()
}

/// Erase cycles per page per year × 100, from a measurement: `pages_opened`
/// pages opened in `elapsed_ms` over a ring of `pages` pages. Once the ring
/// has come round, every page opened is a page erased, and the ring erases
/// its pages in turn, so each page sees `pages_opened / pages` erases in the
/// time measured (a year is 1461/4 days). `None` when nothing was measured.
pub fn erases_per_page_per_year_x100(
    pages_opened: u64,
    elapsed_ms: u64,
    pages: u32,
) -> Option<u64> {
    if elapsed_ms == 0 || pages == 0 {
        return None;
    }
    const MS_PER_YEAR_X4: u128 = 1461 * 86_400_000;
    let num = u128::from(pages_opened) * MS_PER_YEAR_X4 * 100;
    let den = 4 * u128::from(elapsed_ms) * u128::from(pages);
    Some(u64::try_from(num / den).unwrap_or(u64::MAX))
}
