//! Dose history from a telemetry log (simulated or real): per-day delivered
//! volume and dose, boluses, alarms, reservoir. Integer units throughout.

use std::collections::BTreeMap;

use pump_protocol::{DeliveryKind, Message};

use crate::decode::{code_name, Counts, Item};
use crate::units::{self, MS_PER_DAY};

/// One UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The same day as days since 1970-01-01 (UTC).
    #[serde(skip)]
    pub utc_day: u64,
    /// Basal (including the watchdog's silence fallback).
    pub basal_nl: u64,
    /// Patient boluses.
    pub patient_bolus_nl: u64,
    /// Clinician boluses.
    pub clinician_bolus_nl: u64,
    /// Priming and bridge boluses.
    pub flush_nl: u64,
    /// Everything.
    pub total_nl: u64,
    /// `total_nl` as a dose at the concentration in force (µg, rounded down).
    pub dose_ug: u64,
    /// Patient bolus presses.
    pub boluses_requested: u32,
    /// Patient boluses granted.
    pub boluses_granted: u32,
    /// Patient boluses denied.
    pub boluses_denied: u32,
    /// Alarms raised.
    pub alarms_raised: u32,
    /// Highest-priority alarm raised that day.
    pub worst_alarm: Option<String>,
    /// Last known reservoir volume at the end of the day.
    pub reservoir_end_nl: Option<u64>,
    /// Σ volume × concentration (nL·µg/mL), so the day's dose is rounded once.
    #[serde(skip)]
    dose_acc: u128,
}

/// One alarm raised.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AlarmEntry {
    /// UTC ms.
    pub time_ms: u64,
    /// Name (`Other(<value>)` for a code this version does not know).
    pub code: String,
    /// Priority name (likewise).
    pub priority: String,
    /// When it cleared, if it did.
    pub cleared_ms: Option<u64>,
}

/// One refill.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RefillEntry {
    /// UTC ms.
    pub time_ms: u64,
    /// Withdrawn (the reservoir at refill).
    pub withdrawn_nl: u64,
    /// Added.
    pub added_nl: u64,
    /// After.
    pub volume_nl: u64,
    /// Concentration filled.
    pub concentration_ug_per_ml: u32,
}

/// Everything the report shows.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct History {
    /// Per UTC day, in order.
    pub days: Vec<Day>,
    /// Every alarm raised.
    pub alarms: Vec<AlarmEntry>,
    /// Reservoir samples `(utc_ms, volume_nl)`.
    pub reservoir: Vec<(u64, u64)>,
    /// Refills (the first may be the initial fill).
    pub refills: Vec<RefillEntry>,
    /// Prescriptions installed `(utc_ms, serial, concentration)`.
    pub installed: Vec<(u64, u32, u32)>,
    /// Prescriptions refused `(utc_ms, serial, reason)`.
    pub rejected: Vec<(u64, u32, String)>,
    /// Events lost (`LogGap` totals).
    pub lost_events: u64,
    /// Sum of every `DeliveryRecord` volume.
    pub delivered_nl: u64,
    /// Of that, `Unconfirmed` volume: steps a reset could not confirm,
    /// logged at their upper bound (the log's stated uncertainty).
    pub unconfirmed_nl: u64,
    /// What the stream held.
    pub counts: Counts,
}

fn day_of(history: &mut BTreeMap<u64, Day>, time_ms: u64) -> &mut Day {
    history.entry(time_ms / MS_PER_DAY).or_insert_with(|| Day {
        date: units::fmt_date(time_ms),
        utc_day: time_ms / MS_PER_DAY,
        ..Day::default()
    })
}

