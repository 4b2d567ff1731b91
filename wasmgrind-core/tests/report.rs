//! The reports and the symbolizer: demangling, DWARF `file:line` on a real module
//! (`fixtures/dwarf.wasm`, built from `fixtures/dwarf.rs`), offsets of a patched module, and
//! the text and JSON of hand-made findings.

use wasmgrind_core::analysis::report::{report, Report};
use wasmgrind_core::analysis::symbolize::{
    demangle, Frame, InlinedFrame, SymbolizeError, Symbolizer,
};
use wasmgrind_core::analysis::{
    Access, AccessKind, BlockedThread, Findings, LiveDeadlock, LockEdge, PotentialDeadlock, Race,
};
use wasmgrind_core::location::Location;
use wasmparser::{Operator, Parser, Payload};

/// `fixtures/dwarf.rs` compiled with DWARF line tables (the command is in the README).
const FIXTURE: &[u8] = include_bytes!("fixtures/dwarf.wasm");
/// The v0-mangled name of `dwarf::bump` in the fixture's name section.
const BUMP: &str = "_RNvCs4aOmKJFHtVA_5dwarf4bump";
/// The standard library's source directory as the fixture records it.
const CORE: &str = "/rustc/nightly-2026-05-20/library/core/src";

fn location(func_name: Option<&str>, code_offset: u32, instr: &str) -> Location {
    Location {
        func_index: 0,
        func_name: func_name.map(str::to_string),
        code_offset,
        instr: instr.to_string(),
    }
}

/// The code offset of the `nth` operator of the module's function body `body` that `pick`
/// accepts.
fn offset_of(wasm: &[u8], body: usize, pick: fn(&Operator) -> bool, nth: usize) -> u32 {
    let mut code_start = 0;
    let mut bodies = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            Payload::CodeSectionStart {
                unchecked_range, ..
            } => code_start = unchecked_range.start,
            Payload::CodeSectionEntry(b) => {
                if bodies == body {
                    let mut reader = b.get_operators_reader().unwrap();
                    let mut seen = 0;
                    while !reader.eof() {
                        let (op, offset) = reader.read_with_offset().unwrap();
                        if pick(&op) {
                            if seen == nth {
                                return (offset - code_start) as u32;
                            }
                            seen += 1;
                        }
                    }
                }
                bodies += 1;
            }
            _ => {}
        }
    }
    panic!("no such operator in body {body}");
}

fn is_store(op: &Operator) -> bool {
    matches!(op, Operator::I32Store { .. })
}

fn is_load(op: &Operator) -> bool {
    matches!(op, Operator::I32Load { .. })
}

/// The store of `bump` (`*counter = …`, line 21), in function body 0.
fn bump_store() -> Location {
    location(
        Some(BUMP),
        offset_of(FIXTURE, 0, is_store, 0),
        "i32.store offset=1048580",
    )
}

/// The volatile store of `set_flag` (line 28), inlined into `run` (line 39), in body 1.
fn run_store() -> Location {
    location(
        Some("run"),
        offset_of(FIXTURE, 1, is_store, 0),
        "i32.store offset=1048576",
    )
}

// ---------------------------------------------------------------------------------------
// Demangling

#[test]
fn demangles_legacy_names_without_the_hash() {
    assert_eq!(
        demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"),
        "core::ptr::drop_in_place"
    );
    assert_eq!(
        demangle(
            "_ZN70_$LT$alloc..vec..Vec$LT$T$C$A$GT$$u20$as$u20$core..ops..drop..Drop$GT$4drop\
             17h0123456789abcdefE"
        ),
        "<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop"
    );
}

#[test]
fn demangles_v0_names() {
    assert_eq!(demangle(BUMP), "dwarf::bump");
    assert_eq!(
        demangle(
            "_RNvMsn_NtCsapkc4Ojsv9W_5alloc4syncINtB5_3ArcINtNtCs32P4wN9CWnj_15wasmgrind_guest\
             6thread6PacketbEE9drop_slowCscIGtdL03CXV_5locks"
        ),
        "<alloc::sync::Arc<wasmgrind_guest::thread::Packet<bool>>>::drop_slow"
    );
}

