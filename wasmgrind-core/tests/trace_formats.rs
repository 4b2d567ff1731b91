//! Round trips, golden outputs and limits of the trace formats.

use wasmgrind_core::location::Location;
use wasmgrind_core::trace::{
    export, native, rapid_bin, std_text, DenseEvent, DenseOp, DenseTrace, Event, ExportOptions,
    Exporter, FormatError, IdKind, LockKind, Metadata, Op, Trace,
};

fn location(func_index: u32, name: &str, code_offset: u32, instr: &str) -> Location {
    Location {
        func_index,
        func_name: Some(name.to_string()),
        code_offset,
        instr: instr.to_string(),
    }
}

/// Runtime thread 0 forks thread 5, which takes the lock at 0x1000 around a read and a
/// write of 0x2000; thread 0 meanwhile does two atomic accesses to 0x3000, joins 5 and
/// writes 0x2000 from an event without a location.
fn sample() -> Trace {
    let locations = vec![
        location(3, "main", 100, "call thread_create"),
        location(4, "worker", 200, "call start_lock"),
        location(4, "worker", 210, "call finish_lock"),
        location(4, "worker", 220, "i32.load"),
        location(4, "worker", 230, "i32.store"),
        location(4, "worker", 240, "call start_unlock"),
        location(3, "main", 150, "call thread_join"),
        location(3, "main", 120, "i32.atomic.rmw.add"),
    ];
    let lock = 0x1000;
    let events = vec![
        Event::new(0, Op::Fork { child: 5 }, Some(0)),
        Event::new(5, Op::Request { lock }, Some(1)),
        Event::new(5, Op::Acquire { lock }, Some(2)),
        Event::new(
            5,
            Op::Read {
                addr: 0x2000,
                width: 4,
                atomic: false,
            },
            Some(3),
        ),
        Event::new(
            5,
            Op::Write {
                addr: 0x2000,
                width: 4,
                atomic: false,
            },
            Some(4),
        ),
        Event::new(5, Op::Release { lock }, Some(5)),
        Event::new(
            0,
            Op::Read {
                addr: 0x3000,
                width: 4,
                atomic: true,
            },
            Some(7),
        ),
        Event::new(
            0,
            Op::Write {
                addr: 0x3000,
                width: 4,
                atomic: true,
            },
            Some(7),
        ),
        Event::new(0, Op::Join { child: 5 }, Some(6)),
        Event::new(
            0,
            Op::Write {
                addr: 0x2000,
                width: 4,
                atomic: false,
            },
            None,
        ),
    ];
    Trace::new(events, locations)
}

fn without_atomic_flags(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .map(|e| {
            let op = match e.op {
                Op::Read { addr, width, .. } => Op::Read {
                    addr,
                    width,
                    atomic: false,
                },
                Op::Write { addr, width, .. } => Op::Write {
                    addr,
                    width,
                    atomic: false,
                },
                op => op,
            };
            Event::new(e.thread, op, e.location)
        })
        .collect()
}

const SAMPLE_STD: &str = "\
T0|fork(T1)|0
T1|req(L0)|1
T1|acq(L0)|2
T1|r(V0)|3
T1|w(V0)|4
T1|rel(L0)|5
T0|r(V1)|6
T0|w(V1)|6
T0|join(T1)|7
T0|w(V0)|8
";

const SAMPLE_STD_ATOMICS: &str = "\
T0|fork(T1)|0
T1|req(L0)|1
T1|acq(L0)|2
T1|r(V0)|3
T1|w(V0)|4
T1|rel(L0)|5
T0|acq(L1)|6
T0|r(V1)|6
T0|rel(L1)|6
T0|acq(L1)|6
T0|w(V1)|6
T0|rel(L1)|6
T0|join(T1)|7
T0|w(V0)|8
";