/// Builds the history of decoded items.
pub fn analyse(items: &[Item], counts: &Counts) -> History {
    let mut days: BTreeMap<u64, Day> = BTreeMap::new();
    let mut h = History {
        counts: counts.clone(),
        ..History::default()
    };
    let mut concentration: u32 = 0;
    for item in items {
        let Item::Frame { frame, .. } = item else {
            continue;
        };
        match &frame.message {
            Message::PrescriptionInstalled(m) => {
                concentration = m.concentration_ug_per_ml;
                h.installed
                    .push((m.time_ms, m.serial, m.concentration_ug_per_ml));
            }
            Message::PrescriptionRejected(m) => {
                h.rejected.push((
                    m.time_ms,
                    m.serial,
                    code_name(m.reason.name(), m.reason.code()),
                ));
            }
            Message::DeliveryRecord(m) => {
                let volume = u64::from(m.volume_nl);
                h.delivered_nl += volume;
                if m.outcome == pump_protocol::DeliveryOutcome::Unconfirmed {
                    h.unconfirmed_nl += volume;
                }
                // Spread the volume over the days its interval covers, in
                // proportion to time (integer; the remainder goes last).
                let end = m.time_ms;
                let start = end.saturating_sub(u64::from(m.duration_ms));
                let mut assigned = 0u64;
                let mut t = start;
                while t < end || (start == end && assigned == 0) {
                    let day_end = (t / MS_PER_DAY + 1) * MS_PER_DAY;
                    let seg_end = day_end.min(end);
                    let share = if seg_end >= end {
                        volume - assigned
                    } else {
                        volume * (seg_end - t) / (end - start)
                    };
                    assigned += share;
                    add_volume(day_of(&mut days, t), m.delivery_kind, share, concentration);
                    if seg_end >= end {
                        break;
                    }
                    t = seg_end;
                }
            }
            Message::PatientBolusRequested(m) => {
                day_of(&mut days, m.time_ms).boluses_requested += 1
            }
            Message::PatientBolusGranted(m) => day_of(&mut days, m.time_ms).boluses_granted += 1,
            Message::PatientBolusDenied(m) => day_of(&mut days, m.time_ms).boluses_denied += 1,
            Message::AlarmRaised(m) => {
                let d = day_of(&mut days, m.time_ms);
                d.alarms_raised += 1;
                let name = code_name(m.priority.name(), m.priority.code());
                let rank = |p: &str| match p {
                    "High" => 3,
                    "Medium" => 2,
                    "Low" => 1,
                    _ => 0,
                };
                if d.worst_alarm.as_deref().map_or(0, rank) < rank(&name) {
                    d.worst_alarm = Some(name.clone());
                }
                h.alarms.push(AlarmEntry {
                    time_ms: m.time_ms,
                    code: code_name(m.code.name(), m.code.code()),
                    priority: name,
                    cleared_ms: None,
                });
            }
            Message::AlarmCleared(m) => {
                let code = code_name(m.code.name(), m.code.code());
                if let Some(a) = h
                    .alarms
                    .iter_mut()
                    .rev()
                    .find(|a| a.code == code && a.cleared_ms.is_none())
                {
                    a.cleared_ms = Some(m.time_ms);
                }
            }
            Message::ReservoirRefilled(m) => {
                h.refills.push(RefillEntry {
                    time_ms: m.time_ms,
                    withdrawn_nl: u64::from(m.withdrawn_volume_nl),
                    added_nl: u64::from(m.added_volume_nl),
                    volume_nl: u64::from(m.volume_nl),
                    concentration_ug_per_ml: m.concentration_ug_per_ml,
                });
                if m.withdrawn_volume_nl > 0 {
                    h.reservoir
                        .push((m.time_ms, u64::from(m.withdrawn_volume_nl)));
                }
                h.reservoir.push((m.time_ms, u64::from(m.volume_nl)));
            }
            Message::ReservoirLevel(m) => h.reservoir.push((m.time_ms, u64::from(m.volume_nl))),
            Message::StatusSnapshot(m) => {
                h.reservoir.push((m.time_ms, u64::from(m.reservoir_nl)));
            }
            Message::LogGap(m) => h.lost_events += u64::from(m.missing_count),
            _ => {}
        }
    }
    h.reservoir.sort_by_key(|(t, _)| *t);
    for (t, v) in &h.reservoir {
        day_of(&mut days, *t).reservoir_end_nl = Some(*v);
    }
    // Fill in days without records, so a gap shows as zero, not as nothing.
    if let (Some(first), Some(last)) = (days.keys().next().copied(), days.keys().last().copied()) {
        for d in first..=last {
            day_of(&mut days, d * MS_PER_DAY);
        }
    }
    h.days = days.into_values().collect();
    h
}

fn add_volume(day: &mut Day, kind: DeliveryKind, volume_nl: u64, concentration: u32) {
    match kind {
        DeliveryKind::Basal | DeliveryKind::SilenceFallback => day.basal_nl += volume_nl,
        DeliveryKind::PatientBolus => day.patient_bolus_nl += volume_nl,
        DeliveryKind::ClinicianBolus => day.clinician_bolus_nl += volume_nl,
        _ => day.flush_nl += volume_nl,
    }
    day.total_nl += volume_nl;
    day.dose_acc += u128::from(volume_nl) * u128::from(concentration);
    day.dose_ug = u64::try_from(day.dose_acc / u128::from(units::NL_PER_ML)).unwrap_or(u64::MAX);
}
