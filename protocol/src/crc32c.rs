//! CRC-32C (`crc::CRC_32_ISCSI`: reflected polynomial `0x82F63B78`, initial
//! value and final XOR `0xFFFFFFFF`) for the frame codec.
//!
//! Frames are short (the median telemetry frame is about 30 bytes), so the
//! per-byte table walk of a plain 1 KiB table dominates decoding. With the
//! `fast-crc` feature the codec processes sixteen, then eight, then four
//! bytes per step with sixteen 1 KiB tables (16 KiB, built at compile time).
//! Without it (flash-constrained firmware) the codec uses [`crate::CRC32C`]
//! itself, the `crc` crate's one 1 KiB table and one byte per step: firmware
//! that also uses [`crate::CRC32C`] directly (the capsule's saved state, the
//! telemetry log) then carries one CRC table, not two. The result is the same
//! either way, which the tests check.

/// Size of the CRC-32C trailer.
pub const CRC_LEN: usize = 4;

/// CRC-32C (Castagnoli, `CRC_32_ISCSI`), computed over header and payload.
pub const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32C of `bytes` with [`crate::CRC32C`]'s 1 KiB byte table: the
/// firmware's CRC (built without `fast-crc`). Compiled in every build, so
/// that the host's tests (which enable `fast-crc` through `std`) check the
/// code the firmware runs, not only the host's.
#[cfg_attr(feature = "fast-crc", allow(dead_code))]
pub(crate) fn checksum_byte_table(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

#[cfg(not(feature = "fast-crc"))]
pub(crate) use checksum_byte_table as checksum;

/// Reflected CRC-32C polynomial.
#[cfg(feature = "fast-crc")]
const POLY: u32 = 0x82F6_3B78;

/// Number of slicing tables.
#[cfg(feature = "fast-crc")]
const LANES: usize = 16;

/// `TABLES[k][b]`: the CRC register contribution of byte `b` followed by `k`
/// zero bytes.
#[cfg(feature = "fast-crc")]
static TABLES: [[u32; 256]; LANES] = tables();

#[cfg(feature = "fast-crc")]
const fn tables() -> [[u32; 256]; LANES] {
    let mut t = [[0u32; 256]; LANES];
    let mut b = 0;
    while b < 256 {
        let mut crc = b as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][b] = crc;
        b += 1;
    }
    let mut k = 1;
    while k < LANES {
        let mut b = 0;
        while b < 256 {
            let prev = t[k - 1][b];
            t[k][b] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            b += 1;
        }
        k += 1;
    }
    t
}

/// CRC-32C of `bytes`.
#[cfg(feature = "fast-crc")]
pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    !update(!0, bytes)
}

/// Advances the (pre-inverted) CRC register over `bytes`.
#[cfg(feature = "fast-crc")]
fn update(mut crc: u32, bytes: &[u8]) -> u32 {
    let bytes = {
        let mut blocks = bytes.chunks_exact(16);
        for block in &mut blocks {
            if let Some(block) = block.first_chunk::<16>() {
                crc = step(crc, block);
            }
        }
        let tail = blocks.remainder();
        let tail = match tail.split_first_chunk::<8>() {
            Some((block, rest)) => {
                crc = step(crc, block);
                rest
            }
            None => tail,
        };
        match tail.split_first_chunk::<4>() {
            Some((block, rest)) => {
                crc = step(crc, block);
                rest
            }
            None => tail,
        }
    };
    let t0 = &TABLES[0];
    for &b in bytes {
        crc = (crc >> 8) ^ t0[usize::from(crc as u8 ^ b)];
    }
    crc
}

/// Advances the CRC register over `N` (4 to 16) bytes at once: the first four
/// are combined with the register, and each byte `i` is looked up in the table
/// that shifts it past the `N - 1 - i` bytes after it.
#[cfg(feature = "fast-crc")]
#[inline(always)]
fn step<const N: usize>(crc: u32, block: &[u8; N]) -> u32 {
    let lo = crc ^ u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    let mut next = TABLES[N - 1][usize::from(lo as u8)]
        ^ TABLES[N - 2][usize::from((lo >> 8) as u8)]
        ^ TABLES[N - 3][usize::from((lo >> 16) as u8)]
        ^ TABLES[N - 4][usize::from((lo >> 24) as u8)];
    let mut i = 4;
    while i < N {
        next ^= TABLES[N - 1 - i][usize::from(block[i])];
        i += 1;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc32c_check_value() {
        // The catalogue's check value for CRC-32C over "123456789".
        assert_eq!(checksum(b"123456789"), 0xE306_9283);
        assert_eq!(checksum_byte_table(b"123456789"), 0xE306_9283);
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }

    proptest! {
        #[test]
        fn crc32c_impl_agrees_with_public_constant(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            prop_assert_eq!(checksum(&bytes), CRC32C.checksum(&bytes));
            prop_assert_eq!(checksum_byte_table(&bytes), checksum(&bytes));
        }
    }
}
