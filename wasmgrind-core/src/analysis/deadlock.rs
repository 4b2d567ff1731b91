//! Deadlock prediction: potential deadlocks found in the lock-order graph of a trace,
//! including deadlocks that this run did not run into.
//!
//! # Algorithm
//!
//! 1. **Lock-order edges.** One pass over the events (in trace order) keeps, per thread,
//!    the locks it holds (with where and when it acquired each), and records an edge
//!    `held -> next` for every lock `held` the thread holds when it *requests* `next`. The
//!    edge is recorded at the `Request` event, with the request's location as `next_at`,
//!    because a thread that deadlocked requests its next lock and never acquires it. An
//!    `Acquire` that follows the thread's request of the same lock adds no second edge;
//!    an `Acquire` without such a request (a `try_lock`, or a trace exported without
//!    requests) records the edges itself, with its own location as `next_at`. Locks need
//!    not be released in reverse order: a release removes the lock wherever it is in the
//!    thread's held list. A thread that requests a lock it already holds (a re-entrant
//!    acquisition) adds no edge.
//!
//!    Every occurrence of an edge carries its thread, `held_at` (where `held` was
//!    acquired), `next_at`, its *guard locks* (the other locks the thread held at that
//!    moment) and its fork/join position: the thread's vector clock when it acquired
//!    `held` and the thread's own clock entry when it requested `next`. The clocks only
//!    change at `Fork` and `Join`, so the occurrences of one edge in a loop collapse into
//!    one *edge group* with a count; the graph's size depends on the program's distinct
//!    edges, guard sets and fork/join phases, not on the trace's length.
//!
//! 2. **Strongly connected components.** Every cycle of the lock graph (locks as nodes)
//!    lies inside one strongly connected component, so [Tarjan's algorithm][tarjan]
//!    (iterative, so deep graphs do not exhaust the stack) splits the graph first, and
//!    locks outside any cycle are never searched.
//!
//! 3. **Cycle search.** Within each component, a depth-first search from every lock `s`
//!    (in ascending order) follows only locks greater than `s` that are not yet on the
//!    path, so every simple cycle is found exactly once, starting with its smallest lock.
//!    Each step chooses a *site* (an edge at given locations) and one of its edge groups,
//!    and drops the choice as soon as the group is incompatible with the groups already
//!    on the path (see below), so only feasible paths are followed; the step that closes
//!    a cycle takes the first group that fits, and a cycle already found is not closed
//!    again. It deepens iteratively: first all cycles of two edges, then of
//!    three, and so on up to [`MAX_CYCLE_LENGTH`], stopping early when no feasible path
//!    could grow any longer. Short cycles, the likely deadlocks, are thus all found
//!    before the step limit can cut the search.
//!
//! # What rules out a cycle
//!
//! A cycle `l1 -> l2 -> ... -> l1` is reported when its edges can be taken by different
//! threads at the same time:
//!
//! - **Distinct threads**: one thread cannot wait for two locks at once, so a thread that
//!   takes `A` then `B` and later `B` then `A` cannot deadlock with itself.
//! - **Disjoint held sets**: two threads cannot hold the same lock at the same time. The
//!   locks an edge's thread holds (`held` and its guard locks) must be disjoint from those
//!   of every other edge of the cycle. In particular a common *guard lock* `G` taken
//!   around both `A -> B` and `B -> A` serializes them and prevents the deadlock.
//! - **Fork/join order**: if all events of one edge (from acquiring `held` to requesting
//!   `next`) happen before all events of another edge by fork/join (for example the first
//!   thread was joined before the second was forked), they can never overlap. Only fork
//!   and join order count: the order in which threads happened to take a lock one after
//!   the other is what the prediction abstracts from, so an inversion in two threads that
//!   this run serialized through a lock is still reported.
//! - **Not the same lock**: a lock's identity ends when its memory does. An `Alloc` or
//!   `Free` of bytes that hold a lock's word makes the next lock at that address a new
//!   node of the graph, so two locks that never existed at the same time (a boxed
//!   `Mutex` dropped and another one allocated in its place, or a lock on a thread's
//!   stack and the next thread's on the same stack memory) form no cycle together.
//!   Reports still name locks by address.
//! - **No lock after all**: a word that lock recognition took for a lock and then found
//!   to be none ([`Op::NotALock`], which the runtime records at the end of a run that
//!   did not deadlock) is no node of the graph: its edges are left out of the search.
//!
//! Each distinct cycle (the same locks and locations, in cycle order) is reported once,
//! with the threads of the first feasible combination of edge groups the search found;
//! once a cycle is found, no other combination for it is tried. Its count is the number
//! of times the cycle was seen, that is how often its least frequent edge (those locks
//! at those locations, by any thread) was taken: two threads that take `A -> B` and
//! `B -> A` three times each, concurrently, give one report with a count of 3.
//!
//! # Limits
//!
//! The number of simple cycles of a graph can grow exponentially with its size, so the
//! search is bounded by two documented constants, and a search that hit one says so in
//! [`DeadlockPrediction`] instead of dropping cycles silently:
//!
//! - [`MAX_CYCLE_LENGTH`]: cycles with more edges (threads) than this are not searched.
//!   [`DeadlockPrediction::cycle_length_limit_hit`] is set when the search could have
//!   continued a path at that length.
//! - [`MAX_SEARCH_STEPS`]: the search stops after this many steps (edge groups tried);
//!   [`DeadlockPrediction::step_limit_hit`] is set. Because the search deepens
//!   iteratively, every cycle shorter than the length it was searching when it stopped
//!   was found. A random trace of 64 threads nesting 2 or 3 of 32 locks in random
//!   orders (1.4 million events) reaches the limit in the search for cycles of three
//!   edges, after finding every feasible cycle of two, in about 1.5 s (release build).
//!
//! The graph itself is bounded by a third: a thread's edges come from the last
//! [`MAX_HELD_LOCKS`] locks it holds ([`DeadlockPrediction::held_limit_hit`]), since each
//! held lock is an edge group with the others as its guards (quadratic in the number held).
//!
//! The prediction is a prediction: a reported cycle is a lock-order inversion between
//! concurrent threads, which can deadlock in some schedule unless the program orders the
//! threads by other means (atomics, condition variables, channels) that the trace does
//! not show as fork or join.
//!
//! [tarjan]: https://en.wikipedia.org/wiki/Tarjan%27s_strongly_connected_components_algorithm

