//! See `pump_fuzz::dosing_record` (fuzz/src/lib.rs) for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pump_fuzz::dosing_record(data));
