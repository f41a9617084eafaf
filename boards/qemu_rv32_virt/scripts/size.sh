#!/bin/sh
# Flash and RAM use of the QEMU kernel, of the infusion capsule's share of
# it, and of each app (llvm-size / llvm-nm), against the issue's budgets.
#
#   boards/qemu_rv32_virt/scripts/size.sh [--no-build]
#
# For both boards (QEMU rv32imac, nRF52840-DK thumbv7em); builds them first
# unless --no-build. Writes the tables to
# boards/qemu_rv32_virt/target/pump/size.md as well.
#
# The capsule's share is attributed by symbol: every text and read-only data
# symbol of the kernel ELF is charged to the crate its (demangled) name
# starts with. With LTO, code inlined into a caller counts for the caller's
# crate, and anonymous constants (.Lanon.*) are charged to nobody; the split
# is therefore approximate to a few hundred bytes.
set -eu
. "$(dirname "$0")/common.sh"
llvm=$(llvm_bin)

nrf_out=$repo_dir/boards/nrf52840dk/target/pump
if [ "${1:-}" != "--no-build" ]; then
    "$board_dir/scripts/build-image.sh" >/dev/null
    "$repo_dir/boards/nrf52840dk/scripts/build.sh" >/dev/null
fi

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
budget() { # used limit
    if [ "$1" -le "$2" ]; then echo "within ($(kib "$2"))"; else echo "**over** by $(kib $(($1 - $2))) ($(kib "$2"))"; fi
}

# table <board> <dir with kernel.elf and the apps' .elf/.tbf>
table() {
board=$1
dir=$2
kernel=$dir/kernel.elf
[ -f "$kernel" ] || die "no $kernel: build it first"

# Sums of flash symbols per group.
groups=$("$llvm/llvm-nm" --print-size --demangle --radix=d "$kernel" | awk '
    $3 ~ /^[tTrR]$/ {
        name = $4; for (i = 5; i <= NF; i++) name = name " " $i
        sub(/^(<|&|mut )+/, "", name)
        crate = name; sub(/::.*/, "", crate)
        size = $2 + 0
        if (crate == "infusion") g = "glue"
        else if (name ~ /^infusion_core::rx::signature_verifies$/) g = "ed25519"
        else if (crate ~ /^(infusion_core|pump_protocol|storage_core|postcard|heapless|serde|serde_core|crc|crc_catalog|cobs|zerocopy|hash32|byteorder)$/) g = "core"
        # infusion_core::rx::signature_verifies is the Ed25519 verifier inlined
        # into the one function that calls it: counted with the verifier.
        else if (crate ~ /^(ed25519_dalek|ed25519|curve25519_dalek|signature|subtle)$/ || name ~ /^sha2::(sha512|Sha512|block_api::Sha512)/ || name ~ /Sha512/ || name ~ /^infusion_core::rx::signature_verifies$/) g = "ed25519"
        else if (crate ~ /^(p256|ecdsa|ecdsa_sw|primeorder|elliptic_curve|crypto_bigint|der|const_oid|ff|group|sec1|rfc6979|hmac|sha2|digest|crypto_common|block_buffer|base16ct)$/) g = "p256"
        else g = "other"
        sum[g] += size
    }
    END { for (g in sum) print g, sum[g] }')
get() { echo "$groups" | awk -v g="$1" '$1 == g { print $2 }'; }
glue=$(get glue); core=$(get core); ed=$(get ed25519); p256=$(get p256)
glue=${glue:-0}; core=${core:-0}; ed=${ed:-0}; p256=${p256:-0}
capsule=$((glue + core))

set -- $("$llvm/llvm-size" "$kernel" | awk 'NR == 2 { print $1, $2, $3 }')
k_text=$1; k_data=$2; k_bss=$3
k_stack_hex=$("$llvm/llvm-objdump" -h "$kernel" | awk '$2 == ".stack" { print $3 }')
k_stack=$((0x${k_stack_hex:-0}))

{
    echo "| $board | flash | RAM | budget |"
    echo "|---|---:|---:|---|"
    storage=$("$llvm/llvm-nm" "$kernel" | awk '$3 == "_sstorage" { s = $1 } $3 == "_estorage" { e = $1 } END { if (s != "" && e != "") print "0x" e, "0x" s }')
    if [ -n "$storage" ]; then
        set -- $storage
        storage=$(($1 - $2))
    else
        storage=0
    fi
    note=""
    [ "$storage" -gt 0 ] && note=", of which $storage B the pump-state storage volume"
    echo "| kernel (all of it$note) | $k_text B ($(kib "$k_text")) | $((k_data + k_bss)) B (stack $k_stack) | – |"
    echo "| … capsule share: glue (\`capsules/infusion\`) | $glue B | | |"
    echo "| … capsule share: \`infusion-core\` + \`pump-protocol\` + \`storage-core\` + postcard/heapless/crc | $core B | | |"
    echo "| **capsule total** (without signature verification) | **$capsule B ($(kib "$capsule"))** | | ≤ 16 KiB: $(budget "$capsule" 16384) |"
    echo "| prescription signature verification (Ed25519: ed25519-dalek, curve25519-dalek, SHA-512) | $ed B ($(kib "$ed")) | | reported apart |"
    echo "| app-signature checking (kernel: ECDSA P-256, SHA-256) | $p256 B ($(kib "$p256")) | | – |"
    for app in dosing telemetry rogue; do
        elf=$dir/$app.elf
        tbf=$dir/$app.tbf
        [ -f "$elf" ] || continue
        sizes=$("$llvm/llvm-size" -A "$elf" | awk '
            $1 == ".start" || $1 == ".text" || $1 == ".rodata" { code += $2 }
            $1 == ".data" { data += $2 }
            $1 == ".bss" { bss += $2 }
            $1 == ".stack" { stack += $2 }
            END { print code + data, stack + data + bss, stack }')
        set -- $sizes
        code=$1; ram=$2; stack=$3
        tbf_size=$(wc -c <"$tbf")
        case $app in
        dosing) b="flash ≤ 24 KiB: $(budget "$tbf_size" 24576); RAM ≤ 8 KiB: $(budget "$ram" 8192)" ;;
        telemetry) b="flash ≤ 32 KiB: $(budget "$tbf_size" 32768)" ;;
        *) b="–" ;;
        esac
        echo "| app \`$app\` (TBF, signed; code+rodata $code B) | $tbf_size B ($(kib "$tbf_size")) | $ram B (stack $stack) | $b |"
    done
}
}

{
    table "QEMU \`qemu_rv32_virt\` (rv32imac)" "$out_dir"
    echo
    table "nRF52840-DK (thumbv7em; TBFs padded to a power of two by elf2tab)" "$nrf_out"
} | tee "$out_dir/size.md"
