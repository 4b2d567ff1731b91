//! A trace recorder that many threads append to at once.
//!
//! # Design
//!
//! Each thread records through its own [`ThreadRecorder`], obtained once with
//! [`Recorder::thread`] and kept by the caller (in a `thread_local`, or in the per-thread
//! state of the embedding). A `ThreadRecorder` appends to a buffer that only it writes;
//! the buffer's lock is taken by its owner and, briefly, by [`Recorder::snapshot`] and
//! [`Recorder::finish`], so recording never waits for another recording thread. A global
//! atomic sequence number, taken while appending, gives the total order, and `finish`
//! merges the buffers by it.
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
//! A recorder accepts at most its capacity ([`Recorder::DEFAULT_CAPACITY`] unless set with
//! [`Recorder::with_capacity`]) events in total. Each accepted event takes
//! [`Recorder::BYTES_PER_EVENT`] bytes. A thread's buffer grows in chunks whose size
//! doubles from 64 events up to [`Recorder::CHUNK_EVENTS`], so its unused reserve is below
//! 64 events, or below the number of events it holds, and always below `CHUNK_EVENTS`.
//! All buffers together take at most
//! `(accepted + threads × CHUNK_EVENTS) × BYTES_PER_EVENT` bytes, and at most
//! `(2 × accepted + 64 × threads) × BYTES_PER_EVENT`. `snapshot` copies the events it
//! returns; `finish` moves them out and needs about as much again while it merges.
//!
//! An event beyond the capacity is refused with [`RecordError::CapacityExceeded`], counted,
//! and makes `snapshot` and `finish` fail with the same error: events are never dropped
//! silently.
//!
//! # Blocking
//!
//! On WebAssembly the buffer locks are taken by spinning on `try_lock`, never by a blocking
//! wait, so `snapshot` and `finish` may run on a browser's main thread, where
//! `memory.atomic.wait` traps. The critical sections are a push or a copy of one buffer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::location::LocationId;

use super::{Event, Op};

/// Why an event could not be recorded, or why a recorded trace is incomplete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// More events than the capacity were recorded; the excess was refused.
    #[error(
        "the trace recorder's capacity of {capacity} events is exhausted ({rejected} events \
         refused so far), so the trace is incomplete; record a shorter run or raise the \
         capacity (Recorder::with_capacity)"
    )]
    CapacityExceeded {
        /// The recorder's capacity in events.
        capacity: u64,
        /// How many events were refused so far.
        rejected: u64,
    },
    /// An event was recorded after [`Recorder::finish`].
    #[error(
        "an event was recorded after the trace was finished; finish the recorder only after \
         every thread stopped recording"
    )]
    Finished,
}

type Entry = (u64, Event);

/// The smallest chunk a buffer allocates.
const FIRST_CHUNK: usize = 64;

#[derive(Default)]
struct Chunks {
    chunks: Vec<Vec<Entry>>,
    len: usize,
}

impl Chunks {
    fn push(&mut self, entry: Entry) {
        let full = self.chunks.last().is_none_or(|c| c.len() == c.capacity());
        if full {
            let size = self.len.clamp(FIRST_CHUNK, Recorder::CHUNK_EVENTS);
            self.chunks.push(Vec::with_capacity(size));
        }
        // `full` guarantees a last chunk with room.
        if let Some(last) = self.chunks.last_mut() {
            last.push(entry);
        }
        self.len += 1;
    }
}

struct Buffer {
    chunks: Mutex<Chunks>,
}

