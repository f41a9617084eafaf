//! Time and steps: the capsule's timer firing late (or early) never releases
//! more than the envelope's rate, and the 24 h ledger counts every step at
//! the time it was actually made (issue 17, section 4).
mod support;

use infusion_core::ledger::WINDOW_MS;
use proptest::prelude::*;
use pump_protocol::DeliveryKind;
use support::*;

/// Volume of the steps in `times` made in the 24 h window ending at `now`.
fn actual_window_nl(times: &[u64], now: u64) -> u64 {
    let from = now.checked_sub(WINDOW_MS);
    let steps = times
        .iter()
        .filter(|&&t| t <= now && from.is_none_or(|from| t > from))
        .count();
    steps as u64 * u64::from(NL_PER_STEP)
}

/// Fires the timer at `now`, as the glue does: again at once for as long as
/// the core asks to be woken at (or before) `now`. Returns the wake-ups.
fn fire(core: &mut Core, now: u64) -> u32 {
    core.platform_mut().now_ms = now;
    let mut wakeups = 0;
    loop {
        core.on_timer(now);
        wakeups += 1;
        if core.next_wakeup().is_none_or(|t| t > now) || wakeups > 10_000 {
            return wakeups;
        }
    }
}

/// Verifies: SR-ENV-010, SR-ENV-005. The finding of issue 17 §4: a basal of
/// 50 000 nL/h whose timer fires two days late. The old core made all 9 600
/// overdue steps (2.4 mL) at that instant against a 1.5 mL/24 h limit,
/// reported 1.2 mL delivered (the steps counted at their ideal times) and
/// granted a further bolus.
#[test]
fn sr_env_010_a_timer_two_days_late_makes_one_step_not_the_missed_ones() {
    let mut core = running(0);
    core.platform_mut().record_step_times = true;
    core.set_basal(DOSING, 50_000, 0).unwrap();
    let late = 2 * DAY_MS;
    core.check_in(DOSING, late).unwrap();
    fire(&mut core, late);
    let times = core.platform().step_times.clone();
    let at_once = times.iter().filter(|&&t| t == late).count();
    let actual = actual_window_nl(&times, late);
    let limit = u64::from(envelope().max_volume_per_24h_nl);
    // No burst: one step, the one that was due, not the 9 599 missed ones.
    assert_eq!(at_once, 1, "{at_once} steps at one instant");
    assert!(actual <= limit, "{actual} nL in 24 h, limit {limit}");
    // The ledger counts what was made, when it was made.
    assert_eq!(core.delivered_24h_nl(late), actual);
    // A bolus the core grants keeps the real 24 h total within the limit.
    let bolus_nl = 100_000;
    let granted = core
        .start_bolus(DOSING, DeliveryKind::ClinicianBolus, bolus_nl, 60_000, late)
        .is_ok();
    if granted {
        assert!(actual + u64::from(bolus_nl) <= limit);
    }
    // Then the basal (and the bolus) go on at their own rates from the late
    // step: 200 basal steps in the hour after, not more.
    let until = late + HOUR_MS;
    while let Some(next) = core.next_wakeup().filter(|&n| n <= until) {
        core.check_in(DOSING, next).unwrap();
        fire(&mut core, next);
    }
    let bolus_steps = if granted { bolus_nl / NL_PER_STEP } else { 0 };
    let after = core.platform().step_times[times.len()..].len() as u32;
    assert!(
        (bolus_steps + 199..=bolus_steps + 200).contains(&after),
        "{after} steps in the hour after the late wake-up"
    );
    let all = core.platform().step_times.clone();
    assert_eq!(core.delivered_24h_nl(until), actual_window_nl(&all, until));
}

#[derive(Clone, Debug)]
enum Op {
    /// The timer fires `ms` after the last call, whatever the core asked
    /// for: early, on time or late (up to two days).
    Fire(u64),
    /// The timer fires exactly when the core asked (if it asked).
    OnTime,
    /// The dosing app checks in (the watchdog otherwise takes over basal).
    CheckIn,
    SetBasal(u32),
    Bolus(DeliveryKind, u32, u32),
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop::sample::select(vec![
        DeliveryKind::ClinicianBolus,
        DeliveryKind::PatientBolus,
    ]);
    prop_oneof![
        4 => (0u64..60_000).prop_map(Op::Fire),
        3 => (0u64..2 * HOUR_MS).prop_map(Op::Fire),
        2 => (0u64..2 * DAY_MS).prop_map(Op::Fire),
        4 => Just(Op::OnTime),
        3 => Just(Op::CheckIn),
        2 => prop_oneof![Just(0u32), 1u32..=50_000].prop_map(Op::SetBasal),
        2 => (kind, 1u32..=100_000, 60_000u32..2 * HOUR_MS as u32)
            .prop_map(|(k, v, d)| Op::Bolus(k, v, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    /// Verifies: SR-ENV-010, SR-ENV-005. The timer fires early, on time and
    /// late by up to two days, between basal changes and boluses. Every
    /// rolling 24 h window of the steps' actual times stays within the
    /// envelope's daily maximum, no instant sees more than one step per
    /// channel, and the ledger never counts less than was really made in the
    /// window ending now.
    #[test]
    fn late_and_early_timers_never_break_the_daily_maximum(ops in prop::collection::vec(op(), 1..80)) {
        let mut core = running(0);
        core.platform_mut().record_step_times = true;
        let mut now = 0;
        for op in ops {
            match op {
                Op::Fire(ms) => {
                    now += ms;
                    fire(&mut core, now);
                }
                Op::OnTime => {
                    if let Some(t) = core.next_wakeup() {
                        now = now.max(t);
                        fire(&mut core, now);
                    }
                }
                Op::CheckIn => {
                    core.check_in(DOSING, now).unwrap();
                }
                Op::SetBasal(rate) => {
                    let _ = core.set_basal(DOSING, rate, now);
                }
                Op::Bolus(kind, volume_nl, duration_ms) => {
                    let _ = core.start_bolus(DOSING, kind, volume_nl, duration_ms, now);
                }
            }
            let times = &core.platform().step_times;
            let made = actual_window_nl(times, now);
            prop_assert!(
                core.delivered_24h_nl(now) >= made,
                "ledger {} nL, made {made} nL in the 24 h before {now}",
                core.delivered_24h_nl(now)
            );
        }
        let times = &core.platform().step_times;
        let limit = u64::from(envelope().max_volume_per_24h_nl);
        let mut start = 0;
        for (i, &t) in times.iter().enumerate() {
            // Steps are recorded in time order: the window is times[start..=i].
            prop_assert!(i == 0 || times[i - 1] <= t);
            while times[start] + WINDOW_MS <= t {
                start += 1;
            }
            let in_window = (i + 1 - start) as u64 * u64::from(NL_PER_STEP);
            prop_assert!(in_window <= limit, "{in_window} nL in the 24 h before {t}, limit {limit}");
            let same_instant = times[start..=i].iter().rev().take_while(|&&s| s == t).count();
            prop_assert!(same_instant <= 2, "{same_instant} steps at {t}");
        }
    }
}
