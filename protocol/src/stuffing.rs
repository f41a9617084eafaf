//! COBS (consistent overhead byte stuffing) with block copies.
//!
//! Byte-for-byte the encoding and decoding of the `cobs` crate (0.3), which
//! the unit tests check, but a run of non-zero bytes is copied with one
//! `copy_from_slice` instead of one state-machine step per byte. Frames are
//! short and the stream decoder's throughput is dominated by per-byte work,
//! so this matters (see the benchmark in `benches/throughput.rs`).
//!
//! Every index is checked; malformed input is an error, never a panic.

/// Longest run of non-zero bytes one COBS block carries.
const MAX_RUN: usize = 254;

/// COBS-encodes `src` (non-empty) into `dst` and returns the encoded length,
/// or `None` if `dst` is too small. `dst` needs at most
/// `cobs::max_encoding_length(src.len())` bytes. The output contains no
/// `0x00` and carries no delimiter.
pub(crate) fn encode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let mut s = 0;
    let mut d = 0;
    loop {
        let rest = src.get(s..)?;
        let limit = rest.len().min(MAX_RUN);
        let window = rest.get(..limit)?;
        let run = window.iter().position(|&b| b == 0).unwrap_or(limit);
        // run <= 254, so the code (run + 1) fits in a byte.
        *dst.get_mut(d)? = (run + 1) as u8;
        dst.get_mut(d + 1..d + 1 + run)?
            .copy_from_slice(window.get(..run)?);
        d += 1 + run;
        s += run;
        if run < limit {
            // The block ended at a zero, which the code byte stands for.
            // Another block always follows, even if the zero was the last
            // input byte (it then encodes as a final `0x01`).
            s += 1;
        } else if run == rest.len() {
            return Some(d);
        }
        // Otherwise a full 254-byte block without a zero: carry on.
    }
}

/// COBS-decodes `src` (no delimiters) into `dst`, returning the decoded
/// length. `None` if `src` is empty, has a zero code byte, has a block
/// running past its end, or `dst` is too small (it never is when
/// `dst.len() >= src.len()`). Zero *data* bytes are copied like any other:
/// the stream decoder only hands over items it split at zeros.
///
/// Bytes of `dst` past the returned length may be overwritten.
pub(crate) fn decode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    // Without 0xFF codes, decoding is: drop the first code byte, and turn
    // every later code byte into the 0x00 it stands for. So copy everything
    // after the first byte at once, then walk the code bytes. Frames under
    // 254 bytes only have 0xFF codes if they hold 254 non-zero bytes in a
    // row; anything else takes the general block-by-block path.
    let (&first, data) = src.split_first()?;
    copy_run(data, dst, data.len())?;
    let mut code = first;
    let mut s = 0;
    loop {
        match code {
            0 => return None,
            0xFF => return decode_blocks(src, dst),
            _ => {}
        }
        s += usize::from(code);
        match src.get(s) {
            Some(&next) => {
                // The code byte at `s` decodes to a zero at `s - 1`.
                *dst.get_mut(s - 1)? = 0;
                code = next;
            }
            // The last block must end exactly at the end of the item.
            None if s == src.len() => return Some(data.len()),
            None => return None,
        }
    }
}

/// [`decode`], block by block; handles 0xFF codes.
fn decode_blocks(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    if src.is_empty() {
        return None;
    }
    let mut s = 0;
    let mut d = 0;
    while let Some(&code) = src.get(s) {
        let run = usize::from(code).checked_sub(1)?;
        let end = s + 1 + run;
        if end > src.len() {
            return None;
        }
        copy_run(src.get(s + 1..)?, dst.get_mut(d..)?, run)?;
        d += run;
        s = end;
        if run < MAX_RUN && s < src.len() {
            *dst.get_mut(d)? = 0;
            d += 1;
        }
    }
    Some(d)
}

/// Copies `src[..run]` to `dst[..run]` with fixed-size 8-byte copies, which
/// compile to plain loads and stores (runs are a few bytes long, where a
/// `memcpy` call would dominate). A run shorter than eight bytes is copied
/// as eight when both slices are long enough, so this may also write up to
/// seven bytes past `run` in `dst`. `None` if either slice is shorter than
/// `run`.
#[inline(always)]
fn copy_run(src: &[u8], dst: &mut [u8], run: usize) -> Option<()> {
    if run >= 8 {
        let from = src.get(..run)?;
        let to = dst.get_mut(..run)?;
        let mut i = 0;
        while i + 8 <= run {
            copy8(from.get(i..)?, to.get_mut(i..)?)?;
            i += 8;
        }
        if i < run {
            // The last (partial) chunk: the final eight bytes, overlapping.
            copy8(from.get(run - 8..)?, to.get_mut(run - 8..)?)?;
        }
        Some(())
    } else if copy8(src, dst).is_some() {
        Some(())
    } else {
        dst.get_mut(..run)?.copy_from_slice(src.get(..run)?);
        Some(())
    }
}

/// Copies the first eight bytes of `src` to `dst`.
#[inline(always)]
fn copy8(src: &[u8], dst: &mut [u8]) -> Option<()> {
    *dst.first_chunk_mut::<8>()? = *src.first_chunk::<8>()?;
    Some(())
}

