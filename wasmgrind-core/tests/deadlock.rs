//! Deadlock prediction on hand-written traces.

use wasmgrind_core::analysis::deadlock::{
    predict, predict_deadlocks, DeadlockPredictor, MAX_CYCLE_LENGTH,
};
use wasmgrind_core::analysis::{analyze, LockEdge, PotentialDeadlock};
use wasmgrind_core::trace::{Event, Lock, Op};

const A: Lock = 0x100;
const B: Lock = 0x200;
const C: Lock = 0x300;
const G: Lock = 0x50;

/// Builds a trace event by event.
#[derive(Default)]
struct Trace(Vec<Event>);

impl Trace {
    fn op(&mut self, thread: u32, op: Op, at: Option<u32>) -> &mut Self {
        self.0.push(Event::new(thread, op, at));
        self
    }
    fn req(&mut self, t: u32, lock: Lock, at: u32) -> &mut Self {
        self.op(t, Op::Request { lock }, Some(at))
    }
    fn acq(&mut self, t: u32, lock: Lock, at: u32) -> &mut Self {
        self.op(t, Op::Acquire { lock }, Some(at))
    }
    /// A request and the acquisition that follows it, at `at` and `at + 1`.
    fn lock(&mut self, t: u32, lock: Lock, at: u32) -> &mut Self {
        self.req(t, lock, at).acq(t, lock, at + 1)
    }
    fn rel(&mut self, t: u32, lock: Lock) -> &mut Self {
        self.op(t, Op::Release { lock }, Some(999))
    }
    fn fork(&mut self, t: u32, child: u32) -> &mut Self {
        self.op(t, Op::Fork { child }, Some(900))
    }
    fn join(&mut self, t: u32, child: u32) -> &mut Self {
        self.op(t, Op::Join { child }, Some(901))
    }
    fn write(&mut self, t: u32, addr: u32) -> &mut Self {
        self.op(
            t,
            Op::Write {
                addr,
                width: 4,
                atomic: false,
            },
            None,
        )
    }
    /// Thread `t` takes `first` (at `at`), then `second` (at `at + 2`), and releases both.
    fn nested(&mut self, t: u32, first: Lock, second: Lock, at: u32) -> &mut Self {
        self.lock(t, first, at)
            .lock(t, second, at + 2)
            .write(t, 0x8000)
            .rel(t, second)
            .rel(t, first)
    }
    fn events(&self) -> &[Event] {
        &self.0
    }
}

fn edge(thread: u32, held: Lock, held_at: u32, next: Lock, next_at: u32) -> LockEdge {
    LockEdge {
        thread,
        held,
        held_at: Some(held_at),
        next,
        next_at: Some(next_at),
    }
}

#[test]
fn a_two_lock_cycle_is_reported_with_its_locations() {
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    // T1: A at 10/11, B at 12/13. T2: B at 20/21, A at 22/23.
    t.nested(1, A, B, 10).nested(2, B, A, 20);
    t.join(0, 1).join(0, 2);
    assert_eq!(predict_deadlocks(t.events()), a_b_cycle());
}

/// The one report of the A-B inversion of [`Trace::nested`] `(1, A, B, 10)` and
/// `(2, B, A, 20)`.
fn a_b_cycle() -> Vec<PotentialDeadlock> {
    vec![PotentialDeadlock {
        cycle: vec![edge(1, A, 11, B, 12), edge(2, B, 21, A, 22)],
        count: 1,
    }]
}

#[test]
fn the_cycle_starts_with_the_smallest_lock() {
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    // The thread that takes B first comes first in the trace.
    t.nested(2, B, A, 20).nested(1, A, B, 10);
    let found = predict_deadlocks(t.events());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].cycle[0].held, A);
    assert_eq!(
        found[0].cycle,
        vec![edge(1, A, 11, B, 12), edge(2, B, 21, A, 22)]
    );
}