use std::collections::{BTreeMap, BTreeSet};

use crate::location::LocationId;
use crate::trace::export::FastMap;
use crate::trace::{Event, Lock, Op};

use super::{LockEdge, PotentialDeadlock};

/// The longest cycle searched, in edges (each edge is one thread): a deadlock of more
/// threads than this is not reported, and
/// [`DeadlockPrediction::cycle_length_limit_hit`] says whether the search was cut there.
pub const MAX_CYCLE_LENGTH: usize = 16;

/// The most locks a thread's lock-order edges come from: a thread that holds more (a long
/// chain of nested locks) adds edges from the last `MAX_HELD_LOCKS` it took only, and
/// only those count as its guard locks, so that the graph stays small (with every held
/// lock an edge and guard set of its own, a thread holding 1,000 locks made a million
/// edge entries per acquisition). So a cycle through an older lock is not reported, and
/// one that an older common guard lock rules out can be; [`DeadlockPrediction::held_limit_hit`]
/// says that this happened.
pub const MAX_HELD_LOCKS: usize = 64;

/// The most steps the cycle search takes in total before it stops (a step is an edge
/// group tried, or a site checked for closing a cycle); a search that stopped sets
/// [`DeadlockPrediction::step_limit_hit`].
pub const MAX_SEARCH_STEPS: u64 = 10_000_000;

/// An edge of the lock-order graph as the trace showed it: `thread` requested (or,
/// without a request, acquired) `next` while it held `held`, `count` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObservedEdge {
    /// The edge, with its thread and locations.
    pub edge: LockEdge,
    /// How many times the thread took this edge at these locations.
    pub count: u64,
}

