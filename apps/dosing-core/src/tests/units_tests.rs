use proptest::prelude::*;

use crate::units::{
    basal_rate_nl_per_h, dose_volume_nl, duration_at_rate_ms, volume_at_rate_nl, ConversionError,
};

#[test]
fn sr_dos_001_basal_conversion_examples() {
    // 300 µg/day at 500 µg/mL = 0.6 mL/day = 25 000 nL/h exactly.
    assert_eq!(basal_rate_nl_per_h(300, 500), Ok(25_000));
    // 100 µg/day at 2000 µg/mL = 50 µL/day = 2083.33 nL/h: rounded down.
    assert_eq!(basal_rate_nl_per_h(100, 2_000), Ok(2_083));
    // 1 µg/day at 3 µg/mL = 13 888.9 nL/h: rounded down, never up.
    assert_eq!(basal_rate_nl_per_h(1, 3), Ok(13_888));
    assert_eq!(basal_rate_nl_per_h(0, 500), Ok(0));
    assert_eq!(
        basal_rate_nl_per_h(300, 0),
        Err(ConversionError::ZeroConcentration)
    );
    // 4 294 967 295 µg/day at 1 µg/mL is ~1.8e11 nL/h: refused, not wrapped.
    assert_eq!(
        basal_rate_nl_per_h(u32::MAX, 1),
        Err(ConversionError::Overflow)
    );
}

#[test]
fn sr_dos_001_bolus_conversion_examples() {
    assert_eq!(dose_volume_nl(25, 500), Ok(50_000));
    assert_eq!(dose_volume_nl(1, 3), Ok(333_333));
    assert_eq!(
        dose_volume_nl(25, 0),
        Err(ConversionError::ZeroConcentration)
    );
    assert_eq!(dose_volume_nl(u32::MAX, 1), Err(ConversionError::Overflow));
    assert_eq!(duration_at_rate_ms(25_000, 25_000), Ok(3_600_000));
    // 1 nL at 3 nL/h is 1.2 s: rounded up, so the mean rate stays <= 3 nL/h.
    assert_eq!(duration_at_rate_ms(1, 3), Ok(1_200_000));
    assert_eq!(duration_at_rate_ms(1, 7), Ok(514_286));
    assert_eq!(duration_at_rate_ms(1, 0), Err(ConversionError::ZeroRate));
    assert_eq!(volume_at_rate_nl(25_000, 3_600_000), 25_000);
    assert_eq!(volume_at_rate_nl(u32::MAX, u64::MAX), u32::MAX);
}

proptest! {
    // Verifies: SR-DOS-001
    #[test]
    fn basal_conversion_rounds_down_by_less_than_one_nl_per_h(
        rate_ug_per_day in any::<u32>(),
        concentration in 1u32..,
    ) {
        let exact_num = u128::from(rate_ug_per_day) * 1_000_000;
        let den = u128::from(concentration) * 24;
        match basal_rate_nl_per_h(rate_ug_per_day, concentration) {
            Ok(rate) => {
                let rate = u128::from(rate);
                prop_assert!(rate * den <= exact_num);
                prop_assert!((rate + 1) * den > exact_num);
            }
            Err(e) => {
                prop_assert_eq!(e, ConversionError::Overflow);
                prop_assert!(exact_num / den > u128::from(u32::MAX));
            }
        }
    }

    // Verifies: SR-DOS-001
    #[test]
    fn bolus_duration_never_exceeds_the_rate(volume in 1u32.., rate in 1u32..) {
        if let Ok(duration) = duration_at_rate_ms(volume, rate) {
            // volume / duration <= rate / 1 h
            prop_assert!(u128::from(volume) * 3_600_000 <= u128::from(rate) * u128::from(duration));
        }
    }
}
