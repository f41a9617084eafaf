//! `cargo bench -p pumpctl`: the same measurement as `pumpctl bench`
//! (simulated days per second for a 365-day run; decode throughput against
//! the protocol crate's `StreamDecoder` alone). Figures are in the README.

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too,
    // so keep that case short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (days, mb, patients) = if quick { (7, 2, 2) } else { (365, 64, 16) };
    let scratch = std::env::temp_dir().join(format!("pumpctl-bench-{}", std::process::id()));
    match pumpctl::bench::run(days, mb, patients, &scratch) {
        Ok(figures) => print!("{}", pumpctl::bench::table(&figures)),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