/// Everything the predictor found: the potential deadlocks and how complete the search
/// was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadlockPrediction {
    /// The potential deadlocks, one per distinct cycle, ordered by length (number of
    /// edges), then by their smallest lock, then in the order the search found them.
    pub deadlocks: Vec<PotentialDeadlock>,
    /// The distinct lock-order edges (thread, locks and locations), in order of first
    /// appearance.
    pub edges: Vec<ObservedEdge>,
    /// The strongly connected components of the lock graph with more than one lock:
    /// every lock-order cycle, feasible or not, lies within one of them. Each is sorted,
    /// and they are ordered by their smallest lock.
    pub cyclic_locks: Vec<Vec<Lock>>,
    /// Whether the search could have followed a path longer than [`MAX_CYCLE_LENGTH`]
    /// edges: longer cycles, if there are any, are not reported.
    pub cycle_length_limit_hit: bool,
    /// Whether the search stopped after [`MAX_SEARCH_STEPS`] steps: cycles it did not
    /// reach are not reported.
    pub step_limit_hit: bool,
    /// Whether a thread held more than [`MAX_HELD_LOCKS`] locks at once: cycles through
    /// the locks it took before the last `MAX_HELD_LOCKS` are not reported.
    pub held_limit_hit: bool,
}

impl DeadlockPrediction {
    /// Whether the search examined every cycle (no limit was hit).
    pub fn is_complete(&self) -> bool {
        !self.cycle_length_limit_hit && !self.step_limit_hit && !self.held_limit_hit
    }
}

/// The potential deadlocks of `events` (in trace order). A shorthand for
/// [`DeadlockPredictor`]; use [`predict`] to also learn whether the search hit a limit.
pub fn predict_deadlocks(events: &[Event]) -> Vec<PotentialDeadlock> {
    predict(events).deadlocks
}

/// The full prediction for `events` (in trace order): the potential deadlocks, the
/// lock-order edges and whether a search limit was hit.
pub fn predict(events: &[Event]) -> DeadlockPrediction {
    let mut predictor = DeadlockPredictor::new();
    predictor.events(events);
    predictor.finish()
}

/// A lock's identity in the graph: its address in the low 32 bits and, above them, how
/// many times the memory at that address was allocated or freed since the predictor first
/// saw a lock there (see [`lock_address`]).
type LockId = u64;

/// The address of lock `id`.
fn lock_address(id: LockId) -> Lock {
    id as Lock
}

/// A lock the thread holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    lock: LockId,
    /// Where it was acquired.
    at: Option<LocationId>,
    /// The thread's vector clock when it acquired the lock (an index into `snapshots`).
    clock: usize,
}

#[derive(Debug, Default)]
struct ThreadState {
    /// The runtime's id of the thread.
    id: u32,
    /// The thread's vector clock, indexed by dense thread index.
    clock: Vec<u32>,
    /// The snapshot of `clock`, if one was taken since it last changed.
    snapshot: Option<usize>,
    /// The locks it holds, in order of acquisition.
    held: Vec<Held>,
    /// The lock it requested and has not acquired yet, and where it requested it.
    requested: Option<(LockId, Option<LocationId>)>,
}

/// What identifies an edge group: equal keys are the same edge in the same fork/join
/// phase with the same guards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    thread: u32,
    held: LockId,
    held_at: Option<LocationId>,
    next: LockId,
    next_at: Option<LocationId>,
    guards: Box<[LockId]>,
    start_clock: usize,
    end_own: u32,
}

#[derive(Debug)]
struct Group {
    key: GroupKey,
    /// Dense index of the thread.
    index: usize,
    /// Occurrences.
    count: u64,
}

impl Group {
    fn edge(&self) -> LockEdge {
        LockEdge {
            thread: self.key.thread,
            held: lock_address(self.key.held),
            held_at: self.key.held_at,
            next: lock_address(self.key.next),
            next_at: self.key.next_at,
        }
    }
}

