//! The runtime ABI: every import, export and signature that a guest module, the
//! patcher, the instrumenter and the runtime agree on.
//!
//! # Imports (module [`IMPORT_MODULE`])
//!
//! | name | signature | meaning |
//! |---|---|---|
//! | `thread_create` | `(tid_ptr: i32, start_arg: i32) -> i32` | start a thread that calls the export `thread_start(start_arg)`; its id is stored at `tid_ptr`; returns an [`ErrorCode`] |
//! | `thread_join` | `(tid: i32) -> i32` | block until thread `tid` has finished; returns an [`ErrorCode`] |
//! | `panic` | `(code: i32, msg_ptr: i32, msg_len: i32)` | the guest gives up with an [`ErrorCode`] and a UTF-8 message in memory (`msg_len` may be 0) |
//! | `start_lock` | `(lock: i32)` | the thread is about to block on `lock` (a request) |
//! | `finish_lock` | `(lock: i32)` | the thread now holds `lock` |
//! | `start_unlock` | `(lock: i32)` | the thread is about to release `lock` (still held) |
//! | `finish_unlock` | `(lock: i32)` | the thread has released `lock` |
//! | `heap_alloc` | `(ptr: i32, size: i32)` | the guest's allocator handed out `[ptr, ptr + size)` (called after the allocation) |
//! | `heap_free` | `(ptr: i32, size: i32)` | the guest is about to free `[ptr, ptr + size)` (called before the block goes back) |
//!
//! `heap_alloc` and `heap_free` are optional: a guest that calls them lets the race detector start
//! every block with fresh state, so that memory reused by another thread is never
//! reported. The guest library calls them from its global allocator. A module that
//! imports neither but defines a C allocator (wasi-libc's `malloc`, `free`, ...) gets
//! wrappers from the instrumenter that call [`HEAP_MALLOC`] and [`HEAP_FREE_UNSIZED`].
//!
//! `panic` takes the message as well as the code. The first design passed only a code, so a
//! Rust panic reached the user as a number; a separate "message" import would have needed
//! per-thread state in the runtime between two calls. One call carries both.
//!
//! After instrumentation every call to one of these imports passes one more trailing
//! `loc: i32` argument, the call site's location: an index into the location table that
//! instrumentation returns, whose entries name the original function and the instruction's
//! offset in the code section.
//! The import keeps its module and name; only its type gains the parameter
//! ([`FuncSig::params_with_location`]). The instrumenter also adds the memory hooks
//! [`MEM_READ`], [`MEM_WRITE`] and [`MEM_ATOMIC_BEGIN`], with lock recognition on
//! [`MEM_ATOMIC_VALUE`], which passes the values of atomic accesses, and with the
//! wrappers of a C allocator and of libc's thread functions [`HEAP_MALLOC`],
//! [`HEAP_FREE_UNSIZED`], [`PTHREAD_CREATED`], [`PTHREAD_JOINED`] and
//! [`PTHREAD_DETACHED`].
//!
//! # Exports of a guest
//!
//! | name | signature |
//! |---|---|
//! | `thread_start` | `(start_arg: i32)` |
//! | `__wasmgrind_malloc` | `(size: i32, align: i32) -> i32` |
//! | `__wasmgrind_free` | `(ptr: i32, size: i32, align: i32)` |
//! | `__wasmgrind_init` (optional) | `()`, called once by the runtime before the scenario |
//!
//! # Exports the linker must provide
//!
//! `__heap_base`, `__tls_size`, `__tls_align`, `__tls_base` (globals) and
//! `__wasm_init_tls` (function); see [`LINKER_EXPORTS`].
//!
//! # Exports added by the patcher
//!
//! `__wasmgrind_thread_destroy(tls_base: i32, stack_base: i32)` and the global
//! `__wasmgrind_stack_base`.

use std::fmt;

/// The import module of every runtime function.
pub const IMPORT_MODULE: &str = "wasmgrind";

/// A WebAssembly value type as used by the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
        })
    }
}

/// The name and signature of one ABI function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FuncSig {
    /// Import or export name.
    pub name: &'static str,
    /// Parameter types, in order.
    pub params: &'static [ValType],
    /// Result types, in order.
    pub results: &'static [ValType],
}

impl FuncSig {
    /// The parameters of this import after instrumentation: the original ones followed by
    /// the call site's `loc: i32`.
    pub fn params_with_location(&self) -> Vec<ValType> {
        let mut p = self.params.to_vec();
        p.push(ValType::I32);
        p
    }

