//! Alarm priorities and acknowledgement, the dosing watchdog, the event queue.
mod support;

use infusion_core::alarms::{priority_of, AlarmSet};
use infusion_core::events::{Event, EventQueue, EVENT_QUEUE_LEN};
use pump_protocol::{AlarmCode, AlarmPriority, DeliveryKind, ErrorCode, Message};
use support::*;

#[test]
fn sr_alm_001_priorities_follow_iec_60601_1_8() {
    use AlarmCode::*;
    use AlarmPriority::*;
    let expected = [
        (MotorStall, High),
        (Occlusion, High),
        (ReservoirEmpty, High),
        (EnvelopeIntegrity, High),
        (DosingWatchdog, High),
        (ReservoirLow, Medium),
        (BatteryReplacement, Medium),
        (AppFault, Medium),
        (RefillDue, Low),
        (RefillDiscrepancy, High),
        (EndOfService, High),
        (RepeatedResets, Medium),
        (SelfTestFailed, High),
        (UncommandedMotion, High),
        (SuspendedTooLong, Medium),
        (RepeatedFaults, Medium),
        (AlarmCode::Other(999), High),
    ];
    for (code, priority) in expected {
        assert_eq!(priority_of(code), priority, "{code:?}");
    }
    assert_eq!(
        AlarmCode::ALL.len(),
        16,
        "a new alarm code needs a priority here"
    );
}

#[test]
fn sr_alm_002_highest_active_alarm_wins() {
    let mut set = AlarmSet::default();
    assert_eq!(set.signal(0).priority, None);
    set.raise(AlarmCode::RefillDue);
    assert_eq!(set.signal(0).priority, Some(AlarmPriority::Low));
    set.raise(AlarmCode::ReservoirLow);
    assert_eq!(set.signal(0).priority, Some(AlarmPriority::Medium));
    set.raise(AlarmCode::Occlusion);
    assert_eq!(set.signal(0).priority, Some(AlarmPriority::High));
    assert_eq!(set.top(), Some(AlarmCode::Occlusion));
    set.clear(AlarmCode::Occlusion);
    assert_eq!(set.signal(0).priority, Some(AlarmPriority::Medium));
    // Raised highest first, the highest still wins (not the latest).
    let mut set = AlarmSet::default();
    set.raise(AlarmCode::Occlusion);
    set.raise(AlarmCode::ReservoirLow);
    set.raise(AlarmCode::RefillDue);
    assert_eq!(set.top(), Some(AlarmCode::Occlusion));
    assert_eq!(set.signal(0).priority, Some(AlarmPriority::High));
    // A silenced high alarm is silent even while a lower one sounds.
    set.silence(AlarmCode::Occlusion, 1_000);
    assert!(!set.signal(0).audible);
    assert!(set.signal(1_000).audible);

    // The same through the core and its alarm output.
    let mut core = running(0);
    core.on_battery(2_600, 5, true, 0);
    assert_eq!(
        core.platform().signal.unwrap().priority,
        Some(AlarmPriority::Medium)
    );
    core.on_fault_input(AlarmCode::MotorStall, true, 0);
    assert_eq!(
        core.platform().signal.unwrap().priority,
        Some(AlarmPriority::High)
    );
    assert!(core.platform().signal.unwrap().audible);
}

/// Command 1 packs the pump state in the low half of its first value and
/// the highest active alarm in the high half; the reservoir and the 24 h
/// volume follow. What the telemetry app shows is what the core decided.
#[test]
fn sr_alm_002_the_status_command_carries_the_highest_alarm_beside_the_state() {
    let mut core = running(0);
    core.on_battery(2_600, 5, true, 0);
    core.on_fault_input(AlarmCode::MotorStall, true, 0);
    let status = core.status(0);
    assert_eq!(status.top_alarm, Some(AlarmCode::MotorStall));
    let answer = core.command(
        TELEMETRY,
        u32::from(infusion_core::command::STATUS),
        0,
        0,
        &[],
        &mut [],
        0,
    );
    assert_eq!(
        answer,
        infusion_core::CommandResult::SuccessU32U32U32(
            u32::from(status.pump_state.code()) | (u32::from(AlarmCode::MotorStall.code()) << 16),
            status.reservoir_nl,
            status.delivered_24h_nl,
        )
    );
}