#[test]
fn std_text_matches_golden_output() {
    let with_requests = ExportOptions {
        lock_requests: true,
        ..ExportOptions::default()
    };
    let plain = export(&sample(), with_requests).unwrap();
    assert_eq!(plain.std_text(), SAMPLE_STD);
    let atomics = export(
        &sample(),
        ExportOptions {
            atomics_as_locks: true,
            lock_requests: true,
        },
    )
    .unwrap();
    assert_eq!(atomics.std_text(), SAMPLE_STD_ATOMICS);
    assert_eq!(std_text::encode_event(&plain.trace.events[3]), "T1|r(V0)|3");
}

#[test]
fn default_export_has_only_the_ops_upstream_rapid_parses() {
    // Upstream RAPID's STD parser knows acq, rel, r, w, fork and join; it misreads `req`.
    let default = export(&sample(), ExportOptions::default()).unwrap();
    let std = default.std_text();
    let want: String = SAMPLE_STD
        .lines()
        .filter(|l| !l.contains("|req("))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(want, SAMPLE_STD, "the sample has a request to leave out");
    // Dense location ids are given in order of appearance, so compare the ops only.
    let ops = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.rsplit_once('|').unwrap().0.to_owned())
            .collect()
    };
    assert_eq!(ops(&std), ops(&want));
    for line in std.lines() {
        let op = line.split('|').nth(1).unwrap();
        let name = &op[..op.find('(').unwrap()];
        assert!(
            ["acq", "rel", "r", "w", "fork", "join"].contains(&name),
            "{line}"
        );
    }
}

#[test]
fn rapid_bin_header_and_words_match_hand_computed_bytes() {
    let with_requests = ExportOptions {
        lock_requests: true,
        ..ExportOptions::default()
    };
    let bin = export(&sample(), with_requests)
        .unwrap()
        .rapid_bin()
        .unwrap();
    assert_eq!(bin.len(), 18 + 8 * 10);
    #[rustfmt::skip]
    let header = [
        0x00, 0x02,                   // 2 threads (i16)
        0x00, 0x00, 0x00, 0x01,       // 1 lock (i32)
        0x00, 0x00, 0x00, 0x02,       // 2 variables (i32)
        0, 0, 0, 0, 0, 0, 0, 10,      // 10 events (i64)
    ];
    assert_eq!(bin[..18], header);
    // fork(T1) by T0 at location 0: op 4 << 10 | decor 1 << 14 = 0x5000.
    assert_eq!(bin[18..26], [0, 0, 0, 0, 0, 0, 0x50, 0x00]);
    // T1 w(V0) at location 4: thread 1 | op 3 << 10 | location 4 << 48.
    assert_eq!(bin[18 + 4 * 8..18 + 5 * 8], [0, 4, 0, 0, 0, 0, 0x0C, 0x01]);
    // T0 w(V0) at location 8 (the event without a location).
    assert_eq!(bin[18 + 9 * 8..], [0, 8, 0, 0, 0, 0, 0x0C, 0x00]);

    // thread 1, write, decor 2, location 5: 1 + 3*2^10 + 2*2^14 + 5*2^48.
    let e = DenseEvent {
        thread: 1,
        op: DenseOp::Write { var: 2 },
        location: 5,
    };
    assert_eq!(rapid_bin::encode_event(&e), 0x0005_0000_0000_8C01);
    let header = DenseTrace {
        threads: 2,
        locks: 0,
        variables: 3,
        events: vec![],
    };
    assert_eq!(
        rapid_bin::decode_event(0, 0x0005_0000_0000_8C01, &header),
        Ok(e)
    );
    // A request (op code 8) of the largest lock id a 34-bit decor holds, at the largest
    // location: every field at its top bit.
    let top = DenseEvent {
        thread: 1023,
        op: DenseOp::Request { lock: 0 },
        location: 32767,
    };
    assert_eq!(rapid_bin::encode_event(&top), 0x7FFF_0000_0000_23FF);
}

