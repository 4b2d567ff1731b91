//! The race detector on hand-written traces of the classic cases; each test states the
//! exact races it expects (or none).
//!
//! Conventions: thread 0 is the main thread; the last argument of every event helper is
//! its location, chosen so that a race's locations say which events raced.

use wasmgrind_core::analysis::race::{detect_races, RaceDetector};
use wasmgrind_core::analysis::{analyze, Access, AccessKind, Race};
use wasmgrind_core::trace::{Event, Op};

// ---- events ----------------------------------------------------------------------------

fn ev(thread: u32, op: Op, loc: u32) -> Event {
    Event::new(thread, op, Some(loc))
}
fn read(t: u32, addr: u32, width: u32, loc: u32) -> Event {
    ev(
        t,
        Op::Read {
            addr,
            width,
            atomic: false,
        },
        loc,
    )
}
fn write(t: u32, addr: u32, width: u32, loc: u32) -> Event {
    ev(
        t,
        Op::Write {
            addr,
            width,
            atomic: false,
        },
        loc,
    )
}
fn atomic_read(t: u32, addr: u32, width: u32, loc: u32) -> Event {
    ev(
        t,
        Op::Read {
            addr,
            width,
            atomic: true,
        },
        loc,
    )
}
fn atomic_write(t: u32, addr: u32, width: u32, loc: u32) -> Event {
    ev(
        t,
        Op::Write {
            addr,
            width,
            atomic: true,
        },
        loc,
    )
}
fn rmw(t: u32, addr: u32, width: u32, loc: u32) -> Event {
    ev(t, Op::Rmw { addr, width }, loc)
}
fn acquire(t: u32, lock: u32, loc: u32) -> Event {
    ev(t, Op::Acquire { lock }, loc)
}
fn release(t: u32, lock: u32, loc: u32) -> Event {
    ev(t, Op::Release { lock }, loc)
}
fn request(t: u32, lock: u32, loc: u32) -> Event {
    ev(t, Op::Request { lock }, loc)
}
fn fork(t: u32, child: u32, loc: u32) -> Event {
    ev(t, Op::Fork { child }, loc)
}
fn join(t: u32, child: u32, loc: u32) -> Event {
    ev(t, Op::Join { child }, loc)
}
fn alloc(t: u32, addr: u32, size: u32, loc: u32) -> Event {
    ev(t, Op::Alloc { addr, size }, loc)
}
fn free(t: u32, addr: u32, size: u32, loc: u32) -> Event {
    ev(t, Op::Free { addr, size }, loc)
}

// ---- expected races --------------------------------------------------------------------

/// The access an access event reports as.
fn access(e: &Event) -> Access {
    let (kind, addr, width, atomic) = match e.op {
        Op::Read {
            addr,
            width,
            atomic,
        } => (AccessKind::Read, addr, width, atomic),
        Op::Write {
            addr,
            width,
            atomic,
        } => (AccessKind::Write, addr, width, atomic),
        Op::Rmw { addr, width } => (AccessKind::Rmw, addr, width, true),
        op => panic!("not an access: {op}"),
    };
    Access {
        thread: e.thread,
        kind,
        addr,
        width,
        atomic,
        location: e.location,
    }
}

/// A race at `addr` detected at `current` against `previous`, seen `count` times.
fn race(addr: u32, current: &Event, previous: &Event, count: u64) -> Race {
    Race {
        addr,
        current: access(current),
        previous: access(previous),
        count,
    }
}

/// The races of `events`, checked to be the same when fed one event at a time and in
/// chunks.
fn races(events: &[Event]) -> Vec<Race> {
    let all = detect_races(events);
    let mut d = RaceDetector::new();
    for e in events {
        d.event(e);
    }
    assert_eq!(d.races(), &all[..]);
    assert_eq!(d.finish(), all);
    let mut d = RaceDetector::new();
    for chunk in events.chunks(23) {
        d.events(chunk);
    }
    assert_eq!(d.finish(), all);
    all
}

/// Two threads forked by thread 0, then `body`.
fn two_threads(body: &[Event]) -> Vec<Event> {
    let mut t = vec![fork(0, 1, 1), fork(0, 2, 2)];
    t.extend_from_slice(body);
    t
}

