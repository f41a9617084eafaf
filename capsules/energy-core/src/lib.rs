//! The pump's energy model: what each thing the firmware does costs in
//! battery charge, how long the battery lasts at a given use, and when the
//! elective replacement indicator (ERI) and end of service (EOS) come.
//!
//! The battery of an implanted pump cannot be replaced or recharged: the
//! pump is replaced when it ends. So every design choice has a price in
//! charge, and this crate is where it is counted, in one place for the
//! simulator, the host tools and (issue 19's next step) the capsule.
//!
//! Integer units only, with the unit in the name: charge in picoampere-hours
//! (`_pah`, 1 µAh = 1 000 000 pAh), currents in nanoamperes (`_na`), times
//! in milliseconds. Every sum saturates.
//!
//! The figures of [`NRF52840_DK`] and their sources are in `docs/energy.md`;
//! the ones no datasheet gives (the motor, the piezo, the battery) are
//! design guesses and say so there.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use serde::Serialize;

/// Milliseconds per hour.
pub const MS_PER_HOUR: u64 = 3_600_000;
/// Milliseconds per day.
pub const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
/// Days per year (365.25: a ten-year life spans leap days).
pub const DAYS_PER_YEAR_X100: u64 = 36_525;

/// What each thing the firmware does costs, for one board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EnergyProfile {
    /// Board name.
    pub name: &'static str,
    /// Usable charge of the battery when new.
    pub battery_capacity_pah: u64,
    /// Charge the cell loses by itself, parts per million of its capacity a year.
    pub self_discharge_ppm_per_year: u32,
    /// The whole pump asleep (CPU in WFE, RTC running, RAM retained, motor
    /// driver off).
    pub sleep_current_na: u32,
    /// One wake-up of the kernel or an app: the CPU and clocks running
    /// through a typical slice of work.
    pub wakeup_charge_pah: u64,
    /// One motor step (driver on, coil pulse).
    pub motor_step_charge_pah: u64,
    /// One flash page erase.
    pub flash_erase_charge_pah: u64,
    /// One flash byte programmed.
    pub flash_byte_charge_pah: u64,
    /// One telemetry session (radio up, link set up), before its bytes.
    pub link_session_charge_pah: u64,
    /// One byte over the telemetry link, either way.
    pub link_byte_charge_pah: u64,
    /// The alarm tone while an alarm is audible, averaged over its pattern
    /// (an implant beeps for seconds every few minutes, it does not sound
    /// without pause).
    pub alarm_tone_current_na: u32,
    /// One Ed25519 verification (a prescription or a signed command).
    pub signature_verify_charge_pah: u64,
    /// The ERI comes when this many days of therapy are left at the
    /// current use (a board setting).
    pub eri_lead_days: u32,
    /// End of service comes when the charge left lasts this many days at
    /// the current use: the reserve that keeps the high alarm sounding and
    /// the log readable after delivery stops (a board setting).
    pub eos_reserve_days: u32,
}

/// pAh of `current_na` flowing for `duration_ms`: nA × ms / 3 600 000 ms/h
/// is nAh; × 1 000 is pAh.
pub const fn charge_pah(current_na: u64, duration_ms: u64) -> u64 {
    current_na.saturating_mul(duration_ms) / (MS_PER_HOUR / 1_000)
}

/// nRF52840 NVMC: erasing one page takes this long, µs (PS, t_ERASEPAGE
/// max). The charge below and the flood bench's flash time both use it.
pub const NRF52840_NVMC_PAGE_ERASE_US: u64 = 85_000;

/// nRF52840 NVMC: programming one 32-bit word takes this long, µs (PS,
/// t_WRITE).
pub const NRF52840_NVMC_WORD_WRITE_US: u64 = 41;

/// Microseconds in an hour.
const US_PER_HOUR: u64 = MS_PER_HOUR * 1_000;

/// Current while the NVMC erases or programs, nA: the PS's flash current
/// plus the CPU halted on HFINT, about 7.5 mA.
const NRF52840_NVMC_CURRENT_NA: u64 = 7_500_000;

