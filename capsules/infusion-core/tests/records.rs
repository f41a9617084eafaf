//! Persistence with records kept apart (`docs/persistence.md`): resets at
//! every write, unconfirmed steps, and storage loss.
#![allow(clippy::cast_possible_truncation)]
mod support;

use std::collections::HashMap;

use infusion_core::{
    AlarmOutput, AlarmSignal, InfusionCore, Motor, Notification, Notifier, RecordKind, RegionState,
    Storage, StoredRecords, RESERVATION_STEPS,
};
use proptest::prelude::*;
use pump_protocol::{AlarmCode, DeliveryKind, DeliveryOutcome, ErrorCode, Message, PumpState};
use support::{
    board, clinic_command, drain_with, envelope, send_signed, signed, CONCENTRATION_UG_PER_ML,
    DAY_MS, DOSING, HOUR_MS, MINUTE_MS, NL_PER_STEP, TELEMETRY,
};

type Records = HashMap<RecordKind, Vec<u8>>;

/// A board that keeps records apart, remembering the store as it was after
/// every write and how many steps the motor had made before each write.
#[derive(Debug, Default)]
struct RecordRig {
    motor_enabled: bool,
    steps: u64,
    step_times: Vec<u64>,
    now_ms: u64,
    store: Records,
    /// `(store after write k, motor steps before write k)`.
    history: Vec<(Records, u64)>,
    writes: HashMap<RecordKind, u64>,
}

impl Motor for RecordRig {
    fn set_enabled(&mut self, enabled: bool) {
        self.motor_enabled = enabled;
    }
    fn step(&mut self) {
        assert!(self.motor_enabled, "a step with the motor disabled");
        self.steps += 1;
        self.step_times.push(self.now_ms);
    }
}

impl AlarmOutput for RecordRig {
    fn show(&mut self, _: AlarmSignal) {}
}

impl Notifier for RecordRig {
    fn notify(&mut self, _: Notification) {}
}

impl Storage for RecordRig {
    const KEEPS_RECORDS_APART: bool = true;
    fn write_record(&mut self, kind: RecordKind, record: &[u8]) {
        assert_ne!(kind, RecordKind::Image);
        self.store.insert(kind, record.to_vec());
        *self.writes.entry(kind).or_default() += 1;
        self.history.push((self.store.clone(), self.steps));
    }
}

type Core = InfusionCore<RecordRig>;

fn stored(records: &Records) -> StoredRecords<'_> {
    let state_written = records.keys().any(|k| *k != RecordKind::SerialFloor);
    StoredRecords {
        state_region: if state_written {
            RegionState::Readable
        } else {
            RegionState::Blank
        },
        floor_region: if records.contains_key(&RecordKind::SerialFloor) {
            RegionState::Readable
        } else {
            RegionState::Blank
        },
        prescription: records.get(&RecordKind::Prescription).map(Vec::as_slice),
        therapy: records.get(&RecordKind::Therapy).map(Vec::as_slice),
        app_record: records.get(&RecordKind::AppRecord).map(Vec::as_slice),
        reservation: records.get(&RecordKind::Reservation).map(Vec::as_slice),
        serial_floor: records.get(&RecordKind::SerialFloor).map(Vec::as_slice),
    }
}

fn boot(records: &Records, now: u64) -> Core {
    let rig = RecordRig {
        store: records.clone(),
        now_ms: now,
        ..RecordRig::default()
    };
    let mut core = InfusionCore::new(board(), rig);
    let copy = records.clone();
    core.restore_records(&stored(&copy), now);
    core
}

fn running(now: u64) -> Core {
    let mut core = boot(&Records::new(), now);
    core.install_prescription(TELEMETRY, &signed(1), now)
        .unwrap();
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, now)
        .unwrap();
    core
}

fn timer(core: &mut Core, t: u64) {
    core.platform_mut().now_ms = t;
    core.check_in(DOSING, t).unwrap();
    core.on_timer(t);
}

fn advance(core: &mut Core, until: u64) {
    while let Some(t) = core.next_wakeup().filter(|t| *t <= until) {
        timer(core, t);
    }
    timer(core, until);
}

fn logged_volume_nl(events: &[(u32, Message)], outcome: Option<DeliveryOutcome>) -> u64 {
    events
        .iter()
        .filter_map(|(_, m)| match m {
            Message::DeliveryRecord(r) if outcome.is_none_or(|o| o == r.outcome) => {
                Some(u64::from(r.volume_nl))
            }
            _ => None,
        })
        .sum()
}

