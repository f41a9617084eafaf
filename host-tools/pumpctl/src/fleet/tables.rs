//! The fleet's tables, one row struct each, built from a telemetry log (a
//! simulated patient's or a real pump's): the same code for `pumpctl fleet`
//! and `pumpctl export --parquet`, so fleet and field data are queried the
//! same way. Columns are documented in docs/fleet.md.

use std::borrow::Cow;
use std::collections::BTreeMap;

use pump_protocol::{AlarmCode, DeliveryKind, DeliveryOutcome, ErrorCode, Message, MessageClass};

use super::patient::Injected;
use crate::analysis::{Day, History};
use crate::decode::{code_name, Item};
use crate::units::MS_PER_HOUR;

/// One row of `patient_day`: the day as `pumpctl report` counts it
/// ([`crate::analysis::Day`], one source for both), and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRow {
    /// Patient.
    pub patient_id: u32,
    /// The day's figures.
    pub day: Day,
}

/// One row of `event`: a pump event in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// Patient.
    pub patient_id: u32,
    /// Order in the patient's log (0-based, events only).
    pub seq: u32,
    /// UTC ms, if the event carries a time.
    pub time_utc_ms: Option<u64>,
    /// Message name (`DeliveryRecord`, `AlarmRaised`, ...).
    pub kind: &'static str,
    /// Alarm code (alarm events).
    pub alarm_code: Option<Cow<'static, str>>,
    /// Alarm priority (`AlarmRaised`).
    pub priority: Option<Cow<'static, str>>,
    /// Refusal reason (denials, refusals).
    pub reason: Option<Cow<'static, str>>,
    /// Delivery kind (`DeliveryRecord`, `DeliveryDenied`).
    pub delivery_kind: Option<Cow<'static, str>>,
    /// Outcome (`DeliveryRecord`).
    pub outcome: Option<Cow<'static, str>>,
    /// Volume (delivered, requested, refilled, reservoir level).
    pub volume_nl: Option<u64>,
    /// Duration (`DeliveryRecord`).
    pub duration_ms: Option<u64>,
}

/// One row of `patient`: who the patient is and their totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientRow {
    /// Patient.
    pub patient_id: u32,
    /// Prescription file (fleet) or log file (export).
    pub source: String,
    /// The simulator seed (fleet only).
    pub seed: Option<u64>,
    /// PTM use (fleet only).
    pub ptm_use: Option<String>,
    /// Days simulated (fleet) or days the log spans (export).
    pub days: u32,
    /// Faults injected (fleet only).
    pub injected: Option<Injected>,
    /// Totals from the log.
    pub figures: Figures,
    /// Resets the simulator made (fleet only).
    pub resets: Option<u32>,
    /// Attacker commands the pump acknowledged (fleet only; must be 0).
    pub attacks_accepted: Option<u64>,
}

/// Hazard-relevant totals of one patient's log.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    /// Σ `DeliveryRecord.volume_nl`.
    pub delivered_nl: u64,
    /// Patient boluses granted.
    pub boluses_granted: u64,
    /// Patient boluses denied.
    pub boluses_denied: u64,
    /// Alarms raised, by code (every one in the log).
    pub alarms_by_code: BTreeMap<String, u64>,
    /// Of those, the ones raised after the first fill (`ReservoirRefilled`):
    /// an implant's empty reservoir before its first fill is no hazard.
    pub alarms_in_service_by_code: BTreeMap<String, u64>,
    /// Time with a motor-stall or occlusion alarm active (delivery stopped),
    /// ms; an alarm still active at the end counts up to `end_utc_ms`.
    pub therapy_lost_ms: u64,
    /// `DeliveryDenied` events: the capsule's envelope refused a delivery.
    pub envelope_refusals: u64,
    /// Deliveries aborted at the instant the reservoir-empty alarm rose
    /// (after the first fill).
    pub empty_reservoir_cuts: u64,
    /// Events lost (`LogGap`).
    pub lost_events: u64,
}

fn name_of(name: &'static str, code: u16) -> Cow<'static, str> {
    if name == "Other" {
        Cow::Owned(code_name(name, code))
    } else {
        Cow::Borrowed(name)
    }
}

fn alarm(c: AlarmCode) -> Option<Cow<'static, str>> {
    Some(name_of(c.name(), c.code()))
}
fn error(c: ErrorCode) -> Option<Cow<'static, str>> {
    Some(name_of(c.name(), c.code()))
}
fn kind(c: DeliveryKind) -> Option<Cow<'static, str>> {
    Some(name_of(c.name(), c.code()))
}
fn outcome(c: DeliveryOutcome) -> Option<Cow<'static, str>> {
    Some(name_of(c.name(), c.code()))
}

