//! The recorder under real concurrency.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;

use wasmgrind_core::trace::{
    check_fork_join_consistency, check_lock_consistency, export, rapid_bin, Event, ExportOptions,
    FormatError, Metadata, Op, RecordError, Recorder, Trace,
};

const WORKERS: u32 = 4;
const ITERATIONS: u32 = 2000;
const LOCK: u32 = 0x1000;
const COUNTER: u32 = 0x2000;

/// Each worker increments a counter under a real `Mutex`, recording the lock operations by
/// the contract (request before waiting, acquire after taking, release before releasing).
/// The workers take turns (a condition variable makes worker `t` wait for a counter value
/// `v` with `v % WORKERS == t - 1`), so their critical sections really interleave. The
/// write of the counter carries the value it wrote as its "location", so the merged order
/// can be compared with the real order of the critical sections.
fn run_workers(recorder: &Recorder, snapshots: &Mutex<Vec<Vec<Event>>>) {
    let main = recorder.thread(0);
    let counter = Arc::new((Mutex::new(0u32), Condvar::new()));
    let start = Arc::new(Barrier::new(WORKERS as usize));
    let done = Arc::new(AtomicBool::new(false));
    thread::scope(|s| {
        let snapshotter = s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let snap = recorder.snapshot().unwrap();
                let mut all = snapshots.lock().unwrap();
                if all.len() < 20 {
                    all.push(snap);
                }
                drop(all);
                thread::yield_now();
            }
        });
        let mut handles = Vec::new();
        for tid in 1..=WORKERS {
            main.record(Op::Fork { child: tid }, None).unwrap();
            let counter = Arc::clone(&counter);
            let start = Arc::clone(&start);
            handles.push(s.spawn(move || {
                let rec = recorder.thread(tid);
                start.wait();
                for i in 0..ITERATIONS {
                    // Unsynchronized work between the critical sections.
                    rec.record(
                        Op::Write {
                            addr: 0x3000 + tid * 4,
                            width: 4,
                            atomic: false,
                        },
                        Some(i),
                    )
                    .unwrap();
                    rec.record(Op::Request { lock: LOCK }, None).unwrap();
                    let (mutex, turn) = &*counter;
                    // `wait_while` releases and retakes the mutex while it is not this
                    // worker's turn; the acquire is recorded once it holds it for good.
                    let mut guard = turn
                        .wait_while(mutex.lock().unwrap(), |v| *v % WORKERS != tid - 1)
                        .unwrap();
                    rec.record(Op::Acquire { lock: LOCK }, None).unwrap();
                    let value = *guard;
                    rec.record(
                        Op::Read {
                            addr: COUNTER,
                            width: 4,
                            atomic: false,
                        },
                        None,
                    )
                    .unwrap();
                    *guard = value + 1;
                    rec.record(
                        Op::Write {
                            addr: COUNTER,
                            width: 4,
                            atomic: false,
                        },
                        Some(value),
                    )
                    .unwrap();
                    rec.record(Op::Release { lock: LOCK }, None).unwrap();
                    drop(guard);
                    turn.notify_all();
                    if tid == 1 && i == ITERATIONS / 2 {
                        // A snapshot from a recording thread holds all its own events.
                        let snap = recorder.snapshot().unwrap();
                        let own = snap.iter().filter(|e| e.thread == 1).count();
                        assert_eq!(own, (ITERATIONS as usize / 2 + 1) * 6);
                        snapshots.lock().unwrap().push(snap);
                    }
                }
            }));
        }
        for (tid, h) in (1..=WORKERS).zip(handles) {
            h.join().unwrap();
            main.record(Op::Join { child: tid }, None).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        snapshotter.join().unwrap();
    });
}