#[test]
fn a_three_lock_cycle_of_three_threads_is_reported() {
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2).fork(0, 3);
    t.nested(1, A, B, 10)
        .nested(2, B, C, 20)
        .nested(3, C, A, 30);
    let p = predict(t.events());
    assert_eq!(
        p.deadlocks,
        vec![PotentialDeadlock {
            cycle: vec![
                edge(1, A, 11, B, 12),
                edge(2, B, 21, C, 22),
                edge(3, C, 31, A, 32),
            ],
            count: 1,
        }]
    );
    assert_eq!(p.cyclic_locks, vec![vec![A, B, C]]);
    assert!(p.is_complete());
}

#[test]
fn reports_are_ordered_by_length_then_smallest_lock() {
    // Two components: {0x10, 0x50, 0x60} with the cycles 0x10 <-> 0x50 and
    // 0x50 <-> 0x60, and {0x30, 0x40} with 0x30 <-> 0x40; and a three-lock cycle.
    let mut t = Trace::default();
    for c in 1..=9 {
        t.fork(0, c);
    }
    t.nested(1, 0x10, 0x50, 10).nested(2, 0x50, 0x10, 20);
    t.nested(3, 0x50, 0x60, 30).nested(4, 0x60, 0x50, 40);
    t.nested(5, 0x30, 0x40, 50).nested(6, 0x40, 0x30, 60);
    t.nested(7, A, B, 70)
        .nested(8, B, C, 80)
        .nested(9, C, A, 90);
    let heads: Vec<(usize, Lock)> = predict_deadlocks(t.events())
        .iter()
        .map(|d| (d.cycle.len(), d.cycle[0].held))
        .collect();
    assert_eq!(heads, vec![(2, 0x10), (2, 0x30), (2, 0x50), (3, A)]);
}

#[test]
fn a_cycle_of_requests_that_deadlocked_is_reported() {
    // T1 holds A and requests B, T2 holds B and requests A: the run ends there.
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    t.lock(1, A, 10).lock(2, B, 20).req(1, B, 12).req(2, A, 22);
    assert_eq!(
        predict_deadlocks(t.events()),
        vec![PotentialDeadlock {
            cycle: vec![edge(1, A, 11, B, 12), edge(2, B, 21, A, 22)],
            count: 1,
        }]
    );
}

#[test]
fn one_thread_taking_both_orders_is_not_a_deadlock() {
    let mut t = Trace::default();
    t.nested(1, A, B, 10).nested(1, B, A, 20);
    let p = predict(t.events());
    assert!(p.deadlocks.is_empty(), "{:?}", p.deadlocks);
    // The graph has the cycle; only the thread rule excludes it.
    assert_eq!(p.cyclic_locks, vec![vec![A, B]]);
}

#[test]
fn a_common_guard_lock_prevents_the_deadlock() {
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    t.lock(1, G, 1).nested(1, A, B, 10).rel(1, G);
    t.lock(2, G, 2).nested(2, B, A, 20).rel(2, G);
    assert_eq!(predict_deadlocks(t.events()), vec![]);

    // A guard taken by only one of the threads does not.
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    t.lock(1, G, 1).nested(1, A, B, 10).rel(1, G);
    t.nested(2, B, A, 20);
    assert_eq!(predict_deadlocks(t.events()).len(), 1);
}

#[test]
fn two_threads_cannot_hold_the_same_lock_in_a_cycle() {
    // T1 holds C and A and requests B; T2 takes B then C; T3 takes C then A. The cycle
    // A -> B -> C -> A needs T1 and T3 to hold C at once, so only the cycle B -> C -> B
    // (T1 holds C and wants B, T2 holds B and wants C) is feasible.
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2).fork(0, 3);
    t.lock(1, C, 40).nested(1, A, B, 10).rel(1, C);
    t.nested(2, B, C, 20).nested(3, C, A, 30);
    let found = predict_deadlocks(t.events());
    assert_eq!(
        found,
        vec![PotentialDeadlock {
            cycle: vec![edge(2, B, 21, C, 22), edge(1, C, 41, B, 12)],
            count: 1,
        }]
    );
}

