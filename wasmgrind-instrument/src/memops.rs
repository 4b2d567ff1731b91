//! Classification of the instructions that access linear memory.
//!
//! [`classify`] maps every operator that reads or writes linear memory to a [`MemOp`]:
//! its text name, the shape of its operands (which decides the rewrite) and the number
//! of bytes it touches. Operators that do not touch linear memory (including
//! `memory.size`, `memory.grow`, `data.drop` and GC array accesses, whose memarg names an
//! array type) give `None`.

use wasmparser::{MemArg, MemArgTarget, Operator};

/// A value type of a memory instruction's operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Val {
    I32 = 0,
    I64 = 1,
    F32 = 2,
    F64 = 3,
    V128 = 4,
}

/// The operand shape of a memory instruction, which decides how it is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `[addr] -> [t]`: one read.
    Load,
    /// `[addr, t] -> []`: one write.
    Store(Val),
    /// `[addr, v128] -> [v128]` (`v128.loadN_lane`): one read.
    LoadLane,
    /// `[addr, t] -> [t]`: a read and a write.
    Rmw(Val),
    /// `[addr, expected t, replacement t] -> [t]`: a read, and a write if the loaded
    /// value equals `expected & mask`.
    Cmpxchg(Val, u64),
    /// `[addr, expected t, timeout i64] -> [i32]`: a read, recorded before the wait.
    Wait(Val),
    /// `[addr, count i32] -> [i32]`: recorded as an atomic read, before the notify.
    Notify,
    /// `memory.fill [dst, value, n] -> []`: a write of `n` bytes at `dst`.
    Fill,
    /// `memory.copy [dst, src, n] -> []`: a read of `n` bytes at `src`, a write at `dst`.
    Copy,
    /// `memory.init [dst, offset, n] -> []`: a write of `n` bytes at `dst`.
    Init,
}

/// One memory instruction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemOp {
    /// Text name, as in the text format.
    pub name: &'static str,
    /// How it is rewritten.
    pub shape: Shape,
    /// Bytes accessed (0 for the bulk instructions, whose width is an operand).
    pub width: u32,
    /// Whether the access is atomic.
    pub atomic: bool,
    /// The memarg, for the instructions that have one.
    pub memarg: Option<MemArg>,
    /// The memories accessed (`memory.copy` names two).
    pub memories: [u32; 2],
    /// A trailing immediate printed after the memarg (lane or data index).
    pub extra: Option<u32>,
    /// Whether it is an atomic exchange (`*.atomic.rmw*.xchg*`).
    pub xchg: bool,
}

impl MemOp {
    /// The constant byte offset of the memarg (0 for the bulk instructions).
    pub(crate) fn offset(&self) -> u64 {
        self.memarg.map_or(0, |m| m.offset)
    }

    /// Appends the instruction as text (`i32.load offset=8`) to `out`.
    pub(crate) fn write_text(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str(self.name);
        if let Some(m) = self.memarg {
            if m.offset != 0 {
                let _ = write!(out, " offset={}", m.offset);
            }
            if m.align != m.max_align {
                let _ = write!(out, " align={}", 1u64 << m.align);
            }
        }
        if let Some(x) = self.extra {
            let _ = write!(out, " {x}");
        }
    }
}

fn mem(
    name: &'static str,
    shape: Shape,
    width: u32,
    atomic: bool,
    memarg: MemArg,
    extra: Option<u32>,
) -> Option<MemOp> {
    match memarg.target {
        MemArgTarget::Memory(m) => Some(MemOp {
            name,
            shape,
            width,
            atomic,
            memarg: Some(memarg),
            memories: [m, m],
            extra,
            xchg: matches!(shape, Shape::Rmw(_)) && name.contains(".xchg"),
        }),
        // A GC array access: not linear memory.
        MemArgTarget::Array(_) => None,
    }
}

