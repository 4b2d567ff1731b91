//! The tracing session of one run: the recorder, the location table and the per-thread
//! state that the runtime reports when a run times out.
//!
//! There is one [`Session`] per utility memory. Every thread (every worker) has its own
//! instance of the utility module on that memory, and a [`ThreadCtx`] in that instance's
//! TLS that names the thread and holds its [`ThreadRecorder`]. The hooks the target module
//! calls go straight to the utility instance of the calling thread.
//!
//! # Stopping safely
//!
//! At the end of a run the runtime may have to stop threads that are still running
//! (detached threads) by terminating their workers, and then read the trace. A worker
//! terminated while it is inside the utility module could hold a lock there (a recorder
//! buffer, the allocator) and the final read would wait for it forever. So every entry
//! into the utility module that records is *guarded*: it marks its thread's slot busy,
//! and if the session is stopping it unmarks it and parks the thread for good
//! ([`park`]). [`Session::stop`] sets the flag, and once [`Session::busy`] reports no busy
//! slot, no thread is inside the module or can enter it again, and terminating the workers
//! is safe. Flag and busy marks are sequentially consistent, so either the thread sees the
//! flag or the runtime sees the mark.
//!
//! # Streaming
//!
//! The recorder has no fixed capacity. The manager drains it while the program runs
//! ([`Session::drain`]) and feeds every chunk to the session's [`Stream`] (detectors,
//! consistency checks, incremental exporter; see [`crate::stream`]), so the recorder only
//! holds what was not drained yet. A recording thread that finds more than
//! [`Config::max_pending`] events waiting for the manager sleeps until a drain brings it
//! below half of that, outside the recorder (it holds nothing there, and a stopping
//! session parks it). Memory is thus bounded however long the run records; the optional
//! limits [`Config::max_events`] and [`Config::max_trace_bytes`] bound the trace itself,
//! and [`Session::limit`] names the one that was reached.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use wasmgrind_core::abi;
use wasmgrind_core::analysis::report::{report, Report};
use wasmgrind_core::analysis::symbolize::Symbolizer;
use wasmgrind_core::analysis::{Analyzer, Findings, LiveDeadlock};
use wasmgrind_core::location::{Location, LocationId};
use wasmgrind_core::trace::{native, Event, ExportOptions, Op, Recorder, ThreadRecorder};

use crate::error::{Failure, LimitError, SessionError};
use crate::stream::{BytesReached, Chunk, Offload, Stream, Totals};

/// The largest thread limit a session accepts.
pub const MAX_THREAD_LIMIT: u32 = 1 << 20;

/// Number of locks that make an atomic access and its recording one step: an atomic
/// access of address `a` holds lock `stripe(a)` from `mem_atomic_begin` to its event.
pub const ATOMIC_STRIPES: usize = 256;

/// The stripe of an atomic access's address (every width of one word shares it).
fn stripe(addr: u32) -> usize {
    ((addr >> 3).wrapping_mul(0x9E37_79B1) >> 24) as usize % ATOMIC_STRIPES
}

/// Slots in the lock-owner table. Owners of locks beyond this many distinct locks are not
/// tracked, and the timeout report says so.
pub const LOCK_TABLE_SIZE: usize = 1 << 14;

/// Per-thread state, on its own cache line so that threads do not contend.
#[repr(align(64))]
#[derive(Default)]
pub struct Slot {
    /// 1 while the thread is inside a guarded entry.
    busy: AtomicU32,
    /// `1 << 32 | lock` while the thread requested `lock` and does not hold it yet.
    waiting: AtomicU64,
    /// `loc + 1` of the wait of a recognised lock that set `waiting`, 0 for none.
    wait_loc: AtomicU32,
    /// `child + 1` while the thread waits in `pthread_join` for thread `child` (a wasi
    /// program's `JoinHandle::join`), 0 otherwise; for the watchdog and timeout reports.
    joining: AtomicU32,
    /// `loc + 1` of that join's wait.
    join_loc: AtomicU32,
    /// Set when another thread made a recognised lock that this thread holds unknown
    /// (see [`Flags::POISONED`]): the thread records its release at its next lock event.
    stale: AtomicU32,
    /// The thread id's recorder, made on first use and kept: a recycled thread id (the
    /// runtime reuses the ids of joined threads) records into the same buffer, which
    /// stays in order because one incarnation ends before the next begins.
    recorder: OnceLock<ThreadRecorder>,
}

/// Which thread holds which lock, as far as the hooks saw: an open-addressing table keyed
/// by lock address.
struct LockTable {
    /// `lock + 1` (wrapping), 0 for an empty slot.
    keys: Box<[AtomicU32]>,
    /// `tid + 1` of the holder, 0 for none.
    owners: Box<[AtomicU32]>,
    /// What lock recognition knows of each lock ([`Flags`] bits).
    flags: Box<[AtomicU32]>,
    /// Set when a lock found no free slot.
    overflowed: AtomicU32,
}

impl LockTable {
    fn new(size: usize) -> LockTable {
        LockTable {
            keys: (0..size).map(|_| AtomicU32::new(0)).collect(),
            owners: (0..size).map(|_| AtomicU32::new(0)).collect(),
            flags: (0..size).map(|_| AtomicU32::new(0)).collect(),
            overflowed: AtomicU32::new(0),
        }
    }

    fn find(&self, lock: u32, insert: bool) -> Option<usize> {
        let key = lock.wrapping_add(1);
        let n = self.keys.len();
        let start = (lock.wrapping_mul(0x9E37_79B1) as usize) % n;
        for i in 0..n {
            let at = (start + i) % n;
            let k = self.keys[at].load(SeqCst);
            if k == key {
                return Some(at);
            }
            if k == 0 {
                if !insert {
                    return None;
                }
                match self.keys[at].compare_exchange(0, key, SeqCst, SeqCst) {
                    Ok(_) => return Some(at),
                    Err(current) if current == key => return Some(at),
                    Err(_) => continue,
                }
            }
        }
        if insert {
            self.overflowed.store(1, SeqCst);
        }
        None
    }

    fn set_owner(&self, lock: u32, tid: u32) {
        if let Some(at) = self.find(lock, true) {
            self.owners[at].store(tid + 1, SeqCst);
        }
    }

    fn clear_owner(&self, lock: u32, tid: u32) {
        if let Some(at) = self.find(lock, false) {
            let _ = self.owners[at].compare_exchange(tid + 1, 0, SeqCst, SeqCst);
        }
    }

    fn owner(&self, lock: u32) -> Option<u32> {
        let at = self.find(lock, false)?;
        // A lock that recognition gave up on has no holder it can vouch for.
        if self.flags[at].load(SeqCst) & Flags::POISONED != 0 {
            return None;
        }
        self.owners[at].load(SeqCst).checked_sub(1)
    }

    /// Whether recognition's view of the word at `lock` disqualifies it as a lock at the
    /// end of a run that did not deadlock: recognition gave up on it (see
    /// [`Flags::POISONED`]), or a thread took it through recognition, still holds it, and
    /// it never behaved as a lock (see [`Flags::LOCK_LIKE`]: a flag set once, a channel's
    /// selection state). A mutex that was unlocked or contended before and is held when
    /// the program ends (a guard alive at `exit`, a detached thread's, two threads that
    /// `exit` ends in a deadlock) stays a lock, so the lock-order cycles through it are
    /// reported.
    fn disqualified(&self, lock: u32) -> bool {
        self.find(lock, false).is_some_and(|at| {
            let f = self.flags[at].load(SeqCst);
            f & Flags::POISONED != 0
                || (f & Flags::RECOGNISED != 0
                    && f & Flags::LOCK_LIKE == 0
                    && self.owners[at].load(SeqCst) != 0)
        })
    }

    /// The words that are [`disqualified`](LockTable::disqualified), in ascending order.
    fn disqualified_words(&self) -> Vec<u32> {
        let mut words: Vec<u32> = self
            .keys
            .iter()
            .filter_map(|k| k.load(SeqCst).checked_sub(1))
            .filter(|&lock| self.disqualified(lock))
            .collect();
        words.sort_unstable();
        words
    }

    fn held_by(&self, tid: u32) -> Vec<u32> {
        let mut held = Vec::new();
        for (k, o) in self.keys.iter().zip(self.owners.iter()) {
            if o.load(SeqCst) == tid + 1 {
                held.push(k.load(SeqCst).wrapping_sub(1));
            }
        }
        held.sort_unstable();
        held
    }
}

/// A compare-exchange or exchange from 0 acquires a lock only if it writes a value below
/// this: lock words hold small states (std's futex mutex 1 and 2, a spin lock's `true`),
/// while a word that gets a pointer over 0 (`AtomicPtr::compare_exchange(null, p)`, lazy
/// initialization, std's channel contexts) is no lock and would stay "held" for ever.
pub const LOCK_VALUE_LIMIT: u64 = 1 << 16;

/// The bits of [`LockTable`]'s flags, which lock recognition keeps per address.
struct Flags;

impl Flags {
    /// A compare-exchange from 0 took this word once: it is a recognised lock, and an
    /// exchange from 0 takes it too (the contended path of std's futex mutex).
    const KNOWN: u32 = 1;
    /// While a thread held the lock, another thread wrote the word in a way a lock word is
    /// not (another read-modify-write, a store, a compare-exchange): recognition ignores
    /// the word for good. Its holder records its release late, at its next lock event,
    /// so that it does not hold it for ever in the lock-order graph; no acquisition may
    /// follow that release, which would order the holder's later events before it.
    const POISONED: u32 = 2;
    /// A traced lock hook (`start_lock`, ...) names this address: the program's own lock
    /// events describe it, and recognition leaves it alone.
    const TRACED: u32 = 4;
    /// The current holder took the lock through recognition.
    const RECOGNISED: u32 = 8;
    /// Since the word last became a lock word, it behaved as only a lock does: a holder
    /// released it by exchanging it with 0 (std's `Mutex` unlock), or a thread waited for
    /// it while another held it (a request). Held at the end of a run, it is still a lock
    /// (see [`LockTable::disqualified`]).
    const LOCK_LIKE: u32 = 16;
}

/// The settings of a [`Session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Thread ids `0..max_threads`.
    pub max_threads: u32,
    /// Most events recorded (`maxEvents`); `None`: no limit.
    pub max_events: Option<u64>,
    /// Most bytes of the three trace formats together (`maxTraceBytes`), checked after
    /// every chunk; `None`: no limit.
    pub max_trace_bytes: Option<u64>,
    /// Most events waiting to be drained before recording threads wait for the manager;
    /// `None`: they never wait (for a session nobody drains while it records).
    pub max_pending: Option<u64>,
    /// How the trace is exported.
    pub export: ExportOptions,
    /// Recognise lock words among the atomics (`recognizeLocks`): the values reported by
    /// the `mem_atomic_value` hook become `Acquire`/`Release` events and waits for such
    /// locks count for the live deadlock watchdog. See [`ThreadCtx::atomic_value`].
    pub recognize_locks: bool,
    /// Write a timeline of the run (Chrome trace-event JSON) with the trace.
    pub timeline: bool,
    /// Export the trace (`exportTrace`, the default): RapidBin, STD, the native format and
    /// the metadata. Without it only the detectors (and the timeline) see the events.
    pub export_trace: bool,
}

impl Config {
    /// The runtime's default of [`Config::max_pending`]: 2,097,152 events, 64 MiB of
    /// recorder buffers.
    pub const DEFAULT_MAX_PENDING: u64 = 1 << 21;

    /// A configuration for thread ids `0..max_threads` with no limits, no waiting and the
    /// default export.
    pub fn new(max_threads: u32) -> Config {
        Config {
            max_threads,
            max_events: None,
            max_trace_bytes: None,
            max_pending: None,
            export: ExportOptions::default(),
            recognize_locks: false,
            timeline: false,
            export_trace: true,
        }
    }
}

/// How often a recording thread looks at the number of pending events: once every this
/// many events, so that the check costs nothing measurable.
const THROTTLE_EVERY: u32 = 256;

/// The end of a session's trace: the last chunk and everything known only at the end.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The events that were not drained before, if any (or chunk 0 of an empty trace).
    pub chunk: Option<Chunk>,
    /// The end of the timeline, after the last chunk's part; empty without a timeline.
    pub timeline_end: String,
    /// The headers, metadata, counts, verdicts and timings of the whole trace.
    pub totals: Totals,
    /// What the detectors found, resolved to functions and source lines.
    pub report: Report,
}