#[test]
fn sr_alm_003_acknowledge_silences_for_a_bounded_time_only() {
    let mut core = running(0);
    core.on_fault_input(AlarmCode::MotorStall, true, 0);
    core.acknowledge_alarm(TELEMETRY, AlarmCode::MotorStall, 1_000)
        .unwrap();
    let signal = core.platform().signal.unwrap();
    assert_eq!(signal.priority, Some(AlarmPriority::High));
    assert!(!signal.audible);
    assert!(
        core.alarms().is_active(AlarmCode::MotorStall),
        "cause not cleared"
    );
    // The core wakes when the silence ends and sounds again.
    assert_eq!(core.next_wakeup(), Some(1_000 + 2 * 60_000));
    core.on_timer(1_000 + 2 * 60_000);
    assert!(core.platform().signal.unwrap().audible);
    // Acknowledging an alarm that is not active is refused.
    assert_eq!(
        core.acknowledge_alarm(TELEMETRY, AlarmCode::Occlusion, 200_000),
        Err(ErrorCode::InvalidArgument)
    );
}

#[test]
fn sr_alm_004_fault_alarms_latch_until_cleared_properly() {
    let mut core = running(0);
    core.on_fault_input(AlarmCode::MotorStall, true, 0);
    core.on_fault_input(AlarmCode::MotorStall, false, 10);
    // Releasing the input does not resume anything.
    assert_eq!(
        core.set_basal(DOSING, 10_000, 20),
        Err(ErrorCode::FaultActive)
    );
    // Empty reservoir and watchdog faults cannot be cleared by command.
    assert_eq!(
        core.clear_fault(TELEMETRY, AlarmCode::ReservoirEmpty, 20),
        Err(ErrorCode::InvalidArgument)
    );
    core.clear_fault(TELEMETRY, AlarmCode::MotorStall, 30)
        .unwrap();
    assert_eq!(core.set_basal(DOSING, 10_000, 40), Ok(()));
}

#[test]
fn sr_wdg_001_check_in_keeps_the_watchdog_quiet() {
    let mut core = running(0);
    core.set_basal(DOSING, 20_000, 0).unwrap();
    assert_eq!(core.check_in(DOSING, 0), Ok(15 * 60_000));
    advance(&mut core, 3 * DAY_MS, true);
    assert!(!core.alarms().is_active(AlarmCode::DosingWatchdog));
    assert_eq!(core.basal_rate_nl_per_h(), 20_000);
}

/// SR-WDG-003: every start of the kernel is logged with the board's reset
/// reason; the second watchdog reset in a row raises the medium
/// `RepeatedResets` alarm, which leaves therapy running and which a
/// clinician clears.
#[test]
fn sr_wdg_003_kernel_starts_are_logged_and_repeated_watchdog_resets_alarm() {
    use infusion_core::{ResetReason, REPEATED_RESETS_ALARM_AT};
    let mut core = running(0);
    core.set_basal(DOSING, 20_000, 0).unwrap();
    drain(&mut core, 0);
    // A power-on and a first watchdog reset: logged, no alarm.
    core.on_kernel_start(ResetReason::PowerOn, 0, 1_000);
    core.on_kernel_start(ResetReason::Watchdog, 1, 2_000);
    let events = drain(&mut core, 2_000);
    let started: Vec<_> = events
        .iter()
        .filter_map(|(_, m)| match m {
            Message::KernelStarted(k) => Some((k.reset_reason, k.watchdog_resets)),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![(1, 0), (2, 1)]);
    assert!(!core.alarms().is_active(AlarmCode::RepeatedResets));
    assert_eq!(core.alarm_signal().priority, None);

    // The second in a row: the medium alarm, therapy untouched.
    core.on_kernel_start(ResetReason::Watchdog, REPEATED_RESETS_ALARM_AT, 3_000);
    assert!(core.alarms().is_active(AlarmCode::RepeatedResets));
    assert_eq!(core.alarm_signal().priority, Some(AlarmPriority::Medium));
    assert_eq!(core.basal_rate_nl_per_h(), 20_000);
    let events = drain(&mut core, 3_000);
    assert!(events.iter().any(|(_, m)| matches!(m,
        Message::AlarmRaised(a) if a.code == AlarmCode::RepeatedResets
            && a.priority == AlarmPriority::Medium)));
    // The alarm is in the therapy record: a reset keeps it.
    let mut core = reset(core, 4_000);
    assert!(core.alarms().is_active(AlarmCode::RepeatedResets));
    // A clinician clears it.
    core.clear_fault(TELEMETRY, AlarmCode::RepeatedResets, 5_000)
        .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::RepeatedResets));
    // A power-on never raises it, whatever the count says.
    core.on_kernel_start(ResetReason::PowerOn, 7, 6_000);
    assert!(!core.alarms().is_active(AlarmCode::RepeatedResets));
}

