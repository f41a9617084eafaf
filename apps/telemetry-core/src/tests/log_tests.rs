use std::vec::Vec;

use proptest::prelude::*;
use pump_protocol::{flags, LogChunkEnd, LogChunkEnd as End, LogGap, Message, ReadLog};

use super::fake::{host_frame, record, FakeCapsule, MemStorage, VecOutput};
use crate::TelemetryCore;

pub struct Rig {
    pub core: TelemetryCore<MemStorage>,
    pub storage: MemStorage,
    pub capsule: FakeCapsule,
}

pub const UTC_MS: u64 = 1_735_689_600_000;

impl Rig {
    /// A rig over `pages` erased pages of `fake::TEST_PAGE_BYTES`.
    pub fn new(pages: usize) -> Self {
        let storage = MemStorage::new(pages);
        Self {
            core: TelemetryCore::new(storage.clone()),
            storage,
            capsule: FakeCapsule::new(),
        }
    }

    /// A reset of the telemetry app: a new core over the same storage.
    pub fn reset(&mut self) {
        self.core = TelemetryCore::new(self.storage.clone());
    }

    pub fn drain_all(&mut self) {
        for _ in 0..1000 {
            let report = self.core.drain_capsule(&mut self.capsule, UTC_MS).unwrap();
            if report.pending == 0 {
                return;
            }
        }
        panic!("capsule never drained");
    }

    /// Sends `input` in as many calls as the core needs; returns the output.
    pub fn exchange(&mut self, input: &[u8], room: usize) -> VecOutput {
        let mut out = VecOutput::with_room(room);
        let mut rest = input;
        while !rest.is_empty() {
            let progress = self
                .core
                .service_link(rest, &mut self.capsule, &mut out, UTC_MS);
            assert!(progress.consumed > 0, "link stalled");
            rest = &rest[progress.consumed..];
        }
        // A wake-up: a relay answer waiting goes out too.
        self.core.service_relay(&mut self.capsule, &mut out, UTC_MS);
        out
    }

    /// One `ReadLog`: the frames (sequence, message; all FROM_LOG) and the chunk end.
    pub fn read_log(
        &mut self,
        from_sequence: u32,
        max_frames: u16,
        room: usize,
    ) -> (Vec<(u32, Message)>, End) {
        let request = host_frame(
            77,
            Message::ReadLog(ReadLog {
                from_sequence,
                max_frames,
            }),
        );
        let out = self.exchange(&request, room);
        let mut frames = out.frames();
        let (end_sequence, _, end) = frames.pop().expect("a chunk end");
        assert_eq!(end_sequence, 77);
        let Message::LogChunkEnd(end) = end else {
            panic!("chunk must end with LogChunkEnd, got {end:?}");
        };
        let frames = frames
            .into_iter()
            .map(|(sequence, f, message)| {
                assert_eq!(f & flags::FROM_LOG, flags::FROM_LOG);
                (sequence, message)
            })
            .collect();
        (frames, end)
    }

    /// Every stored frame, read in chunks from `from`.
    pub fn read_all(&mut self, from: u32) -> Vec<(u32, Message)> {
        let mut all = Vec::new();
        let mut next = from;
        for _ in 0..10_000 {
            let (frames, end) = self.read_log(next, 16, 64 * 1024);
            all.extend(frames);
            next = end.next_sequence;
            if !end.more {
                return all;
            }
        }
        panic!("log read never ended");
    }
}

fn sequences(frames: &[(u32, Message)]) -> Vec<u32> {
    frames.iter().map(|(s, _)| *s).collect()
}

#[test]
fn sr_tel_001_drained_events_survive_a_reset_of_the_app() {
    let mut rig = Rig::new(64);
    rig.capsule.queue_records(0..10);
    rig.drain_all();
    rig.reset();
    rig.capsule.queue_records(10..15);
    rig.drain_all();
    rig.reset();
    let frames = rig.read_all(0);
    assert_eq!(sequences(&frames), (0..15).collect::<Vec<_>>());
    for (sequence, message) in &frames {
        assert_eq!(*message, record(*sequence));
    }
    assert_eq!(rig.core.stats().gaps_recorded, 0);
}

