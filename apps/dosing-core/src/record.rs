//! The dosing app's saved record: what only the app knows, kept by the
//! capsule across resets (commands 26 and 27, SR-PER-005, SR-DOS-015).
//!
//! # Format
//!
//! | Offset | Size | Field |
//! |--------|------|-------|
//! | 0 | 1 | format, [`RECORD_FORMAT`] |
//! | 1 | rest | postcard: `saved_at_monotonic_ms` (varint `u64`), then the [`SavedState`] |
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
//! 24 h window by the downtime, never shorten them. The core saves again at
//! least every [`RECORD_REFRESH_MS`] while it holds grants, which bounds
//! the time lost between the last save and a reset.
//!
//! [`CatheterContents::Unknown`]: crate::CatheterContents::Unknown

use serde::{Deserialize, Serialize};

use crate::capsule::DosingCapsule;
use crate::core::SavedState;
use pump_protocol::ErrorCode;

/// The record format this crate writes and reads.
pub const RECORD_FORMAT: u8 = 1;

/// The largest record this crate writes (a full catheter schedule, a flush
/// and every patient grant fit; tested). The capsule keeps up to 1024 bytes.
pub const SAVED_RECORD_MAX_LEN: usize = 768;

/// While the app holds patient grants, it saves its record at least this
/// often, so a reset loses at most this much of its clock.
pub const RECORD_REFRESH_MS: u64 = 60_000;

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

#[derive(Serialize)]
struct RecordBodyRef<'a> {
    saved_at_monotonic_ms: u64,
    state: &'a SavedState,
}

#[derive(Deserialize)]
struct RecordBody {
    saved_at_monotonic_ms: u64,
    state: SavedState,
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
    let (format, body) = buf.split_first_mut().ok_or(RecordError::TooLarge)?;
    *format = RECORD_FORMAT;
    let body_len = postcard::to_slice(
        &RecordBodyRef {
            saved_at_monotonic_ms,
            state,
        },
        body,
    )
    .map_err(|_| RecordError::TooLarge)?
    .len();
    Ok(1 + body_len)
}

/// Decodes a record. Refuses it whole if anything is off.
pub fn decode_record(bytes: &[u8]) -> Result<Restored, RecordError> {
    let (&format, body) = bytes.split_first().ok_or(RecordError::Empty)?;
    if format != RECORD_FORMAT {
        return Err(RecordError::UnknownFormat(format));
    }
    let body: RecordBody = match postcard::take_from_bytes(body) {
        Ok((body, [])) => body,
        _ => return Err(RecordError::Malformed),
    };
    if body
        .state
        .patient_grants_ms
        .iter()
        .any(|&t| t > body.saved_at_monotonic_ms)
    {
        return Err(RecordError::GrantAfterSave);
    }
    Ok(Restored {
        state: body.state,
        saved_at_monotonic_ms: body.saved_at_monotonic_ms,
    })
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
