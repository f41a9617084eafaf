//! The write path of [`RingStore`]: append, advance, copy-forward
//! (relocation) and the repair of an interrupted copy-forward.
//!
//! Order of flash operations, which the power-loss argument in
//! `docs/persistence-store.md` rests on:
//!
//! - a record: its 8-byte header first (so a torn record is never read as
//!   free space), then its payload words;
//! - a page opened to append to: erase if not already erased, then header;
//! - a relocation: erase the target if needed, copy the victim's live
//!   records into it, then the target's header (the commit), then erase the
//!   victim. Before the header the copies are invisible; after it, the
//!   victim's records are all superseded by identical copies.

use crate::error::StoreError;
use crate::format::{
    encode_page_header, encode_record_header, footprint_bytes, MAX_PAYLOAD_BYTES, MAX_TAGS,
    PAGE_HEADER_BYTES, RECORD_HEADER_BYTES,
};
use crate::ring::{Entry, Head, RingStore, CHUNK_BYTES};
use crate::Flash;

impl<F: Flash> RingStore<F> {
    /// Appends a record `(tag, payload)`; it becomes the latest of `tag`.
    ///
    /// Refused before any flash operation: a payload over
    /// [`MAX_PAYLOAD_BYTES`], a 17th distinct tag, or live data over
    /// [`Self::live_limit_bytes`]. When the head page is full the store moves
    /// on to the next page of the ring, first copying forward the live
    /// records of the oldest page and erasing it if no page is free.
    ///
    /// When this returns `Ok`, the record is on flash and survives any later
    /// power cut. When it returns an error after reaching the flash, a
    /// remount finds either this record or the previous latest of `tag`.
    pub fn write(&mut self, tag: u8, payload: &[u8]) -> Result<(), StoreError> {
        let n = payload.len();
        if n > MAX_PAYLOAD_BYTES {
            return Err(StoreError::PayloadTooLarge {
                len_bytes: n,
                max_bytes: MAX_PAYLOAD_BYTES,
            });
        }
        if self.entry(tag).is_none() && self.index.iter().all(Option::is_some) {
            return Err(StoreError::TooManyTags);
        }
        let size = footprint_bytes(n);
        let live = self.live_bytes();
        let limit = self.live_limit_bytes(n);
        if size > self.usable_bytes_per_page() || live > limit {
            return Err(StoreError::NoSpace {
                live_bytes: live,
                limit_bytes: limit,
            });
        }
        self.recover()?;
        // Each pass either appends, advances to a fresh page (which fits the
        // record), or relocates one page; under the limit a record fits
        // within page_count - 1 relocations.
        for _ in 0..=self.page_count {
            if let Some(head) = self.head {
                if !head.sealed && self.page_size - head.offset >= size {
                    return self.append(head, tag, payload);
                }
            }
            self.make_room()?;
        }
        Err(StoreError::NoSpace {
            live_bytes: live,
            limit_bytes: limit,
        })
    }

    /// Programs the record at the head and indexes it.
    fn append(&mut self, mut head: Head, tag: u8, payload: &[u8]) -> Result<(), StoreError> {
        let header = encode_record_header(tag, payload).ok_or(StoreError::PayloadTooLarge {
            len_bytes: payload.len(),
            max_bytes: MAX_PAYLOAD_BYTES,
        })?;
        let len = payload.len() as u16; // <= MAX_PAYLOAD_BYTES
        let at = self.addr(head.page, head.offset);
        let whole = payload.len() - payload.len() % 4;
        let (body, rest) = payload.split_at(whole);
        let mut tail = [0u8; 4];
        tail[..rest.len()].copy_from_slice(rest);
        let body_at = at + RECORD_HEADER_BYTES;
        let result = self
            .flash
            .program(at, &header)
            .and_then(|()| self.flash.program(body_at, body))
            .and_then(|()| {
                if rest.is_empty() {
                    Ok(())
                } else {
                    self.flash.program(body_at + whole as u32, &tail)
                }
            });
        if let Err(e) = result {
            // Whatever reached the page, nothing more is written after it.
            if let Some(h) = self.head.as_mut() {
                h.sealed = true;
            }
            return Err(e.into());
        }
        let size = footprint_bytes(payload.len());
        self.set_entry(Entry {
            tag,
            page: head.page,
            offset: head.offset,
            len,
            lost: false,
        })?;
        head.offset += size;
        self.head = Some(head);
        self.stats.records_written += 1;
        self.stats.bytes_written += u64::from(size);
        Ok(())
    }

    /// Moves the head on by one page: to a fresh page if the page after the
    /// next is free, else by relocating the oldest page's live records.
    fn make_room(&mut self) -> Result<(), StoreError> {
        let Some(head) = self.head else {
            self.ensure_erased(0)?;
            let seq = self.commit_header(0)?;
            self.max_seq = seq;
            self.head = Some(Head {
                page: 0,
                offset: PAGE_HEADER_BYTES,
                sealed: false,
            });
            return Ok(());
        };
        let target = self.next_page(head.page);
        let victim = self.next_page(target);
        if self.page_header(target)?.is_some() {
            // recover() left the page after the head free; a valid header
            // here means the flash changed behind the store. Never erase it.
            return Err(StoreError::Inconsistent);
        }
        if victim != head.page && self.page_header(victim)?.is_none() {
            self.ensure_erased(target)?;
            let seq = self.commit_header(target)?;
            self.leave_head(head);
            self.max_seq = seq;
            self.head = Some(Head {
                page: target,
                offset: PAGE_HEADER_BYTES,
                sealed: false,
            });
            return Ok(());
        }
        self.relocate(head, target, victim)
    }

