//! Dense ids: the one pass that turns a [`Trace`] into a [`DenseTrace`] and its
//! [`Metadata`], and the error type of all trace formats.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::location::LocationId;

use super::metadata::{Counts, LocationInfo, LockInfo, LockKind, Metadata, VariableInfo};
use super::rapid_bin::{MAX_LOCATIONS, MAX_LOCKS, MAX_THREADS, MAX_VARIABLES};
use super::{rapid_bin, std_text, Event, Op, Trace};

/// Which id space an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// Dense thread ids (`T<n>`).
    Thread,
    /// Dense lock ids (`L<n>`).
    Lock,
    /// Dense variable ids (`V<n>`).
    Variable,
    /// Dense location ids.
    Location,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Thread => "thread",
            IdKind::Lock => "lock",
            IdKind::Variable => "variable",
            IdKind::Location => "location",
        })
    }
}

/// Everything that can go wrong when exporting, encoding or decoding a trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// More threads than RapidBin's 10-bit thread field holds.
    #[error(
        "the trace reached {count} threads, but RapidBin holds at most 1024 (a 10-bit thread \
         field); trace a run with fewer threads"
    )]
    TooManyThreads {
        /// The number of threads.
        count: u64,
    },
    /// More distinct locations than RapidBin's 15-bit location field holds.
    #[error(
        "the trace reached {count} distinct locations, but RapidBin holds at most 32768 (a \
         15-bit location field); trace a shorter run or instrument fewer functions"
    )]
    TooManyLocations {
        /// The number of distinct locations (counting "no location" as one).
        count: u64,
    },
    /// More locks than RapidBin's `i32` header field holds.
    #[error(
        "the trace reached {count} locks, but RapidBin holds at most 2147483647 (an i32 header \
         field); trace a shorter run"
    )]
    TooManyLocks {
        /// The number of locks.
        count: u64,
    },
    /// More variables than RapidBin's `i32` header field holds.
    #[error(
        "the trace reached {count} variables, but RapidBin holds at most 2147483647 (an i32 \
         header field); trace a shorter run"
    )]
    TooManyVariables {
        /// The number of variables.
        count: u64,
    },
    /// More events than an `i64` counts.
    #[error("the trace has {count} events, more than an i64 event count holds")]
    TooManyEvents {
        /// The number of events.
        count: u64,
    },
    /// A dense event's location does not fit RapidBin's 15-bit location field.
    #[error(
        "event {event} has location {location}, but RapidBin location ids are below 32768 \
         (a 15-bit field)"
    )]
    LocationOutOfRange {
        /// Position of the event.
        event: u64,
        /// The dense location id.
        location: u32,
    },
    /// A dense id is not below the count of its kind.
    #[error("event {event} names {kind} {id}, but the trace has only {count} {kind} ids")]
    IdOutOfRange {
        /// Position of the event.
        event: u64,
        /// The id space.
        kind: IdKind,
        /// The id.
        id: u64,
        /// The count of that id space.
        count: u64,
    },
    /// An event's location is not in the trace's location table.
    #[error(
        "event {event} has location {location}, but the location table has only {table_len} \
         entries; pass the table returned by the instrumentation of this module"
    )]
    UnknownLocation {
        /// Position of the event.
        event: u64,
        /// The location id.
        location: LocationId,
        /// The length of the location table.
        table_len: u64,
    },
    /// RapidBin input shorter than its header says.
    #[error(
        "the RapidBin data is truncated: it needs {needed} bytes but has {actual}; \
         the file was cut short or is not RapidBin"
    )]
    Truncated {
        /// Bytes the header requires.
        needed: u64,
        /// Bytes present.
        actual: u64,
    },
    /// RapidBin input longer than its header says.
    #[error(
        "the RapidBin data has {actual} bytes, but its header announces {expected}; \
         it is corrupt or not RapidBin"
    )]
    TrailingBytes {
        /// Bytes the header announces.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// A negative count in a RapidBin header.
    #[error("the RapidBin header's {field} count is negative ({value}); the data is not RapidBin")]
    NegativeCount {
        /// Which count.
        field: &'static str,
        /// Its value.
        value: i64,
    },
    /// An op code that Wasmgrind traces do not use.
    #[error(
        "RapidBin event {event} has op code {code}, which is not one of acquire 0, release 1, \
         read 2, write 3, fork 4, join 5, request 8 (6 and 7, transaction begin and end, are \
         not part of Wasmgrind traces)"
    )]
    UnknownOpCode {
        /// Position of the event.
        event: u64,
        /// The op code.
        code: u8,
    },
    /// A RapidBin event with its sign bit set.
    #[error("RapidBin event {event} has its sign bit set; the data is corrupt or not RapidBin")]
    SignBitSet {
        /// Position of the event.
        event: u64,
    },
    /// A line of STD text that does not parse.
    #[error("STD line {line} `{text}` does not parse: expected {expected}")]
    StdSyntax {
        /// 1-based line number.
        line: u64,
        /// The line.
        text: String,
        /// What was expected.
        expected: &'static str,
    },
    /// Metadata that is not valid JSON of the expected shape.
    #[error("the trace metadata is not valid: {message}")]
    Json {
        /// serde_json's message.
        message: String,
    },
    /// An unknown metadata format version.
    #[error(
        "the trace metadata has format version {version}, but this Wasmgrind reads version 1; \
         decode it with the Wasmgrind version that wrote it"
    )]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// Metadata that does not match itself or the trace it is applied to.
    #[error(
        "the {what} is {metadata} in the metadata but {trace} in the trace; \
         use the metadata written together with this trace"
    )]
    MetadataMismatch {
        /// What differs.
        what: &'static str,
        /// The value in the metadata (or its declared count).
        metadata: u64,
        /// The value in the trace (or the actual length).
        trace: u64,
    },
    /// A pseudo-lock event that is not part of an `acq(P)`, access, `rel(P)` bracket.
    #[error(
        "event {event} uses an atomic pseudo-lock outside an acquire, access, release bracket \
         of one thread on the lock's address; the trace was not written by Wasmgrind's exporter"
    )]
    AtomicBracket {
        /// Position of the event.
        event: u64,
    },
}

