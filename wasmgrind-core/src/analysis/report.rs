//! Reports of what the detectors found, as text for a person and as JSON for a program.
//!
//! [`report`] resolves every location of the [`Findings`] through the trace's location
//! table and, if given one, a [`Symbolizer`] (demangled names, `file:line` from DWARF); the
//! [`Report`] it returns prints as text ([`Report::text`], also its `Display`) or JSON
//! ([`Report::json`]).
//!
//! # Text
//!
//! Shaped like ThreadSanitizer's reports: each finding is framed by lines of `=`, starts
//! with `WARNING: …`, shows each side with a stack of frames (`#0 function file:line:column
//! (code offset 0x…: instruction)`, inlined calls first) and ends with a one-line
//! `SUMMARY: Wasmgrind: …`. A last line counts everything. A location the trace does not
//! know prints as `<unknown location>`.
//!
//! The summary names the innermost position in the program's own code: it passes over
//! inlined frames of Rust's standard library and of `wasmgrind-guest` (an access inside an
//! inlined `ptr::write_volatile` is summarized at the user's line that called it), and
//! falls back to the wasm function itself. A race is summarized at its current access; a
//! deadlock, whose sites are alike, at the first site that has a position of the
//! program's own (a std `Mutex::lock_contended` called out of line has none), else at the
//! first site.
//!
//! ```text
//! ==================
//! WARNING: data race
//!   Write of size 4 at 0x00012340 by thread T2:
//!     #0 locks::unsynchronized_counter::bump src/lib.rs:123:9 (code offset 0x1a2b: i32.store offset=8)
//!
//!   Previous read of size 4 at 0x00012340 by thread T1:
//!     #0 locks::unsynchronized_counter::bump src/lib.rs:123:9 (code offset 0x1a25: i32.load offset=8)
//!
//!   (seen 1999 times)
//! SUMMARY: Wasmgrind: data race src/lib.rs:123 in locks::unsynchronized_counter::bump
//! ==================
//! Wasmgrind: found 1 data race, 0 potential deadlocks
//! ```
//!
//! # JSON
//!
//! [`Report::json`] is the [`Report`] serialized with serde; [`Report`] deserializes from it
//! again. The fields:
//!
//! - `races`: one object per data race ([`RaceReport`]):
//!   - `addr`: the lowest byte both accesses touched;
//!   - `current`, `previous`: the later and the earlier access ([`AccessReport`]), each
//!     with `thread` (runtime thread id), `kind` (`"read"`, `"write"` or `"rmw"`),
//!     `addr`, `width` (bytes), `atomic` (bool), `location` (index into the trace's
//!     location table, or `null`) and `frame` ([`Frame`], or `null` for an unknown
//!     location);
//!   - `count`: how many times the race was seen;
//!   - `other_locations`: how many more pairs of code locations at the very same source
//!     positions this report stands for (absent when none; see below).
//! - `potential_deadlocks`: one object per lock-order cycle ([`PotentialDeadlockReport`]):
//!   `edges`, in cycle order, each ([`LockEdgeReport`]) with `thread`, `held` (lock address),
//!   `held_location`, `held_at` (frame where `held` was acquired), `next` (lock address),
//!   `next_location` and `next_at` (frame where `next` was requested); `count`; and
//!   `other_locations`, as for races.
//! - `deadlock`: `null`, or the deadlock the run ended in ([`LiveDeadlockReport`]):
//!   `threads`, each ([`BlockedThreadReport`]) with `thread`, `waiting_on` (lock address),
//!   `holder` (thread id), `requested_location` and `requested_at` (frame); a thread that
//!   waits to join another instead has `joining` (the joined thread, also `holder`) and
//!   `waiting_on` 0.
//! - `counts` ([`Counts`]): `races`, `potential_deadlocks` (reports, not occurrences) and
//!   `deadlocks` (0 or 1).
//!
//! # One report per source position
//!
//! The detectors tell findings apart by code location, but a compiler that unrolls a loop
//! or inlines a function twice puts the same source line at several code locations, and
//! one bug would then be reported once per copy. So findings whose every frame is at the
//! same source position (the same function, file, line and column, inlined calls
//! included), with the same access kinds (races) or the same locks (potential deadlocks),
//! are one report: the first one found, its `count` the sum of theirs, and
//! `other_locations` says how many other pairs (or cycles) of code locations it stands for. Without DWARF
//! (no file and line) every code location is a report of its own.
//!
//! A frame ([`Frame`]) has `function` (demangled, without hash), `raw_function` (as in the
//! name section), `file`, `line`, `column` (each `null` without DWARF), `code_offset`,
//! `instr` and, only when the compiler inlined calls there, `inlined`: a list of
//! `{function, file, line, column}`, innermost first.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::symbolize::{Frame, Symbolizer};
use super::{Access, AccessKind, Findings};
use crate::location::{Location, LocationId};

