//! The app's record in the capsule (commands 26/27): format, refusals, and
//! what a restarted app remembers (SR-DOS-015).

use heapless::{String, Vec};
use proptest::prelude::*;
use pump_protocol::prescription::{BasalStep, MAX_BASAL_STEPS, MAX_DRUG_NAME_LEN};
use pump_protocol::ErrorCode;
use pump_test_support::{RxBuilder, HOUR_MS, MINUTE_MS};

use super::fake::{at, config, FakeCapsule, Sim};
use crate::{
    decode_record, encode_record, load_record, CatheterContents, Decider, DosingCore, Drug, Flush,
    FlushKind, Now, PatientBolusVerdict, RecordError, SavedState, MAX_PATIENT_GRANTS,
    RECORD_FORMAT, RECORD_REFRESH_MS, SAVED_RECORD_MAX_LEN,
};

/// The largest state the core can hold: the longest drug name, a full
/// schedule, a flush and every grant at the largest times.
fn largest_state() -> SavedState {
    let mut name = String::new();
    for _ in 0..MAX_DRUG_NAME_LEN {
        name.push('m').unwrap();
    }
    let mut basal_steps = Vec::new();
    for k in 0..MAX_BASAL_STEPS {
        basal_steps
            .push(BasalStep {
                start_minute_of_day: u16::MAX - k as u16,
                rate_ug_per_day: u32::MAX,
            })
            .unwrap();
    }
    let mut state = SavedState::new(CatheterContents::Drug {
        drug: Drug {
            name,
            concentration_ug_per_ml: u32::MAX,
        },
        basal_steps,
    });
    state.flush = Some(Flush {
        kind: FlushKind::Bridge,
        remaining_nl: u32::MAX,
    });
    for _ in 0..MAX_PATIENT_GRANTS {
        state.patient_grants_ms.push(u64::MAX).unwrap();
    }
    state
}

fn encoded(state: &SavedState, saved_at_ms: u64) -> std::vec::Vec<u8> {
    let mut buf = [0u8; SAVED_RECORD_MAX_LEN];
    let len = encode_record(state, saved_at_ms, &mut buf).unwrap();
    buf[..len].to_vec()
}

#[test]
fn sr_dos_015_the_largest_state_fits_the_record_and_the_capsules_limit() {
    let bytes = encoded(&largest_state(), u64::MAX);
    assert!(bytes.len() <= SAVED_RECORD_MAX_LEN);
    // Within infusion_core::APP_RECORD_MAX_LEN: checked where both crates
    // meet, in the system tests.
    assert_eq!(decode_record(&bytes).unwrap().state, largest_state());
}

#[test]
fn sr_dos_015_the_record_starts_with_its_format_and_round_trips() {
    let mut state = SavedState::new(CatheterContents::Empty);
    state.patient_grants_ms.push(5 * MINUTE_MS).unwrap();
    let bytes = encoded(&state, HOUR_MS);
    assert_eq!(bytes[0], RECORD_FORMAT);
    let restored = decode_record(&bytes).unwrap();
    assert_eq!(restored.state, state);
    assert_eq!(restored.saved_at_monotonic_ms, HOUR_MS);
}