#[test]
fn sr_tel_001_a_drain_is_bounded() {
    let mut rig = Rig::new(256);
    rig.capsule.queue_records(0..100);
    let report = rig.core.drain_capsule(&mut rig.capsule, UTC_MS).unwrap();
    assert!(report.frames_stored > 0 && report.frames_stored < 100);
    assert_eq!(report.pending, 100 - report.frames_stored);
    rig.drain_all();
    assert_eq!(sequences(&rig.read_all(0)), (0..100).collect::<Vec<_>>());
}

#[test]
fn sr_tel_002_a_sequence_hole_is_recorded_as_a_gap() {
    let mut rig = Rig::new(64);
    rig.capsule.queue_records([0, 1, 2, 5, 6]);
    rig.drain_all();
    let frames = rig.read_all(0);
    assert_eq!(sequences(&frames), [0, 1, 2, 3, 5, 6]);
    assert_eq!(
        frames[3].1,
        Message::LogGap(LogGap {
            time_ms: UTC_MS,
            first_missing_sequence: 3,
            missing_count: 2,
        })
    );
    // The hole is noticed across a reset of the app too.
    rig.reset();
    rig.capsule.queue_records([9]);
    rig.drain_all();
    let frames = rig.read_all(7);
    assert_eq!(sequences(&frames), [7, 9]);
    assert!(matches!(
        frames[0].1,
        Message::LogGap(LogGap {
            first_missing_sequence: 7,
            missing_count: 2,
            ..
        })
    ));
}

#[test]
fn sr_tel_002_the_capsules_gap_report_is_kept_and_explains_its_hole() {
    let mut rig = Rig::new(64);
    rig.capsule.queue_records([0, 1, 2]);
    let gap = Message::LogGap(LogGap {
        time_ms: 5,
        first_missing_sequence: 3,
        missing_count: 4,
    });
    rig.capsule.events.push_back((3, gap.clone()));
    rig.capsule.queue_records([7, 8]);
    rig.drain_all();
    let frames = rig.read_all(0);
    assert_eq!(sequences(&frames), [0, 1, 2, 3, 7, 8]);
    assert_eq!(frames[3].1, gap);
    assert_eq!(rig.core.stats().gaps_recorded, 0);
}

#[test]
fn sr_tel_002_a_read_older_than_the_ring_says_what_was_overwritten() {
    // Two pages: the third page opened reuses the first, erasing its records.
    let mut rig = Rig::new(2);
    rig.capsule.queue_records(0..60);
    rig.drain_all();
    let stats = rig.core.log().stats();
    assert_eq!(stats.pages_erased, 1);
    let erased = stats.records_erased;
    assert!(erased > 0 && erased < 60, "{stats:?}");
    let (frames, end) = rig.read_log(0, 16, 64 * 1024);
    assert_eq!(
        sequences(&frames),
        core::iter::once(0)
            .chain(erased..erased + 15)
            .collect::<Vec<_>>()
    );
    assert!(matches!(
        frames[0].1,
        Message::LogGap(LogGap {
            first_missing_sequence: 0,
            missing_count,
            ..
        }) if missing_count == erased
    ));
    assert_eq!(end.oldest_sequence, erased);
    assert!(end.more);
    // From inside the ring: no gap.
    let (frames, _) = rig.read_log(55, 16, 64 * 1024);
    assert_eq!(sequences(&frames), [55, 56, 57, 58, 59]);
    // The same after a reset of the app.
    rig.reset();
    assert_eq!(rig.core.log().oldest_sequence(), Some(erased));
    let (frames, _) = rig.read_log(0, 16, 64 * 1024);
    assert_eq!(frames.len(), 16);
    assert_eq!(frames[1].0, erased);
}