/// A clock in milliseconds for the [`Timings`] of a trace: `performance.now()` on
/// WebAssembly, the time since the first call on the host.
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::{JsCast, JsValue};
        let performance =
            js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"));
        let now = performance.as_ref().ok().and_then(|p| {
            js_sys::Reflect::get(p, &JsValue::from_str("now"))
                .ok()?
                .dyn_into::<js_sys::Function>()
                .ok()?
                .call0(p)
                .ok()?
                .as_f64()
        });
        now.unwrap_or_else(js_sys::Date::now)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
            * 1e3
    }
}

/// The tracing state of one run; see the [module documentation](self).
pub struct Session {
    recorder: Recorder,
    locations: Vec<Location>,
    slots: Box<[Slot]>,
    locks: LockTable,
    stopping: AtomicU32,
    /// Held for good by [`Session::stop`]: a thread that locks it waits forever.
    park_lock: Mutex<()>,
    /// Hook calls that came from a thread without a thread id (never expected).
    unattributed: AtomicU64,
    /// The original module and the patched one, for `file:line` in reports.
    modules: OnceLock<(Vec<u8>, Vec<u8>)>,
    /// The locks of [`ATOMIC_STRIPES`]: 0 free, 1 taken.
    stripes: Box<[AtomicU32]>,
    /// `[start, end)` of guest memory whose accesses are the runtime's own (the
    /// patcher's reserved page: its lock and the temporary stack that dying threads free
    /// their stacks on); none while `end <= start`.
    ignored: (AtomicU32, AtomicU32),
    /// The consumer of drained events; `None` once finished.
    stream: Mutex<Option<Stream>>,
    /// The stream's hand-over of its analysis to the analysis worker.
    offload: Arc<Offload>,
    /// The byte limit the stream had reached when it finished.
    bytes_reached: Mutex<Option<BytesReached>>,
    max_pending: Option<u64>,
    recognize_locks: bool,
    /// The size of every live block of a C allocator, by address, from its
    /// `heap_malloc`: a C `free` does not say the size, and `heap_free_unsized` takes it
    /// from here.
    blocks: Mutex<HashMap<u32, u32>>,
    /// The joinable threads of wasi-libc's `pthread_create` (see [`Pthreads`]).
    pthreads: Mutex<Pthreads>,
}

/// What a wasi-threads thread created by `pthread_create` is, for its join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PthreadState {
    /// Forked, and its creator's `pthread_create` has not returned yet: it may become
    /// joinable, so an end of it before then records no `End` (it is `EndedUnjoined`).
    Creating,
    /// Running, and a `pthread_join` may wait for it: its end is that join.
    Joinable,
    /// Ended, not joined yet: no `End` was recorded, a `pthread_join` records its
    /// `Join`. Its id may already be given to a new thread: the fork of the new thread
    /// records the old one's `End` first.
    EndedUnjoined,
    /// Ended, and its `End` is recorded (it was not created by `pthread_create`, or was
    /// detached).
    Ended,
}

/// The pthreads of a run: `pthread_create` (the instrumenter's wrapper) names the thread
/// it created by its handle (`pthread_t`), so that `pthread_join` can record the `Join`
/// of the runtime thread, as the wasmgrind ABI's `thread_join` does. Without it, a
/// wasi-threads thread records its `End` when it returns and its join is only an atomic
/// access: the race detector orders the join by it, but the deadlock predictor, which
/// orders by fork and join, could not.
#[derive(Debug, Default)]
struct Pthreads {
    /// Thread id and fork generation of every created, not yet joined or detached handle.
    handles: HashMap<u32, (u32, u64)>,
    /// The state of the joinable threads, by thread id.
    state: HashMap<u32, PthreadState>,
    /// How often each thread id was forked (its incarnation).
    generation: HashMap<u32, u64>,
}

fn lock_stream(m: &Mutex<Option<Stream>>) -> MutexGuard<'_, Option<Stream>> {
    // Only the manager uses the stream, one call at a time: the lock is never contended.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// A session configured by `config` whose events' locations index `locations`.
    pub fn new(config: Config, locations: Vec<Location>) -> Result<Session, SessionError> {
        let max_threads = config.max_threads;
        if max_threads == 0 || max_threads > MAX_THREAD_LIMIT {
            return Err(SessionError::BadThreadLimit(max_threads));
        }
        let recorder = match config.max_events {
            Some(limit) => Recorder::with_limit(limit),
            None => Recorder::new(),
        };
        let mut stream = Stream::new(locations.clone(), config.export, config.max_trace_bytes);
        if !config.export_trace {
            stream = stream.without_export();
        }
        if config.timeline {
            stream = stream.with_timeline(locations.clone());
        }
        Ok(Session {
            recorder,
            offload: stream.offload(),
            stream: Mutex::new(Some(stream)),
            locations,
            slots: (0..max_threads).map(|_| Slot::default()).collect(),
            locks: LockTable::new(LOCK_TABLE_SIZE),
            stopping: AtomicU32::new(0),
            park_lock: Mutex::new(()),
            unattributed: AtomicU64::new(0),
            modules: OnceLock::new(),
            stripes: (0..ATOMIC_STRIPES).map(|_| AtomicU32::new(0)).collect(),
            ignored: (AtomicU32::new(0), AtomicU32::new(0)),
            bytes_reached: Mutex::new(None),
            max_pending: config.max_pending,
            recognize_locks: config.recognize_locks,
            blocks: Mutex::new(HashMap::new()),
            pthreads: Mutex::new(Pthreads::default()),
        })
    }

    /// The thread limit.
    pub fn max_threads(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The location table.
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// The recording context of thread `tid`. The first use of a thread id takes the
    /// recorder's registration lock and allocates its buffer; later ones allocate nothing.
    pub fn begin_thread(&'static self, tid: u32) -> Result<ThreadCtx, SessionError> {
        let slot = self
            .slots
            .get(tid as usize)
            .ok_or(SessionError::ThreadIdOutOfRange {
                tid,
                max: self.max_threads(),
            })?;
        enter(self, slot);
        let recorder = slot.recorder.get_or_init(|| self.recorder.thread(tid));
        leave(slot);
        Ok(ThreadCtx {
            session: self,
            slot,
            recorder,
            tid,
            stripe: Cell::new(None),
            until_check: Cell::new(THROTTLE_EVERY),
            contending: Cell::new(None),
            requested: Cell::new(None),
            wait_set: Cell::new(false),
            swapped: Cell::new(None),
            last_forked: Cell::new(None),
        })
    }

    /// Keeps the original module and the patched one, so that the reports of
    /// [`Session::finish`] can name source lines (the guest's DWARF is in the original; the
    /// locations point into the patched one). Only the first call counts.
    pub fn set_modules(&self, original: Vec<u8>, patched: Vec<u8>) {
        let _ = self.modules.set((original, patched));
    }

    /// Makes the accesses of `[start, start + len)` the runtime's own: they are not
    /// recorded. The runtime passes the patcher's reserved page.
    pub fn ignore_range(&self, start: u32, len: u32) {
        self.ignored.0.store(start, SeqCst);
        self.ignored.1.store(start.saturating_add(len), SeqCst);
    }

    /// Whether an access at `addr` is the runtime's own.
    #[inline]
    fn ignored(&self, addr: u32) -> bool {
        let start = self.ignored.0.load(Relaxed);
        addr.wrapping_sub(start) < self.ignored.1.load(Relaxed).wrapping_sub(start)
    }

    /// Counts a hook call that had no thread to attribute it to.
    pub fn count_unattributed(&self) {
        self.unattributed.fetch_add(1, SeqCst);
    }

    /// Lets no thread enter a guarded entry any more; see the module documentation.
    pub fn stop(&self) {
        // Take the park lock once, before any thread can see the flag and wait on it.
        if self.stopping.load(SeqCst) == 0 {
            std::mem::forget(self.park_lock.lock());
            self.stopping.store(1, SeqCst);
        }
    }

    /// Parks the calling thread for good: the runtime terminates it. It waits on this
    /// session's park lock, which [`Session::stop`] took and never releases; the wait
    /// (`memory.atomic.wait32` on WebAssembly) allocates nothing and holds nothing. (The
    /// lock is the session's, not a global one, so that the next session on the same
    /// utility memory can stop its own run; a run with a parked thread is never followed
    /// by another on its memory: its manager is terminated.)
    pub fn park(&self) -> ! {
        loop {
            let _guard = self.park_lock.lock();
        }
    }

    /// Whether [`Session::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(SeqCst) != 0
    }

    /// The threads below `upto` that are inside a guarded entry right now.
    pub fn busy(&self, upto: u32) -> Vec<u32> {
        self.slots
            .iter()
            .take(upto as usize)
            .enumerate()
            .filter(|(_, s)| s.busy.load(SeqCst) != 0)
            .map(|(tid, _)| tid as u32)
            .collect()
    }

    /// The lock thread `tid` requested and does not hold yet, if any.
    pub fn waiting_on(&self, tid: u32) -> Option<u32> {
        let w = self.slots.get(tid as usize)?.waiting.load(SeqCst);
        (w >> 32 != 0).then_some(w as u32)
    }

    /// The thread that thread `tid` waits for in `pthread_join`, if it does (see
    /// [`ThreadCtx::join_wait`]).
    pub fn joining(&self, tid: u32) -> Option<u32> {
        self.slots
            .get(tid as usize)?
            .joining
            .load(SeqCst)
            .checked_sub(1)
    }

    /// The thread that holds `lock`, if the hooks saw it taken and not released.
    pub fn lock_owner(&self, lock: u32) -> Option<u32> {
        self.locks.owner(lock)
    }

    /// The locks thread `tid` holds, by address.
    pub fn held_locks(&self, tid: u32) -> Vec<u32> {
        self.locks.held_by(tid)
    }

    /// [`Session::held_locks`] as a timeout or deadlock report lists them: without the
    /// recognised words that never behaved as a lock (see [`LockTable::disqualified`]:
    /// wasi-libc's "started" flag and std's thread-local guard, which every wasi
    /// program's main thread takes like a lock and never releases).
    pub fn listed_held_locks(&self, tid: u32) -> Vec<u32> {
        let mut held = self.locks.held_by(tid);
        held.retain(|&lock| !self.locks.disqualified(lock));
        held
    }

    /// Whether some lock could not be tracked because the owner table was full.
    pub fn lock_table_overflowed(&self) -> bool {
        self.locks.overflowed.load(SeqCst) != 0
    }

    /// Events accepted so far.
    pub fn recorded(&self) -> u64 {
        self.recorder.recorded()
    }

    /// Events recorded and not drained yet.
    pub fn pending(&self) -> u64 {
        self.recorder.pending()
    }

    /// Moves the oldest recorded events out of the recorder, at most `max_events`, and
    /// feeds them to the stream; returns their chunk, or `None` when there is nothing new
    /// (see [`Stream::consume`]). Fails with a `FormatError` if the trace passes a limit
    /// of RapidBin.
    pub fn drain(&self, max_events: usize) -> Result<Option<Chunk>, Failure> {
        let t0 = now_ms();
        let events = self.recorder.drain(max_events);
        let collect_ms = now_ms() - t0;
        let mut stream = lock_stream(&self.stream);
        let Some(stream) = stream.as_mut() else {
            return Err(Failure::new("SessionError", &SessionError::Finished));
        };
        stream.timings.collect_ms += collect_ms;
        stream
            .consume(events)
            .map_err(|e| Failure::new("FormatError", &e))
    }

    /// The hand-over of the analysis to its worker (see [`Offload::run`]).
    pub fn offload(&self) -> &Offload {
        &self.offload
    }

    /// The limit of the trace that was reached, if one was: `maxEvents` once the
    /// recorder refused an event, `maxTraceBytes` once the output passed it.
    pub fn limit(&self) -> Option<LimitError> {
        if self.recorder.rejected() > 0 {
            return Some(LimitError::MaxEvents {
                events: self.recorder.recorded(),
            });
        }
        let reached = match lock_stream(&self.stream).as_ref() {
            Some(stream) => stream.bytes_reached(),
            None => *self.bytes_reached.lock().unwrap_or_else(|p| p.into_inner()),
        }?;
        Some(LimitError::MaxTraceBytes {
            events: reached.events,
            bytes: reached.bytes,
            limit: reached.limit,
        })
    }

    /// Waits while more than `max` events wait to be drained, until a drain brings them
    /// to half of that or the session stops.
    fn wait_for_drain(&self, max: u64) {
        let resume = max / 2;
        while self.recorder.pending() > resume && !self.is_stopping() {
            // A sleep is a timed `memory.atomic.wait` on WebAssembly: the thread holds
            // nothing and uses no CPU meanwhile.
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// A one-line description of location `loc` for error messages, with the function's
    /// demangled name.
    pub fn location_text(&self, loc: u32) -> String {
        match self.locations.get(loc as usize) {
            Some(l) => {
                let name = l.func_name.as_deref().map_or_else(
                    || "<unnamed>".to_string(),
                    wasmgrind_core::analysis::symbolize::demangle,
                );
                format!(
                    "in `{name}` (function {}), code offset {:#x}: {}",
                    l.func_index, l.code_offset, l.instr
                )
            }
            None => format!("at unknown location {loc}"),
        }
    }

    /// Ends recording and the trace: takes the events that were not drained yet into a
    /// last chunk, and returns it with the final headers, the metadata, the consistency
    /// checks and the report. `live` is the deadlock the run ended in, as the runtime saw
    /// it (the locations are filled in here). Only the first call succeeds.
    pub fn finish(&self, live: Option<LiveDeadlock>) -> Result<Finished, Failure> {
        let unattributed = self.unattributed.load(SeqCst);
        if unattributed != 0 {
            return Err(Failure {
                kind: "SessionError",
                variant: "Unattributed".into(),
                message: format!(
                    "{unattributed} hook calls came from a thread that had no thread id; this \
                     is a bug in the Wasmgrind runtime"
                ),
            });
        }
        if self.offload.busy() {
            // The runtime waits for the analysis worker first (`traceAnalysisBusy`):
            // finishing now would leave its chunks out of the findings.
            return Err(Failure {
                kind: "SessionError",
                variant: "AnalysisBusy".into(),
                message: "the trace was finished while the analysis worker still had chunks to \
                          analyze; this is a bug in the Wasmgrind runtime"
                    .into(),
            });
        }
        self.recorder.close();
        let t0 = now_ms();
        let mut rest = self.recorder.drain(usize::MAX);
        let collect_ms = now_ms() - t0;
        // A word that recognition took for a lock but that behaved as no lock does (another
        // thread wrote it while it was "held", or its taker never released it: a state
        // word like std's channel contexts or an "initialized" flag) proves no lock-order
        // cycle. At the end of a run that did not deadlock the trace says so, after every
        // other event, and the deadlock predictor leaves such words out; the saved trace
        // then gives `cli.js analyze` the same findings. (A trace cut at `maxEvents` gets
        // none: it holds exactly that many events.)
        if self.recognize_locks && live.is_none() && self.recorder.rejected() == 0 {
            rest.extend(
                self.locks
                    .disqualified_words()
                    .into_iter()
                    .map(|lock| Event::new(0, Op::NotALock { lock }, None)),
            );
        }
        let Some(mut stream) = lock_stream(&self.stream).take() else {
            return Err(Failure::new("SessionError", &SessionError::Finished));
        };
        stream.timings.collect_ms += collect_ms;
        let chunk = stream
            .consume(rest)
            .map_err(|e| Failure::new("FormatError", &e))?;
        *self.bytes_reached.lock().unwrap_or_else(|p| p.into_inner()) = stream.bytes_reached();
        let summary = stream
            .finish(live)
            .map_err(|e| Failure::new("FormatError", &e))?;
        let t0 = now_ms();
        let symbolizer = self
            .modules
            .get()
            .and_then(|(original, patched)| Symbolizer::for_patched(original, patched).ok());
        let mut findings = summary.findings;
        if self.lock_table_overflowed() {
            // Said with the report, not only in a timeout's thread states: every lock word
            // past the table's size went unwatched, and unrecognised.
            let why = format!(
                "more than {LOCK_TABLE_SIZE} distinct lock words were taken (the size of the \
                 runtime's lock table); the ones that did not fit were not watched, and std \
                 Mutex words among them were not recognised as locks, so deadlocks through \
                 them are neither predicted nor seen"
            );
            findings.deadlock_search_incomplete = Some(match findings.deadlock_search_incomplete {
                Some(limit) => format!("{limit}; {why}"),
                None => why,
            });
        }
        if let Some(d) = findings.deadlock.as_mut() {
            // A thread that waits for a recognised lock it never requested in the trace
            // (its first wait) is located by the wait, and so is one that waits in
            // wasi-libc's `pthread_join`.
            for t in d.threads.iter_mut().filter(|t| t.requested_at.is_none()) {
                let slot = self.slots.get(t.thread as usize);
                let at = if t.joining.is_some() {
                    slot.map(|s| &s.join_loc)
                } else {
                    slot.map(|s| &s.wait_loc)
                };
                t.requested_at = at.and_then(|a| a.load(SeqCst).checked_sub(1));
            }
        }
        let report = report(&findings, &self.locations, symbolizer.as_ref());
        let mut totals = summary.totals;
        totals.timings.analysis_ms += now_ms() - t0;
        // The timeline ends with the findings as reported.
        let mut timeline_end = String::new();
        if let Some(t) = summary.timeline {
            t.finish(&report, &mut timeline_end);
        }
        Ok(Finished {
            chunk,
            timeline_end,
            totals,
            report,
        })
    }
}

/// Re-runs the detectors on a saved trace: `native` events whose locations index
/// `locations`, symbolized with `modules` (original and patched) when given.
pub fn reanalyze(
    native_bytes: &[u8],
    locations: &[Location],
    modules: Option<(&[u8], &[u8])>,
) -> Result<(Findings, Report), Failure> {
    let mut again = Reanalysis::new();
    // Pieces of whole records, so that the decoded events never take much memory.
    for piece in native_bytes.chunks(Reanalysis::PIECE_BYTES) {
        again.feed(piece)?;
    }
    again.finish(locations, modules, None)
}

/// The detectors run again on a saved trace in Wasmgrind's own format that comes in pieces
/// of any size (a file read block by block), in bounded memory: the events of each piece
/// are decoded, analyzed and freed.
#[derive(Debug, Default)]
pub struct Reanalysis {
    decoder: native::Decoder,
    analyzer: Analyzer,
    scratch: Vec<Event>,
    /// The length of the location table, when known: no event names a location past it.
    locations: Option<usize>,
    /// The events decoded so far.
    seen: u64,
}

impl Reanalysis {
    /// A good size for the pieces: 1,048,576 records (20 MiB).
    pub const PIECE_BYTES: usize = native::RECORD_LEN << 20;

    /// A reanalysis that has seen no byte.
    pub fn new() -> Reanalysis {
        Reanalysis::default()
    }

    /// A reanalysis of a trace whose location table has `len` entries: an event that
    /// names a location past them is an error.
    pub fn with_locations(len: usize) -> Reanalysis {
        Reanalysis {
            locations: Some(len),
            ..Reanalysis::default()
        }
    }

    /// Decodes and analyzes the next bytes of the trace. Fails with a `TraceError` when
    /// they are not a valid trace, and a `SessionError` (`DamagedTrace`) for an event that
    /// no run records: a thread id at or past [`MAX_THREAD_LIMIT`], a location past the
    /// table (see [`Reanalysis::with_locations`]).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.scratch.clear();
        self.decoder
            .feed(bytes, &mut self.scratch)
            .map_err(|e| Failure::new("TraceError", &e))?;
        for (i, e) in self.scratch.iter().enumerate() {
            let problem = if e.thread >= MAX_THREAD_LIMIT {
                format!(
                    "has the thread id {}, past any run's (at most {MAX_THREAD_LIMIT} threads)",
                    e.thread
                )
            } else {
                match (e.location, self.locations) {
                    (Some(l), Some(len)) if l as usize >= len => {
                        format!("names location {l}, but the location table has {len} entries")
                    }
                    _ => continue,
                }
            };
            return Err(Failure::new(
                "SessionError",
                &SessionError::DamagedTrace {
                    index: self.seen + i as u64,
                    problem,
                },
            ));
        }
        self.seen += self.scratch.len() as u64;
        self.analyzer.events(&self.scratch);
        self.scratch.clear();
        Ok(())
    }

    /// Ends the trace and reports what the detectors found, with `locations` the
    /// location table and `modules` (original and patched) to resolve `file:line`.
    pub fn finish(
        self,
        locations: &[Location],
        modules: Option<(&[u8], &[u8])>,
        live: Option<LiveDeadlock>,
    ) -> Result<(Findings, Report), Failure> {
        self.decoder
            .finish()
            .map_err(|e| Failure::new("TraceError", &e))?;
        let mut findings = self.analyzer.finish();
        findings.deadlock = live;
        let symbolizer = match modules {
            Some((original, patched)) => Some(
                Symbolizer::for_patched(original, patched)
                    .map_err(|e| Failure::new("SymbolizeError", &e))?,
            ),
            None => None,
        };
        let report = report(&findings, locations, symbolizer.as_ref());
        Ok((findings, report))
    }
}

