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

    /// Exports that the linker provides when asked are missing; every missing one is
    /// named, in the order of [`LINKER_EXPORTS`](wasmgrind_core::abi::LINKER_EXPORTS).
    #[error("{}", missing_linker_exports(names))]
    MissingLinkerExports {
        /// The missing exports.
        names: Vec<&'static str>,
    },

    /// Exports that the guest library provides are missing; every missing one is named.
    #[error("{} not exported: the guest must depend on `wasmgrind-guest` (which exports {}) and use it, or export {} itself", list(.0), pronoun(.0), pronoun(.0))]
    MissingGuestExports(Vec<&'static str>),

    /// Several of the problems above at once: everything wrong with how the module was
    /// built (its memory and the exports the patcher needs), so that one build can fix
    /// it all.
    #[error("the module is not built for Wasmgrind; {} problems: {}; Wasmgrind's `guests/.cargo/config.toml` has every setting a guest needs", .0.len(), numbered(.0))]
    BuildProblems(Vec<PatchError>),

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

impl PatchError {
    /// `problems` as one error: the only problem itself, or [`PatchError::BuildProblems`].
    /// `None` when there is no problem.
    pub(crate) fn from_problems(mut problems: Vec<PatchError>) -> Option<PatchError> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(PatchError::BuildProblems(problems)),
        }
    }
}

/// `` `a` is `` or `` `a`, `b` are ``.
fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let verb = if names.len() == 1 { "is" } else { "are" };
    format!("{} {verb}", quoted.join(", "))
}

fn pronoun(names: &[&str]) -> &'static str {
    if names.len() == 1 {
        "it"
    } else {
        "them"
    }
}

/// The message of [`PatchError::MissingLinkerExports`]: the names and every link argument
/// that exports them.
fn missing_linker_exports(names: &[&'static str]) -> String {
    let args: Vec<&str> = names
        .iter()
        .map(|n| {
            wasmgrind_core::abi::LINKER_EXPORTS
                .iter()
                .find(|(name, _)| name == n)
                .map_or("-C link-arg=--export=<name>", |(_, arg)| *arg)
        })
        .collect();
    format!(
        "{} not exported: link with `{}`",
        list(names),
        args.join(" ")
    )
}

/// `(1) first; (2) second`.
fn numbered(problems: &[PatchError]) -> String {
    let items: Vec<String> = problems
        .iter()
        .enumerate()
        .map(|(i, p)| format!("({}) {p}", i + 1))
        .collect();
    items.join("; ")
}
