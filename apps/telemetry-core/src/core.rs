//! The telemetry core: drains the capsule's events into the persistent log
//! and serves the host link.

use pump_protocol::{
    decode_frame, encode_frame, encode_stream_frame, flags, Ack, DecodedFrame, ErrorCode, Frame,
    FrameError, LogChunkEnd, LogGap, Message, MessageClass, Nack, ReadLog, StreamDecoder,
    StreamItem, MAX_FRAME_LEN, MAX_STREAM_FRAME_LEN,
};

use crate::capsule::TelemetryCapsule;
use crate::log::{LogStorage, PersistentLog, StorageError, RECORD_HEADER_LEN, RECORD_LEN};
use crate::output::LinkOutput;

/// Bytes of capsule events drained per call: a few dozen events, and a
/// bounded slice of the telemetry app's time.
pub const DRAIN_BUF_LEN: usize = 1024;

/// Host-link bytes looked at per call; the rest stays with the caller.
pub const MAX_LINK_BYTES_PER_CALL: usize = 1024;

/// Host-link items (frames or garbage) handled per call.
pub const MAX_LINK_ITEMS_PER_CALL: usize = 4;

/// Most stored frames in one `ReadLog` chunk, whatever the host asks.
pub const MAX_LOG_CHUNK_FRAMES: u16 = 16;

/// Output room a simple response (ack, nack, status, chunk end) may need.
pub const SIMPLE_RESPONSE_ROOM: usize = 96;

/// Longest payload the capsule's relay carries (its `RELAY_PAYLOAD_MAX_LEN`).
pub const RELAY_PAYLOAD_MAX_LEN: usize = 16;

/// A bolus request posted to the relay whose verdict the host still waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingRequest {
    ticket: u32,
    /// The host frame's sequence, echoed in the `Ack` or `Nack`.
    sequence: u32,
    kind: u16,
}

/// Counters for the status of the log and link (all saturating).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelemetryStats {
    /// Capsule frames stored.
    pub frames_stored: u32,
    /// Sequence holes recorded as `LogGap`s by this app.
    pub gaps_recorded: u32,
    /// Capsule frames whose sequence did not increase (the capsule lost its
    /// counter) and were stored under the next free number.
    pub frames_renumbered: u32,
    /// Invalid items in the capsule's event stream.
    pub capsule_stream_errors: u32,
    /// Frames lost to storage errors.
    pub storage_errors: u32,
    /// Host-link items refused with a `Nack`.
    pub link_items_refused: u32,
}

/// What a drain did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainReport {
    /// Frames stored by this call.
    pub frames_stored: u32,
    /// Events still waiting in the capsule: drain again at the next wake-up.
    pub pending: u32,
}

/// What a link service call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkProgress {
    /// Input bytes consumed; the caller keeps the rest for the next call.
    pub consumed: usize,
    /// Items (frames or garbage) handled.
    pub items: usize,
}

/// The telemetry app's logic over a log storage `S`.
pub struct TelemetryCore<S: LogStorage> {
    log: PersistentLog<S>,
    capsule_stream: StreamDecoder,
    link_stream: StreamDecoder,
    /// The capsule sequence number expected next (`None`: nothing stored yet).
    expected_sequence: Option<u32>,
    stats: TelemetryStats,
    /// The relayed request the host waits for.
    pending: Option<PendingRequest>,
    /// Whether a result left in the relay by an earlier life was discarded.
    relay_flushed: bool,
}

impl<S: LogStorage> TelemetryCore<S> {
    /// Opens the core over `storage`, recovering the log it holds.
    pub fn new(storage: S) -> Self {
        let log = PersistentLog::open(storage);
        let expected_sequence = log.newest_sequence().map(|s| s.saturating_add(1));
        Self {
            log,
            capsule_stream: StreamDecoder::new(),
            link_stream: StreamDecoder::new(),
            expected_sequence,
            stats: TelemetryStats::default(),
            pending: None,
            relay_flushed: false,
        }
    }

    /// The log.
    pub fn log(&mut self) -> &mut PersistentLog<S> {
        &mut self.log
    }

