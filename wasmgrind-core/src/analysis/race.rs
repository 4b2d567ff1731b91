//! A happens-before data-race detector: vector clocks with FastTrack-style epochs, over
//! byte-exact shadow memory.
//!
//! [`RaceDetector`] reads the events of a trace in their total order (all at once with
//! [`detect_races`], or as they come with [`RaceDetector::event`] and
//! [`RaceDetector::events`]) and reports every pair of
//! accesses to overlapping bytes, by different threads, at least one of them a write and
//! not both atomic, that no chain of synchronization orders: a [`Race`].
//!
//! # Algorithm
//!
//! Every thread `t` has a *vector clock* `C_t`: for every thread `u`, the last step of `u`
//! that `t` knows to have happened before its own present. `C_t[t]` is `t`'s own step; it
//! grows by one after every event by which `t` lets others know of its past (a release, a
//! fork, an atomic write). An access by `t` is remembered as an *epoch* `c@t` with
//! `c = C_t[t]`, and a remembered access `c@u` happened before the present of `t` exactly
//! when `c <= C_t[u]`: one comparison, whatever the number of threads. This is the idea
//! of FastTrack (Flanagan and Freund, PLDI 2009):
//!
//! - every byte remembers its last **write** as one epoch, and a later write replaces
//!   it (atomic writes, which do not race with each other, are the exception: see
//!   below);
//! - every byte remembers its **reads** as one epoch as long as each read is ordered
//!   after the previous one (the common case: thread-local data, data handed over under
//!   a lock), and *inflates* to a set of epochs, one per thread, only when two reads are
//!   concurrent (shared read-mostly data). A write checks them all and resets them; a
//!   read drops those that happened before it, so the set shrinks again once the
//!   readers have synchronized.
//! - a read or write in the same epoch as the byte's last access by the same thread
//!   (for example a loop that touches the same variable again and again without
//!   synchronizing) changes nothing and costs one comparison.
//!
//! A read races with the byte's last write if that write did not happen before it; a
//! write races with the last write and with every remembered read that did not happen
//! before it. The pair is reported unless both accesses are atomic; afterwards the
//! access updates the byte as if there had been no race, so the analysis goes on and
//! reports later races too.
//!
//! A remembered access is forgotten only when a new access makes it redundant (it
//! happened before the new one, so every later access that races with it races with the
//! new one too) or when it raced with the new one and was reported. Atomics need care
//! here, since a race needs a plain access: an atomic access does not make a plain one of
//! the same kind redundant, so a byte may remember a plain read next to an atomic one,
//! and its last plain write next to the atomic writes after it; and concurrent atomic
//! writes, which do not race, are all remembered, like concurrent reads. So every access
//! that races with an earlier access is reported, unless that earlier access had already
//! been reported racing with something else (FastTrack's guarantee: the first race on
//! every byte is exact). A report names the remembered accesses an access races with,
//! not necessarily every earlier access it races with.
//!
//! # Synchronization
//!
//! These events order the events of different threads (`C_t ⊔= X` joins clock `X` into
//! `t`'s, entry by entry):
//!
//! - **locks**: `Acquire { lock }` joins the lock's clock into the thread's;
//!   `Release { lock }` joins the thread's clock into the lock's and steps the thread.
//!   `Request` orders nothing.
//! - **fork**: the child starts with a copy of its parent's clock, so everything the
//!   parent did before the fork happened before the child's first event; the parent steps.
//! - **join**: the joiner joins the child's clock, so everything the child did happened
//!   before the join. A later fork of the same runtime id starts a *new* thread (a new
//!   incarnation) with its own clock: what the earlier one did is ordered before its join
//!   only, not before the new one (unless the forking thread knew of the join).
//! - **atomics** are sequentially consistent: an atomic write is a release on its
//!   address, an atomic read an acquire and a read-modify-write (`Rmw`) both. Each
//!   address of an atomic write has a clock, keyed by the access's `addr` alone (the width
//!   is ignored): an atomic read or `Rmw` at that address joins it before its access, an
//!   atomic write or `Rmw` joins its thread's clock into it after its access and steps.
//!
//! An `Rmw` is one event that both reads and writes: for races it is an atomic write (it
//! races with plain accesses, never with atomic ones). `Alloc` and `Free` make their
//! bytes fresh: no access before them is remembered there, and the atomic clocks of their
//! addresses are dropped, so memory reused by another thread after the allocator handed
//! it back is never reported.
//!
//! A thread that appears without a fork (the main thread) starts knowing nothing.
//!
//! # Reports
//!
//! A race is reported once per unordered pair of locations (`None` counts as a location
//! of its own), at its first detection, with `addr` the lowest byte both accesses touched;
//! `count` is the number of accesses at which a race between these two locations was
//! detected (an access that races with several remembered accesses of the same location
//! pair counts once). Reports come in order of first detection.
//!
//! # Shadow memory
//!
//! The shadow state is byte-exact: every byte of the guest's memory that was accessed has
//! a *cell* of 8 bytes, its last write and its reads, each a 32-bit handle:
//!
//! - `0`: nothing remembered;
//! - a *record* (the top bit clear): one access, 32 bytes with its epoch, runtime thread,
//!   address, width, location and kind, shared by every byte it covers and counted by
//!   reference (records no cell names any more are reused), so that a 4-byte access
//!   costs one record, not four;
//! - a *group* (the top bit set): several accesses, each 28 bytes (a record without the
//!   count), sorted by thread: the reads of a byte read concurrently, or a plain write
//!   and the atomic writes after it. A group, too, is shared by the bytes it covers.
//!
//! Cells live in pages of 64 KiB of memory (one WebAssembly page, 512 KiB of cells), in a
//! table indexed by `addr >> 16`; a page is allocated zeroed when an access first touches
//! it. An access walks its bytes as runs of equal cells and handles each run once: an
//! aligned access whose bytes share their history (the usual case) is one step, and a
//! `memory.fill` of 64 KiB is a scan of its cells plus one step per run. A page also has
//! one bit per 64 bytes that is clear when all their cells are fresh, so that fresh
//! memory (never touched, or allocated or freed since) is skipped without reading its
//! cells: filling a newly allocated block writes its cells once. Accesses of different
//! widths to overlapping bytes are compared byte by byte: an 8-byte write and a 4-byte
//! read of its upper half share exactly those four cells.
//!
//! The usual access takes a fast path: a plain access whose bytes share one cell that
//! names one access of the same thread, of the same kind, in the same epoch (a loop over
//! thread-local data) changes nothing, and is recognized from that cell and the epoch of
//! its record alone. The epochs of the records are kept apart from them too, eight bytes
//! each, and the epoch of the thread of the previous plain access is kept at hand until
//! an event other than a plain access comes.
//!
//! Vector clocks are indexed by thread *slot*, not by runtime id. A fork reuses the slot
//! of a joined thread when the forking thread knows of that join (it happened before the
//! fork), continuing that slot's clock; otherwise it takes a new slot. A program that
//! starts and joins threads one after the other therefore uses a few slots, not one per
//! thread.
//!
//! # Memory
//!
//! - 8 bytes per byte (and 128 bytes) of each 64 KiB page any access touched, plus 24
//!   bytes per page of the address space up to the highest page touched;
//! - 40 bytes per record that a cell still names (at most one per access event): 32 for
//!   the record, 8 for its epoch; 28 bytes per group entry (at most two per thread and
//!   group);
//! - 4 bytes per thread slot for every vector clock: one per live thread, per lock and per
//!   address an atomic write or `Rmw` used;
//! - 4 bytes per runtime thread id up to the largest one below 2^22 seen (larger ids go to
//!   a hash map).
//!
//! # Limits
//!
//! - Clocks are 32-bit: a thread slot must step fewer than 2^32 times (each release,
//!   fork and atomic write steps once), and there are fewer than 2^31 thread slots.
//! - Atomics synchronize per address, not per byte: a 1-byte atomic read inside a
//!   4-byte atomic write at another address does not acquire it (they still never race).
//! - Only the happens-before order of *this* trace is used: a race that another schedule
//!   would show is not predicted.
//! - Accesses past the end of the 32-bit address space are cut at 2^32.

