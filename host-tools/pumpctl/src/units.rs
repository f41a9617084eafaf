//! The one place where pumpctl converts doses to volumes, and the integer
//! unit constants the rest of the tool uses. No floats.
//!
//! Rounding is always **down** (toward zero), exactly like the dosing app
//! (`dosing-core`'s `units` module), so a rate that pumpctl writes into the
//! envelope and the rate the dosing app later asks for at the same
//! concentration can never disagree upward: a maximum rounded down is
//! stricter, a therapy rate rounded down delivers at most 1 nL (per hour,
//! or per bolus) less than exact, far below one motor step.

/// Nanolitres per millilitre.
pub const NL_PER_ML: u64 = 1_000_000;
/// Nanolitres per microlitre.
pub const NL_PER_UL: u64 = 1_000;
/// Milliseconds per minute.
pub const MS_PER_MIN: u64 = 60_000;
/// Milliseconds per hour.
pub const MS_PER_HOUR: u64 = 3_600_000;
/// Milliseconds per day.
pub const MS_PER_DAY: u64 = 86_400_000;
/// Hours per day.
pub const HOURS_PER_DAY: u64 = 24;

/// Which conversion overflowed or had no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversionError {
    /// Concentration zero: no volume carries any dose.
    ZeroConcentration,
    /// The result does not fit a `u32`.
    Overflow,
}

/// The dose → volume conversion: `floor(dose_ug * 10^6 / concentration_ug_per_ml)` nL.
///
/// Used for every bolus dose, the daily maximum and every envelope limit
/// given as a dose. Exact in `u64` (`u32::MAX * 10^6 < 2^64`).
pub fn dose_ug_to_nl(dose_ug: u32, concentration_ug_per_ml: u32) -> Result<u32, ConversionError> {
    if concentration_ug_per_ml == 0 {
        return Err(ConversionError::ZeroConcentration);
    }
    let nl = u64::from(dose_ug) * NL_PER_ML / u64::from(concentration_ug_per_ml);
    u32::try_from(nl).map_err(|_| ConversionError::Overflow)
}

/// The dose-rate → volume-rate conversion:
/// `floor(rate_ug_per_day * 10^6 / (concentration_ug_per_ml * 24))` nL/h.
///
/// Identical to `dosing-core`'s `basal_rate_nl_per_h`, so the envelope's
/// maximum and the app's request are computed the same way.
pub fn rate_ug_per_day_to_nl_per_h(
    rate_ug_per_day: u32,
    concentration_ug_per_ml: u32,
) -> Result<u32, ConversionError> {
    if concentration_ug_per_ml == 0 {
        return Err(ConversionError::ZeroConcentration);
    }
    let num = u64::from(rate_ug_per_day) * NL_PER_ML;
    let den = u64::from(concentration_ug_per_ml) * HOURS_PER_DAY;
    u32::try_from(num / den).map_err(|_| ConversionError::Overflow)
}

/// An exact decimal (`12`, `0.6`, `.25`; up to 6 fraction digits, no sign
/// or exponent) in millionths, without going through a float.
pub fn parse_millionths(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 6 {
        return None;
    }
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_micro: u64 = if frac.is_empty() {
        0
    } else {
        // At most 6 digits: the power is 10^0..10^5.
        frac.parse::<u64>().ok()? * 10u64.pow(6 - u32::try_from(frac.len()).ok()?)
    };
    int.checked_mul(1_000_000)?.checked_add(frac_micro)
}

/// A volume in mL (`12.5`, up to 6 decimals: 1 nL) as nL, exactly;
/// `None` if it is not such a number or does not fit 32 bits of nL.
pub fn parse_ml_to_nl(s: &str) -> Option<u32> {
    // One millionth of a mL is one nL.
    u32::try_from(parse_millionths(s.trim())?).ok()
}

/// Volume → dose, for display only: `floor(volume_nl * concentration / 10^6)` µg.
pub fn nl_to_dose_ug(volume_nl: u64, concentration_ug_per_ml: u32) -> u64 {
    volume_nl.saturating_mul(u64::from(concentration_ug_per_ml)) / NL_PER_ML
}

/// Formats a volume in nL as mL with three decimals (integer arithmetic).
pub fn fmt_ml(volume_nl: u64) -> String {
    let ul = volume_nl / NL_PER_UL;
    format!("{}.{:03} mL", ul / 1000, ul % 1000)
}

/// Formats milliseconds as `dD HH:MM:SS` (days since the origin).
pub fn fmt_duration(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "d{} {:02}:{:02}:{:02}",
        s / 86_400,
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60
    )
}

/// Formats Unix milliseconds as an ISO 8601 UTC timestamp (civil-from-days,
/// Howard Hinnant's algorithm; integer only).
pub fn fmt_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        ms % 1000
    )
}

/// The UTC date of Unix milliseconds, `YYYY-MM-DD`.
pub fn fmt_date(ms: u64) -> String {
    let (y, m, d) = civil_from_days((ms / MS_PER_DAY) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_down() {
        // 500 µg/day at 500 µg/mL: 1 mL/day = 41 666.67 nL/h -> 41 666.
        assert_eq!(rate_ug_per_day_to_nl_per_h(500, 500), Ok(41_666));
        assert_eq!(dose_ug_to_nl(25, 500), Ok(50_000));
        assert_eq!(dose_ug_to_nl(1, 3), Ok(333_333));
        assert_eq!(dose_ug_to_nl(1, 0), Err(ConversionError::ZeroConcentration));
        assert_eq!(dose_ug_to_nl(u32::MAX, 1), Err(ConversionError::Overflow));
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_millionths("0.6"), Some(600_000));
        assert_eq!(parse_millionths(".25"), Some(250_000));
        assert_eq!(parse_millionths("12"), Some(12_000_000));
        assert_eq!(parse_millionths("1.0000001"), None);
        for bad in ["", ".", "-1", "+1", "1e3", "1.-5", "a"] {
            assert_eq!(parse_millionths(bad), None, "{bad}");
        }
        assert_eq!(parse_ml_to_nl("12.5"), Some(12_500_000));
        assert_eq!(parse_ml_to_nl("0.000001"), Some(1));
        assert_eq!(parse_ml_to_nl("4294.967295"), Some(u32::MAX));
        assert_eq!(parse_ml_to_nl("4294.967296"), None);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_utc(1_735_689_600_000), "2025-01-01T00:00:00.000Z");
        assert_eq!(fmt_date(1_735_689_600_000 + 59 * MS_PER_DAY), "2025-03-01");
        assert_eq!(fmt_ml(1_234_567), "1.234 mL");
        assert_eq!(fmt_duration(MS_PER_DAY + 3_723_000), "d1 01:02:03");
    }
}