    /// Counters.
    pub fn stats(&self) -> TelemetryStats {
        self.stats
    }

    // ------------------------------------------------------------ events --

    /// Drains one buffer of capsule events into the log. Called when the
    /// capsule signals events; at most [`DRAIN_BUF_LEN`] bytes per call.
    pub fn drain_capsule(
        &mut self,
        capsule: &mut impl TelemetryCapsule,
        utc_ms: u64,
    ) -> Result<DrainReport, ErrorCode> {
        let mut buf = [0u8; DRAIN_BUF_LEN];
        let (bytes, _) = capsule.drain_events(&mut buf)?;
        let Self {
            log,
            capsule_stream,
            expected_sequence,
            stats,
            ..
        } = self;
        let before = stats.frames_stored;
        capsule_stream.feed(buf.get(..bytes).unwrap_or_default(), |item| match item {
            StreamItem::Frame { frame, .. } => {
                store_event(log, expected_sequence, stats, &frame, utc_ms);
            }
            StreamItem::Invalid { .. } => {
                stats.capsule_stream_errors = stats.capsule_stream_errors.saturating_add(1);
            }
        });
        Ok(DrainReport {
            frames_stored: stats.frames_stored.saturating_sub(before),
            pending: capsule.pending_events().unwrap_or(0),
        })
    }

    // -------------------------------------------------------------- link --

    /// Handles bytes from the host link: at most [`MAX_LINK_BYTES_PER_CALL`]
    /// bytes and [`MAX_LINK_ITEMS_PER_CALL`] items, and only while `out` has
    /// room for the answer. Returns how much of `input` was consumed; the
    /// caller keeps the rest for the next call, so a flood of garbage costs
    /// every call the same bounded work and cannot starve the dosing app.
    pub fn service_link(
        &mut self,
        input: &[u8],
        capsule: &mut impl TelemetryCapsule,
        out: &mut impl LinkOutput,
        utc_ms: u64,
    ) -> LinkProgress {
        self.flush_stale_result(capsule);
        let mut progress = LinkProgress {
            consumed: 0,
            items: 0,
        };
        for &byte in input.iter().take(MAX_LINK_BYTES_PER_CALL) {
            if byte == 0 && out.room() < SIMPLE_RESPONSE_ROOM {
                // No room to answer what this delimiter would complete.
                break;
            }
            progress.consumed += 1;
            if let Some(item) = self.link_stream.push(byte) {
                progress.items += 1;
                self.handle_item(item, capsule, out, utc_ms);
                if progress.items >= MAX_LINK_ITEMS_PER_CALL {
                    break;
                }
            }
        }
        progress
    }

    fn handle_item(
        &mut self,
        item: StreamItem,
        capsule: &mut impl TelemetryCapsule,
        out: &mut impl LinkOutput,
        utc_ms: u64,
    ) {
        match item {
            StreamItem::Frame { frame, .. } => self.handle_frame(frame, capsule, out, utc_ms),
            StreamItem::Invalid { error, .. } => {
                let (request_kind, error) = nack_for(error);
                self.refuse(0, request_kind, error, out);
            }
        }
    }