#[test]
fn fork_join_order_rules_out_a_cycle() {
    // T1 is joined before T2 is forked: their critical sections never overlap.
    let mut t = Trace::default();
    t.fork(0, 1).nested(1, A, B, 10).join(0, 1);
    t.fork(0, 2).nested(2, B, A, 20).join(0, 2);
    let p = predict(t.events());
    assert!(p.deadlocks.is_empty(), "{:?}", p.deadlocks);
    assert_eq!(p.cyclic_locks, vec![vec![A, B]]);

    // T1 forks T2 after its critical section.
    let mut t = Trace::default();
    t.fork(0, 1)
        .nested(1, A, B, 10)
        .fork(1, 2)
        .nested(2, B, A, 20);
    assert_eq!(predict_deadlocks(t.events()), vec![]);

    // Transitively: T1 is joined by main, which then forks T3, which forks T2.
    let mut t = Trace::default();
    t.fork(0, 1)
        .nested(1, A, B, 10)
        .join(0, 1)
        .fork(0, 3)
        .fork(3, 2);
    t.nested(2, B, A, 20);
    assert_eq!(predict_deadlocks(t.events()), vec![]);
}

#[test]
fn a_fork_inside_the_critical_section_does_not_order_it() {
    // T1 holds A when it forks T2; T2 takes B then A while T1 then requests B.
    let mut t = Trace::default();
    t.fork(0, 1).lock(1, A, 10).fork(1, 2);
    t.nested(2, B, A, 20);
    t.lock(1, B, 12).rel(1, B).rel(1, A);
    assert_eq!(
        predict_deadlocks(t.events()),
        vec![PotentialDeadlock {
            cycle: vec![edge(1, A, 11, B, 12), edge(2, B, 21, A, 22)],
            count: 1,
        }]
    );
}

#[test]
fn an_inversion_serialized_only_by_the_locks_is_still_reported() {
    // Both threads run concurrently (neither is joined before the other starts); this
    // run happened to finish T1's critical section before T2 started its own.
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    t.nested(1, A, B, 10);
    t.nested(2, B, A, 20);
    t.join(0, 1).join(0, 2);
    assert_eq!(predict_deadlocks(t.events()).len(), 1);

    // The same when T1 is not joined at all before T2 is forked.
    let mut t = Trace::default();
    t.fork(0, 1)
        .nested(1, A, B, 10)
        .fork(0, 2)
        .nested(2, B, A, 20);
    assert_eq!(predict_deadlocks(t.events()).len(), 1);
}

#[test]
fn a_consistent_lock_order_has_no_deadlock() {
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    for round in 0..3 {
        t.nested(1, A, B, 10).nested(2, A, B, 20);
        t.nested(1 + round % 2, B, C, 30);
    }
    let p = predict(t.events());
    assert!(p.deadlocks.is_empty());
    assert!(p.cyclic_locks.is_empty());
    assert!(p.is_complete());
    let edges: Vec<(Lock, Lock, u64)> = p
        .edges
        .iter()
        .map(|e| (e.edge.held, e.edge.next, e.count))
        .collect();
    assert_eq!(
        edges,
        vec![(A, B, 3), (A, B, 3), (B, C, 2), (B, C, 1)],
        "{:?}",
        p.edges
    );
}

#[test]
fn repeats_of_a_cycle_are_one_report_with_a_count() {
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    for _ in 0..3 {
        t.nested(1, A, B, 10).nested(2, B, A, 20);
    }
    assert_eq!(
        predict_deadlocks(t.events()),
        vec![PotentialDeadlock {
            cycle: vec![edge(1, A, 11, B, 12), edge(2, B, 21, A, 22)],
            count: 3,
        }]
    );

    // Two pairs of threads running the same code: one report, seen twice, with the
    // threads of the first pair.
    let mut t = Trace::default();
    for c in 1..=4 {
        t.fork(0, c);
    }
    t.nested(1, A, B, 10).nested(2, B, A, 20);
    t.nested(3, A, B, 10).nested(4, B, A, 20);
    let found = predict_deadlocks(t.events());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].count, 2);
    assert_eq!(
        found[0].cycle,
        vec![edge(1, A, 11, B, 12), edge(2, B, 21, A, 22)]
    );

    // The same locks at other locations are another cycle.
    t.nested(3, B, A, 50);
    let found = predict_deadlocks(t.events());
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[1].cycle[1].held_at, Some(51));
}

