//! Hardware self-tests: the core's reaction to a failure and the arithmetic
//! of each test (`selftest.rs`, `pump/self_test.rs`).
mod support;

use infusion_core::selftest::{
    clock_drift_ppm, march_c_minus, ProgramCrc, RamWords, SelfTest, CLOCK_DRIFT_LIMIT_PPM,
};
use pump_protocol::{AlarmCode, AlarmPriority, ErrorCode, Message, PumpState};
use support::*;

#[test]
fn sr_sts_001_a_failed_self_test_stops_delivery_under_a_latched_high_alarm() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, HOUR_MS, true);
    drain(&mut core, HOUR_MS);
    let steps = core.platform().steps;
    assert!(steps > 0);
    core.on_self_test(SelfTest::Ram, Err(17), HOUR_MS);
    assert_eq!(core.pump_state(), PumpState::FaultStopped);
    assert!(!core.platform().motor_enabled);
    assert_eq!(
        infusion_core::alarms::priority_of(AlarmCode::SelfTestFailed),
        AlarmPriority::High
    );
    let events: Vec<Message> = drain(&mut core, HOUR_MS)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert!(events.iter().any(|m| matches!(m,
        Message::SelfTestFailed(f) if f.test == 1 && f.detail == 17)));
    assert!(events.iter().any(|m| matches!(m,
        Message::AlarmRaised(a) if a.code == AlarmCode::SelfTestFailed)));
    // No step and no new delivery while it stands.
    advance(&mut core, 2 * HOUR_MS, true);
    assert_eq!(core.platform().steps, steps);
    assert_eq!(
        core.set_basal(DOSING, 10_000, 2 * HOUR_MS),
        Err(ErrorCode::FaultActive)
    );
    // A pass of another test does not clear this one's failure.
    core.on_self_test(SelfTest::Clock, Ok(()), 2 * HOUR_MS);
    assert_eq!(
        core.clear_fault(TELEMETRY, AlarmCode::SelfTestFailed, 2 * HOUR_MS),
        Err(ErrorCode::InvalidArgument)
    );
    // A second test fails too; the clinic cannot clear until both pass.
    core.on_self_test(SelfTest::Clock, Err(5_000), 2 * HOUR_MS);
    core.on_self_test(SelfTest::Ram, Ok(()), 2 * HOUR_MS);
    assert_eq!(
        core.clear_fault(TELEMETRY, AlarmCode::SelfTestFailed, 2 * HOUR_MS),
        Err(ErrorCode::InvalidArgument)
    );
    // It survives a reset (the board's tests run again at boot).
    let mut core = reset(core, 3 * HOUR_MS);
    assert!(core.alarms().is_active(AlarmCode::SelfTestFailed));
    assert_eq!(core.pump_state(), PumpState::FaultStopped);
    core.on_self_test(SelfTest::Ram, Ok(()), 3 * HOUR_MS);
    core.on_self_test(SelfTest::Clock, Ok(()), 3 * HOUR_MS);
    core.clear_fault(TELEMETRY, AlarmCode::SelfTestFailed, 3 * HOUR_MS)
        .unwrap();
    assert_eq!(core.set_basal(DOSING, 10_000, 3 * HOUR_MS), Ok(()));
}

#[test]
fn sr_sts_001_passes_log_nothing() {
    let mut core = running(0);
    drain(&mut core, 0);
    let saves = core.platform().saves;
    for test in SelfTest::ALL {
        core.on_self_test(test, Ok(()), 0);
    }
    assert_eq!(core.platform().saves, saves);
    assert!(drain(&mut core, 0).is_empty());
    assert_eq!(core.pump_state(), PumpState::Running);
}

/// RAM with faults a March C− must find.
struct FaultyRam {
    words: Vec<u32>,
    /// Bits of word `.0` stuck at 1 (`.1`) and at 0 (`.2`).
    stuck: Option<(usize, u32, u32)>,
    /// Writing word `.0` inverts word `.1` (a coupling fault).
    coupled: Option<(usize, usize)>,
}

impl RamWords for FaultyRam {
    fn word_count(&self) -> usize {
        self.words.len()
    }
    fn read(&self, i: usize) -> u32 {
        let mut v = self.words[i];
        if let Some((w, ones, zeros)) = self.stuck {
            if w == i {
                v = (v | ones) & !zeros;
            }
        }
        v
    }
    fn write(&mut self, i: usize, value: u32) {
        self.words[i] = value;
        if let Some((aggressor, victim)) = self.coupled {
            if aggressor == i {
                self.words[victim] = !self.words[victim];
            }
        }
    }
}

