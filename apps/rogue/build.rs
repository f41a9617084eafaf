include!("../libtock-infusion/layout/build_layout.rs");

fn main() {
    // LIBTOCK_LINKER_FLASH / LIBTOCK_LINKER_RAM (or LIBTOCK_PLATFORM) pick the
    // link addresses: libtock-rs apps are not position independent.
    pump_app_layout();
    println!("cargo:rerun-if-env-changed=ROGUE_TAG");
}
