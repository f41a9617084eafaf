//! The physician's envelope and the hardware's limits: whether a basal rate,
//! a bolus or a single step may happen now. Checks only; they change nothing.

use pump_protocol::prescription::Prescription;
use pump_protocol::{DeliveryKind, ErrorCode};

use super::InfusionCore;
use crate::ledger::{Channel, Run, MS_PER_HOUR};
use crate::platform::Platform;

impl<P: Platform> InfusionCore<P> {
    pub(super) fn common_delivery_checks(&self) -> Result<&Prescription, ErrorCode> {
        let rx = self.rx.as_ref().ok_or(ErrorCode::NoPrescription)?;
        if self.p.alarms.delivery_blocked() || self.fault_input_asserted {
            return Err(ErrorCode::FaultActive);
        }
        if self.p.suspended {
            return Err(ErrorCode::Suspended);
        }
        Ok(rx)
    }

    pub(super) fn check_basal(&self, rate_nl_per_h: u32, now: u64) -> Result<(), ErrorCode> {
        let s = self.config.nl_per_step;
        let rx = self.common_delivery_checks()?;
        let env = &rx.envelope;
        if rate_nl_per_h > env.max_basal_rate_nl_per_h {
            return Err(ErrorCode::RateAboveEnvelope);
        }
        let bolus_rate = self
            .p
            .ledger
            .active(Channel::Bolus)
            .map_or(0, bolus_rate_nl_per_h);
        if u64::from(rate_nl_per_h) + bolus_rate > u64::from(self.config.limits.max_rate_nl_per_h) {
            return Err(ErrorCode::OutsideHardwareLimits);
        }
        if u64::from(rate_nl_per_h) * 24 > u64::from(env.max_volume_per_24h_nl)
            || self.delivered_24h_nl(now) + u64::from(s) > u64::from(env.max_volume_per_24h_nl)
        {
            return Err(ErrorCode::DailyLimitReached);
        }
        if self.p.reservoir_nl < s {
            return Err(ErrorCode::ReservoirInsufficient);
        }
        if !self.p.ledger.has_room(now, s) {
            return Err(ErrorCode::Busy);
        }
        Ok(())
    }

    pub(super) fn check_bolus(
        &self,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
        now: u64,
    ) -> Result<(), ErrorCode> {
        let s = self.config.nl_per_step;
        let rx = self.common_delivery_checks()?;
        let env = &rx.envelope;
        if volume_nl == 0 || duration_ms == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        if self.p.ledger.active(Channel::Bolus).is_some() {
            return Err(ErrorCode::Busy);
        }
        if volume_nl > env.max_bolus_nl {
            return Err(ErrorCode::BolusAboveEnvelope);
        }
        let bolus_rate = u64::from(mean_rate_nl_per_h(volume_nl, duration_ms));
        let basal_rate = u64::from(self.basal_rate_nl_per_h());
        if bolus_rate + basal_rate > u64::from(self.config.limits.max_rate_nl_per_h) {
            return Err(ErrorCode::OutsideHardwareLimits);
        }
        if kind == DeliveryKind::PatientBolus {
            let (count, latest) = self.p.ledger.patient_boluses_in_window(now);
            if latest.is_some_and(|t| {
                now < t.saturating_add(u64::from(env.min_patient_bolus_lockout_ms))
            }) {
                return Err(ErrorCode::LockoutActive);
            }
            if count >= u32::from(env.max_patient_boluses_per_24h) {
                return Err(ErrorCode::BolusCountReached);
            }
        }
        let basal_during = basal_rate * u64::from(duration_ms) / MS_PER_HOUR;
        let projected = self
            .delivered_24h_nl(now)
            .saturating_add(u64::from(volume_nl))
            .saturating_add(basal_during);
        if projected > u64::from(env.max_volume_per_24h_nl) {
            return Err(ErrorCode::DailyLimitReached);
        }
        if u64::from(self.p.reservoir_nl) < u64::from(volume_nl) + basal_during {
            return Err(ErrorCode::ReservoirInsufficient);
        }
        if !self.p.ledger.has_room(now, s) {
            return Err(ErrorCode::Busy);
        }
        Ok(())
    }
}

fn bolus_rate_nl_per_h(run: &Run) -> u64 {
    u64::from(mean_rate_nl_per_h(
        u32::try_from(run.nl_den).unwrap_or(u32::MAX),
        u32::try_from(run.ms_num).unwrap_or(u32::MAX),
    ))
}

/// Mean rate of `volume_nl` over `duration_ms`, rounded up (the safe side
/// for rate limits), saturating.
pub fn mean_rate_nl_per_h(volume_nl: u32, duration_ms: u32) -> u32 {
    if duration_ms == 0 {
        return u32::MAX;
    }
    let rate = (u64::from(volume_nl) * MS_PER_HOUR).div_ceil(u64::from(duration_ms));
    u32::try_from(rate).unwrap_or(u32::MAX)
}
