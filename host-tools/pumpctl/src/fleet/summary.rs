//! The fleet's summary: per-patient totals (what the DuckDB check compares
//! against the Parquet tables) and hazard-relevant rates per patient-year
//! with 95 % confidence intervals. Statistics on the host, in f64; the
//! simulation itself is integer.
//!
//! * Counts (alarms by code, envelope refusals, empty-reservoir cuts,
//!   resets, accepted attacks) are Poisson: the rate is k / T over T
//!   patient-years, its interval the exact (chi-square) Poisson interval,
//!   exact (bisection on the Poisson CDF) up to k = 100 and the
//!   Wilson–Hilferty approximation of the chi-square quantiles above.
//! * Therapy hours lost per patient-year is a mean over patients, its
//!   interval the normal one (mean ± 1.96 standard errors).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::tables::{hours, PatientRow};

/// z of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_985;

/// A rate per patient-year and its 95 % interval.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Rate {
    /// What is counted.
    pub what: String,
    /// Events (or hours).
    pub total: f64,
    /// Per patient-year.
    pub per_patient_year: f64,
    /// Lower bound.
    pub ci95_low: f64,
    /// Upper bound.
    pub ci95_high: f64,
}

/// Chi-square quantile (Wilson–Hilferty).
fn chi2_quantile(p_z: f64, dof: f64) -> f64 {
    if dof <= 0.0 {
        return 0.0;
    }
    let a = 2.0 / (9.0 * dof);
    let x = 1.0 - a + p_z * a.sqrt();
    (dof * x * x * x).max(0.0)
}

/// P(X <= k) for X ~ Poisson(lambda) (for small k and lambda).
fn poisson_cdf(k: u64, lambda: f64) -> f64 {
    let mut term = (-lambda).exp();
    let mut sum = term;
    for i in 1..=k {
        term *= lambda / i as f64;
        sum += term;
    }
    sum
}