#[test]
fn rapid_bin_round_trips_and_resolves() {
    for atomics_as_locks in [false, true] {
        let trace = sample();
        let ex = export(
            &trace,
            ExportOptions {
                atomics_as_locks,
                lock_requests: true,
            },
        )
        .unwrap();
        let bin = ex.rapid_bin().unwrap();
        let decoded = rapid_bin::decode(&bin).unwrap();
        assert_eq!(decoded, ex.trace);
        assert_eq!(rapid_bin::encode(&decoded).unwrap(), bin);

        let metadata = Metadata::from_json(&ex.metadata_json()).unwrap();
        assert_eq!(metadata, ex.metadata);
        let events = metadata.resolve(&decoded).unwrap();
        if atomics_as_locks {
            assert_eq!(events, trace.events);
        } else {
            assert_eq!(events, without_atomic_flags(&trace.events));
        }
        for info in metadata.locations.iter().flatten() {
            assert_eq!(info.location, trace.locations[info.id as usize]);
        }
    }
}

#[test]
fn std_text_round_trips() {
    for atomics_as_locks in [false, true] {
        let ex = export(
            &sample(),
            ExportOptions {
                atomics_as_locks,
                lock_requests: true,
            },
        )
        .unwrap();
        let text = ex.std_text();
        let decoded = std_text::decode(&text).unwrap();
        assert_eq!(decoded, ex.trace);
        assert_eq!(std_text::encode(&decoded), text);
        // The same trace read from RapidBin and from STD resolves to the same events.
        let from_bin = rapid_bin::decode(&ex.rapid_bin().unwrap()).unwrap();
        assert_eq!(
            ex.metadata.resolve(&decoded).unwrap(),
            ex.metadata.resolve(&from_bin).unwrap()
        );
    }
    // CRLF line ends and blank lines are accepted.
    let crlf = SAMPLE_STD.replace('\n', "\r\n\r\n");
    assert_eq!(
        std_text::decode(&crlf).unwrap(),
        std_text::decode(SAMPLE_STD).unwrap()
    );
}

#[test]
fn metadata_json_maps_every_dense_id_back() {
    let ex = export(
        &sample(),
        ExportOptions {
            atomics_as_locks: true,
            lock_requests: true,
        },
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ex.metadata_json()).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["atomics_as_locks"], true);
    assert_eq!(
        v["counts"],
        serde_json::json!({
            "threads": 2, "locks": 2, "variables": 2, "locations": 9, "events": 14
        })
    );
    assert_eq!(v["threads"], serde_json::json!([0, 5]));
    assert_eq!(
        v["locks"],
        serde_json::json!([
            { "address": 0x1000, "kind": "lock" },
            { "address": 0x3000, "kind": "atomic" }
        ])
    );
    assert_eq!(
        v["variables"],
        serde_json::json!([
            { "address": 0x2000, "width": 4 },
            { "address": 0x3000, "width": 4 }
        ])
    );
    let locations = v["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 9);
    assert_eq!(
        locations[0],
        serde_json::json!({
            "id": 0, "func_index": 3, "func_name": "main", "function": "main",
            "code_offset": 100, "instr": "call thread_create"
        })
    );
    // `function` is written right after `func_name`.
    let text = ex.metadata_json();
    let first = text.find("\"func_name\"").unwrap();
    assert!(
        text[first..].find("\"function\"").unwrap()
            < text[first..].find("\"code_offset\"").unwrap()
    );
    // Dense location 6 is the first location that appeared after 5: table entry 7.
    assert_eq!(locations[6]["id"], 7);
    assert_eq!(locations[6]["instr"], "i32.atomic.rmw.add");
    assert_eq!(locations[7]["id"], 6);
    assert!(locations[8].is_null());
    assert_eq!(ex.metadata.location(8), None);
    assert_eq!(ex.metadata.locks[1].kind, LockKind::Atomic);
}

