#!/bin/sh
# Builds the QEMU kernel and the signed apps, and lays the apps out back to
# back at the app flash address (0x80100000) in one image.
#
#   boards/qemu_rv32_virt/scripts/build-image.sh [kernel cargo features]
#
# Output in boards/qemu_rv32_virt/target/pump/: kernel.elf, apps.bin, and
# per app <name>.elf / <name>.tbf. Needs INFUSION_PUMP_TOCK_PATCH (see
# boards/fw-cargo), elf2tab 0.13 and the nightly-2025-05-19 / 1.95.0
# toolchains.
#
# Every app is linked for its own flash and RAM slot (libtock-rs apps are not
# position independent). Besides the three real apps the image carries two
# copies of rogue that must NOT run: one unsigned, one signed by a key the
# kernel does not trust.
set -eu
. "$(dirname "$0")/common.sh"
require_upstream
require_tool elf2tab "cargo install elf2tab --version '^0.13' --locked"
llvm=$(llvm_bin)

features=${1:-}
mkdir -p "$out_dir"

echo "== kernel (boards/qemu_rv32_virt${features:+, features $features})"
"$fw_cargo" "$board_dir" build --release ${features:+--features "$features"}
cp "$board_dir/target/$app_target/release/infusion-pump-qemu" "$out_dir/kernel.elf"

# name  crate  flash  ram  signing key (or - for none)  [ROGUE_TAG]
APPS=${INFUSION_PUMP_APPS:-"
dosing          apps/dosing     0x80100000 0x80300000 TEST-ONLY-app-dosing-p256.p8
telemetry       apps/telemetry  0x80110000 0x80310000 TEST-ONLY-app-telemetry-p256.p8
rogue           apps/rogue      0x80130000 0x80330000 TEST-ONLY-app-third-party-p256.p8
rogue-unsigned  apps/rogue      0x80150000 0x80350000 -                                  rogue-unsigned
rogue-badsig    apps/rogue      0x80170000 0x80370000 TEST-ONLY-untrusted-p256.p8        rogue-badsig
"}

rm -f "$out_dir/layout.tmp"
echo "$APPS" | while read -r name crate flash ram key tag; do
    [ -n "$name" ] || continue
    echo "== app $name ($crate at $flash, RAM $ram)"
    (
        export CARGO_TARGET_DIR="$out_dir/build/$name"
        export LIBTOCK_LINKER_FLASH=$flash LIBTOCK_LINKER_RAM=$ram
        if [ -n "${tag:-}" ]; then export ROGUE_TAG=$tag; else unset ROGUE_TAG; fi
        "$fw_cargo" "$repo_dir/$crate" build --release
    )
    bin=$(basename "$crate")
    elf=$out_dir/$name.elf
    cp "$out_dir/build/$name/$app_target/release/$bin" "$elf"
    # The apps' layout (apps/libtock-infusion/layout/pump_app.ld) gives the
    # stack and .bss RAM only; elf2tab counts neither in the minimum RAM by
    # itself, so --stack carries both.
    stack_hex=$("$llvm/llvm-objdump" -h "$elf" | awk '$2 == ".stack" { print $3 }')
    bss_hex=$("$llvm/llvm-objdump" -h "$elf" | awk '$2 == ".bss" { print $3 }')
    stack=$((0x${stack_hex:-0} + 0x${bss_hex:-0}))
    set -- --kernel-major 2 --kernel-minor 0 -n "$name" -o "$out_dir/$name.tab" --stack "$stack"
    if [ "$key" != "-" ]; then
        # elf2tab 0.13 needs room for the 72-byte ECDSA credential.
        set -- "$@" --minimum-footer-size 72 --ecdsa-nist-p256-private "$keys_dir/$key"
    fi
    elf2tab "$@" "$elf,rv32imac" >/dev/null
    [ -s "$out_dir/$name.tbf" ] || die "elf2tab wrote no $name.tbf"
    echo "$out_dir/$name.tbf@$flash" >>"$out_dir/layout.tmp"
done

# shellcheck disable=SC2046
"$board_dir/scripts/tbf-image.sh" "$out_dir/apps.bin" 0x80100000 $(cat "$out_dir/layout.tmp")
echo "== tockloader: the TABs read, and the image is its layout"
# shellcheck disable=SC2046
"$repo_dir/boards/tockloader-check.sh" qemu_rv32_virt rv32imac 0x80100000 "$out_dir/apps.bin" \
    $(sed 's/\.tbf@.*/.tab/' "$out_dir/layout.tmp")
rm -f "$out_dir/layout.tmp"