/// [`decode`] in place: the decoded bytes replace the start of `buf`.
pub(crate) fn decode_in_place(buf: &mut [u8]) -> Option<usize> {
    if buf.is_empty() {
        return None;
    }
    let len = buf.len();
    let mut s = 0;
    let mut d = 0;
    while let Some(&code) = buf.get(s) {
        let run = usize::from(code).checked_sub(1)?;
        if s + 1 + run > len {
            return None;
        }
        // d <= s always, so the copy never overtakes unread input.
        buf.copy_within(s + 1..s + 1 + run, d);
        d += run;
        s += 1 + run;
        if run < MAX_RUN && s < len {
            *buf.get_mut(d)? = 0;
            d += 1;
        }
    }
    Some(d)
}

/// Index of the first `0x00` in `bytes`, eight bytes at a time.
pub(crate) fn find_zero(bytes: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        let v = u64::from_le_bytes(le);
        // Non-zero exactly when some byte of `v` is zero.
        if v.wrapping_sub(LOW) & !v & HIGH != 0 {
            return word.iter().position(|&b| b == 0).map(|j| at + j);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == 0)
        .map(|j| at + j)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// Inputs with long non-zero runs and zeros in awkward places (around
    /// the 254-byte block boundary), which uniform random bytes rarely give.
    fn frames() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..600),
            proptest::collection::vec(prop_oneof![Just(0u8), 1u8..=255], 1..600),
            (1usize..600, proptest::collection::vec(0usize..600, 0..4)).prop_map(|(len, zeros)| {
                let mut v = vec![0x5Au8; len];
                for z in zeros {
                    if let Some(b) = v.get_mut(z) {
                        *b = 0;
                    }
                }
                v
            }),
        ]
    }

    #[test]
    fn encode_matches_cobs_crate_at_block_boundaries() {
        for len in [1, 2, 253, 254, 255, 256, 507, 508, 509, 530] {
            for zero_at in [None, Some(0), Some(len / 2), Some(len - 1)] {
                let mut src = vec![0x5Au8; len];
                if let Some(z) = zero_at {
                    src[z] = 0;
                }
                let mut ours = vec![0u8; cobs::max_encoding_length(len)];
                let mut theirs = vec![0u8; cobs::max_encoding_length(len)];
                let n = encode(&src, &mut ours).expect("fits");
                let m = cobs::try_encode(&src, &mut theirs).expect("fits");
                assert_eq!(ours[..n], theirs[..m], "len {len}, zero at {zero_at:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encode_matches_cobs_crate(src in frames()) {
            let mut ours = vec![0u8; cobs::max_encoding_length(src.len())];
            let mut theirs = vec![0u8; cobs::max_encoding_length(src.len())];
            let n = encode(&src, &mut ours).expect("max_encoding_length is enough");
            let m = cobs::try_encode(&src, &mut theirs).expect("max_encoding_length is enough");
            prop_assert_eq!(&ours[..n], &theirs[..m]);
            prop_assert!(!ours[..n].contains(&0));
            let mut back = vec![0u8; n];
            prop_assert_eq!(decode(&ours[..n], &mut back), Some(src.len()));
            prop_assert_eq!(&back[..src.len()], &src[..]);
        }

        #[test]
        fn encode_into_short_buffer_fails_cleanly(src in frames(), short in 0usize..600) {
            let mut dst = vec![0u8; short];
            let expected = cobs::max_encoding_length(src.len());
            match encode(&src, &mut dst) {
                Some(n) => prop_assert!(n <= short && n <= expected),
                None => prop_assert!(short < expected),
            }
        }

        /// Arbitrary non-zero items (what the stream decoder hands over)
        /// decode exactly as the `cobs` crate decodes them.
        #[test]
        fn decode_matches_cobs_crate(
            item in proptest::collection::vec(1u8..=255, 0..600),
        ) {
            let mut theirs = item.clone();
            let expected = cobs::decode_in_place(&mut theirs).ok();
            let mut ours = vec![0u8; item.len()];
            let got = decode(&item, &mut ours);
            prop_assert_eq!(got, expected);
            let mut in_place = item.clone();
            prop_assert_eq!(decode_in_place(&mut in_place), expected);
            if let Some(n) = expected {
                prop_assert_eq!(&ours[..n], &theirs[..n]);
                prop_assert_eq!(&in_place[..n], &theirs[..n]);
            }
        }

        #[test]
        fn decode_rejects_zero_code_byte(
            mut item in proptest::collection::vec(1u8..=255, 1..300),
        ) {
            item[0] = 0;
            let mut out = vec![0u8; item.len()];
            prop_assert_eq!(decode(&item, &mut out), None);
            prop_assert_eq!(decode_in_place(&mut item), None);
        }

        #[test]
        fn find_zero_matches_position(bytes in proptest::collection::vec(
            prop_oneof![Just(0u8), 1u8..=255, 1u8..=255, 1u8..=255, 0x80u8..=0xFF], 0..100)
        ) {
            prop_assert_eq!(find_zero(&bytes), bytes.iter().position(|&b| b == 0));
        }
    }
}
