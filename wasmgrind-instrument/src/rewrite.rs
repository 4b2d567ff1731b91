//! The rewriting pass: a [`Reencode`] implementation that renumbers functions, retypes the
//! located imports, appends the hook imports and rewrites function bodies.

use std::borrow::Cow;

use wasm_encoder::reencode::{utils, Error, Reencode};
use wasm_encoder::{
    BlockType, BranchHint, CodeSection, CustomSection, DataSection, Encode, EntityType,
    ExportSection, ImportSection, InstructionSink, Module, NameMap, NameSection, SectionId,
    TypeSection,
};
use wasmgrind_core::abi::{self, FuncSig};
use wasmgrind_core::location::Location;
use wasmparser::{
    CompositeInnerType, ExternalKind, FuncType, FunctionBody, KnownCustom, Operator,
    OperatorsReader, OperatorsReaderAllocations, Parser, TypeRef,
};

use crate::memops::{classify, MemOp, Shape, Val};
use crate::sample::{self, Sites};
use crate::scan::{EntryKind, Scan};
use crate::{InstrumentConfig, InstrumentError, INSTRUMENT_SECTION, MAX_FUNCTION_SIZE, MAX_LOCALS};

type Result<T, E = Error<InstrumentError>> = std::result::Result<T, E>;

/// Where a call comes from, for the redirection to wrappers.
#[derive(Clone, Copy)]
struct Caller {
    /// A function of the C allocator.
    c_allocator: bool,
    /// A libc synchronization function.
    libc_sync: bool,
}

/// The name-section prefix of the wrappers: `__wasmgrind_wrap_malloc`, ...
const WRAPPER_PREFIX: &str = "__wasmgrind_wrap_";

/// How a function index is used, for errors, when nothing more specific is known.
const OTHER_USE: &str = "referenced other than by a direct call";

/// Runs the pass; returns the module and the location table.
pub(crate) fn rewrite(
    wasm: &[u8],
    config: &InstrumentConfig,
    scan: Scan,
) -> Result<(Vec<u8>, Vec<Location>), InstrumentError> {
    let mut r = Rewriter::new(wasm, config, scan);
    if config.memory_tracing && config.sampling {
        let s = &r.scan;
        let sites = Sites::find(wasm, s, |f| s.traced(f), |f| s.is_libc_sync(f))
            .map_err(|e| into_error(e.into()))?;
        let globals = u64::from(sites.global_base) + 2 * u64::from(sites.count);
        if globals > crate::MAX_GLOBALS {
            return Err(InstrumentError::TooManyGlobals {
                sites: sites.count,
                globals,
            });
        }
        r.sites = Some(sites);
    }
    let mut module = Module::new();
    r.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(into_error)?;
    let mut locations = std::mem::take(&mut r.locations);
    if !r.func_names.is_empty() {
        for loc in &mut locations {
            if let Some(Some(name)) = r.func_names.get(loc.func_index as usize) {
                loc.func_name = Some(name.clone());
            }
        }
    }
    let mut wasm_out = module.finish();
    if let (false, Some(at)) = (r.hints.is_empty(), r.code_at) {
        // The hints are known once the code is written, and go before it (where the branch
        // hinting proposal puts them): the custom section's id, then its size, name and
        // contents.
        let mut section = vec![SectionId::Custom as u8];
        r.hints.encode(&mut section);
        wasm_out.splice(at..at, section);
    }
    Ok((wasm_out, locations))
}

fn into_error(e: Error<InstrumentError>) -> InstrumentError {
    match e {
        Error::UserError(e) => e,
        Error::ParseError(e) => InstrumentError::Malformed(e.to_string()),
        other => InstrumentError::Malformed(other.to_string()),
    }
}

fn user(e: InstrumentError) -> Error<InstrumentError> {
    Error::UserError(e)
}

/// A function type the pass appends to the type section.
struct NewType {
    params: Vec<abi::ValType>,
    results: &'static [abi::ValType],
}

fn enc(v: abi::ValType) -> wasm_encoder::ValType {
    match v {
        abi::ValType::I32 => wasm_encoder::ValType::I32,
        abi::ValType::I64 => wasm_encoder::ValType::I64,
    }
}

fn to_abi(types: &[wasmparser::ValType]) -> Option<Vec<abi::ValType>> {
    types
        .iter()
        .map(|t| match t {
            wasmparser::ValType::I32 => Some(abi::ValType::I32),
            wasmparser::ValType::I64 => Some(abi::ValType::I64),
            _ => None,
        })
        .collect()
}

fn show_type(name: &str, f: &FuncType) -> String {
    let list = |v: &[wasmparser::ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if f.results().is_empty() {
        format!("{name}({})", list(f.params()))
    } else {
        format!("{name}({}) -> {}", list(f.params()), list(f.results()))
    }
}

// --- instruction encoding -----------------------------------------------------------
//
// The pass copies every instruction it does not change byte for byte, and encodes the
// ones it adds with wasm-encoder's `InstructionSink`, directly into the output buffer.

/// An instruction encoder appending to `out`.
fn sink(out: &mut Vec<u8>) -> InstructionSink<'_> {
    InstructionSink::new(out)
}

/// The encoder's value type of a fresh local.
fn val_type(v: Val) -> wasm_encoder::ValType {
    match v {
        Val::I32 => wasm_encoder::ValType::I32,
        Val::I64 => wasm_encoder::ValType::I64,
        Val::F32 => wasm_encoder::ValType::F32,
        Val::F64 => wasm_encoder::ValType::F64,
        Val::V128 => wasm_encoder::ValType::V128,
    }
}

/// Where a hook's `width` argument comes from.
#[derive(Clone, Copy)]
enum Width {
    Const(u32),
    Local(u32),
}

/// Pushes the effective address `addr + offset`.
fn effective_address(s: &mut InstructionSink<'_>, addr: u32, offset: u64) {
    s.local_get(addr);
    if offset != 0 {
        // Validated 32-bit memargs have offsets below 2^32; the add wraps modulo 2^32.
        s.i32_const(offset as u32 as i32).i32_add();
    }
}

/// Emits one hook call: `hook(addr + offset, width, kind, loc)`, `kind` one of the
/// `abi::ACCESS_*` values.
fn hook(out: &mut Vec<u8>, hook: u32, addr: u32, offset: u64, width: Width, kind: i32, loc: i32) {
    let mut s = sink(out);
    effective_address(&mut s, addr, offset);
    match width {
        Width::Const(w) => s.i32_const(w as i32),
        Width::Local(l) => s.local_get(l),
    };
    s.i32_const(kind).i32_const(loc).call(hook);
}

/// A value argument of `mem_atomic_value`.
#[derive(Clone, Copy)]
enum Operand {
    /// The constant 0.
    Zero,
    /// A local of type `i32` (zero-extended) or `i64`.
    Local(u32, Val),
}

/// Pushes `v` as an `i64`, masked to the low `width` bytes when `mask` (an `i32` is
/// zero-extended, so its mask is only needed below 4 bytes).
fn push_i64(s: &mut InstructionSink<'_>, v: Operand, width: u32, mask: bool) {
    match v {
        Operand::Zero => {
            s.i64_const(0);
        }
        Operand::Local(l, t) => {
            s.local_get(l);
            if t == Val::I32 {
                s.i64_extend_i32_u();
            }
            let full = if t == Val::I32 { 4 } else { 8 };
            if mask && width < full {
                s.i64_const(((1u64 << (8 * width)) - 1) as i64).i64_and();
            }
        }
    }
}