fn event_row(patient_id: u32, seq: u32, message: &Message, name: &'static str) -> EventRow {
    let mut row = EventRow {
        patient_id,
        seq,
        time_utc_ms: None,
        kind: name,
        alarm_code: None,
        priority: None,
        reason: None,
        delivery_kind: None,
        outcome: None,
        volume_nl: None,
        duration_ms: None,
    };
    match message {
        Message::DeliveryRecord(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.delivery_kind = kind(m.delivery_kind);
            row.outcome = outcome(m.outcome);
            row.volume_nl = Some(u64::from(m.volume_nl));
            row.duration_ms = Some(u64::from(m.duration_ms));
        }
        Message::PatientBolusRequested(m) => row.time_utc_ms = Some(m.time_ms),
        Message::PatientBolusGranted(m) => row.time_utc_ms = Some(m.time_ms),
        Message::PatientBolusDenied(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.reason = error(m.reason);
        }
        Message::AlarmRaised(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.alarm_code = alarm(m.code);
            row.priority = Some(name_of(m.priority.name(), m.priority.code()));
        }
        Message::AlarmAcknowledged(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.alarm_code = alarm(m.code);
        }
        Message::AlarmCleared(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.alarm_code = alarm(m.code);
        }
        Message::DeliveryDenied(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.delivery_kind = kind(m.delivery_kind);
            row.reason = error(m.reason);
            row.volume_nl = Some(u64::from(m.requested_volume_nl));
        }
        Message::ReservoirLevel(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.volume_nl = Some(u64::from(m.volume_nl));
        }
        Message::ReservoirRefilled(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.volume_nl = Some(u64::from(m.added_volume_nl));
        }
        Message::StatusSnapshot(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.volume_nl = Some(u64::from(m.reservoir_nl));
        }
        Message::CommandRefused(m) => {
            row.time_utc_ms = Some(m.time_ms);
            row.reason = error(m.reason);
        }
        other => row.time_utc_ms = crate::decode::message_time_ms(other),
    }
    row
}

/// The rows of one patient's log.
#[derive(Clone, Debug, Default)]
pub struct LogRows {
    /// `patient_day` rows.
    pub days: Vec<DayRow>,
    /// `event` rows.
    pub events: Vec<EventRow>,
    /// Totals.
    pub figures: Figures,
}

/// Builds a patient's rows from the decoded items of its log and their
/// history; `end_utc_ms` closes alarms still active at the end.
pub fn rows(patient_id: u32, items: &[Item], history: &History, end_utc_ms: u64) -> LogRows {
    let mut out = LogRows::default();
    let mut seq = 0u32;
    let mut empty_at: Vec<u64> = Vec::new();
    let mut aborted_at: Vec<u64> = Vec::new();
    let mut filled = false;
    for item in items {
        let Item::Frame { frame, .. } = item else {
            continue;
        };
        let message = &frame.message;
        let Some(k) = message.kind() else {
            continue;
        };
        if k.class() != MessageClass::Event {
            continue;
        }
        let row = event_row(patient_id, seq, message, k.name());
        seq += 1;
        match message {
            Message::AlarmRaised(m) => {
                *out.figures
                    .alarms_by_code
                    .entry(code_name(m.code.name(), m.code.code()))
                    .or_default() += 1;
                if filled {
                    *out.figures
                        .alarms_in_service_by_code
                        .entry(code_name(m.code.name(), m.code.code()))
                        .or_default() += 1;
                    if m.code == AlarmCode::ReservoirEmpty {
                        empty_at.push(m.time_ms);
                    }
                }
            }
            Message::ReservoirRefilled(_) => filled = true,
            Message::DeliveryDenied(_) => out.figures.envelope_refusals += 1,
            Message::DeliveryRecord(m) if m.outcome == DeliveryOutcome::Aborted && filled => {
                aborted_at.push(m.time_ms)
            }
            Message::PatientBolusGranted(_) => out.figures.boluses_granted += 1,
            Message::PatientBolusDenied(_) => out.figures.boluses_denied += 1,
            _ => {}
        }
        out.events.push(row);
    }
    out.figures.empty_reservoir_cuts = aborted_at
        .iter()
        .filter(|a| empty_at.iter().any(|e| e.abs_diff(**a) <= 1000))
        .count() as u64;
    out.figures.delivered_nl = history.delivered_nl;
    out.figures.lost_events = history.lost_events;
    out.figures.therapy_lost_ms = history
        .alarms
        .iter()
        .filter(|a| a.code == "MotorStall" || a.code == "Occlusion")
        .map(|a| a.cleared_ms.unwrap_or(end_utc_ms).saturating_sub(a.time_ms))
        .sum();
    out.days = history
        .days
        .iter()
        .map(|d| DayRow {
            patient_id,
            day: d.clone(),
        })
        .collect();
    out
}

/// Decodes a log and builds its rows.
pub fn rows_of_log(patient_id: u32, log: &[u8], end_utc_ms: Option<u64>) -> LogRows {
    let (items, counts) = crate::decode::decode_all(log);
    let history = crate::analysis::analyse(&items, &counts);
    let end = end_utc_ms.unwrap_or_else(|| {
        history
            .days
            .last()
            .map_or(0, |d| (d.utc_day + 1) * crate::units::MS_PER_DAY)
    });
    rows(patient_id, &items, &history, end)
}

/// Hours, for the summary.
pub fn hours(ms: u64) -> f64 {
    ms as f64 / MS_PER_HOUR as f64
}
