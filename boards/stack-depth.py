#!/usr/bin/env python3
"""Worst-case stack depth of a libtock-rs app, from its call graph.

    stack-depth.py <llvm-bin-dir> <app.elf>

The app must be built with `-Z emit-stack-sizes` (as
boards/qemu_rv32_virt/scripts/stack.sh does): the frame of every function
comes from its `.stack_sizes` section, the direct calls from the
disassembly. The result is the deepest chain of frames from the entry
point, plus the deepest upcall handler (the kernel runs upcalls on the
app's stack wherever the app yields, so adding the whole of the deepest one
to the deepest chain over-approximates, never under), plus on Cortex-M the
32 B (and 4 B of alignment) the processor pushes on the app's stack at
every svc and interrupt. (On RISC-V, Tock saves an app's registers in the
kernel, not on the app's stack.)

The kernel's own figure (the QEMU board's F8 report) is the lowest stack
pointer it saw at a context switch, so it can miss the deepest frames; this
one is the figure to size the stack by.

A function the compiler gave no frame size (the precompiled
compiler-builtins: memcpy, memset, 64-bit division; the assembly entry
point) is charged what its own instructions take off the stack pointer
(pushes, `sub sp`, `addi sp, sp, -n`), all of them added up; one that
moves the stack pointer any other way is charged UNKNOWN_FRAME_B.

Upcall handlers are libtock-rs' `kernel_upcall` trampolines and any other
root of the graph but the entry point: the kernel jumps to them. Exits 1 if
the graph has a cycle (recursion has no static bound), 2 if a function
calls or jumps through a pointer (a `dyn` call, as `core::fmt` makes): those
are not followed, so the figure is then a lower bound only. Exits 3 if the instruction reader
gives less than the compiler for any function the compiler sized (the
check that the reader can be trusted for the others).
"""

import bisect
import re
import struct
import subprocess
import sys

UNKNOWN_FRAME_B = 128
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
HEADER = re.compile(r"^([0-9a-f]+) <(.+)>:$")
# Direct transfers with the target address in the instruction: calls,
# jumps and conditional branches (a branch to another function is a tail
# call). Not branches: Thumb's bit-clear/field and breakpoint instructions.
DIRECT = re.compile(r"^(jal|j|c\.j|c\.jal|c\.beqz|c\.bnez|b[a-z]*(\.w)?|cbn?z)$")
CALLS = ("jal", "c.jal", "bl")
NOT_BRANCH = ("bic", "bics", "bfc", "bfi", "bkpt", "blx", "bx")
# RISC-V calls and tail calls through `auipc rX` + `jalr/jr off(rX)`.
VIA_AUIPC = re.compile(r"^(?:[a-z0-9]+,\s*)?(-?0x[0-9a-f]+|-?\d+)\(([a-z0-9]+)\)")
# `jalr t0, t0` or `jalr ra`: the same with offset 0, which objdump prints
# without it (the machine outliner's `auipc t0` + `jalr t0, t0`, and a call
# whose target is 4 KiB-aligned from its `auipc ra`).
VIA_AUIPC_NO_OFFSET = re.compile(r"^(?:[a-z0-9]+,\s*)?([a-z0-9]+)(?:\s|$)")
# A call or jump through a register holding a computed address: not bounded
# here (but `jr` through a loaded table entry is a jump table, `jr t0` the
# return of an outlined function, and Thumb returns with `bx lr`).
INDIRECT = re.compile(r"^(c\.jalr|jalr|blx|jr|c\.jr)$")

def words(elf):
    """Reads a little-endian 32-bit word at a virtual address of an ELF32."""
    data = open(elf, "rb").read()
    shoff = struct.unpack_from("<I", data, 0x20)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    sections = []
    for i in range(shnum):
        _, kind, _, addr, offset, size = struct.unpack_from("<IIIIII", data, shoff + i * shentsize)
        if kind == 1 and addr:  # PROGBITS, loaded
            sections.append((addr, offset, size))

    def read(addr):
        for base, offset, size in sections:
            if base <= addr and addr + 4 <= base + size:
                return struct.unpack_from("<I", data, offset + addr - base)[0]
        return None

    return read


def parse_stack_sizes(text):
    """Frame size of each function, from `llvm-readobj --stack-sizes`."""
    sizes = {}
    names = None
    for line in text.splitlines():
        m = re.match(r"\s*Functions: \[(.*)\]", line)
        if m:
            names = [n.strip() for n in m.group(1).split(",")]
            continue
        m = re.match(r"\s*Size: 0x([0-9A-Fa-f]+)", line)
        if m and names is not None:
            for name in names:
                sizes[name] = int(m.group(1), 16)
            names = None
    return sizes


