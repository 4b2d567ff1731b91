//! Injects Wasmgrind's tracing hooks into a patched WebAssembly module.
//!
//! [`instrument`] takes a module that `wasmgrind-patch` has already rewritten (it carries
//! the custom section [`abi::PATCH_SECTION`]) and returns the instrumented module together
//! with its *location table*. It parses the input once and writes the output once: a
//! cheap scan of the section headers (which skips the code section) is followed by a
//! single rewriting pass built on [`wasm_encoder::reencode::Reencode`]. Function bodies
//! are copied byte for byte except for the instructions that change.
//!
//! # What changes
//!
//! ## Located imports
//!
//! Every call of the imports `wasmgrind.thread_create`, `thread_join`, `start_lock`,
//! `finish_lock`, `start_unlock` and `finish_unlock` also passes the call site's location.
//! The import keeps its module and name; its type becomes the original parameters followed
//! by `loc: i32` ([`abi::FuncSig::params_with_location`]), and every `call` (and
//! `return_call`) of it is preceded by `i32.const <loc>`. `wasmgrind.panic` is left alone.
//! An import whose type differs from the ABI is rejected
//! ([`InstrumentError::ImportSignature`]), and so is a located import that is used other
//! than by a direct call (exported, placed in a table or element segment, `ref.func`),
//! because such a use cannot supply a location ([`InstrumentError::LocatedImportReferenced`]).
//!
//! ## Memory hooks
//!
//! With [`InstrumentConfig::memory_tracing`] (the default), two imports are appended at
//! the end of the import section, in this order:
//!
//! | import | type |
//! |---|---|
//! | `wasmgrind.mem_read` ([`abi::MEM_READ`]) | `(addr: i32, width: i32, atomic: i32, loc: i32)` |
//! | `wasmgrind.mem_write` ([`abi::MEM_WRITE`]) | `(addr: i32, width: i32, atomic: i32, loc: i32)` |
//!
//! Every function defined by the module is therefore renumbered by +2; calls, exports,
//! element segments, the start function, `ref.func` (in code and in constant
//! expressions), the name section and the first index of the `wasmgrind.patch` section are
//! updated. Type indices do not change: the new function types are appended to the type
//! section.
//!
//! Every instruction that accesses linear memory in a function that the patcher did not
//! inject calls the hooks:
//!
//! | instructions | hooks (in this order) | width | atomic |
//! |---|---|---|---|
//! | loads (plain, atomic, SIMD incl. `load_splat`, `load_zero`, `loadN_lane`) | read, after the access | bytes read | 1 for atomic loads |
//! | stores (plain, atomic, SIMD incl. `storeN_lane`) | write, after the access | bytes written | 1 for atomic stores |
//! | `*.atomic.rmw*` (add, sub, and, or, xor, xchg) | read, then write, after the access | bytes | 1 |
//! | `*.atomic.rmw*.cmpxchg*` | read after the access; then write only if the exchange happened | bytes | 1 |
//! | `memory.atomic.wait32` / `wait64` | read, **before** the wait (it may block) | 4 / 8 | 1 |
//! | `memory.atomic.notify` | read, **before** the notify | 4 | 1 |
//! | `memory.fill` | write at `dst`, after | `n` | 0 |
//! | `memory.copy` | read at `src`, then write at `dst`, after | `n` | 0 |
//! | `memory.init` | write at `dst`, after | `n` | 0 |
//!
//! Notes on the hook arguments:
//!
//! - `addr` is the effective address: the address operand plus the memarg's constant
//!   offset, computed with `i32.add`, so it is `(base + offset) mod 2^32`. When the true
//!   sum is `>= 2^32` the access itself traps (no 32-bit memory is that large), and
//!   because the hooks of all instructions but `wait`/`notify` run *after* the access, no
//!   hook sees a wrapped address. `wait` and `notify` report theirs before the
//!   instruction, so for them a wrapped address can be reported right before the trap.
//! - An access that traps calls no hook (except `wait`/`notify`, see above).
//! - `width` is the operand `n` for the bulk instructions and may be 0; a runtime should
//!   ignore zero-width accesses.
//! - A cmpxchg "happened" when the loaded value equals the expected operand truncated
//!   to the access width (`rmw8` compares `expected & 0xff`, and so on), exactly as the
//!   instruction decides.
//! - `memory.atomic.notify` does not read memory, but it names a synchronisation word;
//!   it is reported as an atomic 4-byte read so that it orders like the other atomics
//!   on that word without ever counting as a conflicting write.
//! - Only memory 0 of a 32-bit memory can be traced: a memory instruction that names
//!   another memory is [`InstrumentError::MultiMemory`], a 64-bit memory 0 is
//!   [`InstrumentError::Memory64`]. With memory tracing off, both are fine.
//! - Memory instructions in unreachable code are instrumented too; the rewrite uses
//!   only fresh locals, so it is valid on a polymorphic stack.
//! - `memory.size`, `memory.grow` and `data.drop` call no hook; nor do the instructions of
//!   proposals that wasmparser does not enable by default (`memory.discard`, GC array
//!   accesses through a memarg), which the output validation would reject anyway.
//!
//! Operands are stashed in fresh locals appended to each function (at most four `i32`,
//! four `i64` and one each of `f32`, `f64` and `v128`, only the ones it needs). For
//! example `i32.store offset=8` becomes
//!
//! ```wat
//! local.set $v          ;; value
//! local.tee $a          ;; address
//! local.get $v
//! i32.store offset=8
//! local.get $a
//! i32.const 8
//! i32.add               ;; effective address
//! i32.const 4           ;; width
//! i32.const 0           ;; atomic
//! i32.const 17          ;; loc
//! call $mem_write
//! ```
//!
//! With memory tracing off, only the calls of the located imports are rewritten, no
//! hook is imported and no function is renumbered.
//!
//! ## Functions injected by the patcher
//!
//! The functions listed in the `wasmgrind.patch` section are not instrumented: their
//! memory accesses call no hook. Their calls are renumbered like all others, and if one
//! of them calls a located import, that call gets a location too (the module would not
//! validate otherwise).
//!
//! ## Other sections
//!
//! Custom sections are kept. DWARF (`.debug_*`) still describes the *input's* code
//! offsets, which are exactly the offsets the location table uses, so the debug info in
//! the output can resolve locations. Sections `metadata.code.*` (branch hints), which
//! address instructions by their offset inside a function, are dropped because those
//! offsets change. The output ends with the custom section [`INSTRUMENT_SECTION`], which
//! marks it as instrumented; instrumenting it again is
//! [`InstrumentError::AlreadyInstrumented`].
//!
//! # The location table
//!
//! [`Instrumented::locations`] has one [`Location`] per instrumented instruction, in code
//! order; the `loc` passed to a hook is the index into this vector (passed as `i32`; the
//! runtime should read it as `u32`). Every hook call of one instruction (the read and the
//! write of an RMW, for instance) passes the same `loc`.
//!
//! - `func_index` is the function's index in the *input* module, which for the user's
//!   functions is also their index before patching (the patcher appends its functions).
//! - `func_name` comes from the input's name section.
//! - `code_offset` is the instruction's byte offset from the start of the input's code
//!   section payload (the byte after the section's size field), the address DWARF uses
//!   for WebAssembly.
//! - `instr` is the instruction in text form: `i32.load offset=8`, `call thread_create`,
//!   `memory.init 2`. The memarg shows `offset=` when it is not 0 and `align=` (in bytes)
//!   when it is not the natural alignment; lane instructions end with the lane.
//!
//! # Validation
//!
//! With [`InstrumentConfig::validate`] (the default), the output is validated with
//! wasmparser's default features (which include threads, SIMD and bulk memory). If it
//! does not validate, the input is validated too, so that an invalid input is reported
//! as [`InstrumentError::InvalidInput`] and only a bug of this crate as
//! [`InstrumentError::InvalidOutput`].
//!
//! [`abi::FuncSig::params_with_location`]: wasmgrind_core::abi::FuncSig::params_with_location
//! [`abi::MEM_READ`]: wasmgrind_core::abi::MEM_READ
//! [`abi::MEM_WRITE`]: wasmgrind_core::abi::MEM_WRITE
//! [`abi::PATCH_SECTION`]: wasmgrind_core::abi::PATCH_SECTION

