//! The physician's envelope and the hardware's limits: whether a basal rate,
//! a bolus or a single step may happen now.
//!
//! The rules are pure functions of the [`Envelope`], the board's
//! [`HardwareLimits`] and a [`DeliveryView`] of the pump at one instant, so
//! each can be read, and is tested, on its own. They change nothing: a
//! refusal is an [`ErrorCode`], and the first rule broken names it (the
//! order below is the order a reviewer reads them in).

use pump_protocol::prescription::{ClinicianBolusLimits, Envelope};
use pump_protocol::{DeliveryKind, ErrorCode};

use super::infusion::InfusionCore;
use crate::config::HardwareLimits;
use crate::ledger::{Channel, Run, MS_PER_HOUR};
use crate::platform::Platform;

/// What the rules look at, read from the pump at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DeliveryView {
    /// Volume the 24 h ledger holds for the window ending now.
    pub delivered_24h_nl: u64,
    /// Reservoir volume.
    pub reservoir_nl: u32,
    /// The running basal rate (0 if none).
    pub basal_rate_nl_per_h: u64,
    /// The running bolus's mean rate (0 if none).
    pub bolus_rate_nl_per_h: u64,
    /// A bolus is running.
    pub bolus_active: bool,
    /// Patient boluses started in the 24 h window.
    pub patient_boluses_24h: u32,
    /// Start of the latest patient bolus, if any.
    pub last_patient_bolus_ms: Option<u64>,
    /// Clinician boluses started in the 24 h window.
    pub clinician_boluses_24h: u32,
    /// Start of the latest clinician bolus, if any.
    pub last_clinician_bolus_ms: Option<u64>,
    /// The ledger can take one more run.
    pub ledger_has_room: bool,
}

/// The limits in force: the prescription's envelope and the board's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits<'a> {
    pub envelope: &'a Envelope,
    /// The prescription's clinician-bolus limits (format 2, or format 1's).
    pub clinician: &'a ClinicianBolusLimits,
    pub hardware: &'a HardwareLimits,
    pub nl_per_step: u32,
}

impl Limits<'_> {
    /// A basal rate (> 0) may start now (SR-ENV-001, SR-ENV-002).
    pub fn check_basal(&self, v: &DeliveryView, rate_nl_per_h: u32) -> Result<(), ErrorCode> {
        let env = self.envelope;
        let s = u64::from(self.nl_per_step);
        let rate = u64::from(rate_nl_per_h);
        if rate_nl_per_h > env.max_basal_rate_nl_per_h {
            return Err(ErrorCode::RateAboveEnvelope);
        }
        if rate + v.bolus_rate_nl_per_h > u64::from(self.hardware.max_rate_nl_per_h) {
            return Err(ErrorCode::OutsideHardwareLimits);
        }
        let daily_max = u64::from(env.max_volume_per_24h_nl);
        if rate * 24 > daily_max || v.delivered_24h_nl + s > daily_max {
            return Err(ErrorCode::DailyLimitReached);
        }
        if u64::from(v.reservoir_nl) < s {
            return Err(ErrorCode::ReservoirInsufficient);
        }
        if !v.ledger_has_room {
            return Err(ErrorCode::Busy);
        }
        Ok(())
    }

    /// A bolus of `volume_nl` over `duration_ms` may start at `now`, its
    /// whole course counted with the basal that runs beside it (SR-ENV-003,
    /// SR-ENV-004, SR-ENV-006, SR-RES-001).
    pub fn check_bolus(
        &self,
        v: &DeliveryView,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
        now: u64,
    ) -> Result<(), ErrorCode> {
        let env = self.envelope;
        if volume_nl == 0 || duration_ms == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        // SR-ENV-012: a bolus longer than the 24 h window is a basal change
        // nobody prescribed (GIP 1.4.9-1.4.10).
        if duration_ms > MAX_BOLUS_DURATION_MS {
            return Err(ErrorCode::BolusTooLong);
        }
        if v.bolus_active {
            return Err(ErrorCode::Busy);
        }
        if volume_nl > env.max_bolus_nl {
            return Err(ErrorCode::BolusAboveEnvelope);
        }
        let bolus_rate = u64::from(mean_rate_nl_per_h(volume_nl, duration_ms));
        if bolus_rate + v.basal_rate_nl_per_h > u64::from(self.hardware.max_rate_nl_per_h) {
            return Err(ErrorCode::OutsideHardwareLimits);
        }
        if kind == DeliveryKind::PatientBolus {
            let lockout = u64::from(env.min_patient_bolus_lockout_ms);
            if v.last_patient_bolus_ms
                .is_some_and(|t| now < t.saturating_add(lockout))
            {
                return Err(ErrorCode::LockoutActive);
            }
            if v.patient_boluses_24h >= u32::from(env.max_patient_boluses_per_24h) {
                return Err(ErrorCode::BolusCountReached);
            }
        }
        if kind == DeliveryKind::ClinicianBolus {
            // SR-AUTH-006: even a signed clinician bolus stays within the
            // count and spacing the physician signed.
            let interval = u64::from(self.clinician.min_interval_ms);
            if v.last_clinician_bolus_ms
                .is_some_and(|t| now < t.saturating_add(interval))
                || v.clinician_boluses_24h >= u32::from(self.clinician.max_per_24h)
            {
                return Err(ErrorCode::ClinicianBolusLimit);
            }
        }
        let basal_during = v.basal_rate_nl_per_h * u64::from(duration_ms) / MS_PER_HOUR;
        let projected = v
            .delivered_24h_nl
            .saturating_add(u64::from(volume_nl))
            .saturating_add(basal_during);
        if projected > u64::from(env.max_volume_per_24h_nl) {
            return Err(ErrorCode::DailyLimitReached);
        }
        if u64::from(v.reservoir_nl) < u64::from(volume_nl) + basal_during {
            return Err(ErrorCode::ReservoirInsufficient);
        }
        if !v.ledger_has_room {
            return Err(ErrorCode::Busy);
        }
        Ok(())
    }

    /// One step may be made now: checked at the instant of every step,
    /// whatever was checked when its run started (SR-ENV-005).
    pub fn check_step(&self, v: &DeliveryView) -> Result<(), ErrorCode> {
        let s = u64::from(self.nl_per_step);
        if u64::from(v.reservoir_nl) < s {
            return Err(ErrorCode::ReservoirInsufficient);
        }
        if v.delivered_24h_nl + s > u64::from(self.envelope.max_volume_per_24h_nl) {
            return Err(ErrorCode::DailyLimitReached);
        }
        Ok(())
    }
}

