//! The trace model, the concurrent recorder and the trace formats.
//!
//! # Model
//!
//! A trace is a totally ordered list of [`Event`]s. Every event names the WebAssembly
//! thread that performed it (the runtime's thread id, a `u32`), an [`Op`] and, where the
//! instrumenter knew it, a [`LocationId`]: an index into the location table
//! ([`Trace::locations`]) that instrumentation returns.
//!
//! | op | meaning |
//! |---|---|
//! | `Request { lock }` | the thread is about to block on `lock` |
//! | `Acquire { lock }` | the thread now holds `lock` |
//! | `Release { lock }` | the thread is about to release `lock` (recorded while still held) |
//! | `Read { addr, width, atomic }` | a load of `width` bytes at `addr` |
//! | `Write { addr, width, atomic }` | a store of `width` bytes at `addr` (read-modify-writes are recorded as a read and a write) |
//! | `Fork { child }` | the thread started thread `child` |
//! | `Join { child }` | the thread waited for thread `child` to finish |
//!
//! A lock is identified by its address in the guest's memory (a `u32`).
//!
//! # Recording
//!
//! [`Recorder`] collects the events of many threads without a global lock per event: each
//! thread appends to its own buffer through a [`ThreadRecorder`], and a global sequence
//! number gives the total order. [`Recorder::finish`] merges the buffers by sequence
//! number. The caller records `Release` *before* it releases a lock and `Acquire` *after*
//! it took it, so that the order of the sequence numbers is a valid order of the lock
//! operations; [`check_lock_consistency`] checks this. Memory is bounded by a capacity in
//! events; an event beyond it is refused with [`RecordError::CapacityExceeded`] and
//! `finish` then fails too, so no event is ever dropped silently. See [`recorder`] for the
//! exact memory bound.
//!
//! # Dense ids
//!
//! The exported formats do not use addresses and runtime thread ids but *dense ids*:
//! `0, 1, 2, ...` in the order of first appearance in the exported event list, counted
//! separately for threads, locks, variables and locations. [`export()`] computes them in one
//! pass and produces a [`DenseTrace`] (for RapidBin and STD) and the [`Metadata`] that maps
//! every dense id back.
//!
//! - **Threads**: the thread of an event, then the `child` of a fork or join, in that order.
//! - **Locks**: the `lock` of a request, acquire or release. With
//!   [`ExportOptions::atomics_as_locks`] the per-address pseudo-locks share this id space
//!   and are marked as [`LockKind::Atomic`] in the metadata.
//! - **Variables**: a memory variable is the pair `(addr, width)` of an access. Accesses
//!   that overlap without having the same address and width (for example a 4-byte write at
//!   `0x100` and a 1-byte read at `0x101`) are different variables, so a race between them
//!   is not visible to a tool that reads the trace. This is a documented simplification;
//!   the common case, the same variable accessed the same way, is exact.
//! - **Locations**: the location of an event. An event *without* a location (`None`) gets
//!   a dense location id too, the first time one appears; its metadata entry is `null`.
//!   Nothing is reserved, and only locations that occur in the trace take up ids, so the
//!   location limit counts distinct locations *in the trace*, not the size of the table.
//!
//! ## Atomic accesses as pseudo-locks
//!
//! The formats have no notion of an atomic access: a happens-before tool would see two
//! atomic accesses to the same address as a race and would miss the synchronization they
//! provide. With [`ExportOptions::atomics_as_locks`] every atomic access is exported as
//! three consecutive events of its thread, all with the access's location:
//! `acq(P)`, the access, `rel(P)`, where `P` is a pseudo-lock of the access's address
//! (one per address, whatever the width; distinct from a real lock at the same address).
//! This orders all atomic accesses to one address and adds the happens-before edges
//! between them; it is stronger than WebAssembly's semantics (a read followed by a write
//! also synchronizes), which may hide a few races but never invents one. Decoding with the
//! metadata folds such a bracket back into one atomic access. Without the option, the
//! formats do not carry the atomic flag and decoded accesses have `atomic: false`.
//!
//! # RapidBin
//!
//! The binary format read by the RAPID family of race and deadlock predictors. All
//! integers are big-endian and signed. An 18-byte header:
//!
//! | bytes | type | content |
//! |---|---|---|
//! | 0..2 | `i16` | number of threads |
//! | 2..6 | `i32` | number of locks |
//! | 6..10 | `i32` | number of variables |
//! | 10..18 | `i64` | number of events |
//!
//! then one `i64` per event, with these fields from the least significant bit up:
//!
//! | bits | width | field |
//! |---|---|---|
//! | 0..10 | 10 | dense thread id |
//! | 10..14 | 4 | op code |
//! | 14..48 | 34 | decor: dense lock id, dense variable id or dense child thread id |
//! | 48..63 | 15 | dense location id |
//! | 63 | 1 | sign bit, always 0 |
//!
//! Op codes: acquire 0, release 1, read 2, write 3, fork 4, join 5, request 8. (RAPID
//! reserves 6 and 7 for transaction begin and end; Wasmgrind never writes them and the
//! decoder refuses them.)
//!
//! Limits, each a named [`FormatError`], never a truncation: at most 1,024 threads
//! ([`FormatError::TooManyThreads`]), at most 32,768 distinct locations
//! ([`FormatError::TooManyLocations`]), at most `i32::MAX` locks and variables (the header
//! fields; they bind before the 34-bit decor field could overflow:
//! [`FormatError::TooManyLocks`], [`FormatError::TooManyVariables`]). The decoder checks
//! that every id is below its count in the header, that the sign bit is clear and that
//! the input holds exactly the announced number of events.
//!
//! # STD
//!
//! RAPID's text format, one event per line, `thread|op(decor)|location`, with the same
//! dense ids as RapidBin:
//!
//! ```text
//! T0|fork(T1)|0
//! T1|req(L0)|1
//! T1|acq(L0)|1
//! T1|r(V0)|2
//! T1|w(V0)|3
//! T1|rel(L0)|4
//! T0|join(T1)|5
//! ```
//!
//! Ops: `acq(L<n>)`, `rel(L<n>)`, `req(L<n>)`, `r(V<n>)`, `w(V<n>)`, `fork(T<n>)`,
//! `join(T<n>)`. The last field is the dense location id. Every line ends with `\n`; the
//! decoder also accepts `\r\n` and ignores empty lines. STD has no header, so decoding
//! takes each count as the largest id used plus one (which is what the exporter writes).
//!
//! # Metadata (JSON)
//!
//! [`Metadata`] maps every dense id back, serialized with serde:
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "atomics_as_locks": true,
//!   "counts": { "threads": 2, "locks": 2, "variables": 1, "locations": 2, "events": 6 },
//!   "threads": [0, 1],
//!   "locks": [ { "address": 1024, "kind": "lock" }, { "address": 2048, "kind": "atomic" } ],
//!   "variables": [ { "address": 2048, "width": 4 } ],
//!   "locations": [
//!     { "id": 7, "func_index": 3, "func_name": "main", "code_offset": 291, "instr": "call thread_create" },
//!     null
//!   ]
//! }
//! ```
//!
//! (This is the metadata of a trace in which thread 0 forks thread 1 at location 7, and
//! thread 1, without locations, acquires the lock at 1024, atomically writes 4 bytes at
//! 2048 and releases the lock; exported with `atomics_as_locks`.)
//!
//! `threads[n]` is the runtime's thread id of `T<n>`; `locks[n]` the address of `L<n>`
//! and whether it is a real lock or an atomic pseudo-lock; `variables[n]` the address and
//! width of `V<n>`; `locations[n]` the location table entry (with its original index
//! `id`) of dense location `n`, or `null` for events without a location. `counts.events`
//! counts the exported events (including pseudo-lock events).

