use pump_protocol::{
    DeliveryKind, DeliveryOutcome, ErrorCode, InstallPrescription, Message, Refill,
};
use pump_test_support::{RxBuilder, CATHETER_VOLUME_NL, HOUR_MS, MINUTE_MS};

use super::fake::{config, Call, FakeCapsule, Sim, DEAD_VOLUME_NL, STEP_NL};
use crate::{CatheterContents, DosingCore, FlushKind, PatientBolusVerdict, Phase, SavedState};

const FLUSH_NL: u32 = CATHETER_VOLUME_NL + DEAD_VOLUME_NL;

fn install(sim: &mut Sim, rx: &RxBuilder) {
    let signed = rx.signed();
    sim.capsule.prescription = Some(signed.clone());
    // Installing stops every delivery in the capsule.
    sim.capsule.basal_rate_nl_per_h = 0;
    sim.capsule.bolus = None;
    sim.command(Message::InstallPrescription(InstallPrescription {
        device_id: rx.build().device_id,
        prescription_serial: rx.build().serial,
        signed_prescription: heapless::Vec::from_slice(&signed).unwrap(),
    }));
}

fn refill(sim: &mut Sim, concentration_ug_per_ml: u32) {
    sim.command(Message::Refill(Refill {
        withdrawn_volume_nl: 1_000_000,
        added_volume_nl: 18_000_000,
        concentration_ug_per_ml,
    }));
}

fn bridge_calls(capsule: &FakeCapsule) -> std::vec::Vec<(u32, u32)> {
    capsule
        .boluses()
        .into_iter()
        .filter(|(kind, _, _)| *kind == DeliveryKind::Bridge)
        .map(|(_, v, d)| (v, d))
        .collect()
}

#[test]
fn sr_dos_007_until_the_refill_the_old_drug_runs_at_most_at_the_new_envelope_rate() {
    // Baclofen 500 µg/mL at 300 µg/day = 25 000 nL/h.
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    assert_eq!(sim.capsule.basal_sets(), [25_000]);
    // Four times the concentration: the new envelope, in volume, allows
    // 400 µg/day at 2000 µg/mL = 8 333 nL/h, less than the old drug's rate.
    let new_rx = RxBuilder::new(2)
        .drug("baclofen", 2_000)
        .envelope(|e| e.max_basal_rate_nl_per_h = 8_333);
    sim.monotonic_ms = HOUR_MS;
    install(&mut sim, &new_rx);
    assert_eq!(sim.core.phase(), Phase::DrugChangePending);
    // Not 25 000 (the capsule would refuse it and leave no therapy at all):
    // as much of the old drug's rate as the envelope in force allows.
    assert_eq!(sim.capsule.basal_sets(), [25_000, 8_333]);
    assert_eq!(sim.core.refusals().count(), 0);
    sim.monotonic_ms = 2 * HOUR_MS;
    refill(&mut sim, 2_000);
    assert_eq!(sim.core.phase(), Phase::Bridging);
    // The bridge itself still runs at the old drug's own rate.
    assert_eq!(sim.capsule.basal_sets(), [25_000, 8_333, 0]);
    assert_eq!(bridge_calls(&sim.capsule), [(100_000, 4 * HOUR_MS as u32)]);
}