#[test]
fn leaves_other_names_alone() {
    assert_eq!(demangle("run"), "run");
    assert_eq!(demangle("__wasm_init_memory"), "__wasm_init_memory");
    assert_eq!(demangle("_ZN_garbage"), "_ZN_garbage");
}

#[test]
fn a_frame_without_a_symbolizer_only_demangles() {
    let frame = Frame::from_location(&location(Some(BUMP), 0x11, "i32.store"));
    assert_eq!(frame.function.as_deref(), Some("dwarf::bump"));
    assert_eq!(frame.raw_function.as_deref(), Some(BUMP));
    assert_eq!((frame.file, frame.line, frame.column), (None, None, None));
    assert_eq!(
        (frame.code_offset, frame.instr.as_str()),
        (0x11, "i32.store")
    );
    assert!(frame.inlined.is_empty());
}

// ---------------------------------------------------------------------------------------
// DWARF

#[test]
fn resolves_file_and_line_from_the_fixtures_dwarf() {
    let symbolizer = Symbolizer::new(FIXTURE).unwrap();
    assert!(symbolizer.has_dwarf());

    // `*counter = (*counter).wrapping_add(by);` in `bump`, not inlined anywhere.
    let frame = symbolizer.frame(&bump_store());
    assert_eq!(frame.function.as_deref(), Some("dwarf::bump"));
    assert_eq!(frame.raw_function.as_deref(), Some(BUMP));
    // The compilation directory (`/fixture`) is taken off.
    assert_eq!(frame.file.as_deref(), Some("dwarf.rs"));
    assert_eq!((frame.line, frame.column), (Some(21), Some(9)));
    assert!(frame.inlined.is_empty());

    // Its load is the same line; the `wrapping_add` between them is inlined from core.
    let load = location(Some(BUMP), offset_of(FIXTURE, 0, is_load, 0), "i32.load");
    let frame = symbolizer.frame(&load);
    assert_eq!((frame.line, frame.column), (Some(21), Some(20)));
    let add = symbolizer.frame(&location(
        Some(BUMP),
        offset_of(FIXTURE, 0, |op| matches!(op, Operator::I32Add), 0),
        "i32.add",
    ));
    assert_eq!((add.line, add.column), (Some(21), Some(31)));
    assert_eq!(
        add.inlined,
        [InlinedFrame {
            function: Some("wrapping_add".into()),
            file: Some(format!("{CORE}/num/uint_macros.rs")),
            line: Some(2584),
            column: Some(13),
        }]
    );

    // `set_flag(n)` (line 39) inlined into `run`: `write_volatile` inlined into `set_flag`
    // (line 28) holds the store.
    let frame = symbolizer.frame(&run_store());
    assert_eq!(frame.function.as_deref(), Some("run"));
    assert_eq!(frame.file.as_deref(), Some("dwarf.rs"));
    assert_eq!((frame.line, frame.column), (Some(39), Some(5)));
    assert_eq!(
        frame.inlined,
        [
            InlinedFrame {
                function: Some("write_volatile<u32>".into()),
                file: Some(format!("{CORE}/ptr/mod.rs")),
                line: Some(2194),
                column: Some(9),
            },
            InlinedFrame {
                function: Some("set_flag".into()),
                file: Some("dwarf.rs".into()),
                line: Some(28),
                column: Some(14),
            },
        ]
    );

    // `read_volatile(&raw const COUNTER)` on line 40.
    let read = location(Some("run"), offset_of(FIXTURE, 1, is_load, 0), "i32.load");
    assert_eq!(symbolizer.frame(&read).line, Some(40));
}