    fn handle_frame(
        &mut self,
        frame: DecodedFrame,
        capsule: &mut impl TelemetryCapsule,
        out: &mut impl LinkOutput,
        utc_ms: u64,
    ) {
        let sequence = frame.sequence();
        let kind = frame.message.kind_code();
        let is_command = frame
            .kind()
            .is_some_and(|k| k.class() == MessageClass::Command);
        if !is_command {
            let error = if frame.kind().is_none() {
                ErrorCode::UnknownKind
            } else {
                ErrorCode::NoSupport
            };
            return self.refuse(sequence, kind, error, out);
        }
        let verdict: Result<(), ErrorCode> = match &frame.message {
            Message::GetStatus(_) => match capsule.status() {
                Ok(status) => {
                    send(out, sequence, 0, Message::StatusSnapshot(status));
                    return;
                }
                Err(e) => Err(e),
            },
            Message::GetServiceOutlook(_) => match capsule.service_outlook() {
                Ok(outlook) => {
                    send(out, sequence, 0, Message::ServiceOutlook(outlook));
                    return;
                }
                Err(e) => Err(e),
            },
            Message::ReadLog(request) => {
                self.serve_log(request.clone(), sequence, out, utc_ms);
                return;
            }
            Message::InstallPrescription(install) => {
                capsule.install_prescription(&install.signed_prescription)
            }
            Message::ClinicianBolus(_) | Message::PatientBolusRequest(_) => {
                // The dosing app decides; the answer follows its verdict.
                match self.post_request(&frame.message, sequence, kind, capsule, out) {
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            }
            Message::AuthenticatedCommand(command) => {
                match capsule.authenticated_command(&command.signed_command) {
                    Ok((_, 0)) => Ok(()),
                    // A bolus request: the answer waits for the dosing app.
                    Ok((_, ticket)) => {
                        self.await_verdict(ticket, sequence, kind, out);
                        return;
                    }
                    Err(e) => Err(e),
                }
            }
            Message::Refill(refill) => capsule.refill(refill),
            Message::Suspend(_) => capsule.suspend(),
            Message::Resume(_) => capsule.resume(),
            Message::AcknowledgeAlarm(ack) => capsule.acknowledge_alarm(ack.code),
            Message::ClearFault(clear) => capsule.clear_fault(clear.code),
            Message::SetClock(set) => capsule.set_clock(set.utc_time_ms),
            // Every command of this version is listed above.
            _ => Err(ErrorCode::NoSupport),
        };
        match verdict {
            Ok(()) => {
                send(out, sequence, 0, Message::Ack(Ack { request_kind: kind }));
            }
            Err(error) => self.refuse(sequence, kind, error, out),
        }
    }

    /// Posts a bolus request to the relay; the host's answer waits for the
    /// dosing app's verdict ([`TelemetryCore::service_relay`]).
    fn post_request(
        &mut self,
        message: &Message,
        sequence: u32,
        kind: u16,
        capsule: &mut impl TelemetryCapsule,
        out: &mut impl LinkOutput,
    ) -> Result<(), ErrorCode> {
        let mut payload = [0u8; RELAY_PAYLOAD_MAX_LEN];
        let len = message
            .encode_payload(&mut payload)
            .map_err(|_| ErrorCode::BadPayload)?;
        let ticket = capsule.relay_post(kind, payload.get(..len).unwrap_or_default())?;
        self.await_verdict(ticket, sequence, kind, out);
        Ok(())
    }

    /// Remembers the host's request whose answer waits for the dosing
    /// app's verdict under `ticket`.
    fn await_verdict(&mut self, ticket: u32, sequence: u32, kind: u16, out: &mut impl LinkOutput) {
        if let Some(lost) = self.pending.take() {
            // The capsule took a new request, so the earlier one is no
            // longer outstanding there and its verdict cannot come.
            self.refuse(lost.sequence, lost.kind, ErrorCode::NotReady, out);
        }
        self.pending = Some(PendingRequest {
            ticket,
            sequence,
            kind,
        });
    }

    /// Answers the host's relayed bolus request once the dosing app's
    /// verdict (or the capsule's `NotReady` for a request it did not answer
    /// in time) is in: `Ack`, or `Nack` with that error. Call it when the
    /// capsule signals an answer (upcall 5) and at every wake-up; one
    /// command per call. A result for another ticket (left from before a
    /// restart of this app) is read and dropped, so that the relay is free
    /// again. Without room in `out` for the answer the result stays in the
    /// capsule for the next call. Returns whether the host was answered.
    pub fn service_relay(
        &mut self,
        capsule: &mut impl TelemetryCapsule,
        out: &mut impl LinkOutput,
        _utc_ms: u64,
    ) -> bool {
        if !self.relay_flushed {
            self.flush_stale_result(capsule);
            return false;
        }
        if self.pending.is_some() && out.room() < SIMPLE_RESPONSE_ROOM {
            return false;
        }
        let Ok((ticket, verdict)) = capsule.relay_result() else {
            return false;
        };
        let Some(pending) = self.pending.filter(|p| p.ticket == ticket) else {
            return false;
        };
        self.pending = None;
        match verdict {
            Ok(()) => send(
                out,
                pending.sequence,
                0,
                Message::Ack(Ack {
                    request_kind: pending.kind,
                }),
            ),
            Err(error) => self.refuse(pending.sequence, pending.kind, error, out),
        }
        true
    }

    /// At the first call after start: a result waiting in the relay belongs
    /// to a request of an earlier life of this app; reading it frees the
    /// relay for new requests.
    fn flush_stale_result(&mut self, capsule: &mut impl TelemetryCapsule) {
        if !self.relay_flushed {
            self.relay_flushed = true;
            let _ = capsule.relay_result();
        }
    }

    fn refuse(
        &mut self,
        sequence: u32,
        request_kind: u16,
        error: ErrorCode,
        out: &mut impl LinkOutput,
    ) {
        self.stats.link_items_refused = self.stats.link_items_refused.saturating_add(1);
        send(
            out,
            sequence,
            0,
            Message::Nack(Nack {
                request_kind,
                error,
            }),
        );
    }

    /// Answers a `ReadLog`: stored frames from `from_sequence` on (with the
    /// `FROM_LOG` flag), at most [`MAX_LOG_CHUNK_FRAMES`] and what `out`
    /// holds, then a `LogChunkEnd`. A read from before the oldest stored
    /// frame first gets a `LogGap` naming the sequence numbers the log does
    /// not have. Stateless, so a host resumes a broken read by asking from
    /// the `next_sequence` it last received.
    fn serve_log(
        &mut self,
        request: ReadLog,
        sequence: u32,
        out: &mut impl LinkOutput,
        utc_ms: u64,
    ) {
        let max_frames = request.max_frames.min(MAX_LOG_CHUNK_FRAMES);
        let oldest = self.log.oldest_sequence();
        let mut next = request.from_sequence;
        let mut sent: u16 = 0;
        let mut item = [0u8; MAX_STREAM_FRAME_LEN];
        if let Some(oldest) = oldest.filter(|o| next < *o) {
            let gap = Frame {
                sequence: next,
                flags: flags::FROM_LOG,
                message: Message::LogGap(LogGap {
                    time_ms: utc_ms,
                    first_missing_sequence: next,
                    missing_count: oldest - next,
                }),
            };
            if sent < max_frames && fits(&gap, &mut item, out) {
                write_item(&gap, &mut item, out);
                sent += 1;
                next = oldest;
            }
        }
        let mut record = [0u8; RECORD_LEN];
        // Frames after an unreported gap would hide it: none then.
        let gap_unreported = oldest.is_some_and(|o| next < o);
        let mut cursor = if gap_unreported {
            None
        } else {
            self.log.first_at_or_after(next, &mut record)
        };
        while let Some(stored) = cursor {
            if sent >= max_frames {
                break;
            }
            let frame_bytes = record
                .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + stored.len)
                .unwrap_or_default();
            if let Ok(decoded) = decode_frame(frame_bytes) {
                let frame = Frame {
                    sequence: stored.sequence,
                    flags: decoded.header.flags | flags::FROM_LOG,
                    message: decoded.message,
                };
                if !fits(&frame, &mut item, out) {
                    break;
                }
                write_item(&frame, &mut item, out);
                sent += 1;
            }
            // A stored frame that no longer decodes is skipped; its number
            // shows as a hole to the host.
            next = stored.sequence.saturating_add(1);
            cursor = self.log.first_valid_from(stored.next_position, &mut record);
        }
        let more = self.log.first_at_or_after(next, &mut record).is_some();
        send(
            out,
            sequence,
            0,
            Message::LogChunkEnd(LogChunkEnd {
                next_sequence: next,
                oldest_sequence: oldest.unwrap_or(next),
                more,
            }),
        );
    }
}

