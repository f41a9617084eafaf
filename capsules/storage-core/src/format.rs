//! The on-flash format: page headers and records (spec:
//! `docs/persistence-store.md`, section "On-flash format").
//!
//! All integers are little-endian. Every structure starts on a word
//! boundary and is a whole number of words long.

use crate::flash::ERASED_WORD;

/// CRC-32C (Castagnoli, `CRC_32_ISCSI`), the checksum of headers and records.
pub static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The first four bytes of every page header.
pub const PAGE_MAGIC: [u8; 4] = *b"RING";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the page header at offset 0 of every page in use.
pub const PAGE_HEADER_BYTES: u32 = 16;
/// Bytes of a record header (marker, tag, length, CRC).
pub const RECORD_HEADER_BYTES: u32 = 8;
/// The first byte of every record; never `0xFF`, so a record's first word
/// never reads as erased.
pub const RECORD_MARKER: u8 = 0xA5;
/// The largest payload a record may carry.
pub const MAX_PAYLOAD_BYTES: usize = 2048;
/// The most distinct tags a store holds (the RAM index has this many slots).
pub const MAX_TAGS: usize = 16;

/// A decoded, CRC-checked page header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageHeader {
    /// Monotonic sequence number: the page opened last has the largest.
    pub seq: u32,
    /// The number of pages of the ring this page was written for.
    pub ring_pages: u16,
    /// Format version.
    pub version: u16,
}

/// Encodes a page header.
pub fn encode_page_header(seq: u32, ring_pages: u16) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&PAGE_MAGIC);
    h[4..8].copy_from_slice(&seq.to_le_bytes());
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&ring_pages.to_le_bytes());
    let crc = CRC32C.checksum(&h[0..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a page header: `None` unless magic and CRC are right.
pub fn decode_page_header(h: &[u8; 16]) -> Option<PageHeader> {
    if h[0..4] != PAGE_MAGIC {
        return None;
    }
    if CRC32C.checksum(&h[0..12]) != le32(&h[12..16]) {
        return None;
    }
    Some(PageHeader {
        seq: le32(&h[4..8]),
        version: le16(&h[8..10]),
        ring_pages: le16(&h[10..12]),
    })
}

/// What the 8 bytes at a record boundary say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordHead {
    /// The first word reads as erased: the end of the page's records.
    Erased,
    /// Not a record header (wrong marker or impossible length).
    Invalid,
    /// A plausible header; the payload's CRC is still to be checked.
    Candidate {
        /// The record's tag.
        tag: u8,
        /// Payload bytes.
        len: u16,
        /// The CRC stored in the header.
        crc: u32,
    },
}

/// Decodes a record header (without checking the payload).
pub fn decode_record_head(h: &[u8; 8]) -> RecordHead {
    if le32(&h[0..4]) == ERASED_WORD {
        return RecordHead::Erased;
    }
    let len = le16(&h[2..4]);
    if h[0] != RECORD_MARKER || usize::from(len) > MAX_PAYLOAD_BYTES {
        return RecordHead::Invalid;
    }
    RecordHead::Candidate {
        tag: h[1],
        len,
        crc: le32(&h[4..8]),
    }
}

/// Bytes of zero padding after a payload of `len` bytes.
pub fn padding_bytes(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Bytes a record with a payload of `len` bytes takes on flash.
pub fn footprint_bytes(len: usize) -> u32 {
    // len <= MAX_PAYLOAD_BYTES wherever this is used; saturate otherwise.
    let body = len.saturating_add(padding_bytes(len));
    u32::try_from(body)
        .unwrap_or(u32::MAX)
        .saturating_add(RECORD_HEADER_BYTES)
}

/// The first word of a record header: marker, tag, length.
pub fn record_head_word(tag: u8, len: u16) -> [u8; 4] {
    let l = len.to_le_bytes();
    [RECORD_MARKER, tag, l[0], l[1]]
}

/// Starts the CRC of a record: its first header word. Feed the payload,
/// then [`finish_record_crc`].
pub fn record_crc_start(tag: u8, len: u16) -> crc::Digest<'static, u32> {
    let mut d = CRC32C.digest();
    d.update(&record_head_word(tag, len));
    d
}

/// Ends a record CRC: the zero padding after a payload of `len` bytes.
pub fn finish_record_crc(mut d: crc::Digest<'static, u32>, len: usize) -> u32 {
    d.update(&[0u8; 3][..padding_bytes(len)]);
    d.finalize()
}

/// The full 8-byte header of a record, CRC included; `None` if the payload
/// is longer than [`MAX_PAYLOAD_BYTES`].
pub fn encode_record_header(tag: u8, payload: &[u8]) -> Option<[u8; 8]> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return None;
    }
    let len = u16::try_from(payload.len()).ok()?;
    let mut d = record_crc_start(tag, len);
    d.update(payload);
    let crc = finish_record_crc(d, payload.len());
    let mut h = [0u8; 8];
    h[0..4].copy_from_slice(&record_head_word(tag, len));
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    Some(h)
}

fn le32(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u32::from_le_bytes(w)
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_header_round_trips_and_any_flipped_bit_is_refused() {
        let h = encode_page_header(0x0102_0304, 7);
        assert_eq!(&h[0..4], b"RING");
        assert_eq!(&h[4..8], &[4, 3, 2, 1]);
        let d = decode_page_header(&h).unwrap();
        assert_eq!((d.seq, d.ring_pages, d.version), (0x0102_0304, 7, 1));
        for bit in 0..128 {
            let mut bad = h;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode_page_header(&bad), None, "bit {bit}");
        }
        assert_eq!(decode_page_header(&[0xFF; 16]), None);
    }

    #[test]
    fn record_header_layout_and_crc_cover_padding() {
        let h = encode_record_header(9, &[1, 2, 3]).unwrap();
        assert_eq!(&h[0..4], &[0xA5, 9, 3, 0]);
        let mut covered = vec![0xA5, 9, 3, 0, 1, 2, 3, 0];
        assert_eq!(&h[4..8], &CRC32C.checksum(&covered).to_le_bytes());
        covered[7] = 0xFF;
        assert_ne!(&h[4..8], &CRC32C.checksum(&covered).to_le_bytes());
        assert_eq!(
            decode_record_head(&h),
            RecordHead::Candidate {
                tag: 9,
                len: 3,
                crc: CRC32C.checksum(&[0xA5, 9, 3, 0, 1, 2, 3, 0])
            }
        );
    }

    #[test]
    fn record_heads_erased_invalid_and_too_long() {
        assert_eq!(decode_record_head(&[0xFF; 8]), RecordHead::Erased);
        assert_eq!(decode_record_head(&[0; 8]), RecordHead::Invalid);
        let too_long = (MAX_PAYLOAD_BYTES as u16 + 1).to_le_bytes();
        let h = [RECORD_MARKER, 0, too_long[0], too_long[1], 0, 0, 0, 0];
        assert_eq!(decode_record_head(&h), RecordHead::Invalid);
        assert_eq!(encode_record_header(0, &[0; MAX_PAYLOAD_BYTES + 1]), None);
    }

    #[test]
    fn footprints_are_header_plus_payload_rounded_to_words() {
        assert_eq!(footprint_bytes(0), 8);
        assert_eq!(footprint_bytes(1), 12);
        assert_eq!(footprint_bytes(4), 12);
        assert_eq!(footprint_bytes(5), 16);
        assert_eq!(footprint_bytes(MAX_PAYLOAD_BYTES), 2056);
        assert_eq!(footprint_bytes(usize::MAX), u32::MAX);
    }
}