// ---- plain accesses --------------------------------------------------------------------

#[test]
fn unordered_writes_race() {
    let t = two_threads(&[write(1, 0x100, 4, 10), write(2, 0x100, 4, 20)]);
    assert_eq!(races(&t), [race(0x100, &t[3], &t[2], 1)]);
}

#[test]
fn unordered_read_and_write_race_both_ways() {
    let t = two_threads(&[read(1, 0x100, 4, 10), write(2, 0x100, 4, 20)]);
    assert_eq!(races(&t), [race(0x100, &t[3], &t[2], 1)]);

    let t = two_threads(&[write(1, 0x100, 4, 10), read(2, 0x100, 4, 20)]);
    assert_eq!(races(&t), [race(0x100, &t[3], &t[2], 1)]);
}

#[test]
fn concurrent_reads_do_not_race() {
    let t = two_threads(&[read(1, 0x100, 4, 10), read(2, 0x100, 4, 20)]);
    assert_eq!(races(&t), []);
}

#[test]
fn threads_without_a_fork_are_concurrent() {
    let t = [write(0, 0x100, 4, 10), write(7, 0x100, 4, 20)];
    assert_eq!(races(&t), [race(0x100, &t[1], &t[0], 1)]);
}

#[test]
fn accesses_under_a_lock_do_not_race() {
    let t = two_threads(&[
        request(1, 0x40, 3),
        acquire(1, 0x40, 3),
        read(1, 0x100, 4, 10),
        write(1, 0x100, 4, 11),
        release(1, 0x40, 12),
        request(2, 0x40, 4),
        acquire(2, 0x40, 4),
        read(2, 0x100, 4, 20),
        write(2, 0x100, 4, 21),
        release(2, 0x40, 22),
    ]);
    assert_eq!(races(&t), []);
}

#[test]
fn different_locks_do_not_order() {
    let t = two_threads(&[
        acquire(1, 0x40, 3),
        write(1, 0x100, 4, 10),
        release(1, 0x40, 11),
        acquire(2, 0x48, 4),
        write(2, 0x100, 4, 20),
        release(2, 0x48, 21),
    ]);
    assert_eq!(races(&t), [race(0x100, &t[6], &t[3], 1)]);
}

// ---- fork and join ---------------------------------------------------------------------

#[test]
fn fork_and_join_order_the_parent_and_the_child() {
    let t = [
        write(0, 0x100, 4, 1), // before the fork
        fork(0, 1, 2),
        read(1, 0x100, 4, 10),
        write(1, 0x100, 4, 11),
        join(0, 1, 3),
        read(0, 0x100, 4, 4), // after the join
        write(0, 0x100, 4, 5),
    ];
    assert_eq!(races(&t), []);
}

#[test]
fn the_parent_after_a_fork_races_with_the_child() {
    let t = [fork(0, 1, 1), write(0, 0x100, 4, 2), write(1, 0x100, 4, 10)];
    assert_eq!(races(&t), [race(0x100, &t[2], &t[1], 1)]);
}

#[test]
fn two_children_race_with_each_other_but_not_with_the_joiner() {
    let t = [
        fork(0, 1, 1),
        fork(0, 2, 2),
        write(1, 0x100, 8, 10),
        write(2, 0x100, 8, 20),
        join(0, 1, 3),
        join(0, 2, 4),
        write(0, 0x100, 8, 5),
    ];
    assert_eq!(races(&t), [race(0x100, &t[3], &t[2], 1)]);
}

#[test]
fn a_reused_thread_id_after_a_join_the_forker_saw_is_ordered() {
    let t = [
        fork(0, 1, 1),
        write(1, 0x100, 4, 10),
        join(0, 1, 2),
        fork(0, 1, 3), // the runtime reuses id 1 for a new thread
        write(1, 0x100, 4, 11),
        read(1, 0x104, 4, 12),
        join(0, 1, 4),
        write(0, 0x104, 4, 5),
    ];
    assert_eq!(races(&t), []);
}

