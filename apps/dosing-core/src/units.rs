//! Dose ↔ volume conversions. Every µg → nL conversion of the dosing app
//! happens here, at the prescription's concentration, in integer arithmetic.
//!
//! Rounding is always **down** (toward zero). A rate or volume that was
//! rounded down delivers at most one nanolitre (per hour, or per bolus) less
//! than the exact value: far below one motor step (hundreds of nL), so it is
//! clinically invisible. Rounding up could instead turn a prescription whose
//! rate sits exactly on the envelope's maximum into a request the capsule
//! refuses, and on principle a conversion must never invent drug the
//! physician did not prescribe (HAZ-027).

/// Nanolitres per millilitre.
pub const NL_PER_ML: u64 = 1_000_000;

/// Hours per day.
pub const HOURS_PER_DAY: u64 = 24;

/// Milliseconds per hour.
pub const MS_PER_HOUR: u64 = 3_600_000;

/// Milliseconds per day.
pub const MS_PER_DAY: u64 = 86_400_000;

/// Why a conversion has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversionError {
    /// The concentration is zero: no volume carries any dose.
    ZeroConcentration,
    /// The result does not fit the capsule's `u32` argument.
    Overflow,
    /// A duration was asked for a zero rate (it would be infinite).
    ZeroRate,
}

/// The one conversion of a basal dose rate to a volume rate:
///
/// ```text
/// rate_nl_per_h = floor(rate_ug_per_day * 1 000 000 / (concentration_ug_per_ml * 24))
/// ```
///
/// Rounded down (see the module docs). Exact in `u64`: the numerator is at
/// most `u32::MAX * 10^6 < 2^53` and the denominator at most `u32::MAX * 24`.
pub fn basal_rate_nl_per_h(
    rate_ug_per_day: u32,
    concentration_ug_per_ml: u32,
) -> Result<u32, ConversionError> {
    if concentration_ug_per_ml == 0 {
        return Err(ConversionError::ZeroConcentration);
    }
    let numerator = u64::from(rate_ug_per_day) * NL_PER_ML;
    let denominator = u64::from(concentration_ug_per_ml) * HOURS_PER_DAY;
    u32::try_from(numerator / denominator).map_err(|_| ConversionError::Overflow)
}

/// Volume of a bolus dose: `floor(dose_ug * 1 000 000 / concentration_ug_per_ml)`,
/// rounded down like [`basal_rate_nl_per_h`].
pub fn dose_volume_nl(dose_ug: u32, concentration_ug_per_ml: u32) -> Result<u32, ConversionError> {
    if concentration_ug_per_ml == 0 {
        return Err(ConversionError::ZeroConcentration);
    }
    let volume = u64::from(dose_ug) * NL_PER_ML / u64::from(concentration_ug_per_ml);
    u32::try_from(volume).map_err(|_| ConversionError::Overflow)
}

/// How long `volume_nl` takes at `rate_nl_per_h`, rounded **up**, so that a
/// bolus given this duration never runs faster than the rate.
pub fn duration_at_rate_ms(volume_nl: u32, rate_nl_per_h: u32) -> Result<u32, ConversionError> {
    if rate_nl_per_h == 0 {
        return Err(ConversionError::ZeroRate);
    }
    let duration = (u64::from(volume_nl) * MS_PER_HOUR).div_ceil(u64::from(rate_nl_per_h));
    u32::try_from(duration).map_err(|_| ConversionError::Overflow)
}

/// Volume delivered at `rate_nl_per_h` over `duration_ms`, rounded down and
/// saturating at `u32::MAX`.
pub fn volume_at_rate_nl(rate_nl_per_h: u32, duration_ms: u64) -> u32 {
    let volume = u128::from(rate_nl_per_h) * u128::from(duration_ms) / u128::from(MS_PER_HOUR);
    u32::try_from(volume).unwrap_or(u32::MAX)
}