mod memops;
mod rewrite;
mod scan;

pub use wasmgrind_core::location::{Location, LocationId};

/// Name of the custom section that marks an instrumented module.
///
/// Its payload is three little-endian `u32`s: the format version (1), flags (bit 0: the
/// memory hooks are imported) and the number of entries of the location table.
pub const INSTRUMENT_SECTION: &str = "wasmgrind.instrument";

/// Largest number of locals per function that engines accept (the JS API limit).
pub const MAX_LOCALS: u64 = 50_000;

/// Largest function body, in bytes, that engines accept (the JS API limit).
pub const MAX_FUNCTION_SIZE: usize = 7_654_321;

/// What [`instrument`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentConfig {
    /// Call `wasmgrind.mem_read` / `mem_write` for every memory access. Default `true`.
    pub memory_tracing: bool,
    /// Validate the output (and, if that fails, the input). Default `true`.
    pub validate: bool,
}

impl Default for InstrumentConfig {
    fn default() -> Self {
        InstrumentConfig {
            memory_tracing: true,
            validate: true,
        }
    }
}

/// The result of [`instrument`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrumented {
    /// The instrumented module.
    pub wasm: Vec<u8>,
    /// The location table: `loc` `n` passed to a hook is `locations[n]`.
    pub locations: Vec<Location>,
}