/// Classifies `op`; `None` for every operator that does not access linear memory.
pub(crate) fn classify(op: &Operator<'_>) -> Option<MemOp> {
    use Operator as O;
    use Shape::*;
    use Val::*;
    // Plain load, plain store, atomic load, atomic store, rmw, cmpxchg.
    macro_rules! ld {
        ($n:literal, $w:literal, $m:expr) => {
            mem($n, Load, $w, false, $m, None)
        };
    }
    macro_rules! st {
        ($n:literal, $t:expr, $w:literal, $m:expr) => {
            mem($n, Store($t), $w, false, $m, None)
        };
    }
    macro_rules! ald {
        ($n:literal, $w:literal, $m:expr) => {
            mem($n, Load, $w, true, $m, None)
        };
    }
    macro_rules! ast {
        ($n:literal, $t:expr, $w:literal, $m:expr) => {
            mem($n, Store($t), $w, true, $m, None)
        };
    }
    macro_rules! rmw {
        ($n:literal, $t:expr, $w:literal, $m:expr) => {
            mem($n, Rmw($t), $w, true, $m, None)
        };
    }
    macro_rules! cx {
        ($n:literal, $t:expr, $w:literal, $mask:expr, $m:expr) => {
            mem($n, Cmpxchg($t, $mask), $w, true, $m, None)
        };
    }
    match *op {
        // MVP loads and stores.
        O::I32Load { memarg } => ld!("i32.load", 4, memarg),
        O::I64Load { memarg } => ld!("i64.load", 8, memarg),
        O::F32Load { memarg } => ld!("f32.load", 4, memarg),
        O::F64Load { memarg } => ld!("f64.load", 8, memarg),
        O::I32Load8S { memarg } => ld!("i32.load8_s", 1, memarg),
        O::I32Load8U { memarg } => ld!("i32.load8_u", 1, memarg),
        O::I32Load16S { memarg } => ld!("i32.load16_s", 2, memarg),
        O::I32Load16U { memarg } => ld!("i32.load16_u", 2, memarg),
        O::I64Load8S { memarg } => ld!("i64.load8_s", 1, memarg),
        O::I64Load8U { memarg } => ld!("i64.load8_u", 1, memarg),
        O::I64Load16S { memarg } => ld!("i64.load16_s", 2, memarg),
        O::I64Load16U { memarg } => ld!("i64.load16_u", 2, memarg),
        O::I64Load32S { memarg } => ld!("i64.load32_s", 4, memarg),
        O::I64Load32U { memarg } => ld!("i64.load32_u", 4, memarg),
        O::I32Store { memarg } => st!("i32.store", I32, 4, memarg),
        O::I64Store { memarg } => st!("i64.store", I64, 8, memarg),
        O::F32Store { memarg } => st!("f32.store", F32, 4, memarg),
        O::F64Store { memarg } => st!("f64.store", F64, 8, memarg),
        O::I32Store8 { memarg } => st!("i32.store8", I32, 1, memarg),
        O::I32Store16 { memarg } => st!("i32.store16", I32, 2, memarg),
        O::I64Store8 { memarg } => st!("i64.store8", I64, 1, memarg),
        O::I64Store16 { memarg } => st!("i64.store16", I64, 2, memarg),
        O::I64Store32 { memarg } => st!("i64.store32", I64, 4, memarg),

        // Bulk memory.
        O::MemoryFill { mem } => Some(bulk("memory.fill", Fill, [mem, mem], None)),
        O::MemoryCopy { dst_mem, src_mem } => {
            Some(bulk("memory.copy", Copy, [dst_mem, src_mem], None))
        }
        O::MemoryInit { data_index, mem } => {
            Some(bulk("memory.init", Init, [mem, mem], Some(data_index)))
        }

        // Threads: wait/notify.
        O::MemoryAtomicNotify { memarg } => {
            mem("memory.atomic.notify", Notify, 4, true, memarg, None)
        }
        O::MemoryAtomicWait32 { memarg } => {
            mem("memory.atomic.wait32", Wait(I32), 4, true, memarg, None)
        }
        O::MemoryAtomicWait64 { memarg } => {
            mem("memory.atomic.wait64", Wait(I64), 8, true, memarg, None)
        }

        // Threads: atomic loads and stores.
        O::I32AtomicLoad { memarg } => ald!("i32.atomic.load", 4, memarg),
        O::I64AtomicLoad { memarg } => ald!("i64.atomic.load", 8, memarg),
        O::I32AtomicLoad8U { memarg } => ald!("i32.atomic.load8_u", 1, memarg),
        O::I32AtomicLoad16U { memarg } => ald!("i32.atomic.load16_u", 2, memarg),
        O::I64AtomicLoad8U { memarg } => ald!("i64.atomic.load8_u", 1, memarg),
        O::I64AtomicLoad16U { memarg } => ald!("i64.atomic.load16_u", 2, memarg),
        O::I64AtomicLoad32U { memarg } => ald!("i64.atomic.load32_u", 4, memarg),
        O::I32AtomicStore { memarg } => ast!("i32.atomic.store", I32, 4, memarg),
        O::I64AtomicStore { memarg } => ast!("i64.atomic.store", I64, 8, memarg),
        O::I32AtomicStore8 { memarg } => ast!("i32.atomic.store8", I32, 1, memarg),
        O::I32AtomicStore16 { memarg } => ast!("i32.atomic.store16", I32, 2, memarg),
        O::I64AtomicStore8 { memarg } => ast!("i64.atomic.store8", I64, 1, memarg),
        O::I64AtomicStore16 { memarg } => ast!("i64.atomic.store16", I64, 2, memarg),
        O::I64AtomicStore32 { memarg } => ast!("i64.atomic.store32", I64, 4, memarg),

        // Threads: read-modify-write.
        O::I32AtomicRmwAdd { memarg } => rmw!("i32.atomic.rmw.add", I32, 4, memarg),
        O::I64AtomicRmwAdd { memarg } => rmw!("i64.atomic.rmw.add", I64, 8, memarg),
        O::I32AtomicRmw8AddU { memarg } => rmw!("i32.atomic.rmw8.add_u", I32, 1, memarg),
        O::I32AtomicRmw16AddU { memarg } => rmw!("i32.atomic.rmw16.add_u", I32, 2, memarg),
        O::I64AtomicRmw8AddU { memarg } => rmw!("i64.atomic.rmw8.add_u", I64, 1, memarg),
        O::I64AtomicRmw16AddU { memarg } => rmw!("i64.atomic.rmw16.add_u", I64, 2, memarg),
        O::I64AtomicRmw32AddU { memarg } => rmw!("i64.atomic.rmw32.add_u", I64, 4, memarg),
        O::I32AtomicRmwSub { memarg } => rmw!("i32.atomic.rmw.sub", I32, 4, memarg),
        O::I64AtomicRmwSub { memarg } => rmw!("i64.atomic.rmw.sub", I64, 8, memarg),
        O::I32AtomicRmw8SubU { memarg } => rmw!("i32.atomic.rmw8.sub_u", I32, 1, memarg),
        O::I32AtomicRmw16SubU { memarg } => rmw!("i32.atomic.rmw16.sub_u", I32, 2, memarg),
        O::I64AtomicRmw8SubU { memarg } => rmw!("i64.atomic.rmw8.sub_u", I64, 1, memarg),
        O::I64AtomicRmw16SubU { memarg } => rmw!("i64.atomic.rmw16.sub_u", I64, 2, memarg),
        O::I64AtomicRmw32SubU { memarg } => rmw!("i64.atomic.rmw32.sub_u", I64, 4, memarg),
        O::I32AtomicRmwAnd { memarg } => rmw!("i32.atomic.rmw.and", I32, 4, memarg),
        O::I64AtomicRmwAnd { memarg } => rmw!("i64.atomic.rmw.and", I64, 8, memarg),
        O::I32AtomicRmw8AndU { memarg } => rmw!("i32.atomic.rmw8.and_u", I32, 1, memarg),
        O::I32AtomicRmw16AndU { memarg } => rmw!("i32.atomic.rmw16.and_u", I32, 2, memarg),
        O::I64AtomicRmw8AndU { memarg } => rmw!("i64.atomic.rmw8.and_u", I64, 1, memarg),
        O::I64AtomicRmw16AndU { memarg } => rmw!("i64.atomic.rmw16.and_u", I64, 2, memarg),
        O::I64AtomicRmw32AndU { memarg } => rmw!("i64.atomic.rmw32.and_u", I64, 4, memarg),
        O::I32AtomicRmwOr { memarg } => rmw!("i32.atomic.rmw.or", I32, 4, memarg),
        O::I64AtomicRmwOr { memarg } => rmw!("i64.atomic.rmw.or", I64, 8, memarg),
        O::I32AtomicRmw8OrU { memarg } => rmw!("i32.atomic.rmw8.or_u", I32, 1, memarg),
        O::I32AtomicRmw16OrU { memarg } => rmw!("i32.atomic.rmw16.or_u", I32, 2, memarg),
        O::I64AtomicRmw8OrU { memarg } => rmw!("i64.atomic.rmw8.or_u", I64, 1, memarg),
        O::I64AtomicRmw16OrU { memarg } => rmw!("i64.atomic.rmw16.or_u", I64, 2, memarg),
        O::I64AtomicRmw32OrU { memarg } => rmw!("i64.atomic.rmw32.or_u", I64, 4, memarg),
        O::I32AtomicRmwXor { memarg } => rmw!("i32.atomic.rmw.xor", I32, 4, memarg),
        O::I64AtomicRmwXor { memarg } => rmw!("i64.atomic.rmw.xor", I64, 8, memarg),
        O::I32AtomicRmw8XorU { memarg } => rmw!("i32.atomic.rmw8.xor_u", I32, 1, memarg),
        O::I32AtomicRmw16XorU { memarg } => rmw!("i32.atomic.rmw16.xor_u", I32, 2, memarg),
        O::I64AtomicRmw8XorU { memarg } => rmw!("i64.atomic.rmw8.xor_u", I64, 1, memarg),
        O::I64AtomicRmw16XorU { memarg } => rmw!("i64.atomic.rmw16.xor_u", I64, 2, memarg),
        O::I64AtomicRmw32XorU { memarg } => rmw!("i64.atomic.rmw32.xor_u", I64, 4, memarg),
        O::I32AtomicRmwXchg { memarg } => rmw!("i32.atomic.rmw.xchg", I32, 4, memarg),
        O::I64AtomicRmwXchg { memarg } => rmw!("i64.atomic.rmw.xchg", I64, 8, memarg),
        O::I32AtomicRmw8XchgU { memarg } => rmw!("i32.atomic.rmw8.xchg_u", I32, 1, memarg),
        O::I32AtomicRmw16XchgU { memarg } => rmw!("i32.atomic.rmw16.xchg_u", I32, 2, memarg),
        O::I64AtomicRmw8XchgU { memarg } => rmw!("i64.atomic.rmw8.xchg_u", I64, 1, memarg),
        O::I64AtomicRmw16XchgU { memarg } => rmw!("i64.atomic.rmw16.xchg_u", I64, 2, memarg),
        O::I64AtomicRmw32XchgU { memarg } => rmw!("i64.atomic.rmw32.xchg_u", I64, 4, memarg),

        // Threads: compare-exchange. The mask is what the instruction compares of `expected`.
        O::I32AtomicRmwCmpxchg { memarg } => {
            cx!(
                "i32.atomic.rmw.cmpxchg",
                I32,
                4,
                u64::from(u32::MAX),
                memarg
            )
        }
        O::I64AtomicRmwCmpxchg { memarg } => {
            cx!("i64.atomic.rmw.cmpxchg", I64, 8, u64::MAX, memarg)
        }
        O::I32AtomicRmw8CmpxchgU { memarg } => {
            cx!("i32.atomic.rmw8.cmpxchg_u", I32, 1, 0xff, memarg)
        }
        O::I32AtomicRmw16CmpxchgU { memarg } => {
            cx!("i32.atomic.rmw16.cmpxchg_u", I32, 2, 0xffff, memarg)
        }
        O::I64AtomicRmw8CmpxchgU { memarg } => {
            cx!("i64.atomic.rmw8.cmpxchg_u", I64, 1, 0xff, memarg)
        }
        O::I64AtomicRmw16CmpxchgU { memarg } => {
            cx!("i64.atomic.rmw16.cmpxchg_u", I64, 2, 0xffff, memarg)
        }
        O::I64AtomicRmw32CmpxchgU { memarg } => {
            cx!(
                "i64.atomic.rmw32.cmpxchg_u",
                I64,
                4,
                u64::from(u32::MAX),
                memarg
            )
        }

        // SIMD.
        O::V128Load { memarg } => ld!("v128.load", 16, memarg),
        O::V128Load8x8S { memarg } => ld!("v128.load8x8_s", 8, memarg),
        O::V128Load8x8U { memarg } => ld!("v128.load8x8_u", 8, memarg),
        O::V128Load16x4S { memarg } => ld!("v128.load16x4_s", 8, memarg),
        O::V128Load16x4U { memarg } => ld!("v128.load16x4_u", 8, memarg),
        O::V128Load32x2S { memarg } => ld!("v128.load32x2_s", 8, memarg),
        O::V128Load32x2U { memarg } => ld!("v128.load32x2_u", 8, memarg),
        O::V128Load8Splat { memarg } => ld!("v128.load8_splat", 1, memarg),
        O::V128Load16Splat { memarg } => ld!("v128.load16_splat", 2, memarg),
        O::V128Load32Splat { memarg } => ld!("v128.load32_splat", 4, memarg),
        O::V128Load64Splat { memarg } => ld!("v128.load64_splat", 8, memarg),
        O::V128Load32Zero { memarg } => ld!("v128.load32_zero", 4, memarg),
        O::V128Load64Zero { memarg } => ld!("v128.load64_zero", 8, memarg),
        O::V128Store { memarg } => st!("v128.store", V128, 16, memarg),
        O::V128Load8Lane { memarg, lane } => lane_op("v128.load8_lane", LoadLane, 1, memarg, lane),
        O::V128Load16Lane { memarg, lane } => {
            lane_op("v128.load16_lane", LoadLane, 2, memarg, lane)
        }
        O::V128Load32Lane { memarg, lane } => {
            lane_op("v128.load32_lane", LoadLane, 4, memarg, lane)
        }
        O::V128Load64Lane { memarg, lane } => {
            lane_op("v128.load64_lane", LoadLane, 8, memarg, lane)
        }
        O::V128Store8Lane { memarg, lane } => {
            lane_op("v128.store8_lane", Store(V128), 1, memarg, lane)
        }
        O::V128Store16Lane { memarg, lane } => {
            lane_op("v128.store16_lane", Store(V128), 2, memarg, lane)
        }
        O::V128Store32Lane { memarg, lane } => {
            lane_op("v128.store32_lane", Store(V128), 4, memarg, lane)
        }
        O::V128Store64Lane { memarg, lane } => {
            lane_op("v128.store64_lane", Store(V128), 8, memarg, lane)
        }
        _ => None,
    }
}

