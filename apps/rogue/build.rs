fn main() {
    // LIBTOCK_PLATFORM, or LIBTOCK_LINKER_FLASH / LIBTOCK_LINKER_RAM, pick the
    // link addresses (apps are not position independent).
    libtock_build_scripts::auto_layout();
    println!("cargo:rerun-if-env-changed=ROGUE_TAG");
}
