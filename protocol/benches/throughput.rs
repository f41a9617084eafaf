//! Throughput of the framed codec against plain postcard.
//!
//! Run with `cargo bench -p pump-protocol`. The workload is a deterministic,
//! realistic telemetry stream: mostly delivery records, status snapshots and
//! reservoir levels, with alarms, bolus events, battery reports and the odd
//! log gap or app fault mixed in, as a pump would send during a long log read.
//!
//! Four measurements over the same messages, in the same run:
//!
//! - framed encode: [`encode_stream_frame`] (header, postcard, CRC-32C, COBS,
//!   delimiters);
//! - framed decode: [`StreamDecoder::feed`] over the whole stream;
//! - plain encode: [`Message::encode_payload`] (postcard only);
//! - plain decode: [`Message::decode_payload`] (postcard only).
//!
//! The four are interleaved round by round and each one's best round is
//! reported (on a shared machine the best round is the least disturbed one).

use std::hint::black_box;
use std::time::{Duration, Instant};

use pump_protocol::{
    encode_stream_frame, AlarmAcknowledged, AlarmCleared, AlarmCode, AlarmPriority, AlarmRaised,
    AppFault, AppRestarted, BatteryState, DeliveryKind, DeliveryOutcome, DeliveryRecord, ErrorCode,
    Frame, LogGap, Message, PatientBolusDenied, PatientBolusGranted, PatientBolusRequested,
    PumpState, PumpStateChanged, ReservoirLevel, StatusSnapshot, StreamDecoder, StreamItem,
    MAX_PAYLOAD_LEN, MAX_STREAM_FRAME_LEN,
};

/// Frames in the workload.
const FRAMES: usize = 120_000;
/// Timed repetitions of each measurement.
const RUNS: usize = 15;

