//! The prescription TOML model, its checks (`pumpctl rx check`) and its
//! conversion into the signed protocol [`Prescription`].
//!
//! Every key carries its unit (`rate_ug_per_day`, `concentration_ug_per_ml`,
//! `volume_ul`, `duration_min`); doses become volumes in exactly one place,
//! [`crate::units`]. Every problem names the TOML field it belongs to, e.g.
//! `basal.steps[3].rate_ug_per_day`. See `examples/*.toml` and the README.
//! The format-2 tables (`[pairing]`, `[clinician_bolus_limits]`) and their
//! rules are [`crate::pairing`]'s.

use std::fmt;
use std::path::Path;

use infusion_core::HardwareLimits;
use pump_protocol::prescription::{
    BasalStep, BolusProgram, Envelope, PatientBolusProgram, Prescription, SilencePolicy, Therapy,
    MAX_BASAL_STEPS, MAX_DRUG_NAME_LEN, PRESCRIPTION_FORMAT,
};
use serde::Deserialize;

use crate::druglib::{DrugEntry, DrugLibrary};
use crate::error::{toml_error, Result};
use crate::units::{self, ConversionError, MS_PER_MIN, NL_PER_UL};

/// Minutes in a day.
const MINUTES_PER_DAY: u32 = 1440;

/// A prescription as the clinician writes it (TOML).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RxFile {
    /// When the clinic issued it (Unix ms); `rx sign` uses the current time
    /// when absent.
    pub issued_time_ms: Option<u64>,
    /// The drug in the reservoir.
    pub drug: DrugToml,
    /// The time-of-day basal schedule.
    pub basal: BasalToml,
    /// The patient bolus (PTM) program, if prescribed.
    pub patient_bolus: Option<PatientBolusToml>,
    /// The clinician bolus preset, if any.
    pub clinician_bolus: Option<BolusToml>,
    /// The catheter.
    pub catheter: CatheterToml,
    /// The physician's hard limits.
    pub envelope: EnvelopeToml,
    /// The patient programmer (PTM) the prescription pairs (format 2).
    pub pairing: Option<crate::rx_pairing::PairingToml>,
    /// How often the clinic may give a clinician bolus (format 2); the
    /// format-1 defaults when absent.
    pub clinician_bolus_limits: Option<crate::rx_pairing::ClinicianBolusLimitsToml>,
}

/// `[drug]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrugToml {
    /// Name, as in the drug library.
    pub name: String,
    /// Concentration in the reservoir.
    pub concentration_ug_per_ml: u32,
}

/// `[basal]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasalToml {
    /// Steps sorted by start; the first starts at `"00:00"`.
    pub steps: Vec<StepToml>,
    /// The prescription delivers nothing on purpose (a basal of 0 all day,
    /// or a silence basal of 0) although the drug's abrupt withdrawal is
    /// dangerous: without it that is an error, with it a warning
    /// (SR-HOST-009).
    #[serde(default)]
    pub zero_delivery_on_purpose: bool,
}

/// One `[[basal.steps]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepToml {
    /// UTC time of day the step starts, `"HH:MM"`.
    pub start: String,
    /// Dose rate while the step runs, as µg per 24 h.
    pub rate_ug_per_day: u32,
}

/// `[patient_bolus]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientBolusToml {
    /// Dose per bolus.
    pub dose_ug: u32,
    /// Delivered over.
    pub duration_min: u32,
    /// Lockout after each bolus start.
    pub lockout_min: u32,
    /// Most boluses per rolling 24 h.
    pub max_per_24h: u8,
}

/// `[clinician_bolus]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BolusToml {
    /// Dose.
    pub dose_ug: u32,
    /// Delivered over.
    pub duration_min: u32,
}

/// `[catheter]`: exactly one of the two volume keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatheterToml {
    /// Catheter volume in µL.
    pub volume_ul: Option<u32>,
    /// Catheter volume in nL.
    pub volume_nl: Option<u32>,
}

/// `[envelope]`: limits in dose units; converted to volume at the
/// prescription's concentration for the capsule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeToml {
    /// Highest basal dose rate.
    pub max_basal_rate_ug_per_day: u32,
    /// Largest single bolus.
    pub max_bolus_ug: u32,
    /// Shortest time between patient bolus starts.
    pub min_patient_bolus_lockout_min: u32,
    /// Most patient boluses per rolling 24 h.
    pub max_patient_boluses_per_24h: u8,
    /// Most drug, basal plus every bolus, per rolling 24 h.
    pub max_daily_dose_ug: u32,
    /// Low-reservoir alarm threshold.
    pub reservoir_low_threshold_ul: u32,
    /// The dosing app must check in at least this often.
    pub dosing_checkin_timeout_min: u32,
    /// `"stop-delivery"` or `"continue-basal"`.
    pub silence_policy: String,
    /// Safe basal rate for `"continue-basal"`.
    pub silence_basal_rate_ug_per_day: Option<u32>,
}