#[test]
fn concurrent_recording_merges_into_a_consistent_order() {
    let recorder = Recorder::new();
    let snapshots = Mutex::new(Vec::new());
    run_workers(&recorder, &snapshots);
    let events = recorder.finish().unwrap();

    let per_worker = ITERATIONS as usize * 6;
    assert_eq!(events.len(), WORKERS as usize * (per_worker + 2));
    assert_eq!(recorder.recorded(), events.len() as u64);
    assert_eq!(recorder.rejected(), 0);

    check_lock_consistency(&events).unwrap();
    check_fork_join_consistency(&events).unwrap();

    // The counter writes appear in the order the critical sections really ran, and the
    // workers took turns.
    let written: Vec<(u32, u32)> = events
        .iter()
        .filter(|e| matches!(e.op, Op::Write { addr: COUNTER, .. }))
        .map(|e| (e.location.unwrap(), e.thread))
        .collect();
    let expected: Vec<(u32, u32)> = (0..WORKERS * ITERATIONS)
        .map(|v| (v, v % WORKERS + 1))
        .collect();
    assert_eq!(written, expected);

    // Each worker's own events are in program order.
    for tid in 1..=WORKERS {
        let own: Vec<&Event> = events.iter().filter(|e| e.thread == tid).collect();
        assert_eq!(own.len(), per_worker);
        for (i, chunk) in own.chunks(6).enumerate() {
            assert_eq!(chunk[0].location, Some(i as u32));
            assert!(matches!(chunk[1].op, Op::Request { .. }));
            assert!(matches!(chunk[2].op, Op::Acquire { .. }));
            assert!(matches!(chunk[3].op, Op::Read { .. }));
            assert!(matches!(chunk[4].op, Op::Write { addr: COUNTER, .. }));
            assert!(matches!(chunk[5].op, Op::Release { .. }));
        }
    }
    // The merge interleaved the buffers (it is not a concatenation).
    let switches = events
        .windows(2)
        .filter(|w| w[0].thread != w[1].thread)
        .count();
    assert!(
        switches >= (WORKERS * ITERATIONS - 1) as usize,
        "{switches}"
    );

    // Snapshots taken while the workers ran are consistent prefixes of the final trace.
    let snapshots = snapshots.into_inner().unwrap();
    assert!(snapshots
        .iter()
        .any(|s| !s.is_empty() && s.len() < events.len()));
    for snap in &snapshots {
        assert_eq!(snap[..], events[..snap.len()]);
        check_lock_consistency(snap).unwrap();
    }

    // The recorded trace exports and round-trips.
    let ex = export(
        &Trace::new(events.clone(), vec![]),
        ExportOptions::default(),
    );
    // The counter values stand in for locations here, so there is no location table: the
    // first event that names one is refused.
    let first = events.iter().position(|e| e.location.is_some()).unwrap();
    assert_eq!(
        ex.unwrap_err(),
        FormatError::UnknownLocation {
            event: first as u64,
            location: events[first].location.unwrap(),
            table_len: 0,
        }
    );
    let without_locations: Vec<Event> = events
        .iter()
        .map(|e| Event::new(e.thread, e.op, None))
        .collect();
    let ex = export(
        &Trace::new(without_locations.clone(), vec![]),
        ExportOptions {
            lock_requests: true,
            ..ExportOptions::default()
        },
    )
    .unwrap();
    let decoded = rapid_bin::decode(&ex.rapid_bin().unwrap()).unwrap();
    let metadata = Metadata::from_json(&ex.metadata_json()).unwrap();
    assert_eq!(metadata.resolve(&decoded).unwrap(), without_locations);
}

#[test]
fn events_beyond_the_limit_are_refused_and_reported() {
    let recorder = Recorder::with_limit(10);
    assert_eq!(recorder.limit(), Some(10));
    let rec = recorder.thread(7);
    let op = Op::Acquire { lock: 1 };
    for _ in 0..10 {
        rec.record(op, None).unwrap();
    }
    assert_eq!(
        rec.record(op, None),
        Err(RecordError::LimitReached {
            limit: 10,
            rejected: 1
        })
    );
    assert_eq!(
        rec.record(op, Some(3)),
        Err(RecordError::LimitReached {
            limit: 10,
            rejected: 2
        })
    );
    assert_eq!(recorder.recorded(), 10);
    assert_eq!(recorder.rejected(), 2);
    let overflow = RecordError::LimitReached {
        limit: 10,
        rejected: 2,
    };
    assert_eq!(recorder.snapshot(), Err(overflow.clone()));
    // A drain returns the events up to the limit; the refusals are for its caller to see.
    assert_eq!(recorder.drain(4).len(), 4);
    assert_eq!(recorder.drain(usize::MAX).len(), 6);
    assert_eq!(recorder.drain(usize::MAX), vec![]);
    assert_eq!(recorder.pending(), 0);
    let err = recorder.finish().unwrap_err();
    assert_eq!(err, overflow);
    let text = err.to_string();
    assert!(text.contains("limit of 10 events"), "{text}");
    assert!(text.contains("2 more were refused"), "{text}");
    // The message names no Rust API: the runtime's own error names its option.
    assert!(!text.contains("Recorder::"), "{text}");
}