#[test]
fn sr_dos_007_bridge_after_a_concentration_change_runs_the_old_drug_at_its_old_rate() {
    // Baclofen 500 µg/mL at 300 µg/day = 25 000 nL/h.
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    assert_eq!(sim.capsule.basal_sets(), [25_000]);
    // New prescription: 2000 µg/mL at 300 µg/day = 6 250 nL/h.
    let new_rx = RxBuilder::new(2).drug("baclofen", 2_000);
    sim.monotonic_ms = HOUR_MS;
    install(&mut sim, &new_rx);
    // Until the refill the pump still holds 500 µg/mL: its rate goes on.
    assert_eq!(sim.core.phase(), Phase::DrugChangePending);
    assert_eq!(sim.capsule.basal_sets(), [25_000, 25_000]);
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::NotReady,
            ..
        }
    ));
    sim.monotonic_ms = 2 * HOUR_MS;
    refill(&mut sim, 2_000);
    assert_eq!(sim.core.phase(), Phase::Bridging);
    // Basal stops; the catheter path's old drug leaves as a bridge bolus at
    // the old 25 000 nL/h, in chunks no larger than the envelope's bolus.
    assert_eq!(sim.capsule.basal_sets(), [25_000, 25_000, 0]);
    assert_eq!(bridge_calls(&sim.capsule), [(100_000, 4 * HOUR_MS as u32)]);
    assert_eq!(sim.core.refill_status().flush_remaining_nl, FLUSH_NL);
    sim.monotonic_ms = 6 * HOUR_MS;
    sim.delivery_done(DeliveryKind::Bridge, DeliveryOutcome::Completed, 100_000);
    let rest = FLUSH_NL - 100_000;
    assert_eq!(
        bridge_calls(&sim.capsule),
        [(100_000, 4 * HOUR_MS as u32), (rest, rest * 144)]
    );
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::NotReady,
            ..
        }
    ));
    sim.monotonic_ms += u64::from(rest * 144);
    sim.delivery_done(DeliveryKind::Bridge, DeliveryOutcome::Completed, rest);
    // The catheter now holds the new drug: the new rate starts.
    assert_eq!(sim.core.phase(), Phase::Running);
    assert_eq!(sim.capsule.basal_sets(), [25_000, 25_000, 0, 6_250]);
    assert!(matches!(
        sim.core.saved_state().catheter,
        CatheterContents::Drug { ref drug, .. } if drug.concentration_ug_per_ml == 2_000
    ));
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Granted {
            volume_nl: 12_500,
            ..
        }
    ));
}

#[test]
fn sr_dos_007_bridge_follows_the_old_flex_schedule_across_its_edges() {
    let old = RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)]);
    let mut sim = Sim::start(&old, 4 * HOUR_MS);
    install(
        &mut sim,
        &old.clone()
            .drug("baclofen", 1_000)
            .envelope(|e| e.max_bolus_nl = 500_000),
    );
    sim.monotonic_ms = 5 * HOUR_MS;
    refill(&mut sim, 1_000);
    // 05:00 → 06:00 at the old night rate, 16 666 nL/h: the chunk ends on the edge.
    assert_eq!(bridge_calls(&sim.capsule), [(16_666, HOUR_MS as u32)]);
    // The app runs on: a lost upcall is covered by the bolus-end wake-up.
    sim.run_until(13 * HOUR_MS);
    let rest = FLUSH_NL - 16_666;
    assert_eq!(
        bridge_calls(&sim.capsule),
        [(16_666, HOUR_MS as u32), (rest, rest * 144)]
    );
    assert_eq!(sim.core.phase(), Phase::Running);
    // The new schedule (1000 µg/mL) runs: 300 µg/day is 12 500 nL/h.
    assert_eq!(sim.capsule.basal_sets().last(), Some(&12_500));
}

#[test]
fn sr_dos_007_a_drug_change_bridges_even_at_the_same_concentration() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    install(&mut sim, &RxBuilder::new(2).drug("morphine", 500));
    assert_eq!(sim.core.phase(), Phase::DrugChangePending);
    refill(&mut sim, 500);
    assert_eq!(sim.core.phase(), Phase::Bridging);
    assert_eq!(bridge_calls(&sim.capsule).len(), 1);
}

