//! The telemetry app: `telemetry-core` over the infusion capsule's syscalls
//! and the host link on the console UART.
//!
//! Everything the app decides is in `telemetry-core`; this binary only
//! connects it to Tock:
//! - When the capsule signals events (upcall 2), it drains them into the
//!   log (commands 10, 19) and forwards the drained frames to the host link
//!   as they are (live telemetry; `ReadLog` answers carry the `FROM_LOG`
//!   flag instead).
//! - Programmer boluses (`ClinicianBolus`, `PatientBolusRequest`) go to the
//!   dosing app through the capsule's relay (command 22); the host's `Ack`
//!   or `Nack` waits for the dosing app's verdict, which arrives with
//!   upcall 5 (command 25, `TelemetryCore::service_relay`). Programmer
//!   commands the capsule accepted are posted as notices for the dosing
//!   app the same way.
//! - It reads the host link (the board's link driver, which only this app
//!   may use) one byte at a time, so bytes the app has not asked for stay in
//!   the UART and nothing is lost; hands them to `service_link`; and writes
//!   the answers back. Each write goes out whole, so on QEMU, where the link
//!   shares the UART with the console, frames never mix with other apps'
//!   text.
//!
//! - The event log is kept in the flash region the board lends this app
//!   alone (`libtock_infusion::log_region`; `docs/persistence.md` §9), so
//!   it survives resets of the app and of the board.
//!
//! Limits of this glue:
//! - UTC is the monotonic clock from [`UTC_AT_BOOT_MS`] until the
//!   programmer sets the clock, then the time it set.
#![no_main]
#![no_std]
#![forbid(unsafe_code)]

use core::cell::{Cell, RefCell};

use libtock::console::Console;
use libtock::runtime::{set_main, stack_size, TockSyscalls};
use libtock_infusion::log_region::LogRegion;
use libtock_infusion::rt::{Clock, TimerFlag, WakeTimer, ALARM_DRIVER_NUM};
use libtock_infusion::{Event, InfusionListener, Refused, Subscriptions};
use libtock_platform::allow_rw::AllowRw;
use libtock_platform::subscribe::Subscribe;
use libtock_platform::{share, DefaultConfig, Syscalls};
use pump_protocol::{AlarmCode, ErrorCode, Refill, ServiceOutlook, StatusSnapshot};
use telemetry_core::{
    FlashError, Geometry, LogStorage, SliceOutput, TelemetryCapsule, TelemetryCore, DRAIN_BUF_LEN,
    SIMPLE_RESPONSE_ROOM,
};

set_main! {main}
// 2 KiB of link output in `main`'s frame, and telemetry-core's frames (a
// few record buffers of 0.5 KiB on the log's paths): 14.7 KiB at worst
// from the call graph (boards/qemu_rv32_virt/scripts/stack.sh), which
// checks it against this.
stack_size! {0x4000}

type Infusion = libtock_infusion::Infusion<TockSyscalls>;

/// Host link output per answer.
const LINK_OUT_LEN: usize = 2048;
/// Drain at least this often even without an upcall.
const POLL_MS: u64 = 1_000;
/// The wall clock at boot: 2025-01-01T00:00:00Z (see the module docs).
const UTC_AT_BOOT_MS: u64 = 1_735_689_600_000;

use libtock_infusion::link::{self, Link, LINK_DRIVER_NUM};

fn refusal(refused: Refused) -> ErrorCode {
    if refused.reason != 0 {
        ErrorCode::from_code(refused.reason)
    } else {
        ErrorCode::NotReady
    }
}

/// The log's flash: the region the board lends this app (the log-region
/// driver, `libtock_infusion::log_region`), as the NOR flash
/// `telemetry-core`'s log is written against.
struct FlashLog {
    /// `(page bytes, pages)`; no pages if the driver is missing, and the
    /// log then refuses every append (counted as storage errors).
    geometry: (u32, u32),
}

type Region = LogRegion<TockSyscalls>;

fn flash_error(error: libtock_platform::ErrorCode) -> FlashError {
    match error {
        libtock_platform::ErrorCode::Invalid => FlashError::OutOfBounds,
        libtock_platform::ErrorCode::Already => FlashError::NotErased,
        // `BUSY` (the erase budget), `FAIL` (the device) and the rest.
        _ => FlashError::Device,
    }
}

impl LogStorage for FlashLog {
    fn geometry(&self) -> Geometry {
        Geometry {
            page_size_bytes: self.geometry.0,
            page_count: self.geometry.1,
            word_size_bytes: 4,
        }
    }

    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        Region::read(addr, buf).map_err(flash_error)
    }

    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        Region::program(addr, data).map_err(flash_error)
    }

    fn erase_page(&mut self, page: u32) -> Result<(), FlashError> {
        Region::erase_page(page).map_err(flash_error)
    }
}

