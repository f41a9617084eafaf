//! The relay's commands (22–25): programmer requests and notices between the
//! telemetry and the dosing app, through the capsule (see [`crate::relay`]).

use pump_protocol::ErrorCode;

use super::infusion::InfusionCore;
use crate::command;
use crate::config::{AppId, Role};
use crate::platform::{Notification, Platform};
use crate::relay::{self as relay_box};

impl<P: Platform> InfusionCore<P> {
    /// Relay, command 22: the telemetry app posts a programmer request or
    /// notice for the dosing app (see [`relay`](crate::relay)). Returns the
    /// ticket (SR-REL-001).
    pub fn relay_post(
        &mut self,
        caller: AppId,
        kind_code: u32,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<u32, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::RELAY_POST, now)?;
        let kind_code = u16::try_from(kind_code).map_err(|_| ErrorCode::UnknownKind)?;
        let ticket = self.relay.post(kind_code, payload, now)?;
        self.platform.notify(Notification::RelayPosted);
        Ok(ticket)
    }

    /// Relay, command 23: the dosing app takes the oldest waiting message.
    pub fn relay_take(
        &mut self,
        caller: AppId,
        buf: &mut [u8],
        now_ms: u64,
    ) -> Result<relay_box::TakenEntry, ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::RELAY_TAKE, now)?;
        self.relay.take(buf)
    }

    /// Relay, command 24: the dosing app's verdict on a request it took
    /// (`0` accepted, else an [`ErrorCode`] code).
    pub fn relay_answer(
        &mut self,
        caller: AppId,
        ticket: u32,
        verdict_code: u32,
        now_ms: u64,
    ) -> Result<(), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Dosing], command::RELAY_ANSWER, now)?;
        let verdict =
            relay_box::verdict_from_code(verdict_code).ok_or(ErrorCode::InvalidArgument)?;
        self.relay.answer(ticket, verdict)?;
        self.platform.notify(Notification::RelayAnswered);
        Ok(())
    }

    /// Relay, command 25: the telemetry app reads the verdict on its request.
    pub fn relay_result(
        &mut self,
        caller: AppId,
        now_ms: u64,
    ) -> Result<(u32, Result<(), ErrorCode>), ErrorCode> {
        let now = self.clock(now_ms);
        self.authorize(caller, &[Role::Telemetry], command::RELAY_RESULT, now)?;
        // A request past its deadline is answered now, even if the timer
        // that would have expired it has not fired yet.
        self.relay.expire(now);
        self.relay.take_result()
    }
}