/// How serious a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Allowed, but the clinician must have a reason.
    Warning,
    /// The prescription must not be signed.
    Error,
}

/// One finding, tied to a TOML field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The TOML field, e.g. `basal.steps[3].rate_ug_per_day`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{tag}: {}: {}", self.field, self.message)
    }
}

/// Parses prescription TOML; errors name the file, line and column. A
/// `pairing.ptm_public_key_file` is read here, relative to `path`.
pub fn parse(path: &Path, text: &str) -> Result<RxFile> {
    let mut rx: RxFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    crate::rx_pairing::read_key_file(&mut rx.pairing, path)?;
    Ok(rx)
}

/// Reads and parses a prescription file.
pub fn load(path: &Path) -> Result<RxFile> {
    let text = crate::error::read_text(path)?;
    parse(path, &text)
}

/// Parses `"HH:MM"` into a minute of the day.
pub fn parse_time_of_day(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// What a check found, plus the figures it computed (for the summary).
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Every problem, errors first.
    pub problems: Vec<Problem>,
    /// Human summary lines (dose and volume side by side).
    pub summary: Vec<String>,
}

impl CheckReport {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    pub(crate) fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Error,
            field: field.into(),
            message: message.into(),
        });
    }

    pub(crate) fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Warning,
            field: field.into(),
            message: message.into(),
        });
    }
}

/// A converted value or the problem it caused (already recorded).
fn convert(
    report: &mut CheckReport,
    field: &str,
    r: std::result::Result<u32, ConversionError>,
) -> u32 {
    match r {
        Ok(v) => v,
        Err(ConversionError::ZeroConcentration) => 0,
        Err(ConversionError::Overflow) => {
            report.error(field, "too large: its volume does not fit 32 bits of nL");
            0
        }
    }
}

