//! [`refresh_bounds`]: makes V8 see another thread's `memory.grow` before an operation that
//! it bounds-checks against its own view of a shared memory's size.

use wasm_encoder::{BlockType, Encode, InstructionSink};
use wasmparser::{FunctionBody, MemArgTarget, Operator, Parser, Payload, TypeRef};

use crate::PatchError;

/// Rewrites every function of `wasm` so that V8 cannot trap on shared memory that
/// another thread grew a moment ago; see the crate docs' "Growth seen by every thread".
///
/// It changes exactly this, and only in functions that contain one of the operations:
/// before every `memory.fill`, `memory.copy`, `memory.init` and `memory.atomic.notify`
/// on a shared 32-bit memory, the operands go to new locals (three `i32`s, appended to
/// the function's locals), and if the last byte the operation touches lies at or past
/// `memory.size` (on the memory it touches; both memories of a `memory.copy`), a
/// `memory.grow 0` runs on that memory before the operation. The operands are then put
/// back and the operation runs unchanged. Every other byte of the module is copied as
/// it is (function indices, custom sections, data), so the result has the same
/// functions, imports and exports; only code offsets move.
///
/// A module without such operations comes back byte for byte.
pub fn refresh_bounds(wasm: &[u8]) -> Result<Vec<u8>, PatchError> {
    // Memory index -> does it need the check (shared and 32-bit)?
    let mut checked: Vec<bool> = Vec::new();
    let mut type_params: Vec<Option<u32>> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    // Where the section before the code section ends: the code section's id byte.
    let mut code_header = 8usize;
    let mut code: Option<(std::ops::Range<usize>, Vec<FunctionBody<'_>>)> = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        if code.is_none() {
            if let Some((_, range)) = payload.as_section() {
                if !matches!(payload, Payload::CodeSectionStart { .. }) {
                    code_header = range.end as usize;
                }
            }
        }
        match payload {
            Payload::Version { encoding, .. } => crate::check_encoding(encoding)?,
            Payload::TypeSection(r) => {
                for group in r {
                    for sub in group?.into_types() {
                        type_params.push(match sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                Some(f.params().len() as u32)
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    if let TypeRef::Memory(m) = imp?.ty {
                        checked.push(m.shared && !m.memory64);
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    func_types.push(t?);
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    let m = m?;
                    checked.push(m.shared && !m.memory64);
                }
            }
            Payload::CodeSectionStart {
                unchecked_range, ..
            } => {
                let r = unchecked_range;
                code = Some((r.start as usize..r.end as usize, Vec::new()));
            }
            Payload::CodeSectionEntry(body) => {
                if let Some((_, bodies)) = code.as_mut() {
                    bodies.push(body);
                }
            }
            _ => {}
        }
    }
    let Some((range, bodies)) = code else {
        return Ok(wasm.to_vec());
    };
    if !checked.iter().any(|&c| c) {
        return Ok(wasm.to_vec());
    }
    let mut section = Vec::with_capacity(range.len() + range.len() / 16);
    (bodies.len() as u32).encode(&mut section);
    let mut changed = false;
    for (i, body) in bodies.iter().enumerate() {
        let params = func_types
            .get(i)
            .and_then(|&t| type_params.get(t as usize).copied().flatten())
            .ok_or_else(|| {
                PatchError::Unsupported(format!(
                    "function {i} of the code section has no function type"
                ))
            })?;
        match rewrite_body(body, params, &checked)? {
            Some(new) => {
                changed = true;
                (new.len() as u32).encode(&mut section);
                section.extend_from_slice(&new);
            }
            None => {
                let r = body.range();
                let raw = &wasm[r.start as usize..r.end as usize];
                (raw.len() as u32).encode(&mut section);
                section.extend_from_slice(raw);
            }
        }
    }
    if !changed {
        return Ok(wasm.to_vec());
    }
    let header_start = code_header;
    let mut out = Vec::with_capacity(wasm.len() + section.len());
    out.extend_from_slice(&wasm[..header_start]);
    out.push(wasm_encoder::SectionId::Code as u8);
    (section.len() as u32).encode(&mut out);
    out.extend_from_slice(&section);
    out.extend_from_slice(&wasm[range.end..]);
    Ok(out)
}

/// One operation that gets the check, found at `at` in the body.
enum Site {
    /// `memory.fill`, `memory.copy` or `memory.init`: `(d, s_or_value, n)`, the memory
    /// written at `d` and, for a copy, the memory read at `s`.
    Bulk {
        at: usize,
        dst: u32,
        src: Option<u32>,
    },
    /// `memory.atomic.notify`: `(addr, count)`, touching 4 bytes at `addr + offset`.
    Notify { at: usize, memory: u32, offset: u64 },
}

/// The rewritten body of one function, or `None` when it has nothing to check.
fn rewrite_body(
    body: &FunctionBody<'_>,
    params: u32,
    checked: &[bool],
) -> Result<Option<Vec<u8>>, PatchError> {
    let is_checked = |m: u32| checked.get(m as usize).copied().unwrap_or(false);
    let mut ops = body.get_operators_reader()?;
    let ops_start = ops.original_position() as usize;
    let mut sites = Vec::new();
    while !ops.eof() {
        let (op, at) = ops.read_with_offset()?;
        let at = at as usize;
        let site = match op {
            Operator::MemoryFill { mem } if is_checked(mem) => Site::Bulk {
                at,
                dst: mem,
                src: None,
            },
            Operator::MemoryInit { mem, .. } if is_checked(mem) => Site::Bulk {
                at,
                dst: mem,
                src: None,
            },
            Operator::MemoryCopy { dst_mem, src_mem }
                if is_checked(dst_mem) || is_checked(src_mem) =>
            {
                Site::Bulk {
                    at,
                    dst: dst_mem,
                    src: Some(src_mem),
                }
            }
            Operator::MemoryAtomicNotify { memarg } => match memarg.target {
                MemArgTarget::Memory(memory) if is_checked(memory) => Site::Notify {
                    at,
                    memory,
                    offset: memarg.offset,
                },
                _ => continue,
            },
            _ => continue,
        };
        sites.push(site);
    }
    if sites.is_empty() {
        return Ok(None);
    }
    let mut locals = body.get_locals_reader()?;
    let groups = locals.get_count();
    let mut declared = u64::from(params);
    for _ in 0..groups {
        declared += u64::from(locals.read()?.0);
    }
    let first = u32::try_from(declared)
        .ok()
        .filter(|f| f.checked_add(3).is_some())
        .ok_or_else(|| PatchError::Unsupported("a function has too many locals".into()))?;
    let locals_end = locals.original_position() as usize;

    let raw = body.as_bytes();
    let base = body.range().start as usize;
    let mut out = Vec::with_capacity(raw.len() + sites.len() * 40);
    // The locals: the original groups, then three i32s.
    (groups + 1).encode(&mut out);
    let groups_start = {
        let mut r = body.get_binary_reader();
        r.read_var_u32()?;
        r.original_position() as usize
    };
    out.extend_from_slice(&raw[groups_start - base..locals_end - base]);
    3u32.encode(&mut out);
    wasm_encoder::ValType::I32.encode(&mut out);
    debug_assert_eq!(locals_end, ops_start);
    let (a, b, c) = (first, first + 1, first + 2);
    let mut copied = ops_start;
    for site in &sites {
        let at = match site {
            Site::Bulk { at, .. } | Site::Notify { at, .. } => *at,
        };
        out.extend_from_slice(&raw[copied - base..at - base]);
        copied = at;
        let mut sink = InstructionSink::new(&mut out);
        match *site {
            Site::Bulk { dst, src, .. } => {
                sink.local_set(c).local_set(b).local_set(a);
                if is_checked(dst) {
                    check(&mut sink, a, Extent::Local(c), dst);
                }
                if let Some(src) = src.filter(|&s| is_checked(s)) {
                    check(&mut sink, b, Extent::Local(c), src);
                }
                sink.local_get(a).local_get(b).local_get(c);
            }
            Site::Notify { memory, offset, .. } => {
                sink.local_set(b).local_set(a);
                check(
                    &mut sink,
                    a,
                    Extent::Bytes(offset.saturating_add(4)),
                    memory,
                );
                sink.local_get(a).local_get(b);
            }
        }
    }
    out.extend_from_slice(&raw[copied - base..]);
    Ok(Some(out))
}

/// How far past an address an operation reaches.
enum Extent {
    /// The `i32` length in a local.
    Local(u32),
    /// A constant number of bytes (a static offset plus the access size).
    Bytes(u64),
}

/// `if addr + extent > memory.size * 65536 { memory.grow 0 }` on memory `memory`, in
/// 64-bit arithmetic so that nothing wraps.
fn check(sink: &mut InstructionSink<'_>, addr: u32, extent: Extent, memory: u32) {
    sink.local_get(addr).i64_extend_i32_u();
    match extent {
        Extent::Local(l) => sink.local_get(l).i64_extend_i32_u(),
        Extent::Bytes(n) => sink.i64_const(n as i64),
    };
    sink.i64_add()
        .memory_size(memory)
        .i64_extend_i32_u()
        .i64_const(16)
        .i64_shl()
        .i64_gt_u()
        .if_(BlockType::Empty)
        .i32_const(0)
        .memory_grow(memory)
        .drop()
        .end();
}
