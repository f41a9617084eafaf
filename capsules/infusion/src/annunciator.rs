//! Alarm output: the priority on LEDs and a tone burst pattern on a buzzer.
//!
//! One LED per priority (low, medium, high) shows the highest active alarm.
//! While the alarm is audible the buzzer repeats a burst whose pitch and
//! repetition follow the priority, loosely after IEC 60601-1-8 (higher
//! priority: higher pitch, faster repetition); a silenced alarm keeps its
//! LED but not its tone.

use core::cell::Cell;
use infusion_core::AlarmSignal;
use kernel::hil::buzzer::{Buzzer, BuzzerClient};
use kernel::hil::led::Led;
use kernel::hil::time::{Alarm, AlarmClient, ConvertTicks};
use kernel::ErrorCode;
use pump_protocol::AlarmPriority;

use crate::platform::AlarmAnnunciator;

/// One priority's tone: pitch, burst length and repetition period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tone {
    /// Pitch.
    pub frequency_hz: usize,
    /// Length of one burst.
    pub burst_ms: usize,
    /// Start-to-start period of the bursts.
    pub period_ms: u32,
}

/// The tone of each priority.
pub const TONES: [Tone; 3] = [
    Tone {
        frequency_hz: 440,
        burst_ms: 250,
        period_ms: 15_000,
    },
    Tone {
        frequency_hz: 660,
        burst_ms: 200,
        period_ms: 5_000,
    },
    Tone {
        frequency_hz: 960,
        burst_ms: 150,
        period_ms: 1_000,
    },
];

fn index(priority: AlarmPriority) -> usize {
    match priority {
        AlarmPriority::Low => 0,
        AlarmPriority::Medium => 1,
        AlarmPriority::High | AlarmPriority::Other(_) => 2,
    }
}

/// The alarm output adapter. See the module documentation.
pub struct Annunciator<'a, A: Alarm<'a>, B: Buzzer<'a>> {
    buzzer: &'a B,
    alarm: &'a A,
    leds: [Option<&'a dyn Led>; 3],
    tone: Cell<Option<Tone>>,
}

impl<'a, A: Alarm<'a>, B: Buzzer<'a>> Annunciator<'a, A, B> {
    /// `leds` are the low, medium and high priority LEDs (any may be absent).
    pub fn new(buzzer: &'a B, alarm: &'a A, leds: [Option<&'a dyn Led>; 3]) -> Self {
        Self {
            buzzer,
            alarm,
            leds,
            tone: Cell::new(None),
        }
    }

    /// Initialises the LEDs (all off).
    pub fn init(&self) {
        for led in self.leds.iter().flatten() {
            led.init();
            led.off();
        }
    }

    fn burst(&self, tone: Tone) {
        let _ = self.buzzer.buzz(tone.frequency_hz, tone.burst_ms);
        let dt = self.alarm.ticks_from_ms(tone.period_ms);
        self.alarm.set_alarm(self.alarm.now(), dt);
    }
}

impl<'a, A: Alarm<'a>, B: Buzzer<'a>> AlarmAnnunciator for Annunciator<'a, A, B> {
    fn show(&self, signal: AlarmSignal) {
        let lit = signal.priority.map(index);
        for (i, led) in self.leds.iter().enumerate() {
            if let Some(led) = led {
                if Some(i) == lit {
                    led.on();
                } else {
                    led.off();
                }
            }
        }
        let tone = match (lit, signal.audible) {
            (Some(i), true) => Some(TONES[i]),
            _ => None,
        };
        if tone == self.tone.get() {
            return;
        }
        self.tone.set(tone);
        match tone {
            Some(tone) => self.burst(tone),
            None => {
                let _ = self.alarm.disarm();
                let _ = self.buzzer.stop();
            }
        }
    }
}

impl<'a, A: Alarm<'a>, B: Buzzer<'a>> AlarmClient for Annunciator<'a, A, B> {
    fn alarm(&self) {
        if let Some(tone) = self.tone.get() {
            self.burst(tone);
        }
    }
}

impl<'a, A: Alarm<'a>, B: Buzzer<'a>> BuzzerClient for Annunciator<'a, A, B> {
    fn buzzer_done(&self, _status: Result<(), ErrorCode>) {}
}