/// The separator line between findings.
const SEPARATOR: &str = "==================";

/// What the detectors found, with every location resolved. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The data races.
    pub races: Vec<RaceReport>,
    /// The potential deadlocks (lock-order cycles).
    pub potential_deadlocks: Vec<PotentialDeadlockReport>,
    /// The deadlock the run ended in, if it did.
    pub deadlock: Option<LiveDeadlockReport>,
    /// How many findings of each kind.
    pub counts: Counts,
    /// Why the search for potential deadlocks is incomplete, if it is.
    #[serde(default)]
    pub deadlock_search_incomplete: Option<String>,
}

/// The number of findings of each kind in a [`Report`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Distinct data races (not their occurrences).
    pub races: usize,
    /// Distinct potential deadlocks.
    pub potential_deadlocks: usize,
    /// 1 if the run ended in a deadlock, else 0.
    pub deadlocks: usize,
}

/// One side of a data race, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessReport {
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
    /// The index into the trace's location table.
    pub location: Option<LocationId>,
    /// The resolved location; `None` if it is unknown.
    pub frame: Option<Frame>,
}

/// A data race, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaceReport {
    /// The lowest byte both accesses touched.
    pub addr: u32,
    /// The later access, at which the race was detected.
    pub current: AccessReport,
    /// The earlier access.
    pub previous: AccessReport,
    /// How many times the race was seen (at every code location it stands for).
    pub count: u64,
    /// How many more pairs of code locations, at the same source positions as these, this
    /// report stands for (see the [module docs](self)).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_locations: usize,
}

/// One edge of a lock-order cycle, resolved: `thread` requested `next` while it held
/// `held`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockEdgeReport {
    /// The runtime's id of the thread.
    pub thread: u32,
    /// The lock it held (its address).
    pub held: u32,
    /// Where it acquired `held`, as an index into the location table.
    pub held_location: Option<LocationId>,
    /// Where it acquired `held`; `None` if unknown.
    pub held_at: Option<Frame>,
    /// The lock it then requested (its address).
    pub next: u32,
    /// Where it requested `next`, as an index into the location table.
    pub next_location: Option<LocationId>,
    /// Where it requested `next`; `None` if unknown.
    pub next_at: Option<Frame>,
}

/// A potential deadlock (lock-order inversion), resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PotentialDeadlockReport {
    /// The edges of the cycle, in cycle order.
    pub edges: Vec<LockEdgeReport>,
    /// How many times the cycle was seen (at every code location it stands for).
    pub count: u64,
    /// How many more cycles at other code locations, at the same source positions as
    /// these, this report stands for (see the [module docs](self)).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_locations: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One thread of a deadlock that happened, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedThreadReport {
    /// The runtime's id of the thread.
    pub thread: u32,
    /// The lock it waits for (its address); 0 when it waits to join.
    pub waiting_on: u32,
    /// The thread that holds that lock, or the thread it joins.
    pub holder: u32,
    /// `Some(holder)` when the thread waits to join `holder` rather than for a lock
    /// (`waiting_on` is then 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joining: Option<u32>,
    /// Where it requested the lock (or waits to join), as an index into the location table.
    pub requested_location: Option<LocationId>,
    /// Where it requested the lock; `None` if unknown.
    pub requested_at: Option<Frame>,
}

/// A deadlock that happened, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDeadlockReport {
    /// The threads of the cycle, each waiting for a lock the next one holds.
    pub threads: Vec<BlockedThreadReport>,
}