#[inline]
fn enter(session: &Session, slot: &Slot) {
    slot.busy.store(1, SeqCst);
    if session.stopping.load(SeqCst) != 0 {
        slot.busy.store(0, SeqCst);
        session.park();
    }
}

#[inline]
fn leave(slot: &Slot) {
    slot.busy.store(0, SeqCst);
}

/// What one thread records through: its id, its slot and its recorder.
pub struct ThreadCtx {
    session: &'static Session,
    slot: &'static Slot,
    recorder: &'static ThreadRecorder,
    tid: u32,
    /// The stripe this thread holds between `mem_atomic_begin` and the access's event.
    stripe: Cell<Option<usize>>,
    /// Guarded entries until the next look at the number of pending events.
    until_check: Cell<u32>,
    /// The recognised lock whose last exchange by this thread found it held: the thread
    /// is contending for it, and its next wait on it is a request.
    contending: Cell<Option<u32>>,
    /// The recognised lock this thread requested (recorded a `Request` for) and does not
    /// hold yet.
    requested: Cell<Option<u32>>,
    /// Whether `waiting` of the slot was set by the wait of a recognised lock.
    wait_set: Cell<bool>,
    /// A recognised lock this thread holds and exchanged a non-zero value into, and where:
    /// what std's `Mutex::lock` does when the thread locks a mutex it holds already (its
    /// contended path's `swap(2)`), but also what a `Once` completing does (`swap` of its
    /// "complete" state). Decided at the thread's next lock event: a wait on the word is a
    /// thread waiting for itself (see [`ThreadCtx::wait_begin`]); anything else releases
    /// the word and forgets it, as a holder's write of a non-zero value does.
    swapped: Cell<Option<(u32, LocationId)>>,
    /// The thread this thread forked last and its generation (for `pthread_created`).
    last_forked: Cell<Option<(u32, u64)>>,
}

impl ThreadCtx {
    /// The thread id.
    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// Whether the thread holds no atomic stripe (is not inside an atomic bracket).
    #[inline]
    fn stripe_free(&self) -> bool {
        // `Cell<Option<usize>>` is `Copy`-readable.
        self.stripe.get().is_none()
    }

    #[inline]
    fn record(&self, op: Op, loc: Option<LocationId>) {
        // A refused event (capacity exhausted) is counted by the recorder and makes
        // `finish` fail, so nothing is lost silently.
        let _ = self.recorder.record(op, loc);
    }

    /// Waits for the manager if too many events wait to be drained (see the module
    /// documentation). Called outside the recorder and outside an atomic bracket, so the
    /// waiting thread holds nothing of the runtime's.
    #[inline]
    fn throttle(&self) {
        let Some(max) = self.session.max_pending else {
            return;
        };
        let n = self.until_check.get();
        if n > 1 {
            self.until_check.set(n - 1);
            return;
        }
        self.until_check.set(THROTTLE_EVERY);
        if self.session.recorder.pending() > max {
            self.session.wait_for_drain(max);
        }
    }

    #[inline]
    fn guarded(&self, f: impl FnOnce(&Self)) {
        if self.stripe_free() {
            self.throttle();
        }
        enter(self.session, self.slot);
        f(self);
        leave(self.slot);
    }

    /// Records `op`, an access at `addr` of `width` bytes, unless it touches nothing or
    /// is the runtime's own; ends an atomic bracket opened by [`ThreadCtx::atomic_begin`].
    #[inline]
    fn access(&self, addr: u32, width: u32, op: Op, loc: LocationId) {
        // A zero-width bulk access touches no memory.
        let skip = width == 0 || self.session.ignored(addr);
        let stripe = self.stripe.take();
        if skip && stripe.is_none() {
            return;
        }
        if stripe.is_none() {
            self.throttle();
        }
        enter(self.session, self.slot);
        if !skip {
            self.record(op, Some(loc));
        }
        if let Some(s) = stripe {
            self.session.stripes[s].store(0, Release);
        }
        leave(self.slot);
    }

