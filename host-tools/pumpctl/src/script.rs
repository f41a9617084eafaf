//! The simulator's event script: one event per line.
//!
//! ```text
//! # comment
//! dDAY HH:MM[:SS]  EVENT  [key=value ...]
//! ```
//!
//! `dDAY` counts days from the simulation start (`d0` is the first day,
//! which starts at 00:00 UTC on the simulated clock). Events:
//!
//! | event | keys | what happens |
//! |---|---|---|
//! | `bolus` | – | the patient presses the bolus button on the pump |
//! | `ptm-bolus` | – | the patient's own programmer (PTM) asks for a patient bolus over the link, signed with the key the prescription pairs |
//! | `patient-presses` | `per_day=N` [`from=HH:MM` `to=HH:MM`] | from this day on, N presses a day at random times between `from` and `to` (default 07:00–22:00), drawn from the seeded PRNG |
//! | `clinician-bolus` | [`dose_ug=D` `duration_min=M`] | the programmer asks for a clinician bolus (default: the prescription's preset) |
//! | `refill` | `volume_ul=V` [`concentration_ug_per_ml=C`] | the residual is withdrawn and V µL filled (default: the prescription's concentration) |
//! | `suspend`, `resume` | – | programmer commands |
//! | `set-clock` | `shift_min=±N` | the programmer moves the wall clock by N minutes |
//! | `stall` | – | the motor jams: it no longer turns (no encoder pulses, no flow) |
//! | `stall-cleared` | – | the jam is freed and the clinician clears the motor-stall fault |
//! | `occlusion` | – | the occlusion sensor trips |
//! | `occlusion-cleared` | – | the sensor releases and the clinician clears the fault |
//! | `ack` | `code=ALARM` | acknowledge (silence) an alarm |
//! | `clear-fault` | `code=ALARM` | clear a latched fault |
//! | `power-loss` | [`down_min=N`] (default 1) | power fails; after N minutes the pump restarts and rebuilds every core from what it had saved |
//! | `dosing-hang` | – | the dosing app stops running (no check-ins, no requests) |
//! | `dosing-restart` | – | the kernel restarts the dosing app from its saved state |
//! | `install` | `file=PATH` | the programmer sends an install frame written by `pumpctl rx sign` (PATH relative to the script) |
//! | `outlook` | – | the patient's programmer reads the service outlook (`GetServiceOutlook`): charge, ERI and end-of-service dates, refill-by date; the answers are in `summary.json` under `outlooks` |
//! | `self-test-fail`, `self-test-pass` | `test=ram\|program-memory\|clock\|images\|watchdog\|cpu` [`detail=N`] | the board reports a hardware self-test (SR-STS-001): a failure stops delivery under the high `SelfTestFailed` alarm; once every failed test has passed again, `clear-fault code=self-test-failed` clears it |
//! | `hardware-fault` | `part=flash\|ram\|rtc` | a part of the simulated board fails: a program-memory bit flips, a RAM bit sticks at 1, or the system timer runs 0.5 % fast of the RTC; the core's hourly self-tests (SR-STS-005) find it within two days (flash), 16 hours (ram) or an hour (rtc) |
//! | `attack` | `mode=unsigned\|forged\|replay` [`command=clinician-bolus\|suspend\|resume`] [`dose_ug=D` `duration_min=M`] | someone without the clinic's key sends a command over the link: its plain 1.0 frame, one signed with another key, or the programmer's last signed command again (default command: a clinician bolus of 200 µg over 2 min) |
//!
//! **Repeats.** Any event takes `every_min=M times=N`: it happens N times,
//! the first at the line's time and then every M minutes, as if written on
//! N lines (at most [`MAX_REPEATS`], so a script cannot ask for unbounded
//! memory). `d0 00:30 bolus every_min=60 times=240` is a press every hour
//! for ten days.
//!
//! The simulated programmer signs every command that changes therapy with
//! the simulator's TEST-ONLY clinic key (`docs/protocol.md` §5.5).
//!
//! `ALARM` is one of `motor-stall`, `occlusion`, `reservoir-empty`,
//! `envelope-integrity`, `dosing-watchdog`, `reservoir-low`,
//! `battery-replacement`, `app-fault`, `refill-due`.

