//! Unit and property tests against a recording fake capsule.

mod core_tests;
mod fake;
mod flush_tests;
mod lifecycle_tests;
mod patient_bolus_tests;
mod property_tests;
mod pump_state_tests;
mod record_tests;
mod relay_tests;
mod schedule_tests;
mod units_tests;