#[test]
fn sr_dos_007_refill_mid_day_with_the_same_drug_changes_nothing() {
    let mut sim = Sim::start(&RxBuilder::new(1), 13 * HOUR_MS);
    sim.capsule.clear_calls();
    refill(&mut sim, 500);
    assert_eq!(sim.core.phase(), Phase::Running);
    assert!(sim.capsule.basal_sets().is_empty());
    assert!(sim.capsule.boluses().is_empty());
    let status = sim.core.refill_status();
    assert_eq!(status.reservoir_nl, 10_000_000);
    assert_eq!(status.flush_remaining_nl, 0);
    assert!(status.refill_by_utc_ms.is_some());
    // A new prescription for the same drug just changes the rate.
    install(&mut sim, &RxBuilder::new(2).steps(&[(0, 600)]));
    assert_eq!(sim.core.phase(), Phase::Running);
    assert_eq!(sim.capsule.basal_sets(), [50_000]);
}

#[test]
fn sr_dos_010_a_reset_mid_bridge_resumes_with_what_is_left() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    install(&mut sim, &RxBuilder::new(2).drug("baclofen", 2_000));
    refill(&mut sim, 2_000);
    sim.monotonic_ms = 4 * HOUR_MS;
    sim.delivery_done(DeliveryKind::Bridge, DeliveryOutcome::Completed, 100_000);
    // Reset while the second chunk runs; it is then cut short at 30 000 nL.
    let saved: SavedState = sim.core.saved_state().clone();
    let mut core = DosingCore::new(config(), saved);
    sim.capsule.bolus = None;
    sim.capsule.clear_calls();
    let now = sim.now();
    core.wake(&mut sim.capsule, now);
    assert_eq!(core.phase(), Phase::Bridging);
    // The restarted app does not know a chunk ran: it asks for the rest
    // again, which the capsule would refuse as Busy while one runs.
    assert_eq!(
        sim.capsule.boluses(),
        [(
            DeliveryKind::Bridge,
            FLUSH_NL - 100_000,
            (FLUSH_NL - 100_000) * 144
        )]
    );
    core.on_delivery_done(
        DeliveryKind::Bridge,
        DeliveryOutcome::Stopped,
        30_000,
        &mut sim.capsule,
        now,
    );
    assert_eq!(
        core.refill_status().flush_remaining_nl,
        FLUSH_NL - 100_000 - 30_000
    );
}

#[test]
fn sr_dos_008_priming_fills_an_empty_catheter_before_basal() {
    let rx = RxBuilder::new(1);
    let mut capsule = FakeCapsule::new(Some(rx.signed()));
    capsule
        .bolus_answers
        .push_back(Err(ErrorCode::ReservoirInsufficient));
    let mut sim = Sim {
        core: DosingCore::new(config(), SavedState::new(CatheterContents::Empty)),
        capsule,
        monotonic_ms: 0,
        utc_offset_ms: 0,
        wakes: std::vec::Vec::new(),
    };
    let now = sim.now();
    sim.core.wake(&mut sim.capsule, now);
    sim.run_until(MINUTE_MS);
    assert_eq!(sim.core.phase(), Phase::Priming);
    // Refused for an empty reservoir: held, not retried at each wake-up.
    assert_eq!(sim.capsule.boluses().len(), 1);
    assert!(sim.capsule.basal_sets().is_empty());
    refill(&mut sim, 500);
    // At the envelope's maximum basal rate, 100 000 nL/h, in bolus-sized chunks.
    assert_eq!(
        sim.capsule.boluses(),
        [
            (DeliveryKind::Priming, 100_000, HOUR_MS as u32),
            (DeliveryKind::Priming, 100_000, HOUR_MS as u32)
        ]
    );
    let now = sim.now();
    assert!(matches!(
        sim.core.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Denied {
            reason: ErrorCode::NotReady,
            ..
        }
    ));
    sim.run_until(3 * HOUR_MS);
    assert_eq!(sim.core.phase(), Phase::Running);
    let priming: u32 = sim
        .capsule
        .boluses()
        .iter()
        .filter(|(k, _, _)| *k == DeliveryKind::Priming)
        .map(|(_, v, _)| v)
        .sum();
    assert_eq!(priming, 100_000 + FLUSH_NL);
    assert_eq!(sim.capsule.basal_sets(), [25_000]);
    assert!(sim.core.saved_state().flush.is_none());
}

