#!/bin/sh
# The firmware step of .ci/run: capsule unit tests, firmware builds, the QEMU
# end-to-end test and the size table. Runs only where the pinned upstream
# sources resolve (INFUSION_PUMP_TOCK_PATCH, see boards/fw-cargo) and the
# firmware tools are installed; otherwise it prints one SKIP line saying why
# and succeeds.
set -eu
cd "$(dirname "$0")/.."

skip() {
    echo "SKIP firmware step: $*"
    exit 0
}

if [ -z "${INFUSION_PUMP_TOCK_PATCH:-}" ]; then
    skip "INFUSION_PUMP_TOCK_PATCH is not set (it names the cargo config with the [patch] of the Tock and libtock-rs pins; docs/firmware-build.md §3)"
fi
old_ifs=$IFS
IFS=:
for file in $INFUSION_PUMP_TOCK_PATCH; do
    [ -f "$file" ] || skip "INFUSION_PUMP_TOCK_PATCH names '$file', which does not exist"
done
IFS=$old_ifs
rustup toolchain list | grep -q '^nightly-2025-05-19' || skip "toolchain nightly-2025-05-19 is not installed"
command -v elf2tab >/dev/null 2>&1 || skip "elf2tab is not installed (cargo install elf2tab --version '^0.13' --locked)"
command -v qemu-system-riscv32 >/dev/null 2>&1 || skip "qemu-system-riscv32 is not installed"

# Two runs on one tree would overwrite each other's images and QEMU capture
# (boards/qemu_rv32_virt/target/pump); the second waits for the first.
if [ -z "${INFUSION_PUMP_CI_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
    mkdir -p boards/qemu_rv32_virt/target
    INFUSION_PUMP_CI_LOCKED=1 exec flock boards/qemu_rv32_virt/target/ci.lock "$(pwd)/boards/ci.sh" "$@"
fi

host=$(rustc +1.95.0 -vV | sed -n 's/^host: //p')
step() { printf '\n--> %s\n' "$*"; }

step "capsules/infusion: unit tests on the host"
boards/fw-cargo capsules/infusion +1.95.0 test --locked --target "$host"
step "capsules/infusion: builds for both boards' targets"
for target in riscv32imac-unknown-none-elf thumbv7em-none-eabi; do
    boards/fw-cargo capsules/infusion build --locked --release --target "$target"
done
step "apps/libtock-infusion: tests against libtock-rs' fake kernel"
boards/fw-cargo apps/libtock-infusion test --locked
step "clippy -D warnings: capsule glue, API crate, apps, both boards"
boards/fw-cargo capsules/infusion +1.95.0 clippy --locked --all-targets --target "$host" -- -D warnings
boards/fw-cargo apps/libtock-infusion clippy --locked --all-targets -- -D warnings
for app in apps/dosing apps/telemetry apps/rogue; do
    # The apps' build script wants a link address; any valid one will do for
    # a check, and the result is kept apart from the e2e builds.
    LIBTOCK_LINKER_FLASH=0x80100000 LIBTOCK_LINKER_RAM=0x80300000 \
        boards/fw-cargo "$app" clippy --release --locked -- -D warnings
done
for board in boards/qemu_rv32_virt boards/nrf52840dk; do
    boards/fw-cargo "$board" clippy --release --locked -- -D warnings
done
step "boards/nrf52840dk: kernel and signed apps build (not flashed)"
boards/fw-cargo boards/nrf52840dk build --locked --release
boards/nrf52840dk/scripts/build.sh
step "boards/qemu_rv32_virt: end to end in QEMU"
boards/qemu_rv32_virt/scripts/e2e.sh
step "sizes"
boards/qemu_rv32_virt/scripts/size.sh --no-build
step "app stacks: worst case from the call graph against each app's stack_size"
boards/qemu_rv32_virt/scripts/stack.sh
