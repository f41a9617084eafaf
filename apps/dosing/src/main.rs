//! The dosing app: `dosing-core` over the infusion capsule's syscalls.
//!
//! Everything the app decides is in `dosing-core`; this binary only
//! connects it to Tock: the capsule (commands 2–8, 17, 18, 20, 21, the
//! relay's 23/24 and the app record's 26/27 through `libtock-infusion`),
//! the capsule's upcalls (delivery done, alarm changed, relay posted),
//! Button 1 (patient bolus request) and one wake-up timer. It sleeps until the core's next wake-up
//! or an upcall, whichever is first; there is no periodic tick.
//!
//! Programmer requests reach it through the capsule's relay: when the
//! telemetry app posts one (upcall 4), `DosingCore::on_relay_posted` takes
//! every waiting entry, decides clinician and patient boluses under the
//! same rules as a Button 1 press (and answers them, so the programmer's
//! `Ack` means the dosing app granted the bolus), and follows the notices
//! of what the capsule accepted (suspend, resume, refill with its drug and
//! concentration, new prescription, cleared fault, clock).
//!
//! Limits of this glue:
//! - The wall clock for the time-of-day basal schedule: the monotonic clock
//!   from [`UTC_AT_BOOT_MS`] until the first status snapshot (command 20),
//!   then the capsule's UTC time (which the programmer sets) plus the
//!   monotonic time since.
//! - What only the app knows (catheter contents, a flush in progress,
//!   patient-bolus grants) the core saves as its record in the capsule
//!   (command 26); at start the app reads it back (command 27) and resumes
//!   its monotonic clock from the record's time (`dosing_core::record`).
//!   No record, or one it cannot read, starts it with the catheter contents
//!   `Unknown`, which the core treats conservatively (no guessed priming or
//!   bridge bolus). On the QEMU board the capsule's storage is RAM, so the
//!   record survives a restart of the app but not of the board.
#![no_main]
#![no_std]
#![forbid(unsafe_code)]

use core::cell::{Cell, RefCell};

use dosing_core::{
    CatheterContents, DosingCapsule, DosingConfig, DosingCore, Now, PatientBolusState,
    PatientBolusVerdict, RecordError, RelayItem, SavedState, Wakeup,
};
use libtock::buttons::{ButtonListener, ButtonState, Buttons};
use libtock::console::Console;
use libtock::runtime::{set_main, stack_size, TockSyscalls};
use libtock_infusion::rt::{Clock, TimerFlag, WakeTimer, ALARM_DRIVER_NUM};
use libtock_infusion::{BolusKind, Event, InfusionListener, Refused, Subscriptions};
use libtock_platform::subscribe::Subscribe;
use libtock_platform::{share, Syscalls};
use pump_protocol::{DeliveryKind, DeliveryOutcome, ErrorCode, MessageKind, StatusSnapshot};

set_main! {main}
// Sized by boards/qemu_rv32_virt/scripts/stack.sh (the call graph's worst
// case, 7.2 KiB on both targets: `main` with the 2.4 KiB core, down through
// `service` to `adopt` decoding a new prescription). The kernel's F8 "stack
// used" is sampled at context switches and misses that chain.
stack_size! {0x2000}

type Infusion = libtock_infusion::Infusion<TockSyscalls>;

/// Volume of one motor step on both boards.
const MOTOR_STEP_NL: u32 = 250;
/// Wake at least this often while there is nothing else to wake for.
const IDLE_WAKE_MS: u32 = 2_000;
/// Never sleep longer than this (the clock must see every tick wrap).
const MAX_SLEEP_MS: u64 = 60_000;
/// The wall clock at boot: 2025-01-01T00:00:00Z (see the module docs).
const UTC_AT_BOOT_MS: u64 = 1_735_689_600_000;
/// Room for a postcard `StatusSnapshot` (command 20).
const STATUS_BUF_LEN: usize = 64;

fn refusal(refused: Refused) -> ErrorCode {
    if refused.reason != 0 {
        ErrorCode::from_code(refused.reason)
    } else {
        // Not the core's answer: the syscall itself failed.
        ErrorCode::NotReady
    }
}