/// A streaming deadlock predictor: feed it the events of a trace in order
/// ([`DeadlockPredictor::event`], [`DeadlockPredictor::events`], possibly in chunks),
/// then search for cycles with [`DeadlockPredictor::finish`]. Memory grows with the
/// number of distinct edge groups (see the [module documentation](self)) and with one
/// vector clock (an entry per thread seen so far) per thread and per fork/join phase in
/// which it acquired a lock, not with the number of events.
#[derive(Debug, Default)]
pub struct DeadlockPredictor {
    /// Runtime thread id to dense index.
    thread_index: FastMap<u32, usize>,
    threads: Vec<ThreadState>,
    /// Vector-clock snapshots, shared by the edges taken while a clock did not change.
    snapshots: Vec<Box<[u32]>>,
    groups: Vec<Group>,
    group_ids: FastMap<GroupKey, usize>,
    /// Words that lock recognition found to be no lock ([`Op::NotALock`]): no cycle
    /// passes through them.
    not_locks: BTreeSet<Lock>,
    /// How many times the memory of each lock address seen so far was allocated or freed
    /// since: the generation of the lock at that address (see [`LockId`]).
    generations: BTreeMap<Lock, u32>,
    /// Set when a thread held more than [`MAX_HELD_LOCKS`] locks.
    held_limit_hit: bool,
}

impl DeadlockPredictor {
    /// An empty predictor.
    pub fn new() -> DeadlockPredictor {
        DeadlockPredictor::default()
    }

    /// Feeds `events`, the next events of the trace in order.
    pub fn events(&mut self, events: &[Event]) {
        for e in events {
            self.event(e);
        }
    }

    /// Feeds the next event of the trace. Memory accesses, allocations and frees are
    /// ignored; an [`Op::NotALock`] takes its word out of every cycle.
    #[inline]
    pub fn event(&mut self, e: &Event) {
        // Most events are accesses: they stop here, without a call.
        if !e.op.is_access() {
            self.sync_event(e);
        }
    }

    #[inline(never)]
    fn sync_event(&mut self, e: &Event) {
        match e.op {
            Op::Request { lock } => {
                let t = self.thread(e.thread);
                let lock = self.lock_id(lock);
                self.add_edges(t, lock, e.location);
                self.threads[t].requested = Some((lock, e.location));
            }
            Op::Acquire { lock } => {
                let t = self.thread(e.thread);
                let lock = self.lock_id(lock);
                let request = self.threads[t].requested.take();
                let at = match request {
                    Some((requested, request_at)) if requested == lock => e.location.or(request_at),
                    _ => {
                        self.add_edges(t, lock, e.location);
                        e.location
                    }
                };
                let clock = self.snapshot(t);
                self.threads[t].held.push(Held { lock, at, clock });
            }
            Op::Release { lock } => {
                let t = self.thread(e.thread);
                let held = &mut self.threads[t].held;
                // By address: a lock held while its memory was freed is released too.
                if let Some(i) = held.iter().rposition(|h| lock_address(h.lock) == lock) {
                    held.remove(i);
                }
            }
            Op::Fork { child } => {
                let p = self.thread(e.thread);
                let c = self.thread(child);
                if p != c {
                    let parent = self.threads[p].clock.clone();
                    join_clock(&mut self.threads[c].clock, &parent);
                    self.threads[c].snapshot = None;
                }
                self.threads[p].clock[p] += 1;
                self.threads[p].snapshot = None;
            }
            Op::Join { child } => {
                let p = self.thread(e.thread);
                let c = self.thread(child);
                if p != c {
                    let child_clock = self.threads[c].clock.clone();
                    join_clock(&mut self.threads[p].clock, &child_clock);
                    self.threads[p].snapshot = None;
                    self.threads[c].clock[c] += 1;
                    self.threads[c].snapshot = None;
                }
            }
            Op::End => {
                // A later fork of the id starts a new thread, ordered after this one only
                // by what the trace says.
                self.thread_index.remove(&e.thread);
            }
            Op::NotALock { lock } => {
                self.not_locks.insert(lock);
            }
            Op::Alloc { addr, size } | Op::Free { addr, size } if size > 0 => {
                // The locks in these bytes are gone: the next one at the same address is
                // another lock.
                let last = addr.saturating_add(size - 1);
                for (_, generation) in self.generations.range_mut(addr..=last) {
                    *generation += 1;
                }
            }
            Op::Read { .. }
            | Op::Write { .. }
            | Op::Rmw { .. }
            | Op::Alloc { .. }
            | Op::Free { .. } => {}
        }
    }