def frames(llvm, elf):
    return parse_stack_sizes(subprocess.run(
        [f"{llvm}/llvm-readobj", "--stack-sizes", elf],
        check=True, capture_output=True, text=True,
    ).stdout)


NO_WRITE = ("str", "cmp", "cmn", "tst", "teq", "b", "push", "it", "nop", "dmb",
            "dsb", "isb", "svc", "bkpt", "udf", "cbz", "cbnz", "tb")
TWO_WRITES = ("ldrd", "umull", "smull", "umlal", "smlal")


def track_thumb_registers(op, args, held, read):
    """Which registers hold a function's address after this instruction.

    Only a literal load (`ldr rN, [pc, ..] @ 0xADDR`) sets one; any other
    write to the register forgets it, and so does a call for r0-r3, r12.
    Address order stands in for control flow, which is how LLVM emits these
    loads (once, before the calls that use them).
    """
    regs = [r.strip() for r in args.split(",")]
    if op in ("bl", "blx"):
        for r in ("r0", "r1", "r2", "r3", "r12", "lr"):
            held.pop(r, None)
        return
    if op.startswith(("pop", "ldm")):
        for r in re.findall(r"\b(r\d+|lr)\b", args.split("{", 1)[-1]):
            held.pop(r, None)
        return
    if op.startswith(NO_WRITE) and not op.startswith(("bic", "bfc", "bfi")):
        return
    dest = regs[:2] if op.startswith(TWO_WRITES) else regs[:1]
    for r in dest:
        held.pop(r, None)
    m = re.match(r"ldr(\.w)?$", op)
    lit = re.search(r"\[pc, #-?0x[0-9a-f]+\]\s+@ 0x([0-9a-f]+)", args)
    if m and lit and dest:
        value = read(int(lit.group(1), 16))
        if value is not None and value & 1:
            held[dest[0]] = value & ~1


def stack_drop(op, args):
    """Bytes this instruction takes off the stack pointer: 0 if it does
    not lower it, None if it moves it in a way not understood here."""
    regs = [r.strip() for r in args.split(",")]
    if op in ("push", "push.w", "vpush"):
        count = 0
        for item in re.findall(r"[a-z]+\d*(?:-[a-z]+\d+)?", args.split("{", 1)[-1]):
            lo, _, hi = item.partition("-")
            count += int(hi[1:]) - int(lo[1:]) + 1 if hi else 1
        return count * (8 if op == "vpush" else 4)
    pre = re.search(r"\[sp, #-(0x[0-9a-f]+|\d+)\]!", args)
    if pre and op.startswith("str"):
        return int(pre.group(1), 0)
    if not regs or regs[0] != "sp" or op.startswith(("st", "ld", "cmp", "b")):
        return 0
    imm = re.fullmatch(r"#?(-?0x[0-9a-f]+|-?\d+)", regs[-1])
    if op in ("sub", "sub.w", "subw") and regs[-2:-1] in (["sp"], []) and imm:
        return int(imm.group(1), 0)
    if op in ("addi", "c.addi16sp") and regs[1:2] == ["sp"] and imm:
        return max(0, -int(imm.group(1), 0))
    if op in ("add", "add.w", "addw") and regs[-2:-1] in (["sp"], []) and imm:
        return max(0, -int(imm.group(1), 0))
    # Restoring the stack pointer from the frame pointer (an epilogue).
    if op in ("mv", "mov") or (op in ("sub", "sub.w", "addi") and regs[1:2] in (["r7"], ["s0"])):
        return 0
    return None


def graph(llvm, elf):
    return parse_disassembly(subprocess.run(
        [f"{llvm}/llvm-objdump", "-d", "--no-show-raw-insn", elf],
        check=True, capture_output=True, text=True,
    ).stdout, words(elf))


