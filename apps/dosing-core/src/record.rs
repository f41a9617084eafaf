//! The dosing app's saved record: what only the app knows, kept by the
//! capsule across resets (commands 26 and 27, SR-PER-005, SR-DOS-015).
//!
//! # Format
//!
//! | Offset | Size | Field |
//! |--------|------|-------|
//! | 0 | 1 | format, [`RECORD_FORMAT`] |
//! | 1 | rest | `saved_at_monotonic_ms`, then the [`SavedState`] |
//!
//! The rest is postcard's encoding of those two values, written and read
//! here by hand so that the app carries no serde code for them (a
//! differential test holds it to postcard's own output):
//!
//! - integers (`u16`, `u32`, `u64`) as LEB128 varints: 7 bits per byte,
//!   least significant first, high bit set on every byte but the last; at
//!   most 3, 5 and 10 bytes, and the last byte may not carry bits beyond
//!   the type's width;
//! - a length (of the drug name, the basal steps, the grants) as a `u32`
//!   varint, then the elements; a string's bytes are UTF-8;
//! - an enum as its variant index (a `u32` varint): catheter contents
//!   `Unknown` 0, `Empty` 1, `Drug` 2 (then name, concentration, steps,
//!   each step its start minute and rate); flush kind `Priming` 0,
//!   `Bridge` 1;
//! - the optional flush as one byte, 0 (none) or 1 (then kind and volume
//!   left);
//! - the grants last.
//!
//! No byte may follow the state. The capsule checks the record's integrity
//! (CRC, atomic writes); a record the app cannot read (another format,
//! malformed, a grant later than the time it was saved) is refused whole
//! and the app starts as on a new pump with [`CatheterContents::Unknown`],
//! which never guesses a priming or bridge bolus.
//!
//! # Time
//!
//! Patient-bolus grants are on the app's monotonic clock, which starts
//! again at 0 whenever the app starts (Tock restarts the app, or the pump
//! resets). The record carries the time it was saved, and the shell resumes
//! its clock from there ([`Restored::monotonic_offset_ms`]): time the app
//! did not run is not counted, so a restart can lengthen a lockout or the
//! 24 h window by the downtime, never shorten them. While it holds grants
//! the core saves again at its first wake-up [`RECORD_REFRESH_MS`] after the
//! last save, which bounds the time lost between the last save and a reset
//! to that interval plus one wake period (half the check-in timeout).
//!
//! [`CatheterContents::Unknown`]: crate::CatheterContents::Unknown

use heapless::{String, Vec};
use pump_protocol::prescription::{BasalStep, MAX_BASAL_STEPS, MAX_DRUG_NAME_LEN};
use pump_protocol::ErrorCode;

use crate::capsule::DosingCapsule;
use crate::model::Drug;
use crate::saved::{CatheterContents, Flush, FlushKind, SavedState, MAX_PATIENT_GRANTS};

/// The record format this crate writes and reads.
pub const RECORD_FORMAT: u8 = 1;

/// The largest record this crate writes (a full catheter schedule, a flush
/// and every patient grant fit; tested). The capsule keeps up to 1024 bytes.
pub const SAVED_RECORD_MAX_LEN: usize = 768;

/// While the app holds patient grants, it saves its record again at its
/// first wake-up this long after the last save (no wake-up is added for
/// it), so a reset loses at most this much of its clock plus one wake
/// period; lockouts and the 24 h window lengthen by that, never shorten.
///
/// Why 15 minutes and not 1: a patient who presses once a day holds grants
/// all day, and the record is rewritten at every refresh. With a check-in
/// timeout of 2 min the app wakes every minute, and a one-minute refresh at
/// the drug library's limits wore the capsule's state ring to its 10 000
/// cycles within an implant's life (`docs/persistence.md` §8 has the
/// simulator's figures for both intervals).
pub const RECORD_REFRESH_MS: u64 = 15 * 60_000;

/// Why a record could not be saved or restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The app never saved a record (a new pump).
    Empty,
    /// The capsule refused the command.
    Refused(ErrorCode),
    /// The first byte names a format this app does not read.
    UnknownFormat(u8),
    /// The bytes are not a record of this format.
    Malformed,
    /// A grant lies after the time the record was saved.
    GrantAfterSave,
    /// The state does not fit [`SAVED_RECORD_MAX_LEN`] (cannot happen for a
    /// state the core built; checked rather than trusted).
    TooLarge,
}

/// A record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The app's state.
    pub state: SavedState,
    /// The app's monotonic time when the record was saved.
    pub saved_at_monotonic_ms: u64,
}

impl Restored {
    /// What to add to a clock that reads `raw_now_ms` so that the app's
    /// monotonic time does not run back behind the saved record: 0 if the
    /// clock is already past it (the app's clock kept running), else the
    /// difference (the clock started again at a reset).
    pub fn monotonic_offset_ms(&self, raw_now_ms: u64) -> u64 {
        self.saved_at_monotonic_ms.saturating_sub(raw_now_ms)
    }
}

