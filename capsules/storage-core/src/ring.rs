//! `RingStore`: mount (scan and recover), reads, and the flash helpers the
//! write path (`write.rs`) shares. The design and its power-loss argument:
//! `docs/persistence-store.md`.

use crate::error::StoreError;
use crate::flash::{Flash, WORD_BYTES};
use crate::format::{
    decode_page_header, decode_record_head, finish_record_crc, footprint_bytes, record_crc_start,
    PageHeader, RecordHead, FORMAT_VERSION, MAX_TAGS, PAGE_HEADER_BYTES, RECORD_HEADER_BYTES,
};

/// The smallest page the store accepts.
pub const MIN_PAGE_BYTES: u32 = 64;

/// Bytes moved per flash read or program when scanning or copying (bounds
/// the stack; a multiple of the word size).
pub(crate) const CHUNK_BYTES: usize = 64;

/// Where the latest record of a tag is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) tag: u8,
    /// Ring page index (0 .. page_count).
    pub(crate) page: u32,
    /// Byte offset of the record header in its page.
    pub(crate) offset: u32,
    pub(crate) len: u16,
    /// Found damaged when it was to be copied forward; reads say `Corrupt`
    /// until the tag is written again.
    pub(crate) lost: bool,
}

/// The page records are appended to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Ring page index.
    pub(crate) page: u32,
    /// Offset of the next record.
    pub(crate) offset: u32,
    /// The page holds something after its last valid record (a torn
    /// record, or garbage): nothing more may be written to it.
    pub(crate) sealed: bool,
}

/// What the store has done since it was mounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Records written by [`RingStore::write`].
    pub records_written: u64,
    /// Records copied forward out of a page about to be erased.
    pub records_copied: u64,
    /// Flash bytes of the written records (headers and padding included).
    pub bytes_written: u64,
    /// Flash bytes of the copied records.
    pub bytes_copied: u64,
    /// Bytes left unused at the end of pages the head moved on from.
    pub bytes_abandoned: u64,
    /// Pages given a header (opened as the head).
    pub pages_opened: u64,
    /// Pages erased (victims of copy-forward, and dirty pages before use).
    pub pages_erased: u64,
    /// Live records found damaged when they were to be copied forward.
    pub records_lost: u64,
}

impl StoreStats {
    /// Ring bytes used up since mount: written + copied + abandoned. One
    /// pass of the ring (every page erased once) is `page_count` ×
    /// (page size − 16) of these; this is what [`crate::wear`] projects from.
    pub fn ring_bytes_consumed(&self) -> u64 {
        self.bytes_written
            .saturating_add(self.bytes_copied)
            .saturating_add(self.bytes_abandoned)
    }
}

/// A power-loss-safe, wear-levelling, log-structured record store over a
/// ring of flash pages. See the crate documentation.
#[derive(Debug)]
pub struct RingStore<F: Flash> {
    pub(crate) flash: F,
    pub(crate) first_page: u32,
    pub(crate) page_count: u32,
    pub(crate) page_size: u32,
    pub(crate) head: Option<Head>,
    /// The largest page sequence number on flash (0: none).
    pub(crate) max_seq: u32,
    pub(crate) index: [Option<Entry>; MAX_TAGS],
    /// The page after the head may still hold a valid header (a copy-forward
    /// whose erase did not finish); checked before the next write.
    pub(crate) recovery_pending: bool,
    pub(crate) stats: StoreStats,
}

