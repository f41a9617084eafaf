//! The battery: a coulomb count of the pump's own work, the elective
//! replacement indicator (ERI) and end of service (EOS) (SR-BAT-001..003).
//!
//! A board without a fuel gauge gives the core an [`EnergyProfile`]
//! ([`InfusionCore::set_energy_profile`], before restoring); the core then
//! counts what it does (motor steps, its own and the apps' wake-ups, record
//! writes, signature verifications, the alarm tone, and sleep in between)
//! at the profile's prices, saved with the therapy state so a reset loses
//! none of it. From the count and the time since the battery was new it
//! knows the average current, so the charge left lasts a known number of
//! days at the current use:
//!
//! - when that is the profile's ERI lead (90 days) beyond the EOS reserve,
//!   the medium `BatteryReplacement` alarm is raised and a `BatteryState`
//!   logged with `replacement_recommended`: the clinician plans the
//!   replacement surgery;
//! - when only the EOS reserve (10 days) is left, delivery stops under the
//!   high `EndOfService` alarm, which nothing clears: the reserve keeps the
//!   alarm and the telemetry alive until the explant.
//!
//! A board with a gauge reports through `on_battery`, which raises the
//! same ERI alarm from the gauge's own flag.

use energy_core::{charge_pah, EnergyProfile, MS_PER_DAY};
use pump_protocol::{AlarmCode, BatteryState, DeliveryOutcome, ServiceOutlook};

use super::infusion::InfusionCore;
use crate::events::Event;
use crate::platform::Platform;

/// How often the core looks at its battery when nothing else wakes it.
pub const BATTERY_CHECK_INTERVAL_MS: u64 = MS_PER_DAY;

/// Bytes of one flash page: each byte written carries its share of the
/// page's erase.
const FLASH_PAGE_BYTES: u64 = 4096;

/// The core's view of its battery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatteryEstimate {
    /// Charge left, pAh (self-discharge included).
    pub remaining_pah: u64,
    /// Average current since the battery was new, nA.
    pub average_current_na: u64,
    /// Days × 100 of therapy left until end of service at that current.
    pub days_to_eos_x100: u64,
}

impl<P: Platform> InfusionCore<P> {
    /// Counts the battery from the pump's own work with `profile`. Call it
    /// before restoring: a pump that has never counted starts from a new
    /// battery.
    pub fn set_energy_profile(&mut self, profile: EnergyProfile) {
        self.energy = Some(profile);
    }

    /// Adds `pah` to the count.
    pub(super) fn draw(&mut self, pah: u64) {
        if self.energy.is_some() {
            self.p.battery.used_pah = self.p.battery.used_pah.saturating_add(pah);
        }
    }

    /// A wake-up of the kernel or an app.
    pub(super) fn draw_wakeup(&mut self) {
        let each = self.energy.map_or(0, |e| e.wakeup_charge_pah);
        self.draw(each);
    }

    /// One motor step.
    pub(super) fn draw_step(&mut self) {
        let each = self.energy.map_or(0, |e| e.motor_step_charge_pah);
        self.draw(each);
    }

    /// A record of `bytes` written to flash, with its share of an erase.
    pub(super) fn draw_flash(&mut self, bytes: usize) {
        let Some(e) = self.energy else { return };
        let bytes = bytes as u64;
        let pah = e
            .flash_byte_charge_pah
            .saturating_mul(bytes)
            .saturating_add(e.flash_erase_charge_pah.saturating_mul(bytes) / FLASH_PAGE_BYTES);
        self.draw(pah);
    }

    /// One signature verification.
    pub(super) fn draw_signature(&mut self) {
        let each = self.energy.map_or(0, |e| e.signature_verify_charge_pah);
        self.draw(each);
    }

    /// Sleep, and the tone if it sounded, up to `now`.
    fn draw_time(&mut self, now: u64) {
        let Some(e) = self.energy else { return };
        let from = self.p.battery.counted_until_ms;
        let span = now.saturating_sub(from);
        if span == 0 {
            return;
        }
        let mut pah = charge_pah(u64::from(e.sleep_current_na), span);
        if self.signal.audible {
            pah = pah.saturating_add(charge_pah(u64::from(e.alarm_tone_current_na), span));
        }
        self.p.battery.counted_until_ms = now;
        self.draw(pah);
    }

    /// Starts the count on a new battery at `now` (first boot).
    pub(super) fn start_battery_count(&mut self, now: u64) {
        self.p.battery = super::state::ChargeCount {
            used_pah: 0,
            since_ms: now,
            counted_until_ms: now,
        };
    }

    /// The battery as the count sees it at `now` (`None` without a profile).
    pub fn battery_estimate(&self, now_ms: u64) -> Option<BatteryEstimate> {
        let e = self.energy?;
        let b = self.p.battery;
        let elapsed = now_ms.saturating_sub(b.since_ms);
        let used = b.used_pah.saturating_add(e.self_discharge_pah(elapsed));
        let remaining = e.battery_capacity_pah.saturating_sub(used);
        // Never 0: the projection divides by it, and a profile may price
        // sleep at nothing.
        let average = if elapsed == 0 {
            u64::from(e.sleep_current_na).max(1)
        } else {
            let rate = u128::from(used) * 3_600 / u128::from(elapsed);
            u64::try_from(rate).unwrap_or(u64::MAX).max(1)
        };
        let reserve = e.eos_threshold_pah(average);
        let to_eos = remaining.saturating_sub(reserve);
        // pAh / nA is thousandths of an hour; × 100 / 24 000 is days × 100.
        let days_x100 = u128::from(to_eos) * 100 / (u128::from(average) * 24_000);
        Some(BatteryEstimate {
            remaining_pah: remaining,
            average_current_na: average,
            days_to_eos_x100: u64::try_from(days_x100).unwrap_or(u64::MAX),
        })
    }