/// The nRF52840-DK with the pump's mechanism; sources and guesses in
/// `docs/energy.md`.
pub const NRF52840_DK: EnergyProfile = EnergyProfile {
    name: "nRF52840-DK",
    // Guess: a 2 000 mAh lithium primary cell of the size implantable pumps
    // carry, 90 % usable to the cut-off voltage.
    battery_capacity_pah: 1_800_000 * 1_000_000,
    // Guess: 1 % of capacity a year (Li/SOCl2 cells at body temperature).
    self_discharge_ppm_per_year: 10_000,
    // PS: System ON, full RAM retention, RTC on LFXO ≈ 3.2 µA; plus the
    // motor driver's and sensors' quiescent current (guess 2 µA).
    sleep_current_na: 5_200,
    // PS: CPU from flash at 64 MHz with cache ≈ 3.3 mA (DC/DC) plus HFCLK;
    // a wake-up slice of 0.5 ms at 4 mA.
    wakeup_charge_pah: charge_pah(4_000_000, 1) / 2,
    // Guess: a 250 nL step is a 20 ms coil pulse at 20 mA.
    motor_step_charge_pah: charge_pah(20_000_000, 20),
    flash_erase_charge_pah: charge_pah(
        NRF52840_NVMC_CURRENT_NA,
        NRF52840_NVMC_PAGE_ERASE_US / 1_000,
    ),
    // A word is 4 bytes: per byte a quarter of a word's time. nA × µs × 1 000
    // (nA to pA) over the µs in an hour is pAh.
    flash_byte_charge_pah: NRF52840_NVMC_CURRENT_NA * NRF52840_NVMC_WORD_WRITE_US * 1_000
        / 4
        / US_PER_HOUR,
    // Guess: 20 ms of radio and CPU at 8 mA to wake and set up a session.
    link_session_charge_pah: charge_pah(8_000_000, 20),
    // PS: radio TX/RX at 1 Mb/s ≈ 6.4 mA plus CPU: 8 µs a byte at 10 mA.
    link_byte_charge_pah: 10_000_000 * 8 / 3_600_000,
    // Guess: a piezo transducer and its driver at 3 mA, sounding 2 s in
    // every 10 minutes while an alarm is audible: 10 µA on average.
    alarm_tone_current_na: 10_000,
    // Estimate (not measured on the board): 100 ms of CPU at 4 mA.
    signature_verify_charge_pah: charge_pah(4_000_000, 100),
    eri_lead_days: 90,
    // Design value: ten days of the pump's own use keep the stopped pump's
    // high alarm and its telemetry alive for the explant to be arranged.
    eos_reserve_days: 10,
};

/// What the pump did over a span of time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// How long the span was.
    pub elapsed_ms: u64,
    /// Wake-ups of the kernel and of every app.
    pub wakeups: u64,
    /// Motor steps commanded.
    pub motor_steps: u64,
    /// Flash page erases.
    pub flash_erases: u64,
    /// Flash bytes programmed.
    pub flash_bytes: u64,
    /// Telemetry sessions.
    pub link_sessions: u64,
    /// Telemetry bytes, both ways.
    pub link_bytes: u64,
    /// Time the alarm tone sounded.
    pub alarm_tone_ms: u64,
    /// Signature verifications.
    pub signature_verifies: u64,
}

/// Where the charge went, by consumer, in pAh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Breakdown {
    /// Asleep.
    pub sleep_pah: u64,
    /// The cell's own loss.
    pub self_discharge_pah: u64,
    /// CPU wake-ups.
    pub wakeups_pah: u64,
    /// The motor.
    pub motor_pah: u64,
    /// Flash erases and writes.
    pub flash_pah: u64,
    /// The telemetry link.
    pub link_pah: u64,
    /// The alarm tone.
    pub alarm_pah: u64,
    /// Signature verifications.
    pub signatures_pah: u64,
}