#[test]
fn sr_dos_008_no_priming_when_the_catheter_may_hold_drug() {
    let filled = CatheterContents::Drug {
        drug: crate::Drug {
            name: pump_test_support::drug_name("baclofen"),
            concentration_ug_per_ml: 500,
        },
        basal_steps: RxBuilder::new(1).build().therapy.basal_steps,
    };
    for catheter in [CatheterContents::Unknown, filled] {
        let rx = RxBuilder::new(1);
        let mut capsule = FakeCapsule::new(Some(rx.signed()));
        let mut core = DosingCore::new(config(), SavedState::new(catheter));
        core.wake(&mut capsule, super::fake::at(0));
        assert!(capsule.boluses().is_empty());
        assert_eq!(core.phase(), Phase::Running);
        assert!(core.saved_state().flush.map(|f| f.kind) != Some(FlushKind::Priming));
        assert_eq!(capsule.count(Call::CheckIn), 1);
    }
}

#[test]
fn an_unconfirmed_bridge_chunk_counts_its_upper_bound() {
    // Protocol 1.1's `Unconfirmed`: steps reserved before a reset that the
    // capsule cannot confirm were made, reported with their upper bound.
    // The app counts all of it as flushed, so a step that may have been
    // made is never asked for twice (the safe side), as the capsule counts
    // it against the 24 h limit and the reservoir.
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    install(&mut sim, &RxBuilder::new(2).drug("baclofen", 2_000));
    refill(&mut sim, 2_000);
    assert_eq!(bridge_calls(&sim.capsule), [(100_000, 4 * HOUR_MS as u32)]);
    sim.monotonic_ms = HOUR_MS;
    sim.delivery_done(DeliveryKind::Bridge, DeliveryOutcome::Unconfirmed, 40_000);
    let rest = FLUSH_NL - 40_000;
    assert_eq!(sim.core.refill_status().flush_remaining_nl, rest);
    assert_eq!(sim.core.phase(), Phase::Bridging);
    assert_eq!(
        bridge_calls(&sim.capsule),
        [(100_000, 4 * HOUR_MS as u32), (100_000, 4 * HOUR_MS as u32)]
    );
}

#[test]
fn sr_dos_007_until_the_refill_the_old_drug_runs_the_schedule_last_prescribed_for_it() {
    // Verifies: SR-DOS-007
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    // A new schedule for the same drug: the catheter's drug now runs under it.
    install(&mut sim, &RxBuilder::new(2).steps(&[(0, 600)]));
    assert_eq!(sim.capsule.basal_sets(), [25_000, 50_000]);
    // Then another concentration: until the refill, the drug in the pump
    // keeps its latest schedule, 600 µg/day at 500 µg/mL.
    sim.monotonic_ms = HOUR_MS;
    install(&mut sim, &RxBuilder::new(3).drug("baclofen", 2_000));
    assert_eq!(sim.core.phase(), Phase::DrugChangePending);
    assert_eq!(sim.capsule.basal_sets(), [25_000, 50_000, 50_000]);
    // And the bridge after the refill runs at that rate too.
    sim.monotonic_ms = 2 * HOUR_MS;
    refill(&mut sim, 2_000);
    assert_eq!(bridge_calls(&sim.capsule), [(100_000, 2 * HOUR_MS as u32)]);
}

