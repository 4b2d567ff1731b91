//! Checks that a trace is a possible execution.

use super::export::FastMap;
use super::{Event, Lock, Op};

/// A set of thread ids with the fast hasher.
type FastSet = FastMap<u32, ()>;

/// Why a trace cannot be an execution. `index` is the position of the offending event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyError {
    /// A thread acquired a lock that a thread (possibly itself) still held.
    #[error(
        "event {index}: thread {thread} acquires lock {lock:#x} while thread {holder} holds it; \
         the recorder must record a release before releasing and an acquire after acquiring"
    )]
    AcquireHeld {
        /// Position of the event.
        index: usize,
        /// The acquiring thread.
        thread: u32,
        /// The lock.
        lock: Lock,
        /// The thread that held the lock.
        holder: u32,
    },
    /// A thread released a lock it did not hold.
    #[error(
        "event {index}: thread {thread} releases lock {lock:#x}, which {}; \
         only the holder may release a lock",
        holder_text(.holder)
    )]
    ReleaseNotHeld {
        /// Position of the event.
        index: usize,
        /// The releasing thread.
        thread: u32,
        /// The lock.
        lock: Lock,
        /// The thread that held the lock, if any.
        holder: Option<u32>,
    },
    /// A thread that was waiting for a lock did something other than acquiring it.
    #[error(
        "event {index}: thread {thread} requested lock {lock:#x} and is still waiting for it, \
         but does `{op}` instead of acquiring it"
    )]
    RequestInterrupted {
        /// Position of the event.
        index: usize,
        /// The waiting thread.
        thread: u32,
        /// The requested lock.
        lock: Lock,
        /// What the thread did instead.
        op: Op,
    },
    /// A thread forked or joined itself.
    #[error("event {index}: thread {thread} does `{op}` on itself")]
    SelfForkJoin {
        /// Position of the event.
        index: usize,
        /// The thread.
        thread: u32,
        /// The fork or join.
        op: Op,
    },
    /// A thread was forked after it had already run or been forked.
    #[error(
        "event {index}: thread {thread} forks thread {child}, which has already {}; \
         record a fork before starting the thread",
        if *.already_forked { "been forked" } else { "recorded events" }
    )]
    ForkOfStarted {
        /// Position of the event.
        index: usize,
        /// The forking thread.
        thread: u32,
        /// The forked thread.
        child: u32,
        /// Whether the child had been forked before (otherwise it had events).
        already_forked: bool,
    },
    /// A thread was joined twice.
    #[error("event {index}: thread {thread} joins thread {child}, which was already joined")]
    JoinTwice {
        /// Position of the event.
        index: usize,
        /// The joining thread.
        thread: u32,
        /// The joined thread.
        child: u32,
    },
    /// A thread recorded an event after it was joined.
    #[error(
        "event {index}: thread {thread} does `{op}` after it was joined; \
         record a join only after the thread finished"
    )]
    EventAfterJoin {
        /// Position of the event.
        index: usize,
        /// The joined thread.
        thread: u32,
        /// What it did.
        op: Op,
    },
}

fn holder_text(holder: &Option<u32>) -> String {
    match holder {
        Some(h) => format!("thread {h} holds"),
        None => "nobody holds".to_string(),
    }
}

/// Checks that the lock events of `events` are a possible execution:
///
/// - no thread acquires a lock that is held (by another thread or by itself: locks are not
///   reentrant);
/// - only the holder releases a lock;
/// - requests are optional, but a thread that requested a lock does nothing but memory
///   accesses until it acquires that lock (it is blocked). A request still pending at the
///   end of the trace is fine: that is how a deadlocked trace ends.
///
/// Locks still held at the end are fine too. Memory accesses are not checked.
/// [`LockChecker`] checks the same on a trace that comes in chunks.
pub fn check_lock_consistency(events: &[Event]) -> Result<(), ConsistencyError> {
    let mut checker = LockChecker::new();
    checker.events(events);
    checker.result()
}