    /// The identity of the lock at address `lock` now.
    fn lock_id(&mut self, lock: Lock) -> LockId {
        let generation = *self.generations.entry(lock).or_insert(0);
        LockId::from(generation) << 32 | LockId::from(lock)
    }

    /// The dense index of runtime thread `thread`, registering it on first sight with its
    /// own clock entry at 1.
    fn thread(&mut self, thread: u32) -> usize {
        if let Some(&i) = self.thread_index.get(&thread) {
            return i;
        }
        let i = self.threads.len();
        self.thread_index.insert(thread, i);
        let mut state = ThreadState {
            id: thread,
            ..ThreadState::default()
        };
        state.clock.resize(i + 1, 0);
        state.clock[i] = 1;
        self.threads.push(state);
        i
    }

    /// A snapshot of thread `t`'s current clock.
    fn snapshot(&mut self, t: usize) -> usize {
        if let Some(s) = self.threads[t].snapshot {
            return s;
        }
        let s = self.snapshots.len();
        self.snapshots
            .push(self.threads[t].clock.clone().into_boxed_slice());
        self.threads[t].snapshot = Some(s);
        s
    }

    /// Records the edges from every lock thread `t` holds to `next`.
    fn add_edges(&mut self, t: usize, next: LockId, next_at: Option<LocationId>) {
        let state = &self.threads[t];
        if state.held.is_empty() || state.held.iter().any(|h| h.lock == next) {
            return;
        }
        let thread = state.id;
        let end_own = state.clock[t];
        // The last MAX_HELD_LOCKS locks taken (see there).
        let from = state.held.len().saturating_sub(MAX_HELD_LOCKS);
        if from > 0 {
            self.held_limit_hit = true;
        }
        let state = &self.threads[t];
        let held = &state.held[from..];
        let mut distinct: Vec<LockId> = held.iter().map(|h| h.lock).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut keys = Vec::new();
        for (i, h) in held.iter().enumerate() {
            // A lock held twice (re-entrantly) counts once, from its first acquisition.
            if held[..i].iter().any(|o| o.lock == h.lock) {
                continue;
            }
            let guards: Box<[LockId]> = distinct.iter().copied().filter(|&l| l != h.lock).collect();
            keys.push((
                GroupKey {
                    thread,
                    held: h.lock,
                    held_at: h.at,
                    next,
                    next_at,
                    guards,
                    start_clock: h.clock,
                    end_own,
                },
                t,
            ));
        }
        for (key, index) in keys {
            match self.group_ids.get(&key) {
                Some(&g) => self.groups[g].count += 1,
                None => {
                    self.group_ids.insert(key.clone(), self.groups.len());
                    self.groups.push(Group {
                        key,
                        index,
                        count: 1,
                    });
                }
            }
        }
    }

    /// Searches the lock graph built so far for potential deadlocks. The predictor can
    /// be fed more events afterwards and searched again.
    pub fn finish(&self) -> DeadlockPrediction {
        self.search(MAX_CYCLE_LENGTH, MAX_SEARCH_STEPS)
    }

    /// [`DeadlockPredictor::finish`] with other limits.
    fn search(&self, max_cycle_length: usize, max_steps: u64) -> DeadlockPrediction {
        let mut prediction = DeadlockPrediction {
            edges: self.observed_edges(),
            ..DeadlockPrediction::default()
        };

        // The edge groups by site (locks and locations).
        let mut site_ids: FastMap<SiteKey, usize> = FastMap::default();
        let mut sites: Vec<Site> = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let k = &group.key;
            if self.not_locks.contains(&lock_address(k.held))
                || self.not_locks.contains(&lock_address(k.next))
            {
                continue;
            }
            let key = (k.held, k.held_at, k.next, k.next_at);
            let s = *site_ids.entry(key).or_insert_with(|| {
                sites.push(Site {
                    held: k.held,
                    next: k.next,
                    count: 0,
                    groups: Vec::new(),
                });
                sites.len() - 1
            });
            sites[s].count += group.count;
            sites[s].groups.push(g);
        }