impl<P: Platform> InfusionCore<P> {
    /// The limits in force, or why nothing may be delivered at all.
    pub(super) fn limits(&self) -> Result<Limits<'_>, ErrorCode> {
        let rx = self.rx.as_ref().ok_or(ErrorCode::NoPrescription)?;
        if self.p.alarms.delivery_blocked() || self.fault_inputs != 0 {
            return Err(ErrorCode::FaultActive);
        }
        if self.p.suspended {
            return Err(ErrorCode::Suspended);
        }
        Ok(Limits {
            envelope: &rx.envelope,
            clinician: &self.pairing.clinician_bolus,
            hardware: &self.config.limits,
            nl_per_step: self.config.nl_per_step,
        })
    }

    /// The pump as the rules see it at `now`.
    pub(super) fn delivery_view(&self, now: u64) -> DeliveryView {
        let ledger = &self.p.ledger;
        let (patient_boluses_24h, last_patient_bolus_ms) = ledger.patient_boluses_in_window(now);
        let (clinician_boluses_24h, last_clinician_bolus_ms) =
            ledger.boluses_in_window(DeliveryKind::ClinicianBolus, now);
        DeliveryView {
            delivered_24h_nl: self.delivered_24h_nl(now),
            reservoir_nl: self.p.reservoir_nl,
            basal_rate_nl_per_h: u64::from(self.basal_rate_nl_per_h()),
            bolus_rate_nl_per_h: ledger.active(Channel::Bolus).map_or(0, bolus_rate_nl_per_h),
            bolus_active: ledger.active(Channel::Bolus).is_some(),
            patient_boluses_24h,
            last_patient_bolus_ms,
            clinician_boluses_24h,
            last_clinician_bolus_ms,
            ledger_has_room: ledger.has_room(now, self.config.nl_per_step),
        }
    }

    pub(super) fn check_basal(&self, rate_nl_per_h: u32, now: u64) -> Result<(), ErrorCode> {
        self.limits()?
            .check_basal(&self.delivery_view(now), rate_nl_per_h)
    }

    pub(super) fn check_bolus(
        &self,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
        now: u64,
    ) -> Result<(), ErrorCode> {
        self.limits()?
            .check_bolus(&self.delivery_view(now), kind, volume_nl, duration_ms, now)
    }

    pub(super) fn check_step(&self, now: u64) -> Result<(), ErrorCode> {
        self.limits()?.check_step(&self.delivery_view(now))
    }
}