/// Resolves `findings` into a [`Report`]: each location id through `locations` (the trace's
/// location table) and, if given, `symbolizer`; without one, names are only demangled.
pub fn report(
    findings: &Findings,
    locations: &[Location],
    symbolizer: Option<&Symbolizer>,
) -> Report {
    let mut resolver = Resolver {
        locations,
        symbolizer,
        cache: HashMap::new(),
    };
    let races: Vec<RaceReport> = findings
        .races
        .iter()
        .map(|race| RaceReport {
            addr: race.addr,
            current: resolver.access(&race.current),
            previous: resolver.access(&race.previous),
            count: race.count,
            other_locations: 0,
        })
        .collect();
    let races = merge(
        races,
        |r| {
            Some((
                (
                    r.current.kind,
                    r.current.atomic,
                    source_key(r.current.frame.as_ref())?,
                ),
                (
                    r.previous.kind,
                    r.previous.atomic,
                    source_key(r.previous.frame.as_ref())?,
                ),
            ))
        },
        |into, r| {
            into.count += r.count;
            into.other_locations += 1 + r.other_locations;
        },
    );
    let potential_deadlocks: Vec<PotentialDeadlockReport> = findings
        .potential_deadlocks
        .iter()
        .map(|deadlock| PotentialDeadlockReport {
            edges: deadlock
                .cycle
                .iter()
                .map(|edge| LockEdgeReport {
                    thread: edge.thread,
                    held: edge.held,
                    held_location: edge.held_at,
                    held_at: resolver.frame(edge.held_at),
                    next: edge.next,
                    next_location: edge.next_at,
                    next_at: resolver.frame(edge.next_at),
                })
                .collect(),
            count: deadlock.count,
            other_locations: 0,
        })
        .collect();
    let potential_deadlocks = merge(
        potential_deadlocks,
        |d| {
            d.edges
                .iter()
                .map(|e| {
                    Some((
                        e.held,
                        e.next,
                        source_key(e.held_at.as_ref())?,
                        source_key(e.next_at.as_ref())?,
                    ))
                })
                .collect::<Option<Vec<_>>>()
        },
        |into, d| {
            into.count += d.count;
            into.other_locations += 1 + d.other_locations;
        },
    );
    let deadlock = findings
        .deadlock
        .as_ref()
        .map(|deadlock| LiveDeadlockReport {
            threads: deadlock
                .threads
                .iter()
                .map(|t| BlockedThreadReport {
                    thread: t.thread,
                    waiting_on: t.waiting_on,
                    holder: t.holder,
                    joining: t.joining,
                    requested_location: t.requested_at,
                    requested_at: resolver.frame(t.requested_at),
                })
                .collect(),
        });
    let counts = Counts {
        races: races.len(),
        potential_deadlocks: potential_deadlocks.len(),
        deadlocks: usize::from(deadlock.is_some()),
    };
    Report {
        races,
        potential_deadlocks,
        deadlock,
        counts,
        deadlock_search_incomplete: findings.deadlock_search_incomplete.clone(),
    }
}

/// A frame's source positions, the inlined calls' included: what tells findings apart in
/// a report (see the [module docs](self)); `None` without a file and line.
type SourceKey = Vec<(Option<String>, Option<String>, u32, Option<u32>)>;

fn source_key(frame: Option<&Frame>) -> Option<SourceKey> {
    let frame = frame?;
    let mut key = vec![(
        frame.function.clone(),
        Some(frame.file.clone()?),
        frame.line?,
        frame.column,
    )];
    for i in &frame.inlined {
        key.push((i.function.clone(), i.file.clone(), i.line?, i.column));
    }
    Some(key)
}

/// `items` with those of equal `key` (when it has one) merged into the first of them by
/// `absorb`, in their order.
fn merge<T, K: std::hash::Hash + Eq>(
    items: Vec<T>,
    key: impl Fn(&T) -> Option<K>,
    absorb: impl Fn(&mut T, T),
) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    let mut first: HashMap<K, usize> = HashMap::new();
    for item in items {
        match key(&item) {
            Some(k) => match first.get(&k) {
                Some(&i) => absorb(&mut out[i], item),
                None => {
                    first.insert(k, out.len());
                    out.push(item);
                }
            },
            None => out.push(item),
        }
    }
    out
}

/// Resolves location ids, each once.
struct Resolver<'a> {
    locations: &'a [Location],
    symbolizer: Option<&'a Symbolizer>,
    cache: HashMap<LocationId, Option<Frame>>,
}

impl Resolver<'_> {
    fn frame(&mut self, id: Option<LocationId>) -> Option<Frame> {
        let id = id?;
        let (locations, symbolizer) = (self.locations, self.symbolizer);
        self.cache
            .entry(id)
            .or_insert_with(|| {
                let location = locations.get(usize::try_from(id).ok()?)?;
                Some(match symbolizer {
                    Some(s) => s.frame(location),
                    None => Frame::from_location(location),
                })
            })
            .clone()
    }

    fn access(&mut self, access: &Access) -> AccessReport {
        AccessReport {
            thread: access.thread,
            kind: access.kind,
            addr: access.addr,
            width: access.width,
            atomic: access.atomic,
            location: access.location,
            frame: self.frame(access.location),
        }
    }
}

