// Shared by the pump apps' build scripts (`include!`d): links the app with
// `pump_app.ld` (next to this file) at LIBTOCK_LINKER_FLASH /
// LIBTOCK_LINKER_RAM, or at the LIBTOCK_PLATFORM defaults of the two boards.
// The same variables as libtock-rs' `auto_layout`, so the scripts that build
// the images need not know the difference.

fn pump_app_layout() {
    use std::env;
    use std::path::PathBuf;

    for var in [
        "LIBTOCK_PLATFORM",
        "LIBTOCK_LINKER_FLASH",
        "LIBTOCK_LINKER_FLASH_LENGTH",
        "LIBTOCK_LINKER_RAM",
        "LIBTOCK_LINKER_RAM_LENGTH",
        "LIBTOCK_TBF_HEADER_SIZE",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let var = |name: &str| env::var(name).ok().filter(|v| !v.is_empty());
    let (flash, flash_len, ram, ram_len) = match (
        var("LIBTOCK_PLATFORM").as_deref(),
        var("LIBTOCK_LINKER_FLASH"),
        var("LIBTOCK_LINKER_RAM"),
    ) {
        (None, Some(flash), Some(ram)) => (
            flash,
            var("LIBTOCK_LINKER_FLASH_LENGTH").unwrap_or_else(|| "0x10000".into()),
            ram,
            var("LIBTOCK_LINKER_RAM_LENGTH").unwrap_or_else(|| "0x10000".into()),
        ),
        (Some("qemu_rv32_virt"), None, None) => (
            "0x80100000".into(),
            "0x10000".into(),
            "0x80300000".into(),
            "0x10000".into(),
        ),
        (Some("nrf52840"), None, None) => (
            "0x00040000".into(),
            "0x10000".into(),
            "0x20010000".into(),
            "0x10000".into(),
        ),
        _ => panic!(
            "set LIBTOCK_LINKER_FLASH and LIBTOCK_LINKER_RAM (or LIBTOCK_PLATFORM=qemu_rv32_virt|nrf52840)"
        ),
    };
    let header = var("LIBTOCK_TBF_HEADER_SIZE").unwrap_or_else(|| "0x80".into());

    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let layout_dir = here.join("../libtock-infusion/layout");
    let layout_dir = layout_dir.canonicalize().unwrap_or(layout_dir);
    println!("cargo:rerun-if-changed={}", layout_dir.join("pump_app.ld").display());
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let memory = out.join("pump_app_memory.ld");
    std::fs::write(
        &memory,
        format!(
            "TBF_HEADER_SIZE = {header};\nFLASH_START = {flash};\nFLASH_LENGTH = {flash_len};\n\
             RAM_START = {ram};\nRAM_LENGTH = {ram_len};\nINCLUDE pump_app.ld\n"
        ),
    )
    .expect("write pump_app_memory.ld");
    println!("cargo:rustc-link-arg=-T{}", memory.display());
    println!("cargo:rustc-link-search={}", layout_dir.display());
    println!("cargo:rustc-link-arg=-zmax-page-size=4096");
}