/// Checks a prescription against the board's hardware limits and the drug
/// library, and builds the protocol prescription for `device_id`/`serial`
/// when nothing is an error (SR-HOST-001, SR-HOST-002). These are the
/// format-1 fields and rules, and the prescription is format 1; `rx check`
/// and `rx sign` use [`crate::pairing::check_v2`], which adds the format-2
/// rules and pairing.
pub fn check(
    rx: &RxFile,
    limits: &HardwareLimits,
    library: &DrugLibrary,
    device_id: u32,
    serial: u32,
    issued_time_ms: u64,
) -> (CheckReport, Option<Prescription>) {
    let mut r = CheckReport::default();
    let conc = rx.drug.concentration_ug_per_ml;

    // ---- drug and concentration ----
    let drug = library.find(&rx.drug.name);
    if rx.drug.name.len() > MAX_DRUG_NAME_LEN {
        r.error(
            "drug.name",
            format!("longer than {MAX_DRUG_NAME_LEN} bytes"),
        );
    }
    match drug {
        None => r.error(
            "drug.name",
            format!(
                "`{}` is not in the drug library (known: {})",
                rx.drug.name,
                library.names().join(", ")
            ),
        ),
        Some(d) => check_concentration(&mut r, d, conc),
    }
    if conc == 0 {
        r.error(
            "drug.concentration_ug_per_ml",
            "must be above 0 µg/mL: every dose converts to a volume at this concentration",
        );
    }

    // ---- envelope, converted once ----
    let env = &rx.envelope;
    let max_basal_nl_per_h = convert(
        &mut r,
        "envelope.max_basal_rate_ug_per_day",
        units::rate_ug_per_day_to_nl_per_h(env.max_basal_rate_ug_per_day, conc),
    );
    let max_bolus_nl = convert(
        &mut r,
        "envelope.max_bolus_ug",
        units::dose_ug_to_nl(env.max_bolus_ug, conc),
    );
    let max_volume_24h_nl = convert(
        &mut r,
        "envelope.max_daily_dose_ug",
        units::dose_ug_to_nl(env.max_daily_dose_ug, conc),
    );
    let low_threshold_nl = u64::from(env.reservoir_low_threshold_ul) * NL_PER_UL;
    let lockout_ms = u64::from(env.min_patient_bolus_lockout_min) * MS_PER_MIN;
    let checkin_ms = u64::from(env.dosing_checkin_timeout_min) * MS_PER_MIN;

    if max_basal_nl_per_h > limits.max_rate_nl_per_h {
        r.error(
            "envelope.max_basal_rate_ug_per_day",
            format!(
                "{} µg/day is {} nL/h at {conc} µg/mL, above the board's maximum rate of {} nL/h",
                env.max_basal_rate_ug_per_day, max_basal_nl_per_h, limits.max_rate_nl_per_h
            ),
        );
    }
    if max_bolus_nl > limits.max_bolus_nl {
        r.error(
            "envelope.max_bolus_ug",
            format!(
                "{} µg is {} at {conc} µg/mL, above the board's largest bolus of {}",
                env.max_bolus_ug,
                units::fmt_ml(u64::from(max_bolus_nl)),
                units::fmt_ml(u64::from(limits.max_bolus_nl))
            ),
        );
    }
    if max_volume_24h_nl > limits.max_volume_per_24h_nl {
        r.error(
            "envelope.max_daily_dose_ug",
            format!(
                "{} µg is {} per 24 h at {conc} µg/mL, above the board's {} per 24 h",
                env.max_daily_dose_ug,
                units::fmt_ml(u64::from(max_volume_24h_nl)),
                units::fmt_ml(u64::from(limits.max_volume_per_24h_nl))
            ),
        );
    }
    if env.max_daily_dose_ug == 0 {
        r.error("envelope.max_daily_dose_ug", "must be above 0 µg");
    }
    if low_threshold_nl > u64::from(limits.reservoir_capacity_nl) {
        let hint = if low_threshold_nl / 1000 <= u64::from(limits.reservoir_capacity_nl) {
            " — is it in nL? the key is in µL"
        } else {
            ""
        };
        r.error(
            "envelope.reservoir_low_threshold_ul",
            format!(
                "{} µL is above the reservoir capacity of {}{hint}",
                env.reservoir_low_threshold_ul,
                units::fmt_ml(u64::from(limits.reservoir_capacity_nl))
            ),
        );
    } else if env.reservoir_low_threshold_ul > 0 && env.reservoir_low_threshold_ul < 100 {
        r.warn(
            "envelope.reservoir_low_threshold_ul",
            format!(
                "{} µL is a very low alarm threshold — was it meant in mL ({} mL = {} µL)?",
                env.reservoir_low_threshold_ul,
                env.reservoir_low_threshold_ul,
                u64::from(env.reservoir_low_threshold_ul) * 1000
            ),
        );
    }
    if checkin_ms < u64::from(limits.min_checkin_timeout_ms)
        || checkin_ms > u64::from(limits.max_checkin_timeout_ms)
    {
        r.error(
            "envelope.dosing_checkin_timeout_min",
            format!(
                "{} min is outside the board's watchdog range {}..{} min",
                env.dosing_checkin_timeout_min,
                u64::from(limits.min_checkin_timeout_ms).div_ceil(MS_PER_MIN),
                u64::from(limits.max_checkin_timeout_ms) / MS_PER_MIN
            ),
        );
    }
    if lockout_ms > units::MS_PER_DAY {
        r.error(
            "envelope.min_patient_bolus_lockout_min",
            format!(
                "{} min is longer than the 24 h window (at most 1440 min)",
                env.min_patient_bolus_lockout_min
            ),
        );
    }
    let max_count = infusion_core::ledger::MAX_PATIENT_BOLUSES_PER_24H;
    if usize::from(env.max_patient_boluses_per_24h) > max_count {
        r.error(
            "envelope.max_patient_boluses_per_24h",
            format!(
                "{} is above the {max_count} patient boluses per 24 h the pump can track",
                env.max_patient_boluses_per_24h
            ),
        );
    }
    if let Some(d) = drug {
        check_daily_dose_against_library(
            &mut r,
            d,
            "envelope.max_daily_dose_ug",
            env.max_daily_dose_ug,
        );
        if env.max_patient_boluses_per_24h > 0
            && env.min_patient_bolus_lockout_min < d.min_patient_bolus_lockout_min
        {
            r.error(
                "envelope.min_patient_bolus_lockout_min",
                format!(
                    "{} min is below the library's minimum lockout for {} ({} min)",
                    env.min_patient_bolus_lockout_min, d.name, d.min_patient_bolus_lockout_min
                ),
            );
        }
        if env.max_basal_rate_ug_per_day > d.hard_max_daily_dose_ug {
            r.error(
                "envelope.max_basal_rate_ug_per_day",
                format!(
                    "{} µg/day is above the library's hard maximum for {} ({} µg/day)",
                    env.max_basal_rate_ug_per_day, d.name, d.hard_max_daily_dose_ug
                ),
            );
        }
    }
    if env.max_basal_rate_ug_per_day > env.max_daily_dose_ug {
        r.error(
            "envelope.max_basal_rate_ug_per_day",
            format!(
                "{} µg/day is above envelope.max_daily_dose_ug ({} µg): basal alone could exceed the daily maximum",
                env.max_basal_rate_ug_per_day, env.max_daily_dose_ug
            ),
        );
    }

    // ---- silence policy ----
    let silence_policy = match (
        env.silence_policy.as_str(),
        env.silence_basal_rate_ug_per_day,
    ) {
        ("stop-delivery", None) => Some(SilencePolicy::StopDelivery),
        ("stop-delivery", Some(_)) => {
            r.error(
                "envelope.silence_basal_rate_ug_per_day",
                "only allowed with silence_policy = \"continue-basal\"",
            );
            None
        }
        ("continue-basal", Some(rate)) => {
            let field = "envelope.silence_basal_rate_ug_per_day";
            let nl = convert(
                &mut r,
                field,
                units::rate_ug_per_day_to_nl_per_h(rate, conc),
            );
            if rate > env.max_basal_rate_ug_per_day {
                r.error(
                    field,
                    format!(
                        "{rate} µg/day is above envelope.max_basal_rate_ug_per_day ({} µg/day)",
                        env.max_basal_rate_ug_per_day
                    ),
                );
            }
            Some(SilencePolicy::ContinueBasal { rate_nl_per_h: nl })
        }
        ("continue-basal", None) => {
            r.error(
                "envelope.silence_basal_rate_ug_per_day",
                "required with silence_policy = \"continue-basal\" (the safe basal rate in µg/day)",
            );
            None
        }
        (other, _) => {
            r.error(
                "envelope.silence_policy",
                format!("`{other}`: expected \"stop-delivery\" or \"continue-basal\""),
            );
            None
        }
    };

    // ---- basal schedule ----
    let mut basal_steps: heapless::Vec<BasalStep, MAX_BASAL_STEPS> = heapless::Vec::new();
    let steps = &rx.basal.steps;
    if steps.is_empty() {
        r.error(
            "basal.steps",
            "at least one step is needed (the first at \"00:00\")",
        );
    }
    if steps.len() > MAX_BASAL_STEPS {
        r.error(
            "basal.steps",
            format!("{} steps; at most {MAX_BASAL_STEPS}", steps.len()),
        );
    }
    let mut starts: Vec<u32> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let field = format!("basal.steps[{i}].start");
        match parse_time_of_day(&step.start) {
            None => r.error(
                &field,
                format!(
                    "`{}`: expected a UTC time of day \"HH:MM\" (00:00..23:59)",
                    step.start
                ),
            ),
            Some(minute) => {
                if i == 0 && minute != 0 {
                    r.error(&field, "the first step must start at \"00:00\"");
                }
                if let Some(prev) = starts.last() {
                    if u32::from(minute) <= *prev {
                        r.error(
                            &field,
                            "steps must be sorted by start, with no two starts equal",
                        );
                    }
                }
                starts.push(u32::from(minute));
                let _ = basal_steps.push(BasalStep {
                    start_minute_of_day: minute,
                    rate_ug_per_day: step.rate_ug_per_day,
                });
            }
        }
        let field = format!("basal.steps[{i}].rate_ug_per_day");
        let nl = convert(
            &mut r,
            &field,
            units::rate_ug_per_day_to_nl_per_h(step.rate_ug_per_day, conc),
        );
        if step.rate_ug_per_day > env.max_basal_rate_ug_per_day {
            r.error(
                &field,
                format!(
                    "{} µg/day ({nl} nL/h) is above envelope.max_basal_rate_ug_per_day ({} µg/day, {max_basal_nl_per_h} nL/h)",
                    step.rate_ug_per_day, env.max_basal_rate_ug_per_day
                ),
            );
        }
        if let Some(d) = drug {
            mg_hint(&mut r, d, &field, step.rate_ug_per_day, "µg/day");
        }
    }
    // Exact daily basal integral: sum(rate × minutes) / 1440 µg.
    let mut basal_ug_minutes: u64 = 0;
    let mut basal_nl_minutes_per_h: u64 = 0;
    let mut schedule_lines = Vec::new();
    if starts.len() == steps.len() {
        for (i, step) in steps.iter().enumerate() {
            let start = starts[i];
            let end = starts.get(i + 1).copied().unwrap_or(MINUTES_PER_DAY);
            let minutes = u64::from(end.saturating_sub(start));
            let nl = units::rate_ug_per_day_to_nl_per_h(step.rate_ug_per_day, conc).unwrap_or(0);
            basal_ug_minutes += u64::from(step.rate_ug_per_day) * minutes;
            basal_nl_minutes_per_h += u64::from(nl) * minutes;
            schedule_lines.push(format!(
                "  basal {:02}:{:02}-{:02}:{:02}  {:>6} µg/day  = {:>8} nL/h",
                start / 60,
                start % 60,
                end / 60,
                end % 60,
                step.rate_ug_per_day,
                nl
            ));
        }
    }
    let basal_daily_nl = basal_nl_minutes_per_h / 60;
    // The highest scheduled basal: a bolus runs beside it (SR-HOST-010).
    let highest_step = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let nl = units::rate_ug_per_day_to_nl_per_h(s.rate_ug_per_day, conc).unwrap_or(0);
            (i, nl)
        })
        .max_by_key(|&(i, nl)| (nl, std::cmp::Reverse(i)));

    // ---- zero delivery of a drug dangerous to withdraw (SR-HOST-009) ----
    if let Some(d) = drug.filter(|d| d.abrupt_withdrawal_dangerous) {
        let on_purpose = rx.basal.zero_delivery_on_purpose;
        if !steps.is_empty() && steps.iter().all(|s| s.rate_ug_per_day == 0) {
            zero_delivery(
                &mut r,
                on_purpose,
                "basal.steps",
                format!(
                    "a basal of 0 all day stops {} abruptly, and its abrupt withdrawal is dangerous",
                    d.name
                ),
            );
        } else {
            for (i, step) in steps.iter().enumerate() {
                if step.rate_ug_per_day == 0 {
                    r.warn(
                        format!("basal.steps[{i}].rate_ug_per_day"),
                        format!(
                            "0 µg/day: {} stops while this step runs, and its abrupt withdrawal is dangerous",
                            d.name
                        ),
                    );
                }
            }
        }
        match (env.silence_policy.as_str(), env.silence_basal_rate_ug_per_day) {
            ("stop-delivery", None) => zero_delivery(
                &mut r,
                on_purpose,
                "envelope.silence_policy",
                format!(
                    "\"stop-delivery\" stops {} abruptly whenever the dosing app falls silent, and its abrupt withdrawal is dangerous: use \"continue-basal\" with a safe rate above 0",
                    d.name
                ),
            ),
            ("continue-basal", Some(0)) => zero_delivery(
                &mut r,
                on_purpose,
                "envelope.silence_basal_rate_ug_per_day",
                format!(
                    "0 µg/day stops {} abruptly whenever the dosing app falls silent, and its abrupt withdrawal is dangerous",
                    d.name
                ),
            ),
            _ => {}
        }
    }

    // ---- boluses ----
    let mut bolus_ug_per_day: u64 = 0;
    let mut bolus_nl_per_day: u64 = 0;
    let mut bolus_lines = Vec::new();
    let patient_bolus = rx.patient_bolus.as_ref().map(|pb| {
        let f = "patient_bolus";
        let nl = convert(
            &mut r,
            "patient_bolus.dose_ug",
            units::dose_ug_to_nl(pb.dose_ug, conc),
        );
        check_bolus(&mut r, f, pb.dose_ug, pb.duration_min, env.max_bolus_ug);
        if let Some(d) = drug {
            mg_hint_bolus(&mut r, d, "patient_bolus.dose_ug", pb.dose_ug);
        }
        if pb.lockout_min < env.min_patient_bolus_lockout_min {
            r.error(
                "patient_bolus.lockout_min",
                format!(
                    "{} min is shorter than envelope.min_patient_bolus_lockout_min ({} min)",
                    pb.lockout_min, env.min_patient_bolus_lockout_min
                ),
            );
        }
        if let Some(d) = drug {
            if pb.max_per_24h > 0 && pb.lockout_min < d.min_patient_bolus_lockout_min {
                r.error(
                    "patient_bolus.lockout_min",
                    format!(
                        "{} min is below the library's minimum lockout for {} ({} min)",
                        pb.lockout_min, d.name, d.min_patient_bolus_lockout_min
                    ),
                );
            }
        }
        check_bolus_rate(
            &mut r,
            limits,
            f,
            (pb.dose_ug, nl, conc),
            pb.duration_min,
            highest_step,
        );
        if pb.max_per_24h > env.max_patient_boluses_per_24h {
            r.error(
                "patient_bolus.max_per_24h",
                format!(
                    "{} is above envelope.max_patient_boluses_per_24h ({})",
                    pb.max_per_24h, env.max_patient_boluses_per_24h
                ),
            );
        }
        if pb.max_per_24h == 0 {
            r.warn(
                "patient_bolus.max_per_24h",
                "0 boluses per 24 h: the PTM can never deliver",
            );
        }
        bolus_ug_per_day += u64::from(pb.dose_ug) * u64::from(pb.max_per_24h);
        bolus_nl_per_day += u64::from(nl) * u64::from(pb.max_per_24h);
        bolus_lines.push(format!(
            "  patient bolus  {} µg = {} nL over {} min, lockout {} min, at most {} per 24 h",
            pb.dose_ug, nl, pb.duration_min, pb.lockout_min, pb.max_per_24h
        ));
        PatientBolusProgram {
            dose_ug: pb.dose_ug,
            duration_ms: minutes_to_ms(pb.duration_min),
            lockout_ms: minutes_to_ms(pb.lockout_min),
            max_per_24h: pb.max_per_24h,
        }
    });
    let clinician_bolus = rx.clinician_bolus.as_ref().map(|cb| {
        let nl = convert(
            &mut r,
            "clinician_bolus.dose_ug",
            units::dose_ug_to_nl(cb.dose_ug, conc),
        );
        check_bolus(
            &mut r,
            "clinician_bolus",
            cb.dose_ug,
            cb.duration_min,
            env.max_bolus_ug,
        );
        if let Some(d) = drug {
            mg_hint_bolus(&mut r, d, "clinician_bolus.dose_ug", cb.dose_ug);
        }
        check_bolus_rate(
            &mut r,
            limits,
            "clinician_bolus",
            (cb.dose_ug, nl, conc),
            cb.duration_min,
            highest_step,
        );
        // Counted once per 24 h: the preset is a clinic-visit bolus.
        bolus_ug_per_day += u64::from(cb.dose_ug);
        bolus_nl_per_day += u64::from(nl);
        bolus_lines.push(format!(
            "  clinician bolus  {} µg = {} nL over {} min (counted once per 24 h)",
            cb.dose_ug, nl, cb.duration_min
        ));
        BolusProgram {
            dose_ug: cb.dose_ug,
            duration_ms: minutes_to_ms(cb.duration_min),
        }
    });

    // ---- 24 h totals: basal integral + every allotted bolus ≤ daily max ----
    let total_ug_minutes = basal_ug_minutes + bolus_ug_per_day * u64::from(MINUTES_PER_DAY);
    let max_ug_minutes = u64::from(env.max_daily_dose_ug) * u64::from(MINUTES_PER_DAY);
    let basal_daily_ug = basal_ug_minutes / u64::from(MINUTES_PER_DAY);
    let total_daily_ug = total_ug_minutes / u64::from(MINUTES_PER_DAY);
    let total_daily_nl = basal_daily_nl + bolus_nl_per_day;
    if total_ug_minutes > max_ug_minutes {
        r.error(
            "envelope.max_daily_dose_ug",
            format!(
                "the therapy can reach {total_daily_ug} µg per 24 h (basal {basal_daily_ug} µg + every allotted bolus {bolus_ug_per_day} µg), above the envelope's {} µg",
                env.max_daily_dose_ug
            ),
        );
    } else if total_daily_nl > u64::from(max_volume_24h_nl) {
        r.error(
            "envelope.max_daily_dose_ug",
            format!(
                "after rounding to volume the therapy can reach {total_daily_nl} nL per 24 h, above the envelope's {max_volume_24h_nl} nL"
            ),
        );
    }
    if let Some(d) = drug {
        // The usual range (SR-HOST-012): the therapy's 24 h worst case, when
        // the envelope's own maximum was not already refused for it; a
        // therapy delivering nothing is the zero-delivery check's.
        let usual = format_range(d.usual_min_daily_dose_ug, d.usual_max_daily_dose_ug);
        if total_daily_ug > u64::from(d.usual_max_daily_dose_ug)
            && env.max_daily_dose_ug <= d.usual_max_daily_dose_ug
        {
            r.error(
                "basal.steps",
                format!(
                    "the therapy can reach {total_daily_ug} µg per 24 h, outside the library's usual range for {} ({usual} µg/day){}",
                    d.name,
                    potency_hint(d)
                ),
            );
        } else if total_ug_minutes > 0
            && total_ug_minutes < u64::from(d.usual_min_daily_dose_ug) * u64::from(MINUTES_PER_DAY)
        {
            r.error(
                "basal.steps",
                format!(
                    "the therapy can reach at most {total_daily_ug} µg per 24 h, below the library's usual range for {} ({usual} µg/day)",
                    d.name
                ),
            );
        }
    }

    // ---- catheter ----
    let catheter_nl = match (rx.catheter.volume_ul, rx.catheter.volume_nl) {
        (Some(ul), None) => {
            check_catheter(
                &mut r,
                "catheter.volume_ul",
                u64::from(ul) * NL_PER_UL,
                ul,
                "µL",
            );
            u32::try_from(u64::from(ul) * NL_PER_UL).unwrap_or(u32::MAX)
        }
        (None, Some(nl)) => {
            check_catheter(&mut r, "catheter.volume_nl", u64::from(nl), nl, "nL");
            nl
        }
        _ => {
            r.error("catheter", "give exactly one of volume_ul or volume_nl");
            0
        }
    };

    // ---- summary (dose and volume side by side) ----
    r.summary.push(format!(
        "drug: {} {} µg/mL{}",
        rx.drug.name,
        conc,
        drug.map_or(String::new(), |d| format!(
            " (library: {} µg/mL, usual {} µg/day, hard max {} µg/day)",
            format_range(d.concentration_min_ug_per_ml, d.concentration_max_ug_per_ml),
            format_range(d.usual_min_daily_dose_ug, d.usual_max_daily_dose_ug),
            d.hard_max_daily_dose_ug
        ))
    ));
    r.summary.extend(schedule_lines);
    r.summary.extend(bolus_lines);
    r.summary.push(format!(
        "  24 h worst case: basal {basal_daily_ug} µg ({}) + boluses {bolus_ug_per_day} µg ({}) = {total_daily_ug} µg ({})",
        units::fmt_ml(basal_daily_nl),
        units::fmt_ml(bolus_nl_per_day),
        units::fmt_ml(total_daily_nl)
    ));
    r.summary.push(format!(
        "  envelope: basal ≤ {} µg/day ({max_basal_nl_per_h} nL/h), bolus ≤ {} µg ({max_bolus_nl} nL), 24 h ≤ {} µg ({}), lockout ≥ {} min, ≤ {} patient boluses/24 h",
        env.max_basal_rate_ug_per_day,
        env.max_bolus_ug,
        env.max_daily_dose_ug,
        units::fmt_ml(u64::from(max_volume_24h_nl)),
        env.min_patient_bolus_lockout_min,
        env.max_patient_boluses_per_24h
    ));

    r.problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    if r.has_errors() {
        return (r, None);
    }
    let Some(silence_policy) = silence_policy else {
        return (r, None);
    };
    // Length checked above; push_str refuses (never panics) if it were not.
    let mut drug_name = heapless::String::new();
    if drug_name.push_str(&rx.drug.name).is_err() {
        return (r, None);
    }
    let prescription = Prescription {
        format: PRESCRIPTION_FORMAT,
        device_id,
        serial,
        issued_time_ms,
        drug_name,
        concentration_ug_per_ml: conc,
        envelope: Envelope {
            max_basal_rate_nl_per_h: max_basal_nl_per_h,
            max_bolus_nl,
            min_patient_bolus_lockout_ms: u32::try_from(lockout_ms).unwrap_or(u32::MAX),
            max_patient_boluses_per_24h: env.max_patient_boluses_per_24h,
            max_volume_per_24h_nl: max_volume_24h_nl,
            reservoir_low_threshold_nl: u32::try_from(low_threshold_nl).unwrap_or(u32::MAX),
            dosing_checkin_timeout_ms: u32::try_from(checkin_ms).unwrap_or(u32::MAX),
            silence_policy,
        },
        therapy: Therapy {
            basal_steps,
            clinician_bolus,
            patient_bolus,
            catheter_volume_nl: catheter_nl,
        },
    };
    // Cross-check with the capsule's own limit check: if it disagrees, the
    // pump would refuse what this check passed.
    let board = infusion_core::BoardConfig {
        limits: *limits,
        ..crate::board::board_config(&[])
    };
    if board.check_limits(&prescription).is_err() {
        r.error(
            "envelope",
            "the pump's own limit check (infusion-core) refuses this envelope",
        );
        return (r, None);
    }
    (r, Some(prescription))
}