fn ram(stuck: Option<(usize, u32, u32)>, coupled: Option<(usize, usize)>) -> FaultyRam {
    FaultyRam {
        words: vec![0xDEAD_BEEF; 64],
        stuck,
        coupled,
    }
}

#[test]
fn sr_sts_002_the_ram_test_finds_stuck_bits_and_coupled_words() {
    let mut good = [0x5555_5555u32; 64];
    assert_eq!(march_c_minus(&mut good[..]), Ok(()));
    assert_eq!(good, [0; 64]);
    assert_eq!(march_c_minus(&mut ram(None, None)), Ok(()));
    assert_eq!(march_c_minus(&mut ram(Some((5, 1 << 3, 0)), None)), Err(5));
    assert_eq!(
        march_c_minus(&mut ram(Some((63, 0, 1 << 31)), None)),
        Err(63)
    );
    // Coupling either way round is found at the victim.
    assert_eq!(march_c_minus(&mut ram(None, Some((3, 7)))), Err(7));
    assert_eq!(march_c_minus(&mut ram(None, Some((9, 2)))), Err(2));
}

#[test]
fn sr_sts_003_the_program_memory_crc_finds_a_changed_byte() {
    let mut flash = vec![0u8; 64 * 1024];
    for (i, b) in flash.iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    let mut crc = ProgramCrc::default();
    // No reference before the first whole pass.
    assert_eq!(crc.reference(), None);
    for pass in 0..3 {
        for slice in flash.chunks(4096) {
            crc.feed(slice);
        }
        assert_eq!(crc.finish_pass(), Ok(()), "pass {pass}");
    }
    let reference = crc.reference().unwrap();
    // One bit flips in the middle of the image.
    flash[40_000] ^= 0x10;
    for slice in flash.chunks(4096) {
        crc.feed(slice);
    }
    let found = crc.finish_pass().unwrap_err();
    assert_ne!(found, reference);
    // The reference does not move to the corrupted image, and the CRC found
    // is the one a fresh checker takes as its own reference for it.
    assert_eq!(crc.reference(), Some(reference));
    let mut fresh = ProgramCrc::default();
    for slice in flash.chunks(4096) {
        fresh.feed(slice);
    }
    assert_eq!(fresh.finish_pass(), Ok(()));
    assert_eq!(fresh.reference(), Some(found));
}

#[test]
fn sr_sts_004_the_clock_check_finds_a_timer_off_by_more_than_1000_ppm() {
    let day = 86_400_000u64;
    assert_eq!(CLOCK_DRIFT_LIMIT_PPM, 1_000);
    assert_eq!(clock_drift_ppm(day, day), 0);
    // 86.4 s a day either way is the limit.
    assert_eq!(clock_drift_ppm(day + 86_400, day), 1_000);
    assert_eq!(clock_drift_ppm(day - 86_400, day), 1_000);
    assert!(clock_drift_ppm(day + 86_401, day) > CLOCK_DRIFT_LIMIT_PPM);
    // A stopped timer, or one running twice as fast.
    assert_eq!(clock_drift_ppm(0, day), 1_000_000);
    assert_eq!(clock_drift_ppm(2 * day, day), 1_000_000);
    assert_eq!(clock_drift_ppm(5, 0), u32::MAX);
}

#[test]
fn sr_sts_001_each_test_has_its_wire_code() {
    let codes: Vec<u8> = SelfTest::ALL.iter().map(|t| t.code()).collect();
    assert_eq!(codes, [1, 2, 3, 4, 5, 6]);
    let mut core = running(0);
    drain(&mut core, 0);
    for test in SelfTest::ALL {
        core.on_self_test(test, Err(u32::from(test.code()) * 10), 0);
    }
    let logged: Vec<(u8, u32)> = drain(&mut core, 0)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::SelfTestFailed(f) => Some((f.test, f.detail)),
            _ => None,
        })
        .collect();
    assert_eq!(
        logged,
        [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 60)]
    );
}

#[test]
fn sr_sts_001_a_single_failure_clears_once_that_test_passes() {
    let mut core = running(0);
    core.on_self_test(SelfTest::Images, Err(1), 0);
    core.on_self_test(SelfTest::Images, Ok(()), MINUTE_MS);
    core.clear_fault(TELEMETRY, AlarmCode::SelfTestFailed, MINUTE_MS)
        .unwrap();
    assert_eq!(core.pump_state(), PumpState::Running);
}
