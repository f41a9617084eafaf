//! The hourly self-tests the core runs itself (`selftest/periodic.rs`,
//! `selftest/cpu.rs`, `pump/self_test.rs`).
mod support;

use infusion_core::selftest::cpu::{check_vectors, cpu_check, Op, Vector, VECTORS};
use infusion_core::selftest::periodic::{
    SelfTestHardware, PROGRAM_PASS_RUNS, RAM_SLICE_WORDS, SELF_TEST_INTERVAL_MS,
};
use infusion_core::selftest::RamWords;
use pump_protocol::{AlarmCode, Message, PumpState};
use support::*;

/// A board's memory and second clock, with faults to inject.
struct Board {
    program: Vec<u8>,
    ram: Ram,
    /// The second clock runs at `rtc_ppm_fast` ppm fast of the timer.
    rtc_ppm_fast: i64,
    now_ms: u64,
}

struct Ram {
    words: Vec<u32>,
    /// Bits of word `.0` stuck at 1.
    stuck_high: Option<(usize, u32)>,
}

impl RamWords for Ram {
    fn word_count(&self) -> usize {
        self.words.len()
    }
    fn read(&self, i: usize) -> u32 {
        match self.stuck_high {
            Some((w, bits)) if w == i => self.words[i] | bits,
            _ => self.words[i],
        }
    }
    fn write(&mut self, i: usize, value: u32) {
        self.words[i] = value;
    }
}

impl SelfTestHardware for Board {
    type Ram = Ram;
    fn program_len(&self) -> u32 {
        self.program.len() as u32
    }
    fn read_program(&mut self, offset: u32, buf: &mut [u8]) {
        let at = offset as usize;
        buf.copy_from_slice(&self.program[at..at + buf.len()]);
    }
    fn ram(&mut self) -> &mut Ram {
        &mut self.ram
    }
    fn reference_clock_ms(&mut self) -> u64 {
        let t = self.now_ms as i64;
        (t + t * self.rtc_ppm_fast / 1_000_000) as u64
    }
}

fn board_hw() -> Board {
    Board {
        program: (0..100_003u32).map(|i| (i * 37 % 253) as u8).collect(),
        ram: Ram {
            words: (0..1000u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect(),
            stuck_high: None,
        },
        rtc_ppm_fast: 0,
        now_ms: 0,
    }
}

/// Follows the core's wake-ups up to `until` as a board does: the timer,
/// then the self-tests. Returns the instants a run happened.
fn follow(core: &mut Core, hw: &mut Board, until: u64) -> Vec<u64> {
    let mut runs = Vec::new();
    while let Some(t) = core.next_wakeup() {
        if t > until {
            break;
        }
        core.check_in(DOSING, t).unwrap();
        core.on_timer(t);
        hw.now_ms = t;
        if core.run_self_tests(hw, t) {
            runs.push(t);
        }
    }
    runs
}

fn self_test_failures(core: &mut Core, now: u64) -> Vec<(u8, u32)> {
    drain(core, now)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::SelfTestFailed(f) => Some((f.test, f.detail)),
            _ => None,
        })
        .collect()
}

#[test]
fn sr_sts_005_the_tests_run_every_hour_and_a_sound_board_passes() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    let mut hw = board_hw();
    let ram_before = hw.ram.words.clone();
    assert!(core.run_self_tests(&mut hw, 0));
    assert!(!core.run_self_tests(&mut hw, 1));
    let runs = follow(&mut core, &mut hw, 3 * DAY_MS);
    assert_eq!(runs.len(), 72, "{runs:?}");
    let mut last = 0;
    for t in runs {
        assert!(t - last <= SELF_TEST_INTERVAL_MS, "{last} -> {t}");
        last = t;
    }
    assert!(self_test_failures(&mut core, 3 * DAY_MS).is_empty());
    assert_eq!(core.pump_state(), PumpState::Running);
    // The RAM slices were walked and written back.
    assert_eq!(hw.ram.words, ram_before);
}

#[test]
fn sr_sts_005_an_idle_pump_still_wakes_for_them() {
    // Nothing to deliver and nothing to watch: no deadline until the board
    // first runs the tests, then one every hour.
    let mut core = fresh(0);
    let mut hw = board_hw();
    assert_eq!(core.next_wakeup(), None);
    core.run_self_tests(&mut hw, 0);
    assert_eq!(core.next_wakeup(), Some(SELF_TEST_INTERVAL_MS));
    core.on_timer(SELF_TEST_INTERVAL_MS);
    hw.now_ms = SELF_TEST_INTERVAL_MS;
    assert!(core.run_self_tests(&mut hw, SELF_TEST_INTERVAL_MS));
    assert_eq!(core.next_wakeup(), Some(2 * SELF_TEST_INTERVAL_MS));
}