/// The operation of a [`DenseEvent`], with dense ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenseOp {
    /// `acq(L<lock>)`, op code 0.
    Acquire {
        /// Dense lock id.
        lock: u32,
    },
    /// `rel(L<lock>)`, op code 1.
    Release {
        /// Dense lock id.
        lock: u32,
    },
    /// `r(V<var>)`, op code 2.
    Read {
        /// Dense variable id.
        var: u32,
    },
    /// `w(V<var>)`, op code 3.
    Write {
        /// Dense variable id.
        var: u32,
    },
    /// `fork(T<child>)`, op code 4.
    Fork {
        /// Dense thread id of the child.
        child: u32,
    },
    /// `join(T<child>)`, op code 5.
    Join {
        /// Dense thread id of the child.
        child: u32,
    },
    /// `req(L<lock>)`, op code 8.
    Request {
        /// Dense lock id.
        lock: u32,
    },
}

impl DenseOp {
    /// The RapidBin op code.
    pub fn code(&self) -> u8 {
        match self {
            DenseOp::Acquire { .. } => rapid_bin::OP_ACQUIRE,
            DenseOp::Release { .. } => rapid_bin::OP_RELEASE,
            DenseOp::Read { .. } => rapid_bin::OP_READ,
            DenseOp::Write { .. } => rapid_bin::OP_WRITE,
            DenseOp::Fork { .. } => rapid_bin::OP_FORK,
            DenseOp::Join { .. } => rapid_bin::OP_JOIN,
            DenseOp::Request { .. } => rapid_bin::OP_REQUEST,
        }
    }

    /// The operation for a RapidBin op code and decor, if the code is known.
    pub fn from_code(code: u8, decor: u32) -> Option<DenseOp> {
        Some(match code {
            rapid_bin::OP_ACQUIRE => DenseOp::Acquire { lock: decor },
            rapid_bin::OP_RELEASE => DenseOp::Release { lock: decor },
            rapid_bin::OP_READ => DenseOp::Read { var: decor },
            rapid_bin::OP_WRITE => DenseOp::Write { var: decor },
            rapid_bin::OP_FORK => DenseOp::Fork { child: decor },
            rapid_bin::OP_JOIN => DenseOp::Join { child: decor },
            rapid_bin::OP_REQUEST => DenseOp::Request { lock: decor },
            _ => return None,
        })
    }

