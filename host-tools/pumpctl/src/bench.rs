//! `pumpctl bench` (and `cargo bench -p pumpctl`): simulation speed and
//! decode throughput, each against a baseline measured in the same run.
//!
//! * Simulation: a year of therapy — the demo's script (baclofen flex,
//!   patient presses, an occlusion) with a clinic refill every 45 days, as
//!   in practice, so the pump delivers all year — reported as simulated
//!   time / wall time.
//! * Decode: a large log made by repeating the 365-day run's telemetry log,
//!   decoded by pumpctl's [`Decoder`](crate::decode::Decoder) (protocol
//!   decoding plus console-text classification) and by `pumpctl decode
//!   --json`'s renderer, against the plain protocol-crate loop
//!   (`StreamDecoder::feed` alone, counting frames) as the baseline.
//! * Flash wear: the years to wear-out the flash model projects for the
//!   year's run and for the capsule alone at the board's maximum continuous
//!   rate ([`max_rate_storage`]), and, against the latter, the hours an app
//!   gone wrong needs by repeating a command that writes
//!   ([`crate::bench_flood`]), and the dosing app's own record refresh
//!   against its first design's ([`crate::bench_app_record`]).
//!
//! Integer arithmetic only: MB/s = bytes / µs.

use std::path::Path;
use std::time::Instant;

use pump_protocol::{StreamDecoder, StreamItem};

use crate::error::Result;
use crate::units::MS_PER_DAY;

/// Results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Figures {
    /// Simulated days.
    pub sim_days: u32,
    /// Wall time of the simulation.
    pub sim_wall_ms: u64,
    /// Simulated ms per wall ms.
    pub sim_speedup: u64,
    /// Simulated days per wall second.
    pub sim_days_per_s: u64,
    /// Motor steps simulated.
    pub sim_steps: u64,
    /// Log size decoded.
    pub decode_bytes: u64,
    /// Frames in it.
    pub decode_frames: u64,
    /// Baseline: `StreamDecoder` alone, tenths of MB/s.
    pub baseline_mb_s_x10: u64,
    /// pumpctl's decoder, tenths of MB/s.
    pub decoder_mb_s_x10: u64,
    /// pumpctl decode --json rendering, tenths of MB/s.
    pub json_mb_s_x10: u64,
    /// Flash wear of the simulated year (demo script): years to wear-out × 100.
    pub wear_demo_years_x100: Option<u64>,
    /// Days simulated at the board's maximum continuous rate.
    pub wear_max_rate_days: u32,
    /// The rate of that run.
    pub wear_max_rate_nl_per_h: u32,
    /// Flash wear at that rate: years to wear-out × 100.
    pub wear_max_rate_years_x100: Option<u64>,
    /// What verifying one signed command costs, and the MAC alternative.
    pub command_verify: crate::bench_auth::VerifyCost,
    /// The fleet against `simulate`.
    pub fleet: crate::bench_fleet::FleetFigures,
    /// What an app gone wrong can do to the state ring.
    pub floods: Vec<crate::bench_flood::FloodFigures>,
    /// The dosing app's record refresh, now and in the first design.
    pub app_record_refresh: Vec<crate::bench_app_record::RefreshFigures>,
}

/// Days of the maximum-rate wear run.
pub const WEAR_MAX_RATE_DAYS: u32 = 30;

fn mb_s_x10(bytes: u64, micros: u128) -> u64 {
    u64::try_from(u128::from(bytes) * 10 / micros.max(1)).unwrap_or(u64::MAX)
}

fn fmt_x10(v: u64) -> String {
    format!("{}.{}", v / 10, v % 10)
}

/// The demo's script for `sim_days`, with a clinic refill every 45 days as
/// in practice, so the pump delivers all along.
pub fn demo_year_config(sim_days: u32, scratch: &Path) -> Result<crate::sim::SimConfig> {
    let mut run = crate::simcmd::demo_run(scratch)?;
    run.days = sim_days;
    // The demo refills on day 45; refill every 45 days after it too.
    let refills: String = (2..=sim_days / 45)
        .map(|n| format!("d{} 10:00 refill volume_ul=20000\n", n * 45))
        .collect();
    run.events.extend(crate::script::parse(
        "bench refills",
        &refills,
        Path::new("."),
    )?);
    run.events.sort_by_key(|e| e.at_ms);
    run.progress = false;
    crate::simcmd::config(&run)
}