#[test]
fn sr_per_006_steps_are_reserved_in_batches_not_saved_one_by_one() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    let therapy_before = core.platform().writes[&RecordKind::Therapy];
    advance(&mut core, 6 * HOUR_MS);
    let steps = core.platform().steps;
    assert_eq!(steps, 960, "40 000 nL/h for 6 h at 250 nL a step");
    let reservations = core.platform().writes[&RecordKind::Reservation];
    assert_eq!(reservations, steps.div_ceil(RESERVATION_STEPS));
    // Only the hourly checkpoints rewrite the therapy record.
    assert_eq!(
        core.platform().writes[&RecordKind::Therapy] - therapy_before,
        6
    );
    // 960 is a multiple of the batch; 20 steps later a 33-step batch would
    // still be on its 30th reservation, a 32-step one is on its 31st.
    advance(&mut core, 6 * HOUR_MS + 7 * MINUTE_MS + 30_000);
    let steps = core.platform().steps;
    assert_eq!(steps, 980);
    assert_eq!(
        core.platform().writes[&RecordKind::Reservation],
        980u64.div_ceil(RESERVATION_STEPS)
    );
}

/// A reset with no reserved step outstanding logs no unconfirmed delivery:
/// an empty `Unconfirmed` record would tell the clinic a loss that did not
/// happen.
#[test]
fn sr_per_006_a_reset_with_nothing_reserved_logs_no_unconfirmed_delivery() {
    let core = running(0);
    let records = core.platform().store.clone();
    let mut core = boot(&records, MINUTE_MS);
    let events = drain_with(&mut core, MINUTE_MS);
    assert_eq!(
        logged_volume_nl(&events, Some(DeliveryOutcome::Unconfirmed)),
        0
    );
    assert!(
        !events.iter().any(|(_, m)| matches!(m,
            Message::DeliveryRecord(r) if r.outcome == DeliveryOutcome::Unconfirmed)),
        "{events:?}"
    );
}

#[test]
fn sr_per_006_a_reset_mid_batch_counts_the_reserved_steps_and_logs_them() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, HOUR_MS + 10 * MINUTE_MS);
    let before = drain_with(&mut core, HOUR_MS + 10 * MINUTE_MS);
    let made = core.platform().steps;
    let reservoir_true = 10_000_000 - made * u64::from(NL_PER_STEP);
    let records = core.platform().store.clone();

    let mut core = boot(&records, HOUR_MS + 11 * MINUTE_MS);
    let after = drain_with(&mut core, HOUR_MS + 11 * MINUTE_MS);
    let unconfirmed = logged_volume_nl(&after, Some(DeliveryOutcome::Unconfirmed));
    assert!(unconfirmed > 0, "{after:?}");
    assert!(core.steps_accounted() >= made);
    // Unconfirmed steps leave the reservoir too: it reads at most one
    // batch less than the truth, never more.
    let reservoir = u64::from(core.reservoir_nl());
    assert!(reservoir <= reservoir_true);
    assert!(reservoir_true - reservoir <= RESERVATION_STEPS * u64::from(NL_PER_STEP));
    // The log plus its stated uncertainty accounts for every step.
    let logged = logged_volume_nl(&before, None) + logged_volume_nl(&after, None);
    let true_nl = made * u64::from(NL_PER_STEP);
    assert!(
        logged >= true_nl && logged - true_nl <= RESERVATION_STEPS * u64::from(NL_PER_STEP),
        "{logged} {true_nl}"
    );
    // And the 24 h total counts them at least as long as the real ones.
    assert!(core.delivered_24h_nl(HOUR_MS + 11 * MINUTE_MS) >= true_nl);
}