/// Emits `mem_atomic_value(addr + offset, op | width << 8, old, new, loc)`; `new` is
/// masked to the access's `width` (a narrow store or exchange writes only its low bytes;
/// the loaded `old` is zero-extended by the instruction already), except for the waits,
/// whose `new` is the timeout.
#[allow(clippy::too_many_arguments)]
fn value_hook(
    out: &mut Vec<u8>,
    hook: u32,
    addr: u32,
    offset: u64,
    op: i32,
    old: Operand,
    new: Operand,
    width: u32,
    loc: i32,
) {
    let mut s = sink(out);
    effective_address(&mut s, addr, offset);
    // Widths are 1 to 8, so the code fits in an i32.
    s.i32_const(op | (width as i32) << 8);
    let wait = op == abi::VALUE_WAIT || op == abi::VALUE_WAIT_END;
    push_i64(&mut s, old, width, false);
    push_i64(&mut s, new, width, !wait);
    s.i32_const(loc).call(hook);
}

/// What [`Rewriter::emit_ops`] rewrites.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    /// A whole function body.
    Whole,
    /// The copy of a split loop's body that a sampled iteration runs: its plain accesses
    /// call their hooks without a check.
    Sampled,
    /// The copy that the other iterations run: no memory hooks at all.
    Plain,
}

/// What [`Rewriter::emit_ops`] needs to know of the function being rewritten.
#[derive(Clone, Copy)]
struct FuncCtx {
    func_index: u32,
    defined: u32,
    /// Its memory accesses are traced.
    trace: bool,
    /// Its plain loads and stores are traced as atomic ones.
    promote: bool,
    from: Caller,
}

/// Fresh locals of the function being rewritten, allocated on first use.
struct Locals {
    /// Index of the first fresh local.
    base: u32,
    /// `slots[type][n]`: index of the n-th fresh local of that type, or `u32::MAX`.
    slots: [[u32; 4]; 5],
    /// Types of the fresh locals, in index order.
    types: Vec<Val>,
}

impl Locals {
    fn reset(&mut self, base: u32) {
        self.base = base;
        self.slots = [[u32::MAX; 4]; 5];
        self.types.clear();
    }

    fn get(&mut self, ty: Val, slot: usize) -> u32 {
        if self.slots[ty as usize][slot] == u32::MAX {
            self.slots[ty as usize][slot] = self.fresh(ty);
        }
        self.slots[ty as usize][slot]
    }

    /// A fresh local of its own (a site's sampling flag).
    fn fresh(&mut self, ty: Val) -> u32 {
        self.types.push(ty);
        self.base.wrapping_add(self.types.len() as u32 - 1)
    }
}

struct Rewriter<'a> {
    wasm: &'a [u8],
    memory_tracing: bool,
    scan: Scan,
    /// Functions added to the import section (the three memory hooks, or none).
    added: u32,
    /// For each imported function: its index into `scan.located`, or `u32::MAX`.
    located_at: Vec<u32>,
    /// For each entry of `scan.located`: index into `new_types`.
    located_type: Vec<usize>,
    /// Index into `new_types` of the access hooks' type.
    hook_type: usize,
    /// Index into `new_types` of `mem_atomic_begin`'s type.
    begin_type: usize,
    /// Index into `new_types` of `mem_atomic_value`'s type, if it is imported.
    value_type: Option<usize>,
    /// Indices into `new_types` of the types of `heap_malloc` and `heap_free_unsized`,
    /// when the C allocator's entry points are wrapped (see [`Scan::entries`]).
    wrap_types: Option<(usize, usize)>,
    /// Function index of `heap_malloc` (valid with `wrap_types`).
    heap_alloc: u32,
    /// Whether an active or passive element segment is being translated (its
    /// references to the C allocator's entry points go to their wrappers).
    in_elements: bool,
    new_types: Vec<NewType>,
    /// Types in the input's type section.
    type_count: u32,
    /// Parameter count of every input type (0 for non-function types).
    param_counts: Vec<u32>,
    /// Type index of every defined function.
    func_types: Vec<u32>,
    /// Which located imports had their type checked.
    located_checked: Vec<bool>,
    types_done: bool,
    imports_done: bool,
    code_done: bool,
    /// Start of the input's code section payload.
    code_start: u64,
    /// How the function indices being translated are used, for error messages.
    usage: Cow<'static, str>,
    locations: Vec<Location>,
    /// Which input functions have locations.
    has_locations: Vec<bool>,
    /// Names from the name section, by input function index (only the needed ones).
    func_names: Vec<Option<String>>,
    // Buffers reused across functions.
    ops_out: Vec<u8>,
    body_out: Vec<u8>,
    locals: Locals,
    allocs: Option<OperatorsReaderAllocations>,
    /// The sampled sites, with [`InstrumentConfig::sampling`].
    sites: Option<Sites>,
    /// Whether the sites' globals were emitted.
    globals_done: bool,
    /// The local that says whether the current execution of the innermost site (the
    /// function's body, or the innermost loop with a site) is sampled: each site has one
    /// of its own, so the code after a loop goes by its own site's decision. `None`: the
    /// function being rewritten is not sampled.
    sample_flag: Option<u32>,
    /// The `sample_flag` of the code around every open block of the function being
    /// rewritten, restored at the block's `end`.
    flag_stack: Vec<u32>,
    /// Blocks (`block`, `loop`, `if`, `try`, `try_table`) of the input seen so far in the
    /// function being rewritten.
    blocks_seen: u32,
    /// For every block the rewrite inserted into the function being rewritten: how many
    /// of the input's blocks come before it.
    inserted: Vec<u32>,
    /// `(input function index, inserted)` of every function with inserted blocks, in
    /// order: the name section's label names are numbered by block, so theirs move.
    label_shifts: Vec<(u32, Vec<u32>)>,
    /// `(code offset, location)` of the instructions of the sampled copy of the loop body
    /// being split, whose plain copy passes the same locations.
    split_locs: Vec<(usize, i32)>,
    /// Branch hints of the function being rewritten: `(offset in its operators, hint)`.
    body_hints: Vec<(usize, u32)>,
    /// The branch hints of the output, by function, for `metadata.code.branch_hint`.
    hints: wasm_encoder::BranchHints,
    /// Where the output's code section starts, for the branch hints, which go before it.
    code_at: Option<usize>,
}

/// A branch hint: the `if` is rarely taken.
const HINT_UNLIKELY: u32 = 0;
/// A branch hint: the `if` is usually taken.
const HINT_LIKELY: u32 = 1;