use std::mem;

#[cfg(test)]
use std::collections::HashMap;

use crate::location::LocationId;
use crate::trace::export::FastMap;
use crate::trace::{Event, Op};

use super::{Access, AccessKind, Race};

/// Address bits below the page number: one shadow page per 64 KiB of memory.
const PAGE_BITS: u32 = 16;
/// Bytes of memory per shadow page.
const PAGE_BYTES: usize = 1 << PAGE_BITS;
/// Runtime thread ids below this are mapped with a flat table, larger ones with a map.
const DIRECT_IDS: u32 = 1 << 22;
/// "No slot" in the flat table of thread ids.
const NO_SLOT: u32 = u32::MAX;
/// The tag of a handle that names a group rather than a record.
const GROUP: u32 = 1 << 31;
/// How many of the most recently joined slots a fork looks at for one to reuse.
const REUSE_SCAN: usize = 16;

/// Record flags: the kind in the low two bits (0 read, 1 write, 2 read-modify-write).
const KIND_MASK: u8 = 3;
/// Record flag: the access was atomic.
const ATOMIC: u8 = 4;
/// Record flag: the access has a location.
const HAS_LOCATION: u8 = 8;

/// Streaming happens-before race detection; see the [module documentation](self).
///
/// Feed it every event of a trace in trace order with [`event`](Self::event), then take
/// the races with [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct RaceDetector {
    threads: Threads,
    locks: FastMap<u32, Vec<u32>>,
    shadow: Shadow,
    heap: Heap,
    reports: Reports,
    /// The runtime id of the thread of the last plain access and its [`plain_epoch`]:
    /// what the same-epoch test of the next access needs when it is by the same thread
    /// (the usual case), without the lookups. Only plain accesses keep it; every other
    /// event, which may step a clock or map an id to another slot, clears it.
    hot: Option<(u32, u64)>,
}

/// The races of `events` (a whole trace in trace order), in order of first detection.
pub fn detect_races(events: &[Event]) -> Vec<Race> {
    let mut detector = RaceDetector::new();
    detector.events(events);
    detector.finish()
}

/// How many events [`RaceDetector::events`] looks ahead.
const BATCH: usize = 16;

impl RaceDetector {
    /// A detector that has seen no event.
    pub fn new() -> RaceDetector {
        RaceDetector::default()
    }

    /// Processes the next event of the trace.
    #[inline]
    pub fn event(&mut self, e: &Event) {
        match e.op {
            Op::Read {
                addr,
                width,
                atomic: false,
            } => {
                if !self.same_epoch(e.thread, addr, width, false) {
                    self.access(e, addr, width, AccessKind::Read, false);
                }
            }
            Op::Write {
                addr,
                width,
                atomic: false,
            } => {
                if !self.same_epoch(e.thread, addr, width, true) {
                    self.access(e, addr, width, AccessKind::Write, false);
                }
            }
            _ => {
                self.hot = None;
                self.sync_event(e);
            }
        }
    }

    /// Every event but a plain access.
    #[inline(never)]
    fn sync_event(&mut self, e: &Event) {
        match e.op {
            Op::Request { .. } => {}
            Op::Acquire { lock } => {
                let t = self.threads.slot(e.thread);
                if let Some(l) = self.locks.get(&lock) {
                    vc_join(&mut self.threads.slots[t as usize].vc, l);
                }
            }
            Op::Release { lock } => {
                let t = self.threads.slot(e.thread);
                let l = self.locks.entry(lock).or_default();
                vc_join(l, &self.threads.slots[t as usize].vc);
                self.threads.tick(t);
            }
            Op::Read {
                addr,
                width,
                atomic,
            } => self.access(e, addr, width, AccessKind::Read, atomic),
            Op::Write {
                addr,
                width,
                atomic,
            } => self.access(e, addr, width, AccessKind::Write, atomic),
            Op::Rmw { addr, width } => self.access(e, addr, width, AccessKind::Rmw, true),
            Op::Alloc { addr, size } | Op::Free { addr, size } => {
                self.shadow.reset(&mut self.heap, addr, size);
            }
            Op::Fork { child } => self.threads.fork(e.thread, child),
            Op::Join { child } => self.threads.join(e.thread, child),
            Op::End => self.threads.end(e.thread),
            Op::NotALock { .. } => {}
        }
    }

    /// Processes the next events of the trace, in order: the same as calling
    /// [`event`](Self::event) for each, but faster on long chunks. It looks a few events
    /// ahead and first loads the shadow state of their accesses, all at once, so that
    /// the processor waits for those memory loads together rather than one after the
    /// other.
    pub fn events(&mut self, events: &[Event]) {
        for batch in events.chunks(BATCH) {
            if batch.len() == BATCH {
                self.warm(batch);
            }
            for e in batch {
                self.event(e);
            }
        }
    }

    /// Loads the cells of the first bytes of the accesses of `batch`, then the epochs of
    /// the records they name (what the fast path of the usual access reads), without
    /// changing anything: a prefetch in plain code.
    fn warm(&self, batch: &[Event]) {
        let mut cells = [0u64; BATCH];
        for (cell, e) in cells.iter_mut().zip(batch) {
            if let Op::Read { addr, .. } | Op::Write { addr, .. } | Op::Rmw { addr, .. } = e.op {
                if let Some(Some(page)) = self.shadow.pages.get((addr >> PAGE_BITS) as usize) {
                    *cell = page.cells[addr as usize & (PAGE_BYTES - 1)];
                }
            }
        }
        let mut sum = 0u64;
        for cell in cells {
            for h in [cell as u32, (cell >> 32) as u32] {
                if h & GROUP == 0 {
                    if let Some(&epoch) = self.heap.epochs.get(h as usize) {
                        sum = sum.wrapping_add(epoch);
                    }
                }
            }
        }
        std::hint::black_box(sum);
    }

