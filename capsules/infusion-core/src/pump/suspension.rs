//! The reminder that therapy is still suspended (SR-ENV-013, GIP 2.2.2).
//!
//! A suspension is the clinic's act (a signed `Suspend`), for an MRI, a
//! catheter revision or an overdose; nothing ends it but a signed `Resume`.
//! For intrathecal baclofen a suspension forgotten for a day is abrupt
//! withdrawal, so after [`SUSPEND_REMINDER_MS`] the medium
//! `SuspendedTooLong` alarm sounds until the clinic resumes. It costs no
//! wake-up of its own beyond the one at its deadline, and one record write
//! when it is raised. A reset restarts the count from the restore: the
//! suspension's start is not stored (that would cost a write format), so
//! the reminder comes at most 4 h after any boot.

use pump_protocol::AlarmCode;

use super::infusion::InfusionCore;
use crate::platform::Platform;

/// How long therapy may stay suspended before the reminder sounds: long
/// enough for an MRI or a revision, far shorter than the day in which
/// baclofen withdrawal turns dangerous.
pub const SUSPEND_REMINDER_MS: u64 = 4 * 60 * 60 * 1000;

impl<P: Platform> InfusionCore<P> {
    /// Raises the reminder when it is due, clears it once therapy resumed.
    pub(super) fn check_suspension(&mut self, now: u64) {
        if !self.p.suspended {
            self.suspended_since_ms = None;
            if self.p.alarms.is_active(AlarmCode::SuspendedTooLong) {
                self.clear(AlarmCode::SuspendedTooLong, now);
                self.save();
            }
            return;
        }
        let since = *self.suspended_since_ms.get_or_insert(now);
        if now >= since.saturating_add(SUSPEND_REMINDER_MS)
            && !self.p.alarms.is_active(AlarmCode::SuspendedTooLong)
        {
            self.raise(AlarmCode::SuspendedTooLong, now);
            self.save();
        }
    }

    /// When the reminder falls due, if therapy is suspended and it has not.
    pub(super) fn suspension_reminder_due_ms(&self) -> Option<u64> {
        if !self.p.suspended || self.p.alarms.is_active(AlarmCode::SuspendedTooLong) {
            return None;
        }
        self.suspended_since_ms
            .map(|since| since.saturating_add(SUSPEND_REMINDER_MS))
    }
}
