//! Unit and property tests against a recording fake capsule, an in-memory
//! record storage and a recording dosing link.

mod fake;
mod link_tests;
mod log_tests;