/// The capsule, as `telemetry-core` sees it; keeps a copy of what it drains
/// for the live link, and follows the clock the programmer sets.
struct Capsule<'a> {
    forward: [u8; DRAIN_BUF_LEN],
    forward_len: usize,
    /// UTC minus the monotonic clock.
    utc_offset_ms: &'a Cell<u64>,
    /// The monotonic clock when the current host byte arrived.
    monotonic_ms: u64,
}

impl TelemetryCapsule for Capsule<'_> {
    fn install_prescription(&mut self, signed: &[u8]) -> Result<(), ErrorCode> {
        Infusion::install_prescription(signed).map_err(refusal)
    }

    fn drain_events(&mut self, buf: &mut [u8]) -> Result<(usize, usize), ErrorCode> {
        let (bytes, frames) = Infusion::drain_events(buf).map_err(refusal)?;
        let room = self.forward.len() - self.forward_len;
        if let Some(drained) = buf.get(..bytes.min(room)) {
            self.forward[self.forward_len..self.forward_len + drained.len()]
                .copy_from_slice(drained);
            self.forward_len += drained.len();
        }
        Ok((bytes, frames))
    }

    fn acknowledge_alarm(&mut self, code: AlarmCode) -> Result<(), ErrorCode> {
        Infusion::acknowledge_alarm(code.code()).map_err(refusal)
    }

    fn clear_fault(&mut self, code: AlarmCode) -> Result<(), ErrorCode> {
        Infusion::clear_fault(code.code()).map_err(refusal)
    }

    fn suspend(&mut self) -> Result<(), ErrorCode> {
        Infusion::suspend().map_err(refusal)
    }

    fn resume(&mut self) -> Result<(), ErrorCode> {
        Infusion::resume().map_err(refusal)
    }

    fn refill(&mut self, refill: &Refill) -> Result<(), ErrorCode> {
        let mut buf = [0u8; 16];
        let bytes = postcard::to_slice(refill, &mut buf).map_err(|_| ErrorCode::InvalidArgument)?;
        Infusion::refill(bytes).map_err(refusal)
    }

    fn set_clock(&mut self, utc_time_ms: u64) -> Result<(), ErrorCode> {
        Infusion::set_clock(utc_time_ms).map_err(refusal)?;
        self.utc_offset_ms
            .set(utc_time_ms.wrapping_sub(self.monotonic_ms));
        Ok(())
    }

    fn authenticated_command(&mut self, signed: &[u8]) -> Result<(u16, u32), ErrorCode> {
        Infusion::authenticated_command(signed).map_err(refusal)
    }

    fn relay_post(&mut self, kind: u16, payload: &[u8]) -> Result<u32, ErrorCode> {
        Infusion::relay_post(kind, payload).map_err(refusal)
    }

    fn relay_result(&mut self) -> Result<(u32, Result<(), ErrorCode>), ErrorCode> {
        let (ticket, verdict) = Infusion::relay_result().map_err(refusal)?;
        let verdict = match verdict {
            0 => Ok(()),
            code => Err(ErrorCode::from_code(code)),
        };
        Ok((ticket, verdict))
    }

    fn pending_events(&mut self) -> Result<u32, ErrorCode> {
        Infusion::pending_events().map_err(refusal)
    }

    fn status(&mut self) -> Result<StatusSnapshot, ErrorCode> {
        let mut buf = [0u8; 64];
        let len = Infusion::full_status(&mut buf).map_err(refusal)?;
        postcard::from_bytes(buf.get(..len).unwrap_or_default()).map_err(|_| ErrorCode::BadPayload)
    }

    fn service_outlook(&mut self) -> Result<ServiceOutlook, ErrorCode> {
        let mut buf = [0u8; 64];
        let len = Infusion::service_outlook(&mut buf).map_err(refusal)?;
        postcard::from_bytes(buf.get(..len).unwrap_or_default()).map_err(|_| ErrorCode::BadPayload)
    }
}

fn write_link(bytes: &[u8]) {
    if !bytes.is_empty() {
        let _ = Link::<TockSyscalls>::write(bytes);
    }
}

