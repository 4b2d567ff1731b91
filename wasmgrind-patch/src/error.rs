//! The errors of [`patch`](crate::patch) and [`memory_limits`](crate::memory_limits).

/// Why a module cannot be patched. Every message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The bytes are not a WebAssembly module that wasmparser can read.
    #[error("not a valid WebAssembly module: {0}")]
    Parse(#[from] wasmparser::BinaryReaderError),

    /// The module is a component or has an unsupported structure.
    #[error("unsupported module: {0}")]
    Unsupported(String),

    /// The module has no memory at all.
    #[error("the module has no memory: Wasmgrind needs an imported shared memory; link with `-C link-arg=--import-memory -C link-arg=--shared-memory`")]
    NoMemory,

    /// The memory is defined by the module instead of imported.
    #[error("the memory is defined in the module, not imported: link with `-C link-arg=--import-memory`")]
    MemoryNotImported,

    /// The memory is not shared.
    #[error("the memory is not shared: build with `-C target-feature=+atomics,+bulk-memory,+mutable-globals` and link with `-C link-arg=--shared-memory`")]
    MemoryNotShared,

    /// The memory is 64-bit.
    #[error("the memory is 64-bit: Wasmgrind supports 32-bit memories only; build for `wasm32-unknown-unknown`")]
    Memory64,

    /// The memory has no maximum size, which shared memories need.
    #[error("the memory has no maximum size: link with `-C link-arg=--max-memory=<bytes>` (for example 1073741824)")]
    NoMaximum,

    /// The module has more than one memory.
    #[error(
        "the module has {0} memories; Wasmgrind supports exactly one (imported, shared) memory"
    )]
    MultipleMemories(u32),

    /// An export the linker provides when asked is missing.
    #[error("`{name}` is not exported: link with `{link_arg}`")]
    MissingLinkerExport {
        /// The missing export.
        name: &'static str,
        /// The link argument that exports it.
        link_arg: &'static str,
    },

    /// An export the guest library provides is missing.
    #[error("`{0}` is not exported: the guest must depend on `wasmgrind-guest` (which exports it) and use it, or export it itself")]
    MissingGuestExport(&'static str),

    /// An export has the wrong kind or type.
    #[error("`{name}` has the wrong type: expected {expected}, found {found}")]
    WrongExportType {
        /// The export.
        name: &'static str,
        /// What the ABI needs.
        expected: String,
        /// What the module has.
        found: String,
    },

    /// `__heap_base` is not a constant, so the patcher cannot reserve memory past it.
    #[error("`__heap_base` is not an `i32.const` global: the patcher reserves its page past `__heap_base` and needs its value; link with wasm-ld")]
    HeapBaseNotConstant,

    /// No stack pointer global was found.
    #[error("no stack pointer found: the name section has no global `__stack_pointer` and no global looks like one (a mutable, non-exported i32 initialized by `i32.const`); do not strip the name section (keep `debug = false` but no `strip = true`) or link with wasm-ld")]
    NoStackPointer,

    /// The module was patched before.
    #[error("the module was already patched by Wasmgrind (it has the `wasmgrind.patch` section or exports `__wasmgrind_thread_destroy`): patch the original module, once")]
    AlreadyPatched,

    /// The configured stack size is unusable.
    #[error("invalid stack size {0}: it must be a multiple of 16 and at least 4096 bytes")]
    InvalidStackSize(u32),

    /// The reserved page does not fit under the memory's maximum.
    #[error("the memory's maximum of {max} pages leaves no room for Wasmgrind's reserved page (needs {needed} pages): link with a larger `--max-memory`")]
    MemoryTooSmall {
        /// The pages the patched module needs at least.
        needed: u64,
        /// The memory's maximum in pages.
        max: u64,
    },

    /// The input module does not validate.
    #[error("the input module is invalid: {0}")]
    InvalidInput(wasmparser::BinaryReaderError),

    /// The patched module does not validate; this is a bug in Wasmgrind.
    #[error("internal error: the patched module does not validate ({0}); please report this with the input module")]
    InvalidOutput(wasmparser::BinaryReaderError),
}