/// Stores one capsule event, recording an unexplained sequence hole as a
/// `LogGap` first (under the first missing number, which the capsule never
/// used) and renumbering a frame whose sequence does not increase.
///
/// The log's numbers never wrap: after `u32::MAX` they saturate (about
/// four billion events, centuries at the capsule's rate), whereas the
/// protocol lets a pump wrap; a wrapped capsule counter is treated like a
/// lost one and renumbered.
fn store_event<S: LogStorage>(
    log: &mut PersistentLog<S>,
    expected: &mut Option<u32>,
    stats: &mut TelemetryStats,
    frame: &DecodedFrame,
    utc_ms: u64,
) {
    let received = frame.sequence();
    let sequence = match log.newest_sequence() {
        Some(newest) if received <= newest => {
            stats.frames_renumbered = stats.frames_renumbered.saturating_add(1);
            newest.saturating_add(1)
        }
        _ => received,
    };
    if let Some(first_missing) = expected.filter(|e| sequence > *e) {
        let gap = Frame {
            sequence: first_missing,
            flags: 0,
            message: Message::LogGap(LogGap {
                time_ms: utc_ms,
                first_missing_sequence: first_missing,
                missing_count: sequence - first_missing,
            }),
        };
        if append_frame(log, &gap).is_ok() {
            stats.gaps_recorded = stats.gaps_recorded.saturating_add(1);
        } else {
            stats.storage_errors = stats.storage_errors.saturating_add(1);
        }
    }
    let stored = Frame {
        sequence,
        flags: frame.header.flags,
        message: frame.message.clone(),
    };
    if append_frame(log, &stored).is_err() {
        // Not advancing `expected` makes the loss show as a gap later.
        stats.storage_errors = stats.storage_errors.saturating_add(1);
        return;
    }
    stats.frames_stored = stats.frames_stored.saturating_add(1);
    let mut next = sequence.saturating_add(1);
    if let Message::LogGap(gap) = &frame.message {
        // The capsule's own gap report explains the numbers it names.
        next = next.max(gap.first_missing_sequence.saturating_add(gap.missing_count));
    }
    *expected = Some(next);
}

