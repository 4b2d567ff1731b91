//! Sampling of plain memory accesses ([`InstrumentConfig::sampling`]): which code sites
//! decide, and the code that decides.
//!
//! A *site* is a function's body outside its loops, or one loop: the decision is taken
//! when the function is entered and at the start of every iteration of the loop. A site
//! exists only where plain accesses are traced directly (not in a nested loop): a loop
//! without one costs nothing. Each site has two mutable `i32` globals, which every
//! instance, and so every thread, has for itself: `skip`, the executions still to skip,
//! and `taken`, the executions sampled so far.
//!
//! [`InstrumentConfig::sampling`]: crate::InstrumentConfig::sampling

use wasm_encoder::{BlockType, InstructionSink};
use wasmparser::{FunctionBody, Operator};

use crate::memops::{classify, MemOp, Shape};
use crate::scan::Scan;

/// A site samples its first `ALWAYS` executions in a thread: after its `taken`-th sampled
/// one it skips `taken / ALWAYS` executions, none while `taken < ALWAYS`.
pub(crate) const ALWAYS: u32 = 8;

/// After its `taken`-th sampled execution a site skips `min(taken / ALWAYS, MAX_SKIP)`
/// executions: the rate falls as a site gets hot, to one execution in `MAX_SKIP + 1`.
pub(crate) const MAX_SKIP: u32 = 999;

/// Whether an access is sampled (a plain access), rather than always traced.
pub(crate) fn sampled(m: &MemOp) -> bool {
    !m.atomic
        && matches!(
            m.shape,
            Shape::Load
                | Shape::Store(_)
                | Shape::LoadLane
                | Shape::Fill
                | Shape::Init
                | Shape::Copy
        )
}

/// The sites of a module, found by a pass over its code before the rewrite (whose
/// global section, which the sites' globals extend, comes before the code).
#[derive(Default)]
pub(crate) struct Sites {
    /// For every defined function, the start of its entries in `slots`: the body's
    /// site, then one per loop in the order the loops begin.
    pub first: Vec<u32>,
    /// The site of every slot, or `u32::MAX` for none.
    pub slots: Vec<u32>,
    /// Whether the loop of every slot is split (see [`Sites::split`]).
    pub splits: Vec<bool>,
    /// Number of sites.
    pub count: u32,
    /// Index of the first site's first global: the input's globals come before them.
    pub global_base: u32,
    /// Whether the input has a global section (else the rewrite adds one).
    pub has_global_section: bool,
}

/// What a block of the pass is.
#[derive(Clone, Copy)]
struct Frame {
    /// The slot of the innermost enclosing loop, or of the body.
    slot: usize,
    /// Whether the frame is that loop's.
    is_loop: bool,
}