#[test]
fn a_reused_thread_id_is_a_new_thread() {
    // Thread 2 joins the first thread 1; thread 0 forks the id again without knowing of
    // that join: the two incarnations of thread 1 are concurrent.
    let t = [
        fork(0, 1, 1),
        fork(0, 2, 2),
        write(1, 0x100, 4, 10),
        join(2, 1, 20),
        fork(0, 1, 3),
        write(1, 0x100, 4, 11),
        // The new incarnation is not ordered before thread 2's join of the old one.
        write(1, 0x200, 4, 12),
        write(2, 0x200, 4, 21),
    ];
    assert_eq!(
        races(&t),
        [race(0x100, &t[5], &t[2], 1), race(0x200, &t[7], &t[6], 1)]
    );
}

#[test]
fn threads_started_and_joined_one_after_another_do_not_race() {
    let mut t = Vec::new();
    for i in 0..100 {
        t.push(fork(0, 1 + i % 3, 1));
        t.push(write(1 + i % 3, 0x100, 4, 10));
        t.push(join(0, 1 + i % 3, 2));
    }
    t.push(write(0, 0x100, 4, 3));
    assert_eq!(races(&t), []);
}

// ---- atomics ---------------------------------------------------------------------------

/// Thread 1 fills a buffer and publishes it through an atomic flag; thread 2 waits for
/// the flag, then reads the buffer.
fn publish(flag_write: Event, flag_read: Event) -> Vec<Event> {
    two_threads(&[
        write(1, 0x1000, 64, 10),
        write(1, 0x1040, 8, 11),
        atomic_read(2, 0x40, 4, 20), // spinning: the flag is not set yet
        flag_write,
        flag_read,
        read(2, 0x1000, 72, 22),
    ])
}

#[test]
fn an_atomic_flag_publishes_a_buffer() {
    let t = publish(atomic_write(1, 0x40, 4, 12), atomic_read(2, 0x40, 4, 21));
    assert_eq!(races(&t), []);
    let t = publish(rmw(1, 0x40, 4, 12), rmw(2, 0x40, 4, 21));
    assert_eq!(races(&t), []);
}

#[test]
fn without_the_flag_the_buffer_races() {
    // The flag is written and read at different addresses: no synchronization.
    let t = publish(atomic_write(1, 0x40, 4, 12), atomic_read(2, 0x44, 4, 21));
    assert_eq!(
        races(&t),
        [race(0x1000, &t[7], &t[2], 1), race(0x1040, &t[7], &t[3], 1)]
    );
}

#[test]
fn a_chain_of_read_modify_writes_orders_its_threads() {
    // Each thread writes its data, then increments a counter; the next increment sees
    // the previous one, so thread 3 sees everything 1 and 2 did.
    let t = [
        fork(0, 1, 1),
        fork(0, 2, 2),
        fork(0, 3, 3),
        write(1, 0x100, 4, 10),
        rmw(1, 0x40, 4, 11),
        write(2, 0x104, 4, 20),
        rmw(2, 0x40, 4, 21),
        rmw(3, 0x40, 4, 30),
        read(3, 0x100, 8, 31),
    ];
    assert_eq!(races(&t), []);
}

#[test]
fn an_atomic_write_releases_but_does_not_acquire() {
    // Thread 2's atomic store does not see thread 1's, so thread 2 does not see the data.
    let t = two_threads(&[
        write(1, 0x100, 4, 10),
        atomic_write(1, 0x40, 4, 11),
        atomic_write(2, 0x40, 4, 20),
        read(2, 0x100, 4, 21),
    ]);
    assert_eq!(races(&t), [race(0x100, &t[5], &t[2], 1)]);
}

#[test]
fn atomics_never_race_with_each_other() {
    let t = two_threads(&[
        atomic_write(1, 0x40, 4, 10),
        atomic_write(2, 0x40, 4, 20),
        rmw(1, 0x40, 4, 11),
        atomic_read(2, 0x40, 4, 21),
        // Other addresses and widths over the same bytes: no synchronization, no race.
        atomic_write(1, 0x40, 8, 12),
        atomic_read(2, 0x42, 2, 22),
        rmw(2, 0x44, 4, 23),
        atomic_write(1, 0x41, 1, 13),
    ]);
    assert_eq!(races(&t), []);
}

