#!/bin/sh
# Builds the nRF52840-DK kernel and the three signed apps for it (not
# flashed: no hardware here). Output in boards/nrf52840dk/target/pump/:
# kernel.elf, kernel.bin (what upstream's Makefile would flash at 0x0),
# <app>.elf and <app>.tbf linked for the slots below, and apps.bin with the
# apps laid out from 0x40000 (for `tockloader flash --address 0x40000` or a
# J-Link loadbin).
#
#   INFUSION_PUMP_TOCK_PATCH=<patch config(s)> boards/nrf52840dk/scripts/build.sh
set -eu
. "$(dirname "$0")/../../qemu_rv32_virt/scripts/common.sh"
board_dir=$(cd "$(dirname "$0")/.." && pwd)
out_dir=$board_dir/target/pump
app_target=thumbv7em-none-eabi
require_upstream
require_tool elf2tab "cargo install elf2tab --version '^0.13' --locked"
llvm=$(llvm_bin)
mkdir -p "$out_dir"

echo "== kernel (boards/nrf52840dk)"
"$fw_cargo" "$board_dir" build --release
cp "$board_dir/target/$app_target/release/infusion-pump-nrf52840dk" "$out_dir/kernel.elf"
"$llvm/llvm-objcopy" --output-target=binary --strip-sections --strip-all --remove-section .apps \
    "$out_dir/kernel.elf" "$out_dir/kernel.bin"

# App slots: flash from 0x40000; RAM above the kernel's (about 68 KiB from
# 0x20000000).
APPS="
dosing     apps/dosing     0x00040000 0x20020000 TEST-ONLY-app-dosing-p256.p8
telemetry  apps/telemetry  0x00048000 0x20030000 TEST-ONLY-app-telemetry-p256.p8
rogue      apps/rogue      0x00058000 0x20024000 TEST-ONLY-app-third-party-p256.p8
"
rm -f "$out_dir/layout.tmp"
echo "$APPS" | while read -r name crate flash ram key; do
    [ -n "$name" ] || continue
    echo "== app $name ($crate at $flash, RAM $ram)"
    (
        export CARGO_TARGET_DIR="$out_dir/build/$name"
        export LIBTOCK_LINKER_FLASH=$flash LIBTOCK_LINKER_RAM=$ram
        "$fw_cargo" "$repo_dir/$crate" build --release --target "$app_target"
    )
    elf=$out_dir/$name.elf
    cp "$out_dir/build/$name/$app_target/release/$(basename "$crate")" "$elf"
    stack_hex=$("$llvm/llvm-objdump" -h "$elf" | awk '$2 == ".stack" { print $3 }')
    bss_hex=$("$llvm/llvm-objdump" -h "$elf" | awk '$2 == ".bss" { print $3 }')
    stack=$((0x${stack_hex:-0} + 0x${bss_hex:-0}))
    elf2tab --kernel-major 2 --kernel-minor 0 -n "$name" -o "$out_dir/$name.tab" --stack "$stack" \
        --minimum-footer-size 72 --ecdsa-nist-p256-private "$keys_dir/$key" "$elf,cortex-m4" >/dev/null
    echo "$out_dir/$name.tbf@$flash" >>"$out_dir/layout.tmp"
done
# shellcheck disable=SC2046
"$repo_dir/boards/qemu_rv32_virt/scripts/tbf-image.sh" "$out_dir/apps.bin" 0x40000 $(cat "$out_dir/layout.tmp")
echo "== tockloader: the TABs read, and the image is its layout"
# shellcheck disable=SC2046
"$repo_dir/boards/tockloader-check.sh" nrf52dk cortex-m4 0x40000 "$out_dir/apps.bin" \
    $(sed 's/\.tbf@.*/.tab/' "$out_dir/layout.tmp")
rm -f "$out_dir/layout.tmp"
