#[cfg(not(feature = "std"))]
use crate::frame::decode_frame;
#[cfg(feature = "std")]
use crate::{frame::check_frame, Message};
use crate::{stuffing, DecodedFrame, FrameError, MAX_ENCODED_FRAME_LEN};

/// One item out of a [`StreamDecoder`].
#[derive(Clone, Debug, PartialEq, Eq)]
// Boxing the frame would need an allocator; the decoder builds each item in
// place instead (see `StreamDecoder::feed`).
#[allow(clippy::large_enum_variant)]
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
/// open every frame with a delimiter (`docs/protocol.md` §3.1), a valid
/// frame that follows garbage is always decoded. Memory is a fixed buffer of
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
        if byte != 0 {
            self.extend(&[byte]);
            return None;
        }
        self.offset = self.offset.saturating_add(1);
        self.end_item()
    }

    /// Feeds a slice, calling `on_item` for every item it completes.
    ///
    /// Equivalent to calling [`StreamDecoder::push`] for every byte, but an
    /// item that lies wholly inside `bytes` is decoded straight from it
    /// rather than copied into the decoder's buffer first.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_item: impl FnMut(StreamItem)) {
        while let Some(end) = stuffing::find_zero(bytes) {
            let (item, rest) = bytes.split_at(end);
            // `rest` starts with the delimiter.
            bytes = rest.get(1..).unwrap_or_default();
            if self.item_len == 0 {
                if !item.is_empty() {
                    let offset = self.offset;
                    self.decode_whole(item, offset, &mut on_item);
                }
                // usize -> u64 is lossless on every supported target.
                self.offset = self.offset.saturating_add(item.len() as u64 + 1);
            } else {
                self.extend(item);
                self.offset = self.offset.saturating_add(1);
                if let Some(item) = self.end_item() {
                    on_item(item);
                }
            }
        }
        self.extend(bytes);
    }

    /// Reports a partial item left at end of stream, if any.
    pub fn finish(&mut self) -> Option<StreamItem> {
        if self.item_len == 0 {
            return None;
        }
        let available = usize::try_from(self.item_len).unwrap_or(usize::MAX);
        let item = StreamItem::Invalid {
            error: FrameError::Truncated {
                needed: available.saturating_add(1),
                available,
            },
            offset: self.item_offset,
            len: self.item_len,
        };
        self.len = 0;
        self.item_len = 0;
        Some(item)
    }

    /// Appends non-zero bytes to the current item, buffering what fits.
    fn extend(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.item_len == 0 {
            self.item_offset = self.offset;
        }
        let room = self.buf.len().saturating_sub(self.len);
        let take = bytes.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            bytes.get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
        // usize -> u64 is lossless on every supported target.
        let n = bytes.len() as u64;
        self.item_len = self.item_len.saturating_add(n);
        self.offset = self.offset.saturating_add(n);
    }

    /// Ends the buffered item at a delimiter (already counted in `offset`).
    fn end_item(&mut self) -> Option<StreamItem> {
        if self.item_len == 0 {
            // Back-to-back delimiters: the gap between frames, not an item.
            return None;
        }
        let offset = self.item_offset;
        let len = self.item_len;
        let item = if len > self.len as u64 {
            StreamItem::Invalid {
                error: FrameError::TooLong {
                    len: usize::try_from(len).unwrap_or(usize::MAX),
                },
                offset,
                len,
            }
        } else {
            let buf = self.buf.get_mut(..self.len).unwrap_or_default();
            match stuffing::decode_in_place(buf) {
                Some(n) => Self::decode_decoded(
                    buf.get(..n).unwrap_or_default(),
                    offset,
                    len,
                    &mut |item| item,
                ),
                None => StreamItem::Invalid {
                    error: FrameError::Cobs,
                    offset,
                    len,
                },
            }
        };
        self.len = 0;
        self.item_len = 0;
        Some(item)
    }

    /// Decodes a complete, non-empty item that is still in the caller's
    /// slice, using the (idle) buffer for the COBS-decoded frame, and hands
    /// the result to `on_item`.
    fn decode_whole(&mut self, item: &[u8], offset: u64, on_item: &mut impl FnMut(StreamItem)) {
        // usize -> u64 is lossless on every supported target.
        let len = item.len() as u64;
        if item.len() > self.buf.len() {
            return on_item(StreamItem::Invalid {
                error: FrameError::TooLong { len: item.len() },
                offset,
                len,
            });
        }
        match stuffing::decode(item, &mut self.buf) {
            Some(n) => {
                Self::decode_decoded(self.buf.get(..n).unwrap_or_default(), offset, len, on_item)
            }
            None => on_item(StreamItem::Invalid {
                error: FrameError::Cobs,
                offset,
                len,
            }),
        }
    }

    /// Decodes a COBS-decoded frame into an item for `on_item`. On the host
    /// (`std`) the message is built in the item passed to `on_item` rather
    /// than moved into it (see [`crate::Message::decode_payload_with`]).
    #[cfg(feature = "std")]
    #[inline(always)]
    fn decode_decoded<R>(
        frame: &[u8],
        offset: u64,
        len: u64,
        on_item: &mut impl FnMut(StreamItem) -> R,
    ) -> R {
        match check_frame(frame) {
            Ok((header, payload)) => {
                let kind = header.kind.get();
                Message::decode_payload_with(kind, payload, |result| match result {
                    Ok(message) => on_item(StreamItem::Frame {
                        frame: DecodedFrame { header, message },
                        offset,
                    }),
                    Err(error) => on_item(StreamItem::Invalid {
                        error: FrameError::Payload { kind, error },
                        offset,
                        len,
                    }),
                })
            }
            Err(error) => on_item(StreamItem::Invalid { error, offset, len }),
        }
    }

    /// Firmware (no `std`): the same result through [`decode_frame`], which
    /// is not inlined there, so that an app holds one copy of the per-kind
    /// payload decoding (about 2.3 KB on rv32) instead of one per call site
    /// (the stream's two and `decode_frame`'s own). The decoded frame is then
    /// moved into the item once, which costs a copy of about 500 bytes.
    #[cfg(not(feature = "std"))]
    #[inline(always)]
    fn decode_decoded<R>(
        frame: &[u8],
        offset: u64,
        len: u64,
        on_item: &mut impl FnMut(StreamItem) -> R,
    ) -> R {
        match decode_frame(frame) {
            Ok(frame) => on_item(StreamItem::Frame { frame, offset }),
            Err(error) => on_item(StreamItem::Invalid { error, offset, len }),
        }
    }
}
