//! `pumpctl trumpet`: an IEC 60601-2-24-style flow-accuracy trumpet curve.
//!
//! **Delivery log.** The trumpet needs the time of every unit of volume
//! delivered, finer than the telemetry log's hourly checkpoints: it reads a
//! *step log*, a CSV with a header naming `monotonic_ms` (or `time_ms`) and
//! `volume_nl` columns, one row per motor step (or any delivery quantum).
//! `pumpctl simulate` writes one as `steps.csv`; a bench rig's balance log
//! converted to the same two columns works too.
//!
//! **Method** (after IEC 60601-2-24:2012, 201.12.1.104): delivered volume is
//! binned into samples of S = 30 s over the analysis period T (default: the
//! second hour of the log, i.e. start 60 min after its first step, 60 min
//! long). For each observation window P ∈ {2, 5, 11, 19, 31} min, every run
//! of P/S consecutive samples gives a percentage error against the set rate
//! `100 · (V_window − R·P) / (R·P)`; the curve plots the largest (Ep max)
//! and smallest (Ep min) of those errors per window. The overall error A is
//! the same formula over the whole period. Volumes are integers (nL); the
//! percentages are computed in floating point only for printing and the
//! chart.

use std::path::Path;

use crate::error::{Error, Result};
use crate::units::{MS_PER_MIN, NL_PER_ML, NL_PER_UL};

/// The standard's observation windows.
pub const WINDOWS_MIN: [u32; 5] = [2, 5, 11, 19, 31];
/// Sampling interval.
pub const SAMPLE_MS: u64 = 30_000;

/// A trumpet analysis.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Trumpet {
    /// Set rate.
    pub rate_nl_per_h: u64,
    /// Analysis period start (log time, ms).
    pub start_ms: u64,
    /// Analysis period length.
    pub period_ms: u64,
    /// Volume delivered in the period.
    pub delivered_nl: u64,
    /// Overall error A (%).
    pub overall_pct: f64,
    /// Per window: `(minutes, Ep max %, Ep min %)`.
    pub windows: Vec<(u32, f64, f64)>,
}

/// Parses `R` with an optional unit: `25000` or `25000nl/h`, `25ul/h`,
/// `0.6ml/day`, `1ml/h`. Integer nL/h, rounded down.
pub fn parse_rate(s: &str) -> Result<u64> {
    let s = s.trim().to_ascii_lowercase().replace('µ', "u");
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let bad = || {
        Error(format!(
            "--rate `{s}`: expected a rate like 25000 (nL/h), 25000nl/h, 25ul/h or 0.6ml/day"
        ))
    };
    let micro = crate::units::parse_millionths(num).ok_or_else(bad)?;
    let (mul, div) = match unit.trim() {
        "" | "nl/h" => (1, 1),
        "ul/h" => (NL_PER_UL, 1),
        "ml/h" => (NL_PER_ML, 1),
        "ul/day" | "ul/d" => (NL_PER_UL, 24),
        "ml/day" | "ml/d" => (NL_PER_ML, 24),
        _ => return Err(bad()),
    };
    let rate = u128::from(micro) * u128::from(mul) / (1_000_000u128 * div);
    let rate = u64::try_from(rate).map_err(|_| bad())?;
    if rate == 0 {
        return Err(Error(format!("--rate `{s}`: must be above 0")));
    }
    Ok(rate)
}