#[test]
fn sr_dos_015_records_the_app_cannot_read_are_refused_whole() {
    let mut state = SavedState::new(CatheterContents::Empty);
    state.patient_grants_ms.push(5 * MINUTE_MS).unwrap();
    let bytes = encoded(&state, HOUR_MS);

    assert_eq!(decode_record(&[]), Err(RecordError::Empty));
    let mut other_format = bytes.clone();
    other_format[0] = RECORD_FORMAT + 1;
    assert_eq!(
        decode_record(&other_format),
        Err(RecordError::UnknownFormat(RECORD_FORMAT + 1))
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(decode_record(&trailing), Err(RecordError::Malformed));
    assert_eq!(
        decode_record(&bytes[..bytes.len() - 1]),
        Err(RecordError::Malformed)
    );
    // A grant after the save cannot be true of the app's own clock.
    assert_eq!(
        decode_record(&encoded(&state, MINUTE_MS)),
        Err(RecordError::GrantAfterSave)
    );
}

#[test]
fn sr_dos_015_no_record_or_a_refused_load_is_typed_and_changes_nothing() {
    let mut capsule = FakeCapsule::new(None);
    assert_eq!(load_record(&mut capsule), Err(RecordError::Empty));
    capsule.record = std::vec![0xFF; 2000];
    // Longer than any record of this app: not one of its own.
    assert_eq!(load_record(&mut capsule), Err(RecordError::Malformed));
    let mut core = DosingCore::new(config(), SavedState::new(CatheterContents::Empty));
    assert_eq!(
        core.restore_record(&mut capsule, 0),
        Err(RecordError::Malformed)
    );
    assert_eq!(
        core.saved_state(),
        &SavedState::new(CatheterContents::Empty)
    );
}

#[test]
fn sr_dos_015_the_clock_resumes_from_the_record_only_when_it_restarted() {
    let restored =
        decode_record(&encoded(&SavedState::new(CatheterContents::Empty), HOUR_MS)).unwrap();
    // The pump reset: the app's clock starts again at 0.
    assert_eq!(restored.monotonic_offset_ms(0), HOUR_MS);
    assert_eq!(restored.monotonic_offset_ms(MINUTE_MS), HOUR_MS - MINUTE_MS);
    // A clock that kept running (the simulator, the system rig).
    assert_eq!(restored.monotonic_offset_ms(HOUR_MS), 0);
    assert_eq!(restored.monotonic_offset_ms(2 * HOUR_MS), 0);
}

/// The therapy allows a patient bolus every 2 h, the envelope every 1 h:
/// only the app's record keeps the stricter rule over a restart.
#[test]
fn sr_dos_015_a_restarted_app_keeps_the_therapys_lockout_from_its_record() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let granted = sim.core.request_patient_bolus(&mut sim.capsule, at(0));
    assert!(matches!(granted, PatientBolusVerdict::Granted { .. }));
    sim.run_until(90 * MINUTE_MS);
    let before_reset_ms = sim.monotonic_ms;

    // The pump resets: a new life of the app, its clock at 0, the UTC clock
    // where it was. The capsule's envelope lockout (1 h) is over.
    let utc_ms = sim.now().utc_ms;
    let restored = load_record(&mut sim.capsule).unwrap();
    // Refreshed while the grant is held: little of the clock is lost.
    assert!(
        before_reset_ms - restored.saved_at_monotonic_ms <= RECORD_REFRESH_MS.max(HOUR_MS / 2),
        "saved at {} ms, reset at {before_reset_ms} ms",
        restored.saved_at_monotonic_ms
    );
    // As the app does at start: a fresh core takes the record's state.
    let mut restarted = DosingCore::new(config(), SavedState::new(CatheterContents::Unknown));
    let offset_ms = restarted.restore_record(&mut sim.capsule, 0).unwrap();
    assert_eq!(offset_ms, restored.saved_at_monotonic_ms);
    assert_eq!(restarted.saved_state(), &restored.state);
    let now = Now {
        monotonic_ms: offset_ms,
        utc_ms,
    };
    restarted.wake(&mut sim.capsule, now);
    match restarted.request_patient_bolus(&mut sim.capsule, now) {
        PatientBolusVerdict::Denied {
            reason: ErrorCode::LockoutActive,
            decided_by: Decider::Dosing,
            lockout_remaining_ms,
            ..
        } => {
            // Lockout runs from the grant, on the resumed clock.
            let expected = 2 * HOUR_MS - restored.saved_at_monotonic_ms;
            assert_eq!(u64::from(lockout_remaining_ms), expected);
        }
        other => panic!("the therapy's lockout was forgotten: {other:?}"),
    }

    // Without the record the envelope alone decides, and it grants.
    let mut forgetful = DosingCore::new(config(), SavedState::new(CatheterContents::Unknown));
    forgetful.wake(&mut sim.capsule, now);
    assert!(matches!(
        forgetful.request_patient_bolus(&mut sim.capsule, now),
        PatientBolusVerdict::Granted { .. }
    ));
}

