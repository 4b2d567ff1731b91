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
    /// The functions of the C allocator (see [`is_c_allocator`]), sorted: calls from
    /// them are never redirected to an allocation wrapper.
    pub c_allocator: Vec<u32>,
    /// The libc synchronization functions (see [`is_libc_sync`]), sorted: their plain
    /// loads and stores are traced as atomic ones.
    pub libc_sync: Vec<u32>,
    /// The C allocator's and libc's thread entry points defined by the module, with their
    /// kind, sorted by function index (see [`EntryKind`]). Only the ones whose type is
    /// the C one.
    pub entries: Vec<(u32, EntryKind)>,
    /// Whether the module imports `wasmgrind.heap_alloc` or `wasmgrind.heap_free`: it
    /// reports its allocations itself (the guest library does), so it gets no wrappers.
    pub reports_allocations: bool,
    /// Type index of every defined function.
    pub func_types: Vec<u32>,
    /// `(params, results)` of every type of the type section (`None`: not a function).
    pub types: Vec<Option<(Vec<wasmparser::ValType>, Vec<wasmparser::ValType>)>>,
}

impl Scan {
    /// Whether function `f`'s memory accesses are traced (with memory tracing on): it is
    /// neither injected by the patcher nor a function of the guest's allocator.
    pub fn traced(&self, f: u32) -> bool {
        f < self.patch.0 && self.allocator.binary_search(&f).is_err()
    }

    /// Whether function `f` is a libc synchronization function.
    pub fn is_libc_sync(&self, f: u32) -> bool {
        self.libc_sync.binary_search(&f).is_ok()
    }
}

/// An entry point of the C allocator or of libc's threads that the instrumenter wraps so
/// that its allocations and frees (`heap_malloc` / `heap_free_unsized`) and its thread
/// creations, joins and detaches (`pthread_created` / `pthread_joined` /
/// `pthread_detached`) are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// `malloc(size) -> ptr`.
    Malloc,
    /// `calloc(n, size) -> ptr`.
    Calloc,
    /// `realloc(ptr, size) -> ptr`.
    Realloc,
    /// `aligned_alloc(align, size) -> ptr`.
    AlignedAlloc,
    /// `memalign(align, size) -> ptr`.
    Memalign,
    /// `posix_memalign(out, align, size) -> errno`.
    PosixMemalign,
    /// `free(ptr)`.
    Free,
    /// `pthread_create(out, attr, start, arg) -> errno` (wasi-libc's `__pthread_create`).
    PthreadCreate,
    /// `pthread_join(thread, result) -> errno`.
    PthreadJoin,
    /// `pthread_timedjoin_np(thread, result, deadline) -> errno`.
    PthreadTimedJoin,
    /// `pthread_tryjoin_np(thread, result) -> errno`.
    PthreadTryJoin,
    /// `pthread_detach(thread) -> errno`.
    PthreadDetach,
}

impl EntryKind {
    /// The entry point named `name`, if any.
    pub(crate) fn of(name: &str) -> Option<EntryKind> {
        Some(match name {
            "malloc" => EntryKind::Malloc,
            "calloc" => EntryKind::Calloc,
            "realloc" => EntryKind::Realloc,
            "aligned_alloc" => EntryKind::AlignedAlloc,
            "memalign" => EntryKind::Memalign,
            "posix_memalign" => EntryKind::PosixMemalign,
            "free" => EntryKind::Free,
            "pthread_create" | "__pthread_create" => EntryKind::PthreadCreate,
            "pthread_join" | "__pthread_join" => EntryKind::PthreadJoin,
            "pthread_timedjoin_np" | "__pthread_timedjoin_np" => EntryKind::PthreadTimedJoin,
            "pthread_tryjoin_np" | "__pthread_tryjoin_np" => EntryKind::PthreadTryJoin,
            "pthread_detach" | "__pthread_detach" => EntryKind::PthreadDetach,
            _ => return None,
        })
    }

