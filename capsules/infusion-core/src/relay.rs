//! The relay: programmer requests from the telemetry app to the dosing app.
//!
//! The apps cannot talk to each other directly (the pinned libtock-rs has no
//! IPC), and the telemetry app may not start deliveries. So a clinician or
//! patient bolus asked for over the host link, and programmer commands the
//! dosing app must hear of (a refill that changes the drug, a suspend, a new
//! prescription), pass through this small mailbox in the capsule, where the
//! role table decides who may post, take and answer.
//!
//! The relay never moves the motor: the dosing app still asks for every
//! delivery through the delivery commands and their envelope checks. It is
//! RAM only and holds no safety state.
//!
//! - *Requests* (`ClinicianBolus`, `PatientBolusRequest`) need the dosing
//!   app's verdict. At most one is outstanding, from its post until the
//!   telemetry app has read its result. One not answered within
//!   [`RELAY_ANSWER_TIMEOUT_MS`] is answered `NotReady` by the core.
//! - *Notices* (`Suspend`, `Resume`, `Refill`, `InstallPrescription`,
//!   `ClearFault`, `SetClock`) say the capsule accepted that programmer
//!   command. A notice replaces an untaken notice of the same kind (the
//!   latest wins), so notices never fail for lack of room.

use pump_protocol::{
    ClearFault, ClinicianBolus, ErrorCode, MessageKind, PatientBolusRequest, Refill, Resume,
    SetClock, Suspend,
};
use serde::de::DeserializeOwned;

/// Largest payload a relayed message may have (the postcard payload of a
/// `Refill` is at most 15 bytes).
pub const RELAY_PAYLOAD_MAX_LEN: usize = 16;

/// Entries the relay holds: one request plus one notice of each kind fit
/// with room to spare.
pub const RELAY_QUEUE_LEN: usize = 8;

/// A request the dosing app has not answered this long after its post is
/// answered `NotReady` by the core.
pub const RELAY_ANSWER_TIMEOUT_MS: u64 = 5_000;

/// Whether a kind is relayed as a request (needs a verdict) or a notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayClass {
    /// The dosing app answers it.
    Request,
    /// Information only.
    Notice,
}

/// The relay class of a message kind, or `None` if it is not relayed.
pub fn relay_class(kind: MessageKind) -> Option<RelayClass> {
    match kind {
        MessageKind::ClinicianBolus | MessageKind::PatientBolusRequest => Some(RelayClass::Request),
        MessageKind::Suspend
        | MessageKind::Resume
        | MessageKind::Refill
        | MessageKind::InstallPrescription
        | MessageKind::ClearFault
        | MessageKind::SetClock => Some(RelayClass::Notice),
        _ => None,
    }
}

fn decodes_exactly<T: DeserializeOwned>(payload: &[u8]) -> bool {
    matches!(postcard::take_from_bytes::<T>(payload), Ok((_, rest)) if rest.is_empty())
}

