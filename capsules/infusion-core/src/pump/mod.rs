//! The infusion core, one concern to a module; this file only declares them
//! and re-exports what the crate shows (see `docs/architecture.md`):
//!
//! | module | concern |
//! |---|---|
//! | [`auth`] | signed programmer commands: verification, counters, grants |
//! | [`authz`] | roles, the audit of refusals |
//! | [`battery`] | the battery's coulomb count, ERI and end of service |
//! | [`envelope`] | the physician's envelope and the hardware's limits |
//! | [`delivery`] | basal and bolus runs, stepping, checkpoints |
//! | [`watchdog`] | the dosing app's check-ins |
//! | [`faults`] | alarms and fault inputs |
//! | [`reservoir`] | refills and reservoir alarms |
//! | [`programming`] | prescriptions, suspend and resume, the clock |
//! | [`relay_ops`] | the relay's commands |
//! | [`infusion`] | the core's state and the queries on it |
//! | [`state`], [`watchdog_state`] | data kept across resets, the watchdog's timer |
//! | [`persist`] | what is saved, and when |
//! | [`records`] | the records kept apart, and what a reset restores from them |
//! | [`commands`] | the syscall command table |

mod auth;
mod authz;
mod battery;
mod commands;
mod delivery;
mod envelope;
mod faults;
mod infusion;
mod persist;
mod programming;
mod records;
mod relay_ops;
mod reservoir;
mod self_test;
mod state;
mod suspension;
mod watchdog;
mod watchdog_state;

pub use auth::Authenticated;
pub use battery::{BatteryEstimate, BATTERY_CHECK_INTERVAL_MS};
pub use commands::CommandResult;
pub use delivery::MAX_STEPS_PER_WAKEUP;
pub use envelope::{mean_rate_nl_per_h, MAX_BOLUS_DURATION_MS};
pub use faults::MAX_ALARM_SILENCE_MS;
pub use faults::{ResetReason, REPEATED_RESETS_ALARM_AT};
pub use infusion::InfusionCore;
pub use records::{RegionState, StoredRecords};
pub use state::{APP_RECORD_MAX_LEN, RESERVATION_STEPS, SAVED_STATE_LEN};
pub use suspension::SUSPEND_REMINDER_MS;