#[test]
fn atomic_and_plain_accesses_race() {
    let t = two_threads(&[atomic_write(1, 0x40, 4, 10), read(2, 0x40, 4, 20)]);
    assert_eq!(races(&t), [race(0x40, &t[3], &t[2], 1)]);

    let t = two_threads(&[write(1, 0x40, 4, 10), atomic_read(2, 0x40, 4, 20)]);
    assert_eq!(races(&t), [race(0x40, &t[3], &t[2], 1)]);

    let t = two_threads(&[read(1, 0x40, 4, 10), rmw(2, 0x40, 4, 20)]);
    assert_eq!(races(&t), [race(0x40, &t[3], &t[2], 1)]);

    let t = two_threads(&[atomic_read(1, 0x40, 4, 10), write(2, 0x40, 4, 20)]);
    assert_eq!(races(&t), [race(0x40, &t[3], &t[2], 1)]);

    // Concurrent atomic writes do not race, and are both remembered: thread 2's plain
    // read races with thread 1's atomic write, though thread 2 wrote after it.
    let t = two_threads(&[
        atomic_write(1, 0x40, 4, 10),
        atomic_write(2, 0x40, 4, 20),
        read(2, 0x40, 4, 21),
    ]);
    assert_eq!(races(&t), [race(0x40, &t[4], &t[2], 1)]);
}

#[test]
fn an_atomic_write_does_not_hide_the_plain_write_before_it() {
    // Thread 1's plain write is followed by its own atomic write; thread 2's atomic write
    // races with the plain one (and not with the atomic one).
    let t = two_threads(&[
        write(1, 0x40, 4, 10),
        atomic_write(1, 0x40, 4, 11),
        atomic_write(2, 0x40, 4, 20),
    ]);
    assert_eq!(races(&t), [race(0x40, &t[4], &t[2], 1)]);

    // The same with a release between them, so that they are in different epochs.
    let t = two_threads(&[
        write(1, 0x40, 4, 10),
        acquire(1, 0x80, 12),
        release(1, 0x80, 13),
        atomic_write(1, 0x40, 4, 11),
        atomic_write(2, 0x40, 4, 20),
        read(2, 0x40, 4, 21), // races with both writes of thread 1
    ]);
    assert_eq!(
        races(&t),
        [
            race(0x40, &t[6], &t[2], 1),
            race(0x40, &t[7], &t[2], 1),
            race(0x40, &t[7], &t[5], 1)
        ]
    );
}

#[test]
fn an_atomic_read_does_not_hide_the_plain_read_before_it() {
    let t = two_threads(&[
        read(1, 0x40, 4, 10),
        atomic_read(1, 0x40, 4, 11),
        atomic_write(2, 0x40, 4, 20),
    ]);
    assert_eq!(races(&t), [race(0x40, &t[4], &t[2], 1)]);

    let t = two_threads(&[
        read(1, 0x40, 4, 10),
        acquire(1, 0x80, 12),
        release(1, 0x80, 13),
        atomic_read(1, 0x40, 4, 11),
        atomic_write(2, 0x40, 4, 20),
        write(2, 0x40, 4, 21), // races with both reads of thread 1
    ]);
    assert_eq!(
        races(&t),
        [
            race(0x40, &t[6], &t[2], 1),
            race(0x40, &t[7], &t[2], 1),
            race(0x40, &t[7], &t[5], 1)
        ]
    );
}

// ---- bytes and widths ------------------------------------------------------------------

#[test]
fn overlapping_accesses_of_different_widths_race_on_the_shared_bytes() {
    let t = two_threads(&[write(1, 0x100, 8, 10), read(2, 0x104, 4, 20)]);
    assert_eq!(races(&t), [race(0x104, &t[3], &t[2], 1)]);

    let t = two_threads(&[read(1, 0x106, 1, 10), write(2, 0x100, 8, 20)]);
    assert_eq!(races(&t), [race(0x106, &t[3], &t[2], 1)]);
}

#[test]
fn adjacent_accesses_do_not_race() {
    let t = two_threads(&[
        write(1, 0x100, 4, 10),
        write(2, 0x104, 4, 20),
        write(1, 0x108, 8, 11),
        read(2, 0xff, 1, 21),
        write(2, 0x110, 2, 22),
    ]);
    assert_eq!(races(&t), []);
}

