//! A trace recorder that many threads append to at once, and that a consumer drains
//! while they run.
//!
//! # Design
//!
//! Each thread records through its own [`ThreadRecorder`], obtained once with
//! [`Recorder::thread`] and kept by the caller (in a `thread_local`, or in the per-thread
//! state of the embedding). A `ThreadRecorder` appends to a buffer that only it writes;
//! the buffer's lock is taken by its owner and, briefly, by [`Recorder::drain`],
//! [`Recorder::snapshot`] and [`Recorder::finish`], so recording never waits for another
//! recording thread. A global atomic sequence number, taken while appending under the
//! buffer's lock, gives the total order.
//!
//! # Streaming
//!
//! [`Recorder::drain`] *moves* the oldest recorded events out, in order, while threads go
//! on recording: it reads the sequence counter first and then takes, buffer by buffer,
//! every event whose sequence number is below what it read. Every such event took its
//! number under its buffer's lock before the counter was read, so it is in its buffer by
//! the time `drain` locks it: a drain returns exactly the events numbered
//! `[previous end, end)`, a *prefix* of what is left, and the drains of a run, concatenated,
//! are the whole trace in sequence order (what [`Recorder::finish`] would have returned),
//! with nothing lost and nothing twice. A prefix of a lock-consistent trace is
//! lock-consistent too, so every drained chunk can go straight to a streaming detector or
//! exporter and be freed.
//!
//! # Lock-consistency contract
//!
//! The sequence number is taken when the event is recorded, so the caller must record
//!
//! - `Release` **before** it actually releases the lock (while still holding it), and
//! - `Acquire` **after** it actually took the lock (and `Request` before it starts to wait).
//!
//! Then a release by one thread always gets a smaller sequence number than the acquire
//! by the next holder, and the merged order is a valid order of the lock operations;
//! [`check_lock_consistency`](super::check_lock_consistency) verifies it. The same holds
//! for `Fork` (record before starting the thread) and `Join` (record after the thread
//! finished).
//!
//! # Memory bound
//!
//! A recorder has no capacity of its own: it holds the events recorded and not drained
//! yet ([`Recorder::pending`]), so a run whose events are drained as they come needs
//! memory for what the consumer has not caught up with, however long it runs. (An
//! embedding that wants a hard bound makes recording threads wait while
//! [`Recorder::pending`] is above it; the JS runtime does.) Each held event takes
//! [`Recorder::BYTES_PER_EVENT`] bytes. A thread's buffer grows in chunks whose size
//! doubles from 64 events up to [`Recorder::CHUNK_EVENTS`], so its unused reserve is below
//! 64 events, or below the number of events it holds, and always below `CHUNK_EVENTS`.
//! All buffers together take at most `(held + threads × CHUNK_EVENTS) × BYTES_PER_EVENT`
//! bytes, and at most `(2 × held + 64 × threads) × BYTES_PER_EVENT`. `snapshot` copies the
//! events it returns; `drain` and `finish` move them out and need about as much again
//! while they merge.
//!
//! # Limit
//!
//! A recorder made with [`Recorder::with_limit`] accepts at most that many events in
//! total (drained or not). An event beyond it is refused with
//! [`RecordError::LimitReached`] and counted ([`Recorder::rejected`]); `snapshot` and
//! `finish` then fail with the same error, and `drain` returns the events up to the limit
//! (its caller asks [`Recorder::rejected`]): events are never dropped silently.
//!
//! # Blocking
//!
//! On WebAssembly the buffer locks are taken by spinning on `try_lock`, never by a blocking
//! wait, so `drain`, `snapshot` and `finish` may run on a browser's main thread, where
//! `memory.atomic.wait` traps. The critical sections are a push, or a move or copy of one
//! buffer's events.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::location::LocationId;

use super::{Event, Op};

/// Why an event could not be recorded, or why a recorded trace is incomplete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// More events than the recorder's limit were recorded; the excess was refused.
    #[error(
        "the trace reached the recorder's limit of {limit} events ({rejected} more were \
         refused), so it is incomplete; raise the limit or record fewer events"
    )]
    LimitReached {
        /// The recorder's limit in events.
        limit: u64,
        /// How many events were refused so far.
        rejected: u64,
    },
    /// An event was recorded after [`Recorder::finish`] or [`Recorder::close`].
    #[error(
        "an event was recorded after the trace was finished; finish the recorder only after \
         every thread stopped recording"
    )]
    Finished,
}

