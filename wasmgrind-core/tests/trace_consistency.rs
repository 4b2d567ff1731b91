//! The consistency checkers accept executions and reject what cannot happen.

use wasmgrind_core::trace::{
    check_fork_join_consistency, check_lock_consistency, ConsistencyError, Event, Op,
};

fn ev(thread: u32, op: Op) -> Event {
    Event::new(thread, op, None)
}
fn req(t: u32, lock: u32) -> Event {
    ev(t, Op::Request { lock })
}
fn acq(t: u32, lock: u32) -> Event {
    ev(t, Op::Acquire { lock })
}
fn rel(t: u32, lock: u32) -> Event {
    ev(t, Op::Release { lock })
}
fn read(t: u32, addr: u32) -> Event {
    ev(
        t,
        Op::Read {
            addr,
            width: 4,
            atomic: true,
        },
    )
}

/// A possible execution: thread 0 forks thread 1, both contend for lock 8, thread 0 joins.
fn execution() -> Vec<Event> {
    vec![
        ev(0, Op::Fork { child: 1 }),
        req(0, 8),
        acq(0, 8),
        req(1, 8),
        read(1, 8), // spinning on the lock word while waiting
        rel(0, 8),
        acq(1, 8),
        acq(1, 16), // acquire without a request
        rel(1, 16),
        rel(1, 8),
        ev(0, Op::Join { child: 1 }),
    ]
}

#[test]
fn executions_are_accepted() {
    let trace = execution();
    check_lock_consistency(&trace).unwrap();
    check_fork_join_consistency(&trace).unwrap();
}

/// The execution above with one event moved: each version is rejected with the error
/// that names the moved event, by the checker responsible for it, and the other checker
/// still accepts it.
#[test]
fn an_execution_with_one_event_misplaced_is_rejected() {
    // Thread 1's first event (its request) recorded before the fork that starts it.
    let mut trace = execution();
    let first_of_child = trace.remove(3);
    trace.insert(0, first_of_child);
    assert_eq!(
        check_fork_join_consistency(&trace),
        Err(ConsistencyError::ForkOfStarted {
            index: 1,
            thread: 0,
            child: 1,
            already_forked: false
        })
    );
    check_lock_consistency(&trace).unwrap();

    // The join recorded before thread 1's last event (its release of lock 8).
    let mut trace = execution();
    let join = trace.pop().unwrap();
    trace.insert(9, join);
    assert_eq!(
        check_fork_join_consistency(&trace),
        Err(ConsistencyError::EventAfterJoin {
            index: 10,
            thread: 1,
            op: Op::Release { lock: 8 }
        })
    );
    check_lock_consistency(&trace).unwrap();

    // Thread 1 acquires lock 8 before thread 0 released it.
    let mut trace = execution();
    trace.swap(5, 6);
    assert_eq!(
        check_lock_consistency(&trace),
        Err(ConsistencyError::AcquireHeld {
            index: 5,
            thread: 1,
            lock: 8,
            holder: 0
        })
    );
    check_fork_join_consistency(&trace).unwrap();

    // Thread 1 releases lock 8 after thread 0 took it again.
    let mut trace = execution();
    trace.insert(9, acq(0, 8));
    assert_eq!(
        check_lock_consistency(&trace),
        Err(ConsistencyError::AcquireHeld {
            index: 9,
            thread: 0,
            lock: 8,
            holder: 1
        })
    );
}

#[test]
fn a_deadlocked_trace_is_consistent() {
    // Both threads hold one lock and wait for the other: the trace ends there.
    let trace = [acq(0, 1), acq(1, 2), req(0, 2), req(1, 1)];
    check_lock_consistency(&trace).unwrap();
}

#[test]
fn acquiring_a_held_lock_is_rejected() {
    let err = check_lock_consistency(&[acq(0, 0x40), acq(1, 0x40)]).unwrap_err();
    assert_eq!(
        err,
        ConsistencyError::AcquireHeld {
            index: 1,
            thread: 1,
            lock: 0x40,
            holder: 0
        }
    );
    assert!(
        err.to_string()
            .contains("record a release before releasing"),
        "{err}"
    );
    // Locks are not reentrant.
    assert_eq!(
        check_lock_consistency(&[acq(0, 0x40), acq(0, 0x40)]),
        Err(ConsistencyError::AcquireHeld {
            index: 1,
            thread: 0,
            lock: 0x40,
            holder: 0
        })
    );
    // A release recorded after the next acquire (the contract broken).
    assert_eq!(
        check_lock_consistency(&[acq(0, 1), acq(1, 1), rel(0, 1)]),
        Err(ConsistencyError::AcquireHeld {
            index: 1,
            thread: 1,
            lock: 1,
            holder: 0
        })
    );
}

