//! `cargo bench -p infusion-core`
//!
//! 1. Cost of one command dispatch and of one step-timer callback, against a
//!    trivial no-check baseline measured in the same run.
//! 2. Timer wake-ups per simulated day at 0.5 mL/day, against a naive 1 Hz
//!    tick (86 400 a day). Target: wake-ups ≤ steps delivered + 1 %.
use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use infusion_core::{
    command, AlarmOutput, AlarmSignal, AppId, BoardConfig, HardwareLimits, InfusionCore, Motor,
    Notification, Notifier, RecordKind, Role, Storage,
};
use pump_protocol::prescription::{
    encode_body, signed_message, BasalStep, Envelope, Prescription, SilencePolicy, Therapy,
    MAX_PRESCRIPTION_BODY_LEN, MAX_SIGNED_MESSAGE_LEN, PRESCRIPTION_FORMAT,
};

const DOSING: AppId = AppId(1);
const TELEMETRY: AppId = AppId(2);
const DAY_MS: u64 = 86_400_000;
const NL_PER_STEP: u32 = 250;

#[derive(Default)]
struct NullPlatform {
    steps: u64,
    saved_bytes: usize,
}
impl Motor for NullPlatform {
    fn set_enabled(&mut self, _: bool) {}
    fn step(&mut self) {
        self.steps += 1;
    }
}
impl AlarmOutput for NullPlatform {
    fn show(&mut self, _: AlarmSignal) {}
}
impl Storage for NullPlatform {
    fn write_record(&mut self, _kind: RecordKind, record: &[u8]) {
        self.saved_bytes = black_box(record.len());
    }
}
impl Notifier for NullPlatform {
    fn notify(&mut self, n: Notification) {
        black_box(n);
    }
}

fn board() -> BoardConfig {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut roles = heapless::Vec::new();
    roles.push((DOSING, Role::Dosing)).unwrap();
    roles.push((TELEMETRY, Role::Telemetry)).unwrap();
    let mut clinic_keys = heapless::Vec::new();
    clinic_keys.push(key.verifying_key().to_bytes()).unwrap();
    BoardConfig {
        device_id: 1,
        nl_per_step: NL_PER_STEP,
        limits: HardwareLimits {
            max_rate_nl_per_h: 10_000_000,
            max_bolus_nl: 500_000,
            reservoir_capacity_nl: 20_000_000,
            max_volume_per_24h_nl: 10_000_000,
            min_checkin_timeout_ms: 1_000,
            max_checkin_timeout_ms: 3_600_000,
        },
        roles,
        clinic_keys,
        max_steps_without_encoder: 0,
        alarm_silence_ms: 120_000,
        refill_due_warning_ms: 7 * DAY_MS,
        basal_record_interval_ms: 3_600_000,
    }
}

fn signed_rx() -> Vec<u8> {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut basal_steps = heapless::Vec::new();
    basal_steps
        .push(BasalStep {
            start_minute_of_day: 0,
            rate_ug_per_day: 250,
        })
        .unwrap();
    let rx = Prescription {
        format: PRESCRIPTION_FORMAT,
        device_id: 1,
        serial: 1,
        issued_time_ms: 0,
        drug_name: heapless::String::from("baclofen"),
        concentration_ug_per_ml: 500,
        envelope: Envelope {
            max_basal_rate_nl_per_h: 100_000,
            max_bolus_nl: 100_000,
            min_patient_bolus_lockout_ms: 3_600_000,
            max_patient_boluses_per_24h: 4,
            max_volume_per_24h_nl: 3_000_000,
            reservoir_low_threshold_nl: 1_000_000,
            dosing_checkin_timeout_ms: 3_600_000,
            silence_policy: SilencePolicy::StopDelivery,
        },
        therapy: Therapy {
            basal_steps,
            clinician_bolus: None,
            patient_bolus: None,
            catheter_volume_nl: 150_000,
        },
    };
    let mut body = [0u8; MAX_PRESCRIPTION_BODY_LEN];
    let body = encode_body(&rx, &mut body).unwrap().to_vec();
    let mut msg = [0u8; MAX_SIGNED_MESSAGE_LEN];
    let sig = key.sign(signed_message(&body, &mut msg).unwrap());
    let mut out = body;
    out.extend_from_slice(&sig.to_bytes());
    out
}