/// A location's `function` is its demangled name, next to the raw `func_name`; a name
/// that is not a Rust symbol stays as it is, and a location without a name has neither.
#[test]
fn metadata_locations_name_functions_demangled() {
    let mangled = "_ZN6guests4racy14racy_increment17h0123456789abcdefE";
    let mut unnamed = location(5, "", 30, "i32.load");
    unnamed.func_name = None;
    let trace = Trace::new(
        vec![
            Event::new(0, Op::Fork { child: 1 }, Some(0)),
            Event::new(1, Op::Acquire { lock: 64 }, Some(1)),
            Event::new(1, Op::Release { lock: 64 }, Some(2)),
        ],
        vec![
            location(3, mangled, 10, "call thread_create"),
            location(4, "plain_c_name", 20, "call finish_lock"),
            unnamed,
        ],
    );
    let ex = export(&trace, ExportOptions::default()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&ex.metadata_json()).unwrap();
    let locations = &v["locations"];
    assert_eq!(locations[0]["func_name"], mangled);
    assert_eq!(locations[0]["function"], "guests::racy::racy_increment");
    assert_eq!(locations[1]["function"], "plain_c_name");
    assert!(locations[2]["func_name"].is_null() && locations[2]["function"].is_null());
    assert_eq!(
        ex.metadata.location(0).unwrap().function().as_deref(),
        Some("guests::racy::racy_increment")
    );
    // Reading the JSON back gives the same metadata: `function` is derived, not stored.
    assert_eq!(
        Metadata::from_json(&ex.metadata_json()).unwrap(),
        ex.metadata
    );
}

/// The formats in the module documentation (`trace.md`, which the book includes) are real
/// output.
#[test]
fn module_documentation_examples_are_accurate() {
    let source = include_str!("../src/trace/trace.md");
    let block = |fence: &str| -> String {
        let doc: Vec<&str> = source.lines().collect();
        let start = doc.iter().position(|l| *l == fence).unwrap() + 1;
        let len = doc[start..].iter().position(|l| *l == "```").unwrap();
        doc[start..start + len].join("\n") + "\n"
    };

    // The JSON example is the metadata of the trace its caption describes.
    let mut locations = vec![location(0, "unused", 0, "nop"); 7];
    locations.push(location(3, "main", 291, "call thread_create"));
    let trace = Trace::new(
        vec![
            Event::new(0, Op::Fork { child: 1 }, Some(7)),
            Event::new(1, Op::Acquire { lock: 1024 }, None),
            Event::new(
                1,
                Op::Write {
                    addr: 2048,
                    width: 4,
                    atomic: true,
                },
                None,
            ),
            Event::new(1, Op::Release { lock: 1024 }, None),
        ],
        locations,
    );
    let ex = export(
        &trace,
        ExportOptions {
            atomics_as_locks: true,
            lock_requests: true,
        },
    )
    .unwrap();
    let documented = Metadata::from_json(&block("```json")).unwrap();
    assert_eq!(documented, ex.metadata);

    // The STD example decodes, and is a consistent fork/lock/join trace.
    let text = block("```text");
    let dense = std_text::decode(&text).unwrap();
    assert_eq!(std_text::encode(&dense), text);
    assert_eq!((dense.threads, dense.locks, dense.variables), (2, 1, 1));
}

/// A deterministic pseudo-random generator, so that the big round trip needs no crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(bound)) as u32
    }
}

/// 50,000 random events of 300 threads (forks and joins of 400 thread ids), 64 locks,
/// 5,000 addresses and 3,000 locations; one event in ten has none.
fn random_trace(seed: u64) -> Trace {
    let mut rng = Lcg(seed);
    let locations: Vec<Location> = (0..3000)
        .map(|i| location(i % 50, &format!("f{i}"), i * 3, "i32.load"))
        .collect();
    let events: Vec<Event> = (0..50_000)
        .map(|_| {
            let thread = 1000 + rng.next(300);
            let op = match rng.next(7) {
                0 => Op::Request {
                    lock: rng.next(64) * 8,
                },
                1 => Op::Acquire {
                    lock: rng.next(64) * 8,
                },
                2 => Op::Release {
                    lock: rng.next(64) * 8,
                },
                3 => Op::Read {
                    addr: rng.next(5000) * 4,
                    width: 1 << rng.next(4),
                    atomic: rng.next(3) == 0,
                },
                4 => Op::Write {
                    addr: rng.next(5000) * 4,
                    width: 1 << rng.next(4),
                    atomic: rng.next(3) == 0,
                },
                5 => Op::Fork {
                    child: 1000 + rng.next(400),
                },
                _ => Op::Join {
                    child: 1000 + rng.next(400),
                },
            };
            let location = (rng.next(10) != 0).then(|| rng.next(3000));
            Event::new(thread, op, location)
        })
        .collect();
    Trace::new(events, locations)
}

