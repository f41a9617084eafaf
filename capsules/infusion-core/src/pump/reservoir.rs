//! The reservoir: refills, the low/empty/refill-due alarms and the refill-by
//! projection.

use pump_protocol::{AlarmCode, ErrorCode, RefillDiscrepancy, ReservoirLevel, ReservoirRefilled};

use super::infusion::InfusionCore;
use crate::command;
use crate::config::{AppId, Role};
use crate::events::Event;
use crate::ledger::WINDOW_MS;
use crate::platform::Platform;

impl<P: Platform> InfusionCore<P> {
    /// Projected time by which the reservoir must be refilled, assuming the
    /// current basal continues and every allotted patient bolus is used at
    /// the envelope's largest size (SR-RES-004).
    pub fn refill_by_ms(&self, now_ms: u64) -> Option<u64> {
        let rx = self.rx.as_ref()?;
        let basal_per_day = u64::from(self.basal_rate_nl_per_h()) * 24;
        let boluses_per_day = u64::from(rx.envelope.max_patient_boluses_per_24h)
            * u64::from(rx.envelope.max_bolus_nl);
        let per_day = basal_per_day.saturating_add(boluses_per_day);
        if per_day == 0 {
            return None;
        }
        let ms_left = u128::from(self.p.reservoir_nl) * u128::from(WINDOW_MS) / u128::from(per_day);
        Some(now_ms.saturating_add(u64::try_from(ms_left).unwrap_or(u64::MAX)))
    }

    /// Records a refill (SR-RES-003). The drug's concentration must be the
    /// installed prescription's: the envelope is in volume at that
    /// concentration, so any other would scale every dose (SR-RES-005).
    ///
    /// Withdrawing more than the record holds is a reconciliation
    /// discrepancy, never clamped: the record and the drug in the pump
    /// disagree, which is what the clinician's reconciliation (HAZ-016)
    /// exists to find. The refill is refused `RefillDiscrepancy`, logged
    /// with both volumes, and the high `RefillDiscrepancy` alarm stays
    /// until a refill reconciles or the clinic clears it (SR-RES-006).
    /// Delivery goes on: stopping an intrathecal drug abruptly is its own
    /// hazard, and the record still bounds the reservoir alarms.
    pub fn refill(
        &mut self,
        caller: AppId,
        withdrawn_volume_nl: u32,
        added_volume_nl: u32,
        concentration_ug_per_ml: u32,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::REFILL, now)?;
        let rx = self.rx.as_ref().ok_or(ErrorCode::NoPrescription)?;
        if concentration_ug_per_ml != rx.concentration_ug_per_ml {
            return Err(ErrorCode::ConcentrationMismatch);
        }
        if withdrawn_volume_nl > self.p.reservoir_nl {
            let utc = self.utc_ms(now);
            let recorded_nl = self.p.reservoir_nl;
            self.emit(
                Event::RefillDiscrepancy(RefillDiscrepancy {
                    time_ms: utc,
                    recorded_nl,
                    withdrawn_volume_nl,
                }),
                now,
            );
            self.raise(AlarmCode::RefillDiscrepancy, now);
            self.save();
            self.sync_outputs(now);
            return Err(ErrorCode::RefillDiscrepancy);
        }
        let volume = (self.p.reservoir_nl - withdrawn_volume_nl)
            .checked_add(added_volume_nl)
            .filter(|v| *v <= self.config.limits.reservoir_capacity_nl)
            .ok_or(ErrorCode::InvalidArgument)?;
        self.p.reservoir_nl = volume;
        self.clear(AlarmCode::RefillDiscrepancy, now);
        let utc = self.utc_ms(now);
        self.emit(
            Event::ReservoirRefilled(ReservoirRefilled {
                time_ms: utc,
                withdrawn_volume_nl,
                added_volume_nl,
                volume_nl: volume,
                concentration_ug_per_ml,
            }),
            now,
        );
        self.update_reservoir_alarms(now);
        self.emit_state(now);
        self.save();
        self.sync_outputs(now);
        Ok(())
    }

    pub(super) fn update_reservoir_alarms(&mut self, now: u64) {
        let s = self.config.nl_per_step;
        let threshold = self
            .rx
            .as_ref()
            .map_or(0, |rx| rx.envelope.reservoir_low_threshold_nl);
        let volume = self.p.reservoir_nl;
        let was_low = self.p.alarms.is_active(AlarmCode::ReservoirLow);
        if volume < s {
            self.raise(AlarmCode::ReservoirEmpty, now);
        } else {
            self.clear(AlarmCode::ReservoirEmpty, now);
        }
        if volume < threshold {
            self.raise(AlarmCode::ReservoirLow, now);
        } else {
            self.clear(AlarmCode::ReservoirLow, now);
        }
        // "Refill due" ends only when the projection moves out of the warning
        // window (a refill, a lower rate), never merely because a step was made.
        if self
            .refill_by_ms(now)
            .is_none_or(|t| t.saturating_sub(self.config.refill_due_warning_ms) > now)
        {
            self.clear(AlarmCode::RefillDue, now);
        }
        if was_low != self.p.alarms.is_active(AlarmCode::ReservoirLow) {
            let utc = self.utc_ms(now);
            self.emit(
                Event::ReservoirLevel(ReservoirLevel {
                    time_ms: utc,
                    volume_nl: volume,
                    low_threshold_nl: threshold,
                }),
                now,
            );
        }
    }
}