use std::path::{Path, PathBuf};

use pump_protocol::AlarmCode;

use crate::error::{Error, Result};
use crate::units::{MS_PER_DAY, MS_PER_MIN};

/// One scripted event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A press of the pump's own button.
    Bolus,
    /// A patient bolus request from the paired PTM, over the link.
    PtmBolus,
    /// Random presses from this day on.
    PatientPresses {
        /// Presses per day.
        per_day: u32,
        /// Earliest minute of the day.
        from_min: u32,
        /// Latest minute of the day.
        to_min: u32,
    },
    /// A clinician bolus (`None`: the prescription's preset).
    ClinicianBolus(Option<(u32, u32)>),
    /// A refill.
    Refill {
        /// Volume added.
        volume_nl: u32,
        /// Concentration (`None`: the prescription's).
        concentration_ug_per_ml: Option<u32>,
    },
    /// Suspend therapy.
    Suspend,
    /// Resume therapy.
    Resume,
    /// Move the wall clock.
    SetClock {
        /// Shift in minutes.
        shift_min: i64,
    },
    /// The motor jams.
    Stall,
    /// The jam is freed and the fault cleared.
    StallCleared,
    /// The occlusion input trips.
    Occlusion,
    /// The occlusion input releases and the fault is cleared.
    OcclusionCleared,
    /// Acknowledge an alarm.
    Ack(AlarmCode),
    /// Clear a fault.
    ClearFault(AlarmCode),
    /// Power loss for this long.
    PowerLoss {
        /// Downtime.
        down_ms: u64,
    },
    /// The dosing app stops.
    DosingHang,
    /// The dosing app restarts.
    DosingRestart,
    /// Install a signed prescription frame.
    Install(PathBuf),
    /// The PTM asks for the service outlook (battery, ERI, EOS, refill-by).
    Outlook,
    /// The board reports a hardware self-test: `Err(detail)` if it failed.
    SelfTest(
        infusion_core::selftest::SelfTest,
        core::result::Result<(), u32>,
    ),
    /// A part of the board fails; the hourly self-tests find it.
    HardwareFault(crate::simhw::HardwarePart),
    /// An attacker on the link sends a command.
    Attack {
        /// Unsigned, forged or replayed.
        mode: crate::simlink::AttackMode,
        /// What it asks for (a replay sends the programmer's last command).
        command: AttackCommand,
    },
}

/// What an attacker asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackCommand {
    /// A clinician bolus: dose (µg) and duration (min).
    ClinicianBolus(u32, u32),
    /// Suspend therapy.
    Suspend,
    /// Resume therapy.
    Resume,
}

/// An event and its time (simulated monotonic ms since the start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// When.
    pub at_ms: u64,
    /// What.
    pub event: Event,
    /// Line number in the script (for messages).
    pub line: usize,
}

/// Parses a script file.
pub fn load(path: &Path) -> Result<Vec<Timed>> {
    let text = crate::error::read_text(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&path.display().to_string(), &text, base)
}

/// Alarm names as scripts write them.
pub fn alarm_from_name(name: &str) -> Option<AlarmCode> {
    AlarmCode::ALL
        .iter()
        .copied()
        .find(|c| kebab(c.name()) == name)
}

/// `MotorStall` → `motor-stall`.
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The most times one line may repeat its event (`times=N`).
pub const MAX_REPEATS: u32 = 100_000;

const EVENTS: &str = "bolus, ptm-bolus, patient-presses, clinician-bolus, refill, suspend, resume, set-clock, stall, stall-cleared, occlusion, occlusion-cleared, ack, clear-fault, power-loss, dosing-hang, dosing-restart, install, attack";