/// [`check_lock_consistency`] for a trace fed in order, in chunks of any size: it keeps
/// the first problem, with the event's position in the whole trace.
#[derive(Debug, Default)]
pub struct LockChecker {
    holder: FastMap<Lock, u32>,
    pending: FastMap<u32, Lock>,
    /// Position of the next event.
    next: usize,
    error: Option<ConsistencyError>,
}

impl LockChecker {
    /// A checker that has seen no event.
    pub fn new() -> LockChecker {
        LockChecker::default()
    }

    /// Checks `events`, the next events of the trace in order: the same as
    /// [`event`](Self::event) for each, with the count kept once for all of them.
    pub fn events(&mut self, events: &[Event]) {
        let first = self.next;
        self.next = first.saturating_add(events.len());
        // From one event that is not an access to the next, with a plain scan between.
        let mut i = 0;
        while self.error.is_none() {
            let Some(k) = events[i..].iter().position(|e| !e.op.is_access()) else {
                return;
            };
            i += k;
            self.check_event(first.saturating_add(i), &events[i]);
            i += 1;
        }
    }

    /// Checks the next event of the trace. After the first problem the checker only
    /// counts.
    #[inline]
    pub fn event(&mut self, e: &Event) {
        let index = self.next;
        self.next = self.next.saturating_add(1);
        // A memory access neither changes lock state nor interrupts a request: most
        // events stop here, without a call.
        if self.error.is_some() || e.op.is_access() {
            return;
        }
        self.check_event(index, e);
    }

    #[inline(never)]
    fn check_event(&mut self, index: usize, e: &Event) {
        if let Err(err) = self.check(index, e) {
            self.error = Some(err);
        }
    }

    /// The first problem seen so far, if any.
    pub fn result(&self) -> Result<(), ConsistencyError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn check(&mut self, index: usize, e: &Event) -> Result<(), ConsistencyError> {
        let thread = e.thread;
        if let Some(&lock) = self.pending.get(&thread) {
            let fine = matches!(e.op, Op::Acquire { lock: l } if l == lock);
            if !fine {
                return Err(ConsistencyError::RequestInterrupted {
                    index,
                    thread,
                    lock,
                    op: e.op,
                });
            }
        }
        match e.op {
            Op::Request { lock } => {
                self.pending.insert(thread, lock);
            }
            Op::Acquire { lock } => {
                if let Some(&h) = self.holder.get(&lock) {
                    return Err(ConsistencyError::AcquireHeld {
                        index,
                        thread,
                        lock,
                        holder: h,
                    });
                }
                self.holder.insert(lock, thread);
                self.pending.remove(&thread);
            }
            Op::Release { lock } => match self.holder.get(&lock) {
                Some(&h) if h == thread => {
                    self.holder.remove(&lock);
                }
                h => {
                    return Err(ConsistencyError::ReleaseNotHeld {
                        index,
                        thread,
                        lock,
                        holder: h.copied(),
                    })
                }
            },
            _ => {}
        }
        Ok(())
    }
}

/// Checks that the fork and join events of `events` are a possible execution:
///
/// - no thread forks or joins itself;
/// - a thread is forked at most once, and before it records any event (threads that are
///   never forked, such as the main thread, are fine);
/// - a thread is joined at most once, and records no event after it was joined.
///
/// Joining a thread that recorded nothing, or never joining a thread, is fine. A thread
/// id that was joined, or whose thread recorded its [`Op::End`], may be forked again (the
/// runtime reuses the ids of joined and ended threads): from that fork on it names a new
/// thread, to which the rules apply afresh. An ended thread records nothing more.
/// [`ForkJoinChecker`] checks the same on a trace that comes in chunks.
pub fn check_fork_join_consistency(events: &[Event]) -> Result<(), ConsistencyError> {
    let mut checker = ForkJoinChecker::new();
    checker.events(events);
    checker.result()
}