fn main() {
    let Ok(clock) = Clock::<TockSyscalls>::new() else {
        return;
    };
    let utc_offset_ms = Cell::new(UTC_AT_BOOT_MS);
    let utc = || utc_offset_ms.get().wrapping_add(clock.now_ms());

    // The link's output buffer lives in `main`'s frame (the apps' layout
    // gives the stack RAM only); the log is in the board's log region.
    let mut out = [0u8; LINK_OUT_LEN];
    let geometry = Region::geometry().unwrap_or((0, 0));
    let mut core = TelemetryCore::new(FlashLog { geometry });
    if !core.log().is_usable() {
        let _ = Console::write(b"telemetry: no log region, events are not kept\n");
    }
    let capsule = RefCell::new(Capsule {
        forward: [0; DRAIN_BUF_LEN],
        forward_len: 0,
        utc_offset_ms: &utc_offset_ms,
        monotonic_ms: 0,
    });
    let events_waiting = Cell::new(true);
    let timer = TimerFlag::default();
    let listener = InfusionListener(|event| {
        if let Event::EventsAvailable { .. } | Event::RelayAnswered = event {
            events_waiting.set(true);
        }
    });

    // On every wake-up: the dosing app's verdict on a relayed request (one
    // command 25) goes to the host; then the capsule's events are drained
    // into the log and forwarded live.
    let service = |core: &mut TelemetryCore<FlashLog>| {
        {
            let mut answer = [0u8; SIMPLE_RESPONSE_ROOM];
            let mut output = SliceOutput::new(&mut answer[..]);
            if core.service_relay(&mut *capsule.borrow_mut(), &mut output, utc()) {
                write_link(output.written());
            }
        }
        if !(events_waiting.replace(false) | timer.take()) {
            return;
        }
        for _ in 0..8 {
            let mut capsule = capsule.borrow_mut();
            let report = core.drain_capsule(&mut *capsule, utc());
            write_link(&capsule.forward[..capsule.forward_len]);
            capsule.forward_len = 0;
            match report {
                Ok(report) if report.pending > 0 => continue,
                _ => break,
            }
        }
        let _ = WakeTimer::<TockSyscalls>::arm(clock.ticks_for(POLL_MS));
    };

    let _ = Console::write(b"telemetry: started, host link on this UART\n");
    share::scope::<
        (
            Subscriptions<'_, TockSyscalls>,
            Subscribe<'_, TockSyscalls, ALARM_DRIVER_NUM, 0>,
        ),
        _,
        _,
    >(|handle| {
        let (infusion, alarm) = handle.split();
        if Infusion::subscribe_all(&listener, infusion).is_err() {
            let _ = Console::write(b"telemetry: infusion capsule missing\n");
            return;
        }
        let _ = WakeTimer::<TockSyscalls>::subscribe(&timer, alarm);
        let _ = WakeTimer::<TockSyscalls>::arm(clock.ticks_for(POLL_MS));
        loop {
            // One byte from the host; events are served while waiting.
            let mut byte = [0u8; 1];
            let read_done: Cell<Option<(u32, u32)>> = Cell::new(None);
            let started = share::scope::<
                (
                    AllowRw<'_, TockSyscalls, LINK_DRIVER_NUM, { link::BUFFER }>,
                    Subscribe<'_, TockSyscalls, LINK_DRIVER_NUM, { link::READ_DONE }>,
                ),
                _,
                _,
            >(|handle| {
                let (buffer, done) = handle.split();
                TockSyscalls::allow_rw::<DefaultConfig, LINK_DRIVER_NUM, { link::BUFFER }>(
                    buffer, &mut byte,
                )?;
                TockSyscalls::subscribe::<_, _, DefaultConfig, LINK_DRIVER_NUM, { link::READ_DONE }>(
                    done, &read_done,
                )?;
                TockSyscalls::command(LINK_DRIVER_NUM, link::READ, 1, 0).to_result::<(), _>()?;
                loop {
                    service(&mut core);
                    if read_done.get().is_some() {
                        return Ok::<(), libtock_platform::ErrorCode>(());
                    }
                    TockSyscalls::yield_wait();
                }
            });
            if started.is_err() {
                // No console input: just serve the capsule.
                service(&mut core);
                TockSyscalls::yield_wait();
                continue;
            }
            if read_done
                .get()
                .is_some_and(|(status, len)| status == 0 && len == 1)
            {
                let mut output = SliceOutput::new(&mut out[..]);
                let mut capsule = capsule.borrow_mut();
                capsule.monotonic_ms = clock.now_ms();
                // One byte always fits: the core waits for room only at a
                // frame delimiter, and `out` is empty here.
                let _ = core.service_link(&byte, &mut *capsule, &mut output, utc());
                write_link(output.written());
                if byte[0] == 0 {
                    // A frame ended; a command may have made events.
                    events_waiting.set(true);
                }
            }
        }
    });
}
