use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

use pump_protocol::{
    encode_stream_frame, AlarmCode, DeliveryKind, DeliveryOutcome, DeliveryRecord, ErrorCode,
    Frame, Message, MessageKind, PumpState, Refill, ServiceOutlook, StatusSnapshot, StreamDecoder,
    StreamItem, MAX_STREAM_FRAME_LEN,
};

use storage_core::{FlashError, Geometry, SharedSimFlash, SimFlash};

use crate::{LinkOutput, LogStorage, TelemetryCapsule};

/// Bytes in a page of the tests' flash: room for a header and the largest
/// record (a few dozen of the tests' records).
pub const TEST_PAGE_BYTES: u32 = 1024;

/// A flash region in memory (`storage_core::SimFlash`, NOR rules, power
/// cuts), shared so that a test can drop a core and open a new one over the
/// same contents (a reset), and counting programs.
#[derive(Clone)]
pub struct MemStorage {
    pub flash: SharedSimFlash,
    pub writes: Rc<RefCell<u32>>,
}

impl MemStorage {
    /// `pages` erased pages of [`TEST_PAGE_BYTES`].
    pub fn new(pages: usize) -> Self {
        Self::with_seed(pages, 7)
    }

    /// The same, with the flash's power-cut randomness from `seed`.
    pub fn with_seed(pages: usize, seed: u64) -> Self {
        let flash = SimFlash::new(TEST_PAGE_BYTES, pages as u32, seed).expect("a valid geometry");
        Self {
            flash: SharedSimFlash::new(flash),
            writes: Rc::new(RefCell::new(0)),
        }
    }
}