    /// A load of `width` bytes at `addr`.
    #[inline]
    pub fn read(&self, addr: u32, width: u32, atomic: bool, loc: LocationId) {
        let op = Op::Read {
            addr,
            width,
            atomic,
        };
        self.access(addr, width, op, loc);
    }

    /// A store of `width` bytes at `addr`.
    #[inline]
    pub fn write(&self, addr: u32, width: u32, atomic: bool, loc: LocationId) {
        let op = Op::Write {
            addr,
            width,
            atomic,
        };
        self.access(addr, width, op, loc);
    }

    /// An atomic read-modify-write of `width` bytes at `addr`.
    #[inline]
    pub fn rmw(&self, addr: u32, width: u32, loc: LocationId) {
        self.access(addr, width, Op::Rmw { addr, width }, loc);
    }

    /// An atomic access of `addr` follows: takes the address's stripe, which the
    /// access's event releases, so that no other atomic access of the address happens
    /// between this access and its event (see [`ATOMIC_STRIPES`]).
    pub fn atomic_begin(&self, addr: u32) {
        let s = stripe(addr);
        self.guarded(|c| {
            let lock = &c.session.stripes[s];
            while lock.compare_exchange_weak(0, 1, Acquire, Relaxed).is_err() {
                // The holder may have trapped inside its bracket: the run is ending then.
                if c.session.is_stopping() {
                    leave(c.slot);
                    c.session.park();
                }
                std::hint::spin_loop();
            }
        });
        self.stripe.set(Some(s));
    }

    /// An allocation or a free (`Op::Alloc` or `Op::Free`).
    pub fn heap(&self, op: Op) {
        self.guarded(|c| c.record(op, None));
    }

    /// An allocation of a C allocator (`heap_malloc`): recorded as an `Op::Alloc`, and
    /// its size is kept until its free, for [`ThreadCtx::free_unsized`].
    pub fn malloc(&self, addr: u32, size: u32) {
        self.guarded(|c| {
            let mut blocks = c.session.blocks.lock().unwrap_or_else(|p| p.into_inner());
            blocks.insert(addr, size);
            // Recorded under the lock, so that the blocks' events are in the order of
            // the table's changes.
            c.record(Op::Alloc { addr, size }, None);
        });
    }

    /// A free of the block at `addr`, whose size is the one of its [`ThreadCtx::malloc`]
    /// (`heap_free_unsized`, the hook of the C allocator's `free` and `realloc`
    /// wrappers). A block that was never allocated (or was freed already) records
    /// nothing: its bytes got fresh state when it was handed out anyway.
    pub fn free_unsized(&self, addr: u32) {
        self.guarded(|c| {
            let mut blocks = c.session.blocks.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(size) = blocks.remove(&addr) {
                c.record(Op::Free { addr, size }, None);
            }
        });
    }

    /// The thread is about to block on `lock`.
    pub fn start_lock(&self, lock: u32, loc: LocationId) {
        self.guarded(|c| {
            if c.session.recognize_locks {
                c.settle_swap();
                c.release_stale();
                c.mark_traced(lock);
            }
            c.slot.waiting.store(1 << 32 | u64::from(lock), SeqCst);
            c.record(Op::Request { lock }, Some(loc));
        });
    }

    /// The thread now holds `lock`.
    pub fn finish_lock(&self, lock: u32, loc: LocationId) {
        self.guarded(|c| {
            c.slot.waiting.store(0, SeqCst);
            if c.session.recognize_locks {
                c.settle_swap();
                c.release_stale();
                // A `try_lock` whose compare-exchange recognition saw first: that
                // `Acquire` stands for this one.
                if c.mark_traced(lock) {
                    return;
                }
            }
            c.session.locks.set_owner(lock, c.tid);
            c.record(Op::Acquire { lock }, Some(loc));
        });
    }

    /// The thread is about to release `lock` (it still holds it).
    pub fn start_unlock(&self, lock: u32, loc: LocationId) {
        self.guarded(|c| {
            if c.session.recognize_locks {
                c.settle_swap();
                c.mark_traced(lock);
            }
            c.record(Op::Release { lock }, Some(loc));
            c.session.locks.clear_owner(lock, c.tid);
        });
    }

    /// Marks `lock` as a traced lock, which recognition leaves alone. Returns whether
    /// this thread holds it through recognition already (then the mark hands it over to
    /// the traced events).
    fn mark_traced(&self, lock: u32) -> bool {
        let table = &self.session.locks;
        let Some(at) = table.find(lock, true) else {
            return false;
        };
        let before = table.flags[at].fetch_or(Flags::TRACED, SeqCst);
        let mine = before & Flags::RECOGNISED != 0
            && before & Flags::POISONED == 0
            && table.owners[at].load(SeqCst) == self.tid + 1;
        // Another thread's recognised hold stays marked: its own `finish_lock` hands it
        // over (a `try_lock` that another thread's `start_lock` came between).
        if mine {
            table.flags[at].fetch_and(!Flags::RECOGNISED, SeqCst);
        }
        mine
    }

    /// `mem_atomic_value(addr, op, old, new, loc)`: the values of an atomic access (or a
    /// wait) of `addr`, one of the `abi::VALUE_*` ops. With lock recognition on (see
    /// [`Config::recognize_locks`]) it turns lock words into lock events:
    ///
    /// - a compare-exchange that writes a non-zero value over 0 acquires the lock at
    ///   `addr` (std's futex mutex, spin locks); from then on the word is a known lock,
    ///   and an exchange that writes a non-zero value over 0 acquires it as well (the
    ///   contended path of std's mutex, `swap(2)` returning 0);
    /// - the holder's exchange, compare-exchange or store of 0 releases it;
    /// - a thread that exchanged a non-zero value into the held lock of another thread
    ///   (`swap(2)` returning non-zero) contends for it: its wait on the word records a
    ///   `Request` (once) and makes it wait for the lock in the runtime's eyes, until the
    ///   wait returns;
    /// - the holder's exchange of a non-zero value into its held word is decided by the
    ///   thread's next lock event: a wait on the word means that the thread locks the
    ///   mutex again and waits for itself (a `Request`, and a wait for a lock that the
    ///   thread holds, a deadlock of one thread for the watchdog); anything else (std's
    ///   `Once` completing) ends the hold as below, with the release at the exchange;
    /// - any other write of a known lock word (another read-modify-write, a store, a
    ///   successful compare-exchange by a thread that does not hold it, the holder writing
    ///   a non-zero value) means it is not a lock of this kind: the holder's hold ends
    ///   (its release is recorded by the holder, at once or at its next lock event) and
    ///   the word is forgotten until a compare-exchange takes it from 0 again; if it was
    ///   another thread's write, never again (see [`Flags::POISONED`]). So every
    ///   `Release` that an `Acquire` can follow is recorded at the atomic write that
    ///   really released the word: recognition adds no happens-before order that the
    ///   atomics do not give already.
    ///
    /// The access hooks run inside the access's atomic bracket, so the lock events of
    /// one word are recorded in the order the accesses took effect: the trace stays
    /// lock-consistent, and a release is recorded before the acquire that follows it.
    pub fn atomic_value(&self, addr: u32, op: i32, old: u64, new: u64, loc: LocationId) {
        if !self.session.recognize_locks || self.session.ignored(addr) {
            return;
        }
        let (op, width) = abi::value_op(op);
        // A 64-bit word is no futex and no common spin lock; it is a counter (std's
        // `ThreadId` counter is taken 0 -> 1 by a compare-exchange) or a pair.
        if width > 4 && op != abi::VALUE_WAIT && op != abi::VALUE_WAIT_END {
            return;
        }
        self.guarded(|c| {
            // A pending exchange of a held word is decided by what comes next: only this
            // word's own wait (and that wait's end) leaves it pending.
            let same_word = c.swapped.get().is_some_and(|(w, _)| w == addr);
            if !(same_word && matches!(op, abi::VALUE_WAIT | abi::VALUE_WAIT_END)) {
                c.settle_swap();
            }
            match op {
                abi::VALUE_WAIT => {
                    c.join_wait(addr, loc);
                    c.wait_begin(addr, loc);
                }
                abi::VALUE_WAIT_END => {
                    c.slot.joining.store(0, SeqCst);
                    if c.wait_set.replace(false) {
                        c.slot.waiting.store(0, SeqCst);
                    }
                }
                _ => c.lock_word(addr, op, old, new, loc),
            }
        });
    }

    /// A wait on `addr` begins: if `addr` lies in the `struct pthread` of a joinable
    /// thread (wasi-libc's `pthread_join` waits on its `detach_state`), this thread waits
    /// to join it. The handle is the struct's address; the window is larger than the
    /// field's offset, and smaller than the stack and TLS that separate two threads' structs.
    fn join_wait(&self, addr: u32, loc: LocationId) {
        const PTHREAD_WINDOW: u32 = 128;
        let p = self
            .session
            .pthreads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let child = p.handles.iter().find_map(|(&handle, &(child, _))| {
            (addr.wrapping_sub(handle) < PTHREAD_WINDOW
                && p.state.get(&child) == Some(&PthreadState::Joinable))
            .then_some(child)
        });
        if let Some(child) = child {
            self.slot.join_loc.store(loc.wrapping_add(1), SeqCst);
            self.slot.joining.store(child + 1, SeqCst);
        }
    }

    /// A wait on `addr` begins.
    fn wait_begin(&self, addr: u32, loc: LocationId) {
        let table = &self.session.locks;
        let Some(at) = table.find(addr, false) else {
            return;
        };
        let f = table.flags[at].load(SeqCst);
        if f & Flags::KNOWN == 0 || f & (Flags::POISONED | Flags::TRACED) != 0 {
            return;
        }
        let holder = table.owners[at].load(SeqCst).checked_sub(1);
        // The holder waits on its own lock word only when it locks it again: after its
        // `swap(2)` (see `swapped`), or at once when the word says "contended" already
        // (another thread waits for it too).
        let waits_for_itself = holder == Some(self.tid);
        if holder.is_none() {
            return;
        }
        // A thread that locks a mutex it holds (its `swap(2)`, then this wait) requests it
        // as a contender does, and waits for itself: a deadlock of one thread, which the
        // runtime's watchdog reports as it does a cycle of several.
        if (self.contending.get() == Some(addr) || waits_for_itself)
            && self.requested.get().is_none()
        {
            self.release_stale();
            self.record(Op::Request { lock: addr }, Some(loc));
            self.requested.set(Some(addr));
            table.flags[at].fetch_or(Flags::LOCK_LIKE, SeqCst);
        }
        self.slot.wait_loc.store(loc.wrapping_add(1), SeqCst);
        self.slot.waiting.store(1 << 32 | u64::from(addr), SeqCst);
        self.wait_set.set(true);
    }

