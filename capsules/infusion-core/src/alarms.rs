//! Alarm conditions, their IEC 60601-1-8 priorities, and acknowledgement.

use pump_protocol::{AlarmCode, AlarmPriority};
use serde::{Deserialize, Serialize};

/// The priority of each alarm condition (SR-ALM-001).
pub fn priority_of(code: AlarmCode) -> AlarmPriority {
    match code {
        AlarmCode::MotorStall
        | AlarmCode::Occlusion
        | AlarmCode::ReservoirEmpty
        | AlarmCode::EnvelopeIntegrity
        | AlarmCode::DosingWatchdog
        | AlarmCode::RefillDiscrepancy
        | AlarmCode::EndOfService
        | AlarmCode::SelfTestFailed
        | AlarmCode::UncommandedMotion => AlarmPriority::High,
        AlarmCode::ReservoirLow
        | AlarmCode::BatteryReplacement
        | AlarmCode::AppFault
        | AlarmCode::RepeatedResets
        | AlarmCode::SuspendedTooLong
        | AlarmCode::RepeatedFaults => AlarmPriority::Medium,
        AlarmCode::RefillDue => AlarmPriority::Low,
        // A code this build does not know is treated as the most urgent.
        AlarmCode::Other(_) => AlarmPriority::High,
    }
}

/// Conditions that stop delivery until they are cleared (SR-ALM-004).
pub fn stops_delivery(code: AlarmCode) -> bool {
    matches!(
        code,
        AlarmCode::MotorStall
            | AlarmCode::Occlusion
            | AlarmCode::ReservoirEmpty
            | AlarmCode::EnvelopeIntegrity
            | AlarmCode::EndOfService
            | AlarmCode::SelfTestFailed
            | AlarmCode::UncommandedMotion
    )
}

fn rank(priority: AlarmPriority) -> u8 {
    match priority {
        AlarmPriority::Low => 1,
        AlarmPriority::Medium => 2,
        AlarmPriority::High | AlarmPriority::Other(_) => 3,
    }
}

/// What the alarm output shows: the highest active priority (its tone and
/// LED pattern), and whether the tone sounds or is silenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlarmSignal {
    /// Highest active priority, or `None` when no alarm is active.
    pub priority: Option<AlarmPriority>,
    /// The tone sounds (false while every alarm at that priority is silenced).
    pub audible: bool,
}

impl AlarmSignal {
    /// No alarm.
    pub const OFF: Self = Self {
        priority: None,
        audible: false,
    };
}

/// One active alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveAlarm {
    /// Wire code of the condition.
    pub code: u16,
    /// Silenced until this core time (0: not silenced).
    pub silenced_until_ms: u64,
}

/// The set of active alarm conditions. Bounded by the number of codes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmSet {
    active: heapless::Vec<ActiveAlarm, 16>,
}

impl AlarmSet {
    /// Whether a condition is active.
    pub fn is_active(&self, code: AlarmCode) -> bool {
        self.active.iter().any(|a| a.code == code.code())
    }

    /// Raises a condition; returns false if it was already active.
    pub fn raise(&mut self, code: AlarmCode) -> bool {
        if self.is_active(code) {
            return false;
        }
        // 16 slots hold every code this version defines; an unknown code
        // beyond that still stops delivery through `EnvelopeIntegrity`.
        self.active
            .push(ActiveAlarm {
                code: code.code(),
                silenced_until_ms: 0,
            })
            .is_ok()
    }

    /// Clears a condition; returns false if it was not active.
    pub fn clear(&mut self, code: AlarmCode) -> bool {
        let before = self.active.len();
        self.active.retain(|a| a.code != code.code());
        self.active.len() != before
    }

    /// Silences an active condition until `until_ms`; the cause stays.
    pub fn silence(&mut self, code: AlarmCode, until_ms: u64) -> bool {
        match self.active.iter_mut().find(|a| a.code == code.code()) {
            Some(alarm) => {
                alarm.silenced_until_ms = until_ms;
                true
            }
            None => false,
        }
    }

    /// Active codes.
    pub fn codes(&self) -> impl Iterator<Item = AlarmCode> + '_ {
        self.active.iter().map(|a| AlarmCode::from_code(a.code))
    }

    /// Whether any active condition stops delivery.
    pub fn delivery_blocked(&self) -> bool {
        self.codes().any(stops_delivery)
    }

    /// The highest-priority active condition (SR-ALM-002: highest wins).
    pub fn top(&self) -> Option<AlarmCode> {
        self.codes().max_by_key(|c| rank(priority_of(*c)))
    }

    /// What the output should show at `now_ms`.
    pub fn signal(&self, now_ms: u64) -> AlarmSignal {
        let Some(top) = self.top() else {
            return AlarmSignal::OFF;
        };
        let priority = priority_of(top);
        let audible = self
            .active
            .iter()
            .filter(|a| rank(priority_of(AlarmCode::from_code(a.code))) == rank(priority))
            .any(|a| a.silenced_until_ms <= now_ms);
        AlarmSignal {
            priority: Some(priority),
            audible,
        }
    }

    /// The next time a silence ends, so the core can wake to re-annunciate.
    pub fn next_silence_end(&self, now_ms: u64) -> Option<u64> {
        self.active
            .iter()
            .map(|a| a.silenced_until_ms)
            .filter(|t| *t > now_ms)
            .min()
    }
}