fn minutes_to_ms(min: u32) -> u32 {
    u32::try_from(u64::from(min) * MS_PER_MIN).unwrap_or(u32::MAX)
}

fn format_range(lo: u32, hi: u32) -> String {
    format!("{lo}..{hi}")
}

fn check_concentration(r: &mut CheckReport, d: &DrugEntry, conc: u32) {
    let field = "drug.concentration_ug_per_ml";
    if conc == 0 {
        return;
    }
    let (lo, hi) = (d.concentration_min_ug_per_ml, d.concentration_max_ug_per_ml);
    if conc < lo {
        let as_mg = u64::from(conc) * 1000;
        let hint = if as_mg >= u64::from(lo) && as_mg <= u64::from(hi) {
            format!(" — was it entered in mg/mL? {conc} mg/mL = {as_mg} µg/mL")
        } else {
            String::new()
        };
        r.error(
            field,
            format!(
                "{conc} µg/mL is below the library's range for {} ({lo}..{hi} µg/mL){hint}",
                d.name
            ),
        );
    } else if conc > hi {
        r.error(
            field,
            format!(
                "{conc} µg/mL is above the library's range for {} ({lo}..{hi} µg/mL)",
                d.name
            ),
        );
    }
}

fn check_daily_dose_against_library(r: &mut CheckReport, d: &DrugEntry, field: &str, dose: u32) {
    if dose > d.hard_max_daily_dose_ug {
        r.error(
            field,
            format!(
                "{dose} µg per 24 h is above the library's hard maximum for {} ({} µg/day)",
                d.name, d.hard_max_daily_dose_ug
            ),
        );
    } else if dose > d.usual_max_daily_dose_ug {
        r.error(
            field,
            format!(
                "{dose} µg per 24 h is outside the library's usual range for {} ({} µg/day){}",
                d.name,
                format_range(d.usual_min_daily_dose_ug, d.usual_max_daily_dose_ug),
                potency_hint(d)
            ),
        );
    }
    mg_hint(r, d, field, dose, "µg/day");
}

