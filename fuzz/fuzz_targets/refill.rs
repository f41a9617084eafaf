//! See `pump_fuzz::refill` (fuzz/src/lib.rs) for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pump_fuzz::refill(data));