#[test]
fn sr_tel_003_reads_are_chunked_and_resume_after_a_broken_link() {
    let mut rig = Rig::new(64);
    rig.capsule.queue_records(0..40);
    rig.drain_all();
    // The host asks for everything: it gets one bounded chunk.
    let (frames, end) = rig.read_log(0, 1000, 64 * 1024);
    assert_eq!(frames.len(), crate::MAX_LOG_CHUNK_FRAMES as usize);
    assert_eq!(end.next_sequence, 16);
    assert!(end.more);
    // The link breaks before the host sees the next chunk; it asks again
    // from where it was, and again, until the end.
    let _lost = rig.read_log(16, 10, 64 * 1024);
    let mut got = sequences(&frames);
    let mut next = 16;
    loop {
        let (frames, end) = rig.read_log(next, 10, 64 * 1024);
        got.extend(sequences(&frames));
        next = end.next_sequence;
        if !end.more {
            break;
        }
    }
    assert_eq!(got, (0..40).collect::<Vec<_>>());
    // Past the end: nothing, and nothing more.
    let (frames, end) = rig.read_log(40, 10, 64 * 1024);
    assert!(frames.is_empty());
    assert_eq!(
        end,
        LogChunkEnd {
            next_sequence: 40,
            oldest_sequence: 0,
            more: false
        }
    );
}

#[test]
fn sr_tel_003_a_chunk_stops_at_the_room_the_link_has() {
    let mut rig = Rig::new(64);
    rig.capsule.queue_records(0..10);
    rig.drain_all();
    let (frames, end) = rig.read_log(0, 16, 300);
    assert!(!frames.is_empty() && frames.len() < 10);
    assert_eq!(end.next_sequence, frames.len() as u32);
    assert!(end.more);
}

#[test]
fn sr_tel_001_a_torn_record_reads_as_a_hole() {
    let mut rig = Rig::new(16);
    rig.capsule.queue_records(0..6);
    rig.drain_all();
    // Record 3 damaged (its frame, not its length word).
    let mut buf = [0u8; crate::RECORD_LEN];
    let at = rig
        .core
        .log()
        .first_at_or_after(3, &mut buf)
        .unwrap()
        .position as u32;
    rig.storage
        .flash
        .with(|f| f.image_mut()[at as usize + 20] ^= 0xA5);
    rig.reset();
    assert_eq!(sequences(&rig.read_all(0)), [0, 1, 2, 4, 5]);
    rig.capsule.queue_records(6..8);
    rig.drain_all();
    assert_eq!(sequences(&rig.read_all(0)), [0, 1, 2, 4, 5, 6, 7]);
}

#[test]
fn sr_tel_002_a_capsule_that_lost_its_counter_is_renumbered_not_dropped() {
    let mut rig = Rig::new(64);
    rig.capsule.queue_records(0..5);
    rig.drain_all();
    // The capsule's state was lost: it counts from 0 again.
    rig.capsule.events.push_back((0, record(100)));
    rig.capsule.events.push_back((1, record(101)));
    rig.drain_all();
    let frames = rig.read_all(0);
    assert_eq!(sequences(&frames), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(frames[5].1, record(100));
    assert_eq!(frames[6].1, record(101));
    assert_eq!(rig.core.stats().frames_renumbered, 2);
}

proptest! {
    // Verifies: SR-TEL-002
    #[test]
    fn every_sequence_number_is_either_stored_or_reported_missing(
        steps in proptest::collection::vec(1u32..4, 1..120),
        pages in 2usize..6,
        resets in proptest::collection::vec(any::<bool>(), 120),
    ) {
        let mut rig = Rig::new(pages);
        let mut sequence = 0u32;
        let mut sent = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            rig.capsule.queue_records([sequence]);
            sent.push(sequence);
            sequence += step;
            if resets[i] {
                rig.reset();
            }
            rig.drain_all();
        }
        // Reading from 0 covers 0..=last: every number is a stored frame or
        // inside a LogGap's range, in increasing order, with no overlaps.
        let frames = rig.read_all(0);
        let mut covered = 0u32;
        for (seq, message) in &frames {
            prop_assert_eq!(*seq, covered);
            match message {
                Message::LogGap(gap) => {
                    prop_assert_eq!(gap.first_missing_sequence, *seq);
                    prop_assert!(gap.missing_count > 0);
                    covered = seq + gap.missing_count;
                }
                other => {
                    prop_assert_eq!(other, &record(*seq));
                    prop_assert!(sent.contains(seq));
                    covered = seq + 1;
                }
            }
        }
        prop_assert_eq!(covered, *sent.last().unwrap() + 1);
    }
}