mod consistency;
pub mod export;
pub mod metadata;
pub mod rapid_bin;
pub mod recorder;
pub mod std_text;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::location::{Location, LocationId};

pub use consistency::{check_fork_join_consistency, check_lock_consistency, ConsistencyError};
pub use export::{
    export, DenseEvent, DenseOp, DenseTrace, Export, ExportOptions, FormatError, IdKind,
};
pub use metadata::{Counts, LocationInfo, LockInfo, LockKind, Metadata, VariableInfo};
pub use recorder::{RecordError, Recorder, ThreadRecorder};

/// A lock, identified by its address in the guest's memory.
pub type Lock = u32;

/// What a thread did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The thread is about to block on `lock`.
    Request {
        /// The lock's address.
        lock: Lock,
    },
    /// The thread now holds `lock`; recorded after taking it.
    Acquire {
        /// The lock's address.
        lock: Lock,
    },
    /// The thread is about to release `lock`; recorded while it still holds it.
    Release {
        /// The lock's address.
        lock: Lock,
    },
    /// A load from memory.
    Read {
        /// Effective address (base plus the memarg offset).
        addr: u32,
        /// Number of bytes read.
        width: u32,
        /// Whether the access is atomic.
        atomic: bool,
    },
    /// A store to memory.
    Write {
        /// Effective address (base plus the memarg offset).
        addr: u32,
        /// Number of bytes written.
        width: u32,
        /// Whether the access is atomic.
        atomic: bool,
    },
    /// The thread started thread `child`.
    Fork {
        /// The runtime's id of the new thread.
        child: u32,
    },
    /// The thread waited until thread `child` finished.
    Join {
        /// The runtime's id of the joined thread.
        child: u32,
    },
}

