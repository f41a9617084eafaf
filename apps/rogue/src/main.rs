//! A rogue app: signed (so it runs) but with no role, it asks the infusion
//! capsule for everything only the dosing or telemetry app may do: start
//! deliveries, install a prescription, drain and acknowledge, suspend,
//! refill, set the clock, read the prescription, use the relay from either
//! end (post, result, take, answer: commands 22–25), and overwrite or read
//! the dosing app's record (commands 26/27). Every attempt
//! must be refused; it then hammers the capsule with the same requests for a
//! while.
//!
//! Output (console, one line per round, then a summary the end-to-end test
//! checks): `rogue: round 1: 23 attempts, 23 refused, 0 accepted`, …,
//! `rogue: done: 460 attempts, 460 refused, 0 accepted`. With the opening
//! install attempt, every round's attempts are audited by the capsule as
//! `AccessDenied` events: 461 in all.
#![no_main]
#![no_std]
#![forbid(unsafe_code)]

use core::fmt::Write;
use libtock::alarm::{Alarm, Milliseconds};
use libtock::console::Console;
use libtock::runtime::{set_main, stack_size, TockSyscalls};
use libtock_infusion::{command, BolusKind, Refused};

set_main! {main}
// 2 KiB: its formatting goes through `core::fmt`'s `dyn Write` calls, which
// scripts/stack.sh cannot follow, so it bounds this app from below only
// (about 1.5 KiB).
stack_size! {0x800}

type Infusion = libtock_infusion::Infusion<TockSyscalls>;

/// Prefix of every line; the end-to-end test builds unsigned and wrongly
/// signed copies with their own tags, which must never be heard from.
const TAG: &str = match option_env!("ROGUE_TAG") {
    Some(tag) => tag,
    None => "rogue",
};

/// One line of console text, written at once: the UART also carries the
/// telemetry link's frames, and a line written in pieces (as `writeln!` on
/// the console does) can have a frame between its pieces.
struct Line {
    buf: [u8; 128],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// `writeln!` to the console, as one write.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut line = Line { buf: [0; 128], len: 0 };
        let _ = writeln!(line, $($arg)*);
        let _ = Console::write(&line.buf[..line.len]);
    }};
}

/// A record in the dosing app's format 1: saved at 0 ms, catheter `Empty`,
/// no flush, no grants.
const FAKE_RECORD: [u8; 5] = [0x01, 0x00, 0x01, 0x00, 0x00];

/// Rounds of attempts, and the pause between them.
const ROUNDS: u32 = 20;
const PAUSE_MS: u32 = 250;
/// Wait for the pump to start before the first round.
const START_DELAY_MS: u32 = 3_000;

/// A plausible-looking (but unsigned) prescription and refill record.
const FAKE_RX: [u8; 96] = [0x5A; 96];
const FAKE_REFILL: [u8; 12] = [
    0x01, 0x80, 0x89, 0x7A, 0x00, 0x80, 0xDA, 0xC4, 0x09, 0x0A, 0, 0,
];

/// `pump_protocol::MessageKind::ClinicianBolus` and a postcard payload of
/// 1 000 µg over 60 s.
const RELAY_KIND_CLINICIAN_BOLUS: u16 = 0x0203;
const FAKE_CLINICIAN_BOLUS: [u8; 5] = [0xE8, 0x07, 0xE0, 0xD4, 0x03];

struct Tally {
    attempts: u32,
    refused: u32,
    accepted: u32,
}

impl Tally {
    /// Records one attempt that must be refused.
    fn expect_refused(&mut self, what: &str, result: Result<(), Refused>) {
        self.attempts += 1;
        match result {
            Err(_) => self.refused += 1,
            Ok(()) => {
                self.accepted += 1;
                say!("{TAG}: ACCEPTED {what}!");
            }
        }
    }
}

fn round(tally: &mut Tally) {
    tally.expect_refused("set basal", Infusion::set_basal(1_000_000));
    for kind in [
        BolusKind::Clinician,
        BolusKind::Patient,
        BolusKind::Priming,
        BolusKind::Bridge,
    ] {
        tally.expect_refused("bolus", Infusion::bolus(kind, 1_000_000, 60_000));
    }
    tally.expect_refused("stop bolus", Infusion::stop_bolus());
    tally.expect_refused("check in", Infusion::check_in().map(|_| ()));
    tally.expect_refused(
        "install prescription",
        Infusion::install_prescription(&FAKE_RX),
    );
    let mut buf = [0u8; 600];
    tally.expect_refused("drain events", Infusion::drain_events(&mut buf).map(|_| ()));
    tally.expect_refused("acknowledge alarm", Infusion::acknowledge_alarm(0x0001));
    tally.expect_refused("clear fault", Infusion::clear_fault(0x0001));
    tally.expect_refused("suspend", Infusion::suspend());
    tally.expect_refused("resume", Infusion::resume());
    tally.expect_refused("refill", Infusion::refill(&FAKE_REFILL));
    tally.expect_refused("set clock", Infusion::set_clock(0));
    tally.expect_refused(
        "read prescription",
        Infusion::read_prescription(&mut buf).map(|_| ()),
    );
    tally.expect_refused(
        "pending events",
        Infusion::raw_command(command::PENDING_EVENTS, 0, 0),
    );
    // The relay: post a clinician bolus (as the telemetry app would), read
    // its verdict, take and answer entries (as the dosing app would).
    tally.expect_refused(
        "relay post",
        Infusion::relay_post(RELAY_KIND_CLINICIAN_BOLUS, &FAKE_CLINICIAN_BOLUS).map(|_| ()),
    );
    tally.expect_refused("relay result", Infusion::relay_result().map(|_| ()));
    let mut entry = [0u8; 16];
    tally.expect_refused("relay take", Infusion::relay_take(&mut entry).map(|_| ()));
    tally.expect_refused("relay answer", Infusion::relay_answer(1, 0));
    // The dosing app's record: a forged one (an empty catheter would make
    // the dosing app prime again after a restart), and reading it.
    tally.expect_refused("save app record", Infusion::save_app_record(&FAKE_RECORD));
    let mut record = [0u8; 16];
    tally.expect_refused(
        "load app record",
        Infusion::load_app_record(&mut record).map(|_| ()),
    );
}

fn main() {
    let _ = Alarm::sleep_for(Milliseconds(START_DELAY_MS));
    say!(
        "{TAG}: capsule present: {}; status: {:?}; patient bolus state: {:?}",
        Infusion::exists().is_ok(),
        Infusion::status().map(|s| s.state),
        Infusion::patient_bolus_state(),
    );
    // What the capsule answers to an unknown command, and to one it forbids.
    say!(
        "{TAG}: unknown command -> {:?}; install prescription -> {:?}",
        Infusion::raw_command(200, 0, 0),
        Infusion::install_prescription(&FAKE_RX),
    );
    let mut tally = Tally {
        attempts: 0,
        refused: 0,
        accepted: 0,
    };
    for n in 1..=ROUNDS {
        let before = (tally.attempts, tally.refused, tally.accepted);
        round(&mut tally);
        if n == 1 || n == ROUNDS {
            say!(
                "{TAG}: round {n}: {} attempts, {} refused, {} accepted",
                tally.attempts - before.0,
                tally.refused - before.1,
                tally.accepted - before.2
            );
        }
        let _ = Alarm::sleep_for(Milliseconds(PAUSE_MS));
    }
    say!(
        "{TAG}: done: {} attempts, {} refused, {} accepted",
        tally.attempts,
        tally.refused,
        tally.accepted
    );
}
