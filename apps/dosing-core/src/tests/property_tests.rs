//! Arbitrary interleavings of everything that can happen to the app.

use proptest::prelude::*;
use pump_protocol::{DeliveryKind, DeliveryOutcome, ErrorCode, Message, Refill, SetClock};
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

    // Verifies: SR-DOS-003
    // Verifies: SR-DOS-005
    // Verifies: SR-DOS-006
    #[test]
    fn any_interleaving_keeps_the_app_within_its_rules(ops in proptest::collection::vec(op(), 1..80)) {
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