    /// The C name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            EntryKind::Malloc => "malloc",
            EntryKind::Calloc => "calloc",
            EntryKind::Realloc => "realloc",
            EntryKind::AlignedAlloc => "aligned_alloc",
            EntryKind::Memalign => "memalign",
            EntryKind::PosixMemalign => "posix_memalign",
            EntryKind::Free => "free",
            EntryKind::PthreadCreate => "pthread_create",
            EntryKind::PthreadJoin => "pthread_join",
            EntryKind::PthreadTimedJoin => "pthread_timedjoin_np",
            EntryKind::PthreadTryJoin => "pthread_tryjoin_np",
            EntryKind::PthreadDetach => "pthread_detach",
        }
    }

    /// Whether it is a thread function (its callers in libc's own thread functions
    /// are not redirected), not an allocator entry point.
    pub(crate) fn is_pthread(self) -> bool {
        matches!(
            self,
            EntryKind::PthreadCreate
                | EntryKind::PthreadJoin
                | EntryKind::PthreadTimedJoin
                | EntryKind::PthreadTryJoin
                | EntryKind::PthreadDetach
        )
    }

    /// Its C type on wasm32: `(params, results)`, all `i32`.
    pub(crate) fn arity(self) -> (usize, usize) {
        match self {
            EntryKind::Malloc => (1, 1),
            EntryKind::Calloc
            | EntryKind::Realloc
            | EntryKind::AlignedAlloc
            | EntryKind::Memalign => (2, 1),
            EntryKind::PosixMemalign | EntryKind::PthreadTimedJoin => (3, 1),
            EntryKind::Free => (1, 0),
            EntryKind::PthreadCreate => (4, 1),
            EntryKind::PthreadJoin | EntryKind::PthreadTryJoin => (2, 1),
            EntryKind::PthreadDetach => (1, 1),
        }
    }
}

/// The C allocator's functions: its entry points and the internals of wasi-libc's
/// dlmalloc. A subset of [`is_allocator`].
const C_ALLOCATOR: [&str; 26] = [
    "malloc",
    "free",
    "calloc",
    "realloc",
    "aligned_alloc",
    "posix_memalign",
    "memalign",
    "malloc_usable_size",
    "dlmalloc",
    "dlfree",
    "dlrealloc",
    "dlcalloc",
    "dlmemalign",
    "dlposix_memalign",
    "dlmalloc_usable_size",
    "internal_memalign",
    "internal_malloc",
    "internal_free",
    "dispose_chunk",
    "prepend_alloc",
    "add_segment",
    "sys_alloc",
    "sys_trim",
    "tmalloc_large",
    "tmalloc_small",
    "try_realloc_chunk",
];

/// Whether `name` is a function of the C allocator (wasi-libc's dlmalloc): its entry
/// points and internals.
pub(crate) fn is_c_allocator(name: &str) -> bool {
    C_ALLOCATOR.contains(&name)
}

/// Whether the function named `name` is one of wasi-libc's thread internals (musl's
/// `pthread_*`, its internal locks, futex waits and wakes, thread start and exit, TLS
/// set-up), which synchronize with `volatile` plain loads and stores as well as atomics.
///
/// Their plain loads and stores are traced as atomic ones (ThreadSanitizer does not
/// instrument libc and models what its thread functions do instead): so they never race
/// with each other, and the orders they create (a thread's exit before the `pthread_join`
/// that sees it) are kept.
pub(crate) fn is_libc_sync(name: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "pthread_",
        "__pthread_",
        "__wasi_thread_",
        "__wasilibc_futex",
        "__timedwait",
        "sem_",
        "cnd_",
        "mtx_",
        "thrd_",
        "tss_",
        "call_once",
        "__private_cond",
    ];
    const EXACT: [&str; 20] = [
        "__tl_lock",
        "__tl_unlock",
        "__tl_sync",
        "__wait",
        "__wake",
        "__futexwait",
        "__lock",
        "__unlock",
        "__ofl_lock",
        "__ofl_unlock",
        "__lockfile",
        "__unlockfile",
        "__wasi_init_tp",
        "__init_tp",
        "__copy_tls",
        "__testcancel",
        "wasi_thread_start",
        "__synccall",
        "__block_app_sigs",
        "__restore_sigs",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
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
/// wasi-libc's dlmalloc ([`is_c_allocator`]: `malloc`, `free`, `calloc`, `realloc`,
/// `aligned_alloc`, `posix_memalign`, `dlmalloc`, `dlfree`, `prepend_alloc`, ...).
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
    if is_c_allocator(name) {
        return true;
    }
    // Every Rust pattern contains `alloc`, mangled or not: demangle only those names.
    if !name.contains("alloc") {
        return false;
    }
    let name = &*wasmgrind_core::analysis::symbolize::demangle(name);
    RUST.iter().any(|p| name.contains(p))
}

