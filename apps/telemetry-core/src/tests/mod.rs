//! Unit and property tests against a recording fake capsule (with a model
//! of the relay) and an in-memory record storage.

mod fake;
mod link_tests;
mod log_tests;
