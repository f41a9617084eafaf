use proptest::prelude::*;
use pump_protocol::prescription::BasalStep;
use pump_test_support::{DAY_MS, HOUR_MS, MINUTE_MS, UTC_2025_01_01_MS};

use crate::schedule::{minute_of_day, BasalSchedule, ScheduleError};

fn steps(list: &[(u16, u32)]) -> std::vec::Vec<BasalStep> {
    list.iter()
        .map(|&(start_minute_of_day, rate_ug_per_day)| BasalStep {
            start_minute_of_day,
            rate_ug_per_day,
        })
        .collect()
}

fn hourly_24() -> std::vec::Vec<(u16, u32)> {
    (0..24u16)
        .map(|h| (h * 60, 240 + u32::from(h) * 24))
        .collect()
}

#[test]
fn sr_dos_002_invalid_schedules_are_refused() {
    assert_eq!(BasalSchedule::new(&[], 500), Err(ScheduleError::Empty));
    assert_eq!(
        BasalSchedule::new(&steps(&[(10, 300)]), 500),
        Err(ScheduleError::FirstStepNotAtMidnight)
    );
    assert_eq!(
        BasalSchedule::new(&steps(&[(0, 300), (600, 200), (600, 100)]), 500),
        Err(ScheduleError::StepsOutOfOrder)
    );
    assert_eq!(
        BasalSchedule::new(&steps(&[(0, 300), (1440, 200)]), 500),
        Err(ScheduleError::StepsOutOfOrder)
    );
    assert_eq!(
        BasalSchedule::new(&steps(&[(0, 300)]), 0),
        Err(ScheduleError::Conversion)
    );
}

#[test]
fn sr_dos_002_step_lookup_and_edges_around_midnight() {
    // 06:00 300 µg/day, 22:00 150 µg/day, 00:00 200 µg/day.
    let s = BasalSchedule::new(&steps(&[(0, 200), (360, 300), (1320, 150)]), 500).unwrap();
    let midnight = UTC_2025_01_01_MS;
    assert_eq!(s.rate_nl_per_h_at(midnight), 16_666);
    assert_eq!(s.rate_nl_per_h_at(midnight + 6 * HOUR_MS - 1), 16_666);
    assert_eq!(s.rate_nl_per_h_at(midnight + 6 * HOUR_MS), 25_000);
    assert_eq!(s.rate_nl_per_h_at(midnight + 22 * HOUR_MS), 12_500);
    assert_eq!(s.rate_nl_per_h_at(midnight + DAY_MS - 1), 12_500);
    assert_eq!(s.rate_nl_per_h_at(midnight + DAY_MS), 16_666);
    assert_eq!(s.next_edge_after(midnight), Some(midnight + 6 * HOUR_MS));
    assert_eq!(
        s.next_edge_after(midnight + 6 * HOUR_MS),
        Some(midnight + 22 * HOUR_MS)
    );
    assert_eq!(
        s.next_edge_after(midnight + 22 * HOUR_MS),
        Some(midnight + DAY_MS)
    );
    assert_eq!(
        s.next_edge_after(midnight + DAY_MS - 1),
        Some(midnight + DAY_MS)
    );
    let continuous = BasalSchedule::new(&steps(&[(0, 300)]), 500).unwrap();
    assert_eq!(continuous.next_edge_after(midnight + 5), None);
}

#[test]
fn sr_dos_002_twenty_four_steps_give_twenty_four_edges_a_day() {
    let s = BasalSchedule::new(&steps(&hourly_24()), 500).unwrap();
    let mut t = UTC_2025_01_01_MS + 30 * MINUTE_MS;
    let mut edges = 0;
    while let Some(edge) = s.next_edge_after(t) {
        if edge > UTC_2025_01_01_MS + DAY_MS + 30 * MINUTE_MS {
            break;
        }
        assert_ne!(s.step_index_at(edge), s.step_index_at(edge - 1));
        t = edge;
        edges += 1;
    }
    assert_eq!(edges, 24);
    // The integral over a day is the sum of the hourly rates.
    let expected: u128 = s
        .steps()
        .iter()
        .map(|st| u128::from(st.rate_nl_per_h))
        .sum();
    assert_eq!(
        s.integral_nl_ms_per_h(UTC_2025_01_01_MS, UTC_2025_01_01_MS + DAY_MS),
        expected * u128::from(HOUR_MS)
    );
}

fn arbitrary_schedule() -> impl Strategy<Value = std::vec::Vec<(u16, u32)>> {
    proptest::collection::btree_set(1u16..1440, 0..23).prop_flat_map(|starts| {
        let n = starts.len() + 1;
        proptest::collection::vec(0u32..100_000, n).prop_map(move |rates| {
            core::iter::once(0u16)
                .chain(starts.iter().copied())
                .zip(rates)
                .collect()
        })
    })
}

proptest! {
    // Verifies: SR-DOS-002
    #[test]
    fn the_step_in_force_is_the_last_one_started(
        list in arbitrary_schedule(),
        t in 0u64..(400 * DAY_MS),
    ) {
        let s = BasalSchedule::new(&steps(&list), 500).unwrap();
        let utc = UTC_2025_01_01_MS + t;
        let step = s.step_at(utc);
        let minute = minute_of_day(utc);
        prop_assert!(step.start_minute_of_day <= minute);
        prop_assert!(list.iter().all(|(start, _)| *start <= step.start_minute_of_day || *start > minute));
        if let Some(edge) = s.next_edge_after(utc) {
            prop_assert!(edge > utc);
            prop_assert!(edge - utc <= DAY_MS);
            // Nothing changes before the edge; something changes at it.
            prop_assert_eq!(s.step_index_at(edge - 1), s.step_index_at(utc));
            prop_assert_ne!(s.step_index_at(edge), s.step_index_at(utc));
        } else {
            prop_assert_eq!(list.len(), 1);
        }
    }
}