#[test]
fn sr_per_007_lost_therapy_state_latches_keeps_the_floor_and_assumes_the_worst() {
    let mut core = running(0);
    core.install_prescription(TELEMETRY, &signed(3), 0).unwrap();
    let mut records = core.platform().store.clone();
    records.remove(&RecordKind::Therapy);
    for lost in [None, Some(vec![0xA5; 40])] {
        let mut records = records.clone();
        if let Some(garbage) = &lost {
            records.insert(RecordKind::Therapy, garbage.clone());
        }
        let mut core = boot(&records, MINUTE_MS);
        assert_eq!(core.pump_state(), PumpState::FaultStopped);
        assert!(core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
        assert!(core.prescription().is_none());
        assert_eq!(core.reservoir_nl(), 0);
        // Serial 3 was installed: 2 and 3 are replays.
        for serial in [2, 3] {
            assert_eq!(
                core.install_prescription(TELEMETRY, &signed(serial), MINUTE_MS),
                Err(ErrorCode::ReplayedSerial)
            );
        }
        core.install_prescription(TELEMETRY, &signed(4), MINUTE_MS)
            .unwrap();
        core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, MINUTE_MS)
            .unwrap();
        // Whether the clinic had suspended is lost too: suspended until the
        // clinic resumes.
        assert_eq!(core.pump_state(), PumpState::Suspended);
        assert_eq!(
            core.set_basal(DOSING, 10_000, MINUTE_MS),
            Err(ErrorCode::Suspended)
        );
        core.resume(TELEMETRY, MINUTE_MS).unwrap();
        assert_eq!(core.pump_state(), PumpState::Running);
        // The worst case: the daily maximum was delivered just now.
        assert_eq!(
            core.set_basal(DOSING, 10_000, MINUTE_MS),
            Err(ErrorCode::DailyLimitReached)
        );
        assert_eq!(
            core.start_bolus(
                DOSING,
                DeliveryKind::ClinicianBolus,
                1_000,
                60_000,
                MINUTE_MS
            ),
            Err(ErrorCode::DailyLimitReached)
        );
        assert_eq!(
            core.set_basal(DOSING, 10_000, MINUTE_MS + DAY_MS + 2),
            Ok(())
        );
    }
}

#[test]
fn sr_per_007_a_damaged_state_region_is_never_a_new_pump() {
    let core = running(0);
    let records = core.platform().store.clone();
    let mut stored = stored(&records);
    stored.state_region = RegionState::Damaged;
    let mut core = InfusionCore::new(board(), RecordRig::default());
    core.restore_records(&stored, MINUTE_MS);
    assert!(core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(1), MINUTE_MS),
        Err(ErrorCode::ReplayedSerial)
    );
}

/// Lost therapy records count exactly the hardware's daily maximum, in
/// whole steps, as unconfirmed basal: the worst the pump could have done.
#[test]
fn sr_per_007_a_damaged_state_region_counts_exactly_the_hardwares_daily_maximum() {
    let core = running(0);
    let records = core.platform().store.clone();
    let mut stored = stored(&records);
    stored.state_region = RegionState::Damaged;
    let mut core = InfusionCore::new(board(), RecordRig::default());
    core.restore_records(&stored, MINUTE_MS);
    let nl_per_step = board().nl_per_step;
    let worst_nl = board().limits.max_volume_per_24h_nl / nl_per_step * nl_per_step;
    let events = drain_with(&mut core, MINUTE_MS);
    assert_eq!(
        logged_volume_nl(&events, Some(DeliveryOutcome::Unconfirmed)),
        u64::from(worst_nl)
    );
    assert_eq!(core.status(MINUTE_MS).delivered_24h_nl, worst_nl);
}

/// A pump that was switched on but never programmed restarts as it was,
/// with no integrity alarm: serial floor 0 and no prescription agree.
#[test]
fn sr_per_007_a_pump_never_programmed_restarts_without_an_integrity_alarm() {
    let core = boot(&Records::new(), 0);
    let records = core.platform().store.clone();
    let core = boot(&records, MINUTE_MS);
    assert_eq!(core.pump_state(), PumpState::NoPrescription);
    assert!(!core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
}

#[test]
fn sr_per_008_the_serial_floor_survives_the_loss_of_either_copy() {
    let mut core = running(0);
    core.install_prescription(TELEMETRY, &signed(5), 0).unwrap();
    let records = core.platform().store.clone();
    // Floor region lost: the prescription still proves serial 5.
    let mut no_floor = records.clone();
    no_floor.remove(&RecordKind::SerialFloor);
    let mut core = boot(&no_floor, MINUTE_MS);
    assert_eq!(core.pump_state(), PumpState::Running);
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(5), MINUTE_MS),
        Err(ErrorCode::ReplayedSerial)
    );
    assert!(
        core.platform().store.contains_key(&RecordKind::SerialFloor),
        "the floor is written back"
    );
    // Prescription record lost: the floor region still holds 5.
    let mut no_rx = records.clone();
    no_rx.remove(&RecordKind::Prescription);
    let mut core = boot(&no_rx, MINUTE_MS);
    assert!(core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(4), MINUTE_MS),
        Err(ErrorCode::ReplayedSerial)
    );
    // The floor region damaged (unreadable) counts as lost, not as 0.
    let mut core = InfusionCore::new(board(), RecordRig::default());
    let mut damaged = stored(&records);
    damaged.floor_region = RegionState::Damaged;
    core.restore_records(&damaged, MINUTE_MS);
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(5), MINUTE_MS),
        Err(ErrorCode::ReplayedSerial)
    );
}

