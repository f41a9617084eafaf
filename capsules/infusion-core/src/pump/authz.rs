//! Authorization: which role may call what, and the audit of refusals.
//!
//! An app that keeps calling what it may not (a rogue app in a loop) must
//! not push therapy events out of the queue and the log. Its first refusal
//! is an `AccessDenied`; the ones after it are counted, not queued, and go
//! out as one `AccessDeniedRepeated` when another app is refused or the
//! telemetry app drains the events (SR-ROLE-005). Cost: one RAM record; a
//! reset loses at most the count since the last drain.

use pump_protocol::{AccessDenied, AccessDeniedRepeated, ErrorCode};

use super::commands::CommandResult;
use super::infusion::InfusionCore;
use super::state::DeniedFold;
use crate::config::{AppId, Role};
use crate::events::Event;
use crate::platform::Platform;

impl<P: Platform> InfusionCore<P> {
    /// Checks that an app has one of `allowed` roles; otherwise records an
    /// audit event and refuses (SR-ROLE-001..003).
    pub(super) fn authorize(
        &mut self,
        caller: AppId,
        allowed: &[Role],
        command: u16,
        now: u64,
    ) -> Result<(), ErrorCode> {
        if allowed.contains(&self.config.role_of(caller)) {
            return Ok(());
        }
        let utc = self.utc_ms(now);
        if let Some(fold) = self.denied_fold.as_mut().filter(|f| f.app_id == caller.0) {
            if fold.count == 0 {
                fold.first_time_ms = utc;
            }
            fold.count = fold.count.saturating_add(1);
            fold.last_time_ms = utc;
            fold.last_command = command;
            return Err(ErrorCode::NotPermitted);
        }
        self.flush_denied_fold(now);
        self.denied_fold = Some(DeniedFold {
            app_id: caller.0,
            count: 0,
            first_time_ms: utc,
            last_time_ms: utc,
            last_command: command,
        });
        self.emit(
            Event::AccessDenied(AccessDenied {
                time_ms: utc,
                app_id: caller.0,
                command,
            }),
            now,
        );
        Err(ErrorCode::NotPermitted)
    }

    /// Emits the folded refusals, if any, and ends the fold: the next
    /// refusal opens a new one with its own `AccessDenied`.
    pub(super) fn flush_denied_fold(&mut self, now: u64) {
        if let Some(fold) = self.denied_fold.take().filter(|f| f.count > 0) {
            self.emit(
                Event::AccessDeniedRepeated(AccessDeniedRepeated {
                    time_ms: fold.last_time_ms,
                    first_time_ms: fold.first_time_ms,
                    app_id: fold.app_id,
                    count: fold.count,
                    last_command: fold.last_command,
                }),
                now,
            );
        }
    }

    /// A malformed buffer still gets the role check first, so an unentitled
    /// app learns nothing from the argument checks and is audited.
    pub(super) fn refuse_after_authorize(
        &mut self,
        caller: AppId,
        num: u16,
        now_ms: u64,
        roles: &[Role],
    ) -> CommandResult {
        let now = self.clock(now_ms);
        match self.authorize(caller, roles, num, now) {
            Ok(()) => CommandResult::Failure(ErrorCode::InvalidArgument),
            Err(e) => CommandResult::Failure(e),
        }
    }
}