#[test]
fn a_recorder_has_no_limit_by_default() {
    let recorder = Recorder::new();
    assert_eq!(recorder.limit(), None);
    let rec = recorder.thread(0);
    let op = Op::Read {
        addr: 4,
        width: 4,
        atomic: false,
    };
    // More than the old fixed capacity of 4,194,304 events, drained as they come so that
    // the buffers stay small.
    let mut drained = 0u64;
    for i in 0..5_000_000u32 {
        rec.record(op, None).unwrap();
        if i % 100_000 == 99_999 {
            drained += recorder.drain(usize::MAX).len() as u64;
            assert_eq!(recorder.pending(), 0);
        }
    }
    drained += recorder.finish().unwrap().len() as u64;
    assert_eq!(drained, 5_000_000);
    assert_eq!(recorder.rejected(), 0);
}

/// Threads record while a consumer drains: every drain is the next piece of the trace.
/// Each thread writes a shared counter under a real lock and records the value it wrote
/// as the write's address, so the order of the critical sections is known: the drains,
/// concatenated, must hold every value once and in order, every thread's own events in
/// program order, and be lock-consistent; nothing is lost and nothing comes twice.
#[test]
fn drains_under_concurrent_recording_are_consecutive_prefixes() {
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 20_000;
    let recorder = Recorder::new();
    let counter = Mutex::new(0u32);
    let done = AtomicBool::new(false);
    let mut chunks: Vec<Vec<Event>> = Vec::new();
    thread::scope(|s| {
        for tid in 1..=THREADS {
            let rec = recorder.thread(tid);
            let counter = &counter;
            let recorder = &recorder;
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    // Wait for the consumer now and then, as the runtime's threads do, so
                    // that drains and recording really interleave.
                    while recorder.pending() > 5_000 {
                        thread::yield_now();
                    }
                    // Unsynchronized work, numbered in program order.
                    rec.record(
                        Op::Read {
                            addr: i,
                            width: 1,
                            atomic: false,
                        },
                        None,
                    )
                    .unwrap();
                    let mut value = counter.lock().unwrap();
                    rec.record(Op::Acquire { lock: LOCK }, None).unwrap();
                    rec.record(
                        Op::Write {
                            addr: *value,
                            width: 4,
                            atomic: false,
                        },
                        None,
                    )
                    .unwrap();
                    *value += 1;
                    rec.record(Op::Release { lock: LOCK }, None).unwrap();
                    drop(value);
                }
            });
        }
        s.spawn(|| {
            let mut small = true;
            while !done.load(Ordering::SeqCst) {
                // Alternate small and unbounded drains, so that drains end inside chunks
                // and at their ends.
                let chunk = recorder.drain(if small { 777 } else { usize::MAX });
                small = !small;
                if !chunk.is_empty() {
                    chunks.push(chunk);
                }
                thread::yield_now();
            }
        });
        // The drainer stops once it has taken every event.
        while recorder.drained() < u64::from(THREADS * PER_THREAD * 4) {
            thread::yield_now();
        }
        done.store(true, Ordering::SeqCst);
    });
    assert!(chunks.len() > 10, "only {} drains saw events", chunks.len());
    assert_eq!(recorder.finish().unwrap(), vec![], "nothing is left behind");
    let events: Vec<Event> = chunks.concat();
    assert_eq!(
        events.len() as u32,
        THREADS * PER_THREAD * 4,
        "nothing lost or doubled"
    );
    assert_eq!(recorder.drained(), events.len() as u64);
    check_lock_consistency(&events).unwrap();
    let written: Vec<u32> = events
        .iter()
        .filter_map(|e| match e.op {
            Op::Write { addr, .. } => Some(addr),
            _ => None,
        })
        .collect();
    assert_eq!(written, (0..THREADS * PER_THREAD).collect::<Vec<_>>());
    for tid in 1..=THREADS {
        let own: Vec<u32> = events
            .iter()
            .filter(|e| e.thread == tid)
            .filter_map(|e| match e.op {
                Op::Read { addr, .. } => Some(addr),
                _ => None,
            })
            .collect();
        assert_eq!(own, (0..PER_THREAD).collect::<Vec<_>>());
    }
    // Every drained chunk on its own is lock-consistent as a continuation: the whole
    // stream checked chunk by chunk gives the same verdict.
    let mut checker = wasmgrind_core::trace::LockChecker::new();
    for chunk in &chunks {
        checker.events(chunk);
    }
    checker.result().unwrap();
}