#[test]
fn a_bulk_write_races_with_a_read_inside_it() {
    // A memory.fill of 64 KiB across a page boundary, and a 4-byte read inside it.
    let t = two_threads(&[write(1, 0x1_8000, 0x1_0000, 10), read(2, 0x2_0010, 4, 20)]);
    assert_eq!(races(&t), [race(0x2_0010, &t[3], &t[2], 1)]);

    // The other way round, with other bytes of the fill written before by thread 2:
    // one race per location pair, at the lowest byte both accesses touched.
    let t = two_threads(&[
        read(2, 0x2_0010, 4, 20),
        write(2, 0x2_0100, 4, 21),
        write(2, 0x2_0200, 4, 21),
        write(1, 0x1_8000, 0x1_0000, 10),
    ]);
    assert_eq!(
        races(&t),
        [
            race(0x2_0010, &t[5], &t[2], 1),
            race(0x2_0100, &t[5], &t[3], 1)
        ]
    );
}

// ---- allocation ------------------------------------------------------------------------

#[test]
fn freed_and_reallocated_memory_starts_fresh() {
    let t = two_threads(&[
        alloc(1, 0x1000, 32, 10),
        write(1, 0x1000, 32, 11),
        atomic_write(1, 0x1010, 4, 12),
        free(1, 0x1000, 32, 13),
        alloc(2, 0x1000, 16, 20),
        write(2, 0x1000, 16, 21),
        free(2, 0x1000, 16, 22),
        alloc(2, 0x1008, 16, 23),
        read(2, 0x1008, 16, 24),
    ]);
    assert_eq!(races(&t), []);

    // The atomic clock of a freed address is dropped too: thread 2's atomic read of the
    // new block does not acquire what thread 1 released there.
    let t = two_threads(&[
        write(1, 0x2000, 4, 10),
        atomic_write(1, 0x1010, 4, 11),
        free(1, 0x1000, 32, 12),
        alloc(2, 0x1000, 32, 20),
        atomic_read(2, 0x1010, 4, 21),
        read(2, 0x2000, 4, 22),
    ]);
    assert_eq!(races(&t), [race(0x2000, &t[7], &t[2], 1)]);

    // Without the free and the allocation, the same accesses race.
    let t = two_threads(&[write(1, 0x1000, 32, 11), write(2, 0x1000, 16, 21)]);
    assert_eq!(races(&t), [race(0x1000, &t[3], &t[2], 1)]);
}

// ---- reports ---------------------------------------------------------------------------

#[test]
fn repeated_races_between_two_locations_are_counted_in_one_report() {
    let t = two_threads(&[
        write(1, 0x100, 4, 10),
        write(2, 0x100, 4, 20), // races with 10
        write(1, 0x100, 4, 10), // races with 20: the same pair
        write(2, 0x100, 4, 20), // races with 10
        read(1, 0x100, 4, 11),  // races with 20: a new pair
        write(1, 0x100, 4, 10), // races with 20 (its write) and nothing else
    ]);
    assert_eq!(
        races(&t),
        [race(0x100, &t[3], &t[2], 4), race(0x100, &t[6], &t[5], 1)]
    );
}

#[test]
fn an_access_counts_once_per_location_pair() {
    // One 8-byte read over two writes of the same location: one race, counted once.
    let t = two_threads(&[
        write(1, 0x100, 4, 10),
        write(1, 0x104, 4, 10),
        read(2, 0x100, 8, 20),
    ]);
    assert_eq!(races(&t), [race(0x100, &t[4], &t[2], 1)]);
}

#[test]
fn concurrent_reads_are_all_remembered() {
    // Threads 1 and 2 read concurrently (the read state inflates to a set); thread 3's
    // write races with both reads, not only the last one.
    let t = [
        fork(0, 1, 1),
        fork(0, 2, 2),
        fork(0, 3, 3),
        read(1, 0x100, 4, 10),
        read(2, 0x100, 4, 20),
        write(3, 0x100, 4, 30),
    ];
    assert_eq!(
        races(&t),
        [race(0x100, &t[5], &t[3], 1), race(0x100, &t[5], &t[4], 1)]
    );
}

