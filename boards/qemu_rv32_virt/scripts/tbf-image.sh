#!/bin/sh
# Lays TBFs out at their flash addresses in one image for QEMU's loader.
#
#   tbf-image.sh <out.bin> <base> <app.tbf>@<addr> ...
#
# Each TBF is padded to its header's total_size; gaps are filled with TBF
# "padding apps" (a 16-byte version-2 header with no TLVs, the rest erased
# flash, 0xFF), so the kernel can walk from one app to the next by
# total_size. The result is byte for byte what `tockloader install
# --flash-file` lays out (boards/tockloader-check.sh checks it).
set -eu
[ $# -ge 3 ] || { echo "usage: $0 <out.bin> <base> <tbf>@<addr>..." >&2; exit 2; }
out=$1
base=$(($2))
shift 2

# Little-endian u32 as raw bytes.
le32() {
    v=$(($1 & 0xFFFFFFFF))
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((v & 255)) $(((v >> 8) & 255)) $(((v >> 16) & 255)) $(((v >> 24) & 255)))"
}

u32_at() { # file offset
    od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '
}

padding() { # bytes
    w0=$((2 | (16 << 16)))
    w1=$1
    le32 $w0
    le32 $w1
    le32 0
    le32 $((w0 ^ w1))
    head -c $(($1 - 16)) /dev/zero | tr '\000' '\377'
}

: >"$out"
cur=$base
for arg in "$@"; do
    file=${arg%@*}
    addr=$((${arg##*@}))
    [ -f "$file" ] || { echo "$0: no such TBF: $file" >&2; exit 1; }
    total=$(u32_at "$file" 4)
    size=$(wc -c <"$file")
    [ "$addr" -ge "$cur" ] || { printf '%s: %s at %#x overlaps the app ending at %#x\n' "$0" "$file" "$addr" "$cur" >&2; exit 1; }
    gap=$((addr - cur))
    if [ "$gap" -gt 0 ]; then
        [ "$gap" -ge 16 ] || { echo "$0: gap before $file too small for a padding header" >&2; exit 1; }
        padding "$gap" >>"$out"
    fi
    cat "$file" >>"$out"
    [ "$total" -le "$size" ] || head -c $((total - size)) /dev/zero >>"$out"
    cur=$((addr + total))
    printf '  %-40s %#x-%#x (%d bytes)\n' "$(basename "$file")" "$addr" "$cur" "$total"
done
printf '%s: %d bytes at %#x\n' "$out" "$(wc -c <"$out")" "$base"