/// The capsule, as `dosing-core` sees it. Keeps the capsule's UTC time
/// from the last snapshot, to run the wall clock.
struct Capsule {
    /// (capsule UTC, own monotonic time) at the last snapshot.
    utc_anchor: Option<(u64, u64)>,
    monotonic_ms: u64,
    /// Whether the capsule accepted a record from this life of the app.
    record_saved: bool,
}

impl DosingCapsule for Capsule {
    fn set_basal(&mut self, rate_nl_per_h: u32) -> Result<(), ErrorCode> {
        Infusion::set_basal(rate_nl_per_h).map_err(refusal)
    }

    fn start_bolus(
        &mut self,
        kind: DeliveryKind,
        volume_nl: u32,
        duration_ms: u32,
    ) -> Result<(), ErrorCode> {
        let kind = match kind {
            DeliveryKind::ClinicianBolus => BolusKind::Clinician,
            DeliveryKind::PatientBolus => BolusKind::Patient,
            DeliveryKind::Priming => BolusKind::Priming,
            DeliveryKind::Bridge => BolusKind::Bridge,
            _ => return Err(ErrorCode::InvalidArgument),
        };
        Infusion::bolus(kind, volume_nl, duration_ms).map_err(refusal)
    }

    fn stop_bolus(&mut self) -> Result<(), ErrorCode> {
        Infusion::stop_bolus().map_err(refusal)
    }

    fn check_in(&mut self) -> Result<u32, ErrorCode> {
        Infusion::check_in().map_err(refusal)
    }

    fn read_prescription(&mut self, buf: &mut [u8]) -> Result<usize, ErrorCode> {
        Infusion::read_prescription(buf).map_err(refusal)
    }

    fn patient_bolus_state(&mut self) -> Result<PatientBolusState, ErrorCode> {
        Infusion::patient_bolus_state()
            .map(
                |(lockout_remaining_ms, boluses_left_24h)| PatientBolusState {
                    lockout_remaining_ms,
                    boluses_left_24h,
                },
            )
            .map_err(refusal)
    }

    fn status(&mut self) -> Result<StatusSnapshot, ErrorCode> {
        let mut buf = [0u8; STATUS_BUF_LEN];
        let len = Infusion::full_status(&mut buf).map_err(refusal)?;
        let status: StatusSnapshot = postcard::from_bytes(buf.get(..len).unwrap_or_default())
            .map_err(|_| ErrorCode::BadPayload)?;
        self.utc_anchor = Some((status.time_ms, self.monotonic_ms));
        Ok(status)
    }

    fn report_patient_denial(
        &mut self,
        reason: ErrorCode,
        lockout_remaining_ms: u32,
    ) -> Result<(), ErrorCode> {
        Infusion::report_patient_denial(reason.code(), lockout_remaining_ms).map_err(refusal)
    }

    fn relay_take(&mut self, buf: &mut [u8]) -> Result<RelayItem, ErrorCode> {
        let item = Infusion::relay_take(buf).map_err(refusal)?;
        let name = MessageKind::from_code(item.kind).map_or("unknown kind", MessageKind::name);
        let mut digits = [0u8; 10];
        say(&[
            b"relay: ",
            name.as_bytes(),
            b" #",
            decimal(item.ticket, &mut digits),
            b"\n",
        ]);
        Ok(RelayItem {
            ticket: item.ticket,
            kind: item.kind,
            len: item.len,
        })
    }

    fn relay_answer(
        &mut self,
        ticket: u32,
        verdict: Result<(), ErrorCode>,
    ) -> Result<(), ErrorCode> {
        let (code, name) = match verdict {
            Ok(()) => (0, "accepted"),
            Err(error) => (error.code(), error.name()),
        };
        // Said before the answer is given, so on the UART it precedes the
        // programmer's Ack or Nack (the end-to-end test checks the order).
        let mut digits = [0u8; 10];
        say(&[
            b"relay: answer #",
            decimal(ticket, &mut digits),
            b": ",
            name.as_bytes(),
            b"\n",
        ]);
        Infusion::relay_answer(ticket, code).map_err(refusal)
    }

