//! The bounded telemetry event queue (SR-EVT-001, SR-EVT-002).

use heapless::Deque;
use pump_protocol::{encode_stream_frame, Frame, LogGap, Message, MAX_STREAM_FRAME_LEN};

/// Most events the queue holds before it drops the oldest.
pub const EVENT_QUEUE_LEN: usize = 32;

macro_rules! events {
    ($($variant:ident),* $(,)?) => {
        /// A telemetry event the capsule emits: the protocol's event
        /// payloads, without the protocol's large command variants, so the
        /// queue stays small.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Event {
            $(
                #[doc = concat!("See [`pump_protocol::", stringify!($variant), "`].")]
                $variant(pump_protocol::$variant),
            )*
        }

        impl Event {
            /// The protocol message for this event.
            pub fn to_message(&self) -> Message {
                match self {
                    $( Event::$variant(e) => Message::$variant(e.clone()), )*
                }
            }
        }
    };
}

events!(
    StatusSnapshot,
    DeliveryRecord,
    PatientBolusRequested,
    PatientBolusGranted,
    PatientBolusDenied,
    AlarmRaised,
    AlarmAcknowledged,
    AlarmCleared,
    ReservoirLevel,
    ReservoirRefilled,
    BatteryState,
    AppFault,
    AppRestarted,
    LogGap,
    DeliveryDenied,
    AccessDenied,
    PrescriptionInstalled,
    PrescriptionRejected,
    ClockSet,
    PumpStateChanged,
    CommandAuthenticated,
    CommandRefused,
    RefillDiscrepancy,
    AccessDeniedRepeated,
    KernelStarted,
    SelfTestFailed,
);

/// A queued event and its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequenced {
    /// Sequence number, assigned when the event was raised.
    pub sequence: u32,
    /// The event.
    pub event: Event,
}

/// A bounded FIFO of events. Pushing never fails and never blocks: when full,
/// the oldest event is dropped and the loss is recorded, so the consumer gets
/// a [`LogGap`] that names exactly the lost sequence numbers.
#[derive(Clone, Debug, Default)]
pub struct EventQueue {
    queue: Deque<Sequenced, EVENT_QUEUE_LEN>,
    next_sequence: u32,
    /// `(first lost sequence, count, time noticed)` not yet reported.
    gap: Option<(u32, u32, u64)>,
}

impl EventQueue {
    /// An empty queue whose first event gets `next_sequence`.
    pub fn starting_at(next_sequence: u32) -> Self {
        Self {
            queue: Deque::new(),
            next_sequence,
            gap: None,
        }
    }

    /// The sequence number the next event will get.
    pub fn next_sequence(&self) -> u32 {
        self.next_sequence
    }

    /// Events waiting (a pending gap report counts as one).
    pub fn len(&self) -> usize {
        self.queue.len() + usize::from(self.gap.is_some())
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues an event, dropping the oldest if full.
    pub fn push(&mut self, event: Event, time_ms: u64) {
        if self.queue.is_full() {
            if let Some(dropped) = self.queue.pop_front() {
                self.gap = Some(match self.gap {
                    Some((first, count, _)) => (first, count.saturating_add(1), time_ms),
                    None => (dropped.sequence, 1, time_ms),
                });
            }
        }
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        // Cannot fail: a slot was freed above if the queue was full.
        let _ = self.queue.push_back(Sequenced { sequence, event });
    }

    /// Takes the oldest item. A pending gap comes first, as a `LogGap` that
    /// carries the first lost sequence number (that number is otherwise
    /// unused, so sequence numbers stay unique and increasing).
    pub fn pop(&mut self) -> Option<Sequenced> {
        if let Some((first, count, time_ms)) = self.gap.take() {
            return Some(Sequenced {
                sequence: first,
                event: Event::LogGap(LogGap {
                    time_ms,
                    first_missing_sequence: first,
                    missing_count: count,
                }),
            });
        }
        self.queue.pop_front()
    }

    /// The oldest item without removing it.
    pub fn peek(&self) -> Option<Sequenced> {
        if let Some((first, count, time_ms)) = self.gap {
            return Some(Sequenced {
                sequence: first,
                event: Event::LogGap(LogGap {
                    time_ms,
                    first_missing_sequence: first,
                    missing_count: count,
                }),
            });
        }
        self.queue.front().cloned()
    }

    /// Writes as many whole stream-encoded frames as fit into `buf`, removing
    /// only those written. Returns `(bytes written, frames written)`.
    pub fn drain_into(&mut self, buf: &mut [u8]) -> (usize, usize) {
        let mut written = 0;
        let mut frames = 0;
        let mut scratch = [0u8; MAX_STREAM_FRAME_LEN];
        while let Some(item) = self.peek() {
            let frame = Frame {
                sequence: item.sequence,
                flags: 0,
                message: item.event.to_message(),
            };
            let Ok(len) = encode_stream_frame(&frame, &mut scratch) else {
                // Event payloads are far below the frame limit; an encode
                // failure would be a bug, and dropping it keeps the queue
                // moving. The sequence hole shows on the host.
                let _ = self.pop();
                continue;
            };
            let Some(dst) = buf.get_mut(written..written + len) else {
                break;
            };
            dst.copy_from_slice(&scratch[..len]);
            written += len;
            frames += 1;
            let _ = self.pop();
        }
        (written, frames)
    }
}