/// The serial floor is written back at a restore only when one of its
/// copies is missing or unreadable: a clean boot spends no erase on it, a
/// damaged floor region gets its copy back.
#[test]
fn sr_per_007_the_floor_is_rewritten_at_boot_only_when_its_region_was_not_readable() {
    let core = running(0);
    let records = core.platform().store.clone();
    let floor_writes = |core: &Core| {
        core.platform()
            .writes
            .get(&RecordKind::SerialFloor)
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(floor_writes(&boot(&records, MINUTE_MS)), 0);
    let mut core = InfusionCore::new(board(), RecordRig::default());
    let mut damaged = stored(&records);
    damaged.floor_region = RegionState::Damaged;
    core.restore_records(&damaged, MINUTE_MS);
    assert!(floor_writes(&core) >= 1);
}

#[test]
fn sr_per_007_only_a_blank_store_starts_as_a_new_pump() {
    let core = boot(&Records::new(), 0);
    assert_eq!(core.pump_state(), PumpState::NoPrescription);
    assert!(core.alarms().codes().next().is_none());
    assert!(core.platform().store.contains_key(&RecordKind::SerialFloor));
}

/// A command, or time passing, in the property test.
#[derive(Clone, Debug)]
enum Action {
    Basal(u32),
    PatientBolus(u32),
    ClinicianBolus(u32, u32),
    Advance(u64),
    Drain,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u32..=60_000).prop_map(Action::Basal),
        (1u32..=120_000).prop_map(Action::PatientBolus),
        (1u32..=120_000, 60_000u32..=3_600_000).prop_map(|(v, d)| Action::ClinicianBolus(v, d)),
        (1u64..=3 * HOUR_MS).prop_map(Action::Advance),
        Just(Action::Drain),
    ]
}

fn apply(core: &mut Core, action: &Action, now: &mut u64) {
    match *action {
        Action::Basal(rate) => {
            let _ = core.set_basal(DOSING, rate, *now);
        }
        Action::PatientBolus(v) => {
            let _ = core.start_bolus(DOSING, DeliveryKind::PatientBolus, v, 60_000, *now);
        }
        Action::ClinicianBolus(v, d) => {
            let _ = core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, v, d, *now);
        }
        Action::Advance(ms) => {
            *now += ms;
            advance(core, *now);
        }
        Action::Drain => {
            drain_with(core, *now);
        }
    }
}

/// The largest number of steps in any rolling 24 h window of `times`.
fn max_steps_in_a_day(times: &[u64]) -> usize {
    let mut from = 0;
    let mut best = 0;
    for (i, t) in times.iter().enumerate() {
        while times[from] + DAY_MS <= *t {
            from += 1;
        }
        best = best.max(i + 1 - from);
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Reset after any write (a torn write is the write that did not
    /// happen): no step is forgotten for the envelope, and the run that
    /// goes on after the reset never takes any rolling 24 h window of the
    /// motor's real step times over the daily maximum (SR-PER-006).
    #[test]
    fn sr_per_006_reset_at_any_write_forgets_no_step(
        before in proptest::collection::vec(action(), 1..12),
        after in proptest::collection::vec(action(), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut now = 0;
        let mut core = running(now);
        for a in &before {
            apply(&mut core, a, &mut now);
        }
        let history = core.platform().history.clone();
        let k = cut.index(history.len());
        let (records, _) = &history[k];
        // The motor may have made every step up to the next write.
        let true_steps = history.get(k + 1).map_or(core.platform().steps, |(_, s)| *s);
        let real_times: Vec<u64> = core.platform().step_times[..true_steps as usize].to_vec();
        now += 1;
        let mut restored = boot(records, now);
        prop_assert!(restored.steps_accounted() >= true_steps,
            "accounted {} < made {}", restored.steps_accounted(), true_steps);
        prop_assert!(restored.steps_accounted() - true_steps
            <= RESERVATION_STEPS + u64::from(board().limits.max_volume_per_24h_nl / NL_PER_STEP));
        restored.platform_mut().step_times = real_times;
        for a in &after {
            apply(&mut restored, a, &mut now);
        }
        let max = max_steps_in_a_day(&restored.platform().step_times);
        let cap = (envelope().max_volume_per_24h_nl / NL_PER_STEP) as usize;
        prop_assert!(max <= cap, "{max} steps in 24 h > {cap}");
    }
}

#[test]
fn sr_per_008_an_install_cut_between_its_two_writes_restores_both_copies() {
    let mut core = running(0);
    core.install_prescription(TELEMETRY, &signed(5), 0).unwrap();
    let mut records = core.platform().store.clone();
    // The floor write of serial 5 never happened: the region still says 1.
    let old_floor = {
        let first = running(0);
        first.platform().store[&RecordKind::SerialFloor].clone()
    };
    records.insert(RecordKind::SerialFloor, old_floor.clone());
    let core = boot(&records, MINUTE_MS);
    assert_ne!(
        core.platform().store[&RecordKind::SerialFloor],
        old_floor,
        "the floor of serial 5 is written back"
    );
    // Now losing the prescription record still refuses serial 4.
    let mut records = core.platform().store.clone();
    records.remove(&RecordKind::Prescription);
    let mut core = boot(&records, 2 * MINUTE_MS);
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(4), 2 * MINUTE_MS),
        Err(ErrorCode::ReplayedSerial)
    );
}

#[test]
fn sr_per_007_after_a_loss_event_numbers_go_on_and_a_second_reset_counts_nothing_twice() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, HOUR_MS);
    let last = drain_with(&mut core, HOUR_MS).last().unwrap().0;
    let mut records = core.platform().store.clone();
    records.remove(&RecordKind::Therapy);
    let mut core = boot(&records, HOUR_MS + MINUTE_MS);
    let after = drain_with(&mut core, HOUR_MS + MINUTE_MS);
    assert!(
        after.iter().all(|(seq, _)| *seq > last),
        "{last} then {after:?}"
    );
    let counted = core.delivered_24h_nl(HOUR_MS + MINUTE_MS);
    // A second reset before anything else happens changes nothing.
    let records = core.platform().store.clone();
    let mut again = boot(&records, HOUR_MS + 2 * MINUTE_MS);
    assert_eq!(again.delivered_24h_nl(HOUR_MS + 2 * MINUTE_MS), counted);
    let unconfirmed = logged_volume_nl(
        &drain_with(&mut again, HOUR_MS + 2 * MINUTE_MS),
        Some(DeliveryOutcome::Unconfirmed),
    );
    assert_eq!(unconfirmed, 0);
}