    /// Copies the live records of `victim` into the erased `target`, commits
    /// `target` as the new head with its header, then erases `victim`.
    fn relocate(&mut self, head: Head, target: u32, victim: u32) -> Result<(), StoreError> {
        self.ensure_erased(target)?;
        let mut moved: [Option<u32>; MAX_TAGS] = [None; MAX_TAGS];
        let mut lost = [false; MAX_TAGS];
        let mut off = PAGE_HEADER_BYTES;
        let mut copied = 0u64;
        for slot in 0..MAX_TAGS {
            let Some(e) = self.index[slot] else { continue };
            if e.page != victim || e.lost {
                continue;
            }
            if !self.record_ok(e.page, e.offset)? {
                lost[slot] = true;
                continue;
            }
            let size = footprint_bytes(usize::from(e.len));
            if size > self.page_size - off {
                // Cannot happen: the records came out of one page of the same
                // size. Refuse rather than overrun.
                return Err(StoreError::Inconsistent);
            }
            self.copy_record(e, target, off)?;
            moved[slot] = Some(off);
            off += size;
            copied += u64::from(size);
        }
        let seq = self.commit_header(target)?;
        // Committed: the copies supersede the victim's records.
        self.leave_head(head);
        self.max_seq = seq;
        self.head = Some(Head {
            page: target,
            offset: off,
            sealed: false,
        });
        for slot in 0..MAX_TAGS {
            if let Some(e) = self.index[slot].as_mut() {
                if let Some(new_off) = moved[slot] {
                    e.page = target;
                    e.offset = new_off;
                    self.stats.records_copied += 1;
                } else if lost[slot] {
                    e.lost = true;
                    self.stats.records_lost += 1;
                }
            }
        }
        self.stats.bytes_copied += copied;
        self.recovery_pending = true;
        self.erase(victim)?;
        self.recovery_pending = false;
        Ok(())
    }

    /// Before a write: if the page after the head still has a valid header
    /// (a relocation whose erase did not finish), move any live record it
    /// holds into the head and erase it.
    fn recover(&mut self) -> Result<(), StoreError> {
        if !self.recovery_pending {
            return Ok(());
        }
        let Some(head) = self.head else {
            self.recovery_pending = false;
            return Ok(());
        };
        let next = self.next_page(head.page);
        if self.page_header(next)?.is_none() {
            self.recovery_pending = false;
            return Ok(());
        }
        let mut off = head.offset;
        for slot in 0..MAX_TAGS {
            let Some(e) = self.index[slot] else { continue };
            if e.page != next || e.lost {
                continue;
            }
            // After a power cut these were all copied before the commit;
            // anything else means the flash was changed behind the store.
            let size = footprint_bytes(usize::from(e.len));
            if head.sealed || size > self.page_size - off || !self.record_ok(e.page, e.offset)? {
                return Err(StoreError::Inconsistent);
            }
            if let Err(err) = self.copy_record(e, head.page, off) {
                // A torn copy: nothing more goes after it in this page.
                self.head = Some(Head {
                    offset: off,
                    sealed: true,
                    ..head
                });
                return Err(err);
            }
            self.index[slot] = Some(Entry {
                page: head.page,
                offset: off,
                ..e
            });
            off += size;
            self.head = Some(Head {
                offset: off,
                ..head
            });
            self.stats.records_copied += 1;
            self.stats.bytes_copied += u64::from(size);
        }
        self.erase(next)?;
        self.recovery_pending = false;
        Ok(())
    }

    /// Programs the header of `page` with the next sequence number.
    fn commit_header(&mut self, page: u32) -> Result<u32, StoreError> {
        let seq = self
            .max_seq
            .checked_add(1)
            .ok_or(StoreError::SequenceExhausted)?;
        // page_count <= u16::MAX, checked at mount.
        let header = encode_page_header(seq, self.page_count as u16);
        let at = self.addr(page, 0);
        self.flash.program(at, &header)?;
        self.stats.pages_opened += 1;
        Ok(seq)
    }

    /// Accounts for the unused end of the page the head leaves.
    fn leave_head(&mut self, head: Head) {
        self.stats.bytes_abandoned += u64::from(self.page_size - head.offset);
    }

    /// Erases `page` unless it already reads as erased.
    fn ensure_erased(&mut self, page: u32) -> Result<(), StoreError> {
        if self.is_erased(page, 0)? {
            return Ok(());
        }
        self.erase(page)
    }

    fn erase(&mut self, page: u32) -> Result<(), StoreError> {
        self.flash.erase_page(self.first_page + page)?;
        self.stats.pages_erased += 1;
        Ok(())
    }

    /// Copies the record of `e` byte for byte to `offset` of `page`.
    fn copy_record(&mut self, e: Entry, page: u32, offset: u32) -> Result<(), StoreError> {
        let size = footprint_bytes(usize::from(e.len));
        let from = self.addr(e.page, e.offset);
        let to = self.addr(page, offset);
        let mut buf = [0u8; CHUNK_BYTES];
        let mut done = 0u32;
        while done < size {
            let k = ((size - done) as usize).min(CHUNK_BYTES);
            self.flash.read(from + done, &mut buf[..k])?;
            self.flash.program(to + done, &buf[..k])?;
            done += k as u32;
        }
        Ok(())
    }
}
