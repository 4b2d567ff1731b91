#![doc = include_str!("../README.md")]

mod bounds;
mod error;

use std::collections::HashMap;
use std::ops::Range;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{BlockType, Encode, Function, InstructionSink, MemArg, RawSection};
use wasmgrind_core::abi::{self, FuncSig, ValType as AbiType, PATCH_SECTION};
use wasmparser::{
    BinaryReader, CompositeInnerType, Encoding, ExternalKind, FuncType, GlobalSectionReader,
    ImportSectionReader, KnownCustom, Name, Operator, Parser, Payload, TypeRef, ValType, Validator,
    WasmFeatures,
};

pub use bounds::refresh_bounds;
pub use error::PatchError;

/// The default stack size of every thread but the first: 2 MiB.
pub const DEFAULT_STACK_SIZE: u32 = 2 << 20;
/// Bytes reserved past `__heap_base` for the lock, the instance counter and the
/// temporary stack (one page).
pub const RESERVED_BYTES: u32 = 65536;
/// Offset of the lock word in the reserved page.
const LOCK_OFFSET: u32 = 0;
/// Offset of the instance counter in the reserved page.
const COUNTER_OFFSET: u32 = 4;
/// Number of functions the patcher adds.
const NEW_FUNCS: u32 = 3;
/// WebAssembly page size.
const PAGE: u64 = 65536;

/// Options of [`patch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchConfig {
    /// Stack size of every thread but the first, in bytes: a multiple of 16, at least 4096.
    pub stack_size: u32,
    /// Validate the patched module (with threads enabled) before returning it. Turn it off
    /// only when the result is validated later anyway, as the instrumenter does.
    pub validate: bool,
}

impl Default for PatchConfig {
    fn default() -> Self {
        PatchConfig {
            stack_size: DEFAULT_STACK_SIZE,
            validate: true,
        }
    }
}

/// The limits of the module's imported shared memory, in pages: `(minimum, maximum)`.
///
/// A runtime creates the shared `WebAssembly.Memory` with these. Call it on the patched
/// (or instrumented) module: patching may raise the minimum.
pub fn memory_limits(wasm: &[u8]) -> Result<(u32, u32), PatchError> {
    let mut memories = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::Version { encoding, .. } => check_encoding(encoding)?,
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    if let TypeRef::Memory(m) = imp?.ty {
                        memories.push((m, true));
                    }
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    memories.push((m?, false));
                }
            }
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    let (min, max) = check_memory(&memories).map_err(|problems| {
        PatchError::from_problems(problems).expect("check_memory fails with a problem")
    })?;
    let too_big = |_| PatchError::Unsupported("memory limits exceed 2^32 pages".into());
    Ok((
        u32::try_from(min).map_err(too_big)?,
        u32::try_from(max).map_err(too_big)?,
    ))
}

/// Patches `wasm` for one instance per thread on a shared memory; see the crate docs for
/// every change it makes.
pub fn patch(wasm: &[u8], config: &PatchConfig) -> Result<Vec<u8>, PatchError> {
    if config.stack_size < 4096 || !config.stack_size.is_multiple_of(16) {
        return Err(PatchError::InvalidStackSize(config.stack_size));
    }
    let module = Scan::new(wasm)?;
    let plan = module.plan(config)?;
    let out = module.write(&plan);
    if config.validate {
        check_output(wasm, &out)?;
    }
    Ok(out)
}

/// Validates the patched module. When it is invalid, the input is validated too, to tell
/// a bad input from a patcher bug.
fn check_output(input: &[u8], output: &[u8]) -> Result<(), PatchError> {
    validator()
        .validate_all(output)
        .map_err(|out_err| match validator().validate_all(input) {
            Err(in_err) => PatchError::InvalidInput(in_err),
            Ok(_) => PatchError::InvalidOutput(out_err),
        })?;
    Ok(())
}

/// A validator with the features Wasmgrind's modules use (the defaults, which include
/// threads).
fn validator() -> Validator {
    Validator::new_with_features(WasmFeatures::default() | WasmFeatures::THREADS)
}

fn check_encoding(encoding: Encoding) -> Result<(), PatchError> {
    match encoding {
        Encoding::Module => Ok(()),
        Encoding::Component => Err(PatchError::Unsupported(
            "this is a component (a `wasm32-wasip2` build, say), not a core module: Wasmgrind runs core \
             modules; build a std program for `wasm32-wasip1-threads`, or a guest of the wasmgrind ABI \
             for `wasm32-unknown-unknown` (see the book's guide for guests)"
                .into(),
        )),
    }
}