/// Encodes `state`, saved at `saved_at_monotonic_ms`, into `buf`; returns
/// the record's length.
pub fn encode_record(
    state: &SavedState,
    saved_at_monotonic_ms: u64,
    buf: &mut [u8],
) -> Result<usize, RecordError> {
    let mut out = Writer { buf, len: 0 };
    out.byte(RECORD_FORMAT)?;
    out.varint(saved_at_monotonic_ms)?;
    match &state.catheter {
        CatheterContents::Unknown => out.varint(0)?,
        CatheterContents::Empty => out.varint(1)?,
        CatheterContents::Drug { drug, basal_steps } => {
            out.varint(2)?;
            out.varint(drug.name.len() as u64)?;
            for &b in drug.name.as_bytes() {
                out.byte(b)?;
            }
            out.varint(drug.concentration_ug_per_ml.into())?;
            out.varint(basal_steps.len() as u64)?;
            for step in basal_steps {
                out.varint(step.start_minute_of_day.into())?;
                out.varint(step.rate_ug_per_day.into())?;
            }
        }
    }
    match state.flush {
        None => out.byte(0)?,
        Some(flush) => {
            out.byte(1)?;
            out.varint(match flush.kind {
                FlushKind::Priming => 0,
                FlushKind::Bridge => 1,
            })?;
            out.varint(flush.remaining_nl.into())?;
        }
    }
    out.varint(state.patient_grants_ms.len() as u64)?;
    for &t in &state.patient_grants_ms {
        out.varint(t)?;
    }
    Ok(out.len)
}

/// Decodes a record. Refuses it whole if anything is off.
pub fn decode_record(bytes: &[u8]) -> Result<Restored, RecordError> {
    let (&format, body) = bytes.split_first().ok_or(RecordError::Empty)?;
    if format != RECORD_FORMAT {
        return Err(RecordError::UnknownFormat(format));
    }
    let mut input = Reader { bytes: body };
    let saved_at_monotonic_ms = input.u64()?;
    let catheter = match input.u32()? {
        0 => CatheterContents::Unknown,
        1 => CatheterContents::Empty,
        2 => {
            let name_len = input.len(MAX_DRUG_NAME_LEN)?;
            let mut name = String::new();
            name.push_str(
                core::str::from_utf8(input.take(name_len)?).map_err(|_| RecordError::Malformed)?,
            )
            .map_err(|_| RecordError::Malformed)?;
            let concentration_ug_per_ml = input.u32()?;
            let mut basal_steps = Vec::new();
            for _ in 0..input.len(MAX_BASAL_STEPS)? {
                let step = BasalStep {
                    start_minute_of_day: input.u16()?,
                    rate_ug_per_day: input.u32()?,
                };
                basal_steps.push(step).map_err(|_| RecordError::Malformed)?;
            }
            CatheterContents::Drug {
                drug: Drug {
                    name,
                    concentration_ug_per_ml,
                },
                basal_steps,
            }
        }
        _ => return Err(RecordError::Malformed),
    };
    let flush = match input.byte()? {
        0 => None,
        1 => Some(Flush {
            kind: match input.u32()? {
                0 => FlushKind::Priming,
                1 => FlushKind::Bridge,
                _ => return Err(RecordError::Malformed),
            },
            remaining_nl: input.u32()?,
        }),
        _ => return Err(RecordError::Malformed),
    };
    let mut patient_grants_ms = Vec::new();
    for _ in 0..input.len(MAX_PATIENT_GRANTS)? {
        let t = input.u64()?;
        if t > saved_at_monotonic_ms {
            return Err(RecordError::GrantAfterSave);
        }
        patient_grants_ms
            .push(t)
            .map_err(|_| RecordError::Malformed)?;
    }
    if !input.bytes.is_empty() {
        return Err(RecordError::Malformed);
    }
    Ok(Restored {
        state: SavedState {
            catheter,
            flush,
            patient_grants_ms,
        },
        saved_at_monotonic_ms,
    })
}

struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) -> Result<(), RecordError> {
        *self.buf.get_mut(self.len).ok_or(RecordError::TooLarge)? = b;
        self.len += 1;
        Ok(())
    }

    fn varint(&mut self, mut value: u64) -> Result<(), RecordError> {
        loop {
            let low = (value & 0x7F) as u8;
            value >>= 7;
            if value == 0 {
                return self.byte(low);
            }
            self.byte(low | 0x80)?;
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, RecordError> {
        let (&b, rest) = self.bytes.split_first().ok_or(RecordError::Malformed)?;
        self.bytes = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if n > self.bytes.len() {
            return Err(RecordError::Malformed);
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    /// A varint of a `bits`-wide integer, by postcard's rules.
    fn varint(&mut self, bits: u32) -> Result<u64, RecordError> {
        let max_bytes = bits.div_ceil(7);
        let max_last_byte = (1u8 << (bits % 7)) - 1;
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > max_last_byte {
                    return Err(RecordError::Malformed);
                }
                return Ok(value);
            }
        }
        Err(RecordError::Malformed)
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        u16::try_from(self.varint(16)?).map_err(|_| RecordError::Malformed)
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        u32::try_from(self.varint(32)?).map_err(|_| RecordError::Malformed)
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        self.varint(64)
    }

    /// A length of at most `max` elements.
    fn len(&mut self, max: usize) -> Result<usize, RecordError> {
        usize::try_from(self.u32()?)
            .ok()
            .filter(|&n| n <= max)
            .ok_or(RecordError::Malformed)
    }
}

/// Reads the app's record back from the capsule (command 27) and decodes it.
// Not inlined: the buffer stays out of the caller's frame.
#[inline(never)]
pub fn load_record(capsule: &mut impl DosingCapsule) -> Result<Restored, RecordError> {
    let mut buf = [0u8; SAVED_RECORD_MAX_LEN];
    match capsule.load_record(&mut buf) {
        Ok(0) => Err(RecordError::Empty),
        Ok(len) => decode_record(buf.get(..len).ok_or(RecordError::Malformed)?),
        // A record longer than this app writes is not one of its own.
        Err(ErrorCode::InvalidArgument) => Err(RecordError::Malformed),
        Err(e) => Err(RecordError::Refused(e)),
    }
}