#[test]
fn sr_wdg_002_silent_dosing_app_gets_the_safe_basal_and_a_high_alarm() {
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    core.start_bolus(
        DOSING,
        DeliveryKind::ClinicianBolus,
        50_000,
        2 * HOUR_MS as u32,
        0,
    )
    .unwrap();
    core.check_in(DOSING, 0).unwrap();
    advance(&mut core, 20 * MINUTE_MS, false);
    assert!(core.alarms().is_active(AlarmCode::DosingWatchdog));
    assert_eq!(core.alarm_signal().priority, Some(AlarmPriority::High));
    assert_eq!(core.bolus_remaining_nl(), 0, "bolus stopped");
    assert_eq!(core.basal_rate_nl_per_h(), 10_000, "prescribed safe basal");
    // Checking in again clears the alarm; the safe basal runs until changed.
    core.check_in(DOSING, 30 * MINUTE_MS).unwrap();
    assert!(!core.alarms().is_active(AlarmCode::DosingWatchdog));

    // With the stop policy, everything stops.
    let mut rx = prescription(2);
    rx.envelope.silence_policy = pump_protocol::prescription::SilencePolicy::StopDelivery;
    core.install_prescription(TELEMETRY, &sign_with(&rx, &clinic_key()), HOUR_MS)
        .unwrap();
    core.set_basal(DOSING, 40_000, HOUR_MS).unwrap();
    advance(&mut core, 2 * HOUR_MS, false);
    assert!(core.alarms().is_active(AlarmCode::DosingWatchdog));
    assert_eq!(core.basal_rate_nl_per_h(), 0);
    assert!(!core.platform().motor_enabled);
}

#[test]
fn sr_evt_001_events_have_increasing_sequences_and_drain_whole() {
    let mut core = running(0);
    for i in 0..10 {
        let _ = core.set_basal(DOSING, 60_000 + i, 0);
    }
    // A buffer that holds a few frames takes whole frames only.
    let mut small = [0u8; 100];
    let (len, frames) = core.drain_events(TELEMETRY, &mut small, 0).unwrap();
    assert!(frames >= 1 && len <= 100);
    let mut decoder = pump_protocol::StreamDecoder::new();
    let mut decoded = 0;
    decoder.feed(&small[..len], |item| {
        assert!(matches!(item, pump_protocol::StreamItem::Frame { .. }));
        decoded += 1;
    });
    assert_eq!(decoded, frames);
    let rest = drain(&mut core, 0);
    let sequences: Vec<u32> = rest.iter().map(|(s, _)| *s).collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "{sequences:?}"
    );
    // Nothing was lost between the two drains.
    assert_eq!(sequences[0], frames as u32);
}