/// Checks the memory rules and returns the `(minimum, maximum)` of the only memory, or
/// every rule it breaks (at least one).
fn check_memory(
    memories: &[(wasmparser::MemoryType, bool)],
) -> Result<(u64, u64), Vec<PatchError>> {
    let (m, imported) = match memories {
        [] => return Err(vec![PatchError::NoMemory]),
        [one] => *one,
        more => return Err(vec![PatchError::MultipleMemories(more.len() as u32)]),
    };
    let mut problems = Vec::new();
    if !imported {
        problems.push(PatchError::MemoryNotImported);
    }
    if m.memory64 {
        problems.push(PatchError::Memory64);
    }
    if !m.shared {
        problems.push(PatchError::MemoryNotShared);
    }
    if m.maximum.is_none() {
        problems.push(PatchError::NoMaximum);
    }
    match m.maximum {
        Some(max) if problems.is_empty() => Ok((m.initial, max)),
        _ => Err(problems),
    }
}

/// A defined or imported global.
struct GlobalInfo {
    ty: wasmparser::GlobalType,
    imported: bool,
    /// The value of an `i32.const` initializer.
    init: Option<i32>,
}

/// What one parse of the module found.
struct Scan<'a> {
    wasm: &'a [u8],
    /// Every section: id, content range, custom section name.
    sections: Vec<(u8, Range<usize>, Option<&'a str>)>,
    /// Function types, `None` for non-function types.
    types: Vec<Option<FuncType>>,
    /// Type index of every function, imports first.
    funcs: Vec<u32>,
    imported_funcs: u32,
    globals: Vec<GlobalInfo>,
    memories: Vec<(wasmparser::MemoryType, bool)>,
    exports: HashMap<&'a str, (ExternalKind, u32)>,
    start: Option<u32>,
    imports: Option<ImportSectionReader<'a>>,
    global_section: Option<GlobalSectionReader<'a>>,
    /// Global named `__stack_pointer` in the name section.
    named_stack_pointer: Option<u32>,
    already_patched: bool,
}

/// Indices and values the writer needs, decided from a [`Scan`].
struct Plan {
    stack_size: u32,
    memory_min: u64,
    heap_base_global: u32,
    heap_base: u32,
    lock_addr: u32,
    counter_addr: u32,
    temp_stack_top: u32,
    stack_pointer: u32,
    tls_size: u32,
    tls_align: u32,
    init_tls: u32,
    malloc: u32,
    free: u32,
    orig_start: Option<u32>,
    /// Index of the first new type: `() -> ()`, then `(i32, i32) -> ()`.
    first_new_type: u32,
    /// Index of `$__wasmgrind_start`; `$__wasmgrind_thread_destroy` and
    /// `$__wasmgrind_lock` follow it.
    first_new_func: u32,
    /// Index of `$__wasmgrind_stack_base`; `$__wasmgrind_tls_block` follows it.
    first_new_global: u32,
}

