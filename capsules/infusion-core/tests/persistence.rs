//! Resets and saved-state integrity.
mod support;

use pump_protocol::{AlarmCode, DeliveryKind, DeliveryOutcome, ErrorCode, Message};
use support::*;

#[test]
fn sr_per_001_reset_mid_bolus_neither_repeats_nor_forgets() {
    let mut core = running(0);
    core.start_bolus(
        DOSING,
        DeliveryKind::PatientBolus,
        100_000,
        10 * MINUTE_MS as u32,
        0,
    )
    .unwrap();
    advance(&mut core, 4 * MINUTE_MS, true);
    let steps_before = core.platform().steps;
    assert_eq!(steps_before, 160, "40 % of 400 steps");
    let delivered = core.delivered_24h_nl(4 * MINUTE_MS);
    let reservoir = core.reservoir_nl();
    drain(&mut core, 4 * MINUTE_MS);

    let mut core = reset(core, 5 * MINUTE_MS);
    assert!(!core.platform().motor_enabled);
    assert_eq!(core.delivered_24h_nl(5 * MINUTE_MS), delivered);
    assert_eq!(core.reservoir_nl(), reservoir);
    assert_eq!(core.bolus_remaining_nl(), 0, "not resumed, so not repeated");
    // The interrupted bolus is reported with exactly what it delivered.
    let events = drain(&mut core, 5 * MINUTE_MS);
    assert!(events.iter().any(|(_, m)| matches!(m,
        Message::DeliveryRecord(r) if r.delivery_kind == DeliveryKind::PatientBolus
            && r.outcome == DeliveryOutcome::Interrupted && r.volume_nl == 40_000)));
    // It still counts for the lockout and the daily total.
    assert_eq!(
        core.start_bolus(
            DOSING,
            DeliveryKind::PatientBolus,
            10_000,
            60_000,
            6 * MINUTE_MS
        ),
        Err(ErrorCode::LockoutActive)
    );
    advance(&mut core, DAY_MS, true);
    assert_eq!(core.platform().steps, 0, "nothing moves until asked");
}

#[test]
fn sr_per_001_event_sequence_numbers_continue_after_reset() {
    let mut core = running(0);
    let first = drain(&mut core, 0);
    let last = first.last().unwrap().0;
    let mut core = reset(core, 10);
    core.set_clock(TELEMETRY, 1_000, 10).unwrap();
    let after = drain(&mut core, 10);
    assert!(
        after.iter().all(|(s, _)| *s > last),
        "{last} then {after:?}"
    );
}

#[test]
fn sr_per_002_each_step_is_saved_before_the_motor_moves() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    let t = core.next_wakeup().unwrap();
    let saves_before = core.platform().saves;
    core.on_timer(t);
    assert_eq!(core.platform().steps, 1);
    assert!(core.platform().saves > saves_before);
    // The saved record already accounts the step: restoring it shows it delivered.
    let restored = reset(core, t);
    assert_eq!(restored.delivered_24h_nl(t), 250);
    assert_eq!(restored.reservoir_nl(), 10_000_000 - 250);
}

#[test]
fn sr_per_003_corrupt_state_fails_safe() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, HOUR_MS, true);
    let mut saved = core.platform().saved.clone().unwrap();
    let mid = saved.len() / 2;
    saved[mid] ^= 0x10;
    let mut core =
        infusion_core::InfusionCore::restore(board(), Rig::default(), Some(&saved), HOUR_MS);
    assert!(core.prescription().is_none());
    assert!(core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
    assert_eq!(
        core.set_basal(DOSING, 10_000, HOUR_MS),
        Err(ErrorCode::NoPrescription)
    );
    // A valid new prescription clears it.
    core.install_prescription(TELEMETRY, &signed(2), HOUR_MS)
        .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
}