    fn save_record(&mut self, record: &[u8]) -> Result<(), ErrorCode> {
        Infusion::save_app_record(record).map_err(refusal)?;
        if !self.record_saved {
            self.record_saved = true;
            say(&[b"record saved\n"]);
        }
        Ok(())
    }

    fn load_record(&mut self, buf: &mut [u8]) -> Result<usize, ErrorCode> {
        Infusion::load_app_record(buf).map_err(refusal)
    }
}

/// Upcalls waiting to be handled (a few can arrive during one console
/// write; more than this many at once cannot happen between two loop turns
/// of this app, and an overflow only drops the oldest, which the next
/// `wake` re-reads from the capsule anyway).
struct Pending {
    events: RefCell<[Option<Event>; 8]>,
    button: Cell<bool>,
}

impl Pending {
    fn push(&self, event: Event) {
        let mut events = self.events.borrow_mut();
        if events[events.len() - 1].is_some() {
            events.rotate_left(1);
            let last = events.len() - 1;
            events[last] = None;
        }
        if let Some(slot) = events.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(event);
        }
    }

    fn pop(&self) -> Option<Event> {
        let mut events = self.events.borrow_mut();
        let first = events[0].take();
        events.rotate_left(1);
        first
    }
}

/// Every console line starts with the app's name.
const TAG: &[u8] = b"dosing: ";

/// Console output, after [`TAG`], without `core::fmt` (it would double the
/// app's size), one write per line: the UART also carries the telemetry
/// link's frames, and a line written in parts can have a frame between them
/// (the console sends up to 64 bytes at once, so a line that fits is never
/// split).
fn say(parts: &[&[u8]]) {
    let mut line = [0u8; 80];
    let mut len = 0;
    for part in [TAG].iter().chain(parts) {
        let n = part.len().min(line.len() - len);
        line[len..len + n].copy_from_slice(&part[..n]);
        len += n;
    }
    let _ = Console::write(&line[..len]);
}

fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    &buf[i..]
}

fn report_verdict(verdict: &PatientBolusVerdict) {
    let (mut a, mut b) = ([0u8; 10], [0u8; 10]);
    match *verdict {
        PatientBolusVerdict::Granted {
            volume_nl,
            boluses_left_24h,
            ..
        } => say(&[
            b"patient bolus granted: ",
            decimal(volume_nl, &mut a),
            b" nL, ",
            decimal(boluses_left_24h, &mut b),
            b" left in 24 h\n",
        ]),
        PatientBolusVerdict::Denied {
            reason,
            lockout_remaining_ms,
            ..
        } => say(&[
            b"patient bolus denied: ",
            reason.name().as_bytes(),
            b", lockout ",
            decimal(lockout_remaining_ms / 1000, &mut a),
            b" s\n",
        ]),
    }
}

/// Builds the core (about 2.4 KiB) straight into `main`'s frame; not
/// inlined, so its own temporaries are off the stack before the loop runs.
#[inline(never)]
fn new_core(config: DosingConfig) -> DosingCore {
    DosingCore::new(config, SavedState::new(CatheterContents::Unknown))
}

/// Takes the core's state from the record the app saved in the capsule;
/// returns the offset that resumes the app's clock from the record's time.
fn restore(core: &mut DosingCore, capsule: &mut Capsule, raw_now_ms: u64) -> u64 {
    match core.restore_record(capsule, raw_now_ms) {
        Ok(offset_ms) => {
            say(&[b"record restored\n"]);
            offset_ms
        }
        Err(error) => {
            // Either way the catheter contents are unknown.
            say(&[match error {
                RecordError::Empty => b"no record\n" as &[u8],
                _ => b"record refused\n",
            }]);
            0
        }
    }
}