#[test]
fn large_random_trace_round_trips_through_every_format() {
    let trace = random_trace(42);
    for atomics_as_locks in [false, true] {
        let ex = export(
            &trace,
            ExportOptions {
                atomics_as_locks,
                lock_requests: true,
            },
        )
        .unwrap();
        let from_bin = rapid_bin::decode(&ex.rapid_bin().unwrap()).unwrap();
        let from_std = std_text::decode(&ex.std_text()).unwrap();
        assert_eq!(from_bin, ex.trace);
        assert_eq!(from_std, ex.trace);
        let metadata = Metadata::from_json(&ex.metadata_json()).unwrap();
        let events = metadata.resolve(&from_bin).unwrap();
        if atomics_as_locks {
            assert_eq!(events, trace.events);
        } else {
            assert_eq!(events, without_atomic_flags(&trace.events));
        }
        // Dense ids are in order of first appearance.
        let mut next_thread = 0;
        for e in &ex.trace.events {
            let child = (e.op.decor_kind() == IdKind::Thread).then(|| e.op.decor());
            for t in [Some(e.thread), child].into_iter().flatten() {
                assert!(t <= next_thread);
                if t == next_thread {
                    next_thread += 1;
                }
            }
        }
        assert_eq!(next_thread, ex.trace.threads);
    }
}

/// The exporter fed a trace in chunks of any size writes byte for byte what the export
/// of the whole trace writes: RapidBin (header at the end, over a placeholder), STD, the
/// metadata, and the native records.
#[test]
fn chunked_export_is_byte_identical_to_the_whole_export() {
    let trace = random_trace(7);
    for options in [
        ExportOptions::default(),
        ExportOptions {
            atomics_as_locks: true,
            lock_requests: true,
        },
    ] {
        let whole = export(&trace, options).unwrap();
        let whole_bin = whole.rapid_bin().unwrap();
        let whole_std = whole.std_text();
        let whole_native = native::encode(&trace.events);
        for chunk in [1, 2, 3, 17, 1000, 4096, 49_999, 50_000, 1 << 20] {
            let mut bin = vec![0u8; rapid_bin::HEADER_LEN];
            let mut std = String::new();
            let mut wg = native::header(None).to_vec();
            let mut bin_exporter = Exporter::new(trace.locations.clone(), options);
            let mut std_exporter = Exporter::new(trace.locations.clone(), options);
            let mut dense_exporter = Exporter::new(trace.locations.clone(), options);
            let mut dense = Vec::new();
            for part in trace.events.chunks(chunk) {
                let words = bin_exporter.rapid_bin_into(part, &mut bin).unwrap();
                let lines = std_exporter.std_into(part, &mut std).unwrap();
                assert_eq!(words, lines);
                dense_exporter.dense_into(part, &mut dense).unwrap();
                native::encode_into(&mut wg, part);
            }
            bin[..rapid_bin::HEADER_LEN].copy_from_slice(&bin_exporter.rapid_bin_header().unwrap());
            native::set_count(&mut wg, trace.events.len() as u64).unwrap();
            assert!(bin == whole_bin, "RapidBin differs with chunks of {chunk}");
            assert!(std == whole_std, "STD differs with chunks of {chunk}");
            assert!(wg == whole_native, "native differs with chunks of {chunk}");
            assert_eq!(dense, whole.trace.events);
            assert_eq!(bin_exporter.metadata(), whole.metadata);
            assert_eq!(std_exporter.into_metadata(), whole.metadata);
            assert_eq!(dense_exporter.counts(), whole.metadata.counts);
        }
    }
}