    /// Whether `params`/`results` match this signature exactly.
    pub fn matches(&self, params: &[ValType], results: &[ValType]) -> bool {
        self.params == params && self.results == results
    }

    /// Whether `params`/`results` match this signature with the trailing location
    /// parameter that instrumentation adds.
    pub fn matches_with_location(&self, params: &[ValType], results: &[ValType]) -> bool {
        params.len() == self.params.len() + 1
            && params[..self.params.len()] == *self.params
            && params[self.params.len()] == ValType::I32
            && self.results == results
    }
}

impl fmt::Display for FuncSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        f.write_str(")")?;
        if !self.results.is_empty() {
            f.write_str(" -> ")?;
            for (i, r) in self.results.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{r}")?;
            }
        }
        Ok(())
    }
}

use ValType::I32;

/// `thread_create(tid_ptr: i32, start_arg: i32) -> i32`.
pub const THREAD_CREATE: FuncSig = FuncSig {
    name: "thread_create",
    params: &[I32, I32],
    results: &[I32],
};
/// `thread_join(tid: i32) -> i32`.
pub const THREAD_JOIN: FuncSig = FuncSig {
    name: "thread_join",
    params: &[I32],
    results: &[I32],
};
/// `panic(code: i32, msg_ptr: i32, msg_len: i32)`.
pub const PANIC: FuncSig = FuncSig {
    name: "panic",
    params: &[I32, I32, I32],
    results: &[],
};
/// `start_lock(lock: i32)`: about to request `lock`.
pub const START_LOCK: FuncSig = FuncSig {
    name: "start_lock",
    params: &[I32],
    results: &[],
};
/// `finish_lock(lock: i32)`: `lock` is now held.
pub const FINISH_LOCK: FuncSig = FuncSig {
    name: "finish_lock",
    params: &[I32],
    results: &[],
};
/// `start_unlock(lock: i32)`: about to release `lock`.
pub const START_UNLOCK: FuncSig = FuncSig {
    name: "start_unlock",
    params: &[I32],
    results: &[],
};
/// `finish_unlock(lock: i32)`: `lock` has been released.
pub const FINISH_UNLOCK: FuncSig = FuncSig {
    name: "finish_unlock",
    params: &[I32],
    results: &[],
};

/// `heap_alloc(ptr: i32, size: i32)`: the allocator handed out `[ptr, ptr + size)`.
pub const HEAP_ALLOC: FuncSig = FuncSig {
    name: "heap_alloc",
    params: &[I32, I32],
    results: &[],
};
/// `heap_free(ptr: i32, size: i32)`: `[ptr, ptr + size)` is about to be freed.
pub const HEAP_FREE: FuncSig = FuncSig {
    name: "heap_free",
    params: &[I32, I32],
    results: &[],
};

/// Hook added by the instrumenter with the allocation wrappers of a C allocator
/// (`wasmgrind-instrument`): `heap_malloc(ptr: i32, size: i32)`, called after the C
/// allocator handed out `[ptr, ptr + size)`. Recorded as a [`HEAP_ALLOC`] is, and the
/// runtime keeps the block's size for its [`HEAP_FREE_UNSIZED`].
pub const HEAP_MALLOC: FuncSig = FuncSig {
    name: "heap_malloc",
    params: &[I32, I32],
    results: &[],
};

/// Hook added by the instrumenter with the allocation wrappers of a C allocator
/// (`wasmgrind-instrument`): `heap_free_unsized(ptr: i32)`, called before `free(ptr)`
/// and before `realloc(ptr, ..)` of a non-null `ptr`. The size of the block is not
/// known at a C `free`; the runtime keeps the size of every live block from its
/// [`HEAP_MALLOC`] and records the free with it (a block it does not know is ignored).
pub const HEAP_FREE_UNSIZED: FuncSig = FuncSig {
    name: "heap_free_unsized",
    params: &[I32],
    results: &[],
};

