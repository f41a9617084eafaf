//! `pumpctl`: the infusion pump's host tool. The binary (`src/main.rs`) is a
//! thin command-line layer over these modules; the benchmark and the tests
//! use them directly.
#![forbid(unsafe_code)]

pub mod analysis;
#[cfg(feature = "fleet")]
pub mod bench;
#[cfg(feature = "fleet")]
pub mod bench_app_record;
pub mod bench_auth;
#[cfg(feature = "fleet")]
pub mod bench_fleet;
#[cfg(feature = "fleet")]
pub mod bench_flood;
pub mod board;
pub mod chart;
pub mod cmdcli;
pub mod cmdsign;
pub mod decode;
pub mod decode_signed;
pub mod druglib;
pub mod energy;
pub mod error;
pub mod flashstore;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod keys;
pub mod pairing;
pub mod report;
pub mod rx;
pub mod rx_pairing;
pub mod script;
pub mod sign;
pub mod sim;
pub mod simcmd;
pub mod simhw;
pub mod simlink;
pub mod trumpet;
pub mod units;