    /// The decor: the dense lock, variable or child thread id.
    pub fn decor(&self) -> u32 {
        match *self {
            DenseOp::Acquire { lock } | DenseOp::Release { lock } | DenseOp::Request { lock } => {
                lock
            }
            DenseOp::Read { var } | DenseOp::Write { var } => var,
            DenseOp::Fork { child } | DenseOp::Join { child } => child,
        }
    }

    /// The id space of the decor.
    pub fn decor_kind(&self) -> IdKind {
        match self {
            DenseOp::Acquire { .. } | DenseOp::Release { .. } | DenseOp::Request { .. } => {
                IdKind::Lock
            }
            DenseOp::Read { .. } | DenseOp::Write { .. } => IdKind::Variable,
            DenseOp::Fork { .. } | DenseOp::Join { .. } => IdKind::Thread,
        }
    }
}

/// One event with dense ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DenseEvent {
    /// Dense thread id (`T<n>`).
    pub thread: u32,
    /// The operation.
    pub op: DenseOp,
    /// Dense location id (an index into [`Metadata::locations`]).
    pub location: u32,
}

/// A trace with dense ids: what RapidBin and STD hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenseTrace {
    /// Number of thread ids; every thread id is below it.
    pub threads: u32,
    /// Number of lock ids (real and pseudo-locks); every lock id is below it.
    pub locks: u32,
    /// Number of variable ids; every variable id is below it.
    pub variables: u32,
    /// The events in order.
    pub events: Vec<DenseEvent>,
}

impl DenseTrace {
    pub(crate) fn count(&self, kind: IdKind) -> u32 {
        match kind {
            IdKind::Thread => self.threads,
            IdKind::Lock => self.locks,
            IdKind::Variable => self.variables,
            IdKind::Location => MAX_LOCATIONS,
        }
    }

    /// Checks that the trace fits RapidBin: the counts within the format's limits, every
    /// id below its count, every location below 32,768.
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.threads > MAX_THREADS {
            return Err(FormatError::TooManyThreads {
                count: self.threads.into(),
            });
        }
        if self.locks > MAX_LOCKS {
            return Err(FormatError::TooManyLocks {
                count: self.locks.into(),
            });
        }
        if self.variables > MAX_VARIABLES {
            return Err(FormatError::TooManyVariables {
                count: self.variables.into(),
            });
        }
        if i64::try_from(self.events.len()).is_err() {
            return Err(FormatError::TooManyEvents {
                count: self.events.len() as u64,
            });
        }
        for (i, e) in self.events.iter().enumerate() {
            self.validate_event(i as u64, e)?;
        }
        Ok(())
    }

    pub(crate) fn validate_event(&self, event: u64, e: &DenseEvent) -> Result<(), FormatError> {
        let check = |kind: IdKind, id: u32| {
            let count = self.count(kind);
            if id < count {
                Ok(())
            } else {
                Err(FormatError::IdOutOfRange {
                    event,
                    kind,
                    id: id.into(),
                    count: count.into(),
                })
            }
        };
        check(IdKind::Thread, e.thread)?;
        check(e.op.decor_kind(), e.op.decor())?;
        if e.location >= MAX_LOCATIONS {
            return Err(FormatError::LocationOutOfRange {
                event,
                location: e.location,
            });
        }
        Ok(())
    }
}

/// Whether `op` appears in the export: the formats have no allocation, end and
/// not-a-lock events (only Wasmgrind's own detectors use them), and lock requests only
/// with [`ExportOptions::lock_requests`].
fn exported(op: &Op, options: ExportOptions) -> bool {
    match op {
        Op::Alloc { .. } | Op::Free { .. } | Op::End | Op::NotALock { .. } => false,
        Op::Request { .. } => options.lock_requests,
        _ => true,
    }
}