/// The lambda at which `f` (decreasing in lambda) crosses `target`.
fn bisect(target: f64, f: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 250.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if f(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// Counts up to this use the exact interval (bisection on the Poisson CDF);
/// above it, Wilson–Hilferty (within 0.1 % there).
const EXACT_UP_TO: u64 = 100;

/// Poisson rate of `k` events over `years`.
pub fn poisson_rate(what: &str, k: u64, years: f64) -> Rate {
    let kf = k as f64;
    let years = years.max(f64::MIN_POSITIVE);
    let (low, high) = if k == 0 {
        // Exact: -ln(0.025).
        (0.0, 3.688_879_454)
    } else if k <= EXACT_UP_TO {
        (
            bisect(0.975, |l| poisson_cdf(k - 1, l)),
            bisect(0.025, |l| poisson_cdf(k, l)),
        )
    } else {
        (
            chi2_quantile(-Z95, 2.0 * kf) / 2.0,
            chi2_quantile(Z95, 2.0 * kf + 2.0) / 2.0,
        )
    };
    Rate {
        what: what.to_string(),
        total: kf,
        per_patient_year: kf / years,
        ci95_low: low / years,
        ci95_high: high / years,
    }
}

/// Mean over patients of `value_i / years_i`, with its normal interval.
pub fn mean_rate(what: &str, values: &[(f64, f64)]) -> Rate {
    let n = values.len() as f64;
    let rates: Vec<f64> = values
        .iter()
        .map(|(v, y)| v / y.max(f64::MIN_POSITIVE))
        .collect();
    let mean = if n > 0.0 {
        rates.iter().sum::<f64>() / n
    } else {
        0.0
    };
    let var = if n > 1.0 {
        rates.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let half = Z95 * (var / n.max(1.0)).sqrt();
    Rate {
        what: what.to_string(),
        total: values.iter().map(|(v, _)| v).sum(),
        per_patient_year: mean,
        ci95_low: (mean - half).max(0.0),
        ci95_high: mean + half,
    }
}

/// One patient's totals, as the DuckDB check compares them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PatientTotals {
    /// Patient.
    pub patient_id: u32,
    /// Σ delivered.
    pub delivered_nl: u64,
    /// Patient boluses granted.
    pub boluses_granted: u64,
    /// Patient boluses denied.
    pub boluses_denied: u64,
    /// Alarms by code.
    pub alarms_by_code: BTreeMap<String, u64>,
}

/// The whole summary.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The command line that made it.
    pub command: String,
    /// The fault profile's file.
    pub profile: String,
    /// This shard, `I/N`.
    pub shard: String,
    /// Patients in this shard.
    pub patients: u64,
    /// Patient-years simulated.
    pub patient_years: f64,
    /// Hazard-relevant rates.
    pub rates: Vec<Rate>,
    /// Per patient.
    pub per_patient: Vec<PatientTotals>,
}

/// Builds the summary of a shard's patients.
pub fn summarize(command: &str, profile: &str, shard: &str, patients: &[PatientRow]) -> Summary {
    let years_of = |p: &PatientRow| f64::from(p.days) / 365.0;
    let patient_years: f64 = patients.iter().map(years_of).sum();
    let mut rates = vec![mean_rate(
        "therapy hours lost to stalls and occlusions",
        &patients
            .iter()
            .map(|p| (hours(p.figures.therapy_lost_ms), years_of(p)))
            .collect::<Vec<_>>(),
    )];
    let sum = |f: &dyn Fn(&PatientRow) -> u64| patients.iter().map(f).sum::<u64>();
    rates.push(poisson_rate(
        "envelope refusals (DeliveryDenied)",
        sum(&|p| p.figures.envelope_refusals),
        patient_years,
    ));
    rates.push(poisson_rate(
        "deliveries cut short by an empty reservoir",
        sum(&|p| p.figures.empty_reservoir_cuts),
        patient_years,
    ));
    rates.push(poisson_rate(
        "patient boluses denied",
        sum(&|p| p.figures.boluses_denied),
        patient_years,
    ));
    rates.push(poisson_rate(
        "resets (power losses) the pump came back from",
        sum(&|p| u64::from(p.resets.unwrap_or(0))),
        patient_years,
    ));
    rates.push(poisson_rate(
        "attacker commands accepted (must be 0)",
        sum(&|p| p.attacks_accepted.unwrap_or(0)),
        patient_years,
    ));
    rates.push(poisson_rate(
        "events lost from the log (LogGap)",
        sum(&|p| p.figures.lost_events),
        patient_years,
    ));
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for p in patients {
        for (code, n) in &p.figures.alarms_in_service_by_code {
            *by_code.entry(code.clone()).or_default() += n;
        }
    }
    for (code, n) in by_code {
        rates.push(poisson_rate(
            &format!("alarm {code} (after the first fill)"),
            n,
            patient_years,
        ));
    }
    Summary {
        command: command.to_string(),
        profile: profile.to_string(),
        shard: shard.to_string(),
        patients: patients.len() as u64,
        patient_years,
        rates,
        per_patient: patients
            .iter()
            .map(|p| PatientTotals {
                patient_id: p.patient_id,
                delivered_nl: p.figures.delivered_nl,
                boluses_granted: p.figures.boluses_granted,
                boluses_denied: p.figures.boluses_denied,
                alarms_by_code: p.figures.alarms_by_code.clone(),
            })
            .collect(),
    }
}

/// The summary as a Markdown table.
pub fn table(s: &Summary) -> String {
    let mut out = format!(
        "{} patients, {:.1} patient-years (shard {}), profile {}\n\n",
        s.patients, s.patient_years, s.shard, s.profile
    );
    out.push_str("| per patient-year | rate | 95 % CI | total |\n|---|---|---|---|\n");
    for r in &s.rates {
        out.push_str(&format!(
            "| {} | {:.4} | {:.4} – {:.4} | {:.1} |\n",
            r.what, r.per_patient_year, r.ci95_low, r.ci95_high, r.total
        ));
    }
    out
}

/// Writes the shard's summary as `OUT/summary/shard=I/summary.json`.
pub fn write_summary(out: &Path, shard: u32, summary: &Summary) -> crate::error::Result<PathBuf> {
    let dir = out.join("summary").join(format!("shard={shard}"));
    crate::error::create_dir(&dir)?;
    let path = dir.join("summary.json");
    let text = serde_json::to_string_pretty(summary)
        .map_err(|e| crate::error::Error(format!("cannot encode the summary: {e}")))?;
    crate::error::write_file(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_intervals_match_the_exact_bounds() {
        // Exact 95 % bounds for k = 10: 4.7954 .. 18.3904.
        let r = poisson_rate("x", 10, 1.0);
        assert!((r.ci95_low - 4.7954).abs() < 0.001, "{r:?}");
        assert!((r.ci95_high - 18.3904).abs() < 0.001, "{r:?}");
        let r = poisson_rate("x", 0, 100.0);
        assert_eq!(r.ci95_low, 0.0);
        assert!((r.ci95_high - 0.036_888_794).abs() < 1e-6);
        // k = 1: exact 0.0253 .. 5.5716.
        let r = poisson_rate("x", 1, 1.0);
        assert!((r.ci95_low - 0.0253).abs() < 0.0005, "{r:?}");
        assert!((r.ci95_high - 5.5716).abs() < 0.001, "{r:?}");
        // k = 200 (approximated): exact 173.24 .. 229.70.
        let r = poisson_rate("x", 200, 1.0);
        assert!((r.ci95_low - 173.24).abs() < 0.2, "{r:?}");
        assert!((r.ci95_high - 229.70).abs() < 0.2, "{r:?}");
    }

    #[test]
    fn mean_rate_interval_shrinks_with_agreeing_patients() {
        let r = mean_rate("h", &[(2.0, 1.0), (2.0, 1.0), (2.0, 1.0)]);
        assert_eq!(r.per_patient_year, 2.0);
        assert_eq!((r.ci95_low, r.ci95_high), (2.0, 2.0));
        let r = mean_rate("h", &[(0.0, 1.0), (4.0, 1.0)]);
        assert_eq!(r.per_patient_year, 2.0);
        assert!(r.ci95_low < 2.0 && r.ci95_high > 2.0);
    }
}