#[test]
fn the_code_offsets_are_dwarfs_addresses() {
    // DWARF's `bump` starts at 2: the function count (1 byte) and the body size (1 byte)
    // precede it in the code section's payload.
    let symbolizer = Symbolizer::new(FIXTURE).unwrap();
    let store = bump_store();
    assert_eq!(
        symbolizer.dwarf_address(store.code_offset),
        Some(store.code_offset)
    );
    assert_eq!(store.code_offset, 0x11);
    assert_eq!(run_store().code_offset, 0x44);
}

#[test]
fn a_module_without_dwarf_only_demangles() {
    // An empty module: no custom sections, so no DWARF.
    let bare = b"\0asm\x01\0\0\0";
    let symbolizer = Symbolizer::new(bare).unwrap();
    assert!(!symbolizer.has_dwarf());
    let frame = symbolizer.frame(&location(Some(BUMP), 0x11, "i32.store"));
    assert_eq!(
        frame,
        Frame::from_location(&location(Some(BUMP), 0x11, "i32.store"))
    );
}

#[test]
fn rejects_bytes_that_are_no_module() {
    assert!(matches!(
        Symbolizer::new(b"not wasm"),
        Err(SymbolizeError::Wasm(_))
    ));
}

/// `wasm` with its section `id` replaced by `f(payload)`.
fn rewrite_section(wasm: &[u8], id: u8, f: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let section_id = wasm[at];
        let (size, len) = read_leb(&wasm[at + 1..]);
        let start = at + 1 + len;
        let payload = &wasm[start..start + size as usize];
        let payload = if section_id == id {
            f(payload)
        } else {
            payload.to_vec()
        };
        out.push(section_id);
        write_leb(&mut out, payload.len() as u32, 0);
        out.extend_from_slice(&payload);
        at = start + size as usize;
    }
    out
}

fn read_leb(bytes: &[u8]) -> (u32, usize) {
    let (mut value, mut shift) = (0u32, 0);
    for (i, b) in bytes.iter().enumerate() {
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return (value, i + 1);
        }
        shift += 7;
    }
    panic!("unterminated LEB128");
}

