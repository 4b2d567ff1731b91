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

use std::cell::Cell;
use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use std::sync::{Mutex, OnceLock};

use wasmgrind_core::analysis::report::{report, Report};
use wasmgrind_core::analysis::symbolize::Symbolizer;
use wasmgrind_core::analysis::{analyze, Findings, LiveDeadlock};
use wasmgrind_core::location::{Location, LocationId};
use wasmgrind_core::trace::{
    check_fork_join_consistency, check_lock_consistency, export, native, Event, Export,
    ExportOptions, Op, Recorder, ThreadRecorder, Trace,
};

use crate::error::{Failure, SessionError};

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
    /// Set when a lock found no free slot.
    overflowed: AtomicU32,
}

impl LockTable {
    fn new(size: usize) -> LockTable {
        LockTable {
            keys: (0..size).map(|_| AtomicU32::new(0)).collect(),
            owners: (0..size).map(|_| AtomicU32::new(0)).collect(),
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
        self.owners[at].load(SeqCst).checked_sub(1)
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

/// The finished trace of a session in the three formats.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The export: dense trace and metadata.
    pub export: Export,
    /// The RapidBin bytes.
    pub rapid_bin: Vec<u8>,
    /// Number of recorded events (before atomics are expanded into pseudo-lock brackets).
    pub events: usize,
    /// Why the trace is not lock-consistent, if it is not (a Wasmgrind bug).
    pub lock_consistency: Option<String>,
    /// Why the forks and joins are not consistent, if they are not (a Wasmgrind bug).
    pub fork_join_consistency: Option<String>,
    /// Every event in Wasmgrind's own format ([`native`]), which keeps what the exported
    /// formats cannot carry (atomics, allocations), so the run can be analyzed again.
    pub native: Vec<u8>,
    /// What the detectors found, resolved to functions and source lines.
    pub report: Report,
    /// How long the steps of [`Session::finish`] took.
    pub timings: FinishTimings,
}

/// Milliseconds that the steps of [`Session::finish`] took (see [`now_ms`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FinishTimings {
    /// Merging the threads' buffers into one trace, and its consistency checks.
    pub collect_ms: f64,
    /// The detectors and their report (symbolization included).
    pub analysis_ms: f64,
    /// Wasmgrind's own format ([`native`]).
    pub native_ms: f64,
    /// The dense ids of the exported formats ([`export`]), which RapidBin, STD and the
    /// metadata share.
    pub dense_ms: f64,
    /// RapidBin from the dense trace.
    pub rapid_bin_ms: f64,
}

/// A clock in milliseconds for the timings of [`Session::finish`]: `performance.now()` on
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
}