/// Checks a payload for a relayable kind without building a whole
/// `Message` (over 500 bytes) on the kernel stack. An install notice is
/// posted empty: the dosing app reads the prescription from the capsule.
fn payload_is_valid(kind: MessageKind, payload: &[u8]) -> bool {
    match kind {
        MessageKind::ClinicianBolus => decodes_exactly::<ClinicianBolus>(payload),
        MessageKind::PatientBolusRequest => decodes_exactly::<PatientBolusRequest>(payload),
        MessageKind::Suspend => decodes_exactly::<Suspend>(payload),
        MessageKind::Resume => decodes_exactly::<Resume>(payload),
        MessageKind::Refill => decodes_exactly::<Refill>(payload),
        MessageKind::ClearFault => decodes_exactly::<ClearFault>(payload),
        MessageKind::SetClock => decodes_exactly::<SetClock>(payload),
        MessageKind::InstallPrescription => payload.is_empty(),
        _ => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryState {
    Waiting,
    Taken,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    ticket: u32,
    kind: MessageKind,
    class: RelayClass,
    state: EntryState,
    posted_at_ms: u64,
    payload: [u8; RELAY_PAYLOAD_MAX_LEN],
    len: u8,
}

/// What the dosing app takes from the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TakenEntry {
    /// The ticket to answer a request with.
    pub ticket: u32,
    /// The message kind.
    pub kind: MessageKind,
    /// Payload bytes written to the caller's buffer.
    pub len: usize,
}

/// The mailbox. Every method either succeeds or changes nothing.
#[derive(Debug)]
pub struct Relay {
    entries: heapless::Vec<Entry, RELAY_QUEUE_LEN>,
    /// The outstanding request's ticket, from post until its result is read.
    outstanding: Option<u32>,
    /// The verdict waiting for the telemetry app.
    result: Option<(u32, Result<(), ErrorCode>)>,
    next_ticket: u32,
}

impl Default for Relay {
    fn default() -> Self {
        Self::new()
    }
}

impl Relay {
    /// An empty relay.
    pub const fn new() -> Self {
        Self {
            entries: heapless::Vec::new(),
            outstanding: None,
            result: None,
            next_ticket: 1,
        }
    }

    fn ticket(&mut self) -> u32 {
        let ticket = self.next_ticket;
        // Tickets only tell entries apart; after 4 billion posts, start over
        // above zero rather than overflow.
        self.next_ticket = self.next_ticket.checked_add(1).unwrap_or(1);
        ticket
    }

    /// Posts a message; returns its ticket.
    pub fn post(&mut self, kind_code: u16, payload: &[u8], now_ms: u64) -> Result<u32, ErrorCode> {
        let kind = MessageKind::from_code(kind_code).ok_or(ErrorCode::UnknownKind)?;
        let class = relay_class(kind).ok_or(ErrorCode::UnknownKind)?;
        if payload.len() > RELAY_PAYLOAD_MAX_LEN || !payload_is_valid(kind, payload) {
            return Err(ErrorCode::BadPayload);
        }
        if class == RelayClass::Request && self.outstanding.is_some() {
            return Err(ErrorCode::Busy);
        }
        if class == RelayClass::Notice {
            self.entries
                .retain(|e| !(e.kind == kind && e.state == EntryState::Waiting));
        }
        if self.entries.is_full() {
            // Unreachable by construction (one request, one notice per
            // kind), but a full queue must refuse, not overwrite.
            return Err(ErrorCode::Busy);
        }
        let ticket = self.ticket();
        let mut entry = Entry {
            ticket,
            kind,
            class,
            state: EntryState::Waiting,
            posted_at_ms: now_ms,
            payload: [0; RELAY_PAYLOAD_MAX_LEN],
            len: payload.len() as u8,
        };
        entry.payload[..payload.len()].copy_from_slice(payload);
        // Capacity was checked above.
        let _ = self.entries.push(entry);
        if class == RelayClass::Request {
            self.outstanding = Some(ticket);
        }
        Ok(ticket)
    }

    /// Takes the oldest waiting entry into `buf`. A notice leaves the relay;
    /// a request stays until answered or expired.
    pub fn take(&mut self, buf: &mut [u8]) -> Result<TakenEntry, ErrorCode> {
        let index = self
            .entries
            .iter()
            .position(|e| e.state == EntryState::Waiting)
            .ok_or(ErrorCode::NotReady)?;
        let entry = self.entries[index];
        let len = usize::from(entry.len);
        buf.get_mut(..len)
            .ok_or(ErrorCode::InvalidArgument)?
            .copy_from_slice(&entry.payload[..len]);
        match entry.class {
            RelayClass::Notice => {
                self.entries.remove(index);
            }
            RelayClass::Request => self.entries[index].state = EntryState::Taken,
        }
        Ok(TakenEntry {
            ticket: entry.ticket,
            kind: entry.kind,
            len,
        })
    }

    /// Answers a taken request.
    pub fn answer(&mut self, ticket: u32, verdict: Result<(), ErrorCode>) -> Result<(), ErrorCode> {
        let index = self
            .entries
            .iter()
            .position(|e| {
                e.ticket == ticket && e.class == RelayClass::Request && e.state == EntryState::Taken
            })
            .ok_or(ErrorCode::InvalidArgument)?;
        self.entries.remove(index);
        self.result = Some((ticket, verdict));
        Ok(())
    }

    /// Hands the telemetry app the waiting verdict; this ends the request.
    pub fn take_result(&mut self) -> Result<(u32, Result<(), ErrorCode>), ErrorCode> {
        let result = self.result.take().ok_or(ErrorCode::NotReady)?;
        if self.outstanding == Some(result.0) {
            self.outstanding = None;
        }
        Ok(result)
    }

    /// When the outstanding request, unanswered, times out.
    pub fn answer_deadline_ms(&self) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| e.class == RelayClass::Request)
            .map(|e| e.posted_at_ms.saturating_add(RELAY_ANSWER_TIMEOUT_MS))
    }

    /// Answers `NotReady` for a request past its deadline; returns whether
    /// one expired.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        let Some(index) = self.entries.iter().position(|e| {
            e.class == RelayClass::Request
                && e.posted_at_ms.saturating_add(RELAY_ANSWER_TIMEOUT_MS) <= now_ms
        }) else {
            return false;
        };
        let ticket = self.entries[index].ticket;
        self.entries.remove(index);
        self.result = Some((ticket, Err(ErrorCode::NotReady)));
        true
    }
}

/// The wire form of a verdict: 0 for accepted, else the error's code.
pub fn verdict_code(verdict: Result<(), ErrorCode>) -> u32 {
    match verdict {
        Ok(()) => 0,
        Err(e) => u32::from(e.code()),
    }
}

/// The verdict for a wire code; `None` if it is not 0 or a `u16` code.
pub fn verdict_from_code(code: u32) -> Option<Result<(), ErrorCode>> {
    match code {
        0 => Some(Ok(())),
        c => u16::try_from(c).ok().map(|c| Err(ErrorCode::from_code(c))),
    }
}