impl Breakdown {
    /// The consumers, by name, largest first.
    pub fn ranked(&self) -> [(&'static str, u64); 8] {
        let mut all = [
            ("sleep", self.sleep_pah),
            ("self-discharge", self.self_discharge_pah),
            ("wake-ups", self.wakeups_pah),
            ("motor", self.motor_pah),
            ("flash", self.flash_pah),
            ("link", self.link_pah),
            ("alarm", self.alarm_pah),
            ("signatures", self.signatures_pah),
        ];
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all
    }

    /// Everything.
    pub fn total_pah(&self) -> u64 {
        self.ranked()
            .iter()
            .fold(0u64, |sum, (_, c)| sum.saturating_add(*c))
    }
}

impl EnergyProfile {
    /// The charge `usage` cost.
    pub fn charge(&self, usage: &Usage) -> Breakdown {
        let mul = |n: u64, each: u64| n.saturating_mul(each);
        let year_ms = MS_PER_DAY.saturating_mul(DAYS_PER_YEAR_X100) / 100;
        let self_discharge = u128::from(self.battery_capacity_pah)
            * u128::from(self.self_discharge_ppm_per_year)
            * u128::from(usage.elapsed_ms)
            / (1_000_000 * u128::from(year_ms));
        Breakdown {
            sleep_pah: charge_pah(u64::from(self.sleep_current_na), usage.elapsed_ms),
            self_discharge_pah: u64::try_from(self_discharge).unwrap_or(u64::MAX),
            wakeups_pah: mul(usage.wakeups, self.wakeup_charge_pah),
            motor_pah: mul(usage.motor_steps, self.motor_step_charge_pah),
            flash_pah: mul(usage.flash_erases, self.flash_erase_charge_pah)
                .saturating_add(mul(usage.flash_bytes, self.flash_byte_charge_pah)),
            link_pah: mul(usage.link_sessions, self.link_session_charge_pah)
                .saturating_add(mul(usage.link_bytes, self.link_byte_charge_pah)),
            alarm_pah: charge_pah(u64::from(self.alarm_tone_current_na), usage.alarm_tone_ms),
            signatures_pah: mul(usage.signature_verifies, self.signature_verify_charge_pah),
        }
    }

    /// The average current of `usage`, in nA (0 for an empty span).
    pub fn average_current_na(&self, usage: &Usage) -> u64 {
        if usage.elapsed_ms == 0 {
            return 0;
        }
        let total = u128::from(self.charge(usage).total_pah());
        u64::try_from(total * u128::from(MS_PER_HOUR / 1_000) / u128::from(usage.elapsed_ms))
            .unwrap_or(u64::MAX)
    }

    /// How long a new battery lasts at the rate of `usage`, in days × 100
    /// (`None` when `usage` drew nothing).
    pub fn life_days_x100(&self, usage: &Usage) -> Option<u64> {
        let total = u128::from(self.charge(usage).total_pah());
        if total == 0 {
            return None;
        }
        let life_ms = u128::from(self.battery_capacity_pah) * u128::from(usage.elapsed_ms) / total;
        u64::try_from(life_ms * 100 / u128::from(MS_PER_DAY)).ok()
    }

    /// Days × 100 of therapy a new battery gives at the rate of `usage`:
    /// until end of service, which keeps `eos_reserve_days` in the cell.
    pub fn service_life_days_x100(&self, usage: &Usage) -> Option<u64> {
        self.life_days_x100(usage)
            .map(|life| life.saturating_sub(u64::from(self.eos_reserve_days) * 100))
    }

    /// Days × 100 from the ERI to end of service at the rate of `usage`:
    /// the ERI is raised when the charge left lasts `eri_lead_days` beyond
    /// the end-of-service reserve, so this is the lead itself unless the
    /// whole service life is shorter.
    pub fn eri_to_eos_days_x100(&self, usage: &Usage) -> Option<u64> {
        let service = self.service_life_days_x100(usage)?;
        Some(service.min(u64::from(self.eri_lead_days) * 100))
    }

    /// The charge that must be left when the ERI is raised, at
    /// `average_current_na`: the lead and the reserve, plus one day for a
    /// pump that looks at its battery daily.
    pub fn eri_threshold_pah(&self, average_current_na: u64) -> u64 {
        let days = u64::from(self.eri_lead_days) + u64::from(self.eos_reserve_days) + 1;
        charge_pah(average_current_na, days.saturating_mul(MS_PER_DAY))
    }

    /// The charge at which service ends, at `average_current_na`.
    pub fn eos_threshold_pah(&self, average_current_na: u64) -> u64 {
        charge_pah(
            average_current_na,
            u64::from(self.eos_reserve_days).saturating_mul(MS_PER_DAY),
        )
    }

