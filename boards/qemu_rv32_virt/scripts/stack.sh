#!/bin/sh
# Worst-case stack depth of each app against the stack it reserves
# (`stack_size!`), for both boards' targets, from the call graph
# (boards/stack-depth.py). Fails if any app can need more than it reserves.
#
#   boards/qemu_rv32_virt/scripts/stack.sh
#
# Why not the kernel's figure: the QEMU board's F8 report shows the lowest
# stack pointer the kernel saw at a context switch, which misses frames that
# make no syscall (decoding a new prescription, in the dosing app), so it
# is a lower bound only.
#
# The frames come from `-Z emit-stack-sizes`, which only adds a section the
# loader ignores. The apps are built for this with their own stable
# toolchain (RUSTC_BOOTSTRAP=1 lets it take the -Z flag), so the code
# measured is the code the boards run; the build goes to its own target
# directory and is never flashed.
set -eu
. "$(dirname "$0")/common.sh"
require_upstream
llvm=$(llvm_bin)
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"

stack_dir=$out_dir/stack
# The table of the apps' .cargo/config.toml that carries their rustflags.
app_cfg='cfg(any(target_arch = "arm", target_arch = "riscv32"))'
grep -qF "[target.'$app_cfg']" "$repo_dir/apps/dosing/.cargo/config.toml" ||
    die "apps/dosing/.cargo/config.toml no longer has [target.'$app_cfg']"
mkdir -p "$stack_dir"
fail=0
echo "| app | target | stack reserved | worst case (call graph) | margin |"
echo "|---|---|---:|---:|---:|"
for target in riscv32imac-unknown-none-elf thumbv7em-none-eabi; do
    for app in dosing telemetry rogue; do
        # Any valid link address will do: frames do not depend on it. The
        # flag is added to the apps' own rustflags (cargo joins the arrays of
        # the same key), so the code is built exactly as for the boards.
        (
            export LIBTOCK_LINKER_FLASH=0x80100000 LIBTOCK_LINKER_RAM=0x80300000
            export CARGO_TARGET_DIR="$stack_dir/target" RUSTC_BOOTSTRAP=1
            "$fw_cargo" "$repo_dir/apps/$app" build --release --locked --target "$target" --quiet \
                --config "target.'$app_cfg'.rustflags = [\"-Z\", \"emit-stack-sizes\"]"
        ) || die "$app: build for $target failed"
        elf=$stack_dir/target/$target/release/$app
        reserved=$("$llvm/llvm-size" -A "$elf" | awk '$1 == ".stack" { print $2 }')
        report=$stack_dir/$app-$target.txt
        rc=0
        python3 "$repo_dir/boards/stack-depth.py" "$llvm" "$elf" >"$report" || rc=$?
        worst=$(sed -n 's/^worst case \([0-9]*\) B.*/\1/p' "$report")
        if [ "$rc" -eq 2 ] && [ "$app" = rogue ]; then
            # The test app formats with core::fmt (calls through `dyn Write`):
            # reported, not held to a bound.
            echo "| \`$app\` | $target | $reserved B | ≥ $worst B (core::fmt calls through pointers: no static bound) | – |"
            continue
        fi
        if [ "$rc" -ne 0 ]; then
            cat "$report" >&2
            die "$app ($target): no static bound on the stack depth"
        fi
        echo "| \`$app\` | $target | $reserved B | $worst B | $((reserved - worst)) B |"
        if [ "$worst" -gt "$reserved" ]; then
            echo "FAIL: $app ($target) can need $worst B of stack but reserves $reserved B:" >&2
            cat "$report" >&2
            fail=1
        fi
    done
done
echo "(deepest chains: $stack_dir/<app>-<target>.txt)"
exit $fail
