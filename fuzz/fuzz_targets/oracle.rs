//! See `pump_fuzz::oracle` (fuzz/src/lib.rs) for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pump_fuzz::oracle(data));