impl LogStorage for MemStorage {
    fn geometry(&self) -> Geometry {
        self.flash.geometry()
    }
    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.flash.read(addr, buf)
    }
    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        *self.writes.borrow_mut() += 1;
        self.flash.program(addr, data)
    }
    fn erase_page(&mut self, page: u32) -> Result<(), FlashError> {
        self.flash.erase_page(page)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CapsuleCall {
    Install(Vec<u8>),
    Drain,
    Acknowledge(AlarmCode),
    ClearFault(AlarmCode),
    Suspend,
    Resume,
    Refill(Refill),
    SetClock(u64),
    Pending,
    Status,
    ServiceOutlook,
    RelayResult,
    Authenticated(Vec<u8>),
}

/// A recording fake capsule: queued events are drained as stream items,
/// every other command answers from a script (then `Ok`).
pub struct FakeCapsule {
    pub calls: Vec<CapsuleCall>,
    pub events: VecDeque<(u32, Message)>,
    pub answers: VecDeque<Result<(), ErrorCode>>,
    pub status: StatusSnapshot,
    pub outlook: ServiceOutlook,
    /// What was posted to the relay: `(kind code, payload)`.
    pub posted: Vec<(u16, Vec<u8>)>,
    /// Scripted refusals of posts, then the relay's own rules.
    pub post_answers: VecDeque<Result<(), ErrorCode>>,
    /// The relay's outstanding request (from its post until its result is read).
    pub outstanding: Option<u32>,
    /// Results waiting to be read: `(ticket, verdict)`.
    pub results: VecDeque<(u32, Result<(), ErrorCode>)>,
    pub last_ticket: u32,
    /// Scripted answers to signed commands: the inner kind and whether it
    /// posts a request (`Ok((kind, true))` takes a relay ticket).
    pub auth_answers: VecDeque<Result<(u16, bool), ErrorCode>>,
}

impl FakeCapsule {
    pub fn new() -> Self {
        Self {
            calls: Vec::new(),
            events: VecDeque::new(),
            answers: VecDeque::new(),
            status: StatusSnapshot {
                time_ms: 1_735_689_600_000,
                pump_state: PumpState::Running,
                prescription_serial: 3,
                basal_rate_nl_per_h: 25_000,
                bolus_remaining_nl: 0,
                reservoir_nl: 9_000_000,
                delivered_24h_nl: 600_000,
                patient_boluses_24h: 1,
                top_alarm: None,
                refill_by_time_ms: Some(1_738_000_000_000),
            },
            outlook: ServiceOutlook {
                time_ms: 1_735_689_600_000,
                charge_percent: 97,
                remaining_charge_uah: 1_750_000_000,
                average_current_na: 9_000,
                eri_time_ms: Some(1_735_689_600_000 + 5_000 * 86_400_000),
                eos_time_ms: Some(1_735_689_600_000 + 5_100 * 86_400_000),
                replacement_recommended: false,
                end_of_service: false,
                refill_by_time_ms: Some(1_738_000_000_000),
            },
            posted: Vec::new(),
            post_answers: VecDeque::new(),
            outstanding: None,
            results: VecDeque::new(),
            last_ticket: 0,
            auth_answers: VecDeque::new(),
        }
    }

    /// Queues `DeliveryRecord` events with these sequence numbers.
    pub fn queue_records(&mut self, sequences: impl IntoIterator<Item = u32>) {
        for sequence in sequences {
            self.events.push_back((sequence, record(sequence)));
        }
    }

    fn answer(&mut self, call: CapsuleCall) -> Result<(), ErrorCode> {
        self.calls.push(call);
        self.answers.pop_front().unwrap_or(Ok(()))
    }

    /// The dosing app answers the outstanding request with `verdict`.
    pub fn answer_relay(&mut self, verdict: Result<(), ErrorCode>) -> u32 {
        let ticket = self.outstanding.expect("no outstanding request");
        self.results.push_back((ticket, verdict));
        ticket
    }

    /// Calls other than draining and counting events and reading relay results.
    pub fn commands(&self) -> Vec<CapsuleCall> {
        self.calls
            .iter()
            .filter(|c| {
                !matches!(
                    c,
                    CapsuleCall::Drain | CapsuleCall::Pending | CapsuleCall::RelayResult
                )
            })
            .cloned()
            .collect()
    }
}

/// A distinguishable event for sequence `sequence`.
pub fn record(sequence: u32) -> Message {
    Message::DeliveryRecord(DeliveryRecord {
        time_ms: 1_735_689_600_000 + u64::from(sequence) * 1000,
        delivery_kind: DeliveryKind::Basal,
        outcome: DeliveryOutcome::Checkpoint,
        volume_nl: sequence.wrapping_mul(250),
        duration_ms: 3_600_000,
    })
}

impl TelemetryCapsule for FakeCapsule {
    fn install_prescription(&mut self, signed: &[u8]) -> Result<(), ErrorCode> {
        self.answer(CapsuleCall::Install(signed.to_vec()))
    }
    fn drain_events(&mut self, buf: &mut [u8]) -> Result<(usize, usize), ErrorCode> {
        self.calls.push(CapsuleCall::Drain);
        let mut written = 0;
        let mut frames = 0;
        let mut item = [0u8; MAX_STREAM_FRAME_LEN];
        while let Some((sequence, message)) = self.events.front().cloned() {
            let frame = Frame {
                sequence,
                flags: 0,
                message,
            };
            let len = encode_stream_frame(&frame, &mut item).unwrap();
            let Some(dst) = buf.get_mut(written..written + len) else {
                break;
            };
            dst.copy_from_slice(&item[..len]);
            written += len;
            frames += 1;
            self.events.pop_front();
        }
        Ok((written, frames))
    }
    fn acknowledge_alarm(&mut self, code: AlarmCode) -> Result<(), ErrorCode> {
        self.answer(CapsuleCall::Acknowledge(code))
    }
    fn clear_fault(&mut self, code: AlarmCode) -> Result<(), ErrorCode> {
        self.answer(CapsuleCall::ClearFault(code))
    }
    fn suspend(&mut self) -> Result<(), ErrorCode> {
        self.answer(CapsuleCall::Suspend)
    }
    fn resume(&mut self) -> Result<(), ErrorCode> {
        self.answer(CapsuleCall::Resume)
    }
    fn refill(&mut self, refill: &Refill) -> Result<(), ErrorCode> {
        self.answer(CapsuleCall::Refill(refill.clone()))
    }
    fn set_clock(&mut self, utc_time_ms: u64) -> Result<(), ErrorCode> {
        self.answer(CapsuleCall::SetClock(utc_time_ms))
    }
    fn pending_events(&mut self) -> Result<u32, ErrorCode> {
        self.calls.push(CapsuleCall::Pending);
        Ok(self.events.len() as u32)
    }
    fn status(&mut self) -> Result<StatusSnapshot, ErrorCode> {
        self.calls.push(CapsuleCall::Status);
        self.answers.pop_front().unwrap_or(Ok(()))?;
        Ok(self.status.clone())
    }
    fn service_outlook(&mut self) -> Result<ServiceOutlook, ErrorCode> {
        self.calls.push(CapsuleCall::ServiceOutlook);
        self.answers.pop_front().unwrap_or(Ok(()))?;
        Ok(self.outlook.clone())
    }
    fn relay_post(&mut self, kind: u16, payload: &[u8]) -> Result<u32, ErrorCode> {
        self.post_answers.pop_front().unwrap_or(Ok(()))?;
        let request = kind == MessageKind::ClinicianBolus.code()
            || kind == MessageKind::PatientBolusRequest.code();
        if request && self.outstanding.is_some() {
            return Err(ErrorCode::Busy);
        }
        self.posted.push((kind, payload.to_vec()));
        self.last_ticket += 1;
        if request {
            self.outstanding = Some(self.last_ticket);
        }
        Ok(self.last_ticket)
    }
    fn authenticated_command(&mut self, signed: &[u8]) -> Result<(u16, u32), ErrorCode> {
        self.calls.push(CapsuleCall::Authenticated(signed.to_vec()));
        let (kind, posts) = self
            .auth_answers
            .pop_front()
            .unwrap_or(Ok((MessageKind::Suspend.code(), false)))?;
        if !posts {
            return Ok((kind, 0));
        }
        if self.outstanding.is_some() {
            return Err(ErrorCode::Busy);
        }
        self.last_ticket += 1;
        self.outstanding = Some(self.last_ticket);
        Ok((kind, self.last_ticket))
    }
    fn relay_result(&mut self) -> Result<(u32, Result<(), ErrorCode>), ErrorCode> {
        self.calls.push(CapsuleCall::RelayResult);
        let (ticket, verdict) = self.results.pop_front().ok_or(ErrorCode::NotReady)?;
        if self.outstanding == Some(ticket) {
            self.outstanding = None;
        }
        Ok((ticket, verdict))
    }
}

/// A message as the telemetry app posts it to the relay.
pub fn posted(message: &Message) -> (u16, Vec<u8>) {
    let mut buf = [0u8; 64];
    let len = match message {
        Message::InstallPrescription(_) => 0,
        _ => message.encode_payload(&mut buf).unwrap(),
    };
    (message.kind_code(), buf[..len].to_vec())
}

/// Output with a fixed room.
pub struct VecOutput {
    pub bytes: Vec<u8>,
    pub capacity: usize,
}

impl VecOutput {
    pub fn with_room(capacity: usize) -> Self {
        Self {
            bytes: Vec::new(),
            capacity,
        }
    }

    /// Decodes everything written; the output must be valid frames only.
    pub fn frames(&self) -> Vec<(u32, u8, Message)> {
        let mut out = Vec::new();
        let mut decoder = StreamDecoder::new();
        decoder.feed(&self.bytes, |item| match item {
            StreamItem::Frame { frame, .. } => {
                out.push((frame.sequence(), frame.header.flags, frame.message))
            }
            StreamItem::Invalid { error, .. } => panic!("invalid output frame: {error}"),
        });
        out
    }
}

impl LinkOutput for VecOutput {
    fn room(&self) -> usize {
        self.capacity - self.bytes.len()
    }
    fn write(&mut self, item: &[u8]) {
        assert!(item.len() <= self.room(), "wrote past the room");
        self.bytes.extend_from_slice(item);
    }
}

/// A command as a stream item from the host.
pub fn host_frame(sequence: u32, message: Message) -> Vec<u8> {
    pump_protocol::encode_stream_frame_vec(&Frame {
        sequence,
        flags: 0,
        message,
    })
    .unwrap()
}