/// A thread that starts recording after a drain read the counter, and `close` while
/// threads record: a drain after `close` takes every event that was accepted.
#[test]
fn close_then_drain_takes_the_rest() {
    let recorder = Recorder::new();
    let (accepted, drained) = thread::scope(|s| {
        let workers: Vec<_> = (0..3u32)
            .map(|tid| {
                let recorder = &recorder;
                s.spawn(move || {
                    let rec = recorder.thread(tid);
                    let mut ok = 0u64;
                    while rec.record(Op::Fork { child: 100 + tid }, None).is_ok() {
                        ok += 1;
                    }
                    ok
                })
            })
            .collect();
        let mut drained = 0u64;
        while recorder.recorded() < 50_000 {
            drained += recorder.drain(1000).len() as u64;
        }
        recorder.close();
        drained += recorder.drain(usize::MAX).len() as u64;
        let accepted: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        (accepted, drained)
    });
    assert_eq!(drained, accepted);
    assert_eq!(recorder.recorded(), accepted);
    assert!(recorder.is_finished());
}

#[test]
fn recording_after_finish_is_refused() {
    let recorder = Recorder::with_limit(100);
    let rec = recorder.thread(0);
    rec.record(Op::Fork { child: 1 }, Some(4)).unwrap();
    assert_eq!(
        recorder.finish().unwrap(),
        vec![Event::new(0, Op::Fork { child: 1 }, Some(4))]
    );
    assert!(recorder.is_finished());
    assert_eq!(
        rec.record(Op::Join { child: 1 }, None),
        Err(RecordError::Finished)
    );
    let late = recorder.thread(2);
    assert_eq!(
        late.record(Op::Join { child: 1 }, None),
        Err(RecordError::Finished)
    );
    assert_eq!(recorder.finish().unwrap(), vec![]);
}

/// Threads keep recording while `finish` runs: every event they were told was recorded
/// is in the result, and every other one was refused.
#[test]
fn finish_during_recording_loses_nothing() {
    let recorder = Recorder::new();
    let (events, accepted) = thread::scope(|s| {
        let workers: Vec<_> = (0..3u32)
            .map(|tid| {
                let rec = recorder.thread(tid);
                s.spawn(move || {
                    let mut ok = 0u32;
                    loop {
                        let op = Op::Read {
                            addr: ok,
                            width: 1,
                            atomic: false,
                        };
                        match rec.record(op, None) {
                            Ok(()) => ok += 1,
                            Err(RecordError::Finished) => return ok,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        while recorder.recorded() < 30_000 {
            thread::yield_now();
        }
        let events = recorder.finish().unwrap();
        let accepted: Vec<u32> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (events, accepted)
    });
    for (tid, n) in accepted.iter().enumerate() {
        let own: Vec<u32> = events
            .iter()
            .filter(|e| e.thread == tid as u32)
            .map(|e| match e.op {
                Op::Read { addr, .. } => addr,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(own, (0..*n).collect::<Vec<_>>());
    }
    assert_eq!(events.len() as u64, recorder.recorded());
}

/// The numbers the documentation of `Recorder` states: an event takes its sequence number
/// and the event itself, 32 bytes.
#[test]
fn memory_per_event_is_as_documented() {
    assert_eq!(
        Recorder::BYTES_PER_EVENT,
        std::mem::size_of::<(u64, Event)>()
    );
    assert_eq!(Recorder::BYTES_PER_EVENT, 32);
    assert_eq!(Recorder::with_limit(5).limit(), Some(5));
}