fn main() {
    let Ok(clock) = Clock::<TockSyscalls>::new() else {
        say(&[b"no alarm driver\n"]);
        return;
    };
    let config = DosingConfig {
        motor_step_nl: MOTOR_STEP_NL,
        pump_dead_volume_nl: 0,
        idle_wake_interval_ms: IDLE_WAKE_MS,
    };
    let mut capsule = Capsule {
        utc_anchor: None,
        monotonic_ms: 0,
        record_saved: false,
    };
    let mut core = new_core(config);
    let clock_offset_ms = restore(&mut core, &mut capsule, clock.now_ms());
    let now = |capsule: &mut Capsule| {
        let monotonic_ms = clock.now_ms().saturating_add(clock_offset_ms);
        capsule.monotonic_ms = monotonic_ms;
        let utc_ms = match capsule.utc_anchor {
            Some((utc, at)) => utc.saturating_add(monotonic_ms.saturating_sub(at)),
            None => UTC_AT_BOOT_MS + monotonic_ms,
        };
        Now {
            monotonic_ms,
            utc_ms,
        }
    };

    let pending = Pending {
        events: RefCell::new([None; 8]),
        button: Cell::new(false),
    };
    let timer = TimerFlag::default();
    let infusion_listener = InfusionListener(|event| pending.push(event));
    let button_listener = ButtonListener(|button, state| {
        if button == 0 && state == ButtonState::Pressed {
            pending.button.set(true);
        }
    });

    share::scope::<
        (
            Subscriptions<'_, TockSyscalls>,
            Subscribe<'_, TockSyscalls, ALARM_DRIVER_NUM, 0>,
            Subscribe<'_, TockSyscalls, 3, 0>,
        ),
        _,
        _,
    >(|handle| {
        let (infusion, alarm, buttons) = handle.split();
        if Infusion::subscribe_all(&infusion_listener, infusion).is_err() {
            say(&[b"infusion capsule missing\n"]);
            return;
        }
        let _ = WakeTimer::<TockSyscalls>::subscribe(&timer, alarm);
        let button_ok = Buttons::register_listener(&button_listener, buttons).is_ok()
            && Buttons::enable_interrupts(0).is_ok();
        say(&[if button_ok {
            b"started, Button 1 requests a patient bolus\n"
        } else {
            b"started (no button)\n"
        }]);

        let t = now(&mut capsule);
        let mut wake: Wakeup = core.wake(&mut capsule, t);
        let mut had_prescription = false;
        loop {
            let t = now(&mut capsule);
            if t.monotonic_ms >= wake.at_monotonic_ms || timer.take() {
                wake = core.wake(&mut capsule, t);
            }
            while let Some(event) = pending.pop() {
                let t = now(&mut capsule);
                wake = match event {
                    Event::DeliveryDone {
                        kind,
                        outcome,
                        volume_nl,
                    } => core.on_delivery_done(
                        DeliveryKind::from_code(kind),
                        DeliveryOutcome::from_code(outcome),
                        volume_nl,
                        &mut capsule,
                        t,
                    ),
                    Event::AlarmChanged { .. } => core.on_alarm_changed(&mut capsule, t),
                    Event::RelayPosted => core.on_relay_posted(&mut capsule, t),
                    // Verdicts on our own requests arrive synchronously too.
                    Event::BolusVerdict { .. }
                    | Event::EventsAvailable { .. }
                    | Event::RelayAnswered => wake,
                };
            }
            if pending.button.replace(false) {
                let t = now(&mut capsule);
                let verdict = core.request_patient_bolus(&mut capsule, t);
                report_verdict(&verdict);
                wake = core.next_wakeup();
            }
            let has_prescription = core.therapy().is_some();
            if has_prescription != had_prescription {
                had_prescription = has_prescription;
                say(&[if has_prescription {
                    b"prescription adopted, therapy running\n"
                } else {
                    b"no valid prescription\n"
                }]);
            }
            let t = now(&mut capsule).monotonic_ms;
            // At least one tick: a wake-up already due is served next turn.
            let sleep = wake.at_monotonic_ms.saturating_sub(t).min(MAX_SLEEP_MS);
            let _ = WakeTimer::<TockSyscalls>::arm(clock.ticks_for(sleep));
            TockSyscalls::yield_wait();
        }
    });
}