impl Report {
    /// The report as ThreadSanitizer-shaped text (see the [module docs](self)), ending
    /// with a newline.
    pub fn text(&self) -> String {
        self.to_string()
    }

    /// The report as pretty-printed JSON (fields in the [module docs](self)).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The last line of the text: how many findings of each kind.
    pub fn totals(&self) -> String {
        let mut line = format!(
            "Wasmgrind: found {}, {}",
            plural(self.counts.races, "data race", "data races"),
            plural(
                self.counts.potential_deadlocks,
                "potential deadlock",
                "potential deadlocks"
            ),
        );
        if self.counts.deadlocks > 0 {
            line.push_str(", ");
            line.push_str(&plural(self.counts.deadlocks, "deadlock", "deadlocks"));
        }
        line
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for race in &self.races {
            write_race(&mut out, race);
        }
        for deadlock in &self.potential_deadlocks {
            write_potential_deadlock(&mut out, deadlock);
        }
        if let Some(deadlock) = &self.deadlock {
            write_live_deadlock(&mut out, deadlock);
        }
        if let Some(why) = &self.deadlock_search_incomplete {
            out.push_str("Wasmgrind: warning: the search for potential deadlocks is incomplete: ");
            out.push_str(why);
            out.push('\n');
        }
        out.push_str(&self.totals());
        out.push('\n');
        f.write_str(&out)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn write_race(out: &mut String, race: &RaceReport) {
    out.push_str(SEPARATOR);
    out.push('\n');
    out.push_str("WARNING: data race\n");
    write_access(out, &race.current, false);
    out.push('\n');
    write_access(out, &race.previous, true);
    out.push('\n');
    write_seen(out, race.count, race.other_locations);
    write_summary(out, "data race", [race.current.frame.as_ref()]);
    out.push_str(SEPARATOR);
    out.push('\n');
}

fn write_access(out: &mut String, access: &AccessReport, previous: bool) {
    let what = match access.kind {
        AccessKind::Read => "read",
        AccessKind::Write => "write",
        AccessKind::Rmw => "read-modify-write",
    };
    let mut description = String::new();
    if previous {
        description.push_str("previous ");
    }
    if access.atomic {
        description.push_str("atomic ");
    }
    description.push_str(what);
    let _ = writeln!(
        out,
        "  {} of size {} at {} by thread T{}:",
        capitalize(&description),
        access.width,
        addr(access.addr),
        access.thread
    );
    write_stack(out, access.frame.as_ref());
}

fn write_potential_deadlock(out: &mut String, deadlock: &PotentialDeadlockReport) {
    out.push_str(SEPARATOR);
    out.push('\n');
    out.push_str("WARNING: potential deadlock (lock-order inversion)\n");
    if let Some(first) = deadlock.edges.first() {
        let mut cycle: Vec<String> = deadlock.edges.iter().map(|e| addr(e.held)).collect();
        cycle.push(addr(first.held));
        let _ = writeln!(out, "  Cycle in lock order: {}", cycle.join(" => "));
    }
    for edge in &deadlock.edges {
        out.push('\n');
        let _ = writeln!(
            out,
            "  Thread T{} acquired lock {} at:",
            edge.thread,
            addr(edge.held)
        );
        write_stack(out, edge.held_at.as_ref());
        let _ = writeln!(out, "  and then requested lock {} at:", addr(edge.next));
        write_stack(out, edge.next_at.as_ref());
    }
    out.push('\n');
    write_seen(out, deadlock.count, deadlock.other_locations);
    write_summary(
        out,
        "potential deadlock (lock-order inversion)",
        deadlock
            .edges
            .iter()
            .flat_map(|e| [e.next_at.as_ref(), e.held_at.as_ref()]),
    );
    out.push_str(SEPARATOR);
    out.push('\n');
}

fn write_live_deadlock(out: &mut String, deadlock: &LiveDeadlockReport) {
    out.push_str(SEPARATOR);
    out.push('\n');
    out.push_str("WARNING: deadlock\n");
    for (i, t) in deadlock.threads.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = match t.joining {
            Some(joined) => writeln!(
                out,
                "  Thread T{} waits to join thread T{} (for it to end), at:",
                t.thread, joined
            ),
            None => writeln!(
                out,
                "  Thread T{} waits for lock {} held by thread T{}, requested at:",
                t.thread,
                addr(t.waiting_on),
                t.holder
            ),
        };
        write_stack(out, t.requested_at.as_ref());
    }
    out.push('\n');
    let threads: Vec<String> = deadlock
        .threads
        .iter()
        .map(|t| format!("T{}", t.thread))
        .collect();
    let what = format!(
        "deadlock of {} ({})",
        plural(deadlock.threads.len(), "thread", "threads"),
        threads.join(", ")
    );
    write_summary(
        out,
        &what,
        deadlock.threads.iter().map(|t| t.requested_at.as_ref()),
    );
    out.push_str(SEPARATOR);
    out.push('\n');
}

fn write_seen(out: &mut String, count: u64, other_locations: usize) {
    match (count > 1, other_locations) {
        (false, 0) => {}
        (true, 0) => {
            let _ = writeln!(out, "  (seen {count} times)");
        }
        (_, n) => {
            let _ = writeln!(
                out,
                "  (seen {count} times, at {} pairs of code locations of these source lines: \
                 the compiler copied them, as an unrolled loop does)",
                n + 1
            );
        }
    }
}

/// The frame lines of one location: the inlined calls, then the function itself.
fn write_stack(out: &mut String, frame: Option<&Frame>) {
    let Some(frame) = frame else {
        out.push_str("    #0 <unknown location>\n");
        return;
    };
    let mut n = 0;
    for inlined in &frame.inlined {
        let _ = write!(
            out,
            "    #{n} {}",
            inlined.function.as_deref().unwrap_or("<unknown function>")
        );
        if let Some(source) = source(inlined.file.as_deref(), inlined.line, inlined.column) {
            let _ = write!(out, " {source}");
        }
        out.push_str(" (inlined)\n");
        n += 1;
    }
    let _ = write!(
        out,
        "    #{n} {}",
        frame.function.as_deref().unwrap_or("<unknown function>")
    );
    if let Some(source) = source(frame.file.as_deref(), frame.line, frame.column) {
        let _ = write!(out, " {source}");
    }
    let _ = writeln!(
        out,
        " (code offset {:#x}: {})",
        frame.code_offset, frame.instr
    );
}

/// `file:line:column` (or less, as far as known); `None` without a file.
fn source(file: Option<&str>, line: Option<u32>, column: Option<u32>) -> Option<String> {
    let mut s = file?.to_string();
    if let Some(line) = line {
        let _ = write!(s, ":{line}");
        if let Some(column) = column {
            let _ = write!(s, ":{column}");
        }
    }
    Some(s)
}

/// The innermost position of `frame` that is the program's own (see [`is_library`]): an
/// inlined function's or the wasm function's own; `None` when all of it is library code.
fn own_position(frame: &Frame) -> Option<(Option<&str>, Option<&str>, Option<u32>)> {
    let own = |file: Option<&str>| file.is_some_and(|file| !is_library(file));
    if let Some(i) = frame.inlined.iter().find(|i| own(i.file.as_deref())) {
        return Some((i.function.as_deref(), i.file.as_deref(), i.line));
    }
    own(frame.file.as_deref()).then_some((
        frame.function.as_deref(),
        frame.file.as_deref(),
        frame.line,
    ))
}

/// `SUMMARY: Wasmgrind: <what> <file:line> in <function>`, at the first of `frames` (the
/// sites of the finding, most telling first) that has a position of the program's own
/// (see [`own_position`]), else at the first frame's wasm function.
fn write_summary<'a>(
    out: &mut String,
    what: &str,
    frames: impl IntoIterator<Item = Option<&'a Frame>>,
) {
    let frames: Vec<&Frame> = frames.into_iter().flatten().collect();
    let _ = write!(out, "SUMMARY: Wasmgrind: {what}");
    match frames.first() {
        None => out.push_str(" <unknown location>"),
        Some(&first) => {
            let (frame, (function, file, line)) = frames
                .iter()
                .find_map(|&f| own_position(f).map(|p| (f, p)))
                .unwrap_or((
                    first,
                    (first.function.as_deref(), first.file.as_deref(), first.line),
                ));
            match source(file, line, None) {
                Some(source) => {
                    let _ = write!(out, " {source}");
                }
                None => {
                    let _ = write!(out, " (code offset {:#x})", frame.code_offset);
                }
            }
            let _ = write!(out, " in {}", function.unwrap_or("<unknown function>"));
        }
    }
    out.push('\n');
}