/// Options of [`export`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Export every atomic access as `acq(P)`, the access, `rel(P)` with a per-address
    /// pseudo-lock `P`, so that happens-before tools see the synchronization of atomics
    /// (see the [module documentation](super)). Off by default.
    pub atomics_as_locks: bool,
    /// Export lock requests (`req(L)` in STD, op code 8 in RapidBin). Off by default:
    /// upstream RAPID's STD parser knows only `acq rel r w fork join` and misreads a
    /// `req` line, and the happens-before relation does not depend on requests.
    pub lock_requests: bool,
}

/// The result of [`export`]: the dense trace and the metadata that maps its ids back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The events with dense ids.
    pub trace: DenseTrace,
    /// What every dense id stands for.
    pub metadata: Metadata,
}

impl Export {
    /// The trace in RapidBin.
    pub fn rapid_bin(&self) -> Result<Vec<u8>, FormatError> {
        rapid_bin::encode(&self.trace)
    }

    /// The trace in STD text.
    pub fn std_text(&self) -> String {
        std_text::encode(&self.trace)
    }

    /// The metadata as pretty-printed JSON.
    pub fn metadata_json(&self) -> String {
        self.metadata.to_json()
    }
}

/// A fast, non-cryptographic hasher for the integer keys of the trace code (thread ids,
/// addresses): a multiply-and-rotate mix, much cheaper than the default SipHash. The keys
/// come from the traced program, not from an adversary that could force collisions.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    /// An odd constant with well-spread bits (from the golden ratio).
    const K: u64 = 0x9E37_79B9_7F4A_7C15;

    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(Self::K).rotate_left(23);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // One more multiply so that the low bits (the bucket index) depend on every key
        // bit, also for keys that differ only in their high bits.
        let h = self.0.wrapping_mul(Self::K);
        h ^ (h >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// A hash map with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Assigns dense ids `0, 1, 2, ...` in order of first appearance; keys are `u64`.
#[derive(Debug)]
struct Interner<V> {
    ids: FastMap<u64, u32>,
    values: Vec<V>,
}

impl<V> Interner<V> {
    fn new() -> Self {
        Interner {
            ids: FastMap::default(),
            values: Vec::new(),
        }
    }

    /// The id of `key`; `value` describes it when it is new. [`Exporter`] refuses an id space
    /// as soon as it passes its limit (at most `i32::MAX`), long before `u32` ids wrap.
    #[inline]
    fn id(&mut self, key: u64, value: impl FnOnce() -> V) -> u32 {
        let next = self.values.len() as u32;
        *self.ids.entry(key).or_insert_with(|| {
            self.values.push(value());
            next
        })
    }

    fn count(&self) -> u64 {
        self.values.len() as u64
    }
}

/// Address bits of one page of [`Variables`]' direct tables.
const PAGE_BITS: u32 = 10;

/// Dense variable ids, in order of first appearance, keyed by address and width.
///
/// Most accesses are aligned and 1, 2, 4, 8 or 16 bytes wide; their ids live in direct
/// tables, one per width: the addresses are split into pages of 1 KiB, and a page's block
/// (one slot per aligned address of that width, allocated when the page is first touched
/// with that width) holds the ids. A lookup is then two indexed loads instead of a hash
/// lookup, the dominant cost of the dense ids. The tables cost 4 bytes per slot: about as
/// much as the touched memory when it is touched densely, and at most 4 KiB per variable
/// (1-byte accesses, one per page) when it is touched sparsely; the page index costs
/// 4 bytes per KiB of address space up to the highest address touched. Other accesses
/// (unaligned, or of another width) go to a hash map. Every key goes to exactly one of
/// them, so the ids are those of a single map.
#[derive(Debug)]
struct Variables {
    /// Per width class (1, 2, 4, 8, 16 bytes): the block of each page, or [`NONE`].
    pages: [Vec<u32>; 5],
    /// Per width class: the blocks, `PAGE >> class` slots each, holding ids or [`NONE`].
    slots: [Vec<u32>; 5],
    /// The ids of the other accesses, keyed by `address << 32 | width`.
    other: FastMap<u64, u32>,
    values: Vec<VariableInfo>,
}

impl Variables {
    fn new() -> Self {
        Variables {
            pages: Default::default(),
            slots: Default::default(),
            other: FastMap::default(),
            values: Vec::new(),
        }
    }

    /// The id of the `width`-byte variable at `address`.
    #[inline(always)]
    fn id(&mut self, address: u32, width: u32) -> u32 {
        let class = match width {
            1 => 0,
            2 => 1,
            4 => 2,
            8 => 3,
            16 => 4,
            _ => return self.other_id(address, width),
        };
        if address & (width - 1) != 0 {
            return self.other_id(address, width);
        }
        let per_page = (1usize << PAGE_BITS) >> class;
        let page = (address >> PAGE_BITS) as usize;
        let pages = &mut self.pages[class];
        if page >= pages.len() {
            pages.resize(page + 1, NONE);
        }
        let slots = &mut self.slots[class];
        let block = match pages[page] {
            NONE => {
                let block = slots.len() / per_page;
                slots.resize(slots.len() + per_page, NONE);
                // At most 2^32 / 1 KiB pages, so the block index fits.
                pages[page] = block as u32;
                block
            }
            block => block as usize,
        };
        let offset = (address as usize & ((1 << PAGE_BITS) - 1)) >> class;
        let slot = &mut slots[block * per_page + offset];
        if *slot == NONE {
            *slot = self.values.len() as u32;
            self.values.push(VariableInfo { address, width });
        }
        *slot
    }

    #[cold]
    fn other_id(&mut self, address: u32, width: u32) -> u32 {
        let next = self.values.len() as u32;
        let values = &mut self.values;
        *self
            .other
            .entry(u64::from(address) << 32 | u64::from(width))
            .or_insert_with(|| {
                values.push(VariableInfo { address, width });
                next
            })
    }

    fn count(&self) -> u64 {
        self.values.len() as u64
    }
}

/// Computes the dense ids of `trace` in one pass and returns the dense trace and its
/// metadata, from which [`Export::rapid_bin`], [`Export::std_text`] and
/// [`Export::metadata_json`] write the three formats.
///
/// Fails with a named [`FormatError`] if the trace exceeds a limit of RapidBin (more than
/// 1,024 threads, 32,768 distinct locations, or `i32::MAX` locks or variables), or if an
/// event's location is not in `trace.locations`.
///
/// This is [`Exporter`] fed the whole trace at once: the same ids and bytes as feeding it
/// in chunks.
pub fn export(trace: &Trace, options: ExportOptions) -> Result<Export, FormatError> {
    let mut exporter = Exporter::new(trace.locations.clone(), options);
    let mut events = Vec::with_capacity(trace.events.len());
    exporter.dense_into(&trace.events, &mut events)?;
    let counts = exporter.counts();
    let dense = DenseTrace {
        threads: counts.threads as u32,
        locks: counts.locks as u32,
        variables: counts.variables as u32,
        events,
    };
    Ok(Export {
        trace: dense,
        metadata: exporter.into_metadata(),
    })
}

/// Dense ids for a trace that comes in chunks: the exporter keeps the id maps, so a
/// chunk's events get the ids that the whole trace would give them, and the
/// concatenation of the chunks' RapidBin words and STD lines is byte for byte what
/// [`export`] writes for the whole trace.
///
/// Feed it the events in trace order with [`Exporter::dense_into`] (or straight to the
/// formats with [`Exporter::rapid_bin_into`] and [`Exporter::std_into`]); at the end,
/// [`Exporter::rapid_bin_header`] is the header with the final counts (RapidBin puts its
/// counts in front, so a streamed file gets it last, written over a placeholder of
/// [`rapid_bin::HEADER_LEN`] bytes) and [`Exporter::metadata`] maps the ids back.
///
/// Limits of RapidBin are checked as the ids are handed out: the chunk with the event that
/// passes one fails with a named [`FormatError`], and so does every later call (the
/// exporter is then spent).
#[derive(Debug)]
pub struct Exporter {
    options: ExportOptions,
    locations: Vec<crate::location::Location>,
    threads: Interner<u32>,
    locks: Interner<LockInfo>,
    variables: Variables,
    /// Dense ids of the location table's entries (`NONE`: not seen yet).
    location_ids: Vec<u32>,
    location_values: Vec<Option<LocationInfo>>,
    /// The dense id of "no location", or `NONE`.
    no_location: u32,
    /// The dense id of the previous event's thread: consecutive events of one thread are
    /// the common case.
    last_thread: Option<(u32, u32)>,
    /// Events fed so far (their positions, for errors).
    seen: u64,
    /// Dense events produced so far.
    exported: u64,
    /// The error that spent the exporter.
    failed: Option<FormatError>,
    /// Scratch space of the format writers.
    scratch: Vec<DenseEvent>,
}

/// "Not seen yet" in the exporter's location table.
const NONE: u32 = u32::MAX;

impl Exporter {
    /// An exporter for events whose locations index `locations`.
    pub fn new(locations: Vec<crate::location::Location>, options: ExportOptions) -> Exporter {
        Exporter {
            options,
            location_ids: vec![NONE; locations.len()],
            locations,
            threads: Interner::new(),
            locks: Interner::new(),
            variables: Variables::new(),
            location_values: Vec::new(),
            no_location: NONE,
            last_thread: None,
            seen: 0,
            exported: 0,
            failed: None,
            scratch: Vec::new(),
        }
    }

    /// The options it exports with.
    pub fn options(&self) -> ExportOptions {
        self.options
    }

    /// The id counts so far, and the number of dense events produced.
    pub fn counts(&self) -> Counts {
        Counts {
            threads: self.threads.count(),
            locks: self.locks.count(),
            variables: self.variables.count(),
            locations: self.location_values.len() as u64,
            events: self.exported,
        }
    }

    /// The metadata of the events fed so far.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            format_version: Metadata::FORMAT_VERSION,
            atomics_as_locks: self.options.atomics_as_locks,
            counts: self.counts(),
            threads: self.threads.values.clone(),
            locks: self.locks.values.clone(),
            variables: self.variables.values.clone(),
            locations: self.location_values.clone(),
        }
    }

    /// The metadata of the events fed so far, without a copy.
    pub fn into_metadata(self) -> Metadata {
        Metadata {
            format_version: Metadata::FORMAT_VERSION,
            atomics_as_locks: self.options.atomics_as_locks,
            counts: self.counts(),
            threads: self.threads.values,
            locks: self.locks.values,
            variables: self.variables.values,
            locations: self.location_values,
        }
    }

    /// The RapidBin header with the counts so far: the first
    /// [`rapid_bin::HEADER_LEN`] bytes of the file whose events are the words written
    /// so far.
    pub fn rapid_bin_header(&self) -> Result<[u8; rapid_bin::HEADER_LEN], FormatError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let c = self.counts();
        rapid_bin::header(c.threads, c.locks, c.variables, c.events)
    }

    /// Appends the RapidBin words of `events` (the next events of the trace) to `out`,
    /// and returns how many dense events they are.
    pub fn rapid_bin_into(
        &mut self,
        events: &[Event],
        out: &mut Vec<u8>,
    ) -> Result<u64, FormatError> {
        let mut dense = std::mem::take(&mut self.scratch);
        dense.clear();
        let result = self.dense_into(events, &mut dense);
        if result.is_ok() {
            rapid_bin::encode_events_into(&dense, out);
        }
        let n = dense.len() as u64;
        self.scratch = dense;
        result.map(|()| n)
    }

    /// Appends the STD lines of `events` (the next events of the trace) to `out`, and
    /// returns how many dense events they are.
    pub fn std_into(&mut self, events: &[Event], out: &mut String) -> Result<u64, FormatError> {
        let mut dense = std::mem::take(&mut self.scratch);
        dense.clear();
        let result = self.dense_into(events, &mut dense);
        if result.is_ok() {
            std_text::encode_into(&dense, out);
        }
        let n = dense.len() as u64;
        self.scratch = dense;
        result.map(|()| n)
    }

    /// Appends the dense events of `events` (the next events of the trace) to `out`.
    /// Allocations and frees produce none, requests only with
    /// [`ExportOptions::lock_requests`], atomics with [`ExportOptions::atomics_as_locks`]
    /// three (four for a read-modify-write), a read-modify-write two.
    pub fn dense_into(
        &mut self,
        events: &[Event],
        out: &mut Vec<DenseEvent>,
    ) -> Result<(), FormatError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let before = out.len();
        let mut result = self.dense_events(events, out);
        self.exported += (out.len() - before) as u64;
        if result.is_ok() && i64::try_from(self.exported).is_err() {
            result = Err(FormatError::TooManyEvents {
                count: self.exported,
            });
        }
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn location(&mut self, event: u64, location: Option<LocationId>) -> Result<u32, FormatError> {
        let fresh = match location {
            Some(id) => {
                let table_len = self.location_ids.len() as u64;
                let slot =
                    self.location_ids
                        .get_mut(id as usize)
                        .ok_or(FormatError::UnknownLocation {
                            event,
                            location: id,
                            table_len,
                        })?;
                if *slot != NONE {
                    return Ok(*slot);
                }
                *slot = self.location_values.len() as u32;
                self.location_values.push(Some(LocationInfo {
                    id,
                    location: self.locations[id as usize].clone(),
                }));
                *slot
            }
            None => {
                if self.no_location != NONE {
                    return Ok(self.no_location);
                }
                self.no_location = self.location_values.len() as u32;
                self.location_values.push(None);
                self.no_location
            }
        };
        let count = self.location_values.len() as u64;
        if count > u64::from(MAX_LOCATIONS) {
            return Err(FormatError::TooManyLocations { count });
        }
        Ok(fresh)
    }

    fn thread_id(&mut self, thread: u32) -> Result<u32, FormatError> {
        let id = self.threads.id(thread.into(), || thread);
        let count = self.threads.count();
        if count > u64::from(MAX_THREADS) {
            return Err(FormatError::TooManyThreads { count });
        }
        Ok(id)
    }

    fn dense_events(
        &mut self,
        events: &[Event],
        out: &mut Vec<DenseEvent>,
    ) -> Result<(), FormatError> {
        let options = self.options;
        out.reserve(events.len());
        for e in events {
            let index = self.seen;
            self.seen += 1;
            // The common case first: a plain access of the previous event's thread at a
            // location seen before. (Every id it uses exists, so no limit can be passed
            // but the variables'.)
            if let Op::Read {
                addr,
                width,
                atomic: false,
            }
            | Op::Write {
                addr,
                width,
                atomic: false,
            } = e.op
            {
                let location = match e.location {
                    Some(id) => self.location_ids.get(id as usize).copied().unwrap_or(NONE),
                    None => self.no_location,
                };
                if let (Some((t, thread)), false) = (self.last_thread, location == NONE) {
                    if t == e.thread {
                        let var = self.variables.id(addr, width);
                        if var >= MAX_VARIABLES {
                            return Err(FormatError::TooManyVariables {
                                count: self.variables.count(),
                            });
                        }
                        out.push(DenseEvent {
                            thread,
                            op: if matches!(e.op, Op::Read { .. }) {
                                DenseOp::Read { var }
                            } else {
                                DenseOp::Write { var }
                            },
                            location,
                        });
                        continue;
                    }
                }
            }
            if !exported(&e.op, options) {
                continue;
            }
            let location = self.location(index, e.location)?;
            let thread = match self.last_thread {
                Some((t, dense)) if t == e.thread => dense,
                _ => {
                    let dense = self.thread_id(e.thread)?;
                    self.last_thread = Some((e.thread, dense));
                    dense
                }
            };
            let locks = &mut self.locks;
            let mut lock = |kind: LockKind, address: u32| {
                let key = u64::from(kind == LockKind::Atomic) << 32 | u64::from(address);
                locks.id(key, || LockInfo { address, kind })
            };
            let mut push = |op: DenseOp| {
                out.push(DenseEvent {
                    thread,
                    op,
                    location,
                })
            };
            match e.op {
                Op::Request { lock: l } => push(DenseOp::Request {
                    lock: lock(LockKind::Lock, l),
                }),
                Op::Alloc { .. } | Op::Free { .. } | Op::End | Op::NotALock { .. } => {}
                Op::Rmw { addr, width } => {
                    let pseudo = options
                        .atomics_as_locks
                        .then(|| lock(LockKind::Atomic, addr));
                    let var = self.variables.id(addr, width);
                    if let Some(p) = pseudo {
                        push(DenseOp::Acquire { lock: p });
                    }
                    push(DenseOp::Read { var });
                    push(DenseOp::Write { var });
                    if let Some(p) = pseudo {
                        push(DenseOp::Release { lock: p });
                    }
                }
                Op::Acquire { lock: l } => push(DenseOp::Acquire {
                    lock: lock(LockKind::Lock, l),
                }),
                Op::Release { lock: l } => push(DenseOp::Release {
                    lock: lock(LockKind::Lock, l),
                }),
                Op::Read {
                    addr,
                    width,
                    atomic,
                }
                | Op::Write {
                    addr,
                    width,
                    atomic,
                } => {
                    let pseudo =
                        (atomic && options.atomics_as_locks).then(|| lock(LockKind::Atomic, addr));
                    let var = self.variables.id(addr, width);
                    if let Some(p) = pseudo {
                        push(DenseOp::Acquire { lock: p });
                    }
                    push(if matches!(e.op, Op::Read { .. }) {
                        DenseOp::Read { var }
                    } else {
                        DenseOp::Write { var }
                    });
                    if let Some(p) = pseudo {
                        push(DenseOp::Release { lock: p });
                    }
                }
                Op::Fork { child } | Op::Join { child } => {
                    let child = self.thread_id(child)?;
                    out.push(DenseEvent {
                        thread,
                        op: if matches!(e.op, Op::Fork { .. }) {
                            DenseOp::Fork { child }
                        } else {
                            DenseOp::Join { child }
                        },
                        location,
                    });
                }
            }
            // Checked per event so that no id space can grow past `u32`.
            if self.locks.count() > u64::from(MAX_LOCKS) {
                return Err(FormatError::TooManyLocks {
                    count: self.locks.count(),
                });
            }
            if self.variables.count() > u64::from(MAX_VARIABLES) {
                return Err(FormatError::TooManyVariables {
                    count: self.variables.count(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Event;

    /// Variable ids are handed out in order of first appearance, one per (address,
    /// width), whichever table holds them: aligned and unaligned accesses, every width,
    /// the lowest and highest addresses, one address with several widths.
    #[test]
    fn variable_ids_follow_first_appearance_across_tables() {
        let widths = [1u32, 2, 3, 4, 8, 16, 32];
        let bases = [
            0u32,
            1,
            2,
            6,
            1023,
            1024,
            4096,
            0x10_0000,
            0xFFFF_FC00,
            0xFFFF_FFE0,
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut events = Vec::new();
        for _ in 0..20_000 {
            let addr = bases[next(bases.len())].wrapping_add(next(64) as u32);
            let width = widths[next(widths.len())];
            let op = if next(2) == 0 {
                Op::Read {
                    addr,
                    width,
                    atomic: false,
                }
            } else {
                Op::Write {
                    addr,
                    width,
                    atomic: false,
                }
            };
            events.push(Event::new(next(3) as u32, op, None));
        }
        let mut reference: HashMap<(u32, u32), u32> = HashMap::new();
        let mut infos = Vec::new();
        let mut expected = Vec::new();
        for e in &events {
            let (Op::Read { addr, width, .. } | Op::Write { addr, width, .. }) = e.op else {
                unreachable!()
            };
            let next = reference.len() as u32;
            let id = *reference.entry((addr, width)).or_insert_with(|| {
                infos.push(VariableInfo {
                    address: addr,
                    width,
                });
                next
            });
            expected.push(id);
        }
        let mut exporter = Exporter::new(Vec::new(), ExportOptions::default());
        let mut dense = Vec::new();
        for part in events.chunks(777) {
            exporter.dense_into(part, &mut dense).unwrap();
        }
        let ids: Vec<u32> = dense.iter().map(|e| e.op.decor()).collect();
        assert_eq!(ids, expected);
        let metadata = exporter.into_metadata();
        assert_eq!(metadata.variables, infos);
        assert_eq!(metadata.counts.variables, infos.len() as u64);
    }
}
