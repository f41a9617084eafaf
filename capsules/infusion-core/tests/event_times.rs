//! Every log entry is time-stamped (SR-EVT-005, GIP 4.1.3).
mod support;

use infusion_core::events::Event;
use infusion_core::selftest::SelfTest;
use infusion_core::ResetReason;
use pump_protocol::{AlarmCode, DeliveryKind, ErrorCode, Message, Suspend};
use std::collections::BTreeSet;
use support::*;

/// The time stamp of every kind of event the capsule can queue. The match
/// has no catch-all: a new event kind without a time stamp does not build.
fn stamp(event: &Event) -> u64 {
    match event {
        Event::StatusSnapshot(e) => e.time_ms,
        Event::DeliveryRecord(e) => e.time_ms,
        Event::PatientBolusRequested(e) => e.time_ms,
        Event::PatientBolusGranted(e) => e.time_ms,
        Event::PatientBolusDenied(e) => e.time_ms,
        Event::AlarmRaised(e) => e.time_ms,
        Event::AlarmAcknowledged(e) => e.time_ms,
        Event::AlarmCleared(e) => e.time_ms,
        Event::ReservoirLevel(e) => e.time_ms,
        Event::ReservoirRefilled(e) => e.time_ms,
        Event::BatteryState(e) => e.time_ms,
        Event::AppFault(e) => e.time_ms,
        Event::AppRestarted(e) => e.time_ms,
        Event::LogGap(e) => e.time_ms,
        Event::DeliveryDenied(e) => e.time_ms,
        Event::AccessDenied(e) => e.time_ms,
        Event::PrescriptionInstalled(e) => e.time_ms,
        Event::PrescriptionRejected(e) => e.time_ms,
        Event::ClockSet(e) => e.time_ms,
        Event::PumpStateChanged(e) => e.time_ms,
        Event::CommandAuthenticated(e) => e.time_ms,
        Event::CommandRefused(e) => e.time_ms,
        Event::RefillDiscrepancy(e) => e.time_ms,
        Event::AccessDeniedRepeated(e) => e.time_ms,
        Event::KernelStarted(e) => e.time_ms,
        Event::SelfTestFailed(e) => e.time_ms,
    }
}

/// The kind and time stamp of a drained event (the wire form of
/// [`stamp`]'s kinds).
fn kind_and_stamp(m: &Message) -> (&'static str, u64) {
    macro_rules! each {
        ($($k:ident),*) => {
            match m {
                $( Message::$k(e) => (stringify!($k), stamp(&Event::$k(e.clone()))), )*
                other => panic!("not an event: {other:?}"),
            }
        };
    }
    each!(
        StatusSnapshot,
        DeliveryRecord,
        PatientBolusRequested,
        PatientBolusGranted,
        PatientBolusDenied,
        AlarmRaised,
        AlarmAcknowledged,
        AlarmCleared,
        ReservoirLevel,
        ReservoirRefilled,
        BatteryState,
        AppFault,
        AppRestarted,
        LogGap,
        DeliveryDenied,
        AccessDenied,
        PrescriptionInstalled,
        PrescriptionRejected,
        ClockSet,
        PumpStateChanged,
        CommandAuthenticated,
        CommandRefused,
        RefillDiscrepancy,
        AccessDeniedRepeated,
        KernelStarted,
        SelfTestFailed
    )
}

/// The pump's clock is set to this UTC at monotonic 0.
const UTC0: u64 = 1_750_000_000_000;

struct Log {
    seen: BTreeSet<&'static str>,
    last_stamp: u64,
}

impl Log {
    /// Drains at `now`: every entry is stamped with the pump's UTC at an
    /// instant in `(since, now]`, and stamps never go backwards.
    fn check(&mut self, core: &mut Core, since: u64, now: u64) {
        for (_, m) in drain(core, now) {
            let (kind, t) = kind_and_stamp(&m);
            assert!(
                t >= UTC0 + since && t <= UTC0 + now,
                "{kind} stamped {t}, not in ({}, {}]",
                UTC0 + since,
                UTC0 + now
            );
            assert!(
                t >= self.last_stamp,
                "{kind} stamped before the entry ahead of it"
            );
            self.last_stamp = t;
            self.seen.insert(kind);
        }
    }

    /// As [`check`](Self::check), for what one action at `now` logged: every
    /// entry carries exactly `now`.
    fn at(&mut self, core: &mut Core, now: u64) {
        self.check(core, now, now);
    }
}

