//! Arbitrary interleavings of everything that can happen to the app.

use proptest::prelude::*;
use pump_protocol::{DeliveryKind, DeliveryOutcome, ErrorCode, Message, Refill, SetClock};

use crate::{WakeReason, RETRY_INTERVAL_MS};
use pump_test_support::{RxBuilder, CHECKIN_TIMEOUT_MS, DAY_MS, UTC_2025_01_01_MS};

use super::fake::{config, Call, FakeCapsule};
use crate::{CatheterContents, DosingCore, Now, SavedState};

#[derive(Clone, Debug)]
enum Op {
    Wake,
    Advance(u64),
    JumpClock(i64),
    PatientBolus,
    ClinicianBolus(u32),
    Done(u8, u8, u32),
    Refill(bool),
    Install(bool),
    RefuseNext(u8),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Wake),
        4 => (1u64..6 * 3_600_000).prop_map(Op::Advance),
        1 => (-2 * DAY_MS as i64..2 * DAY_MS as i64).prop_map(Op::JumpClock),
        2 => Just(Op::PatientBolus),
        1 => (0u32..200).prop_map(Op::ClinicianBolus),
        2 => (0u8..6, 0u8..5, 0u32..200_000).prop_map(|(k, o, v)| Op::Done(k, o, v)),
        1 => any::<bool>().prop_map(Op::Refill),
        1 => any::<bool>().prop_map(Op::Install),
        1 => (0u8..4).prop_map(Op::RefuseNext),
        1 => Just(Op::Restart),
    ]
}

const REFUSALS: [ErrorCode; 4] = [
    ErrorCode::DailyLimitReached,
    ErrorCode::Busy,
    ErrorCode::ReservoirInsufficient,
    ErrorCode::LockoutActive,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_keeps_the_app_within_its_rules(ops in proptest::collection::vec(op(), 1..80)) {
        // Verifies: SR-DOS-003, SR-DOS-005, SR-DOS-006
        let flex = RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)]);
        let strong = RxBuilder::new(2).drug("baclofen", 2_000).steps(&[(0, 400), (600, 500)]);
        let rates_of = |rx: &RxBuilder| -> std::vec::Vec<u32> {
            rx.build().therapy.basal_steps.iter()
                .map(|s| crate::units::basal_rate_nl_per_h(s.rate_ug_per_day, rx.build().concentration_ug_per_ml).unwrap())
                .collect()
        };
        let mut allowed_rates = rates_of(&flex);
        allowed_rates.extend(rates_of(&strong));
        allowed_rates.push(0);
        let max_bolus = flex.build().envelope.max_bolus_nl;

        let mut capsule = FakeCapsule::new(Some(flex.signed()));
        let mut core = DosingCore::new(config(), SavedState::new(CatheterContents::Empty));
        let mut monotonic: u64 = 0;
        let mut utc_offset: i64 = 0;
        core.wake(&mut capsule, Now { monotonic_ms: 0, utc_ms: UTC_2025_01_01_MS });
        for op in ops {
            let now = |m: u64, off: i64| Now {
                monotonic_ms: m,
                utc_ms: (UTC_2025_01_01_MS as i64 + m as i64 + off) as u64,
            };
            capsule.clear_calls();
            match op {
                Op::Wake => { core.wake(&mut capsule, now(monotonic, utc_offset)); }
                Op::Advance(ms) => {
                    // The app is woken when it asked, if that comes first.
                    let wake = core.next_wakeup();
                    prop_assert!(wake.at_monotonic_ms > monotonic);
                    monotonic = wake.at_monotonic_ms.min(monotonic + ms);
                    core.wake(&mut capsule, now(monotonic, utc_offset));
                }
                Op::JumpClock(delta) => {
                    utc_offset += delta;
                    let utc = now(monotonic, utc_offset).utc_ms;
                    core.on_programmer_command(&Message::SetClock(SetClock { utc_time_ms: utc }), &mut capsule, now(monotonic, utc_offset));
                }
                Op::PatientBolus => { core.request_patient_bolus(&mut capsule, now(monotonic, utc_offset)); }
                Op::ClinicianBolus(dose) => { let _ = core.request_clinician_bolus(dose, 600_000, &mut capsule, now(monotonic, utc_offset)); }
                Op::Done(kind, outcome, volume) => {
                    capsule.bolus = None;
                    core.on_delivery_done(
                        DeliveryKind::from_code(u16::from(kind)),
                        DeliveryOutcome::from_code(u16::from(outcome)),
                        volume,
                        &mut capsule,
                        now(monotonic, utc_offset),
                    );
                }
                Op::Refill(strong_drug) => {
                    let concentration = if strong_drug { 2_000 } else { 500 };
                    core.on_programmer_command(&Message::Refill(Refill { withdrawn_volume_nl: 0, added_volume_nl: 1_000_000, concentration_ug_per_ml: concentration }), &mut capsule, now(monotonic, utc_offset));
                }
                Op::Install(strong_drug) => {
                    capsule.prescription = Some(if strong_drug { strong.signed() } else { flex.signed() });
                    capsule.basal_rate_nl_per_h = 0;
                    capsule.bolus = None;
                    core.wake(&mut capsule, now(monotonic, utc_offset));
                }
                Op::RefuseNext(i) => {
                    capsule.basal_answers.push_back(Err(REFUSALS[usize::from(i)]));
                    capsule.bolus_answers.push_back(Err(REFUSALS[usize::from(i)]));
                    core.wake(&mut capsule, now(monotonic, utc_offset));
                }
                Op::Restart => {
                    let saved = core.saved_state().clone();
                    core = DosingCore::new(config(), saved);
                    core.wake(&mut capsule, now(monotonic, utc_offset));
                }
            }
            // One entry point: one check-in, at most one rate and one bolus
            // asked for, only rates the prescriptions convert to, no bolus
            // over the envelope, and a wake-up within half the timeout.
            prop_assert_eq!(capsule.count(Call::CheckIn), 1);
            let sets = capsule.basal_sets();
            prop_assert!(sets.len() <= 1, "{:?}", sets);
            prop_assert!(sets.iter().all(|r| allowed_rates.contains(r)), "{:?}", sets);
            let boluses = capsule.boluses();
            prop_assert!(boluses.len() <= 1, "{:?}", boluses);
            // Flush chunks are sized to the envelope; a clinician bolus is
            // the programmer's, and the capsule judges it.
            prop_assert!(boluses.iter().all(|(k, v, d)| *v > 0 && *d > 0
                && (*k == DeliveryKind::ClinicianBolus || *v <= max_bolus)));
            let wake = core.next_wakeup();
            prop_assert!(wake.at_monotonic_ms > monotonic);
            prop_assert!(wake.at_monotonic_ms <= monotonic + u64::from(CHECKIN_TIMEOUT_MS) / 2);
        }
    }
}