/// A lost image is counted as the worst day the hardware allows: the
/// board's daily maximum, in whole steps, logged as unconfirmed and held in
/// the 24 h window (not more, which would lock the pump out for longer than
/// the loss can justify, and not less).
#[test]
fn sr_per_007_a_lost_image_counts_exactly_the_hardwares_daily_maximum_as_delivered() {
    // Verifies: SR-PER-007
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, HOUR_MS, true);
    let mut saved = core.platform().saved.clone().unwrap();
    let mid = saved.len() / 2;
    saved[mid] ^= 0x10;
    let mut core =
        infusion_core::InfusionCore::restore(board(), Rig::default(), Some(&saved), HOUR_MS);
    let nl_per_step = board().nl_per_step;
    let worst_nl = board().limits.max_volume_per_24h_nl / nl_per_step * nl_per_step;
    let unconfirmed: Vec<u32> = drain(&mut core, HOUR_MS)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::DeliveryRecord(r) if r.outcome == DeliveryOutcome::Unconfirmed => {
                Some(r.volume_nl)
            }
            _ => None,
        })
        .collect();
    assert_eq!(unconfirmed, vec![worst_nl]);
    assert_eq!(core.status(HOUR_MS).delivered_24h_nl, worst_nl);
}

/// The oracle's finding of 2026-12-07, as a test: a pump that lost its
/// image at the clock's origin, then was reprogrammed, resumed and refilled
/// by the clinic in the same millisecond, granted the patient a bolus,
/// because the assumed day was not yet in the window at that instant. The
/// lost day counts from the restore's own instant, so every bolus is
/// refused until it leaves the window 24 h later (SR-PER-007, SR-ENV-004).
#[test]
fn sr_per_007_a_lost_image_refuses_a_bolus_from_the_restores_own_instant_even_at_zero() {
    // Verifies: SR-PER-007
    let press = |core: &mut Core, at_ms| {
        core.start_bolus(DOSING, DeliveryKind::PatientBolus, 10_000, 60_000, at_ms)
    };
    let mut core = running(0);
    press(&mut core, 0).unwrap();
    let mut saved = core.platform().saved.clone().unwrap();
    let mid = saved.len() / 2;
    saved[mid] ^= 0x10;
    let mut core = infusion_core::InfusionCore::restore(board(), Rig::default(), Some(&saved), 0);
    let nl_per_step = board().nl_per_step;
    let worst_nl = board().limits.max_volume_per_24h_nl / nl_per_step * nl_per_step;
    assert_eq!(core.status(0).delivered_24h_nl, worst_nl);
    core.install_prescription(TELEMETRY, &signed(2), 0).unwrap();
    let counter = core.utc_ms(0) + 1;
    let resume = clinic_command(&Message::Resume(pump_protocol::Resume {}), counter);
    assert!(matches!(
        send_signed(&mut core, &resume, 0),
        infusion_core::CommandResult::SuccessU32U32(..)
    ));
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    assert_eq!(press(&mut core, 0), Err(ErrorCode::DailyLimitReached));
    assert_eq!(core.bolus_remaining_nl(), 0);
    assert_eq!(
        press(&mut core, DAY_MS - 1),
        Err(ErrorCode::DailyLimitReached)
    );
    assert_eq!(core.platform().steps, 0);
    // The day leaves the window exactly 24 h after the restore.
    core.check_in(DOSING, DAY_MS).unwrap();
    assert_eq!(core.status(DAY_MS).delivered_24h_nl, 0);
    press(&mut core, DAY_MS).unwrap();
}

/// An image of another format is not read as this one, even with a good
/// CRC: a firmware update that changed the layout restores as lost state
/// (SR-PER-007), never as fields read in the wrong places.
#[test]
fn sr_per_003_an_image_of_another_format_with_a_good_crc_is_refused() {
    // Verifies: SR-PER-003
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, HOUR_MS, true);
    let good = core.platform().saved.clone().unwrap();
    let body_len = good.len() - pump_protocol::CRC_LEN;
    let mut other = good[..body_len].to_vec();
    other[0] -= 1;
    let crc = pump_protocol::CRC32C.checksum(&other);
    other.extend_from_slice(&crc.to_le_bytes());
    let restored = |image: &[u8]| {
        infusion_core::InfusionCore::restore(board(), Rig::default(), Some(image), HOUR_MS)
    };
    assert!(restored(&good).prescription().is_some());
    let core = restored(&other);
    assert!(core.prescription().is_none());
    assert!(core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
}