type Entry = (u64, Event);

/// The smallest chunk a buffer allocates.
const FIRST_CHUNK: usize = 64;

/// The events of one buffer: chunks in sequence order, the oldest first.
#[derive(Default)]
struct Chunks {
    chunks: VecDeque<Vec<Entry>>,
    /// Events held (recorded and not drained).
    len: usize,
}

impl Chunks {
    fn push(&mut self, entry: Entry) {
        let full = self.chunks.back().is_none_or(|c| c.len() == c.capacity());
        if full {
            let size = self.len.clamp(FIRST_CHUNK, Recorder::CHUNK_EVENTS);
            self.chunks.push_back(Vec::with_capacity(size));
        }
        // `full` guarantees a last chunk with room.
        if let Some(last) = self.chunks.back_mut() {
            last.push(entry);
        }
        self.len += 1;
    }

    /// Moves the events numbered in `[start, end)` to their places in `out`, which holds
    /// the events numbered from `start` (every entry below `start` was taken before). They
    /// are the oldest ones; returns how many there were.
    fn place_below(&mut self, start: u64, end: u64, out: &mut [Event]) -> usize {
        let mut placed = 0;
        let mut place = |chunk: &[Entry]| {
            for (seq, event) in chunk {
                out[(seq - start) as usize] = *event;
            }
            placed += chunk.len();
        };
        while let Some(front) = self.chunks.front_mut() {
            // Entries of one buffer are in sequence order.
            let n = front.partition_point(|e| e.0 < end);
            place(&front[..n]);
            self.len -= n;
            if n == front.len() {
                self.chunks.pop_front();
                continue;
            }
            front.drain(..n);
            break;
        }
        placed
    }
}

struct Buffer {
    chunks: Mutex<Chunks>,
}

struct Shared {
    seq: AtomicU64,
    /// The most events accepted; `u64::MAX` for no limit.
    limit: u64,
    closed: AtomicBool,
    /// Every event numbered below this was drained.
    drained: AtomicU64,
    /// Held by a drain or a finish, so that they never interleave.
    draining: Mutex<()>,
    buffers: Mutex<Vec<Arc<Buffer>>>,
}

/// Takes a lock without a blocking wait on WebAssembly (see the module documentation).
#[cfg(target_family = "wasm")]
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    use std::sync::TryLockError;
    loop {
        match m.try_lock() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => std::hint::spin_loop(),
        }
    }
}