    /// An atomic write of `addr`: `old` read, `new` written (see [`Self::atomic_value`]).
    fn lock_word(&self, addr: u32, op: i32, old: u64, new: u64, loc: LocationId) {
        let table = &self.session.locks;
        let acquires = old == 0 && new != 0 && new < LOCK_VALUE_LIMIT;
        let at = table.find(addr, acquires && op == abi::VALUE_CMPXCHG);
        let Some(at) = at else {
            return;
        };
        let f = table.flags[at].load(SeqCst);
        if f & (Flags::POISONED | Flags::TRACED) != 0 {
            return;
        }
        let holder = table.owners[at].load(SeqCst).checked_sub(1);
        match holder {
            None => {
                let known = f & Flags::KNOWN != 0;
                if acquires && (op == abi::VALUE_CMPXCHG || (op == abi::VALUE_XCHG && known)) {
                    // A request of another lock is pending: a recognised wait that gave
                    // up, or a traced lock (`start_lock`) whose implementation takes
                    // this word on its way (wasmgrind-guest's RwLock). An acquire here
                    // would interrupt the request, so the word is left unrecognised
                    // (nobody holds it in recognition's eyes, which stays consistent).
                    let traced_request =
                        self.slot.waiting.load(SeqCst) != 0 && !self.wait_set.get();
                    if traced_request || self.requested.get().is_some_and(|r| r != addr) {
                        return;
                    }
                    self.release_stale();
                    self.requested.set(None);
                    self.contending.set(None);
                    if !known {
                        // A word that becomes a lock word has not behaved as one yet.
                        table.flags[at].fetch_and(!Flags::LOCK_LIKE, SeqCst);
                    }
                    table.flags[at].fetch_or(Flags::KNOWN | Flags::RECOGNISED, SeqCst);
                    table.owners[at].store(self.tid + 1, SeqCst);
                    self.record(Op::Acquire { lock: addr }, Some(loc));
                } else if known && !(new == 0 && op != abi::VALUE_RMW) {
                    // A free lock word written with a non-zero value other than by an
                    // acquire, or changed by arithmetic: no lock word any more (its
                    // memory may have been reused). A compare-exchange from 0 can make
                    // it one again.
                    table.flags[at].fetch_and(!Flags::KNOWN, SeqCst);
                }
            }
            Some(h) if h == self.tid && op == abi::VALUE_XCHG && old != 0 && new != 0 => {
                // Locking it again, or a `Once` completing: decided by what comes next.
                self.swapped.set(Some((addr, loc)));
            }
            Some(h) if h == self.tid => {
                self.record(Op::Release { lock: addr }, Some(loc));
                table.owners[at].store(0, SeqCst);
                let mut clear = Flags::RECOGNISED;
                if new != 0 || op == abi::VALUE_RMW {
                    // The holder left something other than 0 (std's `Once` completing,
                    // an `RwLock` unlocking by subtraction): released, and no lock word
                    // any more.
                    clear |= Flags::KNOWN;
                } else if op == abi::VALUE_XCHG {
                    // Unlocked by an exchange with 0, as std's futex `Mutex` unlocks (it
                    // learns whether to wake a waiter). A store of 0 is how a channel
                    // resets its selection word too, so it proves nothing.
                    table.flags[at].fetch_or(Flags::LOCK_LIKE, SeqCst);
                }
                table.flags[at].fetch_and(!clear, SeqCst);
            }
            Some(h) => {
                if op == abi::VALUE_XCHG && old != 0 && new != 0 {
                    // A waiter marks the lock contended (`swap(2)` returning non-zero).
                    self.contending.set(Some(addr));
                } else {
                    // Includes a compare-exchange that succeeded on the held word: a
                    // counter (std's `ThreadId` counter goes 0 -> 1 -> 2 ...), an
                    // `RwLock`'s second reader, a `Once`'s waiter queueing up; a lock is
                    // only compare-exchanged from 0.
                    // The word changed under its holder in a way a lock does not: the
                    // holder records its release itself, at its next lock event.
                    table.flags[at].fetch_or(Flags::POISONED, SeqCst);
                    if let Some(slot) = self.session.slots.get(h as usize) {
                        slot.stale.store(1, SeqCst);
                    }
                }
            }
        }
    }

    /// Decides a pending exchange of a held word (see [`ThreadCtx::swapped`]) that was not
    /// followed by a wait on the word: the holder wrote a non-zero value, so the word is
    /// released and forgotten, with the release at the exchange's location. Nothing is
    /// recorded if the word is no longer this thread's hold in recognition's eyes (another
    /// thread's write poisoned it: [`ThreadCtx::release_stale`] releases it), or if the
    /// thread requested it (it waited for itself: it still holds it).
    fn settle_swap(&self) {
        let Some((addr, loc)) = self.swapped.take() else {
            return;
        };
        if self.requested.get() == Some(addr) {
            return;
        }
        let table = &self.session.locks;
        let Some(at) = table.find(addr, false) else {
            return;
        };
        let f = table.flags[at].load(SeqCst);
        if f & (Flags::POISONED | Flags::TRACED) != 0
            || table.owners[at].load(SeqCst) != self.tid + 1
        {
            return;
        }
        self.record(Op::Release { lock: addr }, Some(loc));
        table.owners[at].store(0, SeqCst);
        table.flags[at].fetch_and(!(Flags::RECOGNISED | Flags::KNOWN), SeqCst);
    }

    /// Records the release of every recognised lock this thread still holds although
    /// recognition gave up on it (see [`Flags::POISONED`]), so that the lock-order graph
    /// does not see them held for ever.
    fn release_stale(&self) {
        if self.slot.stale.load(SeqCst) == 0 || self.slot.stale.swap(0, SeqCst) == 0 {
            return;
        }
        let table = &self.session.locks;
        for at in 0..table.keys.len() {
            let f = table.flags[at].load(SeqCst);
            let stale = Flags::POISONED | Flags::RECOGNISED;
            if f & stale == stale && table.owners[at].load(SeqCst) == self.tid + 1 {
                let lock = table.keys[at].load(SeqCst).wrapping_sub(1);
                self.record(Op::Release { lock }, None);
                table.owners[at].store(0, SeqCst);
                // It stays POISONED for good: this release comes later than the real
                // one and carries this thread's events since, so no acquire may follow it.
                table.flags[at].fetch_and(!(Flags::RECOGNISED | Flags::KNOWN), SeqCst);
            }
        }
    }

    /// The thread started thread `child`; recorded before the child can run. If the
    /// id's previous thread ended unjoined, its `End` is recorded first.
    pub fn fork(&self, child: u32, loc: Option<LocationId>) {
        self.guarded(|c| {
            c.settle_swap();
            let mut p = c.session.pthreads.lock().unwrap_or_else(|p| p.into_inner());
            // This thread's previous child got no `pthread_created` (a raw `thread-spawn`,
            // C11's `thrd_create`, a wasmgrind-ABI thread): no `pthread_join` records its
            // end, so it ends by itself, and if it ended already its `End` comes now.
            if let Some((prev, prev_generation)) = c.last_forked.take() {
                if p.generation.get(&prev) == Some(&prev_generation) {
                    match p.state.get(&prev) {
                        Some(PthreadState::Creating) => {
                            p.state.remove(&prev);
                        }
                        Some(PthreadState::EndedUnjoined) => {
                            c.record_for(prev, Op::End);
                            p.state.insert(prev, PthreadState::Ended);
                        }
                        _ => {}
                    }
                }
            }
            if p.state.remove(&child) == Some(PthreadState::EndedUnjoined) {
                c.record_for(child, Op::End);
            }
            let generation = p.generation.entry(child).or_default();
            *generation += 1;
            c.last_forked.set(Some((child, *generation)));
            // Until its creator's `pthread_create` returns (if it is a pthread): a thread
            // that ends before then is joined later all the same.
            p.state.insert(child, PthreadState::Creating);
            c.record(Op::Fork { child }, loc);
        });
    }

    /// Records `op` as thread `tid`'s, which is not running (it ended).
    fn record_for(&self, tid: u32, op: Op) {
        if let Some(r) = self
            .session
            .slots
            .get(tid as usize)
            .and_then(|s| s.recorder.get())
        {
            let _ = r.record(op, None);
        }
    }

    /// `pthread_create` returned `handle` for the thread this thread forked last: the
    /// thread is joinable.
    pub fn pthread_created(&self, handle: u32) {
        let Some((child, generation)) = self.last_forked.take() else {
            return;
        };
        self.guarded(|c| {
            let mut p = c.session.pthreads.lock().unwrap_or_else(|p| p.into_inner());
            // The child may have ended already (it recorded no `End`: its join will), or
            // even been followed by a new thread of its id: then it is nobody's to join.
            let current = p.generation.get(&child).copied().unwrap_or(0) == generation;
            let state = p.state.get(&child).copied();
            if current
                && matches!(
                    state,
                    Some(PthreadState::Creating | PthreadState::EndedUnjoined)
                )
            {
                p.handles.insert(handle, (child, generation));
                if state == Some(PthreadState::Creating) {
                    p.state.insert(child, PthreadState::Joinable);
                }
            }
        });
    }

    /// `pthread_join` (or `pthread_detach`, when `detach`) of `handle` returned: a join
    /// records the `Join` of its thread, which then records no `End`; a detach makes the
    /// thread end by itself (or records the `End` of a thread that ended already).
    ///
    /// A join can return while the joined thread's worker is still on its way out (libc
    /// released the join before the thread's last instructions): the join then waits
    /// until the thread's end is seen ([`ThreadCtx::exit`]), so that the `Join` follows
    /// every event of the thread.
    pub fn pthread_done(&self, handle: u32, detach: bool, loc: Option<LocationId>) {
        self.guarded(|c| c.settle_swap());
        loop {
            let mut wait = false;
            self.guarded(|c| {
                let mut p = c.session.pthreads.lock().unwrap_or_else(|p| p.into_inner());
                let Some(&(child, generation)) = p.handles.get(&handle) else {
                    return;
                };
                if p.generation.get(&child).copied().unwrap_or(0) != generation {
                    // The id went to a new thread: the old one's `End` was recorded.
                    p.handles.remove(&handle);
                    return;
                }
                let state = p.state.get(&child).copied();
                if state == Some(PthreadState::Joinable) && !detach {
                    wait = true;
                    return;
                }
                p.handles.remove(&handle);
                match state {
                    Some(PthreadState::EndedUnjoined) if detach => {
                        c.record_for(child, Op::End);
                        p.state.insert(child, PthreadState::Ended);
                    }
                    Some(PthreadState::EndedUnjoined) => {
                        c.record(Op::Join { child }, loc);
                        p.state.remove(&child);
                    }
                    // A detached running thread records its `End` itself.
                    Some(PthreadState::Joinable) => {
                        p.state.remove(&child);
                    }
                    _ => {}
                }
            });
            if !wait {
                return;
            }
            if self.session.is_stopping() {
                self.session.park();
            }
            std::hint::spin_loop();
        }
    }

    /// This thread waits in a join for `child` (at `loc`), or, with `None`, no longer:
    /// what [`ThreadCtx::join_wait`] sees of a wasi program's `pthread_join`, for the
    /// wasmgrind ABI's `thread_join`.
    pub fn join_wait_for(&self, child: Option<u32>, loc: Option<LocationId>) {
        if child.is_some() {
            self.slot
                .join_loc
                .store(loc.map_or(0, |l| l.wrapping_add(1)), SeqCst);
        }
        self.slot.joining.store(child.map_or(0, |c| c + 1), SeqCst);
    }

    /// Thread `child` finished and this thread saw it.
    pub fn join(&self, child: u32, loc: Option<LocationId>) {
        self.guarded(|c| c.record(Op::Join { child }, loc));
    }

    /// The thread ended and nobody joins it through the runtime (a wasi-threads thread):
    /// records its `End`, its last event, after which its id may be forked again. A
    /// joinable pthread (see [`ThreadCtx::pthread_created`]) records nothing: its
    /// `pthread_join` records its `Join` (or the fork of a new thread of its id, or its
    /// detach, its `End`).
    pub fn exit(&self) {
        self.guarded(|c| {
            c.settle_swap();
            let mut p = c.session.pthreads.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(
                p.state.get(&c.tid),
                Some(PthreadState::Joinable | PthreadState::Creating)
            ) {
                // A joinable pthread (or one whose creator's `pthread_create` has not
                // returned yet): its join will record its end.
                p.state.insert(c.tid, PthreadState::EndedUnjoined);
            } else {
                c.record(Op::End, None);
                p.state.insert(c.tid, PthreadState::Ended);
            }
        });
    }

    /// Ends the context. It owns nothing (the recorder stays with the thread id), so
    /// this neither allocates nor frees.
    pub fn end(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgrind_core::trace::Event;

    #[test]
    fn a_saved_trace_with_an_event_no_run_records_is_named_damaged() {
        let ok = Event::new(
            0,
            Op::Write {
                addr: 64,
                width: 4,
                atomic: false,
            },
            Some(0),
        );
        let cases = [
            (
                Event::new(0x8000_0000, Op::End, None),
                "event 1 of the trace has the thread id 2147483648, past any run's",
            ),
            (
                Event::new(1, Op::Fork { child: 2 }, Some(7)),
                "event 1 of the trace names location 7, but the location table has 2 entries",
            ),
        ];
        for (bad, message) in cases {
            let bytes = native::encode(&[ok, bad]);
            let mut r = Reanalysis::with_locations(2);
            let e = r.feed(&bytes).unwrap_err();
            assert_eq!(e.kind, "SessionError");
            assert_eq!(e.variant, "DamagedTrace");
            assert!(e.message.starts_with(message), "{}", e.message);
            assert!(
                e.message.contains("damaged, or the location table"),
                "{}",
                e.message
            );
        }
        // Without a location table only thread ids are checked; a good trace passes.
        let bytes = native::encode(&[ok, Event::new(1, Op::Fork { child: 2 }, Some(7))]);
        assert!(Reanalysis::new().feed(&bytes).is_ok());
        assert!(Reanalysis::with_locations(1)
            .feed(&native::encode(&[ok]))
            .is_ok());
    }

    fn config(max_threads: u32) -> Config {
        Config {
            max_events: Some(1000),
            ..Config::new(max_threads)
        }
    }

    /// A location table with entries 0 to 5.
    fn table() -> Vec<Location> {
        (0..6)
            .map(|i| Location {
                func_index: i,
                func_name: None,
                code_offset: 0,
                instr: "i32.store".into(),
            })
            .collect()
    }

    fn session(max: u32) -> &'static Session {
        Box::leak(Box::new(Session::new(config(max), table()).unwrap()))
    }

