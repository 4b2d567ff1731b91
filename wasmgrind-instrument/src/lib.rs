#![doc = include_str!("../README.md")]

mod memops;
mod rewrite;
mod sample;
mod scan;

pub use wasmgrind_core::location::{Location, LocationId};

/// Name of the custom section that marks an instrumented module.
///
/// Its payload is three little-endian `u32`s: the format version (1), flags (bit 0: the
/// memory hooks are imported; bit 1: so is `mem_atomic_value`; bit 2: the C allocator's
/// and libc's thread entry points are wrapped, and `heap_malloc`, `heap_free_unsized`
/// and the `pthread_*` hooks are imported; bit 3: plain accesses are sampled, see
/// [`InstrumentConfig::sampling`]) and
/// the number of entries of the location table.
pub const INSTRUMENT_SECTION: &str = "wasmgrind.instrument";

/// Largest number of locals per function that engines accept (the JS API limit).
pub const MAX_LOCALS: u64 = 50_000;

/// Most globals that engines accept in a module (the JS API limit).
pub const MAX_GLOBALS: u64 = 1_000_000;

/// Largest function body, in bytes, that engines accept (the JS API limit).
pub const MAX_FUNCTION_SIZE: usize = 7_654_321;

/// What [`instrument`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentConfig {
    /// Call `wasmgrind.mem_read` / `mem_write` for every memory access. Default `true`.
    pub memory_tracing: bool,
    /// Validate the input before rewriting it: a module that does not validate fails
    /// with [`InstrumentError::InvalidInput`]. Default `true`.
    pub validate: bool,
    /// Also validate the output: one that does not validate fails with
    /// [`InstrumentError::InvalidOutput`], a bug of this crate. Default `false`: the
    /// output of a valid input is valid by construction, which the tests and the fuzzer
    /// (`cargo xtask fuzz`, with this on) check, and an engine validates a module anyway
    /// when it compiles it. Validating the output, which with memory tracing is up to
    /// twice the size of the input, would cost more than the rest of the instrumenter.
    pub validate_output: bool,
    /// Also pass the values of atomic accesses and the waits to the runtime through
    /// `wasmgrind.mem_atomic_value`, for lock recognition. Only with
    /// [`memory_tracing`](InstrumentConfig::memory_tracing). Default `false`.
    pub atomic_values: bool,
    /// Sample the plain accesses instead of tracing every one: each code site (a
    /// function's body outside its loops, or one loop) traces its first
    /// [`SAMPLE_ALWAYS`] executions in a thread (a call, or an iteration of the loop),
    /// then fewer and fewer, down to one execution in [`SAMPLE_MAX_SKIP`]` + 1` (the
    /// adaptive, per-site rate of LiteRace). Atomic accesses, waits, notifies and the
    /// accesses of libc's synchronization functions are always traced, so the
    /// happens-before order stays exact and a race between two traced accesses is a real
    /// race; a race is missed when one of its accesses was not sampled, which is likely in
    /// code that runs often. Only with
    /// [`memory_tracing`](InstrumentConfig::memory_tracing). Default `false`: every access
    /// is traced.
    pub sampling: bool,
}

/// A sampled code site traces this many executions in each thread before its rate falls
/// (see [`InstrumentConfig::sampling`]).
pub const SAMPLE_ALWAYS: u32 = sample::ALWAYS;

/// The most executions a sampled code site skips between two traced ones (see
/// [`InstrumentConfig::sampling`]).
pub const SAMPLE_MAX_SKIP: u32 = sample::MAX_SKIP;

impl Default for InstrumentConfig {
    fn default() -> Self {
        InstrumentConfig {
            memory_tracing: true,
            validate: true,
            validate_output: false,
            atomic_values: false,
            sampling: false,
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
    /// The input has no [`abi::PATCH_SECTION`](wasmgrind_core::abi::PATCH_SECTION) and is
    /// no wasi-threads module.
    #[error(
        "the module is not patched (it has no `wasmgrind.patch` custom section) and is no \
         wasi-threads module (it imports neither `wasi.thread-spawn` nor a \
         `wasi_snapshot_preview1` function): run wasmgrind_patch::patch on it first, then \
         instrument the patched module"
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
    /// With [`InstrumentConfig::sampling`], the module would have more globals than engines
    /// accept: two per sampled code site.
    #[error(
        "sampling needs two globals for each of the module's {sites} sampled code sites \
         (function bodies and loops with plain memory accesses), {globals} globals in all, \
         more than the {MAX_GLOBALS} engines accept: instrument without sampling"
    )]
    TooManyGlobals {
        /// The sampled code sites.
        sites: u32,
        /// The globals the module would have.
        globals: u64,
    },
    /// A function or type index would not fit in 32 bits once renumbered: the memory
    /// hooks are imported before the module's own functions, which all move up by 3.
    #[error(
        "{space} index {index} ({usage}) cannot be renumbered: it becomes {index} + {added}, \
         past the largest index, {max}; no valid module has that many {space}s, so the input \
         is malformed: check it with a validator (for example `wasm-tools validate`)",
        max = u32::MAX
    )]
    IndexOverflow {
        /// `"function"` or `"type"`.
        space: &'static str,
        /// The index in the input.
        index: u32,
        /// What renumbering adds to it.
        added: u32,
        /// Where the index appears: `called by function 7 at code offset 0x1a2`,
        /// `exported as `f``, ...
        usage: String,
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

/// Instruments a patched module or a wasi-threads module: adds the call-site location to every call of a located
/// import and, if [`InstrumentConfig::memory_tracing`], a hook call to every memory access
/// of the functions the patcher did not inject. See the [crate documentation](crate).
pub fn instrument(wasm: &[u8], config: &InstrumentConfig) -> Result<Instrumented, InstrumentError> {
    let scan = scan::scan(wasm)?;
    if config.memory_tracing && scan.memory0_is_64 {
        return Err(InstrumentError::Memory64);
    }
    let validate = |wasm: &[u8]| wasmparser::Validator::new().validate_all(wasm).map(drop);
    if config.validate {
        validate(wasm).map_err(|e| InstrumentError::InvalidInput(e.to_string()))?;
    }
    let (wasm_out, locations) = rewrite::rewrite(wasm, config, scan)?;
    if config.validate_output {
        if let Err(out_err) = validate(&wasm_out) {
            // Without `validate` the input may be the invalid one.
            return Err(match validate(wasm) {
                Err(in_err) if !config.validate => {
                    InstrumentError::InvalidInput(in_err.to_string())
                }
                _ => InstrumentError::InvalidOutput(out_err.to_string()),
            });
        }
    }
    Ok(Instrumented {
        wasm: wasm_out,
        locations,
    })
}