/// A limit passed in a later chunk fails that chunk with the same named error as the
/// whole export, and the exporter stays spent.
#[test]
fn a_limit_passed_in_a_chunk_fails_it_and_every_later_one() {
    let read = Op::Read {
        addr: 0,
        width: 4,
        atomic: false,
    };
    let mut events: Vec<Event> = (0..1025).map(|t| Event::new(t, read, None)).collect();
    events.push(Event::new(0, read, None));
    let whole = export(
        &Trace::new(events.clone(), vec![]),
        ExportOptions::default(),
    );
    assert_eq!(
        whole.unwrap_err(),
        FormatError::TooManyThreads { count: 1025 }
    );
    let mut exporter = Exporter::new(vec![], ExportOptions::default());
    let mut out = Vec::new();
    exporter.rapid_bin_into(&events[..1000], &mut out).unwrap();
    assert_eq!(out.len(), 1000 * 8);
    let err = exporter
        .rapid_bin_into(&events[1000..], &mut out)
        .unwrap_err();
    assert_eq!(err, FormatError::TooManyThreads { count: 1025 });
    assert_eq!(out.len(), 1000 * 8, "a failed chunk writes nothing");
    assert_eq!(
        exporter.rapid_bin_into(&events[..1], &mut out),
        Err(err.clone())
    );
    assert_eq!(exporter.rapid_bin_header(), Err(err));
    // An unknown location names its position in the whole trace, not in the chunk.
    let mut exporter = Exporter::new(vec![], ExportOptions::default());
    exporter.rapid_bin_into(&events[..10], &mut out).unwrap();
    let located = [Event::new(0, read, Some(3))];
    assert_eq!(
        exporter.rapid_bin_into(&located, &mut out),
        Err(FormatError::UnknownLocation {
            event: 10,
            location: 3,
            table_len: 0
        })
    );
}