#[derive(Clone, Debug)]
enum LifeOp {
    Any(Op),
    /// The capsule stops every delivery for a fault (the app is told by an
    /// `Aborted` upcall).
    Fault,
    /// The fault ends; the app is told only if `told` (a refill relayed by
    /// the telemetry app), else it must find out itself.
    FaultEnds {
        told: bool,
    },
    /// Whether the capsule answers the status command.
    StatusSupported(bool),
}

fn life_op() -> impl Strategy<Value = LifeOp> {
    prop_oneof![
        8 => op().prop_map(LifeOp::Any),
        1 => Just(LifeOp::Fault),
        1 => any::<bool>().prop_map(|told| LifeOp::FaultEnds { told }),
        1 => any::<bool>().prop_map(LifeOp::StatusSupported),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn wakeups_are_real_future_events_and_bounded_per_day(ops in proptest::collection::vec(life_op(), 1..60)) {
        // Verifies: SR-DOS-006, SR-DOS-012, SR-DOS-013
        let flex = RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)]);
        let strong = RxBuilder::new(2).drug("baclofen", 2_000).steps(&[(0, 400), (600, 500)]);
        // Minutes of the day at which some schedule has an edge.
        let edge_minutes: std::vec::Vec<u64> = [&flex, &strong]
            .iter()
            .flat_map(|rx| rx.build().therapy.basal_steps.iter().map(|s| u64::from(s.start_minute_of_day)).collect::<std::vec::Vec<_>>())
            .collect();
        let mut capsule = FakeCapsule::new(Some(flex.signed()));
        let mut core = DosingCore::new(config(), SavedState::new(CatheterContents::Unknown));
        let mut monotonic: u64 = 0;
        let mut utc_offset: i64 = 0;
        let now = |m: u64, off: i64| Now {
            monotonic_ms: m,
            utc_ms: (UTC_2025_01_01_MS as i64 + m as i64 + off) as u64,
        };
        let mut bolus_deadlines: std::vec::Vec<u64> = std::vec::Vec::new();
        // Every run a request replaces is reported as ended, even at the
        // same rate: the app's reaction to those upcalls must settle.
        capsule.report_replaced_runs = true;
        core.wake(&mut capsule, now(0, 0));
        for life in ops {
            capsule.clear_calls();
            match life {
                LifeOp::Any(op) => match op {
                    Op::Wake => { core.wake(&mut capsule, now(monotonic, utc_offset)); }
                    Op::Advance(ms) => {
                        let wake = core.next_wakeup();
                        monotonic = wake.at_monotonic_ms.min(monotonic + ms);
                        core.wake(&mut capsule, now(monotonic, utc_offset));
                    }
                    Op::JumpClock(delta) => {
                        utc_offset += delta;
                        let n = now(monotonic, utc_offset);
                        core.on_programmer_command(&Message::SetClock(SetClock { utc_time_ms: n.utc_ms }), &mut capsule, n);
                    }
                    Op::PatientBolus => { core.request_patient_bolus(&mut capsule, now(monotonic, utc_offset)); }
                    Op::ClinicianBolus(dose) => { let _ = core.request_clinician_bolus(dose, 600_000, &mut capsule, now(monotonic, utc_offset)); }
                    Op::Done(kind, outcome, volume) => {
                        capsule.bolus = None;
                        core.on_delivery_done(DeliveryKind::from_code(u16::from(kind)), DeliveryOutcome::from_code(u16::from(outcome)), volume, &mut capsule, now(monotonic, utc_offset));
                    }
                    Op::Refill(strong_drug) => {
                        let concentration = if strong_drug { 2_000 } else { 500 };
                        core.on_programmer_command(&Message::Refill(Refill { withdrawn_volume_nl: 0, added_volume_nl: 1_000_000, concentration_ug_per_ml: concentration }), &mut capsule, now(monotonic, utc_offset));
                    }
                    Op::Install(strong_drug) => {
                        capsule.prescription = Some(if strong_drug { strong.signed() } else { flex.signed() });
                        capsule.basal_rate_nl_per_h = 0;
                        capsule.bolus = None;
                        core.wake(&mut capsule, now(monotonic, utc_offset));
                    }
                    Op::RefuseNext(i) => {
                        capsule.basal_answers.push_back(Err(REFUSALS[usize::from(i)]));
                        capsule.bolus_answers.push_back(Err(REFUSALS[usize::from(i)]));
                        core.wake(&mut capsule, now(monotonic, utc_offset));
                    }
                    Op::Restart => {
                        let saved = core.saved_state().clone();
                        core = DosingCore::new(config(), saved);
                        core.wake(&mut capsule, now(monotonic, utc_offset));
                    }
                },
                LifeOp::Fault => {
                    capsule.fault = Some(ErrorCode::FaultActive);
                    capsule.basal_rate_nl_per_h = 0;
                    capsule.bolus = None;
                    core.on_delivery_done(DeliveryKind::Basal, DeliveryOutcome::Aborted, 0, &mut capsule, now(monotonic, utc_offset));
                }
                LifeOp::FaultEnds { told } => {
                    capsule.fault = None;
                    if told {
                        core.on_programmer_command(&Message::Refill(Refill { withdrawn_volume_nl: 0, added_volume_nl: 1_000_000, concentration_ug_per_ml: 500 }), &mut capsule, now(monotonic, utc_offset));
                    }
                }
                LifeOp::StatusSupported(supported) => capsule.status_supported = supported,
            }
            let mut upcalls = 0;
            while let Some((kind, outcome)) = capsule.upcalls.pop_front() {
                upcalls += 1;
                prop_assert!(upcalls <= 8, "upcalls never settle: {:?}", capsule.basal_sets());
                core.on_delivery_done(kind, outcome, 0, &mut capsule, now(monotonic, utc_offset));
            }
            prop_assert!(capsule.basal_sets().len() <= 2, "{:?}", capsule.basal_sets());
            for (_, _, duration_ms) in capsule.boluses() {
                bolus_deadlines.push(monotonic + u64::from(duration_ms) + crate::BOLUS_END_GRACE_MS);
            }
            // The next wake-up lies ahead, and less than a second ahead only
            // for a real deadline that close.
            let wake = core.next_wakeup();
            prop_assert!(wake.at_monotonic_ms > monotonic);
            let ahead = wake.at_monotonic_ms - monotonic;
            if ahead < crate::MIN_CHECKIN_PERIOD_MS {
                let n = now(monotonic, utc_offset);
                let real = match wake.reason {
                    WakeReason::ScheduleEdge => {
                        let utc = n.utc_ms + ahead;
                        utc % 60_000 == 0 && edge_minutes.contains(&(utc % DAY_MS / 60_000))
                    }
                    WakeReason::LockoutEnd => {
                        u64::from(core.own_patient_bolus_status(n).lockout_remaining_ms) == ahead
                    }
                    WakeReason::BolusEnd => bolus_deadlines.contains(&wake.at_monotonic_ms),
                    WakeReason::Retry => core
                        .refusals()
                        .any(|r| r.at_monotonic_ms + RETRY_INTERVAL_MS == wake.at_monotonic_ms),
                    WakeReason::Watchdog | WakeReason::Idle => false,
                };
                prop_assert!(real, "{:?} {} ms ahead is no real deadline", wake.reason, ahead);
            }
        }
        // Left alone for a simulated day, whatever state it is in, the app
        // wakes a bounded number of times.
        let half = u64::from(CHECKIN_TIMEOUT_MS) / 2;
        let bound = DAY_MS / half + 2 * 24 + DAY_MS / RETRY_INTERVAL_MS + 8;
        let end = monotonic + DAY_MS;
        let mut wakes = 0u64;
        loop {
            let wake = core.next_wakeup();
            prop_assert!(wake.at_monotonic_ms > monotonic);
            if wake.at_monotonic_ms > end {
                break;
            }
            monotonic = wake.at_monotonic_ms;
            core.wake(&mut capsule, now(monotonic, utc_offset));
            wakes += 1;
            prop_assert!(wakes <= bound, "more than {} wake-ups in a day", bound);
        }
    }
}