#[test]
fn releasing_without_holding_is_rejected() {
    assert_eq!(
        check_lock_consistency(&[rel(0, 1)]),
        Err(ConsistencyError::ReleaseNotHeld {
            index: 0,
            thread: 0,
            lock: 1,
            holder: None
        })
    );
    let err = check_lock_consistency(&[acq(0, 1), rel(1, 1)]).unwrap_err();
    assert_eq!(
        err,
        ConsistencyError::ReleaseNotHeld {
            index: 1,
            thread: 1,
            lock: 1,
            holder: Some(0)
        }
    );
    assert!(err.to_string().contains("thread 0 holds"), "{err}");
    assert_eq!(
        check_lock_consistency(&[acq(0, 1), rel(0, 1), rel(0, 1)]),
        Err(ConsistencyError::ReleaseNotHeld {
            index: 2,
            thread: 0,
            lock: 1,
            holder: None
        })
    );
}

#[test]
fn a_waiting_thread_does_nothing_but_acquire() {
    assert_eq!(
        check_lock_consistency(&[req(0, 1), acq(0, 2)]),
        Err(ConsistencyError::RequestInterrupted {
            index: 1,
            thread: 0,
            lock: 1,
            op: Op::Acquire { lock: 2 }
        })
    );
    assert_eq!(
        check_lock_consistency(&[acq(0, 2), req(0, 1), rel(0, 2)]),
        Err(ConsistencyError::RequestInterrupted {
            index: 2,
            thread: 0,
            lock: 1,
            op: Op::Release { lock: 2 }
        })
    );
    assert_eq!(
        check_lock_consistency(&[req(0, 1), req(0, 1)]),
        Err(ConsistencyError::RequestInterrupted {
            index: 1,
            thread: 0,
            lock: 1,
            op: Op::Request { lock: 1 }
        })
    );
    assert_eq!(
        check_lock_consistency(&[req(0, 1), ev(0, Op::Fork { child: 1 })]),
        Err(ConsistencyError::RequestInterrupted {
            index: 1,
            thread: 0,
            lock: 1,
            op: Op::Fork { child: 1 }
        })
    );
    // Another thread is not affected by thread 0 waiting.
    check_lock_consistency(&[req(0, 1), acq(1, 2), rel(1, 2)]).unwrap();
}

#[test]
fn impossible_forks_and_joins_are_rejected() {
    let fork = |t, child| ev(t, Op::Fork { child });
    let join = |t, child| ev(t, Op::Join { child });
    assert_eq!(
        check_fork_join_consistency(&[read(1, 0), fork(0, 1)]),
        Err(ConsistencyError::ForkOfStarted {
            index: 1,
            thread: 0,
            child: 1,
            already_forked: false
        })
    );
    assert_eq!(
        check_fork_join_consistency(&[fork(0, 1), fork(0, 1)]),
        Err(ConsistencyError::ForkOfStarted {
            index: 1,
            thread: 0,
            child: 1,
            already_forked: true
        })
    );
    assert_eq!(
        check_fork_join_consistency(&[fork(0, 1), join(0, 1), join(2, 1)]),
        Err(ConsistencyError::JoinTwice {
            index: 2,
            thread: 2,
            child: 1
        })
    );
    let err = check_fork_join_consistency(&[fork(0, 1), join(0, 1), read(1, 4)]).unwrap_err();
    assert_eq!(
        err,
        ConsistencyError::EventAfterJoin {
            index: 2,
            thread: 1,
            op: read(1, 4).op
        }
    );
    assert!(
        err.to_string()
            .contains("`atomic read of 4 bytes at 0x4` after it was joined"),
        "{err}"
    );
    assert_eq!(
        check_fork_join_consistency(&[join(3, 3)]),
        Err(ConsistencyError::SelfForkJoin {
            index: 0,
            thread: 3,
            op: Op::Join { child: 3 }
        })
    );
}