    /// The races found so far, in order of first detection (counts may still grow).
    pub fn races(&self) -> &[Race] {
        &self.reports.races
    }

    /// The races found, in order of first detection.
    pub fn finish(self) -> Vec<Race> {
        self.reports.races
    }

    /// Whether a plain access of `width` bytes at `addr` by thread `thread` (a write if
    /// `write`) changes nothing, by the fast path of the usual case: its bytes, all in one
    /// shadow page, share one cell, whose last write (for a write) or read (for a read)
    /// is one plain access of the same thread in the same epoch. Such an access is
    /// redundant (the same-epoch rule of [`Heap::read`] and [`Heap::write`], which would
    /// return the cell unchanged; its chunks are dirty already, since the cell is not 0),
    /// so the caller skips it. `false` means that the full [`access`](Self::access) must
    /// run (it may still find the access redundant).
    #[inline(always)]
    fn same_epoch(&mut self, thread: u32, addr: u32, width: u32, write: bool) -> bool {
        let epoch = match self.hot {
            Some((id, epoch)) if id == thread => epoch,
            _ => {
                let Some(t) = self.threads.lookup(thread) else {
                    return false;
                };
                let epoch = plain_epoch(t, vc_get(&self.threads.slots[t as usize].vc, t));
                self.hot = Some((thread, epoch));
                epoch
            }
        };
        let off = addr as usize & (PAGE_BYTES - 1);
        let width = width as usize;
        if width == 0 || width > 16 || off + width > PAGE_BYTES {
            return false;
        }
        let Some(Some(page)) = self.shadow.pages.get((addr >> PAGE_BITS) as usize) else {
            return false;
        };
        let cells = &page.cells[off..off + width];
        let old = cells[0];
        let h = if write {
            old as u32
        } else {
            (old >> 32) as u32
        };
        if h == 0 || h & GROUP != 0 {
            return false;
        }
        self.heap.epochs[h as usize] == epoch && cells.iter().all(|&c| c == old)
    }

    #[inline(never)]
    fn access(&mut self, e: &Event, addr: u32, width: u32, kind: AccessKind, atomic: bool) {
        if width == 0 {
            return;
        }
        let t = self.threads.slot(e.thread);
        if atomic && kind != AccessKind::Write {
            // Acquire: what the atomic writes to this address released.
            if let Some(l) = self.shadow.sync(addr) {
                vc_join(&mut self.threads.slots[t as usize].vc, l);
            }
        }
        let vc = &self.threads.slots[t as usize].vc[..];
        let kind_flag = match kind {
            AccessKind::Read => 0,
            AccessKind::Write => 1,
            AccessKind::Rmw => 2,
        };
        let mut cur = Cur {
            acc: Acc {
                slot: t,
                clock: vc[t as usize],
                thread: e.thread,
                addr,
                width,
                location: e.location.unwrap_or(0),
                flags: kind_flag
                    | if atomic { ATOMIC } else { 0 }
                    | if e.location.is_some() {
                        HAS_LOCATION
                    } else {
                        0
                    },
            },
            kind,
            atomic,
            write: kind != AccessKind::Read,
            rec: 0,
        };
        self.reports.begin_access();
        self.shadow
            .access(&mut self.heap, &mut self.reports, &mut cur, vc);
        if atomic && kind != AccessKind::Read {
            // Release: this access and everything before it.
            let l = self.shadow.sync_mut(addr);
            vc_join(l, &self.threads.slots[t as usize].vc);
            self.threads.tick(t);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Vector clocks: `Vec<u32>` indexed by slot, entries past the end are 0.

#[inline]
fn vc_get(vc: &[u32], slot: u32) -> u32 {
    vc.get(slot as usize).copied().unwrap_or(0)
}

fn vc_join(into: &mut Vec<u32>, from: &[u32]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, &b) in into.iter_mut().zip(from) {
        *a = (*a).max(b);
    }
}

fn vc_set(vc: &mut Vec<u32>, slot: u32, value: u32) {
    let i = slot as usize;
    if vc.len() <= i {
        vc.resize(i + 1, 0);
    }
    vc[i] = value;
}

// ---------------------------------------------------------------------------------------
// Threads.

/// A thread slot: the vector clock of the thread that uses it now.
#[derive(Debug, Default)]
struct Slot {
    /// The clock; empty once the thread was joined.
    vc: Vec<u32>,
    /// Own clock value at the join of the last thread that used the slot (0 if none).
    end: u32,
}

#[derive(Debug, Default)]
struct Threads {
    slots: Vec<Slot>,
    /// Slot of each runtime id below [`DIRECT_IDS`], [`NO_SLOT`] if none.
    direct: Vec<u32>,
    /// Slot of each larger runtime id.
    other: FastMap<u32, u32>,
    /// Slots of joined threads, most recently joined last.
    dead: Vec<u32>,
}

impl Threads {
    #[inline]
    fn lookup(&self, id: u32) -> Option<u32> {
        if id < DIRECT_IDS {
            match self.direct.get(id as usize) {
                Some(&s) if s != NO_SLOT => Some(s),
                _ => None,
            }
        } else {
            self.other.get(&id).copied()
        }
    }

    fn map(&mut self, id: u32, slot: Option<u32>) {
        if id < DIRECT_IDS {
            let i = id as usize;
            if self.direct.len() <= i {
                self.direct.resize(i + 1, NO_SLOT);
            }
            self.direct[i] = slot.unwrap_or(NO_SLOT);
        } else {
            match slot {
                Some(s) => self.other.insert(id, s),
                None => self.other.remove(&id),
            };
        }
    }

    /// The slot of thread `id`; a thread seen for the first time without a fork gets a
    /// new slot and knows nothing.
    #[inline]
    fn slot(&mut self, id: u32) -> u32 {
        match self.lookup(id) {
            Some(s) => s,
            None => self.first_event(id),
        }
    }

    #[cold]
    fn first_event(&mut self, id: u32) -> u32 {
        let s = self.new_slot();
        vc_set(&mut self.slots[s as usize].vc, s, 1);
        self.map(id, Some(s));
        s
    }

    fn new_slot(&mut self) -> u32 {
        let s = u32::try_from(self.slots.len())
            .ok()
            .filter(|&s| s < GROUP)
            .expect("fewer than 2^31 thread slots");
        self.slots.push(Slot::default());
        s
    }

    #[inline]
    fn tick(&mut self, t: u32) {
        self.slots[t as usize].vc[t as usize] += 1;
    }

    fn fork(&mut self, parent: u32, child: u32) {
        let p = self.slot(parent);
        if self.lookup(child) == Some(p) {
            return; // a thread cannot fork itself
        }
        let pvc = &self.slots[p as usize].vc;
        let reusable = self
            .dead
            .iter()
            .rev()
            .take(REUSE_SCAN)
            .position(|&s| vc_get(pvc, s) >= self.slots[s as usize].end);
        let s = match reusable {
            Some(i) => self.dead.remove(self.dead.len() - 1 - i),
            None => self.new_slot(),
        };
        let mut vc = mem::take(&mut self.slots[s as usize].vc);
        vc.clone_from(&self.slots[p as usize].vc);
        let start = self.slots[s as usize].end + 1;
        vc_set(&mut vc, s, start);
        self.slots[s as usize].vc = vc;
        // A live thread of the same id (a fork of a started thread, which a consistent
        // trace does not have) keeps its slot but is not reachable any more.
        self.map(child, Some(s));
        self.tick(p);
    }

    /// Thread `thread` ended without a join: its slot may serve a later thread that
    /// happens after its end (see `fork`), and its id names no thread until forked again.
    fn end(&mut self, thread: u32) {
        let Some(c) = self.lookup(thread) else {
            return;
        };
        let mut cvc = mem::take(&mut self.slots[c as usize].vc);
        self.slots[c as usize].end = vc_get(&cvc, c);
        cvc.clear();
        self.slots[c as usize].vc = cvc;
        self.dead.push(c);
        self.map(thread, None);
    }

    fn join(&mut self, joiner: u32, child: u32) {
        let j = self.slot(joiner);
        let Some(c) = self.lookup(child) else {
            return;
        };
        if c == j {
            return; // a thread cannot join itself
        }
        let mut cvc = mem::take(&mut self.slots[c as usize].vc);
        vc_join(&mut self.slots[j as usize].vc, &cvc);
        self.slots[c as usize].end = vc_get(&cvc, c);
        cvc.clear();
        self.slots[c as usize].vc = cvc;
        self.dead.push(c);
        self.map(child, None);
    }
}

// ---------------------------------------------------------------------------------------
// Remembered accesses, records and groups.

/// One remembered access: its epoch and what a report says about it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Acc {
    slot: u32,
    clock: u32,
    thread: u32,
    addr: u32,
    width: u32,
    location: LocationId,
    flags: u8,
}

impl Acc {
    /// `slot << 1 | atomic`: the order of a group.
    #[inline]
    fn key(&self) -> u32 {
        self.slot << 1 | u32::from(self.atomic())
    }