fn running_core() -> InfusionCore<NullPlatform> {
    let mut core = InfusionCore::restore(board(), NullPlatform::default(), None, 0);
    core.install_prescription(TELEMETRY, &signed_rx(), 0)
        .unwrap();
    core.refill(TELEMETRY, 0, 20_000_000, 500, 0).unwrap();
    core
}

/// The no-check baseline: what a driver that trusted its callers would do.
struct Trusting {
    rate_nl_per_h: u32,
    steps: u64,
}
impl Trusting {
    fn command(&mut self, num: u32, arg: u32) -> u32 {
        match num {
            1 => self.rate_nl_per_h,
            2 => {
                self.rate_nl_per_h = arg;
                0
            }
            _ => u32::MAX,
        }
    }
    fn step(&mut self) {
        self.steps += 1;
    }
}

fn per_op_ns(iterations: u64, mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..iterations {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / iterations as f64
}

fn main() {
    let n = 200_000;

    // 1a. Command dispatch: status and set-basal.
    let mut core = running_core();
    let status_ns = per_op_ns(n, |i| {
        black_box(core.command(DOSING, u32::from(command::STATUS), 0, 0, &[], &mut [], i));
    });
    let mut core = running_core();
    let set_basal_ns = per_op_ns(n / 10, |i| {
        let rate = 10_000 + (i % 7) as u32 * 1_000;
        black_box(core.command(
            DOSING,
            u32::from(command::SET_BASAL),
            rate,
            0,
            &[],
            &mut [],
            i * 1_000,
        ));
    });
    let mut trusting = Trusting {
        rate_nl_per_h: 0,
        steps: 0,
    };
    let baseline_cmd_ns = per_op_ns(n, |i| {
        black_box(black_box(&mut trusting).command(black_box(1 + (i % 2) as u32), i as u32));
    });

    // 1b. Step-timer callback (gate checks, exact 24 h window, save, step).
    let mut core = running_core();
    core.set_basal(DOSING, 100_000, 0).unwrap();
    let mut t = 0;
    let steps = 20_000;
    let step_ns = per_op_ns(steps, |_| {
        t = core.next_wakeup().unwrap();
        core.check_in(DOSING, t).unwrap();
        core.on_timer(t);
    });
    let record_bytes = core.platform().saved_bytes;
    let baseline_step_ns = per_op_ns(n, |_| black_box(&mut trusting).step());
    black_box(trusting.steps);

    // 2. Wake-ups per day at 0.5 mL/day.
    let mut core = running_core();
    let rate = 500_000 / 24; // nL/h
    core.set_basal(DOSING, rate, 0).unwrap();
    let mut wakeups = 0u64;
    let days = 30;
    while let Some(t) = core.next_wakeup() {
        if t > days * DAY_MS {
            break;
        }
        core.check_in(DOSING, t).unwrap();
        core.on_timer(t);
        wakeups += 1;
    }
    let delivered_steps = core.platform().steps;
    let per_day = wakeups as f64 / days as f64;
    let steps_per_day = delivered_steps as f64 / days as f64;

    println!("infusion-core benchmark (release build)");
    println!("  command dispatch, status        {status_ns:>9.1} ns/op");
    println!("  command dispatch, set basal     {set_basal_ns:>9.1} ns/op");
    println!("  baseline: no-check dispatch     {baseline_cmd_ns:>9.1} ns/op   (status {:.0}x, set basal {:.0}x)",
        status_ns / baseline_cmd_ns, set_basal_ns / baseline_cmd_ns);
    println!("  step-timer callback             {step_ns:>9.1} ns/op   (saves a {record_bytes}-byte record each step)");
    println!(
        "  baseline: bare step             {baseline_step_ns:>9.1} ns/op   ({:.0}x)",
        step_ns / baseline_step_ns
    );
    println!("  wake-ups per day at 0.5 mL/day  {per_day:>9.1}   for {steps_per_day:.1} steps/day ({:+.2} % over steps)",
        (per_day / steps_per_day - 1.0) * 100.0);
    println!(
        "  baseline: 1 Hz tick             {:>9}   ({:.0}x more)",
        86_400,
        86_400.0 / per_day
    );
    let target_met = per_day <= steps_per_day * 1.01;
    println!(
        "  target wake-ups <= steps + 1 %: {}",
        if target_met { "met" } else { "MISSED" }
    );
}