/// Hook added by the instrumenter with the wrappers of libc's thread functions
/// (`wasmgrind-instrument`): `pthread_created(thread: i32)`, called after a
/// `pthread_create` that succeeded, with the new thread's handle (`pthread_t`). The
/// runtime pairs the handle with the thread it forked during the call.
pub const PTHREAD_CREATED: FuncSig = FuncSig {
    name: "pthread_created",
    params: &[I32],
    results: &[],
};
/// Hook added by the instrumenter: `pthread_joined(thread: i32)`, called after a
/// `pthread_join` (or `pthread_timedjoin_np`, `pthread_tryjoin_np`) of `thread` that
/// succeeded; the runtime records the `Join` of the thread created with that handle.
pub const PTHREAD_JOINED: FuncSig = FuncSig {
    name: "pthread_joined",
    params: &[I32],
    results: &[],
};
/// Hook added by the instrumenter: `pthread_detached(thread: i32)`, called after a
/// `pthread_detach` of `thread` that succeeded: nobody will join the thread.
pub const PTHREAD_DETACHED: FuncSig = FuncSig {
    name: "pthread_detached",
    params: &[I32],
    results: &[],
};

/// Every function a guest may import from [`IMPORT_MODULE`].
pub const IMPORTS: [FuncSig; 9] = [
    THREAD_CREATE,
    THREAD_JOIN,
    PANIC,
    START_LOCK,
    FINISH_LOCK,
    START_UNLOCK,
    FINISH_UNLOCK,
    HEAP_ALLOC,
    HEAP_FREE,
];

/// Looks up an import of [`IMPORT_MODULE`] by name.
pub fn import(name: &str) -> Option<FuncSig> {
    IMPORTS.iter().copied().find(|s| s.name == name)
}

/// Memory hook added by the instrumenter: `mem_read(addr: i32, width: i32, atomic: i32, loc: i32)`.
///
/// `addr` is the effective address (base plus the memarg offset), `width` the number of
/// bytes, `atomic` one of the `ACCESS_*` kinds ([`ACCESS_PLAIN`], [`ACCESS_ATOMIC`], and
/// for `mem_write` also [`ACCESS_RMW`]), `loc` the location.
pub const MEM_READ: FuncSig = FuncSig {
    name: "mem_read",
    params: &[I32, I32, I32, I32],
    results: &[],
};
/// Memory hook added by the instrumenter: `mem_write(addr: i32, width: i32, atomic: i32, loc: i32)`.
pub const MEM_WRITE: FuncSig = FuncSig {
    name: "mem_write",
    params: &[I32, I32, I32, I32],
    results: &[],
};

/// Memory hook added by the instrumenter: `mem_atomic_begin(addr: i32)`, called right
/// before every atomic load, store, read-modify-write and compare-exchange.
///
/// The access's own hook (`mem_read` or `mem_write` with a non-plain kind) follows right
/// after the access. The runtime keeps the two calls and the access between them atomic
/// with respect to the other atomic accesses of the same address, so that the recorded
/// order of the atomics on an address is the order in which they happened.
pub const MEM_ATOMIC_BEGIN: FuncSig = FuncSig {
    name: "mem_atomic_begin",
    params: &[I32],
    results: &[],
};

/// Memory hook added by the instrumenter with lock recognition on
/// (`InstrumentConfig::atomic_values` of `wasmgrind-instrument`):
/// `mem_atomic_value(addr: i32, op: i32, old: i64, new: i64, loc: i32)`.
///
/// It tells the runtime the values of an atomic access, so that it can recognise lock
/// words (std's futex `Mutex`, spin locks). `addr` is the effective address, `op` one of
/// the `VALUE_*` codes in bits 0 to 7 and the access's width in bytes (1, 2, 4 or 8) in
/// bits 8 to 15 ([`value_op`] splits it), `old` and `new` the values (zero-extended to
/// 64 bits; `new` is masked to the access width, except for a wait's timeout), `loc` the
/// access's location. For the accesses it is
/// called inside the access's atomic bracket: after the access and before its
/// `mem_read`/`mem_write`, so the runtime sees the atomics of one address in the order
/// they took effect.
///
/// | `op` | when | `old` | `new` |
/// |---|---|---|---|
/// | [`VALUE_CMPXCHG`] | a compare-exchange that exchanged | the loaded value | the replacement |
/// | [`VALUE_XCHG`] | `*.atomic.rmw*.xchg*` | the loaded value | the stored operand |
/// | [`VALUE_STORE`] | an atomic store | 0 | the stored value |
/// | [`VALUE_RMW`] | any other atomic read-modify-write (add, sub, and, or, xor) | the loaded value | 0 |
/// | [`VALUE_WAIT`] | before `memory.atomic.wait32`/`wait64` (after its `mem_read`) | the expected value | the timeout (ns, negative: none) |
/// | [`VALUE_WAIT_END`] | after the wait returned | the wait's result (0 woken, 1 not-equal, 2 timed out) | 0 |
///
/// A compare-exchange that did not exchange calls no value hook: it wrote nothing.
pub const MEM_ATOMIC_VALUE: FuncSig = FuncSig {
    name: "mem_atomic_value",
    params: &[I32, I32, ValType::I64, ValType::I64, I32],
    results: &[],
};