/// For a drug more potent than morphine: the reminder that a morphine dose
/// is not a dose of it.
fn potency_hint(d: &DrugEntry) -> String {
    match d.potency_vs_morphine {
        Some(x) if x > 1 => format!(
            " — {} is about {x} times as potent as morphine: is this a morphine dose?",
            d.name
        ),
        _ => String::new(),
    }
}

/// A dose that only makes sense in mg when µg were expected.
fn mg_hint(r: &mut CheckReport, d: &DrugEntry, field: &str, dose: u32, unit: &str) {
    if dose == 0 {
        return;
    }
    let as_ug = u64::from(dose) * 1000;
    if u64::from(dose) * 10 < u64::from(d.usual_min_daily_dose_ug)
        && as_ug >= u64::from(d.usual_min_daily_dose_ug)
        && as_ug <= u64::from(d.hard_max_daily_dose_ug)
    {
        r.error(
            field,
            format!(
                "{dose} {unit} of {} is far below the lowest routine dose ({} µg/day) — was it entered in mg? {dose} mg = {as_ug} µg",
                d.name, d.usual_min_daily_dose_ug
            ),
        );
    }
}

fn mg_hint_bolus(r: &mut CheckReport, d: &DrugEntry, field: &str, dose: u32) {
    // A bolus is a fraction of the daily dose; µg-vs-mg slips show up as a
    // bolus above the whole day's hard maximum.
    if dose > d.hard_max_daily_dose_ug {
        let hint = if dose / 1000 > 0 && dose / 1000 <= d.hard_max_daily_dose_ug {
            format!(" — was it entered in ng, or meant {} µg?", dose / 1000)
        } else {
            String::new()
        };
        r.error(
            field,
            format!(
                "{dose} µg is above the library's hard daily maximum for {} ({} µg/day){hint}",
                d.name, d.hard_max_daily_dose_ug
            ),
        );
    }
}