impl<'a> Rewriter<'a> {
    fn new(wasm: &'a [u8], config: &InstrumentConfig, scan: Scan) -> Self {
        let mut new_types: Vec<NewType> = Vec::new();
        let mut intern =
            |params: Vec<abi::ValType>, results: &'static [abi::ValType]| match new_types
                .iter()
                .position(|t| t.params == params && t.results == results)
            {
                Some(i) => i,
                None => {
                    new_types.push(NewType { params, results });
                    new_types.len() - 1
                }
            };
        let located_type = scan
            .located
            .iter()
            .map(|l| intern(l.sig.params_with_location(), l.sig.results))
            .collect();
        let (hook_type, begin_type) = if config.memory_tracing {
            debug_assert_eq!(abi::MEM_READ.params, abi::MEM_WRITE.params);
            (
                intern(abi::MEM_READ.params.to_vec(), abi::MEM_READ.results),
                intern(
                    abi::MEM_ATOMIC_BEGIN.params.to_vec(),
                    abi::MEM_ATOMIC_BEGIN.results,
                ),
            )
        } else {
            (usize::MAX, usize::MAX)
        };
        let value_type = (config.memory_tracing && config.atomic_values).then(|| {
            intern(
                abi::MEM_ATOMIC_VALUE.params.to_vec(),
                abi::MEM_ATOMIC_VALUE.results,
            )
        });
        // The C allocator is wrapped when it exists and the module does not report its
        // allocations itself. Without memory tracing nothing needs the allocations, but a
        // wasi program's joins still come from libc's thread entry points: only those
        // are wrapped then (the deadlock predictor orders threads by fork and join).
        let mut scan = scan;
        if !config.memory_tracing {
            scan.entries.retain(|e| e.1.is_pthread());
        }
        let wrap_types = ((!config.memory_tracing || !scan.reports_allocations)
            && !scan.entries.is_empty())
        .then(|| {
            (
                intern(abi::HEAP_MALLOC.params.to_vec(), abi::HEAP_MALLOC.results),
                intern(
                    abi::HEAP_FREE_UNSIZED.params.to_vec(),
                    abi::HEAP_FREE_UNSIZED.results,
                ),
            )
        });
        let hooks = if !config.memory_tracing {
            0
        } else if value_type.is_some() {
            4
        } else {
            3
        };
        let mut located_at = vec![u32::MAX; scan.func_imports as usize];
        for (i, l) in scan.located.iter().enumerate() {
            // `i` < number of imports < 2^32.
            located_at[l.func_index as usize] = i as u32;
        }
        let total_funcs = scan.func_imports as usize + scan.defined as usize;
        Rewriter {
            wasm,
            memory_tracing: config.memory_tracing,
            added: hooks + if wrap_types.is_some() { 5 } else { 0 },
            heap_alloc: scan.func_imports + hooks,
            wrap_types,
            in_elements: false,
            located_checked: vec![false; scan.located.len()],
            located_at,
            located_type,
            hook_type,
            begin_type,
            value_type,
            new_types,
            type_count: 0,
            param_counts: Vec::new(),
            func_types: Vec::with_capacity(scan.defined as usize),
            types_done: false,
            imports_done: false,
            code_done: false,
            code_start: 0,
            usage: Cow::Borrowed(OTHER_USE),
            locations: Vec::new(),
            has_locations: vec![false; total_funcs],
            func_names: Vec::new(),
            ops_out: Vec::new(),
            body_out: Vec::new(),
            locals: Locals {
                base: 0,
                slots: [[u32::MAX; 4]; 5],
                types: Vec::new(),
            },
            allocs: Some(OperatorsReaderAllocations::default()),
            sites: None,
            globals_done: false,
            sample_flag: None,
            flag_stack: Vec::new(),
            blocks_seen: 0,
            inserted: Vec::new(),
            label_shifts: Vec::new(),
            split_locs: Vec::new(),
            body_hints: Vec::new(),
            hints: wasm_encoder::BranchHints::new(),
            code_at: None,
            scan,
        }
    }

    /// Appends the globals of the sampled sites, two per site (see [`sample`]).
    fn append_site_globals(&mut self, globals: &mut wasm_encoder::GlobalSection) {
        if self.globals_done {
            return;
        }
        self.globals_done = true;
        let count = self.sites.as_ref().map_or(0, |s| s.count);
        let ty = wasm_encoder::GlobalType {
            val_type: wasm_encoder::ValType::I32,
            mutable: true,
            shared: false,
        };
        for _ in 0..2 * u64::from(count) {
            globals.global(ty, &wasm_encoder::ConstExpr::i32_const(0));
        }
    }

    /// The located import at function index `f`, if any.
    fn located(&self, f: u32) -> Option<(usize, FuncSig)> {
        let i = *self.located_at.get(f as usize)?;
        if i == u32::MAX {
            return None;
        }
        Some((i as usize, self.scan.located[i as usize].sig))
    }

    /// The output index of input function `f`; `usage` says where `f` appears, for the
    /// error when the renumbered index would not fit in 32 bits.
    fn remap(&self, f: u32, usage: impl FnOnce() -> String) -> Result<u32> {
        if f < self.scan.func_imports {
            return Ok(f);
        }
        f.checked_add(self.added).ok_or_else(|| {
            user(InstrumentError::IndexOverflow {
                space: "function",
                index: f,
                added: self.added,
                usage: usage(),
            })
        })
    }

    /// The output index of input function `f` named in the name section, or `None` when
    /// `f` is no function of the module: such a name names nothing, and is dropped.
    fn remap_name(&self, f: u32) -> Option<u32> {
        let total = u64::from(self.scan.func_imports) + u64::from(self.scan.defined);
        if u64::from(f) >= total {
            return None;
        }
        self.remap(f, String::new).ok()
    }

    /// The index of new type number `k` (an index into `new_types`), appended after the
    /// input's types.
    fn new_type_index(&self, k: usize) -> Result<u32> {
        u32::try_from(k)
            .ok()
            .and_then(|k| self.type_count.checked_add(k))
            .ok_or_else(|| {
                user(InstrumentError::IndexOverflow {
                    space: "type",
                    index: self.type_count,
                    added: k as u32,
                    usage: "the first type the instrumenter appends".into(),
                })
            })
    }

    /// A local or label name map (`map` is keyed by function index), renumbered; the
    /// entries of indices that are no function of the module are dropped.
    fn indirect_names(
        &self,
        map: wasmparser::IndirectNameMap<'_>,
    ) -> Result<wasm_encoder::IndirectNameMap> {
        let mut out = wasm_encoder::IndirectNameMap::new();
        for naming in map {
            let naming = naming?;
            let names = utils::name_map(naming.names, Ok)?;
            if let Some(index) = self.remap_name(naming.index) {
                out.append(index, &names);
            }
        }
        Ok(out)
    }

    /// Checks the type of every located import whose type index is `index`.
    fn check_located_type(&mut self, index: u32, ty: Option<&FuncType>) -> Result<()> {
        for (i, l) in self.scan.located.iter().enumerate() {
            if l.type_index != index {
                continue;
            }
            self.located_checked[i] = true;
            let sig = l.sig;
            let Some(f) = ty else {
                return Err(user(InstrumentError::ImportSignature {
                    name: sig.name,
                    expected: sig.to_string(),
                    found: format!("type {index}, which is not a function type"),
                }));
            };
            let params = to_abi(f.params());
            let results = to_abi(f.results());
            if let (Some(p), Some(r)) = (&params, &results) {
                if sig.matches(p, r) {
                    continue;
                }
                if sig.matches_with_location(p, r) {
                    return Err(user(InstrumentError::AlreadyInstrumented {
                        evidence: format!(
                            "the import `{}.{}` already takes the location parameter",
                            abi::IMPORT_MODULE,
                            sig.name
                        ),
                    }));
                }
            }
            return Err(user(InstrumentError::ImportSignature {
                name: sig.name,
                expected: sig.to_string(),
                found: show_type(sig.name, f),
            }));
        }
        Ok(())
    }

    fn append_types(&mut self, types: &mut TypeSection) -> Result<()> {
        for (i, l) in self.scan.located.iter().enumerate() {
            if !self.located_checked[i] {
                return Err(user(InstrumentError::Malformed(format!(
                    "the import `{}.{}` refers to type {}, which does not exist",
                    abi::IMPORT_MODULE,
                    l.sig.name,
                    l.type_index
                ))));
            }
        }
        for t in &self.new_types {
            types.ty().function(
                t.params.iter().copied().map(enc),
                t.results.iter().copied().map(enc),
            );
        }
        self.types_done = true;
        Ok(())
    }