/// Parses script text; `name` is used in messages, `base` resolves files.
pub fn parse(name: &str, text: &str, base: &Path) -> Result<Vec<Timed>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |msg: String| Error(format!("{name}:{line_no}: {msg}"));
        let mut words = line.split_whitespace();
        let day = words.next().unwrap_or("");
        let time = words
            .next()
            .ok_or_else(|| at("expected `dDAY HH:MM EVENT [key=value ...]`".into()))?;
        let at_ms = parse_when(day, time).ok_or_else(|| {
            at(format!(
                "`{day} {time}`: expected a time like `d3 14:30` or `d0 08:00:15` (day since the start, UTC time of day)"
            ))
        })?;
        let event_name = words
            .next()
            .ok_or_else(|| at(format!("missing event after the time (one of: {EVENTS})")))?;
        let mut keys: Vec<(String, String)> = Vec::new();
        for word in words {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| at(format!("`{word}`: expected key=value")))?;
            keys.push((k.to_string(), v.to_string()));
        }
        let mut args = Args { keys, at: &at };
        let every_min = args.number("every_min", "minutes")?;
        let times = args.number("times", "repeats")?;
        let repeat = match (every_min, times) {
            (None, None) => None,
            (Some(every), Some(times)) if every > 0 && (1..=MAX_REPEATS).contains(&times) => {
                Some((u64::from(every) * MS_PER_MIN, times))
            }
            (Some(_), Some(_)) => {
                return Err(at(format!(
                    "every_min must be at least 1 and times from 1 to {MAX_REPEATS}"
                )))
            }
            _ => {
                return Err(at(
                    "a repeat takes both every_min=M and times=N, or neither".into(),
                ))
            }
        };
        let event = match event_name {
            "bolus" => Event::Bolus,
            "ptm-bolus" => Event::PtmBolus,
            "patient-presses" => Event::PatientPresses {
                per_day: args
                    .number("per_day", "presses per day")?
                    .ok_or_else(|| at("`patient-presses` needs per_day=N".into()))?,
                from_min: args.time_of_day("from")?.unwrap_or(7 * 60),
                to_min: args.time_of_day("to")?.unwrap_or(22 * 60),
            },
            "clinician-bolus" => {
                let dose = args.number("dose_ug", "µg")?;
                let duration = args.number("duration_min", "minutes")?;
                match (dose, duration) {
                    (Some(d), Some(m)) => Event::ClinicianBolus(Some((d, m))),
                    (None, None) => Event::ClinicianBolus(None),
                    _ => {
                        return Err(at(
                            "`clinician-bolus` takes both dose_ug and duration_min, or neither"
                                .into(),
                        ))
                    }
                }
            }
            "refill" => {
                let ul = args
                    .number("volume_ul", "µL")?
                    .ok_or_else(|| at("`refill` needs volume_ul=N (µL added)".into()))?;
                Event::Refill {
                    volume_nl: ul
                        .checked_mul(1000)
                        .ok_or_else(|| at(format!("volume_ul={ul}: too large")))?,
                    concentration_ug_per_ml: args.number("concentration_ug_per_ml", "µg/mL")?,
                }
            }
            "suspend" => Event::Suspend,
            "resume" => Event::Resume,
            "set-clock" => {
                let v = args
                    .take("shift_min")
                    .ok_or_else(|| at("`set-clock` needs shift_min=±N".into()))?;
                Event::SetClock {
                    shift_min: v.trim_start_matches('+').parse().map_err(|_| {
                        at(format!(
                            "shift_min=`{v}`: expected a whole number of minutes"
                        ))
                    })?,
                }
            }
            "stall" => Event::Stall,
            "stall-cleared" => Event::StallCleared,
            "occlusion" => Event::Occlusion,
            "occlusion-cleared" => Event::OcclusionCleared,
            "ack" | "clear-fault" => {
                let code = args
                    .take("code")
                    .ok_or_else(|| at(format!("`{event_name}` needs code=ALARM")))?;
                let alarm = alarm_from_name(&code).ok_or_else(|| {
                    let names: Vec<String> =
                        AlarmCode::ALL.iter().map(|c| kebab(c.name())).collect();
                    at(format!(
                        "code=`{code}`: expected one of {}",
                        names.join(", ")
                    ))
                })?;
                if event_name == "ack" {
                    Event::Ack(alarm)
                } else {
                    Event::ClearFault(alarm)
                }
            }
            "power-loss" => Event::PowerLoss {
                down_ms: u64::from(args.number("down_min", "minutes")?.unwrap_or(1)) * MS_PER_MIN,
            },
            "dosing-hang" => Event::DosingHang,
            "outlook" => Event::Outlook,
            "self-test-fail" | "self-test-pass" => {
                use infusion_core::selftest::SelfTest;
                let name = args
                    .take("test")
                    .ok_or_else(|| at(format!("`{event_name}` needs test=NAME")))?;
                let test = SelfTest::ALL
                    .into_iter()
                    .find(|t| kebab(&format!("{t:?}")) == name)
                    .ok_or_else(|| {
                        at(format!(
                            "test=`{name}`: expected one of ram, program-memory, clock, images, watchdog, cpu"
                        ))
                    })?;
                if event_name == "self-test-pass" {
                    Event::SelfTest(test, Ok(()))
                } else {
                    let detail = match args.take("detail") {
                        Some(d) => d
                            .parse()
                            .map_err(|_| at(format!("detail=`{d}`: expected a number")))?,
                        None => 0,
                    };
                    Event::SelfTest(test, Err(detail))
                }
            }
            "hardware-fault" => {
                let name = args
                    .take("part")
                    .ok_or_else(|| at("`hardware-fault` needs part=flash|ram|rtc".into()))?;
                let part = crate::simhw::HardwarePart::from_name(&name)
                    .ok_or_else(|| at(format!("part=`{name}`: expected one of flash, ram, rtc")))?;
                Event::HardwareFault(part)
            }
            "dosing-restart" => Event::DosingRestart,
            "install" => {
                let file = args.take("file").ok_or_else(|| {
                    at("`install` needs file=PATH (from `pumpctl rx sign`)".into())
                })?;
                Event::Install(base.join(file))
            }
            "attack" => {
                let mode = args
                    .take("mode")
                    .ok_or_else(|| at("`attack` needs mode=unsigned|forged|replay".into()))?;
                let mode = crate::simlink::AttackMode::from_name(&mode).ok_or_else(|| {
                    at(format!(
                        "mode=`{mode}`: expected unsigned, forged or replay"
                    ))
                })?;
                let command = match args.take("command").as_deref() {
                    None | Some("clinician-bolus") => AttackCommand::ClinicianBolus(
                        args.number("dose_ug", "µg")?.unwrap_or(200),
                        args.number("duration_min", "minutes")?.unwrap_or(2),
                    ),
                    Some("suspend") => AttackCommand::Suspend,
                    Some("resume") => AttackCommand::Resume,
                    Some(other) => {
                        return Err(at(format!(
                            "command=`{other}`: expected clinician-bolus, suspend or resume"
                        )))
                    }
                };
                Event::Attack { mode, command }
            }
            other => {
                return Err(at(format!(
                    "unknown event `{other}` (expected one of: {EVENTS})"
                )))
            }
        };
        if let Some((k, _)) = args.keys.first() {
            return Err(at(format!("`{event_name}` does not take `{k}`")));
        }
        let (every_ms, times) = repeat.unwrap_or((0, 1));
        for k in 0..u64::from(times) {
            let at_ms = every_ms
                .checked_mul(k)
                .and_then(|offset| at_ms.checked_add(offset))
                .ok_or_else(|| at("the repeat runs past the simulator's clock".into()))?;
            out.push(Timed {
                at_ms,
                event: event.clone(),
                line: line_no,
            });
        }
    }
    out.sort_by_key(|t| t.at_ms);
    Ok(out)
}