impl<F: Flash> RingStore<F> {
    /// Mounts the ring of `page_count` pages starting at flash page
    /// `first_page`: scans every page, rebuilds the index of the latest
    /// record of each tag, and finds the head. Reads only; anything to
    /// repair (a page whose erase or header was torn) is repaired by the
    /// next write. An erased region mounts as an empty store.
    pub fn mount(flash: F, first_page: u32, page_count: u32) -> Result<Self, StoreError> {
        let g = flash.geometry();
        let region_end = first_page.checked_add(page_count);
        let fits = region_end.is_some_and(|end| end <= g.page_count);
        let addressable = region_end
            .and_then(|end| end.checked_mul(g.page_size_bytes))
            .is_some();
        if g.word_size_bytes != WORD_BYTES
            || g.page_size_bytes % WORD_BYTES != 0
            || g.page_size_bytes < MIN_PAGE_BYTES
            || !(2..=u32::from(u16::MAX)).contains(&page_count)
            || !fits
            || !addressable
        {
            return Err(StoreError::BadGeometry);
        }
        let mut store = RingStore {
            flash,
            first_page,
            page_count,
            page_size: g.page_size_bytes,
            head: None,
            max_seq: 0,
            index: [None; MAX_TAGS],
            recovery_pending: false,
            stats: StoreStats::default(),
        };
        // Pages in increasing (sequence, ring index) order: the index is
        // rebuilt oldest first, so a later record of a tag replaces an
        // earlier one. Selection by repeated scans keeps RAM bounded.
        let mut last: Option<(u32, u32)> = None;
        loop {
            let mut next: Option<(u32, u32)> = None;
            for page in 0..page_count {
                if let Some(h) = store.page_header(page)? {
                    let key = (h.seq, page);
                    if last.is_none_or(|l| key > l) && next.is_none_or(|n| key < n) {
                        next = Some(key);
                    }
                }
            }
            let Some((seq, page)) = next else { break };
            last = next;
            let (end, sealed) = store.scan_page(page)?;
            store.head = Some(Head {
                page,
                offset: end,
                sealed,
            });
            store.max_seq = seq;
        }
        if let Some(mut head) = store.head {
            if !head.sealed && !store.is_erased(head.page, head.offset)? {
                head.sealed = true;
            }
            store.head = Some(head);
            store.recovery_pending = true;
        }
        Ok(store)
    }

    /// Copies the payload of the latest record of `tag` into `buf` and
    /// returns its length; `Ok(None)` if the tag was never written. The
    /// record is read from flash and its CRC checked again on every read.
    pub fn read_latest(&mut self, tag: u8, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if e.lost {
            return Err(StoreError::Corrupt);
        }
        let len = usize::from(e.len);
        let Some(dest) = buf.get_mut(..len) else {
            return Err(StoreError::BufferTooSmall { needed_bytes: len });
        };
        let mut h = [0u8; 8];
        let at = self.addr(e.page, e.offset);
        self.flash.read(at, &mut h)?;
        let RecordHead::Candidate {
            tag: t,
            len: l,
            crc,
        } = decode_record_head(&h)
        else {
            return Err(StoreError::Corrupt);
        };
        if t != tag || l != e.len {
            return Err(StoreError::Corrupt);
        }
        self.flash.read(at + RECORD_HEADER_BYTES, dest)?;
        let mut d = record_crc_start(tag, l);
        d.update(dest);
        if finish_record_crc(d, len) != crc {
            return Err(StoreError::Corrupt);
        }
        Ok(Some(len))
    }

    /// Payload length of the latest record of `tag`, from the RAM index
    /// (no flash access), or `None` if the tag was never written.
    pub fn latest_len(&self, tag: u8) -> Option<usize> {
        self.entry(tag).map(|e| usize::from(e.len))
    }