/// xorshift64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A day-long telemetry log, one frame per event, with a pump state evolving
/// plausibly: basal checkpoints every minute, status every five minutes,
/// reservoir levels every ten, and sporadic bolus, alarm and housekeeping
/// events.
fn workload() -> Vec<Frame> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut time_ms: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let mut reservoir_nl: u32 = 18_000_000; // 18 mL
    let mut delivered_24h_nl: u32 = 0;
    let mut boluses_24h: u8 = 0;
    let basal_rate_nl_per_h: u32 = 41_667; // ~1 mL/day
    let mut frames = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        time_ms += 60_000 + rng.below(500);
        let roll = rng.below(1000);
        let message = match roll {
            0..=549 => {
                let volume_nl = basal_rate_nl_per_h / 60 + rng.below(8) as u32;
                reservoir_nl = reservoir_nl.saturating_sub(volume_nl);
                delivered_24h_nl = delivered_24h_nl.wrapping_add(volume_nl) % 2_000_000;
                Message::DeliveryRecord(DeliveryRecord {
                    time_ms,
                    delivery_kind: DeliveryKind::Basal,
                    outcome: DeliveryOutcome::Checkpoint,
                    volume_nl,
                    duration_ms: 60_000,
                })
            }
            550..=749 => Message::StatusSnapshot(StatusSnapshot {
                time_ms,
                pump_state: PumpState::Running,
                prescription_serial: 7,
                basal_rate_nl_per_h,
                bolus_remaining_nl: if rng.below(10) == 0 { 12_500 } else { 0 },
                reservoir_nl,
                delivered_24h_nl,
                patient_boluses_24h: boluses_24h,
                top_alarm: if rng.below(20) == 0 {
                    Some(AlarmCode::ReservoirLow)
                } else {
                    None
                },
                refill_by_time_ms: Some(time_ms + u64::from(reservoir_nl / 42) * 3_600_000 / 1000),
            }),
            750..=879 => Message::ReservoirLevel(ReservoirLevel {
                time_ms,
                volume_nl: reservoir_nl,
                low_threshold_nl: 2_000_000,
            }),
            880..=904 => Message::PatientBolusRequested(PatientBolusRequested { time_ms }),
            905..=924 => {
                boluses_24h = (boluses_24h + 1) % 8;
                Message::PatientBolusGranted(PatientBolusGranted {
                    time_ms,
                    volume_nl: 25_000,
                    duration_ms: 300_000,
                    remaining_24h: 8 - boluses_24h,
                })
            }
            925..=934 => Message::PatientBolusDenied(PatientBolusDenied {
                time_ms,
                reason: ErrorCode::LockoutActive,
                lockout_remaining_ms: rng.below(3_600_000) as u32,
            }),
            935..=949 => Message::DeliveryRecord(DeliveryRecord {
                time_ms,
                delivery_kind: DeliveryKind::PatientBolus,
                outcome: DeliveryOutcome::Completed,
                volume_nl: 25_000,
                duration_ms: 300_000,
            }),
            950..=959 => Message::AlarmRaised(AlarmRaised {
                time_ms,
                code: AlarmCode::ReservoirLow,
                priority: AlarmPriority::Medium,
            }),
            960..=967 => Message::AlarmAcknowledged(AlarmAcknowledged {
                time_ms,
                code: AlarmCode::ReservoirLow,
                silence_duration_ms: 900_000,
            }),
            968..=975 => Message::AlarmCleared(AlarmCleared {
                time_ms,
                code: AlarmCode::ReservoirLow,
            }),
            976..=987 => Message::BatteryState(BatteryState {
                time_ms,
                voltage_mv: 2_900 + rng.below(300) as u16,
                charge_percent: 60 + rng.below(40) as u8,
                replacement_recommended: false,
            }),
            988..=991 => Message::PumpStateChanged(PumpStateChanged {
                time_ms,
                pump_state: PumpState::Running,
            }),
            992..=995 => Message::LogGap(LogGap {
                time_ms,
                first_missing_sequence: i as u32,
                missing_count: 1 + rng.below(4) as u32,
            }),
            996..=997 => Message::AppFault(AppFault {
                time_ms,
                app_id: 2,
                fault_code: 3,
            }),
            _ => Message::AppRestarted(AppRestarted {
                time_ms,
                app_id: 2,
                restart_count: 1 + rng.below(3) as u16,
            }),
        };
        frames.push(Frame {
            sequence: i as u32,
            flags: pump_protocol::flags::FROM_LOG,
            message,
        });
    }
    frames
}

