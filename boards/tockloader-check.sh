#!/bin/sh
# Checks a board's apps with Tock's own tool, where it is installed:
# `tockloader inspect-tab` must read every TAB elf2tab wrote, and the apps
# image laid out by tbf-image.sh must be byte for byte what
# `tockloader install --flash-file` lays out for the same TABs.
#
#   boards/tockloader-check.sh <board> <arch> <app address> <apps.bin> <tab>...
#
# `pip install tockloader` (docs/firmware-build.md §4); without it the check
# is skipped with its reason.
set -eu
[ $# -ge 5 ] || { echo "usage: $0 <board> <arch> <app address> <apps.bin> <tab>..." >&2; exit 2; }
board=$1 arch=$2 address=$(($3)) image=$4
shift 4
if ! command -v tockloader >/dev/null 2>&1; then
    echo "SKIP tockloader check: tockloader not installed (pip install tockloader)"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tab in "$@"; do
    # inspect-tab asks which architecture to show; the answer comes on stdin.
    echo "$arch" | tockloader inspect-tab "$tab" >"$work/inspect.txt" 2>&1 ||
        { cat "$work/inspect.txt"; echo "FAIL tockloader inspect-tab $tab"; exit 1; }
    grep -q 'TBF version *: 2' "$work/inspect.txt" ||
        { cat "$work/inspect.txt"; echo "FAIL tockloader read no TBF in $tab"; exit 1; }
    name=$(sed -n 's/^TAB: //p' "$work/inspect.txt" | head -n 1)
    echo "  tockloader inspect-tab $(basename "$tab"): $name, TBF version 2"
done
tockloader install --flash-file "$work/flash.bin" --board "$board" --arch "$arch" \
    --app-address "$address" "$@" </dev/null >"$work/install.txt" 2>&1 ||
    { cat "$work/install.txt"; echo "FAIL tockloader install --flash-file"; exit 1; }
# The flash file starts at the board's flash base: the apps at their offset.
python3 - "$work/flash.bin" "$image" "$address" <<'PY'
import sys
flash, image, address = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), int(sys.argv[3])
base = address & 0xF0000000  # the board's flash base (0x80000000 on QEMU, 0 on the nRF)
laid = flash[address - base:address - base + len(image)]
if laid != image:
    first = next(i for i in range(min(len(laid), len(image))) if laid[i] != image[i]) if laid[:1] else 0
    sys.exit(f"FAIL apps image differs from tockloader's layout at offset {first:#x}")
print(f"  {sys.argv[2].rsplit('/', 1)[-1]}: {len(image)} bytes, identical to tockloader's layout at {address:#x}")
PY