    /// Finishes `s`'s trace: each event as its thread and op.
    fn finished_ops(s: &Session) -> Vec<(u32, Op)> {
        s.recorder
            .finish()
            .unwrap()
            .into_iter()
            .map(|e| (e.thread, e.op))
            .collect()
    }

    #[test]
    fn records_in_order_with_thread_ids() {
        let s = session(4);
        let t0 = s.begin_thread(0).unwrap();
        let t1 = s.begin_thread(1).unwrap();
        t0.fork(1, None);
        t1.start_lock(0x100, 0);
        t1.finish_lock(0x100, 0);
        t1.write(0x200, 4, false, 0);
        t1.start_unlock(0x100, 0);
        t0.join(1, None);
        t1.end();
        let events = s.recorder.finish().unwrap();
        assert_eq!(
            events,
            vec![
                Event::new(0, Op::Fork { child: 1 }, None),
                Event::new(1, Op::Request { lock: 0x100 }, Some(0)),
                Event::new(1, Op::Acquire { lock: 0x100 }, Some(0)),
                Event::new(
                    1,
                    Op::Write {
                        addr: 0x200,
                        width: 4,
                        atomic: false
                    },
                    Some(0)
                ),
                Event::new(1, Op::Release { lock: 0x100 }, Some(0)),
                Event::new(0, Op::Join { child: 1 }, None),
            ]
        );
    }

    #[test]
    fn a_reused_thread_id_records_into_its_buffer_in_order() {
        let s = session(4);
        let first = s.begin_thread(1).unwrap();
        first.write(0x10, 4, false, 0);
        first.end();
        let second = s.begin_thread(1).unwrap();
        second.read(0x20, 1, true, 0);
        second.write(0x30, 0, false, 0);
        let events = s.recorder.finish().unwrap();
        assert_eq!(
            events,
            vec![
                Event::new(
                    1,
                    Op::Write {
                        addr: 0x10,
                        width: 4,
                        atomic: false
                    },
                    Some(0)
                ),
                Event::new(
                    1,
                    Op::Read {
                        addr: 0x20,
                        width: 1,
                        atomic: true
                    },
                    Some(0)
                ),
            ],
            "one buffer per thread id; zero-width accesses are not recorded"
        );
    }

    #[test]
    fn location_text_names_the_function_and_instruction() {
        let loc = Location {
            func_index: 7,
            func_name: Some("worker".into()),
            code_offset: 0x2a,
            instr: "call start_lock".into(),
        };
        let s = Session::new(config(1), vec![loc]).unwrap();
        assert_eq!(
            s.location_text(0),
            "in `worker` (function 7), code offset 0x2a: call start_lock"
        );
        assert_eq!(s.location_text(5), "at unknown location 5");
    }

    #[test]
    fn tracks_waiting_and_owners() {
        let s = session(4);
        let t1 = s.begin_thread(1).unwrap();
        let t2 = s.begin_thread(2).unwrap();
        t1.start_lock(0x10, 0);
        t1.finish_lock(0x10, 0);
        t2.start_lock(0x20, 0);
        t2.finish_lock(0x20, 0);
        t1.start_lock(0x20, 0);
        t2.start_lock(0x10, 0);
        assert_eq!(s.waiting_on(1), Some(0x20));
        assert_eq!(s.waiting_on(2), Some(0x10));
        assert_eq!(s.lock_owner(0x10), Some(1));
        assert_eq!(s.lock_owner(0x20), Some(2));
        assert_eq!(s.held_locks(1), vec![0x10]);
        assert_eq!(s.waiting_on(3), None);
        t1.start_unlock(0x10, 0);
        assert_eq!(s.lock_owner(0x10), None);
        assert!(s.held_locks(1).is_empty());
        assert!(!s.lock_table_overflowed());
    }

    #[test]
    fn thread_limit_is_enforced() {
        let s = session(2);
        assert!(matches!(
            s.begin_thread(2),
            Err(SessionError::ThreadIdOutOfRange { tid: 2, max: 2 })
        ));
        assert!(matches!(
            Session::new(Config::new(0), Vec::new()),
            Err(SessionError::BadThreadLimit(0))
        ));
    }

    #[test]
    fn lock_table_overflow_is_reported() {
        let t = LockTable::new(4);
        for l in 0..4 {
            t.set_owner(l * 8, 1);
        }
        assert!(t.overflowed.load(SeqCst) == 0);
        t.set_owner(1000, 1);
        assert!(t.overflowed.load(SeqCst) == 1);
        assert_eq!(t.held_by(1), vec![0, 8, 16, 24]);
    }

    #[test]
    fn stop_parks_new_entries_and_busy_sees_none() {
        let s = session(4);
        let ctx = s.begin_thread(1).unwrap();
        s.stop();
        assert!(s.is_stopping());
        assert!(s.busy(4).is_empty());
        let handle = std::thread::spawn(move || {
            ctx.read(0, 4, false, 0);
            unreachable!("a stopped session parks the thread");
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!handle.is_finished());
        assert!(s.busy(4).is_empty());
        assert_eq!(s.recorded(), 0);
    }

    #[test]
    fn finish_exports_all_formats() {
        let s = session(4);
        let t0 = s.begin_thread(0).unwrap();
        t0.fork(1, None);
        t0.join(1, None);
        let f = s.finish(None).unwrap();
        assert_eq!(f.totals.events, 2);
        let chunk = f.chunk.expect("the undrained events are the last chunk");
        assert_eq!(chunk.index, 0);
        assert_eq!(chunk.std, b"T0|fork(T1)|0\nT0|join(T1)|0\n");
        assert_eq!(chunk.rapid_bin.len(), 18 + 2 * 8);
        assert_eq!(chunk.rapid_bin[..18], [0; 18], "a placeholder header");
        assert_eq!(f.totals.rapid_bin_header[10..], 2i64.to_be_bytes());
        assert_eq!(chunk.native.len(), 24 + 2 * 20);
        assert_eq!(f.totals.native_header, native::header(Some(2)));
        assert_eq!(f.totals.chunks, 1);
        assert!(f.totals.lock_consistency.is_none());
        assert_eq!(
            s.finish(None).unwrap_err().variant,
            "Finished",
            "a trace is finished once"
        );
    }

    /// Drained chunks and the last one, concatenated with the final headers, are the
    /// trace; the findings cover every chunk.
    #[test]
    fn drained_chunks_and_finish_make_the_whole_trace() {
        let s = session(4);
        let t0 = s.begin_thread(0).unwrap();
        let t1 = s.begin_thread(1).unwrap();
        t0.fork(1, None);
        t1.write(0x40, 4, false, 0);
        let first = s.drain(usize::MAX).unwrap().unwrap();
        assert_eq!((first.index, first.events), (0, 2));
        assert_eq!(s.drain(usize::MAX).unwrap(), None, "nothing new");
        t0.write(0x40, 4, false, 0);
        let second = s.drain(1).unwrap().unwrap();
        assert_eq!((second.index, second.events), (1, 1));
        t0.join(1, None);
        let f = s.finish(None).unwrap();
        let last = f.chunk.unwrap();
        assert_eq!((last.index, last.events), (2, 1));
        assert_eq!(f.totals.events, 4);
        assert_eq!(f.totals.chunks, 3);
        let mut native_bytes = [first.native, second.native, last.native].concat();
        native_bytes[..24].copy_from_slice(&f.totals.native_header);
        assert_eq!(native::decode(&native_bytes).unwrap().len(), 4);
        assert_eq!(f.report.races.len(), 1, "the race spans two chunks");
    }

    /// With `max_events`, the recorder refuses the events beyond it and the session names
    /// the option; with `max_trace_bytes`, the chunk that passes it is the last one.
    #[test]
    fn limits_are_named_errors() {
        let s: &'static Session = Box::leak(Box::new(
            Session::new(
                Config {
                    max_events: Some(3),
                    ..Config::new(2)
                },
                table(),
            )
            .unwrap(),
        ));
        let t0 = s.begin_thread(0).unwrap();
        for _ in 0..3 {
            t0.write(1, 1, false, 0);
        }
        assert_eq!(s.limit(), None, "exactly at the limit is fine");
        t0.write(1, 1, false, 0);
        let limit = s.limit().unwrap();
        assert_eq!(limit, LimitError::MaxEvents { events: 3 });
        assert!(limit.to_string().contains("--max-events (maxEvents)"));
        let f = s.finish(None).unwrap();
        assert_eq!(
            f.totals.events, 3,
            "the trace up to the limit stays readable"
        );

