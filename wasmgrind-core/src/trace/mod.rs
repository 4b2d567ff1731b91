#![doc = include_str!("trace.md")]

mod consistency;
pub mod export;
pub mod metadata;
pub mod native;
pub mod rapid_bin;
pub mod recorder;
pub mod std_text;
pub mod timeline;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::location::{Location, LocationId};

pub use consistency::{
    check_fork_join_consistency, check_lock_consistency, ConsistencyError, ForkJoinChecker,
    LockChecker,
};
pub use export::{
    export, DenseEvent, DenseOp, DenseTrace, Export, ExportOptions, Exporter, FormatError, IdKind,
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
    /// An atomic read-modify-write (`*.atomic.rmw*`, or a `cmpxchg` that exchanged) of
    /// `width` bytes at `addr`: one event that reads and writes, so no other thread's
    /// event falls between its read and its write.
    Rmw {
        /// Effective address (base plus the memarg offset).
        addr: u32,
        /// Number of bytes read and written.
        width: u32,
    },
    /// The guest's allocator returned the block `[addr, addr + size)`; recorded after the
    /// allocation, outside the allocator's own code.
    Alloc {
        /// The block's address.
        addr: u32,
        /// The block's size in bytes.
        size: u32,
    },
    /// The guest's allocator is about to free the block `[addr, addr + size)`; recorded
    /// before the block is handed back.
    Free {
        /// The block's address.
        addr: u32,
        /// The block's size in bytes.
        size: u32,
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
    /// The thread ended: its last event. The runtime records it for threads that nobody
    /// joins through the runtime (wasi-threads threads that are not joined with
    /// wasi-libc's `pthread_join`, which the runtime records as a [`Op::Join`]); their id
    /// may then be forked again, for a new thread. It orders nothing by itself.
    End,
    /// Not an action of the thread but a verdict of lock recognition, recorded by the
    /// runtime after every other event of a run that did not deadlock: the word at `lock`,
    /// which recognition took for a lock from the values of its atomics, behaved as no
    /// lock does (another thread wrote it while it was held, or its taker never released
    /// it: a state word, an "initialized" flag). The deadlock predictor drops lock-order
    /// cycles through it; everything else ignores it, and no export but Wasmgrind's own
    /// format has it. Keeping it in the trace makes a saved trace give the same findings
    /// when it is analyzed again.
    NotALock {
        /// The word's address.
        lock: Lock,
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

    /// Whether this is a memory access (read, write or read-modify-write).
    pub fn is_access(&self) -> bool {
        matches!(self, Op::Read { .. } | Op::Write { .. } | Op::Rmw { .. })
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
            Op::Rmw { addr, width } => {
                write!(f, "atomic read-modify-write of {width} bytes at {addr:#x}")
            }
            Op::Alloc { addr, size } => write!(f, "allocate {size} bytes at {addr:#x}"),
            Op::Free { addr, size } => write!(f, "free {size} bytes at {addr:#x}"),
            Op::Fork { child } => write!(f, "fork thread {child}"),
            Op::Join { child } => write!(f, "join thread {child}"),
            Op::End => write!(f, "end"),
            Op::NotALock { lock } => write!(f, "the word at {lock:#x} is no lock"),
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