impl Op {
    /// The lock of a request, acquire or release.
    pub fn lock(&self) -> Option<Lock> {
        match *self {
            Op::Request { lock } | Op::Acquire { lock } | Op::Release { lock } => Some(lock),
            _ => None,
        }
    }

    /// The child thread of a fork or join.
    pub fn child(&self) -> Option<u32> {
        match *self {
            Op::Fork { child } | Op::Join { child } => Some(child),
            _ => None,
        }
    }

    /// Whether this is a memory access (read or write).
    pub fn is_access(&self) -> bool {
        matches!(self, Op::Read { .. } | Op::Write { .. })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Request { lock } => write!(f, "request lock {lock:#x}"),
            Op::Acquire { lock } => write!(f, "acquire lock {lock:#x}"),
            Op::Release { lock } => write!(f, "release lock {lock:#x}"),
            Op::Read {
                addr,
                width,
                atomic,
            } => {
                let a = if atomic { "atomic " } else { "" };
                write!(f, "{a}read of {width} bytes at {addr:#x}")
            }
            Op::Write {
                addr,
                width,
                atomic,
            } => {
                let a = if atomic { "atomic " } else { "" };
                write!(f, "{a}write of {width} bytes at {addr:#x}")
            }
            Op::Fork { child } => write!(f, "fork thread {child}"),
            Op::Join { child } => write!(f, "join thread {child}"),
        }
    }
}

/// One event of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    /// The runtime's id of the thread that performed the event.
    pub thread: u32,
    /// What the thread did.
    #[serde(flatten)]
    pub op: Op,
    /// Where in the original program, as an index into the location table; `None` when
    /// the event has no call site (for example an event the runtime records itself).
    pub location: Option<LocationId>,
}

impl Event {
    /// An event of `thread`.
    pub fn new(thread: u32, op: Op, location: Option<LocationId>) -> Event {
        Event {
            thread,
            op,
            location,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {}: {}", self.thread, self.op)?;
        if let Some(loc) = self.location {
            write!(f, " (location {loc})")?;
        }
        Ok(())
    }
}

/// A recorded trace: the events in their total order and the location table their
/// `location` fields index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The events, in the order they happened.
    pub events: Vec<Event>,
    /// The location table returned by the instrumenter.
    pub locations: Vec<Location>,
}

impl Trace {
    /// A trace of `events` whose locations index `locations`.
    pub fn new(events: Vec<Event>, locations: Vec<Location>) -> Trace {
        Trace { events, locations }
    }
}