/// Why [`instrument`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// The input cannot be parsed.
    #[error("the input is not a well-formed WebAssembly module: {0}")]
    Malformed(String),
    /// The input is a component.
    #[error(
        "the input is a WebAssembly component, but wasmgrind instruments core modules: pass the \
         core module that the Rust build produced"
    )]
    Component,
    /// The input has no [`abi::PATCH_SECTION`](wasmgrind_core::abi::PATCH_SECTION).
    #[error(
        "the module is not patched (it has no `wasmgrind.patch` custom section): run \
         wasmgrind_patch::patch on it first, then instrument the patched module"
    )]
    NotPatched,
    /// The input was already instrumented.
    #[error(
        "the module is already instrumented ({evidence}): instrument the patched module, not \
         the output of instrument()"
    )]
    AlreadyInstrumented {
        /// What gave it away.
        evidence: String,
    },
    /// The [`abi::PATCH_SECTION`](wasmgrind_core::abi::PATCH_SECTION) is not what the
    /// patcher writes.
    #[error(
        "the `wasmgrind.patch` custom section is invalid: {reason}; patch the original module \
         again with wasmgrind_patch::patch"
    )]
    InvalidPatchSection {
        /// What is wrong.
        reason: String,
    },
    /// A runtime import has a type other than the ABI's.
    #[error(
        "the import `wasmgrind.{name}` has type {found}, but the runtime ABI says {expected}: \
         build the guest against the wasmgrind-guest version that matches this runtime"
    )]
    ImportSignature {
        /// Import name.
        name: &'static str,
        /// The ABI signature.
        expected: String,
        /// The type found.
        found: String,
    },
    /// A located import is used other than by a direct call.
    #[error(
        "the import `wasmgrind.{name}` is {usage}; only direct calls can pass a call-site \
         location, so call it directly and do not export it, put it in a table or take a \
         reference to it"
    )]
    LocatedImportReferenced {
        /// Import name.
        name: &'static str,
        /// How it is used.
        usage: String,
    },
    /// Memory 0 is 64-bit while memory tracing is on.
    #[error(
        "memory 0 is a 64-bit memory (memory64), but the memory hooks take 32-bit addresses: \
         build for wasm32 or instrument with memory tracing off"
    )]
    Memory64,
    /// A memory instruction names a memory other than 0 while memory tracing is on.
    #[error(
        "function {func_index} accesses memory {memory} at code offset {code_offset:#x}, but \
         memory tracing supports memory 0 only: instrument with memory tracing off"
    )]
    MultiMemory {
        /// The function (input index).
        func_index: u32,
        /// The instruction's code offset.
        code_offset: u32,
        /// The memory it names.
        memory: u32,
    },
    /// A function would exceed the engines' limit on locals.
    #[error(
        "function {func_index} would have {locals} locals after instrumentation, more than \
         the {MAX_LOCALS} engines accept: reduce its locals (build with optimizations) or \
         instrument with memory tracing off"
    )]
    TooManyLocals {
        /// The function (input index).
        func_index: u32,
        /// Its locals (parameters included) after instrumentation.
        locals: u64,
    },
    /// A function would exceed the engines' limit on body size.
    #[error(
        "function {func_index} would be {size} bytes after instrumentation, more than the \
         {MAX_FUNCTION_SIZE} bytes engines accept: split the function or instrument with \
         memory tracing off"
    )]
    FunctionTooLarge {
        /// The function (input index).
        func_index: u32,
        /// Its body size after instrumentation.
        size: usize,
    },
    /// The input does not validate.
    #[error(
        "the input module is not valid WebAssembly ({0}); wasmgrind needs a module that \
         validates with the standard features (threads, SIMD, bulk memory, ...)"
    )]
    InvalidInput(String),
    /// The output does not validate although the input does: a bug of this crate.
    #[error(
        "internal error: the instrumented module does not validate ({0}) although the input \
         does; this is a bug in wasmgrind-instrument, please report it with the input module"
    )]
    InvalidOutput(String),
}

/// Instruments a patched module: adds the call-site location to every call of a located
/// import and, if [`InstrumentConfig::memory_tracing`], a hook call to every memory access
/// of the functions the patcher did not inject. See the [crate documentation](crate).
pub fn instrument(wasm: &[u8], config: &InstrumentConfig) -> Result<Instrumented, InstrumentError> {
    let scan = scan::scan(wasm)?;
    if config.memory_tracing && scan.memory0_is_64 {
        return Err(InstrumentError::Memory64);
    }
    let (wasm_out, locations) = rewrite::rewrite(wasm, config, scan)?;
    if config.validate {
        if let Err(out_err) = wasmparser::Validator::new().validate_all(&wasm_out) {
            return Err(match wasmparser::Validator::new().validate_all(wasm) {
                Err(in_err) => InstrumentError::InvalidInput(in_err.to_string()),
                Ok(_) => InstrumentError::InvalidOutput(out_err.to_string()),
            });
        }
    }
    Ok(Instrumented {
        wasm: wasm_out,
        locations,
    })
}
