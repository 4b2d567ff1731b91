//! The header scan that runs before the rewrite.
//!
//! The rewrite must know a few facts before it reaches the sections that hold them: the
//! `wasmgrind.patch` section (usually the last section) says which functions the patcher
//! injected, and the import section says which imports are located (their types are
//! appended to the type section, which comes first). The scan walks the section headers,
//! skips the code section without looking inside, and reads only the small import,
//! function and memory sections and the custom section names.

use wasmgrind_core::abi::{self, FuncSig};
use wasmparser::{Chunk, Encoding, Parser, Payload, TypeRef};

use crate::{InstrumentError, INSTRUMENT_SECTION};

/// One import of [`abi::IMPORT_MODULE`] whose calls get a location.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocatedImport {
    /// Its index in the function index space.
    pub func_index: u32,
    /// Its ABI signature.
    pub sig: FuncSig,
    /// Its type index in the input.
    pub type_index: u32,
}

/// What the scan found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Number of imported functions.
    pub func_imports: u32,
    /// Number of functions defined in the module.
    pub defined: u32,
    /// The located imports, in import order.
    pub located: Vec<LocatedImport>,
    /// `(first injected function, count)` from the patch section.
    pub patch: (u32, u32),
    /// Whether memory 0 is a 64-bit memory.
    pub memory0_is_64: bool,
    /// The functions of the guest's allocator (see [`is_allocator`]), sorted: their
    /// memory accesses are the runtime's business, not the program's, and are not traced.
    pub allocator: Vec<u32>,
}

/// Whether the function named `name` (as in the name section, mangled or not) belongs to
/// the guest's memory allocator.
///
/// The allocator's own accesses would otherwise be reported as races and its spin lock
/// would order every thread that allocates; like ThreadSanitizer, Wasmgrind records
/// allocations at the allocator's boundary instead (the `alloc`/`free` imports). Recognised:
/// Rust's allocator shims (`__rust_alloc`, `__rust_dealloc`, `__rust_realloc`,
/// `__rust_alloc_zeroed`, `__rdl_*`), every function of the `dlmalloc` crate and of std's
/// `System` allocator (std's allocator on wasm32), the guest library's calls of it
/// (`wasmgrind_guest::alloc::system_*`, never inlined, so that the allocator's spin lock
/// cannot land in a caller), and the C allocator entry points and internals of
/// wasi-libc's dlmalloc (`malloc`, `free`, `calloc`, `realloc`, `aligned_alloc`,
/// `posix_memalign`, `dlmalloc`, `dlfree`, ...).
pub(crate) fn is_allocator(name: &str) -> bool {
    const RUST: [&str; 9] = [
        "__rust_alloc",
        "__rust_dealloc",
        "__rust_realloc",
        "__rdl_",
        "__rg_",
        "dlmalloc::",
        "<std::alloc::System as core::alloc::global::GlobalAlloc>::",
        "std::sys::alloc::",
        "wasmgrind_guest::alloc::system_",
    ];
    const C: [&str; 13] = [
        "malloc",
        "free",
        "calloc",
        "realloc",
        "aligned_alloc",
        "posix_memalign",
        "memalign",
        "dlmalloc",
        "dlfree",
        "dlrealloc",
        "dlcalloc",
        "internal_memalign",
        "dispose_chunk",
    ];
    if C.contains(&name) {
        return true;
    }
    // Every Rust pattern contains `alloc`, mangled or not: demangle only those names.
    if !name.contains("alloc") {
        return false;
    }
    let name = &*wasmgrind_core::analysis::symbolize::demangle(name);
    RUST.iter().any(|p| name.contains(p))
}