/// Splits the `op` argument of [`MEM_ATOMIC_VALUE`] into the `VALUE_*` code and the
/// access width in bytes.
pub const fn value_op(op: i32) -> (i32, u32) {
    (op & 0xff, ((op >> 8) & 0xff) as u32)
}

/// `op` of [`MEM_ATOMIC_VALUE`]: a compare-exchange that exchanged.
pub const VALUE_CMPXCHG: i32 = 0;
/// `op` of [`MEM_ATOMIC_VALUE`]: an atomic exchange (`xchg`).
pub const VALUE_XCHG: i32 = 1;
/// `op` of [`MEM_ATOMIC_VALUE`]: an atomic store.
pub const VALUE_STORE: i32 = 2;
/// `op` of [`MEM_ATOMIC_VALUE`]: an atomic add, sub, and, or or xor.
pub const VALUE_RMW: i32 = 3;
/// `op` of [`MEM_ATOMIC_VALUE`]: a `memory.atomic.wait` is about to block.
pub const VALUE_WAIT: i32 = 4;
/// `op` of [`MEM_ATOMIC_VALUE`]: a `memory.atomic.wait` returned.
pub const VALUE_WAIT_END: i32 = 5;

/// The `atomic` argument of a memory hook: a plain access.
pub const ACCESS_PLAIN: i32 = 0;
/// The `atomic` argument of a memory hook: an atomic load or store, a `wait` or `notify`.
pub const ACCESS_ATOMIC: i32 = 1;
/// The `atomic` argument of `mem_write`: an atomic read-modify-write, or a compare-exchange
/// that exchanged; one event that reads and writes.
pub const ACCESS_RMW: i32 = 2;

/// Export of a guest: `thread_start(start_arg: i32)`, the entry point of every thread
/// but the first.
pub const THREAD_START: FuncSig = FuncSig {
    name: "thread_start",
    params: &[I32],
    results: &[],
};
/// Optional export of a guest: `__wasmgrind_init()`. The runtime calls it once, on the
/// first instance, before the function it was asked to run. The guest library uses it to
/// install the panic hook that reports panics through [`PANIC`] with their message.
pub const GUEST_INIT: FuncSig = FuncSig {
    name: "__wasmgrind_init",
    params: &[],
    results: &[],
};
/// Export of a guest: `__wasmgrind_malloc(size: i32, align: i32) -> i32`; returns 0 when out
/// of memory.
pub const MALLOC: FuncSig = FuncSig {
    name: "__wasmgrind_malloc",
    params: &[I32, I32],
    results: &[I32],
};
/// Export of a guest: `__wasmgrind_free(ptr: i32, size: i32, align: i32)`.
pub const FREE: FuncSig = FuncSig {
    name: "__wasmgrind_free",
    params: &[I32, I32, I32],
    results: &[],
};
/// Export added by the patcher: `__wasmgrind_thread_destroy(tls_base: i32, stack_base: i32)`.
///
/// Frees a thread's TLS block and stack. A zero argument means "this instance's own".
/// It is safe to call from the dying thread itself as its last call into the module.
pub const THREAD_DESTROY: FuncSig = FuncSig {
    name: "__wasmgrind_thread_destroy",
    params: &[I32, I32],
    results: &[],
};
/// Global exported by the patcher: the base of this instance's stack allocation, or 0
/// for the first instance, which runs on the linker's stack.
pub const STACK_BASE_EXPORT: &str = "__wasmgrind_stack_base";

/// Name of the custom section the patcher adds. Its payload is two little-endian `u32`s:
/// the index of the first function the patcher injected and how many it injected (they
/// are the last functions of the module). Its presence marks a module as patched, and
/// the instrumenter leaves the functions it lists uninstrumented.
pub const PATCH_SECTION: &str = "wasmgrind.patch";

