//! A process fault policy that tells the capsule (which audits the fault as
//! an `AppFault` event and raises the medium-priority `AppFault` alarm)
//! before it restarts the app, up to a threshold.

use infusion_core::AppId;
use kernel::debug;
use kernel::process::{FaultAction, Process, ProcessFaultPolicy, ShortId};

/// Told about every app fault, before the kernel acts on it.
pub trait AppFaultObserver {
    /// `app` faulted; it has been restarted `restarts` times so far and
    /// `restarting` says whether it will be again.
    fn app_faulted(&self, app: AppId, restarts: usize, restarting: bool);
}

/// Restart a faulting app up to `threshold` times, then stop it; report
/// every fault to the observer (the infusion capsule) and the kernel log.
pub struct AuditedRestartPolicy<'a> {
    observer: &'a dyn AppFaultObserver,
    threshold: usize,
}

impl<'a> AuditedRestartPolicy<'a> {
    /// The policy.
    pub const fn new(observer: &'a dyn AppFaultObserver, threshold: usize) -> Self {
        Self {
            observer,
            threshold,
        }
    }
}

impl ProcessFaultPolicy for AuditedRestartPolicy<'_> {
    fn action(&self, process: &dyn Process) -> FaultAction {
        let restarts = process.get_restart_count();
        let restarting = restarts < self.threshold;
        let app = match process.short_app_id() {
            ShortId::Fixed(id) => AppId(id.get()),
            ShortId::LocallyUnique => AppId(0),
        };
        debug!(
            "app {} ({:#x}) faulted after {} restarts: {}",
            process.get_process_name(),
            app.0,
            restarts,
            if restarting { "restarting" } else { "stopped" }
        );
        if restarts == 0 {
            // The first fault of an app in full (registers, memory map).
            process.print_full_process(&mut DebugText);
        }
        self.observer.app_faulted(app, restarts, restarting);
        if restarting {
            FaultAction::Restart
        } else {
            FaultAction::Stop
        }
    }
}

/// `core::fmt::Write` into the kernel debug output.
struct DebugText;

impl core::fmt::Write for DebugText {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        kernel::debug::debug_print(format_args!("{}", s));
        Ok(())
    }
}