#[test]
fn sr_evt_005_every_kind_of_log_entry_carries_the_time_it_happened() {
    // Verifies: SR-EVT-005
    let mut log = Log {
        seen: BTreeSet::new(),
        last_stamp: 0,
    };
    let mut core = fresh(0);
    core.set_clock(TELEMETRY, UTC0, 0).unwrap();
    log.at(&mut core, 0);
    let mut t = MINUTE_MS;
    core.on_kernel_start(ResetReason::Watchdog, 1, t);
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.install_prescription(TELEMETRY, &sign_with(&prescription(1), &other_key()), t)
        .unwrap_err();
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.install_prescription(TELEMETRY, &signed(1), t).unwrap();
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.refill(TELEMETRY, 0, 10_000_000, CONCENTRATION_UG_PER_ML, t)
        .unwrap();
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.refill(TELEMETRY, 20_000_000, 0, CONCENTRATION_UG_PER_ML, t)
        .unwrap_err();
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.clear_fault(TELEMETRY, AlarmCode::RefillDiscrepancy, t)
        .ok();
    log.at(&mut core, t);
    // Basal checkpoints over three hours, then a patient bolus, one
    // refused by the dosing app, one the capsule refuses, and an oversize
    // clinician bolus.
    t += MINUTE_MS;
    core.set_basal(DOSING, 40_000, t).unwrap();
    log.at(&mut core, t);
    let since = t;
    t += 3 * HOUR_MS;
    advance(&mut core, t, true);
    log.check(&mut core, since, t);
    core.start_bolus(DOSING, DeliveryKind::PatientBolus, 500, 60_000, t)
        .unwrap();
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.report_patient_denial(DOSING, ErrorCode::LockoutActive, 60_000, t)
        .unwrap();
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.start_bolus(DOSING, DeliveryKind::PatientBolus, 500, 60_000, t)
        .unwrap_err();
    log.at(&mut core, t);
    let since = t;
    t += HOUR_MS;
    advance(&mut core, t, true);
    log.check(&mut core, since, t);
    core.start_bolus(
        DOSING,
        DeliveryKind::ClinicianBolus,
        u32::MAX / 2,
        60_000,
        t,
    )
    .unwrap_err();
    log.at(&mut core, t);
    // Signed commands: one carried out, one forged.
    t += MINUTE_MS;
    send_signed(
        &mut core,
        &clinic_command(&Message::Suspend(Suspend {}), 1),
        t,
    );
    log.at(&mut core, t);
    t += MINUTE_MS;
    let forged = command_signed_for(
        &Message::Suspend(Suspend {}),
        pump_protocol::command_auth::Signer::Clinic,
        &other_key(),
        DEVICE_ID,
        2,
    );
    send_signed(&mut core, &forged, t);
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.resume(TELEMETRY, t).ok();
    log.at(&mut core, t);
    // Faults, alarms and their handling.
    t += MINUTE_MS;
    core.on_fault_input(AlarmCode::Occlusion, true, t);
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.acknowledge_alarm(TELEMETRY, AlarmCode::Occlusion, t)
        .unwrap();
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.on_fault_input(AlarmCode::Occlusion, false, t);
    core.clear_fault(TELEMETRY, AlarmCode::Occlusion, t)
        .unwrap();
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.on_battery(2_900, 40, true, t);
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.on_app_fault(DOSING, 3, t);
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.on_app_restart(DOSING, 1, t);
    log.at(&mut core, t);
    t += MINUTE_MS;
    core.on_self_test(SelfTest::Clock, Err(4_000), t);
    log.at(&mut core, t);
    // Refusals of another app, folded into one entry when drained.
    t += MINUTE_MS;
    for _ in 0..3 {
        core.suspend(ROGUE, t).unwrap_err();
    }
    log.at(&mut core, t);
    // More entries than the queue holds: the gap report is stamped too.
    t += MINUTE_MS;
    for code in 0..40 {
        core.on_app_fault(DOSING, code, t);
    }
    log.at(&mut core, t);

    // Every kind the capsule queues was seen. A `StatusSnapshot` is the
    // answer to `GetStatus`, never queued, and is stamped as `stamp` shows.
    let every: BTreeSet<&str> = [
        "DeliveryRecord",
        "PatientBolusRequested",
        "PatientBolusGranted",
        "PatientBolusDenied",
        "AlarmRaised",
        "AlarmAcknowledged",
        "AlarmCleared",
        "ReservoirLevel",
        "ReservoirRefilled",
        "BatteryState",
        "AppFault",
        "AppRestarted",
        "LogGap",
        "DeliveryDenied",
        "AccessDenied",
        "PrescriptionInstalled",
        "PrescriptionRejected",
        "ClockSet",
        "PumpStateChanged",
        "CommandAuthenticated",
        "CommandRefused",
        "RefillDiscrepancy",
        "AccessDeniedRepeated",
        "KernelStarted",
        "SelfTestFailed",
    ]
    .into_iter()
    .collect();
    let missing: Vec<_> = every.difference(&log.seen).collect();
    assert!(missing.is_empty(), "never logged: {missing:?}");
}