#[test]
fn sr_dos_015_a_refused_save_is_tried_again_at_the_next_wake_up() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let saves_at_start = sim.capsule.record_saves.len();
    sim.capsule.refuse_record = Some(ErrorCode::NotReady);
    sim.core.request_patient_bolus(&mut sim.capsule, at(0));
    assert!(sim.core.record_unsaved());
    assert_eq!(sim.capsule.record_saves.len(), saves_at_start);

    sim.capsule.refuse_record = None;
    let wake = sim.core.next_wakeup().at_monotonic_ms;
    sim.run_until(wake);
    assert!(!sim.core.record_unsaved());
    assert_eq!(
        sim.capsule
            .saved_record()
            .state
            .patient_grants_ms
            .as_slice(),
        [0]
    );
}

#[test]
fn sr_dos_015_a_held_grant_refreshes_the_record_every_15_minutes_however_often_the_app_wakes() {
    // A 2 min check-in timeout wakes the app every minute; the record is
    // refreshed only every 15 (its wear on the capsule's state ring).
    let rx = RxBuilder::new(1).envelope(|e| e.dosing_checkin_timeout_ms = 2 * 60_000);
    let mut sim = Sim::start(&rx, 0);
    sim.capsule.checkin_timeout_ms = 2 * 60_000;
    sim.run_until(MINUTE_MS);
    let granted = sim
        .core
        .request_patient_bolus(&mut sim.capsule, at(MINUTE_MS));
    assert!(matches!(granted, PatientBolusVerdict::Granted { .. }));
    let saves_at_grant = sim.capsule.record_saves.len();
    sim.run_until(6 * HOUR_MS);
    let refreshes = sim.capsule.record_saves.len() - saves_at_grant;
    // Saved with the grant at 1 min, then at 16, 31, ... 346 min: 23.
    assert!((23..=24).contains(&refreshes), "{refreshes} saves in 6 h");
    // Still refreshed: little of the clock is lost at a reset.
    let saved_at = sim.capsule.saved_record().saved_at_monotonic_ms;
    assert!(6 * HOUR_MS - saved_at <= RECORD_REFRESH_MS + MINUTE_MS);
}

#[test]
fn sr_dos_015_an_unchanged_state_without_grants_is_not_saved_again() {
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    let saves_at_start = sim.capsule.record_saves.len();
    sim.run_until(6 * HOUR_MS);
    assert_eq!(sim.capsule.record_saves.len(), saves_at_start);
}

proptest! {
    #[test]
    fn sr_dos_015_arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..900)) {
        let _ = decode_record(&bytes);
        let mut with_format = std::vec![RECORD_FORMAT];
        with_format.extend_from_slice(&bytes);
        let _ = decode_record(&with_format);
    }

    #[test]
    fn sr_dos_015_grants_and_flushes_round_trip(
        grants in proptest::collection::vec(0u64..DAY, 0..MAX_PATIENT_GRANTS),
        remaining_nl in any::<u32>(),
        bridge in any::<bool>(),
    ) {
        let mut state = SavedState::new(CatheterContents::Empty);
        state.patient_grants_ms = Vec::from_slice(&grants).unwrap();
        state.flush = Some(Flush {
            kind: if bridge { FlushKind::Bridge } else { FlushKind::Priming },
            remaining_nl,
        });
        let restored = decode_record(&encoded(&state, DAY)).unwrap();
        prop_assert_eq!(restored.state, state);
        prop_assert_eq!(restored.saved_at_monotonic_ms, DAY);
    }
}

const DAY: u64 = 24 * HOUR_MS;

/// Format 1's bytes are pinned: a change of them is a new format.
#[test]
fn sr_dos_015_format_1_bytes_are_pinned() {
    let empty = SavedState::new(CatheterContents::Empty);
    assert_eq!(encoded(&empty, 0), [0x01, 0x00, 0x01, 0x00, 0x00]);
    let mut state = SavedState::new(CatheterContents::Unknown);
    state.flush = Some(Flush {
        kind: FlushKind::Priming,
        remaining_nl: 300,
    });
    state.patient_grants_ms.push(1).unwrap();
    assert_eq!(
        encoded(&state, 128),
        [0x01, 0x80, 0x01, 0x00, 0x01, 0x00, 0xAC, 0x02, 0x01, 0x01]
    );
}