fn lane_op(
    name: &'static str,
    shape: Shape,
    width: u32,
    memarg: MemArg,
    lane: u8,
) -> Option<MemOp> {
    mem(name, shape, width, false, memarg, Some(u32::from(lane)))
}

fn bulk(name: &'static str, shape: Shape, memories: [u32; 2], extra: Option<u32>) -> MemOp {
    MemOp {
        name,
        shape,
        width: 0,
        atomic: false,
        memarg: None,
        memories,
        extra,
        xchg: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operator of wasmparser whose immediates name a memory, as (name, arguments).
    fn operators_with_memory_immediates() -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        macro_rules! collect {
            ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
                $(
                    let args: &'static str = stringify!($($($arg)*)?);
                    out.push((stringify!($op), args));
                )*
            };
        }
        wasmparser::for_each_operator!(collect);
        out.retain(|(_, args)| {
            args.split_whitespace()
                .any(|a| a == "memarg" || a == "mem" || a == "dst_mem" || a == "src_mem")
        });
        out
    }

    /// A guard against new wasmparser versions: every operator with a memory immediate is
    /// either classified here or deliberately left alone (it does not read or write
    /// memory contents).
    #[test]
    fn every_memory_operator_is_classified() {
        const NOT_ACCESSES: &[&str] = &["MemorySize", "MemoryGrow", "MemoryDiscard"];
        // Names of the classified operators, from the match above.
        let src = include_str!("memops.rs");
        let mut missing = Vec::new();
        for (op, _) in operators_with_memory_immediates() {
            if NOT_ACCESSES.contains(&op) {
                continue;
            }
            if !src.contains(&format!("O::{op} {{")) {
                missing.push(op);
            }
        }
        assert!(
            missing.is_empty(),
            "memory operators not classified: {missing:?}"
        );
    }

    #[test]
    fn text_includes_nondefault_memarg() {
        let m = MemArg {
            align: 0,
            max_align: 2,
            offset: 8,
            target: MemArgTarget::Memory(0),
            ordering: None,
        };
        let op = classify(&Operator::I32Load { memarg: m }).unwrap();
        let mut s = String::new();
        op.write_text(&mut s);
        assert_eq!(s, "i32.load offset=8 align=1");
        let natural = MemArg {
            align: 2,
            offset: 0,
            ..m
        };
        let op = classify(&Operator::I32Store { memarg: natural }).unwrap();
        s.clear();
        op.write_text(&mut s);
        assert_eq!(s, "i32.store");
    }

    #[test]
    fn gc_array_memargs_are_not_memory() {
        let m = MemArg {
            align: 2,
            max_align: 2,
            offset: 0,
            target: MemArgTarget::Array(3),
            ordering: None,
        };
        assert!(classify(&Operator::I32Load { memarg: m }).is_none());
    }
}