        // The lock graph: locks as dense nodes (in ascending order), with the sites of
        // every ordered pair.
        let locks: Vec<LockId> = sites
            .iter()
            .flat_map(|s| [s.held, s.next])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let node = |l: LockId| {
            locks
                .binary_search(&l)
                .expect("every lock of a site is a node")
        };
        let mut adjacency: Vec<BTreeMap<usize, Vec<usize>>> = vec![BTreeMap::new(); locks.len()];
        for (s, site) in sites.iter().enumerate() {
            adjacency[node(site.held)]
                .entry(node(site.next))
                .or_default()
                .push(s);
        }
        let successors: Vec<Vec<usize>> = adjacency
            .iter()
            .map(|m| m.keys().copied().collect())
            .collect();
        let components = strongly_connected_components(&successors);
        let mut cyclic: Vec<Vec<usize>> = components
            .members
            .into_iter()
            .filter(|m| m.len() > 1)
            .collect();
        for members in &mut cyclic {
            members.sort_unstable();
        }
        cyclic.sort_unstable();

        let mut search = Search {
            predictor: self,
            sites: &sites,
            adjacency: &adjacency,
            component: &components.of,
            path: Vec::new(),
            on_path: vec![false; locks.len()],
            steps: 0,
            max_steps,
            length: 0,
            deeper: false,
            found: FastMap::default(),
            deadlocks: Vec::new(),
            step_limit_hit: false,
        };
        // Iterative deepening: all cycles of two edges first, then of three, and so on, so
        // that the step limit, if it is hit, cuts the longest cycles.
        'search: for length in 2..=max_cycle_length {
            search.length = length;
            search.deeper = false;
            for members in &cyclic {
                for (i, &start) in members.iter().enumerate() {
                    // A cycle of `length` edges has `length` locks, none below `start`.
                    if members.len() - i < length {
                        break;
                    }
                    search.from(start);
                    if search.step_limit_hit {
                        break 'search;
                    }
                }
            }
            if !search.deeper {
                break;
            }
            if length == max_cycle_length {
                prediction.cycle_length_limit_hit = true;
            }
        }

        prediction.step_limit_hit = search.step_limit_hit;
        prediction.held_limit_hit = self.held_limit_hit;
        prediction.deadlocks = search.deadlocks;
        // Stable: within a length and smallest lock, the search's order.
        prediction
            .deadlocks
            .sort_by_key(|d| (d.cycle.len(), d.cycle.first().map(|e| e.held)));
        prediction.cyclic_locks = cyclic
            .iter()
            .map(|m| {
                // Sorted by identity, so by address within a generation; two generations
                // of one address are one address.
                let mut addresses: Vec<Lock> = m.iter().map(|&n| lock_address(locks[n])).collect();
                addresses.sort_unstable();
                addresses.dedup();
                addresses
            })
            .collect();
        prediction
    }

    /// The distinct lock-order edges, in order of first appearance.
    fn observed_edges(&self) -> Vec<ObservedEdge> {
        let mut ids: FastMap<LockEdge, usize> = FastMap::default();
        let mut edges: Vec<ObservedEdge> = Vec::new();
        for group in &self.groups {
            let edge = group.edge();
            match ids.get(&edge) {
                Some(&i) => edges[i].count += group.count,
                None => {
                    ids.insert(edge, edges.len());
                    edges.push(ObservedEdge {
                        edge,
                        count: group.count,
                    });
                }
            }
        }
        edges
    }

    /// Whether every event of group `a` happens before every event of group `b` by
    /// fork/join: `a`'s request of `next` happens before `b`'s acquisition of `held`.
    fn ordered(&self, a: &Group, b: &Group) -> bool {
        let seen = self.snapshots[b.key.start_clock]
            .get(a.index)
            .copied()
            .unwrap_or(0);
        a.key.end_own <= seen
    }

    /// Whether groups `a` and `b` can be two edges of one deadlock.
    fn compatible(&self, a: &Group, b: &Group) -> bool {
        a.index != b.index
            && !holds_common_lock(&a.key, &b.key)
            && !self.ordered(a, b)
            && !self.ordered(b, a)
    }
}

/// Whether the threads of two edge groups hold a lock in common (`held` or a guard).
fn holds_common_lock(a: &GroupKey, b: &GroupKey) -> bool {
    let holds = |k: &GroupKey, l: LockId| k.held == l || k.guards.binary_search(&l).is_ok();
    holds(b, a.held) || a.guards.iter().any(|&l| holds(b, l))
}

