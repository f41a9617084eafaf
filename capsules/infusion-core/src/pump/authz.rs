//! Authorization: which role may call what, and the audit of refusals.

use pump_protocol::{AccessDenied, ErrorCode};

use super::commands::CommandResult;
use super::infusion::InfusionCore;
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