#[test]
fn reinstalling_the_drug_the_catheter_holds_drops_a_pending_bridge() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    install(&mut sim, &RxBuilder::new(2).drug("baclofen", 2_000));
    refill(&mut sim, 2_000);
    assert_eq!(sim.core.phase(), Phase::Bridging);
    // The change is reverted: the catheter's drug is the prescribed one
    // again, and its schedule runs at once instead of a bridge at that
    // same rate.
    sim.monotonic_ms = HOUR_MS;
    install(&mut sim, &RxBuilder::new(3));
    assert_eq!(sim.core.phase(), Phase::Running);
    assert_eq!(sim.core.refill_status().flush_remaining_nl, 0);
    assert_eq!(sim.capsule.basal_sets(), [25_000, 25_000, 0, 25_000]);
    assert_eq!(bridge_calls(&sim.capsule).len(), 1);
}

#[test]
fn sr_dos_010_a_flush_restored_with_exactly_one_motor_step_left_delivers_that_step() {
    // Verifies: SR-DOS-010
    let mut saved = SavedState::new(CatheterContents::Empty);
    saved.flush = Some(crate::Flush {
        kind: FlushKind::Priming,
        remaining_nl: STEP_NL,
    });
    let mut sim = Sim {
        core: DosingCore::new(config(), saved),
        capsule: FakeCapsule::new(Some(RxBuilder::new(1).signed())),
        monotonic_ms: 0,
        utc_offset_ms: 0,
        wakes: std::vec::Vec::new(),
    };
    let now = sim.now();
    sim.core.wake(&mut sim.capsule, now);
    // One step at the envelope's maximum basal rate (100 000 nL/h): 9 s.
    assert_eq!(
        sim.capsule.boluses(),
        [(DeliveryKind::Priming, STEP_NL, 9_000)]
    );
    assert_eq!(sim.core.phase(), Phase::Priming);
    assert!(sim.capsule.basal_sets().is_empty());
    sim.monotonic_ms = 9_000;
    sim.delivery_done(DeliveryKind::Priming, DeliveryOutcome::Completed, STEP_NL);
    assert_eq!(sim.core.phase(), Phase::Running);
    assert_eq!(sim.capsule.basal_sets(), [25_000]);
    assert!(sim.core.saved_state().flush.is_none());
}

#[test]
fn a_bridge_waits_for_the_edge_rather_than_ask_for_less_than_a_motor_step() {
    let old = RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)]);
    let mut sim = Sim::start(&old, 4 * HOUR_MS);
    install(&mut sim, &old.clone().drug("baclofen", 1_000));
    // Refilled 30 s before 06:00: at the night rate (16 666 nL/h) only
    // 138 nL fit before the edge, less than one step.
    sim.monotonic_ms = 6 * HOUR_MS - 30_000;
    refill(&mut sim, 1_000);
    assert_eq!(sim.core.phase(), Phase::Bridging);
    assert!(bridge_calls(&sim.capsule).is_empty());
    // The first chunk starts on the edge, at the day rate (25 000 nL/h).
    sim.run_until(6 * HOUR_MS);
    assert_eq!(bridge_calls(&sim.capsule), [(100_000, 4 * HOUR_MS as u32)]);
}

#[test]
fn sr_dos_006_until_the_refill_the_app_wakes_on_the_old_schedules_edges() {
    // Verifies: SR-DOS-006, SR-DOS-007
    let old = RxBuilder::new(1).steps(&[(0, 200), (360, 300), (1320, 150)]);
    let mut sim = Sim::start(&old, 5 * HOUR_MS);
    sim.monotonic_ms = 5 * HOUR_MS + 7 * MINUTE_MS;
    install(&mut sim, &RxBuilder::new(2).drug("baclofen", 2_000));
    assert_eq!(sim.core.phase(), Phase::DrugChangePending);
    assert_eq!(sim.capsule.basal_sets(), [16_666, 16_666]);
    sim.run_until(6 * HOUR_MS);
    assert!(sim
        .wakes
        .contains(&(6 * HOUR_MS, crate::WakeReason::ScheduleEdge)));
    assert_eq!(sim.capsule.basal_sets(), [16_666, 16_666, 25_000]);
}
