//! Caller roles and prescription installation.
mod support;

use infusion_core::{command, CommandResult};
use pump_protocol::{DeliveryKind, ErrorCode, Message};
use support::*;

#[test]
fn sr_role_001_only_dosing_starts_or_stops_deliveries() {
    let mut core = running(0);
    for app in [TELEMETRY, ROGUE] {
        assert_eq!(core.set_basal(app, 10_000, 0), Err(ErrorCode::NotPermitted));
        assert_eq!(
            core.start_bolus(app, DeliveryKind::ClinicianBolus, 10_000, 60_000, 0),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(core.stop_bolus(app, 0), Err(ErrorCode::NotPermitted));
        assert_eq!(core.check_in(app, 0), Err(ErrorCode::NotPermitted));
    }
    assert_eq!(core.set_basal(DOSING, 10_000, 0), Ok(()));
    assert_eq!(core.basal_rate_nl_per_h(), 10_000);
}

#[test]
fn sr_role_002_only_telemetry_relays_programmer_commands() {
    let mut core = running(0);
    let mut buf = [0u8; 1024];
    for app in [DOSING, ROGUE] {
        assert_eq!(
            core.install_prescription(app, &signed(2), 0),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(
            core.drain_events(app, &mut buf, 0),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(core.suspend(app, 0), Err(ErrorCode::NotPermitted));
        assert_eq!(core.resume(app, 0), Err(ErrorCode::NotPermitted));
        assert_eq!(
            core.refill(app, 0, 1, CONCENTRATION_UG_PER_ML, 0),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(core.set_clock(app, 5, 0), Err(ErrorCode::NotPermitted));
        assert_eq!(
            core.acknowledge_alarm(app, pump_protocol::AlarmCode::ReservoirLow, 0),
            Err(ErrorCode::NotPermitted)
        );
    }
    assert_eq!(core.prescription().unwrap().serial, 1);
    assert_eq!(core.install_prescription(TELEMETRY, &signed(2), 0), Ok(()));
    assert_eq!(core.prescription().unwrap().serial, 2);
}

#[test]
fn sr_role_003_violation_changes_nothing_and_is_audited() {
    let mut core = running(0);
    core.set_basal(DOSING, 10_000, 0).unwrap();
    drain(&mut core, 0);
    let before = core.safety_state();
    let result = core.command(ROGUE, 2, 50_000, 0, &[], &mut [], 1_000);
    assert_eq!(result, CommandResult::Failure(ErrorCode::NotPermitted));
    assert_eq!(
        infusion_core::tock_error_name(ErrorCode::NotPermitted),
        "NODEVICE"
    );
    assert_eq!(core.safety_state(), before);
    let events = drain(&mut core, 1_000);
    assert!(matches!(
        events.as_slice(),
        [(_, Message::AccessDenied(a))] if a.app_id == ROGUE.0 && a.command == command::SET_BASAL
    ));
}

#[test]
fn sr_role_003_any_app_may_read_status() {
    let mut core = running(0);
    let result = core.command(ROGUE, 1, 0, 0, &[], &mut [], 0);
    let CommandResult::SuccessU32U32U32(state, reservoir, delivered) = result else {
        panic!("status refused: {result:?}");
    };
    assert_eq!(
        state & 0xffff,
        u32::from(pump_protocol::PumpState::Running.code())
    );
    assert_eq!(reservoir, 10_000_000);
    assert_eq!(delivered, 0);
}

#[test]
fn sr_role_004_unknown_commands_are_not_supported() {
    let mut core = running(0);
    let before = core.safety_state();
    for num in [30, 99, 0xffff, u32::MAX] {
        assert_eq!(
            core.command(DOSING, num, 1, 2, &[], &mut [], 0),
            CommandResult::Failure(ErrorCode::NoSupport)
        );
    }
    assert_eq!(
        core.command(ROGUE, 0, 0, 0, &[], &mut [], 0),
        CommandResult::Success
    );
    assert_eq!(core.safety_state(), before);
}

#[test]
fn sr_rx_001_only_clinic_signatures_install() {
    let mut core = fresh(0);
    let forged = sign_with(&prescription(1), &other_key());
    assert_eq!(
        core.install_prescription(TELEMETRY, &forged, 0),
        Err(ErrorCode::InvalidSignature)
    );
    let mut tampered = signed(1);
    tampered[5] ^= 0x01;
    assert_eq!(
        core.install_prescription(TELEMETRY, &tampered, 0),
        Err(ErrorCode::InvalidSignature)
    );
    let mut bad_signature = signed(1);
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x80;
    assert_eq!(
        core.install_prescription(TELEMETRY, &bad_signature, 0),
        Err(ErrorCode::InvalidSignature)
    );
    assert_eq!(
        core.install_prescription(TELEMETRY, &[1, 2, 3], 0),
        Err(ErrorCode::MalformedPrescription)
    );
    assert!(core.prescription().is_none());
    assert_eq!(core.install_prescription(TELEMETRY, &signed(1), 0), Ok(()));
    assert!(core.prescription().is_some());
}

#[test]
fn sr_rx_002_prescription_for_another_device_is_refused() {
    let mut core = fresh(0);
    let mut rx = prescription(1);
    rx.device_id = DEVICE_ID + 1;
    let signed = sign_with(&rx, &clinic_key());
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed, 0),
        Err(ErrorCode::WrongDevice)
    );
}

#[test]
fn sr_rx_003_replayed_or_rolled_back_serial_is_refused() {
    let mut core = fresh(0);
    core.install_prescription(TELEMETRY, &signed(5), 0).unwrap();
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(5), 0),
        Err(ErrorCode::ReplayedSerial)
    );
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(4), 0),
        Err(ErrorCode::ReplayedSerial)
    );
    assert_eq!(core.install_prescription(TELEMETRY, &signed(6), 0), Ok(()));
    // The floor survives a reset.
    let mut core = reset(core, 10);
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(6), 10),
        Err(ErrorCode::ReplayedSerial)
    );
}