    /// The cell's own loss over `elapsed_ms`.
    pub fn self_discharge_pah(&self, elapsed_ms: u64) -> u64 {
        self.charge(&Usage {
            elapsed_ms,
            ..Usage::default()
        })
        .self_discharge_pah
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR_MS: u64 = 365 * MS_PER_DAY;

    #[test]
    fn the_flash_charges_follow_the_nvmc_times() {
        // 85 ms at 7.5 mA is 177 083 pAh; a byte, 10.25 µs at 7.5 mA, 21 pAh.
        assert_eq!(NRF52840_DK.flash_erase_charge_pah, 177_083);
        assert_eq!(NRF52840_DK.flash_byte_charge_pah, 21);
    }

    #[test]
    fn a_sleeping_pump_costs_its_sleep_current_and_the_cells_own_loss() {
        let p = NRF52840_DK;
        let usage = Usage {
            elapsed_ms: YEAR_MS,
            ..Usage::default()
        };
        let b = p.charge(&usage);
        // 5.2 µA for 8 760 h = 45 552 µAh.
        assert_eq!(b.sleep_pah, 45_552_000_000);
        // 1 % of 1 800 mAh over 365 of 365.25 days.
        assert_eq!(b.self_discharge_pah / 1_000_000, 17_987);
        assert_eq!(b.total_pah(), b.sleep_pah + b.self_discharge_pah);
        assert_eq!(b.ranked()[0].0, "sleep");
    }

    #[test]
    fn each_consumer_is_priced_from_its_own_count() {
        let p = NRF52840_DK;
        let usage = Usage {
            elapsed_ms: MS_PER_HOUR,
            wakeups: 10,
            motor_steps: 3,
            flash_erases: 2,
            flash_bytes: 400,
            link_sessions: 1,
            link_bytes: 1_000,
            alarm_tone_ms: 2_000,
            signature_verifies: 1,
        };
        let b = p.charge(&usage);
        assert_eq!(b.wakeups_pah, 10 * p.wakeup_charge_pah);
        assert_eq!(b.motor_pah, 3 * 111_111);
        assert_eq!(b.flash_pah, 2 * 177_083 + 400 * p.flash_byte_charge_pah);
        assert_eq!(b.link_pah, 44_444 + 1_000 * 22);
        // 10 µA on average for 2 s = 5.5 nAh.
        assert_eq!(b.alarm_pah, 5_555);
        assert_eq!(b.signatures_pah, 111_111);
    }

    #[test]
    fn life_and_eri_follow_the_average_current() {
        let p = NRF52840_DK;
        let usage = Usage {
            elapsed_ms: YEAR_MS,
            motor_steps: 400_000,
            ..Usage::default()
        };
        let avg = p.average_current_na(&usage);
        assert!((10_000..30_000).contains(&avg), "{avg}");
        let life = p.life_days_x100(&usage).unwrap();
        let total = u128::from(p.charge(&usage).total_pah());
        let expected = u128::from(p.battery_capacity_pah) * u128::from(YEAR_MS) * 100
            / total
            / u128::from(MS_PER_DAY);
        assert_eq!(u128::from(life), expected);
        // Capacity over average current, in days, agrees to within a day.
        // pAh / nA is thousandths of an hour: hours, then days.
        let by_current = p.battery_capacity_pah / avg / 1_000 / 24;
        assert!(
            by_current.abs_diff(life / 100) <= 1,
            "{by_current} vs {}",
            life / 100
        );
        assert_eq!(p.eri_to_eos_days_x100(&usage), Some(9_000));
        // The ERI threshold is 90 days of the average current beyond the
        // end-of-service reserve of 10, and a day for the daily check.
        assert_eq!(p.eri_threshold_pah(avg), charge_pah(avg, 101 * MS_PER_DAY));
        assert_eq!(p.eos_threshold_pah(avg), charge_pah(avg, 10 * MS_PER_DAY));
        assert_eq!(p.service_life_days_x100(&usage), Some(life - 1_000));
        // Nothing drawn, nothing to project.
        let empty = EnergyProfile {
            sleep_current_na: 0,
            self_discharge_ppm_per_year: 0,
            ..p
        };
        assert_eq!(empty.life_days_x100(&Usage::default()), None);
        assert_eq!(empty.average_current_na(&Usage::default()), 0);
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let usage = Usage {
            elapsed_ms: u64::MAX,
            motor_steps: u64::MAX,
            ..Usage::default()
        };
        let b = NRF52840_DK.charge(&usage);
        assert_eq!(b.motor_pah, u64::MAX);
        assert_eq!(b.total_pah(), u64::MAX);
    }
}
