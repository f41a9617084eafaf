"""Tests of boards/stack-depth.py on hand-written disassembly.

    python3 -m unittest discover -s boards -p 'test_*.py'

The stack check is a CI gate that must never give less than an app can
use; these cases pin what it reads as a call, what it refuses to bound, and
how it adds frames up, without needing the firmware toolchain.
"""

import importlib.util
import pathlib
import unittest

_spec = importlib.util.spec_from_file_location(
    "stack_depth", pathlib.Path(__file__).with_name("stack-depth.py"))
sd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sd)


def disassembly(functions):
    """llvm-objdump text for {(address, name): [(address, op, args)]}."""
    out = []
    for (addr, name), insns in functions.items():
        out.append(f"{addr:08x} <{name}>:")
        for a, op, args in insns:
            out.append(f"{a:08x}:      \t{op}\t{args}".rstrip())
        out.append("")
    return "\n".join(out)


def no_words(_addr):
    return None


def run(functions, sizes, read=no_words, exception_frame_b=0):
    """Each function the compiler sized gets the prologue that matches."""
    functions = {
        (addr, name): ([(addr, "addi", f"sp, sp, -{sizes[name]}")] if sizes.get(name) else []) + insns
        for (addr, name), insns in functions.items()
    }
    calls, indirect, sp_drop = sd.parse_disassembly(disassembly(functions), read)
    return sd.analyze(sizes, calls, indirect, sp_drop, exception_frame_b)


class ChainTests(unittest.TestCase):
    def test_frames_add_up_along_the_deepest_chain_plus_the_deepest_handler(self):
        r = run({
            (0x100, "start"): [(0x100, "jal", "0x200 <main>")],
            (0x200, "main"): [(0x200, "jal", "0x300 <deep>"), (0x204, "jal", "0x400 <shallow>")],
            (0x300, "deep"): [(0x300, "ret", "")],
            (0x400, "shallow"): [(0x400, "ret", "")],
            (0x500, "kernel_upcall_handler"): [(0x500, "ret", "")],
        }, {"start": 0, "main": 100, "deep": 50, "shallow": 10, "kernel_upcall_handler": 7})
        self.assertEqual(r["worst"], 100 + 50 + 7)
        self.assertEqual([name for _, name, _ in r["chain"]], ["start", "main", "deep"])
        self.assertEqual(r["handler"], "kernel_upcall_handler")

    def test_the_cortex_m_exception_frame_is_added(self):
        r = run({(0x100, "start"): [(0x100, "bx", "lr")]}, {"start": 8}, exception_frame_b=36)
        self.assertEqual(r["worst"], 8 + 36)

    def test_recursion_has_no_bound(self):
        with self.assertRaisesRegex(sd.Unbounded, "recursion"):
            run({
                (0x100, "start"): [(0x100, "jal", "0x200 <a>")],
                (0x200, "a"): [(0x200, "jal", "0x300 <b>")],
                (0x300, "b"): [(0x300, "jal", "0x200 <a>")],
            }, {"start": 0, "a": 8, "b": 8})

    def test_a_function_calling_itself_is_recursion(self):
        with self.assertRaisesRegex(sd.Unbounded, "recursion"):
            run({
                (0x100, "start"): [(0x100, "jal", "0x200 <a>")],
                (0x200, "a"): [(0x204, "jal", "0x200 <a>")],
            }, {"start": 0, "a": 16})


