//! Property tests: arbitrary interleavings of commands from every role, time
//! jumps, motor faults, refills and resets, checked against a reference model
//! of who may do what, and against the safety invariants.
mod support;

use infusion_core::ledger::{Channel, MS_PER_HOUR, WINDOW_MS};
use infusion_core::AppId;
use proptest::prelude::*;
use pump_protocol::{AlarmCode, DeliveryKind, ErrorCode};
use support::*;

#[derive(Clone, Debug)]
enum RxVariant {
    Next,
    Replay,
    Tampered,
    OtherKey,
    WrongDevice,
    TightDailyLimit,
}

#[derive(Clone, Debug)]
enum Op {
    Wait(u64),
    SetBasal(AppId, u32),
    Bolus(AppId, DeliveryKind, u32, u32),
    StopBolus(AppId),
    CheckIn(AppId),
    Install(AppId, RxVariant),
    Refill(AppId, u32, u32, bool),
    Suspend(AppId),
    Resume(AppId),
    Acknowledge(AppId, AlarmCode),
    ClearFault(AppId, AlarmCode),
    FaultInput(AlarmCode, bool),
    EncoderPulse,
    Reset,
    SetClock(AppId, u64),
    Raw(AppId, u32, u32, u32),
}

fn app() -> impl Strategy<Value = AppId> {
    prop_oneof![4 => Just(DOSING), 3 => Just(TELEMETRY), 2 => Just(ROGUE)]
}