    fn append_hook_imports(&mut self, imports: &mut ImportSection) -> Result<()> {
        if self.memory_tracing {
            let ty = EntityType::Function(self.new_type_index(self.hook_type)?);
            imports.import(abi::IMPORT_MODULE, abi::MEM_READ.name, ty);
            imports.import(abi::IMPORT_MODULE, abi::MEM_WRITE.name, ty);
            let begin = EntityType::Function(self.new_type_index(self.begin_type)?);
            imports.import(abi::IMPORT_MODULE, abi::MEM_ATOMIC_BEGIN.name, begin);
            if let Some(v) = self.value_type {
                let value = EntityType::Function(self.new_type_index(v)?);
                imports.import(abi::IMPORT_MODULE, abi::MEM_ATOMIC_VALUE.name, value);
            }
        }
        // With memory tracing off, too: the thread functions' wrappers need them.
        if let Some((alloc, free)) = self.wrap_types {
            let alloc = EntityType::Function(self.new_type_index(alloc)?);
            imports.import(abi::IMPORT_MODULE, abi::HEAP_MALLOC.name, alloc);
            // `heap_free_unsized` and the thread hooks all take one `i32`.
            let one = EntityType::Function(self.new_type_index(free)?);
            for hook in [
                abi::HEAP_FREE_UNSIZED,
                abi::PTHREAD_CREATED,
                abi::PTHREAD_JOINED,
                abi::PTHREAD_DETACHED,
            ] {
                debug_assert_eq!(hook.params, abi::HEAP_FREE_UNSIZED.params);
                imports.import(abi::IMPORT_MODULE, hook.name, one);
            }
        }
        self.imports_done = true;
        Ok(())
    }

    /// The output index of the `k`-th wrapper (of `scan.entries[k]`): the wrappers
    /// follow the module's own functions.
    fn wrapper_index(&self, k: usize) -> Result<u32> {
        let last = self.scan.func_imports + self.scan.defined;
        (k as u32)
            .checked_add(last)
            .and_then(|i| i.checked_add(self.added))
            .ok_or_else(|| {
                user(InstrumentError::IndexOverflow {
                    space: "function",
                    index: last,
                    added: self.added + k as u32,
                    usage: "an allocation wrapper, appended after the last function".into(),
                })
            })
    }

    /// The wrapper of input function `f`, if `f` is a wrapped entry point and the call
    /// comes from a function `from` whose calls of it are redirected (`None`: a table
    /// entry).
    fn wrapper(&self, f: u32, from: Option<Caller>) -> Option<u32> {
        self.wrap_types?;
        let k = self.scan.entries.binary_search_by_key(&f, |e| e.0).ok()?;
        if let Some(from) = from {
            let own = if self.scan.entries[k].1.is_pthread() {
                from.libc_sync
            } else {
                from.c_allocator
            };
            if own {
                return None;
            }
        }
        self.wrapper_index(k).ok()
    }