def parse_disassembly(out, read):
    """The callees of each function, its calls through pointers, and what
    its instructions take off the stack pointer (None: not understood), from
    `llvm-objdump -d --no-show-raw-insn`; `read` gives a word of the image."""
    starts, targets, indirect, current, auipc, held, table = {}, {}, {}, None, {}, {}, set()
    sp_drop, branches = {}, {}
    # The Thumb outliner makes `OUTLINED_FUNCTION_n` end in `bx rN` when
    # the sequence it took ended in `blx rN`: its callers hold rN (a callee
    # loaded from a literal pool) across the `bl`. Followed after the pass.
    outlined_jump, bl_sites, outlined_writes = {}, [], {}
    for line in out.splitlines():
        m = HEADER.match(line)
        if m:
            current = m.group(2)
            starts[int(m.group(1), 16)] = current
            targets.setdefault(current, set())
            branches.setdefault(current, set())
            sp_drop[current] = 0
            auipc, held, table = {}, {}, set()
            continue
        m = INSN.match(line)
        if current is None or not m:
            continue
        addr, op, args = int(m.group(1), 16), m.group(2), m.group(3)
        if current.startswith("OUTLINED_FUNCTION") and args and not op.startswith(NO_WRITE):
            outlined_writes.setdefault(current, set()).add(args.split(",")[0].strip())
        drop = stack_drop(op, args)
        if drop is None or sp_drop.get(current) is None:
            sp_drop[current] = None
        else:
            sp_drop[current] += drop
        # Thumb at -Oz keeps a callee's address in a register, loaded from a
        # literal pool, and calls it with `blx rN` many times: follow it.
        if op == "blx" and args.strip() in held:
            targets[current].add(held[args.strip()])
            track_thumb_registers(op, args, held, read)  # what the call clobbers
            continue
        # Thumb jumps through a register (`bx rN`, `mov pc`, `ldr pc`): an
        # indirect tail call; jump tables are `tbb`/`tbh`.
        if (op.startswith("bx") and args.strip() != "lr") or (
                re.match(r"(mov|ldr)", op) and args.split(",")[0].strip() == "pc"):
            indirect[current] = indirect.get(current, 0) + 1
            if op == "bx" and current.startswith("OUTLINED_FUNCTION"):
                outlined_jump.setdefault(current, []).append(args.strip())
            continue
        if op == "bl":
            t = re.search(r"(?:^|[ ,])0x([0-9a-f]+)(?:\s|$)", args)
            if t:
                bl_sites.append((current, int(t.group(1), 16), dict(held)))
        # RISC-V: `jr rX` is a jump table only if rX was loaded from a
        # table entry (`add rY, rI, rB` then `lw rX, 0x0(rY)`).
        m = re.match(r"(\w+), 0x0\((\w+)\)$", args)
        dst = args.split(",")[0].strip()
        if op == "lw" and m and ("add", m.group(2)) in table:
            table.add(("jt", dst))
        elif args and op != "jr":
            table -= {("jt", dst), ("add", dst)}
            if op == "add":
                table.add(("add", dst))
        track_thumb_registers(op, args, held, read)
        if op not in ("auipc", "jalr", "jr") and args:
            auipc.pop(args.split(",")[0].strip(), None)  # overwritten
        if op == "auipc":
            reg, imm = [a.strip() for a in args.split(",")[:2]]
            auipc[reg] = (addr + ((int(imm, 16) << 12) - (1 << 32 if int(imm, 16) & 0x80000 else 0))) & 0xFFFFFFFF
            continue
        if DIRECT.match(op) and not op.startswith(NOT_BRANCH):
            t = re.search(r"(?:^|[ ,])0x([0-9a-f]+)(?:\s|$)", args)
            if t:
                target = int(t.group(1), 16)
                if op in CALLS:
                    targets[current].add(target)
                else:
                    branches[current].add(target)
            continue
        if op in ("jalr", "jr"):
            v = VIA_AUIPC.match(args)
            if v and v.group(2) in auipc:
                targets[current].add((auipc[v.group(2)] + int(v.group(1), 0)) & 0xFFFFFFFF)
                continue
            v = VIA_AUIPC_NO_OFFSET.match(args)
            if v and v.group(1) in auipc:
                targets[current].add(auipc[v.group(1)])
                continue
            if op == "jr" and (("jt", args.strip()) in table or args.strip() == "t0"
                               and current.startswith("OUTLINED_FUNCTION")):
                continue
        if INDIRECT.match(op):
            indirect[current] = indirect.get(current, 0) + 1
    # An outlined `bx rN` reaches what each caller held in rN; counted as
    # the caller's call (the outlined code moves no stack pointer). It stays
    # indirect unless every caller and every such jump resolves, and only
    # when the outlined code keeps rN as it came (it writes no rN).
    for name, regs in outlined_jump.items():
        start = next((a for a, n in starts.items() if n == name), None)
        sites = [(c, h) for c, t, h in bl_sites if t == start]
        if not sites or sp_drop.get(name) != 0:
            continue
        if any(r in outlined_writes.get(name, ()) for r in regs):
            continue
        if all(all(r in h for r in regs) for _, h in sites):
            for caller, h in sites:
                for r in regs:
                    targets[caller].add(h[r])
            indirect[name] -= len(regs)
            if indirect[name] == 0:
                del indirect[name]
    # A call's target, to the function that holds it. A branch or jump
    # leaves its function only to another function's first instruction (a
    # tail call); one into the middle of another is bytes after the last
    # instruction (padding, a literal pool) read as code.
    bounds = sorted(starts)

    def owner(a):
        i = bisect.bisect_right(bounds, a) - 1
        return starts[bounds[i]] if i >= 0 else None

    calls = {}
    for name, ts in targets.items():
        tails = {starts[t] for t in branches[name] if t in starts}
        tails.discard(name)  # a jump back to its own start is a loop
        calls[name] = ({owner(t) for t in ts} | tails) - {None}
    return calls, indirect, sp_drop