/// Any state the core could hold, saved at `saved_at_ms` or later.
fn arb_state() -> impl Strategy<Value = (SavedState, u64)> {
    let step = (any::<u16>(), any::<u32>()).prop_map(|(m, r)| BasalStep {
        start_minute_of_day: m,
        rate_ug_per_day: r,
    });
    let catheter = prop_oneof![
        Just(CatheterContents::Unknown),
        Just(CatheterContents::Empty),
        (
            "[a-zé]{0,8}",
            any::<u32>(),
            proptest::collection::vec(step, 0..=MAX_BASAL_STEPS)
        )
            .prop_map(|(name, conc, steps)| CatheterContents::Drug {
                drug: Drug {
                    name: String::from(name.as_str()),
                    concentration_ug_per_ml: conc,
                },
                basal_steps: Vec::from_slice(&steps).unwrap(),
            }),
    ];
    let flush =
        proptest::option::of(
            (any::<bool>(), any::<u32>()).prop_map(|(bridge, nl)| Flush {
                kind: if bridge {
                    FlushKind::Bridge
                } else {
                    FlushKind::Priming
                },
                remaining_nl: nl,
            }),
        );
    (
        catheter,
        flush,
        proptest::collection::vec(any::<u64>(), 0..=MAX_PATIENT_GRANTS),
        any::<u64>(),
    )
        .prop_map(|(catheter, flush, grants, extra)| {
            let saved_at_ms = grants.iter().copied().max().unwrap_or(0).max(extra);
            let mut state = SavedState::new(catheter);
            state.flush = flush;
            state.patient_grants_ms = Vec::from_slice(&grants).unwrap();
            (state, saved_at_ms)
        })
}

/// postcard's own encoding of a record body.
fn postcard_body(state: &SavedState, saved_at_ms: u64) -> std::vec::Vec<u8> {
    let mut buf = [0u8; 1024];
    postcard::to_slice(&(saved_at_ms, state), &mut buf)
        .unwrap()
        .to_vec()
}

/// postcard's own reading of a record body (lengths as on the 32-bit
/// target: a length needing more than 5 varint bytes does not occur here).
fn postcard_decode(body: &[u8]) -> Option<(u64, SavedState)> {
    match postcard::take_from_bytes::<(u64, SavedState)>(body) {
        Ok((value, [])) => Some(value),
        _ => None,
    }
}

proptest! {
    /// The hand-written codec writes exactly postcard's bytes.
    #[test]
    fn sr_dos_015_the_record_is_postcards_encoding((state, saved_at_ms) in arb_state()) {
        let bytes = encoded(&state, saved_at_ms);
        prop_assert!(bytes.len() <= SAVED_RECORD_MAX_LEN);
        let reference = postcard_body(&state, saved_at_ms);
        prop_assert_eq!(&bytes[1..], reference.as_slice());
        let restored = decode_record(&bytes).unwrap();
        prop_assert_eq!(restored.state, state);
        prop_assert_eq!(restored.saved_at_monotonic_ms, saved_at_ms);
    }

    /// A damaged record is read as postcard reads it, or refused if postcard
    /// refuses it (a grant after the save is refused on top).
    #[test]
    fn sr_dos_015_damaged_records_decode_as_postcard_decodes_them(
        (state, saved_at_ms) in arb_state(),
        position in any::<prop::sample::Index>(),
        edit in 0u8..3,
        value in any::<u8>(),
    ) {
        let mut bytes = encoded(&state, saved_at_ms);
        let at = 1 + position.index(bytes.len() - 1);
        match edit {
            0 => bytes[at] = value,
            1 => bytes.insert(at, value),
            _ => {
                bytes.remove(at);
            }
        }
        let ours = decode_record(&bytes).ok();
        let theirs = postcard_decode(&bytes[1..])
            .filter(|(at, s)| s.patient_grants_ms.iter().all(|t| t <= at));
        prop_assert_eq!(
            ours.map(|r| (r.saved_at_monotonic_ms, r.state)),
            theirs
        );
    }
}