impl Session {
    /// A session for thread ids `0..max_threads` that records at most `capacity` events
    /// whose locations index `locations`.
    pub fn new(
        max_threads: u32,
        capacity: u64,
        locations: Vec<Location>,
    ) -> Result<Session, SessionError> {
        if max_threads == 0 || max_threads > MAX_THREAD_LIMIT {
            return Err(SessionError::BadThreadLimit(max_threads));
        }
        Ok(Session {
            recorder: Recorder::with_capacity(capacity),
            locations,
            slots: (0..max_threads).map(|_| Slot::default()).collect(),
            locks: LockTable::new(LOCK_TABLE_SIZE),
            stopping: AtomicU32::new(0),
            unattributed: AtomicU64::new(0),
            modules: OnceLock::new(),
            stripes: (0..ATOMIC_STRIPES).map(|_| AtomicU32::new(0)).collect(),
            ignored: (AtomicU32::new(0), AtomicU32::new(0)),
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
            std::mem::forget(PARK_LOCK.lock());
            self.stopping.store(1, SeqCst);
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

    /// The thread that holds `lock`, if the hooks saw it taken and not released.
    pub fn lock_owner(&self, lock: u32) -> Option<u32> {
        self.locks.owner(lock)
    }

    /// The locks thread `tid` holds, by address.
    pub fn held_locks(&self, tid: u32) -> Vec<u32> {
        self.locks.held_by(tid)
    }

    /// Whether some lock could not be tracked because the owner table was full.
    pub fn lock_table_overflowed(&self) -> bool {
        self.locks.overflowed.load(SeqCst) != 0
    }

    /// Events accepted so far.
    pub fn recorded(&self) -> u64 {
        self.recorder.recorded()
    }

    /// A one-line description of location `loc` for error messages.
    pub fn location_text(&self, loc: u32) -> String {
        match self.locations.get(loc as usize) {
            Some(l) => {
                let name = l.func_name.as_deref().unwrap_or("<unnamed>");
                format!(
                    "in `{name}` (function {}), code offset {:#x}: {}",
                    l.func_index, l.code_offset, l.instr
                )
            }
            None => format!("at unknown location {loc}"),
        }
    }

    /// Ends recording, runs the detectors and exports the trace. `live` is the deadlock
    /// the run ended in, as the runtime saw it (the locations are filled in here).
    pub fn finish(
        &self,
        options: ExportOptions,
        live: Option<LiveDeadlock>,
    ) -> Result<Finished, Failure> {
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
        let t0 = now_ms();
        let events = self
            .recorder
            .finish()
            .map_err(|e| Failure::new("RecordError", &e))?;
        let lock_consistency = check_lock_consistency(&events).err().map(|e| e.to_string());
        let fork_join_consistency = check_fork_join_consistency(&events)
            .err()
            .map(|e| e.to_string());
        let count = events.len();
        let t1 = now_ms();
        let mut findings = analyze(&events);
        findings.deadlock = live.map(|d| with_request_locations(d, &events));
        let symbolizer = self
            .modules
            .get()
            .and_then(|(original, patched)| Symbolizer::for_patched(original, patched).ok());
        let report = report(&findings, &self.locations, symbolizer.as_ref());
        let t2 = now_ms();
        let native = native::encode(&events);
        let t3 = now_ms();
        let trace = Trace::new(events, self.locations.clone());
        let export = export(&trace, options).map_err(|e| Failure::new("FormatError", &e))?;
        let t4 = now_ms();
        let rapid_bin = export
            .rapid_bin()
            .map_err(|e| Failure::new("FormatError", &e))?;
        let timings = FinishTimings {
            collect_ms: t1 - t0,
            analysis_ms: t2 - t1,
            native_ms: t3 - t2,
            dense_ms: t4 - t3,
            rapid_bin_ms: now_ms() - t4,
        };
        Ok(Finished {
            timings,
            export,
            rapid_bin,
            events: count,
            lock_consistency,
            fork_join_consistency,
            native,
            report,
        })
    }
}

/// `deadlock` with each thread's `requested_at`: the location of its last request of the
/// lock it waits for.
fn with_request_locations(mut deadlock: LiveDeadlock, events: &[Event]) -> LiveDeadlock {
    for t in &mut deadlock.threads {
        t.requested_at = events
            .iter()
            .rev()
            .find(|e| e.thread == t.thread && e.op == Op::Request { lock: t.waiting_on })
            .and_then(|e| e.location);
    }
    deadlock
}

/// Re-runs the detectors on a saved trace: `native` events whose locations index
/// `locations`, symbolized with `modules` (original and patched) when given.
pub fn reanalyze(
    native_bytes: &[u8],
    locations: &[Location],
    modules: Option<(&[u8], &[u8])>,
) -> Result<(Findings, Report), Failure> {
    let events = native::decode(native_bytes).map_err(|e| Failure::new("TraceError", &e))?;
    let findings = analyze(&events);
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

/// Held for good by [`Session::stop`]: a thread that locks it waits forever.
static PARK_LOCK: Mutex<()> = Mutex::new(());

/// Parks the calling thread for good: the runtime terminates it. It waits on a lock that
/// [`Session::stop`] took and never releases; the wait (`memory.atomic.wait32` on
/// WebAssembly) allocates nothing and holds nothing.
pub fn park() -> ! {
    loop {
        let _guard = PARK_LOCK.lock();
    }
}

#[inline]
fn enter(session: &Session, slot: &Slot) {
    slot.busy.store(1, SeqCst);
    if session.stopping.load(SeqCst) != 0 {
        slot.busy.store(0, SeqCst);
        park();
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
}

impl ThreadCtx {
    /// The thread id.
    pub fn tid(&self) -> u32 {
        self.tid
    }

    #[inline]
    fn record(&self, op: Op, loc: Option<LocationId>) {
        // A refused event (capacity exhausted) is counted by the recorder and makes
        // `finish` fail, so nothing is lost silently.
        let _ = self.recorder.record(op, loc);
    }

    #[inline]
    fn guarded(&self, f: impl FnOnce(&Self)) {
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
        self.guarded(|c| {
            if !skip {
                c.record(op, Some(loc));
            }
            if let Some(s) = stripe {
                c.session.stripes[s].store(0, Release);
            }
        });
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
                    park();
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

    /// The thread is about to block on `lock`.
    pub fn start_lock(&self, lock: u32, loc: LocationId) {
        self.guarded(|c| {
            c.slot.waiting.store(1 << 32 | u64::from(lock), SeqCst);
            c.record(Op::Request { lock }, Some(loc));
        });
    }

    /// The thread now holds `lock`.
    pub fn finish_lock(&self, lock: u32, loc: LocationId) {
        self.guarded(|c| {
            c.slot.waiting.store(0, SeqCst);
            c.session.locks.set_owner(lock, c.tid);
            c.record(Op::Acquire { lock }, Some(loc));
        });
    }

    /// The thread is about to release `lock` (it still holds it).
    pub fn start_unlock(&self, lock: u32, loc: LocationId) {
        self.guarded(|c| {
            c.record(Op::Release { lock }, Some(loc));
            c.session.locks.clear_owner(lock, c.tid);
        });
    }

    /// The thread started thread `child`; recorded before the child can run.
    pub fn fork(&self, child: u32, loc: Option<LocationId>) {
        self.guarded(|c| c.record(Op::Fork { child }, loc));
    }

    /// Thread `child` finished and this thread saw it.
    pub fn join(&self, child: u32, loc: Option<LocationId>) {
        self.guarded(|c| c.record(Op::Join { child }, loc));
    }

    /// Ends the context. It owns nothing (the recorder stays with the thread id), so
    /// this neither allocates nor frees.
    pub fn end(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgrind_core::trace::Event;

    fn session(max: u32) -> &'static Session {
        Box::leak(Box::new(Session::new(max, 1000, Vec::new()).unwrap()))
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
        let s = Session::new(1, 10, vec![loc]).unwrap();
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
            Session::new(0, 1, Vec::new()),
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
        let f = s.finish(ExportOptions::default(), None).unwrap();
        assert_eq!(f.events, 2);
        assert_eq!(f.export.std_text(), "T0|fork(T1)|0\nT0|join(T1)|0\n");
        assert_eq!(f.rapid_bin.len(), 18 + 2 * 8);
        assert!(f.lock_consistency.is_none());
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
        let s: &'static Session = Box::leak(Box::new(Session::new(4, 100, vec![loc]).unwrap()));
        let t0 = s.begin_thread(0).unwrap();
        let t1 = s.begin_thread(1).unwrap();
        let t2 = s.begin_thread(2).unwrap();
        t1.write(0x40, 4, false, 0);
        t0.fork(1, None);
        t0.fork(2, None);
        t2.finish_lock(0x10, 0);
        t1.finish_lock(0x10, 0);
        let f = s.finish(ExportOptions::default(), None).unwrap();
        let fork_join = f
            .fork_join_consistency
            .expect("fork/join inconsistency reported");
        assert!(fork_join.contains("thread 1"), "{fork_join}");
        let lock = f.lock_consistency.expect("lock inconsistency reported");
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

    #[test]
    fn capacity_overflow_fails_finish() {
        let s: &'static Session = Box::leak(Box::new(Session::new(2, 1, Vec::new()).unwrap()));
        let t0 = s.begin_thread(0).unwrap();
        t0.write(1, 1, false, 0);
        t0.write(1, 1, false, 0);
        let err = s.finish(ExportOptions::default(), None).unwrap_err();
        assert_eq!(err.kind, "RecordError");
        assert_eq!(err.variant, "CapacityExceeded");
    }
}