        let s: &'static Session = Box::leak(Box::new(
            Session::new(
                Config {
                    max_trace_bytes: Some(100),
                    ..Config::new(2)
                },
                table(),
            )
            .unwrap(),
        ));
        let t0 = s.begin_thread(0).unwrap();
        t0.fork(1, None);
        assert!(s.drain(usize::MAX).unwrap().is_some());
        assert_eq!(s.limit(), None);
        for _ in 0..10 {
            t0.fork(1, None);
        }
        assert!(s.drain(usize::MAX).unwrap().is_some());
        let Some(LimitError::MaxTraceBytes {
            events,
            bytes,
            limit,
        }) = s.limit()
        else {
            panic!("the byte limit was passed");
        };
        assert_eq!((events, limit), (11, 100));
        assert!(bytes > 100);
        t0.fork(1, None);
        assert_eq!(
            s.drain(usize::MAX).unwrap(),
            None,
            "later events are dropped"
        );
        assert_eq!(s.finish(None).unwrap().totals.events, 11);
    }

    /// A recording thread waits while too many events wait for the manager, and goes on
    /// once a drain took them.
    #[test]
    fn recording_waits_for_the_drain() {
        let s: &'static Session = Box::leak(Box::new(
            Session::new(
                Config {
                    max_pending: Some(1000),
                    ..Config::new(2)
                },
                table(),
            )
            .unwrap(),
        ));
        let done = std::sync::atomic::AtomicBool::new(false);
        let done: &'static _ = Box::leak(Box::new(done));
        let recorder = std::thread::spawn(move || {
            let t = s.begin_thread(1).unwrap();
            for i in 0..20_000 {
                t.write(i * 4, 4, false, 0);
            }
            done.store(true, SeqCst);
        });
        let mut most = 0;
        let mut total = 0;
        while !done.load(SeqCst) {
            most = most.max(s.pending());
            if let Some(c) = s.drain(300).unwrap() {
                total += c.events;
            }
        }
        recorder.join().unwrap();
        total += s.finish(None).unwrap().chunk.map_or(0, |c| c.events);
        assert_eq!(total, 20_000);
        assert!(
            most <= 1000 + u64::from(THROTTLE_EVERY),
            "{most} events were pending"
        );
    }

    #[test]
    fn an_inconsistent_trace_is_reported_in_the_result() {
        // Thread 1 acts before thread 0 forks it, and takes a lock that thread 2 holds: a
        // trace the runtime never records, fed in by hand.
        let loc = Location {
            func_index: 1,
            func_name: None,
            code_offset: 0,
            instr: "i32.store".into(),
        };
        let s: &'static Session = Box::leak(Box::new(Session::new(config(4), vec![loc]).unwrap()));
        let t0 = s.begin_thread(0).unwrap();
        let t1 = s.begin_thread(1).unwrap();
        let t2 = s.begin_thread(2).unwrap();
        t1.write(0x40, 4, false, 0);
        t0.fork(1, None);
        t0.fork(2, None);
        t2.finish_lock(0x10, 0);
        t1.finish_lock(0x10, 0);
        let f = s.finish(None).unwrap();
        let fork_join = f
            .totals
            .fork_join_consistency
            .expect("fork/join inconsistency reported");
        assert!(fork_join.contains("thread 1"), "{fork_join}");
        let lock = f
            .totals
            .lock_consistency
            .expect("lock inconsistency reported");
        assert!(lock.contains("0x10") || lock.contains("16"), "{lock}");
    }

    #[test]
    fn atomic_brackets_rmw_allocations_and_the_ignored_range() {
        let s = session(2);
        s.ignore_range(0x1000, 0x100);
        let t = s.begin_thread(0).unwrap();
        t.atomic_begin(0x20);
        assert!(
            s.stripes.iter().any(|l| l.load(SeqCst) == 1),
            "the bracket holds its stripe"
        );
        t.rmw(0x20, 4, 3);
        assert!(
            s.stripes.iter().all(|l| l.load(SeqCst) == 0),
            "the access's event ends the bracket"
        );
        // An access of the runtime's reserved page is not recorded, but still ends its
        // bracket.
        t.atomic_begin(0x1010);
        t.write(0x1010, 4, true, 4);
        assert!(s.stripes.iter().all(|l| l.load(SeqCst) == 0));
        t.write(0x1100, 4, false, 5);
        t.heap(Op::Alloc {
            addr: 0x2000,
            size: 64,
        });
        let events = s.recorder.finish().unwrap();
        assert_eq!(
            events,
            vec![
                Event::new(
                    0,
                    Op::Rmw {
                        addr: 0x20,
                        width: 4
                    },
                    Some(3)
                ),
                Event::new(
                    0,
                    Op::Write {
                        addr: 0x1100,
                        width: 4,
                        atomic: false
                    },
                    Some(5)
                ),
                Event::new(
                    0,
                    Op::Alloc {
                        addr: 0x2000,
                        size: 64
                    },
                    None
                ),
            ]
        );
    }

    /// A session with lock recognition on.
    #[test]
    fn a_free_without_size_takes_the_size_of_the_c_allocation() {
        let s = session(2);
        let t0 = s.begin_thread(0).unwrap();
        let t1 = s.begin_thread(1).unwrap();
        let alloc = |addr, size| Op::Alloc { addr, size };
        let free = |addr, size| Op::Free { addr, size };
        t0.malloc(0x100, 24);
        t0.malloc(0x200, 8);
        // Another thread frees the block: the size is the allocation's.
        t1.free_unsized(0x100);
        // A block freed twice, or never allocated, records nothing.
        t1.free_unsized(0x100);
        t1.free_unsized(0x300);
        // The guest library's allocations and frees (with sizes) keep no sizes.
        t0.heap(alloc(0x400, 16));
        t0.heap(free(0x400, 16));
        t0.free_unsized(0x400);
        // An address allocated again with another size.
        t1.malloc(0x100, 40);
        t0.free_unsized(0x100);
        t0.free_unsized(0x200);
        let events = finished_ops(s);
        assert_eq!(
            events,
            vec![
                (0, alloc(0x100, 24)),
                (0, alloc(0x200, 8)),
                (1, free(0x100, 24)),
                (0, alloc(0x400, 16)),
                (0, free(0x400, 16)),
                (1, alloc(0x100, 40)),
                (0, free(0x100, 40)),
                (0, free(0x200, 8)),
            ]
        );
        assert!(s.blocks.lock().unwrap().is_empty());
    }

    #[test]
    fn a_pthread_join_is_the_join_of_the_thread_created_with_its_handle() {
        let s = session(4);
        let t0 = s.begin_thread(0).unwrap();
        let fork = |child| Op::Fork { child };
        let join = |child| Op::Join { child };
        // Created, ended, joined: the join records `Join` and the thread no `End`.
        t0.fork(1, None);
        t0.pthread_created(0x500);
        s.begin_thread(1).unwrap().exit();
        t0.pthread_done(0x500, false, None);
        // Ended before `pthread_create` returned: still its join's `Join`, and no `End`
        // (the thread was joinable all along; std's short threads often end that soon).
        t0.fork(2, None);
        s.begin_thread(2).unwrap().exit();
        t0.pthread_created(0x600);
        t0.pthread_done(0x600, false, None);
        // Ended unjoined, and its id forked again: its `End` comes first, and the late
        // join of the old handle is no event.
        t0.fork(3, None);
        t0.pthread_created(0x700);
        s.begin_thread(3).unwrap().exit();
        t0.fork(3, None);
        t0.pthread_done(0x700, false, None);
        // Detached after it ended: its `End`.
        t0.fork(1, None);
        t0.pthread_created(0x800);
        s.begin_thread(1).unwrap().exit();
        t0.pthread_done(0x800, true, None);
        // Detached while running: it records its `End` itself.
        t0.fork(2, None);
        t0.pthread_created(0x900);
        t0.pthread_done(0x900, true, None);
        s.begin_thread(2).unwrap().exit();
        let events = finished_ops(s);
        assert_eq!(
            events,
            vec![
                (0, fork(1)),
                (0, join(1)),
                (0, fork(2)),
                (0, join(2)),
                (0, fork(3)),
                (3, Op::End),
                (0, fork(3)),
                (0, fork(1)),
                (1, Op::End),
                (0, fork(2)),
                (2, Op::End),
            ]
        );
        // The trace is consistent by the trace model's rules.
        let check = wasmgrind_core::trace::check_fork_join_consistency(
            &events
                .iter()
                .map(|&(t, op)| Event::new(t, op, None))
                .collect::<Vec<_>>(),
        );
        assert!(check.is_ok(), "{check:?}");
    }

    /// A thread that no `pthread_created` names (C11's `thrd_create`, a raw
    /// `thread-spawn`) ends by itself: when its creator forks again, an end it had before
    /// is recorded, and a later end records its `End` at once.
    #[test]
    fn a_thread_without_pthread_created_still_records_its_end() {
        let s = session(4);
        let t0 = s.begin_thread(0).unwrap();
        t0.fork(1, None);
        s.begin_thread(1).unwrap().exit();
        t0.fork(2, None);
        t0.fork(3, None);
        s.begin_thread(2).unwrap().exit();
        let events = finished_ops(s);
        assert_eq!(
            events,
            vec![
                (0, Op::Fork { child: 1 }),
                (1, Op::End),
                (0, Op::Fork { child: 2 }),
                (0, Op::Fork { child: 3 }),
                (2, Op::End),
            ]
        );
    }

    #[test]
    fn a_join_that_returns_before_the_thread_ended_waits_for_its_end() {
        let s = session(2);
        let t0 = s.begin_thread(0).unwrap();
        t0.fork(1, None);
        t0.pthread_created(0x500);
        // The thread's worker sees its return whenever it does; the join's `Join`
        // follows its end either way.
        let child = std::thread::spawn(move || s.begin_thread(1).unwrap().exit());
        t0.pthread_done(0x500, false, None);
        child.join().unwrap();
        let ops = finished_ops(s);
        assert_eq!(
            ops,
            vec![(0, Op::Fork { child: 1 }), (0, Op::Join { child: 1 })]
        );
    }

    fn recognizing(max: u32) -> &'static Session {
        let config = Config {
            recognize_locks: true,
            ..config(max)
        };
        Box::leak(Box::new(Session::new(config, table()).unwrap()))
    }

    /// What instrumented code calls for an atomic write of `addr` with its values.
    fn atomic(t: &ThreadCtx, addr: u32, op: i32, old: u64, new: u64, loc: LocationId) {
        t.atomic_begin(addr);
        t.atomic_value(addr, op | 4 << 8, old, new, loc);
        if op == abi::VALUE_STORE {
            t.write(addr, 4, true, loc);
        } else {
            t.rmw(addr, 4, loc);
        }
    }

    /// The lock events of `events`, as (thread, op).
    fn lock_events(events: &[Event]) -> Vec<(u32, Op, Option<LocationId>)> {
        events
            .iter()
            .filter(|e| !e.op.is_access())
            .map(|e| (e.thread, e.op, e.location))
            .collect()
    }

    /// The events of `s`'s finished recorder other than accesses, after checking that the
    /// trace is lock-consistent.
    fn finished_lock_events(s: &Session) -> Vec<(u32, Op, Option<LocationId>)> {
        let events = s.recorder.finish().unwrap();
        let consistent = wasmgrind_core::trace::check_lock_consistency(&events);
        assert!(consistent.is_ok(), "{consistent:?}");
        lock_events(&events)
    }

    const L: u32 = 0x100;

    #[test]
    fn recognises_std_futex_mutex_uncontended() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        // lock: compare_exchange(0, 1) succeeds.
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        assert_eq!(s.lock_owner(L), Some(0));
        t.write(0x200, 4, false, 5);
        // unlock: swap(0) returns 1.
        atomic(&t, L, abi::VALUE_XCHG, 1, 0, 2);
        assert_eq!(s.lock_owner(L), None);
        // Again, so the lock is reusable.
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t, L, abi::VALUE_XCHG, 1, 0, 2);
        let f = s.finish(None).unwrap();
        assert_eq!(
            f.totals.events,
            2 + 1 + 2 + 4,
            "2 acquires, 2 releases, 5 accesses"
        );
        assert_eq!(f.totals.acquisitions, 2);
        assert_eq!(f.totals.lock_consistency, None);
    }

    #[test]
    fn recognises_the_contended_path_and_its_wait() {
        let s = recognizing(3);
        let t1 = s.begin_thread(1).unwrap();
        let t2 = s.begin_thread(2).unwrap();
        atomic(&t1, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        // t2: compare_exchange fails (no value hook), swap(2) finds it held, waits.
        t2.atomic_begin(L);
        t2.read(L, 4, true, 1);
        atomic(&t2, L, abi::VALUE_XCHG, 1, 2, 3);
        t2.read(L, 4, true, 4);
        t2.atomic_value(L, abi::VALUE_WAIT | 4 << 8, 2, u64::MAX, 4);
        assert_eq!(s.waiting_on(2), Some(L), "the watchdog sees the wait");
        assert_eq!(s.lock_owner(L), Some(1));
        // Woken without the lock (a spurious wake-up), it swaps again and waits again:
        // one request only.
        t2.atomic_value(L, abi::VALUE_WAIT_END | 4 << 8, 0, 0, 4);
        assert_eq!(s.waiting_on(2), None, "a returned wait is no wait");
        atomic(&t2, L, abi::VALUE_XCHG, 2, 2, 3);
        t2.atomic_value(L, abi::VALUE_WAIT | 4 << 8, 2, u64::MAX, 4);
        // t1 unlocks: swap(0) returns 2 (contended), wakes t2.
        atomic(&t1, L, abi::VALUE_XCHG, 2, 0, 2);
        t2.atomic_value(L, abi::VALUE_WAIT_END | 4 << 8, 0, 0, 4);
        // t2's swap(2) returns 0: it holds the lock.
        atomic(&t2, L, abi::VALUE_XCHG, 0, 2, 3);
        assert_eq!(s.lock_owner(L), Some(2));
        atomic(&t2, L, abi::VALUE_XCHG, 2, 0, 2);
        assert_eq!(
            finished_lock_events(s),
            vec![
                (1, Op::Acquire { lock: L }, Some(1)),
                (2, Op::Request { lock: L }, Some(4)),
                (1, Op::Release { lock: L }, Some(2)),
                (2, Op::Acquire { lock: L }, Some(3)),
                (2, Op::Release { lock: L }, Some(2)),
            ]
        );
    }

    /// std's `Mutex::lock` by the thread that holds it: the compare-exchange fails (no
    /// value hook), the contended path's `swap(2)` finds it held by the thread itself, and
    /// the thread waits. No release is recorded: the thread requests the lock and waits for
    /// itself, which the watchdog sees as a cycle of one.
    #[test]
    fn locking_a_held_mutex_again_is_a_wait_for_itself() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t, L, abi::VALUE_XCHG, 1, 2, 3);
        assert_eq!(s.lock_owner(L), Some(0), "the exchange released nothing");
        t.atomic_value(L, abi::VALUE_WAIT | 4 << 8, 2, u64::MAX, 4);
        assert_eq!(s.waiting_on(0), Some(L));
        assert_eq!(s.lock_owner(L), Some(0));
        // Later lock events (from a thread the watchdog would have stopped) release
        // nothing either: the thread still holds the lock it waits for.
        atomic(&t, 0x400, abi::VALUE_CMPXCHG, 0, 1, 5);
        assert_eq!(
            finished_lock_events(s),
            vec![
                (0, Op::Acquire { lock: L }, Some(1)),
                (0, Op::Request { lock: L }, Some(4)),
            ]
        );
    }

    /// Locking again a mutex that another thread waits for already: the word says
    /// "contended" (2), so std's `lock_contended` waits at once, without its `swap(2)`.
    #[test]
    fn locking_again_a_contended_mutex_is_a_wait_for_itself() {
        let s = recognizing(3);
        let t1 = s.begin_thread(1).unwrap();
        let t2 = s.begin_thread(2).unwrap();
        atomic(&t1, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t2, L, abi::VALUE_XCHG, 1, 2, 3);
        t2.atomic_value(L, abi::VALUE_WAIT | 4 << 8, 2, u64::MAX, 4);
        t1.atomic_value(L, abi::VALUE_WAIT | 4 << 8, 2, u64::MAX, 6);
        assert_eq!(s.waiting_on(1), Some(L));
        assert_eq!(s.lock_owner(L), Some(1), "a cycle of one for the watchdog");
    }

    /// More distinct lock words than the lock table holds: the report says so.
    #[test]
    fn a_full_lock_table_is_reported() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        for i in 0..=LOCK_TABLE_SIZE as u32 {
            let word = 0x10_0000 + 4 * i;
            atomic(&t, word, abi::VALUE_CMPXCHG, 0, 1, 1);
            atomic(&t, word, abi::VALUE_XCHG, 1, 0, 2);
        }
        assert!(s.lock_table_overflowed());
        let f = s.finish(None).unwrap();
        let text = f.report.text();
        assert!(
            text.contains("more than 16384 distinct lock words were taken"),
            "{text}"
        );
    }

    /// A word taken once from 0 and never released (a flag set once) is held, but neither
    /// listed in reports nor a lock at the end; so is one released by a store of 0 (a
    /// channel's selection word is reset so). Once a holder has released it as std's
    /// `Mutex` does, by exchanging it with 0, a later hold is both.
    #[test]
    fn a_held_word_is_a_lock_once_it_behaved_as_one() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        assert_eq!(s.held_locks(0), vec![L]);
        assert_eq!(s.listed_held_locks(0), Vec::<u32>::new());
        assert!(s.locks.disqualified(L));
        atomic(&t, L, abi::VALUE_STORE, 1, 0, 2);
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 3);
        assert!(s.locks.disqualified(L));
        atomic(&t, L, abi::VALUE_XCHG, 1, 0, 4);
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 5);
        assert_eq!(s.listed_held_locks(0), vec![L]);
        assert!(!s.locks.disqualified(L));
    }

    /// The holder's exchange of a non-zero value that no wait follows (std's `Once`
    /// completing: `swap(COMPLETE)`) releases the word at the exchange, and forgets it.
    #[test]
    fn a_holder_exchange_without_a_wait_releases() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 2, 1);
        atomic(&t, L, abi::VALUE_XCHG, 2, 3, 2);
        // Its next lock event decides: here another lock.
        atomic(&t, 0x400, abi::VALUE_CMPXCHG, 0, 1, 5);
        assert_eq!(s.lock_owner(L), None);
        assert_eq!(s.held_locks(0), vec![0x400]);
        assert_eq!(
            finished_lock_events(s),
            vec![
                (0, Op::Acquire { lock: L }, Some(1)),
                (0, Op::Release { lock: L }, Some(2)),
                (0, Op::Acquire { lock: 0x400 }, Some(5)),
            ]
        );
        // The end of the thread decides too.
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 2, 1);
        atomic(&t, L, abi::VALUE_XCHG, 2, 3, 2);
        t.exit();
        assert_eq!(s.lock_owner(L), None);
    }

    #[test]
    fn what_is_not_a_lock_operation() {
        let s = recognizing(3);
        let t1 = s.begin_thread(1).unwrap();
        let t2 = s.begin_thread(2).unwrap();
        // A compare-exchange from a non-zero value, or to 0, acquires nothing; nor does
        // one that installs a pointer.
        atomic(&t1, 0x300, abi::VALUE_CMPXCHG, 1, 2, 1);
        atomic(&t1, 0x304, abi::VALUE_CMPXCHG, 0, 0, 1);
        atomic(&t1, 0x314, abi::VALUE_CMPXCHG, 0, 0x12_3450, 1);
        assert_eq!(s.lock_owner(0x314), None);
        // An exchange from 0 of a word never taken by a compare-exchange (a thread
        // parker's `swap(NOTIFIED)`) acquires nothing either.
        atomic(&t1, 0x308, abi::VALUE_XCHG, 0, 1, 3);
        // Nor does an add, or a store of a non-zero value.
        atomic(&t1, 0x30c, abi::VALUE_RMW, 0, 0, 3);
        atomic(&t1, 0x310, abi::VALUE_STORE, 0, 1, 3);
        assert_eq!(s.lock_owner(0x308), None);
        // A store of 0 by a thread that does not hold the lock releases nothing: the
        // word is no lock then, and the holder's hold ends at its next lock event.
        atomic(&t1, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t2, L, abi::VALUE_STORE, 0, 0, 2);
        assert_eq!(
            s.lock_owner(L),
            None,
            "the watchdog no longer trusts the word"
        );
        assert_eq!(s.held_locks(1), vec![L]);
        atomic(&t1, 0x400, abi::VALUE_CMPXCHG, 0, 1, 1);
        assert_eq!(s.held_locks(1), vec![0x400]);
        // The word is never a lock again: the late release carries t1's later events,
        // which must not order anyone.
        atomic(&t2, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        assert_eq!(s.lock_owner(L), None);
        assert_eq!(
            finished_lock_events(s),
            vec![
                (1, Op::Acquire { lock: L }, Some(1)),
                (1, Op::Release { lock: L }, None),
                (1, Op::Acquire { lock: 0x400 }, Some(1)),
            ]
        );
    }

    /// A 64-bit compare-exchange from 0 (std's `ThreadId` counter) is no acquisition.
    #[test]
    fn a_64_bit_word_is_no_lock() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        t.atomic_begin(L);
        t.atomic_value(L, abi::VALUE_CMPXCHG | 8 << 8, 0, 1, 1);
        t.rmw(L, 8, 1);
        assert_eq!(s.lock_owner(L), None);
        assert!(lock_events(&s.recorder.finish().unwrap()).is_empty());
    }

    /// A counter on a 32-bit word: a compare-exchange 0 -> 1 looks like an acquisition, but
    /// the next thread's 1 -> 2 shows it is none: the first thread's hold ends at its
    /// next lock event, before it takes another lock.
    #[test]
    fn a_counter_taken_from_0_is_let_go() {
        let s = recognizing(3);
        let t1 = s.begin_thread(1).unwrap();
        let t2 = s.begin_thread(2).unwrap();
        atomic(&t1, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t2, L, abi::VALUE_CMPXCHG, 1, 2, 1);
        assert_eq!(s.lock_owner(L), None);
        atomic(&t1, 0x900, abi::VALUE_CMPXCHG, 0, 1, 1);
        assert_eq!(s.held_locks(1), vec![0x900]);
        assert_eq!(
            finished_lock_events(s),
            vec![
                (1, Op::Acquire { lock: L }, Some(1)),
                (1, Op::Release { lock: L }, None),
                (1, Op::Acquire { lock: 0x900 }, Some(1)),
            ]
        );
    }

    #[test]
    fn a_spin_lock_released_by_a_store_and_an_rwlock_unlocked_by_subtraction() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        // `while flag.compare_exchange(false, true).is_err() {}` ... `flag.store(false)`.
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t, L, abi::VALUE_STORE, 0, 0, 2);
        // Once known, `while flag.swap(true) {}` takes it too.
        atomic(&t, L, abi::VALUE_XCHG, 0, 1, 3);
        atomic(&t, L, abi::VALUE_STORE, 0, 0, 2);
        // std's RwLock read-locks with a compare-exchange 0 -> 1 and unlocks with a
        // subtraction: released, and the word is forgotten.
        atomic(&t, 0x500, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t, 0x500, abi::VALUE_RMW, 1, 0, 4);
        atomic(&t, 0x500, abi::VALUE_XCHG, 0, 1, 3);
        assert_eq!(
            s.lock_owner(0x500),
            None,
            "a forgotten word takes no exchange"
        );
        let f = s.finish(None).unwrap();
        assert_eq!(f.totals.acquisitions, 3);
        assert_eq!(f.totals.lock_consistency, None);
    }

    #[test]
    fn traced_locks_win_over_recognition() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        let u = s.begin_thread(1).unwrap();
        // wasmgrind-guest's Mutex: start_lock, its compare-exchange, finish_lock.
        t.start_lock(L, 0);
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        t.finish_lock(L, 0);
        t.start_unlock(L, 2);
        atomic(&t, L, abi::VALUE_XCHG, 1, 0, 2);
        // try_lock: the compare-exchange comes first; finish_lock adds no second acquire,
        // also when another thread's start_lock comes between.
        atomic(&t, 0x600, abi::VALUE_CMPXCHG, 0, 1, 1);
        u.start_lock(0x600, 0);
        t.finish_lock(0x600, 0);
        t.start_unlock(0x600, 2);
        atomic(&t, 0x600, abi::VALUE_XCHG, 1, 0, 2);
        u.finish_lock(0x600, 0);
        let events = s.recorder.finish().unwrap();
        assert_eq!(
            lock_events(&events),
            vec![
                (0, Op::Request { lock: L }, Some(0)),
                (0, Op::Acquire { lock: L }, Some(0)),
                (0, Op::Release { lock: L }, Some(2)),
                (0, Op::Acquire { lock: 0x600 }, Some(1)),
                (1, Op::Request { lock: 0x600 }, Some(0)),
                (0, Op::Release { lock: 0x600 }, Some(2)),
                (1, Op::Acquire { lock: 0x600 }, Some(0)),
            ]
        );
    }

    /// A traced lock whose implementation takes another word with a compare-exchange
    /// while its request is pending (wasmgrind-guest's RwLock): the word is not
    /// recognised, so the request is not interrupted.
    #[test]
    fn no_recognised_acquire_inside_a_traced_request() {
        let s = recognizing(2);
        let t = s.begin_thread(0).unwrap();
        t.start_lock(L, 0);
        atomic(&t, L + 4, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t, L + 4, abi::VALUE_XCHG, 1, 0, 2);
        t.finish_lock(L, 0);
        t.start_unlock(L, 2);
        let f = s.finish(None).unwrap();
        assert_eq!(f.totals.acquisitions, 1);
        assert_eq!(f.totals.lock_consistency, None);
    }

    #[test]
    fn without_the_option_values_change_nothing() {
        let s = session(2);
        let t = s.begin_thread(0).unwrap();
        atomic(&t, L, abi::VALUE_CMPXCHG, 0, 1, 1);
        t.atomic_value(L, abi::VALUE_WAIT | 4 << 8, 1, 0, 1);
        assert_eq!(s.lock_owner(L), None);
        assert_eq!(s.waiting_on(0), None);
        let events = s.recorder.finish().unwrap();
        assert!(lock_events(&events).is_empty());
    }

    /// Two threads that each hold a recognised lock and wait in `memory.atomic.wait32`
    /// for the other's: the owner and waiting tables form the cycle the watchdog looks
    /// for, and the live deadlock names where each requested its lock.
    #[test]
    fn a_deadlock_on_recognised_locks_is_a_wait_for_cycle() {
        let s = recognizing(3);
        let t1 = s.begin_thread(1).unwrap();
        let t2 = s.begin_thread(2).unwrap();
        let (a, b) = (0x700, 0x800);
        atomic(&t1, a, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t2, b, abi::VALUE_CMPXCHG, 0, 1, 1);
        atomic(&t1, b, abi::VALUE_XCHG, 1, 2, 3);
        t1.atomic_value(b, abi::VALUE_WAIT | 4 << 8, 2, u64::MAX, 4);
        atomic(&t2, a, abi::VALUE_XCHG, 1, 2, 3);
        t2.atomic_value(a, abi::VALUE_WAIT | 4 << 8, 2, u64::MAX, 5);
        let next = |t: u32| s.lock_owner(s.waiting_on(t).unwrap());
        assert_eq!((next(1), next(2)), (Some(2), Some(1)));
        let live = LiveDeadlock {
            threads: vec![
                wasmgrind_core::analysis::BlockedThread {
                    thread: 1,
                    waiting_on: b,
                    requested_at: None,
                    holder: 2,
                    joining: None,
                },
                wasmgrind_core::analysis::BlockedThread {
                    thread: 2,
                    waiting_on: a,
                    requested_at: None,
                    holder: 1,
                    joining: None,
                },
            ],
        };
        let f = s.finish(Some(live)).unwrap();
        assert_eq!(f.totals.lock_consistency, None);
        let d = f.report.deadlock.expect("the live deadlock is reported");
        assert_eq!(d.threads.len(), 2);
        assert_eq!(
            f.report.potential_deadlocks.len(),
            1,
            "the requests close the cycle in the lock-order graph"
        );
    }
}