    #[inline]
    fn atomic(&self) -> bool {
        self.flags & ATOMIC != 0
    }

    #[inline]
    fn is_read(&self) -> bool {
        self.flags & KIND_MASK == 0
    }

    /// Whether this access happened before the present of a thread with clock `vc`.
    #[inline]
    fn before(&self, vc: &[u32]) -> bool {
        self.clock <= vc_get(vc, self.slot)
    }

    fn access(&self) -> Access {
        Access {
            thread: self.thread,
            kind: match self.flags & KIND_MASK {
                0 => AccessKind::Read,
                1 => AccessKind::Write,
                _ => AccessKind::Rmw,
            },
            addr: self.addr,
            width: self.width,
            atomic: self.atomic(),
            location: (self.flags & HAS_LOCATION != 0).then_some(self.location),
        }
    }
}

/// An access remembered by cells, with the number of cells that name it. Aligned so
/// that no record straddles two cache lines.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
struct Rec {
    acc: Acc,
    refs: u32,
}

/// Several remembered accesses of the same bytes, sorted by key, no key twice.
#[derive(Debug, Default)]
struct Group {
    /// Cells that name this group.
    refs: u32,
    entries: Vec<Acc>,
}

impl Group {
    #[inline]
    fn find(&self, key: u32) -> Option<&Acc> {
        self.entries
            .binary_search_by_key(&key, Acc::key)
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// The access being processed.
struct Cur {
    acc: Acc,
    kind: AccessKind,
    atomic: bool,
    write: bool,
    /// Its record, once one was needed (0 before).
    rec: u32,
}

impl Cur {
    fn access(&self) -> Access {
        Access {
            thread: self.acc.thread,
            kind: self.kind,
            addr: self.acc.addr,
            width: self.acc.width,
            atomic: self.atomic,
            location: (self.acc.flags & HAS_LOCATION != 0).then_some(self.acc.location),
        }
    }
}

/// The epoch of a plain access of thread slot `slot` at clock `clock`, as
/// [`Heap::epochs`] holds it.
#[inline]
fn plain_epoch(slot: u32, clock: u32) -> u64 {
    u64::from(slot) << 32 | u64::from(clock)
}

/// Records and groups, with free lists; handle 0 is never used.
#[derive(Debug)]
struct Heap {
    recs: Vec<Rec>,
    /// The epoch of each record, [`plain_epoch`] of its slot and clock with the top bit
    /// set if it was atomic (slots are below 2^31): what the same-epoch test of the usual
    /// access reads, eight records to a cache line rather than two.
    epochs: Vec<u64>,
    free_recs: Vec<u32>,
    groups: Vec<Group>,
    free_groups: Vec<u32>,
    /// Entries being collected for a new group.
    scratch: Vec<Acc>,
}

impl Default for Heap {
    fn default() -> Heap {
        Heap {
            recs: vec![Rec::default()],
            epochs: vec![0],
            free_recs: Vec::new(),
            groups: Vec::new(),
            free_groups: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl Heap {
    /// The record of the current access, made on first use (with no reference yet).
    /// Callers release what the access replaces first, so that the record just freed,
    /// still in the cache, is the one reused.
    #[inline]
    fn cur_rec(&mut self, cur: &mut Cur) -> u32 {
        if cur.rec == 0 {
            let rec = Rec {
                acc: cur.acc,
                refs: 0,
            };
            let epoch =
                plain_epoch(cur.acc.slot, cur.acc.clock) | if cur.atomic { 1 << 63 } else { 0 };
            cur.rec = match self.free_recs.pop() {
                Some(i) => {
                    self.recs[i as usize] = rec;
                    self.epochs[i as usize] = epoch;
                    i
                }
                None => {
                    let i = u32::try_from(self.recs.len())
                        .ok()
                        .filter(|&i| i < GROUP)
                        .expect("fewer than 2^31 live records");
                    self.recs.push(rec);
                    self.epochs.push(epoch);
                    i
                }
            };
        }
        cur.rec
    }

    #[inline]
    fn release_rec(&mut self, r: u32, n: u32) {
        let rec = &mut self.recs[r as usize];
        rec.refs -= n;
        if rec.refs == 0 {
            self.free_recs.push(r);
        }
    }

    fn release_group(&mut self, g: u32, n: u32) {
        let group = &mut self.groups[g as usize];
        group.refs -= n;
        if group.refs == 0 {
            group.entries.clear();
            self.free_groups.push(g);
        }
    }

    /// Drops `n` references to handle `h`.
    #[inline]
    fn release(&mut self, h: u32, n: u32) {
        if h == 0 {
        } else if h & GROUP == 0 {
            self.release_rec(h, n);
        } else {
            self.release_group(h & !GROUP, n);
        }
    }

    /// A new group of `entries` (sorted by key) named by `refs` cells.
    fn new_group(&mut self, refs: u32, entries: &[Acc]) -> u32 {
        let g = match self.free_groups.pop() {
            Some(g) => g,
            None => {
                let g = u32::try_from(self.groups.len())
                    .ok()
                    .filter(|&g| g < GROUP)
                    .expect("fewer than 2^31 groups");
                self.groups.push(Group::default());
                g
            }
        };
        let group = &mut self.groups[g as usize];
        group.refs = refs;
        group.entries.extend_from_slice(entries);
        g
    }

    /// Group `g` for the `n` cells of the current run to change: `g` itself if no other
    /// cell names it, otherwise a copy for them.
    fn unshare(&mut self, g: u32, n: u32) -> u32 {
        if self.groups[g as usize].refs == n {
            return g;
        }
        let entries = mem::take(&mut self.groups[g as usize].entries);
        let copy = self.new_group(n, &entries);
        self.groups[g as usize].entries = entries;
        self.groups[g as usize].refs -= n;
        copy
    }

    /// Reports the races of the current access with every access handle `h` remembers.
    #[inline]
    fn check(&self, reports: &mut Reports, cur: &Cur, vc: &[u32], h: u32) {
        if h == 0 {
        } else if h & GROUP == 0 {
            let p = &self.recs[h as usize].acc;
            if !p.before(vc) {
                conflict(reports, cur, p);
            }
        } else {
            for p in &self.groups[(h & !GROUP) as usize].entries {
                if !p.before(vc) {
                    conflict(reports, cur, p);
                }
            }
        }
    }

    /// The writes that handle `w` remembers which an atomic write by the thread with
    /// clock `vc` does not make redundant, into `self.scratch`: the plain write (it still
    /// races with atomic accesses that the atomic write does not race with) and the
    /// atomic writes that did not happen before it.
    fn kept_writes(&mut self, vc: &[u32], w: u32) {
        self.scratch.clear();
        let keep = |p: &Acc| !p.atomic() || !p.before(vc);
        if w == 0 {
        } else if w & GROUP == 0 {
            let p = &self.recs[w as usize].acc;
            if keep(p) {
                self.scratch.push(*p);
            }
        } else {
            let entries = &self.groups[(w & !GROUP) as usize].entries;
            self.scratch.extend(entries.iter().filter(|p| keep(p)));
        }
    }

    /// The new cell of a run of `n` cells equal to `old` that the read `cur` covers.
    #[inline]
    fn read(&mut self, reports: &mut Reports, cur: &mut Cur, vc: &[u32], old: u64, n: u32) -> u64 {
        let w = old as u32;
        let r = (old >> 32) as u32;
        let (slot, clock) = (cur.acc.slot, cur.acc.clock);
        // Same epoch as a read of this thread that it remembers: nothing new.
        if r != 0 {
            if r & GROUP == 0 {
                let p = &self.recs[r as usize].acc;
                if p.slot == slot && p.clock == clock && (cur.atomic || !p.atomic()) {
                    return old;
                }
            } else {
                let g = &self.groups[(r & !GROUP) as usize];
                if g.find(slot << 1).is_some_and(|p| p.clock == clock)
                    || (cur.atomic && g.find(slot << 1 | 1).is_some_and(|p| p.clock == clock))
                {
                    return old;
                }
            }
        }
        self.check(reports, cur, vc, w);
        let new_r = if r == 0 {
            let id = self.cur_rec(cur);
            self.recs[id as usize].refs += n;
            id
        } else if r & GROUP == 0 {
            let p = self.recs[r as usize].acc;
            self.release_rec(r, n);
            // An earlier read is forgotten if every write that races with it races with
            // this one too: it happened before, and it was atomic or this one is plain.
            if p.before(vc) && (!cur.atomic || p.atomic()) {
                let id = self.cur_rec(cur);
                self.recs[id as usize].refs += n;
                id
            } else {
                let pair = if p.key() < cur.acc.key() {
                    [p, cur.acc]
                } else {
                    [cur.acc, p]
                };
                GROUP | self.new_group(n, &pair)
            }
        } else {
            let g = self.unshare(r & !GROUP, n);
            if self.insert(g, cur, vc) {
                GROUP | g
            } else {
                // The read made the others redundant: back to one record.
                self.release_group(g, n);
                let id = self.cur_rec(cur);
                self.recs[id as usize].refs += n;
                id
            }
        };
        u64::from(w) | u64::from(new_r) << 32
    }

    /// Puts the read `cur` by the thread with clock `vc` into read group `g`, dropping
    /// the reads it makes redundant (those that happened before it, if they were atomic
    /// or it is plain: the thread's own earlier reads, and often those of threads it
    /// synchronized with since); whether the group still has other entries.
    fn insert(&mut self, g: u32, cur: &Cur, vc: &[u32]) -> bool {
        let entries = &mut self.groups[g as usize].entries;
        entries.retain(|p| !(p.before(vc) && (!cur.atomic || p.atomic())));
        let key = cur.acc.key();
        let at = entries.partition_point(|p| p.key() < key);
        entries.insert(at, cur.acc);
        entries.len() > 1
    }

    /// The new cell of a run of `n` cells equal to `old` that the write or
    /// read-modify-write `cur` covers.
    #[inline]
    fn write(&mut self, reports: &mut Reports, cur: &mut Cur, vc: &[u32], old: u64, n: u32) -> u64 {
        let w = old as u32;
        let r = (old >> 32) as u32;
        if w != 0 && w & GROUP == 0 {
            let p = &self.recs[w as usize].acc;
            if p.slot == cur.acc.slot && p.clock == cur.acc.clock && (cur.atomic || !p.atomic()) {
                return old;
            }
        }
        self.check(reports, cur, vc, w);
        self.check(reports, cur, vc, r);
        // A plain write makes every earlier write redundant (or raced with it). An atomic
        // one keeps the plain write and the concurrent atomic writes.
        if cur.atomic {
            self.kept_writes(vc, w);
        } else {
            self.scratch.clear();
        }
        self.release(w, n);
        // A plain write makes every remembered read redundant: a write that races with
        // one of them races with this write too. An atomic one keeps them (a plain read
        // still races with an atomic write).
        let new_r = if cur.atomic {
            r
        } else {
            self.release(r, n);
            0
        };
        let new_w = if self.scratch.is_empty() {
            let id = self.cur_rec(cur);
            self.recs[id as usize].refs += n;
            id
        } else {
            let mut entries = mem::take(&mut self.scratch);
            let at = entries.partition_point(|p| p.key() < cur.acc.key());
            entries.insert(at, cur.acc);
            let g = self.new_group(n, &entries);
            self.scratch = entries;
            GROUP | g
        };
        u64::from(new_w) | u64::from(new_r) << 32
    }
}

/// `cur` and remembered access `p` are concurrent: a race unless both are atomic or both
/// are reads.
#[cold]
fn conflict(reports: &mut Reports, cur: &Cur, p: &Acc) {
    if !(cur.atomic && p.atomic()) && (cur.write || !p.is_read()) {
        reports.add(cur, p);
    }
}

// ---------------------------------------------------------------------------------------
// Shadow memory.

/// Bytes of memory per bit of [`Meta::dirty`].
const CHUNK: usize = 64;

/// The shadow of 64 KiB of memory. It is held in the page table itself, so that a cell
/// is two dependent loads away from the table, not three.
#[derive(Debug)]
struct Page {
    /// One cell per byte: the write handle in the low half, the read handle in the high.
    cells: Box<[u64]>,
    /// What the usual access does not need.
    meta: Box<Meta>,
}

/// The rest of a [`Page`].
#[derive(Debug)]
struct Meta {
    /// One bit per [`CHUNK`] bytes; a clear bit means that all their cells are 0, so that
    /// runs of fresh cells (allocated or freed memory, a `memory.fill` over fresh memory)
    /// are skipped without reading them.
    dirty: [u64; PAGE_BYTES / CHUNK / 64],
    /// The clocks released by atomic writes, by address.
    sync: FastMap<u32, Vec<u32>>,
}

impl Page {
    fn new() -> Page {
        Page {
            cells: vec![0u64; PAGE_BYTES].into_boxed_slice(),
            meta: Box::new(Meta {
                dirty: [0; PAGE_BYTES / CHUNK / 64],
                sync: FastMap::default(),
            }),
        }
    }

    #[inline]
    fn is_dirty(&self, chunk: usize) -> bool {
        self.meta.dirty[chunk / 64] & 1 << (chunk % 64) != 0
    }

    /// Marks the chunks of cells `[start, end)` as possibly not 0.
    #[inline]
    fn mark_dirty(&mut self, start: usize, end: usize) {
        for c in start / CHUNK..=(end - 1) / CHUNK {
            self.meta.dirty[c / 64] |= 1 << (c % 64);
        }
    }

    /// Marks the chunks entirely inside `[start, end)`, whose cells were just set to 0,
    /// as clean.
    fn mark_clean(&mut self, start: usize, end: usize) {
        for c in start.div_ceil(CHUNK)..end / CHUNK {
            self.meta.dirty[c / 64] &= !(1 << (c % 64));
        }
    }

    /// The end (at most `end`) of the run of cells equal to cell `i` that starts there.
    #[inline]
    fn run_end(&self, i: usize, end: usize) -> usize {
        let cells = &self.cells[..end];
        let old = cells[i];
        let mut j = i + 1;
        while j < end {
            if old == 0 && j.is_multiple_of(CHUNK) && !self.is_dirty(j / CHUNK) {
                j = (j + CHUNK).min(end);
            } else if let Some(eight) = cells.get(j..j + 8).filter(|_| j.is_multiple_of(8)) {
                // Eight cells at a time (a vectorizable comparison) through long runs.
                if eight.iter().fold(0, |d, &c| d | (c ^ old)) != 0 {
                    break;
                }
                j += 8;
            } else if cells[j] == old {
                j += 1;
            } else {
                break;
            }
        }
        // After eight cells that differ somewhere, find the first.
        while j < end && cells[j] == old {
            j += 1;
        }
        j
    }
}

#[derive(Debug, Default)]
struct Shadow {
    /// Indexed by `addr >> PAGE_BITS`, as long as the highest page touched.
    pages: Vec<Option<Page>>,
}

impl Shadow {
    #[inline]
    fn page_mut(&mut self, p: usize) -> &mut Page {
        if self.pages.len() <= p {
            self.pages.resize_with(p + 1, || None);
        }
        self.pages[p].get_or_insert_with(Page::new)
    }

    fn sync(&self, addr: u32) -> Option<&Vec<u32>> {
        self.pages
            .get((addr >> PAGE_BITS) as usize)?
            .as_ref()?
            .meta
            .sync
            .get(&addr)
    }

    fn sync_mut(&mut self, addr: u32) -> &mut Vec<u32> {
        self.page_mut((addr >> PAGE_BITS) as usize)
            .meta
            .sync
            .entry(addr)
            .or_default()
    }

    /// Checks access `cur` against the shadow of its bytes and records it there.
    #[inline]
    fn access(&mut self, heap: &mut Heap, reports: &mut Reports, cur: &mut Cur, vc: &[u32]) {
        let end = (u64::from(cur.acc.addr) + u64::from(cur.acc.width)).min(1 << 32);
        let mut a = u64::from(cur.acc.addr);
        while a < end {
            let off = a as usize & (PAGE_BYTES - 1);
            let n = ((end - a) as usize).min(PAGE_BYTES - off);
            let page = self.page_mut((a >> PAGE_BITS) as usize);
            let mut i = off;
            while i < off + n {
                let old = page.cells[i];
                // A small access whose bytes share one cell value (the usual case) is
                // one run without the general scan.
                let j = if i == off && n <= 16 && page.cells[off..off + n].iter().all(|&c| c == old)
                {
                    off + n
                } else {
                    page.run_end(i, off + n)
                };
                let run = (j - i) as u32;
                let new = if cur.write {
                    heap.write(reports, cur, vc, old, run)
                } else {
                    heap.read(reports, cur, vc, old, run)
                };
                if new != old {
                    page.cells[i..j].fill(new);
                }
                i = j;
            }
            page.mark_dirty(off, off + n);
            a += n as u64;
        }
    }

    /// Forgets every access to `[addr, addr + size)` and the atomic clocks of its
    /// addresses.
    fn reset(&mut self, heap: &mut Heap, addr: u32, size: u32) {
        let end = (u64::from(addr) + u64::from(size)).min(1 << 32);
        let mut a = u64::from(addr);
        while a < end {
            let p = (a >> PAGE_BITS) as usize;
            let off = a as usize & (PAGE_BYTES - 1);
            let n = ((end - a) as usize).min(PAGE_BYTES - off);
            if let Some(Some(page)) = self.pages.get_mut(p) {
                let mut i = off;
                while i < off + n {
                    let old = page.cells[i];
                    let j = page.run_end(i, off + n);
                    if old != 0 {
                        let run = (j - i) as u32;
                        heap.release(old as u32, run);
                        heap.release((old >> 32) as u32, run);
                        page.cells[i..j].fill(0);
                    }
                    i = j;
                }
                page.mark_clean(off, off + n);
                if !page.meta.sync.is_empty() {
                    let (lo, hi) = (a as u32, (a + n as u64 - 1) as u32);
                    if n < page.meta.sync.len() {
                        for x in lo..=hi {
                            page.meta.sync.remove(&x);
                        }
                    } else {
                        page.meta.sync.retain(|&x, _| x < lo || x > hi);
                    }
                }
            }
            a += n as u64;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reports.

#[derive(Debug, Default)]
struct Reports {
    races: Vec<Race>,
    /// Index in `races` of each unordered pair of location keys.
    index: FastMap<(u64, u64), usize>,
    /// The location pairs the current access was already counted for.
    this_access: Vec<(u64, u64)>,
}

/// A location as a key: `None` is a value of its own.
fn location_key(l: Option<LocationId>) -> u64 {
    l.map_or(u64::MAX, u64::from)
}

impl Reports {
    #[inline]
    fn begin_access(&mut self) {
        if !self.this_access.is_empty() {
            self.this_access.clear();
        }
    }

    fn add(&mut self, cur: &Cur, prev: &Acc) {
        let a = location_key(cur.access().location);
        let b = location_key(prev.access().location);
        let key = (a.min(b), a.max(b));
        if self.this_access.contains(&key) {
            return;
        }
        self.this_access.push(key);
        match self.index.get(&key) {
            Some(&i) => self.races[i].count += 1,
            None => {
                self.index.insert(key, self.races.len());
                self.races.push(Race {
                    addr: cur.acc.addr.max(prev.addr),
                    current: cur.access(),
                    previous: prev.access(),
                    count: 1,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Random traces against a naive detector that keeps a full vector clock per event and
    //! compares every pair of accesses, and checks of the reference counts.

    use super::*;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u32) -> u32 {
            (self.next() % u64::from(n)) as u32
        }
    }

    /// The bytes random traces touch.
    const SPACE: (usize, usize) = (0xfff0, 0xfff0 + 40 + 16 + 24);

    /// A random trace over few threads, locks and bytes; event `i` has location `i`.
    /// With `disciplined`, most plain accesses are made under a lock chosen by address,
    /// so that races are rarer and come later.
    fn random_trace(rng: &mut Rng, len: usize, disciplined: bool) -> Vec<Event> {
        let mut events = Vec::with_capacity(len + 2);
        while events.len() < len {
            let thread = rng.below(5);
            let mut addr = 0xfff0 + rng.below(if disciplined { 24 } else { 40 }); // across a page boundary
            let mut width = [1, 2, 4, 8, 4, 4, 16, 0][rng.below(8) as usize];
            let atomic = rng.below(3) == 0;
            let kind = rng.below(20);
            if disciplined && (kind == 9 || kind == 10 || (kind >= 11 && atomic)) {
                // Atomics on their own words.
                addr = 0x1_0020 + 4 * rng.below(3);
                width = 4;
            }
            let op = match kind {
                0 => Op::Fork {
                    child: rng.below(6),
                },
                1 => Op::Join {
                    child: rng.below(6),
                },
                2 | 3 => Op::Acquire { lock: rng.below(3) },
                4 | 5 => Op::Release { lock: rng.below(3) },
                6 => Op::Request { lock: 0 },
                7 => Op::Alloc {
                    addr,
                    size: rng.below(24),
                },
                8 => Op::Free {
                    addr,
                    size: rng.below(24),
                },
                9 | 10 => Op::Rmw { addr, width },
                11..=15 => Op::Read {
                    addr,
                    width,
                    atomic,
                },
                _ => Op::Write {
                    addr,
                    width,
                    atomic,
                },
            };
            let locked = disciplined
                && matches!(
                    op,
                    Op::Read { atomic: false, .. } | Op::Write { atomic: false, .. }
                )
                && rng.below(40) != 0;
            let lock = 100 + addr / 16;
            let mut push = |op| events.push(Event::new(thread, op, Some(events.len() as u32)));
            if locked {
                push(Op::Acquire { lock });
            }
            push(op);
            if locked {
                push(Op::Release { lock });
            }
        }
        events
    }

    /// For every event, its thread incarnation and its vector clock (indexed by
    /// incarnation) when it happened, with the same synchronization rules.
    fn naive_clocks(events: &[Event]) -> Vec<(usize, Vec<u32>)> {
        let mut incarnation: HashMap<u32, usize> = HashMap::new();
        let mut vcs: Vec<Vec<u32>> = Vec::new();
        let mut locks: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut sync: HashMap<u32, Vec<u32>> = HashMap::new();
        let join = |into: &mut Vec<u32>, from: &[u32]| vc_join(into, from);
        let mut out = Vec::new();
        for e in events {
            let t = *incarnation.entry(e.thread).or_insert_with(|| {
                let t = vcs.len();
                let mut vc = vec![0; t + 1];
                vc[t] = 1;
                vcs.push(vc);
                t
            });
            match e.op {
                Op::Acquire { lock } => {
                    if let Some(l) = locks.get(&lock) {
                        join(&mut vcs[t], l);
                    }
                }
                Op::Release { lock } => {
                    join(locks.entry(lock).or_default(), &vcs[t]);
                    vcs[t][t] += 1;
                }
                Op::Fork { child } if child != e.thread => {
                    let c = vcs.len();
                    let mut vc = vcs[t].clone();
                    vc_set(&mut vc, c as u32, 1);
                    vcs.push(vc);
                    incarnation.insert(child, c);
                    vcs[t][t] += 1;
                }
                Op::Join { child } if child != e.thread => {
                    if let Some(c) = incarnation.remove(&child) {
                        let cvc = vcs[c].clone();
                        join(&mut vcs[t], &cvc);
                    }
                }
                Op::Alloc { addr, size } | Op::Free { addr, size } => {
                    sync.retain(|&a, _| {
                        u64::from(a) < u64::from(addr)
                            || u64::from(a) >= u64::from(addr) + u64::from(size)
                    });
                }
                Op::Read {
                    addr,
                    width,
                    atomic: true,
                }
                | Op::Rmw { addr, width }
                    if width > 0 =>
                {
                    if let Some(l) = sync.get(&addr) {
                        join(&mut vcs[t], l);
                    }
                }
                _ => {}
            }
            out.push((t, vcs[t].clone()));
            let release = match e.op {
                Op::Write {
                    width,
                    atomic: true,
                    addr,
                }
                | Op::Rmw { addr, width }
                    if width > 0 =>
                {
                    Some(addr)
                }
                _ => None,
            };
            if let Some(addr) = release {
                join(sync.entry(addr).or_default(), &vcs[t]);
                vcs[t][t] += 1;
            }
        }
        out
    }

    /// `(first byte, end, is write, is atomic)` of an access event.
    fn span(op: &Op) -> Option<(u64, u64, bool, bool)> {
        let (addr, width, write, atomic) = match *op {
            Op::Read {
                addr,
                width,
                atomic,
            } => (addr, width, false, atomic),
            Op::Write {
                addr,
                width,
                atomic,
            } => (addr, width, true, atomic),
            Op::Rmw { addr, width } => (addr, width, true, true),
            _ => return None,
        };
        (width > 0).then_some((
            u64::from(addr),
            u64::from(addr) + u64::from(width),
            write,
            atomic,
        ))
    }

    /// The bytes on which events `i < j` race, by the definition.
    fn naive_race_bytes(
        events: &[Event],
        clocks: &[(usize, Vec<u32>)],
        i: usize,
        j: usize,
    ) -> Vec<u64> {
        let (Some(a), Some(b)) = (span(&events[i].op), span(&events[j].op)) else {
            return Vec::new();
        };
        let (ti, vi) = &clocks[i];
        let (_, vj) = &clocks[j];
        let ordered = vi[*ti] <= vc_get(vj, *ti as u32);
        if ordered || !(a.2 || b.2) || (a.3 && b.3) {
            return Vec::new();
        }
        (a.0.max(b.0)..a.1.min(b.1))
            .filter(|&byte| {
                !events[i + 1..j].iter().any(|e| match e.op {
                    Op::Alloc { addr, size } | Op::Free { addr, size } => {
                        u64::from(addr) <= byte && byte < u64::from(addr) + u64::from(size)
                    }
                    _ => false,
                })
            })
            .collect()
    }

    /// Every reference count equals the references that exist.
    fn check_refs(d: &RaceDetector) {
        let heap = &d.heap;
        let mut recs = vec![0u32; heap.recs.len()];
        let mut groups = vec![0u32; heap.groups.len()];
        // A clean chunk has only zero cells.
        for (p, page) in d.shadow.pages.iter().enumerate() {
            let Some(page) = page else { continue };
            for c in 0..PAGE_BYTES / CHUNK {
                let addr = (p << PAGE_BITS) | (c * CHUNK);
                if addr + CHUNK > SPACE.0 && addr < SPACE.1 && !page.is_dirty(c) {
                    assert!(page.cells[c * CHUNK..][..CHUNK].iter().all(|&x| x == 0));
                }
            }
        }
        // Random traces touch only `SPACE`: the cells elsewhere stay 0.
        for addr in SPACE.0..SPACE.1 {
            let Some(Some(page)) = d.shadow.pages.get(addr >> PAGE_BITS) else {
                continue;
            };
            let cell = page.cells[addr & (PAGE_BYTES - 1)];
            for h in [cell as u32, (cell >> 32) as u32] {
                if h & GROUP != 0 {
                    groups[(h & !GROUP) as usize] += 1;
                } else if h != 0 {
                    recs[h as usize] += 1;
                }
            }
        }
        for (g, group) in heap.groups.iter().enumerate() {
            assert_eq!(group.refs, groups[g], "group {g}");
            if group.refs > 0 {
                assert!(group.entries.len() >= 2, "group {g}: {:?}", group.entries);
                assert!(group.entries.windows(2).all(|w| w[0].key() < w[1].key()));
            } else {
                assert!(group.entries.is_empty());
            }
        }
        for (r, rec) in heap.recs.iter().enumerate().skip(1) {
            assert_eq!(rec.refs, recs[r], "record {r}");
        }
        let free: std::collections::HashSet<u32> = heap.free_recs.iter().copied().collect();
        assert_eq!(free.len(), heap.free_recs.len());
        for r in 1..heap.recs.len() {
            assert_eq!(
                heap.recs[r].refs == 0,
                free.contains(&(r as u32)),
                "record {r}"
            );
        }
    }

    #[test]
    fn random_traces_agree_with_the_definition() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut racy_rounds = 0;
        for round in 0..3000 {
            let events = random_trace(&mut rng, 1 + round % 120, round % 2 == 1);
            let mut d = RaceDetector::new();
            for (k, e) in events.iter().enumerate() {
                d.event(e);
                if k % 16 == 0 {
                    check_refs(&d);
                }
            }
            check_refs(&d);
            let found = d.finish();
            assert_eq!(detect_races(&events), found);
            let clocks = naive_clocks(&events);

            // Every report is a race, at the lowest byte both accesses touched.
            for r in &found {
                let j = r.current.location.unwrap() as usize;
                let i = r.previous.location.unwrap() as usize;
                assert!(i < j, "round {round}: {r:?}");
                let bytes = naive_race_bytes(&events, &clocks, i, j);
                assert!(
                    !bytes.is_empty(),
                    "round {round}: not a race: {r:?}\n{events:#?}"
                );
                assert_eq!(r.addr, r.current.addr.max(r.previous.addr));
                assert_eq!(r.count, 1);
                assert_eq!(r.current.thread, events[j].thread);
                assert_eq!(r.previous.thread, events[i].thread);
            }
            // The first race on every byte is reported at the access where it happens.
            let mut first: HashMap<u64, usize> = HashMap::new();
            for j in 0..events.len() {
                for i in 0..j {
                    for b in naive_race_bytes(&events, &clocks, i, j) {
                        first.entry(b).or_insert(j);
                    }
                }
            }
            if !first.is_empty() {
                racy_rounds += 1;
            }
            for (&b, &j) in &first {
                assert!(
                    found.iter().any(|r| r.current.location == Some(j as u32)),
                    "round {round}: the race at event {j} on byte {b:#x} is missing: \
                     {found:#?}\n{events:#?}"
                );
            }
        }
        // The traces exercise both outcomes.
        assert!(
            (500..2900).contains(&racy_rounds),
            "{racy_rounds} racy rounds"
        );
    }

    #[test]
    fn thread_slots_are_reused_after_joins_the_forker_knows() {
        let mut d = RaceDetector::new();
        for _ in 0..1000 {
            d.event(&Event::new(0, Op::Fork { child: 1 }, None));
            d.event(&Event::new(0, Op::Fork { child: 2 }, None));
            d.event(&Event::new(0, Op::Join { child: 1 }, None));
            d.event(&Event::new(0, Op::Join { child: 2 }, None));
        }
        assert_eq!(d.threads.slots.len(), 3);
    }
}
