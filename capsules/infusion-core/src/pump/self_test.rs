//! What the core does with the outcome of a hardware self-test
//! (SR-STS-001); the tests themselves are in [`crate::selftest`].

use pump_protocol::{AlarmCode, DeliveryOutcome, SelfTestFailed};

use super::infusion::InfusionCore;
use crate::events::Event;
use crate::platform::Platform;
use crate::selftest::SelfTest;

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
}