#[test]
fn thread_limit_is_a_named_error() {
    let read = Op::Read {
        addr: 0,
        width: 4,
        atomic: false,
    };
    let at_limit: Vec<Event> = (0..1024).map(|t| Event::new(t, read, None)).collect();
    let ex = export(
        &Trace::new(at_limit.clone(), vec![]),
        ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(ex.trace.threads, 1024);
    let bin = ex.rapid_bin().unwrap();
    assert_eq!(bin[..2], [0x04, 0x00]);
    assert_eq!(rapid_bin::decode(&bin).unwrap(), ex.trace);

    // One more thread, here only named by a fork.
    let mut over = at_limit;
    over.push(Event::new(0, Op::Fork { child: 5000 }, None));
    let err = export(&Trace::new(over, vec![]), ExportOptions::default()).unwrap_err();
    assert_eq!(err, FormatError::TooManyThreads { count: 1025 });
    assert!(err.to_string().contains("at most 1024"), "{err}");

    let hand_built = DenseTrace {
        threads: 1025,
        ..DenseTrace::default()
    };
    assert_eq!(
        rapid_bin::encode(&hand_built),
        Err(FormatError::TooManyThreads { count: 1025 })
    );
    // A header announcing 1025 threads is refused too.
    let mut header = vec![0x04, 0x01];
    header.extend_from_slice(&[0; 16]);
    assert_eq!(
        rapid_bin::decode(&header),
        Err(FormatError::TooManyThreads { count: 1025 })
    );
}

#[test]
fn location_limit_is_a_named_error() {
    let table: Vec<Location> = (0..32_768)
        .map(|i| location(0, "f", i, "i32.load"))
        .collect();
    let read = Op::Read {
        addr: 0,
        width: 4,
        atomic: false,
    };
    let at_limit: Vec<Event> = (0..32_768).map(|l| Event::new(0, read, Some(l))).collect();
    let ex = export(
        &Trace::new(at_limit.clone(), table.clone()),
        ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(ex.metadata.counts.locations, 32_768);
    let bin = ex.rapid_bin().unwrap();
    assert_eq!(rapid_bin::decode(&bin).unwrap(), ex.trace);

    // "No location" takes a dense id like any location.
    let mut over = at_limit;
    over.push(Event::new(0, read, None));
    assert_eq!(
        export(&Trace::new(over, table), ExportOptions::default()),
        Err(FormatError::TooManyLocations { count: 32_769 })
    );

    let hand_built = DenseTrace {
        threads: 1,
        locks: 0,
        variables: 1,
        events: vec![DenseEvent {
            thread: 0,
            op: DenseOp::Read { var: 0 },
            location: 32_768,
        }],
    };
    assert_eq!(
        rapid_bin::encode(&hand_built),
        Err(FormatError::LocationOutOfRange {
            event: 0,
            location: 32_768
        })
    );
}

#[test]
fn lock_and_variable_limits_are_named_errors() {
    let locks = DenseTrace {
        locks: 1 << 31,
        ..DenseTrace::default()
    };
    assert_eq!(
        rapid_bin::encode(&locks),
        Err(FormatError::TooManyLocks { count: 1 << 31 })
    );
    let variables = DenseTrace {
        variables: u32::MAX,
        ..DenseTrace::default()
    };
    assert_eq!(
        rapid_bin::encode(&variables),
        Err(FormatError::TooManyVariables {
            count: u64::from(u32::MAX)
        })
    );
    // The largest counts the i32 header fields hold are fine.
    let max = DenseTrace {
        threads: 1024,
        locks: i32::MAX as u32,
        variables: i32::MAX as u32,
        events: vec![],
    };
    let bin = rapid_bin::encode(&max).unwrap();
    assert_eq!(bin[2..10], [0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF]);
    assert_eq!(rapid_bin::decode(&bin).unwrap(), max);
}

#[test]
fn ids_beyond_their_counts_are_refused() {
    let trace = DenseTrace {
        threads: 1,
        locks: 1,
        variables: 0,
        events: vec![DenseEvent {
            thread: 0,
            op: DenseOp::Fork { child: 1 },
            location: 0,
        }],
    };
    assert_eq!(
        rapid_bin::encode(&trace),
        Err(FormatError::IdOutOfRange {
            event: 0,
            kind: IdKind::Thread,
            id: 1,
            count: 1
        })
    );
    // The same event in a file whose header says one thread.
    let mut bin = rapid_bin::encode(&DenseTrace {
        threads: 2,
        ..trace.clone()
    })
    .unwrap();
    bin[1] = 1;
    assert_eq!(
        rapid_bin::decode(&bin),
        Err(FormatError::IdOutOfRange {
            event: 0,
            kind: IdKind::Thread,
            id: 1,
            count: 1
        })
    );
    // A decor beyond u32 (34-bit field) is reported with its full value.
    let mut header = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let word: u64 = (1 << 47) | (u64::from(rapid_bin::OP_ACQUIRE) << 10);
    header.extend_from_slice(&word.to_be_bytes());
    assert_eq!(
        rapid_bin::decode(&header),
        Err(FormatError::IdOutOfRange {
            event: 0,
            kind: IdKind::Lock,
            id: 1 << 33,
            count: 1
        })
    );
}

fn bin_with_events(words: &[u64]) -> Vec<u8> {
    let mut out = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    out.extend_from_slice(&(words.len() as i64).to_be_bytes());
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out
}

#[test]
fn malformed_rapid_bin_is_refused() {
    assert_eq!(
        rapid_bin::decode(&[0; 10]),
        Err(FormatError::Truncated {
            needed: 18,
            actual: 10
        })
    );
    let good = bin_with_events(&[2 << 10, 3 << 10]);
    assert!(rapid_bin::decode(&good).is_ok());
    assert_eq!(
        rapid_bin::decode(&good[..good.len() - 1]),
        Err(FormatError::Truncated {
            needed: 34,
            actual: 33
        })
    );
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        rapid_bin::decode(&long),
        Err(FormatError::TrailingBytes {
            expected: 34,
            actual: 35
        })
    );
    let mut negative = good.clone();
    negative[2] = 0x80;
    assert_eq!(
        rapid_bin::decode(&negative),
        Err(FormatError::NegativeCount {
            field: "lock",
            value: i64::from(i32::MIN) + 1
        })
    );
    let mut huge = good.clone();
    huge[10] = 0x7F;
    assert!(matches!(
        rapid_bin::decode(&huge),
        Err(FormatError::Truncated { .. })
    ));
    assert_eq!(
        rapid_bin::decode(&bin_with_events(&[2 << 10, 1 << 63])),
        Err(FormatError::SignBitSet { event: 1 })
    );
    let begin = bin_with_events(&[6 << 10]);
    let err = rapid_bin::decode(&begin).unwrap_err();
    assert_eq!(err, FormatError::UnknownOpCode { event: 0, code: 6 });
    assert!(err.to_string().contains("transaction"), "{err}");
}

#[test]
fn malformed_std_text_is_refused_with_its_line() {
    for bad in [
        "T0|r(V0)",
        "T0|r(V0)|1|2",
        "0|r(V0)|1",
        "T0|r(L0)|1",
        "T0|acq(V0)|1",
        "T0|read(V0)|1",
        "T0|r(V0|1",
        "T0|r(V)|1",
        "T0|r(V+1)|1",
        "T0|r(V0)|x",
        "T-1|r(V0)|1",
        "T0|r(V0)|1 ",
        "T0|fork(T99999999999)|1",
    ] {
        let text = format!("T0|w(V0)|0\n\n{bad}\n");
        match std_text::decode(&text) {
            Err(FormatError::StdSyntax { line, text, .. }) => {
                assert_eq!(line, 3, "{bad}");
                assert_eq!(text, bad);
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert_eq!(
        std_text::decode("T0|fork(T1024)|0\n"),
        Err(FormatError::TooManyThreads { count: 1025 })
    );
}

#[test]
fn export_refuses_locations_outside_the_table() {
    let trace = Trace::new(
        vec![Event::new(0, Op::Fork { child: 1 }, Some(3))],
        vec![location(0, "f", 0, "call thread_create")],
    );
    let err = export(&trace, ExportOptions::default()).unwrap_err();
    assert_eq!(
        err,
        FormatError::UnknownLocation {
            event: 0,
            location: 3,
            table_len: 1
        }
    );
}

#[test]
fn metadata_is_checked_against_itself_and_the_trace() {
    let ex = export(&sample(), ExportOptions::default()).unwrap();
    assert!(matches!(
        Metadata::from_json("{"),
        Err(FormatError::Json { .. })
    ));
    let mut wrong_count = ex.metadata.clone();
    wrong_count.counts.threads = 3;
    assert_eq!(
        Metadata::from_json(&wrong_count.to_json()),
        Err(FormatError::MetadataMismatch {
            what: "thread count",
            metadata: 3,
            trace: 2
        })
    );
    let mut version = ex.metadata.clone();
    version.format_version = 2;
    assert_eq!(
        Metadata::from_json(&version.to_json()),
        Err(FormatError::UnsupportedVersion { version: 2 })
    );
    // Metadata of another trace.
    let other = export(
        &sample(),
        ExportOptions {
            atomics_as_locks: true,
            lock_requests: true,
        },
    )
    .unwrap();
    assert_eq!(
        ex.metadata.resolve(&other.trace),
        Err(FormatError::MetadataMismatch {
            what: "lock count",
            metadata: 1,
            trace: 2
        })
    );
}

#[test]
fn broken_pseudo_lock_brackets_are_refused() {
    let ex = export(
        &sample(),
        ExportOptions {
            atomics_as_locks: true,
            lock_requests: true,
        },
    )
    .unwrap();
    // Events 6..9 are acq(L1) r(V1) rel(L1). Drop the release (keeping the count).
    let mut broken = ex.trace.clone();
    broken.events[8] = broken.events[5];
    assert_eq!(
        ex.metadata.resolve(&broken),
        Err(FormatError::AtomicBracket { event: 8 })
    );
    // A pseudo-lock released on its own.
    let mut lone = ex.trace.clone();
    lone.events[6] = lone.events[8];
    assert_eq!(
        ex.metadata.resolve(&lone),
        Err(FormatError::AtomicBracket { event: 6 })
    );
}

#[test]
fn events_serialize_as_flat_json() {
    let e = Event::new(
        3,
        Op::Write {
            addr: 16,
            width: 8,
            atomic: true,
        },
        Some(2),
    );
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "thread": 3, "op": "write", "addr": 16, "width": 8, "atomic": true, "location": 2
        })
    );
    assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
    assert_eq!(
        e.to_string(),
        "thread 3: atomic write of 8 bytes at 0x10 (location 2)"
    );
}