/// Reads a step log: `(time_ms, volume_nl)` rows.
pub fn load_steps(path: &Path) -> Result<Vec<(u64, u64)>> {
    let bytes = crate::error::read_file(path)?;
    if bytes.first() == Some(&0) || bytes.contains(&0) {
        return Err(Error(format!(
            "{}: this is a binary frame stream (a telemetry log); trumpet needs a step log CSV (steps.csv from `pumpctl simulate`)",
            path.display()
        )));
    }
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| Error(format!("{}: not a CSV step log: {e}", path.display())))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let t_col = col("monotonic_ms").or_else(|| col("time_ms")).ok_or_else(|| {
        Error(format!(
            "{}: expected a header with `monotonic_ms` (or `time_ms`) and `volume_nl` columns, found `{}`",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        ))
    })?;
    let v_col = col("volume_nl").ok_or_else(|| {
        Error(format!(
            "{}: expected a `volume_nl` column in the header",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| Error(format!("{}:{line}: {e}", path.display())))?;
        let get = |c: usize, what: &str| -> Result<u64> {
            rec.get(c)
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    Error(format!(
                        "{}:{line}: `{what}`: expected a whole number",
                        path.display()
                    ))
                })
        };
        out.push((get(t_col, "time")?, get(v_col, "volume_nl")?));
    }
    if out.is_empty() {
        return Err(Error(format!("{}: no steps in the log", path.display())));
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

/// Computes the trumpet. `start_ms` is relative to the first step.
pub fn analyse(
    steps: &[(u64, u64)],
    rate_nl_per_h: u64,
    start_after_ms: u64,
    period_ms: u64,
) -> Result<Trumpet> {
    let first = steps.first().map_or(0, |s| s.0);
    let last = steps.last().map_or(0, |s| s.0);
    let start = first + start_after_ms;
    let end = start + period_ms;
    if end > last + SAMPLE_MS {
        return Err(Error(format!(
            "the step log covers {} min after its first step; the analysis period needs {} min (use --start-min/--period-min)",
            (last - first) / MS_PER_MIN,
            (start_after_ms + period_ms) / MS_PER_MIN
        )));
    }
    let n = usize::try_from(period_ms / SAMPLE_MS).unwrap_or(0);
    let mut samples = vec![0u64; n];
    for (t, v) in steps {
        if *t >= start && *t < end {
            if let Some(s) =
                samples.get_mut(usize::try_from((t - start) / SAMPLE_MS).unwrap_or(usize::MAX))
            {
                *s += v;
            }
        }
    }
    let delivered: u64 = samples.iter().sum();
    let expected = |ms: u64| (rate_nl_per_h as f64) * (ms as f64) / 3_600_000.0;
    let pct = |v: u64, ms: u64| 100.0 * (v as f64 - expected(ms)) / expected(ms);
    let mut windows = Vec::new();
    for w in WINDOWS_MIN {
        let m = usize::try_from(u64::from(w) * MS_PER_MIN / SAMPLE_MS).unwrap_or(usize::MAX);
        if m > n {
            continue;
        }
        let mut sum: u64 = samples[..m].iter().sum();
        let (mut lo, mut hi) = (sum, sum);
        for j in m..n {
            sum = sum + samples[j] - samples[j - m];
            lo = lo.min(sum);
            hi = hi.max(sum);
        }
        let ms = u64::from(w) * MS_PER_MIN;
        windows.push((w, pct(hi, ms), pct(lo, ms)));
    }
    Ok(Trumpet {
        rate_nl_per_h,
        start_ms: start,
        period_ms,
        delivered_nl: delivered,
        overall_pct: pct(delivered, period_ms),
        windows,
    })
}

/// The printed table.
pub fn table(t: &Trumpet) -> String {
    let mut s = format!(
        "set rate {} nL/h; analysis period {} min from log time {} ms; delivered {} nL (expected {} nL)\noverall error A = {:+.2} %\n\nwindow (min)   Ep max (%)   Ep min (%)\n",
        t.rate_nl_per_h,
        t.period_ms / MS_PER_MIN,
        t.start_ms,
        t.delivered_nl,
        u128::from(t.rate_nl_per_h) * u128::from(t.period_ms) / 3_600_000,
        t.overall_pct
    );
    for (w, hi, lo) in &t.windows {
        s.push_str(&format!("{w:>12}   {hi:>+10.2}   {lo:>+10.2}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_exactly() {
        assert_eq!(parse_rate("25000").unwrap(), 25_000);
        assert_eq!(parse_rate("25ul/h").unwrap(), 25_000);
        assert_eq!(parse_rate("0.6ml/day").unwrap(), 25_000);
        assert_eq!(parse_rate("1 mL/h").unwrap(), 1_000_000);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn perfectly_even_flow_has_zero_error() {
        // 250 nL every 36 s = 25 000 nL/h.
        let steps: Vec<(u64, u64)> = (0..400u64).map(|i| (i * 36_000, 250)).collect();
        let t = analyse(&steps, 25_000, 0, 3_600_000).unwrap();
        assert!(t.overall_pct.abs() < 1e-9);
        let w31 = t.windows.iter().find(|w| w.0 == 31).unwrap();
        assert!(w31.1.abs() < 3.0 && w31.2.abs() < 3.0, "{w31:?}");
    }
}