fn check_bolus(r: &mut CheckReport, section: &str, dose: u32, duration_min: u32, max_ug: u32) {
    if dose > max_ug {
        r.error(
            format!("{section}.dose_ug"),
            format!("{dose} µg is above envelope.max_bolus_ug ({max_ug} µg)"),
        );
    }
    if dose == 0 {
        r.error(format!("{section}.dose_ug"), "must be above 0 µg");
    }
    if duration_min == 0 {
        r.error(format!("{section}.duration_min"), "must be at least 1 min");
    }
}

/// A zero delivery of a drug dangerous to withdraw: an error, or a warning
/// when the prescription states it on purpose (SR-HOST-009).
fn zero_delivery(r: &mut CheckReport, on_purpose: bool, field: &str, message: String) {
    if on_purpose {
        r.warn(
            field,
            format!("{message} (stated on purpose: basal.zero_delivery_on_purpose = true)"),
        );
    } else {
        r.error(
            field,
            format!("{message} — if it is on purpose, say so with zero_delivery_on_purpose = true under [basal]"),
        );
    }
}

/// A bolus the board's motor can deliver: its mean rate (computed as the
/// capsule computes it), alone and beside the highest scheduled basal, at
/// most the board's maximum rate; otherwise the pump refuses it with
/// `OutsideHardwareLimits` (SR-HOST-010).
fn check_bolus_rate(
    r: &mut CheckReport,
    limits: &HardwareLimits,
    section: &str,
    (dose_ug, volume_nl, conc): (u32, u32, u32),
    duration_min: u32,
    highest_step: Option<(usize, u32)>,
) {
    if duration_min == 0 || volume_nl == 0 {
        return; // refused above
    }
    let max = limits.max_rate_nl_per_h;
    let rate = infusion_core::mean_rate_nl_per_h(volume_nl, minutes_to_ms(duration_min));
    let field = format!("{section}.duration_min");
    // The shortest duration, in whole minutes, at which the bolus fits
    // `room` nL/h.
    let shortest_min = |room: u32| {
        (u64::from(volume_nl) * 60)
            .div_ceil(u64::from(room.max(1)))
            .max(1)
    };
    if rate > max {
        r.error(
            field,
            format!(
                "{dose_ug} µg over {duration_min} min is {rate} nL/h at {conc} µg/mL, above the board's maximum motor rate of {max} nL/h: the pump would refuse every such bolus — give it at least {} min",
                shortest_min(max)
            ),
        );
        return;
    }
    if let Some((i, basal)) = highest_step {
        let total = u64::from(rate) + u64::from(basal);
        if total > u64::from(max) {
            r.error(
                field,
                format!(
                    "{dose_ug} µg over {duration_min} min is {rate} nL/h at {conc} µg/mL; with basal.steps[{i}] ({basal} nL/h) beside it that is {total} nL/h, above the board's maximum motor rate of {max} nL/h: the pump would refuse it while that step runs — give it at least {} min",
                    shortest_min(max.saturating_sub(basal))
                ),
            );
        }
    }
}

fn check_catheter(r: &mut CheckReport, field: &str, nl: u64, value: u32, unit: &str) {
    // Intrathecal catheters hold roughly 0.1-0.5 mL; 10 µL..5 mL is the
    // plausible range.
    const MIN_NL: u64 = 10_000;
    const MAX_NL: u64 = 5_000_000;
    if nl < MIN_NL {
        let hint = if nl * 1000 >= MIN_NL && nl * 1000 <= MAX_NL {
            format!(
                " — was it entered in mL? {value} mL = {} µL",
                u64::from(value) * 1000
            )
        } else {
            String::new()
        };
        r.error(
            field,
            format!("{value} {unit} is below a plausible catheter volume (10 µL..5 mL){hint}"),
        );
    } else if nl > MAX_NL {
        let hint = if nl / 1000 >= MIN_NL && nl / 1000 <= MAX_NL && unit == "µL" {
            " — was it entered in nL? use catheter.volume_nl for nanolitres".to_string()
        } else {
            String::new()
        };
        r.error(
            field,
            format!("{value} {unit} is above a plausible catheter volume (10 µL..5 mL){hint}"),
        );
    }
}
