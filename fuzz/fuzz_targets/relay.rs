//! See `pump_fuzz::relay` (fuzz/src/lib.rs) for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pump_fuzz::relay(data));