#[test]
fn an_acquire_without_a_request_uses_its_own_location() {
    // try_lock: no request event.
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    t.acq(1, A, 10).acq(1, B, 11).rel(1, B).rel(1, A);
    t.lock(2, B, 20).lock(2, A, 22).rel(2, A).rel(2, B);
    let p = predict(t.events());
    assert_eq!(
        p.deadlocks,
        vec![PotentialDeadlock {
            cycle: vec![edge(1, A, 10, B, 11), edge(2, B, 21, A, 22)],
            count: 1,
        }]
    );
    // The request and the acquire of one lock are one edge, not two.
    assert!(p.edges.iter().all(|e| e.count == 1), "{:?}", p.edges);
    assert_eq!(p.edges.len(), 2);
}

#[test]
fn locks_released_out_of_order_leave_the_held_set() {
    // T1 takes A, then B, releases A (not in reverse order) and takes C: only B -> C.
    let mut t = Trace::default();
    t.lock(1, A, 10)
        .lock(1, B, 12)
        .rel(1, A)
        .lock(1, C, 14)
        .rel(1, C)
        .rel(1, B);
    let p = predict(t.events());
    let edges: Vec<(Lock, Lock)> = p.edges.iter().map(|e| (e.edge.held, e.edge.next)).collect();
    assert_eq!(edges, vec![(A, B), (B, C)]);
}

#[test]
fn a_reentrant_acquisition_adds_no_edge() {
    let mut t = Trace::default();
    t.lock(1, A, 10).lock(1, A, 12).rel(1, A).rel(1, A);
    assert!(predict(t.events()).edges.is_empty());
}

#[test]
fn cycles_longer_than_the_limit_are_flagged() {
    // A ring of n locks and n threads: thread i takes lock i, then lock i + 1.
    let ring = |n: u32| {
        let mut t = Trace::default();
        for i in 1..=n {
            t.fork(0, i);
        }
        for i in 0..n {
            let (first, second) = (0x1000 + 8 * i, 0x1000 + 8 * ((i + 1) % n));
            t.nested(i + 1, first, second, 10 * i);
        }
        predict(t.events())
    };
    let max = MAX_CYCLE_LENGTH as u32;
    let p = ring(max);
    assert_eq!(p.deadlocks.len(), 1);
    assert_eq!(p.deadlocks[0].cycle.len(), MAX_CYCLE_LENGTH);
    assert!(p.is_complete());

    let p = ring(max + 1);
    assert!(p.deadlocks.is_empty());
    assert!(p.cycle_length_limit_hit);
    assert!(!p.is_complete());
}

#[test]
fn feeding_events_in_chunks_gives_the_same_result() {
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    for _ in 0..2 {
        t.nested(1, A, B, 10)
            .nested(2, B, A, 20)
            .nested(1, B, C, 30);
    }
    let whole = predict(t.events());
    let mut predictor = DeadlockPredictor::new();
    for chunk in t.events().chunks(3) {
        predictor.events(chunk);
    }
    assert_eq!(predictor.finish(), whole);
    assert_eq!(whole.deadlocks.len(), 1);
}

#[test]
fn analyze_reports_potential_deadlocks() {
    let mut t = Trace::default();
    t.fork(0, 1)
        .fork(0, 2)
        .nested(1, A, B, 10)
        .nested(2, B, A, 20);
    let findings = analyze(t.events());
    assert_eq!(findings.potential_deadlocks, predict_deadlocks(t.events()));
    assert_eq!(findings.potential_deadlocks.len(), 1);
}

#[test]
fn a_word_found_to_be_no_lock_takes_its_cycles_out() {
    // T1 takes A then B, T2 takes B then A, and T3 takes B then C and C then B: two
    // cycles, A-B and B-C. The runtime then says that C is no lock after all.
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2).fork(0, 3);
    t.nested(1, A, B, 10).nested(2, B, A, 20);
    t.nested(1, B, C, 30).nested(3, C, B, 40);
    t.join(0, 1).join(0, 2).join(0, 3);
    let both = predict_deadlocks(t.events());
    assert_eq!(both.len(), 2, "{both:?}");
    t.op(0, Op::NotALock { lock: C }, None);
    assert_eq!(predict_deadlocks(t.events()), a_b_cycle());
}

