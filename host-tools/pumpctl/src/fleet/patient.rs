//! One virtual patient: a seed derived from the fleet seed and the patient's
//! index (so a patient is the same whatever the sharding or thread count), a
//! prescription and a PTM use drawn from the sets, and an event script drawn
//! from the fault profile.

use rand::{RngExt, SeedableRng};

use super::profile::{minute_of_day, FaultRate, Profile};
use crate::script::{AttackCommand, Event, Timed};
use crate::simlink::AttackMode;
use crate::units::{MS_PER_DAY, MS_PER_MIN, NL_PER_UL};

/// Days in a simulated year.
pub const DAYS_PER_YEAR: u32 = 365;
/// Planned refills happen at this minute of the day (10:00 UTC).
const REFILL_MINUTE: u64 = 10 * 60;

/// Days between planned refills for a prescription: the profile's interval,
/// shortened so a fill lasts at the prescription's largest daily use with a
/// 20 % reserve (a clinic plans refills by consumption).
pub fn refill_interval_days(profile_days: u32, fill_nl: u64, max_daily_nl: u64) -> u32 {
    let lasting = (fill_nl * 80 / 100) / max_daily_nl.max(1);
    profile_days
        .min(u32::try_from(lasting).unwrap_or(u32::MAX))
        .max(1)
}

/// SplitMix64: a well-mixed 64-bit step, for deriving seeds.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A patient's seed: a function of the fleet seed and the patient's index
/// only.
pub fn patient_seed(fleet_seed: u64, patient_id: u32) -> u64 {
    splitmix64(fleet_seed ^ splitmix64(u64::from(patient_id)))
}

/// What was injected into one patient's script.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    /// Motor stalls.
    pub stalls: u32,
    /// Occlusions.
    pub occlusions: u32,
    /// Power losses.
    pub power_losses: u32,
    /// Dosing-app hangs.
    pub dosing_hangs: u32,
    /// Forged commands.
    pub forged_commands: u32,
    /// Replayed commands.
    pub replayed_commands: u32,
    /// Refills (planned ones that fell within the run).
    pub refills: u32,
    /// Of those, late ones.
    pub late_refills: u32,
}

/// One patient's plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Index in the fleet.
    pub patient_id: u32,
    /// The simulator's seed for this patient.
    pub seed: u64,
    /// Index into the prescription set.
    pub rx_index: usize,
    /// Index into the profile's PTM uses.
    pub ptm_index: usize,
    /// Days simulated.
    pub days: u32,
    /// The script (sorted by time).
    pub events: Vec<Timed>,
    /// What the script injects.
    pub injected: Injected,
}

/// Busy intervals `[start, end]` of a patient's script: fault episodes never
/// overlap each other or a refill (an episode that would is dropped, and not
/// counted as injected), so every fault is cleared as it was drawn.
struct Timeline {
    busy: Vec<(u64, u64)>,
    events: Vec<Timed>,
}

impl Timeline {
    fn try_add(&mut self, start: u64, end: u64, events: Vec<(u64, Event)>) -> bool {
        let margin = MS_PER_MIN;
        if self
            .busy
            .iter()
            .any(|&(s, e)| start < e + margin && s < end + margin)
        {
            return false;
        }
        self.busy.push((start, end));
        self.events
            .extend(events.into_iter().map(|(at_ms, event)| Timed {
                at_ms,
                event,
                line: 0,
            }));
        true
    }
}

fn pick_weighted(rng: &mut rand::rngs::ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if x < u64::from(*w) {
            return i;
        }
        x -= u64::from(*w);
    }
    0
}

/// Episodes of one fault kind: one Bernoulli draw a day at
/// `per_1000_patient_years / 365 000`, at a uniform time of day.
fn episodes(rng: &mut rand::rngs::ChaCha8Rng, rate: FaultRate, days: u32) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if rate.per_1000_patient_years == 0 {
        return out;
    }
    for day in 0..u64::from(days) {
        if rng.random_range(0..365_000u32) >= rate.per_1000_patient_years {
            continue;
        }
        let start = day * MS_PER_DAY + rng.random_range(0..MS_PER_DAY / 1000) * 1000;
        let [lo, hi] = rate.duration_min;
        let minutes = if hi >= lo && hi > 0 {
            rng.random_range(u64::from(lo)..=u64::from(hi))
        } else {
            0
        };
        out.push((start, start + minutes * MS_PER_MIN));
    }
    out
}