/// The queue says how many events wait, a pending gap report counting as
/// one, and that many `pop`s empty it: the count the core reports to the
/// telemetry app (command 13) is exactly what it can read.
#[test]
fn sr_evt_002_the_queue_counts_what_waits_and_a_gap_report_is_one_of_them() {
    let mut queue = EventQueue::starting_at(7);
    assert!(queue.is_empty());
    assert_eq!(queue.len(), 0);
    let event =
        |t| Event::PatientBolusRequested(pump_protocol::PatientBolusRequested { time_ms: t });
    for t in 0..3 {
        queue.push(event(t), t);
    }
    assert!(!queue.is_empty());
    assert_eq!(queue.len(), 3);
    for t in 3..(EVENT_QUEUE_LEN as u64 + 2) {
        queue.push(event(t), t);
    }
    // Full, and two dropped: the gap report waits too.
    assert_eq!(queue.len(), EVENT_QUEUE_LEN + 1);
    let mut popped = 0;
    while queue.pop().is_some() {
        popped += 1;
        assert_eq!(queue.len(), EVENT_QUEUE_LEN + 1 - popped);
    }
    assert_eq!(popped, EVENT_QUEUE_LEN + 1);
    assert!(queue.is_empty());
}

/// The count the core gives the telemetry app (`PENDING_EVENTS`) is exactly the
/// number of frames the next drain yields, a folded run of refusals
/// counting as one, and 0 once drained.
#[test]
fn sr_evt_002_the_pending_count_is_what_the_next_drain_yields() {
    let mut core = running(0);
    drain(&mut core, 0);
    assert_eq!(core.pending_events(), 0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    for _ in 0..5 {
        let _ = core.command(ROGUE, 2, 1, 0, &[], &mut [], 0);
    }
    let pending = core.pending_events();
    assert!(pending >= 2, "{pending}");
    let pending_events = u32::from(infusion_core::command::PENDING_EVENTS);
    let reported = core.command(TELEMETRY, pending_events, 0, 0, &[], &mut [], 0);
    assert_eq!(
        reported,
        infusion_core::CommandResult::SuccessU32(pending as u32)
    );
    assert_eq!(drain(&mut core, 0).len(), pending);
    assert_eq!(core.pending_events(), 0);
    // One refusal: its AccessDenied waits, the fold it opens holds nothing.
    let _ = core.command(ROGUE, 2, 1, 0, &[], &mut [], 0);
    assert_eq!(core.pending_events(), 1);
    assert_eq!(drain(&mut core, 0).len(), 1);
}

#[test]
fn sr_evt_002_overflow_drops_oldest_and_reports_the_exact_gap() {
    let mut queue = EventQueue::starting_at(100);
    let event =
        |t| Event::PatientBolusRequested(pump_protocol::PatientBolusRequested { time_ms: t });
    for t in 0..(EVENT_QUEUE_LEN as u64 + 5) {
        queue.push(event(t), t);
    }
    let first = queue.pop().unwrap();
    assert_eq!(first.sequence, 100);
    assert!(
        matches!(first.event, Event::LogGap(g) if g.first_missing_sequence == 100 && g.missing_count == 5)
    );
    let next = queue.pop().unwrap();
    assert_eq!(next.sequence, 105);
    assert_eq!(next.event, event(5));

    // Through the core: a flood of refusals never blocks delivery. Two
    // apps take turns, so no refusal folds into the one before it.
    let mut core = running(0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    for _ in 0..500 {
        let _ = core.command(ROGUE, 2, 1, 0, &[], &mut [], 0);
        let _ = core.command(DOSING, 13, 0, 0, &[], &mut [], 0);
    }
    advance(&mut core, HOUR_MS, true);
    assert_eq!(core.platform().steps, 160);
    let events = drain(&mut core, HOUR_MS);
    assert!(matches!(&events[0].1, Message::LogGap(g) if g.missing_count > 900));
}

#[test]
fn sr_evt_003_dosing_app_denials_are_logged_and_change_nothing() {
    let mut core = running(0);
    drain(&mut core, 0);
    let before = core.safety_state();
    let reason = u32::from(ErrorCode::LockoutActive.code());
    assert_eq!(
        core.command(DOSING, 21, reason, 90_000, &[], &mut [], 5),
        infusion_core::CommandResult::Success
    );
    assert_eq!(
        core.command(ROGUE, 21, reason, 0, &[], &mut [], 5),
        infusion_core::CommandResult::Failure(ErrorCode::NotPermitted)
    );
    assert_eq!(core.safety_state(), before);
    let events = drain(&mut core, 5);
    assert!(matches!(events[0].1, Message::PatientBolusRequested(_)));
    assert!(matches!(&events[1].1, Message::PatientBolusDenied(d)
        if d.reason == ErrorCode::LockoutActive && d.lockout_remaining_ms == 90_000));
}

#[test]
fn full_status_command_writes_a_status_snapshot() {
    let mut core = running(0);
    core.set_basal(DOSING, 20_000, 0).unwrap();
    let mut buf = [0u8; 128];
    let infusion_core::CommandResult::SuccessU32(len) =
        core.command(ROGUE, 20, 0, 0, &[], &mut buf, 10)
    else {
        panic!("full status refused");
    };
    let status: pump_protocol::StatusSnapshot = postcard::from_bytes(&buf[..len as usize]).unwrap();
    assert_eq!(status, core.status(10));
    assert_eq!(status.basal_rate_nl_per_h, 20_000);
    assert_eq!(
        core.command(ROGUE, 20, 0, 0, &[], &mut [0u8; 4], 10),
        infusion_core::CommandResult::Failure(ErrorCode::InvalidArgument)
    );
}

#[test]
fn sr_evt_002_gap_reports_carry_wall_clock_time() {
    let mut core = running(0);
    core.set_clock(TELEMETRY, 1_750_000_000_000, 0).unwrap();
    for _ in 0..50 {
        let _ = core.command(ROGUE, 2, 1, 0, &[], &mut [], 1_000);
        let _ = core.command(DOSING, 13, 0, 0, &[], &mut [], 1_000);
    }
    let events = drain(&mut core, 1_000);
    assert!(matches!(&events[0].1, Message::LogGap(g) if g.time_ms == 1_750_000_001_000));
}

/// A rogue app calling in a loop cannot push therapy events out: its
/// refusals after the first are one `AccessDeniedRepeated` with a count.
#[test]
fn sr_role_005_an_audit_flood_is_folded_and_keeps_therapy_events() {
    let mut core = running(0);
    drain(&mut core, 0);
    core.set_basal(DOSING, 40_000, 0).unwrap();
    for i in 0..1_000u64 {
        let _ = core.command(ROGUE, 2 + (i % 3) as u32, 1, 0, &[], &mut [], 10 + i);
    }
    // A therapy event in the middle of the flood.
    core.suspend(TELEMETRY, 2_000).unwrap();
    for i in 0..1_000u64 {
        let _ = core.command(ROGUE, 2, 1, 0, &[], &mut [], 3_000 + i);
    }
    assert!(core.pending_events() < 32, "{}", core.pending_events());
    let events: Vec<Message> = drain(&mut core, 5_000)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert!(!events.iter().any(|m| matches!(m, Message::LogGap(_))));
    assert!(events
        .iter()
        .any(|m| matches!(m, Message::PumpStateChanged(_))));
    let denied = events
        .iter()
        .filter(|m| matches!(m, Message::AccessDenied(a) if a.app_id == ROGUE.0))
        .count();
    let repeated: Vec<_> = events
        .iter()
        .filter_map(|m| match m {
            Message::AccessDeniedRepeated(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    // Every refusal is accounted for, in one record and its count.
    assert_eq!(denied, 1);
    assert_eq!(repeated.len(), 1);
    assert_eq!(repeated[0].count, 1_999);
    assert_eq!(repeated[0].app_id, ROGUE.0);
    assert_eq!(repeated[0].last_command, 2);
    assert_eq!(repeated[0].first_time_ms, 11);
    assert_eq!(repeated[0].time_ms, 3_999);
    // After a drain the next refusal opens a new record of its own.
    let _ = core.command(ROGUE, 7, 0, 0, &[], &mut [], 6_000);
    let events = drain(&mut core, 6_000);
    assert!(matches!(&events[..], [(_, Message::AccessDenied(a))] if a.command == 7));
}

#[test]
fn sr_alm_005_no_board_setting_silences_an_alarm_for_longer_than_15_minutes() {
    let max = u64::from(infusion_core::MAX_ALARM_SILENCE_MS);
    assert_eq!(max, 15 * 60_000);
    // A board asking for a day's silence gets 15 minutes.
    let mut config = board();
    config.alarm_silence_ms = 24 * 3_600_000;
    let mut core = infusion_core::InfusionCore::new(config, Rig::default());
    core.restore_from(None, 0);
    core.install_prescription(TELEMETRY, &signed(1), 0).unwrap();
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, 0)
        .unwrap();
    core.on_fault_input(AlarmCode::Occlusion, true, 0);
    core.acknowledge_alarm(TELEMETRY, AlarmCode::Occlusion, 1_000)
        .unwrap();
    assert!(!core.platform().signal.unwrap().audible);
    advance(&mut core, 1_000 + max - 1, true);
    assert!(!core.platform().signal.unwrap().audible);
    advance(&mut core, 1_000 + max, true);
    assert!(core.platform().signal.unwrap().audible);
    // The log says how long it really was.
    let silenced: Vec<u32> = drain(&mut core, 1_000 + max)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::AlarmAcknowledged(a) => Some(a.silence_duration_ms),
            _ => None,
        })
        .collect();
    assert_eq!(silenced, [infusion_core::MAX_ALARM_SILENCE_MS]);
}

#[test]
fn sr_alm_004_releasing_one_fault_input_does_not_clear_another() {
    // Found by the oracle's proptest front end: the stall and occlusion
    // inputs shared one flag, so releasing the stall input let a clinician
    // clear an occlusion whose input was still asserted.
    let mut core = running(0);
    core.on_fault_input(AlarmCode::Occlusion, true, 0);
    core.on_fault_input(AlarmCode::MotorStall, false, 10);
    assert_eq!(
        core.clear_fault(TELEMETRY, AlarmCode::Occlusion, 20),
        Err(ErrorCode::InvalidArgument)
    );
    assert_eq!(
        core.set_basal(DOSING, 10_000, 20),
        Err(ErrorCode::FaultActive)
    );
    core.on_fault_input(AlarmCode::Occlusion, false, 30);
    core.clear_fault(TELEMETRY, AlarmCode::Occlusion, 40)
        .unwrap();
    assert_eq!(core.set_basal(DOSING, 10_000, 50), Ok(()));
}

#[test]
fn sr_evt_004_every_programmer_action_and_every_fault_is_logged() {
    use pump_protocol::{ClearFault, Suspend};
    let mut core = running(0);
    drain(&mut core, 0);
    let kinds = |events: Vec<(u32, Message)>| -> Vec<String> {
        events
            .into_iter()
            .map(|(_, m)| {
                format!("{:?}", m.kind())
                    .replace("Some(", "")
                    .replace(')', "")
            })
            .collect()
    };
    // A signed command: accepted and what it did.
    let suspend = clinic_command(&Message::Suspend(Suspend {}), 1);
    assert!(matches!(
        send_signed(&mut core, &suspend, MINUTE_MS),
        infusion_core::CommandResult::SuccessU32U32(..)
    ));
    let logged = kinds(drain(&mut core, MINUTE_MS));
    assert!(
        logged.contains(&"CommandAuthenticated".into()),
        "{logged:?}"
    );
    assert!(logged.contains(&"PumpStateChanged".into()), "{logged:?}");
    // A refused one (replayed): refused, with nothing else.
    send_signed(&mut core, &suspend, 2 * MINUTE_MS);
    assert_eq!(kinds(drain(&mut core, 2 * MINUTE_MS)), ["CommandRefused"]);
    // A fault: raised; acknowledged; cleared.
    core.on_fault_input(AlarmCode::Occlusion, true, 3 * MINUTE_MS);
    assert!(kinds(drain(&mut core, 3 * MINUTE_MS)).contains(&"AlarmRaised".into()));
    core.acknowledge_alarm(TELEMETRY, AlarmCode::Occlusion, 4 * MINUTE_MS)
        .unwrap();
    assert!(kinds(drain(&mut core, 4 * MINUTE_MS)).contains(&"AlarmAcknowledged".into()));
    core.on_fault_input(AlarmCode::Occlusion, false, 5 * MINUTE_MS);
    let clear = clinic_command(
        &Message::ClearFault(ClearFault {
            code: AlarmCode::Occlusion,
        }),
        2,
    );
    send_signed(&mut core, &clear, 6 * MINUTE_MS);
    let logged = kinds(drain(&mut core, 6 * MINUTE_MS));
    assert!(logged.contains(&"AlarmCleared".into()), "{logged:?}");
    assert!(
        logged.contains(&"CommandAuthenticated".into()),
        "{logged:?}"
    );
    // A prescription refused, and one installed.
    let _ = core.install_prescription(TELEMETRY, &signed(1), 7 * MINUTE_MS);
    assert!(kinds(drain(&mut core, 7 * MINUTE_MS)).contains(&"PrescriptionRejected".into()));
    core.install_prescription(TELEMETRY, &signed(2), 8 * MINUTE_MS)
        .unwrap();
    assert!(kinds(drain(&mut core, 8 * MINUTE_MS)).contains(&"PrescriptionInstalled".into()));
}

#[test]
fn sr_alm_006_a_third_mechanism_fault_within_24_h_calls_for_the_clinic() {
    let fault = |core: &mut Core, code, t| {
        core.on_fault_input(code, true, t);
        core.on_fault_input(code, false, t + 1);
        core.clear_fault(TELEMETRY, code, t + 2).unwrap();
    };
    let mut core = running(0);
    fault(&mut core, AlarmCode::Occlusion, HOUR_MS);
    fault(&mut core, AlarmCode::MotorStall, 2 * HOUR_MS);
    assert!(!core.alarms().is_active(AlarmCode::RepeatedFaults));
    // 25.5 h: the first has left the window, so two in 24 h.
    fault(
        &mut core,
        AlarmCode::Occlusion,
        25 * HOUR_MS + 30 * MINUTE_MS,
    );
    assert!(!core.alarms().is_active(AlarmCode::RepeatedFaults));
    // 25.75 h: with the one at 2 h and the one at 25.5 h, three in 24 h.
    fault(
        &mut core,
        AlarmCode::Occlusion,
        25 * HOUR_MS + 45 * MINUTE_MS,
    );
    assert!(core.alarms().is_active(AlarmCode::RepeatedFaults));
    assert_eq!(
        priority_of(AlarmCode::RepeatedFaults),
        AlarmPriority::Medium
    );
    // The clinic clears it once it has looked.
    core.clear_fault(TELEMETRY, AlarmCode::RepeatedFaults, 26 * HOUR_MS)
        .unwrap();
    assert!(!core.alarms().is_active(AlarmCode::RepeatedFaults));
    // An input held asserted (bouncing) is one fault, not many.
    let mut core = running(0);
    for i in 0..5 {
        core.on_fault_input(AlarmCode::Occlusion, true, i * MINUTE_MS);
    }
    assert!(!core.alarms().is_active(AlarmCode::RepeatedFaults));
}

#[test]
fn sr_evt_004_an_app_fault_and_its_restart_are_logged_with_a_medium_alarm() {
    let mut core = running(0);
    drain(&mut core, 0);
    core.on_app_fault(DOSING, 7, MINUTE_MS);
    core.on_app_restart(DOSING, 1, MINUTE_MS);
    let events: Vec<Message> = drain(&mut core, MINUTE_MS)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert!(events.iter().any(|m| matches!(m,
        Message::AppFault(f) if f.app_id == DOSING.0 && f.fault_code == 7)));
    assert!(events.iter().any(|m| matches!(m,
        Message::AppRestarted(r) if r.app_id == DOSING.0 && r.restart_count == 1)));
    assert!(core.alarms().is_active(AlarmCode::AppFault));
    assert_eq!(
        core.platform().signal.unwrap().priority,
        Some(AlarmPriority::Medium)
    );
}

#[test]
fn sr_wdg_003_reset_reasons_round_trip_their_wire_codes_and_names() {
    use infusion_core::ResetReason;
    for (reason, code, name) in [
        (ResetReason::PowerOn, 1, "PowerOn"),
        (ResetReason::Watchdog, 2, "Watchdog"),
    ] {
        assert_eq!(reason.code(), code);
        assert_eq!(ResetReason::from_code(code), Some(reason));
        assert_eq!(reason.name(), name);
    }
    // A code this build does not know is kept as a number by readers.
    assert_eq!(ResetReason::from_code(0), None);
    assert_eq!(ResetReason::from_code(3), None);
}