#[test]
fn a_lock_whose_memory_was_freed_is_not_the_next_lock_at_its_address() {
    // T1 takes A then B and ends. A's memory is freed, and a new lock comes to the same
    // address; T2 takes B then the new lock. The two "A"s never existed at the same time,
    // so there is no cycle: unless the memory was not freed (or was freed elsewhere).
    let inversion = |between: &[Op]| {
        let mut t = Trace::default();
        t.fork(0, 1).nested(1, A, B, 10);
        for &op in between {
            t.op(0, op, None);
        }
        t.fork(0, 2).nested(2, B, A, 20);
        t.join(0, 1).join(0, 2);
        predict(t.events())
    };
    // The word of A (0x100) inside a freed block of 64 bytes at 0xf0, then inside a block
    // allocated there (a reuse without a recorded free).
    for between in [
        &[Op::Free {
            addr: 0xf0,
            size: 64,
        }][..],
        &[Op::Alloc {
            addr: 0xf0,
            size: 64,
        }][..],
    ] {
        let p = inversion(between);
        assert_eq!(p.deadlocks, vec![], "{between:?}");
        // The graph keeps naming the locks by address.
        assert!(p.edges.iter().all(|e| [A, B].contains(&e.edge.held)));
    }
    // Memory next to A, or no memory event at all: the same lock, a cycle.
    assert_eq!(
        inversion(&[Op::Free {
            addr: 0xf0,
            size: 16
        }])
        .deadlocks,
        a_b_cycle()
    );
    assert_eq!(
        inversion(&[Op::Free {
            addr: 0x104,
            size: 4
        }])
        .deadlocks,
        a_b_cycle()
    );
    assert_eq!(inversion(&[]).deadlocks, a_b_cycle());
}

#[test]
fn a_lock_freed_while_held_is_still_released() {
    // T1 holds A while A's memory is freed (a bug of the program, or an allocator that
    // recycles eagerly), then releases it and takes B. It holds nothing then: no edge.
    let mut t = Trace::default();
    t.fork(0, 1).lock(1, A, 10);
    t.op(1, Op::Free { addr: A, size: 4 }, None);
    t.rel(1, A).lock(1, B, 12).rel(1, B);
    t.join(0, 1);
    assert_eq!(predict(t.events()).edges, vec![]);
}

#[test]
fn a_thread_holding_very_many_locks_is_bounded_and_says_so() {
    use wasmgrind_core::analysis::deadlock::MAX_HELD_LOCKS;
    // T1 nests 1,000 locks; T2 takes the last, then the first (outside the bound) and the
    // one just inside it. The graph stays small, the cycle through the bound's lock is
    // found, and the prediction says that some were not looked at.
    let n = 1000u32;
    let lock = |i: u32| 0x10_000 + 4 * i;
    let mut t = Trace::default();
    t.fork(0, 1).fork(0, 2);
    for i in 0..n {
        t.lock(1, lock(i), 10);
    }
    for i in (0..n).rev() {
        t.rel(1, lock(i));
    }
    let inside = n - MAX_HELD_LOCKS as u32;
    t.lock(2, lock(n - 1), 20)
        .lock(2, lock(inside), 22)
        .rel(2, lock(inside));
    t.lock(2, lock(0), 24).rel(2, lock(0)).rel(2, lock(n - 1));
    t.join(0, 1).join(0, 2);
    let started = std::time::Instant::now();
    let p = predict(t.events());
    assert!(
        started.elapsed().as_secs() < 10,
        "bounded: {:?}",
        started.elapsed()
    );
    assert!(p.held_limit_hit && !p.is_complete());
    assert_eq!(p.deadlocks.len(), 1, "{:?}", p.deadlocks);
    assert!(p.deadlocks[0]
        .cycle
        .iter()
        .any(|e| e.held == lock(inside) || e.next == lock(inside)));
}