    /// The tags that have a record, in index order.
    pub fn tags(&self) -> impl Iterator<Item = u8> + '_ {
        self.index.iter().flatten().map(|e| e.tag)
    }

    /// Flash bytes of the latest records of all tags (what copy-forward
    /// must keep).
    pub fn live_bytes(&self) -> u32 {
        self.index
            .iter()
            .flatten()
            .filter(|e| !e.lost)
            .map(|e| footprint_bytes(usize::from(e.len)))
            .fold(0u32, u32::saturating_add)
    }

    /// Bytes of one page available to records: page size − 16.
    pub fn usable_bytes_per_page(&self) -> u32 {
        self.page_size - PAGE_HEADER_BYTES
    }

    /// The most live bytes (as [`Self::live_bytes`], the tag's current record
    /// included) beside which a record with a `payload_len`-byte payload is
    /// accepted: (pages − 1) × (usable bytes per page − the record's flash
    /// bytes). Under it, the write is guaranteed to find room within one
    /// pass of copy-forward (argument in the design document).
    pub fn live_limit_bytes(&self, payload_len: usize) -> u32 {
        let s = footprint_bytes(payload_len);
        let per_page = self.usable_bytes_per_page().saturating_sub(s);
        (self.page_count - 1).saturating_mul(per_page)
    }

    /// Counters since mount.
    pub fn stats(&self) -> StoreStats {
        self.stats
    }

    /// Pages in the ring.
    pub fn page_count(&self) -> u32 {
        self.page_count
    }

    /// Bytes per page.
    pub fn page_size_bytes(&self) -> u32 {
        self.page_size
    }

    /// The flash, e.g. to read a simulator's counters.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, mutable (a simulator's power controls).
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash back (to remount it).
    pub fn into_flash(self) -> F {
        self.flash
    }

    pub(crate) fn entry(&self, tag: u8) -> Option<Entry> {
        self.index.iter().flatten().find(|e| e.tag == tag).copied()
    }

    /// Points `tag` at a new record; `TooManyTags` if it is new and the
    /// index is full.
    pub(crate) fn set_entry(&mut self, e: Entry) -> Result<(), StoreError> {
        if let Some(slot) = self.index.iter_mut().flatten().find(|x| x.tag == e.tag) {
            *slot = e;
            return Ok(());
        }
        match self.index.iter_mut().find(|x| x.is_none()) {
            Some(slot) => {
                *slot = Some(e);
                Ok(())
            }
            None => Err(StoreError::TooManyTags),
        }
    }

    /// Flash address of `offset` in ring page `page` (both checked at mount
    /// to stay inside the 32-bit address space).
    pub(crate) fn addr(&self, page: u32, offset: u32) -> u32 {
        (self.first_page + page) * self.page_size + offset
    }

    /// The page after `page` in the ring (no division: nothing to panic).
    pub(crate) fn next_page(&self, page: u32) -> u32 {
        let next = page + 1;
        if next >= self.page_count {
            0
        } else {
            next
        }
    }

    /// The page's header if it is valid and ours; `ForeignFormat` if it is
    /// valid but written for another version or ring size.
    pub(crate) fn page_header(&mut self, page: u32) -> Result<Option<PageHeader>, StoreError> {
        let mut h = [0u8; 16];
        let at = self.addr(page, 0);
        self.flash.read(at, &mut h)?;
        match decode_page_header(&h) {
            None => Ok(None),
            Some(ph)
                if ph.version != FORMAT_VERSION || u32::from(ph.ring_pages) != self.page_count =>
            {
                Err(StoreError::ForeignFormat)
            }
            Some(ph) => Ok(Some(ph)),
        }
    }

    /// Indexes the valid records of `page` in order; returns the offset after
    /// the last one and whether the scan stopped at something invalid.
    fn scan_page(&mut self, page: u32) -> Result<(u32, bool), StoreError> {
        let mut off = PAGE_HEADER_BYTES;
        while off + RECORD_HEADER_BYTES <= self.page_size {
            let mut h = [0u8; 8];
            let at = self.addr(page, off);
            self.flash.read(at, &mut h)?;
            let (tag, len) = match decode_record_head(&h) {
                RecordHead::Erased => return Ok((off, false)),
                RecordHead::Invalid => return Ok((off, true)),
                RecordHead::Candidate { tag, len, .. } => (tag, len),
            };
            let size = footprint_bytes(usize::from(len));
            if size > self.page_size - off || !self.record_ok(page, off)? {
                return Ok((off, true));
            }
            self.set_entry(Entry {
                tag,
                page,
                offset: off,
                len,
                lost: false,
            })?;
            off += size;
        }
        Ok((off, false))
    }

    /// Whether the record at `offset` of `page` is whole: a plausible
    /// header, inside the page, and a matching CRC.
    pub(crate) fn record_ok(&mut self, page: u32, offset: u32) -> Result<bool, StoreError> {
        let mut h = [0u8; 8];
        let at = self.addr(page, offset);
        self.flash.read(at, &mut h)?;
        let RecordHead::Candidate { tag, len, crc } = decode_record_head(&h) else {
            return Ok(false);
        };
        let n = usize::from(len);
        if footprint_bytes(n) > self.page_size.saturating_sub(offset) {
            return Ok(false);
        }
        let mut d = record_crc_start(tag, len);
        let mut buf = [0u8; CHUNK_BYTES];
        let mut done = 0usize;
        while done < n {
            let k = (n - done).min(CHUNK_BYTES);
            // done < n <= MAX_PAYLOAD_BYTES, so this fits in u32.
            self.flash
                .read(at + RECORD_HEADER_BYTES + done as u32, &mut buf[..k])?;
            d.update(&buf[..k]);
            done += k;
        }
        Ok(finish_record_crc(d, n) == crc)
    }

    /// Whether `page` reads as erased from `from` to its end.
    pub(crate) fn is_erased(&mut self, page: u32, from: u32) -> Result<bool, StoreError> {
        let mut buf = [0u8; CHUNK_BYTES];
        let mut off = from;
        while off < self.page_size {
            let k = ((self.page_size - off) as usize).min(CHUNK_BYTES);
            let at = self.addr(page, off);
            self.flash.read(at, &mut buf[..k])?;
            if buf[..k].iter().any(|&b| b != 0xFF) {
                return Ok(false);
            }
            off += k as u32;
        }
        Ok(true)
    }
}