class Unbounded(Exception):
    """The graph gives no bound: recursion, or a reader that undercounts."""


def analyze(sizes, calls, indirect, sp_drop, exception_frame_b=0):
    """The worst case: a dict with `worst` (B), `from_entry`, `entry`,
    `handler`, `handler_depth`, `chain` [(frame B, name, from instructions)]
    and `indirect` {name: count}. Raises Unbounded."""
    sizes, unsized = dict(sizes), set()
    # The instruction reader must never give less than the compiler where
    # both know a frame: checked on every function, every run.
    short = [n for n, d in sp_drop.items() if n in sizes and d is not None and d < sizes[n]]
    if short:
        raise Unbounded("the instruction reader gives less than the compiler for: "
                        + ", ".join(f"{n} ({sp_drop[n]} < {sizes[n]} B)" for n in short))
    for name, drop in sp_drop.items():
        if name in sizes and drop is not None:
            sizes[name] = max(sizes[name], drop)
        if name not in sizes:
            sizes[name] = UNKNOWN_FRAME_B if drop is None else drop
            unsized.add(name)
    depth, best_callee, state = {}, {}, {}

    def visit(name, trail):
        if state.get(name) == "done":
            return depth[name]
        if state.get(name) == "open":
            raise Unbounded(f"recursion through {' -> '.join(trail + [name])}")
        state[name] = "open"
        deepest, via = 0, None
        for callee in sorted(calls.get(name, ())):
            d = visit(callee, trail + [name])
            if d > deepest:
                deepest, via = d, callee
        depth[name] = sizes.get(name, UNKNOWN_FRAME_B) + deepest
        best_callee[name] = via
        state[name] = "done"
        return depth[name]

    called = set().union(*calls.values())
    roots = sorted(n for n in calls if n not in called)
    if not roots:
        raise Unbounded("no entry point: every function is called (recursion)")
    entry = "start" if "start" in calls else roots[0]
    for root in roots:
        visit(root, [])
    # libtock-rs' upcall trampolines are handlers even where some branch
    # of the graph reaches them too.
    for name in calls:
        if "kernel_upcall" in name:
            visit(name, [])
    handlers = [
        r for r in calls
        if r in depth and r != entry and (r in roots or "kernel_upcall" in r) and depth[r] > 0
    ]
    handler = max(handlers, key=lambda r: depth[r], default=None)
    handler_depth = depth[handler] if handler else 0
    chain, name = [], entry
    while name is not None:
        chain.append((sizes.get(name, UNKNOWN_FRAME_B), name, name in unsized))
        name = best_callee.get(name)
    return {
        "worst": depth[entry] + handler_depth + exception_frame_b,
        "from_entry": depth[entry],
        "entry": entry,
        "handler": handler,
        "handler_depth": handler_depth,
        "chain": chain,
        "indirect": dict(indirect),
    }


def main():
    llvm, elf = sys.argv[1], sys.argv[2]
    # Cortex-M stacks 8 words (+4 B alignment) on the app stack at every
    # svc and interrupt, below whatever frame is deepest.
    exc = 36 if open(elf, "rb").read(20)[18] == 40 else 0  # EM_ARM
    try:
        r = analyze(frames(llvm, elf), *graph(llvm, elf), exception_frame_b=exc)
    except Unbounded as e:
        print(f"stack-depth: {e}")
        sys.exit(3 if str(e).startswith("the instruction reader") else 1)
    print(f"worst case {r['worst']} B: "
          f"{r['from_entry']} B from {r['entry']}, plus {r['handler_depth']} B for the deepest upcall handler"
          + (f" ({r['handler']})" if r["handler"] else "")
          + (f", plus {exc} B exception frame" if exc else ""))
    print("deepest chain (frame B, function):")
    for frame, name, from_instructions in r["chain"]:
        print(f"  {frame} {name}" + (" (from its instructions)" if from_instructions else ""))
    if r["indirect"]:
        print("indirect calls (not followed, so the figure above is a lower bound):")
        for name, count in r["indirect"].items():
            print(f"  {name} ({count})")
        sys.exit(2)


if __name__ == "__main__":
    main()