class EdgeTests(unittest.TestCase):
    def test_auipc_jalr_with_a_negative_offset_reaches_the_callee(self):
        # 0x80001000 + (0xfffff << 12 = -0x1000) - 0x10 = 0x80000ff0
        r = run({
            (0x80000ff0, "callee"): [(0x80000ff0, "ret", "")],
            (0x80001000, "start"): [
                (0x80001000, "auipc", "ra, 0xfffff"),
                (0x80001004, "jalr", "-0x10(ra) <wrongly_labelled>"),
            ],
        }, {"start": 4, "callee": 40})
        self.assertEqual(r["worst"], 44)
        self.assertEqual(r["indirect"], {})

    def test_the_outliners_auipc_t0_jalr_t0_t0_reaches_the_callee(self):
        # objdump prints `jalr t0, t0` (offset 0) without the offset.
        r = run({
            (0x1000, "start"): [
                (0x1000, "auipc", "t0, 0x1"),
                (0x1004, "jalr", "t0, t0 <OUTLINED_FUNCTION_4>"),
            ],
            (0x2000, "OUTLINED_FUNCTION_4"): [(0x2000, "jr", "t0")],
        }, {"start": 4})
        self.assertEqual(r["indirect"], {})

    def test_auipc_ra_jalr_ra_with_offset_zero_reaches_the_callee(self):
        r = run({
            (0x1000, "start"): [
                (0x1000, "auipc", "ra, 0x4"),
                (0x1004, "jalr", "ra <memcpy>"),
            ],
            (0x5000, "memcpy"): [(0x5000, "ret", "")],
        }, {"start": 4, "memcpy": 16})
        self.assertEqual(r["indirect"], {})
        self.assertEqual(r["worst"], 20)

    def test_an_auipc_register_written_since_is_a_call_through_a_pointer(self):
        r = run({
            (0x1000, "start"): [
                (0x1000, "auipc", "a1, 0x0"),
                (0x1004, "lw", "a1, 0x0(a0)"),
                (0x1008, "jalr", "0x4(a1)"),
            ],
        }, {"start": 4})
        self.assertEqual(r["indirect"], {"start": 1})

    def test_thumb_blx_through_a_literal_pool_address_reaches_the_callee(self):
        words = {0x180: 0x201}  # callee at 0x200, Thumb bit set
        r = run({
            (0x100, "start"): [
                (0x100, "ldr", "r5, [pc, #0x7c]         @ 0x180"),
                (0x102, "blx", "r5"),
            ],
            (0x200, "callee"): [(0x200, "bx", "lr")],
        }, {"start": 8, "callee": 24}, read=words.get)
        self.assertEqual(r["worst"], 32)
        self.assertEqual(r["indirect"], {})

    def test_an_outlined_bx_reaches_what_its_callers_hold_in_that_register(self):
        # The Thumb outliner's tail: `bl OUTLINED_FUNCTION_n`, whose last
        # instruction is `bx r6`, with r6 loaded from a literal pool by the
        # caller (seen in the telemetry app on the nRF52840).
        words = {0x180: 0x201}
        outlined = [(0x300, "sub.w", "r2, r7, #0x40"), (0x304, "movs", "r3, #0x4"),
                    (0x306, "str", "r4, [r7, #-64]"), (0x30a, "bx", "r6")]
        r = run({
            (0x100, "start"): [
                (0x100, "ldr", "r6, [pc, #0x7c]         @ 0x180"),
                (0x102, "bl", "0x300 <OUTLINED_FUNCTION_38> @ imm = #0x1fc"),
            ],
            (0x200, "callee"): [(0x200, "bx", "lr")],
            (0x300, "OUTLINED_FUNCTION_38"): outlined,
        }, {"start": 8, "callee": 24}, read=words.get)
        self.assertEqual(r["worst"], 32)
        self.assertEqual(r["indirect"], {})
        # A caller that does not hold r6 leaves the jump unbounded.
        r = run({
            (0x100, "start"): [
                (0x100, "ldr", "r6, [pc, #0x7c]         @ 0x180"),
                (0x102, "bl", "0x300 <OUTLINED_FUNCTION_38> @ imm = #0x1fc"),
            ],
            (0x110, "other"): [(0x110, "bl", "0x300 <OUTLINED_FUNCTION_38> @ imm = #0x1ec")],
            (0x200, "callee"): [(0x200, "bx", "lr")],
            (0x300, "OUTLINED_FUNCTION_38"): outlined,
        }, {"start": 8, "callee": 24, "other": 8}, read=words.get)
        self.assertEqual(r["indirect"], {"OUTLINED_FUNCTION_38": 1})
        # Nor does an outlined body that writes the register itself.
        r = run({
            (0x100, "start"): [
                (0x100, "ldr", "r6, [pc, #0x7c]         @ 0x180"),
                (0x102, "bl", "0x300 <OUTLINED_FUNCTION_38> @ imm = #0x1fc"),
            ],
            (0x200, "callee"): [(0x200, "bx", "lr")],
            (0x300, "OUTLINED_FUNCTION_38"): [(0x300, "mov", "r6, r0"), (0x302, "bx", "r6")],
        }, {"start": 8, "callee": 24}, read=words.get)
        self.assertEqual(r["indirect"], {"OUTLINED_FUNCTION_38": 1})

    def test_a_register_overwritten_after_the_literal_load_is_not_followed(self):
        words = {0x180: 0x201}
        r = run({
            (0x100, "start"): [
                (0x100, "ldr", "r5, [pc, #0x7c]         @ 0x180"),
                (0x102, "mov", "r5, r0"),
                (0x104, "blx", "r5"),
            ],
            (0x200, "callee"): [(0x200, "bx", "lr")],
        }, {"start": 8, "callee": 24}, read=words.get)
        self.assertEqual(r["indirect"], {"start": 1})

    def test_a_branch_to_another_function_start_is_a_tail_call(self):
        r = run({
            (0x100, "start"): [(0x100, "bne", "0x200 <tail>"), (0x102, "bx", "lr")],
            (0x200, "tail"): [(0x200, "bx", "lr")],
        }, {"start": 8, "tail": 64})
        self.assertEqual(r["worst"], 72)

    def test_a_branch_into_the_middle_of_another_function_is_not_an_edge(self):
        # Padding after a return, read as code, "branches" into a neighbour.
        calls, _, _ = sd.parse_disassembly(disassembly({
            (0x100, "start"): [(0x100, "bx", "lr"), (0x102, "bmi", "0x204 <big+0x4>")],
            (0x200, "big"): [(0x200, "push", "{r7, lr}"), (0x202, "nop", ""), (0x204, "pop", "{r7, pc}")],
        }), no_words)
        self.assertEqual(calls["start"], set())

    def test_a_call_into_the_middle_of_a_function_still_counts(self):
        r = run({
            (0x100, "start"): [(0x100, "bl", "0x204 <big+0x4>")],
            (0x200, "big"): [(0x200, "bx", "lr")],
        }, {"start": 8, "big": 4000})
        self.assertEqual(r["worst"], 4008)

    def test_a_table_jump_is_not_indirect_but_any_other_register_jump_is(self):
        table = run({
            (0x100, "start"): [
                (0x100, "add", "a5, a5, a4"),
                (0x102, "lw", "a5, 0x0(a5)"),
                (0x104, "jr", "a5"),
            ],
        }, {"start": 8})
        self.assertEqual(table["indirect"], {})
        other = run({(0x100, "start"): [(0x100, "jr", "a5")]}, {"start": 8})
        self.assertEqual(other["indirect"], {"start": 1})
        thumb = run({(0x100, "start"): [(0x100, "bx", "r12")]}, {"start": 8})
        self.assertEqual(thumb["indirect"], {"start": 1})