/// Writes `value` as LEB128 padded to at least `min_len` bytes.
fn write_leb(out: &mut Vec<u8>, mut value: u32, min_len: usize) {
    let mut n = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        n += 1;
        if value == 0 && n >= min_len {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The fixture as a patcher might leave it: one more function (`(func)` of type 0) after
/// the original ones, and the code section's function count written in 5 bytes instead
/// of 1, so every original body moves 4 bytes further.
fn patched_fixture() -> Vec<u8> {
    const FUNCTION: u8 = 3;
    const CODE: u8 = 10;
    let wasm = rewrite_section(FIXTURE, FUNCTION, |payload| {
        let (count, len) = read_leb(payload);
        let mut out = Vec::new();
        write_leb(&mut out, count + 1, 0);
        out.extend_from_slice(&payload[len..]);
        out.push(0);
        out
    });
    rewrite_section(&wasm, CODE, |payload| {
        let (count, len) = read_leb(payload);
        let mut out = Vec::new();
        write_leb(&mut out, count + 1, 5);
        out.extend_from_slice(&payload[len..]);
        out.extend_from_slice(&[2, 0, 0x0b]);
        out
    })
}

#[test]
fn maps_offsets_of_the_patched_module_to_the_original() {
    let patched = patched_fixture();
    // The patched module's offsets are 4 bytes past the original's.
    let store = offset_of(&patched, 0, is_store, 0);
    assert_eq!(store, bump_store().code_offset + 4);
    let symbolizer = Symbolizer::for_patched(FIXTURE, &patched).unwrap();
    assert_eq!(symbolizer.dwarf_address(store), Some(store - 4));
    let frame = symbolizer.frame(&location(Some(BUMP), store, "i32.store"));
    assert_eq!(
        (frame.file.as_deref(), frame.line),
        (Some("dwarf.rs"), Some(21))
    );
    assert_eq!(frame.code_offset, store);
    let run = symbolizer.frame(&location(
        Some("run"),
        offset_of(&patched, 1, is_store, 0),
        "",
    ));
    assert_eq!((run.line, run.inlined.len()), (Some(39), 2));

    // Taken as offsets of the original, they land elsewhere: the `i32.add` of
    // `wrapping_add` on the following store.
    let add = offset_of(&patched, 0, |op| matches!(op, Operator::I32Add), 0);
    let frame = symbolizer.frame(&location(Some(BUMP), add, "i32.add"));
    assert_eq!((frame.column, frame.inlined.len()), (Some(31), 1));
    let plain = Symbolizer::new(FIXTURE).unwrap();
    let frame = plain.frame(&location(Some(BUMP), add, "i32.add"));
    assert_eq!((frame.column, frame.inlined.len()), (Some(9), 0));

    // The added function has no source.
    let added = offset_of(&patched, 2, |op| matches!(op, Operator::End), 0);
    assert_eq!(symbolizer.dwarf_address(added), None);
    let frame = symbolizer.frame(&location(Some("__wasmgrind_start"), added, "end"));
    assert_eq!((frame.file, frame.line), (None, None));
}

#[test]
fn a_patched_module_must_keep_the_original_bodies() {
    // A body changed.
    let changed = rewrite_section(FIXTURE, 10, |payload| {
        let mut payload = payload.to_vec();
        let last = payload.len() - 2;
        payload[last] ^= 1;
        payload
    });
    assert!(matches!(
        Symbolizer::for_patched(FIXTURE, &changed),
        Err(SymbolizeError::NotPatchedFrom(_))
    ));
    // Bodies missing.
    assert!(matches!(
        Symbolizer::for_patched(FIXTURE, b"\0asm\x01\0\0\0"),
        Err(SymbolizeError::NotPatchedFrom(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Text reports

/// A location table like a guest's: the racy store and load of a counter, and lock calls.
fn table() -> Vec<Location> {
    let racy = "_RNvNtCshI1AX9P1P9Z_5locks22unsynchronized_counter4bump";
    let lock = "_RNvCshI1AX9P1P9Z_5locks20lock_order_inversion";
    vec![
        location(Some(racy), 0x1a2b, "i32.store offset=8"),
        location(Some(racy), 0x1a25, "i32.load offset=8"),
        location(Some(lock), 0x2000, "call start_lock"),
        location(Some(lock), 0x2010, "call start_lock"),
        location(Some(lock), 0x2100, "call start_lock"),
        location(Some(lock), 0x2110, "call start_lock"),
        location(None, 0x3000, "i32.atomic.store"),
    ]
}

fn access(thread: u32, kind: AccessKind, atomic: bool, location: Option<u32>) -> Access {
    Access {
        thread,
        kind,
        addr: 0x12340,
        width: 4,
        atomic,
        location,
    }
}

fn race() -> Race {
    Race {
        addr: 0x12340,
        current: access(2, AccessKind::Write, false, Some(0)),
        previous: access(1, AccessKind::Read, false, Some(1)),
        count: 1999,
    }
}

fn inversion() -> PotentialDeadlock {
    PotentialDeadlock {
        cycle: vec![
            LockEdge {
                thread: 1,
                held: 0x1000,
                held_at: Some(2),
                next: 0x1008,
                next_at: Some(3),
            },
            LockEdge {
                thread: 2,
                held: 0x1008,
                held_at: Some(4),
                next: 0x1000,
                next_at: Some(5),
            },
        ],
        count: 1,
    }
}

fn live() -> LiveDeadlock {
    LiveDeadlock {
        threads: vec![
            BlockedThread {
                thread: 1,
                waiting_on: 0x1008,
                requested_at: Some(3),
                holder: 2,
                joining: None,
            },
            BlockedThread {
                thread: 2,
                waiting_on: 0x1000,
                requested_at: Some(5),
                holder: 1,
                joining: None,
            },
        ],
    }
}

#[test]
fn a_data_race_as_text() {
    let findings = Findings {
        races: vec![race()],
        ..Findings::default()
    };
    let text = report(&findings, &table(), None).text();
    assert_eq!(
        text,
        "\
==================
WARNING: data race
  Write of size 4 at 0x00012340 by thread T2:
    #0 locks::unsynchronized_counter::bump (code offset 0x1a2b: i32.store offset=8)

  Previous read of size 4 at 0x00012340 by thread T1:
    #0 locks::unsynchronized_counter::bump (code offset 0x1a25: i32.load offset=8)

  (seen 1999 times)
SUMMARY: Wasmgrind: data race (code offset 0x1a2b) in locks::unsynchronized_counter::bump
==================
Wasmgrind: found 1 data race, 0 potential deadlocks
"
    );
}

#[test]
fn atomic_and_unknown_accesses_as_text() {
    let findings = Findings {
        races: vec![Race {
            addr: 0x12340,
            // Location 6 has no function name; 99 is past the table; no location at all.
            current: access(3, AccessKind::Write, true, Some(6)),
            previous: access(0, AccessKind::Read, false, Some(99)),
            count: 1,
        }],
        ..Findings::default()
    };
    let text = report(&findings, &table(), None).text();
    assert!(text.contains(
        "  Atomic write of size 4 at 0x00012340 by thread T3:\n    #0 <unknown function> \
         (code offset 0x3000: i32.atomic.store)\n"
    ));
    assert!(text.contains(
        "  Previous read of size 4 at 0x00012340 by thread T0:\n    #0 <unknown location>\n"
    ));
    assert!(!text.contains("seen"));

    let findings = Findings {
        races: vec![Race {
            addr: 0x12340,
            current: access(1, AccessKind::Rmw, true, None),
            previous: access(2, AccessKind::Read, true, Some(1)),
            count: 1,
        }],
        ..Findings::default()
    };
    let text = report(&findings, &table(), None).text();
    assert!(text.contains(
        "  Atomic read-modify-write of size 4 at 0x00012340 by thread T1:\n    #0 <unknown \
         location>\n"
    ));
    assert!(text.contains("  Previous atomic read of size 4 at 0x00012340 by thread T2:\n"));
    assert!(text.contains("SUMMARY: Wasmgrind: data race <unknown location>\n"));
}

#[test]
fn a_lock_order_inversion_as_text() {
    let findings = Findings {
        potential_deadlocks: vec![inversion()],
        ..Findings::default()
    };
    let text = report(&findings, &table(), None).text();
    assert_eq!(
        text,
        "\
==================
WARNING: potential deadlock (lock-order inversion)
  Cycle in lock order: 0x00001000 => 0x00001008 => 0x00001000

  Thread T1 acquired lock 0x00001000 at:
    #0 locks::lock_order_inversion (code offset 0x2000: call start_lock)
  and then requested lock 0x00001008 at:
    #0 locks::lock_order_inversion (code offset 0x2010: call start_lock)

  Thread T2 acquired lock 0x00001008 at:
    #0 locks::lock_order_inversion (code offset 0x2100: call start_lock)
  and then requested lock 0x00001000 at:
    #0 locks::lock_order_inversion (code offset 0x2110: call start_lock)

SUMMARY: Wasmgrind: potential deadlock (lock-order inversion) (code offset 0x2010) in \
locks::lock_order_inversion
==================
Wasmgrind: found 0 data races, 1 potential deadlock
"
    );
}

#[test]
fn a_live_deadlock_as_text() {
    let findings = Findings {
        deadlock: Some(live()),
        ..Findings::default()
    };
    let text = report(&findings, &table(), None).text();
    assert_eq!(
        text,
        "\
==================
WARNING: deadlock
  Thread T1 waits for lock 0x00001008 held by thread T2, requested at:
    #0 locks::lock_order_inversion (code offset 0x2010: call start_lock)

  Thread T2 waits for lock 0x00001000 held by thread T1, requested at:
    #0 locks::lock_order_inversion (code offset 0x2110: call start_lock)

SUMMARY: Wasmgrind: deadlock of 2 threads (T1, T2) (code offset 0x2010) in \
locks::lock_order_inversion
==================
Wasmgrind: found 0 data races, 0 potential deadlocks, 1 deadlock
"
    );
}

#[test]
fn nothing_found_is_one_line() {
    let text = report(&Findings::default(), &[], None).text();
    assert_eq!(
        text,
        "Wasmgrind: found 0 data races, 0 potential deadlocks\n"
    );
}

#[test]
fn everything_in_order_with_totals() {
    let findings = Findings {
        races: vec![race(), race()],
        potential_deadlocks: vec![inversion()],
        deadlock: Some(live()),
        ..Findings::default()
    };
    let r = report(&findings, &table(), None);
    let text = r.to_string();
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("WARNING")).collect();
    assert_eq!(
        warnings,
        [
            "WARNING: data race",
            "WARNING: data race",
            "WARNING: potential deadlock (lock-order inversion)",
            "WARNING: deadlock"
        ]
    );
    assert_eq!(
        text.lines().filter(|l| *l == "==================").count(),
        8
    );
    assert_eq!(
        text.lines().last(),
        Some("Wasmgrind: found 2 data races, 1 potential deadlock, 1 deadlock")
    );
    assert_eq!(r.totals(), text.lines().last().unwrap());
}

#[test]
fn a_symbolized_race_names_file_and_line() {
    let symbolizer = Symbolizer::new(FIXTURE).unwrap();
    let findings = Findings {
        races: vec![Race {
            addr: 0x100000,
            current: Access {
                addr: 0x100000,
                ..access(2, AccessKind::Write, false, Some(1))
            },
            previous: Access {
                addr: 0x100000,
                ..access(1, AccessKind::Write, false, Some(0))
            },
            count: 1,
        }],
        ..Findings::default()
    };
    let table = [bump_store(), run_store()];
    let text = report(&findings, &table, Some(&symbolizer)).text();
    assert_eq!(
        text,
        format!(
            "\
==================
WARNING: data race
  Write of size 4 at 0x00100000 by thread T2:
    #0 write_volatile<u32> {CORE}/ptr/mod.rs:2194:9 (inlined)
    #1 set_flag dwarf.rs:28:14 (inlined)
    #2 run dwarf.rs:39:5 (code offset 0x44: i32.store offset=1048576)

  Previous write of size 4 at 0x00100000 by thread T1:
    #0 dwarf::bump dwarf.rs:21:9 (code offset 0x11: i32.store offset=1048580)

SUMMARY: Wasmgrind: data race dwarf.rs:28 in set_flag
==================
Wasmgrind: found 1 data race, 0 potential deadlocks
"
        )
    );

    // With the sides swapped, the summary is `bump`'s own line.
    let findings = Findings {
        races: vec![Race {
            current: findings.races[0].previous,
            previous: findings.races[0].current,
            ..findings.races[0].clone()
        }],
        ..Findings::default()
    };
    let text = report(&findings, &table, Some(&symbolizer)).text();
    assert!(text.contains("SUMMARY: Wasmgrind: data race dwarf.rs:21 in dwarf::bump\n"));
}

/// A loop the compiler unrolled puts one source line at several code locations: the
/// detectors find one race per pair of locations, the report one per pair of source
/// positions, with every occurrence counted. (Here the table lists the same two
/// instructions twice, as two copies would.)
#[test]
fn races_at_the_same_source_lines_are_one_report() {
    let symbolizer = Symbolizer::new(FIXTURE).unwrap();
    let race = |current: u32, previous: u32, count: u64| Race {
        addr: 0x100000,
        current: Access {
            addr: 0x100000,
            ..access(2, AccessKind::Write, false, Some(current))
        },
        previous: Access {
            addr: 0x100000,
            ..access(1, AccessKind::Write, false, Some(previous))
        },
        count,
    };
    let findings = Findings {
        races: vec![race(1, 0, 1), race(3, 2, 4), race(0, 1, 2)],
        ..Findings::default()
    };
    let table = [bump_store(), run_store(), bump_store(), run_store()];
    let r = report(&findings, &table, Some(&symbolizer));
    assert_eq!(r.counts.races, 2, "{r:#?}");
    assert_eq!((r.races[0].count, r.races[0].other_locations), (5, 1));
    assert_eq!(r.races[0].current.location, Some(1));
    // The sides swapped are another pair of positions.
    assert_eq!((r.races[1].count, r.races[1].other_locations), (2, 0));
    let text = r.text();
    assert!(text.contains(
        "  (seen 5 times, at 2 pairs of code locations of these source lines: the compiler \
         copied them, as an unrolled loop does)\n"
    ));
    assert!(text.ends_with("Wasmgrind: found 2 data races, 0 potential deadlocks\n"));
    let back: Report = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(back, r);

    // Without DWARF there are no source positions: each location pair is a report.
    assert_eq!(report(&findings, &table, None).counts.races, 3);
}

// ---------------------------------------------------------------------------------------
// JSON

#[test]
fn json_round_trips() {
    let findings = Findings {
        races: vec![race()],
        potential_deadlocks: vec![inversion()],
        deadlock: Some(live()),
        ..Findings::default()
    };
    let r = report(&findings, &table(), None);
    let back: Report = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(back, r);

    // With DWARF frames and inlined calls too.
    let symbolizer = Symbolizer::new(FIXTURE).unwrap();
    let findings = Findings {
        races: vec![Race {
            current: access(2, AccessKind::Write, false, Some(1)),
            previous: access(1, AccessKind::Write, false, Some(0)),
            ..race()
        }],
        ..Findings::default()
    };
    let r = report(&findings, &[bump_store(), run_store()], Some(&symbolizer));
    let back: Report = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn json_shape() {
    let findings = Findings {
        races: vec![Race {
            previous: access(1, AccessKind::Read, true, Some(99)),
            ..race()
        }],
        potential_deadlocks: vec![inversion()],
        deadlock: Some(live()),
        ..Findings::default()
    };
    let json: serde_json::Value =
        serde_json::from_str(&report(&findings, &table(), None).json()).unwrap();
    assert_eq!(
        json["counts"],
        serde_json::json!({"races": 1, "potential_deadlocks": 1, "deadlocks": 1})
    );

    let race = &json["races"][0];
    assert_eq!(race["addr"], 0x12340);
    assert_eq!(race["count"], 1999);
    assert_eq!(
        race["current"],
        serde_json::json!({
            "thread": 2, "kind": "write", "addr": 0x12340, "width": 4, "atomic": false,
            "location": 0,
            "frame": {
                "function": "locks::unsynchronized_counter::bump",
                "raw_function": "_RNvNtCshI1AX9P1P9Z_5locks22unsynchronized_counter4bump",
                "file": null, "line": null, "column": null,
                "code_offset": 0x1a2b, "instr": "i32.store offset=8"
            }
        })
    );
    // An unknown location keeps its id and has no frame.
    assert_eq!(race["previous"]["location"], 99);
    assert_eq!(race["previous"]["frame"], serde_json::Value::Null);
    assert_eq!(race["previous"]["kind"], "read");
    assert_eq!(race["previous"]["atomic"], true);

    let deadlock = &json["potential_deadlocks"][0];
    assert_eq!(deadlock["count"], 1);
    let edge = &deadlock["edges"][1];
    assert_eq!(
        (
            &edge["thread"],
            &edge["held"],
            &edge["held_location"],
            &edge["next"],
            &edge["next_location"]
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!(0x1008),
            &serde_json::json!(4),
            &serde_json::json!(0x1000),
            &serde_json::json!(5)
        )
    );
    assert_eq!(edge["held_at"]["code_offset"], 0x2100);
    assert_eq!(edge["next_at"]["instr"], "call start_lock");

    let threads = &json["deadlock"]["threads"];
    assert_eq!(threads.as_array().unwrap().len(), 2);
    assert_eq!(
        (
            &threads[0]["thread"],
            &threads[0]["waiting_on"],
            &threads[0]["holder"],
            &threads[0]["requested_location"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(0x1008),
            &serde_json::json!(2),
            &serde_json::json!(3)
        )
    );
    assert_eq!(
        threads[0]["requested_at"]["function"],
        "locks::lock_order_inversion"
    );

    // Nothing found.
    let json: serde_json::Value =
        serde_json::from_str(&report(&Findings::default(), &[], None).json()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "races": [], "potential_deadlocks": [], "deadlock": null,
            "counts": {"races": 0, "potential_deadlocks": 0, "deadlocks": 0},
            "deadlock_search_incomplete": null
        })
    );
}

#[test]
fn json_frames_list_inlined_calls() {
    let symbolizer = Symbolizer::new(FIXTURE).unwrap();
    let findings = Findings {
        races: vec![Race {
            current: access(2, AccessKind::Write, false, Some(0)),
            previous: access(1, AccessKind::Write, false, Some(1)),
            ..race()
        }],
        ..Findings::default()
    };
    let json: serde_json::Value = serde_json::from_str(
        &report(&findings, &[run_store(), bump_store()], Some(&symbolizer)).json(),
    )
    .unwrap();
    let frame = &json["races"][0]["current"]["frame"];
    assert_eq!(
        (&frame["file"], &frame["line"]),
        (&serde_json::json!("dwarf.rs"), &serde_json::json!(39))
    );
    assert_eq!(
        frame["inlined"][1],
        serde_json::json!({"function": "set_flag", "file": "dwarf.rs", "line": 28, "column": 14})
    );
    // Without inlined calls, the field is left out.
    let frame = &json["races"][0]["previous"]["frame"];
    assert_eq!(frame["line"], 21);
    assert!(frame.get("inlined").is_none());
}

#[test]
fn an_incomplete_deadlock_search_is_said_in_text_and_json() {
    let findings = Findings {
        deadlock_search_incomplete: Some("the search stopped after 10 steps".into()),
        ..Findings::default()
    };
    let r = report(&findings, &table(), None);
    assert!(r.text().contains(
        "Wasmgrind: warning: the search for potential deadlocks is incomplete: the search \
         stopped after 10 steps"
    ));
    let back: wasmgrind_core::analysis::report::Report = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(back, r);
}

/// The text of a report with one finding of each kind, resolved with the fixture's DWARF,
/// against `tests/golden/report.txt` (the book shows that file). Run with `BLESS=1` to
/// rewrite it after an intended change.
#[test]
fn report_text_matches_golden_output() {
    let symbolizer = Symbolizer::new(FIXTURE).unwrap();
    let locations = vec![bump_store(), run_store()];
    let at = |location: u32, thread: u32, kind: AccessKind| Access {
        thread,
        kind,
        addr: 0x0012_0020,
        width: 4,
        atomic: false,
        location: Some(location),
    };
    let findings = Findings {
        races: vec![Race {
            addr: 0x0012_0020,
            current: at(0, 2, AccessKind::Write),
            previous: at(1, 1, AccessKind::Write),
            count: 1999,
        }],
        ..Findings::default()
    };
    let text = report(&findings, &locations, Some(&symbolizer)).text();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create it)", path.display()));
    assert_eq!(
        text,
        expected,
        "{} differs (run with BLESS=1 to accept)",
        path.display()
    );
}