/// `into = into ⊔ other`, growing `into` as needed.
fn join_clock(into: &mut Vec<u32>, other: &[u32]) {
    if into.len() < other.len() {
        into.resize(other.len(), 0);
    }
    for (a, &b) in into.iter_mut().zip(other) {
        *a = (*a).max(b);
    }
}

/// What identifies a site: `(held, held_at, next, next_at)`.
type SiteKey = (LockId, Option<LocationId>, LockId, Option<LocationId>);

/// A lock-order edge at given locations, taken by any thread: what identifies an edge
/// of a reported cycle.
struct Site {
    held: LockId,
    next: LockId,
    /// Occurrences, over all its groups.
    count: u64,
    /// Its edge groups, in order of first appearance.
    groups: Vec<usize>,
}

/// The state of the cycle search.
struct Search<'a> {
    predictor: &'a DeadlockPredictor,
    sites: &'a [Site],
    /// For every lock node, its successors and the sites to each.
    adjacency: &'a [BTreeMap<usize, Vec<usize>>],
    /// The strongly connected component of every lock node.
    component: &'a [usize],
    /// The site and edge group of every edge of the current path.
    path: Vec<(usize, usize)>,
    on_path: Vec<bool>,
    steps: u64,
    /// [`MAX_SEARCH_STEPS`], or less in tests.
    max_steps: u64,
    /// The number of edges of the cycles searched in this round.
    length: usize,
    /// Whether a feasible path of `length - 1` edges could be extended by another edge
    /// that does not close it, so that longer cycles may exist.
    deeper: bool,
    /// The cycles found, as their sites in cycle order.
    found: FastMap<Vec<usize>, ()>,
    deadlocks: Vec<PotentialDeadlock>,
    step_limit_hit: bool,
}

impl Search<'_> {
    /// Finds the cycles of `self.length` edges whose smallest lock is node `start`.
    fn from(&mut self, start: usize) {
        self.on_path[start] = true;
        self.extend(start, start);
        self.on_path[start] = false;
    }

    /// Counts a step; false (and the limit flagged) if there are none left.
    fn step(&mut self) -> bool {
        if self.steps >= self.max_steps {
            self.step_limit_hit = true;
            return false;
        }
        self.steps += 1;
        true
    }

    /// Whether edge group `g` is compatible with every group of the path.
    fn fits(&self, g: usize) -> bool {
        let groups = &self.predictor.groups;
        self.path
            .iter()
            .all(|&(_, p)| self.predictor.compatible(&groups[p], &groups[g]))
    }

    /// Extends the path, which ends at lock node `at`, by one edge in every feasible way,
    /// up to cycles of `self.length` edges.
    fn extend(&mut self, start: usize, at: usize) {
        let sites = self.sites;
        let depth = self.path.len();
        for (&next, next_sites) in &self.adjacency[at] {
            if next == start {
                // Only a path of `length - 1` edges is closed; shorter cycles were found
                // in earlier rounds.
                if depth + 1 == self.length {
                    for &s in next_sites {
                        self.close(s);
                        if self.step_limit_hit {
                            return;
                        }
                    }
                }
                continue;
            }
            if next < start
                || self.on_path[next]
                || self.component[next] != self.component[start]
                || (depth + 2 > self.length && self.deeper)
            {
                continue;
            }
            'sites: for &s in next_sites {
                for &g in &sites[s].groups {
                    if !self.step() {
                        return;
                    }
                    if !self.fits(g) {
                        continue;
                    }
                    if depth + 2 > self.length {
                        // Closing a cycle through `next` needs at least two more edges:
                        // a longer cycle may exist, for the next round.
                        self.deeper = true;
                        break 'sites;
                    }
                    self.path.push((s, g));
                    self.on_path[next] = true;
                    self.extend(start, next);
                    self.on_path[next] = false;
                    self.path.pop();
                    if self.step_limit_hit {
                        return;
                    }
                }
            }
        }
    }

    /// Closes the path with site `s` and records the cycle unless it was found before:
    /// with the first of the site's groups that fits.
    fn close(&mut self, s: usize) {
        if !self.step() {
            return;
        }
        let key: Vec<usize> = self.path.iter().map(|&(p, _)| p).chain([s]).collect();
        if self.found.contains_key(&key) {
            return;
        }
        let sites = self.sites;
        for &g in &sites[s].groups {
            if !self.step() {
                return;
            }
            if !self.fits(g) {
                continue;
            }
            let groups = &self.predictor.groups;
            let cycle = self
                .path
                .iter()
                .map(|&(_, p)| groups[p].edge())
                .chain([groups[g].edge()])
                .collect();
            let count = key.iter().map(|&k| sites[k].count).min().unwrap_or(0);
            self.found.insert(key, ());
            self.deadlocks.push(PotentialDeadlock { cycle, count });
            return;
        }
    }
}