/// [`check_fork_join_consistency`] for a trace fed in order, in chunks of any size: it
/// keeps the first problem, with the event's position in the whole trace.
#[derive(Debug, Default)]
pub struct ForkJoinChecker {
    started: FastSet,
    forked: FastSet,
    joined: FastSet,
    /// The thread of the previous event, if it was checked and no fork or join came
    /// since: consecutive events of one thread then need no lookup.
    checked: Option<u32>,
    /// Position of the next event.
    next: usize,
    error: Option<ConsistencyError>,
}

impl ForkJoinChecker {
    /// A checker that has seen no event.
    pub fn new() -> ForkJoinChecker {
        ForkJoinChecker::default()
    }

    /// Checks `events`, the next events of the trace in order: the same as
    /// [`event`](Self::event) for each, with the count kept once for all of them.
    pub fn events(&mut self, events: &[Event]) {
        let first = self.next;
        self.next = first.saturating_add(events.len());
        // From one event that needs a check to the next, with a plain scan between.
        let mut i = 0;
        while self.error.is_none() {
            let checked = self.checked;
            let Some(k) = events[i..]
                .iter()
                .position(|e| !(e.op.is_access() && checked == Some(e.thread)))
            else {
                return;
            };
            i += k;
            self.check_event(first.saturating_add(i), &events[i]);
            i += 1;
        }
    }

    /// Checks the next event of the trace. After the first problem the checker only
    /// counts.
    #[inline]
    pub fn event(&mut self, e: &Event) {
        let index = self.next;
        self.next = self.next.saturating_add(1);
        if self.error.is_some() {
            return;
        }
        // The usual event: an access by the thread checked last, which can only be
        // wrong if that thread was joined since, and then `checked` was reset.
        if e.op.is_access() && self.checked == Some(e.thread) {
            return;
        }
        self.check_event(index, e);
    }

    #[inline(never)]
    fn check_event(&mut self, index: usize, e: &Event) {
        if let Err(err) = self.check(index, e) {
            self.error = Some(err);
        }
    }

    /// The first problem seen so far, if any.
    pub fn result(&self) -> Result<(), ConsistencyError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn check(&mut self, index: usize, e: &Event) -> Result<(), ConsistencyError> {
        if matches!(e.op, Op::NotALock { .. }) {
            // A verdict of the runtime, not an action of the thread it names.
            return Ok(());
        }
        let thread = e.thread;
        if self.checked != Some(thread) {
            if self.joined.contains_key(&thread) {
                return Err(ConsistencyError::EventAfterJoin {
                    index,
                    thread,
                    op: e.op,
                });
            }
            self.started.insert(thread, ());
            self.checked = Some(thread);
        }
        if e.op.child().is_some() {
            self.checked = None;
        }
        match e.op {
            // An ended thread is done as a joined one is: nothing after it, and its id may
            // be forked again.
            Op::End => {
                self.joined.insert(thread, ());
                self.checked = None;
            }
            Op::Fork { child } | Op::Join { child } if child == thread => {
                return Err(ConsistencyError::SelfForkJoin {
                    index,
                    thread,
                    op: e.op,
                });
            }
            Op::Fork { child } => {
                if self.joined.remove(&child).is_some() {
                    // A reused id: a new thread.
                    self.started.remove(&child);
                    self.forked.remove(&child);
                }
                let already_forked = self.forked.contains_key(&child);
                if already_forked || self.started.contains_key(&child) {
                    return Err(ConsistencyError::ForkOfStarted {
                        index,
                        thread,
                        child,
                        already_forked,
                    });
                }
                self.forked.insert(child, ());
            }
            Op::Join { child } => {
                let first_join = self.joined.insert(child, ()).is_none();
                if !first_join {
                    return Err(ConsistencyError::JoinTwice {
                        index,
                        thread,
                        child,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}
