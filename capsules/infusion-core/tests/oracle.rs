//! The independent oracle (`oracle/mod.rs`) driven by proptest: arbitrary
//! sequences of commands from every app id (signed, forged, replayed and
//! plain), timer firings early, on time and late, fault inputs, encoder
//! pulses, storage faults and clean, torn and corrupted resets.
//!
//! `cargo test` runs a short version (`ORACLE_CASES`, default 256 cases of up
//! to 48 actions, each from a factory-new and from a running pump). For a
//! campaign: `ORACLE_CASES=5000 cargo test --release -p infusion-core --test
//! oracle`. The same oracle is the fuzz target `oracle` in `fuzz/`.
#[path = "oracle/model.rs"]
mod oracle;
mod support;

use oracle::{Action, Oracle, ACTION_BYTES};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn scenario() -> impl Strategy<Value = Vec<[u8; ACTION_BYTES]>> {
    prop::collection::vec(any::<[u8; ACTION_BYTES]>(), 1..48)
}

fn run(start: Oracle, chunks: &[[u8; ACTION_BYTES]]) -> Result<(), TestCaseError> {
    let mut o = start;
    let actions: Vec<Action> = chunks.iter().map(|c| Action::decode(c)).collect();
    o.run(&actions).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 4_000, ..ProptestConfig::default() })]

    /// The oracle's checks hold after every action of any scenario from a
    /// running pump (prescription 1, 10 mL).
    #[test]
    fn oracle_holds_from_a_running_pump(chunks in scenario()) {
        // Verifies: SR-RX-005, SR-ENV-003, SR-ENV-004, SR-ENV-005, SR-ENV-008,
        //   SR-ENV-010, SR-ALM-004, SR-MOT-005, SR-RES-001, SR-ROLE-003,
        //   SR-AUTH-002, SR-AUTH-003, SR-AUTH-004, SR-AUTH-005, SR-AUTH-006,
        //   SR-PER-001, SR-PER-003, SR-PER-004, SR-PER-007
        run(Oracle::running().map_err(TestCaseError::fail)?, &chunks)?;
    }

    /// The same from a factory-new pump (no prescription, empty reservoir).
    #[test]
    fn oracle_holds_from_a_factory_new_pump(chunks in scenario()) {
        // Verifies: SR-RX-005, SR-RES-001, SR-ROLE-003, SR-AUTH-002
        run(Oracle::new(), &chunks)?;
    }
}

/// The oracle names what it verifies; the list and the proptest agree.
#[test]
fn oracle_lists_the_requirements_it_checks() {
    assert!(oracle::VERIFIES.contains(&"SR-ENV-005"));
    assert_eq!(oracle::VERIFIES.len(), 20);
}

/// A scenario with every kind of action runs clean from a running pump:
/// the oracle itself is not the thing that fails.
#[test]
fn a_scenario_of_every_action_runs_clean() {
    let mut o = Oracle::running().unwrap();
    let mut all = Vec::new();
    for kind in 0u8..64 {
        let mut chunk = [0u8; ACTION_BYTES];
        chunk[0] = kind;
        chunk[4] = 0x40;
        chunk[5] = 0x10;
        all.push(Action::decode(&chunk));
    }
    o.run(&all).unwrap();
}

/// Found by this oracle (issue 20): on the board's one-record store, a
/// corrupted image restored as a new pump's empty 24 h window, so after the
/// clinic reinstalled and refilled, a day's basal before the loss plus
/// boluses after it went over the daily maximum in a real 24 h window; and
/// the signers' counters restarted at 0, so a recorded command could be
/// replayed. The restore now counts the hardware's daily maximum as
/// delivered and raises the counters to the pump's clock, as the
/// records-apart restore does.
#[test]
fn sr_per_007_a_corrupted_image_is_not_a_new_day() {
    // Verifies: SR-PER-007, SR-ENV-005, SR-AUTH-003
    use oracle::{Order, ResetKind, RxVariant, Seal};
    const HOUR: u64 = 3_600_000;
    let mut o = Oracle::running().unwrap();
    let mut script = vec![
        Action::Basal(50_000),
        Action::Wait {
            ms: 23 * HOUR,
            late_ms: 0,
            alive: true,
        },
        Action::Reset(ResetKind::Corrupt(100, 1)),
        // The replay of a command signed before the loss is refused.
        Action::Signed(Order::Suspend, Seal::Replayed(0)),
        Action::Install(RxVariant::Next),
        Action::Signed(Order::Refill(0, 10_000_000, true), Seal::Genuine),
        // Lost state comes back suspended: the clinic resumes.
        Action::Signed(Order::Resume, Seal::Genuine),
        Action::Basal(50_000),
    ];
    for _ in 0..4 {
        script.push(Action::Bolus(4, 100_000, 60_000));
        script.push(Action::Wait {
            ms: HOUR + 1,
            late_ms: 0,
            alive: true,
        });
    }
    o.run(&script).unwrap();
    // The day after the loss delivers again.
    o.run(&[
        Action::Wait {
            ms: 24 * HOUR,
            late_ms: 0,
            alive: true,
        },
        Action::Basal(50_000),
        Action::Wait {
            ms: HOUR,
            late_ms: 0,
            alive: true,
        },
    ])
    .unwrap();
    assert!(o.core.platform().step_times.len() > 23 * 200);
}