class FrameReaderTests(unittest.TestCase):
    def test_the_stack_pointer_drops_it_understands(self):
        self.assertEqual(sd.stack_drop("push", "{r4, r5, r6, r7, lr}"), 20)
        self.assertEqual(sd.stack_drop("push.w", "{r8, r9, r11}"), 12)
        self.assertEqual(sd.stack_drop("vpush", "{d8-d9}"), 16)
        self.assertEqual(sd.stack_drop("sub", "sp, #0x10"), 16)
        self.assertEqual(sd.stack_drop("sub.w", "sp, sp, #0x178"), 0x178)
        self.assertEqual(sd.stack_drop("str", "r8, [sp, #-4]!"), 4)
        self.assertEqual(sd.stack_drop("addi", "sp, sp, -0x20"), 32)
        self.assertEqual(sd.stack_drop("addi", "sp, sp, 0x20"), 0)
        self.assertEqual(sd.stack_drop("mv", "sp, s0"), 0)

    def test_a_stack_pointer_move_it_does_not_understand_is_unknown(self):
        self.assertIsNone(sd.stack_drop("sub", "sp, sp, a0"))
        self.assertIsNone(sd.stack_drop("add", "sp, sp, r1"))

    def test_an_unsized_routine_is_charged_from_its_instructions_or_in_full(self):
        r = run({
            (0x100, "start"): [(0x100, "jal", "0x200 <memcpy>"), (0x104, "jal", "0x300 <odd>")],
            (0x200, "memcpy"): [(0x200, "addi", "sp, sp, -0x30"), (0x204, "ret", "")],
            (0x300, "odd"): [(0x300, "sub", "sp, sp, a0"), (0x304, "ret", "")],
        }, {"start": 0})
        self.assertEqual(r["worst"], sd.UNKNOWN_FRAME_B)
        r = run({
            (0x100, "start"): [(0x100, "jal", "0x200 <memcpy>")],
            (0x200, "memcpy"): [(0x200, "addi", "sp, sp, -0x30"), (0x204, "ret", "")],
        }, {"start": 0})
        self.assertEqual(r["worst"], 0x30)

    def test_a_reader_that_gives_less_than_the_compiler_stops_the_check(self):
        calls, indirect, sp_drop = sd.parse_disassembly(
            disassembly({(0x100, "start"): [(0x100, "addi", "sp, sp, -0x10")]}), no_words)
        with self.assertRaisesRegex(sd.Unbounded, "instruction reader"):
            sd.analyze({"start": 0x40}, calls, indirect, sp_drop)


if __name__ == "__main__":
    unittest.main()