#[test]
fn sr_rx_004_limits_outside_hardware_are_refused() {
    let mut core = fresh(0);
    let cases: [fn(&mut pump_protocol::prescription::Prescription); 5] = [
        |rx| rx.envelope.max_basal_rate_nl_per_h = 10_000_001,
        |rx| rx.envelope.max_bolus_nl = 500_001,
        |rx| rx.envelope.max_volume_per_24h_nl = 10_000_001,
        |rx| rx.envelope.dosing_checkin_timeout_ms = 10,
        // A unit mix-up: a µL/h safe basal typed as nL/h is far above the daily limit.
        |rx| {
            rx.envelope.silence_policy = pump_protocol::prescription::SilencePolicy::ContinueBasal {
                rate_nl_per_h: 10_000_000,
            }
        },
    ];
    for (i, mutate) in cases.iter().enumerate() {
        let mut rx = prescription(1);
        mutate(&mut rx);
        let signed = sign_with(&rx, &clinic_key());
        assert_eq!(
            core.install_prescription(TELEMETRY, &signed, 0),
            Err(ErrorCode::OutsideHardwareLimits),
            "case {i}"
        );
    }
    assert!(core.prescription().is_none());
}

/// The internal-consistency checks at their edges: a safe (silence) basal
/// whose 24 h would exceed the daily maximum by one nanolitre, a
/// concentration of zero and a daily maximum of zero are refused; the safe
/// basal whose 24 h is exactly the daily maximum installs.
#[test]
fn sr_rx_004_inconsistent_limits_are_refused_at_their_exact_edges() {
    let silence_at = |rate_nl_per_h: u32, max_24h_nl: u32| {
        let mut rx = prescription(1);
        rx.envelope.silence_policy =
            pump_protocol::prescription::SilencePolicy::ContinueBasal { rate_nl_per_h };
        rx.envelope.max_volume_per_24h_nl = max_24h_nl;
        rx
    };
    let mut zero_concentration = prescription(1);
    zero_concentration.concentration_ug_per_ml = 0;
    let mut zero_daily = prescription(1);
    zero_daily.envelope.max_volume_per_24h_nl = 0;
    zero_daily.envelope.silence_policy = pump_protocol::prescription::SilencePolicy::StopDelivery;
    let refused = [
        silence_at(50_000, 24 * 50_000 - 1),
        zero_concentration,
        zero_daily,
    ];
    let mut core = fresh(0);
    for (i, rx) in refused.iter().enumerate() {
        assert_eq!(
            core.install_prescription(TELEMETRY, &sign_with(rx, &clinic_key()), 0),
            Err(ErrorCode::OutsideHardwareLimits),
            "case {i}"
        );
    }
    assert!(core.prescription().is_none());
    let exact = silence_at(50_000, 24 * 50_000);
    assert_eq!(
        core.install_prescription(TELEMETRY, &sign_with(&exact, &clinic_key()), 0),
        Ok(())
    );
}