fn bolus_rate_nl_per_h(run: &Run) -> u64 {
    u64::from(mean_rate_nl_per_h(
        u32::try_from(run.nl_den).unwrap_or(u32::MAX),
        u32::try_from(run.ms_num).unwrap_or(u32::MAX),
    ))
}

/// The longest bolus the pump runs, of any kind: the envelope's 24 h window.
/// A longer one would be a basal change, which only a signed prescription
/// makes (SR-ENV-012).
pub const MAX_BOLUS_DURATION_MS: u32 = 24 * 60 * 60 * 1000;

/// Mean rate of `volume_nl` over `duration_ms`, rounded up (the safe side
/// for rate limits), saturating.
pub fn mean_rate_nl_per_h(volume_nl: u32, duration_ms: u32) -> u32 {
    if duration_ms == 0 {
        return u32::MAX;
    }
    let rate = (u64::from(volume_nl) * MS_PER_HOUR).div_ceil(u64::from(duration_ms));
    u32::try_from(rate).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_protocol::prescription::SilencePolicy;

    const HOUR: u64 = 3_600_000;

    fn envelope() -> Envelope {
        Envelope {
            max_basal_rate_nl_per_h: 50_000,
            max_bolus_nl: 100_000,
            min_patient_bolus_lockout_ms: HOUR as u32,
            max_patient_boluses_per_24h: 4,
            max_volume_per_24h_nl: 1_500_000,
            reservoir_low_threshold_nl: 2_000_000,
            dosing_checkin_timeout_ms: 900_000,
            silence_policy: SilencePolicy::StopDelivery,
        }
    }

    fn hardware() -> HardwareLimits {
        HardwareLimits {
            max_rate_nl_per_h: 1_000_000,
            max_bolus_nl: 500_000,
            reservoir_capacity_nl: 20_000_000,
            max_volume_per_24h_nl: 10_000_000,
            min_checkin_timeout_ms: 1_000,
            max_checkin_timeout_ms: 3_600_000,
        }
    }

    fn idle() -> DeliveryView {
        DeliveryView {
            delivered_24h_nl: 0,
            reservoir_nl: 10_000_000,
            basal_rate_nl_per_h: 0,
            bolus_rate_nl_per_h: 0,
            bolus_active: false,
            patient_boluses_24h: 0,
            last_patient_bolus_ms: None,
            clinician_boluses_24h: 0,
            last_clinician_bolus_ms: None,
            ledger_has_room: true,
        }
    }

    const CLINICIAN: ClinicianBolusLimits = ClinicianBolusLimits {
        max_per_24h: 2,
        min_interval_ms: 2 * HOUR as u32,
    };

    fn with<T>(f: impl FnOnce(Limits<'_>) -> T) -> T {
        let (env, hw) = (envelope(), hardware());
        f(Limits {
            envelope: &env,
            clinician: &CLINICIAN,
            hardware: &hw,
            nl_per_step: 250,
        })
    }

    #[test]
    fn sr_env_001_basal_above_the_envelope_or_the_day_is_refused() {
        with(|l| {
            let v = idle();
            assert_eq!(l.check_basal(&v, 50_000), Ok(()));
            assert_eq!(l.check_basal(&v, 50_001), Err(ErrorCode::RateAboveEnvelope));
            let nearly_full = DeliveryView {
                delivered_24h_nl: 1_499_751,
                ..v
            };
            assert_eq!(
                l.check_basal(&nearly_full, 10_000),
                Err(ErrorCode::DailyLimitReached)
            );
            let busy_motor = DeliveryView {
                bolus_rate_nl_per_h: 960_001,
                ..v
            };
            assert_eq!(
                l.check_basal(&busy_motor, 40_000),
                Err(ErrorCode::OutsideHardwareLimits)
            );
            let empty = DeliveryView {
                reservoir_nl: 249,
                ..v
            };
            assert_eq!(
                l.check_basal(&empty, 10_000),
                Err(ErrorCode::ReservoirInsufficient)
            );
        });
    }

    #[test]
    fn sr_env_003_a_bolus_counts_its_whole_course_with_the_basal_beside_it() {
        with(|l| {
            let v = DeliveryView {
                delivered_24h_nl: 1_400_000,
                basal_rate_nl_per_h: 48_000,
                ..idle()
            };
            // 50 000 nL plus 48 000 nL of basal over its hour is 1 498 000: fits.
            assert_eq!(
                l.check_bolus(&v, DeliveryKind::ClinicianBolus, 50_000, HOUR as u32, 0),
                Ok(())
            );
            // Over two hours the basal beside it takes the day over the limit.
            assert_eq!(
                l.check_bolus(&v, DeliveryKind::ClinicianBolus, 50_000, 2 * HOUR as u32, 0),
                Err(ErrorCode::DailyLimitReached)
            );
            assert_eq!(
                l.check_bolus(&v, DeliveryKind::ClinicianBolus, 100_001, HOUR as u32, 0),
                Err(ErrorCode::BolusAboveEnvelope)
            );
            assert_eq!(
                l.check_bolus(&v, DeliveryKind::ClinicianBolus, 0, HOUR as u32, 0),
                Err(ErrorCode::InvalidArgument)
            );
        });
    }

    #[test]
    fn sr_env_004_patient_boluses_keep_their_lockout_and_count() {
        with(|l| {
            let t = 10 * HOUR;
            let recent = DeliveryView {
                patient_boluses_24h: 1,
                last_patient_bolus_ms: Some(t - HOUR + 1),
                ..idle()
            };
            let kind = DeliveryKind::PatientBolus;
            assert_eq!(
                l.check_bolus(&recent, kind, 10_000, 60_000, t),
                Err(ErrorCode::LockoutActive)
            );
            assert_eq!(l.check_bolus(&recent, kind, 10_000, 60_000, t + 1), Ok(()));
            let used_up = DeliveryView {
                patient_boluses_24h: 4,
                last_patient_bolus_ms: Some(0),
                ..idle()
            };
            assert_eq!(
                l.check_bolus(&used_up, kind, 10_000, 60_000, t),
                Err(ErrorCode::BolusCountReached)
            );
            // A clinician bolus is bound by neither.
            assert_eq!(
                l.check_bolus(&recent, DeliveryKind::ClinicianBolus, 10_000, 60_000, t),
                Ok(())
            );
        });
    }

    #[test]
    fn sr_env_005_each_step_is_checked_against_the_day_and_the_reservoir() {
        with(|l| {
            assert_eq!(l.check_step(&idle()), Ok(()));
            let at_limit = DeliveryView {
                delivered_24h_nl: 1_499_750,
                ..idle()
            };
            assert_eq!(l.check_step(&at_limit), Ok(()));
            let over = DeliveryView {
                delivered_24h_nl: 1_499_751,
                ..idle()
            };
            assert_eq!(l.check_step(&over), Err(ErrorCode::DailyLimitReached));
            let dry = DeliveryView {
                reservoir_nl: 249,
                ..idle()
            };
            assert_eq!(l.check_step(&dry), Err(ErrorCode::ReservoirInsufficient));
        });
    }

    #[test]
    fn mean_rate_rounds_up_and_saturates() {
        assert_eq!(mean_rate_nl_per_h(1, 3_600_001), 1);
        assert_eq!(mean_rate_nl_per_h(100_000, 3_600_000), 100_000);
        assert_eq!(mean_rate_nl_per_h(u32::MAX, 1), u32::MAX);
        assert_eq!(mean_rate_nl_per_h(1, 0), u32::MAX);
    }

    #[test]
    fn sr_auth_006_clinician_boluses_keep_the_signed_count_and_spacing() {
        with(|l| {
            let t = 10 * HOUR;
            let bolus = |v: &DeliveryView| {
                l.check_bolus(v, DeliveryKind::ClinicianBolus, 50_000, 600_000, t)
            };
            assert_eq!(bolus(&idle()), Ok(()));
            let too_soon = DeliveryView {
                clinician_boluses_24h: 1,
                last_clinician_bolus_ms: Some(t - 2 * HOUR + 1),
                ..idle()
            };
            assert_eq!(bolus(&too_soon), Err(ErrorCode::ClinicianBolusLimit));
            let spaced = DeliveryView {
                last_clinician_bolus_ms: Some(t - 2 * HOUR),
                ..too_soon
            };
            assert_eq!(bolus(&spaced), Ok(()));
            let used_up = DeliveryView {
                clinician_boluses_24h: 2,
                ..spaced
            };
            assert_eq!(bolus(&used_up), Err(ErrorCode::ClinicianBolusLimit));
            // The patient's own boluses are not counted against the clinic's.
            assert_eq!(
                l.check_bolus(&used_up, DeliveryKind::PatientBolus, 50_000, 600_000, t),
                Ok(())
            );
        });
    }
}
