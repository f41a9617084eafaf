//! Event-loop helpers for the pump's apps, over Tock's alarm driver: a
//! 64-bit monotonic millisecond clock and a one-shot wake-up timer whose
//! upcall only sets a flag, so an app can wait for "the timer or any other
//! upcall" with one `yield_wait`.

use core::cell::Cell;
use libtock_platform::share;
use libtock_platform::subscribe::{OneId, Subscribe};
use libtock_platform::{DefaultConfig, ErrorCode, Syscalls, Upcall};

/// The alarm driver.
pub const ALARM_DRIVER_NUM: u32 = 0x0;
const FREQUENCY: u32 = 1;
const TIME: u32 = 2;
const STOP: u32 = 3;
const SET_RELATIVE: u32 = 5;

/// Milliseconds from the alarm driver's wrapping 32-bit ticks. Call
/// [`now_ms`](Self::now_ms) at least once per wrap of the counter (429 s at
/// 10 MHz); the apps never sleep longer than a minute.
pub struct Clock<S: Syscalls> {
    frequency_hz: u32,
    last: Cell<u32>,
    ticks: Cell<u64>,
    _syscalls: core::marker::PhantomData<S>,
}

impl<S: Syscalls> Clock<S> {
    /// Starts at 0 ms now.
    pub fn new() -> Result<Self, ErrorCode> {
        let frequency_hz: u32 = S::command(ALARM_DRIVER_NUM, FREQUENCY, 0, 0).to_result()?;
        let now: u32 = S::command(ALARM_DRIVER_NUM, TIME, 0, 0).to_result()?;
        Ok(Self {
            frequency_hz: frequency_hz.max(1),
            last: Cell::new(now),
            ticks: Cell::new(0),
            _syscalls: core::marker::PhantomData,
        })
    }

    /// Milliseconds since [`new`](Self::new); never goes backwards.
    pub fn now_ms(&self) -> u64 {
        if let Ok(now) = S::command(ALARM_DRIVER_NUM, TIME, 0, 0).to_result::<u32, ErrorCode>() {
            let elapsed = now.wrapping_sub(self.last.get());
            self.last.set(now);
            self.ticks.set(self.ticks.get() + u64::from(elapsed));
        }
        let f = u64::from(self.frequency_hz);
        let ticks = self.ticks.get();
        (ticks / f) * 1000 + (ticks % f) * 1000 / f
    }

    /// Ticks in `ms`, rounded up, saturating at the driver's 32 bits.
    pub fn ticks_for(&self, ms: u64) -> u32 {
        let f = u64::from(self.frequency_hz);
        let ticks = (ms / 1000)
            .saturating_mul(f)
            .saturating_add(((ms % 1000) * f).div_ceil(1000));
        u32::try_from(ticks).unwrap_or(u32::MAX)
    }
}

/// Set when the wake-up timer fires.
#[derive(Default)]
pub struct TimerFlag(Cell<bool>);

impl TimerFlag {
    /// Whether the timer fired since the last call (and clears it).
    pub fn take(&self) -> bool {
        self.0.replace(false)
    }
}

impl Upcall<OneId<ALARM_DRIVER_NUM, 0>> for TimerFlag {
    fn upcall(&self, _now: u32, _reference: u32, _: u32) {
        self.0.set(true);
    }
}

/// The wake-up timer (the process's one alarm).
pub struct WakeTimer<S: Syscalls>(S);

impl<S: Syscalls> WakeTimer<S> {
    /// Routes the timer's upcall to `flag` for the life of `handle`.
    pub fn subscribe<'share>(
        flag: &'share TimerFlag,
        handle: share::Handle<Subscribe<'share, S, ALARM_DRIVER_NUM, 0>>,
    ) -> Result<(), ErrorCode> {
        S::subscribe::<OneId<ALARM_DRIVER_NUM, 0>, _, DefaultConfig, ALARM_DRIVER_NUM, 0>(
            handle, flag,
        )
    }

    /// Fires once after `ticks` (replacing any earlier setting).
    pub fn arm(ticks: u32) -> Result<(), ErrorCode> {
        let _ = S::command(ALARM_DRIVER_NUM, STOP, 0, 0);
        S::command(ALARM_DRIVER_NUM, SET_RELATIVE, ticks.max(1), 0)
            .to_result::<u32, ErrorCode>()
            .map(|_| ())
    }
}
