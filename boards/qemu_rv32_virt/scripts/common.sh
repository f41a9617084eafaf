# Shared by the QEMU board's scripts (sourced). Finds the repository, the
# tools, and says clearly what is missing.

board_dir=$(cd "$(dirname "$0")/.." && pwd)
repo_dir=$(cd "$board_dir/../.." && pwd)
out_dir=$board_dir/target/pump
fw_cargo=$repo_dir/boards/fw-cargo
keys_dir=$repo_dir/boards/test-keys
kernel_toolchain=nightly-2025-05-19
app_target=riscv32imac-unknown-none-elf

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# Whether the machine-local [patch] config(s) for the pinned upstream trees
# resolve (docs/firmware-build.md §3). Prints why not.
upstream_available() {
    if [ -z "${INFUSION_PUMP_TOCK_PATCH:-}" ]; then
        echo "INFUSION_PUMP_TOCK_PATCH is not set (cargo config file(s) with the [patch] of the Tock and libtock-rs pins)"
        return 1
    fi
    old_ifs=$IFS
    IFS=:
    for f in $INFUSION_PUMP_TOCK_PATCH; do
        if [ ! -f "$f" ]; then
            IFS=$old_ifs
            echo "INFUSION_PUMP_TOCK_PATCH names '$f', which is not a file"
            return 1
        fi
    done
    IFS=$old_ifs
    return 0
}

require_upstream() {
    why=$(upstream_available) || die "$why"
}

# llvm-size, llvm-objdump … from the kernel toolchain's llvm-tools component.
llvm_bin() {
    sysroot=$(rustc +"$kernel_toolchain" --print sysroot 2>/dev/null) ||
        die "toolchain $kernel_toolchain is not installed"
    host=$(rustc +"$kernel_toolchain" -vV | sed -n 's/^host: //p')
    dir=$sysroot/lib/rustlib/$host/bin
    [ -x "$dir/llvm-size" ] || die "llvm-tools missing: rustup component add llvm-tools --toolchain $kernel_toolchain"
    echo "$dir"
}

require_tool() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}