struct Args<'a, F: Fn(String) -> Error> {
    keys: Vec<(String, String)>,
    at: &'a F,
}

impl<F: Fn(String) -> Error> Args<'_, F> {
    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.keys.iter().position(|(k, _)| k == key)?;
        Some(self.keys.remove(i).1)
    }

    fn number(&mut self, key: &str, unit: &str) -> Result<Option<u32>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => {
                v.replace('_', "").parse().map(Some).map_err(|_| {
                    (self.at)(format!("{key}=`{v}`: expected a whole number ({unit})"))
                })
            }
        }
    }

    fn time_of_day(&mut self, key: &str) -> Result<Option<u32>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => crate::rx::parse_time_of_day(&v)
                .map(|m| Some(u32::from(m)))
                .ok_or_else(|| (self.at)(format!("{key}=`{v}`: expected HH:MM"))),
        }
    }
}

fn parse_when(day: &str, time: &str) -> Option<u64> {
    let day: u64 = day.strip_prefix('d')?.parse().ok()?;
    let mut parts = time.split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let s: u64 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() || h > 23 || m > 59 || s > 59 {
        return None;
    }
    day.checked_mul(MS_PER_DAY)?
        .checked_add(((h * 60 + m) * 60 + s) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_event_and_sorts() {
        let text = "d1 08:00 bolus\nd0 09:30:05 refill volume_ul=20000 # fill\n\nd2 00:00 ack code=motor-stall\nd2 01:00 power-loss down_min=5\nd0 00:00 patient-presses per_day=3\nd3 00:00 set-clock shift_min=-60\n";
        let events = parse("s", text, Path::new(".")).unwrap();
        assert_eq!(
            events[0].event,
            Event::PatientPresses {
                per_day: 3,
                from_min: 420,
                to_min: 1320
            }
        );
        assert_eq!(events[1].at_ms, (9 * 3600 + 30 * 60 + 5) * 1000);
        assert_eq!(events[3].event, Event::Ack(AlarmCode::MotorStall));
        assert_eq!(events[5].event, Event::SetClock { shift_min: -60 });
    }

    #[test]
    fn a_repeated_line_is_the_same_as_writing_it_out() {
        let repeated = parse(
            "s",
            "d0 00:30 bolus every_min=60 times=3\nd0 01:30 refill volume_ul=5\n",
            Path::new("."),
        )
        .unwrap();
        let written = parse(
            "s",
            "d0 00:30 bolus\nd0 01:30 bolus\nd0 02:30 bolus\nd0 01:30 refill volume_ul=5\n",
            Path::new("."),
        )
        .unwrap();
        let when = |v: &[Timed]| -> Vec<(u64, Event)> {
            v.iter().map(|t| (t.at_ms, t.event.clone())).collect()
        };
        assert_eq!(when(&repeated), when(&written));
        assert!(repeated.iter().all(|t| t.line <= 2));
    }

    #[test]
    fn a_repeat_needs_both_keys_and_stays_bounded() {
        for bad in [
            "d0 00:00 bolus every_min=60",
            "d0 00:00 bolus times=3",
            "d0 00:00 bolus every_min=0 times=3",
            "d0 00:00 bolus every_min=60 times=0",
            "d0 00:00 bolus every_min=1 times=100001",
        ] {
            let e = parse("s.txt", bad, Path::new(".")).unwrap_err();
            assert!(e.0.starts_with("s.txt:1: "), "{bad}: {e}");
            assert!(
                e.0.contains("every_min") || e.0.contains("times"),
                "{bad}: {e}"
            );
        }
        let most = parse(
            "s.txt",
            "d0 00:00 bolus every_min=1 times=100000",
            Path::new("."),
        );
        assert_eq!(most.map(|v| v.len()).ok(), Some(100_000));
        // Past u64 milliseconds: an error, not a wrapped time.
        let e = parse(
            "s.txt",
            "d0 00:00 bolus every_min=4294967295 times=100000",
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.0.contains("past the simulator's clock"), "{e}");
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let e = parse("s.txt", "d0 08:00 bolus\nd1 25:00 bolus\n", Path::new(".")).unwrap_err();
        assert!(e.0.starts_with("s.txt:2: `d1 25:00`"), "{e}");
        let e = parse("s.txt", "d0 08:00 jump\n", Path::new(".")).unwrap_err();
        assert!(e.0.contains("unknown event `jump`"), "{e}");
        let e = parse("s.txt", "d0 08:00 refill volume_ul=lots\n", Path::new(".")).unwrap_err();
        assert!(e.0.contains("volume_ul=`lots`"), "{e}");
        let e = parse("s.txt", "d0 08:00 ack code=fire\n", Path::new(".")).unwrap_err();
        assert!(e.0.contains("code=`fire`"), "{e}");
    }
}
