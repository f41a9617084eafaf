use crate::{decode_frame, DecodedFrame, FrameError, MAX_ENCODED_FRAME_LEN};

/// One item out of a [`StreamDecoder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamItem {
    /// A valid frame.
    Frame {
        /// The frame.
        frame: DecodedFrame,
        /// Stream offset of the frame's first encoded byte.
        offset: u64,
    },
    /// Bytes between delimiters that are not a valid frame.
    Invalid {
        /// Why they were rejected.
        error: FrameError,
        /// Stream offset of the first rejected byte.
        offset: u64,
        /// How many bytes were rejected.
        len: u64,
    },
}

/// Splits a byte stream at `0x00` delimiters and decodes each item.
///
/// Garbage costs at most the bytes up to the next delimiter. Because senders
/// open every frame with a delimiter (spec §3), a valid frame that follows
/// garbage is always decoded. Memory is a fixed buffer of
/// [`MAX_ENCODED_FRAME_LEN`] bytes; an over-long item is reported once and
/// skipped without being buffered.
pub struct StreamDecoder {
    buf: [u8; MAX_ENCODED_FRAME_LEN],
    len: usize,
    item_len: u64,
    item_offset: u64,
    offset: u64,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    /// A decoder at stream offset 0.
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_ENCODED_FRAME_LEN],
            len: 0,
            item_len: 0,
            item_offset: 0,
            offset: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feeds one byte; returns an item when the byte ends one.
    pub fn push(&mut self, byte: u8) -> Option<StreamItem> {
        let offset = self.offset;
        self.offset = self.offset.saturating_add(1);
        if byte != 0 {
            if self.item_len == 0 {
                self.item_offset = offset;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
            self.item_len = self.item_len.saturating_add(1);
            return None;
        }
        if self.item_len == 0 {
            // Back-to-back delimiters: the gap between frames, not an item.
            return None;
        }
        let item = self.finish_item();
        self.len = 0;
        self.item_len = 0;
        Some(item)
    }

    /// Feeds a slice, calling `on_item` for every item it completes.
    pub fn feed(&mut self, bytes: &[u8], mut on_item: impl FnMut(StreamItem)) {
        for &byte in bytes {
            if let Some(item) = self.push(byte) {
                on_item(item);
            }
        }
    }

    /// Reports a partial item left at end of stream, if any.
    pub fn finish(&mut self) -> Option<StreamItem> {
        if self.item_len == 0 {
            return None;
        }
        let item = StreamItem::Invalid {
            error: FrameError::Truncated {
                needed: self.item_len as usize + 1,
                available: self.item_len as usize,
            },
            offset: self.item_offset,
            len: self.item_len,
        };
        self.len = 0;
        self.item_len = 0;
        Some(item)
    }

    fn finish_item(&mut self) -> StreamItem {
        let offset = self.item_offset;
        let len = self.item_len;
        let invalid = |error| StreamItem::Invalid { error, offset, len };
        if len > self.len as u64 {
            return invalid(FrameError::TooLong {
                len: usize::try_from(len).unwrap_or(usize::MAX),
            });
        }
        let item = &mut self.buf[..self.len];
        let decoded_len = match cobs::decode_in_place(item) {
            Ok(n) => n,
            Err(_) => return invalid(FrameError::Cobs),
        };
        match decode_frame(&item[..decoded_len]) {
            Ok(frame) => StreamItem::Frame { frame, offset },
            Err(error) => invalid(error),
        }
    }
}
