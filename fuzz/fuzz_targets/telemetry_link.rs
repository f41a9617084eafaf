//! See `pump_fuzz::telemetry_link` (fuzz/src/lib.rs) for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pump_fuzz::telemetry_link(data));