struct Shared {
    seq: AtomicU64,
    capacity: u64,
    closed: AtomicBool,
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
/// single push or copy).
#[cfg(not(target_family = "wasm"))]
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Collects the events of many threads; cheap to clone (all clones share the trace).
///
/// See the [module documentation](self) for the design, the lock-consistency contract
/// and the memory bound.
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
            .field("capacity", &self.capacity())
            .field("recorded", &self.recorded())
            .field("rejected", &self.rejected())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl Recorder {
    /// The capacity of [`Recorder::new`]: 4,194,304 events (128 MiB of events).
    pub const DEFAULT_CAPACITY: u64 = 1 << 22;

    /// Bytes one recorded event takes in a buffer (its sequence number and the event).
    pub const BYTES_PER_EVENT: usize = std::mem::size_of::<Entry>();

    /// The largest chunk a thread's buffer grows by, in events.
    pub const CHUNK_EVENTS: usize = 4096;

    /// A recorder with [`Recorder::DEFAULT_CAPACITY`].
    pub fn new() -> Recorder {
        Recorder::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A recorder that accepts at most `capacity` events in total.
    pub fn with_capacity(capacity: u64) -> Recorder {
        Recorder {
            shared: Arc::new(Shared {
                seq: AtomicU64::new(0),
                capacity,
                closed: AtomicBool::new(false),
                buffers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The capacity in events.
    pub fn capacity(&self) -> u64 {
        self.shared.capacity
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

    /// How many events were accepted so far.
    pub fn recorded(&self) -> u64 {
        self.shared
            .seq
            .load(Ordering::SeqCst)
            .min(self.shared.capacity)
    }

    /// How many events were refused because the capacity was exhausted.
    pub fn rejected(&self) -> u64 {
        // Every refused event took a sequence number at or above the capacity.
        self.shared
            .seq
            .load(Ordering::SeqCst)
            .saturating_sub(self.shared.capacity)
    }

    /// Whether [`Recorder::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// The error for a trace whose sequence counter reached `seq`.
    fn overflow_error(&self, seq: u64) -> Result<(), RecordError> {
        match seq.saturating_sub(self.shared.capacity) {
            0 => Ok(()),
            rejected => Err(RecordError::CapacityExceeded {
                capacity: self.shared.capacity,
                rejected,
            }),
        }
    }

    /// A copy of the events recorded so far, in order, while threads may go on recording.
    ///
    /// The result is a prefix of the final trace: every event whose sequence number was
    /// taken before this call started, and no later one, so it is as lock-consistent as
    /// the whole trace. Fails if an event was refused for lack of capacity. After
    /// [`Recorder::finish`] the buffers are empty and the snapshot is too.
    pub fn snapshot(&self) -> Result<Vec<Event>, RecordError> {
        let seq = self.shared.seq.load(Ordering::SeqCst);
        self.overflow_error(seq)?;
        let end = seq.min(self.shared.capacity);
        let buffers: Vec<Arc<Buffer>> = lock(&self.shared.buffers).clone();
        let mut entries: Vec<Entry> = Vec::new();
        for buffer in &buffers {
            let chunks = lock(&buffer.chunks);
            for chunk in &chunks.chunks {
                // Entries of one buffer are in sequence order.
                let n = chunk.partition_point(|e| e.0 < end);
                entries.extend_from_slice(&chunk[..n]);
            }
        }
        Ok(merge(entries))
    }

    /// Stops recording and returns every recorded event, in order.
    ///
    /// Later calls of [`ThreadRecorder::record`] fail with [`RecordError::Finished`]; an
    /// event whose recording overlaps this call is either in the result or refused, never
    /// lost. A second `finish` returns the events recorded after the first one (none).
    /// Fails if an event was refused for lack of capacity.
    pub fn finish(&self) -> Result<Vec<Event>, RecordError> {
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
        self.overflow_error(self.shared.seq.load(Ordering::SeqCst))?;
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
            .field("recorded", &lock(&self.buffer.chunks).len)
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
        // Checked under the buffer lock, which `finish` takes after closing: an event
        // either lands before `finish` drains this buffer or sees the flag.
        if shared.closed.load(Ordering::SeqCst) {
            return Err(RecordError::Finished);
        }
        let seq = shared.seq.fetch_add(1, Ordering::SeqCst);
        if seq >= shared.capacity {
            return Err(RecordError::CapacityExceeded {
                capacity: shared.capacity,
                rejected: seq - shared.capacity + 1,
            });
        }
        chunks.push((seq, Event::new(self.thread, op, location)));
        Ok(())
    }
}