/// The widest varints: the last byte may carry only the type's top bits.
#[test]
fn sr_dos_015_varints_past_their_width_are_refused_as_postcard_refuses_them() {
    let ff = [0xFFu8; 9];
    // saved_at = u64::MAX, catheter Empty, no flush, no grants.
    let mut widest = std::vec![RECORD_FORMAT];
    widest.extend_from_slice(&ff);
    widest.extend_from_slice(&[0x01, 0x01, 0x00, 0x00]);
    assert_eq!(
        decode_record(&widest).unwrap().saved_at_monotonic_ms,
        u64::MAX
    );
    let mut too_wide = widest.clone();
    too_wide[10] = 0x02;
    assert_eq!(decode_record(&too_wide), Err(RecordError::Malformed));
    assert!(postcard_decode(&too_wide[1..]).is_none());
    // An eleventh byte never ends a u64.
    let mut too_long = widest.clone();
    too_long[10] = 0x81;
    too_long.insert(11, 0x00);
    assert_eq!(decode_record(&too_long), Err(RecordError::Malformed));

    // A u32 (the catheter's variant index) in 5 bytes: 0x0F is its top.
    let variant = |last: u8| {
        let mut r = std::vec![RECORD_FORMAT, 0x00, 0x81, 0x80, 0x80, 0x80, last];
        r.extend_from_slice(&[0x00, 0x00]);
        r
    };
    assert_eq!(
        decode_record(&variant(0x00)).unwrap().state.catheter,
        CatheterContents::Empty
    );
    assert_eq!(decode_record(&variant(0x10)), Err(RecordError::Malformed));
    assert!(postcard_decode(&variant(0x10)[1..]).is_none());
}

#[test]
fn sr_dos_015_a_state_change_without_grants_is_saved_at_once() {
    // Verifies: SR-DOS-015
    // The first wake-up learns what the catheter holds.
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    assert!(!sim.core.record_unsaved());
    assert_eq!(&sim.capsule.saved_record().state, sim.core.saved_state());
    assert!(matches!(
        sim.capsule.saved_record().state.catheter,
        CatheterContents::Drug { .. }
    ));
    // A refill after a change of concentration starts a bridge.
    sim.capsule.prescription = Some(RxBuilder::new(2).drug("baclofen", 2_000).signed());
    sim.run_until(HOUR_MS);
    sim.command(pump_protocol::Message::Refill(pump_protocol::Refill {
        withdrawn_volume_nl: 1_000_000,
        added_volume_nl: 18_000_000,
        concentration_ug_per_ml: 2_000,
    }));
    let saved = sim.capsule.saved_record().state;
    assert_eq!(saved.flush.map(|f| f.kind), Some(FlushKind::Bridge));
    assert!(saved.patient_grants_ms.is_empty());
    assert_eq!(&saved, sim.core.saved_state());
}

#[test]
fn sr_dos_015_a_grant_leaves_the_record_a_day_later_and_the_refresh_stops() {
    // Verifies: SR-DOS-015, SR-DOS-010
    let mut sim = Sim::start(&RxBuilder::new(1), 0);
    sim.core.request_patient_bolus(&mut sim.capsule, at(0));
    sim.run_until(24 * HOUR_MS + HOUR_MS);
    assert!(sim.core.saved_state().patient_grants_ms.is_empty());
    assert!(sim
        .capsule
        .saved_record()
        .state
        .patient_grants_ms
        .is_empty());
    // No grant held: no refresh at all.
    let saves = sim.capsule.record_saves.len();
    sim.run_until(24 * HOUR_MS + 6 * HOUR_MS);
    assert_eq!(sim.capsule.record_saves.len(), saves);
}

#[test]
fn sr_dos_015_a_record_cut_short_anywhere_is_refused_whole() {
    // Verifies: SR-DOS-015
    let mut state = SavedState::new(CatheterContents::Drug {
        drug: Drug {
            name: String::from("baclofen"),
            concentration_ug_per_ml: 500,
        },
        basal_steps: RxBuilder::new(1).build().therapy.basal_steps,
    });
    state.patient_grants_ms.push(5 * MINUTE_MS).unwrap();
    let bytes = encoded(&state, HOUR_MS);
    assert_eq!(decode_record(&bytes).unwrap().state, state);
    for len in 1..bytes.len() {
        assert_eq!(
            decode_record(&bytes[..len]),
            Err(RecordError::Malformed),
            "cut to {len} bytes"
        );
    }
}