    /// What a PTM shows the patient and a programmer the clinic at `now_ms`
    /// (SR-BAT-004): the charge left, when the ERI and end of service come
    /// at the average current so far (`now` once they have come), and the
    /// refill-by date. Without a profile the charge reads 0 and both dates
    /// `None`; the flags still follow the alarms (a gauge's ERI).
    pub fn service_outlook(&self, now_ms: u64) -> ServiceOutlook {
        let utc = self.utc_ms(now_ms);
        let replacement_alarm = self.p.alarms.is_active(AlarmCode::BatteryReplacement);
        let end_of_service = self.p.alarms.is_active(AlarmCode::EndOfService);
        let refill_by_time_ms = self.status(now_ms).refill_by_time_ms;
        let mut outlook = ServiceOutlook {
            time_ms: utc,
            charge_percent: 0,
            remaining_charge_uah: 0,
            average_current_na: 0,
            eri_time_ms: None,
            eos_time_ms: None,
            replacement_recommended: replacement_alarm || end_of_service,
            end_of_service,
            refill_by_time_ms,
        };
        let (Some(e), Some(estimate)) = (self.energy, self.battery_estimate(now_ms)) else {
            return outlook;
        };
        let remaining = estimate.remaining_pah;
        let average = estimate.average_current_na.max(1);
        // The same thresholds as check_battery: tone included.
        let with_tone = average.saturating_add(u64::from(e.alarm_tone_current_na));
        let eri_pah = e.eri_threshold_pah(with_tone);
        let eos_pah = e.eos_threshold_pah(with_tone);
        // pAh × 3 600 / nA is ms (the inverse of energy_core::charge_pah).
        let ms_until = |threshold: u64| -> u64 {
            let left = u128::from(remaining.saturating_sub(threshold));
            u64::try_from(left * 3_600 / u128::from(average)).unwrap_or(u64::MAX)
        };
        let percent = u128::from(remaining) * 100 / u128::from(e.battery_capacity_pah.max(1));
        outlook.charge_percent = u8::try_from(percent).unwrap_or(100);
        outlook.remaining_charge_uah = u32::try_from(remaining / 1_000_000).unwrap_or(u32::MAX);
        outlook.average_current_na = u32::try_from(average).unwrap_or(u32::MAX);
        outlook.eri_time_ms = Some(utc.saturating_add(ms_until(eri_pah)));
        outlook.eos_time_ms = Some(utc.saturating_add(ms_until(eos_pah)));
        outlook.replacement_recommended |= remaining <= eri_pah;
        outlook
    }

    /// Counts time up to `now` and raises the ERI or ends service when due
    /// (SR-BAT-002, SR-BAT-003). Called at every timer wake-up.
    pub(super) fn check_battery(&mut self, now: u64) {
        let Some(e) = self.energy else { return };
        self.draw_time(now);
        let Some(estimate) = self.battery_estimate(now) else {
            return;
        };
        // The ERI's own tone, and then the end of service's, sound until
        // the explant: the thresholds count them at the full tone current so
        // the 90 days and the reserve hold even if no one silences them.
        let with_tone = estimate
            .average_current_na
            .saturating_add(u64::from(e.alarm_tone_current_na));
        let eos = estimate.remaining_pah <= e.eos_threshold_pah(with_tone);
        let eri = estimate.remaining_pah <= e.eri_threshold_pah(with_tone);
        if eos && !self.p.alarms.is_active(AlarmCode::EndOfService) {
            self.stop_all(DeliveryOutcome::Aborted, now);
            self.raise(AlarmCode::EndOfService, now);
            self.log_battery(estimate, true, now);
            self.emit_state(now);
            self.save();
        } else if eri && !self.p.alarms.is_active(AlarmCode::BatteryReplacement) {
            self.raise(AlarmCode::BatteryReplacement, now);
            self.log_battery(estimate, true, now);
            self.save();
        }
    }

    fn log_battery(&mut self, estimate: BatteryEstimate, replacement: bool, now: u64) {
        let Some(e) = self.energy else { return };
        let utc = self.utc_ms(now);
        let percent =
            u128::from(estimate.remaining_pah) * 100 / u128::from(e.battery_capacity_pah.max(1));
        self.emit(
            Event::BatteryState(BatteryState {
                time_ms: utc,
                // No voltage without a gauge: 0 says "not measured".
                voltage_mv: 0,
                charge_percent: u8::try_from(percent).unwrap_or(100),
                replacement_recommended: replacement,
            }),
            now,
        );
    }

    /// When the core must next look at its battery (`None` without a profile).
    pub(super) fn battery_check_due_ms(&self) -> Option<u64> {
        self.energy?;
        Some(
            self.p
                .battery
                .counted_until_ms
                .saturating_add(BATTERY_CHECK_INTERVAL_MS),
        )
    }
}
