//! The CPU self-test (SR-STS-006): known-answer checks of the integer
//! operations the dose arithmetic uses, run by the core itself every hour.
//!
//! What it is, honestly: portable Rust, not the hand-written assembly of an
//! IEC 60730 class B library. Each operand passes through
//! [`core::hint::black_box`], so the compiler cannot fold the answer at
//! build time and the CPU computes it at run time; that is a best-effort
//! hint, and the firmware's disassembly is where a reviewer confirms it
//! held. The check covers the adder (carries across every byte), the
//! subtractor, the multiplier (32 × 32 → 64 bits), the divider, shifts,
//! rotates, the logic unit and the comparator, through whichever registers
//! the compiler picks. It does not walk every register, the program
//! counter or the interrupt controller: a CPU fault there shows as a hang
//! (the board's hardware watchdog, SR-WDG-003) or as a wrong result in the
//! checks that follow (RAM, program memory, the state's CRC).

use core::hint::black_box;

/// One operation of the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Wrapping 32-bit addition.
    Add,
    /// Wrapping 32-bit subtraction.
    Sub,
    /// 32 × 32 → 64-bit multiplication.
    MulWide,
    /// 64-bit unsigned division.
    Div,
    /// 64-bit unsigned remainder.
    Rem,
    /// Left shift by `b`.
    Shl,
    /// Logical right shift by `b`.
    Shr,
    /// Rotate left by `b`.
    Rotl,
    /// `a & b`, `a | b` and `a ^ b` folded: `(a & b) ^ ((a | b) << 1) ^ !(a ^ b)`.
    Logic,
    /// `1` if `a < b` (unsigned), `2` if signed `a < b`, summed.
    Compare,
}

/// An operation with its operands and the answer it must give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vector {
    /// The operation.
    pub op: Op,
    /// First operand.
    pub a: u64,
    /// Second operand.
    pub b: u64,
    /// The answer.
    pub expected: u64,
}

const fn v(op: Op, a: u64, b: u64, expected: u64) -> Vector {
    Vector { op, a, b, expected }
}

/// The vectors the hourly check runs: each operand pattern flips every bit
/// at least once and carries across every byte boundary.
pub const VECTORS: [Vector; 16] = [
    v(Op::Add, 0x0000_0000_FFFF_FFFF, 1, 0),
    v(Op::Add, 0x5555_5555, 0xAAAA_AAAB, 0),
    v(Op::Add, 0x00FF_00FF, 0x0001_0001, 0x0100_0100),
    v(Op::Sub, 0, 1, 0xFFFF_FFFF),
    v(Op::Sub, 0x8000_0000, 0x0000_0001, 0x7FFF_FFFF),
    v(Op::MulWide, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFE_0000_0001),
    v(Op::MulWide, 0x0001_2345, 0x0006_7890, 0x0000_0007_5CCA_2ED0),
    v(Op::Div, 0xFFFF_FFFF_FFFF_FFFF, 0x1_0000_0001, 0xFFFF_FFFF),
    v(Op::Div, 86_400_000 * 250, 3_600_000, 6_000),
    v(Op::Rem, 1_000_000_007, 65_521, 1_000_000_007 % 65_521),
    v(Op::Shl, 0x8000_0001, 31, 0x4000_0000_8000_0000),
    v(Op::Shr, 0x8000_0000_0000_0000, 63, 1),
    v(Op::Rotl, 0x8000_0000_0000_0001, 1, 3),
    v(
        Op::Logic,
        0xF0F0_F0F0_F0F0_F0F0,
        0x3C3C_3C3C_3C3C_3C3C,
        logic(0xF0F0_F0F0_F0F0_F0F0, 0x3C3C_3C3C_3C3C_3C3C),
    ),
    v(Op::Compare, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 1),
    v(Op::Compare, 0xFFFF_FFFF_FFFF_FFFF, 0, 2),
];

const fn logic(a: u64, b: u64) -> u64 {
    (a & b) ^ ((a | b) << 1) ^ !(a ^ b)
}

fn compute(op: Op, a: u64, b: u64) -> u64 {
    let (a, b) = (black_box(a), black_box(b));
    match op {
        Op::Add => u64::from((a as u32).wrapping_add(b as u32)),
        Op::Sub => u64::from((a as u32).wrapping_sub(b as u32)),
        Op::MulWide => u64::from(a as u32) * u64::from(b as u32),
        Op::Div => a.checked_div(b).unwrap_or(u64::MAX),
        Op::Rem => a.checked_rem(b).unwrap_or(u64::MAX),
        Op::Shl => a.wrapping_shl(b as u32),
        Op::Shr => a.wrapping_shr(b as u32),
        Op::Rotl => a.rotate_left(b as u32),
        Op::Logic => logic(a, b),
        Op::Compare => u64::from(a < b) + 2 * u64::from((a as i64) < (b as i64)),
    }
}

/// Runs `vectors`: `Err(i)` names the first whose answer was wrong.
pub fn check_vectors(vectors: &[Vector]) -> Result<(), u32> {
    for (i, vector) in vectors.iter().enumerate() {
        if black_box(compute(vector.op, vector.a, vector.b)) != vector.expected {
            return Err(u32::try_from(i).unwrap_or(u32::MAX));
        }
    }
    Ok(())
}

/// The CPU self-test: [`VECTORS`] through [`check_vectors`].
pub fn cpu_check() -> Result<(), u32> {
    check_vectors(&VECTORS)
}