/// The strongly connected components of a graph.
struct Components {
    /// The component of every node.
    of: Vec<usize>,
    /// The nodes of every component.
    members: Vec<Vec<usize>>,
}

/// Tarjan's algorithm, iterative: `successors[n]` are the successors of node `n`.
fn strongly_connected_components(successors: &[Vec<usize>]) -> Components {
    const UNVISITED: usize = usize::MAX;
    let n = successors.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut of = vec![UNVISITED; n];
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut next_index = 0;
    // The depth-first search's call stack: a node and how many successors it has visited.
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        calls.push((root, 0));
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut i)) = calls.last_mut() {
            if let Some(&w) = successors[v].get(*i) {
                *i += 1;
                if index[w] == UNVISITED {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let c = members.len();
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    of[w] = c;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                members.push(component);
            }
        }
    }
    Components { of, members }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_of_a_small_graph() {
        // 0 <-> 1, 1 -> 2, 2 <-> 3 <-> 4, 5 alone with a self-loop.
        let succ = vec![vec![1], vec![0, 2], vec![3], vec![2, 4], vec![3], vec![5]];
        let c = strongly_connected_components(&succ);
        assert_eq!(c.of[0], c.of[1]);
        assert_ne!(c.of[1], c.of[2]);
        assert_eq!(c.of[2], c.of[3]);
        assert_eq!(c.of[3], c.of[4]);
        assert_eq!(c.members.len(), 3);
        let mut sizes: Vec<usize> = c.members.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![1, 2, 3]);
    }

    #[test]
    fn the_step_limit_stops_the_search_and_says_so() {
        // Threads 1 and 2 take A then B at two sites, threads 3 and 4 take B then A at two
        // sites, all concurrently: four distinct cycles.
        let (a, b) = (0x100, 0x200);
        let mut events = Vec::new();
        for t in 1..=4u32 {
            let (first, second) = if t <= 2 { (a, b) } else { (b, a) };
            let at = 10 * (t % 2);
            events.push(Event::new(0, Op::Fork { child: t }, None));
            events.push(Event::new(t, Op::Acquire { lock: first }, Some(at)));
            events.push(Event::new(t, Op::Acquire { lock: second }, Some(at + 1)));
            events.push(Event::new(t, Op::Release { lock: second }, None));
            events.push(Event::new(t, Op::Release { lock: first }, None));
        }
        let mut predictor = DeadlockPredictor::new();
        predictor.events(&events);
        let full = predictor.finish();
        assert!(full.is_complete());
        assert_eq!(full.deadlocks.len(), 4);

        // One step per group tried and per site closed: 1 (thread 1's A -> B), then 2
        // per cycle it closes.
        let cut = predictor.search(MAX_CYCLE_LENGTH, 3);
        assert!(cut.step_limit_hit);
        assert!(!cut.cycle_length_limit_hit);
        assert!(!cut.is_complete());
        assert_eq!(cut.deadlocks, full.deadlocks[..1]);
    }

    #[test]
    fn a_long_chain_does_not_exhaust_the_stack() {
        let n = 200_000;
        let succ: Vec<Vec<usize>> = (0..n).map(|i| vec![(i + 1) % n]).collect();
        let c = strongly_connected_components(&succ);
        assert_eq!(c.members.len(), 1);
    }
}
