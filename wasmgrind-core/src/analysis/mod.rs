//! The detectors: data races and potential deadlocks found in a trace, and the reports
//! that present them.
//!
//! - [`race`]: a happens-before data-race detector (vector clocks with FastTrack-style
//!   epochs, byte-exact shadow state).
//! - [`deadlock`]: deadlock prediction on the lock-order graph.
//! - [`report`]: ThreadSanitizer-shaped text and JSON, with demangled function names and,
//!   where the guest has DWARF line tables, `file:line`.
//!
//! [`analyze`] runs both detectors over a trace, [`Analyzer`] over a trace that comes in
//! chunks; the types below are what they find.
//! Every address is a byte address in the guest's memory and every thread a runtime
//! thread id, as in [`Event`].

pub mod deadlock;
pub mod race;
pub mod report;
pub mod symbolize;

use serde::{Deserialize, Serialize};

use crate::location::LocationId;
use crate::trace::Event;

/// What an access in a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    /// A load (or the source of `memory.copy`).
    Read,
    /// A store (or `memory.fill`/`copy`/`init`'s destination).
    Write,
    /// An atomic read-modify-write.
    Rmw,
}

/// One side of a data race.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    /// The runtime's id of the thread that made the access.
    pub thread: u32,
    /// Read, write or read-modify-write.
    pub kind: AccessKind,
    /// The access's first byte.
    pub addr: u32,
    /// Bytes accessed.
    pub width: u32,
    /// Whether the access was atomic.
    pub atomic: bool,
    /// Where, as an index into the trace's location table.
    pub location: Option<LocationId>,
}

/// Two accesses to overlapping bytes by different threads, at least one of them a write
/// and not both atomic, with neither ordered before the other by happens-before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Race {
    /// The lowest byte both accesses touched.
    pub addr: u32,
    /// The later access (in trace order): the one at which the race was detected.
    pub current: Access,
    /// The earlier access it races with.
    pub previous: Access,
    /// How many times a race between these two locations was seen (the report is one).
    pub count: u64,
}

/// One edge of a lock-order cycle: `thread` took `next` while it held `held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LockEdge {
    /// The runtime's id of the thread.
    pub thread: u32,
    /// The lock it held (its address).
    pub held: u32,
    /// Where it acquired `held`.
    pub held_at: Option<LocationId>,
    /// The lock it then requested (its address).
    pub next: u32,
    /// Where it requested (or, without a request event, acquired) `next`.
    pub next_at: Option<LocationId>,
}

/// A potential deadlock: a cycle in the lock-order graph whose edges come from distinct
/// threads, share no guard lock and are not ordered by fork/join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PotentialDeadlock {
    /// The edges, in cycle order: each edge's `next` is the following edge's `held`, and
    /// the last edge's `next` is the first edge's `held`. Starts with the smallest lock.
    pub cycle: Vec<LockEdge>,
    /// How many times this cycle (the same locks and locations) was seen.
    pub count: u64,
}

/// One thread of a live deadlock: it waits for a lock that `holder` holds, or (with
/// `joining`) for thread `holder` to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockedThread {
    /// The runtime's id of the thread.
    pub thread: u32,
    /// The lock it waits for (its address); 0 when it waits in a join.
    pub waiting_on: u32,
    /// Where it requested that lock, or where it waits to join.
    pub requested_at: Option<LocationId>,
    /// The thread that holds the lock, or the thread it joins.
    pub holder: u32,
    /// `Some(holder)` when the thread waits to join `holder` (which can only end after
    /// the cycle is broken) rather than for a lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joining: Option<u32>,
}

/// A deadlock that happened: threads that wait for each other's locks in a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDeadlock {
    /// The threads of the cycle, each waiting for a lock the next one holds.
    pub threads: Vec<BlockedThread>,
}

/// Everything the detectors found in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    /// Data races, one per distinct pair of locations.
    pub races: Vec<Race>,
    /// Potential deadlocks, one per distinct cycle.
    pub potential_deadlocks: Vec<PotentialDeadlock>,
    /// The deadlock the run ended in, if it did.
    pub deadlock: Option<LiveDeadlock>,
    /// Why the search for lock-order cycles stopped before it was complete, if it did
    /// (a limit of [`deadlock`]); more potential deadlocks may exist then.
    #[serde(default)]
    pub deadlock_search_incomplete: Option<String>,
}

impl Findings {
    /// Whether anything was found.
    pub fn is_empty(&self) -> bool {
        self.races.is_empty() && self.potential_deadlocks.is_empty() && self.deadlock.is_none()
    }
}

/// Runs the race detector and the deadlock predictor over `events` (in trace order).
/// [`Analyzer`] does the same for a trace that comes in chunks.
pub fn analyze(events: &[Event]) -> Findings {
    let mut analyzer = Analyzer::new();
    analyzer.events(events);
    analyzer.finish()
}

/// Both detectors, fed a trace in order in chunks of any size (the runtime feeds them
/// each chunk it drains from the recorder and then frees it): the findings are those of
/// [`analyze`] on the whole trace. Memory grows with the detectors' state (shadow memory,
/// vector clocks, lock-order edges), not with the number of events.
#[derive(Debug, Default)]
pub struct Analyzer {
    races: race::RaceDetector,
    deadlocks: deadlock::DeadlockPredictor,
}

impl Analyzer {
    /// An analyzer that has seen no event.
    pub fn new() -> Analyzer {
        Analyzer::default()
    }

    /// Feeds `events`, the next events of the trace in order.
    pub fn events(&mut self, events: &[Event]) {
        // The race detector reads ahead within a chunk.
        self.races.events(events);
        self.deadlocks.events(events);
    }

    /// Feeds the next event of the trace.
    #[inline]
    pub fn event(&mut self, e: &Event) {
        self.races.event(e);
        self.deadlocks.event(e);
    }

    /// What the detectors found in the events fed (the live deadlock is left to the
    /// caller, which saw it).
    pub fn finish(self) -> Findings {
        let prediction = self.deadlocks.finish();
        let mut limits = Vec::new();
        if prediction.cycle_length_limit_hit {
            limits.push(format!(
                "cycles longer than {} locks were not searched (deadlock::MAX_CYCLE_LENGTH)",
                deadlock::MAX_CYCLE_LENGTH
            ));
        }
        if prediction.step_limit_hit {
            limits.push(format!(
                "the search stopped after {} steps (deadlock::MAX_SEARCH_STEPS)",
                deadlock::MAX_SEARCH_STEPS
            ));
        }
        if prediction.held_limit_hit {
            limits.push(format!(
                "a thread held more than {} locks at once, and lock order (and guard locks) \
                 were taken from the last {0} it took only (deadlock::MAX_HELD_LOCKS)",
                deadlock::MAX_HELD_LOCKS
            ));
        }
        Findings {
            races: self.races.finish(),
            potential_deadlocks: prediction.deadlocks,
            deadlock: None,
            deadlock_search_incomplete: (!limits.is_empty()).then(|| limits.join("; ")),
        }
    }
}