#[test]
fn sr_sts_005_a_changed_program_byte_stops_delivery_within_a_day() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    let mut hw = board_hw();
    follow(&mut core, &mut hw, DAY_MS);
    drain(&mut core, DAY_MS);
    // The first pass was the reference; a bit flips in the last slice.
    let last = hw.program.len() - 1;
    hw.program[last] ^= 0x10;
    let runs = follow(&mut core, &mut hw, 2 * DAY_MS + 1);
    assert!(runs.len() >= PROGRAM_PASS_RUNS as usize);
    let found = self_test_failures(&mut core, 2 * DAY_MS + 1);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, 2);
    assert!(core.alarms().is_active(AlarmCode::SelfTestFailed));
    assert_eq!(core.pump_state(), PumpState::FaultStopped);
    assert!(!core.platform().motor_enabled);
}

#[test]
fn sr_sts_005_a_stuck_ram_bit_is_found_when_its_slice_comes() {
    let mut core = running(0);
    let mut hw = board_hw();
    let word = 3 * RAM_SLICE_WORDS + 5;
    hw.ram.stuck_high = Some((word, 1 << 9));
    let mut found = Vec::new();
    let mut t = 0;
    for _ in 0..4 {
        hw.now_ms = t;
        assert!(core.run_self_tests(&mut hw, t));
        found.extend(self_test_failures(&mut core, t));
        if found.is_empty() {
            assert!(!core.alarms().is_active(AlarmCode::SelfTestFailed));
        }
        t += SELF_TEST_INTERVAL_MS;
    }
    assert_eq!(found, [(1, word as u32)]);
    assert!(core.alarms().is_active(AlarmCode::SelfTestFailed));
    // The word is repaired (a transient upset). The sound slices after it
    // do not count as the test passing again: only a whole clean pass over
    // the region (8 slices here) lets the clinic clear the alarm.
    hw.ram.stuck_high = None;
    let slices = 1000usize.div_ceil(RAM_SLICE_WORDS);
    let mut cleared_after = None;
    for run in 4..4 + 2 * slices {
        hw.now_ms = t;
        core.run_self_tests(&mut hw, t);
        if core
            .clear_fault(TELEMETRY, AlarmCode::SelfTestFailed, t)
            .is_ok()
        {
            cleared_after = Some(run);
            break;
        }
        t += SELF_TEST_INTERVAL_MS;
    }
    // Runs 4..7 end the failed pass; runs 8..15 are the clean one.
    assert_eq!(cleared_after, Some(2 * slices - 1));
}

#[test]
fn sr_sts_005_a_drifting_timer_against_the_rtc_fails_the_clock_test() {
    for (ppm, fails) in [(900, false), (1_100, true), (-1_100, true)] {
        let mut core = running(0);
        let mut hw = board_hw();
        hw.rtc_ppm_fast = ppm;
        core.run_self_tests(&mut hw, 0);
        hw.now_ms = SELF_TEST_INTERVAL_MS;
        core.run_self_tests(&mut hw, SELF_TEST_INTERVAL_MS);
        let found = self_test_failures(&mut core, SELF_TEST_INTERVAL_MS);
        assert_eq!(
            found.iter().any(|f| f.0 == 3),
            fails,
            "{ppm} ppm: {found:?}"
        );
    }
    // A second clock that runs backwards is the largest drift.
    let mut core = running(0);
    let mut hw = board_hw();
    hw.now_ms = 2 * SELF_TEST_INTERVAL_MS;
    core.run_self_tests(&mut hw, 0);
    hw.now_ms = 0;
    core.run_self_tests(&mut hw, SELF_TEST_INTERVAL_MS);
    assert_eq!(
        self_test_failures(&mut core, SELF_TEST_INTERVAL_MS),
        [(3, u32::MAX)]
    );
}

#[test]
fn sr_sts_006_the_cpu_check_passes_and_finds_a_wrong_answer() {
    assert_eq!(cpu_check(), Ok(()));
    // Each vector is checked: a wrong answer anywhere is named.
    for i in 0..VECTORS.len() {
        let mut vectors = VECTORS;
        vectors[i].expected ^= 1 << (i % 64);
        assert_eq!(check_vectors(&vectors), Err(i as u32));
    }
    // Division by zero is an answer, never a panic.
    let div0 = [Vector {
        op: Op::Div,
        a: 1,
        b: 0,
        expected: 0,
    }];
    assert_eq!(check_vectors(&div0), Err(0));
}
