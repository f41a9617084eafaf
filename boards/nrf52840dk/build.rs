fn main() {
    // layout.ld in this directory, tock_kernel_layout.ld from the build scripts.
    tock_build_scripts::default_linker_script();
}