fn append_frame<S: LogStorage>(
    log: &mut PersistentLog<S>,
    frame: &Frame,
) -> Result<(), StorageError> {
    let mut raw = [0u8; MAX_FRAME_LEN];
    let len = encode_frame(frame, &mut raw).map_err(|_| StorageError::OutOfRange)?;
    log.append(frame.sequence, raw.get(..len).unwrap_or_default())
}

/// The `Nack` for a stream item that is not a valid frame.
fn nack_for(error: FrameError) -> (u16, ErrorCode) {
    match error {
        FrameError::Payload { kind, .. } => (kind, ErrorCode::BadPayload),
        FrameError::BadCrc { .. } => (0, ErrorCode::BadCrc),
        FrameError::UnsupportedVersion { .. } => (0, ErrorCode::UnsupportedVersion),
        FrameError::Truncated { .. }
        | FrameError::BadMagic { .. }
        | FrameError::LengthMismatch { .. }
        | FrameError::TooLong { .. }
        | FrameError::Cobs
        | FrameError::BufferTooSmall { .. } => (0, ErrorCode::MalformedFrame),
    }
}

/// Whether `frame` plus a closing `LogChunkEnd` fit in `out`.
fn fits(frame: &Frame, item: &mut [u8; MAX_STREAM_FRAME_LEN], out: &impl LinkOutput) -> bool {
    encode_stream_frame(frame, item)
        .is_ok_and(|len| len.saturating_add(SIMPLE_RESPONSE_ROOM) <= out.room())
}

fn write_item(frame: &Frame, item: &mut [u8; MAX_STREAM_FRAME_LEN], out: &mut impl LinkOutput) {
    if let Ok(len) = encode_stream_frame(frame, item) {
        out.write(item.get(..len).unwrap_or_default());
    }
}

fn send(out: &mut impl LinkOutput, sequence: u32, flags: u8, message: Message) {
    let frame = Frame {
        sequence,
        flags,
        message,
    };
    let mut item = [0u8; MAX_STREAM_FRAME_LEN];
    if let Ok(len) = encode_stream_frame(&frame, &mut item) {
        if len <= out.room() {
            out.write(item.get(..len).unwrap_or_default());
        }
    }
}