/// The global exports of the linker that patching needs.
pub const HEAP_BASE: &str = "__heap_base";
/// Size of one TLS block (global).
pub const TLS_SIZE: &str = "__tls_size";
/// Alignment of a TLS block (global).
pub const TLS_ALIGN: &str = "__tls_align";
/// Base of this instance's TLS block (mutable global).
pub const TLS_BASE: &str = "__tls_base";
/// Initializes a TLS block at the given address (function `(i32)`).
pub const INIT_TLS: &str = "__wasm_init_tls";
/// Name of the stack pointer global in the name section.
pub const STACK_POINTER: &str = "__stack_pointer";

/// What the linker must export, with the link argument that makes it do so.
pub const LINKER_EXPORTS: [(&str, &str); 5] = [
    (HEAP_BASE, "-C link-arg=--export=__heap_base"),
    (TLS_SIZE, "-C link-arg=--export=__tls_size"),
    (TLS_ALIGN, "-C link-arg=--export=__tls_align"),
    (TLS_BASE, "-C link-arg=--export=__tls_base"),
    (INIT_TLS, "-C link-arg=--export=__wasm_init_tls"),
];

/// Status codes passed between guest and runtime: the results of `thread_create` and
/// `thread_join`, and the `code` of `panic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    /// Success.
    Ok = 0,
    /// The runtime cannot start another thread (limit reached).
    ThreadLimit = 1,
    /// The runtime failed to start the thread.
    SpawnFailed = 2,
    /// `thread_join` named a thread that does not exist.
    UnknownThread = 3,
    /// `thread_join` named a thread that was already joined.
    AlreadyJoined = 4,
    /// A thread joined itself.
    JoinSelf = 5,
    /// The joined thread trapped.
    ThreadTrapped = 6,
    /// A Rust panic in the guest; the message says more.
    GuestPanic = 100,
    /// The guest ran out of memory.
    OutOfMemory = 101,
    /// A guest's call to `thread_create` failed and it could not go on.
    CreateFailed = 102,
    /// A guest's call to `thread_join` failed and it could not go on.
    JoinFailed = 103,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::Ok,
        ErrorCode::ThreadLimit,
        ErrorCode::SpawnFailed,
        ErrorCode::UnknownThread,
        ErrorCode::AlreadyJoined,
        ErrorCode::JoinSelf,
        ErrorCode::ThreadTrapped,
        ErrorCode::GuestPanic,
        ErrorCode::OutOfMemory,
        ErrorCode::CreateFailed,
        ErrorCode::JoinFailed,
    ];

    /// The code as passed over the ABI.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The code for a raw value, if it is known.
    pub fn from_code(code: i32) -> Result<ErrorCode, AbiError> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.code() == code)
            .ok_or(AbiError::UnknownCode(code))
    }

    /// A sentence saying what the code means.
    pub const fn description(self) -> &'static str {
        match self {
            ErrorCode::Ok => "success",
            ErrorCode::ThreadLimit => "the runtime's thread limit is reached",
            ErrorCode::SpawnFailed => "the runtime failed to start the thread",
            ErrorCode::UnknownThread => "no thread has this id",
            ErrorCode::AlreadyJoined => "the thread was already joined",
            ErrorCode::JoinSelf => "a thread tried to join itself",
            ErrorCode::ThreadTrapped => "the joined thread trapped",
            ErrorCode::GuestPanic => "the guest panicked",
            ErrorCode::OutOfMemory => "the guest ran out of memory",
            ErrorCode::CreateFailed => "the guest could not create a thread",
            ErrorCode::JoinFailed => "the guest could not join a thread",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.description(), self.code())
    }
}

/// Errors about the ABI itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// A status code that no [`ErrorCode`] has.
    #[error(
        "unknown wasmgrind status code {0}: the guest and the runtime disagree on the ABI version"
    )]
    UnknownCode(i32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Ok(c));
        }
        let mut raw: Vec<i32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        raw.sort();
        raw.dedup();
        assert_eq!(raw.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::from_code(77), Err(AbiError::UnknownCode(77)));
    }

    #[test]
    fn located_signature_appends_one_i32() {
        assert_eq!(THREAD_CREATE.params_with_location(), vec![I32, I32, I32]);
        assert!(THREAD_JOIN.matches_with_location(&[I32, I32], &[I32]));
        assert!(!THREAD_JOIN.matches_with_location(&[I32], &[I32]));
        assert_eq!(THREAD_CREATE.to_string(), "thread_create(i32, i32) -> i32");
    }

    #[test]
    fn import_lookup() {
        assert_eq!(import("start_lock"), Some(START_LOCK));
        assert_eq!(import("nope"), None);
    }
}