/// Found by this oracle's campaign of 2026-12-07 (run 7, after 1 843 614
/// executions): a pump that lost its image at the clock's origin, then was
/// reprogrammed, refilled and resumed by the clinic in the same millisecond,
/// accepted a patient bolus. The lost day was counted from 1 ms after the
/// restore, so at the restore's own instant the window was empty. It now
/// counts from that instant, and the oracle expects every bolus and step
/// refused for the 24 h the assumed day fills (it had kept the lost
/// bolus's start instead, which the requirement does not promise).
#[test]
fn sr_per_007_a_lost_image_refuses_a_bolus_in_the_restores_own_millisecond() {
    // Verifies: SR-PER-007, SR-ENV-004
    use oracle::{Order, ResetKind, RxVariant, Seal};
    const HOUR: u64 = 3_600_000;
    let mut o = Oracle::running().unwrap();
    let mut recovery = vec![
        Action::Bolus(4, 56_825, 5_794_201),
        Action::Reset(ResetKind::Corrupt(65_535, 255)),
        Action::Reset(ResetKind::Corrupt(65_535, 231)),
        Action::Install(RxVariant::NextPaired(2, 2_735_079)),
        Action::Signed(Order::Resume, Seal::Genuine),
        Action::Signed(Order::Refill(0, 8_980_326, true), Seal::Genuine),
    ];
    recovery.push(Action::Bolus(4, 56_825, 5_794_201));
    o.run(&recovery).unwrap();
    assert_eq!(o.core.bolus_remaining_nl(), 0, "the bolus was refused");
    assert!(o.core.platform().step_times.is_empty());
    // Still refused a moment before the day leaves the window, granted once
    // it has (the first bolus's lockout went with the image).
    o.run(&[
        Action::Wait {
            ms: 24 * HOUR - 1,
            late_ms: 0,
            alive: true,
        },
        Action::Bolus(4, 56_825, 5_794_201),
    ])
    .unwrap();
    assert_eq!(o.core.bolus_remaining_nl(), 0);
    o.run(&[
        Action::Wait {
            ms: 1,
            late_ms: 0,
            alive: true,
        },
        Action::Bolus(4, 56_825, 5_794_201),
    ])
    .unwrap();
    assert!(o.core.bolus_remaining_nl() > 0, "granted after the 24 h");
}

/// Found by this oracle (issue 20): a clinician bolus ended by a reset before
/// its first step was pruned from the ledger as an empty run, so a second
/// signed clinician bolus started at once, inside the signed minimum
/// interval. Boluses of both kinds now count from their start, steps or not.
/// A stop (basal rate 0) from the dosing app is accepted on a pump without a
/// prescription and moves nothing; a rate is refused. The libFuzzer
/// campaign of 2026-12-06 found the oracle calling the stop a basal rate
/// accepted without a prescription (an error of the oracle, not the core).
#[test]
fn sr_rx_005_a_stop_without_a_prescription_is_no_delivery() {
    // Verifies: SR-RX-005
    use oracle::Caller;
    let mut o = Oracle::new();
    o.run(&[
        Action::Wait {
            ms: 256,
            late_ms: 16_391,
            alive: false,
        },
        Action::Raw(Caller::Dosing, 2, 0, 838_860_800, 50),
        Action::Raw(Caller::Dosing, 2, 50_000, 0, 0),
        Action::Wait {
            ms: 3_600_000,
            late_ms: 0,
            alive: true,
        },
    ])
    .unwrap();
    assert_eq!(o.motor_steps(), 0);
}

/// A stall latched before the pump's state was lost goes with the record:
/// the lost state comes back suspended under the integrity alarm, and only
/// the clinic's recovery (a new prescription, a signed resume and a refill)
/// lets the motor run again. The libFuzzer campaign of 2026-12-06 found the
/// oracle still holding the forgotten latch against a bolus after that
/// recovery (an error of the oracle, not the core).
#[test]
fn sr_per_007_a_stall_latched_before_lost_state_needs_the_clinics_recovery() {
    // Verifies: SR-PER-007, SR-ALM-004
    use oracle::{Order, ResetKind, RxVariant, Seal};
    use pump_protocol::AlarmCode;
    let mut o = Oracle::running().unwrap();
    o.run(&[
        Action::FaultInput(AlarmCode::MotorStall, true),
        Action::Reset(ResetKind::Clean),
        Action::Reset(ResetKind::Corrupt(15_677, 179)),
        Action::Bolus(5, 296, 6_967_458),
        Action::Install(RxVariant::NextPaired(3, 5_014_400)),
        Action::Bolus(5, 296, 6_967_458),
        Action::Signed(Order::Resume, Seal::Genuine),
        Action::Signed(Order::Refill(0, 16_567_458, true), Seal::Genuine),
    ])
    .unwrap();
    assert_eq!(o.motor_steps(), 0, "nothing moves before the recovery");
    // The lost day counts as the hardware's maximum delivered (SR-PER-007).
    o.run(&[
        Action::Wait {
            ms: 25 * 3_600_000,
            late_ms: 0,
            alive: true,
        },
        Action::Basal(50_000),
        Action::Bolus(5, 296, 6_967_458),
        Action::Wait {
            ms: 3_600_000,
            late_ms: 0,
            alive: true,
        },
    ])
    .unwrap();
    assert!(o.motor_steps() > 0, "the recovered pump delivers");
}

#[test]
fn sr_auth_006_a_clinician_bolus_ended_by_a_reset_still_counts() {
    // Verifies: SR-AUTH-006
    use oracle::{Order, ResetKind, Seal};
    let mut o = Oracle::running().unwrap();
    o.run(&[
        Action::Signed(Order::ClinicianBolus(48, 5_361_920), Seal::Genuine),
        Action::Bolus(3, 816, 8_902_272),
        Action::Reset(ResetKind::Clean),
        Action::Signed(Order::ClinicianBolus(49, 2_053_120), Seal::Genuine),
        Action::Bolus(3, 216, 5_977_216),
    ])
    .unwrap();
}