    /// Emits the body of the `k`-th wrapper: it calls the entry point and reports the
    /// allocation (`heap_malloc(ptr, size)` after a successful allocation) or the free
    /// (`heap_free_unsized(ptr)` before a non-null block goes back).
    fn emit_wrapper(&mut self, code: &mut CodeSection, k: usize) -> Result<()> {
        let (f, kind) = self.scan.entries[k];
        let target = self.remap(f, || format!("the allocator entry point {}", kind.name()))?;
        let alloc = self.heap_alloc;
        let free = alloc + 1;
        let (created, joined, detached) = (alloc + 2, alloc + 3, alloc + 4);
        let (params, _) = kind.arity();
        let params = params as u32;
        // The result, after the parameters.
        let r = params;
        let locals = if kind == EntryKind::Free {
            vec![]
        } else {
            vec![(1, wasm_encoder::ValType::I32)]
        };
        let mut func = wasm_encoder::Function::new(locals);
        let mut s = func.instructions();
        // A non-null block that goes back is reported first, while it is still this
        // thread's.
        if matches!(kind, EntryKind::Free | EntryKind::Realloc) {
            s.local_get(0).if_(BlockType::Empty);
            s.local_get(0).call(free).end();
        }
        for p in 0..params {
            s.local_get(p);
        }
        s.call(target);
        let load_ptr = |s: &mut InstructionSink<'_>| {
            s.local_get(0).i32_load(wasm_encoder::MemArg {
                offset: 0,
                align: 2,
                target: wasm_encoder::MemArgTarget::Memory(0),
                ordering: None,
            });
        };
        match kind {
            EntryKind::Free => {}
            EntryKind::PthreadCreate
            | EntryKind::PthreadJoin
            | EntryKind::PthreadTimedJoin
            | EntryKind::PthreadTryJoin
            | EntryKind::PthreadDetach => {
                // They return 0 when they succeed; `pthread_create` stores the new
                // thread's handle at its first argument, the others take it there.
                s.local_tee(r).i32_eqz().if_(BlockType::Empty);
                let hook = match kind {
                    EntryKind::PthreadCreate => {
                        load_ptr(&mut s);
                        created
                    }
                    EntryKind::PthreadDetach => {
                        s.local_get(0);
                        detached
                    }
                    _ => {
                        s.local_get(0);
                        joined
                    }
                };
                s.call(hook).end().local_get(r);
            }
            EntryKind::PosixMemalign => {
                // `posix_memalign(out, align, size)` returns 0 and stores the block at
                // `out` when it succeeds.
                s.local_tee(r).i32_eqz().if_(BlockType::Empty);
                load_ptr(&mut s);
                s.local_get(2).call(alloc).end().local_get(r);
            }
            _ => {
                s.local_tee(r).if_(BlockType::Empty).local_get(r);
                match kind {
                    EntryKind::Malloc => s.local_get(0),
                    EntryKind::Calloc => s.local_get(0).local_get(1).i32_mul(),
                    _ => s.local_get(1),
                };
                s.call(alloc).end().local_get(r);
            }
        }
        s.end();
        code.function(&func);
        Ok(())
    }

    /// The location of the instruction at `offset`: a new one, except in the plain copy of
    /// a split loop body, which passes the locations of the sampled copy.
    fn location(&mut self, func_index: u32, offset: usize, instr: String, region: Region) -> i32 {
        match region {
            Region::Whole => self.add_location(func_index, offset, instr),
            Region::Sampled => {
                let loc = self.add_location(func_index, offset, instr);
                self.split_locs.push((offset, loc));
                loc
            }
            Region::Plain => match self.split_locs.iter().find(|(o, _)| *o == offset) {
                Some(&(_, loc)) => loc,
                None => self.add_location(func_index, offset, instr),
            },
        }
    }

    fn add_location(&mut self, func_index: u32, offset: usize, instr: String) -> i32 {
        // The code section is shorter than 2^32 bytes (its size is a u32) and every
        // location is a different instruction of at least two bytes, so neither the id
        // nor the offset is truncated.
        let id = self.locations.len();
        self.has_locations[func_index as usize] = true;
        self.locations.push(Location {
            func_index,
            func_name: None,
            code_offset: (offset as u64 - self.code_start) as u32,
            instr,
        });
        id as u32 as i32
    }

    /// Rewrites the body of defined function number `defined`.
    fn rewrite_body(
        &mut self,
        code: &mut CodeSection,
        defined: u32,
        body: FunctionBody<'_>,
    ) -> Result<()> {
        let wasm = self.wasm;
        if defined >= self.scan.defined {
            return Err(user(InstrumentError::Malformed(format!(
                "the code section has more function bodies than the {} functions that the \
                 function section declares",
                self.scan.defined
            ))));
        }
        // Below `func_imports + defined`, which the scan computed without overflow.
        let func_index = self.scan.func_imports + defined;
        let trace = self.memory_tracing && self.scan.traced(func_index);
        let promote = trace && self.scan.is_libc_sync(func_index);
        // Calls from the C allocator itself (`realloc` calling `malloc`) are its own, and
        // so are the calls of libc's thread functions (`pthread_detach` joining).
        let from = Caller {
            c_allocator: self.scan.c_allocator.binary_search(&func_index).is_ok(),
            libc_sync: self.scan.libc_sync.binary_search(&func_index).is_ok(),
        };
        let range = body.range();
        let (body_start, body_end) = (range.start as usize, range.end as usize);
        if !trace && self.added == 0 && self.scan.located.is_empty() {
            code.raw(&wasm[body_start..body_end]);
            return Ok(());
        }

        let mut locals = body.get_locals_reader()?;
        let groups = locals.get_count();
        let groups_start = locals.original_position() as usize;
        let mut declared = 0u64;
        for _ in 0..groups {
            declared += u64::from(locals.read()?.0);
        }
        let params = self
            .func_types
            .get(defined as usize)
            .and_then(|t| self.param_counts.get(*t as usize))
            .copied()
            .unwrap_or(0);
        let base = u64::from(params) + declared;
        self.locals.reset(u32::try_from(base).unwrap_or(u32::MAX));

        let allocs = self.allocs.take().unwrap_or_default();
        let mut reader = OperatorsReader::new_with_allocs(locals.get_binary_reader(), allocs);
        let ops_start = reader.original_position() as usize;
        let mut out = std::mem::take(&mut self.ops_out);
        out.clear();
        // With sampling, the body's site decides when the function is entered.
        self.sample_flag = None;
        self.flag_stack.clear();
        self.blocks_seen = 0;
        self.inserted.clear();
        self.body_hints.clear();
        self.split_locs.clear();
        let mut loops = 0u32;
        if let (true, Some(sites)) = (trace, &self.sites) {
            let flag = self.locals.fresh(Val::I32);
            self.sample_flag = Some(flag);
            if let Some(site) = sites.site(defined, 0) {
                let (skip, taken) = sites.globals(site);
                let tmp = self.locals.get(Val::I32, 0);
                let at = sample::decide(&mut out, skip, taken, flag, tmp);
                self.body_hints.push((at, HINT_LIKELY));
                self.inserted.push(0);
            }
        }
        let ctx = FuncCtx {
            func_index,
            defined,
            trace,
            promote,
            from,
        };
        self.emit_ops(&mut reader, &mut out, &ctx, Region::Whole, &mut loops)?;
        self.allocs = Some(reader.into_allocations());
        if !self.inserted.is_empty() {
            self.label_shifts
                .push((func_index, std::mem::take(&mut self.inserted)));
        }

        let mut body_out = std::mem::take(&mut self.body_out);
        body_out.clear();
        if self.locals.types.is_empty() {
            body_out.extend_from_slice(&wasm[body_start..ops_start]);
        } else {
            let total = base + self.locals.types.len() as u64;
            if total > MAX_LOCALS {
                return Err(user(InstrumentError::TooManyLocals {
                    func_index,
                    locals: total,
                }));
            }
            let types = &self.locals.types;
            let runs = 1 + types.windows(2).filter(|w| w[0] != w[1]).count();
            // The body is shorter than 2^32 bytes and a group takes two bytes at least,
            // so there are fewer than 2^31 groups; `runs` is at most 11.
            (groups + runs as u32).encode(&mut body_out);
            body_out.extend_from_slice(&wasm[groups_start..ops_start]);
            let mut i = 0;
            while i < types.len() {
                let mut j = i + 1;
                while j < types.len() && types[j] == types[i] {
                    j += 1;
                }
                ((j - i) as u32).encode(&mut body_out);
                val_type(types[i]).encode(&mut body_out);
                i = j;
            }
        }
        if !self.body_hints.is_empty() {
            // Offsets from the start of the body: its locals come first.
            let base = body_out.len();
            if let Some(index) = self.remap_name(func_index) {
                self.hints.function_hints(
                    index,
                    self.body_hints.iter().map(|&(at, hint)| BranchHint {
                        branch_func_offset: (base + at) as u32,
                        branch_hint_value: hint,
                    }),
                );
            }
        }
        body_out.extend_from_slice(&out);
        if body_out.len() > MAX_FUNCTION_SIZE {
            return Err(user(InstrumentError::FunctionTooLarge {
                func_index,
                size: body_out.len(),
            }));
        }
        code.raw(&body_out);
        self.ops_out = out;
        self.body_out = body_out;
        Ok(())
    }

    /// Rewrites the operators of `reader` into `out`: all of them (`Region::Whole`), or
    /// one copy of the body of a split loop, up to the loop's `end` (consumed, not
    /// written). `loops` counts the loops of the function.
    fn emit_ops(
        &mut self,
        reader: &mut OperatorsReader<'_>,
        out: &mut Vec<u8>,
        ctx: &FuncCtx,
        region: Region,
        loops: &mut u32,
    ) -> Result<()> {
        let wasm = self.wasm;
        let FuncCtx {
            func_index,
            defined,
            trace,
            promote,
            from,
        } = *ctx;
        let mut copy_from = reader.original_position() as usize;
        // Blocks open in the copy of a loop body, which ends at the `end` at depth 0.
        let mut nest = 0u32;
        while !reader.eof() {
            let start = reader.original_position() as usize;
            let op = reader.read()?;
            if let Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } = op
            {
                nest += 1;
                if let (Region::Whole, Some(flag)) = (region, self.sample_flag) {
                    self.flag_stack.push(flag);
                }
                if region == Region::Plain {
                    // The plain copy's blocks are all new.
                    self.inserted.push(self.blocks_seen);
                } else {
                    self.blocks_seen += 1;
                }
            }
            match op {
                // The end of a block: the code after it goes by the decision around it.
                Operator::End | Operator::Delegate { .. }
                    if region == Region::Whole && self.sample_flag.is_some() =>
                {
                    if let Some(flag) = self.flag_stack.pop() {
                        self.sample_flag = Some(flag);
                    }
                }
                Operator::End if region != Region::Whole => {
                    if nest == 0 {
                        out.extend_from_slice(&wasm[copy_from..start]);
                        return Ok(());
                    }
                    nest -= 1;
                }
                // In a copy of a loop body, which the `if` of its copies wraps, a branch to
                // a label outside the copy goes one block further.
                Operator::Br { relative_depth: d } if region != Region::Whole && d >= nest => {
                    out.extend_from_slice(&wasm[copy_from..start]);
                    sink(out).br(d + 1);
                    copy_from = reader.original_position() as usize;
                }
                Operator::BrIf { relative_depth: d } if region != Region::Whole && d >= nest => {
                    out.extend_from_slice(&wasm[copy_from..start]);
                    sink(out).br_if(d + 1);
                    copy_from = reader.original_position() as usize;
                }
                Operator::BrTable { targets } if region != Region::Whole => {
                    let shift = |d: u32| if d >= nest { d + 1 } else { d };
                    let labels = targets
                        .targets()
                        .map(|t| t.map(shift))
                        .collect::<std::result::Result<Vec<u32>, _>>()?;
                    out.extend_from_slice(&wasm[copy_from..start]);
                    sink(out).br_table(labels, shift(targets.default()));
                    copy_from = reader.original_position() as usize;
                }
                Operator::Call { function_index: f }
                | Operator::ReturnCall { function_index: f } => {
                    let is_call = matches!(op, Operator::Call { .. });
                    let end = reader.original_position() as usize;
                    if let Some((_, sig)) = self.located(f) {
                        out.extend_from_slice(&wasm[copy_from..start]);
                        let mut instr = String::with_capacity(12 + sig.name.len());
                        instr.push_str(if is_call { "call " } else { "return_call " });
                        instr.push_str(sig.name);
                        let loc = self.location(func_index, start, instr, region);
                        sink(out).i32_const(loc);
                        out.extend_from_slice(&wasm[start..end]);
                        copy_from = end;
                    } else if self.added != 0 && f >= self.scan.func_imports {
                        let to = match self.wrapper(f, Some(from)) {
                            Some(w) => w,
                            None => self.remap(f, || {
                                format!(
                                    "called by function {func_index} at code offset {:#x}",
                                    start as u64 - self.code_start
                                )
                            })?,
                        };
                        out.extend_from_slice(&wasm[copy_from..start]);
                        if is_call {
                            sink(out).call(to);
                        } else {
                            sink(out).return_call(to);
                        }
                        copy_from = end;
                    }
                }
                Operator::RefFunc { function_index: f } => {
                    if let Some((_, sig)) = self.located(f) {
                        return Err(user(InstrumentError::LocatedImportReferenced {
                            name: sig.name,
                            usage: format!("referenced by `ref.func` in function {func_index}"),
                        }));
                    }
                    if self.added != 0 && f >= self.scan.func_imports {
                        // A reference keeps the original function: the declaration that
                        // `ref.func` needs names it.
                        let to = self.remap(f, || {
                            format!(
                                "referenced by `ref.func` in function {func_index} at code \
                                 offset {:#x}",
                                start as u64 - self.code_start
                            )
                        })?;
                        let end = reader.original_position() as usize;
                        out.extend_from_slice(&wasm[copy_from..start]);
                        sink(out).ref_func(to);
                        copy_from = end;
                    }
                }
                Operator::Loop { blockty }
                    if self.sample_flag.is_some() && region == Region::Whole =>
                {
                    // With sampling, a loop's site decides at the start of every iteration,
                    // into a flag of its own.
                    *loops += 1;
                    let site = self.sites.as_ref().and_then(|s| s.site(defined, *loops));
                    if let (Some(site), Some(sites)) = (site, &self.sites) {
                        let flag = self.locals.fresh(Val::I32);
                        self.sample_flag = Some(flag);
                        let end = reader.original_position() as usize;
                        out.extend_from_slice(&wasm[copy_from..end]);
                        let (skip, taken) = sites.globals(site);
                        let split = sites.split(defined, *loops);
                        let tmp = self.locals.get(Val::I32, 0);
                        let at = sample::decide(out, skip, taken, flag, tmp);
                        self.body_hints.push((at, HINT_LIKELY));
                        self.inserted.push(self.blocks_seen);
                        copy_from = end;
                        if split {
                            // The body twice: traced in a sampled iteration, else as it was.
                            let bt = self.block_type(blockty)?;
                            sink(out).local_get(flag);
                            self.body_hints.push((out.len(), HINT_UNLIKELY));
                            sink(out).if_(bt);
                            self.inserted.push(self.blocks_seen);
                            let mut plain = reader.clone();
                            self.emit_ops(reader, out, ctx, Region::Sampled, loops)?;
                            sink(out).else_();
                            self.emit_ops(&mut plain, out, ctx, Region::Plain, loops)?;
                            sink(out).end().end();
                            copy_from = reader.original_position() as usize;
                            // The sampled copy consumed the loop's `end`.
                            if let Some(flag) = self.flag_stack.pop() {
                                self.sample_flag = Some(flag);
                            }
                        }
                    }
                }
                _ if trace => {
                    if let Some(m) = classify(&op) {
                        if let Some(&memory) = m.memories.iter().find(|m| **m != 0) {
                            return Err(user(InstrumentError::MultiMemory {
                                func_index,
                                code_offset: (start as u64 - self.code_start) as u32,
                                memory,
                            }));
                        }
                        // A plain load or store of a libc synchronization function is
                        // traced as an atomic one.
                        let promoted = promote && matches!(m.shape, Shape::Load | Shape::Store(_));
                        let traced = if promoted {
                            MemOp { atomic: true, ..m }
                        } else {
                            m
                        };
                        // The plain copy of a split loop body leaves its plain accesses as
                        // they are; the rest (atomics, waits) are always traced.
                        if region == Region::Plain && sample::sampled(&traced) {
                            continue;
                        }
                        let end = reader.original_position() as usize;
                        out.extend_from_slice(&wasm[copy_from..start]);
                        let mut instr = String::with_capacity(24);
                        m.write_text(&mut instr);
                        let m = traced;
                        let loc = self.location(func_index, start, instr, region);
                        self.emit_access(out, &m, &wasm[start..end], loc, region);
                        copy_from = end;
                    }
                }
                _ => {}
            }
        }
        let body_end = reader.original_position() as usize;
        out.extend_from_slice(&wasm[copy_from..body_end]);
        Ok(())
    }

    /// Emits the instrumented form of memory instruction `m`, whose encoding is `raw`.
    fn emit_access(&mut self, out: &mut Vec<u8>, m: &MemOp, raw: &[u8], loc: i32, region: Region) {
        let read = self.scan.func_imports;
        let write = read + 1;
        let begin = read + 2;
        // `mem_atomic_value`, when imported.
        let value = self.value_type.map(|_| read + 3);
        let off = m.offset();
        let w = Width::Const(m.width);
        let kind = if m.atomic {
            abi::ACCESS_ATOMIC
        } else {
            abi::ACCESS_PLAIN
        };
        // With sampling, a plain access calls its hook only in a sampled execution.
        // (The sampled copy of a split loop body runs only in sampled iterations.)
        let gate = self
            .sample_flag
            .filter(|_| region != Region::Sampled && sample::sampled(m));
        if gate.is_some() || matches!(m.shape, Shape::Cmpxchg(..)) {
            self.inserted.push(self.blocks_seen);
        }
        // Where the check's `if` is, for its branch hint.
        let gate_at = std::cell::Cell::new(None);
        let open = |out: &mut Vec<u8>| {
            if let Some(flag) = gate {
                sink(out).local_get(flag);
                gate_at.set(Some(out.len()));
                sink(out).if_(BlockType::Empty);
            }
        };
        let close = |out: &mut Vec<u8>| {
            if gate.is_some() {
                sink(out).end();
            }
        };
        let l = &mut self.locals;
        let a = l.get(Val::I32, 0);
        // `mem_atomic_begin(addr)` before an atomic access whose address is in `a`.
        let atomic_begin = |out: &mut Vec<u8>| {
            if m.atomic {
                let mut s = sink(out);
                effective_address(&mut s, a, off);
                s.call(begin);
            }
        };
        match m.shape {
            Shape::Load => {
                sink(out).local_tee(a);
                atomic_begin(out);
                out.extend_from_slice(raw);
                open(out);
                hook(out, read, a, off, w, kind, loc);
                close(out);
            }
            Shape::Store(t) => {
                let v = l.get(t, 1);
                sink(out).local_set(v).local_tee(a);
                atomic_begin(out);
                sink(out).local_get(v);
                out.extend_from_slice(raw);
                if let (Some(value), true, Val::I32 | Val::I64) = (value, m.atomic, t) {
                    let old = Operand::Zero;
                    let new = Operand::Local(v, t);
                    value_hook(out, value, a, off, abi::VALUE_STORE, old, new, m.width, loc);
                }
                open(out);
                hook(out, write, a, off, w, kind, loc);
                close(out);
            }
            Shape::Rmw(t) => {
                let v = l.get(t, 1);
                sink(out).local_set(v).local_tee(a);
                atomic_begin(out);
                sink(out).local_get(v);
                out.extend_from_slice(raw);
                if let Some(value) = value {
                    // The loaded value (the instruction's result) goes to the hook too.
                    let loaded = l.get(t, 2);
                    sink(out).local_tee(loaded);
                    let old = Operand::Local(loaded, t);
                    let (op, new) = if m.xchg {
                        (abi::VALUE_XCHG, Operand::Local(v, t))
                    } else {
                        (abi::VALUE_RMW, Operand::Zero)
                    };
                    value_hook(out, value, a, off, op, old, new, m.width, loc);
                }
                hook(out, write, a, off, w, abi::ACCESS_RMW, loc);
            }
            Shape::LoadLane => {
                let v = l.get(Val::V128, 1);
                sink(out).local_set(v).local_tee(a).local_get(v);
                out.extend_from_slice(raw);
                open(out);
                hook(out, read, a, off, w, kind, loc);
                close(out);
            }
            Shape::Cmpxchg(t, mask) => {
                let expected = l.get(t, 1);
                let replacement = l.get(t, 2);
                let loaded = l.get(t, 3);
                sink(out)
                    .local_set(replacement)
                    .local_set(expected)
                    .local_tee(a);
                atomic_begin(out);
                sink(out).local_get(expected).local_get(replacement);
                out.extend_from_slice(raw);
                let mut s = sink(out);
                s.local_tee(loaded).local_get(loaded).local_get(expected);
                match t {
                    Val::I32 => {
                        if mask != u64::from(u32::MAX) {
                            s.i32_const(mask as u32 as i32).i32_and();
                        }
                        s.i32_eq();
                    }
                    _ => {
                        if mask != u64::MAX {
                            s.i64_const(mask as i64).i64_and();
                        }
                        s.i64_eq();
                    }
                }
                // Exchanged: one read-modify-write; else an atomic read.
                s.if_(BlockType::Empty);
                if let Some(value) = value {
                    let old = Operand::Local(loaded, t);
                    let new = Operand::Local(replacement, t);
                    let op = abi::VALUE_CMPXCHG;
                    value_hook(out, value, a, off, op, old, new, m.width, loc);
                }
                hook(out, write, a, off, w, abi::ACCESS_RMW, loc);
                sink(out).else_();
                hook(out, read, a, off, w, kind, loc);
                sink(out).end();
            }
            Shape::Wait(t) => {
                let timeout = l.get(Val::I64, 0);
                let expected = l.get(t, 1);
                sink(out)
                    .local_set(timeout)
                    .local_set(expected)
                    .local_tee(a);
                hook(out, read, a, off, w, kind, loc);
                if let Some(value) = value {
                    let old = Operand::Local(expected, t);
                    let new = Operand::Local(timeout, Val::I64);
                    value_hook(out, value, a, off, abi::VALUE_WAIT, old, new, m.width, loc);
                }
                sink(out).local_get(expected).local_get(timeout);
                out.extend_from_slice(raw);
                if let Some(value) = value {
                    // The wait's result stays on the stack, under the hook's arguments.
                    let op = abi::VALUE_WAIT_END;
                    value_hook(
                        out,
                        value,
                        a,
                        off,
                        op,
                        Operand::Zero,
                        Operand::Zero,
                        m.width,
                        loc,
                    );
                }
            }
            Shape::Notify => {
                let count = l.get(Val::I32, 1);
                sink(out).local_set(count).local_tee(a);
                hook(out, read, a, off, w, kind, loc);
                sink(out).local_get(count);
                out.extend_from_slice(raw);
            }
            Shape::Fill | Shape::Init | Shape::Copy => {
                // `a` is the destination; operand 2 is the value (fill), the data offset
                // (init) or the source address (copy).
                let second = l.get(Val::I32, 1);
                let n = l.get(Val::I32, 2);
                sink(out)
                    .local_set(n)
                    .local_set(second)
                    .local_tee(a)
                    .local_get(second)
                    .local_get(n);
                out.extend_from_slice(raw);
                open(out);
                if m.shape == Shape::Copy {
                    hook(out, read, second, 0, Width::Local(n), kind, loc);
                }
                hook(out, write, a, 0, Width::Local(n), kind, loc);
                close(out);
            }
        }
        if let Some(at) = gate_at.get() {
            self.body_hints.push((at, HINT_UNLIKELY));
        }
    }
}