/// The saved prescription must be the one the saved serial floor names: an
/// image (good CRC) whose floor disagrees with its prescription's serial
/// fails safe rather than trusting either.
#[test]
fn sr_per_003_a_prescription_that_is_not_the_saved_floors_fails_safe() {
    // Verifies: SR-PER-003
    let core = running(0);
    let good = core.platform().saved.clone().unwrap();
    let body_len = good.len() - pump_protocol::CRC_LEN;
    let mut body = good[..body_len].to_vec();
    // format, Some(signed prescription) as a varint length and its bytes,
    // then the serial floor: 1, the prescription's serial.
    assert_eq!(body[1], 1, "the image holds a prescription");
    let (len, len_bytes) = if body[2] & 0x80 == 0 {
        (usize::from(body[2]), 1)
    } else {
        (usize::from(body[2] & 0x7F) | (usize::from(body[3]) << 7), 2)
    };
    let floor_at = 2 + len_bytes + len;
    assert_eq!(body[floor_at], 1, "serial floor 1");
    body[floor_at] = 0;
    let crc = pump_protocol::CRC32C.checksum(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    let core = infusion_core::InfusionCore::restore(board(), Rig::default(), Some(&body), 10);
    assert!(core.prescription().is_none());
    assert!(core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
}

/// The core's time is the latest it has seen, and a restore starts from
/// the saved one: a board whose tick counter restarts at a reset goes on
/// from there, so no window runs backwards.
#[test]
fn sr_per_001_core_time_is_the_latest_seen_and_survives_a_reset() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    advance(&mut core, 5 * HOUR_MS, true);
    assert_eq!(core.core_time_ms(), 5 * HOUR_MS);
    let saved = core.platform().saved.clone().unwrap();
    let core = infusion_core::InfusionCore::restore(board(), Rig::default(), Some(&saved), 0);
    assert_eq!(core.core_time_ms(), 5 * HOUR_MS);
}

#[test]
fn sr_per_004_a_failed_state_write_stops_delivery_under_a_high_alarm() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    let t = HOUR_MS;
    advance(&mut core, t, true);
    let steps = core.platform().steps;
    assert!(steps > 0 && core.platform().motor_enabled);
    drain(&mut core, t);

    let saves = core.platform().saves;
    core.on_storage_fault(t);
    // Fails safe: motor off, high alarm shown, the basal closed, and the
    // core tries the write again.
    assert!(!core.platform().motor_enabled);
    assert!(core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
    assert_eq!(
        core.platform().signal.unwrap().priority,
        Some(pump_protocol::AlarmPriority::High)
    );
    assert!(core.platform().saves > saves);
    let events = drain(&mut core, t);
    assert!(events.iter().any(|(_, m)| matches!(m,
        Message::AlarmRaised(a) if a.code == AlarmCode::EnvelopeIntegrity)));
    assert!(events.iter().any(|(_, m)| matches!(m,
        Message::DeliveryRecord(r) if r.delivery_kind == DeliveryKind::Basal
            && r.outcome == DeliveryOutcome::Aborted)));

    // Nothing moves and nothing new starts while it stands.
    advance(&mut core, 3 * HOUR_MS, true);
    assert_eq!(core.platform().steps, steps);
    assert_eq!(
        core.set_basal(DOSING, 40_000, 3 * HOUR_MS),
        Err(ErrorCode::FaultActive)
    );
    // A repeated report raises nothing new.
    core.on_storage_fault(3 * HOUR_MS);
    assert!(!drain(&mut core, 3 * HOUR_MS)
        .iter()
        .any(|(_, m)| matches!(m, Message::AlarmRaised(_))));
    // Fault clearing cannot lift it; a newly installed prescription can.
    assert_eq!(
        core.clear_fault(TELEMETRY, AlarmCode::EnvelopeIntegrity, 3 * HOUR_MS),
        Err(ErrorCode::InvalidArgument)
    );
    core.install_prescription(TELEMETRY, &signed(2), 3 * HOUR_MS)
        .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
    core.set_basal(DOSING, 40_000, 3 * HOUR_MS).unwrap();
}

#[test]
fn sr_per_003_prescription_that_no_longer_verifies_fails_safe() {
    let core = running(0);
    let saved = core.platform().saved.clone().unwrap();
    // The same state, restored on a board that no longer trusts that key
    // (e.g. after a key revocation by firmware update).
    let mut board = board();
    board.clinic_keys.clear();
    board
        .clinic_keys
        .push(other_key().verifying_key().to_bytes())
        .unwrap();
    let core = infusion_core::InfusionCore::restore(board, Rig::default(), Some(&saved), 10);
    assert!(core.prescription().is_none());
    assert!(core.alarms().is_active(AlarmCode::EnvelopeIntegrity));
}

#[test]
fn saved_state_fits_its_buffer_at_the_worst_case() {
    let mut core = running(0);
    // Fill the ledger with as many runs as it holds in one day.
    let mut t = 0;
    let mut accepted = 0;
    for i in 0..200u32 {
        t += 60_000;
        advance(&mut core, t, true);
        // Each one-minute run makes at least one step, so it stays in the ledger.
        if core.set_basal(DOSING, 20_000 + i, t).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted >= infusion_core::ledger::MAX_RUNS as u32 - 1);
    core.save_app_record(DOSING, &[0xEE; infusion_core::APP_RECORD_MAX_LEN], t)
        .unwrap();
    let saved = core.platform().saved.clone().unwrap();
    assert!(
        saved.len() < infusion_core::SAVED_STATE_LEN,
        "{}",
        saved.len()
    );
    let restored = reset(core, t);
    assert_eq!(
        restored.ledger().runs().len(),
        infusion_core::ledger::MAX_RUNS
    );
}

#[test]
fn sr_per_005_the_dosing_apps_record_survives_resets() {
    let mut core = running(0);
    let mut buf = [0u8; infusion_core::APP_RECORD_MAX_LEN];
    assert_eq!(core.load_app_record(DOSING, &mut buf, 0), Ok(0));
    let saves = core.platform().saves;
    core.save_app_record(DOSING, b"grants:1,2,3", 1).unwrap();
    assert!(core.platform().saves > saves, "written at once");
    // The same record again costs no write.
    let saves = core.platform().saves;
    core.save_app_record(DOSING, b"grants:1,2,3", 2).unwrap();
    assert_eq!(core.platform().saves, saves);

    let mut core = reset(core, 10);
    let len = core.load_app_record(DOSING, &mut buf, 10).unwrap();
    assert_eq!(&buf[..len], b"grants:1,2,3");

    // Refusals change nothing: too long, a buffer too small, other roles.
    let too_long = [1u8; infusion_core::APP_RECORD_MAX_LEN + 1];
    assert_eq!(
        core.save_app_record(DOSING, &too_long, 11),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        core.load_app_record(DOSING, &mut buf[..3], 11),
        Err(ErrorCode::InvalidArgument)
    );
    for caller in [TELEMETRY, ROGUE] {
        assert_eq!(
            core.save_app_record(caller, b"forged", 12),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(
            core.load_app_record(caller, &mut buf, 12),
            Err(ErrorCode::NotPermitted)
        );
    }
    let len = core.load_app_record(DOSING, &mut buf, 13).unwrap();
    assert_eq!(&buf[..len], b"grants:1,2,3");
    // Through the command table.
    let mut rw = [0u8; 64];
    assert_eq!(
        core.command(
            DOSING,
            u32::from(infusion_core::command::SAVE_APP_RECORD),
            2,
            0,
            b"ok",
            &mut rw,
            14
        ),
        infusion_core::CommandResult::Success
    );
    assert_eq!(
        core.command(
            DOSING,
            u32::from(infusion_core::command::LOAD_APP_RECORD),
            0,
            0,
            &[],
            &mut rw,
            15
        ),
        infusion_core::CommandResult::SuccessU32(2)
    );
    assert_eq!(&rw[..2], b"ok");
    assert_eq!(
        core.command(
            DOSING,
            u32::from(infusion_core::command::SAVE_APP_RECORD),
            3,
            0,
            b"ok",
            &mut rw,
            16
        ),
        infusion_core::CommandResult::Failure(ErrorCode::InvalidArgument)
    );
}