/// How long one call of `f` takes.
fn time(f: &mut dyn FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

struct Figure {
    name: &'static str,
    frames: usize,
    bytes: usize,
    time: Duration,
}

impl Figure {
    fn frames_per_s(&self) -> f64 {
        self.frames as f64 / self.time.as_secs_f64()
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.time.as_secs_f64() / 1e6
    }

    fn print(&self) {
        println!(
            "{:<14} {:>9} frames {:>10} B {:>9.3} ms {:>12.0} frames/s {:>9.1} MB/s",
            self.name,
            self.frames,
            self.bytes,
            self.time.as_secs_f64() * 1e3,
            self.frames_per_s(),
            self.mb_per_s()
        );
    }
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep
    // that quick while still exercising the code.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut frames = workload();
    if quick {
        frames.truncate(1_000);
    }
    let n = frames.len();

    // Reference data, built once outside the timed loops.
    // Plain payloads back to back in one buffer (as a log of bare postcard
    // records would be), with each one's kind and extent alongside.
    let mut payloads: Vec<(u16, std::ops::Range<usize>)> = Vec::with_capacity(n);
    let mut payload_stream: Vec<u8> = Vec::with_capacity(n * 16);
    let mut stream: Vec<u8> = Vec::with_capacity(n * 48);
    let mut buf = [0u8; MAX_STREAM_FRAME_LEN];
    let mut payload_buf = [0u8; MAX_PAYLOAD_LEN];
    for frame in &frames {
        let len = frame
            .message
            .encode_payload(&mut payload_buf)
            .expect("payload fits");
        let start = payload_stream.len();
        payload_stream.extend_from_slice(&payload_buf[..len]);
        payloads.push((frame.message.kind_code(), start..payload_stream.len()));
        let len = encode_stream_frame(frame, &mut buf).expect("frame fits");
        stream.extend_from_slice(&buf[..len]);
    }
    let payload_bytes = payload_stream.len();

    // Correctness of the workload before timing it.
    let mut decoded = 0usize;
    StreamDecoder::new().feed(&stream, |item| match item {
        StreamItem::Frame { frame, .. } => {
            assert_eq!(frame.message, frames[decoded].message);
            decoded += 1;
        }
        StreamItem::Invalid { error, .. } => panic!("invalid item in workload: {error}"),
    });
    assert_eq!(decoded, n);

    let mut framed_encode = || {
        let mut total = 0usize;
        for frame in &frames {
            total += encode_stream_frame(black_box(frame), &mut buf).unwrap_or(0);
            black_box(&buf);
        }
        assert_eq!(total, stream.len());
    };
    let mut plain_encode = || {
        let mut total = 0usize;
        for frame in &frames {
            total += black_box(&frame.message)
                .encode_payload(&mut payload_buf)
                .unwrap_or(0);
            black_box(&payload_buf);
        }
        assert_eq!(total, payload_bytes);
    };
    let mut framed_decode = || {
        let mut count = 0usize;
        let mut decoder = StreamDecoder::new();
        decoder.feed(black_box(&stream), |item| {
            if let StreamItem::Frame { frame, .. } = item {
                black_box(&frame);
                count += 1;
            }
        });
        assert_eq!(count, n);
    };
    let mut plain_decode = || {
        let mut count = 0usize;
        let payload_stream = black_box(&payload_stream[..]);
        for (kind, range) in &payloads {
            let payload = payload_stream.get(range.clone()).unwrap_or_default();
            if let Ok(message) = Message::decode_payload(*kind, payload) {
                black_box(&message);
                count += 1;
            }
        }
        assert_eq!(count, n);
    };

    // Interleave the four measurements round by round, so that load from
    // other processes on a shared machine hits them alike, and keep each
    // one's best round.
    let mut times = [Duration::MAX; 4];
    for _ in 0..RUNS {
        for (slot, f) in times.iter_mut().zip([
            &mut framed_encode as &mut dyn FnMut(),
            &mut plain_encode,
            &mut framed_decode,
            &mut plain_decode,
        ]) {
            *slot = (*slot).min(time(f));
        }
    }
    let [framed_encode, plain_encode, framed_decode, plain_decode] = times;

    let figures = [
        Figure {
            name: "framed encode",
            frames: n,
            bytes: stream.len(),
            time: framed_encode,
        },
        Figure {
            name: "plain encode",
            frames: n,
            bytes: payload_bytes,
            time: plain_encode,
        },
        Figure {
            name: "framed decode",
            frames: n,
            bytes: stream.len(),
            time: framed_decode,
        },
        Figure {
            name: "plain decode",
            frames: n,
            bytes: payload_bytes,
            time: plain_decode,
        },
    ];
    println!(
        "pump-protocol throughput: {n} frames, {} stream bytes ({:.1} B/frame), {} payload bytes ({:.1} B/frame), best of {RUNS}",
        stream.len(),
        stream.len() as f64 / n as f64,
        payload_bytes,
        payload_bytes as f64 / n as f64,
    );
    for figure in &figures {
        figure.print();
    }
    let encode_ratio = figures[0].frames_per_s() / figures[1].frames_per_s();
    let decode_ratio = figures[2].frames_per_s() / figures[3].frames_per_s();
    println!(
        "framed/plain encode (frames/s): {:.0}%",
        encode_ratio * 100.0
    );
    println!(
        "framed/plain decode (frames/s): {:.0}% (target >= 50%)",
        decode_ratio * 100.0
    );
}