/// A reset at every write of an accepted signed command: the command never
/// takes effect twice, because its counter is stored before it acts.
#[test]
fn sr_auth_003_a_reset_at_any_write_never_accepts_a_command_twice() {
    let mut core = running(0);
    let start = core.platform().history.len();
    let before = core.platform().store.clone();
    let suspend = clinic_command(&Message::Suspend(pump_protocol::Suspend {}), 500);
    assert!(matches!(
        send_signed(&mut core, &suspend, MINUTE_MS),
        infusion_core::CommandResult::SuccessU32U32(..)
    ));
    let mut stores = vec![before];
    stores.extend(
        core.platform().history[start..]
            .iter()
            .map(|(store, _)| store.clone()),
    );
    assert!(
        stores.len() >= 3,
        "the counter and the state are two writes"
    );
    let mut replays_refused = 0;
    for (k, store) in stores.iter().enumerate() {
        let mut booted = boot(store, 2 * MINUTE_MS);
        let took_effect = booted.pump_state() == PumpState::Suspended;
        let replay = send_signed(&mut booted, &suspend, 2 * MINUTE_MS);
        if took_effect {
            assert_eq!(
                replay,
                infusion_core::CommandResult::Failure(ErrorCode::Replayed),
                "cut after write {k}: suspended, yet the command was accepted again"
            );
        }
        if replay == infusion_core::CommandResult::Failure(ErrorCode::Replayed) {
            replays_refused += 1;
        }
    }
    assert_eq!(
        replays_refused,
        stores.len() - 1,
        "only the cut before any write may accept it"
    );
    // A lost floor region forgets the counters: every command signed before
    // the pump's clock at that boot is refused.
    let mut no_floor = core.platform().store.clone();
    no_floor.remove(&RecordKind::SerialFloor);
    let mut booted = boot(&no_floor, 3 * MINUTE_MS);
    let utc = booted.utc_ms(3 * MINUTE_MS);
    assert!(booted.command_counters().iter().all(|c| *c >= 500));
    let older = clinic_command(&Message::Resume(pump_protocol::Resume {}), utc);
    assert_eq!(
        send_signed(&mut booted, &older, 3 * MINUTE_MS),
        infusion_core::CommandResult::Failure(ErrorCode::Replayed)
    );
    let newer = clinic_command(&Message::Resume(pump_protocol::Resume {}), utc + 1);
    assert!(matches!(
        send_signed(&mut booted, &newer, 3 * MINUTE_MS),
        infusion_core::CommandResult::SuccessU32U32(..)
    ));
}
