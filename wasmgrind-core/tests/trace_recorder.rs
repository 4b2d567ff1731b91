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
fn events_beyond_the_capacity_are_refused_and_reported() {
    let recorder = Recorder::with_capacity(10);
    let rec = recorder.thread(7);
    let op = Op::Acquire { lock: 1 };
    for _ in 0..10 {
        rec.record(op, None).unwrap();
    }
    assert_eq!(
        rec.record(op, None),
        Err(RecordError::CapacityExceeded {
            capacity: 10,
            rejected: 1
        })
    );
    assert_eq!(
        rec.record(op, Some(3)),
        Err(RecordError::CapacityExceeded {
            capacity: 10,
            rejected: 2
        })
    );
    assert_eq!(recorder.recorded(), 10);
    assert_eq!(recorder.rejected(), 2);
    let overflow = RecordError::CapacityExceeded {
        capacity: 10,
        rejected: 2,
    };
    assert_eq!(recorder.snapshot(), Err(overflow.clone()));
    let err = recorder.finish().unwrap_err();
    assert_eq!(err, overflow);
    assert!(err.to_string().contains("Recorder::with_capacity"), "{err}");
}

#[test]
fn recording_after_finish_is_refused() {
    let recorder = Recorder::with_capacity(100);
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
/// and the event itself, 32 bytes, and the default capacity is 4,194,304 events, 128 MiB.
#[test]
fn memory_per_event_is_as_documented() {
    assert_eq!(
        Recorder::BYTES_PER_EVENT,
        std::mem::size_of::<(u64, Event)>()
    );
    assert_eq!(Recorder::BYTES_PER_EVENT, 32);
    assert_eq!(Recorder::new().capacity(), 4_194_304);
    assert_eq!(
        Recorder::new().capacity() * Recorder::BYTES_PER_EVENT as u64,
        128 << 20
    );
    assert_eq!(Recorder::with_capacity(5).capacity(), 5);
}