#[test]
fn ordered_reads_are_replaced() {
    // Thread 1's read happened before thread 2's (through the lock), and thread 3's write
    // races with the last read only.
    let t = [
        fork(0, 1, 1),
        fork(0, 2, 2),
        fork(0, 3, 3),
        acquire(1, 0x40, 10),
        read(1, 0x100, 4, 11),
        release(1, 0x40, 12),
        acquire(2, 0x40, 20),
        read(2, 0x100, 4, 21),
        release(2, 0x40, 22),
        write(3, 0x100, 4, 30),
    ];
    assert_eq!(races(&t), [race(0x100, &t[9], &t[7], 1)]);
}

#[test]
fn the_analysis_goes_on_after_a_race() {
    let t = two_threads(&[
        write(1, 0x100, 4, 10),
        write(2, 0x100, 4, 20), // the race
        release(2, 0x40, 21),
        acquire(1, 0x40, 11),
        write(1, 0x100, 4, 12), // ordered after 20
        write(2, 0x104, 4, 22),
        read(1, 0x104, 4, 13), // a second race
    ]);
    assert_eq!(
        races(&t),
        [race(0x100, &t[3], &t[2], 1), race(0x104, &t[8], &t[7], 1)]
    );
}

#[test]
fn events_without_a_location_are_reported() {
    let no_location = |e: Event| Event::new(e.thread, e.op, None);
    let t = [
        no_location(fork(0, 1, 0)),
        no_location(write(0, 0x100, 4, 0)),
        no_location(write(1, 0x100, 4, 0)),
    ];
    let found = races(&t);
    assert_eq!(found, [race(0x100, &t[2], &t[1], 1)]);
    assert_eq!(found[0].current.location, None);
}

#[test]
fn analyze_reports_the_races() {
    let t = two_threads(&[write(1, 0x100, 4, 10), write(2, 0x100, 4, 20)]);
    assert_eq!(analyze(&t).races, [race(0x100, &t[3], &t[2], 1)]);
}

/// The analyzer fed a trace in chunks finds what `analyze` finds on the whole trace: the
/// same races in the same order with the same counts, and the same potential deadlock.
#[test]
fn the_analyzer_fed_in_chunks_finds_the_same() {
    let mut t = vec![fork(0, 1, 0), fork(0, 2, 0)];
    for i in 0..40u32 {
        // Racy accesses of both threads, and a lock-order inversion.
        t.push(write(1, 0x100 + 4 * (i % 5), 4, 10 + i % 3));
        t.push(read(2, 0x100 + 4 * (i % 5), 4, 20 + i % 2));
        t.push(acquire(1, 0x10, 30));
        t.push(acquire(1, 0x20, 31));
        t.push(release(1, 0x20, 32));
        t.push(release(1, 0x10, 33));
        t.push(acquire(2, 0x20, 40));
        t.push(acquire(2, 0x10, 41));
        t.push(release(2, 0x10, 42));
        t.push(release(2, 0x20, 43));
    }
    let whole = analyze(&t);
    assert!(!whole.races.is_empty());
    assert_eq!(whole.potential_deadlocks.len(), 1);
    for chunk in [1, 7, 100, t.len()] {
        let mut analyzer = wasmgrind_core::analysis::Analyzer::new();
        for part in t.chunks(chunk) {
            analyzer.events(part);
        }
        assert_eq!(analyzer.finish(), whole, "chunks of {chunk}");
    }
}

// ---- ended threads (wasi-threads) --------------------------------------------------------

#[test]
fn an_ended_thread_and_the_next_one_on_its_id_race_unless_ordered() {
    let end = |t| Event::new(t, Op::End, None);
    // Thread 1 ends without a join; its id is forked again. The two threads of id 1 are
    // not ordered by anything: their writes race.
    let t = vec![
        fork(0, 1, 1),
        write(1, 0x100, 4, 10),
        end(1),
        fork(0, 1, 2),
        write(1, 0x100, 4, 20),
        end(1),
    ];
    assert_eq!(races(&t), [race(0x100, &t[4], &t[1], 1)]);
    // Ordered through an atomic (as std's join on a futex is): no race.
    let t = vec![
        fork(0, 1, 1),
        write(1, 0x100, 4, 10),
        atomic_write(1, 0x200, 4, 11),
        end(1),
        atomic_read(0, 0x200, 4, 12),
        fork(0, 1, 2),
        write(1, 0x100, 4, 20),
        end(1),
    ];
    assert_eq!(races(&t), []);
}