impl Sites {
    /// Finds the sites of the functions that `traced(func_index)` says are traced, whose
    /// plain loads and stores are traced as atomic ones if `promoted(func_index)`.
    pub(crate) fn find(
        wasm: &[u8],
        scan: &Scan,
        traced: impl Fn(u32) -> bool,
        promoted: impl Fn(u32) -> bool,
    ) -> Result<Sites, wasmparser::BinaryReaderError> {
        let mut sites = Sites::default();
        let mut used: Vec<bool> = Vec::new();
        let mut splits: Vec<bool> = Vec::new();
        let mut frames: Vec<Frame> = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            let body = match payload? {
                wasmparser::Payload::ImportSection(imports) => {
                    for import in imports.into_imports() {
                        if let wasmparser::TypeRef::Global(_) = import?.ty {
                            sites.global_base = sites.global_base.saturating_add(1);
                        }
                    }
                    continue;
                }
                wasmparser::Payload::GlobalSection(globals) => {
                    sites.has_global_section = true;
                    sites.global_base = sites.global_base.saturating_add(globals.count());
                    continue;
                }
                wasmparser::Payload::CodeSectionEntry(body) => body,
                _ => continue,
            };
            let defined = sites.first.len() as u32;
            sites.first.push(used.len() as u32);
            used.push(false);
            splits.push(false);
            let func_index = scan.func_imports.saturating_add(defined);
            if !traced(func_index) {
                continue;
            }
            let promote = promoted(func_index);
            Self::walk(&body, promote, &mut used, &mut splits, &mut frames)?;
        }
        sites.splits = splits;
        sites.slots = used
            .iter()
            .map(|&u| {
                if u {
                    sites.count += 1;
                    sites.count - 1
                } else {
                    u32::MAX
                }
            })
            .collect();
        Ok(sites)
    }

    fn walk(
        body: &FunctionBody<'_>,
        promote: bool,
        used: &mut Vec<bool>,
        splits: &mut Vec<bool>,
        frames: &mut Vec<Frame>,
    ) -> Result<(), wasmparser::BinaryReaderError> {
        frames.clear();
        frames.push(Frame {
            slot: used.len() - 1,
            is_loop: false,
        });
        // The enclosing loops of an instruction that a split copy cannot hold are not split.
        let keep_whole = |frames: &[Frame], splits: &mut [bool]| {
            for f in frames.iter().filter(|f| f.is_loop) {
                splits[f.slot] = false;
            }
        };
        let mut ops = body.get_operators_reader()?;
        while !ops.eof() {
            let op = ops.read()?;
            match op {
                Operator::Loop { .. } => {
                    // A loop with a loop inside is not split: its plain copy would run the
                    // inner loop without its decisions.
                    keep_whole(frames, splits);
                    used.push(false);
                    splits.push(true);
                    frames.push(Frame {
                        slot: used.len() - 1,
                        is_loop: true,
                    });
                }
                Operator::Block { .. } | Operator::If { .. } => {
                    let slot = frames.last().map_or(usize::MAX, |f| f.slot);
                    frames.push(Frame {
                        slot,
                        is_loop: false,
                    });
                }
                Operator::Try { .. } | Operator::TryTable { .. } => {
                    keep_whole(frames, splits);
                    let slot = frames.last().map_or(usize::MAX, |f| f.slot);
                    frames.push(Frame {
                        slot,
                        is_loop: false,
                    });
                }
                Operator::End => {
                    frames.pop();
                }
                // Instructions with labels other than `br`, `br_if` and `br_table`: the split
                // does not renumber them.
                Operator::Delegate { .. } => {
                    frames.pop();
                    keep_whole(frames, splits);
                }
                Operator::Catch { .. }
                | Operator::CatchAll
                | Operator::Rethrow { .. }
                | Operator::BrOnNull { .. }
                | Operator::BrOnNonNull { .. }
                | Operator::BrOnCast { .. }
                | Operator::BrOnCastFail { .. }
                | Operator::BrOnCastDescEq { .. }
                | Operator::BrOnCastDescEqFail { .. }
                | Operator::Resume { .. }
                | Operator::ResumeThrow { .. }
                | Operator::ResumeThrowRef { .. } => keep_whole(frames, splits),
                _ => {
                    if let Some(m) = classify(&op) {
                        let promoted = promote && matches!(m.shape, Shape::Load | Shape::Store(_));
                        if !promoted && sampled(&m) {
                            if let Some(f) = frames.last() {
                                if let Some(u) = used.get_mut(f.slot) {
                                    *u = true;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the `n`-th loop (from 1) of defined function `defined` is split: a site
    /// without a loop inside it, nor an instruction whose labels the split does not
    /// renumber. Its body is written twice, inside `if` on the iteration's decision: a copy
    /// whose plain accesses call their hooks without a check for the sampled iterations,
    /// and the original code for the others, so that an iteration that is not sampled
    /// runs no hook call at all (a call in a hot loop, even one not taken, costs the
    /// engine's code more than the check).
    pub(crate) fn split(&self, defined: u32, n: u32) -> bool {
        self.site(defined, n).is_some()
            && self
                .first
                .get(defined as usize)
                .and_then(|&f| self.splits.get(f as usize + n as usize))
                .copied()
                .unwrap_or(false)
    }

    /// The globals (`skip`, `taken`) of site `site`.
    pub(crate) fn globals(&self, site: u32) -> (u32, u32) {
        let skip = self.global_base + 2 * site;
        (skip, skip + 1)
    }

    /// The site of the body of defined function `defined` (`n == 0`) or of its `n`-th
    /// loop (from 1), if it has one.
    pub(crate) fn site(&self, defined: u32, n: u32) -> Option<u32> {
        let first = *self.first.get(defined as usize)?;
        let end = self
            .first
            .get(defined as usize + 1)
            .map_or(self.slots.len(), |&e| e as usize);
        let i = first as usize + n as usize;
        if i >= end {
            return None;
        }
        self.slots.get(i).copied().filter(|&s| s != u32::MAX)
    }
}

/// Emits the decision of a site whose globals are `skip` and `taken`: sets local `flag` to
/// 1 if this execution is sampled, else to 0. `tmp` is an `i32` local free here. Returns
/// the offset in `out` of its `if`, which is taken when the execution is skipped.
pub(crate) fn decide(out: &mut Vec<u8>, skip: u32, taken: u32, flag: u32, tmp: u32) -> usize {
    InstructionSink::new(out).global_get(skip);
    let at = out.len();
    InstructionSink::new(out)
        .if_(BlockType::Result(wasm_encoder::ValType::I32))
        // Skipped: one fewer to skip.
        .global_get(skip)
        .i32_const(1)
        .i32_sub()
        .global_set(skip)
        .i32_const(0)
        .else_()
        // Sampled: count it and set how many to skip next.
        .global_get(taken)
        .i32_const(1)
        .i32_add()
        .local_tee(tmp)
        .global_set(taken)
        .local_get(tmp)
        .i32_const(ALWAYS as i32)
        .i32_div_u()
        .local_tee(tmp)
        .i32_const(MAX_SKIP as i32)
        .local_get(tmp)
        .i32_const(MAX_SKIP as i32)
        .i32_lt_u()
        .select()
        .global_set(skip)
        .i32_const(1)
        .end()
        .local_set(flag);
    at
}