#[test]
fn sr_rx_005_no_step_without_prescription() {
    let mut core = fresh(0);
    assert_eq!(
        core.set_basal(DOSING, 10_000, 0),
        Err(ErrorCode::NoPrescription)
    );
    assert_eq!(
        core.start_bolus(DOSING, DeliveryKind::ClinicianBolus, 10_000, 1_000, 0),
        Err(ErrorCode::NoPrescription)
    );
    advance(&mut core, DAY_MS, true);
    assert_eq!(core.platform().steps, 0);
    assert!(!core.platform().motor_enabled);
    assert_eq!(core.next_wakeup(), None);
}

#[test]
fn sr_rx_006_rejected_prescription_changes_nothing() {
    let mut core = running(0);
    core.set_basal(DOSING, 10_000, 0).unwrap();
    drain(&mut core, 0);
    let before = core.safety_state();
    assert_eq!(
        core.install_prescription(TELEMETRY, &signed(1), 5),
        Err(ErrorCode::ReplayedSerial)
    );
    assert_eq!(core.safety_state(), before);
    assert_eq!(core.basal_rate_nl_per_h(), 10_000);
    let events = drain(&mut core, 5);
    assert!(matches!(
        events.as_slice(),
        [(_, Message::PrescriptionRejected(r))] if r.serial == 1 && r.reason == ErrorCode::ReplayedSerial
    ));
}

#[test]
fn installing_a_prescription_stops_deliveries_until_requested_again() {
    let mut core = running(0);
    core.set_basal(DOSING, 10_000, 0).unwrap();
    core.install_prescription(TELEMETRY, &signed(2), HOUR_MS)
        .unwrap();
    assert_eq!(core.basal_rate_nl_per_h(), 0);
    assert!(!core.platform().motor_enabled);
}

#[test]
fn sr_role_003_a_refused_bolus_is_audited_under_its_own_command() {
    let mut core = running(0);
    drain(&mut core, 0);
    for (kind, num) in [
        (DeliveryKind::ClinicianBolus, command::CLINICIAN_BOLUS),
        (DeliveryKind::PatientBolus, command::PATIENT_BOLUS),
        (DeliveryKind::Priming, command::PRIMING_BOLUS),
        (DeliveryKind::Bridge, command::BRIDGE_BOLUS),
    ] {
        assert_eq!(
            core.start_bolus(ROGUE, kind, 10_000, 60_000, 0),
            Err(ErrorCode::NotPermitted)
        );
        let audited: Vec<u16> = drain(&mut core, 0)
            .into_iter()
            .filter_map(|(_, m)| match m {
                Message::AccessDenied(a) => Some(a.command),
                _ => None,
            })
            .collect();
        assert_eq!(audited, [num], "{kind:?}");
    }
}