/// Classifies the functions named in the name section `data` (at `offset` in the
/// module): the allocator, the C allocator and its entry points, the libc
/// synchronization functions. A malformed name section is skipped as engines skip it
/// from where it is malformed: it only costs these classes.
fn name_classes(out: &mut Scan, data: &[u8], offset: u64) {
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
                out.allocator.push(naming.index);
            }
            if is_c_allocator(naming.name) {
                out.c_allocator.push(naming.index);
            }
            if is_libc_sync(naming.name) {
                out.libc_sync.push(naming.index);
            }
            if naming.index >= out.func_imports {
                if let Some(kind) = EntryKind::of(naming.name) {
                    out.entries.push((naming.index, kind));
                }
            }
        }
    }
    for v in [&mut out.allocator, &mut out.c_allocator, &mut out.libc_sync] {
        v.sort_unstable();
        v.dedup();
    }
    out.entries.sort_unstable_by_key(|e| e.0);
    out.entries.dedup_by_key(|e| e.0);
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
    let mut parser = Parser::new(0);
    let mut rest = wasm;
    let mut memories_seen = false;
    let mut wasi = false;
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
                    if import.module == "wasi_snapshot_preview1"
                        || (import.module == "wasi" && import.name == "thread-spawn")
                    {
                        wasi = true;
                    }
                    if import.module != abi::IMPORT_MODULE {
                        continue;
                    }
                    if import.name == abi::HEAP_ALLOC.name || import.name == abi::HEAP_FREE.name {
                        out.reports_allocations = true;
                    }
                    if [
                        abi::MEM_READ,
                        abi::MEM_WRITE,
                        abi::MEM_ATOMIC_BEGIN,
                        abi::MEM_ATOMIC_VALUE,
                        abi::HEAP_MALLOC,
                        abi::HEAP_FREE_UNSIZED,
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
                out.func_types.reserve(reader.count() as usize);
                for ty in reader {
                    out.func_types.push(ty.map_err(malformed)?);
                }
            }
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(malformed)?.into_types() {
                        out.types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                Some((f.params().to_vec(), f.results().to_vec()))
                            }
                            _ => None,
                        });
                    }
                }
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
                    name_classes(&mut out, section.data(), section.data_offset());
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
    // A wasi-threads module (it imports `wasi.thread-spawn` or a `wasi_snapshot_preview1`
    // function) is not patched, because its libc gives threads their stacks and TLS: no
    // function was injected. Any other module must be patched.
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
    // Only entry points of the C type (all `i32`) are wrapped, and `posix_memalign`,
    // whose wrapper reads the block's address from memory, only with a memory.
    if !memories_seen {
        out.entries
            .retain(|e| !matches!(e.1, EntryKind::PosixMemalign | EntryKind::PthreadCreate));
    }
    let Scan {
        entries,
        func_types,
        types,
        func_imports,
        ..
    } = &mut out;
    entries.retain(|&(f, kind)| {
        let (params, results) = kind.arity();
        // An imported function of that name (a name section may name imports) has no body
        // to wrap: it is left alone.
        let ty = f
            .checked_sub(*func_imports)
            .and_then(|i| func_types.get(i as usize))
            .and_then(|t| types.get(*t as usize))
            .and_then(|t| t.as_ref());
        ty.is_some_and(|(p, r)| {
            p.len() == params
                && r.len() == results
                && p.iter().chain(r).all(|t| *t == wasmparser::ValType::I32)
        })
    });
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