/// Runs the benchmark; `decode_mb` sizes the decode input; the fleet part
/// runs `fleet_patients` patients for `sim_days` / 4 days each (at least 1).
pub fn run(sim_days: u32, decode_mb: u64, fleet_patients: u32, scratch: &Path) -> Result<Figures> {
    let cfg = demo_year_config(sim_days, scratch)?;
    let started = Instant::now();
    let result = crate::sim::run(&cfg)?;
    let sim_wall_ms = u64::try_from(started.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let simulated_ms = u64::from(sim_days) * MS_PER_DAY;

    // A large log: the year's log repeated.
    let target = decode_mb * 1_000_000;
    let mut big = Vec::with_capacity(usize::try_from(target).unwrap_or(0) + result.log.len());
    while (big.len() as u64) < target && !result.log.is_empty() {
        big.extend_from_slice(&result.log);
    }
    let chunk = 64 * 1024;

    // Baseline: the protocol crate's decode loop alone.
    let mut frames = 0u64;
    let started = Instant::now();
    let mut dec = StreamDecoder::new();
    for c in big.chunks(chunk) {
        dec.feed(c, |item| {
            if matches!(item, StreamItem::Frame { .. }) {
                frames += 1;
            }
        });
    }
    let baseline_us = started.elapsed().as_micros();

    // pumpctl's decoder (frames, bad frames, console text).
    let started = Instant::now();
    let mut dec = crate::decode::Decoder::new();
    let mut counts = crate::decode::Counts::default();
    for c in big.chunks(chunk) {
        dec.feed(c, |item| counts.count(&item));
    }
    dec.finish(|item| counts.count(&item));
    let decoder_us = started.elapsed().as_micros();

    // Full `decode --json` rendering into a sink.
    let started = Instant::now();
    let mut dec = crate::decode::Decoder::new();
    let mut renderer = crate::decode::Renderer::new(std::io::sink(), crate::decode::Format::Json);
    for c in big.chunks(chunk) {
        dec.feed(c, |item| {
            let _ = renderer.write(&item);
        });
    }
    let json_us = started.elapsed().as_micros();

    let max_rate = max_rate_storage(WEAR_MAX_RATE_DAYS)?;
    let command_verify = crate::bench_auth::measure();
    let fleet = crate::bench_fleet::run(fleet_patients, (sim_days / 4).max(1))?;
    let floods = crate::bench_flood::run()?;
    let app_record_refresh = crate::bench_app_record::run()?;
    let bytes = big.len() as u64;
    Ok(Figures {
        wear_demo_years_x100: result
            .storage
            .as_ref()
            .and_then(|s| s.projected_years_to_wear_out_x100),
        wear_max_rate_days: WEAR_MAX_RATE_DAYS,
        wear_max_rate_nl_per_h: max_continuous_rate_nl_per_h(),
        wear_max_rate_years_x100: max_rate.projected_years_to_wear_out_x100,
        sim_days,
        sim_wall_ms,
        sim_speedup: simulated_ms / sim_wall_ms,
        sim_days_per_s: u64::from(sim_days) * 1000 / sim_wall_ms,
        sim_steps: result.truth.commanded_steps,
        decode_bytes: bytes,
        decode_frames: frames.max(counts.frames),
        baseline_mb_s_x10: mb_s_x10(bytes, baseline_us),
        decoder_mb_s_x10: mb_s_x10(bytes, decoder_us),
        json_mb_s_x10: mb_s_x10(bytes, json_us),
        command_verify,
        fleet,
        floods,
        app_record_refresh,
    })
}

/// The printed table.
pub fn table(f: &Figures) -> String {
    format!(
        "| measure | result | baseline |\n|---|---|---|\n\
         | simulate {} days (demo script, {} motor steps) | {} ms wall: {} simulated days/s, {}x real time | real time (1x) |\n\
         | decode, pumpctl decoder (frames + console text) | {} MB/s | StreamDecoder alone: {} MB/s |\n\
         | decode --json rendering | {} MB/s | StreamDecoder alone: {} MB/s |\n\
         | flash wear, the simulated year's prescription (nRF52840, 128 KiB ring, 10 000 cycles) | wears out in {} | goal ≥ 100 years |\n\
         | flash wear at the board's maximum continuous rate ({} nL/h, {} days simulated) | wears out in {} | goal ≥ 20 years |\n\
         | verify one signed command (Ed25519 verify_strict, host CPU) | {} µs | keyed MAC (HMAC-SHA-256) of the same bytes: {} µs |\n\
         {}\n({} MB log, {} frames; release build recommended: `cargo bench -p pumpctl` or `pumpctl bench` from a --release build)\n",
        f.sim_days,
        f.sim_steps,
        f.sim_wall_ms,
        f.sim_days_per_s,
        f.sim_speedup,
        fmt_x10(f.decoder_mb_s_x10),
        fmt_x10(f.baseline_mb_s_x10),
        fmt_x10(f.json_mb_s_x10),
        fmt_x10(f.baseline_mb_s_x10),
        crate::flashstore::years(f.wear_demo_years_x100),
        f.wear_max_rate_nl_per_h,
        f.wear_max_rate_days,
        crate::flashstore::years(f.wear_max_rate_years_x100),
        fmt_x10(f.command_verify.ed25519_ns / 100),
        fmt_x10(f.command_verify.hmac_sha256_ns / 100),
        crate::bench_fleet::rows(&f.fleet),
        f.decode_bytes / 1_000_000,
        f.decode_frames,
    ) + &crate::bench_flood::table(
        &f.floods,
        &format!(
            "wears out in {}",
            crate::flashstore::years(f.wear_max_rate_years_x100)
        ),
    ) + &crate::bench_app_record::table(&f.app_record_refresh)
}

/// The board's maximum continuous rate: 96 % of the hardware's daily limit
/// spread over the day (9.6 mL / 24 h = 400 000 nL/h, under the motor's
/// 1 mL/h); the last 4 % keeps step rounding from ever meeting the cap.
pub fn max_continuous_rate_nl_per_h() -> u32 {
    let limits = crate::board::hardware_limits();
    (limits.max_volume_per_24h_nl / 25).min(limits.max_rate_nl_per_h)
}

/// A prescription for the capsule core alone (no dosing app): basal up to
/// `max_basal_rate_nl_per_h`, no boluses, the hardware's daily maximum.
pub fn basal_only_prescription(
    max_basal_rate_nl_per_h: u32,
) -> pump_protocol::prescription::Prescription {
    use crate::board;
    use pump_protocol::prescription::{
        BasalStep, Envelope, Prescription, SilencePolicy, Therapy, PRESCRIPTION_FORMAT,
    };
    let mut basal_steps = heapless::Vec::new();
    let _ = basal_steps.push(BasalStep {
        start_minute_of_day: 0,
        rate_ug_per_day: 1,
    });
    Prescription {
        format: PRESCRIPTION_FORMAT,
        device_id: board::SIM_DEVICE_ID,
        serial: 1,
        issued_time_ms: board::SIM_EPOCH_UTC_MS,
        drug_name: heapless::String::from("wear test"),
        concentration_ug_per_ml: 1,
        envelope: Envelope {
            max_basal_rate_nl_per_h,
            max_bolus_nl: 0,
            min_patient_bolus_lockout_ms: 3_600_000,
            max_patient_boluses_per_24h: 0,
            max_volume_per_24h_nl: board::hardware_limits().max_volume_per_24h_nl,
            reservoir_low_threshold_nl: 1_000_000,
            dosing_checkin_timeout_ms: 3_600_000,
            silence_policy: SilencePolicy::StopDelivery,
        },
        therapy: Therapy {
            basal_steps,
            clinician_bolus: None,
            patient_bolus: None,
            catheter_volume_nl: 0,
        },
    }
}

/// Runs the capsule core alone at the board's maximum continuous rate for
/// `days`, refilling daily and draining events as the telemetry app would,
/// and returns what that did to the flash.
pub fn max_rate_storage(days: u32) -> Result<crate::flashstore::StorageSummary> {
    max_rate_run(days).map(|(storage, _)| storage)
}

/// [`max_rate_storage`], with what the capsule did for the energy model
/// (its timer wake-ups and one per daily drain stand for the apps', whose
/// cores do not run here).
pub fn max_rate_run(days: u32) -> Result<(crate::flashstore::StorageSummary, energy_core::Usage)> {
    use crate::board::{self, DOSING_APP, TELEMETRY_APP};
    use crate::flashstore::PumpFlash;
    use crate::sim::SimPlatform;
    use infusion_core::{InfusionCore, StoredRecords};

    let rate = max_continuous_rate_nl_per_h();
    let limits = board::hardware_limits();
    let rx = basal_only_prescription(rate);
    let signed = crate::sign::sign(&rx, &board::simulator_test_key())?;
    let mut platform = SimPlatform::default();
    platform.flash = Some(PumpFlash::new(1));
    let mut core = InfusionCore::new(board::board_config(&[]), platform);
    core.restore_records(&StoredRecords::BLANK, 0);
    let fail = |what: &str, e: infusion_core::ErrorCode| {
        crate::error::Error(format!("max-rate wear run: {what}: {e:?}"))
    };
    core.install_prescription(TELEMETRY_APP, &signed, 0)
        .map_err(|e| fail("install", e))?;
    let end_ms = u64::from(days) * crate::units::MS_PER_DAY;
    let mut buf = vec![0u8; 16 * 1024];
    let mut next_refill = 0;
    let mut now = 0;
    let mut wakeups = 0u64;
    while now < end_ms {
        if now >= next_refill {
            let level = core.reservoir_nl();
            core.refill(TELEMETRY_APP, level, limits.reservoir_capacity_nl, 1, now)
                .map_err(|e| fail("refill", e))?;
            if core.basal_rate_nl_per_h() != rate {
                core.set_basal(DOSING_APP, rate, now).map_err(|e| {
                    let alarms: Vec<_> = core.alarms().codes().collect();
                    fail(&format!("basal at {now} ms, alarms {alarms:?}"), e)
                })?;
            }
            next_refill += crate::units::MS_PER_DAY;
        }
        let _ = core.check_in(DOSING_APP, now);
        while core.pending_events() > 0 {
            let _ = core.drain_events(TELEMETRY_APP, &mut buf, now);
        }
        now = core
            .next_wakeup()
            .unwrap_or(now + 60_000)
            .min(next_refill)
            .max(now + 1);
        core.platform_mut().now_ms = now;
        core.on_timer(now);
        wakeups += 1;
        if core.platform_mut().take_pulse() {
            core.on_encoder_pulse(now);
        }
    }
    let storage = core
        .platform()
        .flash
        .as_ref()
        .map(|f| f.summary(end_ms))
        .ok_or_else(|| crate::error::Error("the flash was lost".into()))?;
    let usage = energy_core::Usage {
        elapsed_ms: end_ms,
        wakeups,
        motor_steps: core.platform().commanded_steps,
        flash_erases: storage.page_erases,
        flash_bytes: storage.flash_bytes_programmed,
        ..energy_core::Usage::default()
    };
    Ok((storage, usage))
}

/// `pumpctl energy`: the battery's life at the demo prescription (its
/// year, as `pumpctl bench` simulates it) and at the board's maximum
/// continuous rate (the capsule alone, as the wear figure), as a table.
pub fn energy_table(days: u32, scratch: &std::path::Path) -> crate::error::Result<String> {
    let cfg = demo_year_config(days, scratch)?;
    let demo = crate::energy::of_run(&crate::sim::run(&cfg)?, &cfg.energy);
    let (_, usage) = max_rate_run(WEAR_MAX_RATE_DAYS)?;
    let max = crate::energy::report(
        &energy_core::NRF52840_DK,
        usage,
        crate::board::SIM_EPOCH_UTC_MS,
    );
    let row = |what: String, e: &crate::energy::EnergyReport| {
        let largest: Vec<String> = e
            .largest
            .iter()
            .map(|name| {
                let uah = e.by_consumer_uah.get(name).copied().unwrap_or(0);
                let share = uah * 100 / e.total_uah.max(1);
                format!("{name} {share} %")
            })
            .collect();
        format!(
            "| {what} | {} µA | **{} years** | {} | {} days |\n",
            crate::energy::fmt_x100(Some(e.average_current_na / 10)),
            crate::energy::fmt_x100(e.projected_life_years_x100),
            largest.join(", "),
            crate::energy::fmt_x100(e.eri_to_eos_days_x100),
        )
    };
    let mut out = String::from(
        "| prescription | average current | projected life | three largest consumers (share of charge) | ERI to end of service |\n|---|---:|---:|---|---:|\n",
    );
    out.push_str(&row(
        format!("the demo's (baclofen flex, {days} days simulated)"),
        &demo,
    ));
    out.push_str(&row(
        format!(
            "the board's maximum continuous rate, {} nL/h ({} days, capsule alone)",
            max_continuous_rate_nl_per_h(),
            WEAR_MAX_RATE_DAYS
        ),
        &max,
    ));
    out.push_str(&format!(
        "\nProfile {} (docs/energy.md: figures from the nRF52840 PS, guesses marked). Goal: at least 7 years at the demo prescription; seeds 3-5 years, SynchroMed II 5-7.\n",
        energy_core::NRF52840_DK.name
    ));
    Ok(out)
}