impl Reencode for Rewriter<'_> {
    type Error = InstrumentError;

    fn function_index(&mut self, func: u32) -> Result<u32> {
        if let Some((_, sig)) = self.located(func) {
            return Err(user(InstrumentError::LocatedImportReferenced {
                name: sig.name,
                usage: self.usage.to_string(),
            }));
        }
        if self.in_elements {
            if let Some(w) = self.wrapper(func, None) {
                return Ok(w);
            }
        }
        self.remap(func, || self.usage.to_string())
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<()> {
        for group in section {
            let group = group?;
            for sub in group.types() {
                let index = self.type_count;
                self.type_count += 1;
                let params = match &sub.composite_type.inner {
                    CompositeInnerType::Func(f) => {
                        if !self.scan.located.is_empty() {
                            self.check_located_type(index, Some(f))?;
                        }
                        f.params().len() as u32
                    }
                    _ => {
                        if !self.scan.located.is_empty() {
                            self.check_located_type(index, None)?;
                        }
                        0
                    }
                };
                self.param_counts.push(params);
            }
            self.parse_recursive_type_group(types.ty(), group)?;
        }
        self.append_types(types)
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<()> {
        let mut func = 0u32;
        for import in section.into_imports() {
            let import = import?;
            let ty = match import.ty {
                TypeRef::Func(_) | TypeRef::FuncExact(_) => {
                    let f = func;
                    func += 1;
                    match self.located(f) {
                        Some((i, _)) => {
                            EntityType::Function(self.new_type_index(self.located_type[i])?)
                        }
                        None => self.entity_type(import.ty)?,
                    }
                }
                other => self.entity_type(other)?,
            };
            imports.import(import.module, import.name, ty);
        }
        self.append_hook_imports(imports)
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<()> {
        for ty in section {
            let ty = ty?;
            self.func_types.push(ty);
            functions.function(ty);
        }
        if self.wrap_types.is_some() {
            // A wrapper has the type of the function it wraps.
            for &(f, _) in &self.scan.entries {
                functions.function(self.scan.func_types[(f - self.scan.func_imports) as usize]);
            }
        }
        Ok(())
    }

    fn parse_export(
        &mut self,
        exports: &mut ExportSection,
        export: wasmparser::Export<'_>,
    ) -> Result<()> {
        if matches!(export.kind, ExternalKind::Func | ExternalKind::FuncExact) {
            if let Some((_, sig)) = self.located(export.index) {
                return Err(user(InstrumentError::LocatedImportReferenced {
                    name: sig.name,
                    usage: format!("exported as `{}`", export.name),
                }));
            }
            self.usage = Cow::Owned(format!("exported as `{}`", export.name));
        }
        let result = utils::parse_export(self, exports, export);
        self.usage = Cow::Borrowed(OTHER_USE);
        result
    }

    fn parse_element_section(
        &mut self,
        elements: &mut wasm_encoder::ElementSection,
        section: wasmparser::ElementSectionReader<'_>,
    ) -> Result<()> {
        self.usage =
            Cow::Borrowed("used in an element segment (a table entry or a declared reference)");
        utils::parse_element_section(self, elements, section)?;
        self.usage = Cow::Borrowed(OTHER_USE);
        Ok(())
    }

    fn parse_element(
        &mut self,
        elements: &mut wasm_encoder::ElementSection,
        element: wasmparser::Element<'_>,
    ) -> Result<()> {
        // The table entries of the C allocator's entry points are their wrappers'; a
        // declaration (for `ref.func`, which keeps the original) is left alone.
        self.in_elements = !matches!(element.kind, wasmparser::ElementKind::Declared);
        let result = utils::parse_element(self, elements, element);
        self.in_elements = false;
        result
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<()> {
        self.usage = Cow::Borrowed("referenced by `ref.func` in a global initializer");
        utils::parse_global_section(self, globals, section)?;
        self.usage = Cow::Borrowed(OTHER_USE);
        self.append_site_globals(globals);
        Ok(())
    }

    fn start_section(&mut self, start: u32) -> Result<u32> {
        self.usage = Cow::Borrowed("the start function");
        let f = self.function_index(start)?;
        self.usage = Cow::Borrowed(OTHER_USE);
        Ok(f)
    }

    fn parse_data_section(
        &mut self,
        data: &mut DataSection,
        section: wasmparser::DataSectionReader<'_>,
    ) -> Result<()> {
        // Data segments name no function: copy them as they are.
        for segment in section {
            let segment = segment?;
            data.raw(&self.wasm[segment.range.start as usize..segment.range.end as usize]);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<()> {
        self.code_start = section.range().start;
        for (i, body) in section.into_iter().enumerate() {
            self.rewrite_body(code, i as u32, body?)?;
        }
        if self.wrap_types.is_some() {
            for k in 0..self.scan.entries.len() {
                self.emit_wrapper(code, k)?;
            }
        }
        self.code_done = true;
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<()> {
        let name = section.name();
        if name == abi::PATCH_SECTION {
            let (first, count) = self.scan.patch;
            let first = self.remap(first, || {
                format!(
                    "the first injected function of the `{}` section",
                    abi::PATCH_SECTION
                )
            })?;
            let mut data = Vec::with_capacity(8);
            data.extend_from_slice(&first.to_le_bytes());
            data.extend_from_slice(&count.to_le_bytes());
            module.section(&CustomSection {
                name: Cow::Borrowed(abi::PATCH_SECTION),
                data: Cow::Owned(data),
            });
            Ok(())
        } else if name.starts_with("metadata.code.") {
            // Instruction-level metadata addresses instructions by their offset inside
            // the function; those offsets change, so the section is dropped.
            Ok(())
        } else if let KnownCustom::Name(reader) = section.as_known() {
            match self.custom_name_section(reader) {
                Ok(names) => {
                    module.section(&names);
                }
                // A name section that cannot be decoded (bad UTF-8, names out of order, a
                // truncated subsection) is dropped, as engines ignore it. The locations
                // take no names from it.
                Err(Error::ParseError(_)) => self.func_names.clear(),
                Err(e) => return Err(e),
            }
            Ok(())
        } else {
            utils::parse_custom_section(self, module, section)
        }
    }

    fn parse_custom_name_subsection(
        &mut self,
        names: &mut NameSection,
        section: wasmparser::Name<'_>,
    ) -> Result<()> {
        match section {
            wasmparser::Name::Function(map) => {
                let mut out = NameMap::new();
                if self.func_names.is_empty() {
                    self.func_names = vec![None; self.has_locations.len()];
                }
                for naming in map {
                    let naming = naming?;
                    let Some(index) = self.remap_name(naming.index) else {
                        continue;
                    };
                    out.append(index, naming.name);
                    let i = naming.index as usize;
                    // Before the code section we do not know yet which names are needed.
                    if i < self.func_names.len() && (!self.code_done || self.has_locations[i]) {
                        self.func_names[i] = Some(naming.name.to_string());
                    }
                }
                if self.wrap_types.is_some() {
                    // The wrappers are the last functions.
                    for (k, &(_, kind)) in self.scan.entries.iter().enumerate() {
                        let w = self.wrapper_index(k)?;
                        out.append(w, &format!("{WRAPPER_PREFIX}{}", kind.name()));
                    }
                }
                names.functions(&out);
            }
            wasmparser::Name::Local(map) => names.locals(&self.indirect_names(map)?),
            wasmparser::Name::Label(map) => {
                let mut out = wasm_encoder::IndirectNameMap::new();
                for naming in map {
                    let naming = naming?;
                    let Some(index) = self.remap_name(naming.index) else {
                        continue;
                    };
                    // Blocks the rewrite inserted move the function's later labels up.
                    let inserted = self
                        .label_shifts
                        .binary_search_by_key(&naming.index, |(f, _)| *f)
                        .map_or(&[][..], |i| &self.label_shifts[i].1[..]);
                    let mut labels = NameMap::new();
                    for label in naming.names {
                        let label = label?;
                        let before = inserted.partition_point(|&k| k <= label.index) as u32;
                        labels.append(label.index.saturating_add(before), label.name);
                    }
                    out.append(index, &labels);
                }
                names.labels(&out)
            }
            other => utils::parse_custom_name_subsection(self, names, other)?,
        }
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<()> {
        // The input has no type section but the pass adds types: emit one where it
        // belongs, before the first section that follows it.
        if !self.types_done && before != Some(SectionId::Type) {
            let mut types = TypeSection::new();
            self.append_types(&mut types)?;
            if !types.is_empty() {
                module.section(&types);
            }
        }
        // With sampling, the sites' globals need a global section; a module without one
        // gets one before the first section that follows where it belongs.
        if !self.globals_done
            && !matches!(
                before,
                Some(
                    SectionId::Type
                        | SectionId::Import
                        | SectionId::Function
                        | SectionId::Table
                        | SectionId::Memory
                        | SectionId::Tag
                        | SectionId::Global
                        | SectionId::Custom
                )
            )
            && self.sites.as_ref().is_some_and(|s| !s.has_global_section)
        {
            let mut globals = wasm_encoder::GlobalSection::new();
            self.append_site_globals(&mut globals);
            if !globals.is_empty() {
                module.section(&globals);
            }
        }
        // Likewise for the import section and the hooks.
        if !self.imports_done && !matches!(before, Some(SectionId::Type | SectionId::Import)) {
            let mut imports = ImportSection::new();
            self.append_hook_imports(&mut imports)?;
            if !imports.is_empty() {
                module.section(&imports);
            }
        }
        if before.is_none() {
            let mut data = Vec::with_capacity(12);
            data.extend_from_slice(&1u32.to_le_bytes());
            let flags = u32::from(self.memory_tracing)
                | u32::from(self.value_type.is_some()) << 1
                | u32::from(self.wrap_types.is_some()) << 2
                | u32::from(self.sites.is_some()) << 3;
            data.extend_from_slice(&flags.to_le_bytes());
            data.extend_from_slice(&(self.locations.len() as u32).to_le_bytes());
            module.section(&CustomSection {
                name: Cow::Borrowed(INSTRUMENT_SECTION),
                data: Cow::Owned(data),
            });
        }
        if before == Some(SectionId::Code) {
            self.code_at = Some(module.len());
        }
        Ok(())
    }
}
