//! What the core does with the outcome of a hardware self-test
//! (SR-STS-001), and the hourly tests it runs itself (SR-STS-005); the
//! tests themselves are in [`crate::selftest`].

use pump_protocol::{AlarmCode, DeliveryOutcome, SelfTestFailed};

use super::infusion::InfusionCore;
use crate::events::Event;
use crate::platform::Platform;
use crate::selftest::periodic::SelfTestHardware;
use crate::selftest::SelfTest;

/// Program-memory bytes one wake-up's worth of CPU checks: CRC-32C with a
/// 1 KiB table takes about 8 cycles a byte, so 4 KiB is 0.5 ms at 64 MHz,
/// the wake-up's own slice (`docs/energy.md`).
const CRC_BYTES_PER_WAKEUP: u32 = 4096;

impl<P: Platform> InfusionCore<P> {
    /// The board ran `test`: `Ok` if it passed, `Err(detail)` if not (see
    /// `SelfTestFailed.detail`). A failure stops every delivery under the
    /// latched high `SelfTestFailed` alarm and is logged; a pass logs
    /// nothing (a daily pass would cost a record write a day for no news)
    /// and lets a clinician clear the alarm once every test that failed
    /// since boot has passed again.
    pub fn on_self_test(&mut self, test: SelfTest, outcome: Result<(), u32>, now_ms: u64) {
        let now = self.clock(now_ms);
        match outcome {
            Ok(()) => self.self_tests_failed &= !test.bit(),
            Err(detail) => {
                self.self_tests_failed |= test.bit();
                self.stop_all(DeliveryOutcome::Aborted, now);
                self.raise(AlarmCode::SelfTestFailed, now);
                let utc = self.utc_ms(now);
                self.emit(
                    Event::SelfTestFailed(SelfTestFailed {
                        time_ms: utc,
                        test: test.code(),
                        detail,
                    }),
                    now,
                );
                self.emit_state(now);
                self.save();
            }
        }
        self.sync_outputs(now);
    }

    /// The hourly self-tests (SR-STS-005): the board calls this after every
    /// [`on_timer`](Self::on_timer) with its memory and second clock; when
    /// a run is due (at once on the first call, then every hour, a deadline
    /// [`next_wakeup`](Self::next_wakeup) includes from then on) the core
    /// runs the CPU check, a RAM slice, a program-memory slice and the
    /// clock comparison, and takes each outcome as
    /// [`on_self_test`](Self::on_self_test) does. `now_ms` is the system
    /// timer as read. Returns whether a run happened.
    pub fn run_self_tests<H: SelfTestHardware + ?Sized>(
        &mut self,
        hw: &mut H,
        now_ms: u64,
    ) -> bool {
        if !self.periodic.is_due(now_ms) {
            return false;
        }
        let run = self.periodic.run(hw, now_ms);
        // The CRC's CPU time, in wake-up slices (the wake-up itself was
        // counted by `on_timer`).
        for _ in 0..run.program_bytes.div_ceil(CRC_BYTES_PER_WAKEUP) {
            self.draw_wakeup();
        }
        for (test, outcome) in run.results {
            self.on_self_test(test, outcome, now_ms);
        }
        true
    }
}