/// Whether `file` belongs to Rust's standard library (`/rustc/<hash>/library/…`, the
/// local `…/lib/rustlib/src/rust/…`, or `library/<crate>/src/…` as the standard library
/// of a stable toolchain records it), to wasi-libc (`wasisdk://…`) or to the guest library
/// `wasmgrind-guest`, so that a summary names the program's own code instead.
fn is_library(file: &str) -> bool {
    const STD_CRATES: [&str; 5] = ["core", "alloc", "std", "stdarch", "panic_abort"];
    let std_relative = file.strip_prefix("library/").is_some_and(|rest| {
        rest.split_once('/')
            .is_some_and(|(krate, _)| STD_CRATES.contains(&krate))
    });
    std_relative
        || file.starts_with("/rustc/")
        || file.starts_with("wasisdk://")
        || file.contains("/lib/rustlib/src/rust/")
        || file
            .split(['/', '\\'])
            .any(|c| c == "wasmgrind-guest" || c.starts_with("wasmgrind-guest-"))
}

/// A lock or memory address as `0x` and eight hex digits.
fn addr(a: u32) -> String {
    format!("{a:#010x}")
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_library, write_summary};
    use crate::analysis::symbolize::{Frame, InlinedFrame};

    fn frame(function: &str, file: &str, line: u32, inlined: &[(&str, &str, u32)]) -> Frame {
        Frame {
            function: Some(function.into()),
            raw_function: None,
            file: Some(file.into()),
            line: Some(line),
            column: None,
            code_offset: 0x10,
            instr: "call".into(),
            inlined: inlined
                .iter()
                .map(|&(function, file, line)| InlinedFrame {
                    function: Some(function.into()),
                    file: Some(file.into()),
                    line: Some(line),
                    column: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_summary_names_the_first_site_in_the_programs_own_code() {
        let std = frame(
            "lock_contended",
            "library/std/src/sys/sync/mutex/futex.rs",
            61,
            &[],
        );
        let inlined = frame(
            "std::rt::lang_start",
            "library/std/src/rt.rs",
            9,
            &[
                ("lock", "library/std/src/sync/poison/mutex.rs", 492),
                ("{closure#0}", "src/main.rs", 7),
            ],
        );
        let own = frame("app::run", "src/main.rs", 12, &[]);
        let summary = |frames: Vec<Option<&Frame>>| {
            let mut out = String::new();
            write_summary(&mut out, "x", frames);
            out
        };
        // An own position inlined into a library function is the program's.
        assert_eq!(
            summary(vec![Some(&std), Some(&inlined)]),
            "SUMMARY: Wasmgrind: x src/main.rs:7 in {closure#0}\n"
        );
        assert_eq!(
            summary(vec![None, Some(&std), Some(&own)]),
            "SUMMARY: Wasmgrind: x src/main.rs:12 in app::run\n"
        );
        // Library code everywhere: the first site, as it is.
        assert_eq!(
            summary(vec![Some(&std)]),
            "SUMMARY: Wasmgrind: x library/std/src/sys/sync/mutex/futex.rs:61 in lock_contended\n"
        );
        assert_eq!(
            summary(vec![None]),
            "SUMMARY: Wasmgrind: x <unknown location>\n"
        );
    }

    #[test]
    fn the_standard_library_and_wasi_libc_are_library_code() {
        for file in [
            "/rustc/0123abcd/library/core/src/ptr/mod.rs",
            "library/core/src/../../stdarch/crates/core_arch/src/wasm32/atomic.rs",
            "library/std/src/sys/sync/mutex/futex.rs",
            "library/alloc/src/vec/mod.rs",
            "wasisdk://v30.0/src/wasi-libc/libc-top-half/musl/src/thread/__wait.c",
            "/home/me/.rustup/toolchains/x/lib/rustlib/src/rust/library/core/src/cell.rs",
            "/work/wasmgrind-guest/src/sync/mutex.rs",
        ] {
            assert!(is_library(file), "{file}");
        }
        for file in [
            "src/main.rs",
            "library/mycrate/src/lib.rs",
            "crates/library/src/lib.rs",
        ] {
            assert!(!is_library(file), "{file}");
        }
    }
}
