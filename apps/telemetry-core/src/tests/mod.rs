//! Unit and property tests against a recording fake capsule (with a model
//! of the relay) and an in-memory record storage.

mod fake;
mod flash_log_tests;
mod link_tests;
mod log_tests;