#[test]
fn a_joined_thread_id_may_be_forked_again() {
    // The runtime reuses the ids of joined threads: thread 1 runs, is joined, and its id
    // is forked again for a new thread, which runs and is joined in turn.
    let fork = |t, child| ev(t, Op::Fork { child });
    let join = |t, child| ev(t, Op::Join { child });
    let trace = [
        fork(0, 1),
        acq(1, 8),
        rel(1, 8),
        join(0, 1),
        fork(0, 1),
        read(1, 4),
        acq(1, 8),
        rel(1, 8),
        join(0, 1),
    ];
    check_fork_join_consistency(&trace).unwrap();
    check_lock_consistency(&trace).unwrap();
    // The new thread obeys the rules afresh: no event after its own join, no second
    // fork while it runs.
    assert_eq!(
        check_fork_join_consistency(&[fork(0, 1), join(0, 1), fork(0, 1), join(0, 1), read(1, 4)]),
        Err(ConsistencyError::EventAfterJoin {
            index: 4,
            thread: 1,
            op: read(1, 4).op
        })
    );
    assert_eq!(
        check_fork_join_consistency(&[fork(0, 1), join(0, 1), fork(0, 1), read(1, 4), fork(0, 1)]),
        Err(ConsistencyError::ForkOfStarted {
            index: 4,
            thread: 0,
            child: 1,
            already_forked: true
        })
    );
    // A thread id that finished without being joined is still not forked again.
    assert_eq!(
        check_fork_join_consistency(&[fork(0, 1), read(1, 4), fork(0, 1)]),
        Err(ConsistencyError::ForkOfStarted {
            index: 2,
            thread: 0,
            child: 1,
            already_forked: true
        })
    );
}

#[test]
fn an_ended_thread_id_may_be_forked_again() {
    // A wasi-threads thread records its end instead of being joined through the runtime;
    // its id then names a new thread when it is forked again.
    let fork = |t, child| ev(t, Op::Fork { child });
    let end = |t| ev(t, Op::End);
    check_fork_join_consistency(&[
        fork(0, 1),
        read(1, 4),
        end(1),
        fork(0, 1),
        read(1, 4),
        end(1),
    ])
    .unwrap();
    // Nothing after the end, and no second fork while the thread runs.
    assert_eq!(
        check_fork_join_consistency(&[fork(0, 1), end(1), read(1, 4)]),
        Err(ConsistencyError::EventAfterJoin {
            index: 2,
            thread: 1,
            op: read(1, 4).op
        })
    );
    assert_eq!(
        check_fork_join_consistency(&[
            fork(0, 1),
            read(1, 4),
            end(1),
            fork(0, 1),
            read(1, 4),
            fork(0, 1)
        ]),
        Err(ConsistencyError::ForkOfStarted {
            index: 5,
            thread: 0,
            child: 1,
            already_forked: true
        })
    );
}

/// The streaming checkers fed a trace in chunks keep the first problem with its position
/// in the whole trace, as the whole-trace checks report it.
#[test]
fn the_checkers_fed_in_chunks_report_the_same_first_problem() {
    use wasmgrind_core::trace::{ForkJoinChecker, LockChecker};
    let t = [
        ev(0, Op::Fork { child: 1 }),
        acq(0, 8),
        read(1, 4),
        read(1, 8),
        acq(1, 8),
        rel(0, 8),
        ev(0, Op::Join { child: 1 }),
        read(1, 4),
    ];
    let lock = check_lock_consistency(&t).unwrap_err();
    let fork_join = check_fork_join_consistency(&t).unwrap_err();
    assert!(matches!(
        lock,
        ConsistencyError::AcquireHeld { index: 4, .. }
    ));
    assert!(matches!(
        fork_join,
        ConsistencyError::EventAfterJoin { index: 7, .. }
    ));
    for chunk in 1..=t.len() {
        let mut locks = LockChecker::new();
        let mut forks = ForkJoinChecker::new();
        for part in t.chunks(chunk) {
            locks.events(part);
            forks.events(part);
        }
        assert_eq!(locks.result(), Err(lock.clone()), "chunks of {chunk}");
        assert_eq!(forks.result(), Err(fork_join.clone()), "chunks of {chunk}");
    }
    // Event by event, the same.
    let mut locks = LockChecker::new();
    let mut forks = ForkJoinChecker::new();
    for e in &t {
        locks.event(e);
        forks.event(e);
    }
    assert_eq!(locks.result(), Err(lock));
    assert_eq!(forks.result(), Err(fork_join));
}