fn alarm() -> impl Strategy<Value = AlarmCode> {
    prop::sample::select(AlarmCode::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop::sample::select(vec![
        DeliveryKind::ClinicianBolus,
        DeliveryKind::PatientBolus,
        DeliveryKind::Priming,
        DeliveryKind::Bridge,
    ]);
    let variant = prop_oneof![
        4 => Just(RxVariant::Next),
        1 => Just(RxVariant::Replay),
        1 => Just(RxVariant::Tampered),
        1 => Just(RxVariant::OtherKey),
        1 => Just(RxVariant::WrongDevice),
        2 => Just(RxVariant::TightDailyLimit),
    ];
    prop_oneof![
        8 => (1u64..2 * MS_PER_HOUR).prop_map(Op::Wait),
        1 => (1u64..30 * MS_PER_HOUR).prop_map(Op::Wait),
        6 => (app(), prop_oneof![Just(0u32), 1u32..80_000]).prop_map(|(a, r)| Op::SetBasal(a, r)),
        5 => (app(), kind, 0u32..150_000, 0u32..(3 * MS_PER_HOUR as u32))
            .prop_map(|(a, k, v, d)| Op::Bolus(a, k, v, d)),
        1 => app().prop_map(Op::StopBolus),
        5 => app().prop_map(Op::CheckIn),
        3 => (app(), variant).prop_map(|(a, v)| Op::Install(a, v)),
        2 => (app(), 0u32..3_000_000, 0u32..12_000_000, prop::bool::weighted(0.9))
            .prop_map(|(a, w, v, c)| Op::Refill(a, w, v, c)),
        1 => app().prop_map(Op::Suspend),
        2 => app().prop_map(Op::Resume),
        1 => (app(), alarm()).prop_map(|(a, c)| Op::Acknowledge(a, c)),
        2 => (app(), alarm()).prop_map(|(a, c)| Op::ClearFault(a, c)),
        1 => (prop::sample::select(vec![AlarmCode::MotorStall, AlarmCode::Occlusion]), any::<bool>())
            .prop_map(|(c, on)| Op::FaultInput(c, on)),
        1 => Just(Op::EncoderPulse),
        1 => Just(Op::Reset),
        1 => (app(), any::<u64>()).prop_map(|(a, t)| Op::SetClock(a, t)),
        2 => (app(), 0u32..31, any::<u32>(), any::<u32>()).prop_map(|(a, c, x, y)| Op::Raw(a, c, x, y)),
    ]
}

/// The reference model: what the capsule's role table and prescription
/// rules say, kept independently of the implementation.
struct Model {
    serial_floor: u32,
    installed: bool,
    max_24h_nl: u64,
}

impl Model {
    fn allowed(app: AppId, dosing_op: bool) -> bool {
        if dosing_op {
            app == DOSING
        } else {
            app == TELEMETRY
        }
    }
}

struct Harness {
    core: Core,
    now: u64,
    model: Model,
    /// `(time, steps made at that time, daily limit in force)`.
    steps: Vec<(u64, u64, u64)>,
}

impl Harness {
    fn new() -> Self {
        Self {
            core: running(0),
            now: 0,
            model: Model {
                serial_floor: 1,
                installed: true,
                max_24h_nl: u64::from(envelope().max_volume_per_24h_nl),
            },
            steps: Vec::new(),
        }
    }

    fn timer(&mut self, t: u64) -> Result<(), TestCaseError> {
        let blocked = self.core.alarms().codes().any(|c| {
            matches!(
                c,
                AlarmCode::MotorStall
                    | AlarmCode::Occlusion
                    | AlarmCode::ReservoirEmpty
                    | AlarmCode::EnvelopeIntegrity
            )
        });
        let has_rx = self.core.prescription().is_some();
        let before = self.core.platform().steps;
        self.core.on_timer(t);
        let made = self.core.platform().steps - before;
        if made > 0 {
            // SR-RX-005: no step without a valid prescription.
            prop_assert!(has_rx, "stepped without a prescription at {t}");
            // SR-ALM-004: no step while a fault latch is set.
            prop_assert!(!blocked, "stepped during a fault at {t}");
            self.steps.push((t, made, self.model.max_24h_nl));
        }
        prop_assert!(!self.core.platform().stepped_while_disabled, "SR-MOT-005");
        // SR-MOT-001: every running delivery is exactly on its curve, which
        // is within one step of the ideal volume.
        for run in self.core.ledger().runs().iter().filter(|r| r.active) {
            prop_assert_eq!(run.steps_done, run.steps_due(t, NL_PER_STEP));
            let made =
                u128::from(run.steps_done) * u128::from(NL_PER_STEP) * u128::from(MS_PER_HOUR);
            let behind = run.progress(t).saturating_sub(made);
            let planned_done = run.steps_planned.is_some_and(|p| run.steps_done >= p);
            prop_assert!(
                planned_done || behind < u128::from(NL_PER_STEP) * u128::from(MS_PER_HOUR)
            );
        }
        Ok(())
    }

    fn wait(&mut self, until: u64) -> Result<(), TestCaseError> {
        while let Some(t) = self.core.next_wakeup() {
            if t > until {
                break;
            }
            prop_assert!(t >= self.now, "wake-up in the past");
            self.now = t;
            self.timer(t)?;
        }
        self.now = until;
        self.timer(until)
    }

    /// Runs a typed command and checks SR-ROLE-003 and "every refusal leaves
    /// state unchanged".
    fn check<T: std::fmt::Debug>(
        &mut self,
        allowed: bool,
        f: impl FnOnce(&mut Core, u64) -> Result<T, ErrorCode>,
    ) -> Result<Option<T>, TestCaseError> {
        let before = self.core.safety_state();
        let result = f(&mut self.core, self.now);
        match result {
            Ok(v) => {
                prop_assert!(allowed, "an unentitled app succeeded: {v:?}");
                Ok(Some(v))
            }
            Err(e) => {
                if !allowed {
                    prop_assert_eq!(e, ErrorCode::NotPermitted);
                }
                prop_assert_eq!(
                    self.core.safety_state(),
                    before,
                    "refusal {:?} changed state",
                    e
                );
                Ok(None)
            }
        }
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let now = self.now;
        match op {
            Op::Wait(ms) => self.wait(now + ms)?,
            Op::SetBasal(a, r) => {
                self.check(Model::allowed(a, true), |c, t| c.set_basal(a, r, t))?;
            }
            Op::Bolus(a, k, v, d) => {
                self.check(Model::allowed(a, true), |c, t| c.start_bolus(a, k, v, d, t))?;
                // A bolus too small for a step completes at once.
            }
            Op::StopBolus(a) => {
                self.check(Model::allowed(a, true), |c, t| c.stop_bolus(a, t))?;
            }
            Op::CheckIn(a) => {
                self.check(Model::allowed(a, true), |c, t| c.check_in(a, t))?;
            }
            Op::Install(a, variant) => {
                let next = self.model.serial_floor + 1;
                let (bytes, valid, limit) = match variant {
                    RxVariant::Next => (signed(next), true, envelope().max_volume_per_24h_nl),
                    RxVariant::TightDailyLimit => {
                        let mut rx = prescription(next);
                        rx.envelope.max_volume_per_24h_nl = 600_000;
                        rx.envelope.max_basal_rate_nl_per_h = 25_000;
                        rx.envelope.silence_policy =
                            pump_protocol::prescription::SilencePolicy::StopDelivery;
                        (sign_with(&rx, &clinic_key()), true, 600_000)
                    }
                    RxVariant::Replay => (signed(self.model.serial_floor), false, 0),
                    RxVariant::Tampered => {
                        let mut b = signed(next);
                        b[3] ^= 4;
                        (b, false, 0)
                    }
                    RxVariant::OtherKey => (sign_with(&prescription(next), &other_key()), false, 0),
                    RxVariant::WrongDevice => {
                        let mut rx = prescription(next);
                        rx.device_id ^= 1;
                        (sign_with(&rx, &clinic_key()), false, 0)
                    }
                };
                let allowed = Model::allowed(a, false);
                let accepted = self
                    .check(allowed, |c, t| c.install_prescription(a, &bytes, t))?
                    .is_some();
                // SR-RX-001..003: the model says exactly which installs succeed.
                prop_assert_eq!(accepted, allowed && valid, "install {:?}", variant);
                if accepted {
                    self.model.serial_floor = next;
                    self.model.installed = true;
                    self.model.max_24h_nl = u64::from(limit);
                }
            }
            Op::Refill(a, w, v, conc_ok) => {
                let conc = if conc_ok {
                    CONCENTRATION_UG_PER_ML
                } else {
                    CONCENTRATION_UG_PER_ML * 4
                };
                let ok = self.check(Model::allowed(a, false), |c, t| c.refill(a, w, v, conc, t))?;
                prop_assert!(conc_ok || ok.is_none(), "SR-RES-005");
            }
            Op::Suspend(a) => {
                self.check(Model::allowed(a, false), |c, t| c.suspend(a, t))?;
            }
            Op::Resume(a) => {
                self.check(Model::allowed(a, false), |c, t| c.resume(a, t))?;
            }
            Op::Acknowledge(a, code) => {
                self.check(Model::allowed(a, false), |c, t| {
                    c.acknowledge_alarm(a, code, t)
                })?;
            }
            Op::ClearFault(a, code) => {
                self.check(Model::allowed(a, false), |c, t| c.clear_fault(a, code, t))?;
            }
            Op::FaultInput(code, on) => self.core.on_fault_input(code, on, now),
            Op::EncoderPulse => self.core.on_encoder_pulse(now),
            Op::Reset => {
                let core = std::mem::replace(&mut self.core, fresh(now));
                self.core = reset(core, now);
                // The model's prescription survives; a fault input does too,
                // but a fresh boot reads it as released until it changes.
                prop_assert!(!self.core.platform().motor_enabled, "SR-PER-001");
                prop_assert_eq!(
                    self.core.prescription().map(|r| r.serial),
                    Some(self.model.serial_floor)
                );
            }
            Op::SetClock(a, utc) => {
                self.check(Model::allowed(a, false), |c, t| c.set_clock(a, utc, t))?;
            }
            Op::Raw(a, cmd, x, y) => {
                let mut rw = [0u8; 256];
                let before = self.core.safety_state();
                let result = self.core.command(a, cmd, x, y, &[0xAB; 8], &mut rw, now);
                if (22..=25).contains(&cmd) {
                    // SR-REL-006: the relay changes no safety state, whoever calls.
                    prop_assert_eq!(&self.core.safety_state(), &before);
                    let entitled = match cmd {
                        22 | 25 => a == TELEMETRY,
                        _ => a == DOSING,
                    };
                    if !entitled {
                        prop_assert_eq!(
                            result,
                            infusion_core::CommandResult::Failure(ErrorCode::NotPermitted)
                        );
                    }
                }
                if (11..=16).contains(&cmd) || cmd == 22 || cmd == 28 {
                    // SR-AUTH-002: no plain syscall, and no unsigned bytes
                    // through command 28, change safety state.
                    prop_assert!(
                        matches!(result, infusion_core::CommandResult::Failure(_)),
                        "{result:?}"
                    );
                    prop_assert_eq!(&self.core.safety_state(), &before);
                }
                if cmd == 29 {
                    // SR-BAT-004: the outlook is a read, open to every app.
                    prop_assert!(
                        matches!(result, infusion_core::CommandResult::SuccessU32(_)),
                        "{result:?}"
                    );
                    prop_assert_eq!(&self.core.safety_state(), &before);
                }
                if cmd >= 30 {
                    prop_assert_eq!(
                        result,
                        infusion_core::CommandResult::Failure(ErrorCode::NoSupport)
                    );
                }
            }
        }
        Ok(())
    }

    /// SR-ENV-005: every rolling 24 h window of the step record stays within
    /// the limit in force at its end.
    fn check_windows(&self) -> Result<(), TestCaseError> {
        let mut start = 0;
        let mut in_window: u64 = 0;
        for (i, &(t, made, limit)) in self.steps.iter().enumerate() {
            in_window += made;
            while self.steps[start].0 + WINDOW_MS <= t {
                in_window -= self.steps[start].1;
                start += 1;
            }
            let _ = i;
            prop_assert!(
                in_window * u64::from(NL_PER_STEP) <= limit,
                "{} nL in the 24 h before {t}, limit {limit}",
                in_window * u64::from(NL_PER_STEP)
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    /// Verifies: SR-ENV-005, SR-RX-005, SR-ALM-004, SR-MOT-001, SR-MOT-005,
    /// SR-ROLE-003, SR-RES-005, SR-PER-001 under arbitrary interleavings.
    #[test]
    fn no_command_sequence_from_any_app_breaks_the_envelope(ops in prop::collection::vec(op(), 1..60)) {
        // Verifies: SR-RX-001, SR-REL-006, SR-AUTH-002 (checked in `apply`).
        let mut h = Harness::new();
        for op in ops {
            h.apply(op)?;
        }
        h.wait(h.now + WINDOW_MS)?;
        h.check_windows()?;
        // The exact ledger agrees with the independent step record.
        let recent: u64 = h.steps.iter().filter(|s| s.0 + WINDOW_MS > h.now).map(|s| s.1).sum();
        prop_assert_eq!(h.core.delivered_24h_nl(h.now), recent * u64::from(NL_PER_STEP));
        prop_assert!(h.core.ledger().active(Channel::Bolus).is_none() || h.core.bolus_remaining_nl() > 0);
    }
}