/// Takes a lock; a poisoned lock is still consistent here (every critical section is a
/// single push, move or copy).
#[cfg(not(target_family = "wasm"))]
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Collects the events of many threads; cheap to clone (all clones share the trace).
///
/// See the [module documentation](self) for the design, streaming with
/// [`Recorder::drain`], the lock-consistency contract and the memory bound.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("limit", &self.limit())
            .field("recorded", &self.recorded())
            .field("drained", &self.drained())
            .field("rejected", &self.rejected())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl Recorder {
    /// Bytes one held event takes in a buffer (its sequence number and the event).
    pub const BYTES_PER_EVENT: usize = std::mem::size_of::<Entry>();

    /// The largest chunk a thread's buffer grows by, in events.
    pub const CHUNK_EVENTS: usize = 4096;

    /// A recorder without a limit: it records until the run ends. Drain it
    /// ([`Recorder::drain`]) to keep its memory bounded.
    pub fn new() -> Recorder {
        Recorder::build(u64::MAX)
    }

    /// A recorder that accepts at most `limit` events in total and refuses the ones
    /// after them with [`RecordError::LimitReached`].
    pub fn with_limit(limit: u64) -> Recorder {
        Recorder::build(limit)
    }

    fn build(limit: u64) -> Recorder {
        Recorder {
            shared: Arc::new(Shared {
                seq: AtomicU64::new(0),
                limit,
                closed: AtomicBool::new(false),
                drained: AtomicU64::new(0),
                draining: Mutex::new(()),
                buffers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The limit in events, if there is one.
    pub fn limit(&self) -> Option<u64> {
        (self.shared.limit != u64::MAX).then_some(self.shared.limit)
    }

    /// A handle that records the events of `thread` (the runtime's thread id) into a new
    /// buffer. Take it once per thread and keep it: this call takes the recorder's
    /// registration lock.
    pub fn thread(&self, thread: u32) -> ThreadRecorder {
        let buffer = Arc::new(Buffer {
            chunks: Mutex::new(Chunks::default()),
        });
        lock(&self.shared.buffers).push(Arc::clone(&buffer));
        ThreadRecorder {
            shared: Arc::clone(&self.shared),
            buffer,
            thread,
        }
    }

    /// How many events were accepted so far (drained or not).
    pub fn recorded(&self) -> u64 {
        self.shared
            .seq
            .load(Ordering::SeqCst)
            .min(self.shared.limit)
    }

    /// How many events [`Recorder::drain`] moved out so far.
    pub fn drained(&self) -> u64 {
        self.shared.drained.load(Ordering::SeqCst)
    }

    /// How many accepted events wait to be drained: the ones the buffers hold, or are
    /// about to hold.
    pub fn pending(&self) -> u64 {
        self.recorded().saturating_sub(self.drained())
    }

    /// How many events were refused because the limit was reached.
    pub fn rejected(&self) -> u64 {
        // Every refused event took a sequence number at or above the limit.
        self.shared
            .seq
            .load(Ordering::SeqCst)
            .saturating_sub(self.shared.limit)
    }

    /// Whether [`Recorder::finish`] or [`Recorder::close`] was called.
    pub fn is_finished(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// The error for a trace whose sequence counter reached `seq`.
    fn overflow_error(&self, seq: u64) -> Result<(), RecordError> {
        match seq.saturating_sub(self.shared.limit) {
            0 => Ok(()),
            rejected => Err(RecordError::LimitReached {
                limit: self.shared.limit,
                rejected,
            }),
        }
    }

    /// Moves the oldest recorded events out, at most `max_events` of them, in order,
    /// while threads may go on recording; empty when there is nothing new.
    ///
    /// The result is the next piece of the trace: every event numbered from the end of
    /// the previous drain up to the counter read at the start of this call (or fewer,
    /// by `max_events`), and no other. The drains of a recorder, concatenated, are the
    /// whole trace in order, with nothing lost and nothing twice (see the
    /// [module documentation](self)). Refused events are not in it, and do not make it
    /// fail: ask [`Recorder::rejected`].
    pub fn drain(&self, max_events: usize) -> Vec<Event> {
        let _draining = lock(&self.shared.draining);
        let start = self.shared.drained.load(Ordering::SeqCst);
        let seq = self
            .shared
            .seq
            .load(Ordering::SeqCst)
            .min(self.shared.limit);
        let end = seq.min(start.saturating_add(max_events as u64));
        if end <= start {
            return Vec::new();
        }
        // A buffer registered after this copy records only numbers taken after the
        // counter was read above, so at or beyond `end`.
        let buffers: Vec<Arc<Buffer>> = lock(&self.shared.buffers).clone();
        // The numbers `[start, end)` were all taken, each once: every event goes straight to
        // its place, with no merge of the buffers.
        let mut events = vec![Event::new(0, Op::End, None); (end - start) as usize];
        let mut placed = 0;
        for buffer in &buffers {
            placed += lock(&buffer.chunks).place_below(start, end, &mut events);
        }
        self.shared.drained.store(end, Ordering::SeqCst);
        debug_assert_eq!(placed as u64, end - start, "a drain lost events");
        events
    }

    /// A copy of the events recorded and not drained yet, in order, while threads may go
    /// on recording.
    ///
    /// The result continues what was drained: every event whose sequence number was
    /// taken before this call started and that no drain took, and no later one, so
    /// without drains it is a prefix of the final trace, as lock-consistent as the whole
    /// trace. Fails if an event was refused because of the limit. After
    /// [`Recorder::finish`] the buffers are empty and the snapshot is too.
    pub fn snapshot(&self) -> Result<Vec<Event>, RecordError> {
        let seq = self.shared.seq.load(Ordering::SeqCst);
        self.overflow_error(seq)?;
        let end = seq.min(self.shared.limit);
        let buffers: Vec<Arc<Buffer>> = lock(&self.shared.buffers).clone();
        let mut entries: Vec<Entry> = Vec::new();
        for buffer in &buffers {
            let chunks = lock(&buffer.chunks);
            for chunk in &chunks.chunks {
                let n = chunk.partition_point(|e| e.0 < end);
                entries.extend_from_slice(&chunk[..n]);
            }
        }
        Ok(merge(entries))
    }

    /// Stops recording: later calls of [`ThreadRecorder::record`] fail with
    /// [`RecordError::Finished`]. When it returns, every event that was accepted is in a
    /// buffer, so a [`Recorder::drain`] after it takes the rest of the trace.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        // A record that saw the flag clear holds its buffer's lock until its event is in
        // the buffer: taking every lock once waits for those.
        let buffers: Vec<Arc<Buffer>> = lock(&self.shared.buffers).clone();
        for buffer in &buffers {
            drop(lock(&buffer.chunks));
        }
    }

    /// Stops recording and returns every recorded event that was not drained, in order.
    ///
    /// Later calls of [`ThreadRecorder::record`] fail with [`RecordError::Finished`]; an
    /// event whose recording overlaps this call is either in the result or refused, never
    /// lost. A second `finish` returns the events recorded after the first one (none).
    /// Fails if an event was refused because of the limit.
    pub fn finish(&self) -> Result<Vec<Event>, RecordError> {
        let _draining = lock(&self.shared.draining);
        self.shared.closed.store(true, Ordering::SeqCst);
        let buffers: Vec<Arc<Buffer>> = std::mem::take(&mut *lock(&self.shared.buffers));
        let mut entries: Vec<Entry> = Vec::new();
        for buffer in &buffers {
            let taken = std::mem::take(&mut *lock(&buffer.chunks));
            entries.reserve(taken.len);
            for chunk in taken.chunks {
                entries.extend(chunk);
            }
        }
        // Every event that took a sequence number did so under a buffer lock that was
        // taken above, or saw the closed flag and took none: the counter is final.
        let seq = self.shared.seq.load(Ordering::SeqCst);
        self.shared
            .drained
            .store(seq.min(self.shared.limit), Ordering::SeqCst);
        self.overflow_error(seq)?;
        Ok(merge(entries))
    }
}

/// Orders entries by sequence number. The input is a concatenation of sorted runs (one
/// per buffer chunk), which the stable sort merges in `O(n log runs)`.
fn merge(mut entries: Vec<Entry>) -> Vec<Event> {
    entries.sort_by_key(|e| e.0);
    debug_assert!(
        entries.windows(2).all(|w| w[0].0 + 1 == w[1].0),
        "recorded sequence numbers have a gap"
    );
    entries.into_iter().map(|e| e.1).collect()
}

/// Records the events of one thread; obtained from [`Recorder::thread`].
///
/// It is `Send` and `Sync`, but meant to be used by the thread it names: the events it
/// records carry that thread id.
pub struct ThreadRecorder {
    shared: Arc<Shared>,
    buffer: Arc<Buffer>,
    thread: u32,
}

impl std::fmt::Debug for ThreadRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadRecorder")
            .field("thread", &self.thread)
            .field("held", &lock(&self.buffer.chunks).len)
            .finish()
    }
}

impl ThreadRecorder {
    /// The runtime's id of the thread whose events this handle records.
    pub fn thread(&self) -> u32 {
        self.thread
    }

    /// Records that this thread performed `op` at `location`.
    ///
    /// Follow the lock-consistency contract of the [module documentation](self): record
    /// `Release` before releasing and `Acquire` after acquiring.
    pub fn record(&self, op: Op, location: Option<LocationId>) -> Result<(), RecordError> {
        let shared = &*self.shared;
        let mut chunks = lock(&self.buffer.chunks);
        // Checked under the buffer lock, which `finish` and `close` take after closing: an
        // event either lands before they look at this buffer or sees the flag.
        if shared.closed.load(Ordering::SeqCst) {
            return Err(RecordError::Finished);
        }
        let seq = shared.seq.fetch_add(1, Ordering::SeqCst);
        if seq >= shared.limit {
            return Err(RecordError::LimitReached {
                limit: shared.limit,
                rejected: seq - shared.limit + 1,
            });
        }
        chunks.push((seq, Event::new(self.thread, op, location)));
        Ok(())
    }
}
