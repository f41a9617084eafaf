//! The arithmetic of one delivery run (`ledger::Run`), where the core's
//! tests see it only through timing: when the next step is due, what a run
//! hands on to the next, and what is due before a run starts. Written
//! against the survivors of a mutation run (docs/safety/verification.md §3).

use infusion_core::ledger::Run;
use pump_protocol::DeliveryKind;

const NL_PER_STEP: u32 = 250;
/// One step in the ledger's unit, nL·ms/h.
const STEP: u64 = 250 * 3_600_000;

#[test]
fn a_stopped_or_finished_run_has_no_next_step() {
    let mut basal = Run::basal(DeliveryKind::Basal, 0, 25_000, 0);
    assert!(basal.next_step_time(NL_PER_STEP).is_some());
    // Stopped with no plan: nothing more is due, however long it waits.
    basal.active = false;
    assert_eq!(basal.next_step_time(NL_PER_STEP), None);
    // 10 steps over 10 minutes: once all 10 are made, none is due, even
    // while the run is still marked active.
    let mut bolus = Run::bolus(
        DeliveryKind::PatientBolus,
        0,
        2_500,
        600_000,
        0,
        NL_PER_STEP,
    );
    assert_eq!(bolus.steps_planned, Some(10));
    bolus.steps_done = 10;
    assert!(bolus.active);
    assert_eq!(bolus.next_step_time(NL_PER_STEP), None);
    bolus.steps_done = 9;
    assert_eq!(bolus.next_step_time(NL_PER_STEP), Some(600_000));
}

#[test]
fn a_bolus_stopped_half_way_hands_on_only_its_progress() {
    // 10 steps over 10 minutes: one step a minute. Stopped at 4.5 minutes
    // with 4 made, it hands on half a step, not the rest of its plan.
    let mut bolus = Run::bolus(
        DeliveryKind::ClinicianBolus,
        0,
        2_500,
        600_000,
        0,
        NL_PER_STEP,
    );
    bolus.steps_done = 4;
    bolus.active = false;
    assert_eq!(bolus.carry_out(270_000, NL_PER_STEP), STEP / 2);
    // Finished, it hands on exactly what its last step left (here nothing).
    bolus.steps_done = 10;
    assert_eq!(bolus.carry_out(900_000, NL_PER_STEP), 0);
}

#[test]
fn a_run_behind_its_curve_hands_on_less_than_one_step() {
    // Verifies: SR-ENV-010
    // 1 step a minute; the timer was late and only 2 steps were made by
    // 5.5 minutes. The steps it passed are not made up: the next run starts
    // with less than one step of progress, so it makes no step at once.
    let mut basal = Run::basal(DeliveryKind::Basal, 0, 15_000, 0);
    basal.steps_done = 2;
    let carry = basal.carry_out(330_000, NL_PER_STEP);
    assert_eq!(carry, STEP - 1);
    let next = Run::basal(DeliveryKind::Basal, 330_000, 15_000, carry);
    assert_eq!(next.steps_due(330_000, NL_PER_STEP), 0);
    assert!(next.next_step_time(NL_PER_STEP).unwrap() > 330_000);
}

#[test]
fn nothing_is_due_before_a_run_starts_whatever_it_carries() {
    // A carry of one and a half steps (as a damaged record could hold):
    // before the start nothing is due, at the start the carry counts.
    let run = Run::basal(DeliveryKind::Basal, 1_000, 15_000, STEP + STEP / 2);
    assert_eq!(run.steps_due(0, NL_PER_STEP), 0);
    assert_eq!(run.steps_due(999, NL_PER_STEP), 0);
    assert_eq!(run.steps_due(1_000, NL_PER_STEP), 1);
}

/// Steps a reset could not confirm count as made at the restore's own
/// instant, at every instant including the clock's origin, and leave the
/// window exactly 24 h later: never earlier (an overdose) and never later
/// (a lockout the loss does not justify). The oracle found the origin case:
/// a curve started 1 ms early cannot start before 0, and the lost day was
/// missing from the window in the restore's own millisecond (SR-PER-007).
#[test]
fn sr_per_007_unconfirmed_steps_count_from_the_restores_own_instant_even_at_zero() {
    // Verifies: SR-PER-007
    use infusion_core::ledger::{Ledger, WINDOW_MS};
    for at_ms in [0, 1, 59_999, 86_400_000, u64::from(u32::MAX)] {
        let run = Run::unconfirmed(at_ms, 40_000, NL_PER_STEP);
        assert_eq!(run.steps_made_by(at_ms, NL_PER_STEP), 40_000, "at {at_ms}");
        if let Some(before) = at_ms.checked_sub(1) {
            assert_eq!(run.steps_made_by(before, NL_PER_STEP), 0, "at {at_ms}");
        }
        assert_eq!(run.last_step_time(NL_PER_STEP), at_ms);
        assert_eq!(run.next_step_time(NL_PER_STEP), None);
        assert_eq!(run.carry_out(at_ms + 5, NL_PER_STEP), 0, "hands on nothing");
        let mut ledger = Ledger::new();
        ledger.push(run, at_ms, NL_PER_STEP).unwrap();
        assert_eq!(ledger.steps_in_window(at_ms, NL_PER_STEP), 40_000);
        assert_eq!(
            ledger.steps_in_window(at_ms + WINDOW_MS - 1, NL_PER_STEP),
            40_000
        );
        assert_eq!(ledger.steps_in_window(at_ms + WINDOW_MS, NL_PER_STEP), 0);
    }
}