/// Draws patient `patient_id`'s plan; `max_daily_nl` is each prescription's
/// largest daily use (the refill plan follows it).
pub fn plan(
    profile: &Profile,
    max_daily_nl: &[u64],
    fleet_seed: u64,
    patient_id: u32,
    days: u32,
) -> Plan {
    let seed = patient_seed(fleet_seed, patient_id);
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let rx_index = rng.random_range(0..max_daily_nl.len().max(1));
    let weights: Vec<u32> = profile.ptm.iter().map(|p| p.weight).collect();
    let ptm_index = pick_weighted(&mut rng, &weights);
    let mut injected = Injected::default();
    let mut line = Timeline {
        busy: Vec::new(),
        events: Vec::new(),
    };
    if let Some(ptm) = profile.ptm.get(ptm_index) {
        if ptm.presses_per_day > 0 {
            line.events.push(Timed {
                at_ms: 0,
                event: Event::PatientPresses {
                    per_day: ptm.presses_per_day,
                    from_min: minute_of_day(&ptm.from).unwrap_or(8 * 60),
                    to_min: minute_of_day(&ptm.to).unwrap_or(21 * 60),
                },
                line: 0,
            });
        }
    }
    // Refills first: faults give way to them.
    let r = profile.refill;
    let interval_days = refill_interval_days(
        r.interval_days,
        u64::from(r.volume_ul) * NL_PER_UL,
        max_daily_nl.get(rx_index).copied().unwrap_or(0),
    );
    let mut n = 1u64;
    loop {
        let planned_day = n * u64::from(interval_days);
        let late = r.late_days_max > 0 && rng.random_range(0..100u32) < r.late_percent;
        let late_days = if late {
            rng.random_range(1..=u64::from(r.late_days_max))
        } else {
            0
        };
        let at = (planned_day + late_days) * MS_PER_DAY + REFILL_MINUTE * MS_PER_MIN;
        if planned_day >= u64::from(days) || at >= u64::from(days) * MS_PER_DAY {
            break;
        }
        let volume_nl = u32::try_from(u64::from(r.volume_ul) * NL_PER_UL).unwrap_or(u32::MAX);
        let event = Event::Refill {
            volume_nl,
            concentration_ug_per_ml: None,
        };
        if line.try_add(at, at + MS_PER_MIN, vec![(at, event)]) {
            injected.refills += 1;
            injected.late_refills += u32::from(late);
        }
        n += 1;
    }
    let f = &profile.faults;
    for (start, end) in episodes(&mut rng, f.stall, days) {
        let added = line.try_add(
            start,
            end,
            vec![(start, Event::Stall), (end, Event::StallCleared)],
        );
        injected.stalls += u32::from(added);
    }
    for (start, end) in episodes(&mut rng, f.occlusion, days) {
        let added = line.try_add(
            start,
            end,
            vec![(start, Event::Occlusion), (end, Event::OcclusionCleared)],
        );
        injected.occlusions += u32::from(added);
    }
    for (start, end) in episodes(&mut rng, f.power_loss, days) {
        let down_ms = end - start;
        let added = line.try_add(start, end, vec![(start, Event::PowerLoss { down_ms })]);
        injected.power_losses += u32::from(added);
    }
    for (start, end) in episodes(&mut rng, f.dosing_hang, days) {
        let added = line.try_add(
            start,
            end,
            vec![(start, Event::DosingHang), (end, Event::DosingRestart)],
        );
        injected.dosing_hangs += u32::from(added);
    }
    for (mode, rate) in [
        (AttackMode::Forged, f.forged_command),
        (AttackMode::Replay, f.replayed_command),
    ] {
        for (start, _) in episodes(&mut rng, rate, days) {
            let event = Event::Attack {
                mode,
                command: AttackCommand::ClinicianBolus(50, 10),
            };
            if line.try_add(start, start, vec![(start, event)]) {
                match mode {
                    AttackMode::Forged => injected.forged_commands += 1,
                    _ => injected.replayed_commands += 1,
                }
            }
        }
    }
    let mut events = line.events;
    events.sort_by_key(|e| e.at_ms);
    Plan {
        patient_id,
        seed,
        rx_index,
        ptm_index,
        days,
        events,
        injected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::profile::DEFAULT_PROFILE;

    #[test]
    fn a_patient_depends_on_the_fleet_seed_and_index_only() {
        let p = Profile::parse(DEFAULT_PROFILE).expect("profile");
        let a = plan(&p, &[1, 2, 3], 7, 42, 3650);
        let b = plan(&p, &[1, 2, 3], 7, 42, 3650);
        assert_eq!(a.events, b.events);
        assert_eq!(a.seed, b.seed);
        let c = plan(&p, &[1, 2, 3], 7, 43, 3650);
        assert_ne!(a.seed, c.seed);
        let d = plan(&p, &[1, 2, 3], 8, 42, 3650);
        assert_ne!(a.seed, d.seed);
    }

    #[test]
    fn episodes_never_overlap_and_every_fault_is_cleared() {
        let mut p = Profile::parse(DEFAULT_PROFILE).expect("profile");
        p.faults.stall.per_1000_patient_years = 100_000;
        p.faults.occlusion.per_1000_patient_years = 100_000;
        let plan = plan(&p, &[1], 1, 0, 3650);
        assert!(plan.injected.stalls > 100 && plan.injected.occlusions > 100);
        let mut jammed = false;
        let mut occluded = false;
        for e in &plan.events {
            match e.event {
                Event::Stall => {
                    assert!(!jammed && !occluded);
                    jammed = true;
                }
                Event::StallCleared => jammed = false,
                Event::Occlusion => {
                    assert!(!jammed && !occluded);
                    occluded = true;
                }
                Event::OcclusionCleared => occluded = false,
                _ => assert!(!jammed && !occluded, "{e:?} inside a fault episode"),
            }
        }
    }
}