impl<'a> Scan<'a> {
    fn new(wasm: &'a [u8]) -> Result<Scan<'a>, PatchError> {
        let mut s = Scan {
            wasm,
            sections: Vec::new(),
            types: Vec::new(),
            funcs: Vec::new(),
            imported_funcs: 0,
            globals: Vec::new(),
            memories: Vec::new(),
            exports: HashMap::new(),
            start: None,
            imports: None,
            global_section: None,
            named_stack_pointer: None,
            already_patched: false,
        };
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload?;
            let mut custom_name = None;
            match &payload {
                Payload::Version { encoding, .. } => check_encoding(*encoding)?,
                Payload::TypeSection(r) => {
                    for group in r.clone() {
                        for sub in group?.into_types() {
                            s.types.push(match sub.composite_type.inner {
                                CompositeInnerType::Func(f) => Some(f),
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(r) => {
                    s.imports = Some(r.clone());
                    for imp in r.clone().into_imports() {
                        match imp?.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                                s.funcs.push(t);
                                s.imported_funcs += 1;
                            }
                            TypeRef::Memory(m) => s.memories.push((m, true)),
                            TypeRef::Global(ty) => s.globals.push(GlobalInfo {
                                ty,
                                imported: true,
                                init: None,
                            }),
                            TypeRef::Table(_) | TypeRef::Tag(_) => {}
                        }
                    }
                }
                Payload::FunctionSection(r) => {
                    for t in r.clone() {
                        s.funcs.push(t?);
                    }
                }
                Payload::MemorySection(r) => {
                    for m in r.clone() {
                        s.memories.push((m?, false));
                    }
                }
                Payload::GlobalSection(r) => {
                    s.global_section = Some(r.clone());
                    for g in r.clone() {
                        let g = g?;
                        let mut ops = g.init_expr.get_operators_reader();
                        let init = match (ops.read()?, ops.read()?) {
                            (Operator::I32Const { value }, Operator::End) => Some(value),
                            _ => None,
                        };
                        s.globals.push(GlobalInfo {
                            ty: g.ty,
                            imported: false,
                            init,
                        });
                    }
                }
                Payload::ExportSection(r) => {
                    for e in r.clone() {
                        let e = e?;
                        s.exports.insert(e.name, (e.kind, e.index));
                    }
                }
                Payload::StartSection { func, .. } => s.start = Some(*func),
                Payload::CustomSection(c) => {
                    custom_name = Some(c.name());
                    if c.name() == PATCH_SECTION {
                        s.already_patched = true;
                    }
                    if let KnownCustom::Name(reader) = c.as_known() {
                        for sub in reader {
                            // A malformed name section is ignored, as engines do.
                            let Ok(Name::Global(map)) = sub else { continue };
                            for naming in map.into_iter().flatten() {
                                if naming.name == abi::STACK_POINTER {
                                    s.named_stack_pointer = Some(naming.index);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
            if let Some((id, range)) = payload.as_section() {
                s.sections
                    .push((id, range.start as usize..range.end as usize, custom_name));
            }
        }
        Ok(s)
    }

    fn func_type(&self, func: u32) -> Option<&FuncType> {
        let ty = *self.funcs.get(func as usize)?;
        self.types.get(ty as usize)?.as_ref()
    }

    /// The function exported as `sig.name`, checked against `sig`.
    fn exported_func(&self, sig: &FuncSig, missing: PatchError) -> Result<u32, PatchError> {
        let &(kind, index) = self.exports.get(sig.name).ok_or(missing)?;
        let expected = || format!("function {sig}");
        if kind != ExternalKind::Func {
            return Err(PatchError::WrongExportType {
                name: sig.name,
                expected: expected(),
                found: format!("{kind:?}").to_lowercase(),
            });
        }
        let ty = self.func_type(index).ok_or_else(|| {
            PatchError::Unsupported(format!("`{}` has no function type", sig.name))
        })?;
        let conv = |v: &[ValType]| -> Option<Vec<AbiType>> {
            v.iter()
                .map(|t| match t {
                    ValType::I32 => Some(AbiType::I32),
                    ValType::I64 => Some(AbiType::I64),
                    _ => None,
                })
                .collect()
        };
        let ok = match (conv(ty.params()), conv(ty.results())) {
            (Some(p), Some(r)) => sig.matches(&p, &r),
            _ => false,
        };
        if !ok {
            return Err(PatchError::WrongExportType {
                name: sig.name,
                expected: expected(),
                found: format!("function {ty}"),
            });
        }
        Ok(index)
    }

    /// The `i32` global exported as `name`, required by the linker.
    fn linker_global(&self, name: &'static str, mutable: bool) -> Result<u32, PatchError> {
        let &(kind, index) = self
            .exports
            .get(name)
            .ok_or_else(|| PatchError::MissingLinkerExports { names: vec![name] })?;
        let g = self
            .globals
            .get(index as usize)
            .filter(|_| kind == ExternalKind::Global);
        match g {
            Some(g) if g.ty.content_type == ValType::I32 && (!mutable || g.ty.mutable) => Ok(index),
            _ => Err(PatchError::WrongExportType {
                name,
                expected: if mutable {
                    "mutable i32 global"
                } else {
                    "i32 global"
                }
                .into(),
                found: match g {
                    Some(g) => format!(
                        "{}{} global",
                        if g.ty.mutable { "mutable " } else { "" },
                        g.ty.content_type
                    ),
                    None => format!("{kind:?}").to_lowercase(),
                },
            }),
        }
    }

    fn stack_pointer(&self, tls_base: u32) -> Result<u32, PatchError> {
        if let Some(sp) = self.named_stack_pointer {
            return match self.globals.get(sp as usize) {
                Some(g) if g.ty.mutable && g.ty.content_type == ValType::I32 && !g.imported => {
                    Ok(sp)
                }
                _ => Err(PatchError::NoStackPointer),
            };
        }
        let exported: Vec<u32> = self
            .exports
            .values()
            .filter(|(k, _)| *k == ExternalKind::Global)
            .map(|&(_, i)| i)
            .collect();
        self.globals
            .iter()
            .enumerate()
            .position(|(i, g)| {
                let i = i as u32;
                !g.imported
                    && g.ty.mutable
                    && g.ty.content_type == ValType::I32
                    && g.init.is_some()
                    && i != tls_base
                    && !exported.contains(&i)
            })
            .map(|i| i as u32)
            .ok_or(PatchError::NoStackPointer)
    }

    fn plan(&self, config: &PatchConfig) -> Result<Plan, PatchError> {
        if self.already_patched || self.exports.contains_key(abi::THREAD_DESTROY.name) {
            return Err(PatchError::AlreadyPatched);
        }
        // Everything that depends on how the module was built is checked before the
        // first error is returned, so that one error names every missing setting.
        let mut problems = Vec::new();
        let memory = check_memory(&self.memories)
            .map_err(|p| problems.extend(p))
            .ok();
        let mut missing_linker = Vec::new();
        let mut missing_guest = Vec::new();
        let mut take = |found: Result<u32, PatchError>| match found {
            Ok(index) => Some(index),
            Err(PatchError::MissingLinkerExports { names }) => {
                missing_linker.extend(names);
                None
            }
            Err(PatchError::MissingGuestExports(names)) => {
                missing_guest.extend(names);
                None
            }
            Err(other) => {
                problems.push(other);
                None
            }
        };
        let heap_base_global = take(self.linker_global(abi::HEAP_BASE, false));
        let tls_size = take(self.linker_global(abi::TLS_SIZE, false));
        let tls_align = take(self.linker_global(abi::TLS_ALIGN, false));
        let tls_base = take(self.linker_global(abi::TLS_BASE, true));
        let init_tls_sig = FuncSig {
            name: abi::INIT_TLS,
            params: &[AbiType::I32],
            results: &[],
        };
        let init_tls = take(self.exported_func(
            &init_tls_sig,
            PatchError::MissingLinkerExports {
                names: vec![abi::INIT_TLS],
            },
        ));
        let malloc = take(self.exported_func(
            &abi::MALLOC,
            PatchError::MissingGuestExports(vec![abi::MALLOC.name]),
        ));
        let free = take(self.exported_func(
            &abi::FREE,
            PatchError::MissingGuestExports(vec![abi::FREE.name]),
        ));
        if !missing_linker.is_empty() {
            problems.push(PatchError::MissingLinkerExports {
                names: missing_linker,
            });
        }
        if !missing_guest.is_empty() {
            problems.push(PatchError::MissingGuestExports(missing_guest));
        }
        if let Some(error) = PatchError::from_problems(problems) {
            return Err(error);
        }
        let (
            Some((min, max)),
            Some(heap_base_global),
            Some(tls_size),
            Some(tls_align),
            Some(tls_base),
            Some(init_tls),
            Some(malloc),
            Some(free),
        ) = (
            memory,
            heap_base_global,
            tls_size,
            tls_align,
            tls_base,
            init_tls,
            malloc,
            free,
        )
        else {
            unreachable!("every missing item was reported as a problem")
        };
        let stack_pointer = self.stack_pointer(tls_base)?;
        let hb = &self.globals[heap_base_global as usize];
        let heap_base = match (hb.imported, hb.init) {
            (false, Some(v)) => v as u32,
            _ => return Err(PatchError::HeapBaseNotConstant),
        };

        let reserved = heap_base.checked_add(15).map(|v| v & !15);
        let new_heap_base = reserved.and_then(|r| r.checked_add(RESERVED_BYTES));
        let (Some(reserved), Some(new_heap_base)) = (reserved, new_heap_base) else {
            return Err(PatchError::MemoryTooSmall {
                needed: (1 << 16) + 1,
                max,
            });
        };
        let needed = u64::from(new_heap_base).div_ceil(PAGE);
        if needed > max {
            return Err(PatchError::MemoryTooSmall { needed, max });
        }
        // The index of the first new item, if the new items fit in the index space.
        let first_new = |len: usize, added: u32, what: &str| {
            u32::try_from(len)
                .ok()
                .filter(|n| n.checked_add(added).is_some())
                .ok_or_else(|| {
                    PatchError::Unsupported(format!(
                        "the module has {len} {what}, and the patcher's {added} more would not \
                         fit in the 32-bit index space; split the module"
                    ))
                })
        };
        let first_new_type = first_new(self.types.len(), 2, "types")?;
        let first_new_func = first_new(self.funcs.len(), NEW_FUNCS, "functions")?;
        let first_new_global = first_new(self.globals.len(), 2, "globals")?;
        Ok(Plan {
            stack_size: config.stack_size,
            memory_min: min.max(needed),
            heap_base_global,
            heap_base: new_heap_base,
            lock_addr: reserved + LOCK_OFFSET,
            counter_addr: reserved + COUNTER_OFFSET,
            temp_stack_top: new_heap_base,
            stack_pointer,
            tls_size,
            tls_align,
            init_tls,
            malloc,
            free,
            orig_start: self.start,
            first_new_type,
            first_new_func,
            first_new_global,
        })
    }

    fn write(&self, plan: &Plan) -> Vec<u8> {
        let mut module = wasm_encoder::Module::new();
        // The sections that get new items but are missing from the input (a module whose
        // functions are all imported has no function and code section) are written with
        // only the new items, where the binary format puts them. The start section is
        // always the patcher's: the input's one, if any, is replaced.
        let mut pending: Vec<u8> = EXTENDED_SECTIONS
            .into_iter()
            .filter(|&id| id == START_SECTION || !self.sections.iter().any(|(i, ..)| *i == id))
            .collect();
        pending.reverse();
        for (id, range, custom) in &self.sections {
            let id = *id;
            if let Some(rank) = section_rank(id) {
                while let Some(&next) = pending.last() {
                    if section_rank(next) > Some(rank) {
                        break;
                    }
                    pending.pop();
                    self.write_section(&mut module, plan, next, None, EMPTY_VECTOR);
                }
                if id == START_SECTION {
                    continue;
                }
            }
            self.write_section(&mut module, plan, id, *custom, &self.wasm[range.clone()]);
        }
        while let Some(id) = pending.pop() {
            self.write_section(&mut module, plan, id, None, EMPTY_VECTOR);
        }
        let mut payload = Vec::with_capacity(8);
        payload.extend_from_slice(&plan.first_new_func.to_le_bytes());
        payload.extend_from_slice(&NEW_FUNCS.to_le_bytes());
        module.section(&wasm_encoder::CustomSection {
            name: PATCH_SECTION.into(),
            data: payload.into(),
        });
        module.finish()
    }

    /// Writes section `id` (`custom` is a custom section's name) of the input, whose
    /// content is `content`, with the patcher's items added.
    fn write_section(
        &self,
        module: &mut wasm_encoder::Module,
        plan: &Plan,
        id: u8,
        custom: Option<&str>,
        content: &[u8],
    ) {
        let raw = |module: &mut wasm_encoder::Module, id: u8, data: &[u8]| {
            module.section(&RawSection { id, data });
        };
        match (id, custom) {
            (START_SECTION, _) => {
                let mut s = Vec::new();
                plan.first_new_func.encode(&mut s);
                raw(module, START_SECTION, &s);
            }
            (1, _) => {
                let mut extra = Vec::new();
                for (params, results) in [(&[][..], &[][..]), (&[0x7f, 0x7f][..], &[][..])] {
                    extra.push(0x60);
                    params.len().encode(&mut extra);
                    extra.extend_from_slice(params);
                    results.len().encode(&mut extra);
                    extra.extend_from_slice(results);
                }
                raw(module, 1, &append_items(content, 2, &extra));
            }
            (2, _) => {
                let mut imports = wasm_encoder::ImportSection::new();
                let reader = self.imports.clone().expect("import section was scanned");
                MemoryMin(plan.memory_min)
                    .parse_import_section(&mut imports, reader)
                    .expect("import section was scanned");
                module.section(&imports);
            }
            (3, _) => {
                let mut extra = Vec::new();
                // `$__wasmgrind_start`, `$__wasmgrind_thread_destroy`, `$__wasmgrind_lock`.
                for ty in [0, 1, 0] {
                    (plan.first_new_type + ty).encode(&mut extra);
                }
                raw(module, 3, &append_items(content, NEW_FUNCS, &extra));
            }
            (6, _) => {
                let mut globals = wasm_encoder::GlobalSection::new();
                let imported = self.globals.iter().filter(|g| g.imported).count() as u32;
                let reader = self.global_section.clone().into_iter().flatten();
                for (i, g) in reader.enumerate() {
                    let g = g.expect("global section was scanned");
                    if imported + i as u32 == plan.heap_base_global {
                        globals.global(
                            RoundtripReencoder.global_type(g.ty).expect("scanned"),
                            &wasm_encoder::ConstExpr::i32_const(plan.heap_base as i32),
                        );
                    } else {
                        RoundtripReencoder
                            .parse_global(&mut globals, g)
                            .expect("global section was scanned");
                    }
                }
                for _ in 0..2 {
                    globals.global(
                        wasm_encoder::GlobalType {
                            val_type: wasm_encoder::ValType::I32,
                            mutable: true,
                            shared: false,
                        },
                        &wasm_encoder::ConstExpr::i32_const(0),
                    );
                }
                module.section(&globals);
            }
            (7, _) => {
                let mut extra = Vec::new();
                abi::THREAD_DESTROY.name.encode(&mut extra);
                extra.push(0x00);
                (plan.first_new_func + 1).encode(&mut extra);
                abi::STACK_BASE_EXPORT.encode(&mut extra);
                extra.push(0x03);
                plan.first_new_global.encode(&mut extra);
                raw(module, 7, &append_items(content, 2, &extra));
            }
            (10, _) => {
                let mut extra = Vec::new();
                start_function(plan).encode(&mut extra);
                destroy_function(plan).encode(&mut extra);
                lock_function(plan).encode(&mut extra);
                raw(module, 10, &append_items(content, NEW_FUNCS, &extra));
            }
            (0, Some("name")) => {
                // Each name section gets the new names (a module should have one).
                let mut reader = BinaryReader::new(content, 0);
                let data = match reader.read_string() {
                    Ok(_) => &content[reader.original_position() as usize..],
                    Err(_) => &[][..],
                };
                module.section(&self.name_section(plan, data));
            }
            _ => raw(module, id, content),
        }
    }

    /// The name section with the new functions and globals added. Subsections are read
    /// as raw `(id, size, bytes)` triples; only the function (1) and global (7) name maps
    /// are decoded, every other subsection is copied as is. `data` is the content of one
    /// name section, after its name.
    fn name_section(&self, plan: &Plan, data: &[u8]) -> wasm_encoder::NameSection {
        const FUNCS: u8 = 1;
        const GLOBALS: u8 = 7;
        let mut reader = BinaryReader::new(data, 0);
        let mut names = wasm_encoder::NameSection::new();
        let mut next_new = FUNCS;
        // Writes our name maps for ids below `before` that the original did not have.
        let fill = |names: &mut wasm_encoder::NameSection, before: u8, next_new: &mut u8| {
            if *next_new == FUNCS && before > FUNCS {
                names.functions(&self.new_names(None, plan, FUNCS));
                *next_new = GLOBALS;
            }
            if *next_new == GLOBALS && before > GLOBALS {
                names.globals(&self.new_names(None, plan, GLOBALS));
                *next_new = u8::MAX;
            }
        };
        while !reader.eof() {
            let sub = (|| {
                let id = reader.read_u8()?;
                let len = reader.read_var_u32()? as usize;
                let start = reader.original_position();
                let data = reader.read_bytes(len)?;
                Ok::<_, wasmparser::BinaryReaderError>((id, start, data))
            })();
            let Ok((id, start, data)) = sub else {
                // A malformed tail is dropped, as engines ignore it.
                break;
            };
            fill(&mut names, id, &mut next_new);
            if id == FUNCS || id == GLOBALS {
                let map = wasmparser::NameMap::new(BinaryReader::new(data, start));
                let merged = self.new_names(map.ok(), plan, id);
                if id == FUNCS {
                    names.functions(&merged);
                } else {
                    names.globals(&merged);
                }
                next_new = if id == FUNCS { GLOBALS } else { u8::MAX };
            } else {
                names.raw(id, data);
            }
        }
        fill(&mut names, u8::MAX, &mut next_new);
        names
    }

    /// The original function or global names (`kind` 1 or 7) followed by the new ones.
    fn new_names(
        &self,
        original: Option<wasmparser::NameMap<'_>>,
        plan: &Plan,
        kind: u8,
    ) -> wasm_encoder::NameMap {
        let mut m = wasm_encoder::NameMap::new();
        // A name of an index past the module's functions (or globals) names nothing; it
        // would also put the new names, which follow, out of order.
        let first_new = if kind == 1 {
            plan.first_new_func
        } else {
            plan.first_new_global
        };
        for naming in original.into_iter().flatten().flatten() {
            if naming.index < first_new {
                m.append(naming.index, naming.name);
            }
        }
        if kind == 1 {
            m.append(plan.first_new_func, "__wasmgrind_start");
            m.append(plan.first_new_func + 1, abi::THREAD_DESTROY.name);
            m.append(plan.first_new_func + 2, "__wasmgrind_lock");
        } else {
            m.append(plan.first_new_global, abi::STACK_BASE_EXPORT);
            m.append(plan.first_new_global + 1, "__wasmgrind_tls_block");
        }
        m
    }
}

/// A vector section with `extra_count` already encoded items appended: the count is
/// rewritten and every original item is copied as is.
fn append_items(content: &[u8], extra_count: u32, extra: &[u8]) -> Vec<u8> {
    let mut reader = BinaryReader::new(content, 0);
    // The scan has read every item, so the count is real; `plan` checked that the
    // indices of the new items fit in a u32, and so does their count.
    let count = reader.read_var_u32().unwrap_or(0);
    let rest = &content[reader.original_position() as usize..];
    let mut out = Vec::with_capacity(content.len() + extra.len() + 5);
    count.saturating_add(extra_count).encode(&mut out);
    out.extend_from_slice(rest);
    out.extend_from_slice(extra);
    out
}

/// The content of a vector section without items.
const EMPTY_VECTOR: &[u8] = &[0];

/// Id of the start section.
const START_SECTION: u8 = 8;

/// The sections the patcher adds items to: type, function, global, export, start and
/// code, in the order of the binary format.
const EXTENDED_SECTIONS: [u8; 6] = [1, 3, 6, 7, START_SECTION, 10];

/// The position of a non-custom section in the order the binary format prescribes
/// (the tag section comes before the global section, the data count section before the
/// code section); `None` for a custom section.
fn section_rank(id: u8) -> Option<u8> {
    Some(match id {
        1..=5 => id,
        13 => 6,
        6..=9 => id + 1,
        12 => 11,
        10 => 12,
        11 => 13,
        _ => return None,
    })
}

/// Re-encodes imports with the memory's minimum raised to the planned value.
struct MemoryMin(u64);

impl Reencode for MemoryMin {
    type Error = std::convert::Infallible;

    fn memory_type(
        &mut self,
        memory_ty: wasmparser::MemoryType,
    ) -> Result<wasm_encoder::MemoryType, wasm_encoder::reencode::Error<Self::Error>> {
        Ok(wasm_encoder::MemoryType {
            minimum: memory_ty.initial.max(self.0),
            maximum: memory_ty.maximum,
            memory64: memory_ty.memory64,
            shared: memory_ty.shared,
            page_size_log2: memory_ty.page_size_log2,
        })
    }
}

fn memarg_i32() -> MemArg {
    MemArg {
        offset: 0,
        align: 2,
        target: wasm_encoder::MemArgTarget::Memory(0),
        ordering: None,
    }
}

/// Takes the lock of the reserved page.
fn lock(f: &mut InstructionSink<'_>, plan: &Plan) {
    f.call(plan.first_new_func + 2);
}

/// `$__wasmgrind_lock`: waits until the lock word of the reserved page was 0 and sets it
/// to 1. It is a function of its own, without locals, because V8's baseline compiler in
/// Node 20 loses a function's locals across `memory.atomic.wait32`: the callers keep
/// theirs in a frame that never waits.
fn lock_function(plan: &Plan) -> Function {
    let mut func = Function::new([]);
    func.instructions()
        .loop_(BlockType::Empty)
        .i32_const(plan.lock_addr as i32)
        .i32_const(0)
        .i32_const(1)
        .i32_atomic_rmw_cmpxchg(memarg_i32())
        .if_(BlockType::Empty)
        .i32_const(plan.lock_addr as i32)
        .i32_const(1)
        .i64_const(-1)
        .memory_atomic_wait32(memarg_i32())
        .drop()
        .br(1)
        .end()
        .end()
        .end();
    func
}

/// Releases the lock word and wakes one waiter.
fn unlock(f: &mut InstructionSink<'_>, plan: &Plan) {
    f.i32_const(plan.lock_addr as i32)
        .i32_const(0)
        .i32_atomic_store(memarg_i32())
        .i32_const(plan.lock_addr as i32)
        .i32_const(1)
        .memory_atomic_notify(memarg_i32())
        .drop();
}

/// `$__wasmgrind_start`; local 0 holds an allocation.
fn start_function(plan: &Plan) -> Function {
    let mut func = Function::new([(1, wasm_encoder::ValType::I32)]);
    let mut f = func.instructions();
    if let Some(start) = plan.orig_start {
        f.call(start);
    }
    f.i32_const(plan.counter_addr as i32)
        .i32_const(1)
        .i32_atomic_rmw_add(memarg_i32())
        .if_(BlockType::Empty);
    lock(&mut f, plan);
    f.i32_const(plan.temp_stack_top as i32)
        .global_set(plan.stack_pointer)
        .i32_const(plan.stack_size as i32)
        .i32_const(16)
        .call(plan.malloc)
        .local_set(0);
    unlock(&mut f, plan);
    f.local_get(0)
        .i32_eqz()
        .if_(BlockType::Empty)
        .unreachable()
        .end()
        .local_get(0)
        .global_set(plan.first_new_global)
        .local_get(0)
        .i32_const(plan.stack_size as i32)
        .i32_add()
        .global_set(plan.stack_pointer)
        .end();
    f.global_get(plan.tls_size)
        .if_(BlockType::Empty)
        .global_get(plan.tls_size)
        .global_get(plan.tls_align)
        .call(plan.malloc)
        .local_tee(0)
        .i32_eqz()
        .if_(BlockType::Empty)
        .unreachable()
        .end()
        .local_get(0)
        .global_set(plan.first_new_global + 1)
        // `memory.grow 0` makes the engine look at the memory's size again: the block may
        // lie in pages that another thread grew a moment ago, and `__wasm_init_tls`'s
        // `memory.init` is bounds-checked against this instance's view of the size, which
        // V8 updates for other threads' growth only later.
        .i32_const(0)
        .memory_grow(0)
        .drop()
        .local_get(0)
        .call(plan.init_tls)
        .end()
        .end();
    func
}

/// `$__wasmgrind_thread_destroy(tls_base, stack_base)`; local 2 is set when the
/// instance frees its own stack.
fn destroy_function(plan: &Plan) -> Function {
    let (tls, stack, own) = (0, 1, 2);
    let (g_stack, g_tls) = (plan.first_new_global, plan.first_new_global + 1);
    let mut func = Function::new([(1, wasm_encoder::ValType::I32)]);
    let mut f = func.instructions();
    f.local_get(stack)
        .i32_eqz()
        .if_(BlockType::Empty)
        .global_get(g_stack)
        .local_tee(stack)
        .local_set(own)
        .i32_const(0)
        .global_set(g_stack)
        .end()
        .local_get(tls)
        .i32_eqz()
        .if_(BlockType::Empty)
        .global_get(g_tls)
        .local_set(tls)
        .i32_const(0)
        .global_set(g_tls)
        .end()
        .local_get(own)
        .if_(BlockType::Empty);
    lock(&mut f, plan);
    f.i32_const(plan.temp_stack_top as i32)
        .global_set(plan.stack_pointer)
        .end()
        .local_get(tls)
        .if_(BlockType::Empty)
        .local_get(tls)
        .global_get(plan.tls_size)
        .global_get(plan.tls_align)
        .call(plan.free)
        .end()
        .local_get(stack)
        .if_(BlockType::Empty)
        .local_get(stack)
        .i32_const(plan.stack_size as i32)
        .i32_const(16)
        .call(plan.free)
        .end()
        .local_get(own)
        .if_(BlockType::Empty);
    unlock(&mut f, plan);
    f.end().end();
    func
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_output_of_a_valid_input_is_reported_as_a_bug() {
        let input = wat::parse_str("(module (func))").unwrap();
        let broken = wat::parse_str("(module (func (result i32)))").unwrap();
        let err = check_output(&input, &broken).unwrap_err();
        assert!(matches!(err, PatchError::InvalidOutput(_)), "{err:?}");
        assert!(err.to_string().contains("please report"));
        let err = check_output(&broken, &broken).unwrap_err();
        assert!(matches!(err, PatchError::InvalidInput(_)), "{err:?}");
    }
}