/// The allocator's functions named in the name section `data` (at `offset` in the
/// module). A malformed name section is skipped as engines skip it: it only costs the
/// exclusion of the allocator.
fn allocator_functions(data: &[u8], offset: u64) -> Vec<u32> {
    let mut out = Vec::new();
    let reader = wasmparser::NameSectionReader::new(wasmparser::BinaryReader::new(data, offset));
    for sub in reader {
        let Ok(wasmparser::Name::Function(map)) = sub else {
            if sub.is_err() {
                break;
            }
            continue;
        };
        for naming in map {
            let Ok(naming) = naming else { break };
            if is_allocator(naming.name) {
                out.push(naming.index);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The imports whose calls get the call site's location (every ABI import but `panic`).
pub(crate) const LOCATED: [FuncSig; 6] = [
    abi::THREAD_CREATE,
    abi::THREAD_JOIN,
    abi::START_LOCK,
    abi::FINISH_LOCK,
    abi::START_UNLOCK,
    abi::FINISH_UNLOCK,
];

pub(crate) fn scan(wasm: &[u8]) -> Result<Scan, InstrumentError> {
    let mut out = Scan::default();
    let mut patch: Option<(u32, u32)> = None;
    // TEMPORARY (H-C owns this file): a wasi-threads module is not patched.
    let mut wasi = false;
    let mut parser = Parser::new(0);
    let mut rest = wasm;
    let mut memories_seen = false;
    loop {
        let (consumed, payload) = match parser.parse(rest, true).map_err(malformed)? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            // `eof` is true, so the parser reports missing bytes as an error instead.
            Chunk::NeedMoreData(_) => {
                return Err(InstrumentError::Malformed(
                    "the module ends in the middle of a section".into(),
                ))
            }
        };
        rest = &rest[consumed..];
        match payload {
            Payload::Version { encoding, .. } if encoding != Encoding::Module => {
                return Err(InstrumentError::Component);
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(malformed)?;
                    let index = match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => {
                            out.func_imports += 1;
                            Some(out.func_imports - 1)
                        }
                        TypeRef::Memory(m) => {
                            if !memories_seen {
                                out.memory0_is_64 = m.memory64;
                                memories_seen = true;
                            }
                            None
                        }
                        _ => None,
                    };
                    if import.module == "wasi" || import.module == "wasi_snapshot_preview1" {
                        wasi = true;
                    }
                    if import.module != abi::IMPORT_MODULE {
                        continue;
                    }
                    if [
                        abi::MEM_READ,
                        abi::MEM_WRITE,
                        abi::MEM_ATOMIC_BEGIN,
                        abi::MEM_ATOMIC_VALUE,
                    ]
                    .iter()
                    .any(|h| h.name == import.name)
                    {
                        return Err(InstrumentError::AlreadyInstrumented {
                            evidence: format!(
                                "it imports the memory hook `{}.{}`",
                                abi::IMPORT_MODULE,
                                import.name
                            ),
                        });
                    }
                    let Some(sig) = LOCATED.iter().copied().find(|s| s.name == import.name) else {
                        continue;
                    };
                    match (import.ty, index) {
                        (TypeRef::Func(t) | TypeRef::FuncExact(t), Some(func_index)) => {
                            out.located.push(LocatedImport {
                                func_index,
                                sig,
                                type_index: t,
                            })
                        }
                        _ => {
                            return Err(InstrumentError::ImportSignature {
                                name: sig.name,
                                expected: sig.to_string(),
                                found: "not a function".into(),
                            })
                        }
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                // The rewrite sizes its tables by this count: it must be real, and every
                // entry takes a byte at least.
                let bytes = reader.range().end - reader.range().start;
                if u64::from(reader.count()) > bytes {
                    return Err(InstrumentError::Malformed(format!(
                        "the function section declares {} functions in {bytes} bytes",
                        reader.count()
                    )));
                }
                out.defined = reader.count();
            }
            Payload::MemorySection(reader) if !memories_seen => {
                if let Some(first) = reader.into_iter().next() {
                    out.memory0_is_64 = first.map_err(malformed)?.memory64;
                    memories_seen = true;
                }
            }
            Payload::CodeSectionStart { count, size, .. } => {
                parser.skip_section();
                // Every body takes three bytes at least (size, local count, `end`).
                if u64::from(count) * 3 > u64::from(size) {
                    return Err(InstrumentError::Malformed(format!(
                        "the code section declares {count} function bodies in {size} bytes"
                    )));
                }
                let size = size as usize;
                if size > rest.len() {
                    return Err(InstrumentError::Malformed(
                        "the code section extends past the end of the module".into(),
                    ));
                }
                rest = &rest[size..];
            }
            Payload::CustomSection(section) => {
                if section.name() == abi::PATCH_SECTION {
                    if patch.is_some() {
                        return Err(InstrumentError::InvalidPatchSection {
                            reason: "the section appears twice".into(),
                        });
                    }
                    patch = Some(parse_patch_section(section.data())?);
                } else if section.name() == "name" {
                    out.allocator = allocator_functions(section.data(), section.data_offset());
                } else if section.name() == INSTRUMENT_SECTION {
                    return Err(InstrumentError::AlreadyInstrumented {
                        evidence: format!("it has the `{INSTRUMENT_SECTION}` custom section"),
                    });
                }
            }
            Payload::End(_) => break,
            _ => {}
        }
    }
    let total = u64::from(out.func_imports) + u64::from(out.defined);
    // A wasi-threads module is not patched (its libc gives threads their stacks and TLS):
    // no function was injected.
    let (first, count) = match patch {
        Some(p) => p,
        None if wasi => (total as u32, 0),
        None => return Err(InstrumentError::NotPatched),
    };
    if first < out.func_imports || u64::from(first) + u64::from(count) != total {
        return Err(InstrumentError::InvalidPatchSection {
            reason: format!(
                "it lists functions {first}..{} as injected, but the injected functions must be \
                 the last defined functions and the module has functions {}..{total}",
                u64::from(first) + u64::from(count),
                out.func_imports
            ),
        });
    }
    out.patch = (first, count);
    Ok(out)
}

/// Decodes the payload of [`abi::PATCH_SECTION`]: two little-endian `u32`s.
pub(crate) fn parse_patch_section(data: &[u8]) -> Result<(u32, u32), InstrumentError> {
    let bytes: [u8; 8] = data
        .try_into()
        .map_err(|_| InstrumentError::InvalidPatchSection {
            reason: format!(
                "its payload is {} bytes long, but it must be exactly 8 (two little-endian u32s)",
                data.len()
            ),
        })?;
    let first = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let count = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    Ok((first, count))
}

pub(crate) fn malformed(e: wasmparser::BinaryReaderError) -> InstrumentError {
    InstrumentError::Malformed(e.to_string())
}
